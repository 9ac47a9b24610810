//! `inferbench run`: a scenario file, flags for one ad-hoc scenario, or (with neither) the
//! built-in suite against the embedded mock fleet → engine runs → report.json, report.md,
//! report.html, report.csv and a console summary whose last line is the verdict.
//!
//! Results are never lost: the output directory is proved writable before any request is sent,
//! every report file is written whole or not at all (a temporary file renamed), and when the
//! directory cannot take the report at the end, it goes to a fallback directory under the
//! system's temporary directory, after the summary is printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use inferbench_report::console::Outcome;
use inferbench_results::report::{Report, ScenarioReport};
use inferbench_scenario::config::{
    ApiKind, ArrivalKind, Config, ConfigFile, Dur, Load, Loc, Scenario, Target, Tokens, Weighted,
    Workload,
};
use inferbench_scenario::runner::{self, Options};
use inferbench_workload::dist::LengthDist;
use inferbench_workload::units::parse_duration as parse_dur;

/// Exit code when a threshold or an SLO failed (as k6 does).
pub const EXIT_THRESHOLDS: u8 = 99;

/// Flags of `inferbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A scenario file (YAML). Without it and without --target, the built-in suite runs against
    /// the embedded mock fleet.
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
}

/// Reads a duration flag.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    Ok(parse_dur(s)?)
}

/// Reads a token-length flag.
pub fn parse_dist(s: &str) -> anyhow::Result<LengthDist> {
    Ok(LengthDist::parse(s)?)
}

/// An error about the ad-hoc scenario, with its field paths named as the flags that set them.
fn flag_names(msg: &str) -> String {
    let mut m = msg.to_string();
    for (field, flag) in [
        ("scenarios[0].load.rate", "--rate"),
        ("scenarios[0].load.concurrency", "--concurrency"),
        ("scenarios[0].load.duration", "--duration"),
        ("scenarios[0].load.requests", "--requests"),
        ("scenarios[0].load.warmup", "--warmup"),
        ("scenarios[0].load.max_in_flight", "--max-in-flight"),
        ("scenarios[0].load.retries", "--retries"),
        ("scenarios[0].workload.prompt_tokens", "--prompt-tokens"),
        ("scenarios[0].workload.output_tokens", "--output-tokens"),
        ("targets[0].timeout", "--timeout"),
        ("targets[0].ttft_timeout", "--ttft-timeout"),
        ("targets[0].stall_timeout", "--stall-timeout"),
    ] {
        m = m.replace(field, &format!("{flag} ({field})"));
    }
    m
}

/// The one scenario the ad-hoc flags describe, against `url`.
fn adhoc(a: &RunArgs, url: &str) -> anyhow::Result<Config> {
    let api = match a.api.as_str() {
        "chat" => ApiKind::Chat,
        "completions" => ApiKind::Completions,
        other => bail!("--api must be chat or completions, not `{other}`"),
    };
    let arrival = match a.arrival.as_str() {
        "constant" => ArrivalKind::Constant,
        "poisson" => ArrivalKind::Poisson,
        other => bail!("--arrival must be constant or poisson, not `{other}`"),
    };
    let load = match (a.rate, a.concurrency) {
        (Some(r), None) if r.is_finite() && r > 0.0 => Load {
            rate: Some(Loc::new(r)),
            arrival: Some(arrival),
            ..Load::default()
        },
        (Some(r), None) => bail!("--rate must be a positive number, got {r}"),
        (None, Some(c)) if c > 0 => Load {
            concurrency: Some(Loc::new(c as i64)),
            ..Load::default()
        },
        (None, Some(_)) => bail!("--concurrency must be at least 1"),
        _ => bail!("give --rate R (open loop) or --concurrency C (closed loop)"),
    };
    let duration = a
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .context("--duration")?;
    if duration.is_none() && a.requests.is_none() {
        bail!("give --duration (e.g. 30s) or --requests N");
    }
    let prompt = parse_dist(&a.prompt_tokens).context("--prompt-tokens")?;
    let output = parse_dist(&a.output_tokens).context("--output-tokens")?;
    if output == (LengthDist::Fixed { value: 0 }) {
        bail!("--output-tokens must be at least 1");
    }
    let mut headers = std::collections::BTreeMap::new();
    for h in &a.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header `{h}` is not `Name: value`"))?;
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    for t in &a.thresholds {
        inferbench_scenario::threshold::Threshold::parse(t).context("--threshold")?;
    }
    let target = Target {
        name: Loc::new("cli".into()),
        url: Loc::new(url.to_string()),
        api_key_env: a.api_key_env.clone(),
        models: vec![a.model.clone()],
        headers,
        api,
        http2: a.http2,
        timeout: Some(Dur(parse_duration(&a.timeout).context("--timeout")?)),
        ttft_timeout: Some(Dur(
            parse_duration(&a.ttft_timeout).context("--ttft-timeout")?
        )),
        // The config's default (no flag for it yet).
        stall_timeout: Some(Dur(
            parse_duration(&a.stall_timeout).context("--stall-timeout")?
        )),
    };
    let scenario = Scenario {
        name: Loc::new("run".into()),
        description: None,
        target: None,
        load,
        duration: duration.map(|d| Loc::new(Dur(d))),
        requests: a.requests,
        warmup: Some(Dur(parse_duration(&a.warmup).context("--warmup")?)),
        workload: Workload {
            prompt_tokens: Some(Tokens(prompt)),
            output_tokens: Some(Tokens(output)),
            stream: Some(!a.no_stream),
            models: vec![Weighted {
                name: a.model.clone(),
                weight: None,
            }],
            ..Workload::default()
        },
        slo: None,
        thresholds: a.thresholds.iter().map(|t| Loc::new(t.clone())).collect(),
        seed: Some(a.seed),
        max_in_flight: Some(a.max_in_flight.max(1) as u64),
        retries: Some(a.retries),
        retry_backoff: Some(Dur(
            parse_duration(&a.retry_backoff).context("--retry-backoff")?
        )),
        stop: None,
        arms: Vec::new(),
        arm_window: None,
    };
    Ok(Config {
        file: ConfigFile {
            targets: vec![target],
            scenarios: vec![scenario],
            suite: Vec::new(),
        },
        origin: "command line".into(),
        text: String::new(),
    })
}

/// `results/<UTC date>T<time>Z`, unique within the second.
fn default_dir() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d, hh, mm, ss) = inferbench_report::utc_parts(secs);
    let base = format!("results/{y:04}-{m:02}-{d:02}T{hh:02}{mm:02}{ss:02}Z");
    let mut dir = PathBuf::from(&base);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = PathBuf::from(format!("{base}-{n}"));
    }
    dir
}

/// Creates `dir` and proves it writable (a probe file created and removed): run before any
/// request is sent, so an unusable `--out` fails at once instead of after the run.
fn prepare_out(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
    let probe = dir.join(format!(".inferbench-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")
        .with_context(|| format!("cannot write to the output directory {}", dir.display()))?;
    std::fs::remove_file(&probe)
        .with_context(|| format!("cannot write to the output directory {}", dir.display()))?;
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it, synced, then
/// renamed over `path` (a reader never sees a truncated file; a failed write leaves the old one).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes report.json, report.md, report.html and report.csv into `dir`, each atomically.
fn write_reports(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let files = [
        ("report.json", serde_json::to_string_pretty(report)?),
        ("report.md", inferbench_report::markdown::render(report)),
        ("report.html", inferbench_report::html::render(report)),
        ("report.csv", inferbench_report::csv::render(report)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Where the report goes when `--out` cannot take it: `$TMPDIR/inferbench-<unix time>-<pid>/`.
fn fallback_dir() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("inferbench-{secs}-{}", std::process::id()))
}

/// Writes the final report into `dir`, else into a fallback directory; says on stderr what
/// failed and where it went. Returns the directory that holds it (none: written nowhere).
fn save(dir: &Path, report: &Report) -> Option<PathBuf> {
    let e = match write_reports(dir, report) {
        Ok(()) => return Some(dir.to_path_buf()),
        Err(e) => e,
    };
    eprintln!(
        "error: the report could not be written to {}: {e:#}",
        dir.display()
    );
    let fallback = fallback_dir();
    let saved = std::fs::create_dir_all(&fallback)
        .with_context(|| format!("cannot create {}", fallback.display()))
        .and_then(|()| write_reports(&fallback, report));
    match saved {
        Ok(()) => {
            eprintln!("the report was written to {} instead", fallback.display());
            Some(fallback)
        }
        Err(e) => {
            eprintln!(
                "error: nor to {}: {e:#}\nthe summary printed above is all that is left of this run",
                fallback.display()
            );
            None
        }
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
            let cfg = adhoc(&a, url)?;
            inferbench_scenario::validate::validate(&cfg)
                .map_err(|e| anyhow::anyhow!("{}", flag_names(&e.to_string())))?;
            (cfg, None, None, "command line".to_string())
        }
        (None, None) => (
            Config::parse(inferbench_scenario::BUILTIN_SUITE, "built-in suite")?,
            None,
            a.url.clone(),
            "embedded".to_string(),
        ),
    };
    let dir = a.out.clone().unwrap_or_else(default_dir);
    // Before any request: a run whose results cannot be kept should not start.
    prepare_out(&dir)?;
    let opts = Options {
        scale: a.scale,
        url_override,
        only_scenario: a.scenario.clone(),
        only_target: opts_target,
        log_dir: a.log_requests.then(|| dir.clone()),
        progress: true,
        config_label: Some(label.clone()),
        router_exe: std::env::current_exe().ok(),
    };
    // Fail fast on an unreachable target: one connection attempt per URL before any load.
    for t in &config.file.targets {
        let urls = opts
            .url_override
            .clone()
            .unwrap_or_else(|| t.url.value.clone());
        if urls == "embedded" {
            continue;
        }
        if opts.only_target.as_deref().is_some_and(|n| n != *t.name) {
            continue;
        }
        for u in urls.split(',') {
            preflight(u.trim()).await?;
        }
    }
    if label == "embedded" {
        eprintln!(
            "inferbench: no target given: running the built-in suite (about 90 s) against an embedded mock fleet.\n\
             Your own endpoint: inferbench run --target http://HOST:PORT --rate 10 --duration 30s, or a scenario file (see examples/)."
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Registered now, before any load: a Ctrl-C at any point writes a partial report.
    let ctrl_c = crate::mock_cmd::Signals::install()?;
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
        if let Err(e) = write_reports(&dir2, so_far)
            && !std::mem::replace(&mut warned, true)
        {
            eprintln!("warning: {e:#} (tried again at the end)");
        }
    })
    .await?;
    let interrupted = signal.is_finished() && signal.await.unwrap_or(false);
    let mut report = report;
    report.partial |= interrupted;
    let saved = save(&dir, &report);
    print_summary(&report, saved.as_deref());
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
    Ok(code)
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

async fn preflight(target: &str) -> anyhow::Result<()> {
    let shown = runner::redact(target);
    let uri: http::Uri = target
        .parse()
        .with_context(|| format!("target `{shown}` is not a URL"))?;
    let host = uri
        .host()
        .with_context(|| format!("target `{shown}` has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("cannot connect to {host}:{port} ({shown}): {e}"),
        Err(_) => bail!("cannot connect to {host}:{port} ({shown}): no answer in 5 s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(parse_dist("64").unwrap(), LengthDist::Fixed { value: 64 });
        assert_eq!(
            parse_dist("uniform:10:20").unwrap(),
            LengthDist::Uniform { min: 10, max: 20 }
        );
        assert!(
            parse_dist("uniform:20:10")
                .unwrap_err()
                .to_string()
                .contains("min")
        );
        assert!(parse_dist("normal:1:2").is_err());
        assert!(parse_dist("lognormal:200:0.5:1:4000").is_ok());
        assert!(parse_dist("-3").is_err());
    }
}
