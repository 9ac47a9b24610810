//! `load.sweep` (guidellm's sweep): a synchronous step (one request at a time), a throughput
//! step (`max_concurrency` in flight), then `rates` open-loop steps evenly between the two
//! rates found.

use inferbench_config::Sweep;
use inferbench_loadgen::engine::Load;
use tokio::sync::watch;

use super::Ran;
use crate::step::{Ctx, Step, run_step, scaled};

/// The `k` rates strictly between `sync_rate` and `max_rate`, evenly spaced, to 0.01/s;
/// none unless the throughput step beat the synchronous one.
pub fn rates_between(sync_rate: f64, max_rate: f64, k: usize) -> Vec<f64> {
    if !(max_rate > sync_rate && sync_rate > 0.0) {
        return Vec::new();
    }
    (1..=k)
        .map(|i| {
            let rate = sync_rate + (max_rate - sync_rate) * i as f64 / (k + 1) as f64;
            (rate * 100.0).round() / 100.0
        })
        .collect()
}

/// Runs the sweep's steps, stopping between steps on a stop.
pub async fn run(ctx: &Ctx<'_>, sw: &Sweep, stop: watch::Receiver<bool>) -> Ran {
    let d = scaled(sw.duration.value.0, ctx.opts.scale);
    let step = |name: &str, load: Load| Step::flat(name.to_string(), load, d, ctx.warmup);
    let mut ran = Ran::default();
    let sync = step("synchronous", Load::Closed { concurrency: 1 });
    ran.keep(run_step(ctx, sync, stop.clone()).await);
    let sync_rate = ran
        .stages
        .last()
        .map_or(0.0, |st| st.result.achieved_rate());
    if !*stop.borrow() {
        let max_c = sw
            .max_concurrency
            .as_ref()
            .map_or(256, |m| m.value.max(1) as usize);
        let throughput = step("throughput", Load::Closed { concurrency: max_c });
        ran.keep(run_step(ctx, throughput, stop.clone()).await);
    }
    let max_rate = ran
        .stages
        .last()
        .map_or(0.0, |st| st.result.achieved_rate());
    let k = sw.rates.as_ref().map_or(5, |r| r.value.max(1) as usize);
    for rate in rates_between(sync_rate, max_rate, k) {
        if *stop.borrow() {
            break;
        }
        let open = Load::Open {
            rate,
            arrival: ctx.arrival,
        };
        ran.keep(run_step(ctx, step(&format!("rate {rate}"), open), stop.clone()).await);
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_fill_the_gap_evenly() {
        assert_eq!(rates_between(2.0, 12.0, 4), [4.0, 6.0, 8.0, 10.0]);
        assert_eq!(rates_between(1.0, 2.0, 2), [1.33, 1.67]);
        // No gap (or no synchronous rate): no rate steps.
        assert!(rates_between(5.0, 5.0, 3).is_empty());
        assert!(rates_between(0.0, 5.0, 3).is_empty());
    }
}
