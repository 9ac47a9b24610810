//! The charts of a scenario run on `report.html`: latency percentiles (all requests and per
//! stage), latency and throughput over time, throughput vs load, the share per endpoint and the
//! TTFT each routing arm adds — each built from the results as a [`LineChart`] or [`BarChart`].

use std::fmt::Write as _;

use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::{Latencies, RunResult, TimeBucket};
use inferbench_results::suite::ScenarioReport;

use super::svg::{BarChart, Bars, LineChart, Series, XAxis, bar_chart, extent, fin, line_chart};
use crate::fmt;
use crate::section::build;

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
/// One colour per resource source in the resource charts, in order.
const C_SOURCES: [&str; 6] = [
    "#0f766e", "#5eead4", "#7c3aed", "#c4b5fd", "#b45309", "#fcd34d",
];
/// p50 / p95 / p99 shades of the TTFT colour, for grouped bars.
const C_TTFT_P: [&str; 3] = ["#93c5fd", "#3b82f6", "#1e3a8a"];

/// The four latency metrics of tables and percentile charts: label and colour (the labels are
/// the headline's column groups, [`build::METRICS`]).
pub(super) const METRICS: [(&str, &str); 4] = [
    (build::METRICS[0], C_TTFT),
    (build::METRICS[1], C_ITL),
    (build::METRICS[2], C_TPOT),
    (build::METRICS[3], C_E2E),
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

/// `n` per second over `secs` (0 when no time passed).
fn per_s(n: u64, secs: f64) -> f64 {
    if secs.is_finite() && secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
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

/// The five percentiles as x-axis slots.
fn percentile_slots() -> XAxis {
    XAxis::Slots(PERCENTILES.iter().map(|p| p.to_string()).collect())
}

/// The percentile chart of all requests (log scale: TTFT and ITL differ a hundredfold).
pub(super) fn percentile_chart(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
pub(super) fn stage_percentiles(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
pub(super) fn no_timeline(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
        x_label: format!("seconds after warm-up ({} s buckets)", fmt::short(b)),
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
pub(super) fn latency_over_time(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
pub(super) fn throughput_over_time(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
pub(super) fn is_arms(s: &ScenarioReport) -> bool {
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
pub(super) fn vs_load(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
                Some(r) if r.is_finite() => format!("{}\n{}/s", st.name, fmt::short(r)),
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

/// Most endpoints drawn one by one; the rest are summed into one bar.
const MAX_ENDPOINT_BARS: usize = 20;

/// How requests spread over the endpoints that served them: one bar each, with the share.
pub(super) fn endpoint_chart(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
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
        .map(|(_, n)| format!("{} ({})", fmt::count(*n), fmt::pct(fmt::share(*n, total))))
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
            stacked: false,
            width: 560.0,
            height: 70.0 + 26.0 * rows.len() as f64,
        },
    )
}

/// A chart of the TTFT each arm adds over direct at p50, p95 and p99; nothing without a direct
/// arm to measure against (the routing section's note says so).
pub(super) fn added_chart(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
    let with: Vec<(&str, [i64; 3])> = s
        .arms
        .iter()
        .filter_map(|a| a.ttft_added_us.map(|v| (a.name.as_str(), v)))
        .collect();
    if with.is_empty() {
        return Ok(());
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
            // The table's figures, as the table writes them.
            bar_text: Some(
                (0..3)
                    .map(|k| with.iter().map(|(_, v)| fmt::ms_signed(v[k])).collect())
                    .collect(),
            ),
            stacked: false,
            width: 560.0,
            height: 300.0,
        },
    )?;
    o.write_str("</div>\n")
}

/// One resource source over the parts of a scenario: its name and its value per part (`None`
/// where it has no figure).
type Source = (String, Vec<Option<f64>>);

/// The resource charts: CPU seconds per 1,000 requests and peak memory per part (all, then each
/// arm or stage), one bar per source — each watched process (/proc) and each Prometheus series —
/// so the two sources can be read side by side. Nothing without resource figures.
pub(super) fn resource_charts(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
    let parts = build::resource_parts(s);
    let mut cpu: Vec<Source> = Vec::new();
    let mut mem: Vec<Source> = Vec::new();
    let add = |list: &mut Vec<Source>, name: String, i: usize, v: Option<f64>| {
        let Some(v) = v.filter(|x| x.is_finite()) else {
            return;
        };
        let at = match list.iter().position(|x| x.0 == name) {
            Some(k) => k,
            None => {
                list.push((name, vec![None; parts.len()]));
                list.len() - 1
            }
        };
        list[at].1[i] = Some(v);
    };
    for (i, (_, r)) in parts.iter().enumerate() {
        let n = r.total.counts.requests;
        for p in &r.processes {
            let name = format!("{} (/proc)", p.name);
            add(&mut cpu, name.clone(), i, p.cpu_per_1000(n));
            add(&mut mem, name, i, Some(p.peak_rss_mb));
        }
        for p in &r.prometheus {
            let name = format!("{} {{{}}} (Prometheus)", p.metric, p.labels);
            let per_1000 = p.increase.filter(|_| n > 0).map(|x| x * 1000.0 / n as f64);
            add(&mut cpu, name.clone(), i, per_1000);
            if p.metric.contains("mem") {
                add(&mut mem, name, i, p.max.map(|b| b / 1_048_576.0));
            }
        }
    }
    if cpu.is_empty() && mem.is_empty() {
        return Ok(());
    }
    let categories: Vec<String> = parts.iter().map(|(n, _)| n.to_string()).collect();
    o.write_str("<div class=\"charts\">")?;
    for (title, label, list, text) in [
        (
            "CPU per 1,000 requests",
            "CPU s per 1,000 requests",
            &cpu,
            fmt::short as fn(f64) -> String,
        ),
        (
            "Peak memory",
            "MB",
            &mem,
            (|x| format!("{x:.1}")) as fn(f64) -> String,
        ),
    ] {
        if list.is_empty() {
            continue;
        }
        let shown = &list[..list.len().min(C_SOURCES.len())];
        bar_chart(
            o,
            &BarChart {
                title: title.into(),
                categories: categories.clone(),
                series: shown
                    .iter()
                    .zip(C_SOURCES)
                    .map(|((name, v), colour)| Bars {
                        name: name.clone(),
                        colour,
                        values: v.iter().map(|x| x.unwrap_or(0.0)).collect(),
                    })
                    .collect(),
                value_label: label.into(),
                horizontal: false,
                bar_text: Some(
                    shown
                        .iter()
                        .map(|(_, v)| v.iter().map(|x| x.map_or("—".into(), text)).collect())
                        .collect(),
                ),
                stacked: false,
                width: 560.0,
                height: 320.0,
            },
        )?;
    }
    o.write_str("</div>\n")
}

/// Where a request's time went, per part: one stacked bar each — network and gateway, queue,
/// prefill (these add up to the client's TTFT at the mean), then the servers' decode after the
/// first token. Nothing without server metrics.
pub(super) fn decomposition_chart(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
    let parts: Vec<(&str, &inferbench_results::server::Decomposition)> = build::resource_parts(s)
        .into_iter()
        .filter_map(|(n, r)| r.decomposition.as_ref().map(|d| (n, d)))
        .collect();
    if parts.is_empty() {
        return Ok(());
    }
    let pick = |f: &dyn Fn(&inferbench_results::server::Decomposition) -> Option<f64>| {
        parts
            .iter()
            .map(|(_, d)| f(d).unwrap_or(0.0))
            .collect::<Vec<f64>>()
    };
    let series = vec![
        Bars {
            name: "network + gateway".into(),
            colour: C_ASKED,
            values: pick(&|d| d.network_gateway.map(|p| p.mean_ms)),
        },
        Bars {
            name: "queue".into(),
            colour: C_E2E,
            values: pick(&|d| d.queue.map(|p| p.mean_ms)),
        },
        Bars {
            name: "prefill".into(),
            colour: C_TTFT,
            values: pick(&|d| d.prefill.map(|p| p.mean_ms)),
        },
        Bars {
            name: "other server".into(),
            colour: C_TPOT,
            values: pick(&|d| d.server_other.map(|p| p.mean_ms)),
        },
        Bars {
            name: "decode".into(),
            colour: C_ITL,
            values: pick(&|d| d.decode_mean_ms()),
        },
    ];
    let text = series
        .iter()
        .map(|b| {
            b.values
                .iter()
                .map(|v| format!("{} ms", fmt::ms_value(*v)))
                .collect()
        })
        .collect();
    o.write_str("<div class=\"charts\">")?;
    bar_chart(
        o,
        &BarChart {
            title: "Where the time of a request went (mean): to the first token, then decode"
                .into(),
            categories: parts.iter().map(|(n, _)| n.to_string()).collect(),
            series,
            value_label: "ms".into(),
            horizontal: true,
            bar_text: Some(text),
            stacked: true,
            width: 560.0,
            height: 90.0 + 30.0 * parts.len() as f64,
        },
    )?;
    o.write_str("</div>\n")
}

/// The servers over time: requests running and waiting, and KV-cache use, one point per scrape
/// (x in seconds after warm-up, as the other timelines). Nothing without a series.
pub(super) fn servers_over_time(o: &mut String, s: &ScenarioReport) -> std::fmt::Result {
    let Some(v) = s.total.server.as_ref().filter(|v| v.series.len() >= 2) else {
        return Ok(());
    };
    let origin = s
        .total
        .windows
        .first()
        .map(|w| w[0])
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(v.series[0].unix_s);
    let end = v
        .series
        .last()
        .map_or(0.0, |p| fin(p.unix_s - origin).max(0.0));
    let line = |name: &str, colour: &'static str, dashed: bool, role: &str, scale: f64| Series {
        name: name.to_string(),
        colour,
        dashed,
        points: v
            .series
            .iter()
            .map(|p| (p.unix_s - origin, p.get(role).map(|x| x * scale)))
            .filter(|(x, _)| *x >= 0.0)
            .collect(),
    };
    let chart = |title: &str, y_label: &str, series: Vec<Series>| LineChart {
        title: title.into(),
        x: XAxis::Numbers,
        x_label: "seconds after warm-up (one point per scrape)".into(),
        y_label: y_label.into(),
        log_y: false,
        y_extent: None,
        // The run, and the drain after it (the servers finish what was sent).
        x_extent: Some((0.0, fin(s.total.duration_s).max(end))),
        series,
        marks: stage_marks(s),
        width: 560.0,
        height: 300.0,
    };
    let has = |role: &str| v.series.iter().any(|p| p.get(role).is_some());
    o.write_str("<div class=\"charts\">")?;
    if has("running") || has("waiting") {
        let series = vec![
            line("running", C_OK, false, "running", 1.0),
            line("waiting", C_ERR, false, "waiting", 1.0),
        ];
        line_chart(
            o,
            &chart("The servers' batch over time", "requests", series),
        )?;
    }
    if has("kv_usage") {
        let series = vec![line("KV cache", C_TOK, false, "kv_usage", 100.0)];
        line_chart(o, &chart("KV-cache use over time", "%", series))?;
    }
    o.write_str("</div>\n")
}
