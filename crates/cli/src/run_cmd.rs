//! `inferbench run --target URL …`: flags → plan → engine → report.json and a console summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use http::{HeaderName, HeaderValue};
use inferbench_loadgen::client::{Api, Client, ClientConfig, RequestSpec};
use inferbench_loadgen::engine::{self, Live, Load, Plan, Retry};
use inferbench_loadgen::log::RequestLog;
use inferbench_results::run::{RunResult, SCHEMA_VERSION};
use inferbench_workload::arrivals::Arrival;
use inferbench_workload::dist::LengthDist;
use inferbench_workload::prompt::PromptSynth;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// Flags of `inferbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Base URL of an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000.
    #[arg(long)]
    target: String,
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
    /// Requests to send in all (warm-up included).
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
    /// Write one JSON line per request to DIR/requests.jsonl as the run goes.
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
    /// Where report.json goes (default results/<unix time>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Total timeout per request.
    #[arg(long, default_value = "600s")]
    timeout: String,
    /// Timeout to the first token.
    #[arg(long, default_value = "60s")]
    ttft_timeout: String,
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
}

/// Parses a length: `N`, `uniform:MIN:MAX`, `normal:MEAN:SD:MIN:MAX`, `lognormal:MEDIAN:SIGMA:MIN:MAX`.
pub fn parse_dist(s: &str) -> anyhow::Result<LengthDist> {
    let parts: Vec<&str> = s.split(':').map(str::trim).collect();
    let n = |i: usize| -> anyhow::Result<f64> {
        let p = parts
            .get(i)
            .with_context(|| format!("`{s}` has too few fields"))?;
        p.parse::<f64>()
            .with_context(|| format!("`{p}` in `{s}` is not a number"))
    };
    let u = |i: usize| -> anyhow::Result<usize> {
        let v = n(i)?;
        anyhow::ensure!(
            v >= 0.0 && v.fract() == 0.0,
            "`{v}` in `{s}` is not a whole number ≥ 0"
        );
        Ok(v as usize)
    };
    let d = match parts[0] {
        "uniform" if parts.len() == 3 => LengthDist::Uniform {
            min: u(1)?,
            max: u(2)?,
        },
        "normal" if parts.len() == 5 => LengthDist::Normal {
            mean: n(1)?,
            stddev: n(2)?,
            min: u(3)?,
            max: u(4)?,
        },
        "lognormal" if parts.len() == 5 => LengthDist::Lognormal {
            median: n(1)?,
            sigma: n(2)?,
            min: u(3)?,
            max: u(4)?,
        },
        _ if parts.len() == 1 => LengthDist::Fixed { value: u(0)? },
        _ => bail!(
            "`{s}` is not N, uniform:MIN:MAX, normal:MEAN:SD:MIN:MAX or lognormal:MEDIAN:SIGMA:MIN:MAX"
        ),
    };
    d.validate().map_err(|e| anyhow::anyhow!("`{s}`: {e}"))?;
    Ok(d)
}

/// Parses `30s`, `2m`, `500ms`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("`{s}` is not a duration (e.g. 30s, 2m, 500ms)"))?;
    if !v.is_finite() || v < 0.0 {
        bail!("`{s}` is not a duration ≥ 0");
    }
    Ok(Duration::from_secs_f64(v * mul))
}

/// Runs the load; returns the process exit code (0 done, 130 interrupted).
pub async fn run(a: RunArgs) -> anyhow::Result<u8> {
    let api = match a.api.as_str() {
        "chat" => Api::Chat,
        "completions" => Api::Completions,
        other => bail!("--api must be chat or completions, not `{other}`"),
    };
    let arrival = match a.arrival.as_str() {
        "constant" => Arrival::Constant,
        "poisson" => Arrival::Poisson,
        other => bail!("--arrival must be constant or poisson, not `{other}`"),
    };
    let load = match (a.rate, a.concurrency) {
        (Some(r), None) if r.is_finite() && r > 0.0 => Load::Open { rate: r, arrival },
        (Some(r), None) => bail!("--rate must be a positive number, got {r}"),
        (None, Some(c)) if c > 0 => Load::Closed { concurrency: c },
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
    let prompt_dist = parse_dist(&a.prompt_tokens).context("--prompt-tokens")?;
    let output_dist = parse_dist(&a.output_tokens).context("--output-tokens")?;
    if output_dist.sample(&mut Xoshiro256PlusPlus::seed_from_u64(0)) == 0
        && matches!(output_dist, LengthDist::Fixed { .. })
    {
        bail!("--output-tokens must be at least 1");
    }
    let mut cfg = ClientConfig::new(&a.target);
    cfg.api = api;
    cfg.http2 = a.http2;
    cfg.total_timeout = parse_duration(&a.timeout).context("--timeout")?;
    cfg.ttft_timeout = parse_duration(&a.ttft_timeout).context("--ttft-timeout")?;
    if let Some(var) = &a.api_key_env {
        let key = std::env::var(var)
            .with_context(|| format!("--api-key-env: environment variable {var} is not set"))?;
        cfg.api_key = Some(key);
    }
    for h in &a.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header `{h}` is not `Name: value`"))?;
        let name = HeaderName::try_from(name.trim())
            .with_context(|| format!("--header: bad name `{}`", name.trim()))?;
        let value = HeaderValue::try_from(value.trim())
            .with_context(|| format!("--header {name}: bad value"))?;
        cfg.headers.push((name, value));
    }
    let client = Client::new(&cfg)?;
    let stream = !a.no_stream;
    let synth = PromptSynth::new();
    let (model, seed) = (a.model.clone(), a.seed);
    let source: engine::Source = Arc::new(move |k| {
        // Each request's lengths come from its own seeded stream: the same seed, the same run.
        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        RequestSpec {
            model: model.clone(),
            prompt: synth.prompt(
                seed.wrapping_mul(1_000_003).wrapping_add(k),
                prompt_dist.sample(&mut rng),
            ),
            max_tokens: output_dist.sample(&mut rng).max(1),
            stream,
            ..Default::default()
        }
    });
    let dir = a.out.clone().unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!("results/{now}"))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (log, log_writer) = if a.log_requests {
        let (l, w) = RequestLog::create(&dir.join("requests.jsonl"))?;
        (Some(l), Some(w))
    } else {
        (None, None)
    };
    let plan = Plan {
        load,
        duration,
        requests: a.requests,
        warmup: parse_duration(&a.warmup).context("--warmup")?,
        max_in_flight: a.max_in_flight.max(1),
        seed: a.seed,
        log,
        slo: None,
        retry: Retry {
            attempts: a.retries,
            backoff: parse_duration(&a.retry_backoff).context("--retry-backoff")?,
        },
    };
    let load = plan.load.clone();
    let live = Arc::new(Live::default());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Registered now, before any load: a Ctrl-C at any point writes a partial report.
    let ctrl_c = crate::mock_cmd::Signals::install()?;
    let signal = tokio::spawn(async move {
        ctrl_c.wait().await;
        let _ = stop_tx.send(true);
        true
    });
    // Fail fast on an unreachable target: one connection attempt before the load starts.
    preflight(&a.target).await?;
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let progress = spawn_progress(live.clone(), duration, a.requests);
    let out = engine::run(client, source, plan, live, stop_rx, Duration::from_secs(5)).await;
    progress.abort();
    let _ = progress.await;
    // The engine has dropped its log senders: wait for every line to reach the disk.
    let log_dropped = match log_writer {
        Some(w) => w.finish()?.1,
        None => 0,
    };
    let interrupted = signal.is_finished() && signal.await.unwrap_or(false);
    let r = out.recorded;
    let mut result = RunResult {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix_s,
        duration_s: out.measured_s,
        target: redact(&a.target),
        load: match load {
            Load::Open { rate, arrival } => format!("rate {rate}/s {arrival:?}").to_lowercase(),
            Load::Closed { concurrency } => format!("concurrency {concurrency}"),
            _ => "stages".to_string(),
        },
        target_rate: match load {
            Load::Open { rate, .. } => Some(rate),
            _ => None,
        },
        partial: out.stopped || interrupted,
        total: r.total,
        by_model: r.by_model,
        by_endpoint: r.by_endpoint,
        misrouted: r.misrouted,
        client: r.client,
        warnings: Vec::new(),
    };
    let lag = result.client.dispatch_lag.summary();
    if matches!(load, Load::Open { .. }) && lag.p99_us > 1000 {
        result.warnings.push(format!(
            "the client fell behind its schedule: dispatch lag p99 {:.2} ms (latencies from the planned instant include it)",
            lag.p99_us as f64 / 1000.0
        ));
    }
    if result.client.retries > 0 {
        result.warnings.push(format!(
            "{} retries were made (latencies count from each request's first attempt)",
            result.client.retries
        ));
    }
    if result.client.dropped > 0 {
        result.warnings.push(format!(
            "{} arrivals were dropped at the in-flight cap",
            result.client.dropped
        ));
    }
    if log_dropped > 0 {
        result.warnings.push(format!(
            "{log_dropped} request-log lines were dropped (the disk did not keep up)"
        ));
    }
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    print_summary(&result);
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "report: {}", path.display());
    Ok(if interrupted { 130 } else { 0 })
}

/// A live line on stderr (only when it is a terminal): elapsed, sent, done, errors, rate, in flight.
fn spawn_progress(
    live: Arc<Live>,
    duration: Option<Duration>,
    requests: Option<u64>,
) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    let bar = match (duration, requests) {
        (_, Some(n)) => indicatif::ProgressBar::new(n),
        (Some(d), None) => indicatif::ProgressBar::new(d.as_secs().max(1)),
        (None, None) => indicatif::ProgressBar::no_length(),
    };
    let by_time = requests.is_none();
    let style = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut last = (start, 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        struct Clear(indicatif::ProgressBar);
        impl Drop for Clear {
            fn drop(&mut self) {
                self.0.finish_and_clear();
            }
        }
        let guard = Clear(bar);
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let done = live.done.load(Ordering::Relaxed);
            let rate = (done - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            last = (now, done);
            guard.0.set_position(if by_time {
                (now - start).as_secs()
            } else {
                live.sent.load(Ordering::Relaxed)
            });
            guard.0.set_message(format!(
                "sent {} done {} errors {} · {:.0} req/s · in flight {}",
                live.sent.load(Ordering::Relaxed),
                done,
                live.errors.load(Ordering::Relaxed),
                rate,
                live.in_flight.load(Ordering::Relaxed)
            ));
        }
    })
}

async fn preflight(target: &str) -> anyhow::Result<()> {
    let uri: http::Uri = target
        .parse()
        .with_context(|| format!("--target `{target}` is not a URL"))?;
    let host = uri
        .host()
        .with_context(|| format!("--target `{target}` has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("cannot connect to {host}:{port} ({}): {e}", redact(target)),
        Err(_) => bail!(
            "cannot connect to {host}:{port} ({}): no answer in 5 s",
            redact(target)
        ),
    }
}

/// The URL without any `user:password@`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Writes the console summary; a closed stdout (e.g. piped to `head`) is not an error.
fn print_summary(r: &RunResult) {
    use std::fmt::Write as _;
    let mut o = String::new();
    let c = &r.total.counts;
    let _ = writeln!(
        o,
        "\ninferbench run: {} against {}{}",
        r.load,
        r.target,
        if r.partial {
            "  (PARTIAL: interrupted)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "requests {} ok {} failed {}  ·  {:.2} req/s{}  ·  output {:.0} tok/s  ·  {:.1} s measured",
        c.requests,
        c.ok,
        c.failed(),
        r.achieved_rate(),
        r.target_rate
            .map(|t| format!(" (target {t})"))
            .unwrap_or_default(),
        c.output_tokens as f64 / r.duration_s.max(1e-9),
        r.duration_s
    );
    let _ = writeln!(
        o,
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "ms", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    let l = &r.total.latency;
    for (name, h) in [
        ("TTFT", &l.ttft),
        ("TTFT (from planned)", &l.ttft_from_planned),
        ("ITL", &l.itl),
        ("TPOT", &l.tpot),
        ("e2e", &l.e2e),
        ("e2e (from planned)", &l.e2e_from_planned),
        ("TTFB", &l.ttfb),
        ("dispatch lag", &r.client.dispatch_lag),
    ] {
        let s = h.summary();
        let ms = |v: u64| v as f64 / 1000.0;
        let _ = writeln!(
            o,
            "{:<22} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            ms(s.p50_us),
            ms(s.p90_us),
            ms(s.p95_us),
            ms(s.p99_us),
            ms(s.p999_us),
            ms(s.max_us)
        );
    }
    for (k, v) in &c.errors {
        let _ = writeln!(o, "error {k}: {v}");
    }
    for (m, g) in &r.by_model {
        let t = g.latency.ttft.summary();
        let _ = writeln!(
            o,
            "model {m}: {} requests, {} ok, TTFT p50 {:.3} ms p99 {:.3} ms, output {:.0} tok/s",
            g.counts.requests,
            g.counts.ok,
            t.p50_us as f64 / 1000.0,
            t.p99_us as f64 / 1000.0,
            g.counts.output_tokens as f64 / r.duration_s.max(1e-9)
        );
    }
    if r.misrouted > 0 {
        let _ = writeln!(o, "misrouted (served by another model): {}", r.misrouted);
    }
    if r.by_endpoint.len() > 1 {
        for (e, g) in &r.by_endpoint {
            let share = g.counts.requests as f64 * 100.0 / c.requests.max(1) as f64;
            let _ = writeln!(
                o,
                "endpoint {e}: {} requests ({share:.1}%)",
                g.counts.requests
            );
        }
    }
    let _ = writeln!(
        o,
        "client: peak in flight {}, late (> 1 ms) {}, dropped {}, CPU {:.3} s ({:.3} s per 1,000 requests)",
        r.client.peak_in_flight,
        r.client.late,
        r.client.dropped,
        r.client.cpu_seconds,
        r.client.cpu_s_per_1000()
    );
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(o.as_bytes());
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
        assert_eq!(redact("http://u:secret@host:80/x"), "http://host:80/x");
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
