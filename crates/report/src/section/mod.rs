//! The section model: each part of a scenario's report (headline, percentiles, routing overhead,
//! breaking point, SLO, thresholds, per model, per endpoint, errors, client health) built once as
//! a [`Section`] — a title, a lead sentence, columns and rows of typed [`Cell`]s, notes — and
//! then rendered three ways: aligned text by [`crate::console`], a table by
//! [`crate::markdown`], an HTML table by [`crate::html`].
//!
//! A cell says what a figure *is* (milliseconds, a count, a percentage…), never how it reads:
//! [`Cell::plain`] formats it with [`crate::fmt`], so one figure reads the same in all three
//! outputs, and adding a figure to a section is a change in [`build`] only.

pub(crate) mod build;

use crate::fmt;

/// One figure or word of a section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Words, shown as they are.
    Text(String),
    /// A rule, an error class, an URL: code in Markdown and HTML.
    Code(String),
    /// A name that links to a scenario run's part of the page (HTML); plain text elsewhere.
    Link {
        /// What is shown.
        text: String,
        /// The id of what it links to.
        target: String,
    },
    /// Which side failed (`client`, `gateway`, `model_server`): a coloured tag in HTML.
    Side(String),
    /// Several short texts in one cell (an arm's endpoint shares): one per line in HTML.
    Lines(Vec<String>),
    /// A latency, µs; shown in ms ([`fmt::ms`]).
    Ms(u64),
    /// A latency difference, µs; shown as signed ms ([`fmt::ms_signed`]).
    MsAdded(i64),
    /// A count ([`fmt::count`]).
    Count(u64),
    /// A percentage, already ×100 ([`fmt::pct`]).
    Pct(f64),
    /// A change, percent ([`fmt::pct_signed`]).
    PctChange(f64),
    /// Requests per second ([`fmt::rate`]).
    Rate(f64),
    /// Tokens per second ([`fmt::tok_rate`]).
    TokRate(f64),
    /// CPU seconds ([`fmt::cpu_secs`]).
    CpuSecs(f64),
    /// Megabytes ([`fmt::mb`]).
    Mb(f64),
    /// One check's outcome: ✓ or ✗.
    Mark(bool),
    /// A verdict in words: `pass` or `FAIL`.
    Verdict(bool),
    /// No value (—).
    Missing,
}

impl Cell {
    /// `Some(v)` as `f(v)`, else [`Cell::Missing`] (also for a float that is not finite).
    pub(crate) fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Cell) -> Cell {
        v.map_or(Cell::Missing, f)
    }

    /// The cell as plain text, formatted by [`crate::fmt`]: what the console shows and what the
    /// Markdown and HTML renderings start from.
    pub(crate) fn plain(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Code(s) | Cell::Side(s) => s.clone(),
            Cell::Link { text, .. } => text.clone(),
            Cell::Lines(v) => v.join("; "),
            Cell::Ms(us) => fmt::ms(*us),
            Cell::MsAdded(us) => fmt::ms_signed(*us),
            Cell::Count(n) => fmt::count(*n),
            Cell::Pct(p) => fmt::pct(*p),
            Cell::PctChange(p) => fmt::pct_signed(*p),
            Cell::Rate(r) => fmt::rate(*r),
            Cell::TokRate(r) => fmt::tok_rate(*r),
            Cell::CpuSecs(s) => fmt::cpu_secs(*s),
            Cell::Mb(m) => fmt::mb(*m),
            Cell::Mark(ok) => if *ok { "✓" } else { "✗" }.to_string(),
            Cell::Verdict(ok) => if *ok { "pass" } else { "FAIL" }.to_string(),
            Cell::Missing => fmt::MISSING.to_string(),
        }
    }

    /// Whether the cell is a number (right-aligned in every table).
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(
            self,
            Cell::Ms(_)
                | Cell::MsAdded(_)
                | Cell::Count(_)
                | Cell::Pct(_)
                | Cell::PctChange(_)
                | Cell::Rate(_)
                | Cell::TokRate(_)
                | Cell::CpuSecs(_)
                | Cell::Mb(_)
                | Cell::Missing
        )
    }
}

/// A column of a section's table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    /// A heading over several columns (`TTFT`): HTML and the console draw it once above them;
    /// Markdown puts it before each column's name.
    pub group: Option<&'static str>,
    /// The column's name (`p95`, `requests`).
    pub name: &'static str,
    /// The unit of its figures (`ms`, `s`), after the name in headers, after each value in a
    /// line of facts.
    pub unit: Option<&'static str>,
    /// In a one-line-per-row layout ([`Layout::Lines`]), the cell is shown as `(name value)`.
    pub aside: bool,
}

impl Column {
    /// A column called `name`.
    pub(crate) const fn new(name: &'static str) -> Self {
        Column {
            group: None,
            name,
            unit: None,
            aside: false,
        }
    }

    /// Plain columns called `names`, in order.
    pub(crate) fn list(names: &[&'static str]) -> Vec<Column> {
        names.iter().map(|n| Column::new(n)).collect()
    }

    /// The same column with a unit.
    pub(crate) const fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// The same column under a group heading.
    pub(crate) const fn group(mut self, group: &'static str) -> Self {
        self.group = Some(group);
        self
    }

    /// The same column shown as `(name value)` in one-line-per-row layouts.
    pub(crate) const fn aside(mut self) -> Self {
        self.aside = true;
        self
    }

    /// The full header: group, name and unit (`TTFT p95 ms`).
    pub(crate) fn header(&self) -> String {
        [self.group, Some(self.name), self.unit]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The header under a group heading: name and unit (`p95`), or the full header without one.
    pub(crate) fn short_header(&self) -> String {
        if self.group.is_some() {
            self.name.to_string()
        } else {
            self.header()
        }
    }
}

/// One row of a section's table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// One cell per column.
    pub cells: Vec<Cell>,
    /// The row that sums up the others (`all`): bold in Markdown and HTML.
    pub total: bool,
}

impl Row {
    /// A plain row.
    pub(crate) fn new(cells: Vec<Cell>) -> Self {
        Row {
            cells,
            total: false,
        }
    }
}

/// How a section's rows are laid out in text (HTML always draws a table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// A table with a header row.
    Table,
    /// One sentence per row (checks): `✓ rule (measured 12 ms)`; each console line starts with
    /// `label` (or an indent under a lead), Markdown makes a bullet list.
    Lines {
        /// The word before each console line (`threshold`), or empty to indent.
        label: &'static str,
    },
    /// One row of named figures as a sentence: `name value unit, …`.
    Facts,
}

/// A remark under a section's table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Note {
    /// The text, figures already formatted by [`crate::fmt`].
    pub text: String,
    /// Whether it tells of something wrong (shown in red in HTML).
    pub alarm: bool,
}

/// One part of a scenario's report, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Section {
    /// The heading (`Routing overhead vs direct`).
    pub title: String,
    /// A sentence after the heading, its parts joined by ` · ` (`pass · goodput 9.50 req/s`).
    pub lead: Vec<Cell>,
    /// How the rows read in text.
    pub layout: Layout,
    /// The table's columns.
    pub columns: Vec<Column>,
    /// The table's rows, one cell per column.
    pub rows: Vec<Row>,
    /// Remarks after the table.
    pub notes: Vec<Note>,
}

impl Section {
    /// An empty table section called `title` with these columns.
    pub(crate) fn table(title: impl Into<String>, columns: Vec<Column>) -> Self {
        Section {
            title: title.into(),
            lead: Vec::new(),
            layout: Layout::Table,
            columns,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn push(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row::new(cells));
    }

    /// Adds a plain note.
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.notes.push(Note {
            text: text.into(),
            alarm: false,
        });
    }

    /// Adds a note that something is wrong.
    pub(crate) fn alarm(&mut self, text: impl Into<String>) {
        self.notes.push(Note {
            text: text.into(),
            alarm: true,
        });
    }

    /// Whether column `i` holds numbers (any of its cells is one, and none is text).
    pub(crate) fn numeric(&self, i: usize) -> bool {
        let mut cells = self.rows.iter().filter_map(|r| r.cells.get(i));
        let mut any = false;
        for c in &mut cells {
            if !c.is_numeric() {
                return false;
            }
            any |= !matches!(c, Cell::Missing);
        }
        any
    }

    /// Runs of neighbouring columns under one group heading: (first, last, `group unit`), e.g.
    /// `TTFT ms` over `p50 p95 p99`.
    pub(crate) fn groups(&self) -> Vec<(usize, usize, String)> {
        let mut out: Vec<(usize, usize, String)> = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let Some(g) = c.group else { continue };
            let label = match c.unit {
                Some(u) => format!("{g} {u}"),
                None => g.to_string(),
            };
            match out.last_mut() {
                Some((_, end, l)) if *end + 1 == i && *l == label => *end = i,
                _ => out.push((i, i, label)),
            }
        }
        out
    }

    /// One row as a sentence, for [`Layout::Lines`]: the cells joined by spaces, aside cells as
    /// `(name value)`; `cell` renders each cell.
    pub(crate) fn line(&self, row: &Row, cell: impl Fn(&Cell) -> String) -> String {
        let mut main = Vec::new();
        let mut asides = Vec::new();
        for (c, col) in row.cells.iter().zip(&self.columns) {
            if col.aside {
                asides.push(format!("({} {})", col.name, cell(c)));
            } else {
                main.push(cell(c));
            }
        }
        main.extend(asides);
        main.join(" ")
    }

    /// The first row as `name value unit` facts, for [`Layout::Facts`]; `cell` renders each cell.
    pub(crate) fn facts(&self, cell: impl Fn(&Cell) -> String) -> Vec<String> {
        let Some(row) = self.rows.first() else {
            return Vec::new();
        };
        row.cells
            .iter()
            .zip(&self.columns)
            .map(|(c, col)| {
                let mut s = format!("{} {}", col.name, cell(c));
                if let (Some(u), false) = (col.unit, matches!(c, Cell::Missing)) {
                    s.push(' ');
                    s.push_str(u);
                }
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_lines_and_facts() {
        let col = Column::new("p95").unit("ms").group("TTFT");
        assert_eq!(col.header(), "TTFT p95 ms");
        assert_eq!(col.short_header(), "p95");
        let mut s = Section::table(
            "Thresholds",
            vec![
                Column::new("verdict"),
                Column::new("rule"),
                Column::new("measured").aside(),
            ],
        );
        s.layout = Layout::Lines { label: "threshold" };
        s.push(vec![
            Cell::Mark(true),
            Cell::Code("error_rate < 1%".into()),
            Cell::Text("0.00%".into()),
        ]);
        assert_eq!(
            s.line(&s.rows[0], Cell::plain),
            "✓ error_rate < 1% (measured 0.00%)"
        );
        assert!(!s.numeric(0) && !s.numeric(2));
        let mut f = Section::table(
            "Client",
            vec![
                Column::new("lag p99").unit("ms"),
                Column::new("late"),
                Column::new("CPU").unit("s"),
            ],
        );
        f.layout = Layout::Facts;
        f.push(vec![Cell::Ms(1_520), Cell::Count(3), Cell::Missing]);
        assert_eq!(
            f.facts(Cell::plain),
            ["lag p99 1.520 ms", "late 3", "CPU —"]
        );
        assert!(f.numeric(0) && f.numeric(1) && !f.numeric(2));
    }

    #[test]
    fn cells_read_through_fmt() {
        assert_eq!(Cell::Ms(450).plain(), "0.450");
        assert_eq!(Cell::MsAdded(-50).plain(), "-0.050");
        assert_eq!(Cell::Count(12_345).plain(), "12,345");
        assert_eq!(Cell::Pct(f64::NAN).plain(), "—");
        assert_eq!(Cell::PctChange(-1.5).plain(), "-1.50%");
        assert_eq!(Cell::Rate(f64::INFINITY).plain(), "—");
        assert_eq!(
            Cell::Lines(vec!["a 50.00%".into(), "b".into()]).plain(),
            "a 50.00%; b"
        );
        assert_eq!(Cell::opt(None::<u64>, Cell::Count), Cell::Missing);
        assert_eq!(Cell::Mark(false).plain(), "✗");
        assert_eq!(Cell::Verdict(false).plain(), "FAIL");
    }

    /// A section as the console, Markdown and HTML write it.
    fn three_ways(sec: &Section) -> [String; 3] {
        let (mut text, mut md, mut html) = (String::new(), String::new(), String::new());
        crate::console::section(&mut text, sec);
        crate::markdown::section(&mut md, sec);
        let _ = crate::html::section(&mut html, sec, crate::html::Heading::H3);
        [text, md, html]
    }

    /// Every section of a full scenario run, misrouting and a request-log problem included.
    fn every_section() -> Vec<Section> {
        let mut s = crate::testutil::full();
        s.total.misrouted = 2;
        s.total.total.counts.interrupted = 3;
        s.total.client.log_dropped = 1;
        let mut all = vec![build::headline(&s), build::percentiles(&s)];
        all.extend(build::details(&s));
        all
    }

    #[test]
    fn every_figure_reads_the_same_in_all_three() {
        let sections = every_section();
        let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Headline",
                "Latency percentiles, ms",
                "Routing overhead vs direct",
                "Breaking point",
                "SLO (p95)",
                "Thresholds",
                "Per model",
                "Per endpoint",
                "Errors by class",
                "Client health"
            ]
        );
        for sec in &sections {
            let [text, md, html] = three_ways(sec);
            let lead = sec.lead.iter().filter(|c| !matches!(c, Cell::Verdict(_)));
            let cells = sec.rows.iter().flat_map(|r| &r.cells).chain(lead);
            for cell in cells.filter(|c| !matches!(c, Cell::Mark(_) | Cell::Verdict(_))) {
                let items = match cell {
                    Cell::Lines(v) => v.clone(),
                    _ => vec![cell.plain()],
                };
                for item in items {
                    let title = &sec.title;
                    assert!(text.contains(&item), "{title}: {item} not in\n{text}");
                    assert!(md.contains(&item), "{title}: {item} not in\n{md}");
                    let escaped = crate::html::esc(&item);
                    assert!(html.contains(&escaped), "{title}: {escaped} not in\n{html}");
                }
            }
            for note in &sec.notes {
                assert!(
                    text.contains(&note.text) && md.contains(&note.text),
                    "{}",
                    note.text
                );
                assert!(
                    html.contains(&crate::html::esc(&note.text)),
                    "{}",
                    note.text
                );
            }
        }
    }

    #[test]
    fn figures_once_written_three_ways_now_agree() {
        let sections = every_section();
        let find = |title: &str| sections.iter().find(|s| s.title == title);
        // The client's dispatch lag p50 (120 µs) read 0.120 on the console, 0.1 in Markdown and
        // 0.12 in HTML; an arm's added TTFT p50 (-50 µs) read -50 (µs), -50 and -0.05.
        for (title, figure) in [
            ("Client health", "0.120"),
            ("Routing overhead vs direct", "-0.050"),
            ("Routing overhead vs direct", "+1.500"),
            ("Routing overhead vs direct", "14.5"),
            ("Per endpoint", "50.00%"),
            ("Per model", "98.08% routing accuracy"),
            ("SLO (p95)", "95.00% of requests"),
            (
                "Headline",
                "Requests: sent 107 = ok 100 + failed 4 + interrupted 3",
            ),
        ] {
            let Some(sec) = find(title) else {
                panic!("no section {title}")
            };
            for out in three_ways(sec) {
                assert!(out.contains(figure), "{title}: {figure} not in\n{out}");
            }
        }
    }

    #[test]
    fn markdown_cells_cannot_break_their_table() {
        let mut sec = Section::table("T", vec![Column::new("a"), Column::new("b")]);
        sec.push(vec![Cell::Text("x | y".into()), Cell::Code("p|q".into())]);
        let [text, md, html] = three_ways(&sec);
        assert!(text.contains("x | y"), "{text}");
        assert!(md.contains("| x \\| y | `p\\|q` |"), "{md}");
        assert!(
            html.contains("<td>x | y</td><td><code>p|q</code></td>"),
            "{html}"
        );
    }
}
