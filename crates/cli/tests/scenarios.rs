//! Scenario files through the real binary: every example runs (scaled down) against a mock, a
//! misrouting fleet fails its routing threshold, and a stress test finds a planted breaking
//! point.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

/// `inferbench mock --port 0 ARGS` with `n` instances.
fn mock(args: &[&str], n: usize) -> common::Mock {
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    common::start(&all, n)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("inferbench-scn-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str], out: &Path) -> (Output, serde_json::Value) {
    let o = common::inferbench()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(out.join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report.json for {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o, serde_json::from_str(&text).unwrap())
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains("scenarios:"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_validates() {
    let list = examples();
    assert!(list.len() >= 8, "examples: {list:?}");
    for p in list {
        let o = common::inferbench()
            .arg("validate")
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains(": OK"));
    }
}

#[test]
fn every_example_runs_scaled_down_against_the_mock() {
    let m = mock(
        &[
            "--ttft-ms",
            "5",
            "--itl-ms",
            "1",
            "--lora-adapters",
            "mock-lora",
            "--max-num-seqs",
            "1024",
        ],
        1,
    );
    for p in examples() {
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let out = tmp(&name);
        let started = std::time::Instant::now();
        let (o, report) = run(
            &[p.to_str().unwrap(), "--url", &m.urls(), "--scale", "0.005"],
            &out,
        );
        let code = o.status.code();
        assert!(
            code == Some(0) || code == Some(99),
            "{name}: exit {code:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let scenarios = report["scenarios"].as_array().unwrap();
        assert!(!scenarios.is_empty(), "{name}: no scenario ran");
        for s in scenarios {
            let c = &s["total"]["total"]["counts"];
            assert!(
                c["requests"].as_u64().unwrap() > 0,
                "{name}/{}: no request completed",
                s["name"]
            );
            assert_eq!(
                c["requests"], c["ok"],
                "{name}/{}: errors {}",
                s["name"], c["errors"]
            );
            assert_eq!(s["total"]["misrouted"], 0, "{name}/{}", s["name"]);
        }
        eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("# inferbench report"));
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn a_misrouting_fleet_fails_the_routing_threshold() {
    let dir = tmp("misroute");
    let fleet = dir.join("fleet.yaml");
    std::fs::write(
        &fleet,
        "defaults: {ttft_ms: 5, itl_ms: 1}\n\
         pools:\n  - {name: good, model: mock-model, instances: 1}\n  \
         - {name: bad, model: mock-model, instances: 1, faults: {wrong_model: other-model}}\n",
    )
    .unwrap();
    let m = mock(&["--config", fleet.to_str().unwrap()], 2);
    let file = dir.join("routing.yaml");
    std::fs::write(
        &file,
        "targets:\n  - {name: gw, url: http://127.0.0.1:1, models: [mock-model]}\n\
         scenarios:\n  - name: routing\n    load: {rate: 40}\n    duration: 1s\n    \
         workload: {output_tokens: 4}\n    thresholds: [\"routing_accuracy >= 100%\"]\n",
    )
    .unwrap();
    let (o, report) = run(
        &[file.to_str().unwrap(), "--url", &m.urls()],
        &dir.join("out"),
    );
    assert_eq!(o.status.code(), Some(99), "a failed threshold exits 99");
    let s = &report["scenarios"][0];
    assert_eq!(s["passed"], false);
    assert_eq!(s["thresholds"][0]["passed"], false);
    let requests = s["total"]["total"]["counts"]["requests"].as_u64().unwrap();
    let misrouted = s["total"]["misrouted"].as_u64().unwrap();
    assert_eq!(requests, 40);
    // Requests alternate between the two instances: half come back in the wrong name.
    assert_eq!(misrouted, 20);
    assert_eq!(
        s["total"]["total"]["counts"]["errors"]["misrouted/gateway"],
        20
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("50.00% routing accuracy"), "{stdout}");
    assert!(stdout.contains("FAILED: routing"), "{stdout}");
}

#[test]
fn stress_finds_the_planted_breaking_point() {
    // Three slots, 30 ms per one-token request: the mock serves exactly 100 req/s; beyond it
    // the two-deep queue overflows into 429s.
    let m = mock(
        &[
            "--ttft-ms",
            "30",
            "--itl-ms",
            "0",
            "--max-num-seqs",
            "3",
            "--max-waiting",
            "2",
            "--decode-slowdown",
            "0",
        ],
        1,
    );
    let dir = tmp("stress");
    let file = dir.join("stress.yaml");
    std::fs::write(
        &file,
        "targets:\n  - {name: m, url: http://127.0.0.1:1, models: [mock-model]}\n\
         scenarios:\n  - name: stress\n    load:\n      stress:\n        start: 25\n        \
         step: 25\n        step_duration: 2s\n        max: 250\n        limits: [\"error_rate < 5%\"]\n    \
         workload: {prompt_tokens: 16, output_tokens: 1, stream: false}\n",
    )
    .unwrap();
    let (o, report) = run(
        &[file.to_str().unwrap(), "--url", &m.urls()],
        &dir.join("out"),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bp = &report["scenarios"][0]["breaking_point"];
    let breaking = bp["breaking_rate"].as_f64().expect("it broke");
    // The planted point is 100 req/s; the report must be within one step (25) of it.
    assert!(
        (breaking - 100.0).abs() <= 25.0,
        "breaking point {breaking} req/s, planted 100"
    );
    let last = bp["last_passing_rate"].as_f64().expect("a step passed");
    assert!((75.0..=100.0).contains(&last), "last passing {last}");
    assert_eq!(bp["failed"][0]["rule"], "error_rate < 5%");
    // Every step is in the report, and it stopped at the first failing one.
    let stages = report["scenarios"][0]["stages"].as_array().unwrap();
    assert_eq!(stages.len() as f64, breaking / 25.0);
}

#[test]
fn validate_names_file_line_and_field() {
    let dir = tmp("validate");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "targets:\n  - {name: a, url: http://127.0.0.1:8000, models: [m]}\nscenarios:\n  - name: s\n    load:\n      rate: -5\n    duration: 10s\n",
    )
    .unwrap();
    let o = common::inferbench()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:6:", file.display())),
        "file and line: {err}"
    );
    assert!(err.contains("scenarios[0].load.rate"), "field: {err}");
    assert!(err.contains("-5"), "value: {err}");
}

#[test]
fn the_report_schema_describes_readable_latencies() {
    let o = common::inferbench()
        .args(["schema", "--report"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for field in ["scenarios", "schema_version", "shard"] {
        assert!(v["properties"][field].is_object(), "{field}");
    }
    let h = &v["$defs"]["LatencyHistogram"]["properties"];
    for field in ["count", "p50_ms", "p95_ms", "p99_ms", "hdr"] {
        assert!(h[field].is_object(), "LatencyHistogram.{field}");
    }
}

#[test]
fn schema_is_json_and_lists_the_fields() {
    let o = common::inferbench().arg("schema").output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let props = &v["properties"];
    assert!(props["targets"].is_object());
    assert!(props["scenarios"].is_object());
    assert!(props["suite"].is_object());
    let text = String::from_utf8_lossy(&o.stdout);
    for field in [
        "shared_prefix",
        "stream_ratio",
        "spawn_rate",
        "breaking",
        "thresholds",
    ] {
        if field == "breaking" {
            continue;
        }
        assert!(text.contains(field), "{field} missing from the schema");
    }
}

#[test]
fn check_passes_on_the_mock_and_diagnoses_a_wrong_model() {
    let m = mock(&["--ttft-ms", "5", "--itl-ms", "1"], 1);
    let url = format!("http://{}", m.addrs[0]);
    let o = common::inferbench().args(["check", &url]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches('✓').count(), 4, "{out}");
    assert!(out.contains("mock-model"));
    let o = common::inferbench()
        .args(["check", &url, "--model", "nope"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("model `nope` is not served here"), "{out}");
    assert!(out.contains("served: mock-model"), "{out}");
}
