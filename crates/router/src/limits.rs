//! What keeps clients and endpoints from holding the router's memory and connections: the
//! request-body budget (per request and over all connections), and each client connection's
//! watchdog (header-read and idle timeouts).
//!
//! The watchdog is the router's own rather than hyper's `header_read_timeout`: hyper's timer
//! runs from the moment a keep-alive connection waits for its next request, so it would also
//! close idle connections after the (short) header timeout; it does not cover the bytes the
//! auto (HTTP/1 or h2c) builder reads to tell the versions apart; and it does not exist for h2.
//! The watchdog looks at a connection a few times per timeout (no timer per request) and
//! tells three states apart: a request in flight (no limit here: the request timeout covers
//! it), bytes received but no request yet (a request's head on its way: the header-read
//! timeout), and nothing at all (idle: the idle timeout).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The limits and timeouts at run time (from [`crate::RouterConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Part of a request's head received, not all of it: the connection is closed after this.
    pub header_read: Duration,
    /// No request in flight and nothing received: the connection is closed after this.
    pub idle: Duration,
    /// Largest request body (413 beyond).
    pub max_body: u64,
    /// Request-body bytes buffered at once over all connections (503 beyond).
    pub max_buffered: i64,
    /// An endpoint's response headers are waited for this long (504 beyond).
    pub upstream_header: Duration,
    /// The whole exchange.
    pub request: Duration,
}

/// Bytes of the shared request-body budget held by one request; given back when dropped.
pub struct Reservation {
    budget: Gauge,
    max: i64,
    held: i64,
}

impl Reservation {
    /// Nothing held yet, from `budget` (bytes buffered now, over all requests) of at most `max`.
    pub fn new(budget: &Gauge, max: i64) -> Self {
        Self {
            budget: budget.clone(),
            max,
            held: 0,
        }
    }

    /// Holds at least `n` bytes in all: false (and nothing more held) when the budget has not
    /// that much left.
    pub fn cover(&mut self, n: u64) -> bool {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let more = n.saturating_sub(self.held);
        if more <= 0 {
            return true;
        }
        let max = self.max;
        let taken = self
            .budget
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                let after = now.saturating_add(more);
                (after <= max).then_some(after)
            })
            .is_ok();
        if taken {
            self.held = n;
        }
        taken
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        u64::try_from(self.held).unwrap_or(0)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held > 0 {
            self.budget.dec_by(self.held);
        }
    }
}

/// A request body read whole, on its way to the endpoint; its share of the budget is given
/// back once it is sent (or dropped).
pub struct Buffered {
    data: Option<Bytes>,
    reservation: Option<Reservation>,
}

impl Buffered {
    /// `data`, holding `reservation` until sent.
    pub fn new(data: Bytes, reservation: Reservation) -> Self {
        Self {
            data: (!data.is_empty()).then_some(data),
            reservation: Some(reservation),
        }
    }
}

impl http_body::Body for Buffered {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.data.take().map(|d| Ok(Frame::data(d)));
        if frame.is_none() {
            self.reservation = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// What a client connection has been doing, as its watchdog reads it.
#[derive(Default)]
pub struct ConnState {
    /// Requests whose response is not yet sent to the end.
    in_flight: AtomicUsize,
    /// A request started or ended since the watchdog last looked.
    request_seen: AtomicBool,
    /// Bytes arrived since the watchdog last looked.
    bytes_seen: AtomicBool,
    /// The connection speaks h2 (control frames without requests are no request head).
    h2: AtomicBool,
}

/// One request in flight on a connection, from its head to the end of its response.
pub struct InFlight(Arc<ConnState>);

impl InFlight {
    /// A request on `conn` begins (`h2`: it came over HTTP/2).
    pub fn begin(conn: Arc<ConnState>, h2: bool) -> Self {
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        conn.request_seen.store(true, Ordering::Relaxed);
        if h2 && !conn.h2.load(Ordering::Relaxed) {
            conn.h2.store(true, Ordering::Relaxed);
        }
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_seen.store(true, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client's TCP stream, noting when bytes arrive.
pub struct Watched {
    io: tokio::net::TcpStream,
    state: Arc<ConnState>,
}

impl Watched {
    /// `io`, reporting to `state`.
    pub fn new(io: tokio::net::TcpStream, state: Arc<ConnState>) -> Self {
        Self { io, state }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.bytes_seen.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why a watchdog ends its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Part of a request's head came, not the rest, within the header-read timeout.
    HeaderRead,
    /// Nothing came and nothing was in flight for the idle timeout.
    Idle,
}

/// What the watchdog saw at one look (taken from [`ConnState`], or made up in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// Requests in flight now.
    pub in_flight: usize,
    /// A request started or ended since the last look.
    pub request: bool,
    /// Bytes arrived since the last look.
    pub bytes: bool,
    /// The connection speaks h2.
    pub h2: bool,
}

impl ConnState {
    /// What happened since the last look (and forgets it).
    pub fn take(&self) -> Seen {
        Seen {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            request: self.request_seen.swap(false, Ordering::Relaxed),
            bytes: self.bytes_seen.swap(false, Ordering::Relaxed),
            h2: self.h2.load(Ordering::Relaxed),
        }
    }
}

/// A connection's timeouts, looked at every [`Watchdog::every`]. A deadline is counted from
/// the look that first saw its state, so a connection is closed no sooner than its timeout
/// after the state began, and at most two looks later.
#[derive(Debug)]
pub struct Watchdog {
    header_read: Duration,
    idle: Duration,
    idle_since: Instant,
    head_since: Option<Instant>,
}

impl Watchdog {
    /// A connection accepted at `now`: idle until something comes.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            header_read: limits.header_read,
            idle: limits.idle,
            idle_since: now,
            head_since: None,
        }
    }

    /// Time between looks: a quarter of the shorter timeout (at least 1 ms).
    pub fn every(&self) -> Duration {
        (self.header_read.min(self.idle) / 4).max(Duration::from_millis(1))
    }

    /// A look at `now`: whether the connection has run out of time.
    pub fn look(&mut self, now: Instant, seen: Seen) -> Option<Expired> {
        if seen.in_flight > 0 || seen.request {
            // Busy, or a request came and went since the last look.
            self.head_since = None;
            self.idle_since = now;
            return None;
        }
        // Bytes without a request: a head on its way (over h2 they are control frames, and
        // only the idle timeout applies).
        if seen.bytes && !seen.h2 && self.head_since.is_none() {
            self.head_since = Some(now);
        }
        match self.head_since {
            Some(since) if now.saturating_duration_since(since) >= self.header_read => {
                Some(Expired::HeaderRead)
            }
            Some(_) => None,
            None if now.saturating_duration_since(self.idle_since) >= self.idle => {
                Some(Expired::Idle)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(header_s: u64, idle_s: u64) -> Limits {
        Limits {
            header_read: Duration::from_secs(header_s),
            idle: Duration::from_secs(idle_s),
            max_body: 10,
            max_buffered: 20,
            upstream_header: Duration::from_secs(1),
            request: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_watchdog_tells_a_slow_head_from_an_idle_connection() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = Watchdog::new(&limits(10, 60), t0);
        assert_eq!(w.every(), Duration::from_millis(2500));
        // Idle: closed after 60 s, not before.
        assert_eq!(w.look(t0 + s(59), Seen::default()), None);
        assert_eq!(w.look(t0 + s(60), Seen::default()), Some(Expired::Idle));

        // Bytes and no request: the head's 10 s run from the look that saw them, and more
        // bytes (a slow drip) do not extend them.
        let mut w = Watchdog::new(&limits(10, 60), t0);
        let bytes = Seen {
            bytes: true,
            ..Seen::default()
        };
        assert_eq!(w.look(t0 + s(2), bytes), None);
        assert_eq!(w.look(t0 + s(11), bytes), None);
        assert_eq!(w.look(t0 + s(12), bytes), Some(Expired::HeaderRead));

        // A request in flight for longer than both timeouts: never closed; idle counts from
        // the last look that saw it.
        let mut w = Watchdog::new(&limits(10, 60), t0);
        let busy = Seen {
            in_flight: 1,
            bytes: true,
            ..Seen::default()
        };
        assert_eq!(w.look(t0 + s(5), bytes), None);
        assert_eq!(w.look(t0 + s(100), busy), None);
        let done = Seen {
            request: true,
            ..Seen::default()
        };
        assert_eq!(w.look(t0 + s(200), done), None);
        assert_eq!(w.look(t0 + s(259), Seen::default()), None);
        assert_eq!(w.look(t0 + s(260), Seen::default()), Some(Expired::Idle));

        // h2: frames without requests are not a head; only the idle timeout applies.
        let mut w = Watchdog::new(&limits(10, 60), t0);
        let h2 = Seen {
            bytes: true,
            h2: true,
            ..Seen::default()
        };
        assert_eq!(w.look(t0 + s(30), h2), None);
        assert_eq!(w.look(t0 + s(60), h2), Some(Expired::Idle));
    }

    #[test]
    fn a_reservation_takes_what_is_left_and_gives_it_back() {
        let budget = Gauge::default();
        let mut a = Reservation::new(&budget, 20);
        assert!(a.cover(12));
        assert!(a.cover(5), "already held");
        assert_eq!(a.held(), 12);
        let mut b = Reservation::new(&budget, 20);
        assert!(!b.cover(9));
        assert_eq!((b.held(), budget.get()), (0, 12));
        assert!(b.cover(8));
        assert_eq!(budget.get(), 20);
        assert!(!b.cover(u64::MAX));
        drop(a);
        assert_eq!(budget.get(), 8);
        drop(b);
        assert_eq!(budget.get(), 0);
        // Sent to the end, a buffered body gives its share back before it is dropped.
        let mut r = Reservation::new(&budget, 20);
        assert!(r.cover(3));
        let mut body = Buffered::new(Bytes::from_static(b"abc"), r);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let frame = http_body::Body::poll_frame(Pin::new(&mut body), &mut cx);
        assert!(matches!(frame, Poll::Ready(Some(Ok(_)))));
        assert_eq!(budget.get(), 3);
        let end = http_body::Body::poll_frame(Pin::new(&mut body), &mut cx);
        assert!(matches!(end, Poll::Ready(None)));
        assert_eq!(budget.get(), 0);
    }
}
