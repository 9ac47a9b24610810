//! `report.html`: the whole report as one self-contained page — inline CSS and inline SVG charts
//! drawn here, no script, font or image from anywhere — so it can be attached to a CI run or
//! opened from disk years later and look the same.
//!
//! Layout: a header (version, start time, config, verdict) and a table of contents, then one
//! section per scenario run: headline table, verdicts (SLO, thresholds, breaking point), latency
//! percentiles, latency and throughput over time, throughput vs load, routing overhead, share per
//! endpoint, per model, errors by class and the client's own health.
//!
//! Here: the page (head, style sheet, header, contents) and the entry point. The tables are the
//! crate's shared section model drawn by `sections`; the charts are built in `charts` from the
//! SVG pieces of `svg`.
//!
//! Every string taken from the report goes through `esc`; every figure through [`crate::fmt`]
//! (tables) or `svg::px` and [`crate::fmt::short`] (charts), so the page never shows `NaN` or
//! `inf`.

use std::fmt::{self as sfmt, Write};

use inferbench_results::suite::{Report, ScenarioReport};

use crate::fmt;
use crate::section::build;

mod charts;
mod sections;
mod svg;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use sections::{Heading, section};

/// The style sheet: light background, system sans-serif, cards, tables, charts.
const CSS: &str = r#"
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--pass:#15803d;--fail:#b91c1c}
*{box-sizing:border-box}
body{margin:0;padding:20px 28px;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
header,nav,section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 20px;margin:0 auto 18px;max-width:1400px}
footer{max-width:1400px;margin:0 auto;color:var(--muted);font-size:12px}
h1{font-size:24px;margin:0 0 6px}
h2{font-size:19px;margin:0 0 4px}
h3{font-size:15px;margin:18px 0 6px;color:#374151;border-bottom:1px solid var(--line);padding-bottom:2px}
h4{font-size:13px;margin:10px 0 4px;color:#4b5563}
p{margin:4px 0}
a{color:#1d4ed8;text-decoration:none}
a:hover{text-decoration:underline}
code.url{font-size:11px;color:#4b5563}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;background:#f1f5f9;padding:1px 4px;border-radius:4px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{background:#f1f5f9;font-weight:600}
.n{text-align:right;font-variant-numeric:tabular-nums}
table.wrap{font-size:12px}
table.wrap th,table.wrap td{padding:3px 5px}
table.wrap th{white-space:normal;min-width:44px;max-width:100px}
tr.all td{font-weight:700;border-top:2px solid #cbd5e1}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:700;vertical-align:middle;color:#fff}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.partial{background:#b45309}
.ok{color:var(--pass);font-weight:700}.bad{color:var(--fail);font-weight:700}
.warn{background:#fffbeb;border:1px solid #f59e0b;border-left:5px solid #f59e0b;padding:8px 12px;border-radius:6px;margin:10px 0}
.warn ul{margin:4px 0 0;padding-left:20px}
.note{color:var(--muted);font-style:italic}
.sub{color:#4b5563}
.side{display:inline-block;padding:0 7px;border-radius:8px;font-size:12px;color:#fff}
.side.client{background:#7c3aed}.side.gateway{background:#0369a1}.side.model_server{background:#b91c1c}.side.other{background:#6b7280}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px;margin:8px 0;align-items:start}
.charts.small{grid-template-columns:repeat(auto-fill,minmax(340px,1fr))}
svg.chart{display:block;width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
svg.chart text{font-size:11px;fill:#374151}
svg.chart text.ct{font-size:13px;font-weight:600;fill:#111827}
svg.chart text.nd{font-size:13px;fill:#9ca3af;font-style:italic}
svg.chart .grid{stroke:#e5e7eb;stroke-width:1}
svg.chart .axis{stroke:#6b7280;stroke-width:1}
svg.chart .mark{stroke:#9ca3af;stroke-width:1;stroke-dasharray:3 3}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
p.top{text-align:right;font-size:12px;margin-top:10px}
"#;

/// Escapes text for HTML content and attribute values (and SVG text): `& < > " '`.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A pass/fail badge.
fn badge(passed: bool) -> &'static str {
    if passed {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

/// Renders the whole report as one HTML page.
pub fn render(report: &Report) -> String {
    let mut o = String::with_capacity(128 * 1024);
    // Writing into a String cannot fail.
    let _ = page(&mut o, report);
    o
}

/// The page: head with the style sheet, header, contents, one section per scenario run.
fn page(o: &mut String, r: &Report) -> sfmt::Result {
    o.write_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")?;
    // Nothing may load from anywhere: the page stands alone.
    o.write_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n")?;
    o.write_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")?;
    writeln!(
        o,
        "<title>inferbench report · {}</title>",
        esc(&fmt::started(r.started_unix_s))
    )?;
    writeln!(o, "<style>{CSS}</style>\n</head>\n<body>")?;
    header(o, r)?;
    contents(o, r)?;
    for (i, s) in r.scenarios.iter().enumerate() {
        sections::scenario(o, i, s)?;
    }
    writeln!(
        o,
        "<footer>inferbench {} · latencies in milliseconds · TTFT time to first token, ITL inter-token latency, TPOT time per output token, e2e end to end</footer>",
        esc(&r.tool_version)
    )?;
    o.write_str("</body>\n</html>\n")
}

/// The header: version, start time, config, partial flag and the overall verdict.
fn header(o: &mut String, r: &Report) -> sfmt::Result {
    writeln!(
        o,
        "<header id=\"top\">\n<h1>inferbench report {}{}</h1>",
        badge(r.passed()),
        if r.partial {
            " <span class=\"badge partial\">PARTIAL</span>"
        } else {
            ""
        }
    )?;
    let passed = r.scenarios.iter().filter(|s| s.passed).count();
    writeln!(
        o,
        "<dl class=\"meta\"><dt>tool</dt><dd>inferbench {}</dd><dt>started</dt><dd>{}</dd><dt>config</dt><dd>{}</dd><dt>scenario runs</dt><dd>{} ({} passed)</dd><dt>partial</dt><dd>{}</dd></dl>",
        esc(&r.tool_version),
        esc(&fmt::started(r.started_unix_s)),
        r.config
            .as_deref()
            .map_or(fmt::MISSING.to_string(), |c| format!(
                "<code>{}</code>",
                esc(c)
            )),
        r.scenarios.len(),
        passed,
        if r.partial {
            "<span class=\"bad\">yes — interrupted: what completed is here</span>"
        } else {
            "no"
        }
    )?;
    writeln!(
        o,
        "<p class=\"verdict\"><strong>Verdict:</strong> {}</p>",
        esc(&crate::console::verdict(r).line)
    )?;
    let warned: Vec<(usize, &ScenarioReport)> = r
        .scenarios
        .iter()
        .enumerate()
        .filter(|(_, s)| !build::warnings(s).is_empty())
        .collect();
    if !warned.is_empty() {
        o.write_str("<div class=\"warn\">⚠ Warnings in ")?;
        for (k, (i, s)) in warned.iter().enumerate() {
            write!(
                o,
                "{}<a href=\"#{}\">{}</a>",
                if k > 0 { ", " } else { "" },
                build::scenario_anchor(*i, &s.name),
                esc(&s.name)
            )?;
        }
        o.write_str(": read them before trusting the numbers.</div>\n")?;
    }
    o.write_str("</header>\n")
}

/// The table of contents: one row per scenario run with its headline and verdict, linked.
fn contents(o: &mut String, r: &Report) -> sfmt::Result {
    o.write_str("<nav aria-label=\"Contents\">\n<h2>Contents</h2>\n")?;
    if r.scenarios.is_empty() {
        return o.write_str("<p class=\"note\">This report has no scenario runs.</p>\n</nav>\n");
    }
    sections::table(o, &build::summary(r))?;
    o.write_str("</nav>\n")
}
