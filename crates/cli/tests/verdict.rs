//! The verdict `inferbench run` ends with, and results that are never lost: the last line says
//! PASS, FAIL or INTERRUPTED with its reason and matches the exit status; the default gate fails
//! a run with more than 1% errors, or without a single success; an unusable `--out` fails before
//! any request; a report that cannot be written lands in a fallback directory; a request log
//! that hits a full disk says so.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("inferbench-verdict-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fast mock with `extra` flags.
fn mock(extra: &[&str]) -> common::Mock {
    let mut args = vec!["--port", "0", "--ttft-ms", "2", "--itl-ms", "1"];
    args.extend_from_slice(extra);
    common::start(&args, 1)
}

/// `inferbench run --target URL --rate 50 --requests N --output-tokens 4 EXTRA --out OUT`.
fn run(url: &str, requests: u64, out: &Path, extra: &[&str]) -> Output {
    common::inferbench()
        .args(["run", "--target", url, "--rate", "50", "--requests"])
        .arg(requests.to_string())
        .args(["--output-tokens", "4", "--no-history"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn last_line(o: &Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_string()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// (rule, passed) of the first scenario's thresholds.
fn checks(r: &serde_json::Value) -> Vec<(String, bool)> {
    r["scenarios"][0]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["rule"].as_str().unwrap().to_string(),
                c["passed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// No temporary report file is left behind in `dir`.
fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".tmp-") && !name.contains("probe"),
            "left over: {name}"
        );
    }
}

#[test]
fn a_clean_run_passes_and_says_so_last() {
    let m = mock(&[]);
    let out = tmp("clean");
    let o = run(&m.urls(), 20, &out, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(last_line(&o), "PASS: 1 scenario, every threshold held");
    let r = report(&out);
    assert_eq!(
        checks(&r),
        [("error_rate < 1% (default)".to_string(), true)]
    );
    assert_eq!(r["scenarios"][0]["thresholds"][0]["measured"], "0.00%");
    assert!(stdout(&o).contains("threshold ✓ error_rate < 1% (default) (measured 0.00%)"));
    for f in ["report.json", "report.md", "report.html", "report.csv"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("**Verdict:** PASS: 1 scenario, every threshold held"));
    no_temp_files(&out);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn errors_above_one_percent_fail_by_default() {
    let m = mock(&["--error-rate", "0.4", "--error-statuses", "500"]);
    let out = tmp("errors");
    let o = run(&m.urls(), 50, &out, &[]);
    assert_eq!(o.status.code(), Some(99), "{}", stdout(&o));
    let last = last_line(&o);
    assert!(
        last.starts_with("FAIL: scenario run: error_rate < 1% (default) failed (measured "),
        "{last}"
    );
    let r = report(&out);
    let s = &r["scenarios"][0];
    assert_eq!(s["passed"], false);
    let c = &s["total"]["total"]["counts"];
    let (requests, failed) = (
        c["requests"].as_u64().unwrap(),
        c["errors"]["http_500/model_server"].as_u64().unwrap(),
    );
    assert_eq!(requests, 50);
    assert!(failed > 0 && failed < 50, "failed {failed}");
    // The measured rate in the verdict is the report's.
    let measured = format!("{:.2}%", failed as f64 * 100.0 / requests as f64);
    assert_eq!(s["thresholds"][0]["measured"], measured.as_str());
    assert!(last.ends_with(&format!("(measured {measured})")), "{last}");
    assert_eq!(
        checks(&r),
        [("error_rate < 1% (default)".to_string(), false)]
    );
    // Its own error rule replaces the default gate.
    let out2 = tmp("errors-own-rule");
    let o = run(&m.urls(), 50, &out2, &["--threshold", "error_rate < 90%"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(last_line(&o).starts_with("PASS:"), "{}", last_line(&o));
    assert_eq!(
        checks(&report(&out2)),
        [("error_rate < 90%".to_string(), true)]
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&out2);
}

#[test]
fn a_run_where_every_request_fails_never_passes() {
    let m = mock(&["--error-rate", "1", "--error-statuses", "503"]);
    let out = tmp("all-fail");
    // Even with a rule that tolerates any error rate.
    let o = run(&m.urls(), 10, &out, &["--threshold", "error_rate <= 100%"]);
    assert_eq!(o.status.code(), Some(99), "{}", stdout(&o));
    assert_eq!(
        last_line(&o),
        "FAIL: scenario run: successful requests > 0 (default) failed (measured 0 of 10 completed)"
    );
    assert_eq!(
        checks(&report(&out)),
        [
            ("error_rate <= 100%".to_string(), true),
            ("successful requests > 0 (default)".to_string(), false)
        ]
    );
    // And with no threshold at all.
    let o = run(&m.urls(), 10, &out, &[]);
    assert_eq!(o.status.code(), Some(99), "{}", stdout(&o));
    assert!(last_line(&o).starts_with("FAIL: scenario run: error_rate < 1% (default) failed (measured 100.00%); successful requests > 0"), "{}", last_line(&o));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_unwritable_out_fails_before_any_request() {
    // Root ignores permission bits: a path under a regular file cannot be created by anyone.
    let dir = tmp("unwritable");
    let file = dir.join("file.txt");
    std::fs::write(&file, "not a directory").unwrap();
    let bad = file.join("sub");
    // A listener stands for the target: not even the reachability check may connect to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let o = run(&url, 10, &bad, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&*bad.to_string_lossy()), "{err}");
    assert!(err.contains("cannot create the output directory"), "{err}");
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "something connected to the target"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_report_that_cannot_be_written_goes_to_a_fallback() {
    let m = mock(&[]);
    let out = tmp("fallback-out");
    let tmpdir = tmp("fallback-tmp");
    // `report.json` is a directory: the report cannot be put there, though the folder is fine.
    std::fs::create_dir(out.join("report.json")).unwrap();
    let o = common::inferbench()
        .env("TMPDIR", &tmpdir)
        .args([
            "run",
            "--target",
            &m.urls(),
            "--rate",
            "50",
            "--requests",
            "10",
        ])
        .args(["--output-tokens", "4", "--no-history", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("the report could not be written to"), "{err}");
    // The summary is on the console, and says where the report went.
    let text = stdout(&o);
    assert!(text.contains("requests 10 ok 10 failed 0"), "{text}");
    let fallback: Vec<PathBuf> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("inferbench-")
        })
        .collect();
    assert_eq!(fallback.len(), 1, "{fallback:?}");
    assert!(
        err.contains(&format!("written to {} instead", fallback[0].display())),
        "{err}"
    );
    assert!(
        text.contains(&format!(
            "report: {}",
            fallback[0].join("report.json").display()
        )),
        "{text}"
    );
    assert_eq!(
        report(&fallback[0])["scenarios"][0]["total"]["total"]["counts"]["ok"],
        10
    );
    assert!(last_line(&o).starts_with("PASS:"), "{text}");
    // The directory that refused it holds no half-written file.
    assert!(out.join("report.json").is_dir());
    no_temp_files(&out);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&tmpdir);
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_under_the_request_log_is_reported() {
    let m = mock(&[]);
    let out = tmp("log-full");
    std::os::unix::fs::symlink("/dev/full", out.join("requests-run-steady.jsonl")).unwrap();
    let o = run(&m.urls(), 10, &out, &["--log-requests"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let client = &report(&out)["scenarios"][0]["total"]["client"];
    assert_eq!(client["log_dropped"], 10);
    let e = client["log_error"].as_str().unwrap();
    assert!(
        e.contains("requests-run-steady.jsonl") && e.contains("No space left"),
        "{e}"
    );
    let text = stdout(&o);
    assert!(
        text.contains("WARNING: the request log is incomplete: 10 lines not written; cannot write the request log"),
        "{text}"
    );
    assert!(
        text.contains("WARNING: the request log is incomplete for run (see above)"),
        "{text}"
    );
    assert!(last_line(&o).starts_with("PASS:"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_interrupted_run_says_so_last_and_counts_what_was_in_flight() {
    // Every request takes 30 s to its first token: whatever was sent is in flight at the stop.
    let m = common::start(&["--port", "0", "--ttft-ms", "30000"], 1);
    let out = tmp("interrupted");
    let child = common::inferbench()
        .args([
            "run",
            "--target",
            &m.urls(),
            "--rate",
            "20",
            "--duration",
            "60s",
        ])
        .args(["--output-tokens", "4", "--no-history", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stop once the mock holds requests (not after a guessed time).
    common::wait_for_metric(
        &m.addrs[0],
        &["vllm:num_requests_running", "vllm:num_requests_waiting"],
        2.0,
        "no request reached the mock",
    );
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let last = last_line(&o);
    assert!(
        last.starts_with(
            "INTERRUPTED: stopped after 1 scenario run (the report holds what completed)"
        ),
        "{last}"
    );
    let r = report(&out);
    assert_eq!(r["partial"], true);
    let s = &r["scenarios"][0]["total"];
    let c = &s["total"]["counts"];
    let interrupted = c["interrupted"].as_u64().unwrap();
    assert!(interrupted >= 2, "{c}");
    let (ok, requests) = (c["ok"].as_u64().unwrap(), c["requests"].as_u64().unwrap());
    let sent = s["client"]["sent"].as_u64().unwrap();
    let failed = requests - ok;
    assert_eq!(
        sent,
        requests + interrupted,
        "no warm-up: sent = requests + interrupted"
    );
    let line = format!("sent {sent} = ok {ok} + failed {failed} + interrupted {interrupted}\n");
    assert!(stdout(&o).contains(&line), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&out);
}
