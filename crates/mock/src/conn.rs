//! The connection layer of one instance: accepting, serving HTTP/1 and HTTP/2 with hyper, and
//! what a plain `axum::serve` cannot do — closing connections that send headers too slowly or sit
//! idle too long, and the connection-level faults (close after each response, answers that are
//! not HTTP at all).
//!
//! Each connection has a [`ConnCtl`] shared by three parties: the IO wrapper ([`ConnIo`]) reports
//! bytes read and carries out the garbage fault, the service wrapper counts requests in flight,
//! and a watchdog future next to the hyper connection closes it when a deadline passes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, Version, header};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the garbage fault writes instead of an HTTP response: an SSH banner.
pub const GARBAGE: &[u8] = b"SSH-2.0-inferbench-mock garbage\r\n\r\n";

/// Connection settings of one instance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Complete request headers within this, from the opening or a later request's first byte.
    pub header_read_timeout: Option<Duration>,
    /// Close after this long with no request in flight.
    pub idle_timeout: Option<Duration>,
    /// Close after every response (while saying keep-alive).
    pub close_after_response: bool,
}

#[derive(Debug)]
struct ConnState {
    /// Requests whose response has not been sent to the end.
    in_flight: usize,
    /// When the connection last had no request in flight (opened, or the last response ended).
    idle_since: Instant,
    /// When the client began sending a request head that is not complete yet.
    head_since: Option<Instant>,
    /// The connection speaks HTTP/2 (its reads are frames, not heads).
    h2: bool,
    /// A response ended and the connection is to be closed.
    close: bool,
}

/// State shared by a connection's IO, its service and its watchdog.
#[derive(Debug)]
pub(crate) struct ConnCtl {
    state: Mutex<ConnState>,
    wake: Notify,
    garbage: AtomicBool,
    /// A response ended under `close_after_response`: read nothing more.
    closing: AtomicBool,
    close_after_response: bool,
}

impl ConnCtl {
    fn new(close_after_response: bool) -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(ConnState {
                in_flight: 0,
                idle_since: now,
                // A new connection owes its first request head from the start.
                head_since: Some(now),
                h2: false,
                close: false,
            }),
            wake: Notify::new(),
            garbage: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close_after_response,
        }
    }

    /// From now on the connection answers with [`GARBAGE`] and closes, whatever hyper writes.
    pub(crate) fn send_garbage(&self) {
        self.garbage.store(true, Ordering::Release);
    }

    fn on_read(&self) {
        let mut st = self.state.lock();
        if st.in_flight == 0 && st.head_since.is_none() && !st.h2 {
            st.head_since = Some(Instant::now());
            drop(st);
            self.wake.notify_one();
        }
    }

    fn begin(self: &Arc<Self>, version: Version) -> FlightGuard {
        {
            let mut st = self.state.lock();
            st.in_flight += 1;
            st.head_since = None;
            st.h2 |= version == Version::HTTP_2;
        }
        self.wake.notify_one();
        FlightGuard { ctl: self.clone() }
    }
}

/// A request in flight; dropped when its response body has been sent (or abandoned).
struct FlightGuard {
    ctl: Arc<ConnCtl>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        {
            let mut st = self.ctl.state.lock();
            st.in_flight = st.in_flight.saturating_sub(1);
            if st.in_flight == 0 {
                st.idle_since = Instant::now();
            }
            if self.ctl.close_after_response {
                st.close = true;
                self.ctl.closing.store(true, Ordering::Release);
            }
        }
        self.ctl.wake.notify_one();
    }
}

/// Why the watchdog ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Headers too slow, or idle too long: drop the connection at once.
    Timeout,
    /// A response ended under `close_after_response`: finish writing, then close.
    AfterResponse,
}

async fn watchdog(ctl: Arc<ConnCtl>, limits: ConnLimits) -> Why {
    loop {
        let notified = ctl.wake.notified();
        let deadline = {
            let st = ctl.state.lock();
            if st.close {
                return Why::AfterResponse;
            }
            let header = st
                .head_since
                .zip(limits.header_read_timeout)
                .and_then(|(t, d)| t.checked_add(d));
            let idle = if st.in_flight == 0 && st.head_since.is_none() {
                limits
                    .idle_timeout
                    .and_then(|d| st.idle_since.checked_add(d))
            } else {
                None
            };
            match (header, idle) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        match deadline {
            Some(d) if d <= Instant::now() => return Why::Timeout,
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(d) => {}
                    _ = notified => {}
                }
            }
            None => notified.await,
        }
    }
}

/// The TCP stream as hyper sees it: reads are reported to the watchdog, and once the garbage
/// fault is on, whatever hyper writes is replaced by [`GARBAGE`] and the stream is shut down.
struct ConnIo {
    inner: TcpStream,
    ctl: Arc<ConnCtl>,
    garbage_sent: usize,
    garbage_done: bool,
}

impl ConnIo {
    fn poll_garbage(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.garbage_sent < GARBAGE.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &GARBAGE[self.garbage_sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.garbage_sent += n;
        }
        if !self.garbage_done {
            // FIN after the garbage; the reads that follow report the end of the stream.
            let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
            self.garbage_done = true;
        }
        Poll::Ready(Ok(()))
    }

    fn garbage(&self) -> bool {
        self.ctl.garbage.load(Ordering::Acquire)
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // After the garbage, or a response that is to be the last: the client seems to have gone,
        // so no further request is read from this connection.
        if this.garbage_done || this.ctl.closing.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.ctl.on_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.garbage() {
            ready!(this.poll_garbage(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.garbage() {
            ready!(this.poll_garbage(cx))?;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.garbage() {
            return this.poll_garbage(cx);
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.garbage() {
            return this.poll_garbage(cx);
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The router, wrapped: counts requests in flight, hands handlers the [`ConnCtl`] (as a request
/// extension) and marks responses keep-alive under `close_after_response`.
#[derive(Clone)]
struct ConnService {
    router: TowerToHyperService<Router>,
    ctl: Arc<ConnCtl>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let guard = self.ctl.begin(req.version());
        let keep_alive_header = self.ctl.close_after_response && req.version() < Version::HTTP_2;
        req.extensions_mut().insert(self.ctl.clone());
        let fut = self.router.call(req);
        Box::pin(async move {
            let response = match fut.await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (mut parts, body) = response.into_parts();
            if keep_alive_header {
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
            }
            Ok(Response::from_parts(
                parts,
                TrackedBody {
                    inner: body,
                    _guard: guard,
                },
            ))
        })
    }
}

/// A response body that ends its request's flight when hyper is done with it.
struct TrackedBody {
    inner: Body,
    _guard: FlightGuard,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `stop` turns true (or its sender goes away), then lets the
/// open connections finish gracefully.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header timeouts are the watchdog's: hyper's would also cut idle keep-alive connections.
    builder.http1().header_read_timeout(None);
    let builder = Arc::new(builder);
    let mut conns = JoinSet::new();
    let stopped = stopped(stop.clone());
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(serve_conn(
                        tcp,
                        builder.clone(),
                        router.clone(),
                        limits,
                        stop.clone(),
                    ));
                }
                // Out of file descriptors and the like: give the system a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn serve_conn(
    tcp: TcpStream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
) {
    let ctl = Arc::new(ConnCtl::new(limits.close_after_response));
    let io = TokioIo::new(ConnIo {
        inner: tcp,
        ctl: ctl.clone(),
        garbage_sent: 0,
        garbage_done: false,
    });
    let service = ConnService {
        router: TowerToHyperService::new(router),
        ctl: ctl.clone(),
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let dog = watchdog(ctl, limits);
    tokio::pin!(dog);
    let stopped = stopped(stop);
    tokio::pin!(stopped);
    let mut closing = false;
    let mut stopping = false;
    loop {
        tokio::select! {
            biased;
            _ = conn.as_mut() => break,
            why = dog.as_mut(), if !closing => match why {
                // Dropping the connection closes the socket.
                Why::Timeout => break,
                Why::AfterResponse => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            },
            _ = &mut stopped, if !stopping => {
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}

/// Ready once `stop` is true or its sender is gone.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
