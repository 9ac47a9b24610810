//! `report.md`: the report as tables a person reads (and a pull request shows).
//!
//! The sections come from the shared section model (`section`): each a bold heading, its lead,
//! then a table (checks as a bullet list, the client's health as one line), then its notes.

use std::fmt::Write;

use inferbench_results::suite::{Report, ScenarioReport};

use crate::section::{Cell, Layout, Section, build};

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
    let _ = write!(o, "## Summary");
    table(&mut o, &build::summary(r));
    for s in &r.scenarios {
        scenario(&mut o, s);
    }
    o
}

/// One scenario run: heading, description, target, then every section.
fn scenario(o: &mut String, s: &ScenarioReport) {
    let _ = writeln!(o, "\n## {}{}\n", s.name, build::repeat_note(s));
    if let Some(d) = &s.description {
        let _ = writeln!(o, "{d}\n");
    }
    let _ = write!(o, "Target `{}` ({}) · load: {}", s.target, s.url, s.kind);
    let head = build::headline(s);
    table(o, &head);
    notes(o, &head);
    section(o, &build::percentiles(s));
    for sec in build::details(s) {
        section(o, &sec);
    }
    let w = build::warnings(s);
    if let Some(p) = &w.log {
        let _ = writeln!(o, "\n> **WARNING:** {p}");
    }
    for w in &w.others {
        let _ = writeln!(o, "\n> warning: {w}");
    }
}

/// A cell in Markdown: code in backticks, a failed verdict in bold, `|` escaped (it would end
/// the table cell).
fn cell(c: &Cell) -> String {
    let text = match c {
        Cell::Code(s) if !s.contains('`') => format!("`{s}`"),
        Cell::Verdict(false) => format!("**{}**", c.plain()),
        _ => c.plain(),
    };
    text.replace('|', "\\|")
}

/// A section: bold heading with its lead, its rows in the section's layout, its notes.
pub(crate) fn section(o: &mut String, sec: &Section) {
    let lead = sec.lead.iter().map(cell).collect::<Vec<_>>().join(" · ");
    match sec.layout {
        Layout::Facts => {
            let _ = write!(o, "\n**{}:** {}\n", sec.title, sec.facts(cell).join(" · "));
        }
        Layout::Lines { .. } => {
            if lead.is_empty() {
                let _ = writeln!(o, "\n**{}:**\n", sec.title);
            } else {
                let _ = writeln!(o, "\n**{}:** {lead}\n", sec.title);
            }
            for row in &sec.rows {
                let _ = writeln!(o, "- {}", sec.line(row, cell));
            }
        }
        Layout::Table => {
            let _ = write!(o, "\n**{}**", sec.title);
            if !lead.is_empty() {
                let _ = write!(o, ": {lead}");
            }
            table(o, sec);
        }
    }
    notes(o, sec);
}

/// A section's notes, one paragraph each.
fn notes(o: &mut String, sec: &Section) {
    for n in &sec.notes {
        let _ = writeln!(o, "\n{}", n.text);
    }
}

/// A section's rows as a Markdown table (after a blank line); numbers aligned right, the total
/// row's label in bold.
pub(crate) fn table(o: &mut String, sec: &Section) {
    let _ = write!(o, "\n\n|");
    for c in &sec.columns {
        let _ = write!(o, " {} |", c.header().replace('|', "\\|"));
    }
    let _ = write!(o, "\n|");
    for i in 0..sec.columns.len() {
        let _ = write!(o, " {} |", if sec.numeric(i) { "---:" } else { "---" });
    }
    o.push('\n');
    for row in &sec.rows {
        o.push('|');
        for (i, c) in row.cells.iter().enumerate() {
            let text = cell(c);
            if row.total && i == 0 {
                let _ = write!(o, " **{text}** |");
            } else {
                let _ = write!(o, " {text} |");
            }
        }
        o.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use inferbench_results::suite::Check;

    #[test]
    fn shows_the_verdict_interrupted_requests_and_the_log() {
        let mut t = crate::testutil::interrupted(1, 2, 2, 6, 4);
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
        assert!(md.contains("- ✗ `error_rate < 1% (default)` (measured 66.67%)"));
        assert!(md.contains("\nRequests: sent 6 = ok 1 + failed 2 + interrupted 2 + warm-up 1\n"));
        assert!(md.contains("· reconnects 4 ·"));
        assert_eq!(md.matches("request log is incomplete").count(), 1, "{md}");
        assert!(md.contains("> **WARNING:** the request log is incomplete: 1 lines dropped"));
    }
}
