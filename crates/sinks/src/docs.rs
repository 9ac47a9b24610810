//! The summary documents: one per scenario, per stage and per routing arm of a report, with
//! counts, throughput, latency summaries in ms and the client's health. `docs/sinks.md` shows
//! their shape; `deploy/opensearch/index-template.json` maps it.

use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::RunResult;
use inferbench_results::suite::{Report, ScenarioReport};
use serde_json::{Map, Value, json};

/// One document and its `_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// `_id`: the same run indexed again replaces its documents.
    pub id: String,
    /// `_source`.
    pub source: Value,
}

/// `unix_ms` as ISO 8601 UTC with milliseconds, `2026-12-03T00:34:24.123Z`.
pub fn iso8601_ms(unix_ms: u64) -> String {
    let days = (unix_ms / 86_400_000) as i64;
    let ms_of_day = unix_ms % 86_400_000;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms_of_day % 1000
    )
}

/// A latency histogram as `{p50, p90, p95, p99, max, mean, count}`, ms.
pub fn latency_ms(h: &LatencyHistogram) -> Value {
    let s = h.summary();
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "p50": ms(s.p50_us),
        "p90": ms(s.p90_us),
        "p95": ms(s.p95_us),
        "p99": ms(s.p99_us),
        "max": ms(s.max_us),
        "mean": s.mean_us / 1000.0,
        "count": s.count,
    })
}

/// A finite float, or null (JSON has no NaN or infinity).
fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// The figures of one result: counts, throughput, latency, client health.
fn result_fields(m: &mut Map<String, Value>, r: &RunResult) {
    let c = &r.total.counts;
    let failed = c.failed();
    let l = &r.total.latency;
    let h = &r.client;
    let fields = json!({
        "load": r.load,
        "target_rate": r.target_rate.map(num),
        "duration_s": num(r.duration_s),
        "partial": r.partial,
        "requests": c.requests,
        "ok": c.ok,
        "failed": failed,
        "error_rate": num(c.error_fraction()),
        "interrupted": c.interrupted,
        "good": c.good,
        "input_tokens": c.input_tokens,
        "output_tokens": c.output_tokens,
        "cached_tokens": c.cached_tokens,
        "misrouted": r.misrouted,
        "errors": c.errors.iter().map(|(k, n)| json!({"error": k, "count": n})).collect::<Vec<_>>(),
        "error_kinds": c.errors.keys().collect::<Vec<_>>(),
        "achieved_rps": num(r.achieved_rate()),
        "output_tps": num(r.output_tokens_per_s()),
        "latency": {
            "ttft_ms": latency_ms(&l.ttft),
            "itl_ms": latency_ms(&l.itl),
            "tpot_ms": latency_ms(&l.tpot),
            "e2e_ms": latency_ms(&l.e2e),
        },
        "client": {
            "dispatch_lag_p99_ms": h.dispatch_lag.summary().p99_us as f64 / 1000.0,
            "peak_in_flight": h.peak_in_flight,
            "dropped": h.dropped,
            "late": h.late,
            "cpu_s": num(h.cpu_seconds),
            "cpu_s_per_1000": num(h.cpu_s_per_1000()),
            "sent": h.sent,
            "retries": h.retries,
            "reconnects": h.reconnects,
            "interrupted": h.interrupted,
            "log_dropped": h.log_dropped,
            "log_error": h.log_error,
        },
        "models": r.by_model.keys().collect::<Vec<_>>(),
        "endpoints": r.by_endpoint.keys().collect::<Vec<_>>(),
        "warnings": r.warnings,
    });
    if let Value::Object(f) = fields {
        m.extend(f);
    }
}

/// What every document of one scenario shares.
fn scenario_fields(
    run_id: &str,
    report: &Report,
    s: &ScenarioReport,
    doc: &str,
    name: &str,
    started_unix_s: u64,
) -> Map<String, Value> {
    let started = if started_unix_s > 0 {
        started_unix_s
    } else {
        report.started_unix_s
    };
    let v = json!({
        "@timestamp": iso8601_ms(started.saturating_mul(1000)),
        "run_id": run_id,
        "tool_version": report.tool_version,
        "config": report.config,
        "doc": doc,
        "name": name,
        "scenario": s.name,
        "repeat": s.repeat,
        "kind": s.kind,
        "target": s.target,
        "url": s.url,
        "shard_index": report.shard.as_ref().and_then(|x| x.index),
        "shard_count": report.shard.as_ref().map(|x| x.count),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Every summary document of `report`: per scenario (`doc: "scenario"`), then its stages
/// (`"stage"`) and arms (`"arm"`).
pub fn summary_docs(run_id: &str, report: &Report) -> Vec<Doc> {
    let mut out = Vec::new();
    for (i, s) in report.scenarios.iter().enumerate() {
        let mut m = scenario_fields(
            run_id,
            report,
            s,
            "scenario",
            &s.label(),
            s.total.started_unix_s,
        );
        result_fields(&mut m, &s.total);
        m.insert("passed".into(), json!(s.passed));
        m.insert("failures".into(), json!(s.failures()));
        if let Some(slo) = &s.slo {
            m.insert(
                "slo".into(),
                json!({
                    "percentile": num(slo.percentile),
                    "goodput_rps": num(slo.goodput_rps),
                    "good_fraction": num(slo.good_fraction),
                    "passed": slo.passed,
                }),
            );
        }
        if let Some(b) = &s.breaking_point {
            m.insert(
                "breaking_point".into(),
                json!({
                    "last_passing_rate": b.last_passing_rate.map(num),
                    "breaking_rate": b.breaking_rate.map(num),
                }),
            );
        }
        out.push(Doc {
            id: format!("{run_id}:{i}:scenario"),
            source: Value::Object(m),
        });
        for (j, st) in s.stages.iter().enumerate() {
            let mut m = scenario_fields(
                run_id,
                report,
                s,
                "stage",
                &st.name,
                st.result.started_unix_s,
            );
            result_fields(&mut m, &st.result);
            m.insert("stage".into(), json!(st.name));
            out.push(Doc {
                id: format!("{run_id}:{i}:stage:{j}"),
                source: Value::Object(m),
            });
        }
        for (j, a) in s.arms.iter().enumerate() {
            let mut m = scenario_fields(run_id, report, s, "arm", &a.name, a.result.started_unix_s);
            result_fields(&mut m, &a.result);
            let ms3 = |x: Option<[i64; 3]>| {
                x.map(|[p50, p95, p99]| {
                    json!({"p50": p50 as f64 / 1000.0, "p95": p95 as f64 / 1000.0, "p99": p99 as f64 / 1000.0})
                })
            };
            let arm = json!({
                "arm": a.name,
                "arm_url": a.url,
                "router_cpu_s": a.router_cpu_s.map(num),
                "router_cpu_per_1000": a.router_cpu_per_1000.map(num),
                "router_peak_rss_mb": a.router_peak_rss_mb.map(num),
                "ttft_added_ms": ms3(a.ttft_added_us),
                "e2e_added_ms": ms3(a.e2e_added_us),
                "throughput_change_pct": a.throughput_change_pct.map(num),
                "prefix_hit_rate": num(a.prefix_hit_rate),
                "routing_accuracy": num(a.routing_accuracy),
            });
            if let Value::Object(f) = arm {
                m.extend(f);
            }
            out.push(Doc {
                id: format!("{run_id}:{i}:arm:{j}"),
                source: Value::Object(m),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_796_258_064_123), "2026-12-03T00:34:24.123Z");
        assert_eq!(iso8601_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
