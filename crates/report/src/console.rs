//! The console summary `inferbench run` prints after each scenario, and the verdict line that
//! ends its output.
//!
//! The sections come from the shared section model (`section`), drawn here as aligned text:
//! tables with their columns padded (numbers to the right, sideways when too wide), checks one
//! sentence per line, the client's health as one line of facts. The headline line and the
//! warnings are the console's own.

use std::fmt::Write as _;

use inferbench_results::suite::{Report, ScenarioReport};

use crate::fmt;
use crate::section::{Cell, Layout, Section, build};

/// The console summary of one scenario: the headline line, the stages, the percentile table,
/// routing arms, breaking point, SLO, thresholds, models, endpoints, errors, the client's health
/// and warnings.
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
        "requests {} ok {} failed {}  ·  {} req/s{}  ·  output {} tok/s  ·  {} s measured",
        fmt::count(c.requests),
        fmt::count(c.ok),
        fmt::count(c.failed()),
        fmt::rate(r.achieved_rate()),
        r.target_rate
            .map(|t| format!(" (target {})", fmt::short(t)))
            .unwrap_or_default(),
        fmt::tok_rate(r.output_tokens_per_s()),
        fmt::secs(r.duration_s)
    );
    let head = build::headline(s);
    // One stage: the line above is the headline; several: their table.
    if s.stages.len() > 1 {
        section(&mut o, &head);
    } else {
        notes(&mut o, &head);
    }
    section(&mut o, &build::percentiles(s));
    for sec in build::details(s) {
        section(&mut o, &sec);
    }
    // An incomplete request log is said loudly, once (not again among the warnings).
    let w = build::warnings(s);
    if let Some(p) = &w.log {
        let _ = writeln!(o, "WARNING: {p}");
    }
    for w in &w.others {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}

/// A section as text: its heading and lead, then its rows in the section's layout, then its
/// notes.
pub(crate) fn section(o: &mut String, sec: &Section) {
    let lead = sec
        .lead
        .iter()
        .map(Cell::plain)
        .collect::<Vec<_>>()
        .join(" · ");
    match sec.layout {
        Layout::Facts => {
            let _ = writeln!(o, "{}: {}", sec.title, sec.facts(Cell::plain).join(", "));
        }
        Layout::Lines { label } => {
            if !lead.is_empty() {
                let _ = writeln!(o, "{}: {lead}", sec.title);
            } else if label.is_empty() {
                let _ = writeln!(o, "{}:", sec.title);
            }
            let prefix = if label.is_empty() {
                "  ".to_string()
            } else {
                format!("{label} ")
            };
            for row in &sec.rows {
                let _ = writeln!(o, "{prefix}{}", sec.line(row, Cell::plain));
            }
        }
        Layout::Table => {
            if lead.is_empty() {
                let _ = writeln!(o, "{}:", sec.title);
            } else {
                let _ = writeln!(o, "{}: {lead}", sec.title);
            }
            crate::text::fitted(o, sec);
        }
    }
    notes(o, sec);
}

/// A section's notes, one per line.
fn notes(o: &mut String, sec: &Section) {
    for n in &sec.notes {
        let _ = writeln!(o, "{}", n.text);
    }
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
    use inferbench_results::run::RunResult;
    use inferbench_results::suite::Check;

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
        let mut t = crate::testutil::interrupted(9, 1, 3, 15, 2);
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
            out.contains("\nRequests: sent 15 = ok 9 + failed 1 + interrupted 3 + warm-up 2\n"),
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

    #[test]
    fn the_lines_scripts_and_tests_look_for_stay() {
        let mut t = RunResult::empty("t", "rate 10/s");
        t.total.counts.requests = 40;
        t.total.counts.ok = 40;
        t.misrouted = 20;
        t.by_model.insert("mock-model".into(), t.total.clone());
        let mut r = crate::testutil::one_scenario("run", t);
        r.scenarios[0].thresholds = vec![check("error_rate < 1% (default)", "0.00%", true)];
        let out = scenario(&r.scenarios[0]);
        for line in [
            "\nrequests 40 ok 40 failed 0  ·  ",
            "\nthreshold ✓ error_rate < 1% (default) (measured 0.00%)\n",
            "\nmisrouted (served by another model): 20 of 40 (50.00% routing accuracy)\n",
            "\nClient health: dispatch lag p50 0.000 ms, ",
        ] {
            assert!(out.contains(line), "{line} not in\n{out}");
        }
    }
}
