//! The bounds every scenario file (and every scenario built from flags) must keep; documented in
//! `docs/scenarios.md` ("Limits"). They are far above what one client machine can drive, and
//! low enough that a typo (an extra `000`, `1e12`) is refused instead of exhausting memory or
//! CPU.
use std::time::Duration;

/// Most requests/s of any open-loop rate (`rate`, stage rates, stress `start`/`step`/`max`)
/// and most users/s of `users.spawn_rate`; rates must also be > 0 (stage rates ≥ 0).
pub const MAX_RATE: f64 = 100_000.0;
/// Most requests in flight of a closed loop (`concurrency`, stage and stress levels,
/// `sweep.max_concurrency`, `users.users`).
pub const MAX_CONCURRENCY: i64 = 100_000;
/// Most prompt or output tokens of one request: every parameter of a length distribution,
/// mixes, `shared_prefix.prefix_tokens` (plus the prompt after it), a prompts file's
/// `max_tokens`, and the last turn of a multi-turn conversation (which carries the history).
pub const MAX_TOKENS: u64 = 1_000_000;
/// Longest duration: `duration`, `warmup`, stage, step and hold durations, the users ramp
/// (`users / spawn_rate`), `arm_window`, timeouts and SLO limits.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest `multi_turn.think_time`.
pub const MAX_THINK_TIME: Duration = Duration::from_secs(3600);
/// Longest `retry_backoff` (the wait before the first retry; it doubles at each further one).
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(3600);
/// Most measured requests (`requests`) and `stop.min_requests`.
pub const MAX_REQUESTS: u64 = 1_000_000_000;
/// Most steps of a load: `stages`, `sweep.rates`, stress rate steps
/// (`(max − start) / step + 1`) and stress concurrency levels.
pub const MAX_STEPS: u64 = 1_000;
/// Most retries of a failed request.
pub const MAX_RETRIES: u32 = 10;
/// Most open-loop requests in flight (`max_in_flight`).
pub const MAX_IN_FLIGHT: u64 = 1_000_000;
/// Most turns of a multi-turn conversation.
pub const MAX_TURNS: i64 = 1_000;
/// Most `shared_prefix.groups` and `shared_prefix.prompts_per_group`.
pub const MAX_PREFIX_GROUPS: i64 = 1_000_000;
/// Largest relative weight (mixes, models, adapters) and arm scorer weight or threshold.
pub const MAX_WEIGHT: f64 = 1e9;
/// Most `repeats` of a suite entry.
pub const MAX_REPEATS: u32 = 1_000;
/// Most arm windows in a run (`duration / arm_window`).
pub const MAX_ARM_WINDOWS: f64 = 1_000_000.0;
