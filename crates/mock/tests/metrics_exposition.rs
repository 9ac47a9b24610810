//! The mock's `/metrics` as scrapers read it: Prometheus text 0.0.4 by default (what vLLM serves,
//! what `promtool` and Go's text parser read) with HELP and TYPE on every family, OpenMetrics when
//! asked, the standard `process_*` metrics, and `promtool check metrics` clean but for the `:` in
//! vLLM's names (when promtool is on PATH).

mod common;

use common::*;
use inferbench_mock::InstanceConfig;

/// Every sample's family has a HELP and a TYPE line of its own name (the 0.0.4 rule: a counter's
/// family is `x_total`, a histogram's samples are `x_bucket`, `x_sum`, `x_count`).
fn every_sample_has_help_and_type(text: &str) -> Result<(), String> {
    let mut help = std::collections::HashSet::new();
    let mut types = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("# HELP ") {
            help.insert(r.split(' ').next().unwrap().to_string());
        } else if let Some(r) = line.strip_prefix("# TYPE ") {
            let (n, t) = r.split_once(' ').unwrap();
            types.insert(n.to_string(), t.to_string());
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(format!("{name}: no TYPE ({family})"));
        }
        if !help.contains(family) {
            return Err(format!("{name}: no HELP ({family})"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn metrics_are_text_004_with_help_on_every_family() {
    let fleet = fleet(1, InstanceConfig::default()).await;
    let url = format!("{}/metrics", fleet.urls()[0]);
    let r = get(&client(), &url).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    every_sample_has_help_and_type(&text).unwrap_or_else(|e| panic!("{e} in\n{text}"));
    for needle in [
        "# HELP vllm:prompt_tokens_total ",
        "# TYPE vllm:prompt_tokens_total counter",
        "# HELP vllm:generation_tokens_total ",
        "# HELP vllm:request_success_total ",
        "# HELP vllm:prefix_cache_hits_total ",
        "# HELP vllm:prefix_cache_queries_total ",
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    // vLLM's counter samples are unchanged.
    assert!(text.contains(
        "vllm:request_success_total{model_name=\"mock-model\",finish_reason=\"stop\"} 0"
    ));
}

#[tokio::test]
async fn metrics_are_openmetrics_when_asked() {
    let fleet = fleet(1, InstanceConfig::default()).await;
    let url = format!("{}/metrics", fleet.urls()[0]);
    // Prometheus' own Accept header.
    let accept =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
    let r = request(&client(), "GET", &url, "", &[("accept", accept)]).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE vllm:prompt_tokens counter\n"),
        "{text}"
    );
    assert!(text.contains("vllm:prompt_tokens_total{model_name=\"mock-model\"} 0"));
    assert!(text.contains("process_cpu_seconds_total "));
}

/// `promtool check metrics` on the mock's `/metrics`: nothing but the `:` finding on vLLM's
/// names (skipped when promtool is not installed: `apt-get install prometheus`).
#[tokio::test]
async fn promtool_finds_nothing_but_vllm_colon_names() {
    let Some(findings) = promtool_findings_of_mock().await else {
        eprintln!("SKIPPED: promtool not on PATH (Debian: apt-get install prometheus)");
        return;
    };
    assert!(
        findings.is_empty(),
        "promtool findings:\n{}",
        findings.join("\n")
    );
}

async fn promtool_findings_of_mock() -> Option<Vec<String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if Command::new("promtool").arg("--version").output().is_err() {
        return None;
    }
    let fleet = fleet(1, InstanceConfig::default()).await;
    let text = get(&client(), &format!("{}/metrics", fleet.urls()[0]))
        .await
        .text();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // The colon finding is expected exactly on the `vllm:` names and the mock's own
    // `inferbench:mock_ttft_lag_seconds` beside them, and must be there (promtool did lint).
    let colon = |l: &str| {
        l.ends_with(" metric names should not contain ':'")
            && (l.starts_with("vllm:") || l.starts_with("inferbench:"))
    };
    assert!(
        all.lines()
            .any(|l| l.starts_with("vllm:num_requests_waiting ") && colon(l)),
        "{all}"
    );
    Some(
        all.lines()
            .filter(|l| !l.trim().is_empty() && !colon(l))
            .map(str::to_string)
            .collect(),
    )
}
