//! The `inferbench mock` binary as users run it: flags, printed addresses, signals, and a real
//! client nobody here wrote (the official OpenAI Python SDK).
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::start;

#[test]
fn port_zero_prints_one_address_per_instance() {
    let m = start(&["--instances", "3", "--port", "0"], 3);
    assert_eq!(m.addrs.len(), 3);
    for a in &m.addrs {
        assert!(a.starts_with("127.0.0.1:"), "{a}");
        assert!(std::net::TcpStream::connect(a).is_ok());
    }
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut m = start(&["--port", "0"], 1);
    let pid = m.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = m.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_flags_and_fleet_files_give_clear_errors() {
    let dir = std::env::temp_dir().join(format!("inferbench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("fleet.yaml");
    std::fs::write(&bad, "pools:\n  - model: m\n    itl_msec: 3\n").unwrap();
    let out = common::inferbench()
        .args(["mock", "--port", "0", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fleet.yaml") && err.contains("itl_msec"),
        "{err}"
    );
    let out = common::inferbench()
        .args(["mock", "--port", "0", "--jitter", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jitter"));
    let out = common::inferbench()
        .args(["mock", "--config", "/no/such/file.yaml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.yaml"));
}

#[test]
fn official_openai_python_sdk_works_against_the_mock() {
    let m = start(&["--port", "0", "--ttft-ms", "5", "--itl-ms", "1"], 1);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_sdk_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://{}", m.addrs[0]))
        .output()
        .expect("python3 runs (scripts/test installs the openai package)");
    assert!(
        out.status.success(),
        "the OpenAI SDK check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn run_writes_a_report_and_ctrl_c_leaves_a_partial_one() {
    let m = start(&["--port", "0", "--ttft-ms", "5", "--itl-ms", "1"], 1);
    let dir = std::env::temp_dir().join(format!("inferbench-run-{}", std::process::id()));
    let target = format!("http://{}", m.addrs[0]);
    let out = common::inferbench()
        .args([
            "run",
            "--target",
            &target,
            "--rate",
            "20",
            "--requests",
            "10",
            "--output-tokens",
            "8",
            "--log-requests",
            "--out",
        ])
        .arg(dir.join("a"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("a/report.json")).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 3);
    assert_eq!(report["partial"], false);
    let total = &report["scenarios"][0]["total"]["total"];
    assert_eq!(total["counts"]["ok"], 10);
    assert_eq!(total["counts"]["output_tokens"], 80);
    assert!(
        std::fs::read_to_string(dir.join("a/report.md"))
            .unwrap()
            .contains("| run | cli | rate | 10 |")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("a/requests-run-steady.jsonl"))
            .unwrap()
            .lines()
            .count(),
        10
    );

    let mut child = common::inferbench()
        .args([
            "run",
            "--target",
            &target,
            "--rate",
            "20",
            "--duration",
            "60s",
            "--out",
        ])
        .arg(dir.join("b"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stop once the mock has answered 5 of these (15 with the first run's 10), not after a
    // guessed time: a debug binary on a busy machine can take over a second to load its
    // tokenizer, and a signal before its handler is installed would kill it outright.
    common::wait_for_metric(
        &m.addrs[0],
        &["vllm:request_success_total"],
        15.0,
        "the mock did not answer 5 requests",
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("b/report.json")).unwrap()).unwrap();
    assert_eq!(report["partial"], true);
    assert!(
        report["scenarios"][0]["total"]["total"]["counts"]["ok"]
            .as_u64()
            .unwrap()
            >= 5
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_against_nothing_fails_fast_with_the_address() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let started = Instant::now();
    let out = common::inferbench()
        .args([
            "run",
            "--target",
            &format!("http://{addr}"),
            "--rate",
            "5",
            "--duration",
            "10s",
            "--out",
        ])
        .arg(std::env::temp_dir().join("inferbench-unreachable"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr.to_string()));
}

#[test]
fn load_flags_without_a_target_run_that_scenario_on_the_embedded_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::inferbench()
        .args([
            "run",
            "--concurrency",
            "2",
            "--requests",
            "20",
            "--prompt-tokens",
            "32",
            "--output-tokens",
            "8",
            "--no-history",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    // One scenario (not the built-in suite with the flags dropped), exactly as asked.
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "{stdout}");
    let c = &scenarios[0]["total"]["total"]["counts"];
    assert_eq!(c["requests"].as_u64(), Some(20), "{c}");
    assert_eq!(c["ok"].as_u64(), Some(20), "{c}");
    assert_eq!(c["input_tokens"].as_u64(), Some(20 * 32), "{c}");
    assert_eq!(c["output_tokens"].as_u64(), Some(20 * 8), "{c}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("built-in suite"));
}
