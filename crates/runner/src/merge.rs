//! `inferbench merge`: the shards of one run merged (`inferbench_results::merge`) and judged
//! again, by the rules each shard carries, on the merged figures — a threshold on p99 TTFT is a
//! threshold on the whole run's p99, not on any one shard's.

use inferbench_results::merge::{MergeError, merge_shards};
use inferbench_results::suite::Report;

use crate::kinds::Kind;
use crate::verdict::{Rules, verdicts};

/// Merges every shard of one run (each with the name it is known by, e.g. its file) and judges
/// the merged result.
pub fn merge(reports: Vec<(String, Report)>) -> Result<Report, MergeError> {
    let mut merged = merge_shards(reports)?;
    let thresholds = merged
        .shard
        .as_ref()
        .map(|s| s.rules.clone())
        .unwrap_or_default();
    for s in &mut merged.scenarios {
        let rules = Rules {
            thresholds: thresholds.clone(),
            stress_limits: Vec::new(),
            slo: s.slo.as_ref().map(|slo| (slo.percentile, slo.limits)),
        };
        let kind = Kind::from_name(&s.kind).unwrap_or(Kind::None);
        let (checks, slo) = verdicts(
            &rules,
            kind,
            &s.total,
            std::slice::from_ref(&s.total),
            false,
            &s.arms,
        );
        s.passed = checks.iter().all(|c| c.passed) && slo.as_ref().is_none_or(|x| x.passed);
        s.thresholds = checks;
        s.slo = slo;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::run::{RunResult, SCHEMA_VERSION, SloLimits};
    use inferbench_results::suite::{ScenarioReport, ShardInfo, SloReport, StageReport};

    /// Shard `index` of 2: `ok` fast requests (1 ms TTFT) and `slow` at 900 ms.
    fn shard(index: u32, ok: u64, slow: u64) -> (String, Report) {
        let mut r = RunResult::empty("http://x", "rate");
        r.duration_s = 10.0;
        for i in 0..ok + slow {
            r.total
                .latency
                .ttft
                .record(if i < ok { 1_000 } else { 900_000 });
        }
        r.total.counts.requests = ok + slow;
        r.total.counts.ok = ok + slow;
        r.total.counts.ok_in_window = ok + slow;
        let report = Report {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            started_unix_s: 1,
            config: None,
            partial: false,
            scenarios: vec![ScenarioReport {
                name: "s".into(),
                description: None,
                target: "t".into(),
                url: "http://x".into(),
                repeat: 1,
                kind: "rate".into(),
                stages: vec![StageReport {
                    name: "steady".into(),
                    result: r.clone(),
                }],
                total: r,
                slo: Some(SloReport {
                    percentile: 90.0,
                    limits: SloLimits {
                        ttft_us: Some(500_000),
                        tpot_us: None,
                        e2e_us: None,
                    },
                    passed: true,
                    checks: Vec::new(),
                    goodput_rps: 0.0,
                    good_fraction: 0.0,
                }),
                thresholds: Vec::new(),
                breaking_point: None,
                arms: Vec::new(),
                trace: None,
                passed: true,
            }],
            shard: Some(ShardInfo {
                index: Some(index),
                count: 2,
                plan: "p".into(),
                start_at_unix_ms: Some(1),
                rules: vec!["ttft.p95 < 100ms".into()],
            }),
        };
        (format!("shard-{index}.json"), report)
    }

    #[test]
    fn the_merged_run_is_judged_on_its_own_figures() {
        // Shard 0 alone (4 of 100 slow) would pass p95 < 100 ms; shard 1 (12 of 100) would not.
        let merged = merge(vec![shard(0, 96, 4), shard(1, 88, 12)]).expect("merge");
        let s = &merged.scenarios[0];
        assert_eq!(s.total.total.counts.requests, 200);
        let rules: Vec<(&str, bool)> = s
            .thresholds
            .iter()
            .map(|c| (c.rule.as_str(), c.passed))
            .collect();
        // 16 of 200 slow = 8%: p95 is slow, and shard 0 alone (4%) would have passed.
        assert_eq!(
            rules,
            [
                ("ttft.p95 < 100ms", false),
                ("error_rate < 1% (default)", true)
            ]
        );
        // The SLO (p90 ≤ 500 ms) holds: 8% slow.
        let slo = s.slo.as_ref().expect("slo");
        assert!(slo.passed, "{:?}", slo.checks);
        assert!(!s.passed);
    }
}
