//! `arms:` — the same load through several routing arms (`direct` to the fleet, reference
//! routers, other gateways) in alternating windows, so drift in the fleet hits every arm alike.
//! Each arm is reported on its own, with what it adds over `direct`: TTFT and end-to-end
//! latency, throughput, and the router's CPU and memory.

use std::time::Duration;

use inferbench_loadgen::engine::Load;
use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::RunResult;
use inferbench_results::suite::{ArmReport, StageReport};
use tokio::sync::watch;

use super::Ran;
use super::flat::flat_load;
use crate::client::{client_for, redact};
use crate::routers::ArmServer;
use crate::step::{Ctx, Step, load_label, run_step, scaled};
use crate::{Options, RunError};

/// The fleet's `host:port`s from its base URLs, for the routers' pools.
pub fn backends(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| {
            u.trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_string()
        })
        .collect()
}

/// How many rounds of windows fill `total` (at least one).
pub fn rounds(total: Duration, window: Duration) -> usize {
    (total.as_secs_f64() / window.as_secs_f64()).ceil().max(1.0) as usize
}

/// The arm that runs `j`-th in round `round` of `n` arms: the order rotates each round so no
/// arm always follows the same one.
pub fn arm_at(round: usize, j: usize, n: usize) -> usize {
    (j + round) % n
}

/// The seed of arm `idx`'s window in round `round`: each window gets its own requests
/// (repeating the same prompts would turn the later windows into prefix-cache hits).
pub fn window_seed(seed: u64, round: usize, n: usize, idx: usize) -> u64 {
    seed.wrapping_add((round * n + idx + 1) as u64 * 0x9E37)
}

/// Starts every arm of the scenario.
async fn start(ctx: &Ctx<'_>) -> Result<Vec<ArmServer>, RunError> {
    let backends = backends(&ctx.urls);
    let mut servers = Vec::new();
    for (i, a) in ctx.scenario.arms.iter().enumerate() {
        let server = ArmServer::start(
            a,
            i,
            &backends,
            &|f| ctx.config.relative(f),
            ctx.opts.router_exe.as_deref(),
        )
        .await
        .map_err(|e| RunError::Client {
            target: ctx.target.name.value.clone(),
            message: format!("arm `{}` did not start: {e}", a.name()),
        })?;
        servers.push(server);
    }
    Ok(servers)
}

/// What one arm gathered over its windows.
#[derive(Default, Clone)]
struct Gathered {
    /// Its windows' results, merged.
    result: Option<RunResult>,
    /// Its router's CPU seconds over its own windows only (scrapes run all along).
    cpu_s: Option<f64>,
    /// Requests sent through it, warm-up included.
    sent: u64,
}

/// Runs the arms: `rounds` of one window per arm, then one report per arm.
pub async fn run(ctx: &Ctx<'_>, stop: watch::Receiver<bool>) -> Result<Ran, RunError> {
    let s = ctx.scenario;
    let servers = start(ctx).await?;
    let load = flat_load(&s.load, ctx.arrival).unwrap_or(Load::Closed { concurrency: 1 });
    let window = scaled(
        s.arm_window.map_or(Duration::from_secs(5), |d| d.0),
        ctx.opts.scale,
    );
    let rounds = rounds(ctx.duration.unwrap_or(window), window);
    if ctx.opts.progress {
        let names: Vec<&str> = servers.iter().map(|a| a.name.as_str()).collect();
        eprintln!(
            "▶ {} · arms {} · {} · {rounds} round(s) of {:.1} s windows",
            s.name.value,
            names.join(", "),
            load_label(&load),
            window.as_secs_f64()
        );
    }
    let quiet = Options {
        progress: false,
        ..ctx.opts.clone()
    };
    let gathered = windows(ctx, &servers, &quiet, &load, window, rounds, stop).await?;
    let direct = s
        .arms
        .iter()
        .position(|a| a.name() == "direct")
        .and_then(|i| gathered[i].result.clone());
    let mut ran = Ran::default();
    for (server, mut g) in servers.iter().zip(gathered) {
        let Some(mut r) = g.result.take() else {
            continue;
        };
        r.load = format!("arm {} · {}", server.name, load_label(&load));
        r.warnings.dedup();
        let report = arm_report(server, r, &g, direct.as_ref());
        ran.stages.push(StageReport {
            name: server.name.clone(),
            result: report.result.clone(),
        });
        ran.wholes.push(report.result.clone());
        ran.arms.push(report);
    }
    for server in servers {
        server.shutdown().await;
    }
    Ok(ran)
}

/// Runs the windows, round by round; returns what each arm gathered.
async fn windows(
    ctx: &Ctx<'_>,
    servers: &[ArmServer],
    quiet: &Options,
    load: &Load,
    window: Duration,
    rounds: usize,
    stop: watch::Receiver<bool>,
) -> Result<Vec<Gathered>, RunError> {
    let n = servers.len();
    let mut gathered = vec![Gathered::default(); n];
    // One client per arm for the whole run: its connections stay open from one window to the
    // next, as a gateway's clients keep theirs (no connection set-up in every window).
    let clients = servers
        .iter()
        .map(|a| client_for(ctx.target, &a.url))
        .collect::<Result<Vec<_>, _>>()?;
    for round in 0..rounds {
        for j in 0..n {
            if *stop.borrow() {
                return Ok(gathered);
            }
            let idx = arm_at(round, j, n);
            let seed = window_seed(ctx.seed, round, n, idx);
            let arm_ctx = Ctx {
                config: ctx.config,
                scenario: ctx.scenario,
                target: ctx.target,
                client: clients[idx].clone(),
                source: crate::requests::source(
                    ctx.config,
                    ctx.scenario,
                    ctx.target,
                    seed,
                    ctx.opts.scale,
                    ctx.trace.clone(),
                )?,
                urls: servers[idx].url.clone(),
                opts: quiet,
                slo: ctx.slo,
                seed,
                arrival: ctx.arrival,
                warmup: ctx.warmup,
                duration: ctx.duration,
                requests: ctx.requests,
                shard: ctx.shard,
                start_at: ctx.start_at,
                sampler: ctx.sampler.clone(),
                servers: ctx.servers.clone(),
                trace: ctx.trace.clone(),
                steps_run: Default::default(),
            };
            let mut step = Step::flat(
                servers[idx].name.clone(),
                load.clone(),
                window,
                if round == 0 {
                    ctx.warmup
                } else {
                    Duration::ZERO
                },
            );
            step.log_tag = format!("-w{}", round + 1);
            let cpu_before = servers[idx].cpu_s();
            let (_, w) = run_step(&arm_ctx, step, stop.clone()).await;
            let g = &mut gathered[idx];
            if let (Some(a), Some(b)) = (servers[idx].cpu_s(), cpu_before) {
                *g.cpu_s.get_or_insert(0.0) += a - b;
            }
            g.sent += w.client.sent;
            match &mut g.result {
                Some(m) => m.append(&w),
                slot => *slot = Some(w),
            }
        }
    }
    Ok(gathered)
}

/// p50, p95 and p99 of `a` minus those of `b`, µs.
fn added(a: &LatencyHistogram, b: &LatencyHistogram) -> [i64; 3] {
    let (a, b) = (a.summary(), b.summary());
    [
        a.p50_us as i64 - b.p50_us as i64,
        a.p95_us as i64 - b.p95_us as i64,
        a.p99_us as i64 - b.p99_us as i64,
    ]
}

/// The report of one arm with result `r`; its overhead is against `direct` when there is one
/// and both served requests.
fn arm_report(
    server: &ArmServer,
    r: RunResult,
    g: &Gathered,
    direct: Option<&RunResult>,
) -> ArmReport {
    let is_direct = server.name == "direct";
    let base = direct.filter(|d| !is_direct && r.total.counts.ok > 0 && d.total.counts.ok > 0);
    let c = &r.total.counts;
    // An arm sent to a URL (another gateway) has no router of ours to measure: a process
    // watched under the arm's name (`--watch-process epp=PID`) stands for it, over exactly
    // the arm's measured windows.
    let watched = r.processes.iter().find(|p| p.name == server.name);
    let (cpu_s, per_1000, peak_rss_mb) = match (g.cpu_s, watched) {
        // Per request it carried in its windows, warm-up included (the CPU covers it).
        (Some(cpu), _) => (
            Some(cpu),
            Some(cpu * 1000.0 / g.sent.max(1) as f64),
            server.peak_rss_mb(),
        ),
        (None, Some(p)) => (
            Some(p.cpu_s),
            Some(p.cpu_s * 1000.0 / c.requests.max(1) as f64),
            Some(p.peak_rss_mb),
        ),
        (None, None) => (None, None, None),
    };
    ArmReport {
        name: server.name.clone(),
        url: redact(&server.url),
        router_cpu_s: cpu_s,
        router_cpu_per_1000: per_1000,
        router_peak_rss_mb: peak_rss_mb,
        ttft_added_us: base.map(|d| added(&r.total.latency.ttft, &d.total.latency.ttft)),
        e2e_added_us: base.map(|d| added(&r.total.latency.e2e, &d.total.latency.e2e)),
        throughput_change_pct: direct
            .filter(|_| !is_direct)
            .map(|d| (r.achieved_rate() / d.achieved_rate().max(1e-9) - 1.0) * 100.0),
        prefix_hit_rate: c.cached_tokens as f64 / c.input_tokens.max(1) as f64,
        routing_accuracy: 1.0 - r.misrouted as f64 / c.requests.max(1) as f64,
        result: r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_host_ports() {
        assert_eq!(
            backends("http://127.0.0.1:1/v1, http://127.0.0.1:2/"),
            ["127.0.0.1:1", "127.0.0.1:2"]
        );
    }

    #[test]
    fn windows_rotate_and_cover_the_duration() {
        let s = Duration::from_secs;
        assert_eq!(rounds(s(60), s(5)), 12);
        assert_eq!(rounds(s(61), s(5)), 13);
        assert_eq!(rounds(s(1), s(5)), 1);
        // Three arms: each round starts one later, every arm once per round.
        let order: Vec<Vec<usize>> = (0..3)
            .map(|r| (0..3).map(|j| arm_at(r, j, 3)).collect())
            .collect();
        assert_eq!(order, [[0, 1, 2], [1, 2, 0], [2, 0, 1]]);
        // Every window its own seed.
        let mut seeds: Vec<u64> = (0..4)
            .flat_map(|r| (0..3).map(move |i| window_seed(7, r, 3, i)))
            .collect();
        seeds.sort_unstable();
        seeds.dedup();
        assert_eq!(seeds.len(), 12);
    }

    #[test]
    fn overhead_is_the_difference_of_percentiles() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        for i in 0..100 {
            a.record(2_000 + i);
            b.record(1_000 + i);
        }
        let d = added(&a, &b);
        assert!(d.iter().all(|x| (990..=1010).contains(x)), "{d:?}");
    }
}
