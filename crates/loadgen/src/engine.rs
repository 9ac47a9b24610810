//! The engine: sends each request at its planned instant (open loop) or keeps N in flight (closed
//! loop), records every outcome, and stops on time, on a request count, or when told to.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use inferbench_timer::Deadline;
use inferbench_workload::arrivals::{Arrival, ProfileSchedule, RateSegment, Schedule};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{Client, RequestSpec};
use crate::log::RequestLog;
use crate::recorder::Recorded;

/// Open or closed loop.
#[derive(Debug, Clone, PartialEq)]
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
    /// Open loop through stages: each stage's rate, ramping linearly from `from` to `to`.
    OpenStages {
        /// Spacing.
        arrival: Arrival,
        /// The stages, in order; their durations replace `Plan::duration`.
        stages: Vec<Level>,
    },
    /// Closed loop through stages: the number of users, ramping linearly (users are added and
    /// retired between requests, never cut off mid-request).
    ClosedStages {
        /// The stages, in order; their durations replace `Plan::duration`.
        stages: Vec<Level>,
    },
}

/// One stage of a staged load: `duration` in which the level (rate or users) goes linearly from
/// `from` to `to` (equal for a flat stage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Length.
    pub duration: Duration,
    /// Level at the start.
    pub from: f64,
    /// Level at the end.
    pub to: f64,
}

impl Load {
    /// The stages of this load (one for a flat load), for per-stage results.
    pub fn stages(&self) -> usize {
        match self {
            Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => stages.len().max(1),
            _ => 1,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The load.
    pub load: Load,
    /// Measured time (after warm-up); `None` with `requests` set.
    pub duration: Option<Duration>,
    /// Most measured requests to send (warm-up requests come on top).
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
    /// Per-request limits for goodput (requests meeting all of them are counted as good).
    pub slo: Option<inferbench_results::run::SloLimits>,
}

/// Retries of failed requests: connect errors, 429, 5xx, HTTP 200 error answers and streams
/// that broke before any token (never a stream that had already delivered tokens: the user saw
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Retry {
    /// Retries per request (0: none).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
}

fn retryable(o: &crate::client::Outcome) -> bool {
    use crate::client::ErrorKind;
    let Some((kind, _)) = &o.error else {
        return false;
    };
    match kind {
        ErrorKind::Connect { .. } => true,
        ErrorKind::BrokenStream { .. } | ErrorKind::Http200Error { .. } => o.first_token.is_none(),
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
    /// The statistics of all measured requests.
    pub recorded: Recorded,
    /// The statistics per stage (one entry for a flat load), by planned instant.
    pub stages: Vec<Recorded>,
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
    /// End instant of each stage (the last may be far away for an unbounded flat load).
    stage_ends: Vec<Instant>,
    stages: Mutex<Vec<Recorded>>,
    /// The planned end of the measured window (`None`: until the last completion).
    window_end: Option<Instant>,
    /// µs from `start` at which the run was told to stop; `u64::MAX` until then.
    stop_at_us: AtomicU64,
    /// Requests in flight when the run ended (warm-up ones included).
    interrupted: AtomicU64,
}

impl Shared {
    /// Sends request `k` (with its retries) and records it; a conversation's follow-up turns
    /// are sent after it, each recorded as a request of its own.
    async fn one(&self, k: u64, planned: Instant) {
        let mut spec = (self.source)(k);
        // `spec.follow_ups` stays non-empty while the answer's text is needed for a next turn.
        let follow_ups = spec.follow_ups.clone();
        let think = spec.think_time;
        let mut planned = planned;
        let mut turn = 0usize;
        loop {
            if turn >= follow_ups.len() {
                spec.follow_ups.clear();
            }
            // Counted as interrupted if the run is stopped while it is in flight (the task is
            // aborted and the guard dropped).
            let guard = InFlight {
                shared: self,
                planned,
                armed: true,
            };
            let outcome = self.attempts(&spec).await;
            guard.disarm();
            let ok = outcome.error.is_none();
            let text = outcome.text.clone();
            self.finish(k, planned, &spec, outcome);
            if !ok || turn >= follow_ups.len() {
                break;
            }
            // The next turn carries the whole conversation so far.
            spec.history
                .push(("user".into(), std::mem::take(&mut spec.prompt)));
            spec.history
                .push(("assistant".into(), text.unwrap_or_default()));
            spec.prompt = follow_ups[turn].clone();
            turn += 1;
            if !think.is_zero() {
                tokio::time::sleep(think).await;
            }
            // A follow-up is planned when the user sends it: it waits on the answer, not on
            // the schedule.
            planned = Instant::now();
            self.live.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn attempts(&self, spec: &RequestSpec) -> crate::client::Outcome {
        let body = self.client.body(spec);
        let mut outcome = self.client.send(spec, body.clone()).await;
        let first_sent = outcome.sent;
        let mut attempt = 0;
        while attempt < self.retry.attempts && retryable(&outcome) {
            // Exponential backoff: base, 2 × base, 4 × base, …
            tokio::time::sleep(self.retry.backoff * 2u32.saturating_pow(attempt)).await;
            attempt += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            let reconnects = outcome.reconnects;
            outcome = self.client.send(spec, body.clone()).await;
            outcome.reconnects += reconnects;
        }
        // Latency counts from the first attempt: retries are time the user waited.
        outcome.sent = first_sent;
        outcome
    }

    fn finish(
        &self,
        k: u64,
        planned: Instant,
        spec: &RequestSpec,
        outcome: crate::client::Outcome,
    ) {
        self.live.done.fetch_add(1, Ordering::Relaxed);
        if outcome.error.is_some() {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        let warmup = planned < self.warmup_end;
        self.count_completion(&spec.model, &outcome);
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
        if warmup {
            self.recorded.lock().warmup_requests += 1;
            return;
        }
        let stage = self.stage_of(planned);
        self.recorded.lock().record(planned, &spec.model, &outcome);
        if self.stage_ends.len() > 1
            && let Some(r) = self.stages.lock().get_mut(stage)
        {
            r.record(planned, &spec.model, &outcome);
        }
    }
}

/// A request in flight: dropped without [`InFlight::disarm`] (its task aborted at a stop), it is
/// counted as interrupted.
struct InFlight<'a> {
    shared: &'a Shared,
    planned: Instant,
    armed: bool,
}

impl InFlight<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.interrupted(self.planned);
        }
    }
}

impl Shared {
    /// A request planned at `planned` was still in flight when the run ended.
    fn interrupted(&self, planned: Instant) {
        self.interrupted.fetch_add(1, Ordering::Relaxed);
        if planned < self.warmup_end {
            return;
        }
        self.recorded.lock().total.counts.interrupted += 1;
        if self.stage_ends.len() > 1 {
            let stage = self.stage_of(planned);
            if let Some(r) = self.stages.lock().get_mut(stage) {
                r.total.counts.interrupted += 1;
            }
        }
    }

    /// The stage an instant falls in (the last one past the end).
    fn stage_of(&self, at: Instant) -> usize {
        self.stage_ends
            .iter()
            .position(|e| at < *e)
            .unwrap_or(self.stage_ends.len().saturating_sub(1))
    }

    /// Counts a completion toward throughput if it ended inside the measured window: after
    /// warm-up, before the planned end and before a stop.
    fn count_completion(&self, model: &str, o: &crate::client::Outcome) {
        if o.end < self.warmup_end {
            return;
        }
        let stop_us = self.stop_at_us.load(Ordering::Relaxed);
        if stop_us != u64::MAX && o.end >= self.start + Duration::from_micros(stop_us) {
            return;
        }
        if self.window_end.is_some_and(|e| o.end >= e) {
            return;
        }
        self.recorded.lock().record_completion(model, o);
        if self.stage_ends.len() > 1 {
            let stage = self.stage_of(o.end);
            if let Some(r) = self.stages.lock().get_mut(stage) {
                r.record_completion(model, o);
            }
        }
    }

    /// Notes the instant the run was told to stop (the first time only).
    fn note_stop(&self) {
        let us = Instant::now()
            .saturating_duration_since(self.start)
            .as_micros()
            .min(u128::from(u64::MAX - 1)) as u64;
        let _ =
            self.stop_at_us
                .compare_exchange(u64::MAX, us, Ordering::Relaxed, Ordering::Relaxed);
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
    // Staged loads last as long as their stages; flat ones as long as the plan says.
    let levels: Vec<Level> = match &plan.load {
        Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => stages.clone(),
        _ => Vec::new(),
    };
    let end = if levels.is_empty() {
        plan.duration.map(|d| warmup_end + d)
    } else {
        Some(warmup_end + levels.iter().map(|l| l.duration).sum::<Duration>())
    };
    let mut stage_ends = Vec::new();
    let mut t = warmup_end;
    for l in &levels {
        t += l.duration;
        stage_ends.push(t);
    }
    if stage_ends.is_empty() {
        stage_ends.push(end.unwrap_or(warmup_end + Duration::from_secs(100 * 365 * 86_400)));
    }
    let n_stages = stage_ends.len();
    let fresh = || Recorded {
        slo: plan.slo,
        ..Recorded::default()
    };
    let shared = Arc::new(Shared {
        client,
        source,
        recorded: Mutex::new(Recorded {
            timeline_origin: Some(warmup_end),
            ..fresh()
        }),
        live,
        start,
        warmup_end,
        log: plan.log.clone(),
        retry: plan.retry,
        retries: AtomicU64::new(0),
        stage_ends,
        stages: Mutex::new((0..n_stages).map(|_| fresh()).collect()),
        window_end: end,
        stop_at_us: AtomicU64::new(u64::MAX),
        interrupted: AtomicU64::new(0),
    });
    let stopped = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    // The request cap counts measured requests: warm-up ones come on top.
    let cap = plan.requests.unwrap_or(u64::MAX);
    let measured = Arc::new(AtomicU64::new(0));
    let cpu0 = process_cpu_s();

    // Open loop: planned offsets from the start (warm-up included).
    let open: Option<Box<dyn Iterator<Item = u64> + Send>> = match &plan.load {
        Load::Open { rate, arrival } => Some(Box::new(Schedule::new(*arrival, *rate, plan.seed))),
        Load::OpenStages { arrival, stages } => {
            let mut segs = Vec::new();
            if !plan.warmup.is_zero() {
                // Warm up at the first stage's level (its end level when it ramps from zero).
                let first = stages
                    .first()
                    .map_or(0.0, |l| if l.from > 0.0 { l.from } else { l.to });
                segs.push(RateSegment {
                    duration_s: plan.warmup.as_secs_f64(),
                    from: first,
                    to: first,
                });
            }
            segs.extend(stages.iter().map(|l| RateSegment {
                duration_s: l.duration.as_secs_f64(),
                from: l.from,
                to: l.to,
            }));
            Some(Box::new(ProfileSchedule::new(*arrival, segs, plan.seed)))
        }
        _ => None,
    };

    if let Some(schedule) = open {
        let mut deadline = Deadline::new(start, true);
        for (k, offset_us) in schedule.enumerate() {
            let k = k as u64;
            // However high the rate, the dispatcher lets other tasks (signal handlers, the
            // stop) run: past-due arrivals never wait, so nothing else would yield.
            if k % 256 == 255 {
                tokio::task::yield_now().await;
                if *stop.borrow() {
                    shared.note_stop();
                    stopped.store(true, Ordering::Relaxed);
                    break;
                }
            }
            let planned = start + Duration::from_micros(offset_us);
            if end.is_some_and(|e| planned >= e) {
                break;
            }
            if planned >= warmup_end && measured.fetch_add(1, Ordering::Relaxed) >= cap {
                break;
            }
            tokio::select! {
                _ = deadline.sleep_until(planned) => {}
                _ = stop.wait_for(|s| *s) => {
                    shared.note_stop();
                    stopped.store(true, Ordering::Relaxed);
                    break;
                }
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
    } else {
        // Closed loop: a controller keeps `want` users alive; user i runs while i < want.
        let level = |at: Instant| -> usize {
            match &plan.load {
                Load::Closed { concurrency } => *concurrency,
                Load::ClosedStages { stages } => {
                    let mut t0 = warmup_end;
                    if at < warmup_end {
                        let first = stages
                            .first()
                            .map_or(0.0, |l| if l.from > 0.0 { l.from } else { l.to });
                        return first.round().max(0.0) as usize;
                    }
                    for l in stages {
                        let t1 = t0 + l.duration;
                        if at < t1 {
                            let f = (at - t0).as_secs_f64() / l.duration.as_secs_f64().max(1e-9);
                            return (l.from + (l.to - l.from) * f).round().max(0.0) as usize;
                        }
                        t0 = t1;
                    }
                    stages.last().map_or(0, |l| l.to.round().max(0.0) as usize)
                }
                _ => 0,
            }
        };
        let want = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let alive: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicU64::new(0));
        let exhausted = Arc::new(AtomicBool::new(false));
        tokio::time::sleep_until(start).await;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            let now = Instant::now();
            if end.is_some_and(|e| now >= e) || exhausted.load(Ordering::Relaxed) {
                break;
            }
            if *stop.borrow() {
                shared.note_stop();
                stopped.store(true, Ordering::Relaxed);
                break;
            }
            let w = level(now);
            want.store(w, Ordering::Relaxed);
            {
                let mut alive_now = alive.lock();
                if alive_now.len() < w {
                    alive_now.resize(w, false);
                }
                for (i, a) in alive_now.iter_mut().enumerate().take(w) {
                    if *a {
                        continue;
                    }
                    *a = true;
                    let measured = measured.clone();
                    let (s, next, stopped, peak, want, alive, exhausted) = (
                        shared.clone(),
                        next.clone(),
                        stopped.clone(),
                        peak.clone(),
                        want.clone(),
                        alive.clone(),
                        exhausted.clone(),
                    );
                    let stop = stop.clone();
                    tasks.spawn(async move {
                        loop {
                            if *stop.borrow() {
                                s.note_stop();
                                stopped.store(true, Ordering::Relaxed);
                                break;
                            }
                            if i >= want.load(Ordering::Relaxed) {
                                break;
                            }
                            let planned = Instant::now();
                            if end.is_some_and(|e| planned >= e) {
                                break;
                            }
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if planned >= warmup_end
                                && measured.fetch_add(1, Ordering::Relaxed) >= cap
                            {
                                exhausted.store(true, Ordering::Relaxed);
                                break;
                            }
                            let now_in = s.live.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                            peak.fetch_max(now_in, Ordering::Relaxed);
                            s.live.sent.fetch_add(1, Ordering::Relaxed);
                            // A stop lets the request in flight finish (within the run's grace,
                            // then the drain aborts it): what completes is recorded.
                            s.one(k, planned).await;
                            s.live.in_flight.fetch_sub(1, Ordering::Relaxed);
                        }
                        if let Some(a) = alive.lock().get_mut(i) {
                            *a = false;
                        }
                    });
                }
            }
            while tasks.try_join_next().is_some() {}
            if tasks.is_empty() && w > 0 {
                // Every user has ended (request cap reached): nothing more to do.
                break;
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        // No new users; those running finish their current request and stop.
        want.store(0, Ordering::Relaxed);
    }

    // Let what is in flight finish; on a stop, for at most `grace`.
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        _ = drain => {}
        _ = async {
            let _ = stop.wait_for(|s| *s).await;
            shared.note_stop();
            tokio::time::sleep(grace).await;
        } => {
            stopped.store(true, Ordering::Relaxed);
        }
    }
    let finished = Instant::now();
    // What is still in flight is aborted; each aborted request's guard counts it as
    // interrupted once its task is gone.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    // Measured time ends at the stop (a stop's grace is not measured time), at the planned
    // end, or at the last completion.
    let stop_us = shared.stop_at_us.load(Ordering::Relaxed);
    let stop_at = (stop_us != u64::MAX).then(|| start + Duration::from_micros(stop_us));
    let window_end = [end, stop_at, Some(finished)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(finished);
    let measured_s = window_end
        .saturating_duration_since(warmup_end)
        .as_secs_f64();
    let live_sent = shared.live.sent.load(Ordering::Relaxed);
    let retries = shared.retries.load(Ordering::Relaxed);
    let interrupted = shared.interrupted.load(Ordering::Relaxed);
    let mut recorded = std::mem::take(&mut *shared.recorded.lock());
    let mut stages = std::mem::take(&mut *shared.stages.lock());
    // Tasks are gone; dropping the shared state closes the log's channel.
    drop(shared);
    recorded.client.peak_in_flight = peak.load(Ordering::Relaxed);
    recorded.client.dropped = dropped.load(Ordering::Relaxed);
    recorded.client.cpu_seconds = process_cpu_s() - cpu0;
    recorded.client.sent = live_sent;
    recorded.client.retries = retries;
    recorded.client.interrupted = interrupted;
    if stages.len() <= 1 {
        // A flat load: its one stage is the whole run.
        stages = vec![Recorded {
            total: recorded.total.clone(),
            by_model: recorded.by_model.clone(),
            by_endpoint: recorded.by_endpoint.clone(),
            misrouted: recorded.misrouted,
            client: recorded.client.clone(),
            warmup_requests: recorded.warmup_requests,
            slo: recorded.slo,
            timeline_origin: None,
            timeline: Default::default(),
        }];
    }
    RunOutput {
        recorded,
        stages,
        measured_s,
        stopped: stopped.load(Ordering::Relaxed),
    }
}

/// Threads that are not the client's: an in-process mock fleet's runtime (see
/// `inferbench-scenario`'s embedded fleet). Their CPU is left out of the client's figure.
pub const NOT_CLIENT_THREAD_PREFIX: &str = inferbench_timer::SERVER_THREAD_PREFIX;

/// CPU seconds (user + system) used by this process so far, leaving out threads whose name
/// starts with [`NOT_CLIENT_THREAD_PREFIX`] (Linux; 0 elsewhere).
pub fn process_cpu_s() -> f64 {
    let total = stat_cpu_s(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    (total - threads_cpu_s(|name| name.starts_with(NOT_CLIENT_THREAD_PREFIX))).max(0.0)
}

/// CPU seconds of this process's threads whose name satisfies `pick` (Linux; 0 elsewhere).
pub fn threads_cpu_s(pick: impl Fn(&str) -> bool) -> f64 {
    let mut total = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if pick(comm.trim_end()) {
                total +=
                    stat_cpu_s(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default());
            }
        }
    }
    total
}

/// User + system CPU seconds from the text of a `/proc/…/stat` file.
pub fn stat_cpu_s(s: &str) -> f64 {
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ErrorKind, Outcome, Side};

    fn failed(kind: ErrorKind, tokens: usize) -> Outcome {
        let t = Instant::now();
        let mut o = Outcome::new(t);
        o.first_token = (tokens > 0).then_some(t);
        o.token_events = vec![t; tokens];
        o.error = Some((kind, Side::Connection));
        o
    }

    #[test]
    fn only_failures_before_the_first_token_are_retried() {
        let broken = || ErrorKind::BrokenStream {
            detail: "reset".into(),
        };
        assert!(retryable(&failed(broken(), 0)));
        // The user already saw tokens: sending again would count a different answer.
        assert!(!retryable(&failed(broken(), 3)));
        let overloaded = || ErrorKind::Http200Error {
            message: "overloaded".into(),
        };
        assert!(retryable(&failed(overloaded(), 0)));
        assert!(!retryable(&failed(overloaded(), 1)));
        assert!(retryable(&failed(
            ErrorKind::Connect {
                detail: "refused".into()
            },
            0
        )));
        for (status, want) in [(429, true), (503, true), (400, false), (404, false)] {
            let k = ErrorKind::Http {
                status,
                body: String::new(),
            };
            assert_eq!(retryable(&failed(k, 0)), want, "{status}");
        }
        let timeout = ErrorKind::Timeout {
            phase: "stall".into(),
        };
        assert!(!retryable(&failed(timeout, 2)));
        let mut ok = failed(broken(), 0);
        ok.error = None;
        assert!(!retryable(&ok));
    }
}
