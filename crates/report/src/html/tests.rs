//! Tests of the HTML page: every section escaped and finite, degenerate reports, the helpers.

use super::svg::{Axis, log_ticks, nice_ticks};
use super::*;
use crate::testutil::full;
use inferbench_results::run::RunResult;

/// A scenario that recorded nothing.
fn empty() -> ScenarioReport {
    ScenarioReport {
        name: "empty <none>".into(),
        description: None,
        target: "t".into(),
        url: "http://x".into(),
        repeat: 2,
        kind: "rate".into(),
        stages: Vec::new(),
        total: RunResult::empty("http://x", "rate 1/s"),
        slo: None,
        thresholds: Vec::new(),
        breaking_point: None,
        arms: Vec::new(),
        trace: None,
        passed: true,
    }
}

fn report(scenarios: Vec<ScenarioReport>) -> Report {
    Report {
        schema_version: 2,
        tool_version: "0.1.0".into(),
        started_unix_s: 1_700_000_000,
        config: Some("suite <a&b>.yaml".into()),
        partial: false,
        scenarios,
        shard: None,
    }
}

/// No `NaN`, and every `inf` is part of a word (inferbench), never a number.
fn assert_finite(html: &str) {
    assert!(!html.contains("NaN"), "NaN in the page");
    for (i, _) in html.match_indices("inf") {
        let next = html[i + 3..].chars().next();
        assert!(
            next.is_some_and(|c| c.is_ascii_alphabetic()),
            "`inf` at {i}: {}",
            &html[i.saturating_sub(20)..(i + 10).min(html.len())]
        );
    }
}

#[test]
fn renders_every_section_escaped_and_finite() {
    let r = report(vec![full(), empty()]);
    let html = render(&r);
    // Names escaped, never raw.
    assert!(html.contains("chat &lt;steady&gt; &amp; co"));
    assert!(html.contains("empty &lt;none&gt;"));
    assert!(!html.contains("<steady>") && !html.contains("<none>"));
    assert!(html.contains("mock-lora &lt;adapter&gt;"));
    assert!(html.contains("suite &lt;a&amp;b&gt;.yaml"));
    assert!(html.contains("?a=1&amp;b=2"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    // Charts: percentiles (1 + 2 stages), over time (2), vs load (3), endpoints (1),
    // routing (1); the empty scenario draws none.
    assert_eq!(html.matches("<svg").count(), 10);
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 10);
    assert_eq!(html.matches("</svg>").count(), 10);
    // A known p99: TTFT of 10.0 … 19.9 ms → p99 19.81 ms.
    let p99 = r.scenarios[0].total.total.latency.ttft.summary().p99_us;
    assert_eq!(fmt::ms(p99), "19.81");
    assert!(html.contains("<td class=\"n\">19.81</td>"));
    // Sections and figures.
    for needle in [
        "Latency percentiles, all requests",
        "Latency percentiles by stage",
        "Latency over time",
        "Throughput over time",
        "Throughput vs load",
        "Routing overhead vs direct",
        "Share of requests per endpoint",
        "Per model",
        "Errors by class",
        "Client health",
        "Breaking point:</strong> 20 req/s (last passing rate 10 req/s)",
        "goodput 9.50 req/s (95.00% of requests met every limit)",
        "<span class=\"side model_server\">model_server</span>",
        "<span class=\"side client\">client</span>",
        "2023-11-14 22:13:20 UTC",
        "<td class=\"n\">+1.500</td>",
        "<td class=\"n\">-0.050</td>",
        "http://10.0.0.1:8000 50.00%",
        "(repeat 2)",
        "No successful requests",
        "✗ fail",
        "✓ pass",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    // Every chart has a title.
    assert_eq!(
        html.matches("<svg").count(),
        html.matches("role=\"img\"><title>").count()
    );
    assert_finite(&html);
    // Anchors link to sections that exist.
    assert!(
        html.contains("href=\"#s1-chat-steady-co\"") && html.contains("id=\"s1-chat-steady-co\"")
    );
    assert!(html.contains("href=\"#s2-empty-none\"") && html.contains("id=\"s2-empty-none\""));
}

#[test]
fn verdict_interrupted_requests_and_the_log_are_shown() {
    let mut s = full();
    s.total.total.counts.interrupted = 5;
    s.total.client.reconnects = 3;
    s.total.client.interrupted = 5;
    s.total.client.log_dropped = 7;
    s.total.client.log_error = Some("cannot write the request log <x>: disk full".into());
    let html = render(&report(vec![s, empty()]));
    assert!(html.contains(
        "<strong>Verdict:</strong> FAIL: scenario chat &lt;steady&gt; &amp; co: error_rate &lt; 1% failed (measured 12.3 ms)"
    ));
    // 100 ok + 4 failed + 5 interrupted; 104 sent: none left for warm-up.
    assert!(html.contains("Requests: sent 109 = ok 100 + failed 4 + interrupted 5</p>"));
    assert!(html.contains("<th class=\"n\">reconnects</th>"));
    assert!(html.contains(
        "<td class=\"n\">3</td><td class=\"n\">5</td><td class=\"n\">104</td><td class=\"n\">7</td>"
    ));
    assert!(html.contains(
        "<div class=\"warn\"><strong>⚠ the request log is incomplete: 7 lines not written; cannot write the request log &lt;x&gt;: disk full</strong></div>"
    ));
    assert_finite(&html);
}

#[test]
fn empty_and_degenerate_reports_render() {
    let html = render(&report(Vec::new()));
    assert!(html.contains("no scenario runs"));
    assert_eq!(html.matches("<svg").count(), 0);
    assert_finite(&html);

    // Stages but nothing recorded, zero durations, an old report without a timeline,
    // infinite and NaN values where floats are free.
    let mut s = full();
    for st in &mut s.stages {
        st.result = RunResult::empty("x", "rate");
        st.result.target_rate = Some(f64::NAN);
    }
    s.total.timeline.buckets.clear();
    s.total.duration_s = 0.0;
    s.arms[1].throughput_change_pct = Some(f64::INFINITY);
    s.arms[2].router_cpu_s = Some(f64::NAN);
    if let Some(slo) = &mut s.slo {
        slo.goodput_rps = f64::NAN;
    }
    let html = render(&report(vec![s, empty()]));
    assert!(html.contains("No timeline in this report"));
    assert_finite(&html);
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
}

#[test]
fn helpers() {
    assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    assert_eq!(nice_ticks(0.0, 97.0, 5), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
    assert_eq!(nice_ticks(0.0, 0.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(
        nice_ticks(-3.0, 7.0, 5),
        vec![-5.0, -2.5, 0.0, 2.5, 5.0, 7.5]
    );
    let t = nice_ticks(f64::NAN, f64::INFINITY, 5);
    assert!(t.len() >= 2 && t.iter().all(|v| v.is_finite()));
    assert_eq!(
        log_ticks(1.0, 100.0),
        vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    );
    assert_eq!(log_ticks(0.1, 1000.0), vec![0.1, 1.0, 10.0, 100.0, 1000.0]);
    let a = Axis::log(0.5, 80.0);
    assert_eq!((a.lo, a.hi), (0.1, 100.0));
    assert!((a.frac(10.0) - 2.0 / 3.0).abs() < 1e-9);
}
