//! The router's own `/metrics` (and the mock's it scrapes) as Prometheus tooling reads them: text
//! 0.0.4 with HELP on every family, the standard `process_*` metrics, and `promtool check
//! metrics` without findings but the `:` in vLLM's names (when promtool is on PATH).
// Processes (promtool) are run and waited for with wall-clock timeouts.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};
use inferbench_router::{PickerConfig, RouterConfig, start};

/// The body of `GET http://{addr}/metrics` (HTTP/1.0-style: the server closes).
async fn metrics(addr: &str) -> (String, String) {
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        (head.to_ascii_lowercase(), body.to_string())
    })
    .await
    .unwrap()
}

/// promtool's findings on `text` other than the `:` in vLLM's names; `None` without promtool.
fn promtool_findings(text: &str) -> Option<Vec<String>> {
    if Command::new("promtool").arg("--version").output().is_err() {
        return None;
    }
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
    let colon = |l: &str| {
        l.ends_with(" metric names should not contain ':'")
            && (l.starts_with("vllm:") || l.starts_with("inferbench:"))
    };
    Some(
        all.lines()
            .filter(|l| !l.trim().is_empty() && !colon(l))
            .map(str::to_string)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_and_mock_metrics_pass_promtool() {
    let fleet = MockFleet::start(
        FleetConfig::uniform("127.0.0.1", 0, 1, InstanceConfig::default()).unwrap(),
    )
    .await
    .unwrap();
    let mock = fleet.addrs()[0].to_string();
    let cfg = RouterConfig::quick(vec![mock.clone()], PickerConfig::RoundRobin);
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let router = r.url().trim_start_matches("http://").to_string();

    let (head, text) = metrics(&router).await;
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for needle in [
        "# HELP process_cpu_seconds_total ",
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
        "# HELP inferbench_router_requests_total ",
        "# TYPE inferbench_router_requests_total counter\n",
        "# HELP inferbench_router_rejected_total ",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    assert!(!text.contains("inferbench_router_process_"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");
    let (_, mock_text) = metrics(&mock).await;

    match (promtool_findings(&text), promtool_findings(&mock_text)) {
        (Some(router_findings), Some(mock_findings)) => {
            assert!(
                router_findings.is_empty(),
                "promtool on the router's /metrics:\n{}",
                router_findings.join("\n")
            );
            assert!(
                mock_findings.is_empty(),
                "promtool on the mock's /metrics:\n{}",
                mock_findings.join("\n")
            );
        }
        _ => eprintln!(
            "SKIPPED promtool check: promtool not on PATH (Debian: apt-get install prometheus)"
        ),
    }
    r.shutdown().await;
}
