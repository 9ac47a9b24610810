//! Trace replay through the binary against a real `inferbench mock` process: every sample trace
//! of `examples/traces/` (Azure, Mooncake, BurstGPT, inferbench's own request log) replays every
//! request with the file's exact prompt and output tokens, at the time-scaled trace instants;
//! a Mooncake trace's shared blocks hit the mock's prefix cache exactly as its `hash_ids` imply;
//! a run's own request log replays as the run; bad traces are named by file, line and column
//! before any request.

mod common;

use std::path::{Path, PathBuf};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/traces")
        .join(name)
}

/// What a trace file holds, read here independently of inferbench's parser: (instant µs from
/// the first request, prompt tokens, output tokens) of each request it replays, in order.
fn expected(name: &str) -> Vec<(u64, u64, u64)> {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    let mut rows: Vec<(f64, u64, u64)> = Vec::new();
    if name.ends_with(".csv") {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
        let azure = header.contains(&"ContextTokens");
        let (t, p, o) = if azure {
            (
                col("TIMESTAMP"),
                col("ContextTokens"),
                col("GeneratedTokens"),
            )
        } else {
            (
                col("Timestamp"),
                col("Request tokens"),
                col("Response tokens"),
            )
        };
        for l in lines.filter(|l| !l.is_empty()) {
            let f: Vec<&str> = l.split(',').collect();
            let secs = if azure {
                // `2023-11-16 18:MM:SS.fffffff`: the samples stay within one hour.
                let time = f[t].split(' ').nth(1).unwrap();
                let parts: Vec<&str> = time.split(':').collect();
                parts[1].parse::<f64>().unwrap() * 60.0 + parts[2].parse::<f64>().unwrap()
            } else {
                f[t].parse().unwrap()
            };
            let out: u64 = f[o].parse().unwrap();
            if out > 0 {
                rows.push((secs, f[p].parse().unwrap(), out));
            }
        }
    } else {
        for l in text.lines().filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let n = |k: &str| v[k].as_u64().unwrap();
            if v.get("planned_us").is_some() {
                rows.push((
                    n("planned_us") as f64 / 1e6,
                    n("prompt_len"),
                    n("max_tokens"),
                ));
            } else {
                rows.push((
                    n("timestamp") as f64 / 1e3,
                    n("input_length"),
                    n("output_length"),
                ));
            }
        }
    }
    let t0 = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    rows.iter()
        .map(|(t, p, o)| (((t - t0) * 1e6).round() as u64, *p, *o))
        .collect()
}

/// A fast mock: one instance, 2 ms to the first token, 1 ms a token, room for every prefix.
fn mock() -> common::Mock {
    common::start(
        &[
            "--port",
            "0",
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
            "--kv-blocks",
            "200000",
        ],
        1,
    )
}

/// `run --trace FILE ARGS --log-requests` against `m`: the report, the exit code, stdout and
/// the request log's lines.
fn replay(
    m: &common::Mock,
    file: &Path,
    args: &[&str],
) -> (serde_json::Value, i32, String, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let o = common::inferbench()
        .arg("run")
        .args(["--target", &format!("http://{}", m.addrs[0])])
        .arg("--trace")
        .arg(file)
        .args(args)
        .args(["--log-requests", "--no-history", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let mut log = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("requests-"))
        {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                log.push(serde_json::from_str(l).unwrap());
            }
        }
    }
    log.sort_by_key(|l: &serde_json::Value| l["k"].as_u64());
    (
        serde_json::from_str(&text).unwrap(),
        o.status.code().unwrap_or(-1),
        stdout,
        log,
    )
}

/// The mock's own counter `name` now.
fn counter(addr: &str, name: &str) -> f64 {
    common::http_get(addr, "/metrics")
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn every_format_replays_every_request_and_token_at_the_trace_instants() {
    for name in [
        "azure-conv-sample.csv",
        "mooncake-sample.jsonl",
        "burstgpt-sample.csv",
        "inferbench-requests-sample.jsonl",
    ] {
        let want = expected(name);
        let m = mock();
        let (r, code, stdout, log) = replay(&m, &sample(name), &["--trace-time-scale", "0.25"]);
        assert_eq!(code, 0, "{name}: {stdout}");
        assert!(stdout.contains("Trace replayed"), "{name}: {stdout}");
        let s = &r["scenarios"][0];
        assert_eq!(s["kind"], "trace", "{name}");
        let t = &s["trace"];
        let n = want.len() as u64;
        let prompt: u64 = want.iter().map(|w| w.1).sum();
        let output: u64 = want.iter().map(|w| w.2).sum();
        assert_eq!(t["requests"].as_u64(), Some(n), "{name}: {t}");
        assert_eq!(t["prompt_tokens"].as_u64(), Some(prompt), "{name}");
        assert_eq!(t["output_tokens"].as_u64(), Some(output), "{name}");
        // What the server counted: every request, every token.
        let c = &s["total"]["total"]["counts"];
        assert_eq!(c["requests"].as_u64(), Some(n), "{name}: {c}");
        assert_eq!(c["ok"].as_u64(), Some(n), "{name}: {c}");
        assert_eq!(c["input_tokens"].as_u64(), Some(prompt), "{name}: {c}");
        assert_eq!(c["output_tokens"].as_u64(), Some(output), "{name}: {c}");
        assert_eq!(
            counter(&m.addrs[0], "vllm:prompt_tokens_total"),
            prompt as f64,
            "{name}"
        );
        // Each request planned at its trace instant × 0.25, in the file's order.
        assert_eq!(log.len(), want.len(), "{name}");
        for (l, w) in log.iter().zip(&want) {
            let planned = l["planned_us"].as_u64().unwrap();
            let at = (w.0 as f64 * 0.25).round() as u64;
            assert!(
                planned.abs_diff(at) <= 1,
                "{name}: planned {planned} µs, trace {at} µs"
            );
            assert_eq!(l["max_tokens"].as_u64(), Some(w.2), "{name}");
            assert_eq!(l["prompt_len"].as_u64(), Some(w.1), "{name}");
        }
        // The schedule kept is reported (its size is measured in `scripts/trace-accuracy`,
        // not asserted: it depends on the machine).
        assert!(t["lag_p99_us"].as_u64().is_some(), "{name}: {t}");
    }
}

#[test]
fn mooncake_blocks_hit_the_prefix_cache_as_their_ids_imply() {
    let m = mock();
    let (r, code, stdout, _) = replay(
        &m,
        &sample("mooncake-sample.jsonl"),
        &["--trace-time-scale", "0.25", "--server-metrics", "target"],
    );
    assert_eq!(code, 0, "{stdout}");
    let t = &r["scenarios"][0]["trace"];
    let implied = t["implied_prefix_hit_rate"].as_f64().unwrap();
    let hits = counter(&m.addrs[0], "vllm:prefix_cache_hits_total");
    let queries = counter(&m.addrs[0], "vllm:prefix_cache_queries_total");
    assert!(queries > 0.0);
    // The sample's shared blocks are whole 512-token blocks (a multiple of the mock's 16):
    // the cache finds exactly what the ids say.
    assert!(
        (hits / queries - implied).abs() < 1e-9,
        "mock {hits}/{queries} = {} vs implied {implied}",
        hits / queries
    );
    assert!(implied > 0.3 && implied < 0.9, "{implied}");
    // The report shows both, side by side.
    assert!(
        stdout.contains("prefix hits its block ids imply"),
        "{stdout}"
    );
}

#[test]
fn a_runs_own_request_log_replays_as_the_run() {
    let m = mock();
    let dir = tempfile::tempdir().unwrap();
    let o = common::inferbench()
        .arg("run")
        .args(["--target", &format!("http://{}", m.addrs[0])])
        .args([
            "--rate",
            "40",
            "--arrival",
            "poisson",
            "--requests",
            "60",
            "--prompt-tokens",
            "uniform:16:400",
            "--output-tokens",
            "uniform:2:40",
            "--log-requests",
            "--no-history",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let log = dir.path().join("requests-run-steady.jsonl");
    let m2 = mock();
    let (again, code, stdout, lines) = replay(&m2, &log, &[]);
    assert_eq!(code, 0, "{stdout}");
    let c1 = &first["scenarios"][0]["total"]["total"]["counts"];
    let c2 = &again["scenarios"][0]["total"]["total"]["counts"];
    for k in ["requests", "ok", "input_tokens", "output_tokens"] {
        assert_eq!(c1[k], c2[k], "{k}: {c1} vs {c2}");
    }
    assert_eq!(again["scenarios"][0]["trace"]["format"], "inferbench");
    // The same instants, from the first request.
    let orig: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["planned_us"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut orig = orig;
    orig.sort_unstable();
    let t0 = orig[0];
    let replayed: Vec<u64> = lines
        .iter()
        .map(|l| l["planned_us"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, orig.iter().map(|t| t - t0).collect::<Vec<_>>());
}

#[test]
fn a_trace_at_another_pace_keeps_its_order_and_lengths() {
    let m = mock();
    let name = "burstgpt-sample.csv";
    let want = expected(name);
    let (r, code, stdout, log) = replay(&m, &sample(name), &["--rate", "100"]);
    assert_eq!(code, 0, "{stdout}");
    let s = &r["scenarios"][0];
    assert_eq!(s["kind"], "rate");
    assert_eq!(s["trace"]["at_trace_instants"], false);
    let c = &s["total"]["total"]["counts"];
    assert_eq!(c["requests"].as_u64(), Some(want.len() as u64));
    let lens: Vec<(u64, u64)> = log
        .iter()
        .map(|l| {
            (
                l["prompt_len"].as_u64().unwrap(),
                l["max_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lens, want.iter().map(|w| (w.1, w.2)).collect::<Vec<_>>());
    // 100/s, constant: 10 ms apart.
    assert_eq!(log[1]["planned_us"].as_u64(), Some(10_000));
}

#[test]
fn a_bad_trace_is_named_by_file_line_and_column_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.00,12x,44\n",
    )
    .unwrap();
    let o = common::inferbench()
        .args(["run", "--target", "http://127.0.0.1:9", "--trace"])
        .arg(&bad)
        .args(["--no-history", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("bad.csv:3:24: ContextTokens: `12x` is not a whole number of tokens"),
        "{err}"
    );
    // In a scenario file, the trace's line and the YAML's.
    let yaml = dir.path().join("s.yaml");
    std::fs::write(
        &yaml,
        "targets:\n  - {name: m, url: \"http://127.0.0.1:9\", models: [m]}\nscenarios:\n  - name: replay\n    workload:\n      trace:\n        path: bad.csv\n        time_scale: 2\n",
    )
    .unwrap();
    let o = common::inferbench()
        .arg("validate")
        .arg(&yaml)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("bad.csv:3:24"), "{err}");
    assert!(err.contains("s.yaml:7"), "{err}");
    // A bad scale names its field.
    std::fs::write(
        &yaml,
        "targets:\n  - {name: m, url: \"http://127.0.0.1:9\", models: [m]}\nscenarios:\n  - name: replay\n    workload:\n      trace: {path: bad.csv, time_scale: -1}\n",
    )
    .unwrap();
    let o = common::inferbench()
        .arg("validate")
        .arg(&yaml)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("workload.trace.time_scale"), "{err}");
}
