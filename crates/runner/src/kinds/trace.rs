//! A trace at its own instants: one open-loop step whose arrivals are the trace's (scaled).

use std::sync::Arc;

use inferbench_loadgen::engine::Load;
use tokio::sync::watch;

use super::Ran;
use crate::step::{Ctx, Step};
use crate::trace::TraceRun;

/// Replays `tr` as one step, named `trace`: it lasts until its last request has ended.
pub async fn run(ctx: &Ctx<'_>, tr: &TraceRun, stop: watch::Receiver<bool>) -> Ran {
    let load = Load::Trace {
        offsets_us: Arc::new(tr.offsets_us()),
    };
    let mut step = Step::whole(ctx, "trace", load, None, Vec::new());
    // The trace's rows bound the run, not a request count.
    step.requests = ctx.requests.filter(|_| ctx.scenario.requests.is_some());
    Ran::single(ctx, step, stop).await
}
