//! SVG drawing for `report.html`: value axes and their ticks, plot frames, legends, and the two
//! generic charts every picture on the page is made of — a [`LineChart`] (series over numbers or
//! named slots, log or linear) and a [`BarChart`] (grouped bars, horizontal or vertical).
//!
//! Every coordinate goes through [`px`] and every value shown through [`fmt::short`], so a
//! chart never holds `NaN` or `inf`; every text goes through [`esc`].

use std::fmt::Write as _;

use super::esc;
use crate::fmt;

/// A finite number, or 0: the guard for every figure that reaches the page.
pub(super) fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// An SVG coordinate or length: finite, one decimal.
fn px(x: f64) -> String {
    format!("{:.1}", fin(x))
}

/// Round tick values (1, 2, 2.5 or 5 × 10ⁿ apart), about `n` of them, whose first and last
/// enclose `[lo, hi]`. Empty, reversed or non-finite ranges are widened to something drawable.
pub(super) fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (mut lo, mut hi) = (fin(lo), fin(hi));
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi - lo < 1e-12 {
        if lo == 0.0 {
            hi = 1.0;
        } else {
            let pad = lo.abs() * 0.1;
            lo -= pad;
            hi += pad;
        }
    }
    let raw = (hi - lo) / (n.max(2) - 1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    let step = nice * mag;
    if !(step.is_finite() && step > 0.0) {
        return vec![0.0, 1.0];
    }
    // The small slack keeps float noise (2.0000000001 steps) from adding a tick.
    let first = (lo / step + 1e-9).floor();
    let last = (hi / step - 1e-9).ceil();
    let mut ticks = Vec::new();
    let mut k = first;
    while k <= last && ticks.len() < 60 {
        let t = k * step;
        // Snap away float noise such as 0.30000000000000004.
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        k += 1.0;
    }
    if ticks.len() < 2 {
        ticks.push(first * step + step);
    }
    ticks
}

/// Ticks of a log₁₀ axis between two powers of ten: 1-2-5 in each decade when there are at most
/// two decades, else the powers of ten.
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().round() as i32, hi.log10().round() as i32);
    let mut ticks = Vec::new();
    for e in a..=b {
        let p = 10f64.powi(e);
        if b - a <= 2 {
            for m in [1.0, 2.0, 5.0] {
                if m * p <= hi * (1.0 + 1e-9) {
                    ticks.push(m * p);
                }
            }
        } else {
            ticks.push(p);
        }
    }
    ticks
}

/// A value axis: where a value falls between the axis ends, and the ticks to draw.
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) log: bool,
    pub(super) ticks: Vec<f64>,
}

impl Axis {
    /// A linear axis over round ticks enclosing `[min, max]`.
    pub(super) fn linear(min: f64, max: f64) -> Self {
        let ticks = nice_ticks(min, max, 5);
        let lo = ticks.first().copied().unwrap_or(0.0);
        let hi = ticks.last().copied().unwrap_or(1.0);
        Axis {
            lo,
            hi,
            log: false,
            ticks,
        }
    }

    /// A log₁₀ axis from the power of ten at or below `min` to the one at or above `max`
    /// (both must be > 0; the caller drops other values).
    pub(super) fn log(min: f64, max: f64) -> Self {
        let min = if min.is_finite() && min > 0.0 {
            min
        } else {
            1.0
        };
        let max = if max.is_finite() && max >= min {
            max
        } else {
            min
        };
        let lo = 10f64.powf(min.log10().floor());
        let mut hi = 10f64.powf(max.log10().ceil());
        if hi <= lo {
            hi = lo * 10.0;
        }
        Axis {
            lo,
            hi,
            log: true,
            ticks: log_ticks(lo, hi),
        }
    }

    /// Where `v` falls: 0 at `lo`, 1 at `hi`, clamped, always finite.
    pub(super) fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// The plot area of a chart inside its SVG, in SVG units.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// Plot width.
    fn pw(&self) -> f64 {
        (self.w - self.left - self.right).max(1.0)
    }

    /// Plot height.
    fn ph(&self) -> f64 {
        (self.h - self.top - self.bottom).max(1.0)
    }

    /// x of a fraction (0 left, 1 right) of the plot width.
    fn x(&self, f: f64) -> f64 {
        self.left + fin(f) * self.pw()
    }

    /// y of a fraction (0 bottom, 1 top) of the plot height.
    fn y(&self, f: f64) -> f64 {
        self.top + (1.0 - fin(f)) * self.ph()
    }

    /// y of the plot's bottom edge.
    fn base(&self) -> f64 {
        self.top + self.ph()
    }
}

/// Rough width of `s` in SVG units at font size `size` (for layout only).
fn text_w(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

/// `s` cut to `max` characters with an ellipsis.
pub(super) fn clip(s: &str, max: usize) -> String {
    let max = max.max(2);
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// How a legend key is drawn.
#[derive(Clone, Copy)]
enum KeyStyle {
    /// A solid line (a series).
    Line,
    /// A dashed line (a reference or second percentile).
    Dashed,
    /// A filled box (bars).
    Box,
}

/// One legend entry.
struct Key<'a> {
    name: &'a str,
    colour: &'a str,
    style: KeyStyle,
}

/// First legend row's y; each further row adds [`LEGEND_ROW`].
const LEGEND_Y: f64 = 30.0;
/// Height of one legend row.
const LEGEND_ROW: f64 = 15.0;

/// Lays legend keys out left to right from `x0`, wrapping before `max_x`: each key's (x, row)
/// and the number of rows.
fn legend_layout(keys: &[Key<'_>], x0: f64, max_x: f64) -> (Vec<(f64, usize)>, usize) {
    let (mut x, mut row) = (x0, 0);
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let w = 20.0 + text_w(k.name, 11.0) + 14.0;
        if x + w > max_x && x > x0 {
            row += 1;
            x = x0;
        }
        out.push((x, row));
        x += w;
    }
    (out, if keys.is_empty() { 0 } else { row + 1 })
}

/// Draws legend keys where [`legend_layout`] put them.
fn legend(o: &mut String, keys: &[Key<'_>], pos: &[(f64, usize)]) -> std::fmt::Result {
    for (k, (x, row)) in keys.iter().zip(pos) {
        let y = LEGEND_Y + *row as f64 * LEGEND_ROW;
        match k.style {
            KeyStyle::Box => write!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" fill=\"{}\"/>",
                px(*x),
                px(y - 5.0),
                k.colour
            )?,
            KeyStyle::Line | KeyStyle::Dashed => write!(
                o,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2.5\"{}/>",
                px(*x),
                px(y),
                px(x + 16.0),
                px(y),
                k.colour,
                if matches!(k.style, KeyStyle::Dashed) {
                    " stroke-dasharray=\"5 3\""
                } else {
                    ""
                }
            )?,
        }
        write!(
            o,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            px(x + 20.0),
            px(y + 4.0),
            esc(k.name)
        )?;
    }
    Ok(())
}

/// Top of the plot area under a title and `rows` legend rows.
fn plot_top(rows: usize) -> f64 {
    if rows == 0 {
        30.0
    } else {
        LEGEND_Y + (rows as f64 - 1.0) * LEGEND_ROW + 16.0
    }
}

/// Opens an `<svg class="chart">` with its `<title>` and visible title.
fn svg_open(o: &mut String, w: f64, h: f64, title: &str) -> std::fmt::Result {
    write!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\"><title>{t}</title><text class=\"ct\" x=\"10\" y=\"18\">{t}</text>",
        w = px(w),
        h = px(h),
        t = esc(title)
    )
}

/// "no data" in the middle of an empty plot area.
fn no_data(o: &mut String, f: &Frame) -> std::fmt::Result {
    write!(
        o,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#e5e7eb\"/><text class=\"nd\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text>",
        px(f.left),
        px(f.top),
        px(f.pw()),
        px(f.ph()),
        px(f.left + f.pw() / 2.0),
        px(f.top + f.ph() / 2.0)
    )
}

/// Horizontal grid lines and labels of a vertical value axis, and its rotated label.
fn y_axis(o: &mut String, f: &Frame, a: &Axis, label: &str) -> std::fmt::Result {
    for t in &a.ticks {
        let y = f.y(a.frac(*t));
        write!(
            o,
            "<line class=\"grid\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            px(f.left),
            px(f.left + f.pw()),
            px(f.left - 5.0),
            px(f.y(a.frac(*t)) + 3.5),
            fmt::short(*t),
            y = px(y)
        )?;
    }
    write!(
        o,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{}\" x2=\"{l}\" y2=\"{}\"/><text transform=\"translate(13 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        px(f.top),
        px(f.base()),
        px(f.top + f.ph() / 2.0),
        esc(label),
        l = px(f.left)
    )
}

/// Vertical grid lines and labels of a horizontal value axis.
fn x_axis(o: &mut String, f: &Frame, a: &Axis) -> std::fmt::Result {
    for t in &a.ticks {
        let x = px(f.x(a.frac(*t)));
        write!(
            o,
            "<line class=\"grid\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(f.top),
            px(f.base() + 4.0),
            px(f.base() + 16.0),
            fmt::short(*t)
        )?;
    }
    Ok(())
}

/// Lines of the longest slot label (a label may have several, split at `\n`).
fn label_lines(names: &[String]) -> usize {
    names
        .iter()
        .map(|n| n.lines().count())
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Labels under named slots (percentiles, stages), one line per `\n`-separated part, in a
/// smaller font and clipped when the slots are narrow.
fn slot_labels(o: &mut String, f: &Frame, names: &[String]) -> std::fmt::Result {
    let n = names.len().max(1) as f64;
    let slot = f.pw() / n;
    let size = if slot < 70.0 { 10.0 } else { 11.0 };
    let max_chars = (slot / (size * 0.6)).floor() as usize;
    for (i, name) in names.iter().enumerate() {
        let x = px(f.x((i as f64 + 0.5) / n));
        write!(
            o,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" style=\"font-size:{size}px\"><title>{}</title>",
            px(f.base() + 15.0),
            esc(&name.replace('\n', " "))
        )?;
        for (k, line) in name.lines().enumerate() {
            write!(
                o,
                "<tspan x=\"{x}\" dy=\"{}\">{}</tspan>",
                if k == 0 { 0.0 } else { size + 1.0 },
                esc(&clip(line, max_chars))
            )?;
        }
        o.write_str("</text>")?;
    }
    Ok(())
}

/// The bottom axis line and the x axis label.
fn x_label(o: &mut String, f: &Frame, label: &str) -> std::fmt::Result {
    write!(
        o,
        "<line class=\"axis\" x1=\"{}\" y1=\"{b}\" x2=\"{}\" y2=\"{b}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        px(f.left),
        px(f.left + f.pw()),
        px(f.left + f.pw() / 2.0),
        px(f.h - 6.0),
        esc(label),
        b = px(f.base())
    )
}

// ---------------------------------------------------------------------------------------------
// The two generic charts.

/// One line of a [`LineChart`]: points `(x, y)`; a `None` y leaves a gap.
pub(super) struct Series {
    pub(super) name: String,
    pub(super) colour: &'static str,
    pub(super) dashed: bool,
    pub(super) points: Vec<(f64, Option<f64>)>,
}

/// The x axis of a line chart.
pub(super) enum XAxis {
    /// Numbers (seconds, req/s) on a linear axis from 0.
    Numbers,
    /// Named slots in order (percentiles, stages); a point's x is its slot's index.
    Slots(Vec<String>),
}

/// What [`line_chart`] draws.
pub(super) struct LineChart {
    pub(super) title: String,
    pub(super) x: XAxis,
    pub(super) x_label: String,
    pub(super) y_label: String,
    pub(super) log_y: bool,
    /// A fixed y extent (small multiples share one); otherwise the data's.
    pub(super) y_extent: Option<(f64, f64)>,
    /// A fixed extent of a numeric x axis (a whole timeline); otherwise 0 to the data's end.
    pub(super) x_extent: Option<(f64, f64)>,
    pub(super) series: Vec<Series>,
    /// Vertical marks: x and a label (stage boundaries).
    pub(super) marks: Vec<(f64, String)>,
    pub(super) width: f64,
    pub(super) height: f64,
}

/// Smallest and largest of some values (none when empty).
pub(super) fn extent(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

/// A line chart with a legend, y grid, x ticks or slot labels, optional vertical marks; a dot on
/// each point when there are few, and on every point a line cannot reach.
pub(super) fn line_chart(o: &mut String, c: &LineChart) -> std::fmt::Result {
    let keys: Vec<Key<'_>> = c
        .series
        .iter()
        .map(|s| Key {
            name: &s.name,
            colour: s.colour,
            style: if s.dashed {
                KeyStyle::Dashed
            } else {
                KeyStyle::Line
            },
        })
        .collect();
    let left = 54.0;
    let (pos, rows) = legend_layout(&keys, left, c.width - 8.0);
    let f = Frame {
        w: c.width,
        h: c.height,
        left,
        right: 16.0,
        top: plot_top(rows),
        bottom: match &c.x {
            XAxis::Slots(names) => 28.0 + 12.0 * label_lines(names) as f64,
            XAxis::Numbers => 40.0,
        },
    };
    svg_open(o, c.width, c.height, &c.title)?;
    legend(o, &keys, &pos)?;
    let usable = |v: f64| v.is_finite() && (!c.log_y || v > 0.0);
    let ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|v| usable(*v))
        .collect();
    let Some(data_extent) = extent(&ys) else {
        no_data(o, &f)?;
        return o.write_str("</svg>\n");
    };
    let (ymin, ymax) = c.y_extent.unwrap_or(data_extent);
    let ya = if c.log_y {
        Axis::log(ymin, ymax)
    } else {
        Axis::linear(ymin.min(0.0), ymax.max(0.0))
    };
    y_axis(o, &f, &ya, &c.y_label)?;
    let xs: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .collect();
    let (xmin, xmax) = c.x_extent.or(extent(&xs)).unwrap_or((0.0, 1.0));
    let xa = Axis::linear(xmin.min(0.0), xmax);
    let xpos = |x: f64| match &c.x {
        XAxis::Slots(names) => f.x((x + 0.5) / names.len().max(1) as f64),
        XAxis::Numbers => f.x(xa.frac(x)),
    };
    match &c.x {
        XAxis::Slots(names) => slot_labels(o, &f, names)?,
        XAxis::Numbers => x_axis(o, &f, &xa)?,
    }
    x_label(o, &f, &c.x_label)?;
    marks(o, &f, &c.marks, &xpos)?;
    for s in &c.series {
        let pts: Vec<(f64, Option<f64>)> = s
            .points
            .iter()
            .map(|(x, y)| (xpos(*x), y.filter(|v| usable(*v)).map(|v| f.y(ya.frac(v)))))
            .collect();
        series_line(o, s, &pts)?;
        series_dots(o, s, &pts)?;
    }
    o.write_str("</svg>\n")
}

/// Vertical marks (stage boundaries) at their x, each labelled where there is room for it.
fn marks(
    o: &mut String,
    f: &Frame,
    marks: &[(f64, String)],
    xpos: &dyn Fn(f64) -> f64,
) -> std::fmt::Result {
    let mut free_from = f.left;
    for (x, label) in marks {
        let mx = xpos(*x);
        write!(
            o,
            "<line class=\"mark\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"><title>{}</title></line>",
            px(f.top),
            px(f.base()),
            esc(label),
            x = px(mx)
        )?;
        if mx >= free_from {
            write!(
                o,
                "<text x=\"{}\" y=\"{}\" style=\"font-size:10px;fill:#6b7280\">{}</text>",
                px(mx + 3.0),
                px(f.top + 10.0),
                esc(&clip(label, 14))
            )?;
            free_from = mx + 6.0 + text_w(&clip(label, 14), 10.0);
        }
    }
    Ok(())
}

/// A series' line through its points in SVG units (`None` lifts the pen: a gap).
fn series_line(o: &mut String, s: &Series, pts: &[(f64, Option<f64>)]) -> std::fmt::Result {
    let mut d = String::new();
    let mut pen_down = false;
    for (x, y) in pts {
        match y {
            Some(y) => {
                write!(
                    d,
                    "{}{} {} ",
                    if pen_down { "L" } else { "M" },
                    px(*x),
                    px(*y)
                )?;
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if d.is_empty() {
        return Ok(());
    }
    write!(
        o,
        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"{}/>",
        d.trim_end(),
        s.colour,
        if s.dashed {
            " stroke-dasharray=\"6 3\""
        } else {
            ""
        }
    )
}

/// A dot with its value on each point of a series when it has few, and on every point no line
/// reaches (between two gaps).
fn series_dots(o: &mut String, s: &Series, pts: &[(f64, Option<f64>)]) -> std::fmt::Result {
    let few = pts.len() <= 24;
    for (i, ((x, y), (_, value))) in pts.iter().zip(&s.points).enumerate() {
        let Some(y) = y else { continue };
        let alone = pts.get(i.wrapping_sub(1)).is_none_or(|p| p.1.is_none())
            && pts.get(i + 1).is_none_or(|p| p.1.is_none());
        if few || alone {
            write!(
                o,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}: {}</title></circle>",
                px(*x),
                px(*y),
                s.colour,
                esc(&s.name),
                fmt::short(value.unwrap_or(0.0))
            )?;
        }
    }
    Ok(())
}

/// One set of bars of a [`BarChart`]: one value per category.
pub(super) struct Bars {
    pub(super) name: String,
    pub(super) colour: &'static str,
    pub(super) values: Vec<f64>,
}

/// What [`bar_chart`] draws: for each category, one bar per series side by side.
pub(super) struct BarChart {
    pub(super) title: String,
    pub(super) categories: Vec<String>,
    pub(super) series: Vec<Bars>,
    /// The value axis' label, with its unit.
    pub(super) value_label: String,
    /// Categories down the left and bars to the right (long names); else columns.
    pub(super) horizontal: bool,
    /// Text by each bar, shaped like the series' values; without it, the value.
    pub(super) bar_text: Option<Vec<Vec<String>>>,
    /// Horizontal only: the series' bars end to end (parts of a whole); negative parts are
    /// left out of the bar (the table shows them).
    pub(super) stacked: bool,
    pub(super) width: f64,
    pub(super) height: f64,
}

/// A grouped bar chart, horizontal or vertical, on a linear axis that always includes 0 (so
/// negative values, e.g. a router faster than direct, go the other way).
pub(super) fn bar_chart(o: &mut String, c: &BarChart) -> std::fmt::Result {
    let keys: Vec<Key<'_>> = if c.series.len() > 1 {
        c.series
            .iter()
            .map(|s| Key {
                name: &s.name,
                colour: s.colour,
                style: KeyStyle::Box,
            })
            .collect()
    } else {
        Vec::new()
    };
    let label_w = if c.horizontal {
        let widest = c
            .categories
            .iter()
            .map(|s| text_w(s, 11.0))
            .fold(0.0, f64::max);
        widest.clamp(40.0, 230.0) + 14.0
    } else {
        58.0
    };
    let (pos, rows) = legend_layout(&keys, label_w, c.width - 8.0);
    let f = Frame {
        w: c.width,
        h: c.height,
        left: label_w,
        right: if c.horizontal { 100.0 } else { 16.0 },
        top: plot_top(rows) + if c.horizontal { 0.0 } else { 8.0 },
        bottom: if c.horizontal { 34.0 } else { 40.0 },
    };
    svg_open(o, c.width, c.height, &c.title)?;
    legend(o, &keys, &pos)?;
    let values: Vec<f64> = if c.stacked {
        (0..c.categories.len())
            .map(|i| {
                c.series
                    .iter()
                    .map(|s| fin(s.values.get(i).copied().unwrap_or(0.0)).max(0.0))
                    .sum()
            })
            .collect()
    } else {
        c.series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .collect()
    };
    let Some((vmin, vmax)) = extent(&values).filter(|_| !c.categories.is_empty()) else {
        no_data(o, &f)?;
        return o.write_str("</svg>\n");
    };
    let va = Axis::linear(vmin.min(0.0), vmax.max(0.0));
    if c.horizontal {
        horizontal_bars(o, c, &f, &va)?;
    } else {
        vertical_bars(o, c, &f, &va)?;
    }
    o.write_str("</svg>\n")
}

/// The text by bar `i` of series `j`: the chart's own, or the value.
fn bar_text(c: &BarChart, j: usize, i: usize, v: f64) -> String {
    c.bar_text
        .as_ref()
        .and_then(|t| t.get(j))
        .and_then(|t| t.get(i))
        .cloned()
        .unwrap_or_else(|| fmt::short(v))
}

/// Bars to the right of their category's name, the value axis at the bottom, the zero line.
fn horizontal_bars(o: &mut String, c: &BarChart, f: &Frame, va: &Axis) -> std::fmt::Result {
    let zero = va.frac(0.0);
    x_axis(o, f, va)?;
    let band = f.ph() / c.categories.len().max(1) as f64;
    let group = band * 0.76;
    let bar = if c.stacked {
        group
    } else {
        group / c.series.len().max(1) as f64
    };
    let max_chars = ((f.left - 14.0) / 6.6).floor() as usize;
    for (i, name) in c.categories.iter().enumerate() {
        let band_top = f.top + band * i as f64;
        write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>",
            px(f.left - 6.0),
            px(band_top + band / 2.0 + 4.0),
            esc(name),
            esc(&clip(name, max_chars))
        )?;
        let mut end = 0.0;
        for (j, s) in c.series.iter().enumerate() {
            let v = fin(s.values.get(i).copied().unwrap_or(0.0));
            let (x0, x1, y) = if c.stacked {
                let from = end;
                end += v.max(0.0);
                (
                    f.x(va.frac(from)),
                    f.x(va.frac(end)),
                    band_top + (band - group) / 2.0,
                )
            } else {
                (
                    f.x(zero),
                    f.x(va.frac(v)),
                    band_top + (band - group) / 2.0 + bar * j as f64,
                )
            };
            if c.stacked {
                // Parts: the name and value on hover; the whole is written after the bar.
                if (x1 - x0).abs() >= 0.5 {
                    let title = format!("{name} · {}: {}", s.name, bar_text(c, j, i, v));
                    hbar(o, (x0, x1, y), bar, s.colour, &title, false)?;
                }
                if j + 1 == c.series.len() {
                    write!(
                        o,
                        "<text x=\"{}\" y=\"{}\">{}</text>",
                        px(f.x(va.frac(end)) + 4.0),
                        px(y + bar / 2.0 + 4.0),
                        esc(&fmt::short(end))
                    )?;
                }
                continue;
            }
            hbar(
                o,
                (x0, x1, y),
                bar,
                s.colour,
                &format!("{name}: {}", fmt::short(v)),
                true,
            )?;
            write!(
                o,
                "<text x=\"{}\" y=\"{}\">{}</text>",
                px(x0.max(x1) + 4.0),
                px(y + bar / 2.0 + 4.0),
                esc(&bar_text(c, j, i, v))
            )?;
        }
    }
    write!(
        o,
        "<line class=\"axis\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        px(f.top),
        px(f.base()),
        px(f.left + f.pw() / 2.0),
        px(f.h - 4.0),
        esc(&c.value_label),
        x = px(f.x(zero))
    )
}

/// One horizontal bar from `x0` to `x1` at `y`, `bar` high, with `title` on hover.
fn hbar(
    o: &mut String,
    (x0, x1, y): (f64, f64, f64),
    bar: f64,
    colour: &str,
    title: &str,
    rounded: bool,
) -> std::fmt::Result {
    write!(
        o,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"{}><title>{}</title></rect>",
        px(x0.min(x1)),
        px(y),
        px((x1 - x0).abs()),
        px((bar - 1.0).max(1.0)),
        if rounded { " rx=\"2\"" } else { "" },
        esc(title)
    )
}

/// Columns over their category's name, the value axis on the left, the zero line.
fn vertical_bars(o: &mut String, c: &BarChart, f: &Frame, va: &Axis) -> std::fmt::Result {
    let zero = va.frac(0.0);
    y_axis(o, f, va, &c.value_label)?;
    slot_labels(o, f, &c.categories)?;
    let band = f.pw() / c.categories.len().max(1) as f64;
    let group = band * 0.7;
    let bar = group / c.series.len().max(1) as f64;
    for i in 0..c.categories.len() {
        for (j, s) in c.series.iter().enumerate() {
            let v = fin(s.values.get(i).copied().unwrap_or(0.0));
            let (y0, y1) = (f.y(zero), f.y(va.frac(v)));
            let x = f.left + band * i as f64 + (band - group) / 2.0 + bar * j as f64;
            let ty = if v < 0.0 { y1 + 11.0 } else { y1 - 3.0 };
            write!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" rx=\"2\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" style=\"font-size:10px\">{}</text>",
                px(x + 0.5),
                px(y0.min(y1)),
                px((bar - 1.0).max(1.0)),
                px((y1 - y0).abs()),
                s.colour,
                esc(&s.name),
                fmt::short(v),
                px(x + bar / 2.0),
                px(ty),
                esc(&bar_text(c, j, i, v))
            )?;
        }
    }
    write!(
        o,
        "<line class=\"axis\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
        px(f.left),
        px(f.left + f.pw()),
        y = px(f.y(zero))
    )
}
