//! A section's table as aligned text for a terminal (the console summary, the history
//! listings): columns padded to their widest cell, numbers to the right, a line of group headings
//! over grouped columns, a cell of several lines ([`Cell::Lines`]) over several lines. A table
//! too wide for a terminal is turned sideways — one line per column — when that is narrower.

use std::fmt::Write as _;

use crate::section::{Cell, Section};

/// Widest a table may be, in columns, before [`fitted`] tries it sideways.
const MAX_WIDTH: usize = 160;

/// Columns between two cells.
const GAP: usize = 2;

/// Width of `s` in terminal columns (every character the report uses is one wide).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` padded to `w` columns, to the right when `right`.
fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right {
        fill + s
    } else {
        format!("{s}{fill}")
    }
}

/// A cell as the lines it takes: one per item of a [`Cell::Lines`], else one.
fn lines(c: &Cell) -> Vec<String> {
    match c {
        Cell::Lines(v) if !v.is_empty() => v.clone(),
        _ => vec![c.plain()],
    }
}

/// A grid of text: rows of cells, each cell one or more lines.
type Grid = Vec<Vec<Vec<String>>>;

/// The widest line of each column of a grid.
fn widths(grid: &Grid) -> Vec<usize> {
    let n = grid.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            grid.iter()
                .filter_map(|row| row.get(i))
                .flatten()
                .map(|l| width(l))
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Width of a table whose columns are `widths` wide.
fn total(widths: &[usize]) -> usize {
    widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1)
}

/// Writes a grid, each row as tall as its tallest cell; `right(row, column)` says which cells
/// are padded on the left.
fn draw(o: &mut String, grid: &Grid, widths: &[usize], right: impl Fn(usize, usize) -> bool) {
    for (r, row) in grid.iter().enumerate() {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let parts: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let text = c.get(k).map_or("", String::as_str);
                    pad(text, widths.get(i).copied().unwrap_or(0), right(r, i))
                })
                .collect();
            let _ = writeln!(o, "{}", parts.join(&" ".repeat(GAP)).trim_end());
        }
    }
}

/// The body of a section's table as a grid.
fn body(sec: &Section) -> Grid {
    sec.rows
        .iter()
        .map(|r| r.cells.iter().map(lines).collect())
        .collect()
}

/// A section's rows as an upright table: a line of group headings when columns are grouped
/// (`TTFT ms` over `p50 p95 p99`), the column headers, the rows.
pub(crate) fn table(o: &mut String, sec: &Section) {
    let mut grid: Grid = vec![sec.columns.iter().map(|c| vec![c.short_header()]).collect()];
    grid.extend(body(sec));
    upright(o, sec, &grid);
}

/// [`table`] drawn from its grid (header row first).
fn upright(o: &mut String, sec: &Section, grid: &Grid) {
    let numeric: Vec<bool> = (0..sec.columns.len()).map(|i| sec.numeric(i)).collect();
    let mut widths = widths(grid);
    let groups = sec.groups();
    let span = |widths: &[usize], start: usize, end: usize| total(&widths[start..=end]);
    // A group heading wider than its columns widens the last of them.
    for (start, end, label) in &groups {
        let have = span(&widths, *start, *end);
        if width(label) > have {
            widths[*end] += width(label) - have;
        }
    }
    if !groups.is_empty() {
        let mut line = String::new();
        let mut i = 0;
        for (start, end, label) in &groups {
            while i < *start {
                line.push_str(&" ".repeat(widths[i] + GAP));
                i += 1;
            }
            line.push_str(&pad(label, span(&widths, *start, *end), true));
            line.push_str(&" ".repeat(GAP));
            i = end + 1;
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    draw(o, grid, &widths, |_, i| {
        numeric.get(i).copied().unwrap_or(false)
    });
}

/// A section's table sideways: one line per column (its full header, then its cell in each
/// row), the rows' first cells as the header line; every cell to the left (a line holds one
/// kind of figure, so there is no column of numbers to line up).
fn sideways(o: &mut String, sec: &Section, body: &Grid) {
    let first = |row: &Vec<Vec<String>>| row.first().cloned().unwrap_or_default();
    let mut grid: Grid = vec![
        std::iter::once(vec![String::new()])
            .chain(body.iter().map(first))
            .collect(),
    ];
    for (i, col) in sec.columns.iter().enumerate().skip(1) {
        let mut line = vec![vec![col.header()]];
        line.extend(
            body.iter()
                .map(|row| row.get(i).cloned().unwrap_or_default()),
        );
        grid.push(line);
    }
    draw(o, &grid, &widths(&grid), |_, _| false);
}

/// A section's table as it best fits a terminal: upright, or sideways when upright is wider
/// than [`MAX_WIDTH`] and sideways is narrower.
pub(crate) fn fitted(o: &mut String, sec: &Section) {
    let body = body(sec);
    let mut grid: Grid = vec![sec.columns.iter().map(|c| vec![c.short_header()]).collect()];
    grid.extend(body.iter().cloned());
    let upright_width = total(&widths(&grid));
    if upright_width > MAX_WIDTH && !body.is_empty() {
        let mut side = String::new();
        sideways(&mut side, sec, &body);
        let side_width = side.lines().map(width).max().unwrap_or(0);
        if side_width < upright_width {
            o.push_str(&side);
            return;
        }
    }
    upright(o, sec, &grid);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::section::{Column, Section};

    fn sample(rows: usize, long: usize) -> Section {
        let mut sec = Section::table(
            "T",
            vec![
                Column::new("arm"),
                Column::new("p50").group("TTFT").unit("ms"),
                Column::new("p99").group("TTFT").unit("ms"),
                Column::new("share"),
            ],
        );
        for r in 0..rows {
            sec.push(vec![
                Cell::Text(format!("arm{r}")),
                Cell::Ms(1_500),
                Cell::Ms(25_000),
                Cell::Lines(vec!["a".repeat(long), "b 50.00%".into()]),
            ]);
        }
        sec
    }

    #[test]
    fn upright_tables_align_and_group() {
        let mut o = String::new();
        fitted(&mut o, &sample(2, 3));
        assert_eq!(
            o,
            "           TTFT ms\n\
             arm     p50    p99  share\n\
             arm0  1.500  25.00  aaa\n\
             \x20                   b 50.00%\n\
             arm1  1.500  25.00  aaa\n\
             \x20                   b 50.00%\n"
        );
    }

    #[test]
    fn wide_tables_turn_sideways() {
        const NAMES: [&str; 30] = [
            "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13",
            "c14", "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25",
            "c26", "c27", "c28", "c29",
        ];
        let mut sec = sample(2, 3);
        for name in NAMES {
            sec.columns.push(Column::new(name).unit("ms"));
        }
        for row in &mut sec.rows {
            row.cells.extend(NAMES.map(|_| Cell::Ms(12_345)));
        }
        let mut o = String::new();
        fitted(&mut o, &sec);
        let lines: Vec<&str> = o.lines().collect();
        assert_eq!(lines[0], "             arm0      arm1", "{o}");
        assert_eq!(lines[1], "TTFT p50 ms  1.500     1.500", "{o}");
        assert_eq!(lines[3], "share        aaa       aaa", "{o}");
        assert_eq!(lines[4], "             b 50.00%  b 50.00%", "{o}");
        assert_eq!(lines[5], "c0 ms        12.35     12.35", "{o}");
        // The history listings stay upright.
        let mut upright = String::new();
        table(&mut upright, &sec);
        assert!(
            upright
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("arm     p50")),
            "{upright}"
        );
    }
}
