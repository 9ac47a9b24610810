//! A whole file: the plan (which scenario against which target, how many times), the embedded
//! fleet when a target asks for it, and the [`Report`] scenario by scenario.

use std::time::Duration;

use inferbench_config::{Config, Scenario, Target};
use inferbench_results::run::SCHEMA_VERSION;
use inferbench_results::suite::{Report, ScenarioReport, ShardInfo};
use inferbench_timer::unix_now_s;
use tokio::sync::watch;

use crate::client::redact;
use crate::embedded::EmbeddedFleet;
use crate::kinds::Kind;
use crate::scenario::run_scenario;
use crate::verdict::Rules;
use crate::{Options, RunError};

/// One planned run: a scenario, the target it runs against, and which repeat it is (from 1).
pub type Planned<'a> = (&'a Scenario, &'a Target, u32);

/// The target a scenario runs against when the suite names none: its own, else the first.
fn default_target<'a>(c: &'a Config, s: &Scenario) -> Option<&'a Target> {
    match &s.target {
        Some(t) => c.target(t),
        None => c.file.targets.first(),
    }
}

/// The plan of `c`: its suite (or every scenario once when it has none), narrowed to the
/// scenario and target asked for on the command line.
pub fn plan<'a>(c: &'a Config, opts: &Options) -> Result<Vec<Planned<'a>>, RunError> {
    let mut plan: Vec<Planned<'a>> = Vec::new();
    if c.file.suite.is_empty() {
        for s in &c.file.scenarios {
            if let Some(t) = default_target(c, s) {
                plan.push((s, t, 1));
            }
        }
    } else {
        for e in &c.file.suite {
            let Some(s) = c.scenario(&e.scenario) else {
                continue;
            };
            let targets: Vec<&Target> = if e.targets.is_empty() {
                default_target(c, s).into_iter().collect()
            } else {
                e.targets.iter().filter_map(|t| c.target(t)).collect()
            };
            for t in targets {
                for rep in 1..=e.repeats.unwrap_or(1).max(1) {
                    plan.push((s, t, rep));
                }
            }
        }
    }
    if let Some(name) = &opts.only_scenario {
        let Some(s) = c.scenario(name) else {
            let defined: Vec<&str> = c
                .file
                .scenarios
                .iter()
                .map(|s| s.name.value.as_str())
                .collect();
            return Err(RunError::Select(format!(
                "{}: no scenario named `{name}` (defined: {})",
                c.origin,
                defined.join(", ")
            )));
        };
        plan.retain(|(s, _, _)| *s.name == *name);
        if plan.is_empty()
            && let Some(t) = default_target(c, s)
        {
            plan.push((s, t, 1));
        }
    }
    if let Some(name) = &opts.only_target {
        let Some(t) = c.target(name) else {
            return Err(RunError::Select(format!(
                "{}: no target named `{name}`",
                c.origin
            )));
        };
        // Every planned scenario, once, against that target.
        let mut seen = Vec::new();
        plan = plan
            .into_iter()
            .filter(|(s, _, rep)| {
                let fresh = !seen.contains(&s.name.value);
                seen.push(s.name.value.clone());
                fresh && *rep == 1
            })
            .map(|(s, _, rep)| (s, t, rep))
            .collect();
    }
    Ok(plan)
}

/// Fails fast on an unreachable target: one TCP connection to each URL the run will send to
/// (the embedded fleet is not checked: the run starts it), before any load.
pub async fn preflight(c: &Config, opts: &Options) -> Result<(), RunError> {
    for t in &c.file.targets {
        let urls = opts.url_override.as_deref().unwrap_or(&t.url.value);
        if urls == "embedded" || opts.only_target.as_deref().is_some_and(|n| n != *t.name) {
            continue;
        }
        for u in urls.split(',').map(str::trim) {
            let shown = redact(u);
            inferbench_loadgen::probe::reachable(u, &shown, Duration::from_secs(5))
                .await
                .map_err(RunError::Unreachable)?;
        }
    }
    Ok(())
}

/// Refuses sharding (`--shard`, `--start-at`) where shards could not send one schedule together:
/// more than one scenario run (each would start when the one before ended, at a different
/// instant on every shard), or a load kind whose next step depends on what the last measured
/// (sweep, stress) or that alternates routing arms.
pub fn check_sharding(plan: &[Planned<'_>], opts: &Options) -> Result<(), RunError> {
    if opts.shard.is_none() && opts.start_at_unix_ms.is_none() {
        return Ok(());
    }
    let [(s, _, _)] = plan else {
        return Err(RunError::Select(format!(
            "--shard and --start-at run one scenario, and this plan has {} scenario runs: pick one with --scenario",
            plan.len()
        )));
    };
    match Kind::of_scenario(s) {
        Kind::Rate | Kind::Concurrency | Kind::Stages | Kind::Users | Kind::Trace => Ok(()),
        kind => Err(RunError::Select(format!(
            "scenario `{}` is a {} load: --shard and --start-at take rate, concurrency, stages or users (a sweep's and a stress test's next step depends on what the last one measured; arms alternate windows)",
            s.name.value,
            kind.name()
        ))),
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (the same on every machine and version).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The name of the plan every shard of one run shares: the file, the scenario, the target, the
/// seed and scale, and a fingerprint of the scenario and target as parsed (the URL override
/// included), so that shards of different plans are never merged.
pub fn plan_name(c: &Config, s: &Scenario, t: &Target, opts: &Options) -> String {
    let fingerprint = fnv1a(&[
        &format!("{s:?}"),
        &format!("{t:?}"),
        opts.url_override.as_deref().unwrap_or(""),
        &opts.scale.to_string(),
    ]);
    format!(
        "{}#{}@{} seed {} scale {} [{fingerprint:016x}]",
        c.origin,
        s.name.value,
        t.name.value,
        s.seed.unwrap_or(1),
        opts.scale
    )
}

/// Runs the suite of `c` (or every scenario once when it has no suite). `on_scenario` gets each
/// finished scenario (to print it and save progress); a stop ends the run early, with what
/// completed.
pub async fn run_suite(
    c: &Config,
    opts: &Options,
    stop: watch::Receiver<bool>,
    mut on_scenario: impl FnMut(&Report, &ScenarioReport),
) -> Result<Report, RunError> {
    let plan = plan(c, opts)?;
    check_sharding(&plan, opts)?;
    let shard = match (opts.shard, plan.first()) {
        (Some(sh), Some((s, t, _))) => Some(ShardInfo {
            index: Some(sh.index),
            count: sh.count,
            plan: plan_name(c, s, t, opts),
            start_at_unix_ms: opts.start_at_unix_ms,
            rules: Rules::of(s).thresholds,
        }),
        _ => None,
    };
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_unix_s: unix_now_s(),
        config: opts.config_label.clone().or_else(|| Some(c.origin.clone())),
        partial: false,
        scenarios: Vec::new(),
        shard,
    };
    let mut embedded: Option<EmbeddedFleet> = None;
    for (s, t, rep) in plan {
        if *stop.borrow() {
            report.partial = true;
            break;
        }
        let urls = match (&opts.url_override, t.url.value.as_str()) {
            (Some(u), _) => u.clone(),
            (None, "embedded") => {
                if embedded.is_none() {
                    let fleet = EmbeddedFleet::start(&t.models)
                        .await
                        .map_err(RunError::Embedded)?;
                    embedded = Some(fleet);
                }
                embedded
                    .as_ref()
                    .map(|f| f.urls().join(","))
                    .unwrap_or_default()
            }
            (None, u) => u.to_string(),
        };
        let sr = run_scenario(c, s, t, &urls, rep, opts, stop.clone()).await?;
        let interrupted = sr.stages.iter().any(|st| st.result.partial);
        report.scenarios.push(sr);
        if let Some(last) = report.scenarios.last() {
            on_scenario(&report, last);
        }
        if interrupted {
            report.partial = true;
            break;
        }
    }
    if let Some(f) = embedded {
        f.shutdown().await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
targets:
  - {name: a, url: http://127.0.0.1:1, models: [m]}
  - {name: b, url: http://127.0.0.1:2, models: [m]}
scenarios:
  - {name: one, load: {rate: 1}, duration: 1s}
  - {name: two, target: b, load: {rate: 1}, duration: 1s}
";

    fn names(plan: &[Planned<'_>]) -> Vec<(String, String, u32)> {
        plan.iter()
            .map(|(s, t, r)| (s.name.value.clone(), t.name.value.clone(), *r))
            .collect()
    }

    fn row(s: &str, t: &str, r: u32) -> (String, String, u32) {
        (s.into(), t.into(), r)
    }

    #[test]
    fn without_a_suite_every_scenario_runs_once_on_its_target() {
        let c = Config::parse(FILE, "t.yaml").expect("file");
        let p = plan(&c, &Options::default()).expect("plan");
        assert_eq!(names(&p), [row("one", "a", 1), row("two", "b", 1)]);
    }

    #[test]
    fn a_suite_repeats_and_fans_out_over_targets() {
        let text = format!(
            "{FILE}suite:\n  - {{scenario: one, targets: [a, b], repeats: 2}}\n  - {{scenario: two}}\n"
        );
        let c = Config::parse(&text, "t.yaml").expect("file");
        let p = plan(&c, &Options::default()).expect("plan");
        assert_eq!(
            names(&p),
            [
                row("one", "a", 1),
                row("one", "a", 2),
                row("one", "b", 1),
                row("one", "b", 2),
                row("two", "b", 1)
            ]
        );
        // --target: every scenario once against it.
        let opts = Options {
            only_target: Some("a".into()),
            ..Options::default()
        };
        let p = plan(&c, &opts).expect("plan");
        assert_eq!(names(&p), [row("one", "a", 1), row("two", "a", 1)]);
    }

    #[test]
    fn unknown_names_are_refused_with_what_exists() {
        let c = Config::parse(FILE, "t.yaml").expect("file");
        let opts = Options {
            only_scenario: Some("three".into()),
            ..Options::default()
        };
        let e = plan(&c, &opts).expect_err("unknown").to_string();
        assert_eq!(e, "t.yaml: no scenario named `three` (defined: one, two)");
        let opts = Options {
            only_target: Some("z".into()),
            ..Options::default()
        };
        assert!(plan(&c, &opts).is_err());
    }
}
