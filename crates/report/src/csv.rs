//! `report.csv`: one row per scenario, stage and arm with the headline figures, for a
//! spreadsheet or a plotting script.

use std::fmt::Write;

use inferbench_results::run::RunResult;
use inferbench_results::suite::Report;

/// The header row.
pub const HEADER: &str = "scenario,part,name,load,duration_s,requests,ok,errors,error_rate_pct,achieved_rps,output_tok_s,ttft_p50_ms,ttft_p95_ms,ttft_p99_ms,itl_p50_ms,itl_p99_ms,tpot_p50_ms,e2e_p50_ms,e2e_p95_ms,e2e_p99_ms,dispatch_lag_p99_ms";

/// Quotes a field when it needs it (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn row(out: &mut String, scenario: &str, part: &str, name: &str, r: &RunResult) {
    let c = &r.total.counts;
    let l = &r.total.latency;
    let ms = |us: u64| us as f64 / 1000.0;
    let (t, i, p, e) = (
        l.ttft.summary(),
        l.itl.summary(),
        l.tpot.summary(),
        l.e2e.summary(),
    );
    let _ = writeln!(
        out,
        "{},{},{},{},{:.3},{},{},{},{:.3},{:.3},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
        field(scenario),
        part,
        field(name),
        field(&r.load),
        r.duration_s,
        c.requests,
        c.ok,
        c.failed(),
        c.error_fraction() * 100.0,
        r.achieved_rate(),
        r.output_tokens_per_s(),
        ms(t.p50_us),
        ms(t.p95_us),
        ms(t.p99_us),
        ms(i.p50_us),
        ms(i.p99_us),
        ms(p.p50_us),
        ms(e.p50_us),
        ms(e.p95_us),
        ms(e.p99_us),
        ms(r.client.dispatch_lag.summary().p99_us),
    );
}

/// Renders the report as CSV: each scenario's total, then its stages (when more than one) and
/// its arms.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push('\n');
    for s in &report.scenarios {
        row(&mut out, &s.name, "total", &s.name, &s.total);
        if s.stages.len() > 1 {
            for st in &s.stages {
                row(&mut out, &s.name, "stage", &st.name, &st.result);
            }
        }
        for a in &s.arms {
            row(&mut out, &s.name, "arm", &a.name, &a.result);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_counts() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let mut r = RunResult::empty("t", "rate 10/s");
        r.duration_s = 2.0;
        r.total.counts.requests = 4;
        r.total.counts.ok = 3;
        r.total.counts.errors.insert("connect/client".into(), 1);
        r.total.counts.output_tokens = 30;
        r.total.counts.ok_in_window = 3;
        r.total.counts.output_tokens_in_window = 30;
        r.total.latency.ttft.record(1_500);
        let mut out = String::new();
        row(&mut out, "x,y", "total", "x,y", &r);
        let cols: Vec<&str> = out.trim_end().split(',').collect();
        // The quoted name holds a comma: 2 extra pieces, the rest line up with the header.
        assert_eq!(cols.len(), HEADER.split(',').count() + 2);
        assert_eq!(cols[7], "4");
        assert_eq!(cols[10], "25.000");
        assert_eq!(cols[12], "15.0");
        assert_eq!(cols[13], "1.500");
    }
}
