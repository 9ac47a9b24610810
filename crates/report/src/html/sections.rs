//! The sections of a scenario run on `report.html`, in reading order: warnings, headline,
//! verdicts (SLO, thresholds, breaking point), latency, throughput, routing overhead, per model,
//! errors by class and the client's health — each a [`Section`] of the shared model drawn as an
//! HTML table, with the page's own charts beside it.

use std::fmt::{self, Write as _};

use inferbench_results::suite::ScenarioReport;

use super::charts;
use super::{badge, esc};
use crate::section::{Cell, Section, build};

/// Tables wider than this many columns use the compact style (smaller type, wrapped headings).
const WIDE: usize = 20;

/// How a section's heading is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Heading {
    /// A heading of its own (`<h3>`).
    H3,
    /// A sub-heading (`<h4>`).
    H4,
    /// Bold words leading the section's first paragraph (`SLO (p95):` inside "Verdict").
    Inline,
}

/// A cell in HTML: escaped text; code, links, error sides and marks in their own markup.
fn cell(c: &Cell) -> String {
    match c {
        // Long lists of URLs may break after their commas.
        Cell::Code(s) => format!("<code>{}</code>", esc(s).replace(',', ",<wbr>")),
        Cell::Link { text, target } => format!("<a href=\"#{}\">{}</a>", esc(target), esc(text)),
        Cell::Side(side) => {
            let class = match side.as_str() {
                "client" | "gateway" | "model_server" => side.as_str(),
                _ => "other",
            };
            format!("<span class=\"side {class}\">{}</span>", esc(side))
        }
        Cell::Lines(v) => v.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>"),
        Cell::Mark(ok) | Cell::Verdict(ok) => if *ok {
            "<span class=\"ok\">✓ pass</span>"
        } else {
            "<span class=\"bad\">✗ fail</span>"
        }
        .to_string(),
        _ => esc(&c.plain()),
    }
}

/// ` class="n"` on the cells and headers of a column of numbers (right-aligned).
fn num_class(numeric: bool) -> &'static str {
    if numeric { " class=\"n\"" } else { "" }
}

/// A section: its heading and lead, its table (when it has rows), its notes.
pub(crate) fn section(o: &mut String, sec: &Section, heading: Heading) -> fmt::Result {
    let lead = sec.lead.iter().map(cell).collect::<Vec<_>>().join(" · ");
    match heading {
        Heading::H3 | Heading::H4 => {
            let h = if matches!(heading, Heading::H3) {
                "h3"
            } else {
                "h4"
            };
            writeln!(o, "<{h}>{}</{h}>", esc(&sec.title))?;
            if !lead.is_empty() {
                writeln!(o, "<p>{lead}</p>")?;
            }
        }
        Heading::Inline => {
            let sep = if lead.is_empty() { "" } else { " " };
            writeln!(o, "<p><strong>{}:</strong>{sep}{lead}</p>", esc(&sec.title))?;
        }
    }
    if !sec.rows.is_empty() {
        table(o, sec)?;
    }
    for n in &sec.notes {
        let class = if n.alarm { "bad" } else { "note" };
        writeln!(o, "<p class=\"{class}\">{}</p>", esc(&n.text))?;
    }
    Ok(())
}

/// The header of a section's table: one row, or two when columns are grouped (the group over
/// its columns, coloured like its metric in the charts).
fn table_head(o: &mut String, sec: &Section) -> fmt::Result {
    let groups = sec.groups();
    if groups.is_empty() {
        o.write_str("<tr>")?;
        for (i, c) in sec.columns.iter().enumerate() {
            write!(
                o,
                "<th{}>{}</th>",
                num_class(sec.numeric(i)),
                esc(&c.header())
            )?;
        }
        return o.write_str("</tr>");
    }
    o.write_str("<tr>")?;
    let mut i = 0;
    while i < sec.columns.len() {
        if let Some((start, end, label)) = groups.iter().find(|g| g.0 == i) {
            let border = charts::METRICS
                .iter()
                .find(|(m, _)| Some(*m) == sec.columns[i].group)
                .map_or(String::new(), |(_, colour)| {
                    format!(";border-bottom:3px solid {colour}")
                });
            write!(
                o,
                "<th colspan=\"{}\" style=\"text-align:center{border}\">{}</th>",
                end - start + 1,
                esc(label)
            )?;
            i = end + 1;
        } else {
            write!(
                o,
                "<th rowspan=\"2\"{}>{}</th>",
                num_class(sec.numeric(i)),
                esc(&sec.columns[i].header())
            )?;
            i += 1;
        }
    }
    o.write_str("</tr><tr>")?;
    for (i, c) in sec.columns.iter().enumerate() {
        if c.group.is_some() {
            write!(
                o,
                "<th{}>{}</th>",
                num_class(sec.numeric(i)),
                esc(&c.short_header())
            )?;
        }
    }
    o.write_str("</tr>")
}

/// A section's rows as an HTML table; numbers right-aligned, the total row in bold.
pub(super) fn table(o: &mut String, sec: &Section) -> fmt::Result {
    let wide = if sec.columns.len() > WIDE {
        " class=\"wrap\""
    } else {
        ""
    };
    write!(o, "<div class=\"scroll\"><table{wide}><thead>")?;
    table_head(o, sec)?;
    o.write_str("</thead><tbody>\n")?;
    let numeric: Vec<bool> = (0..sec.columns.len()).map(|i| sec.numeric(i)).collect();
    for row in &sec.rows {
        o.write_str(if row.total {
            "<tr class=\"all\">"
        } else {
            "<tr>"
        })?;
        for (i, c) in row.cells.iter().enumerate() {
            write!(
                o,
                "<td{}>{}</td>",
                num_class(numeric.get(i).copied().unwrap_or(false)),
                cell(c)
            )?;
        }
        o.write_str("</tr>\n")?;
    }
    o.write_str("</tbody></table></div>\n")
}

/// One scenario run: every section in reading order.
pub(super) fn scenario(o: &mut String, i: usize, s: &ScenarioReport) -> fmt::Result {
    writeln!(
        o,
        "<section class=\"scenario\" id=\"{}\">\n<h2>{}{} {}</h2>",
        build::scenario_anchor(i, &s.name),
        esc(&s.name),
        esc(&build::repeat_note(s)),
        badge(s.passed)
    )?;
    if let Some(d) = &s.description {
        writeln!(o, "<p>{}</p>", esc(d))?;
    }
    writeln!(
        o,
        "<p class=\"sub\">Target <code>{}</code> ({}) · kind {} · load {} · {} s measured{}</p>",
        esc(&s.target),
        esc(&s.url),
        esc(&s.kind),
        esc(&s.total.load),
        crate::fmt::secs(s.total.duration_s),
        if s.total.partial {
            " · <span class=\"bad\">partial</span>"
        } else {
            ""
        }
    )?;
    warnings(o, s)?;
    section(o, &build::headline(s), Heading::H3)?;
    verdicts(o, s)?;
    if let Some(sec) = build::trace(s) {
        section(o, &sec, Heading::H3)?;
    }
    latency(o, s)?;
    throughput(o, s)?;
    if let Some(sec) = build::arms(s) {
        section(o, &sec, Heading::H3)?;
        charts::added_chart(o, s)?;
    }
    if let Some(sec) = build::models(s) {
        section(o, &sec, Heading::H3)?;
    }
    errors(o, s)?;
    server_side(o, s)?;
    resources(o, s)?;
    client(o, s)?;
    o.write_str("<p class=\"top\"><a href=\"#top\">↑ top</a></p>\n</section>\n")
}

/// The servers' side: where the time to first token went (chart and table), what they counted.
fn server_side(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let Some(d) = build::decomposition(s) else {
        return Ok(());
    };
    o.write_str("<h3>The servers' side</h3>\n")?;
    charts::decomposition_chart(o, s)?;
    charts::servers_over_time(o, s)?;
    section(o, &d, Heading::H4)?;
    if let Some(sec) = build::server_side(s) {
        section(o, &sec, Heading::H4)?;
    }
    Ok(())
}

/// What the watched processes and Prometheus series cost, per part, charted and tabled.
fn resources(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let (local, prom) = (build::processes(s), build::prometheus(s));
    if local.is_none() && prom.is_none() {
        return Ok(());
    }
    o.write_str("<h3>Resources</h3>\n")?;
    charts::resource_charts(o, s)?;
    for sec in local.iter().chain(&prom) {
        section(o, sec, Heading::H4)?;
    }
    Ok(())
}

/// The run's warnings (the request log's first), in a box that cannot be missed.
fn warnings(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let w = build::warnings(s);
    if w.is_empty() {
        return Ok(());
    }
    o.write_str("<div class=\"warn\"><strong>⚠ Warnings</strong><ul>")?;
    for text in w.log.as_deref().into_iter().chain(w.others) {
        write!(o, "<li>{}</li>", esc(text))?;
    }
    o.write_str("</ul></div>\n")
}

/// SLO (with goodput), thresholds and the breaking point, when the scenario has them.
fn verdicts(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let parts: Vec<Section> = [
        build::slo(s),
        build::thresholds(s),
        build::breaking_point(s),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return Ok(());
    }
    o.write_str("<h3>Verdict</h3>\n")?;
    for sec in &parts {
        section(o, sec, Heading::Inline)?;
    }
    Ok(())
}

/// Latency: the percentile chart of all requests beside latency over time, a small percentile
/// chart per stage when there are several, then every percentile of every latency.
fn latency(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    o.write_str("<h3>Latency</h3>\n<div class=\"charts\">")?;
    charts::percentile_chart(o, s)?;
    charts::latency_over_time(o, s)?;
    o.write_str("</div>\n")?;
    charts::stage_percentiles(o, s)?;
    section(o, &build::percentiles(s), Heading::H4)
}

/// Throughput: over time beside the share per endpoint, the endpoint table, then throughput vs
/// load.
fn throughput(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    o.write_str("<h3>Throughput</h3>\n<div class=\"charts\">")?;
    charts::throughput_over_time(o, s)?;
    charts::endpoint_chart(o, s)?;
    o.write_str("</div>\n")?;
    if let Some(sec) = build::endpoints(s) {
        section(o, &sec, Heading::H4)?;
    }
    charts::vs_load(o, s)
}

/// Failed requests by class, or a note that none failed.
fn errors(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    match build::errors(s) {
        Some(sec) => section(o, &sec, Heading::H3),
        None => {
            o.write_str("<h3>Errors by class</h3>\n<p class=\"note\">No failed requests.</p>\n")
        }
    }
}

/// The client's own health, and the request log's problem in a warning box.
fn client(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    section(o, &build::client(s), Heading::H3)?;
    match build::log_problem(&s.total) {
        Some(p) => writeln!(
            o,
            "<div class=\"warn\"><strong>⚠ {}</strong></div>",
            esc(&p)
        ),
        None => Ok(()),
    }
}
