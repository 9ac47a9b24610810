//! Cells the renderings (console, Markdown, HTML) share: one wording for each figure.

use inferbench_results::report::{ArmReport, ScenarioReport};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_written() {
        assert_eq!(added(Some([12, -3, 40]), " / "), "+12 / -3 / +40");
        assert_eq!(added(None, "/"), "—");
        assert_eq!(mark(false), "✗");
    }
}
