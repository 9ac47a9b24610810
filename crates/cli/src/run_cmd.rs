//! `inferbench run`: a scenario file, flags for one ad-hoc scenario, or (with neither) the
//! built-in suite against the embedded mock fleet → engine runs → report.json, report.md,
//! report.html, report.csv and a console summary whose last line is the verdict.
//! Where the files go and how they are kept safe: [`crate::output`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use inferbench_config::Config;
use inferbench_config::adhoc::AdHoc;
use inferbench_report::console::Outcome;
use inferbench_results::suite::{Report, ScenarioReport};
use inferbench_runner::{self as runner, Options};
use inferbench_workload::units::parse_duration as parse_dur;

/// Exit code when a threshold or an SLO failed (as k6 does).
pub const EXIT_THRESHOLDS: u8 = 99;

/// Flags of `inferbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A scenario file (YAML). Without it and without --target, the built-in suite runs against
    /// the embedded mock fleet (or, with --rate, --concurrency, --duration, --requests or
    /// --trace, that one scenario does).
    file: Option<PathBuf>,
    /// With a file: run only this scenario.
    #[arg(long)]
    scenario: Option<String>,
    /// With a file: the target name to run against. Without: the base URL of an
    /// OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000 (several, comma-separated, are
    /// served in turn).
    #[arg(long)]
    target: Option<String>,
    /// With a file: replace every target's URL with this one (e.g. a port-forward).
    #[arg(long)]
    url: Option<String>,
    /// Multiply every duration and request count of the file by this factor (e.g. 0.1 for a
    /// quick try).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Model to ask for.
    #[arg(long, default_value = "mock-model")]
    model: String,
    /// Open loop: requests per second.
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// Closed loop: requests in flight.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Open-loop spacing: constant or poisson.
    #[arg(long, default_value = "constant")]
    arrival: String,
    /// Measured time after warm-up (e.g. 30s, 2m, 500ms).
    #[arg(long)]
    duration: Option<String>,
    /// Measured requests to send (warm-up requests come on top; a conversation counts once).
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up whose requests are sent but not counted.
    #[arg(long, default_value = "0s")]
    warmup: String,
    /// Prompt tokens per request (exact, cl100k_base): N, uniform:MIN:MAX,
    /// normal:MEAN:SD:MIN:MAX or lognormal:MEDIAN:SIGMA:MIN:MAX.
    #[arg(long, default_value = "128")]
    prompt_tokens: String,
    /// Output tokens per request (forced with max_tokens + ignore_eos + min_tokens); same forms.
    #[arg(long, default_value = "64")]
    output_tokens: String,
    /// Write one JSON line per request to DIR/requests-*.jsonl as the run goes.
    #[arg(long)]
    log_requests: bool,
    /// Stream with SSE (default) or not.
    #[arg(long, overrides_with = "no_stream")]
    stream: bool,
    /// Unary requests.
    #[arg(long)]
    no_stream: bool,
    /// chat or completions.
    #[arg(long, default_value = "chat")]
    api: String,
    /// Seed of the schedule and prompts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The history store every run is recorded in (SQLite).
    #[arg(long, env = "INFERBENCH_HISTORY", default_value = crate::report_cmd::DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// Do not record this run in the history store.
    #[arg(long)]
    pub no_history: bool,
    /// Where report.json, report.md, report.html and report.csv go (default results/<UTC time>/);
    /// checked writable before any request is sent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Total timeout per request.
    #[arg(long, default_value = "600s")]
    timeout: String,
    /// Timeout to the first token.
    #[arg(long, default_value = "60s")]
    ttft_timeout: String,
    /// Most time between two tokens once the first has come (a stalled stream fails as
    /// `timeout_stall` instead of holding the request until --timeout).
    #[arg(long, default_value = "30s")]
    stall_timeout: String,
    /// Name of an environment variable holding the API key (sent as a bearer token, never written).
    #[arg(long)]
    api_key_env: Option<String>,
    /// Extra header `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Open loop: most requests in flight; arrivals beyond are dropped and counted.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Client threads. 1 (the default) runs the whole client on one thread: no cross-thread
    /// wake-ups, the least CPU per request; more only when one core cannot keep up.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Retries of a failed request (connect error, 429, 5xx, stream broken before any token).
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Wait before the first retry; doubles at each further one.
    #[arg(long, default_value = "100ms")]
    retry_backoff: String,
    /// HTTP/2 (prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// Pass/fail rule on the results (repeatable), e.g. "ttft.p95 < 500ms"; a failure exits 99.
    #[arg(long = "threshold")]
    thresholds: Vec<String>,
    /// Replay a trace (Azure LLM inference CSV, Mooncake JSONL, BurstGPT CSV, or an inferbench
    /// request log): at its own instants, or its lengths at --rate / --concurrency. Without
    /// --target, against the embedded fleet.
    #[arg(long, conflicts_with = "file")]
    trace: Option<String>,
    /// The trace's format: azure, mooncake, burstgpt or inferbench (default: told by its first
    /// line).
    #[arg(long, requires = "trace")]
    trace_format: Option<String>,
    /// Multiply the trace's time (0.5 replays it twice as fast).
    #[arg(long, requires = "trace")]
    trace_time_scale: Option<f64>,
    /// Multiply the trace's request rate (2 sends twice as many per second).
    #[arg(long, requires = "trace")]
    trace_rate_scale: Option<f64>,
    /// Leave out the trace's first part (e.g. 10m).
    #[arg(long, requires = "trace")]
    trace_start: Option<String>,
    /// Replay at most this many of the trace's requests.
    #[arg(long, requires = "trace")]
    trace_limit: Option<u64>,
    /// Send shard I of N of the plan (from 0): every N-th arrival of the one schedule, or every
    /// N-th user; N processes with the same file and --start-at send the one-machine plan
    /// together, and `inferbench merge` joins their reports exactly.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<runner::Shard>,
    /// Start the schedule at this Unix time in milliseconds (shards of one run share it; it
    /// must not have passed).
    #[arg(long)]
    start_at: Option<u64>,
    /// Also print report.json, on one line, as the last line on stdout (for pods whose logs are
    /// their only output).
    #[arg(long)]
    report_stdout: bool,
    /// Sample a process's CPU and memory every second during the run, reported per stage, step
    /// and arm: NAME=PID, or NAME=PATTERN for the oldest process whose command line contains it
    /// (repeatable; e.g. envoy=envoy, epp=1234).
    #[arg(long = "watch-process")]
    watch_process: Vec<String>,
    /// Read resource figures from this Prometheus (http://HOST:9090) over each stage's, step's
    /// and arm's window: process and container CPU and memory by default.
    #[arg(long)]
    prometheus: Option<String>,
    /// The queries for --prometheus: a YAML list of {metricName, query, kind: counter|gauge}.
    #[arg(long, requires = "prometheus")]
    prometheus_queries: Option<PathBuf>,
    /// `$NAMESPACE` in the queries (a regex).
    #[arg(long, default_value = ".+", requires = "prometheus")]
    prometheus_namespace: String,
    /// Wait this long after a scenario before querying Prometheus (about its scrape interval, so
    /// that it has scraped past the last window).
    #[arg(long, default_value = "15s", requires = "prometheus")]
    prometheus_settle: String,
    /// Index the run into OpenSearch / Elasticsearch at this URL (`_bulk`): one summary document
    /// per scenario, stage and arm; credentials from INFERBENCH_INDEX_USER and
    /// INFERBENCH_INDEX_PASSWORD, or INFERBENCH_INDEX_API_KEY. The local report is written first.
    #[arg(long)]
    index_to: Option<String>,
    /// Index name prefix (`<prefix>-runs`, `<prefix>-requests`).
    #[arg(long, requires = "index_to")]
    index_prefix: Option<String>,
    /// Also index one document per request (implies --log-requests).
    #[arg(long, requires = "index_to")]
    index_requests: bool,
    /// Push the run's summary series (requests, failures, rates, TTFT/ITL/e2e quantiles) at
    /// the end to this Prometheus remote-write endpoint (e.g. http://HOST:9090/api/v1/write),
    /// labelled by run_id (the output folder's name), scenario, target, stage or arm.
    #[arg(long)]
    remote_write: Option<String>,
    /// Serve the load generator's live metrics (requests by outcome, in flight, TTFT/ITL/e2e
    /// and dispatch-lag histograms, process_*) on http://ADDR/metrics during the run, e.g.
    /// 127.0.0.1:9464 (port 0: any; the address is printed).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Scrape these model servers' /metrics (every second and at each window's edge) for the
    /// server's side of the run: queue, prefill, decode, server TTFT, tokens, and the client's
    /// TTFT split into network+gateway, queue and prefill. A base URL (repeatable or
    /// comma-separated), `target` for the target's own URLs, or `prometheus` to read the
    /// servers' series from --prometheus after the run (pods behind a gateway). Default: on for
    /// the embedded fleet, else the target's `server_metrics`.
    #[arg(long = "server-metrics", value_name = "URL", value_delimiter = ',')]
    server_metrics: Vec<String>,
    /// The metric names of servers that are not vLLM, llama.cpp or SGLang: a YAML file mapping
    /// roles (histograms: queue, prefill, decode, ttft, itl, e2e; counters: requests,
    /// prompt_tokens, generation_tokens, …; gauges: running, waiting, kv_usage) to names.
    #[arg(long, value_name = "FILE")]
    server_metrics_map: Option<PathBuf>,
    /// With `--server-metrics prometheus`: the label selector of the servers' series, e.g.
    /// '{namespace="llm",pod=~"vllm-.*"}' (default: every series).
    #[arg(long, value_name = "SELECTOR", default_value = "")]
    server_metrics_selector: String,
    /// With --metrics-listen: keep serving this long after the run, so a scraper sees the final
    /// counts (at least one scrape interval: Prometheus's default is 1 m, 15 s is common).
    #[arg(long, default_value = "0s", requires = "metrics_listen")]
    metrics_linger: String,
}

/// Reads `--shard I/N` (0 ≤ I < N ≤ 10,000).
fn parse_shard(s: &str) -> Result<runner::Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not I/N (e.g. 0/4)"))?;
    let index: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{i}` is not a shard index"))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a shard count"))?;
    if count == 0 || count > 10_000 || index >= count {
        return Err(format!("shard {index} of {count}: need 0 ≤ I < N ≤ 10000"));
    }
    Ok(runner::Shard { index, count })
}

/// Reads a duration flag.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    Ok(parse_dur(s)?)
}

/// Whether the command line describes a load of its own (`--rate`, `--concurrency`,
/// `--duration` or `--requests`): with no file and no target it runs against the embedded fleet
/// instead of the built-in suite.
fn adhoc_load_given(a: &RunArgs) -> bool {
    a.rate.is_some() || a.concurrency.is_some() || a.duration.is_some() || a.requests.is_some()
}

/// The one scenario the ad-hoc flags describe, against `url`.
fn adhoc(a: &RunArgs, url: &str) -> AdHoc {
    AdHoc {
        url: url.to_string(),
        model: a.model.clone(),
        rate: a.rate,
        concurrency: a.concurrency,
        arrival: a.arrival.clone(),
        duration: a.duration.clone(),
        requests: a.requests,
        warmup: a.warmup.clone(),
        prompt_tokens: a.prompt_tokens.clone(),
        output_tokens: a.output_tokens.clone(),
        stream: !a.no_stream,
        api: a.api.clone(),
        seed: a.seed,
        timeout: a.timeout.clone(),
        ttft_timeout: a.ttft_timeout.clone(),
        stall_timeout: a.stall_timeout.clone(),
        api_key_env: a.api_key_env.clone(),
        headers: a.headers.clone(),
        max_in_flight: a.max_in_flight,
        retries: a.retries,
        retry_backoff: a.retry_backoff.clone(),
        http2: a.http2,
        thresholds: a.thresholds.clone(),
        trace: a
            .trace
            .as_ref()
            .map(|p| inferbench_config::adhoc::AdHocTrace {
                path: p.clone(),
                format: a.trace_format.clone(),
                time_scale: a.trace_time_scale,
                rate_scale: a.trace_rate_scale,
                start: a.trace_start.clone(),
                limit: a.trace_limit,
            }),
    }
}

/// Runs; returns the exit code (0 pass, 99 a threshold or SLO failed, 130 interrupted).
pub async fn run(a: RunArgs) -> anyhow::Result<u8> {
    if !(a.scale.is_finite() && a.scale > 0.0 && a.scale <= 1000.0) {
        bail!("--scale must be a number > 0 and ≤ 1000, got {}", a.scale);
    }
    let (config, opts_target, url_override, label) = match (&a.file, &a.target) {
        (Some(file), target) => (
            Config::load(file)?,
            target.clone(),
            a.url.clone(),
            file.display().to_string(),
        ),
        (None, Some(url)) => {
            // The flags go through the same limits as a file: refused before any request.
            let cfg = adhoc(&a, url).config()?;
            (cfg, None, None, "command line".to_string())
        }
        // Ad-hoc load or a trace with no target: that one scenario against the embedded fleet
        // (not the built-in suite with the flags dropped).
        (None, None) if a.trace.is_some() || adhoc_load_given(&a) => {
            let cfg = adhoc(&a, "embedded").config()?;
            (cfg, None, None, "command line".to_string())
        }
        (None, None) => (
            Config::parse(inferbench_config::BUILTIN_SUITE, "built-in suite")?,
            None,
            a.url.clone(),
            "embedded".to_string(),
        ),
    };
    // Checked before any request: a bad URL or missing credentials fail now, not after the run.
    let index = match &a.index_to {
        Some(url) => Some(inferbench_sinks::IndexConfig::from_env(
            url,
            a.index_prefix.as_deref(),
            a.index_requests,
        )?),
        None => None,
    };
    let dir = a.out.clone().unwrap_or_else(crate::output::default_dir);
    // Before any request: a run whose results cannot be kept should not start.
    crate::output::prepare_out(&dir)?;
    let linger = parse_duration(&a.metrics_linger).context("--metrics-linger")?;
    if a.server_metrics.iter().any(|u| u == "prometheus") && a.prometheus.is_none() {
        anyhow::bail!(
            "--server-metrics prometheus reads the servers' series from Prometheus: give --prometheus URL"
        );
    }
    let sel = a.server_metrics_selector.trim();
    let braced = sel.starts_with('{') && sel.ends_with('}');
    if !sel.is_empty() && !braced {
        anyhow::bail!(
            "--server-metrics-selector `{sel}`: a PromQL label selector in braces, e.g. '{{namespace=\"llm\"}}'"
        );
    }
    let live_metrics = match &a.metrics_listen {
        None => None,
        Some(addr) => {
            let m = std::sync::Arc::new(runner::live_metrics::LiveMetrics::new());
            let bound = m.serve(addr).await.map_err(anyhow::Error::msg)?;
            eprintln!("metrics: http://{bound}/metrics");
            Some(m)
        }
    };
    let opts = Options {
        live_metrics,
        server_metrics: (!a.server_metrics.is_empty()).then(|| a.server_metrics.clone()),
        server_selector: a.server_metrics_selector.clone(),
        server_profile: a
            .server_metrics_map
            .as_deref()
            .map(runner::server_metrics::Profile::load)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        scale: a.scale,
        url_override,
        only_scenario: a.scenario.clone(),
        only_target: opts_target,
        log_dir: (a.log_requests || a.index_requests).then(|| dir.clone()),
        progress: true,
        config_label: Some(label.clone()),
        router_exe: std::env::current_exe().ok(),
        shard: a.shard,
        start_at_unix_ms: a.start_at,
        watch: a
            .watch_process
            .iter()
            .map(|w| runner::watch::parse(w))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        prometheus: match &a.prometheus {
            None => None,
            Some(url) => Some(runner::promql::Prometheus {
                url: url.trim_end_matches('/').to_string(),
                queries: match &a.prometheus_queries {
                    Some(f) => runner::promql::load_queries(f).map_err(anyhow::Error::msg)?,
                    None => runner::promql::default_queries(),
                },
                namespace: a.prometheus_namespace.clone(),
                settle: parse_duration(&a.prometheus_settle).context("--prometheus-settle")?,
            }),
        },
    };
    // Fail fast on an unreachable target: one connection attempt per URL before any load.
    runner::suite::preflight(&config, &opts).await?;
    if label == "embedded" {
        eprintln!(
            "inferbench: no target given: running the built-in suite (about 90 s) against an embedded mock fleet.\n\
             Your own endpoint: inferbench run --target http://HOST:PORT --rate 10 --duration 30s, or a scenario file (see examples/)."
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Registered now, before any load: a Ctrl-C at any point writes a partial report.
    let ctrl_c = crate::signals::Signals::install()?;
    let signal = tokio::spawn(async move {
        ctrl_c.wait().await;
        let _ = stop_tx.send(true);
        true
    });
    let dir2 = dir.clone();
    let mut warned = false;
    let report = runner::run_suite(&config, &opts, stop_rx, |so_far, last| {
        print_scenario(last);
        // Keep the files current: a crash later still leaves what completed.
        if let Err(e) = crate::output::write_reports(&dir2, so_far)
            && !std::mem::replace(&mut warned, true)
        {
            eprintln!("warning: {e:#} (tried again at the end)");
        }
    })
    .await?;
    let interrupted = signal.is_finished() && signal.await.unwrap_or(false);
    let mut report = report;
    report.partial |= interrupted;
    let saved = crate::output::save(&dir, &report);
    print_summary(&report, saved.as_deref());
    if let Some(cfg) = &index {
        index_run(cfg, &report, &dir).await;
    }
    if let Some(url) = &a.remote_write {
        match inferbench_sinks::remote_write::push(url, &run_id(&report, &dir), &report).await {
            Ok(p) => out(&format!(
                "remote write: {} series ({} bytes) to {}\n",
                p.series,
                p.bytes,
                runner::redact(url)
            )),
            Err(e) => eprintln!("warning: {e} (the local report is kept)"),
        }
    }
    if !a.no_history {
        // A run never fails because history could not be written: say so and go on.
        match &saved {
            Some(at) => match crate::report_cmd::record_history(&a.history, &report, at) {
                Ok((id, db)) => out(&format!("history: run #{id} in {}\n", db.display())),
                Err(e) => eprintln!("warning: the run was not recorded in history: {e}"),
            },
            None => {
                eprintln!("warning: the run was not recorded in history: no report was written")
            }
        }
    }
    // The last line: the verdict and its reason.
    let verdict = inferbench_report::console::verdict(&report);
    let mut code = match verdict.outcome {
        Outcome::Interrupted => 130,
        Outcome::Fail if report.scenarios.is_empty() => 1,
        Outcome::Fail => EXIT_THRESHOLDS,
        Outcome::Pass => 0,
    };
    let mut line = verdict.line;
    if saved.is_none() {
        line.push_str(" (but no report could be written: see above)");
        if code != 130 {
            code = 1;
        }
    }
    out(&format!("{line}\n"));
    if a.report_stdout {
        out(&format!("{}\n", serde_json::to_string(&report)?));
    }
    if a.metrics_listen.is_some() && !linger.is_zero() {
        eprintln!(
            "metrics: served {:.0} s more for a last scrape",
            linger.as_secs_f64()
        );
        tokio::time::sleep(linger).await;
    }
    Ok(code)
}

/// The run's id for sinks: its output folder's name (unique per run), else its start time.
fn run_id(report: &Report, dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .map_or_else(|| format!("run-{}", report.started_unix_s), str::to_string)
}

/// Indexes the run (its report, and its request logs in `dir` when asked); a failure never
/// loses the local report: it is said on the console.
async fn index_run(cfg: &inferbench_sinks::IndexConfig, report: &Report, dir: &Path) {
    let logs: Vec<PathBuf> = if cfg.requests {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("requests-") && n.ends_with(".jsonl"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    } else {
        Vec::new()
    };
    match inferbench_sinks::index_run(cfg, &run_id(report, dir), report, &logs).await {
        Ok(s) => out(&format!(
            "indexed: {} documents ({} summary, {} per request), {} failed{}\n",
            s.indexed,
            s.summary_docs,
            s.request_docs,
            s.failed,
            s.first_errors
                .first()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        )),
        Err(e) => eprintln!("warning: the run was not indexed: {e} (the local report is kept)"),
    }
}

/// Writes to stdout; a closed stdout (e.g. piped to `head`) is not an error.
fn out(s: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

/// What ran, what failed, where the report is, and whether any request log is incomplete.
fn print_summary(r: &Report, dir: Option<&Path>) {
    use std::fmt::Write as _;
    let mut o = String::new();
    let failed: Vec<String> = r
        .scenarios
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.label())
        .collect();
    let _ = writeln!(
        o,
        "\n{} scenario run(s){}: {}",
        r.scenarios.len(),
        if r.partial {
            " (PARTIAL: interrupted)"
        } else {
            ""
        },
        if failed.is_empty() {
            "none failed".to_string()
        } else {
            format!("FAILED: {}", failed.join(", "))
        }
    );
    let incomplete: Vec<String> = r
        .scenarios
        .iter()
        .filter(|s| s.total.client.log_error.is_some() || s.total.client.log_dropped > 0)
        .map(|s| s.label())
        .collect();
    if !incomplete.is_empty() {
        let _ = writeln!(
            o,
            "WARNING: the request log is incomplete for {} (see above)",
            incomplete.join(", ")
        );
    }
    match dir {
        Some(dir) => {
            let _ = writeln!(o, "report: {}", dir.join("report.json").display());
            let _ = writeln!(
                o,
                "summary: {} · {}",
                dir.join("report.md").display(),
                dir.join("report.html").display()
            );
        }
        None => {
            let _ = writeln!(o, "report: NOT WRITTEN (see the errors above)");
        }
    }
    out(&o);
}

/// The console summary of one scenario.
fn print_scenario(s: &ScenarioReport) {
    out(&inferbench_report::console::scenario(s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_i_of_n() {
        assert_eq!(parse_shard("2/4"), Ok(runner::Shard { index: 2, count: 4 }));
        assert_eq!(parse_shard("0/1"), Ok(runner::Shard { index: 0, count: 1 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2", "0/10001"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_redaction() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(
            runner::redact("http://u:secret@host:80/x"),
            "http://host:80/x"
        );
    }
}
