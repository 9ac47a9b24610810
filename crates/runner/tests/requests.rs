//! Workloads and load kinds run through the scenario runner against an in-process mock fleet:
//! what the file asks for is what the server sees.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use inferbench_config::Config;
use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};
use inferbench_results::suite::{Report, ScenarioReport};
use inferbench_runner::{Options, run_suite};

async fn fleet() -> MockFleet {
    let cfg = InstanceConfig {
        ttft_ms: 3.0,
        itl_ms: 0.5,
        decode_slowdown: 0.0,
        lora_adapters: vec!["mock-lora".into()],
        ..Default::default()
    };
    MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, 1, cfg).unwrap())
        .await
        .unwrap()
}

/// Runs the one scenario of `scenario_yaml` (indented as a list item) against `fleet`.
async fn run_one(
    fleet: &MockFleet,
    scenario_yaml: &str,
    dir: Option<&std::path::Path>,
) -> ScenarioReport {
    let text = format!(
        "targets:\n  - name: m\n    url: {}\n    models: [mock-model]\nscenarios:\n{scenario_yaml}",
        fleet.urls()[0]
    );
    let origin = match dir {
        Some(d) => {
            let p = d.join("s.yaml");
            std::fs::write(&p, &text).unwrap();
            p.display().to_string()
        }
        None => "test.yaml".to_string(),
    };
    let c = Config::parse(&text, &origin).unwrap_or_else(|e| panic!("{e}"));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report: Report = run_suite(&c, &Options::default(), rx, |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.scenarios.len(), 1);
    report.scenarios.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_prefix_groups_hit_the_prefix_cache() {
    let f = fleet().await;
    let s = run_one(
        &f,
        "  - name: prefix\n    load: {concurrency: 1}\n    requests: 40\n    \
         workload: {prompt_tokens: 64, output_tokens: 2, stream: false, \
         shared_prefix: {groups: 2, prompts_per_group: 50, prefix_tokens: 512}}\n",
        None,
    )
    .await;
    let c = &s.total.total.counts;
    assert_eq!(c.ok, 40);
    // Every prompt is 512 shared + 64 own tokens (+ the chat template).
    assert!(c.input_tokens >= 40 * 576, "{}", c.input_tokens);
    // After each group's first request, its 512-token prefix comes from the cache (whole
    // blocks of 16 tokens): at least 38 × 512 cached tokens.
    assert!(
        c.cached_tokens >= 38 * 512,
        "cached {} of {}",
        c.cached_tokens,
        c.input_tokens
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_prompts_share_no_prefix() {
    let f = fleet().await;
    let s = run_one(
        &f,
        "  - name: unique\n    load: {concurrency: 1}\n    requests: 20\n    \
         workload: {prompt_tokens: 512, output_tokens: 2, stream: false}\n",
        None,
    )
    .await;
    let c = &s.total.total.counts;
    assert_eq!(c.ok, 20);
    // Only the chat template's first block can be shared: far less than one prompt's worth.
    assert!(c.cached_tokens < 20 * 32, "cached {}", c.cached_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_model_mix_and_stream_ratio() {
    let f = fleet().await;
    let s = run_one(
        &f,
        "  - name: mix\n    load: {concurrency: 8}\n    requests: 400\n    \
         workload:\n      output_tokens: 4\n      stream_ratio: 0.5\n      \
         models: [{name: mock-model, weight: 3}]\n      lora: [{name: mock-lora, weight: 1}]\n    \
         thresholds: [\"routing_accuracy >= 100%\"]\n",
        None,
    )
    .await;
    assert!(s.passed, "every answer from the model asked for");
    let base = s.total.by_model["mock-model"].counts.ok as f64;
    let lora = s.total.by_model["mock-lora"].counts.ok as f64;
    assert_eq!(base + lora, 400.0);
    // 3:1 → 300 ± 4σ (σ = √(400 · 0.75 · 0.25) ≈ 8.7).
    assert!((base - 300.0).abs() < 35.0, "{base} vs {lora}");
    // Only streamed answers have a TPOT: about half.
    let streamed = s.total.total.latency.tpot.count() as f64;
    assert!((streamed - 200.0).abs() < 40.0, "streamed {streamed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_file_lines_are_sent_as_written() {
    let f = fleet().await;
    let dir = std::env::temp_dir().join(format!("inferbench-prompts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("p.jsonl"),
        "{\"prompt\": \"Hello there\", \"max_tokens\": 3}\n\n\
         {\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 5}\n",
    )
    .unwrap();
    let s = run_one(
        &f,
        "  - name: file\n    load: {concurrency: 1}\n    requests: 10\n    \
         workload: {prompts_file: p.jsonl, stream: false}\n",
        Some(&dir),
    )
    .await;
    let c = &s.total.total.counts;
    assert_eq!(c.ok, 10);
    // Lines alternate: 5 × 3 + 5 × 5 output tokens.
    assert_eq!(c.output_tokens, 40);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_turn_conversations_grow() {
    let f = fleet().await;
    let s = run_one(
        &f,
        "  - name: chat\n    load: {concurrency: 1}\n    requests: 4\n    \
         workload: {prompt_tokens: 50, output_tokens: 20, multi_turn: {turns: 3}}\n",
        None,
    )
    .await;
    let c = &s.total.total.counts;
    // 4 conversations × 3 turns, each turn recorded as a request.
    assert_eq!(c.ok, 12);
    // Turn t carries t prompts of 50 and t − 1 answers of 20 tokens: the average input per
    // request is well above one prompt (a flat 50 + template would be ≈ 60).
    let per_request = c.input_tokens as f64 / c.ok as f64;
    assert!(
        per_request > 100.0,
        "{per_request} input tokens per request"
    );
    // And the conversation's own prefix is cached by the server from turn 2 on.
    assert!(c.cached_tokens > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_ramp_and_stages_report_each_stage() {
    let f = fleet().await;
    let s = run_one(
        &f,
        "  - name: users\n    load: {users: {users: 6, spawn_rate: 12, duration: 1s}}\n    \
         workload: {output_tokens: 8}\n",
        None,
    )
    .await;
    let names: Vec<&str> = s.stages.iter().map(|st| st.name.as_str()).collect();
    assert_eq!(names, ["ramp-up", "hold"]);
    assert_eq!(s.total.client.peak_in_flight, 6);
    assert!(s.stages[1].result.total.counts.ok > s.stages[0].result.total.counts.ok);

    let s = run_one(
        &f,
        "  - name: stages\n    load:\n      stages:\n        - {name: a, rate: 20, duration: 1s}\n        \
         - {name: b, rate: 60, duration: 1s, ramp: true}\n        - {name: c, rate: 40, duration: 1s}\n    \
         workload: {output_tokens: 4}\n",
        None,
    )
    .await;
    let counts: Vec<u64> = s
        .stages
        .iter()
        .map(|st| st.result.total.counts.requests)
        .collect();
    // 20 in a; the ramp 20 → 60 over 1 s holds 40; 40 in c.
    assert_eq!(counts, [20, 40, 40]);
    assert_eq!(s.total.total.counts.requests, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_runs_synchronous_throughput_then_rates_between() {
    let f = fleet().await;
    let s = run_one(
        &f,
        "  - name: sweep\n    load: {sweep: {rates: 3, duration: 500ms, max_concurrency: 16}}\n    \
         workload: {output_tokens: 4}\n",
        None,
    )
    .await;
    let names: Vec<&str> = s.stages.iter().map(|st| st.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[0], "synchronous");
    assert_eq!(names[1], "throughput");
    let sync = s.stages[0].result.achieved_rate();
    let max = s.stages[1].result.achieved_rate();
    assert!(max > sync * 2.0, "throughput {max} vs synchronous {sync}");
    let rates: Vec<f64> = s.stages[2..]
        .iter()
        .map(|st| st.result.target_rate.unwrap())
        .collect();
    assert!(rates.windows(2).all(|w| w[0] < w[1]));
    assert!(
        rates[0] > sync && rates[2] < max,
        "{rates:?} between {sync} and {max}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_condition_ends_the_scenario_not_the_suite() {
    let cfg = InstanceConfig {
        ttft_ms: 2.0,
        itl_ms: 0.5,
        faults: inferbench_mock::FaultConfig {
            error_rate: 0.8,
            error_statuses: vec![503],
            ..Default::default()
        },
        ..Default::default()
    };
    let f = MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, 1, cfg).unwrap())
        .await
        .unwrap();
    let text = format!(
        "targets:\n  - name: m\n    url: {}\n    models: [mock-model]\nscenarios:\n  \
         - name: broken\n    load: {{rate: 50}}\n    duration: 20s\n    stop: {{error_rate: 50%, min_requests: 10}}\n  \
         - name: next\n    load: {{rate: 20}}\n    requests: 5\n",
        f.urls()[0]
    );
    let c = Config::parse(&text, "t.yaml").unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let report = run_suite(&c, &Options::default(), rx, |_, _| {})
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(!report.partial);
    assert_eq!(report.scenarios.len(), 2, "the suite went on");
    let broken = &report.scenarios[0];
    assert!(
        broken
            .total
            .warnings
            .iter()
            .any(|w| w.starts_with("stopped early: error rate"))
    );
    assert!(broken.total.total.counts.requests < 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arms_run_side_by_side_with_their_overhead() {
    let f = MockFleet::start(
        FleetConfig::uniform(
            "127.0.0.1",
            0,
            2,
            InstanceConfig {
                ttft_ms: 3.0,
                itl_ms: 0.5,
                decode_slowdown: 0.0,
                ..Default::default()
            },
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let text = format!(
        "targets:\n  - name: m\n    url: {}\n    models: [mock-model]\nscenarios:\n  \
         - name: arms\n    load: {{rate: 40}}\n    duration: 1.5s\n    arm_window: 500ms\n    \
         arms: [direct, proxy-rr, epp, {{name: rr-bbr, picker: round-robin}}]\n    \
         workload: {{output_tokens: 4}}\n    thresholds: [\"routing_accuracy >= 100%\"]\n",
        f.urls().join(",")
    );
    let c = Config::parse(&text, "t.yaml").unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = run_suite(&c, &Options::default(), rx, |_, _| {})
        .await
        .unwrap();
    let s = &report.scenarios[0];
    assert!(s.passed);
    let names: Vec<&str> = s.arms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["direct", "proxy-rr", "epp", "rr-bbr"]);
    for a in &s.arms {
        // 3 windows of 0.5 s at 40 req/s.
        assert_eq!(a.result.total.counts.ok, 60, "{}", a.name);
        assert_eq!(a.routing_accuracy, 1.0);
        // Both instances served each arm.
        assert_eq!(a.result.by_endpoint.len(), 2, "{}", a.name);
        if a.name == "direct" {
            assert!(a.ttft_added_us.is_none() && a.router_cpu_s.is_none());
        } else {
            assert!(a.ttft_added_us.is_some() && a.router_cpu_s.is_some());
            assert!(
                a.router_cpu_s.unwrap() > 0.0,
                "{} router CPU measured",
                a.name
            );
        }
    }
    assert_eq!(s.total.total.counts.ok, 240);
}

/// Prefix-aware picking keeps each group on the instance that has its prefix cached; round
/// robin spreads every group everywhere, and a KV cache that holds only a quarter of the groups
/// then keeps missing. Runs each arm on a fresh fleet.
/// Runs one routing `arm` over 4 fresh mock instances configured as `cfg`, with `load` for 5 s
/// (or `duration`) on a shared-prefix `workload`; returns the arm's report.
async fn one_arm_on_fresh_fleet(
    cfg: InstanceConfig,
    arm: &str,
    load: &str,
    duration: &str,
    workload: &str,
) -> inferbench_results::suite::ArmReport {
    let f = MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, 4, cfg).unwrap())
        .await
        .unwrap();
    let text = format!(
        "targets:\n  - name: m\n    url: {}\n    models: [mock-model]\nscenarios:\n  \
         - name: prefix\n    load: {load}\n    duration: {duration}\n    arm_window: {duration}\n    \
         arms: [{arm}]\n    workload: {workload}\n",
        f.urls().join(",")
    );
    let c = Config::parse(&text, "t.yaml").unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = run_suite(&c, &Options::default(), rx, |_, _| {})
        .await
        .unwrap();
    report.scenarios[0].arms[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_aware_epp_beats_round_robin_on_shared_prefixes() {
    async fn ttft_p90(arm: &str) -> (f64, f64) {
        let cfg = InstanceConfig {
            ttft_ms: 2.0,
            itl_ms: 0.5,
            prefill_ms_per_token: 0.1,
            decode_slowdown: 0.0,
            kv_blocks: 400,
            ..Default::default()
        };
        let a = one_arm_on_fresh_fleet(
            cfg,
            arm,
            "{rate: 40}",
            "5s",
            "{prompt_tokens: 32, output_tokens: 2, stream: false, \
             shared_prefix: {groups: 16, prompts_per_group: 64, prefix_tokens: 768}}",
        )
        .await;
        let c = &a.result.total.counts;
        assert_eq!(c.requests, 200, "{arm}");
        // A tiny KV cache may turn an odd request away; the comparison is about the rest.
        assert!(c.ok >= 195, "{arm}: {:?}", c.errors);
        (
            a.result.total.latency.ttft.quantile(0.9) as f64 / 1000.0,
            a.prefix_hit_rate,
        )
    }
    let (rr, rr_hits) = ttft_p90("round-robin").await;
    let (epp, epp_hits) = ttft_p90("epp").await;
    eprintln!(
        "TTFT p90 round-robin {rr:.1} ms (prefix hits {rr_hits:.2}), epp {epp:.1} ms ({epp_hits:.2})"
    );
    assert!(
        epp_hits > rr_hits + 0.3,
        "prefix hits: epp {epp_hits:.2}, rr {rr_hits:.2}"
    );
    assert!(
        rr > 2.0 * epp,
        "TTFT p90: round-robin {rr:.1} ms, epp {epp:.1} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_aware_epp_gives_more_output_tokens_in_a_closed_loop() {
    // Closed loop: a user sends again as soon as its answer ends, so faster service is more
    // output per second. Uncached 768-token prefills cost 230 ms and slow the others' decode;
    // KV room for the 4 groups each instance sees under epp, not for the 16 under round-robin.
    async fn tokens_per_s(arm: &str) -> (f64, f64) {
        let cfg = InstanceConfig {
            ttft_ms: 2.0,
            itl_ms: 1.0,
            prefill_ms_per_token: 0.3,
            prefill_interference: 1.0,
            max_num_batched_tokens: 1024,
            decode_slowdown: 0.0,
            kv_blocks: 600,
            ..Default::default()
        };
        let a = one_arm_on_fresh_fleet(
            cfg,
            arm,
            "{concurrency: 8}",
            "3s",
            "{prompt_tokens: 32, output_tokens: 8, stream: false, \
             shared_prefix: {groups: 16, prompts_per_group: 64, prefix_tokens: 768}}",
        )
        .await;
        let r = &a.result;
        assert_eq!(
            r.total.counts.failed(),
            0,
            "{arm}: {:?}",
            r.total.counts.errors
        );
        (r.output_tokens_per_s(), a.prefix_hit_rate)
    }
    let (rr, rr_hits) = tokens_per_s("round-robin").await;
    let (epp, epp_hits) = tokens_per_s("epp").await;
    eprintln!(
        "output tok/s round-robin {rr:.0} (prefix hits {rr_hits:.2}), epp {epp:.0} ({epp_hits:.2})"
    );
    assert!(
        epp_hits > rr_hits + 0.2,
        "hits: epp {epp_hits:.2}, rr {rr_hits:.2}"
    );
    assert!(
        epp > 1.5 * rr,
        "output tok/s: epp {epp:.0}, round-robin {rr:.0}"
    );
}
