//! The shards of one run (`run --shard I/N`) merged into one report, exactly: histograms add
//! (the merged percentiles are those of one histogram of every sample), counts, timelines, per
//! model and per endpoint add; the measured time is the longest shard's. Shards of different
//! plans, missing or repeated shards, and shards whose scenarios differ are refused by name.
//! Verdicts are not computed here: whoever knows the rules judges the merged result again.

use crate::suite::{Report, ScenarioReport, ShardInfo};

/// Why shard reports cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// A report that is not a shard's.
    #[error("{0}: not a shard's report (it was not run with --shard I/N)")]
    NotShard(String),
    /// Shards of different plans.
    #[error("{a} and {b} are shards of different plans: `{plan_a}` vs `{plan_b}`")]
    Plan {
        /// One report.
        a: String,
        /// Its plan.
        plan_a: String,
        /// Another report.
        b: String,
        /// Its plan.
        plan_b: String,
    },
    /// Shards that say different shard counts.
    #[error("{a} is shard {ia} of {na}, {b} is shard {ib} of {nb}: not one run")]
    Count {
        /// One report.
        a: String,
        /// Its index.
        ia: u32,
        /// Its count.
        na: u32,
        /// Another.
        b: String,
        /// Its index.
        ib: u32,
        /// Its count.
        nb: u32,
    },
    /// The same shard twice.
    #[error("shard {index} is given twice: {a} and {b}")]
    Twice {
        /// The shard.
        index: u32,
        /// One file.
        a: String,
        /// The other.
        b: String,
    },
    /// Shards missing.
    #[error(
        "shards {missing:?} of {count} are missing: a merge of part of a run would report part of its load"
    )]
    Missing {
        /// The missing indexes.
        missing: Vec<u32>,
        /// How many there should be.
        count: u32,
    },
    /// Shards whose scenarios or stages differ.
    #[error("{a} and {b} ran different scenarios or stages: {what}")]
    Shape {
        /// One report.
        a: String,
        /// Another.
        b: String,
        /// What differs.
        what: String,
    },
}

/// The shard info of a report, or why it is not a shard.
fn info<'a>(label: &str, r: &'a Report) -> Result<(&'a ShardInfo, u32), MergeError> {
    match &r.shard {
        Some(s @ ShardInfo { index: Some(i), .. }) => Ok((s, *i)),
        _ => Err(MergeError::NotShard(label.to_string())),
    }
}

/// Checks that `reports` (each with the label it is named by in messages: its file) are every
/// shard of one plan, once each; returns them in shard order.
fn in_order(reports: Vec<(String, Report)>) -> Result<Vec<(String, Report)>, MergeError> {
    let Some((first_label, first)) = reports.first() else {
        return Err(MergeError::Empty);
    };
    let (first_info, first_index) = info(first_label, first)?;
    let count = first_info.count.max(1);
    let mut slots: Vec<Option<(String, Report)>> = vec![None; count as usize];
    for (label, r) in &reports {
        let (inf, index) = info(label, r)?;
        if inf.plan != first_info.plan {
            return Err(MergeError::Plan {
                a: first_label.clone(),
                plan_a: first_info.plan.clone(),
                b: label.clone(),
                plan_b: inf.plan.clone(),
            });
        }
        if inf.count != first_info.count || index >= count {
            return Err(MergeError::Count {
                a: first_label.clone(),
                ia: first_index,
                na: first_info.count,
                b: label.clone(),
                ib: index,
                nb: inf.count,
            });
        }
        if let Some((other, _)) = &slots[index as usize] {
            return Err(MergeError::Twice {
                index,
                a: other.clone(),
                b: label.clone(),
            });
        }
        slots[index as usize] = Some((label.clone(), r.clone()));
    }
    let missing: Vec<u32> = (0..count)
        .filter(|i| slots[*i as usize].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Adds scenario `b` (a later shard's) into `a`, stage by stage.
fn add_scenario(a: &mut ScenarioReport, b: &ScenarioReport) -> Result<(), String> {
    if (
        a.name.as_str(),
        a.target.as_str(),
        a.repeat,
        a.kind.as_str(),
    ) != (
        b.name.as_str(),
        b.target.as_str(),
        b.repeat,
        b.kind.as_str(),
    ) {
        return Err(format!(
            "scenario `{}` on `{}` vs `{}` on `{}`",
            a.name, a.target, b.name, b.target
        ));
    }
    let names = |s: &ScenarioReport| {
        s.stages
            .iter()
            .map(|st| st.name.clone())
            .collect::<Vec<_>>()
    };
    if names(a) != names(b) {
        return Err(format!(
            "scenario `{}` has stages {:?} vs {:?}",
            a.name,
            names(a),
            names(b)
        ));
    }
    for (sa, sb) in a.stages.iter_mut().zip(&b.stages) {
        sa.result.merge(&sb.result);
        sa.result.started_unix_s = sa.result.started_unix_s.min(sb.result.started_unix_s);
        dedup(&mut sa.result.warnings);
    }
    a.total.merge(&b.total);
    a.total.started_unix_s = a.total.started_unix_s.min(b.total.started_unix_s);
    dedup(&mut a.total.warnings);
    // A replayed trace: every shard sent its share of one schedule; the lag is the merged run's.
    if let Some(t) = &mut a.trace {
        let lag = a.total.client.dispatch_lag.summary();
        if t.lag_p50_us.is_some() {
            t.lag_p50_us = Some(lag.p50_us);
            t.lag_p99_us = Some(lag.p99_us);
            t.lag_max_us = Some(lag.max_us);
            t.late = a.total.client.late;
        }
    }
    Ok(())
}

/// Removes repeated warnings (every shard says the same ones), keeping the first of each.
fn dedup(w: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    w.retain(|x| seen.insert(x.clone()));
}

/// Merges every shard of one run into one report. The merged report's `shard` has no index;
/// its thresholds, SLO and `passed` are shard 0's until judged again on the merged figures.
pub fn merge_shards(reports: Vec<(String, Report)>) -> Result<Report, MergeError> {
    let mut shards = in_order(reports)?.into_iter();
    let Some((first_label, mut merged)) = shards.next() else {
        return Err(MergeError::Empty);
    };
    for (label, r) in shards {
        if r.scenarios.len() != merged.scenarios.len() {
            return Err(MergeError::Shape {
                a: first_label.clone(),
                b: label,
                what: format!(
                    "{} vs {} scenario runs",
                    merged.scenarios.len(),
                    r.scenarios.len()
                ),
            });
        }
        for (a, b) in merged.scenarios.iter_mut().zip(&r.scenarios) {
            add_scenario(a, b).map_err(|what| MergeError::Shape {
                a: first_label.clone(),
                b: label.clone(),
                what,
            })?;
        }
        merged.started_unix_s = merged.started_unix_s.min(r.started_unix_s);
        merged.partial |= r.partial;
    }
    if let Some(s) = &mut merged.shard {
        s.index = None;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::LatencyHistogram;
    use crate::run::{RunResult, SCHEMA_VERSION};
    use crate::suite::StageReport;

    /// Shard `index` of `count` with TTFTs `ttfts` (µs).
    fn shard(index: u32, count: u32, plan: &str, ttfts: &[u64]) -> Report {
        let mut r = RunResult::empty("http://x", "rate 10.00/s constant");
        r.duration_s = 10.0 + f64::from(index);
        r.started_unix_s = 100 + u64::from(index);
        for t in ttfts {
            r.total.latency.ttft.record(*t);
        }
        r.total.counts.requests = ttfts.len() as u64;
        r.total.counts.ok = ttfts.len() as u64;
        r.total.counts.ok_in_window = ttfts.len() as u64;
        r.warnings.push("the same warning".into());
        Report {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            started_unix_s: 100 + u64::from(index),
            config: Some("x.yaml".into()),
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
                slo: None,
                thresholds: Vec::new(),
                breaking_point: None,
                arms: Vec::new(),
                trace: None,
                passed: true,
            }],
            shard: Some(ShardInfo {
                index: Some(index),
                count,
                plan: plan.into(),
                start_at_unix_ms: Some(1),
                rules: Vec::new(),
            }),
        }
    }

    fn named(rs: Vec<Report>) -> Vec<(String, Report)> {
        rs.into_iter()
            .map(|r| {
                let i = r.shard.as_ref().and_then(|s| s.index).unwrap_or(99);
                (format!("shard-{i}.json"), r)
            })
            .collect()
    }

    #[test]
    fn merged_percentiles_are_those_of_all_samples() {
        let a: Vec<u64> = (0..500).map(|i| 1_000 + i * 37 % 9_000).collect();
        let b: Vec<u64> = (0..700).map(|i| 5_000 + i * 91 % 40_000).collect();
        let c: Vec<u64> = (0..300).map(|i| 200 + i * 13).collect();
        // Given in any order.
        let merged = merge_shards(named(vec![
            shard(2, 3, "p", &c),
            shard(0, 3, "p", &a),
            shard(1, 3, "p", &b),
        ]))
        .expect("merge");
        let mut all = LatencyHistogram::new();
        for v in a.iter().chain(&b).chain(&c) {
            all.record(*v);
        }
        let s = &merged.scenarios[0];
        assert_eq!(s.total.total.latency.ttft.summary(), all.summary());
        assert_eq!(
            s.stages[0].result.total.latency.ttft.summary(),
            all.summary()
        );
        assert_eq!(s.total.total.counts.requests, 1_500);
        // The longest shard's time; the earliest start; warnings once.
        assert_eq!(s.total.duration_s, 12.0);
        assert_eq!(s.total.started_unix_s, 100);
        assert_eq!(s.total.warnings, ["the same warning"]);
        let info = merged.shard.expect("shard info");
        assert_eq!((info.index, info.count), (None, 3));
    }

    #[test]
    fn mismatched_shards_are_refused_by_name() {
        let e = merge_shards(named(vec![shard(0, 2, "p", &[1]), shard(1, 2, "q", &[1])]))
            .expect_err("plans differ");
        assert_eq!(
            e.to_string(),
            "shard-0.json and shard-1.json are shards of different plans: `p` vs `q`"
        );
        let e = merge_shards(named(vec![shard(0, 3, "p", &[1]), shard(1, 3, "p", &[1])]))
            .expect_err("missing");
        assert_eq!(
            e,
            MergeError::Missing {
                missing: vec![2],
                count: 3
            }
        );
        let e = merge_shards(named(vec![shard(0, 2, "p", &[1]), shard(0, 2, "p", &[1])]))
            .expect_err("twice");
        assert!(matches!(e, MergeError::Twice { index: 0, .. }), "{e}");
        let e = merge_shards(named(vec![shard(0, 2, "p", &[1]), shard(1, 3, "p", &[1])]))
            .expect_err("counts");
        assert!(matches!(e, MergeError::Count { .. }), "{e}");
        let mut other = shard(1, 2, "p", &[1]);
        other.scenarios[0].stages[0].name = "stage 1".into();
        let e = merge_shards(named(vec![shard(0, 2, "p", &[1]), other])).expect_err("shape");
        assert!(e.to_string().contains("stages"), "{e}");
        let mut plain = shard(0, 1, "p", &[1]);
        plain.shard = None;
        let e = merge_shards(vec![("run.json".into(), plain)]).expect_err("not a shard");
        assert_eq!(
            e.to_string(),
            "run.json: not a shard's report (it was not run with --shard I/N)"
        );
    }
}
