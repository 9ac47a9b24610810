//! `run --metrics-listen`: the load generator's own metrics, scraped during the run and after
//! it (`--metrics-linger`), agree with the report; `promtool check metrics` finds nothing.
// A child process is read and waited for with wall-clock timeouts.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// The sum of every sample of `family` whose labels contain each of `with`.
fn sum(text: &str, family: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let bare = name.split('{').next()?;
            (bare == family && with.iter().all(|w| name.contains(w))).then_some(value)
        })
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

#[test]
fn live_metrics_match_the_report() {
    let m = common::start(&["--port", "0", "--ttft-ms", "5", "--itl-ms", "1"], 1);
    let dir = std::env::temp_dir().join(format!("inferbench-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = common::inferbench()
        .args(["run", "--target"])
        .arg(format!("http://{}", m.addrs[0]))
        .args([
            "--rate",
            "50",
            "--duration",
            "3s",
            "--warmup",
            "1s",
            "--output-tokens",
            "8",
            "--no-history",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "60s",
            "--out",
        ])
        .arg(dir.join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("metrics: http://") {
                let _ = tx.send(url.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the metrics address is printed");
    // During the run: the families are there.
    let during = common::http_get(&addr, "/metrics");
    for family in [
        "inferbench_client_requests_in_flight",
        "process_cpu_seconds_total",
    ] {
        assert!(during.contains(family), "{family}: {during}");
    }
    // The verdict is the last line of the run: after it, the counts are final.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut verdict = String::new();
    for line in stdout.lines().map_while(Result::ok) {
        if line.starts_with("PASS") || line.starts_with("FAIL") {
            verdict = line;
            break;
        }
    }
    assert!(verdict.starts_with("PASS"), "{verdict}");
    let after = common::http_get(&addr, "/metrics");
    let _ = child.kill();
    let _ = child.wait();

    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap())
            .unwrap();
    let total = &r["scenarios"][0]["total"]["total"];
    let requests = total["counts"]["requests"].as_f64().unwrap();
    let ok = total["counts"]["ok"].as_f64().unwrap();
    assert!(requests >= 140.0, "{requests}");
    let measured = sum(
        &after,
        "inferbench_client_requests_total",
        &["phase=\"measured\""],
    );
    assert_eq!(measured, requests, "{after}");
    assert_eq!(
        sum(
            &after,
            "inferbench_client_requests_total",
            &["phase=\"measured\"", "outcome=\"ok\""]
        ),
        ok
    );
    assert_eq!(
        sum(
            &after,
            "inferbench_client_requests_total",
            &["phase=\"warmup\""]
        ),
        // 1 s of warm-up at a constant 50/s: planned at 0, 20, …, 980 ms.
        50.0
    );
    assert_eq!(sum(&after, "inferbench_client_ttft_seconds_count", &[]), ok);
    assert_eq!(sum(&after, "inferbench_client_e2e_seconds_count", &[]), ok);
    assert_eq!(
        sum(&after, "inferbench_client_output_tokens_total", &[]),
        total["counts"]["output_tokens"].as_f64().unwrap()
    );
    // 8 tokens a request: 7 gaps each.
    assert_eq!(
        sum(&after, "inferbench_client_itl_seconds_count", &[]),
        7.0 * ok
    );
    // Every TTFT is in the +Inf bucket; with a 5 ms TTFT mock nearly all are under 250 ms
    // (not all: one stall of a busy machine must not fail this).
    let bucket = |le: &str| sum(&after, "inferbench_client_ttft_seconds_bucket", &[le]);
    assert_eq!(bucket("le=\"+Inf\""), ok);
    let fast = bucket("le=\"0.25\"");
    assert!(
        fast >= 0.9 * ok && fast <= ok,
        "{fast} of {ok} under 250 ms"
    );
    assert_eq!(
        sum(&after, "inferbench_client_requests_in_flight", &[]),
        0.0
    );
    if Command::new("promtool").arg("--version").output().is_ok() {
        let mut p = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.take().unwrap().write_all(after.as_bytes()).unwrap();
        let o = p.wait_with_output().unwrap();
        let findings =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && findings.trim().is_empty(),
            "{findings}"
        );
    } else {
        eprintln!("promtool not on PATH: exposition not checked by it");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
