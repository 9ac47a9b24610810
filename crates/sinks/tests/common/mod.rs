//! A report fixture shared by the sink tests: two scenarios, stages and arms.
#![allow(dead_code)]

use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::RunResult;
use inferbench_results::suite::{ArmReport, Report, ScenarioReport, StageReport};

pub const START: u64 = 1_796_258_064;

pub fn result(load: &str, n: u64, failed: u64, started: u64) -> RunResult {
    let mut r = RunResult::empty("http://vllm:8000", load);
    r.started_unix_s = started;
    r.duration_s = 10.0;
    r.total.counts.requests = n;
    r.total.counts.ok = n - failed;
    r.total.counts.ok_in_window = n - failed;
    r.total.counts.output_tokens = (n - failed) * 100;
    r.total.counts.output_tokens_in_window = (n - failed) * 100;
    if failed > 0 {
        r.total
            .counts
            .errors
            .insert("http_503/model_server".into(), failed);
    }
    let l = &mut r.total.latency;
    for i in 0..(n - failed) {
        l.ttft.record(50_000 + i * 100);
        l.e2e.record(1_000_000 + i * 1000);
        l.tpot.record(9_000 + i);
        l.itl.record(8_000 + i);
    }
    r.client.dispatch_lag = LatencyHistogram::new();
    r.client.dispatch_lag.record(250);
    r.client.sent = n;
    r.client.cpu_seconds = 1.5;
    r
}

pub fn scenario(
    name: &str,
    kind: &str,
    stages: Vec<StageReport>,
    arms: Vec<ArmReport>,
) -> ScenarioReport {
    let mut total = result("rate 4/s", 100, 0, START);
    for s in &stages {
        total.append(&s.result);
    }
    ScenarioReport {
        name: name.into(),
        description: None,
        target: "vllm".into(),
        url: "http://vllm:8000".into(),
        repeat: 1,
        kind: kind.into(),
        stages,
        total,
        slo: None,
        thresholds: vec![],
        breaking_point: None,
        arms,
        trace: None,
        passed: true,
    }
}

pub fn arm(name: &str, started: u64) -> ArmReport {
    ArmReport {
        name: name.into(),
        url: format!("http://{name}:80"),
        result: result("rate 4/s", 200, 2, started),
        router_cpu_s: Some(0.5),
        router_cpu_per_1000: Some(2.5),
        router_peak_rss_mb: None,
        ttft_added_us: Some([100, 200, 300]),
        e2e_added_us: Some([100, 200, 300]),
        throughput_change_pct: Some(-1.0),
        prefix_hit_rate: 0.5,
        routing_accuracy: 1.0,
    }
}

/// Two scenarios: `chat` with three stages, `routing` with one stage and two arms: 2 + 4 + 2
/// summary documents.
pub fn report() -> Report {
    let stage = |name: &str, at: u64| StageReport {
        name: name.into(),
        result: result(name, 120, 3, at),
    };
    Report {
        schema_version: 3,
        tool_version: "0.1.0".into(),
        started_unix_s: START,
        config: Some("embedded".into()),
        partial: false,
        scenarios: vec![
            scenario(
                "chat",
                "stages",
                vec![
                    stage("rate 2.00", START),
                    stage("rate 4.00", START + 10),
                    stage("rate 8.00", START + 20),
                ],
                vec![],
            ),
            scenario(
                "routing",
                "arms",
                vec![stage("direct", START + 30)],
                vec![arm("direct", START + 30), arm("epp", START + 40)],
            ),
        ],
        shard: None,
    }
}
