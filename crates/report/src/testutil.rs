//! Builders the unit tests share: results and scenarios with every section filled in.

use inferbench_results::run::{Group, RunResult, SCHEMA_VERSION, SloLimits};
use inferbench_results::suite::{
    ArmReport, BreakingPoint, Check, Report, ScenarioReport, SloReport, StageReport,
};

/// A passing report of one `rate` scenario called `name` whose result is `total`.
pub(crate) fn one_scenario(name: &str, total: RunResult) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        tool_version: "0.1.0".into(),
        started_unix_s: 1_700_000_000,
        config: Some("examples/x.yaml".into()),
        partial: false,
        shard: None,
        scenarios: vec![ScenarioReport {
            name: name.into(),
            description: None,
            target: "local".into(),
            url: total.target.clone(),
            repeat: 1,
            kind: "rate".into(),
            stages: vec![],
            total,
            slo: None,
            thresholds: vec![],
            breaking_point: None,
            arms: vec![],
            trace: None,
            passed: true,
        }],
    }
}

/// A run of `ok` successful and `failed` failed requests (HTTP 500), `interrupted` more cut
/// short, `sent` sent in all and `reconnects` reconnections.
pub(crate) fn interrupted(
    ok: u64,
    failed: u64,
    interrupted: u64,
    sent: u64,
    reconnects: u64,
) -> RunResult {
    let mut t = RunResult::empty("http://x", "rate 1/s");
    let c = &mut t.total.counts;
    c.requests = ok + failed;
    c.ok = ok;
    c.errors.insert("http_500/model_server".into(), failed);
    c.interrupted = interrupted;
    t.client.sent = sent;
    t.client.reconnects = reconnects;
    t
}

/// `n` successful requests with TTFT from `ttft_us` in 100 µs steps, two models, two
/// endpoints, some errors and a 10-bucket timeline.
pub(crate) fn result(n: u64, ttft_us: u64, rate: Option<f64>) -> RunResult {
    let mut r = RunResult::empty("http://127.0.0.1:8000", "rate 10/s");
    r.started_unix_s = 1_700_000_000;
    r.duration_s = 10.0;
    r.target_rate = rate;
    let mut g = Group::default();
    for i in 0..n {
        g.latency.ttft.record(ttft_us + i * 100);
        g.latency.itl.record(2_000 + i * 10);
        g.latency.tpot.record(2_500 + i * 10);
        g.latency.e2e.record(4 * ttft_us + i * 300);
    }
    g.counts.requests = n + 4;
    g.counts.ok = n;
    g.counts.output_tokens = n * 64;
    g.counts.errors.insert("http_503/model_server".into(), 3);
    g.counts.errors.insert("timeout/client".into(), 1);
    let mut half = g.clone();
    half.counts.requests /= 2;
    r.by_model.insert("mock-model".into(), g.clone());
    r.by_model
        .insert("mock-lora <adapter>".into(), half.clone());
    r.by_endpoint
        .insert("http://10.0.0.1:8000".into(), half.clone());
    r.by_endpoint.insert("http://10.0.0.2:8000".into(), half);
    r.total = g;
    for s in 0..10 {
        let b = r.timeline.bucket_at(s as f64 + 0.5);
        b.requests = n / 10;
        b.ok = n / 10;
        b.errors = u64::from(s == 3);
        b.output_tokens = n / 10 * 64;
        for i in 0..5 {
            b.ttft.record(ttft_us + s * 500 + i * 100);
            b.e2e.record(4 * ttft_us + s * 900);
        }
    }
    r.client.sent = n + 4;
    r.client.cpu_seconds = 0.25;
    r.client.peak_in_flight = 7;
    r.client.dispatch_lag.record(120);
    r
}

/// A scenario with two stages, arms, an SLO, thresholds, a breaking point and warnings.
pub(crate) fn full() -> ScenarioReport {
    let mut total = result(100, 10_000, None);
    total
        .warnings
        .push("<script>alert(1)</script> client could not keep up".into());
    let arm = |name: &str, added: Option<[i64; 3]>| ArmReport {
        name: name.into(),
        url: format!("http://127.0.0.1:9000/{name}?a=1&b=2"),
        result: result(50, 9_000, Some(40.0)),
        router_cpu_s: added.map(|_| 0.5),
        router_cpu_per_1000: added.map(|_| 0.01),
        router_peak_rss_mb: added.map(|_| 14.5),
        ttft_added_us: added,
        e2e_added_us: added,
        throughput_change_pct: added.map(|_| -1.5),
        prefix_hit_rate: 0.25,
        routing_accuracy: 1.0,
    };
    let check = |rule: &str, passed| Check {
        rule: rule.into(),
        measured: "12.3 ms".into(),
        passed,
    };
    ScenarioReport {
        name: "chat <steady> & co".into(),
        description: Some("Two stages & three arms.".into()),
        target: "embedded".into(),
        url: "http://127.0.0.1:8000".into(),
        repeat: 1,
        kind: "sweep".into(),
        stages: vec![
            StageReport {
                name: "rate 10/s".into(),
                result: result(40, 8_000, Some(10.0)),
            },
            StageReport {
                name: "rate 20/s".into(),
                result: result(60, 12_000, Some(20.0)),
            },
        ],
        total,
        slo: Some(SloReport {
            percentile: 95.0,
            limits: SloLimits {
                ttft_us: Some(500_000),
                ..Default::default()
            },
            checks: vec![check("ttft.p95 < 500ms", true)],
            goodput_rps: 9.5,
            good_fraction: 0.95,
            passed: true,
        }),
        thresholds: vec![
            check("error_rate < 1%", false),
            check("ttft.p95 < 500ms", true),
        ],
        breaking_point: Some(BreakingPoint {
            last_passing_rate: Some(10.0),
            breaking_rate: Some(20.0),
            failed: vec![check("error_rate < 1%", false)],
        }),
        arms: vec![
            arm("direct", None),
            arm("proxy-rr", Some([-50, 120, 400])),
            arm("epp", Some([350, 800, 1_500])),
        ],
        trace: None,
        passed: false,
    }
}
