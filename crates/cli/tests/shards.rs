//! Shards = one run: N = 1, 2 and 4 `inferbench run --shard I/N` processes of one scenario,
//! started together with `--start-at`, merged with `inferbench merge`, against one unsharded run
//! of the same plan: the same requests exactly (count, and each request's number and planned
//! instant), latencies within noise, and merge refusing shards that do not belong together.
// Wall-clock start instants shared by processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use inferbench_results::suite::Report;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("inferbench-shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Unix ms `ms_ahead` from now.
fn start_at(ms_ahead: u64) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + ms_ahead
}

fn scenario(dir: &Path, url: &str, load: &str) -> PathBuf {
    let f = dir.join("scenario.yaml");
    std::fs::write(
        &f,
        format!(
            "targets:\n  - {{name: mock, url: \"{url}\", models: [mock-model]}}\nscenarios:\n  - name: s\n    load: {load}\n    seed: 3\n    workload: {{prompt_tokens: 32, output_tokens: 4}}\n    thresholds: [\"ttft.p99 < 5s\"]\n"
        ),
    )
    .unwrap();
    f
}

fn spawn(file: &Path, out: &Path, extra: &[String]) -> Child {
    common::inferbench()
        .arg("run")
        .arg(file)
        .args(["--no-history", "--log-requests", "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(dir: &Path) -> Report {
    Report::from_json(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// (request number, planned µs) of every line of the run's request logs in `dir`.
fn planned(dir: &Path) -> BTreeSet<(u64, u64)> {
    let mut set = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("requests-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let k = v["k"].as_u64().unwrap();
            assert!(
                set.insert((k, v["planned_us"].as_u64().unwrap())),
                "request {k} twice"
            );
        }
    }
    set
}

/// Runs the plan as `n` shards (all started at one instant) and merges them.
fn sharded(file: &Path, root: &Path, n: u32) -> (Report, BTreeSet<(u64, u64)>) {
    let at = start_at(3_000);
    let children: Vec<(PathBuf, Child)> = (0..n)
        .map(|i| {
            let out = root.join(format!("n{n}-s{i}"));
            let args = vec![
                "--shard".to_string(),
                format!("{i}/{n}"),
                "--start-at".to_string(),
                at.to_string(),
            ];
            let c = spawn(file, &out, &args);
            (out, c)
        })
        .collect();
    let mut planned_all = BTreeSet::new();
    let mut dirs = Vec::new();
    for (out, c) in children {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "shard failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for x in planned(&out) {
            assert!(planned_all.insert(x), "request {x:?} sent by two shards");
        }
        dirs.push(out);
    }
    let merged_dir = root.join(format!("n{n}-merged"));
    let o = common::inferbench()
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains(&format!("merged {n} shards of ")), "{text}");
    (report(&merged_dir), planned_all)
}

fn check(load: &str, name: &str) {
    let m = common::start(&["--port", "0", "--ttft-ms", "20", "--itl-ms", "2"], 1);
    let root = tmp(name);
    let file = scenario(&root, &m.urls(), load);
    // The unsharded run, started the same way.
    let one = root.join("one");
    let c = spawn(
        &file,
        &one,
        &["--start-at".into(), start_at(2_000).to_string()],
    );
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = report(&one);
    let whole_planned = planned(&one);
    let w = &whole.scenarios[0].total;
    for n in [1, 2, 4] {
        let (merged, planned_union) = sharded(&file, &root, n);
        let s = &merged.scenarios[0];
        assert_eq!(
            s.total.total.counts.requests, w.total.counts.requests,
            "{load}: {n} shards"
        );
        assert_eq!(
            s.total.total.counts.ok, w.total.counts.ok,
            "{load}: {n} shards"
        );
        if load.contains("rate") {
            // The merged schedule is the one plan's: the same requests at the same instants.
            assert_eq!(planned_union, whole_planned, "{load}: {n} shards");
        } else {
            // Closed loop: the same request numbers (instants follow the answers).
            let ks = |s: &BTreeSet<(u64, u64)>| s.iter().map(|x| x.0).collect::<BTreeSet<_>>();
            assert_eq!(ks(&planned_union).len(), ks(&whole_planned).len());
        }
        // The mock's TTFT is 20 ms: the merged p50 is at least that, and the unsharded one
        // within the machine's noise. (4 debug-built shard processes beside other tests on a
        // 2-core CI machine moved it by 2.3 ms once; the exact part of this test is above:
        // the same requests.)
        let (a, b) = (
            s.total.total.latency.ttft.summary().p50_us as i64,
            w.total.latency.ttft.summary().p50_us as i64,
        );
        assert!(a >= 20_000, "{load}: {n} shards: TTFT p50 {a} µs");
        assert!(
            (a - b).abs() < 4_000,
            "{load}: {n} shards: TTFT p50 {a} vs {b} µs"
        );
        assert!(s.passed, "{:?}", s.thresholds);
        assert_eq!(
            merged.shard.as_ref().map(|x| (x.index, x.count)),
            Some((None, n))
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn open_loop_shards_send_the_one_schedule() {
    check("{rate: 60, arrival: poisson}\n    duration: 2s", "open");
}

#[test]
fn closed_loop_shards_split_users_and_the_request_cap() {
    check("{concurrency: 4}\n    requests: 80", "closed");
}

#[test]
fn merge_refuses_shards_of_different_runs() {
    let m = common::start(&["--port", "0", "--ttft-ms", "5", "--itl-ms", "1"], 1);
    let root = tmp("refuse");
    let file = scenario(&root, &m.urls(), "{rate: 20}\n    duration: 1s");
    let other = root.join("other.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("seed: 3", "seed: 4"),
    )
    .unwrap();
    let at = start_at(2_000).to_string();
    let a = spawn(
        &file,
        &root.join("a"),
        &[
            "--shard".into(),
            "0/2".into(),
            "--start-at".into(),
            at.clone(),
        ],
    );
    let b = spawn(
        &other,
        &root.join("b"),
        &["--shard".into(), "1/2".into(), "--start-at".into(), at],
    );
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    let o = common::inferbench()
        .arg("merge")
        .arg(root.join("a"))
        .arg(root.join("b"))
        .arg("--out")
        .arg(root.join("m"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("are shards of different plans"), "{err}");
    assert!(err.contains("seed 3") && err.contains("seed 4"), "{err}");
    // A start that has passed is refused before any request.
    let o = common::inferbench()
        .arg("run")
        .arg(&file)
        .args([
            "--no-history",
            "--shard",
            "0/2",
            "--start-at",
            "1000",
            "--out",
        ])
        .arg(root.join("late"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in the past"));
    let _ = std::fs::remove_dir_all(&root);
}
