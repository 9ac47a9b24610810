//! `report.html`: the whole report as one self-contained page — inline CSS and inline SVG charts
//! drawn here, no script, font or image from anywhere — so it can be attached to a CI run or
//! opened from disk years later and look the same.
//!
//! Layout: a header (version, start time, config, verdict) and a table of contents, then one
//! section per scenario run: headline table, verdicts (SLO, thresholds, breaking point), latency
//! percentiles, latency and throughput over time, throughput vs load, routing overhead, share per
//! endpoint, per model, errors by class and the client's own health.
//!
//! Every string taken from the report goes through [`esc`]; every number drawn goes through
//! [`px`], [`num`] or [`fmt_num`], so the page never shows `NaN` or `inf`.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use crate::cells;
use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::report::{Check, Report, ScenarioReport};
use inferbench_results::run::{Group, Latencies, RunResult, TimeBucket};

// ---------------------------------------------------------------------------------------------
// Palette: one colour per metric, shared by every chart, legend and table.

/// Time to first token.
const C_TTFT: &str = "#2563eb";
/// Inter-token latency.
const C_ITL: &str = "#16a34a";
/// Time per output token.
const C_TPOT: &str = "#9333ea";
/// End to end.
const C_E2E: &str = "#ea580c";
/// Successful requests per second.
const C_OK: &str = "#0d9488";
/// Failed requests per second.
const C_ERR: &str = "#dc2626";
/// Output tokens per second.
const C_TOK: &str = "#ca8a04";
/// The load asked for (a reference line).
const C_ASKED: &str = "#6b7280";
/// p50 / p95 / p99 shades of the TTFT colour, for grouped bars.
const C_TTFT_P: [&str; 3] = ["#93c5fd", "#3b82f6", "#1e3a8a"];

/// The four latency metrics of tables and percentile charts: label and colour.
const METRICS: [(&str, &str); 4] = [
    ("TTFT", C_TTFT),
    ("ITL", C_ITL),
    ("TPOT", C_TPOT),
    ("e2e", C_E2E),
];

/// The four latency metrics with their histograms: label, colour, histogram.
fn metrics(l: &Latencies) -> [(&'static str, &'static str, &LatencyHistogram); 4] {
    let [(a, ca), (b, cb), (c, cc), (d, cd)] = METRICS;
    [
        (a, ca, &l.ttft),
        (b, cb, &l.itl),
        (c, cc, &l.tpot),
        (d, cd, &l.e2e),
    ]
}

/// The percentiles of the percentile charts, as labelled on their x axis.
const PERCENTILES: [&str; 5] = ["p50", "p90", "p95", "p99", "p99.9"];

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

// ---------------------------------------------------------------------------------------------
// Small helpers: escaping, numbers, dates.

/// Escapes text for HTML content and attribute values (and SVG text): `& < > " '`.
fn esc(s: &str) -> String {
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

/// A finite number, or 0: the guard for every figure that reaches the page.
fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// An SVG coordinate or length: finite, one decimal.
fn px(x: f64) -> String {
    format!("{:.1}", fin(x))
}

/// A number with `d` decimals, `—` when it is not finite.
fn num(x: f64, d: usize) -> String {
    if x.is_finite() {
        format!("{x:.d$}")
    } else {
        "—".to_string()
    }
}

/// µs as ms, the unit of every latency on the page: one decimal, two below 1 ms.
fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if us < 1000 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Signed µs as signed ms with two decimals (overhead over a baseline).
fn ms_signed(us: i64) -> String {
    format!("{:+.2}", us as f64 / 1000.0)
}

/// A count with thousands separators: `12,345`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `n` per second over `secs` (0 when no time passed).
fn per_s(n: u64, secs: f64) -> f64 {
    if secs.is_finite() && secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// A value for a chart tick or bar: at most three significant decimals, no trailing zeros,
/// `k` / `M` from 100,000 on.
fn fmt_num(v: f64) -> String {
    let v = fin(v);
    let a = v.abs();
    let (x, suffix) = if a >= 1e7 {
        (v / 1e6, "M")
    } else if a >= 1e5 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let decimals = if x.abs() >= 100.0 {
        1
    } else if x.abs() >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    let s = if s == "-0" { "0" } else { s };
    format!("{s}{suffix}")
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`; `unknown` for 0 (not recorded).
fn utc(unix_s: u64) -> String {
    if unix_s == 0 {
        return "unknown".to_string();
    }
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar. Counts in
/// 400-year eras of 146,097 days, with years starting on 1 March so the leap day comes last.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Month counted from March: 0 = March … 11 = February.
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An HTML id for scenario run `i`: its position and a slug of its name (names repeat).
fn anchor(i: usize, name: &str) -> String {
    let mut slug = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    format!("s{}-{}", i + 1, slug.trim_matches('-'))
}

/// A pass/fail badge.
fn badge(passed: bool) -> &'static str {
    if passed {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

/// A ✓ / ✗ mark, coloured.
fn mark(passed: bool) -> &'static str {
    if passed {
        "<span class=\"ok\">✓ pass</span>"
    } else {
        "<span class=\"bad\">✗ fail</span>"
    }
}

/// Error share of a run, percent of completed requests.
fn error_pct(r: &RunResult) -> f64 {
    r.total.counts.error_fraction() * 100.0
}

// ---------------------------------------------------------------------------------------------
// Chart building blocks: axes, ticks, legends.

/// Round tick values (1, 2, 2.5 or 5 × 10ⁿ apart), about `n` of them, whose first and last
/// enclose `[lo, hi]`. Empty, reversed or non-finite ranges are widened to something drawable.
fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
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
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
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
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    /// A linear axis over round ticks enclosing `[min, max]`.
    fn linear(min: f64, max: f64) -> Self {
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
    fn log(min: f64, max: f64) -> Self {
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
    fn frac(&self, v: f64) -> f64 {
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
fn clip(s: &str, max: usize) -> String {
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
fn legend(o: &mut String, keys: &[Key<'_>], pos: &[(f64, usize)]) -> fmt::Result {
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
fn svg_open(o: &mut String, w: f64, h: f64, title: &str) -> fmt::Result {
    write!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\"><title>{t}</title><text class=\"ct\" x=\"10\" y=\"18\">{t}</text>",
        w = px(w),
        h = px(h),
        t = esc(title)
    )
}

/// "no data" in the middle of an empty plot area.
fn no_data(o: &mut String, f: &Frame) -> fmt::Result {
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
fn y_axis(o: &mut String, f: &Frame, a: &Axis, label: &str) -> fmt::Result {
    for t in &a.ticks {
        let y = f.y(a.frac(*t));
        write!(
            o,
            "<line class=\"grid\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            px(f.left),
            px(f.left + f.pw()),
            px(f.left - 5.0),
            px(f.y(a.frac(*t)) + 3.5),
            fmt_num(*t),
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
fn x_axis(o: &mut String, f: &Frame, a: &Axis) -> fmt::Result {
    for t in &a.ticks {
        let x = px(f.x(a.frac(*t)));
        write!(
            o,
            "<line class=\"grid\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(f.top),
            px(f.base() + 4.0),
            px(f.base() + 16.0),
            fmt_num(*t)
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
fn slot_labels(o: &mut String, f: &Frame, names: &[String]) -> fmt::Result {
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
fn x_label(o: &mut String, f: &Frame, label: &str) -> fmt::Result {
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
struct Series {
    name: String,
    colour: &'static str,
    dashed: bool,
    points: Vec<(f64, Option<f64>)>,
}

/// The x axis of a line chart.
enum XAxis {
    /// Numbers (seconds, req/s) on a linear axis from 0.
    Numbers,
    /// Named slots in order (percentiles, stages); a point's x is its slot's index.
    Slots(Vec<String>),
}

/// What [`line_chart`] draws.
struct LineChart {
    title: String,
    x: XAxis,
    x_label: String,
    y_label: String,
    log_y: bool,
    /// A fixed y extent (small multiples share one); otherwise the data's.
    y_extent: Option<(f64, f64)>,
    /// A fixed extent of a numeric x axis (a whole timeline); otherwise 0 to the data's end.
    x_extent: Option<(f64, f64)>,
    series: Vec<Series>,
    /// Vertical marks: x and a label (stage boundaries).
    marks: Vec<(f64, String)>,
    width: f64,
    height: f64,
}

/// Smallest and largest of some values (none when empty).
fn extent(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

/// A line chart with a legend, y grid, x ticks or slot labels, optional vertical marks; a dot on
/// each point when there are few, and on every point a line cannot reach.
fn line_chart(o: &mut String, c: &LineChart) -> fmt::Result {
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
    // Marks, labelled where there is room for the label.
    let mut free_from = f.left;
    for (x, label) in &c.marks {
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
    for s in &c.series {
        let pts: Vec<(f64, Option<f64>)> = s
            .points
            .iter()
            .map(|(x, y)| (xpos(*x), y.filter(|v| usable(*v)).map(|v| f.y(ya.frac(v)))))
            .collect();
        let mut d = String::new();
        let mut pen_down = false;
        for (x, y) in &pts {
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
        if !d.is_empty() {
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
            )?;
        }
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
                    fmt_num(value.unwrap_or(0.0))
                )?;
            }
        }
    }
    o.write_str("</svg>\n")
}

/// One set of bars of a [`BarChart`]: one value per category.
struct Bars {
    name: String,
    colour: &'static str,
    values: Vec<f64>,
}

/// What [`bar_chart`] draws: for each category, one bar per series side by side.
struct BarChart {
    title: String,
    categories: Vec<String>,
    series: Vec<Bars>,
    /// The value axis' label, with its unit.
    value_label: String,
    /// Categories down the left and bars to the right (long names); else columns.
    horizontal: bool,
    /// Text by each bar, shaped like the series' values; without it, the value.
    bar_text: Option<Vec<Vec<String>>>,
    width: f64,
    height: f64,
}

/// A grouped bar chart, horizontal or vertical, on a linear axis that always includes 0 (so
/// negative values, e.g. a router faster than direct, go the other way).
fn bar_chart(o: &mut String, c: &BarChart) -> fmt::Result {
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
    let n = c.categories.len();
    let m = c.series.len().max(1);
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
    let values: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let Some((vmin, vmax)) = extent(&values).filter(|_| n > 0) else {
        no_data(o, &f)?;
        return o.write_str("</svg>\n");
    };
    let va = Axis::linear(vmin.min(0.0), vmax.max(0.0));
    let zero = va.frac(0.0);
    let text_of = |j: usize, i: usize, v: f64| {
        c.bar_text
            .as_ref()
            .and_then(|t| t.get(j))
            .and_then(|t| t.get(i))
            .cloned()
            .unwrap_or_else(|| fmt_num(v))
    };
    if c.horizontal {
        x_axis(o, &f, &va)?;
        let band = f.ph() / n as f64;
        let group = band * 0.76;
        let bar = group / m as f64;
        let max_chars = ((label_w - 14.0) / 6.6).floor() as usize;
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
            for (j, s) in c.series.iter().enumerate() {
                let v = fin(s.values.get(i).copied().unwrap_or(0.0));
                let (x0, x1) = (f.x(zero), f.x(va.frac(v)));
                let y = band_top + (band - group) / 2.0 + bar * j as f64;
                write!(
                    o,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" rx=\"2\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
                    px(x0.min(x1)),
                    px(y),
                    px((x1 - x0).abs()),
                    px((bar - 1.0).max(1.0)),
                    s.colour,
                    esc(name),
                    fmt_num(v),
                    px(x0.max(x1) + 4.0),
                    px(y + bar / 2.0 + 4.0),
                    esc(&text_of(j, i, v))
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
        )?;
    } else {
        y_axis(o, &f, &va, &c.value_label)?;
        slot_labels(o, &f, &c.categories)?;
        let band = f.pw() / n as f64;
        let group = band * 0.7;
        let bar = group / m as f64;
        for i in 0..n {
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
                    fmt_num(v),
                    px(x + bar / 2.0),
                    px(ty),
                    esc(&text_of(j, i, v))
                )?;
            }
        }
        write!(
            o,
            "<line class=\"axis\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
            px(f.left),
            px(f.left + f.pw()),
            y = px(f.y(zero))
        )?;
    }
    o.write_str("</svg>\n")
}

// ---------------------------------------------------------------------------------------------
// The page and its sections.

/// Renders the whole report as one HTML page.
pub fn render(report: &Report) -> String {
    let mut o = String::with_capacity(128 * 1024);
    // Writing into a String cannot fail.
    let _ = page(&mut o, report);
    o
}

/// The page: head with the style sheet, header, contents, one section per scenario run.
fn page(o: &mut String, r: &Report) -> fmt::Result {
    o.write_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")?;
    // Nothing may load from anywhere: the page stands alone.
    o.write_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n")?;
    o.write_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")?;
    writeln!(
        o,
        "<title>inferbench report · {}</title>",
        esc(&utc(r.started_unix_s))
    )?;
    writeln!(o, "<style>{CSS}</style>\n</head>\n<body>")?;
    header(o, r)?;
    contents(o, r)?;
    for (i, s) in r.scenarios.iter().enumerate() {
        scenario(o, i, s)?;
    }
    writeln!(
        o,
        "<footer>inferbench {} · latencies in milliseconds · TTFT time to first token, ITL inter-token latency, TPOT time per output token, e2e end to end</footer>",
        esc(&r.tool_version)
    )?;
    o.write_str("</body>\n</html>\n")
}

/// The header: version, start time, config, partial flag and the overall verdict.
fn header(o: &mut String, r: &Report) -> fmt::Result {
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
        esc(&utc(r.started_unix_s)),
        r.config
            .as_deref()
            .map_or("—".to_string(), |c| format!("<code>{}</code>", esc(c))),
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
        .filter(|(_, s)| !warnings_of(s).is_empty())
        .collect();
    if !warned.is_empty() {
        o.write_str("<div class=\"warn\">⚠ Warnings in ")?;
        for (k, (i, s)) in warned.iter().enumerate() {
            write!(
                o,
                "{}<a href=\"#{}\">{}</a>",
                if k > 0 { ", " } else { "" },
                anchor(*i, &s.name),
                esc(&s.name)
            )?;
        }
        o.write_str(": read them before trusting the numbers.</div>\n")?;
    }
    o.write_str("</header>\n")
}

/// The table of contents: one row per scenario run with its headline and verdict, linked.
fn contents(o: &mut String, r: &Report) -> fmt::Result {
    o.write_str("<nav aria-label=\"Contents\">\n<h2>Contents</h2>\n")?;
    if r.scenarios.is_empty() {
        return o.write_str("<p class=\"note\">This report has no scenario runs.</p>\n</nav>\n");
    }
    o.write_str("<div class=\"scroll\"><table><thead><tr><th>#</th><th>scenario</th><th>target</th><th>kind</th><th class=\"n\">requests</th><th class=\"n\">error %</th><th class=\"n\">req/s</th><th class=\"n\">TTFT p95 ms</th><th>verdict</th></tr></thead><tbody>\n")?;
    for (i, s) in r.scenarios.iter().enumerate() {
        let t = &s.total;
        writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td><a href=\"#{}\">{}</a>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            i + 1,
            anchor(i, &s.name),
            esc(&s.name),
            repeat_note(s),
            esc(&s.target),
            esc(&s.kind),
            count(t.total.counts.requests),
            num(error_pct(t), 2),
            num(t.achieved_rate(), 2),
            ms(t.total.latency.ttft.summary().p95_us),
            mark(s.passed)
        )?;
    }
    o.write_str("</tbody></table></div>\n</nav>\n")
}

/// ` (repeat N)` after a name when the scenario ran more than once.
fn repeat_note(s: &ScenarioReport) -> String {
    if s.repeat > 1 {
        format!(" (repeat {})", s.repeat)
    } else {
        String::new()
    }
}

/// One scenario run: every section in reading order.
fn scenario(o: &mut String, i: usize, s: &ScenarioReport) -> fmt::Result {
    writeln!(
        o,
        "<section class=\"scenario\" id=\"{}\">\n<h2>{}{} {}</h2>",
        anchor(i, &s.name),
        esc(&s.name),
        repeat_note(s),
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
        num(s.total.duration_s, 1),
        if s.total.partial {
            " · <span class=\"bad\">partial</span>"
        } else {
            ""
        }
    )?;
    warnings(o, s)?;
    headline(o, s)?;
    verdicts(o, s)?;
    latency(o, s)?;
    throughput(o, s)?;
    routing(o, s)?;
    models(o, s)?;
    errors(o, s)?;
    client(o, s)?;
    o.write_str("<p class=\"top\"><a href=\"#top\">↑ top</a></p>\n</section>\n")
}

/// Every warning of a scenario run (total, stages, arms), each once, in order.
fn warnings_of(s: &ScenarioReport) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let all = s
        .total
        .warnings
        .iter()
        .chain(s.stages.iter().flat_map(|st| &st.result.warnings))
        .chain(s.arms.iter().flat_map(|a| &a.result.warnings));
    for w in all {
        if !out.contains(&w.as_str()) {
            out.push(w);
        }
    }
    out
}

/// The run's warnings, in a box that cannot be missed.
fn warnings(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let ws = warnings_of(s);
    if ws.is_empty() {
        return Ok(());
    }
    o.write_str("<div class=\"warn\"><strong>⚠ Warnings</strong><ul>")?;
    for w in ws {
        write!(o, "<li>{}</li>", esc(w))?;
    }
    o.write_str("</ul></div>\n")
}

/// The headline table: one row per stage (when there are several) and one for all requests.
fn headline(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    o.write_str("<h3>Headline</h3>\n<div class=\"scroll\"><table><thead><tr><th rowspan=\"2\">stage</th><th rowspan=\"2\">load</th><th rowspan=\"2\" class=\"n\">requests</th><th rowspan=\"2\" class=\"n\">ok</th><th rowspan=\"2\" class=\"n\">error %</th><th rowspan=\"2\" class=\"n\">req/s</th><th rowspan=\"2\" class=\"n\">output tok/s</th>")?;
    for (name, colour) in METRICS {
        write!(
            o,
            "<th colspan=\"3\" style=\"text-align:center;border-bottom:3px solid {colour}\">{name} ms</th>"
        )?;
    }
    o.write_str("</tr><tr>")?;
    for _ in 0..4 {
        o.write_str("<th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th>")?;
    }
    o.write_str("</tr></thead><tbody>\n")?;
    if s.stages.len() > 1 {
        for st in &s.stages {
            headline_row(o, &st.name, &st.result, false)?;
        }
    }
    headline_row(o, "all", &s.total, true)?;
    o.write_str("</tbody></table></div>\n")?;
    match cells::sent_breakdown(&s.total) {
        Some(line) => writeln!(o, "<p class=\"note\">Requests: {}</p>", esc(&line)),
        None => Ok(()),
    }
}

/// One row of the headline table.
fn headline_row(o: &mut String, label: &str, r: &RunResult, all: bool) -> fmt::Result {
    let c = &r.total.counts;
    write!(
        o,
        "<tr{}><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        if all { " class=\"all\"" } else { "" },
        esc(label),
        esc(&r.load),
        count(c.requests),
        count(c.ok),
        num(error_pct(r), 2),
        num(r.achieved_rate(), 2),
        num(r.output_tokens_per_s(), 0)
    )?;
    for (_, _, h) in metrics(&r.total.latency) {
        let sm = h.summary();
        write!(
            o,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            ms(sm.p50_us),
            ms(sm.p95_us),
            ms(sm.p99_us)
        )?;
    }
    o.write_str("</tr>\n")
}

/// A table of checks: rule, measured, ✓ / ✗.
fn checks_table(o: &mut String, checks: &[Check]) -> fmt::Result {
    o.write_str(
        "<table><thead><tr><th>rule</th><th>measured</th><th>verdict</th></tr></thead><tbody>",
    )?;
    for c in checks {
        write!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&c.rule),
            esc(&c.measured),
            mark(c.passed)
        )?;
    }
    o.write_str("</tbody></table>\n")
}

/// SLO (with goodput), thresholds and the breaking point, when the scenario has them.
fn verdicts(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    if s.slo.is_none() && s.thresholds.is_empty() && s.breaking_point.is_none() {
        return Ok(());
    }
    o.write_str("<h3>Verdict</h3>\n")?;
    if let Some(slo) = &s.slo {
        writeln!(
            o,
            "<p><strong>SLO (p{}):</strong> {} · goodput {} req/s ({}% of requests met every limit)</p>",
            fmt_num(slo.percentile),
            mark(slo.passed),
            num(slo.goodput_rps, 2),
            num(slo.good_fraction * 100.0, 1)
        )?;
        checks_table(o, &slo.checks)?;
    }
    if !s.thresholds.is_empty() {
        o.write_str("<p><strong>Thresholds:</strong></p>\n")?;
        checks_table(o, &s.thresholds)?;
    }
    if let Some(b) = &s.breaking_point {
        let unit = cells::stress_unit(s);
        let level = |r: Option<f64>, none: &str| {
            r.filter(|r| r.is_finite())
                .map_or(none.to_string(), |r| format!("{}{unit}", fmt_num(r)))
        };
        writeln!(
            o,
            "<p><strong>Breaking point:</strong> {} (last passing rate: {})</p>",
            level(b.breaking_rate, "not reached"),
            level(b.last_passing_rate, "none")
        )?;
        if !b.failed.is_empty() {
            checks_table(o, &b.failed)?;
        }
    }
    Ok(())
}

/// Percentile series of one group of latencies, one per metric that has samples.
fn percentile_series(l: &Latencies) -> Vec<Series> {
    metrics(l)
        .into_iter()
        .filter(|(_, _, h)| h.count() > 0)
        .map(|(name, colour, h)| {
            let sm = h.summary();
            let values = [sm.p50_us, sm.p90_us, sm.p95_us, sm.p99_us, sm.p999_us];
            Series {
                name: name.to_string(),
                colour,
                dashed: false,
                points: values
                    .iter()
                    .enumerate()
                    .map(|(i, us)| (i as f64, Some(*us as f64 / 1000.0)))
                    .collect(),
            }
        })
        .collect()
}

/// Latency: the percentile chart of all requests beside latency over time, then a small
/// percentile chart per stage when there are several.
fn latency(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    o.write_str("<h3>Latency</h3>\n<div class=\"charts\">")?;
    percentile_chart(o, s)?;
    latency_over_time(o, s)?;
    o.write_str("</div>\n")?;
    stage_percentiles(o, s)
}

/// Throughput: over time beside the share per endpoint, then throughput vs load.
fn throughput(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    o.write_str("<h3>Throughput</h3>\n<div class=\"charts\">")?;
    throughput_over_time(o, s)?;
    endpoint_chart(o, s)?;
    o.write_str("</div>\n")?;
    vs_load(o, s)
}

/// The five percentiles as x-axis slots.
fn percentile_slots() -> XAxis {
    XAxis::Slots(PERCENTILES.iter().map(|p| p.to_string()).collect())
}

/// The percentile chart of all requests (log scale: TTFT and ITL differ a hundredfold).
fn percentile_chart(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let series = percentile_series(&s.total.total.latency);
    if series.is_empty() {
        return o.write_str("<p class=\"note\">No successful requests: no latency to chart.</p>");
    }
    line_chart(
        o,
        &LineChart {
            title: "Latency percentiles, all requests".into(),
            x: percentile_slots(),
            x_label: "percentile".into(),
            y_label: "ms (log scale)".into(),
            log_y: true,
            y_extent: None,
            x_extent: None,
            series,
            marks: Vec::new(),
            width: 560.0,
            height: 300.0,
        },
    )
}

/// A small percentile chart per stage when there are several, sharing one y scale so they
/// compare at a glance.
fn stage_percentiles(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    if s.stages.len() < 2 {
        return Ok(());
    }
    let per_stage: Vec<Vec<Series>> = s
        .stages
        .iter()
        .map(|st| percentile_series(&st.result.total.latency))
        .collect();
    let all: Vec<f64> = per_stage
        .iter()
        .flatten()
        .flat_map(|sr| sr.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let shared = extent(&all);
    let what = if is_arms(s) { "arm" } else { "stage" };
    writeln!(
        o,
        "<h4>Latency percentiles by {what}</h4>\n<div class=\"charts small\">"
    )?;
    for (st, series) in s.stages.iter().zip(per_stage) {
        line_chart(
            o,
            &LineChart {
                title: format!("{} {}", if is_arms(s) { "Arm" } else { "Stage" }, st.name),
                x: percentile_slots(),
                x_label: "percentile".into(),
                y_label: "ms (log)".into(),
                log_y: true,
                y_extent: shared,
                x_extent: None,
                series,
                marks: Vec::new(),
                width: 380.0,
                height: 240.0,
            },
        )?;
    }
    o.write_str("</div>\n")
}

/// The note shown instead of a chart over time when the scenario has no timeline.
fn no_timeline(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let why = if s.total.total.counts.requests == 0 {
        "No requests: nothing over time."
    } else {
        "No timeline in this report (it was written before inferbench recorded one)."
    };
    write!(o, "<p class=\"note\">{why}</p>")
}

/// Width of the scenario's timeline buckets, seconds (1 if the report says something unusable).
fn bucket_width(s: &ScenarioReport) -> f64 {
    let b = s.total.timeline.bucket_s;
    if b.is_finite() && b > 0.0 { b } else { 1.0 }
}

/// A chart over the scenario's timeline: x in seconds after warm-up, stage starts marked.
fn timeline_chart(
    s: &ScenarioReport,
    title: &str,
    y_label: &str,
    series: Vec<Series>,
) -> LineChart {
    let b = bucket_width(s);
    LineChart {
        title: title.into(),
        x: XAxis::Numbers,
        x_label: format!("seconds after warm-up ({} s buckets)", fmt_num(b)),
        y_label: y_label.into(),
        log_y: false,
        y_extent: None,
        x_extent: Some((0.0, s.total.timeline.buckets.len() as f64 * b)),
        series,
        marks: stage_marks(s),
        width: 560.0,
        height: 300.0,
    }
}

/// One series over the timeline: `f` gives a bucket's value (none leaves a gap).
fn timeline_series(
    s: &ScenarioReport,
    name: &str,
    colour: &'static str,
    dashed: bool,
    f: &dyn Fn(&TimeBucket, f64) -> Option<f64>,
) -> Series {
    let b = bucket_width(s);
    let buckets = &s.total.timeline.buckets;
    Series {
        name: name.to_string(),
        colour,
        dashed,
        points: buckets
            .iter()
            .enumerate()
            .map(|(i, bucket)| {
                // The last bucket may be cut short by the end of the run: divide by the time
                // it covered.
                let covered = s.total.duration_s - i as f64 * b;
                let width = if covered.is_finite() && covered > 0.0 {
                    covered.clamp(b * 0.25, b)
                } else {
                    b
                };
                ((i as f64 + 0.5) * b, f(bucket, width))
            })
            .collect(),
    }
}

/// A quantile of a bucket's histogram in ms, none when it is empty.
fn bucket_ms(h: &LatencyHistogram, q: f64) -> Option<f64> {
    (h.count() > 0).then(|| h.quantile(q) as f64 / 1000.0)
}

/// Latency over time: TTFT p50 and p99, e2e p50 per bucket.
fn latency_over_time(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    if s.total.timeline.buckets.is_empty() {
        return no_timeline(o, s);
    }
    let series = vec![
        timeline_series(s, "TTFT p50", C_TTFT, false, &|b, _| {
            bucket_ms(&b.ttft, 0.5)
        }),
        timeline_series(s, "TTFT p99", C_TTFT, true, &|b, _| {
            bucket_ms(&b.ttft, 0.99)
        }),
        timeline_series(s, "e2e p50", C_E2E, false, &|b, _| bucket_ms(&b.e2e, 0.5)),
    ];
    line_chart(o, &timeline_chart(s, "Latency over time", "ms", series))
}

/// Throughput over time: successful and failed requests per second per bucket.
fn throughput_over_time(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    if s.total.timeline.buckets.is_empty() {
        return no_timeline(o, s);
    }
    let series = vec![
        timeline_series(s, "ok/s", C_OK, false, &|b, w| Some(per_s(b.ok, w))),
        timeline_series(s, "errors/s", C_ERR, false, &|b, w| {
            Some(per_s(b.errors, w))
        }),
    ];
    line_chart(
        o,
        &timeline_chart(s, "Throughput over time", "requests/s", series),
    )
}

/// Whether the scenario's "stages" are routing arms (run interleaved, not one after another).
fn is_arms(s: &ScenarioReport) -> bool {
    s.kind == "arms"
}

/// Where each stage after the first starts, in seconds after warm-up (stages run back to back;
/// arms interleave, so they get no marks).
fn stage_marks(s: &ScenarioReport) -> Vec<(f64, String)> {
    if s.stages.len() < 2 || is_arms(s) {
        return Vec::new();
    }
    let mut at = 0.0;
    let mut out = Vec::new();
    for st in &s.stages {
        if at > 0.0 {
            out.push((at, st.name.clone()));
        }
        at += fin(st.result.duration_s).max(0.0);
    }
    out
}

/// Throughput vs load over the stages or steps: achieved vs asked req/s, output tok/s and
/// TTFT p90 — where the lines bend is the knee.
fn vs_load(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    // Arms are one load through different routes: no load axis.
    if s.stages.len() < 2 || is_arms(s) {
        return Ok(());
    }
    o.write_str("<h4>Throughput vs load</h4>\n")?;
    let rates: Vec<Option<f64>> = s
        .stages
        .iter()
        .map(|st| st.result.target_rate.filter(|r| r.is_finite()))
        .collect();
    // Numbers on the x axis only when every step asked a rate and they rise (sweep, stress);
    // otherwise the stages in order.
    let rising = rates.iter().all(Option::is_some)
        && rates.windows(2).all(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) => b > a,
            _ => false,
        });
    let (x, x_label, xs): (XAxis, &str, Vec<f64>) = if rising {
        (
            XAxis::Numbers,
            "asked req/s",
            rates.iter().map(|r| r.unwrap_or(0.0)).collect(),
        )
    } else {
        let names = s
            .stages
            .iter()
            .map(|st| match st.result.target_rate {
                Some(r) if r.is_finite() => format!("{}\n{}/s", st.name, fmt_num(r)),
                _ => st.name.clone(),
            })
            .collect();
        (
            XAxis::Slots(names),
            "stage",
            (0..s.stages.len()).map(|i| i as f64).collect(),
        )
    };
    let series =
        |name: &str, colour: &'static str, dashed: bool, f: &dyn Fn(&RunResult) -> Option<f64>| {
            Series {
                name: name.to_string(),
                colour,
                dashed,
                points: xs
                    .iter()
                    .zip(&s.stages)
                    .map(|(x, st)| (*x, f(&st.result)))
                    .collect(),
            }
        };
    // The reference first, so the measured line is drawn over it.
    let mut rate_series = Vec::new();
    if rates.iter().any(Option::is_some) {
        rate_series.push(series("asked req/s", C_ASKED, true, &|r| {
            r.target_rate.filter(|v| v.is_finite())
        }));
    }
    rate_series.push(series("achieved req/s", C_OK, false, &|r| {
        Some(r.achieved_rate())
    }));
    let chart = |title: &str, y_label: &str, series: Vec<Series>| LineChart {
        title: title.to_string(),
        x: match &x {
            XAxis::Numbers => XAxis::Numbers,
            XAxis::Slots(n) => XAxis::Slots(n.clone()),
        },
        x_label: x_label.to_string(),
        y_label: y_label.to_string(),
        log_y: false,
        y_extent: None,
        x_extent: None,
        series,
        marks: Vec::new(),
        width: 420.0,
        height: 270.0,
    };
    o.write_str("<div class=\"charts small\">")?;
    line_chart(o, &chart("Requests/s vs load", "req/s", rate_series))?;
    line_chart(
        o,
        &chart(
            "Output tokens/s vs load",
            "tok/s",
            vec![series("output tok/s", C_TOK, false, &|r| {
                Some(r.output_tokens_per_s())
            })],
        ),
    )?;
    line_chart(
        o,
        &chart(
            "TTFT p90 vs load",
            "ms",
            vec![series("TTFT p90", C_TTFT, false, &|r| {
                let h = &r.total.latency.ttft;
                (h.count() > 0).then(|| h.summary().p90_us as f64 / 1000.0)
            })],
        ),
    )?;
    o.write_str("</div>\n")
}

/// Each endpoint's share of a group map, as `name 50.0%` lines.
fn shares(by_endpoint: &BTreeMap<String, Group>) -> String {
    let total: u64 = by_endpoint.values().map(|g| g.counts.requests).sum();
    by_endpoint
        .iter()
        .map(|(e, g)| format!("{} {}%", esc(e), num(pct(g.counts.requests, total), 1)))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// The routing overhead table (every arm against `direct`) and a chart of the TTFT each arm adds.
fn routing(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    if s.arms.is_empty() {
        return Ok(());
    }
    o.write_str("<h3>Routing overhead vs direct</h3>\n<div class=\"scroll\"><table class=\"wrap\"><thead><tr><th rowspan=\"2\">arm / URL</th><th rowspan=\"2\" class=\"n\">req/s</th><th colspan=\"3\" style=\"text-align:center\">TTFT ms</th><th colspan=\"3\" style=\"text-align:center\">TTFT added ms</th><th colspan=\"3\" style=\"text-align:center\">e2e added ms</th><th rowspan=\"2\" class=\"n\">throughput vs direct</th><th rowspan=\"2\" class=\"n\">router CPU s (per 1k req)</th><th rowspan=\"2\" class=\"n\">router peak RSS MB</th><th rowspan=\"2\" class=\"n\">prefix hit</th><th rowspan=\"2\" class=\"n\">routing accuracy</th><th rowspan=\"2\">endpoint share</th></tr><tr>")?;
    for _ in 0..3 {
        o.write_str("<th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th>")?;
    }
    o.write_str("</tr></thead><tbody>\n")?;
    let added = |v: Option<[i64; 3]>| match v {
        Some(a) => a
            .iter()
            .map(|x| format!("<td class=\"n\">{}</td>", ms_signed(*x)))
            .collect::<String>(),
        None => "<td class=\"n\">—</td>".repeat(3),
    };
    let opt = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |x| num(x, d));
    for a in &s.arms {
        let t = a.result.total.latency.ttft.summary();
        writeln!(
            o,
            "<tr><td><strong>{}</strong><br><code class=\"url\">{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}{}<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td><td class=\"n\">{}%</td><td>{}</td></tr>",
            esc(&a.name),
            esc(&a.url).replace(',', ",<br>"),
            num(a.result.achieved_rate(), 2),
            ms(t.p50_us),
            ms(t.p95_us),
            ms(t.p99_us),
            added(a.ttft_added_us),
            added(a.e2e_added_us),
            a.throughput_change_pct
                .filter(|p| p.is_finite())
                .map_or("—".to_string(), |p| format!("{p:+.1}%")),
            match (
                a.router_cpu_s.filter(|c| c.is_finite()),
                a.router_cpu_per_1000
            ) {
                (Some(total), per) => format!("{} ({})", num(total, 2), opt(per, 3)),
                (None, _) => "—".to_string(),
            },
            opt(a.router_peak_rss_mb.filter(|m| m.is_finite()), 1),
            num(a.prefix_hit_rate * 100.0, 1),
            num(a.routing_accuracy * 100.0, 2),
            shares(&a.result.by_endpoint)
        )?;
    }
    o.write_str("</tbody></table></div>\n")?;
    let with: Vec<(&str, [i64; 3])> = s
        .arms
        .iter()
        .filter_map(|a| a.ttft_added_us.map(|v| (a.name.as_str(), v)))
        .collect();
    if with.is_empty() {
        return o.write_str(
            "<p class=\"note\">No direct arm: nothing to measure the overhead against.</p>\n",
        );
    }
    let series = ["p50", "p95", "p99"]
        .iter()
        .enumerate()
        .map(|(k, p)| Bars {
            name: format!("TTFT added {p}"),
            colour: C_TTFT_P[k],
            values: with.iter().map(|(_, v)| v[k] as f64 / 1000.0).collect(),
        })
        .collect();
    o.write_str("<div class=\"charts\">")?;
    bar_chart(
        o,
        &BarChart {
            title: "TTFT added over direct, per arm".into(),
            categories: with.iter().map(|(n, _)| n.to_string()).collect(),
            series,
            value_label: "ms added".into(),
            horizontal: false,
            bar_text: None,
            width: 560.0,
            height: 300.0,
        },
    )?;
    o.write_str("</div>\n")
}

/// Most endpoints drawn one by one; the rest are summed into one bar.
const MAX_ENDPOINT_BARS: usize = 20;

/// How requests spread over the endpoints that served them: one bar each, with the share.
fn endpoint_chart(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let by = &s.total.by_endpoint;
    if by.is_empty() {
        return Ok(());
    }
    let total: u64 = by.values().map(|g| g.counts.requests).sum();
    let mut rows: Vec<(String, u64)> = by
        .iter()
        .map(|(e, g)| (e.clone(), g.counts.requests))
        .collect();
    if rows.len() > MAX_ENDPOINT_BARS {
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        let rest: u64 = rows[MAX_ENDPOINT_BARS - 1..].iter().map(|r| r.1).sum();
        let others = rows.len() - (MAX_ENDPOINT_BARS - 1);
        rows.truncate(MAX_ENDPOINT_BARS - 1);
        rows.push((format!("{others} others"), rest));
    }
    let text = rows
        .iter()
        .map(|(_, n)| format!("{} ({}%)", count(*n), num(pct(*n, total), 1)))
        .collect();
    bar_chart(
        o,
        &BarChart {
            title: "Share of requests per endpoint".into(),
            categories: rows.iter().map(|r| r.0.clone()).collect(),
            series: vec![Bars {
                name: "requests".into(),
                colour: C_OK,
                values: rows.iter().map(|r| r.1 as f64).collect(),
            }],
            value_label: "requests".into(),
            horizontal: true,
            bar_text: Some(vec![text]),
            width: 560.0,
            height: 70.0 + 26.0 * rows.len() as f64,
        },
    )
}

/// Per model asked for: requests, ok, errors, TTFT p50/p99, e2e p99, misrouted.
fn models(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let t = &s.total;
    if t.by_model.is_empty() {
        return Ok(());
    }
    o.write_str("<h3>Per model</h3>\n<div class=\"scroll\"><table><thead><tr><th>model</th><th class=\"n\">requests</th><th class=\"n\">ok</th><th class=\"n\">errors</th><th class=\"n\">TTFT p50 ms</th><th class=\"n\">TTFT p99 ms</th><th class=\"n\">e2e p99 ms</th><th class=\"n\">output tok/s</th><th class=\"n\">misrouted</th></tr></thead><tbody>\n")?;
    for (m, g) in &t.by_model {
        let mis = g
            .counts
            .errors
            .get("misrouted/gateway")
            .copied()
            .unwrap_or(0);
        let (ts, es) = (g.latency.ttft.summary(), g.latency.e2e.summary());
        writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(m),
            count(g.counts.requests),
            count(g.counts.ok),
            count(g.counts.failed()),
            ms(ts.p50_us),
            ms(ts.p99_us),
            ms(es.p99_us),
            num(t.per_second(g.counts.output_tokens), 0),
            count(mis)
        )?;
    }
    o.write_str("</tbody></table></div>\n")?;
    if t.misrouted > 0 {
        writeln!(
            o,
            "<p class=\"bad\">{} answer(s) came from another model than the one asked for.</p>",
            count(t.misrouted)
        )?;
    }
    Ok(())
}

/// Failed requests by class (`kind/side`), most first, with the side that failed.
fn errors(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    o.write_str("<h3>Errors by class</h3>\n")?;
    let c = &s.total.total.counts;
    if c.errors.is_empty() {
        return o.write_str("<p class=\"note\">No failed requests.</p>\n");
    }
    let mut rows: Vec<(&String, &u64)> = c.errors.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    o.write_str("<table><thead><tr><th>error (kind/side)</th><th>kind</th><th>side</th><th class=\"n\">count</th><th class=\"n\">% of requests</th></tr></thead><tbody>")?;
    for (key, n) in rows {
        let (kind, side) = key.rsplit_once('/').unwrap_or((key.as_str(), ""));
        let class = match side {
            "client" | "gateway" | "model_server" => side,
            _ => "other",
        };
        write!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td><span class=\"side {class}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}%</td></tr>",
            esc(key),
            esc(kind),
            if side.is_empty() {
                "—".to_string()
            } else {
                esc(side)
            },
            count(*n),
            num(pct(*n, c.requests), 2)
        )?;
    }
    writeln!(
        o,
        "</tbody></table>\n<p class=\"note\">side: client (inferbench itself), gateway (the router or proxy), model_server (the inference server). {} failed of {} requests.</p>",
        count(c.failed()),
        count(c.requests)
    )
}

/// The client's own health: did the load generator keep up?
fn client(o: &mut String, s: &ScenarioReport) -> fmt::Result {
    let c = &s.total.client;
    let lag = c.dispatch_lag.summary();
    writeln!(
        o,
        "<h3>Client health</h3>\n<div class=\"scroll\"><table><thead><tr><th class=\"n\">dispatch lag p50 ms</th><th class=\"n\">dispatch lag p99 ms</th><th class=\"n\">late</th><th class=\"n\">dropped</th><th class=\"n\">peak in flight</th><th class=\"n\">CPU s per 1,000 requests</th><th class=\"n\">retries</th><th class=\"n\">reconnects</th><th class=\"n\">interrupted</th><th class=\"n\">sent</th><th class=\"n\">request-log lines dropped</th></tr></thead><tbody><tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></tbody></table></div>",
        ms(lag.p50_us),
        ms(lag.p99_us),
        count(c.late),
        count(c.dropped),
        count(c.peak_in_flight),
        num(c.cpu_s_per_1000(), 3),
        count(c.retries),
        count(c.reconnects),
        count(c.interrupted),
        count(c.sent),
        count(c.log_dropped)
    )?;
    match cells::log_problem(&s.total) {
        Some(p) => writeln!(
            o,
            "<div class=\"warn\"><strong>⚠ {}</strong></div>",
            esc(&p)
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::report::{
        ArmReport, BreakingPoint, Check, ScenarioReport, SloReport, StageReport,
    };
    use inferbench_results::run::{Group, RunResult, SloLimits};

    /// `n` successful requests with TTFT from `ttft_us` in 100 µs steps, two models, two
    /// endpoints, some errors and a 10-bucket timeline.
    fn result(n: u64, ttft_us: u64, rate: Option<f64>) -> RunResult {
        let mut r = RunResult::empty("http://127.0.0.1:8000", "rate 10/s");
        r.started_unix_s = 1_700_000_000;
        r.duration_s = 10.0;
        r.target_rate = rate;
        let mut g = Group::default();
        for i in 0..n {
            g.latency.ttft.record(ttft_us + i * 100);
            g.latency.itl.record(2_000 + i * 10);
            g.latency.tpot.record(2_500 + i * 10);
            g.latency.e2e.record(4 * ttft_us + i * 300);
        }
        g.counts.requests = n + 4;
        g.counts.ok = n;
        g.counts.output_tokens = n * 64;
        g.counts.errors.insert("http_503/model_server".into(), 3);
        g.counts.errors.insert("timeout/client".into(), 1);
        let mut half = g.clone();
        half.counts.requests /= 2;
        r.by_model.insert("mock-model".into(), g.clone());
        r.by_model
            .insert("mock-lora <adapter>".into(), half.clone());
        r.by_endpoint
            .insert("http://10.0.0.1:8000".into(), half.clone());
        r.by_endpoint.insert("http://10.0.0.2:8000".into(), half);
        r.total = g;
        for s in 0..10 {
            let b = r.timeline.bucket_at(s as f64 + 0.5);
            b.requests = n / 10;
            b.ok = n / 10;
            b.errors = u64::from(s == 3);
            b.output_tokens = n / 10 * 64;
            for i in 0..5 {
                b.ttft.record(ttft_us + s * 500 + i * 100);
                b.e2e.record(4 * ttft_us + s * 900);
            }
        }
        r.client.sent = n + 4;
        r.client.cpu_seconds = 0.25;
        r.client.peak_in_flight = 7;
        r.client.dispatch_lag.record(120);
        r
    }

    /// A scenario with two stages, arms, an SLO, thresholds, a breaking point and warnings.
    fn full() -> ScenarioReport {
        let mut total = result(100, 10_000, None);
        total
            .warnings
            .push("<script>alert(1)</script> client could not keep up".into());
        let arm = |name: &str, added: Option<[i64; 3]>| ArmReport {
            name: name.into(),
            url: format!("http://127.0.0.1:9000/{name}?a=1&b=2"),
            result: result(50, 9_000, Some(40.0)),
            router_cpu_s: added.map(|_| 0.5),
            router_cpu_per_1000: added.map(|_| 0.01),
            router_peak_rss_mb: added.map(|_| 14.5),
            ttft_added_us: added,
            e2e_added_us: added,
            throughput_change_pct: added.map(|_| -1.5),
            prefix_hit_rate: 0.25,
            routing_accuracy: 1.0,
        };
        let check = |rule: &str, passed| Check {
            rule: rule.into(),
            measured: "12.3 ms".into(),
            passed,
        };
        ScenarioReport {
            name: "chat <steady> & co".into(),
            description: Some("Two stages & three arms.".into()),
            target: "embedded".into(),
            url: "http://127.0.0.1:8000".into(),
            repeat: 1,
            kind: "sweep".into(),
            stages: vec![
                StageReport {
                    name: "rate 10/s".into(),
                    result: result(40, 8_000, Some(10.0)),
                },
                StageReport {
                    name: "rate 20/s".into(),
                    result: result(60, 12_000, Some(20.0)),
                },
            ],
            total,
            slo: Some(SloReport {
                percentile: 95.0,
                limits: SloLimits {
                    ttft_us: Some(500_000),
                    ..Default::default()
                },
                checks: vec![check("ttft.p95 < 500ms", true)],
                goodput_rps: 9.5,
                good_fraction: 0.95,
                passed: true,
            }),
            thresholds: vec![
                check("error_rate < 1%", false),
                check("ttft.p95 < 500ms", true),
            ],
            breaking_point: Some(BreakingPoint {
                last_passing_rate: Some(10.0),
                breaking_rate: Some(20.0),
                failed: vec![check("error_rate < 1%", false)],
            }),
            arms: vec![
                arm("direct", None),
                arm("proxy-rr", Some([-50, 120, 400])),
                arm("epp", Some([350, 800, 1_500])),
            ],
            passed: false,
        }
    }

    /// A scenario that recorded nothing.
    fn empty() -> ScenarioReport {
        ScenarioReport {
            name: "empty <none>".into(),
            description: None,
            target: "t".into(),
            url: "http://x".into(),
            repeat: 2,
            kind: "rate".into(),
            stages: Vec::new(),
            total: RunResult::empty("http://x", "rate 1/s"),
            slo: None,
            thresholds: Vec::new(),
            breaking_point: None,
            arms: Vec::new(),
            passed: true,
        }
    }

    fn report(scenarios: Vec<ScenarioReport>) -> Report {
        Report {
            schema_version: 2,
            tool_version: "0.1.0".into(),
            started_unix_s: 1_700_000_000,
            config: Some("suite <a&b>.yaml".into()),
            partial: false,
            scenarios,
        }
    }

    /// No `NaN`, and every `inf` is part of a word (inferbench), never a number.
    fn assert_finite(html: &str) {
        assert!(!html.contains("NaN"), "NaN in the page");
        for (i, _) in html.match_indices("inf") {
            let next = html[i + 3..].chars().next();
            assert!(
                next.is_some_and(|c| c.is_ascii_alphabetic()),
                "`inf` at {i}: {}",
                &html[i.saturating_sub(20)..(i + 10).min(html.len())]
            );
        }
    }

    #[test]
    fn renders_every_section_escaped_and_finite() {
        let r = report(vec![full(), empty()]);
        let html = render(&r);
        // Names escaped, never raw.
        assert!(html.contains("chat &lt;steady&gt; &amp; co"));
        assert!(html.contains("empty &lt;none&gt;"));
        assert!(!html.contains("<steady>") && !html.contains("<none>"));
        assert!(html.contains("mock-lora &lt;adapter&gt;"));
        assert!(html.contains("suite &lt;a&amp;b&gt;.yaml"));
        assert!(html.contains("?a=1&amp;b=2"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script"));
        // Charts: percentiles (1 + 2 stages), over time (2), vs load (3), endpoints (1),
        // routing (1); the empty scenario draws none.
        assert_eq!(html.matches("<svg").count(), 10);
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 10);
        assert_eq!(html.matches("</svg>").count(), 10);
        // A known p99: TTFT of 10.0 … 19.9 ms → p99 19.8 ms.
        let p99 = r.scenarios[0].total.total.latency.ttft.summary().p99_us;
        assert_eq!(ms(p99), "19.8");
        assert!(html.contains("<td class=\"n\">19.8</td>"));
        // Sections and figures.
        for needle in [
            "Latency percentiles, all requests",
            "Latency percentiles by stage",
            "Latency over time",
            "Throughput over time",
            "Throughput vs load",
            "Routing overhead vs direct",
            "Share of requests per endpoint",
            "Per model",
            "Errors by class",
            "Client health",
            "Breaking point:</strong> 20 req/s (last passing rate: 10 req/s)",
            "goodput 9.50 req/s (95.0% of requests met every limit)",
            "<span class=\"side model_server\">model_server</span>",
            "<span class=\"side client\">client</span>",
            "2023-11-14 22:13:20 UTC",
            "+1.50",
            "-0.05",
            "50.0%",
            "(repeat 2)",
            "No successful requests",
            "✗ fail",
            "✓ pass",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        // Every chart has a title.
        assert_eq!(
            html.matches("<svg").count(),
            html.matches("role=\"img\"><title>").count()
        );
        assert_finite(&html);
        // Anchors link to sections that exist.
        assert!(
            html.contains("href=\"#s1-chat-steady-co\"")
                && html.contains("id=\"s1-chat-steady-co\"")
        );
        assert!(html.contains("href=\"#s2-empty-none\"") && html.contains("id=\"s2-empty-none\""));
    }

    #[test]
    fn verdict_interrupted_requests_and_the_log_are_shown() {
        let mut s = full();
        s.total.total.counts.interrupted = 5;
        s.total.client.reconnects = 3;
        s.total.client.interrupted = 5;
        s.total.client.log_dropped = 7;
        s.total.client.log_error = Some("cannot write the request log <x>: disk full".into());
        let html = render(&report(vec![s, empty()]));
        assert!(html.contains(
            "<strong>Verdict:</strong> FAIL: scenario chat &lt;steady&gt; &amp; co: error_rate &lt; 1% failed (measured 12.3 ms)"
        ));
        // 100 ok + 4 failed + 5 interrupted; 104 sent: none left for warm-up.
        assert!(html.contains("Requests: sent 109 = ok 100 + failed 4 + interrupted 5</p>"));
        assert!(html.contains("<th class=\"n\">reconnects</th>"));
        assert!(html.contains(
            "<td class=\"n\">3</td><td class=\"n\">5</td><td class=\"n\">104</td><td class=\"n\">7</td>"
        ));
        assert!(html.contains(
            "<div class=\"warn\"><strong>⚠ the request log is incomplete: 7 lines not written; cannot write the request log &lt;x&gt;: disk full</strong></div>"
        ));
        assert_finite(&html);
    }

    #[test]
    fn empty_and_degenerate_reports_render() {
        let html = render(&report(Vec::new()));
        assert!(html.contains("no scenario runs"));
        assert_eq!(html.matches("<svg").count(), 0);
        assert_finite(&html);

        // Stages but nothing recorded, zero durations, an old report without a timeline,
        // infinite and NaN values where floats are free.
        let mut s = full();
        for st in &mut s.stages {
            st.result = RunResult::empty("x", "rate");
            st.result.target_rate = Some(f64::NAN);
        }
        s.total.timeline.buckets.clear();
        s.total.duration_s = 0.0;
        s.arms[1].throughput_change_pct = Some(f64::INFINITY);
        s.arms[2].router_cpu_s = Some(f64::NAN);
        if let Some(slo) = &mut s.slo {
            slo.goodput_rps = f64::NAN;
        }
        let html = render(&report(vec![s, empty()]));
        assert!(html.contains("No timeline in this report"));
        assert_finite(&html);
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    }

    #[test]
    fn helpers() {
        assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(utc(0), "unknown");
        assert_eq!(nice_ticks(0.0, 97.0, 5), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(nice_ticks(0.0, 0.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(
            nice_ticks(-3.0, 7.0, 5),
            vec![-5.0, -2.5, 0.0, 2.5, 5.0, 7.5]
        );
        let t = nice_ticks(f64::NAN, f64::INFINITY, 5);
        assert!(t.len() >= 2 && t.iter().all(|v| v.is_finite()));
        assert_eq!(
            log_ticks(1.0, 100.0),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(log_ticks(0.1, 1000.0), vec![0.1, 1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(fmt_num(0.30000000000000004), "0.3");
        assert_eq!(fmt_num(25_000.0), "25000");
        assert_eq!(fmt_num(250_000.0), "250k");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_num(f64::NAN), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(ms(19_807), "19.8");
        assert_eq!(ms(450), "0.45");
        assert_eq!(anchor(0, "A b/c"), "s1-a-b-c");
        let a = Axis::log(0.5, 80.0);
        assert_eq!((a.lo, a.hi), (0.1, 100.0));
        assert!((a.frac(10.0) - 2.0 / 3.0).abs() < 1e-9);
    }
}
