//! The console summary `inferbench run` prints after each scenario, and the verdict line that
//! ends its output.

use std::fmt::Write as _;

use inferbench_results::report::{LOG_INCOMPLETE, Report, ScenarioReport};

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
    if let Some(line) = cells::sent_breakdown(r) {
        let _ = writeln!(o, "{line}");
    }
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
        "client: peak in flight {}, late (> 1 ms) {}, dropped {}, retries {}, reconnects {}, interrupted {}, CPU {:.3} s ({:.3} s per 1,000 requests)",
        r.client.peak_in_flight,
        r.client.late,
        r.client.dropped,
        r.client.retries,
        r.client.reconnects,
        r.client.interrupted,
        r.client.cpu_seconds,
        r.client.cpu_s_per_1000()
    );
    // An incomplete request log is said loudly, once (not again among the warnings).
    let log = cells::log_problem(r);
    if let Some(p) = &log {
        let _ = writeln!(o, "WARNING: {}", p);
    }
    for w in &r.warnings {
        if log.is_some() && w.starts_with(LOG_INCOMPLETE) {
            continue;
        }
        let _ = writeln!(o, "warning: {w}");
    }
    o
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every scenario held every threshold, SLO and default gate.
    Pass,
    /// A scenario failed one (or none ran).
    Fail,
    /// Stopped (Ctrl-C, SIGTERM) before the end: the report is partial.
    Interrupted,
}

/// The verdict: its outcome and the line that says it with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Pass, fail or interrupted.
    pub outcome: Outcome,
    /// `PASS: …`, `FAIL: …` or `INTERRUPTED: …`, one line (no newline).
    pub line: String,
}

/// Most failure reasons the verdict line names; the report has them all.
const MAX_REASONS: usize = 6;

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The reasons of every failed scenario: `scenario NAME: REASON; REASON; scenario …`, at most
/// [`MAX_REASONS`] reasons, then how many more.
fn reasons(r: &Report) -> String {
    let mut parts = Vec::new();
    let mut left = 0;
    for s in r.scenarios.iter().filter(|s| !s.passed) {
        let mut mine = Vec::new();
        for why in s.failures() {
            if parts.len() + mine.len() < MAX_REASONS {
                mine.push(why);
            } else {
                left += 1;
            }
        }
        if !mine.is_empty() {
            parts.push(format!("scenario {}: {}", s.label(), mine.join("; ")));
        }
    }
    let mut out = parts.join("; ");
    if left > 0 {
        let _ = write!(out, "; and {left} more (see the report)");
    }
    out
}

/// The verdict of a report: the last line `inferbench run` prints, and its exit status.
pub fn verdict(r: &Report) -> Verdict {
    let failed = r.scenarios.iter().filter(|s| !s.passed).count();
    let n = r.scenarios.len();
    if r.partial {
        return Verdict {
            outcome: Outcome::Interrupted,
            line: format!(
                "INTERRUPTED: stopped after {} (the report holds what completed){}",
                plural(n, "scenario run"),
                if failed > 0 {
                    format!("; already failing: {}", reasons(r))
                } else {
                    String::new()
                }
            ),
        };
    }
    if n == 0 {
        return Verdict {
            outcome: Outcome::Fail,
            line: "FAIL: no scenario ran".into(),
        };
    }
    if failed > 0 {
        return Verdict {
            outcome: Outcome::Fail,
            line: format!("FAIL: {}", reasons(r)),
        };
    }
    let slo = r.scenarios.iter().any(|s| s.slo.is_some());
    Verdict {
        outcome: Outcome::Pass,
        line: format!(
            "PASS: {}, every threshold{} held",
            plural(n, "scenario"),
            if slo { " and SLO" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::report::Check;
    use inferbench_results::run::RunResult;

    fn check(rule: &str, measured: &str, passed: bool) -> Check {
        Check {
            rule: rule.into(),
            measured: measured.into(),
            passed,
        }
    }

    #[test]
    fn the_verdict_names_every_reason() {
        let mut r = crate::testutil::one_scenario("chat", RunResult::empty("t", "l"));
        r.scenarios[0].thresholds = vec![check("error_rate < 1% (default)", "0.00%", true)];
        let v = verdict(&r);
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.line, "PASS: 1 scenario, every threshold held");

        let mut second = r.scenarios[0].clone();
        second.name = "rag".into();
        second.repeat = 2;
        second.passed = false;
        second.thresholds = vec![
            check("arm epp: ttft.p95 < 500ms", "612.000 ms", false),
            check("error_rate < 1% (default)", "0.00%", true),
        ];
        r.scenarios[0].passed = false;
        r.scenarios[0].thresholds = vec![
            check("error_rate < 1% (default)", "42.50%", false),
            check(
                "successful requests > 0 (default)",
                "0 of 40 completed",
                false,
            ),
        ];
        r.scenarios.push(second);
        let v = verdict(&r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.line,
            "FAIL: scenario chat: error_rate < 1% (default) failed (measured 42.50%); \
             successful requests > 0 (default) failed (measured 0 of 40 completed); \
             scenario rag (repeat 2): arm epp: ttft.p95 < 500ms failed (measured 612.000 ms)"
        );

        r.partial = true;
        let v = verdict(&r);
        assert_eq!(v.outcome, Outcome::Interrupted);
        assert!(
            v.line
                .starts_with("INTERRUPTED: stopped after 2 scenario runs"),
            "{}",
            v.line
        );
        assert!(
            v.line.contains("already failing: scenario chat"),
            "{}",
            v.line
        );

        r.partial = false;
        r.scenarios.clear();
        assert_eq!(
            verdict(&r),
            Verdict {
                outcome: Outcome::Fail,
                line: "FAIL: no scenario ran".into()
            }
        );
    }

    #[test]
    fn many_reasons_are_cut_short() {
        let mut r = crate::testutil::one_scenario("s", RunResult::empty("t", "l"));
        r.scenarios[0].passed = false;
        r.scenarios[0].thresholds = (0..9)
            .map(|i| check(&format!("ttft.p{i} < 1ms"), "2.000 ms", false))
            .collect();
        let v = verdict(&r);
        assert_eq!(v.line.matches(" failed (measured").count(), MAX_REASONS);
        assert!(
            v.line.ends_with("; and 3 more (see the report)"),
            "{}",
            v.line
        );
        assert!(!v.line.contains('\n'));
    }

    #[test]
    fn interrupted_requests_reconnects_and_the_log_are_shown() {
        let mut t = RunResult::empty("t", "l");
        t.total.counts.requests = 10;
        t.total.counts.ok = 9;
        t.total
            .counts
            .errors
            .insert("http_500/model_server".into(), 1);
        t.total.counts.interrupted = 3;
        t.client.sent = 15;
        t.client.reconnects = 2;
        t.client.log_dropped = 4;
        t.client.log_error =
            Some("cannot write the request log /x: No space left on device".into());
        t.warnings = vec![
            "the request log is incomplete: 4 lines not written; cannot write the request log /x: No space left on device".into(),
            "other".into(),
        ];
        let r = crate::testutil::one_scenario("s", t);
        let out = scenario(&r.scenarios[0]);
        assert!(
            out.contains("\nsent 15 = ok 9 + failed 1 + interrupted 3 + warm-up 2\n"),
            "{out}"
        );
        assert!(out.contains("reconnects 2,"), "{out}");
        assert_eq!(out.matches("request log is incomplete").count(), 1, "{out}");
        assert!(
            out.contains("WARNING: the request log is incomplete: 4 lines not written; cannot write the request log /x: No space left on device\n"),
            "{out}"
        );
        assert!(out.contains("warning: other\n"));
    }
}
