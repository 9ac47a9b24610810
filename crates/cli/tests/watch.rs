//! `--watch-process`: a process on this machine (here the mock serving the run) is sampled during
//! the run, and every stage and the total report its CPU and memory, in report.json and
//! report.md.

mod common;

#[test]
fn a_watched_server_reports_its_cpu_and_memory_per_stage() {
    let m = common::start(&["--port", "0", "--ttft-ms", "5", "--itl-ms", "1"], 1);
    let pid = m.child.id();
    let dir = std::env::temp_dir().join(format!("inferbench-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - {{name: m, url: \"{}\", models: [mock-model]}}\nscenarios:\n  - name: s\n    load:\n      stages:\n        - {{name: low, duration: 1500ms, rate: 20}}\n        - {{name: high, duration: 1500ms, rate: 100}}\n    workload: {{prompt_tokens: 64, output_tokens: 16}}\n",
            m.urls()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = common::inferbench()
        .arg("run")
        .arg(&file)
        .args([
            "--no-history",
            "--watch-process",
            &format!("mock={pid}"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let s = &r["scenarios"][0];
    let total = &s["total"]["processes"][0];
    assert_eq!(total["name"], "mock");
    assert_eq!(total["pid"], pid);
    assert!(total["cpu_s"].as_f64().unwrap() > 0.0, "{total}");
    assert!(total["peak_rss_mb"].as_f64().unwrap() > 1.0, "{total}");
    // Each stage over its own window: the stages' CPU adds up to about the total's.
    let stages: Vec<f64> = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["result"]["processes"][0]["cpu_s"].as_f64().unwrap())
        .collect();
    assert_eq!(stages.len(), 2);
    let total_cpu = total["cpu_s"].as_f64().unwrap();
    assert!(
        (stages.iter().sum::<f64>() - total_cpu).abs() <= 0.05 + total_cpu * 0.5,
        "{stages:?} vs {total_cpu}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Watched processes"), "{md}");
    // A name that matches nothing is refused before any request.
    let o = common::inferbench()
        .arg("run")
        .arg(&file)
        .args([
            "--no-history",
            "--watch-process",
            "x=no-such-process-anywhere-42",
            "--out",
        ])
        .arg(dir.join("none"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no process's command line contains"));
    let _ = std::fs::remove_dir_all(&dir);
}
