//! `load.rate` and `load.concurrency`: one step at one level for `duration` (or `requests`).

use inferbench_config::LoadSpec;
use inferbench_loadgen::engine::Load;
use inferbench_workload::arrivals::Arrival;
use tokio::sync::watch;

use super::Ran;
use crate::step::{Ctx, Step};

/// The engine load of a `rate` or `concurrency` scenario (`None` for other kinds).
pub fn flat_load(l: &LoadSpec, arrival: Arrival) -> Option<Load> {
    match (&l.rate, &l.concurrency) {
        (Some(r), _) => Some(Load::Open {
            rate: r.value,
            arrival,
        }),
        (_, Some(n)) => Some(Load::Closed {
            concurrency: n.value.max(1) as usize,
        }),
        _ => None,
    }
}

/// Runs the one step, named `steady`.
pub async fn run(ctx: &Ctx<'_>, load: Load, stop: watch::Receiver<bool>) -> Ran {
    let step = Step::whole(ctx, "steady", load, ctx.duration, Vec::new());
    Ran::single(ctx, step, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_open_and_concurrency_closed() {
        let l: LoadSpec = serde_saphyr::from_str("rate: 2.5").expect("yaml");
        assert_eq!(
            flat_load(&l, Arrival::Poisson),
            Some(Load::Open {
                rate: 2.5,
                arrival: Arrival::Poisson
            })
        );
        let l: LoadSpec = serde_saphyr::from_str("concurrency: 0").expect("yaml");
        // At least one in flight.
        assert_eq!(
            flat_load(&l, Arrival::Constant),
            Some(Load::Closed { concurrency: 1 })
        );
        let l: LoadSpec = serde_saphyr::from_str("sweep: {duration: 1s}").expect("yaml");
        assert_eq!(flat_load(&l, Arrival::Constant), None);
    }
}
