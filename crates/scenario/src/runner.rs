//! Runs scenarios: each load kind becomes one or more engine runs, whose results become the
//! scenario's stages, total and verdicts (thresholds, SLO, breaking point).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};
use inferbench_loadgen::client::{Api, Client, ClientConfig};
use inferbench_loadgen::engine::{self, Level, Live, Load, Plan, Retry, Source};
use inferbench_loadgen::log::{LogSummary, RequestLog};
use inferbench_loadgen::recorder::Recorded;
use inferbench_results::report::{
    BreakingPoint, Check, LOG_INCOMPLETE, Report, ScenarioReport, SloReport, StageReport,
};
use inferbench_results::run::{RunResult, SCHEMA_VERSION, SloLimits};
use inferbench_workload::arrivals::Arrival;
use tokio::sync::watch;

use crate::config::{ApiKind, ArrivalKind, Config, ConfigError, Scenario, Target};
use crate::embedded::EmbeddedFleet;
use crate::threshold::{Metric, Threshold};

/// How to run a file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Multiplies every duration and request count (e.g. 0.1 for a quick check); 1 runs as
    /// written.
    pub scale: f64,
    /// Replaces every target's URL (several, comma-separated, are served in turn).
    pub url_override: Option<String>,
    /// Run only this scenario.
    pub only_scenario: Option<String>,
    /// Run only against this target.
    pub only_target: Option<String>,
    /// Write per-request JSONL logs here.
    pub log_dir: Option<PathBuf>,
    /// Print progress to stderr.
    pub progress: bool,
    /// Also write the config's path into the report.
    pub config_label: Option<String>,
    /// Run routing arms' routers as child processes of this executable (`EXE router …`), so
    /// their CPU and memory are their own; `None` runs them in-process on their own runtime.
    pub router_exe: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scale: 1.0,
            url_override: None,
            only_scenario: None,
            only_target: None,
            log_dir: None,
            progress: false,
            config_label: None,
            router_exe: None,
        }
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A scenario or target asked for on the command line does not exist.
    #[error("{0}")]
    Select(String),
    /// The client cannot be built (bad URL, key, header).
    #[error("target `{target}`: {message}")]
    Client {
        /// Target name.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// The embedded fleet did not start.
    #[error("cannot start the embedded mock fleet: {0}")]
    Embedded(String),
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Removes `user:password@` from each URL.
pub fn redact(urls: &str) -> String {
    urls.split(',')
        .map(|url| match (url.find("://"), url.find('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://{}", &url[..s], &url[at + 1..]),
            _ => url.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the suite of `c` (or every scenario once when it has no suite). `on_scenario` gets each
/// finished scenario (to print it and save progress); a stop ends the run early, with what
/// completed.
pub async fn run_suite(
    c: &Config,
    opts: &Options,
    stop: watch::Receiver<bool>,
    mut on_scenario: impl FnMut(&Report, &ScenarioReport),
) -> Result<Report, RunError> {
    // The plan: (scenario, target, repeat).
    let mut plan: Vec<(&Scenario, &Target, u32)> = Vec::new();
    let default_target = |s: &Scenario| -> Option<&Target> {
        match &s.target {
            Some(t) => c.target(t),
            None => c.file.targets.first(),
        }
    };
    if c.file.suite.is_empty() {
        for s in &c.file.scenarios {
            if let Some(t) = default_target(s) {
                plan.push((s, t, 1));
            }
        }
    } else {
        for e in &c.file.suite {
            let Some(s) = c.scenario(&e.scenario) else {
                continue;
            };
            let targets: Vec<&Target> = if e.targets.is_empty() {
                default_target(s).into_iter().collect()
            } else {
                e.targets.iter().filter_map(|t| c.target(t)).collect()
            };
            for t in targets {
                for rep in 1..=e.repeats.unwrap_or(1).max(1) {
                    plan.push((s, t, rep));
                }
            }
        }
    }
    if let Some(name) = &opts.only_scenario {
        if c.scenario(name).is_none() {
            return Err(RunError::Select(format!(
                "{}: no scenario named `{name}` (defined: {})",
                c.origin,
                c.file
                    .scenarios
                    .iter()
                    .map(|s| s.name.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        plan.retain(|(s, _, _)| *s.name == *name);
        if plan.is_empty()
            && let Some(s) = c.scenario(name)
            && let Some(t) = default_target(s)
        {
            plan.push((s, t, 1));
        }
    }
    if let Some(name) = &opts.only_target {
        let Some(t) = c.target(name) else {
            return Err(RunError::Select(format!(
                "{}: no target named `{name}`",
                c.origin
            )));
        };
        // Every planned scenario, once, against that target.
        let mut seen = Vec::new();
        plan = plan
            .into_iter()
            .filter(|(s, _, rep)| {
                let fresh = !seen.contains(&s.name.value);
                seen.push(s.name.value.clone());
                fresh && *rep == 1
            })
            .map(|(s, _, rep)| (s, t, rep))
            .collect();
    }

    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix_s: now_unix(),
        config: opts.config_label.clone().or_else(|| Some(c.origin.clone())),
        partial: false,
        scenarios: Vec::new(),
    };
    let mut embedded: Option<EmbeddedFleet> = None;
    for (s, t, rep) in plan {
        if *stop.borrow() {
            report.partial = true;
            break;
        }
        let urls = match (&opts.url_override, t.url.value.as_str()) {
            (Some(u), _) => u.clone(),
            (None, "embedded") => {
                if embedded.is_none() {
                    let fleet = EmbeddedFleet::start(&t.models)
                        .await
                        .map_err(RunError::Embedded)?;
                    embedded = Some(fleet);
                }
                embedded
                    .as_ref()
                    .map(|f| f.urls().join(","))
                    .unwrap_or_default()
            }
            (None, u) => u.to_string(),
        };
        let sr = run_scenario(c, s, t, &urls, rep, opts, stop.clone()).await?;
        let interrupted = sr.stages.iter().any(|st| st.result.partial);
        report.scenarios.push(sr);
        if let Some(last) = report.scenarios.last() {
            on_scenario(&report, last);
        }
        if interrupted {
            report.partial = true;
            break;
        }
    }
    if let Some(f) = embedded {
        f.shutdown().await;
    }
    Ok(report)
}

/// The client for target `t` at `urls`.
pub fn client_for(t: &Target, urls: &str) -> Result<Client, RunError> {
    let err = |message: String| RunError::Client {
        target: t.name.value.clone(),
        message,
    };
    let mut cfg = ClientConfig::new(urls);
    cfg.api = match t.api {
        ApiKind::Chat => Api::Chat,
        ApiKind::Completions => Api::Completions,
    };
    cfg.http2 = t.http2;
    if let Some(d) = t.timeout {
        cfg.total_timeout = d.0;
    }
    if let Some(d) = t.ttft_timeout {
        cfg.ttft_timeout = d.0;
    }
    if let Some(d) = t.stall_timeout {
        cfg.stall_timeout = d.0;
    }
    if let Some(var) = &t.api_key_env {
        let key = std::env::var(var).map_err(|_| {
            err(format!(
                "environment variable {var} (api_key_env) is not set"
            ))
        })?;
        cfg.api_key = Some(key);
    }
    for (k, v) in &t.headers {
        let name =
            HeaderName::try_from(k.as_str()).map_err(|_| err(format!("bad header name `{k}`")))?;
        let value = HeaderValue::try_from(v.as_str())
            .map_err(|_| err(format!("bad value for header {k}")))?;
        cfg.headers.push((name, value));
    }
    Client::new(&cfg).map_err(|e| err(e.to_string()))
}

/// One engine run: what to label it and what to run.
struct Step {
    name: String,
    load: Load,
    duration: Option<Duration>,
    requests: Option<u64>,
    warmup: Duration,
    /// Names of the stages inside a staged run.
    stage_names: Vec<String>,
    /// Added to the request log's file name (an arm's window: each gets its own file).
    log_tag: String,
}

/// Everything a scenario's engine runs share.
struct Ctx<'a> {
    client: Client,
    source: Source,
    scenario: &'a Scenario,
    urls: String,
    opts: &'a Options,
    slo: Option<SloLimits>,
    seed: u64,
}

fn load_label(load: &Load) -> String {
    match load {
        Load::Open { rate, arrival } => {
            format!(
                "rate {rate:.2}/s {}",
                if *arrival == Arrival::Poisson {
                    "poisson"
                } else {
                    "constant"
                }
            )
        }
        Load::Closed { concurrency } => format!("concurrency {concurrency}"),
        Load::OpenStages { stages, .. } => format!("{} rate stages", stages.len()),
        Load::ClosedStages { stages } => format!("{} concurrency stages", stages.len()),
    }
}

fn level_label(prefix: &str, l: &Level) -> String {
    if (l.from - l.to).abs() < 1e-9 {
        format!("{prefix} {:.2}", l.to)
    } else {
        format!("{prefix} {:.2}→{:.2}", l.from, l.to)
    }
}

/// Runs one step; returns one result per stage inside it (one for a flat load) and the
/// result of the whole step.
async fn run_step(
    ctx: &Ctx<'_>,
    step: Step,
    stop: watch::Receiver<bool>,
) -> (Vec<StageReport>, RunResult) {
    let s = ctx.scenario;
    // A log that cannot be opened does not stop the run, but the report says so.
    let mut log_open_error = None;
    let (log, writer) = match &ctx.opts.log_dir {
        Some(dir) => {
            let name = format!(
                "requests-{}-{}{}.jsonl",
                sanitize(&s.name),
                sanitize(&step.name),
                step.log_tag
            );
            match RequestLog::create(&dir.join(name)) {
                Ok((l, w)) => (Some(l), Some(w)),
                Err(e) => {
                    eprintln!("warning: no request log: {e}");
                    log_open_error = Some(e.to_string());
                    (None, None)
                }
            }
        }
        None => (None, None),
    };
    let plan = Plan {
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
    };
    let live = Arc::new(Live::default());
    let total_time = match &step.load {
        Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => {
            Some(stages.iter().map(|l| l.duration).sum::<Duration>() + step.warmup)
        }
        _ => step.duration.map(|d| d + step.warmup),
    };
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
    let started = now_unix();
    // The run stops on the global stop (Ctrl-C) or on the scenario's stop condition.
    let (step_tx, step_rx) = watch::channel(false);
    let tripped: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
    let watcher = {
        let (mut global, live, tripped) = (stop, live.clone(), tripped.clone());
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
                        let done = live.done.load(std::sync::atomic::Ordering::Relaxed);
                        let errors = live.errors.load(std::sync::atomic::Ordering::Relaxed);
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
    };
    let out = engine::run(
        ctx.client.clone(),
        ctx.source.clone(),
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
    let target_rate = match &step.load {
        Load::Open { rate, .. } => Some(*rate),
        _ => None,
    };
    // `whole`: the step's own result, which carries the request log's outcome (its stages
    // do not: the log is one per step).
    let make = |name: String,
                r: Recorded,
                duration_s: f64,
                load: String,
                target_rate: Option<f64>,
                whole: bool| {
        let mut result = RunResult::empty(&redact(&ctx.urls), &load);
        result.started_unix_s = started;
        result.duration_s = duration_s;
        result.target_rate = target_rate;
        // A stop condition ends the scenario, not the invocation: not partial.
        result.partial = out.stopped && tripped.is_none();
        if let Some(t) = &tripped {
            result.warnings.push(t.clone());
        }
        result.total = r.total;
        result.by_model = r.by_model;
        result.by_endpoint = r.by_endpoint;
        result.misrouted = r.misrouted;
        result.client = r.client;
        result.timeline = r.timeline;
        if whole {
            result.client.log_dropped = log.dropped;
            result.client.log_error = log.error.clone();
        } else {
            result.client.log_dropped = 0;
            result.client.log_error = None;
        }
        health_warnings(
            &mut result,
            matches!(step.load, Load::Open { .. } | Load::OpenStages { .. }),
        );
        StageReport { name, result }
    };
    let mut reports = Vec::new();
    if out.stages.len() > 1 {
        let levels: Vec<Level> = match &step.load {
            Load::OpenStages { stages, .. } | Load::ClosedStages { stages } => stages.clone(),
            _ => Vec::new(),
        };
        let open = matches!(step.load, Load::OpenStages { .. });
        for (i, st) in out.stages.iter().enumerate() {
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
            let tr = lv
                .filter(|l| open && (l.from - l.to).abs() < 1e-9)
                .map(|l| l.to);
            let mut part: Recorded = st.clone();
            // CPU is measured for the whole run only.
            part.client.cpu_seconds = 0.0;
            part.client.sent = 0;
            reports.push(make(name, part, d, label, tr, false));
        }
    }
    let whole = make(
        step.name.clone(),
        out.recorded.clone(),
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
fn scaled(d: Duration, scale: f64) -> Duration {
    if d.is_zero() {
        return d;
    }
    Duration::from_secs_f64((d.as_secs_f64() * scale).max(0.001))
}

/// The flat load of a `rate` or `concurrency` scenario.
fn flat_load(l: &crate::config::Load, arrival: Arrival) -> Option<Load> {
    match (&l.rate, &l.concurrency) {
        (Some(r), _) => Some(Load::Open {
            rate: r.value,
            arrival,
        }),
        (_, Some(n)) => Some(Load::Closed {
            concurrency: n.value.max(1) as usize,
        }),
        _ => None,
    }
}

/// Keeps a step's stages and its whole result.
fn keep(
    (st, w): (Vec<StageReport>, RunResult),
    stages: &mut Vec<StageReport>,
    wholes: &mut Vec<RunResult>,
) {
    stages.extend(st);
    wholes.push(w);
}

/// Runs scenario `s` against target `t` at `urls`.
pub async fn run_scenario(
    c: &Config,
    s: &Scenario,
    t: &Target,
    urls: &str,
    repeat: u32,
    opts: &Options,
    stop: watch::Receiver<bool>,
) -> Result<ScenarioReport, RunError> {
    let client = client_for(t, urls)?;
    let seed = s.seed.unwrap_or(1).wrapping_add(u64::from(repeat) - 1);
    let source = crate::workload::source(c, s, t, seed, opts.scale)?;
    let slo = s.slo.as_ref().map(|slo| SloLimits {
        ttft_us: slo.ttft.map(|d| d.0.as_micros() as u64),
        tpot_us: slo.tpot.map(|d| d.0.as_micros() as u64),
        e2e_us: slo.e2e.map(|d| d.0.as_micros() as u64),
    });
    let ctx = Ctx {
        client,
        source,
        scenario: s,
        urls: urls.to_string(),
        opts,
        slo,
        seed,
    };
    let sc = opts.scale;
    let arrival = match s.load.arrival.unwrap_or_default() {
        ArrivalKind::Constant => Arrival::Constant,
        ArrivalKind::Poisson => Arrival::Poisson,
    };
    let warmup = s.warmup.map_or(Duration::ZERO, |d| scaled(d.0, sc));
    let duration = s.duration.as_ref().map(|d| scaled(d.value.0, sc));
    // `--scale` shortens request-count runs too.
    let requests = s.requests.map(|n| ((n as f64 * sc).round() as u64).max(1));
    let l = &s.load;
    let mut stages: Vec<StageReport> = Vec::new();
    let mut wholes: Vec<RunResult> = Vec::new();
    let mut breaking_point = None;
    let mut arm_reports = Vec::new();
    let kind = if !s.arms.is_empty() {
        let backends: Vec<String> = urls
            .split(',')
            .map(|u| {
                u.trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    .to_string()
            })
            .collect();
        let mut servers = Vec::new();
        for (i, a) in s.arms.iter().enumerate() {
            servers.push(
                crate::arms::ArmServer::start(
                    a,
                    i,
                    &backends,
                    &|f| c.relative(f),
                    opts.router_exe.as_deref(),
                )
                .await
                .map_err(|e| RunError::Client {
                    target: t.name.value.clone(),
                    message: format!("arm `{}` did not start: {e}", a.name()),
                })?,
            );
        }
        // Each arm's router CPU over its own windows only (scrapes run all along).
        let mut cpu: Vec<Option<f64>> = vec![None; servers.len()];
        let mut sent = vec![0u64; servers.len()];
        let load = flat_load(l, arrival).unwrap_or(Load::Closed { concurrency: 1 });
        let window = scaled(s.arm_window.map_or(Duration::from_secs(5), |d| d.0), sc);
        let total_time = duration.unwrap_or(window);
        let rounds = (total_time.as_secs_f64() / window.as_secs_f64())
            .ceil()
            .max(1.0) as usize;
        if opts.progress {
            eprintln!(
                "▶ {} · arms {} · {} · {rounds} round(s) of {:.1} s windows",
                s.name.value,
                servers
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                load_label(&load),
                window.as_secs_f64()
            );
        }
        let quiet = Options {
            progress: false,
            ..opts.clone()
        };
        let mut merged: Vec<Option<RunResult>> = vec![None; servers.len()];
        // One client per arm for the whole run: its connections stay open from one window to
        // the next, as a gateway's clients keep theirs (no connection set-up in every window).
        let clients = servers
            .iter()
            .map(|a| client_for(t, &a.url))
            .collect::<Result<Vec<_>, _>>()?;
        'rounds: for round in 0..rounds {
            for j in 0..servers.len() {
                if *stop.borrow() {
                    break 'rounds;
                }
                // Rotate the order each round so no arm always follows the same one.
                let idx = (j + round) % servers.len();
                // Each window gets its own requests (a fresh seed): repeating the same prompts
                // would turn the later windows into prefix-cache hits.
                let window_seed =
                    seed.wrapping_add((round * servers.len() + idx + 1) as u64 * 0x9E37);
                let arm_ctx = Ctx {
                    client: clients[idx].clone(),
                    opts: &quiet,
                    source: crate::workload::source(c, s, t, window_seed, opts.scale)?,
                    scenario: s,
                    urls: servers[idx].url.clone(),
                    slo: ctx.slo,
                    seed: window_seed,
                };
                let step = Step {
                    name: servers[idx].name.clone(),
                    load: load.clone(),
                    duration: Some(window),
                    requests: None,
                    warmup: if round == 0 { warmup } else { Duration::ZERO },
                    stage_names: Vec::new(),
                    log_tag: format!("-w{}", round + 1),
                };
                let cpu_before = servers[idx].cpu_s();
                let (_, w) = run_step(&arm_ctx, step, stop.clone()).await;
                if let (Some(a), Some(b)) = (servers[idx].cpu_s(), cpu_before) {
                    *cpu[idx].get_or_insert(0.0) += a - b;
                }
                sent[idx] += w.client.sent;
                match &mut merged[idx] {
                    Some(m) => m.append(&w),
                    slot => *slot = Some(w),
                }
            }
        }
        let direct = s
            .arms
            .iter()
            .position(|a| a.name() == "direct")
            .and_then(|i| merged[i].clone());
        for (i, server) in servers.iter().enumerate() {
            let Some(mut r) = merged[i].take() else {
                continue;
            };
            r.load = format!("arm {} · {}", server.name, load_label(&load));
            r.warnings.dedup();
            let cpu = cpu[i];
            let added =
                |pick: &dyn Fn(&RunResult) -> &inferbench_results::histogram::LatencyHistogram| {
                    direct
                        .as_ref()
                        .filter(|d| {
                            server.name != "direct"
                                && r.total.counts.ok > 0
                                && d.total.counts.ok > 0
                        })
                        .map(|d| {
                            let (a, b) = (pick(&r).summary(), pick(d).summary());
                            [
                                a.p50_us as i64 - b.p50_us as i64,
                                a.p95_us as i64 - b.p95_us as i64,
                                a.p99_us as i64 - b.p99_us as i64,
                            ]
                        })
                };
            let c = &r.total.counts;
            let report = inferbench_results::report::ArmReport {
                name: server.name.clone(),
                url: redact(&server.url),
                router_cpu_s: cpu,
                // Per request it carried in its windows, warm-up included (the CPU covers it).
                router_cpu_per_1000: cpu.map(|c| c * 1000.0 / sent[i].max(1) as f64),
                router_peak_rss_mb: server.peak_rss_mb(),
                ttft_added_us: added(&|x: &RunResult| &x.total.latency.ttft),
                e2e_added_us: added(&|x: &RunResult| &x.total.latency.e2e),
                throughput_change_pct: direct
                    .as_ref()
                    .filter(|_| server.name != "direct")
                    .map(|d| (r.achieved_rate() / d.achieved_rate().max(1e-9) - 1.0) * 100.0),
                prefix_hit_rate: c.cached_tokens as f64 / c.input_tokens.max(1) as f64,
                routing_accuracy: 1.0 - r.misrouted as f64 / c.requests.max(1) as f64,
                result: r.clone(),
            };
            stages.push(StageReport {
                name: server.name.clone(),
                result: r.clone(),
            });
            wholes.push(r);
            arm_reports.push(report);
        }
        for server in servers {
            server.shutdown().await;
        }
        "arms"
    } else if let Some(load) = flat_load(l, arrival) {
        let kind = if l.rate.is_some() {
            "rate"
        } else {
            "concurrency"
        };
        let step = Step {
            name: "steady".into(),
            load,
            duration,
            requests,
            warmup,
            stage_names: Vec::new(),
            log_tag: String::new(),
        };
        keep(
            run_step(&ctx, step, stop.clone()).await,
            &mut stages,
            &mut wholes,
        );
        kind
    } else if let Some(list) = &l.stages {
        let open = list.first().is_some_and(|st| st.rate.is_some());
        let mut prev = 0.0;
        let mut levels = Vec::new();
        let mut names = Vec::new();
        for (i, st) in list.iter().enumerate() {
            let level = match (&st.rate, &st.concurrency) {
                (Some(r), _) => r.value,
                (_, Some(n)) => n.value as f64,
                _ => 0.0,
            };
            levels.push(Level {
                duration: scaled(st.duration.value.0, sc),
                from: if st.ramp { prev } else { level },
                to: level,
            });
            names.push(
                st.name
                    .clone()
                    .unwrap_or_else(|| format!("stage {}", i + 1)),
            );
            prev = level;
        }
        let load = if open {
            Load::OpenStages {
                arrival,
                stages: levels,
            }
        } else {
            Load::ClosedStages { stages: levels }
        };
        let step = Step {
            name: "stages".into(),
            load,
            duration: None,
            requests,
            warmup,
            stage_names: names,
            log_tag: String::new(),
        };
        keep(
            run_step(&ctx, step, stop.clone()).await,
            &mut stages,
            &mut wholes,
        );
        "stages"
    } else if let Some(u) = &l.users {
        let n = u.users.value.max(1) as f64;
        let ramp = Duration::from_secs_f64(n / u.spawn_rate.value.max(1e-9));
        let levels = vec![
            Level {
                duration: scaled(ramp, sc),
                from: 0.0,
                to: n,
            },
            Level {
                duration: scaled(u.duration.value.0, sc),
                from: n,
                to: n,
            },
        ];
        let step = Step {
            name: "users".into(),
            load: Load::ClosedStages { stages: levels },
            duration: None,
            requests,
            warmup,
            stage_names: vec!["ramp-up".into(), "hold".into()],
            log_tag: String::new(),
        };
        keep(
            run_step(&ctx, step, stop.clone()).await,
            &mut stages,
            &mut wholes,
        );
        "users"
    } else if let Some(sw) = &l.sweep {
        let d = scaled(sw.duration.value.0, sc);
        let flat = |name: String, load: Load| Step {
            name,
            load,
            duration: Some(d),
            requests: None,
            warmup,
            stage_names: Vec::new(),
            log_tag: String::new(),
        };
        keep(
            run_step(
                &ctx,
                flat("synchronous".into(), Load::Closed { concurrency: 1 }),
                stop.clone(),
            )
            .await,
            &mut stages,
            &mut wholes,
        );
        let sync_rate = stages.last().map_or(0.0, |st| st.result.achieved_rate());
        if !*stop.borrow() {
            let max_c = sw
                .max_concurrency
                .as_ref()
                .map_or(256, |m| m.value.max(1) as usize);
            keep(
                run_step(
                    &ctx,
                    flat("throughput".into(), Load::Closed { concurrency: max_c }),
                    stop.clone(),
                )
                .await,
                &mut stages,
                &mut wholes,
            );
        }
        let max_rate = stages.last().map_or(0.0, |st| st.result.achieved_rate());
        let k = sw.rates.as_ref().map_or(5, |r| r.value.max(1) as usize);
        if max_rate > sync_rate && sync_rate > 0.0 {
            for i in 1..=k {
                if *stop.borrow() {
                    break;
                }
                let rate = sync_rate + (max_rate - sync_rate) * i as f64 / (k + 1) as f64;
                let rate = (rate * 100.0).round() / 100.0;
                keep(
                    run_step(
                        &ctx,
                        flat(format!("rate {rate}"), Load::Open { rate, arrival }),
                        stop.clone(),
                    )
                    .await,
                    &mut stages,
                    &mut wholes,
                );
            }
        }
        "sweep"
    } else if let Some(st) = &l.stress {
        let limits: Vec<Threshold> = st
            .limits
            .iter()
            .filter_map(|t| Threshold::parse(t).ok())
            .collect();
        let d = scaled(st.step_duration.value.0, sc);
        let mut bp = BreakingPoint {
            last_passing_rate: None,
            breaking_rate: None,
            failed: Vec::new(),
        };
        // The levels: rates start, start + step, … max; or the concurrency list.
        let closed = st.concurrency.is_some();
        let levels: Vec<f64> = match (&st.concurrency, &st.start, &st.step, &st.max) {
            (Some(list), ..) => list.iter().map(|n| n.value.max(1) as f64).collect(),
            (None, Some(start), Some(step), Some(max)) => {
                let mut v = Vec::new();
                let mut r = start.value;
                while r <= max.value + 1e-9 && v.len() < 10_000 {
                    v.push(r);
                    r += step.value.max(1e-9);
                }
                v
            }
            _ => Vec::new(),
        };
        for level in levels {
            if *stop.borrow() {
                break;
            }
            let rate = level;
            let step = Step {
                name: if closed {
                    format!("concurrency {level}")
                } else {
                    format!("rate {level}")
                },
                load: if closed {
                    Load::Closed {
                        concurrency: level as usize,
                    }
                } else {
                    Load::Open { rate, arrival }
                },
                duration: Some(d),
                requests: None,
                warmup,
                stage_names: Vec::new(),
                log_tag: String::new(),
            };
            let (got, w) = run_step(&ctx, step, stop.clone()).await;
            wholes.push(w);
            let failed: Vec<Check> = got
                .iter()
                .flat_map(|g| limits.iter().map(move |t| check(t, &g.result)))
                .filter(|c| !c.passed)
                .collect();
            stages.extend(got);
            if failed.is_empty() {
                bp.last_passing_rate = Some(rate);
            } else {
                bp.breaking_rate = Some(rate);
                bp.failed = failed;
                break;
            }
        }
        breaking_point = Some(bp);
        "stress"
    } else {
        "none"
    };

    // The scenario's total: the one run, or every run merged.
    let mut total = RunResult::empty(&redact(urls), kind);
    // Steps ran one after another: their times add and their timelines follow each other.
    for w in &wholes {
        total.append(w);
    }
    total.started_unix_s = wholes.first().map_or(0, |w| w.started_unix_s);
    total.load = match wholes.as_slice() {
        [one] => one.load.clone(),
        _ => kind.to_string(),
    };
    total.target_rate = match wholes.as_slice() {
        [one] => one.target_rate,
        _ => None,
    };
    total.warnings.dedup();
    // A stress test that broke stopped at the step that broke.
    let broke = breaking_point
        .as_ref()
        .is_some_and(|b: &BreakingPoint| b.breaking_rate.is_some());
    let (thresholds, slo_report) = verdicts(s, kind, &total, &wholes, broke, &arm_reports);
    let passed =
        thresholds.iter().all(|c| c.passed) && slo_report.as_ref().is_none_or(|s| s.passed);
    Ok(ScenarioReport {
        name: s.name.value.clone(),
        description: s.description.clone(),
        target: t.name.value.clone(),
        url: redact(urls),
        repeat,
        kind: kind.to_string(),
        stages,
        total,
        slo: slo_report,
        thresholds,
        breaking_point,
        arms: arm_reports,
        passed,
    })
}

/// `check` with the arm it judged named in its rule.
fn on_arm(mut c: Check, arm: Option<&str>) -> Check {
    if let Some(a) = arm {
        c.rule = format!("arm {a}: {}", c.rule);
    }
    c
}

/// The scenario's threshold checks and SLO verdict.
///
/// Each routing arm is judged on its own results (a rule fails when any arm fails it, and the
/// check names the arm); other scenarios on their total. Besides the scenario's own rules:
/// the default gate `error_rate < 1%` unless the scenario sets its own error-rate rule (for a
/// stress test, a limit counts too, and the gate judges the steps below the breaking point),
/// and a failed check for any judged result without a single successful request.
fn verdicts(
    s: &Scenario,
    kind: &str,
    total: &RunResult,
    wholes: &[RunResult],
    broke: bool,
    arms: &[inferbench_results::report::ArmReport],
) -> (Vec<Check>, Option<SloReport>) {
    let judged: Vec<(Option<&str>, &RunResult)> = if arms.is_empty() {
        vec![(None, total)]
    } else {
        arms.iter()
            .map(|a| (Some(a.name.as_str()), &a.result))
            .collect()
    };
    let rules: Vec<Threshold> = s
        .thresholds
        .iter()
        .filter_map(|t| Threshold::parse(t).ok())
        .collect();
    let stress_limits: Vec<Threshold> = s
        .load
        .stress
        .as_ref()
        .map(|st| {
            st.limits
                .iter()
                .filter_map(|t| Threshold::parse(t).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut checks = Vec::new();
    for t in &rules {
        for (arm, r) in &judged {
            checks.push(on_arm(check(t, r), *arm));
        }
    }
    let own_error_rule = rules
        .iter()
        .chain(&stress_limits)
        .any(|t| t.metric == Metric::ErrorRate);
    if !own_error_rule {
        let gate = Threshold::default_error_gate();
        if kind == "stress" {
            // The step that broke a limit is expected to fail: judge the steps before it.
            let below = &wholes[..wholes.len().saturating_sub(usize::from(broke))];
            if !below.is_empty() {
                let mut merged = RunResult::empty(&total.target, kind);
                for w in below {
                    merged.append(w);
                }
                let mut c = check(&gate, &merged);
                c.rule = format!("{} on the steps below the breaking point", c.rule);
                checks.push(c);
            }
        } else {
            for (arm, r) in &judged {
                checks.push(on_arm(check(&gate, r), *arm));
            }
        }
    }
    for (arm, r) in &judged {
        let c = &r.total.counts;
        if c.ok == 0 {
            checks.push(on_arm(
                Check {
                    rule: "successful requests > 0 (default)".into(),
                    measured: format!("0 of {} completed", c.requests),
                    passed: false,
                },
                *arm,
            ));
        }
    }
    let slo_report = s.slo.as_ref().map(|slo| {
        let p = slo.percentile.as_ref().map_or(95.0, |p| p.value);
        let mut slo_checks = Vec::new();
        for (name, lim) in [("ttft", slo.ttft), ("tpot", slo.tpot), ("e2e", slo.e2e)] {
            if let Some(d) = lim
                && let Ok(t) = Threshold::parse(&format!(
                    "{name}.p{p} <= {}ms",
                    d.0.as_micros() as f64 / 1000.0
                ))
            {
                for (arm, r) in &judged {
                    slo_checks.push(on_arm(check(&t, r), *arm));
                }
            }
        }
        let c = &total.total.counts;
        SloReport {
            percentile: p,
            limits: slo_limits(slo),
            passed: slo_checks.iter().all(|c| c.passed),
            checks: slo_checks,
            goodput_rps: c.good as f64 / total.duration_s.max(1e-9),
            good_fraction: c.good as f64 / c.requests.max(1) as f64,
        }
    });
    (checks, slo_report)
}

fn slo_limits(slo: &crate::config::Slo) -> SloLimits {
    SloLimits {
        ttft_us: slo.ttft.map(|d| d.0.as_micros() as u64),
        tpot_us: slo.tpot.map(|d| d.0.as_micros() as u64),
        e2e_us: slo.e2e.map(|d| d.0.as_micros() as u64),
    }
}

/// Evaluates `t` on `r`.
pub fn check(t: &Threshold, r: &RunResult) -> Check {
    if !t.measured_in(r) {
        // A latency never observed (TPOT of unary or one-token answers, ITL without streams)
        // cannot pass a limit on it.
        return Check {
            rule: t.expr.clone(),
            measured: "not measured (no request observed it)".into(),
            passed: false,
        };
    }
    let v = t.measure(r);
    Check {
        rule: t.expr.clone(),
        measured: t.display(v),
        passed: t.check(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::report::ArmReport;

    fn config(scenario: &str) -> Config {
        let text = format!(
            "targets:\n  - {{name: t, url: http://127.0.0.1:1, models: [m]}}\nscenarios:\n  - name: s\n{scenario}"
        );
        Config::parse(&text, "test").unwrap()
    }

    /// `requests` completed of which `failed` failed, over 10 s.
    fn result(requests: u64, failed: u64) -> RunResult {
        let mut r = RunResult::empty("http://x", "rate 10/s");
        r.duration_s = 10.0;
        r.total.counts.requests = requests;
        r.total.counts.ok = requests - failed;
        r.total.counts.ok_in_window = requests - failed;
        if failed > 0 {
            r.total
                .counts
                .errors
                .insert("http_500/model_server".into(), failed);
        }
        for i in 0..requests - failed {
            r.total.latency.ttft.record(1000 + i);
        }
        r
    }

    fn arm(name: &str, result: RunResult) -> ArmReport {
        ArmReport {
            name: name.into(),
            url: "http://x".into(),
            result,
            router_cpu_s: None,
            router_cpu_per_1000: None,
            router_peak_rss_mb: None,
            ttft_added_us: None,
            e2e_added_us: None,
            throughput_change_pct: None,
            prefix_hit_rate: 0.0,
            routing_accuracy: 1.0,
        }
    }

    fn summary(checks: &[Check]) -> Vec<(String, String, bool)> {
        checks
            .iter()
            .map(|c| (c.rule.clone(), c.measured.clone(), c.passed))
            .collect()
    }

    fn row(rule: &str, measured: &str, passed: bool) -> (String, String, bool) {
        (rule.into(), measured.into(), passed)
    }

    #[test]
    fn every_scenario_gets_the_default_error_gate() {
        let c = config("    load: {rate: 10}\n    duration: 10s\n");
        let s = &c.file.scenarios[0];
        let bad = result(40, 17);
        let (checks, slo) = verdicts(s, "rate", &bad, std::slice::from_ref(&bad), false, &[]);
        assert!(slo.is_none());
        assert_eq!(
            summary(&checks),
            [row("error_rate < 1% (default)", "42.50%", false)]
        );
        let good = result(200, 1);
        let (checks, _) = verdicts(s, "rate", &good, std::slice::from_ref(&good), false, &[]);
        assert_eq!(
            summary(&checks),
            [row("error_rate < 1% (default)", "0.50%", true)]
        );
    }

    #[test]
    fn no_successful_request_never_passes() {
        let c = config(
            "    load: {rate: 10}\n    duration: 10s\n    thresholds: [\"error_rate <= 100%\"]\n",
        );
        let s = &c.file.scenarios[0];
        let none = result(5, 5);
        let (checks, _) = verdicts(s, "rate", &none, std::slice::from_ref(&none), false, &[]);
        // Its own error rule replaces the default gate; the success rule stays.
        assert_eq!(
            summary(&checks),
            [
                row("error_rate <= 100%", "100.00%", true),
                row(
                    "successful requests > 0 (default)",
                    "0 of 5 completed",
                    false
                )
            ]
        );
        // Nothing completed at all: an error rate of 0% must not pass it either.
        let empty = result(0, 0);
        let (checks, _) = verdicts(s, "rate", &empty, &[], false, &[]);
        assert!(checks.iter().any(|c| !c.passed));
    }

    #[test]
    fn arms_are_judged_one_by_one() {
        let c = config(
            "    load: {rate: 10}\n    duration: 10s\n    arms: [direct, epp]\n    thresholds: [\"ttft.p50 < 1.5ms\"]\n    slo: {ttft: 2ms}\n",
        );
        let s = &c.file.scenarios[0];
        let direct = result(100, 0);
        let mut epp = result(100, 5);
        epp.total.latency.ttft = Default::default();
        for _ in 0..95 {
            epp.total.latency.ttft.record(3000);
        }
        let mut total = direct.clone();
        total.append(&epp);
        let arms = [arm("direct", direct.clone()), arm("epp", epp.clone())];
        let (checks, slo) = verdicts(s, "arms", &total, &[direct, epp], false, &arms);
        let got = summary(&checks);
        assert_eq!(
            got.iter()
                .map(|(r, _, p)| (r.as_str(), *p))
                .collect::<Vec<_>>(),
            [
                ("arm direct: ttft.p50 < 1.5ms", true),
                ("arm epp: ttft.p50 < 1.5ms", false),
                ("arm direct: error_rate < 1% (default)", true),
                ("arm epp: error_rate < 1% (default)", false),
            ]
        );
        // Merged, the total's 2.5% errors would fail too, but its TTFT p50 would pass: only
        // per arm does the slow arm show.
        assert!(Threshold::parse("ttft.p50 < 1.5ms").unwrap().check(&total));
        let slo = slo.unwrap();
        assert!(!slo.passed);
        assert_eq!(
            slo.checks
                .iter()
                .map(|c| (c.rule.as_str(), c.passed))
                .collect::<Vec<_>>(),
            [
                ("arm direct: ttft.p95 <= 2ms", true),
                ("arm epp: ttft.p95 <= 2ms", false)
            ]
        );
    }

    #[test]
    fn stress_gates_the_steps_below_its_breaking_point() {
        let c = config(
            "    load:\n      stress: {start: 10, step: 10, max: 50, step_duration: 1s, limits: [\"ttft.p99 < 1s\"]}\n",
        );
        let s = &c.file.scenarios[0];
        let steps = [result(100, 0), result(100, 0), result(100, 60)];
        let mut total = RunResult::empty("http://x", "stress");
        for w in &steps {
            total.append(w);
        }
        let (checks, _) = verdicts(s, "stress", &total, &steps, true, &[]);
        assert_eq!(
            summary(&checks),
            [row(
                "error_rate < 1% (default) on the steps below the breaking point",
                "0.00%",
                true
            )]
        );
        // It never broke: every step is judged.
        let (checks, _) = verdicts(s, "stress", &total, &steps, false, &[]);
        assert_eq!(checks[0].measured, "20.00%");
        assert!(!checks[0].passed);
        // An error-rate limit is the scenario's own rule: no default gate.
        let c = config(
            "    load:\n      stress: {start: 10, step: 10, max: 50, step_duration: 1s, limits: [\"error_rate < 5%\"]}\n",
        );
        let (checks, _) = verdicts(&c.file.scenarios[0], "stress", &total, &steps, false, &[]);
        assert!(checks.is_empty(), "{checks:?}");
    }
}
