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

use crate::client::{Client, Outcome, RequestSpec};
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
    /// Open loop at given instants (a replayed trace): request k at `offsets_us[k]` µs from the
    /// start (warm-up included), in order.
    Trace {
        /// Planned offsets, µs, not decreasing.
        offsets_us: Arc<Vec<u64>>,
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
    /// Which part of the plan this process sends (the whole plan by default).
    pub shard: Shard,
    /// When the schedule starts (shards of one run share it); `None`: right away.
    pub start_at: Option<Instant>,
}

/// One of `count` processes sending one plan together (`run --shard I/N`): open loop, every
/// `count`-th arrival of the one schedule from `index` on, so the shards' arrivals together are
/// exactly the one-process schedule; closed loop, every `count`-th user, and an even share of a
/// request cap. Request `k`'s content is the same whichever shard sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether arrival (or user) `n` of the whole plan is this shard's.
    pub fn owns(self, n: u64) -> bool {
        n % u64::from(self.count.max(1)) == u64::from(self.index)
    }

    /// This shard's part of `total` (the parts of all shards add up to `total`).
    pub fn share(self, total: u64) -> u64 {
        let n = u64::from(self.count.max(1));
        total / n + u64::from(u64::from(self.index) < total % n)
    }
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

/// Sees every request as it finishes (e.g. the live `/metrics` of `run --metrics-listen`).
/// Called on the request's task: it must be quick and never block.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Request `model`, planned at `planned`, finished with `outcome`; `warmup` when it does
    /// not count in the results.
    fn finished(&self, planned: Instant, model: &str, outcome: &Outcome, warmup: bool);
}

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Told of every finished request, if set.
    pub observer: Option<Arc<dyn Observer>>,
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
        let spec = (self.source)(k);
        self.one_prepared(k, planned, spec, None).await;
    }

    /// The request `k` and its first body, built before it is due (so building them is not
    /// counted as lateness).
    fn prepare(&self, k: u64) -> (RequestSpec, bytes::Bytes) {
        let spec = (self.source)(k);
        let body = self.client.body(&spec);
        (spec, body)
    }

    /// Sends `spec` (its first turn's `body` already built, if given) and any later turns.
    async fn one_prepared(
        &self,
        k: u64,
        planned: Instant,
        mut spec: RequestSpec,
        mut body: Option<bytes::Bytes>,
    ) {
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
            let outcome = self.attempts(&spec, body.take()).await;
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

    async fn attempts(
        &self,
        spec: &RequestSpec,
        body: Option<bytes::Bytes>,
    ) -> crate::client::Outcome {
        let body = body.unwrap_or_else(|| self.client.body(spec));
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
        if let Some(obs) = &self.live.observer {
            obs.finished(planned, &spec.model, &outcome, warmup);
        }
        self.count_completion(&spec.model, &outcome);
        if let Some(log) = &self.log {
            let rel = |t: Instant| t.saturating_duration_since(self.start).as_micros() as u64;
            log.write(&RequestLog::line(
                k,
                spec,
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

/// The planned end of the measured window (`None`: until the request cap or a stop) and the end
/// instant of each stage (one far away for an unbounded flat load).
fn windows(plan: &Plan, warmup_end: Instant) -> (Option<Instant>, Vec<Instant>) {
    let levels: &[Level] = match &plan.load {
        Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => stages,
        _ => &[],
    };
    // Staged loads last as long as their stages; flat ones as long as the plan says.
    let end = if levels.is_empty() {
        plan.duration.map(|d| warmup_end + d)
    } else {
        Some(warmup_end + levels.iter().map(|l| l.duration).sum::<Duration>())
    };
    let mut stage_ends = Vec::new();
    let mut t = warmup_end;
    for l in levels {
        t += l.duration;
        stage_ends.push(t);
    }
    if stage_ends.is_empty() {
        stage_ends.push(end.unwrap_or(warmup_end + Duration::from_secs(100 * 365 * 86_400)));
    }
    (end, stage_ends)
}

/// The level a staged load starts from during warm-up: the first stage's, or its end level when
/// it ramps from zero.
fn warmup_level(stages: &[Level]) -> f64 {
    stages
        .first()
        .map_or(0.0, |l| if l.from > 0.0 { l.from } else { l.to })
}

/// Open loop: the planned offsets (µs from the start, warm-up included) of `plan`'s arrivals;
/// `None` for a closed loop.
fn open_schedule(plan: &Plan) -> Option<Box<dyn Iterator<Item = u64> + Send>> {
    match &plan.load {
        Load::Open { rate, arrival } => Some(Box::new(Schedule::new(*arrival, *rate, plan.seed))),
        Load::Trace { offsets_us } => {
            let o = offsets_us.clone();
            Some(Box::new((0..o.len()).map(move |i| o[i])))
        }
        Load::OpenStages { arrival, stages } => {
            let mut segs = Vec::new();
            if !plan.warmup.is_zero() {
                let first = warmup_level(stages);
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
    }
}

/// Closed loop: how many users `load` wants at `at` (stages ramp linearly; warm-up holds the
/// first stage's starting level).
fn users_at(load: &Load, warmup_end: Instant, at: Instant) -> usize {
    let users = |x: f64| x.round().max(0.0) as usize;
    match load {
        Load::Closed { concurrency } => *concurrency,
        Load::ClosedStages { stages } => {
            if at < warmup_end {
                return users(warmup_level(stages));
            }
            let mut t0 = warmup_end;
            for l in stages {
                let t1 = t0 + l.duration;
                if at < t1 {
                    let f = (at - t0).as_secs_f64() / l.duration.as_secs_f64().max(1e-9);
                    return users(l.from + (l.to - l.from) * f);
                }
                t0 = t1;
            }
            stages.last().map_or(0, |l| users(l.to))
        }
        _ => 0,
    }
}

/// What the dispatchers share: the run's state, its counters and its bounds.
#[derive(Clone)]
struct Dispatch {
    shared: Arc<Shared>,
    stopped: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    /// Measured requests started (warm-up ones are not counted).
    measured: Arc<AtomicU64>,
    /// Most measured requests: of the whole plan in an open loop (counted over every shard's
    /// arrivals), of this shard in a closed loop.
    cap: u64,
    end: Option<Instant>,
    shard: Shard,
}

impl Dispatch {
    /// Marks the run stopped by its `stop` signal.
    fn stop(&self) {
        self.shared.note_stop();
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether a request planned at `planned` may still start (inside the window and, when
    /// measured, under the cap — which it then takes a place of).
    fn admit(&self, planned: Instant) -> Admit {
        if self.end.is_some_and(|e| planned >= e) {
            return Admit::Ended;
        }
        if planned >= self.shared.warmup_end
            && self.measured.fetch_add(1, Ordering::Relaxed) >= self.cap
        {
            return Admit::Capped;
        }
        Admit::Yes
    }

    /// Counts a request that starts now in flight.
    fn start_one(&self) {
        let now_in = self.shared.live.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now_in, Ordering::Relaxed);
        self.shared.live.sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether a planned request may start.
#[derive(Debug, PartialEq)]
enum Admit {
    Yes,
    /// Past the planned end.
    Ended,
    /// The request cap is reached.
    Capped,
}

/// How long before an open-loop arrival is due its request is built.
const PREPARE_LEAD: Duration = Duration::from_millis(2);

/// Open loop: sends each arrival of `schedule` at its planned instant, whatever the server does.
async fn dispatch_open(
    d: &Dispatch,
    schedule: Box<dyn Iterator<Item = u64> + Send>,
    max_in_flight: usize,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &mut watch::Receiver<bool>,
) {
    let start = d.shared.start;
    let mut deadline = Deadline::new(start, true);
    for (k, offset_us) in schedule.enumerate() {
        let k = k as u64;
        // However high the rate, the dispatcher lets other tasks (signal handlers, the stop)
        // run: past-due arrivals never wait, so nothing else would yield.
        if k % 256 == 255 {
            tokio::task::yield_now().await;
            if *stop.borrow() {
                d.stop();
                break;
            }
        }
        let planned = start + Duration::from_micros(offset_us);
        if d.admit(planned) != Admit::Yes {
            break;
        }
        if !d.shard.owns(k) {
            // Another shard's arrival: it counts towards the cap, this process does not send it.
            continue;
        }
        // Woken a little early: the request and its body are built before it is due, then it
        // leaves at its instant (building a long prompt is not lateness).
        tokio::select! {
            _ = deadline.sleep_until(planned.checked_sub(PREPARE_LEAD).unwrap_or(planned)) => {}
            _ = stop.wait_for(|s| *s) => {
                d.stop();
                break;
            }
        }
        let dd = d.clone();
        let s = d.shared.clone();
        tasks.spawn(async move {
            let (spec, body) = s.prepare(k);
            Deadline::new(planned, true).sleep_until(planned).await;
            // Stopped before it was due: never sent, in no count.
            if dd.stopped.load(Ordering::Relaxed) {
                return;
            }
            if s.live.in_flight.load(Ordering::Relaxed) >= max_in_flight as u64 {
                if planned >= s.warmup_end {
                    dd.dropped.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            dd.start_one();
            s.one_prepared(k, planned, spec, Some(body)).await;
            s.live.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        // Reap finished tasks so the set stays small on long runs.
        while tasks.try_join_next().is_some() {}
    }
}

/// What the closed loop's users share.
#[derive(Clone)]
struct Users {
    /// Users wanted now; user i runs while i < want.
    want: Arc<std::sync::atomic::AtomicUsize>,
    /// Which users are running.
    alive: Arc<Mutex<Vec<bool>>>,
    /// The next request index.
    next: Arc<AtomicU64>,
    /// The request cap was reached.
    exhausted: Arc<AtomicBool>,
}

/// One closed-loop user: sends, waits for the answer, sends again, until it is not wanted, the
/// window ends, the cap is reached or the run stops.
async fn user(d: Dispatch, u: Users, i: usize, stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            d.stop();
            break;
        }
        if i >= u.want.load(Ordering::Relaxed) {
            break;
        }
        let planned = Instant::now();
        if d.end.is_some_and(|e| planned >= e) {
            break;
        }
        // Request numbers interleave across shards, so no two shards send the same request.
        let k = u.next.fetch_add(1, Ordering::Relaxed) * u64::from(d.shard.count.max(1))
            + u64::from(d.shard.index);
        match d.admit(planned) {
            Admit::Yes => {}
            Admit::Ended => break,
            Admit::Capped => {
                u.exhausted.store(true, Ordering::Relaxed);
                break;
            }
        }
        d.start_one();
        // A stop lets the request in flight finish (within the run's grace, then the drain
        // aborts it): what completes is recorded.
        d.shared.one(k, planned).await;
        d.shared.live.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
    if let Some(a) = u.alive.lock().get_mut(i) {
        *a = false;
    }
}

/// Closed loop: a controller keeps the wanted number of users alive, every 10 ms.
async fn dispatch_closed(
    d: &Dispatch,
    load: &Load,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &mut watch::Receiver<bool>,
) {
    let u = Users {
        want: Arc::default(),
        alive: Arc::default(),
        next: Arc::default(),
        exhausted: Arc::default(),
    };
    // A common start (`--start-at`) may be minutes away: a stop ends the wait.
    tokio::select! {
        _ = tokio::time::sleep_until(d.shared.start) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        let now = Instant::now();
        if d.end.is_some_and(|e| now >= e) || u.exhausted.load(Ordering::Relaxed) {
            break;
        }
        if *stop.borrow() {
            d.stop();
            break;
        }
        let w = users_at(load, d.shared.warmup_end, now);
        u.want.store(w, Ordering::Relaxed);
        {
            let mut alive_now = u.alive.lock();
            if alive_now.len() < w {
                alive_now.resize(w, false);
            }
            for (i, a) in alive_now.iter_mut().enumerate().take(w) {
                if !*a && d.shard.owns(i as u64) {
                    *a = true;
                    tasks.spawn(user(d.clone(), u.clone(), i, stop.clone()));
                }
            }
        }
        while tasks.try_join_next().is_some() {}
        let own = (0..w as u64).any(|i| d.shard.owns(i));
        if tasks.is_empty() && own {
            // Every user has ended (request cap reached): nothing more to do.
            break;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    // No new users; those running finish their current request and stop.
    u.want.store(0, Ordering::Relaxed);
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
    let start = plan
        .start_at
        .unwrap_or_else(|| Instant::now() + Duration::from_millis(2));
    let warmup_end = start + plan.warmup;
    let (end, stage_ends) = windows(&plan, warmup_end);
    let fresh = || Recorded {
        slo: plan.slo,
        ..Recorded::default()
    };
    let stages = Mutex::new((0..stage_ends.len()).map(|_| fresh()).collect());
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
        stages,
        window_end: end,
        stop_at_us: AtomicU64::new(u64::MAX),
        interrupted: AtomicU64::new(0),
    });
    let d = Dispatch {
        shared,
        stopped: Arc::default(),
        peak: Arc::default(),
        dropped: Arc::default(),
        measured: Arc::default(),
        // The request cap counts measured requests: warm-up ones come on top.
        cap: match (plan.requests, &plan.load) {
            (None, _) => u64::MAX,
            (Some(n), Load::Closed { .. } | Load::ClosedStages { .. }) => plan.shard.share(n),
            (Some(n), _) => n,
        },
        end,
        shard: plan.shard,
    };
    let cpu0 = process_cpu_s();
    let mut tasks = tokio::task::JoinSet::new();
    match open_schedule(&plan) {
        Some(schedule) => {
            dispatch_open(&d, schedule, plan.max_in_flight, &mut tasks, &mut stop).await;
        }
        None => dispatch_closed(&d, &plan.load, &mut tasks, &mut stop).await,
    }
    // Let what is in flight finish; on a stop, for at most `grace`.
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        _ = drain => {}
        _ = async {
            let _ = stop.wait_for(|s| *s).await;
            d.shared.note_stop();
            tokio::time::sleep(grace).await;
        } => {
            d.stopped.store(true, Ordering::Relaxed);
        }
    }
    let finished = Instant::now();
    // What is still in flight is aborted; each aborted request's guard counts it as
    // interrupted once its task is gone.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    finish(d, finished, process_cpu_s() - cpu0)
}

/// The run's output once every task is gone: measured time, the client's health, per stage.
fn finish(d: Dispatch, finished: Instant, cpu_seconds: f64) -> RunOutput {
    let Dispatch {
        shared,
        stopped,
        peak,
        dropped,
        end,
        ..
    } = d;
    // Measured time ends at the stop (a stop's grace is not measured time), at the planned
    // end, or at the last completion.
    let stop_us = shared.stop_at_us.load(Ordering::Relaxed);
    let stop_at = (stop_us != u64::MAX).then(|| shared.start + Duration::from_micros(stop_us));
    let window_end = [end, stop_at, Some(finished)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(finished);
    let measured_s = window_end
        .saturating_duration_since(shared.warmup_end)
        .as_secs_f64();
    let mut recorded = std::mem::take(&mut *shared.recorded.lock());
    let mut stages = std::mem::take(&mut *shared.stages.lock());
    recorded.client.peak_in_flight = peak.load(Ordering::Relaxed);
    recorded.client.dropped = dropped.load(Ordering::Relaxed);
    recorded.client.cpu_seconds = cpu_seconds;
    recorded.client.sent = shared.live.sent.load(Ordering::Relaxed);
    recorded.client.retries = shared.retries.load(Ordering::Relaxed);
    recorded.client.interrupted = shared.interrupted.load(Ordering::Relaxed);
    // Tasks are gone; dropping the shared state closes the log's channel.
    drop(shared);
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
            server_timing: recorded.server_timing.clone(),
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
    let total = inferbench_resources::own_cpu_s();
    let servers =
        inferbench_resources::threads_cpu_s(|name| name.starts_with(NOT_CLIENT_THREAD_PREFIX));
    (total - servers).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ErrorKind, Outcome, Side};

    fn level(secs: u64, from: f64, to: f64) -> Level {
        Level {
            duration: Duration::from_secs(secs),
            from,
            to,
        }
    }

    fn plan(load: Load, duration: Option<u64>) -> Plan {
        Plan {
            load,
            duration: duration.map(Duration::from_secs),
            requests: None,
            warmup: Duration::from_secs(1),
            max_in_flight: 10,
            seed: 1,
            log: None,
            retry: Retry::default(),
            slo: None,
            shard: Shard::default(),
            start_at: None,
        }
    }

    #[test]
    fn shards_partition_the_plan() {
        for count in [1u32, 2, 3, 4, 7] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            // Every arrival (or user) is exactly one shard's.
            for n in 0..100u64 {
                assert_eq!(
                    shards.iter().filter(|s| s.owns(n)).count(),
                    1,
                    "{n} of {count}"
                );
            }
            // Shares of a request cap add up to it, and differ by at most one.
            for total in [0u64, 1, 5, 80, 1001] {
                let parts: Vec<u64> = shards.iter().map(|s| s.share(total)).collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {count}");
                let (lo, hi) = (parts.iter().min(), parts.iter().max());
                assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{parts:?}");
            }
        }
        assert!(Shard::default().owns(12345));
    }

    #[test]
    fn stages_end_one_after_another() {
        let t = Instant::now();
        let staged = Load::ClosedStages {
            stages: vec![level(2, 0.0, 4.0), level(3, 4.0, 4.0)],
        };
        let (end, ends) = windows(&plan(staged, Some(99)), t);
        // The stages' durations replace the plan's.
        assert_eq!(end, Some(t + Duration::from_secs(5)));
        assert_eq!(
            ends,
            [t + Duration::from_secs(2), t + Duration::from_secs(5)]
        );
        let (end, ends) = windows(&plan(Load::Closed { concurrency: 1 }, Some(7)), t);
        assert_eq!((end, ends.len()), (Some(t + Duration::from_secs(7)), 1));
        // Unbounded (a request count): one stage that ends far away.
        let (end, ends) = windows(&plan(Load::Closed { concurrency: 1 }, None), t);
        assert!(end.is_none() && ends[0] > t + Duration::from_secs(86_400));
    }

    #[test]
    fn users_ramp_linearly_and_warm_up_at_the_first_level() {
        let t = Instant::now();
        let load = Load::ClosedStages {
            stages: vec![level(10, 0.0, 10.0), level(10, 10.0, 2.0)],
        };
        let at = |ms: u64| users_at(&load, t, t + Duration::from_millis(ms));
        // Warm-up holds the first stage's end level when it ramps from zero.
        assert_eq!(users_at(&load, t + Duration::from_secs(1), t), 10);
        assert_eq!([at(0), at(5_000), at(9_999)], [0, 5, 10]);
        assert_eq!([at(10_000), at(15_000), at(30_000)], [10, 6, 2]);
        assert_eq!(users_at(&Load::Closed { concurrency: 3 }, t, t), 3);
    }

    #[test]
    fn open_stages_warm_up_at_their_first_rate() {
        let staged = Load::OpenStages {
            arrival: Arrival::Constant,
            stages: vec![level(1, 0.0, 100.0)],
        };
        let offsets: Vec<u64> = open_schedule(&plan(staged, None))
            .expect("open")
            .take_while(|&us| us < 1_000_000)
            .collect();
        // One second of warm-up at 100/s.
        assert!((99..=101).contains(&offsets.len()), "{}", offsets.len());
        assert!(open_schedule(&plan(Load::Closed { concurrency: 1 }, None)).is_none());
    }

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
