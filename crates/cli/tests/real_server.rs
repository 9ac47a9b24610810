//! Against a real model server no one here wrote: llama.cpp's `llama-server` with SmolLM2-135M
//! on CPU (built from PyPI by `scripts/real-server`, which runs these tests). Opt-in: without
//! `INFERBENCH_REAL_SERVER=1` (and the binary and model paths it exports) each test says so and
//! passes without doing anything. CI's `.ci/run` does not build the server (minutes of C++).
//!
//! llama-server closes the connection after each streamed answer while advertising keep-alive;
//! before the client's own pool, 17 of 40 requests were lost that way.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inferbench_results::suite::Report;

/// A running llama-server, killed on drop.
struct Llama {
    child: Child,
    url: String,
}

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server, or `None` (with a line saying why) when the suite is not switched on.
fn llama() -> Option<Llama> {
    if std::env::var("INFERBENCH_REAL_SERVER").as_deref() != Ok("1") {
        eprintln!("skipped: set INFERBENCH_REAL_SERVER=1 (scripts/real-server does)");
        return None;
    }
    let exe =
        PathBuf::from(std::env::var("INFERBENCH_LLAMA_SERVER").expect("INFERBENCH_LLAMA_SERVER"));
    let model =
        PathBuf::from(std::env::var("INFERBENCH_LLAMA_MODEL").expect("INFERBENCH_LLAMA_MODEL"));
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(exe)
        .args(["-m", model.to_str().expect("utf-8 path")])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--alias", "smollm2-135m", "--metrics", "--parallel", "4"])
        .args(["--ctx-size", "4096", "--threads", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llama-server");
    let url = format!("http://127.0.0.1:{port}");
    let l = Llama { child, url };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if let Ok(out) = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{}/health", l.url))
            .output()
            && out.stdout == b"200"
        {
            return Some(l);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("llama-server did not become healthy in 120 s");
}

/// Runs `inferbench run` against the server and returns the report and the exit code.
fn run(url: &str, args: &[&str]) -> (Report, i32, String) {
    let mut all = vec![
        "--target",
        url,
        "--model",
        "smollm2-135m",
        "--stream",
        "--output-tokens",
        "32",
    ];
    all.extend_from_slice(args);
    common::run_report(&all)
}

fn no_request_lost(concurrency: &str, requests: u64) {
    let Some(server) = llama() else { return };
    let n = requests.to_string();
    let (report, code, stdout) = run(
        &server.url,
        &["--concurrency", concurrency, "--requests", &n],
    );
    let t = &report.scenarios[0].total;
    let c = &t.total.counts;
    assert_eq!(c.errors, Default::default(), "{stdout}");
    assert_eq!(c.ok, requests, "{stdout}");
    assert_eq!(c.interrupted, 0);
    assert_eq!(t.client.sent, requests);
    // The server's own usage counts: 32 tokens each (ignore_eos), never the client's guess.
    assert_eq!(c.output_tokens, requests * 32, "{stdout}");
    assert!(c.input_tokens >= requests * 100, "{}", c.input_tokens);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("PASS"),
        "{stdout}"
    );
    eprintln!(
        "c={concurrency}: {} ok, reconnects {}, TTFT p50 {} µs",
        c.ok,
        t.client.reconnects,
        t.total.latency.ttft.summary().p50_us
    );
}

#[test]
fn real_server_one_at_a_time_loses_nothing() {
    no_request_lost("1", 40);
}

#[test]
fn real_server_four_at_a_time_loses_nothing() {
    no_request_lost("4", 80);
}

/// llama-server's quirks: a plain-JSON 400 even to a streaming request is an HTTP error from
/// the model server with its message; nothing hangs.
#[test]
fn real_server_errors_are_classified() {
    let Some(server) = llama() else { return };
    // 5,000 prompt tokens do not fit a 4,096-token context (1,024 per slot).
    let (report, code, stdout) = run(
        &server.url,
        &[
            "--concurrency",
            "1",
            "--requests",
            "3",
            "--prompt-tokens",
            "5000",
        ],
    );
    let c = &report.scenarios[0].total.total.counts;
    assert_eq!(c.requests, 3, "{stdout}");
    assert_eq!(c.ok, 0, "{stdout}");
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    let label = c.errors.keys().next().cloned().unwrap_or_default();
    assert!(
        label.starts_with("http_4") || label.starts_with("http_5"),
        "{label}"
    );
    assert_eq!(code, 99, "{stdout}");
    assert!(
        stdout
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("FAIL"),
        "{stdout}"
    );
}

/// Where llama-server's time to first token goes: its own `timings` per request and its
/// `/metrics` time counters, beside the client's TTFT. At concurrency 1 the residual is the
/// client-to-server overhead (a few ms) and the per-request prefill agrees with the counters'
/// prompt seconds per request; at concurrency 4 requests wait inside the server, which its own
/// prompt time leaves out: the residual grows.
#[test]
fn real_server_ttft_decomposes() {
    let Some(server) = llama() else { return };
    let decomposition = |concurrency: &str, seed: &str| {
        let (report, code, stdout) = run(
            &server.url,
            &[
                "--concurrency",
                concurrency,
                "--requests",
                "24",
                "--prompt-tokens",
                "128",
                "--seed",
                seed,
                "--server-metrics",
                "target",
            ],
        );
        assert_eq!(code, 0, "{stdout}");
        assert!(
            stdout.contains("Where the time to first token went"),
            "{stdout}"
        );
        let t = report.scenarios[0].total.clone();
        let d = t.decomposition.clone().expect("a decomposition");
        assert_eq!(d.timed_requests, Some(t.total.counts.ok), "{stdout}");
        (t, d)
    };
    let (t1, d1) = decomposition("1", "11");
    let r1 = d1.network_gateway.expect("residual");
    let p1 = d1.prefill.expect("prefill");
    let v = t1.server.expect("llama.cpp's /metrics");
    assert_eq!(v.profile, "llamacpp");
    let per_request = v.counters["prompt_seconds"] * 1000.0 / t1.total.counts.ok as f64;
    eprintln!(
        "c=1: client TTFT p50 {:.2} ms = residual {:.2} + prefill {:.2}; prefill mean {:.2} ms per request, /metrics {per_request:.2}",
        d1.client_ttft.p50_ms.unwrap_or(0.0),
        r1.p50_ms.unwrap_or(0.0),
        p1.p50_ms.unwrap_or(0.0),
        p1.mean_ms
    );
    assert!(
        r1.p50_ms.is_some_and(|r| r > 0.0 && r < 50.0),
        "a few ms: {r1:?}"
    );
    assert!(
        (p1.mean_ms - per_request).abs() <= 0.05 * per_request,
        "timings {} vs /metrics {per_request}",
        p1.mean_ms
    );
    let (_, d4) = decomposition("4", "12");
    let r4 = d4.network_gateway.expect("residual");
    eprintln!(
        "c=4: client TTFT p50 {:.2} ms, residual p50 {:.2} ms, prefill p50 {:.2} ms",
        d4.client_ttft.p50_ms.unwrap_or(0.0),
        r4.p50_ms.unwrap_or(0.0),
        d4.prefill.and_then(|p| p.p50_ms).unwrap_or(0.0)
    );
    assert!(
        r4.mean_ms > r1.mean_ms,
        "waiting inside the server shows: {} → {}",
        r1.mean_ms,
        r4.mean_ms
    );
}
