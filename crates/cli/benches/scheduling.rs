//! Scheduling quality on a simulated fleet: which picker serves best. Each arm runs alone on a
//! fresh fleet of 8 mock instances (so no arm inherits another's caches), through the reference
//! router, on the real binary.
//!
//! 1. Shared prefixes: 32 groups × 16 prompts with 2,048-token shared prefixes, prefill
//!    0.1 ms per uncached token, KV caches that hold about a quarter of the groups, at a rate
//!    round-robin cannot serve → round-robin vs prefix-aware `epp`: TTFT p90, output tokens/s,
//!    prefix-cache hit rate.
//!    The same prefixes in a closed loop of 64 users (KV room for the prefixes epp concentrates,
//!    prefill slowing decode) → output tokens/s.
//! 2. Mixed lengths: prompts lognormal around 1,000 tokens, outputs 16–512, at a rate near the
//!    fleet's capacity → `random` vs queue + KV-cache scoring (`epp` without the prefix scorer).
//!
//! `cargo bench -p inferbench --bench scheduling [-- --seconds 30 --prefix-rate 180 --mixed-rate 24]`

mod common;
use common::{Kill, arg, run_file, spawn_mock};

const BIN: &str = env!("CARGO_BIN_EXE_inferbench");

/// Starts 8 instances with `flags`; returns the process and the URLs.
fn fleet(flags: &[&str]) -> (Kill, String) {
    let (kill, addrs) = spawn_mock(BIN, 8, flags);
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    (kill, urls.join(","))
}

struct Row {
    arm: String,
    ttft_p50_ms: f64,
    ttft_p90_ms: f64,
    output_tps: f64,
    ok: u64,
    errors: u64,
    prefix_hit: f64,
}

fn run_arm(flags: &[&str], arm: &str, load: &str, workload: &str, secs: f64) -> Row {
    let (_mock, urls) = fleet(flags);
    let dir = std::env::temp_dir().join(format!("inferbench-sched-{}-{arm}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - name: fleet\n    url: {urls}\n    models: [mock-model]\nscenarios:\n  \
             - name: s\n    load: {load}\n    duration: {secs}s\n    warmup: 5s\n    arm_window: {secs}s\n    \
             arms: [{arm}]\n    workload: {workload}\n"
        ),
    )
    .expect("scenario");
    let report = run_file(BIN, &file, &dir.join("out"));
    let a = &report.scenarios[0].arms[0];
    let c = &a.result.total.counts;
    let ttft = &a.result.total.latency.ttft;
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        arm: a.name.clone(),
        ttft_p50_ms: ttft.quantile(0.5) as f64 / 1000.0,
        ttft_p90_ms: ttft.quantile(0.9) as f64 / 1000.0,
        output_tps: a.result.output_tokens_per_s(),
        ok: c.ok,
        errors: c.failed(),
        prefix_hit: a.prefix_hit_rate,
    }
}

fn table(title: &str, rows: &[Row]) {
    println!("\n### {title}\n");
    println!("| arm | TTFT p50 ms | TTFT p90 ms | output tok/s | ok | errors | prefix hit |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.0} | {} | {} | {:.1}% |",
            r.arm,
            r.ttft_p50_ms,
            r.ttft_p90_ms,
            r.output_tps,
            r.ok,
            r.errors,
            r.prefix_hit * 100.0
        );
    }
}

fn main() {
    let secs = arg("--seconds", 30.0);
    let prefix_rate = arg("--prefix-rate", 180.0);
    let mixed_rate = arg("--mixed-rate", 24.0);
    println!(
        "inferbench scheduling quality: 8 mock instances, each arm on a fresh fleet, {secs} s"
    );
    let prefix_flags = [
        "--ttft-ms",
        "5",
        "--itl-ms",
        "5",
        "--prefill-ms-per-token",
        "0.1",
        "--kv-blocks",
        "1200",
        "--max-num-seqs",
        "64",
        "--decode-slowdown",
        "0",
    ];
    let prefix_workload = "{prompt_tokens: 64, output_tokens: 32, shared_prefix: {groups: 32, prompts_per_group: 16, prefix_tokens: 2048}}";
    let rows: Vec<Row> = ["round-robin", "epp"]
        .iter()
        .map(|arm| {
            let load = format!("{{rate: {prefix_rate}, arrival: poisson}}");
            run_arm(&prefix_flags, arm, &load, prefix_workload, secs)
        })
        .collect();
    table(
        &format!(
            "Shared prefixes: 32 groups × 2,048-token prefixes, {prefix_rate} req/s (Poisson)"
        ),
        &rows,
    );
    let ratio = rows[0].ttft_p90_ms / rows[1].ttft_p90_ms.max(1e-9);
    println!("\nTTFT p90 round-robin / epp: {ratio:.1}×");

    // The throughput side: a closed loop sends again as soon as an answer ends, so faster
    // service is more output per second. 64 users keep 8 long sequences on each instance, so the
    // KV cache is sized to hold them plus some cached prefixes (3,000 blocks: the 4 groups an
    // instance sees under epp fit, the 32 it sees under round-robin do not), and prefill shares
    // the step with decode as in vLLM (an uncached 2,048-token prefill slows everyone's ITL).
    let closed_flags: Vec<&str> = prefix_flags
        .iter()
        .map(|f| if *f == "1200" { "3000" } else { f })
        .chain(["--prefill-interference", "1"])
        .collect();
    let rows: Vec<Row> = ["round-robin", "epp"]
        .iter()
        .map(|arm| {
            run_arm(
                &closed_flags,
                arm,
                "{concurrency: 64}",
                prefix_workload,
                secs,
            )
        })
        .collect();
    table("Shared prefixes, closed loop: 64 users", &rows);
    let gain = rows[1].output_tps / rows[0].output_tps.max(1e-9);
    println!("\noutput tokens/s epp / round-robin: {gain:.2}×");

    let mixed_flags = [
        "--ttft-ms",
        "10",
        "--itl-ms",
        "8",
        "--prefill-ms-per-token",
        "0.05",
        "--max-num-seqs",
        "16",
        "--decode-slowdown",
        "1.0",
    ];
    let mixed_workload =
        "{prompt_tokens: \"lognormal:1000:0.8:50:6000\", output_tokens: \"uniform:16:512\"}";
    let rows: Vec<Row> = [
        "random",
        "{name: queue+kv, picker: epp, queue: 2, kv_cache: 2, prefix: 0}",
    ]
    .iter()
    .map(|arm| {
        let load = format!("{{rate: {mixed_rate}, arrival: poisson}}");
        run_arm(&mixed_flags, arm, &load, mixed_workload, secs)
    })
    .collect();
    table(
        &format!(
            "Mixed lengths: prompts lognormal ~1,000 tokens, outputs 16–512, {mixed_rate} req/s (Poisson)"
        ),
        &rows,
    );
}
