//! `inferbench run` against `inferbench mock` with each failure mode seen on real servers and
//! gateways, end to end through the binary: every request sent is counted, classified by what
//! the answer shows, nothing lost, and the exit code and the verdict line say what happened.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use inferbench_results::suite::Report;

/// Runs the binary against `url` with `args`; the report, exit code and stdout.
fn run(url: &str, args: &[&str]) -> (Report, i32, String) {
    let mut all = vec![
        "--target",
        url,
        "--model",
        "mock-model",
        "--prompt-tokens",
        "32",
        "--output-tokens",
        "8",
    ];
    all.extend_from_slice(args);
    common::run_report(&all)
}

fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or("")
}

/// As llama.cpp's server: `connection: keep-alive` on every answer, then the connection closed.
/// Nothing is lost (17 of 40 were, before); the resends are counted as reconnects.
#[test]
fn a_server_closing_after_each_answer_loses_no_request() {
    let mock = common::start(
        &[
            "--port",
            "0",
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
            "--close-after-response",
        ],
        1,
    );
    for (stream, c) in [("--stream", "1"), ("--stream", "4"), ("--no-stream", "4")] {
        let (r, code, out) = run(
            &mock.urls(),
            &[stream, "--concurrency", c, "--requests", "60"],
        );
        let t = &r.scenarios[0].total;
        assert_eq!(t.total.counts.ok, 60, "{stream} c={c}: {out}");
        assert!(
            t.total.counts.errors.is_empty(),
            "{:?}",
            t.total.counts.errors
        );
        assert_eq!(t.client.sent, 60);
        assert_eq!(code, 0, "{out}");
        assert!(last_line(&out).starts_with("PASS"), "{out}");
    }
}

/// HTTP 200 with an error object as the body: failures (`http_200_error`), with the count the
/// server injected; 30% errors is above the default 1% gate: FAIL, exit 99.
#[test]
fn a_200_with_an_error_body_is_counted_as_failed() {
    let mock = common::start(
        &[
            "--port",
            "0",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--error-200-rate",
            "0.3",
            "--seed",
            "7",
        ],
        1,
    );
    for stream in ["--stream", "--no-stream"] {
        let (r, code, out) = run(
            &mock.urls(),
            &[stream, "--concurrency", "4", "--requests", "200"],
        );
        let c = &r.scenarios[0].total.total.counts;
        let failed = c
            .errors
            .get("http_200_error/model_server")
            .copied()
            .unwrap_or(0);
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert_eq!(c.ok + failed, 200);
        assert!((30..=90).contains(&failed), "{failed}");
        assert_eq!(code, 99, "{out}");
        assert!(last_line(&out).starts_with("FAIL"), "{out}");
    }
}

/// Bytes that are not HTTP: `protocol/unknown`, counted, the run goes on.
#[test]
fn bytes_that_are_not_http_are_protocol_errors() {
    let mock = common::start(
        &[
            "--port",
            "0",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--garbage-rate",
            "0.2",
            "--seed",
            "3",
        ],
        1,
    );
    let (r, code, out) = run(
        &mock.urls(),
        &["--stream", "--concurrency", "2", "--requests", "100"],
    );
    let c = &r.scenarios[0].total.total.counts;
    let bad = c.errors.get("protocol/unknown").copied().unwrap_or(0);
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert_eq!(c.ok + bad, 100);
    assert!((5..=45).contains(&bad), "{bad}");
    assert_eq!(code, 99, "{out}");
}

/// A stream that stalls after its first tokens ends at the stall timeout with the request
/// counted (`timeout_stall`), not held for the 600 s total timeout.
#[test]
fn a_stalled_stream_ends_at_the_stall_timeout() {
    let mock = common::start(
        &[
            "--port",
            "0",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--stall-rate",
            "1",
            "--stall-ms",
            "600000",
        ],
        1,
    );
    let t0 = std::time::Instant::now();
    let (r, code, out) = run(
        &mock.urls(),
        &[
            "--stream",
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--stall-timeout",
            "1s",
        ],
    );
    let c = &r.scenarios[0].total.total.counts;
    assert_eq!(
        c.errors.get("timeout_stall/model_server"),
        Some(&4),
        "{:?}",
        c.errors
    );
    assert_eq!(code, 99, "{out}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(60));
}
