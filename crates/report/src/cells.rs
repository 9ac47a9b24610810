//! Cells the renderings (console, Markdown, HTML) share: one wording for each figure.

use inferbench_results::report::{ArmReport, LOG_INCOMPLETE, ScenarioReport};
use inferbench_results::run::RunResult;

/// The unit of a stress test's steps: requests in flight (concurrency steps) or req/s.
pub(crate) fn stress_unit(s: &ScenarioReport) -> &'static str {
    if s.stages
        .first()
        .is_some_and(|st| st.name.starts_with("concurrency"))
    {
        " in flight"
    } else {
        " req/s"
    }
}

/// ✓ or ✗.
pub(crate) fn mark(passed: bool) -> &'static str {
    if passed { "✓" } else { "✗" }
}

/// p50 / p95 / p99 added over direct, µs, joined by `sep`; — without a direct arm.
pub(crate) fn added(v: Option<[i64; 3]>, sep: &str) -> String {
    v.map_or("—".to_string(), |[x, y, z]| {
        format!("{x:+}{sep}{y:+}{sep}{z:+}")
    })
}

/// Throughput change vs direct, %.
pub(crate) fn throughput_change(a: &ArmReport) -> String {
    a.throughput_change_pct
        .map_or("—".to_string(), |p| format!("{p:+.1}%"))
}

/// Router CPU seconds per 1,000 requests, with `unit` after it.
pub(crate) fn router_cpu(a: &ArmReport, unit: &str) -> String {
    a.router_cpu_per_1000
        .map_or("—".to_string(), |c| format!("{c:.3}{unit}"))
}

/// Router peak RSS, MB with `decimals`.
pub(crate) fn router_rss(a: &ArmReport, decimals: usize) -> String {
    a.router_peak_rss_mb
        .map_or("—".to_string(), |m| format!("{m:.decimals$} MB"))
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
        "sent {} = ok {ok} + failed {failed} + interrupted {}{}",
        counted + warmup,
        c.interrupted,
        if warmup > 0 {
            format!(" + warm-up {warmup}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_written() {
        assert_eq!(added(Some([12, -3, 40]), " / "), "+12 / -3 / +40");
        assert_eq!(added(None, "/"), "—");
        assert_eq!(mark(false), "✗");
    }

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
            sent_breakdown(&r).unwrap(),
            "sent 20 = ok 7 + failed 3 + interrupted 4 + warm-up 6"
        );
        r.client.sent = 0;
        assert_eq!(
            sent_breakdown(&r).unwrap(),
            "sent 14 = ok 7 + failed 3 + interrupted 4"
        );
        assert_eq!(log_problem(&r), None);
        r.client.log_dropped = 5;
        r.client.log_error = Some("cannot write the request log x: disk full".into());
        assert_eq!(
            log_problem(&r).unwrap(),
            "the request log is incomplete: 5 lines not written; cannot write the request log x: disk full"
        );
    }
}
