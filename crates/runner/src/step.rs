//! One engine run ("step") of a scenario: its request log, its stop conditions, its progress
//! line, and its results — one per stage inside it and one for the whole step.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use inferbench_config::{Config, Scenario, Target};
use inferbench_loadgen::client::Client;
use inferbench_loadgen::engine::{self, Level, Live, Load, Plan, Retry, Shard, Source};
use inferbench_loadgen::log::{LogSummary, LogWriter, RequestLog};
use inferbench_loadgen::recorder::Recorded;
use inferbench_results::run::{RunResult, SloLimits};
use inferbench_results::suite::{LOG_INCOMPLETE, StageReport};
use inferbench_timer::unix_now_s;
use inferbench_workload::arrivals::Arrival;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::Options;
use crate::client::redact;

/// One engine run: what to label it and what to run.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name in the report (`steady`, `stages`, `rate 12.5`, an arm's name …).
    pub name: String,
    /// The engine's load.
    pub load: Load,
    /// How long, for a flat load.
    pub duration: Option<Duration>,
    /// How many measured requests, when counted instead of timed.
    pub requests: Option<u64>,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Names of the stages inside a staged run.
    pub stage_names: Vec<String>,
    /// Added to the request log's file name (an arm's window: each gets its own file).
    pub log_tag: String,
}

impl Step {
    /// A flat step with no stages, timed by `duration`.
    pub fn flat(name: String, load: Load, duration: Duration, warmup: Duration) -> Self {
        Step {
            name,
            load,
            duration: Some(duration),
            requests: None,
            warmup,
            stage_names: Vec::new(),
            log_tag: String::new(),
        }
    }

    /// The one step of a scenario whose load kind is a single engine run (flat, stages, users):
    /// its `requests` and warm-up are the scenario's; `duration` only for a flat load (staged
    /// loads last as long as their stages).
    pub fn whole(
        ctx: &Ctx<'_>,
        name: &str,
        load: Load,
        duration: Option<Duration>,
        stage_names: Vec<String>,
    ) -> Self {
        Step {
            name: name.to_string(),
            load,
            duration,
            requests: ctx.requests,
            warmup: ctx.warmup,
            stage_names,
            log_tag: String::new(),
        }
    }

    /// Planned measured seconds: the stages' sum, the duration, or (counted) `measured_s`.
    fn planned_measured_s(&self, measured_s: f64) -> f64 {
        match &self.load {
            Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => {
                stages.iter().map(|l| l.duration.as_secs_f64()).sum::<f64>()
            }
            _ => self.duration.map_or(measured_s, |d| d.as_secs_f64()),
        }
    }

    /// The instants, from `measured_from`, where a window starts: the measured time's start
    /// and each later stage's.
    fn window_edges(&self, measured_from: tokio::time::Instant) -> Vec<tokio::time::Instant> {
        let mut edges = vec![measured_from];
        if let Load::OpenStages { stages, .. } | Load::ClosedStages { stages } = &self.load {
            let mut at = measured_from;
            for l in stages.iter().take(stages.len().saturating_sub(1)) {
                at += l.duration;
                edges.push(at);
            }
        }
        edges
    }

    /// How long it runs, warm-up included, when that is known in advance.
    fn total_time(&self) -> Option<Duration> {
        match &self.load {
            Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => {
                Some(stages.iter().map(|l| l.duration).sum::<Duration>() + self.warmup)
            }
            _ => self.duration.map(|d| d + self.warmup),
        }
    }
}

/// Everything a scenario's engine runs share.
pub struct Ctx<'a> {
    /// The file (for relative paths and request sources).
    pub config: &'a Config,
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The target.
    pub target: &'a Target,
    /// The client (its connection pool is kept across steps).
    pub client: Client,
    /// The requests to send.
    pub source: Source,
    /// Where they go (comma-separated; unredacted).
    pub urls: String,
    /// How to run.
    pub opts: &'a Options,
    /// Per-request SLO limits for goodput.
    pub slo: Option<SloLimits>,
    /// The seed of the requests' randomness.
    pub seed: u64,
    /// Poisson or constant arrivals, for open loops.
    pub arrival: Arrival,
    /// Warm-up (scaled).
    pub warmup: Duration,
    /// `duration` (scaled).
    pub duration: Option<Duration>,
    /// `requests` (scaled).
    pub requests: Option<u64>,
    /// Which part of the plan this process sends (`run --shard I/N`).
    pub shard: Shard,
    /// When the schedule starts (shards of one run share it); `None`: right away.
    pub start_at: Option<tokio::time::Instant>,
    /// The watched processes' sampler, if any are watched.
    pub sampler: Option<Arc<crate::watch::Sampler>>,
    /// The model servers' metrics sampler, if their side is measured.
    pub servers: Option<Arc<crate::server_metrics::ServerSampler>>,
    /// The trace replayed, if the workload is one.
    pub trace: Option<Arc<crate::trace::TraceRun>>,
    /// Engine runs started with this context so far (later ones get prompts of their own).
    pub steps_run: std::sync::atomic::AtomicU32,
}

/// How far ahead of now a schedule starts: the engine is set up and the first request built
/// before it is due (a first request late by the engine's own start-up is not the target's).
const SCHEDULE_LEAD: Duration = Duration::from_millis(20);

/// How long before a window's edge the servers are scraped: their counts then hold nothing of
/// the window's first request.
const EDGE_LEAD: Duration = Duration::from_millis(10);

/// A label for a load: `rate 10.00/s poisson`, `concurrency 4`, `3 rate stages`.
pub fn load_label(load: &Load) -> String {
    match load {
        Load::Open { rate, arrival } => {
            let kind = if *arrival == Arrival::Poisson {
                "poisson"
            } else {
                "constant"
            };
            format!("rate {rate:.2}/s {kind}")
        }
        Load::Closed { concurrency } => format!("concurrency {concurrency}"),
        Load::OpenStages { stages, .. } => format!("{} rate stages", stages.len()),
        Load::ClosedStages { stages } => format!("{} concurrency stages", stages.len()),
        Load::Trace { offsets_us } => format!("trace, {} requests", offsets_us.len()),
    }
}

/// A label for a stage's level: `rate 5.00`, `users 0.00→8.00`.
fn level_label(prefix: &str, l: &Level) -> String {
    if (l.from - l.to).abs() < 1e-9 {
        format!("{prefix} {:.2}", l.to)
    } else {
        format!("{prefix} {:.2}→{:.2}", l.from, l.to)
    }
}

/// `s` with every character but ASCII letters, digits, `-` and `_` replaced by `_` (file names).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Opens the step's request log, if the run keeps logs. A log that cannot be opened does not
/// stop the run; the error is returned for the report.
fn open_log(ctx: &Ctx<'_>, step: &Step) -> (Option<RequestLog>, Option<LogWriter>, Option<String>) {
    let Some(dir) = &ctx.opts.log_dir else {
        return (None, None, None);
    };
    let name = format!(
        "requests-{}-{}{}.jsonl",
        sanitize(&ctx.scenario.name),
        sanitize(&step.name),
        step.log_tag
    );
    match RequestLog::create(&dir.join(name)) {
        Ok((l, w)) => (Some(l), Some(w), None),
        Err(e) => {
            eprintln!("warning: no request log: {e}");
            (None, None, Some(e.to_string()))
        }
    }
}

/// Watches the global stop (Ctrl-C) and the scenario's stop condition; sends on `step_tx` when
/// either ends the step. A tripped stop condition leaves its reason in `tripped`.
fn watch_stops(
    s: &Scenario,
    mut global: watch::Receiver<bool>,
    live: Arc<Live>,
    step_tx: watch::Sender<bool>,
    tripped: Arc<Mutex<Option<String>>>,
) -> tokio::task::JoinHandle<()> {
    let cond = s.stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                changed = global.changed() => {
                    if changed.is_err() || *global.borrow() {
                        let _ = step_tx.send(true);
                        return;
                    }
                }
                _ = tick.tick() => {
                    let Some(c) = &cond else { continue };
                    let done = live.done.load(Ordering::Relaxed);
                    let errors = live.errors.load(Ordering::Relaxed);
                    if done >= c.min_requests.unwrap_or(20).max(1)
                        && errors as f64 / done as f64 > c.error_rate.0
                    {
                        *tripped.lock() = Some(format!(
                            "stopped early: error rate {:.1}% over {done} requests exceeded the stop condition ({:.1}%)",
                            errors as f64 * 100.0 / done as f64,
                            c.error_rate.0 * 100.0
                        ));
                        let _ = step_tx.send(true);
                        return;
                    }
                }
            }
        }
    })
}

/// What every result of one step shares.
struct Finish<'a> {
    /// The watched processes' sampler.
    sampler: Option<&'a crate::watch::Sampler>,
    /// The model servers' sampler, and when its last mark was taken (after the last request).
    servers: Option<(
        &'a crate::server_metrics::ServerSampler,
        tokio::time::Instant,
    )>,
    /// Planned measured seconds of the whole step (its stages' sum).
    planned_s: f64,
    /// When the step's measured time began.
    measured_from: tokio::time::Instant,
    urls: &'a str,
    started: u64,
    /// The invocation was stopped (not a stop condition).
    partial: bool,
    tripped: Option<String>,
    open_loop: bool,
    log: LogSummary,
}

impl Finish<'_> {
    /// A stage's (or, `whole`, the step's) report from its recording. Only the step's own
    /// result carries the request log's outcome (the log is one per step).
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        name: String,
        r: Recorded,
        offset_s: f64,
        duration_s: f64,
        load: String,
        target_rate: Option<f64>,
        whole: bool,
    ) -> StageReport {
        let mut result = r.into_run_result(&redact(self.urls), &load);
        // This stage's part of the measured time: `offset_s` after it began.
        let from = self.measured_from + Duration::from_secs_f64(offset_s.max(0.0));
        let to = from + Duration::from_secs_f64(duration_s.max(0.0));
        result.windows = vec![[crate::promql::unix_of(from), crate::promql::unix_of(to)]];
        if let Some(sampler) = self.sampler {
            result.processes = sampler.usage(from, to);
        }
        if let Some((servers, ended)) = self.servers {
            // The last part runs until its last request ended: the servers count it then.
            let last = whole || offset_s + duration_s + 1e-6 >= self.planned_s;
            result.server = servers.view(from, if last { ended } else { to });
            for p in servers.problems() {
                if !result.warnings.contains(&p) {
                    result.warnings.push(p);
                }
            }
        }
        // With the servers' metrics or their per-request timings: where the TTFT went.
        result.decompose();
        if let Some(d) = &result.decomposition {
            result.warnings.extend(d.warnings.iter().cloned());
        }
        result.started_unix_s = self.started;
        result.duration_s = duration_s;
        result.target_rate = target_rate;
        // A stop condition ends the scenario, not the invocation: not partial.
        result.partial = self.partial;
        if let Some(t) = &self.tripped {
            result.warnings.push(t.clone());
        }
        if whole {
            result.client.log_dropped = self.log.dropped;
            result.client.log_error = self.log.error.clone();
        } else {
            result.client.log_dropped = 0;
            result.client.log_error = None;
        }
        health_warnings(&mut result, self.open_loop);
        StageReport { name, result }
    }
}

/// Runs one step; returns one result per stage inside it (one for a flat load) and the
/// result of the whole step.
pub async fn run_step(
    ctx: &Ctx<'_>,
    step: Step,
    stop: watch::Receiver<bool>,
) -> (Vec<StageReport>, RunResult) {
    let s = ctx.scenario;
    let (log, writer, log_open_error) = open_log(ctx, &step);
    let mut plan = Plan {
        load: step.load.clone(),
        duration: step.duration,
        requests: step.requests,
        warmup: step.warmup,
        max_in_flight: s.max_in_flight.unwrap_or(10_000).max(1) as usize,
        seed: ctx.seed,
        log,
        retry: Retry {
            attempts: s.retries.unwrap_or(0),
            backoff: s.retry_backoff.map_or(Duration::from_millis(100), |d| d.0),
        },
        slo: ctx.slo,
        shard: ctx.shard,
        start_at: ctx.start_at,
    };
    let live = Arc::new(Live {
        observer: ctx
            .opts
            .live_metrics
            .as_ref()
            .map(|m| m.observer(&s.name.value)),
        ..Live::default()
    });
    if let Some(m) = &ctx.opts.live_metrics {
        m.track(&live);
    }
    let total_time = step.total_time();
    if ctx.opts.progress {
        eprintln!(
            "▶ {} · {} · {}{}",
            s.name.value,
            step.name,
            load_label(&step.load),
            total_time.map_or(String::new(), |d| format!(" · {:.0} s", d.as_secs_f64()))
        );
    }
    let progress = ctx
        .opts
        .progress
        .then(|| crate::progress::spawn(live.clone(), total_time, step.requests));
    let started = unix_now_s();
    // The schedule starts here, known to the engine, so every window (stages, watched
    // processes, Prometheus, the servers) lines up with the requests planned in it. The first
    // body is built before (it loads the tokenizer), as the engine would.
    let _ = ctx.client.body(&(ctx.source)(0));
    // Each later engine run of the scenario (a sweep's or a stress test's next step) sends
    // prompts of its own: with the first step's prompts again, a server's prefix cache would
    // serve the later steps from cache and flatter them. A trace's requests are the trace's.
    let nth = ctx
        .steps_run
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let source: inferbench_loadgen::engine::Source = if nth == 0 || ctx.trace.is_some() {
        ctx.source.clone()
    } else {
        let inner = ctx.source.clone();
        let offset = u64::from(nth) << 40;
        Arc::new(move |k| inner(k.wrapping_add(offset)))
    };
    // When the measured time begins (the schedule's start, then the warm-up).
    // A window that starts at once is marked on the servers first: the schedule (and so the
    // window) starts after that scrape, not during it. The mark comes after the tokenizer is
    // loaded (which can take a second on a busy machine): a mark taken before it would be
    // farther from the edge than the next 1 s scrape, which can fall inside the window.
    let marked_first = match &ctx.servers {
        Some(servers) if ctx.start_at.is_none() && step.warmup <= EDGE_LEAD => {
            servers.mark().await;
            true
        }
        _ => false,
    };
    let schedule_start = ctx
        .start_at
        .unwrap_or_else(|| tokio::time::Instant::now() + SCHEDULE_LEAD);
    plan.start_at = Some(schedule_start);
    let measured_from = schedule_start + step.warmup;
    // The servers are scraped at each window's edge, just before it, so each window's counts
    // are its own; a window that starts now is marked before the first request goes.
    let mut edges = step.window_edges(measured_from);
    if marked_first {
        edges.remove(0);
    }
    if let Some(w) = &ctx.sampler {
        // The watched processes are read at each edge too (their CPU is interpolated there).
        w.mark();
    }
    let edge_marks = (ctx.servers.is_some() || ctx.sampler.is_some()).then(|| {
        let (servers, watched) = (ctx.servers.clone(), ctx.sampler.clone());
        tokio::spawn(async move {
            for at in edges {
                tokio::time::sleep_until(at.checked_sub(EDGE_LEAD).unwrap_or(at)).await;
                if let Some(w) = &watched {
                    w.mark();
                }
                if let Some(s) = &servers {
                    s.mark().await;
                }
            }
        })
    });
    // The run stops on the global stop (Ctrl-C) or on the scenario's stop condition.
    let (step_tx, step_rx) = watch::channel(false);
    let tripped: Arc<Mutex<Option<String>>> = Arc::default();
    let watcher = watch_stops(s, stop, live.clone(), step_tx, tripped.clone());
    let out = engine::run(
        ctx.client.clone(),
        source,
        plan,
        live,
        step_rx,
        Duration::from_secs(5),
    )
    .await;
    watcher.abort();
    let tripped = tripped.lock().take();
    if let Some(p) = progress {
        p.abort();
        let _ = p.await;
    }
    // Every line the engine queued is in by now: the writer says what reached the file.
    let log = match writer {
        Some(w) => w.finish(),
        None => LogSummary {
            error: log_open_error,
            ..LogSummary::default()
        },
    };
    if let Some(s) = &ctx.sampler {
        s.mark();
    }
    if let Some(h) = edge_marks {
        h.abort();
    }
    let ended = match &ctx.servers {
        Some(s) => Some(s.mark().await),
        None => None,
    };
    let finish = Finish {
        sampler: ctx.sampler.as_deref(),
        servers: ctx.servers.as_deref().zip(ended),
        planned_s: step.planned_measured_s(out.measured_s),
        measured_from,
        urls: &ctx.urls,
        started,
        partial: out.stopped && tripped.is_none(),
        tripped,
        open_loop: matches!(
            step.load,
            Load::Open { .. } | Load::OpenStages { .. } | Load::Trace { .. }
        ),
        log,
    };
    let mut reports = stage_reports(&finish, &step, &out.stages);
    let target_rate = match &step.load {
        Load::Open { rate, .. } => Some(*rate),
        // A trace's mean rate over its span.
        Load::Trace { offsets_us } => match (offsets_us.first(), offsets_us.last()) {
            (Some(a), Some(b)) if b > a && offsets_us.len() > 1 => {
                Some((offsets_us.len() - 1) as f64 * 1e6 / (b - a) as f64)
            }
            _ => None,
        },
        _ => None,
    };
    let whole = finish.report(
        step.name.clone(),
        out.recorded,
        0.0,
        out.measured_s,
        load_label(&step.load),
        target_rate,
        true,
    );
    if reports.is_empty() {
        reports.push(whole.clone());
    }
    (reports, whole.result)
}

/// The reports of a staged step's stages (none for a step with one stage).
fn stage_reports(finish: &Finish<'_>, step: &Step, stages: &[Recorded]) -> Vec<StageReport> {
    if stages.len() <= 1 {
        return Vec::new();
    }
    let levels: &[Level] = match &step.load {
        Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => stages,
        _ => &[],
    };
    let open = matches!(step.load, Load::OpenStages { .. });
    let mut reports = Vec::new();
    let mut offset_s = 0.0;
    for (i, st) in stages.iter().enumerate() {
        let lv = levels.get(i).copied();
        let name = step
            .stage_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("stage {}", i + 1));
        let d = lv.map_or(0.0, |l| l.duration.as_secs_f64());
        let label = lv.map_or(String::new(), |l| {
            level_label(if open { "rate" } else { "users" }, &l)
        });
        let target_rate = lv
            .filter(|l| open && (l.from - l.to).abs() < 1e-9)
            .map(|l| l.to);
        let mut part = st.clone();
        // CPU is measured for the whole run only.
        part.client.cpu_seconds = 0.0;
        part.client.sent = 0;
        reports.push(finish.report(name, part, offset_s, d, label, target_rate, false));
        offset_s += d;
    }
    reports
}

/// Adds the client-health warnings a reader must see (the request log's outcome is read from
/// `r.client`).
pub fn health_warnings(r: &mut RunResult, open_loop: bool) {
    let lag = r.client.dispatch_lag.summary();
    if open_loop && lag.p99_us > 1000 {
        r.warnings.push(format!(
            "the client fell behind its schedule: dispatch lag p99 {:.2} ms (latencies from the planned instant include it)",
            lag.p99_us as f64 / 1000.0
        ));
    }
    if r.client.retries > 0 {
        r.warnings.push(format!(
            "{} retries were made (latencies count from each request's first attempt)",
            r.client.retries
        ));
    }
    if r.client.dropped > 0 {
        r.warnings.push(format!(
            "{} arrivals were dropped at the in-flight cap",
            r.client.dropped
        ));
    }
    if r.total.counts.interrupted > 0 {
        r.warnings.push(format!(
            "{} requests were still in flight when the run stopped: they are in no figure (sent = warm-up + requests + interrupted)",
            r.total.counts.interrupted
        ));
    }
    match (&r.client.log_error, r.client.log_dropped) {
        (Some(e), n) => r
            .warnings
            .push(format!("{LOG_INCOMPLETE}: {n} lines not written; {e}")),
        (None, n) if n > 0 => r.warnings.push(format!(
            "{LOG_INCOMPLETE}: {n} lines dropped (the disk did not keep up)"
        )),
        _ => {}
    }
}

/// `d` × `scale`; a non-zero duration stays at least 1 ms.
pub fn scaled(d: Duration, scale: f64) -> Duration {
    if d.is_zero() {
        return d;
    }
    Duration::from_secs_f64((d.as_secs_f64() * scale).max(0.001))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_load() {
        let open = Load::Open {
            rate: 12.5,
            arrival: Arrival::Poisson,
        };
        assert_eq!(load_label(&open), "rate 12.50/s poisson");
        assert_eq!(
            load_label(&Load::Closed { concurrency: 4 }),
            "concurrency 4"
        );
        let ramp = Level {
            duration: Duration::from_secs(1),
            from: 0.0,
            to: 8.0,
        };
        assert_eq!(level_label("users", &ramp), "users 0.00→8.00");
        let flat = Level {
            from: 5.0,
            to: 5.0,
            ..ramp
        };
        assert_eq!(level_label("rate", &flat), "rate 5.00");
    }

    #[test]
    fn scaling_keeps_short_durations_alive() {
        assert_eq!(scaled(Duration::ZERO, 0.1), Duration::ZERO);
        assert_eq!(scaled(Duration::from_secs(10), 0.1), Duration::from_secs(1));
        assert_eq!(
            scaled(Duration::from_millis(5), 0.0001),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn log_names_are_file_safe() {
        assert_eq!(sanitize("rate 12.5/s"), "rate_12_5_s");
        assert_eq!(sanitize("a-b_c"), "a-b_c");
    }

    #[test]
    fn health_warnings_say_what_was_lost() {
        let mut r = RunResult::empty("http://x", "rate");
        r.client.retries = 2;
        r.client.dropped = 3;
        r.total.counts.interrupted = 4;
        r.client.log_dropped = 5;
        health_warnings(&mut r, true);
        assert_eq!(r.warnings.len(), 4, "{:?}", r.warnings);
        assert!(r.warnings[0].starts_with("2 retries"));
        assert!(r.warnings[1].starts_with("3 arrivals were dropped"));
        assert!(r.warnings[2].starts_with("4 requests were still in flight"));
        assert!(r.warnings[3].starts_with(LOG_INCOMPLETE));
    }
}
