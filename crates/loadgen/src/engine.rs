//! The engine: sends each request at its planned instant (open loop) or keeps N in flight (closed
//! loop), records every outcome, and stops on time, on a request count, or when told to.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use inferbench_timer::Deadline;
use inferbench_workload::arrivals::{Arrival, Schedule};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{Client, RequestSpec};
use crate::log::RequestLog;
use crate::recorder::Recorded;

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Requests at `rate` per second, spaced by `arrival`, whatever the server does.
    Open {
        /// Requests per second.
        rate: f64,
        /// Spacing.
        arrival: Arrival,
    },
    /// Exactly `concurrency` requests in flight; each user sends again when its answer ends.
    Closed {
        /// Users.
        concurrency: usize,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The load.
    pub load: Load,
    /// Measured time (after warm-up); `None` with `requests` set.
    pub duration: Option<Duration>,
    /// Most requests to send in all (warm-up included).
    pub requests: Option<u64>,
    /// Time at the start whose requests are sent but not counted.
    pub warmup: Duration,
    /// Open loop: most requests in flight; arrivals beyond it are dropped and counted.
    pub max_in_flight: usize,
    /// Seed of the schedule.
    pub seed: u64,
    /// Where per-request lines go, if anywhere.
    pub log: Option<RequestLog>,
    /// Retries of failed requests.
    pub retry: Retry,
}

/// Retries of failed requests: connect errors, 429, 5xx and streams that broke before any token.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Retry {
    /// Retries per request (0: none).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
}

fn retryable(kind: &crate::client::ErrorKind) -> bool {
    use crate::client::ErrorKind;
    match kind {
        ErrorKind::Connect | ErrorKind::BrokenStream => true,
        ErrorKind::Http { status, .. } => *status == 429 || *status >= 500,
        ErrorKind::Timeout { .. } | ErrorKind::Protocol { .. } => false,
    }
}

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests finished.
    pub done: AtomicU64,
    /// Requests failed.
    pub errors: AtomicU64,
    /// In flight now.
    pub in_flight: AtomicU64,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The statistics.
    pub recorded: Recorded,
    /// Measured seconds (from the end of warm-up to the last completion or the stop).
    pub measured_s: f64,
    /// True if the run was stopped before its plan was done.
    pub stopped: bool,
}

/// Makes request number `k` (deterministic in `k`).
pub type Source = Arc<dyn Fn(u64) -> RequestSpec + Send + Sync>;

struct Shared {
    client: Client,
    source: Source,
    recorded: Mutex<Recorded>,
    live: Arc<Live>,
    start: Instant,
    warmup_end: Instant,
    log: Option<RequestLog>,
    retry: Retry,
    retries: AtomicU64,
}

impl Shared {
    async fn one(&self, k: u64, planned: Instant) {
        let spec = (self.source)(k);
        let body = self.client.body(&spec);
        let mut outcome = self.client.send(&spec, body.clone()).await;
        let first_sent = outcome.sent;
        let mut attempt = 0;
        while attempt < self.retry.attempts
            && outcome
                .error
                .as_ref()
                .is_some_and(|(kind, _)| retryable(kind))
        {
            // Exponential backoff: base, 2 × base, 4 × base, …
            tokio::time::sleep(self.retry.backoff * 2u32.saturating_pow(attempt)).await;
            attempt += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            outcome = self.client.send(&spec, body.clone()).await;
        }
        // Latency counts from the first attempt: retries are time the user waited.
        outcome.sent = first_sent;
        self.live.done.fetch_add(1, Ordering::Relaxed);
        if outcome.error.is_some() {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        let warmup = planned < self.warmup_end;
        if let Some(log) = &self.log {
            let rel = |t: Instant| t.saturating_duration_since(self.start).as_micros() as u64;
            log.write(&RequestLog::line(
                k,
                &spec.model,
                &outcome,
                rel,
                rel(planned),
                warmup,
            ));
        }
        let mut r = self.recorded.lock();
        if warmup {
            r.warmup_requests += 1;
        } else {
            r.record(planned, &spec.model, &outcome);
        }
    }
}

/// Runs `plan`. `stop` turning true ends dispatching at once; requests in flight then get
/// `grace` to finish before they are abandoned (and the run is marked stopped).
pub async fn run(
    client: Client,
    source: Source,
    plan: Plan,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> RunOutput {
    // Build one request before the clock starts: the first call loads the tokenizer, which must
    // not show up as the first requests' dispatch lag.
    let _ = client.body(&source(0));
    let start = Instant::now() + Duration::from_millis(2);
    let warmup_end = start + plan.warmup;
    let end = plan.duration.map(|d| warmup_end + d);
    let shared = Arc::new(Shared {
        client,
        source,
        recorded: Mutex::new(Recorded::default()),
        live,
        start,
        warmup_end,
        log: plan.log.clone(),
        retry: plan.retry,
        retries: AtomicU64::new(0),
    });
    let stopped = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let cap = plan.requests.unwrap_or(u64::MAX);
    let cpu0 = process_cpu_s();

    match plan.load {
        Load::Open { rate, arrival } => {
            let mut deadline = Deadline::new(start, true);
            for (k, offset_us) in Schedule::new(arrival, rate, plan.seed).enumerate() {
                let k = k as u64;
                let planned = start + Duration::from_micros(offset_us);
                if k >= cap || end.is_some_and(|e| planned >= e) {
                    break;
                }
                tokio::select! {
                    _ = deadline.sleep_until(planned) => {}
                    _ = stop.wait_for(|s| *s) => { stopped.store(true, Ordering::Relaxed); break; }
                }
                let in_flight = shared.live.in_flight.load(Ordering::Relaxed);
                if in_flight >= plan.max_in_flight as u64 {
                    if planned >= warmup_end {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let now_in = shared.live.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                peak.fetch_max(now_in, Ordering::Relaxed);
                shared.live.sent.fetch_add(1, Ordering::Relaxed);
                let s = shared.clone();
                tasks.spawn(async move {
                    s.one(k, planned).await;
                    s.live.in_flight.fetch_sub(1, Ordering::Relaxed);
                });
                // Reap finished tasks so the set stays small on long runs.
                while tasks.try_join_next().is_some() {}
            }
        }
        Load::Closed { concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency {
                let (s, next, stopped, peak) =
                    (shared.clone(), next.clone(), stopped.clone(), peak.clone());
                let mut stop = stop.clone();
                tasks.spawn(async move {
                    tokio::time::sleep_until(start).await;
                    loop {
                        if *stop.borrow() {
                            stopped.store(true, Ordering::Relaxed);
                            break;
                        }
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let planned = Instant::now();
                        if k >= cap || end.is_some_and(|e| planned >= e) {
                            break;
                        }
                        let now_in = s.live.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                        peak.fetch_max(now_in, Ordering::Relaxed);
                        s.live.sent.fetch_add(1, Ordering::Relaxed);
                        tokio::select! {
                            _ = s.one(k, planned) => {}
                            _ = stop.wait_for(|s| *s) => {
                                stopped.store(true, Ordering::Relaxed);
                                s.live.in_flight.fetch_sub(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        s.live.in_flight.fetch_sub(1, Ordering::Relaxed);
                    }
                });
            }
        }
    }

    // Let what is in flight finish; on a stop, for at most `grace`.
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        _ = drain => {}
        _ = async {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            stopped.store(true, Ordering::Relaxed);
        }
    }
    tasks.abort_all();
    let finished = Instant::now();
    let measured_s = match end {
        Some(e) if !stopped.load(Ordering::Relaxed) => {
            (e.min(finished) - warmup_end.min(e)).as_secs_f64()
        }
        _ => finished.saturating_duration_since(warmup_end).as_secs_f64(),
    };
    let live_sent = shared.live.sent.load(Ordering::Relaxed);
    let retries = shared.retries.load(Ordering::Relaxed);
    let mut recorded = std::mem::take(&mut *shared.recorded.lock());
    // Tasks are gone; dropping the shared state closes the log's channel.
    drop(shared);
    recorded.client.peak_in_flight = peak.load(Ordering::Relaxed);
    recorded.client.dropped = dropped.load(Ordering::Relaxed);
    recorded.client.cpu_seconds = process_cpu_s() - cpu0;
    recorded.client.sent = live_sent;
    recorded.client.retries = retries;
    RunOutput {
        recorded,
        measured_s,
        stopped: stopped.load(Ordering::Relaxed),
    }
}

/// CPU seconds (user + system) used by this process so far (Linux; 0 elsewhere).
pub fn process_cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
