//! Every section of a report built once from the results, for all three renderings: which
//! figures a section shows, in which order, under which heading. The wording of the few
//! sentences the renderings share (the sent breakdown, the request-log problem, the warnings)
//! is here too.

use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::{MISROUTED, RunResult};
use inferbench_results::suite::{Check, LOG_INCOMPLETE, Report, ScenarioReport};

use super::{Cell, Column, Layout, Section};
use crate::fmt;

/// The three percentiles of a latency group: p50, p95, p99, under `group` in ms.
fn p50_95_99(group: &'static str) -> [Column; 3] {
    ["p50", "p95", "p99"].map(|p| Column::new(p).group(group).unit("ms"))
}

/// p50, p95, p99 of a histogram as [`Cell::Ms`].
fn ms3(h: &LatencyHistogram) -> [Cell; 3] {
    let s = h.summary();
    [Cell::Ms(s.p50_us), Cell::Ms(s.p95_us), Cell::Ms(s.p99_us)]
}

/// The unit of a stress test's levels: requests in flight (concurrency steps) or req/s.
fn stress_unit(s: &ScenarioReport) -> &'static str {
    if s.stages
        .first()
        .is_some_and(|st| st.name.starts_with("concurrency"))
    {
        " in flight"
    } else {
        " req/s"
    }
}

/// The id of scenario run `i` (0-based) on the HTML page: its position and a slug of its name
/// (names repeat).
pub(crate) fn scenario_anchor(i: usize, name: &str) -> String {
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

/// ` (repeat N)` after a name when the scenario ran more than once.
pub(crate) fn repeat_note(s: &ScenarioReport) -> String {
    if s.repeat > 1 {
        format!(" (repeat {})", s.repeat)
    } else {
        String::new()
    }
}

/// `sent N = ok + failed + interrupted (+ warm-up)` when requests were interrupted, else none.
/// The parts always add up to N; warm-up is what `client.sent` counts beyond them.
pub(crate) fn sent_breakdown(r: &RunResult) -> Option<String> {
    let c = &r.total.counts;
    if c.interrupted == 0 {
        return None;
    }
    let (ok, failed) = (c.ok, c.failed());
    let counted = ok + failed + c.interrupted;
    let warmup = r.client.sent.saturating_sub(counted);
    Some(format!(
        "sent {} = ok {} + failed {} + interrupted {}{}",
        fmt::count(counted + warmup),
        fmt::count(ok),
        fmt::count(failed),
        fmt::count(c.interrupted),
        if warmup > 0 {
            format!(" + warm-up {}", fmt::count(warmup))
        } else {
            String::new()
        }
    ))
}

/// What went wrong with the request log, or none when it is complete.
pub(crate) fn log_problem(r: &RunResult) -> Option<String> {
    let c = &r.client;
    match (&c.log_error, c.log_dropped) {
        (None, 0) => None,
        (None, n) => Some(format!(
            "{LOG_INCOMPLETE}: {n} lines dropped (the disk did not keep up)"
        )),
        (Some(e), n) => Some(format!("{LOG_INCOMPLETE}: {n} lines not written; {e}")),
    }
}

/// A scenario run's warnings: the request-log problem (said loudly, once) and every other
/// warning of the run, its stages and arms, each once, in order.
pub(crate) struct Warnings<'a> {
    /// What went wrong with the request log ([`log_problem`]).
    pub log: Option<String>,
    /// Every other warning (the log's own, when `log` says it, left out).
    pub others: Vec<&'a str>,
}

impl Warnings<'_> {
    /// No warning at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.log.is_none() && self.others.is_empty()
    }
}

/// The warnings of a scenario run.
pub(crate) fn warnings(s: &ScenarioReport) -> Warnings<'_> {
    let log = log_problem(&s.total);
    let mut others: Vec<&str> = Vec::new();
    let all = s
        .total
        .warnings
        .iter()
        .chain(s.stages.iter().flat_map(|st| &st.result.warnings))
        .chain(s.arms.iter().flat_map(|a| &a.result.warnings));
    for w in all {
        if log.is_some() && w.starts_with(LOG_INCOMPLETE) {
            continue;
        }
        if !others.contains(&w.as_str()) {
            others.push(w);
        }
    }
    Warnings { log, others }
}

/// The summary of a report: one row per scenario run with its headline and verdict.
pub(crate) fn summary(r: &Report) -> Section {
    let mut sec = Section::table(
        "Summary",
        vec![
            Column::new("#"),
            Column::new("scenario"),
            Column::new("target"),
            Column::new("kind"),
            Column::new("requests"),
            Column::new("error %"),
            Column::new("req/s"),
            Column::new("TTFT p95").unit("ms"),
            Column::new("verdict"),
        ],
    );
    for (i, s) in r.scenarios.iter().enumerate() {
        let t = &s.total;
        sec.push(vec![
            Cell::Count(i as u64 + 1),
            Cell::Link {
                text: format!("{}{}", s.name, repeat_note(s)),
                target: scenario_anchor(i, &s.name),
            },
            Cell::Text(s.target.clone()),
            Cell::Text(s.kind.clone()),
            Cell::Count(t.total.counts.requests),
            Cell::Pct(t.total.counts.error_fraction() * 100.0),
            Cell::Rate(t.achieved_rate()),
            Cell::Ms(t.total.latency.ttft.summary().p95_us),
            Cell::Verdict(s.passed),
        ]);
    }
    sec
}

/// One row of the headline table.
fn headline_row(label: &str, r: &RunResult) -> Vec<Cell> {
    let c = &r.total.counts;
    let l = &r.total.latency;
    let mut cells = vec![
        Cell::Text(label.to_string()),
        Cell::Text(r.load.clone()),
        Cell::Count(c.requests),
        Cell::Count(c.ok),
        Cell::Count(c.failed()),
        Cell::Pct(c.error_fraction() * 100.0),
        Cell::Rate(r.achieved_rate()),
        Cell::TokRate(r.output_tokens_per_s()),
    ];
    for h in [&l.ttft, &l.itl, &l.tpot, &l.e2e] {
        cells.extend(ms3(h));
    }
    cells
}

/// The latency metrics of the headline and per-stage tables, as their columns are grouped.
pub(crate) const METRICS: [&str; 4] = ["TTFT", "ITL", "TPOT", "e2e"];

/// The headline: one row per stage (when there are several) and one for all requests — counts,
/// rates and p50 / p95 / p99 of TTFT, ITL, TPOT and e2e; the sent breakdown when requests were
/// interrupted.
pub(crate) fn headline(s: &ScenarioReport) -> Section {
    let mut columns = Column::list(&[
        "stage",
        "load",
        "requests",
        "ok",
        "failed",
        "error %",
        "req/s",
        "output tok/s",
    ]);
    for m in METRICS {
        columns.extend(p50_95_99(m));
    }
    let mut sec = Section::table("Headline", columns);
    if s.stages.len() > 1 {
        for st in &s.stages {
            sec.push(headline_row(&st.name, &st.result));
        }
    }
    sec.push(headline_row("all", &s.total));
    if let Some(last) = sec.rows.last_mut() {
        last.total = true;
    }
    if let Some(line) = sent_breakdown(&s.total) {
        sec.note(format!("Requests: {line}"));
    }
    sec
}

/// Every latency of all requests at p50, p90, p95, p99, p99.9 and max, ms; the client's
/// dispatch lag last.
pub(crate) fn percentiles(s: &ScenarioReport) -> Section {
    let mut sec = Section::table(
        "Latency percentiles, ms",
        Column::list(&["metric", "p50", "p90", "p95", "p99", "p99.9", "max"]),
    );
    let r = &s.total;
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
        let m = h.summary();
        let mut cells = vec![Cell::Text(name.to_string())];
        cells.extend([m.p50_us, m.p90_us, m.p95_us, m.p99_us, m.p999_us, m.max_us].map(Cell::Ms));
        sec.push(cells);
    }
    sec
}

/// A finite float, or none.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Three differences over direct as [`Cell::MsAdded`], or three [`Cell::Missing`].
fn added(v: Option<[i64; 3]>) -> [Cell; 3] {
    match v {
        Some(a) => a.map(Cell::MsAdded),
        None => [Cell::Missing, Cell::Missing, Cell::Missing],
    }
}

/// Routing overhead: every arm against `direct` — its own rate and TTFT, the TTFT and e2e it
/// adds, throughput change, the router's CPU and memory, prefix hits, routing accuracy and how
/// it spread requests over endpoints. None without arms.
pub(crate) fn arms(s: &ScenarioReport) -> Option<Section> {
    if s.arms.is_empty() {
        return None;
    }
    let mut columns = Column::list(&["arm", "URL", "req/s"]);
    columns.extend(p50_95_99("TTFT"));
    columns.extend(p50_95_99("TTFT added"));
    columns.extend(p50_95_99("e2e added"));
    columns.extend([
        Column::new("throughput vs direct"),
        Column::new("router CPU").unit("s"),
        Column::new("router CPU").unit("s per 1k requests"),
        Column::new("router peak RSS").unit("MB"),
        Column::new("prefix hit"),
        Column::new("routing accuracy"),
        Column::new("endpoint share"),
    ]);
    let mut sec = Section::table("Routing overhead vs direct", columns);
    for a in &s.arms {
        let r = &a.result;
        let total: u64 = r.by_endpoint.values().map(|g| g.counts.requests).sum();
        let shares = r
            .by_endpoint
            .iter()
            .map(|(e, g)| format!("{e} {}", fmt::pct(fmt::share(g.counts.requests, total))))
            .collect();
        let mut cells = vec![
            Cell::Text(a.name.clone()),
            Cell::Code(a.url.clone()),
            Cell::Rate(r.achieved_rate()),
        ];
        cells.extend(ms3(&r.total.latency.ttft));
        cells.extend(added(a.ttft_added_us));
        cells.extend(added(a.e2e_added_us));
        cells.extend([
            Cell::opt(finite(a.throughput_change_pct), Cell::PctChange),
            Cell::opt(finite(a.router_cpu_s), Cell::CpuSecs),
            Cell::opt(finite(a.router_cpu_per_1000), Cell::CpuSecs),
            Cell::opt(finite(a.router_peak_rss_mb), Cell::Mb),
            Cell::Pct(a.prefix_hit_rate * 100.0),
            Cell::Pct(a.routing_accuracy * 100.0),
            Cell::Lines(shares),
        ]);
        sec.push(cells);
    }
    if s.arms.iter().all(|a| a.ttft_added_us.is_none()) {
        sec.note("No direct arm: nothing to measure the overhead against.");
    } else {
        sec.note("Added: the arm's percentile minus direct's, ms (percentiles are not paired: a small negative value is noise).");
    }
    Some(sec)
}

/// A section of checks (rule, measured, ✓ / ✗), one sentence per check in text.
fn checks(title: String, label: &'static str, checks: &[Check]) -> Section {
    let mut sec = Section::table(
        title,
        vec![
            Column::new("verdict"),
            Column::new("rule"),
            Column::new("measured").aside(),
        ],
    );
    sec.layout = Layout::Lines { label };
    for c in checks {
        sec.push(vec![
            Cell::Mark(c.passed),
            Cell::Code(c.rule.clone()),
            Cell::Text(c.measured.clone()),
        ]);
    }
    sec
}

/// Where a stress test broke and the last level that passed, with the rules that broke.
pub(crate) fn breaking_point(s: &ScenarioReport) -> Option<Section> {
    let b = s.breaking_point.as_ref()?;
    let unit = stress_unit(s);
    let level = |r: Option<f64>, none: &str| {
        finite(r).map_or(none.to_string(), |r| format!("{}{unit}", fmt::short(r)))
    };
    let mut sec = checks("Breaking point".into(), "", &b.failed);
    sec.lead = vec![Cell::Text(format!(
        "{} (last passing rate {})",
        level(b.breaking_rate, "not reached"),
        level(b.last_passing_rate, "none")
    ))];
    Some(sec)
}

/// The SLO: pass or fail, goodput, and each limit.
pub(crate) fn slo(s: &ScenarioReport) -> Option<Section> {
    let slo = s.slo.as_ref()?;
    let mut sec = checks(
        format!("SLO (p{})", fmt::short(slo.percentile)),
        "",
        &slo.checks,
    );
    sec.lead = vec![
        Cell::Verdict(slo.passed),
        Cell::Text(format!(
            "goodput {} req/s ({} of requests met every limit)",
            fmt::rate(slo.goodput_rps),
            fmt::pct(slo.good_fraction * 100.0)
        )),
    ];
    Some(sec)
}

/// The thresholds, one per rule; none when the scenario has none.
pub(crate) fn thresholds(s: &ScenarioReport) -> Option<Section> {
    (!s.thresholds.is_empty()).then(|| checks("Thresholds".into(), "threshold", &s.thresholds))
}

/// Per model asked for: requests, ok, failed, misrouted, TTFT p50 / p95 / p99, e2e p99, output
/// tok/s; and how many answers came from another model. None when no model was recorded.
pub(crate) fn models(s: &ScenarioReport) -> Option<Section> {
    let t = &s.total;
    if t.by_model.is_empty() && t.misrouted == 0 {
        return None;
    }
    let mut columns = Column::list(&["model", "requests", "ok", "failed", "misrouted"]);
    columns.extend(p50_95_99("TTFT"));
    columns.extend([
        Column::new("e2e p99").unit("ms"),
        Column::new("output tok/s"),
    ]);
    let mut sec = Section::table("Per model", columns);
    for (m, g) in &t.by_model {
        let c = &g.counts;
        let mut cells = vec![
            Cell::Text(m.clone()),
            Cell::Count(c.requests),
            Cell::Count(c.ok),
            Cell::Count(c.failed()),
            Cell::Count(c.errors.get(MISROUTED).copied().unwrap_or(0)),
        ];
        cells.extend(ms3(&g.latency.ttft));
        cells.extend([
            Cell::Ms(g.latency.e2e.summary().p99_us),
            Cell::TokRate(t.per_second(c.output_tokens)),
        ]);
        sec.push(cells);
    }
    if t.misrouted > 0 {
        let requests = t.total.counts.requests;
        sec.alarm(format!(
            "misrouted (served by another model): {} of {} ({} routing accuracy)",
            fmt::count(t.misrouted),
            fmt::count(requests),
            fmt::pct(100.0 - fmt::share(t.misrouted, requests.max(1)))
        ));
    }
    Some(sec)
}

/// Requests and share per endpoint, when more than one answered.
pub(crate) fn endpoints(s: &ScenarioReport) -> Option<Section> {
    let t = &s.total;
    if t.by_endpoint.len() < 2 {
        return None;
    }
    let mut sec = Section::table(
        "Per endpoint",
        Column::list(&["endpoint", "requests", "share"]),
    );
    let all = t.total.counts.requests;
    for (e, g) in &t.by_endpoint {
        sec.push(vec![
            Cell::Text(e.clone()),
            Cell::Count(g.counts.requests),
            Cell::Pct(fmt::share(g.counts.requests, all)),
        ]);
    }
    Some(sec)
}

/// Failed requests by class (`kind/side`), most first, with the side that failed. None when
/// none failed.
pub(crate) fn errors(s: &ScenarioReport) -> Option<Section> {
    let c = &s.total.total.counts;
    if c.errors.is_empty() {
        return None;
    }
    let mut rows: Vec<(&String, &u64)> = c.errors.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut sec = Section::table(
        "Errors by class",
        Column::list(&[
            "error (kind/side)",
            "kind",
            "side",
            "count",
            "% of requests",
        ]),
    );
    for (key, n) in rows {
        let (kind, side) = key.rsplit_once('/').unwrap_or((key.as_str(), ""));
        sec.push(vec![
            Cell::Code(key.clone()),
            Cell::Text(kind.to_string()),
            if side.is_empty() {
                Cell::Missing
            } else {
                Cell::Side(side.to_string())
            },
            Cell::Count(*n),
            Cell::Pct(fmt::share(*n, c.requests)),
        ]);
    }
    sec.note(format!(
        "side: client (inferbench itself), gateway (the router or proxy), model_server (the inference server). {} failed of {} requests.",
        fmt::count(c.failed()),
        fmt::count(c.requests)
    ));
    Some(sec)
}

/// The client's own health: did the load generator keep up?
pub(crate) fn client(s: &ScenarioReport) -> Section {
    let c = &s.total.client;
    let lag = c.dispatch_lag.summary();
    let mut sec = Section::table(
        "Client health",
        vec![
            Column::new("dispatch lag p50").unit("ms"),
            Column::new("dispatch lag p99").unit("ms"),
            Column::new("late (> 1 ms)"),
            Column::new("dropped"),
            Column::new("peak in flight"),
            Column::new("CPU").unit("s"),
            Column::new("CPU").unit("s per 1,000 requests"),
            Column::new("retries"),
            Column::new("reconnects"),
            Column::new("interrupted"),
            Column::new("sent"),
            Column::new("request-log lines dropped"),
        ],
    );
    sec.layout = Layout::Facts;
    sec.push(vec![
        Cell::Ms(lag.p50_us),
        Cell::Ms(lag.p99_us),
        Cell::Count(c.late),
        Cell::Count(c.dropped),
        Cell::Count(c.peak_in_flight),
        Cell::CpuSecs(c.cpu_seconds),
        Cell::CpuSecs(c.cpu_s_per_1000()),
        Cell::Count(c.retries),
        Cell::Count(c.reconnects),
        Cell::Count(c.interrupted),
        Cell::Count(c.sent),
        Cell::Count(c.log_dropped),
    ]);
    sec
}

/// A replayed trace: which file, what was replayed, how closely its schedule was kept, and (a
/// Mooncake trace) the prefix reuse its block ids imply beside what the servers found.
pub(crate) fn trace(s: &ScenarioReport) -> Option<Section> {
    let t = s.trace.as_ref()?;
    let mut sec = Section::table(
        "Trace replayed",
        vec![
            Column::new("file"),
            Column::new("format"),
            Column::new("requests"),
            Column::new("prompt tokens"),
            Column::new("output tokens"),
            Column::new("pace"),
            Column::new("span").unit("s"),
            Column::new("lag behind the trace p50").unit("ms"),
            Column::new("lag behind the trace p99").unit("ms"),
            Column::new("lag behind the trace max").unit("ms"),
            Column::new("late (> 1 ms)"),
            Column::new("prefix hits its block ids imply"),
            Column::new("prefix hits the servers counted"),
        ],
    );
    sec.layout = Layout::Facts;
    let pace = if t.at_trace_instants {
        format!(
            "the trace's instants × time {} ÷ rate {}",
            fmt::short(t.time_scale),
            fmt::short(t.rate_scale)
        )
    } else {
        format!("the scenario's load ({})", s.total.load)
    };
    let server_hits = s.total.server.as_ref().and_then(|v| v.prefix_hit_rate());
    sec.push(vec![
        Cell::Code(t.path.clone()),
        Cell::Text(t.format.clone()),
        Cell::Count(t.requests),
        Cell::Count(t.prompt_tokens),
        Cell::Count(t.output_tokens),
        Cell::Text(pace),
        Cell::Text(fmt::short(t.span_s)),
        Cell::opt(t.lag_p50_us, Cell::Ms),
        Cell::opt(t.lag_p99_us, Cell::Ms),
        Cell::opt(t.lag_max_us, Cell::Ms),
        Cell::Count(t.late),
        Cell::opt(t.implied_prefix_hit_rate, |r| Cell::Pct(r * 100.0)),
        Cell::opt(server_hits, |r| Cell::Pct(r * 100.0)),
    ]);
    let skipped: u64 = t.skipped.values().sum();
    if skipped > 0 {
        sec.note(format!(
            "{skipped} rows of the file were left out: {}",
            t.skipped
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Some(sec)
}

/// The parts resource figures are shown for: the whole scenario, then each arm (with arms) or
/// each stage or step (with several).
pub(crate) fn resource_parts(s: &ScenarioReport) -> Vec<(&str, &RunResult)> {
    let mut parts: Vec<(&str, &RunResult)> = vec![("all", &s.total)];
    if !s.arms.is_empty() {
        parts.extend(s.arms.iter().map(|a| (a.name.as_str(), &a.result)));
    } else if s.stages.len() > 1 {
        parts.extend(s.stages.iter().map(|st| (st.name.as_str(), &st.result)));
    }
    parts
}

/// What the watched processes (`--watch-process`) cost: per process, over the whole scenario
/// and over each stage, step or arm (with several). None when no process was watched.
pub(crate) fn processes(s: &ScenarioReport) -> Option<Section> {
    if s.total.processes.is_empty() {
        return None;
    }
    let mut sec = Section::table(
        "Watched processes",
        vec![
            Column::new("part"),
            Column::new("process"),
            Column::new("pid"),
            Column::new("CPU").unit("s"),
            Column::new("mean cores"),
            Column::new("CPU").unit("s per 1,000 requests"),
            Column::new("peak RSS").unit("MB"),
            Column::new("mean RSS").unit("MB"),
        ],
    );
    let parts = resource_parts(s);
    for (part, r) in parts {
        for p in &r.processes {
            sec.push(vec![
                Cell::Text(part.to_string()),
                Cell::Text(p.name.clone()),
                Cell::Count(u64::from(p.pid)),
                Cell::CpuSecs(p.cpu_s),
                Cell::Text(format!("{:.2}", p.mean_cores())),
                Cell::opt(p.cpu_per_1000(r.total.counts.requests), Cell::CpuSecs),
                Cell::Mb(p.peak_rss_mb),
                Cell::Mb(p.mean_rss_mb),
            ]);
        }
    }
    sec.note(
        "sampled from /proc every second (and at each window's edges); CPU over the measured window, memory over its samples",
    );
    Some(sec)
}

/// Resource series read from Prometheus (`--prometheus`): per query and series, over the whole
/// scenario and each stage, step or arm. A counter shows its increase (CPU seconds) and per
/// 1,000 requests; a gauge its mean and maximum. None without Prometheus figures.
pub(crate) fn prometheus(s: &ScenarioReport) -> Option<Section> {
    if s.total.prometheus.is_empty() {
        return None;
    }
    let mut sec = Section::table(
        "Resources from Prometheus",
        vec![
            Column::new("part"),
            Column::new("query"),
            Column::new("series"),
            Column::new("increase"),
            Column::new("increase per 1,000 requests"),
            Column::new("mean"),
            Column::new("max"),
        ],
    );
    let parts = resource_parts(s);
    let num =
        |v: Option<f64>| Cell::opt(v.filter(|x| x.is_finite()), |x| Cell::Text(fmt::short(x)));
    for (part, r) in parts {
        let n = r.total.counts.requests;
        for p in &r.prometheus {
            sec.push(vec![
                Cell::Text(part.to_string()),
                Cell::Text(p.metric.clone()),
                Cell::Code(p.labels.clone()),
                num(p.increase),
                num(p.increase.filter(|_| n > 0).map(|x| x * 1000.0 / n as f64)),
                num(p.mean),
                num(p.max),
            ]);
        }
    }
    sec.note("counters: increase over the measured window (CPU seconds for CPU counters); gauges: mean and maximum over it (bytes for memory)");
    Some(sec)
}

/// A signed figure in ms as [`fmt::ms_value`] writes it (the sign kept).
fn ms_cell(v: Option<f64>) -> Cell {
    Cell::opt(v.filter(|x| x.is_finite()), |x| {
        Cell::Text(if x < 0.0 {
            format!("-{}", fmt::ms_value(-x))
        } else {
            fmt::ms_value(x)
        })
    })
}

/// Where the client's time to first token went, per part (the whole, then each arm or stage):
/// network and gateway (the residual), the servers' queue and prefill, at the mean (exact) and
/// at p50/p90 where the servers' buckets allow. None without server metrics.
pub(crate) fn decomposition(s: &ScenarioReport) -> Option<Section> {
    s.total.decomposition.as_ref()?;
    let mut sec = Section::table(
        "Where the time to first token went",
        vec![
            Column::new("part"),
            Column::new("at"),
            Column::new("client TTFT").unit("ms"),
            Column::new("network + gateway").unit("ms"),
            Column::new("queue").unit("ms"),
            Column::new("prefill").unit("ms"),
            Column::new("other server").unit("ms"),
            Column::new("server TTFT").unit("ms"),
            Column::new("decode per token").unit("ms"),
        ],
    );
    for (part, r) in resource_parts(s) {
        let Some(d) = &r.decomposition else { continue };
        type Pick = fn(&inferbench_results::server::Part) -> Option<f64>;
        let rows: [(&str, Pick); 3] = [
            ("mean", |p| Some(p.mean_ms)),
            ("p50", |p| p.p50_ms),
            ("p90", |p| p.p90_ms),
        ];
        for (at, pick) in rows {
            sec.push(vec![
                Cell::Text(part.to_string()),
                Cell::Text(at.to_string()),
                ms_cell(pick(&d.client_ttft)),
                ms_cell(d.network_gateway.as_ref().and_then(pick)),
                ms_cell(d.queue.as_ref().and_then(pick)),
                ms_cell(d.prefill.as_ref().and_then(pick)),
                ms_cell(d.server_other.as_ref().and_then(pick)),
                ms_cell(d.server_ttft.as_ref().and_then(pick)),
                ms_cell(d.decode_per_token_ms.filter(|_| at == "mean")),
            ]);
        }
    }
    let timed = s
        .total
        .decomposition
        .as_ref()
        .and_then(|d| d.timed_requests);
    match timed {
        Some(n) => sec.note(format!(
            "per request, from the servers' own timing in {} answers: each part at each percentile is exact, and network + gateway is each request's client TTFT minus its server queue and prefill",
            fmt::count(n)
        )),
        None => sec.note("client TTFT = network + gateway + queue + prefill + other server time, exactly at the mean (the servers' sums / counts); at p50 and p90 each part is its own percentile, read only where the servers' buckets pin it down (— otherwise), and network + gateway is the client's percentile minus the servers' TTFT percentile"),
    }
    if s.total
        .decomposition
        .as_ref()
        .is_some_and(|d| d.queue.is_none())
    {
        sec.note("these servers do not time their queue: network + gateway includes any waiting inside the server before its prompt processing began");
    }
    Some(sec)
}

/// What the model servers counted per part: requests and tokens beside the client's, batch
/// and queue sizes, KV-cache use and prefix-cache hits. None without server metrics.
pub(crate) fn server_side(s: &ScenarioReport) -> Option<Section> {
    let v = s.total.server.as_ref()?;
    let mut sec = Section::table(
        "The servers' side",
        vec![
            Column::new("part"),
            Column::new("requests (server / client)"),
            Column::new("prompt tokens (server / client)"),
            Column::new("output tokens (server / client)"),
            Column::new("running mean / max"),
            Column::new("waiting mean / max"),
            Column::new("KV cache mean / max").unit("%"),
            Column::new("prefix-cache hits").unit("%"),
        ],
    );
    let pair = |a: Option<f64>, b: u64| match a {
        Some(a) => Cell::Text(format!(
            "{} / {}",
            fmt::count(a.round() as u64),
            fmt::count(b)
        )),
        None => Cell::Text(format!("— / {}", fmt::count(b))),
    };
    for (part, r) in resource_parts(s) {
        let (Some(v), Some(d)) = (&r.server, &r.decomposition) else {
            continue;
        };
        let gauge = |role: &str, scale: f64| {
            Cell::opt(v.gauges.get(role), |g| {
                Cell::Text(format!("{:.1} / {:.1}", g.mean * scale, g.max * scale))
            })
        };
        sec.push(vec![
            Cell::Text(part.to_string()),
            pair(d.server_requests, d.client_requests),
            pair(d.server_prompt_tokens, d.client_input_tokens),
            pair(d.server_generation_tokens, d.client_output_tokens),
            gauge("running", 1.0),
            gauge("waiting", 1.0),
            gauge("kv_usage", 100.0),
            Cell::opt(v.prefix_hit_rate(), |x| Cell::Pct(x * 100.0)),
        ]);
    }
    sec.note(format!(
        "{} profile, {} endpoint(s) scraped every second and at each window's edge; counts are the change over the window",
        v.profile,
        v.endpoints.len()
    ));
    Some(sec)
}

/// Every table section of a scenario run after its headline and percentiles, in reading
/// order: routing, breaking point, SLO, thresholds, per model, per endpoint, errors, client.
pub(crate) fn details(s: &ScenarioReport) -> Vec<Section> {
    [
        trace(s),
        arms(s),
        breaking_point(s),
        slo(s),
        thresholds(s),
        models(s),
        endpoints(s),
        errors(s),
        decomposition(s),
        server_side(s),
        processes(s),
        prometheus(s),
        Some(client(s)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::run::RunResult;

    #[test]
    fn the_sent_breakdown_adds_up() {
        let mut r = RunResult::empty("t", "l");
        assert_eq!(sent_breakdown(&r), None, "nothing interrupted: no line");
        let c = &mut r.total.counts;
        c.requests = 10;
        c.ok = 7;
        c.errors.insert("http_500/model_server".into(), 3);
        c.interrupted = 4;
        r.client.sent = 20;
        assert_eq!(
            sent_breakdown(&r).as_deref(),
            Some("sent 20 = ok 7 + failed 3 + interrupted 4 + warm-up 6")
        );
        r.client.sent = 0;
        assert_eq!(
            sent_breakdown(&r).as_deref(),
            Some("sent 14 = ok 7 + failed 3 + interrupted 4")
        );
        assert_eq!(log_problem(&r), None);
        r.client.log_dropped = 5;
        r.client.log_error = Some("cannot write the request log x: disk full".into());
        assert_eq!(
            log_problem(&r).as_deref(),
            Some(
                "the request log is incomplete: 5 lines not written; cannot write the request log x: disk full"
            )
        );
    }

    #[test]
    fn warnings_are_said_once() {
        let mut t = RunResult::empty("t", "l");
        t.client.log_dropped = 2;
        t.warnings = vec![
            format!("{LOG_INCOMPLETE}: 2 lines dropped (the disk did not keep up)"),
            "a".into(),
            "a".into(),
        ];
        let r = crate::testutil::one_scenario("s", t);
        let w = warnings(&r.scenarios[0]);
        assert!(w.log.is_some());
        assert_eq!(w.others, ["a"]);
        assert!(!w.is_empty());
    }

    #[test]
    fn anchors_are_slugs() {
        assert_eq!(scenario_anchor(0, "A b/c"), "s1-a-b-c");
        assert_eq!(
            scenario_anchor(1, "chat <steady> & co"),
            "s2-chat-steady-co"
        );
    }
}
