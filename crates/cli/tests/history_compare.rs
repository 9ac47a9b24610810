//! `inferbench history`, `baseline`, `compare` and `report` on real runs of the binary against a
//! mock fleet: runs recorded across invocations, baselines by name, verdicts as exit codes, a
//! damaged or missing database as a clear message that never fails a run, and saved reports
//! re-rendered (an older one included).

mod common;

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_inferbench");

fn ib(args: &[&str], history: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("INFERBENCH_HISTORY", history)
        .env("INFERBENCH_GIT_COMMIT", "feedc0ffee12")
        .output()
        .expect("run inferbench")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(url: &str, out: &Path, history: &Path) -> Output {
    ib(
        &[
            "run",
            "--target",
            url,
            "--rate",
            "40",
            "--duration",
            "1s",
            "--out",
            out.to_str().unwrap(),
        ],
        history,
    )
}

#[test]
fn history_lists_runs_across_invocations_and_compare_uses_baselines() {
    let fast = common::start(&["--port", "0", "--ttft-ms", "20", "--itl-ms", "1"], 1);
    let slow = common::start(&["--port", "0", "--ttft-ms", "60", "--itl-ms", "1"], 1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h/history.db");

    // Missing database: a clear message, exit 1.
    let o = ib(&["history"], &db);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no history at"), "{}", text(&o));

    for (i, url) in [fast.urls(), fast.urls(), slow.urls()].iter().enumerate() {
        let o = run(url, &dir.path().join(format!("r{i}")), &db);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("history: run #{}", i + 1)),
            "{}",
            text(&o)
        );
    }
    let o = ib(&["history"], &db);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for id in ["#1", "#2", "#3"] {
        assert!(t.contains(id), "{t}");
    }
    assert!(t.contains("feedc0ffee12"), "{t}");
    let o = ib(&["history", "--format", "json"], &db);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    // A scenario's trend, oldest first.
    let o = ib(&["history", "--scenario", "run"], &db);
    let t = text(&o);
    assert!(t.contains("3 run(s)"), "{t}");

    // Baseline by name; compare by id, by name and by folder.
    let o = ib(&["baseline", "set", "1", "--name", "main"], &db);
    assert!(o.status.success(), "{}", text(&o));
    // Two runs of one configuration: never a regression (exit 0, none counted). Timing on a
    // busy 2-core CI machine moves between runs (a tail, even a median by > 15%; the mock's
    // TTFT has no jitter, so 1 ms of scheduling delay is already "significant"), so the gates
    // are widened to what such a machine can promise: a median must move by half, a p95
    // double. The planted slowdown below (TTFT ×3) is what must be caught, and still is.
    let wide = ["--min-effect", "50", "--fail-p95", "100"];
    let o = ib(
        &[&["compare", "--baseline", "main", "2"][..], &wide].concat(),
        &db,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("(0 regressions, 7 metrics compared)"), "{t}");
    let o = ib(
        &[
            &["compare", "--baseline", "main", "latest", "--quiet"][..],
            &wide,
        ]
        .concat(),
        &db,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("REGRESSION"), "{}", text(&o));
    let r0 = dir.path().join("r0");
    let r2 = dir.path().join("r2");
    let o = ib(
        &[
            "compare",
            r0.to_str().unwrap(),
            r2.to_str().unwrap(),
            "--format",
            "md",
        ],
        &db,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("| run | ttft |"), "{}", text(&o));
    // Unusable input: exit 2 with the reason.
    let o = ib(&["compare", "--baseline", "nope", "2"], &db);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("no baseline named `nope`"),
        "{}",
        text(&o)
    );
    let o = ib(
        &["compare", r0.to_str().unwrap(), "/nonexistent/report.json"],
        &db,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A damaged database: `history` says so; a run still succeeds and warns.
    std::fs::write(&db, vec![b'#'; 8192]).unwrap();
    let o = ib(&["history"], &db);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("unreadable"), "{}", text(&o));
    let o = run(&fast.urls(), &dir.path().join("r3"), &db);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("warning: the run was not recorded in history"),
        "{}",
        text(&o)
    );
    assert!(dir.path().join("r3/report.json").is_file());
}

#[test]
fn report_re_renders_old_reports_and_refuses_unknown_versions() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report-v2-before-timeline.json");
    let db = dir.path().join("history.db");
    for (format, needle) in [
        ("md", "| chat |"),
        ("html", "<svg"),
        ("csv", "scenario,part,name"),
        ("json", "\"timeline\""),
    ] {
        let o = ib(
            &["report", fixture.to_str().unwrap(), "--format", format],
            &db,
        );
        assert!(o.status.success(), "{format}: {}", text(&o));
        assert!(text(&o).contains(needle), "{format}: {}", text(&o));
    }
    // The CSV holds the fixture's numbers.
    let o = ib(
        &["report", fixture.to_str().unwrap(), "--format", "csv"],
        &db,
    );
    let csv = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = csv.lines().nth(1).unwrap();
    assert!(row.starts_with("chat,total,chat,"), "{row}");
    // An unknown schema version is a clear error naming the file.
    let future = dir.path().join("report.json");
    let old = std::fs::read_to_string(&fixture).unwrap();
    std::fs::write(
        &future,
        old.replacen("\"schema_version\": 2", "\"schema_version\": 7", 1),
    )
    .unwrap();
    let o = ib(&["report", dir.path().to_str().unwrap()], &db);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("report.json") && t.contains("schema version 7"),
        "{t}"
    );
}
