//! One scenario against one target: pick its load kind, run it, total the steps, judge.

use std::time::Duration;

use inferbench_config::{ArrivalKind, Config, Scenario, Target};
use inferbench_results::run::RunResult;
use inferbench_results::suite::ScenarioReport;
use inferbench_workload::arrivals::Arrival;
use tokio::sync::watch;

use crate::client::{client_for, redact};
use crate::kinds::{self, Kind, Ran};
use crate::step::{Ctx, scaled};
use crate::verdict::{Rules, slo_limits, verdicts};
use crate::{Options, RunError};

/// Runs scenario `s` against target `t` at `urls` (its `repeat`-th time: each repeat gets its
/// own seed).
pub async fn run_scenario(
    c: &Config,
    s: &Scenario,
    t: &Target,
    urls: &str,
    repeat: u32,
    opts: &Options,
    stop: watch::Receiver<bool>,
) -> Result<ScenarioReport, RunError> {
    let ctx = context(c, s, t, urls, repeat, opts)?;
    let l = &s.load;
    let kind = Kind::of_scenario(s);
    let ran = match (kind, l) {
        (Kind::Arms, _) => kinds::arms::run(&ctx, stop).await?,
        (Kind::Rate | Kind::Concurrency, _) => match kinds::flat::flat_load(l, ctx.arrival) {
            Some(load) => kinds::flat::run(&ctx, load, stop).await,
            None => Ran::default(),
        },
        (Kind::Stages, l) => match &l.stages {
            Some(list) => kinds::stages::run(&ctx, list, stop).await,
            None => Ran::default(),
        },
        (Kind::Users, l) => match &l.users {
            Some(u) => kinds::users::run(&ctx, u, stop).await,
            None => Ran::default(),
        },
        (Kind::Sweep, l) => match &l.sweep {
            Some(sw) => kinds::sweep::run(&ctx, sw, stop).await,
            None => Ran::default(),
        },
        (Kind::Stress, l) => match &l.stress {
            Some(st) => kinds::stress::run(&ctx, st, stop).await,
            None => Ran::default(),
        },
        (Kind::Trace, _) => match &ctx.trace {
            Some(tr) => kinds::trace::run(&ctx, tr, stop).await,
            None => Ran::default(),
        },
        (Kind::None, _) => Ran::default(),
    };
    let mut ran = ran;
    let mut total = total(urls, kind, &ran.wholes);
    if let Some(p) = &opts.prometheus {
        // Let Prometheus scrape past the last window, then read every window.
        tokio::time::sleep(p.settle).await;
        for st in &mut ran.stages {
            p.attach(&mut st.result).await;
        }
        for a in &mut ran.arms {
            p.attach(&mut a.result).await;
        }
        p.attach(&mut total).await;
        if server_metrics_from_prometheus(opts) {
            for st in &mut ran.stages {
                attach_server_side(p, opts, &mut st.result).await;
            }
            for a in &mut ran.arms {
                attach_server_side(p, opts, &mut a.result).await;
            }
            attach_server_side(p, opts, &mut total).await;
        }
    }
    // A stress test that broke stopped at the step that broke.
    let broke = ran
        .breaking_point
        .as_ref()
        .is_some_and(|b| b.breaking_rate.is_some());
    let rules = Rules::of(s);
    let (thresholds, slo) = verdicts(&rules, kind, &total, &ran.wholes, broke, &ran.arms);
    let passed = thresholds.iter().all(|c| c.passed) && slo.as_ref().is_none_or(|s| s.passed);
    let trace = ctx.trace.as_ref().map(|tr| tr.report(&total));
    Ok(ScenarioReport {
        name: s.name.value.clone(),
        description: s.description.clone(),
        target: t.name.value.clone(),
        url: redact(urls),
        repeat,
        kind: kind.name().to_string(),
        stages: ran.stages,
        total,
        slo,
        thresholds,
        breaking_point: ran.breaking_point,
        arms: ran.arms,
        trace,
        passed,
    })
}

/// What every step of the scenario shares: client, requests, seed, and the scaled durations.
fn context<'a>(
    c: &'a Config,
    s: &'a Scenario,
    t: &'a Target,
    urls: &str,
    repeat: u32,
    opts: &'a Options,
) -> Result<Ctx<'a>, RunError> {
    let seed = s.seed.unwrap_or(1).wrapping_add(u64::from(repeat) - 1);
    let sc = opts.scale;
    let duration = s.duration.as_ref().map(|d| scaled(d.value.0, sc));
    let trace = crate::trace::prepare(c, s, duration, sc)?;
    // A trace at a load's pace sends its requests once (unless `requests` says otherwise).
    let requests = s
        .requests
        .map(|n| ((n as f64 * sc).round() as u64).max(1))
        .or_else(|| {
            trace
                .as_ref()
                .filter(|tr| !tr.at_trace_instants && duration.is_none())
                .map(|tr| tr.picked.len() as u64)
        });
    Ok(Ctx {
        config: c,
        scenario: s,
        target: t,
        client: client_for(t, urls)?,
        source: crate::requests::source(c, s, t, seed, sc, trace.clone())?,
        trace,
        steps_run: Default::default(),
        urls: urls.to_string(),
        opts,
        slo: s.slo.as_ref().map(slo_limits),
        seed,
        arrival: match s.load.arrival.unwrap_or_default() {
            ArrivalKind::Constant => Arrival::Constant,
            ArrivalKind::Poisson => Arrival::Poisson,
        },
        warmup: s.warmup.map_or(Duration::ZERO, |d| scaled(d.0, sc)),
        duration,
        // `--scale` shortens request-count runs too.
        requests,
        shard: opts.shard.unwrap_or_default(),
        // One sampler per scenario run, sampling every second until the scenario ends.
        sampler: (!opts.watch.is_empty()).then(|| {
            std::sync::Arc::new(crate::watch::Sampler::start(
                opts.watch.clone(),
                Duration::from_secs(1),
            ))
        }),
        start_at: opts.start_at_unix_ms.map(instant_of).transpose()?,
        servers: server_endpoints(t, urls, opts)?.map(|e| {
            crate::server_metrics::ServerSampler::start(
                e,
                opts.server_profile.clone(),
                Duration::from_secs(1),
            )
        }),
    })
}

/// `--server-metrics prometheus`: the servers' side is read from `--prometheus` after the run.
fn server_metrics_from_prometheus(opts: &Options) -> bool {
    opts.server_metrics
        .as_ref()
        .is_some_and(|l| l.iter().any(|u| u == "prometheus"))
}

/// The servers' side of `r`'s windows from Prometheus, and where the TTFT went; a failure is a
/// warning.
async fn attach_server_side(p: &crate::promql::Prometheus, opts: &Options, r: &mut RunResult) {
    match crate::server_metrics::view_from_prometheus(
        p,
        opts.server_profile.as_ref(),
        &opts.server_selector,
        &r.windows,
    )
    .await
    {
        Ok(Some(v)) => r.server = Some(v),
        Ok(None) => r.warnings.push(
            "server metrics: Prometheus has no vllm:, llamacpp: or sglang: series (give --server-metrics-map)".into(),
        ),
        Err(e) => r.warnings.push(format!("server metrics: {e}")),
    }
    r.decompose();
    if let Some(d) = &r.decomposition {
        r.warnings.extend(d.warnings.iter().cloned());
    }
}

/// The `host:port` of each model server whose `/metrics` to scrape, if any: `--server-metrics`
/// (`target`: the target's URLs), else the target's `server_metrics`, else the embedded
/// fleet's.
fn server_endpoints(
    t: &Target,
    urls: &str,
    opts: &Options,
) -> Result<Option<Vec<String>>, RunError> {
    use inferbench_config::file::ServerMetrics;
    // `what` names where the URL came from, for the error.
    let split = |s: &str, what: &str| -> Result<Vec<String>, RunError> {
        s.split(',')
            .map(|u| {
                let bad = || {
                    RunError::Select(format!(
                        "{what}: `{}` is not a server's URL (http://HOST:PORT)",
                        redact(u.trim())
                    ))
                };
                let uri: http::Uri = u.trim().parse().map_err(|_| bad())?;
                let (h, p) = inferbench_loadgen::net::host_port(&uri).ok_or_else(bad)?;
                Ok(format!("{h}:{p}"))
            })
            .collect()
    };
    if server_metrics_from_prometheus(opts) {
        return Ok(None);
    }
    let target_field = format!("target `{}`: server_metrics", t.name.value);
    let mut list = Vec::new();
    match (&opts.server_metrics, &t.server_metrics) {
        (Some(given), _) => {
            for u in given {
                list.extend(if u == "target" {
                    split(urls, "the target")?
                } else {
                    split(u, "--server-metrics")?
                });
            }
        }
        (None, Some(ServerMetrics::Enabled(true))) => list = split(urls, "the target")?,
        (None, Some(ServerMetrics::Urls(urls))) => {
            for u in urls {
                list.extend(split(u, &target_field)?);
            }
        }
        (None, None) if t.url.value == "embedded" => list = split(urls, "the embedded fleet")?,
        (None, Some(ServerMetrics::Enabled(false)) | None) => return Ok(None),
    }
    // Each server once, or its counts would add twice.
    let mut seen = std::collections::BTreeSet::new();
    list.retain(|e| seen.insert(e.clone()));
    Ok((!list.is_empty()).then_some(list))
}

/// The monotonic instant of Unix time `unix_ms`, which must not have passed: shards that start
/// late would not send one schedule together.
fn instant_of(unix_ms: u64) -> Result<tokio::time::Instant, RunError> {
    let now_ms = inferbench_timer::unix_now().as_millis();
    let ahead = u128::from(unix_ms).checked_sub(now_ms).ok_or_else(|| {
        RunError::Select(format!(
            "--start-at {unix_ms} is {:.1} s in the past: give every shard a start a little ahead (e.g. now + 60 s)",
            (now_ms - u128::from(unix_ms)) as f64 / 1000.0
        ))
    })?;
    let ahead = std::time::Duration::from_millis(ahead.min(u128::from(u64::MAX)) as u64);
    if ahead > inferbench_config::limits::MAX_DURATION {
        return Err(RunError::Select(format!(
            "--start-at {unix_ms} is {:.0} h ahead: more than the longest duration allowed (7 days)",
            ahead.as_secs_f64() / 3600.0
        )));
    }
    Ok(tokio::time::Instant::now() + ahead)
}

/// The scenario's total: the one run, or every run merged. Steps ran one after another: their
/// times add and their timelines follow each other.
fn total(urls: &str, kind: Kind, wholes: &[RunResult]) -> RunResult {
    let mut total = RunResult::empty(&redact(urls), kind.name());
    for w in wholes {
        total.append(w);
    }
    total.started_unix_s = wholes.first().map_or(0, |w| w.started_unix_s);
    total.load = match wholes {
        [one] => one.load.clone(),
        _ => kind.name().to_string(),
    };
    total.target_rate = match wholes {
        [one] => one.target_rate,
        _ => None,
    };
    total.warnings.dedup();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(load: &str, rate: Option<f64>, requests: u64, started: u64) -> RunResult {
        let mut r = RunResult::empty("http://x", load);
        r.target_rate = rate;
        r.started_unix_s = started;
        r.duration_s = 10.0;
        r.total.counts.requests = requests;
        r.total.counts.ok = requests;
        r.warnings.push("same warning".into());
        r
    }

    #[test]
    fn one_step_is_its_own_total() {
        let t = total(
            "http://u:p@h:1",
            Kind::Rate,
            &[step("rate 5/s", Some(5.0), 50, 9)],
        );
        assert_eq!(t.target, "http://h:1");
        assert_eq!(t.load, "rate 5/s");
        assert_eq!(t.target_rate, Some(5.0));
        assert_eq!(t.started_unix_s, 9);
        assert_eq!(t.total.counts.requests, 50);
    }

    #[test]
    fn steps_add_up_in_the_total() {
        let steps = [
            step("rate 1/s", Some(1.0), 10, 100),
            step("rate 2/s", Some(2.0), 20, 111),
        ];
        let t = total("http://h:1", Kind::Sweep, &steps);
        assert_eq!(t.load, "sweep");
        assert_eq!(t.target_rate, None);
        assert_eq!(t.started_unix_s, 100);
        assert_eq!(t.total.counts.requests, 30);
        assert!((t.duration_s - 20.0).abs() < 1e-9);
        assert_eq!(t.warnings, ["same warning"]);
    }
}
