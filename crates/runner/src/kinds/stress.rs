//! `load.stress`: steps at rising rates (`start`, `start + step`, … `max`) or at a list of
//! concurrencies, each judged by the stress `limits`; the first step that fails one is the
//! breaking point, and the run stops there.

use inferbench_config::Stress;
use inferbench_config::threshold::Threshold;
use inferbench_loadgen::engine::Load;
use inferbench_results::suite::{BreakingPoint, Check};
use tokio::sync::watch;

use super::Ran;
use crate::step::{Ctx, Step, run_step, scaled};

/// Most levels a stress test steps through (validation keeps files far below it).
const MAX_LEVELS: usize = 10_000;

/// The levels of `st`: its concurrency list, or its rates from `start` by `step` to `max`.
pub fn levels(st: &Stress) -> Vec<f64> {
    match (&st.concurrency, &st.start, &st.step, &st.max) {
        (Some(list), ..) => list.iter().map(|n| n.value.max(1) as f64).collect(),
        (None, Some(start), Some(step), Some(max)) => {
            let mut v = Vec::new();
            let mut r = start.value;
            while r <= max.value + 1e-9 && v.len() < MAX_LEVELS {
                v.push(r);
                r += step.value.max(1e-9);
            }
            v
        }
        _ => Vec::new(),
    }
}

/// Steps up until a limit breaks (or the levels run out, or a stop).
pub async fn run(ctx: &Ctx<'_>, st: &Stress, stop: watch::Receiver<bool>) -> Ran {
    let limits: Vec<Threshold> = st
        .limits
        .iter()
        .filter_map(|t| Threshold::parse(t).ok())
        .collect();
    let d = scaled(st.step_duration.value.0, ctx.opts.scale);
    let mut bp = BreakingPoint {
        last_passing_rate: None,
        breaking_rate: None,
        failed: Vec::new(),
    };
    let closed = st.concurrency.is_some();
    let mut ran = Ran::default();
    for level in levels(st) {
        if *stop.borrow() {
            break;
        }
        let (name, load) = if closed {
            let load = Load::Closed {
                concurrency: level as usize,
            };
            (format!("concurrency {level}"), load)
        } else {
            let load = Load::Open {
                rate: level,
                arrival: ctx.arrival,
            };
            (format!("rate {level}"), load)
        };
        let (got, whole) = run_step(ctx, Step::flat(name, load, d, ctx.warmup), stop.clone()).await;
        ran.wholes.push(whole);
        let failed: Vec<Check> = got
            .iter()
            .flat_map(|g| limits.iter().map(move |t| t.judge(&g.result)))
            .filter(|c| !c.passed)
            .collect();
        ran.stages.extend(got);
        if failed.is_empty() {
            bp.last_passing_rate = Some(level);
        } else {
            bp.breaking_rate = Some(level);
            bp.failed = failed;
            break;
        }
    }
    ran.breaking_point = Some(bp);
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_levels_include_max_and_concurrency_levels_are_the_list() {
        let st: Stress = serde_saphyr::from_str(
            "{start: 10, step: 2.5, max: 20, step_duration: 1s, limits: []}",
        )
        .expect("yaml");
        assert_eq!(levels(&st), [10.0, 12.5, 15.0, 17.5, 20.0]);
        let st: Stress =
            serde_saphyr::from_str("{concurrency: [1, 0, 8], step_duration: 1s, limits: []}")
                .expect("yaml");
        assert_eq!(levels(&st), [1.0, 1.0, 8.0]);
        let st: Stress =
            serde_saphyr::from_str("{start: 1, step_duration: 1s, limits: []}").expect("yaml");
        assert!(levels(&st).is_empty());
    }
}
