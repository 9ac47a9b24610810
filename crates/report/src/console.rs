//! The console summary `inferbench run` prints after each scenario.

use std::fmt::Write as _;

use inferbench_results::report::ScenarioReport;

use crate::cells;

/// The console summary of one scenario: headline figures, stages, the percentile table, errors,
/// models, endpoints, routing arms, breaking point, SLO, thresholds, the client's health and
/// warnings.
pub fn scenario(s: &ScenarioReport) -> String {
    let mut o = String::new();
    let r = &s.total;
    let c = &r.total.counts;
    let _ = writeln!(
        o,
        "\n== {} ({}) against {}{}",
        s.name,
        s.kind,
        s.url,
        if r.partial {
            "  (PARTIAL: interrupted)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "requests {} ok {} failed {}  ·  {:.2} req/s{}  ·  output {:.0} tok/s  ·  {:.1} s measured",
        c.requests,
        c.ok,
        c.failed(),
        r.achieved_rate(),
        r.target_rate
            .map(|t| format!(" (target {t})"))
            .unwrap_or_default(),
        r.output_tokens_per_s(),
        r.duration_s
    );
    let ms = |v: u64| v as f64 / 1000.0;
    if s.stages.len() > 1 {
        let _ = writeln!(
            o,
            "{:<16} {:<22} {:>7} {:>6} {:>8} {:>9} {:>9} {:>9} {:>8}",
            "stage", "load", "req", "err", "req/s", "TTFT p50", "TTFT p95", "e2e p95", "ITL p50"
        );
        for st in &s.stages {
            let g = &st.result.total;
            let _ = writeln!(
                o,
                "{:<16} {:<22} {:>7} {:>6} {:>8.2} {:>9.3} {:>9.3} {:>9.3} {:>8.3}",
                st.name,
                st.result.load,
                g.counts.requests,
                g.counts.failed(),
                st.result.achieved_rate(),
                ms(g.latency.ttft.summary().p50_us),
                ms(g.latency.ttft.summary().p95_us),
                ms(g.latency.e2e.summary().p95_us),
                ms(g.latency.itl.summary().p50_us),
            );
        }
    }
    let _ = writeln!(
        o,
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "ms", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    let l = &r.total.latency;
    for (name, h) in [
        ("TTFT", &l.ttft),
        ("TTFT (from planned)", &l.ttft_from_planned),
        ("ITL", &l.itl),
        ("TPOT", &l.tpot),
        ("e2e", &l.e2e),
        ("e2e (from planned)", &l.e2e_from_planned),
        ("TTFB", &l.ttfb),
        ("dispatch lag", &r.client.dispatch_lag),
    ] {
        let s = h.summary();
        let _ = writeln!(
            o,
            "{:<22} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            ms(s.p50_us),
            ms(s.p90_us),
            ms(s.p95_us),
            ms(s.p99_us),
            ms(s.p999_us),
            ms(s.max_us)
        );
    }
    for (k, v) in &c.errors {
        let _ = writeln!(o, "error {k}: {v}");
    }
    for (m, g) in &r.by_model {
        let t = g.latency.ttft.summary();
        let _ = writeln!(
            o,
            "model {m}: {} requests, {} ok, TTFT p50 {:.3} ms p99 {:.3} ms, output {:.0} tok/s",
            g.counts.requests,
            g.counts.ok,
            ms(t.p50_us),
            ms(t.p99_us),
            r.per_second(g.counts.output_tokens)
        );
    }
    if r.misrouted > 0 {
        let _ = writeln!(
            o,
            "misrouted (served by another model): {} of {} ({:.2}% routing accuracy)",
            r.misrouted,
            c.requests,
            100.0 - r.misrouted as f64 * 100.0 / c.requests.max(1) as f64
        );
    }
    if r.by_endpoint.len() > 1 {
        for (e, g) in &r.by_endpoint {
            let share = g.counts.requests as f64 * 100.0 / c.requests.max(1) as f64;
            let _ = writeln!(
                o,
                "endpoint {e}: {} requests ({share:.1}%)",
                g.counts.requests
            );
        }
    }
    if !s.arms.is_empty() {
        let _ = writeln!(
            o,
            "routing overhead vs direct (µs; TTFT and e2e added at p50/p95/p99):\n{:<16} {:>8} {:>9} {:>22} {:>22} {:>8} {:>11} {:>7} {:>8} {:>8}",
            "arm",
            "req/s",
            "TTFT p50",
            "TTFT added",
            "e2e added",
            "thrpt",
            "router CPU",
            "RSS",
            "prefix",
            "routed"
        );
        for a in &s.arms {
            let _ = writeln!(
                o,
                "{:<16} {:>8.2} {:>9.3} {:>22} {:>22} {:>8} {:>11} {:>7} {:>7.1}% {:>7.2}%",
                a.name,
                a.result.achieved_rate(),
                ms(a.result.total.latency.ttft.summary().p50_us),
                cells::added(a.ttft_added_us, "/"),
                cells::added(a.e2e_added_us, "/"),
                cells::throughput_change(a),
                cells::router_cpu(a, " s/1k"),
                cells::router_rss(a, 0),
                a.prefix_hit_rate * 100.0,
                a.routing_accuracy * 100.0
            );
        }
    }
    if let Some(b) = &s.breaking_point {
        let unit = cells::stress_unit(s);
        let _ = writeln!(
            o,
            "breaking point: {} (last passing rate {})",
            b.breaking_rate
                .map_or("not reached".to_string(), |r| format!("{r}{unit}")),
            b.last_passing_rate
                .map_or("none".to_string(), |r| format!("{r}{unit}"))
        );
        for f in &b.failed {
            let _ = writeln!(o, "  broke: {} (measured {})", f.rule, f.measured);
        }
    }
    if let Some(slo) = &s.slo {
        let _ = writeln!(
            o,
            "SLO p{}: {} · goodput {:.2} req/s ({:.1}% of requests met every limit)",
            slo.percentile,
            if slo.passed { "pass" } else { "FAIL" },
            slo.goodput_rps,
            slo.good_fraction * 100.0
        );
        for ch in &slo.checks {
            let _ = writeln!(
                o,
                "  {} {} (measured {})",
                cells::mark(ch.passed),
                ch.rule,
                ch.measured
            );
        }
    }
    for ch in &s.thresholds {
        let _ = writeln!(
            o,
            "threshold {} {} (measured {})",
            cells::mark(ch.passed),
            ch.rule,
            ch.measured
        );
    }
    let _ = writeln!(
        o,
        "client: peak in flight {}, late (> 1 ms) {}, dropped {}, CPU {:.3} s ({:.3} s per 1,000 requests)",
        r.client.peak_in_flight,
        r.client.late,
        r.client.dropped,
        r.client.cpu_seconds,
        r.client.cpu_s_per_1000()
    );
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}
