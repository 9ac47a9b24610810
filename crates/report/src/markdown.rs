//! `report.md`: the report as tables a person reads (and a pull request shows).

use std::fmt::Write;

use inferbench_results::report::{LOG_INCOMPLETE, Report, ScenarioReport};
use inferbench_results::run::RunResult;

use crate::cells;

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

fn rate(r: &RunResult) -> String {
    format!("{:.2}", r.achieved_rate())
}

fn error_pct(r: &RunResult) -> String {
    format!("{:.2}%", r.total.counts.error_fraction() * 100.0)
}

/// One table row of headline figures.
fn row(label: &str, r: &RunResult) -> String {
    let l = &r.total.latency;
    let (t, i, p, e) = (
        l.ttft.summary(),
        l.itl.summary(),
        l.tpot.summary(),
        l.e2e.summary(),
    );
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
        r.load,
        r.total.counts.requests,
        error_pct(r),
        rate(r),
        ms(t.p50_us),
        ms(t.p95_us),
        ms(t.p99_us),
        ms(i.p50_us),
        ms(p.p50_us),
        ms(e.p50_us),
        ms(e.p95_us),
        r.output_tokens_per_s(),
    )
}

const HEADER: &str = "| | load | requests | errors | req/s | TTFT p50 ms | TTFT p95 | TTFT p99 | ITL p50 ms | TPOT p50 ms | e2e p50 ms | e2e p95 | output tok/s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# inferbench report\n");
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        o,
        "inferbench {} · {} scenario run(s) · **{verdict}**{}\n",
        r.tool_version,
        r.scenarios.len(),
        if r.partial {
            " · PARTIAL (interrupted)"
        } else {
            ""
        }
    );
    let _ = writeln!(o, "**Verdict:** {}\n", crate::console::verdict(r).line);
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(
        o,
        "| scenario | target | kind | requests | errors | req/s | TTFT p95 ms | verdict |"
    );
    let _ = writeln!(o, "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |");
    for s in &r.scenarios {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.target,
            s.kind,
            s.total.total.counts.requests,
            error_pct(&s.total),
            rate(&s.total),
            ms(s.total.total.latency.ttft.summary().p95_us),
            if s.passed { "pass" } else { "**FAIL**" }
        );
    }
    for s in &r.scenarios {
        scenario(&mut o, s);
    }
    o
}

fn scenario(o: &mut String, s: &ScenarioReport) {
    let _ = writeln!(
        o,
        "\n## {}{}\n",
        s.name,
        if s.repeat > 1 {
            format!(" (repeat {})", s.repeat)
        } else {
            String::new()
        }
    );
    if let Some(d) = &s.description {
        let _ = writeln!(o, "{d}\n");
    }
    let _ = writeln!(o, "Target `{}` ({}) · load: {}\n", s.target, s.url, s.kind);
    let _ = writeln!(o, "{HEADER}");
    if s.stages.len() > 1 {
        for st in &s.stages {
            let _ = writeln!(o, "{}", row(&st.name, &st.result));
        }
    }
    let _ = writeln!(o, "{}", row("**all**", &s.total));
    if let Some(line) = cells::sent_breakdown(&s.total) {
        let _ = writeln!(o, "\nRequests: {line}");
    }
    if !s.arms.is_empty() {
        let _ = writeln!(
            o,
            "\n**Routing overhead vs direct** (µs added at p50 / p95 / p99)\n\n| arm | req/s | TTFT p50 ms | TTFT added | e2e added | throughput | router CPU s/1k | router peak RSS | prefix hit | routing accuracy |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for a in &s.arms {
            let _ = writeln!(
                o,
                "| {} | {:.2} | {} | {} | {} | {} | {} | {} | {:.1}% | {:.2}% |",
                a.name,
                a.result.achieved_rate(),
                ms(a.result.total.latency.ttft.summary().p50_us),
                cells::added(a.ttft_added_us, " / "),
                cells::added(a.e2e_added_us, " / "),
                cells::throughput_change(a),
                cells::router_cpu(a, ""),
                cells::router_rss(a, 1),
                a.prefix_hit_rate * 100.0,
                a.routing_accuracy * 100.0
            );
        }
    }
    if let Some(b) = &s.breaking_point {
        let unit = cells::stress_unit(s);
        let _ = writeln!(
            o,
            "\n**Breaking point:** {} (last passing rate: {})",
            b.breaking_rate
                .map_or("not reached".to_string(), |r| format!("{r}{unit}")),
            b.last_passing_rate
                .map_or("none".to_string(), |r| format!("{r}{unit}"))
        );
        for c in &b.failed {
            let _ = writeln!(o, "- `{}` measured {}", c.rule, c.measured);
        }
    }
    if let Some(slo) = &s.slo {
        let _ = writeln!(
            o,
            "\n**SLO (p{}):** {} · goodput {:.2} req/s ({:.1}% of requests met every limit)",
            slo.percentile,
            if slo.passed { "pass" } else { "FAIL" },
            slo.goodput_rps,
            slo.good_fraction * 100.0
        );
        for c in &slo.checks {
            let _ = writeln!(
                o,
                "- {} `{}` measured {}",
                cells::mark(c.passed),
                c.rule,
                c.measured
            );
        }
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(o, "\n**Thresholds:**");
        for c in &s.thresholds {
            let _ = writeln!(
                o,
                "- {} `{}` measured {}",
                cells::mark(c.passed),
                c.rule,
                c.measured
            );
        }
    }
    let t = &s.total;
    if !t.by_model.is_empty() {
        let _ = writeln!(
            o,
            "\n| model | requests | ok | misrouted | TTFT p50 ms | TTFT p95 ms | output tok/s |"
        );
        let _ = writeln!(o, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (m, g) in &t.by_model {
            let mis = g
                .counts
                .errors
                .get("misrouted/gateway")
                .copied()
                .unwrap_or(0);
            let ts = g.latency.ttft.summary();
            let _ = writeln!(
                o,
                "| {m} | {} | {} | {mis} | {} | {} | {:.0} |",
                g.counts.requests,
                g.counts.ok,
                ms(ts.p50_us),
                ms(ts.p95_us),
                t.per_second(g.counts.output_tokens)
            );
        }
    }
    if t.by_endpoint.len() > 1 {
        let _ = writeln!(o, "\n| endpoint | requests | share |");
        let _ = writeln!(o, "| --- | ---: | ---: |");
        for (e, g) in &t.by_endpoint {
            let _ = writeln!(
                o,
                "| {e} | {} | {:.1}% |",
                g.counts.requests,
                g.counts.requests as f64 * 100.0 / t.total.counts.requests.max(1) as f64
            );
        }
    }
    if !t.total.counts.errors.is_empty() {
        let _ = writeln!(o, "\n| error (kind/side) | count |\n| --- | ---: |");
        for (k, v) in &t.total.counts.errors {
            let _ = writeln!(o, "| {k} | {v} |");
        }
    }
    let lag = t.client.dispatch_lag.summary();
    let _ = writeln!(
        o,
        "\nClient: dispatch lag p50 {} ms, p99 {} ms · late {} · dropped {} · retries {} · reconnects {} · interrupted {} · peak in flight {} · {:.3} CPU-s per 1,000 requests",
        ms(lag.p50_us),
        ms(lag.p99_us),
        t.client.late,
        t.client.dropped,
        t.client.retries,
        t.client.reconnects,
        t.client.interrupted,
        t.client.peak_in_flight,
        t.client.cpu_s_per_1000()
    );
    let log = cells::log_problem(t);
    if let Some(p) = &log {
        let _ = writeln!(o, "\n> **WARNING:** {p}");
    }
    for w in &t.warnings {
        if log.is_some() && w.starts_with(LOG_INCOMPLETE) {
            continue;
        }
        let _ = writeln!(o, "\n> warning: {w}");
    }
}

#[cfg(test)]
mod tests {
    use inferbench_results::report::Check;
    use inferbench_results::run::RunResult;

    #[test]
    fn shows_the_verdict_interrupted_requests_and_the_log() {
        let mut t = RunResult::empty("http://x", "rate 1/s");
        t.total.counts.requests = 3;
        t.total.counts.ok = 1;
        t.total
            .counts
            .errors
            .insert("http_500/model_server".into(), 2);
        t.total.counts.interrupted = 2;
        t.client.sent = 6;
        t.client.reconnects = 4;
        t.client.log_dropped = 1;
        t.warnings = vec![
            "the request log is incomplete: 1 lines dropped (the disk did not keep up)".into(),
        ];
        let mut r = crate::testutil::one_scenario("chat", t);
        r.scenarios[0].passed = false;
        r.scenarios[0].thresholds = vec![Check {
            rule: "error_rate < 1% (default)".into(),
            measured: "66.67%".into(),
            passed: false,
        }];
        let md = super::render(&r);
        assert!(
            md.contains("**Verdict:** FAIL: scenario chat: error_rate < 1% (default) failed (measured 66.67%)\n"),
            "{md}"
        );
        assert!(md.contains("- ✗ `error_rate < 1% (default)` measured 66.67%"));
        assert!(md.contains("\nRequests: sent 6 = ok 1 + failed 2 + interrupted 2 + warm-up 1\n"));
        assert!(md.contains("· reconnects 4 ·"));
        assert_eq!(md.matches("request log is incomplete").count(), 1, "{md}");
        assert!(md.contains("> **WARNING:** the request log is incomplete: 1 lines dropped"));
    }
}
