//! Sub-millisecond deadlines for tokio tasks: the mock's token release and the load generator's
//! dispatcher.
//!
//! tokio's timer wheel has millisecond resolution and fires up to ~1–2 ms late; a simulated server
//! that is meant to answer with TTFT exactly 50 ms, or a dispatcher that must send at the planned
//! instant, cannot be that coarse. One background thread
//! keeps a heap of deadlines and wakes each task at its instant (futex timeouts: tens of µs).
//! Tests that pause tokio's clock use [`Deadline::Tokio`] instead, so they stay deterministic.
//!
//! Also the project's one reading of the wall clock, [`unix_now_s`], for stamps (never for
//! measuring: durations come from monotonic instants).

#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The one place the project's clocks are made: a real thread's deadlines (std's Instant) and
// the wall clock.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};
use tokio::time::{Instant, Sleep};

/// Time since the Unix epoch, for stamps (zero if the clock is before 1970).
pub fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whole seconds since the Unix epoch, for stamping results and answers (`created`).
pub fn unix_now_s() -> u64 {
    unix_now().as_secs()
}

struct Entry {
    at: std::time::Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

struct Wheel {
    heap: Mutex<(BinaryHeap<Entry>, u64)>,
    cond: Condvar,
    /// The thread could not be started: wake at once and let polls re-check the time.
    failed: std::sync::atomic::AtomicBool,
}

/// Threads of servers run in the same process as a client (the embedded mock fleet) carry this
/// name prefix, so the client can leave their CPU out of its own figure.
pub const SERVER_THREAD_PREFIX: &str = "ib-server";

fn start_wheel(name: String) -> &'static Wheel {
    let wheel: &'static Wheel = Box::leak(Box::new(Wheel {
        heap: Mutex::new((BinaryHeap::new(), 0)),
        cond: Condvar::new(),
        failed: std::sync::atomic::AtomicBool::new(false),
    }));
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(wheel));
    if spawned.is_err() {
        // Without the thread nothing would fire: fall back to waking at once (polls re-check time).
        wheel
            .failed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!("inferbench: cannot start a timer thread; timing falls back to polling");
    }
    wheel
}

/// The wheel of clients (the load generator's dispatcher).
static CLIENT_WHEEL: LazyLock<&'static Wheel> =
    LazyLock::new(|| start_wheel("inferbench-timer".into()));
/// The wheel of servers (the mock's token release), on its own thread.
static SERVER_WHEEL: LazyLock<&'static Wheel> =
    LazyLock::new(|| start_wheel(format!("{SERVER_THREAD_PREFIX}-timer")));

/// Which timer thread a precise deadline uses: clients and servers in one process each get
/// their own, so neither's CPU or wake-ups count as the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A load generator.
    Client,
    /// A simulated server.
    Server,
}

fn run(wheel: &'static Wheel) {
    let mut due = Vec::new();
    let mut g = wheel.heap.lock();
    loop {
        let now = std::time::Instant::now();
        while g.0.peek().is_some_and(|e| e.at <= now) {
            if let Some(e) = g.0.pop() {
                due.push(e.waker);
            }
        }
        if !due.is_empty() {
            drop(g);
            for w in due.drain(..) {
                w.wake();
            }
            g = wheel.heap.lock();
            continue;
        }
        match g.0.peek().map(|e| e.at) {
            Some(at) => {
                let _ = wheel.cond.wait_until(&mut g, at);
            }
            None => wheel.cond.wait(&mut g),
        }
    }
}

fn register(side: Side, at: std::time::Instant, waker: &Waker) {
    let wheel = match side {
        Side::Client => *CLIENT_WHEEL,
        Side::Server => *SERVER_WHEEL,
    };
    if wheel.failed.load(std::sync::atomic::Ordering::Relaxed) {
        waker.wake_by_ref();
        return;
    }
    let mut g = wheel.heap.lock();
    let earliest = g.0.peek().is_none_or(|e| at < e.at);
    g.1 += 1;
    let seq = g.1;
    g.0.push(Entry {
        at,
        seq,
        waker: waker.clone(),
    });
    drop(g);
    if earliest {
        wheel.cond.notify_one();
    }
}

/// A resettable point in time to wait for.
pub enum Deadline {
    /// tokio's timer (millisecond resolution; follows a paused clock).
    Tokio(Pin<Box<Sleep>>),
    /// A precise timer thread (real time).
    Precise {
        /// When.
        at: Instant,
        /// Whether a wake-up for `at` is already registered.
        armed: bool,
        /// Which timer thread.
        side: Side,
    },
}

impl Deadline {
    /// A client's deadline at `at`, precise or on tokio's timer.
    pub fn new(at: Instant, precise: bool) -> Self {
        Self::on(Side::Client, at, precise)
    }

    /// A deadline at `at` on `side`'s timer thread (precise) or on tokio's timer.
    pub fn on(side: Side, at: Instant, precise: bool) -> Self {
        if precise {
            Deadline::Precise {
                at,
                armed: false,
                side,
            }
        } else {
            Deadline::Tokio(Box::pin(tokio::time::sleep_until(at)))
        }
    }

    /// Moves the deadline.
    pub fn reset(&mut self, to: Instant) {
        match self {
            Deadline::Tokio(s) => s.as_mut().reset(to),
            Deadline::Precise { at, armed, .. } => {
                if *at != to {
                    *at = to;
                    *armed = false;
                }
            }
        }
    }

    /// Ready once the deadline has passed.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Deadline::Tokio(s) => s.as_mut().poll(cx),
            Deadline::Precise { at, armed, side } => {
                if Instant::now() >= *at {
                    return Poll::Ready(());
                }
                if !*armed {
                    register(*side, at.into_std(), cx.waker());
                    *armed = true;
                }
                Poll::Pending
            }
        }
    }

    /// Waits until `to`.
    pub async fn sleep_until(&mut self, to: Instant) {
        self.reset(to);
        std::future::poll_fn(|cx| self.poll(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn precise_deadlines_fire_in_order_and_not_early() {
        let start = Instant::now();
        let mut handles = Vec::new();
        for i in (1..=20u64).rev() {
            handles.push(tokio::spawn(async move {
                let at = start + Duration::from_micros(700 * i);
                let mut d = Deadline::new(at, true);
                d.sleep_until(at).await;
                (i, Instant::now() >= at)
            }));
        }
        for h in handles {
            let (i, not_early) = h.await.unwrap();
            assert!(not_early, "deadline {i} fired early");
        }
    }
}
