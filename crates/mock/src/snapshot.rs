//! What the engine shows of itself: a point-in-time [`Snapshot`] (for `/metrics` and tests) and
//! why a sequence ended ([`FinishReason`]). A leaf module, so that the engine (which records
//! into the metrics) and the metrics (which render snapshots) do not import each other.

/// A point-in-time view of the engine, for `/metrics` and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Sequences in the running batch.
    pub running: usize,
    /// Requests waiting to be scheduled.
    pub waiting: usize,
    /// KV blocks holding tokens of running sequences.
    pub kv_used_blocks: usize,
    /// Fraction 0..1 of the KV cache in use.
    pub kv_usage: f64,
    /// Adapters with running sequences, sorted.
    pub running_loras: Vec<String>,
    /// Adapters of waiting requests, sorted, without repeats.
    pub waiting_loras: Vec<String>,
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// It produced `max_tokens`.
    Length,
    /// It stopped on its own (the simulated EOS).
    Stop,
    /// The client went away or a fault cut it short.
    Abort,
}

impl FinishReason {
    /// The OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::Stop => "stop",
            FinishReason::Abort => "abort",
        }
    }
}
