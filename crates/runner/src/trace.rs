//! Trace replay: the scenario's `workload.trace` read once per scenario run, the requests it
//! selects with their replay instants, the prompts that give each request its trace lengths
//! (Mooncake's shared blocks as shared prompt prefixes), and the report of how it went.

use std::sync::Arc;
use std::time::Duration;

use inferbench_config::{Config, Scenario};
use inferbench_results::run::RunResult;
use inferbench_results::suite::TraceReplay;
use inferbench_workload::prompt::PromptSynth;
use inferbench_workload::trace::{MOONCAKE_BLOCK_TOKENS, TraceRequest, implied_prefix_hits};

use crate::RunError;

/// The trace of one scenario run: the requests to replay, in order, with their instants.
#[derive(Debug)]
pub struct TraceRun {
    /// The file, its format and the replay settings.
    pub loaded: inferbench_config::trace::Loaded,
    /// The requests replayed: (µs from the first, request).
    pub picked: Vec<(u64, TraceRequest)>,
    /// Replayed at the trace's instants (no `load` in the scenario).
    pub at_trace_instants: bool,
}

/// Reads scenario `s`'s trace, if it has one: selected by its `start` and `limit`, cut at the
/// scenario's `duration` (`duration`, already scaled), and (`--scale`) only the first `scale`
/// share of its requests.
pub fn prepare(
    c: &Config,
    s: &Scenario,
    duration: Option<Duration>,
    scale: f64,
) -> Result<Option<Arc<TraceRun>>, RunError> {
    let Some(spec) = &s.workload.trace else {
        return Ok(None);
    };
    let mut loaded = inferbench_config::trace::load(c, spec)
        .map_err(|e| RunError::Select(format!("scenario `{}`: trace: {e}", s.name.value)))?;
    let at_trace_instants =
        crate::kinds::Kind::of(&s.load, !s.arms.is_empty()) == crate::kinds::Kind::None;
    if at_trace_instants {
        loaded.replay.window_us = duration.map(|d| d.as_micros().min(u128::from(u64::MAX)) as u64);
    }
    let mut picked: Vec<(u64, TraceRequest)> = loaded
        .trace
        .select(&loaded.replay)
        .into_iter()
        .map(|(at, r)| (at, r.clone()))
        .collect();
    if scale < 1.0 {
        picked.truncate(((picked.len() as f64 * scale).round() as usize).max(1));
    }
    if picked.is_empty() {
        return Err(RunError::Select(format!(
            "scenario `{}`: the trace's selection leaves no request",
            s.name.value
        )));
    }
    Ok(Some(Arc::new(TraceRun {
        loaded,
        picked,
        at_trace_instants,
    })))
}

impl TraceRun {
    /// The replay instants, µs from the start of the schedule (after `warmup`, which the
    /// engine's offsets include: the trace starts when the warm-up would).
    pub fn offsets_us(&self) -> Vec<u64> {
        self.picked.iter().map(|(at, _)| *at).collect()
    }

    /// Request `k`'s trace row (the rows repeat if a load asks for more).
    pub fn row(&self, k: u64) -> &TraceRequest {
        &self.picked[(k % self.picked.len() as u64) as usize].1
    }

    /// What the report says of the replay, with the dispatch lag of `total`.
    pub fn report(&self, total: &RunResult) -> TraceReplay {
        let reqs = || self.picked.iter().map(|(_, r)| r);
        let implied = (self.loaded.trace.format
            == inferbench_workload::trace::TraceFormat::Mooncake)
            .then(|| implied_prefix_hits(reqs()))
            .filter(|(_, total)| *total > 0)
            .map(|(h, t)| h as f64 / t as f64);
        let lag = total.client.dispatch_lag.summary();
        let lagged = self.at_trace_instants && total.client.dispatch_lag.count() > 0;
        let r = &self.loaded.replay;
        TraceReplay {
            path: self.loaded.path.display().to_string(),
            format: self.loaded.trace.format.name().into(),
            rows: self.loaded.rows() as u64,
            skipped: self.loaded.trace.skipped.clone(),
            requests: self.picked.len() as u64,
            prompt_tokens: reqs().map(|r| u64::from(r.prompt_tokens)).sum(),
            output_tokens: reqs().map(|r| u64::from(r.output_tokens)).sum(),
            at_trace_instants: self.at_trace_instants,
            time_scale: r.time_scale,
            rate_scale: r.rate_scale,
            start_s: r.start_us as f64 / 1e6,
            span_s: self.picked.last().map_or(0, |p| p.0) as f64 / 1e6,
            implied_prefix_hit_rate: implied,
            lag_p50_us: lagged.then_some(lag.p50_us),
            lag_p99_us: lagged.then_some(lag.p99_us),
            lag_max_us: lagged.then_some(lag.max_us),
            late: if self.at_trace_instants {
                total.client.late
            } else {
                0
            },
        }
    }
}

/// Prompt ids of Mooncake blocks live in their own range: no other prompt starts like one.
const BLOCK_IDS: u64 = 5 << 60;

/// The prompt of trace row `r` with exactly its prompt tokens: its Mooncake blocks in order (a
/// block's words depend on its id alone, so equal leading ids give an equal prefix), then words
/// of its own (`uid`) for the rest.
pub fn prompt(synth: &PromptSynth, r: &TraceRequest, uid: u64) -> String {
    let len = r.prompt_tokens as usize;
    let mut text = String::with_capacity(len * 7);
    let mut written = 0usize;
    for id in &r.blocks {
        if written >= len {
            break;
        }
        let n = (MOONCAKE_BLOCK_TOKENS as usize).min(len - written);
        text.push_str(&synth.prompt(BLOCK_IDS | (id & ((1 << 60) - 1)), n));
        written += n;
    }
    if written < len {
        text.push_str(&synth.prompt(uid, len - written));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(blocks: &[u64], len: u32) -> TraceRequest {
        TraceRequest {
            at_us: 0,
            prompt_tokens: len,
            output_tokens: 1,
            model: None,
            blocks: blocks.to_vec(),
            stream: None,
            line: 1,
        }
    }

    #[test]
    fn prompts_have_the_trace_lengths_and_share_the_blocks() {
        let s = PromptSynth::new();
        let a = prompt(&s, &row(&[7, 8], 1000), 1);
        let b = prompt(&s, &row(&[7, 9], 1100), 2);
        let c = prompt(&s, &row(&[], 300), 3);
        assert_eq!(inferbench_tokens::count(&a), 1000);
        assert_eq!(inferbench_tokens::count(&b), 1100);
        assert_eq!(inferbench_tokens::count(&c), 300);
        let (ta, tb) = (inferbench_tokens::encode(&a), inferbench_tokens::encode(&b));
        let shared = ta.iter().zip(&tb).take_while(|(x, y)| x == y).count();
        assert_eq!(shared, 512, "one 512-token block in common");
    }
}
