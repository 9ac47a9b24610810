//! The simulated serving engine of one instance: continuous batching, KV cache, prefix cache and
//! LoRA slots, on tokio's clock (so tests can pause time).
//!
//! The model of time:
//! - A request waits (FCFS) until the running batch has a free slot (`max_num_seqs`), the KV cache
//!   can hold its prompt plus its output, and its LoRA adapter is active or a slot is free. A
//!   request blocked only by LoRA does not hold up the ones behind it (as vLLM's scheduler).
//! - Once scheduled at `t_s`, its first token comes at `t_s + ttft_ms + uncached × prefill_ms_per_token`
//!   (the prefix cache hits in whole blocks and always recomputes the last prompt token); with
//!   `prefill_slowdown` f > 0, that prefill takes × (1 + f × (running − 1) / max_num_seqs), or ×
//!   `prefill_factors[running − 1]` when measured factors are given (a fitted twin).
//! - Each later token comes `itl_ms × (1 + decode_slowdown × (running − 1) / max_num_seqs)` (or ×
//!   `itl_factors[running − 1]`) after the one before, with the batch size read at that token; with `prefill_interference` f > 0, also
//!   × (1 + f × min(1, P / max_num_batched_tokens)) where P is the uncached prompt tokens being
//!   prefilled at that moment (vLLM's chunked prefill shares each step with decode); with
//!   `prefill_stall` s > 0, each new prefill instead holds every running sequence's next token
//!   once for s × its prompt compute (uncached × `prefill_ms_per_token`), as llama.cpp's one
//!   step holding a whole prompt does.
//! - KV blocks in use grow with each sequence's prompt and generated tokens and are freed when it
//!   ends; admission reserves the whole sequence, so running sequences are never preempted.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::InstanceConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;
pub use crate::snapshot::{FinishReason, Snapshot};

/// What the engine needs to know of a request to schedule it.
#[derive(Debug, Clone)]
pub struct SeqSpec {
    /// Prompt token ids (for the count and the prefix cache).
    pub prompt: Vec<u32>,
    /// Output tokens this sequence will produce (≥ 1).
    pub output_tokens: usize,
    /// Tokens the KV cache must be able to hold for it (prompt + most output).
    pub reserve_tokens: usize,
    /// The LoRA adapter asked for, if any.
    pub lora: Option<String>,
    /// When the request arrived.
    pub arrival: Instant,
}

/// An LRU set of prefix-block hashes.
#[derive(Debug)]
struct PrefixCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<u64, u64>,
}

impl PrefixCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// Leading blocks found, and marks every block of the prompt as recently used.
    fn lookup_and_insert(&mut self, hashes: &[u64]) -> usize {
        let mut hits = 0;
        let mut leading = true;
        for h in hashes {
            self.tick += 1;
            let found = self.entries.insert(*h, self.tick).is_some();
            if leading && found {
                hits += 1;
            } else {
                leading = false;
            }
        }
        if self.entries.len() > self.capacity {
            // Evict the least recently used down to 90% of capacity, amortizing the sort.
            let keep = self.capacity * 9 / 10;
            let mut ticks: Vec<u64> = self.entries.values().copied().collect();
            let cut_at = ticks.len() - keep;
            ticks.select_nth_unstable(cut_at);
            let cut = ticks[cut_at];
            self.entries.retain(|_, t| *t >= cut);
        }
        hits
    }
}

/// Chained hashes of the prompt's full blocks, seeded by the model (or adapter) name.
pub fn block_hashes(model: &str, prompt: &[u32], block_size: usize) -> Vec<u64> {
    let mut prev = {
        let mut h = std::hash::DefaultHasher::new();
        model.hash(&mut h);
        h.finish()
    };
    prompt
        .chunks_exact(block_size)
        .map(|block| {
            let mut h = std::hash::DefaultHasher::new();
            prev.hash(&mut h);
            block.hash(&mut h);
            prev = h.finish();
            prev
        })
        .collect()
}

struct Waiter {
    id: u64,
    blocks: usize,
    lora: Option<String>,
    tx: oneshot::Sender<Grant>,
}

struct State {
    running: usize,
    committed_blocks: usize,
    waiting: VecDeque<Waiter>,
    /// Adapter → sequences running with it.
    lora_active: HashMap<String, usize>,
    prefix: PrefixCache,
    next_waiter: u64,
}

/// One instance's engine.
pub struct Engine {
    cfg: Arc<InstanceConfig>,
    state: Mutex<State>,
    running: AtomicUsize,
    /// Uncached prompt tokens of sequences scheduled but not yet at their first token.
    prefilling: AtomicUsize,
    /// Stall every running sequence owes to the prefills scheduled so far, µs in all
    /// (`prefill_stall`): each sequence pays what was added since it last looked.
    stall_total_us: AtomicU64,
    kv_used: AtomicUsize,
    seq_counter: AtomicU64,
    metrics: Arc<Metrics>,
    /// How late first tokens left the server, µs (the mock's own TTFT overhead).
    ttft_lag_us: Mutex<hdrhistogram::Histogram<u64>>,
}

/// Percentiles of the mock's own first-token lateness (emitted minus due), µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagSummary {
    /// First tokens measured.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Largest, µs.
    pub max_us: u64,
}

/// Resources granted to a scheduled sequence; handed back when it ends or is dropped.
struct Grant {
    engine: Arc<Engine>,
    blocks: usize,
    lora: Option<String>,
    scheduled: Instant,
    cached_tokens: usize,
    released: bool,
}

impl Grant {
    fn release_locked(&mut self, st: &mut State) {
        if self.released {
            return;
        }
        self.released = true;
        st.running -= 1;
        self.engine.running.store(st.running, Ordering::Relaxed);
        st.committed_blocks -= self.blocks;
        if let Some(l) = &self.lora
            && let Some(n) = st.lora_active.get_mut(l)
        {
            *n -= 1;
            if *n == 0 {
                st.lora_active.remove(l);
            }
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let engine = self.engine.clone();
        let mut failed = Vec::new();
        {
            let mut st = engine.state.lock();
            self.release_locked(&mut st);
            engine.admit_waiting(&mut st, &mut failed);
        }
        drop(failed);
    }
}

/// Removes a waiter from the queue if its request goes away before it is scheduled.
struct WaitGuard<'a> {
    engine: &'a Engine,
    id: u64,
    done: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut st = self.engine.state.lock();
            st.waiting.retain(|w| w.id != self.id);
        }
    }
}

impl Engine {
    /// An engine for `cfg`, reporting into `metrics`.
    pub fn new(cfg: Arc<InstanceConfig>, metrics: Arc<Metrics>) -> Arc<Self> {
        let capacity = cfg.kv_blocks.max(1);
        Arc::new(Self {
            state: Mutex::new(State {
                running: 0,
                committed_blocks: 0,
                waiting: VecDeque::new(),
                lora_active: HashMap::new(),
                prefix: PrefixCache::new(capacity),
                next_waiter: 0,
            }),
            cfg,
            running: AtomicUsize::new(0),
            prefilling: AtomicUsize::new(0),
            stall_total_us: AtomicU64::new(0),
            kv_used: AtomicUsize::new(0),
            seq_counter: AtomicU64::new(0),
            metrics,
            ttft_lag_us: Mutex::new(
                hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("constant bounds are valid"),
            ),
        })
    }

    /// The configuration it simulates.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Blocks needed to hold `tokens` tokens.
    pub fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.cfg.block_size)
    }

    fn can_admit(&self, st: &State, blocks: usize, lora: Option<&str>) -> (bool, bool) {
        let capacity_ok = st.running < self.cfg.max_num_seqs
            && st.committed_blocks + blocks <= self.cfg.kv_blocks;
        let lora_ok = match lora {
            None => true,
            Some(l) => st.lora_active.contains_key(l) || st.lora_active.len() < self.cfg.max_loras,
        };
        (capacity_ok, lora_ok)
    }

    fn grant_locked(
        self: &Arc<Self>,
        st: &mut State,
        blocks: usize,
        lora: Option<String>,
    ) -> Grant {
        st.running += 1;
        self.running.store(st.running, Ordering::Relaxed);
        st.committed_blocks += blocks;
        if let Some(l) = &lora {
            *st.lora_active.entry(l.clone()).or_insert(0) += 1;
        }
        Grant {
            engine: self.clone(),
            blocks,
            lora,
            scheduled: Instant::now(),
            cached_tokens: 0,
            released: false,
        }
    }

    /// Schedules whatever waiting requests now fit. Grants whose requester has gone are released
    /// here and pushed to `failed` so their (no-op) drop happens after the lock is released.
    fn admit_waiting(self: &Arc<Self>, st: &mut State, failed: &mut Vec<Grant>) {
        let mut i = 0;
        while i < st.waiting.len() {
            let (capacity_ok, lora_ok) = {
                let w = &st.waiting[i];
                self.can_admit(st, w.blocks, w.lora.as_deref())
            };
            if !capacity_ok {
                break;
            }
            if !lora_ok {
                i += 1;
                continue;
            }
            let Some(w) = st.waiting.remove(i) else { break };
            let grant = self.grant_locked(st, w.blocks, w.lora);
            if let Err(mut g) = w.tx.send(grant) {
                g.release_locked(st);
                failed.push(g);
            }
        }
    }

    /// Waits until the request is scheduled, then returns its running sequence.
    /// A full waiting queue answers 429; a request larger than the whole KV cache, 400.
    pub async fn schedule(self: &Arc<Self>, spec: SeqSpec) -> Result<Sequence, ApiError> {
        let blocks = self.blocks_for(spec.reserve_tokens);
        if blocks > self.cfg.kv_blocks {
            return Err(ApiError::bad_request(
                format!(
                    "the request needs {} KV-cache blocks of {} tokens but the cache has {}",
                    blocks, self.cfg.block_size, self.cfg.kv_blocks
                ),
                Some("max_tokens"),
            ));
        }
        let (id, rx) = {
            let mut st = self.state.lock();
            if st.waiting.len() >= self.cfg.max_waiting {
                return Err(ApiError::status(
                    http::StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "the waiting queue is full ({} requests)",
                        self.cfg.max_waiting
                    ),
                ));
            }
            let (tx, rx) = oneshot::channel();
            let id = st.next_waiter;
            st.next_waiter += 1;
            st.waiting.push_back(Waiter {
                id,
                blocks,
                lora: spec.lora.clone(),
                tx,
            });
            let mut failed = Vec::new();
            self.admit_waiting(&mut st, &mut failed);
            drop(st);
            drop(failed);
            (id, rx)
        };
        let mut guard = WaitGuard {
            engine: self,
            id,
            done: false,
        };
        let mut grant = rx.await.map_err(|_| {
            ApiError::status(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "the engine is shutting down",
            )
        })?;
        guard.done = true;
        // Prefix-cache lookup happens at scheduling, as in vLLM.
        let model_key = spec.lora.as_deref().unwrap_or(&self.cfg.model);
        let hashes = block_hashes(model_key, &spec.prompt, self.cfg.block_size);
        let hit_blocks = self.state.lock().prefix.lookup_and_insert(&hashes);
        let prompt_len = spec.prompt.len();
        let cached = (hit_blocks * self.cfg.block_size).min(prompt_len.saturating_sub(1));
        grant.cached_tokens = cached;
        self.metrics.prefix_queries.inc_by(prompt_len as u64);
        self.metrics.prompt_tokens.inc_by(prompt_len as u64);
        self.metrics.prefix_hits.inc_by(cached as u64);
        let scheduled = grant.scheduled;
        self.metrics
            .queue_time
            .observe(secs(scheduled - spec.arrival));

        let seq_no = self.seq_counter.fetch_add(1, Ordering::Relaxed);
        let mut rng =
            StdRng::seed_from_u64(self.cfg.seed ^ seq_no.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut prefill_ms =
            self.cfg.ttft_ms + (prompt_len - cached) as f64 * self.cfg.prefill_ms_per_token;
        // The others running when it is scheduled share its steps.
        let running = self.running.load(Ordering::Relaxed).max(1);
        if let Some(f) = factor_at(&self.cfg.prefill_factors, running) {
            prefill_ms *= f;
        } else if self.cfg.prefill_slowdown > 0.0 {
            prefill_ms *= 1.0
                + self.cfg.prefill_slowdown * (running - 1) as f64
                    / self.cfg.max_num_seqs.max(1) as f64;
        }
        let prefill = jittered(prefill_ms, self.cfg.jitter, &mut rng);
        let initial_blocks = self.blocks_for(prompt_len);
        self.kv_used.fetch_add(initial_blocks, Ordering::Relaxed);
        let prefilling = prompt_len - cached;
        self.prefilling.fetch_add(prefilling, Ordering::Relaxed);
        if self.cfg.prefill_stall > 0.0 {
            // One engine step holds this prompt: everyone running waits for its compute once.
            let stall_ms =
                prefilling as f64 * self.cfg.prefill_ms_per_token * self.cfg.prefill_stall;
            self.stall_total_us
                .fetch_add((stall_ms * 1000.0).round() as u64, Ordering::Relaxed);
        }
        Ok(Sequence {
            engine: self.clone(),
            grant: Some(grant),
            arrival: spec.arrival,
            scheduled,
            prompt_tokens: prompt_len,
            cached_tokens: cached,
            output_tokens: spec.output_tokens.max(1),
            emitted: 0,
            next_at: later(scheduled, prefill),
            last_at: scheduled,
            first_at: None,
            kv_blocks_held: initial_blocks,
            prefilling,
            stall_seen_us: self.stall_total_us.load(Ordering::Relaxed),
            rng,
        })
    }

    /// The current state, for metrics.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.state.lock();
        let mut running_loras: Vec<String> = st.lora_active.keys().cloned().collect();
        running_loras.sort();
        let mut waiting_loras: Vec<String> =
            st.waiting.iter().filter_map(|w| w.lora.clone()).collect();
        waiting_loras.sort();
        waiting_loras.dedup();
        let kv_used_blocks = self.kv_used.load(Ordering::Relaxed);
        Snapshot {
            running: st.running,
            waiting: st.waiting.len(),
            kv_used_blocks,
            kv_usage: (kv_used_blocks as f64 / self.cfg.kv_blocks as f64).min(1.0),
            running_loras,
            waiting_loras,
        }
    }

    /// Records how late a first token was handed to the connection.
    pub fn record_ttft_lag(&self, lag: Duration) {
        self.metrics.ttft_lag.observe(lag.as_secs_f64());
        let _ = self
            .ttft_lag_us
            .lock()
            .record((lag.as_micros() as u64).max(1));
    }

    /// The mock's own first-token lateness so far.
    pub fn ttft_lag(&self) -> LagSummary {
        let h = self.ttft_lag_us.lock();
        LagSummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }

    fn itl(&self, rng: &mut StdRng) -> Duration {
        let running = self.running.load(Ordering::Relaxed).max(1);
        let mut factor = factor_at(&self.cfg.itl_factors, running).unwrap_or_else(|| {
            1.0 + self.cfg.decode_slowdown * (running - 1) as f64 / self.cfg.max_num_seqs as f64
        });
        if self.cfg.prefill_interference > 0.0 {
            let busy = self.prefilling.load(Ordering::Relaxed) as f64
                / self.cfg.max_num_batched_tokens as f64;
            factor *= 1.0 + self.cfg.prefill_interference * busy.min(1.0);
        }
        jittered(self.cfg.itl_ms * factor, self.cfg.jitter, rng)
    }
}

/// The measured factor for `running` sequences (the last entry beyond the list); `None` when
/// there is no list.
fn factor_at(list: &[f64], running: usize) -> Option<f64> {
    let i = running.max(1).min(list.len()).checked_sub(1)?;
    list.get(i).copied()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Longest delay the engine will schedule (configurations are bounded far below it).
const MAX_DELAY: Duration = Duration::from_secs(1 << 30);

fn jittered(ms: f64, jitter: f64, rng: &mut StdRng) -> Duration {
    let f = if jitter > 0.0 && jitter < 1.0 {
        1.0 + rng.random_range(-jitter..jitter)
    } else {
        1.0
    };
    let secs = ms * f / 1000.0;
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

/// `t + d`, or the furthest instant within reach when that would overflow.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(MAX_DELAY))
        .unwrap_or(t)
}

/// A scheduled sequence producing its tokens on the clock. Dropping it frees its resources.
pub struct Sequence {
    engine: Arc<Engine>,
    grant: Option<Grant>,
    arrival: Instant,
    scheduled: Instant,
    prompt_tokens: usize,
    cached_tokens: usize,
    output_tokens: usize,
    emitted: usize,
    next_at: Instant,
    last_at: Instant,
    first_at: Option<Instant>,
    kv_blocks_held: usize,
    /// Uncached prompt tokens still counted in the engine's prefill load.
    prefilling: usize,
    /// The engine's stall total when this sequence last paid it (µs).
    stall_seen_us: u64,
    rng: StdRng,
}

impl Sequence {
    /// Prompt tokens.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }
    /// Prompt tokens served from the prefix cache.
    pub fn cached_tokens(&self) -> usize {
        self.cached_tokens
    }
    /// Output tokens it will produce in all.
    pub fn output_tokens(&self) -> usize {
        self.output_tokens
    }
    /// Output tokens produced so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }
    /// When it arrived.
    pub fn arrival(&self) -> Instant {
        self.arrival
    }
    /// When it was scheduled.
    pub fn scheduled(&self) -> Instant {
        self.scheduled
    }
    /// vLLM's per-request `metrics` object: queue, scheduled to first token, first to last
    /// token (ms), and output tokens per second.
    pub fn metrics_json(&self) -> String {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let first = self.first_at.unwrap_or(self.last_at);
        let generation = ms(self.last_at.saturating_duration_since(first));
        let per_s = if generation > 0.0 {
            self.emitted as f64 / (generation / 1000.0)
        } else {
            0.0
        };
        format!(
            "{{\"queue_time_ms\":{:.3},\"time_to_first_token_ms\":{:.3},\"generation_time_ms\":{:.3},\"tokens_per_second\":{per_s:.3}}}",
            ms(self.scheduled.saturating_duration_since(self.arrival)),
            ms(first.saturating_duration_since(self.scheduled)),
            generation
        )
    }

    /// When its first token was produced.
    pub fn first_token_at(&self) -> Option<Instant> {
        self.first_at
    }
    /// The engine it runs on.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
    /// Whether every token has been produced.
    pub fn is_done(&self) -> bool {
        self.emitted >= self.output_tokens
    }
    /// When the next token is due, if any remains.
    pub fn next_due(&self) -> Option<Instant> {
        (!self.is_done()).then_some(self.next_at)
    }

    /// Produces the tokens due by `now`, at most `limit`; returns how many.
    pub fn advance(&mut self, now: Instant, limit: usize) -> usize {
        let mut n = 0;
        while n < limit && !self.is_done() && self.next_at <= now {
            let at = self.next_at;
            let stall_total = self.engine.stall_total_us.load(Ordering::Relaxed);
            if self.emitted == 0 {
                self.first_at = Some(at);
                self.end_prefill();
                // Prefills scheduled while it was prefilling shared its steps: nothing owed.
                self.stall_seen_us = stall_total;
                self.engine.metrics.ttft.observe(secs(at - self.arrival));
            } else {
                let gap = secs(at - self.last_at);
                self.engine.metrics.itl.observe(gap);
            }
            self.last_at = at;
            self.emitted += 1;
            n += 1;
            if !self.is_done() {
                let owed = Duration::from_micros(stall_total.saturating_sub(self.stall_seen_us));
                self.stall_seen_us = stall_total;
                self.next_at = later(at, self.engine.itl(&mut self.rng) + owed);
            }
        }
        if n > 0 {
            self.engine.metrics.generation_tokens.inc_by(n as u64);
            let blocks = self.engine.blocks_for(self.prompt_tokens + self.emitted);
            if blocks > self.kv_blocks_held {
                self.engine
                    .kv_used
                    .fetch_add(blocks - self.kv_blocks_held, Ordering::Relaxed);
                self.kv_blocks_held = blocks;
            }
        }
        n
    }

    /// Produces every remaining token, sleeping until the last is due; for unary answers.
    pub async fn run_to_end(&mut self) {
        while let Some(due) = self.next_due() {
            tokio::time::sleep_until(due).await;
            self.advance(Instant::now(), usize::MAX);
        }
    }

    /// Records the end of a sequence that produced all its tokens.
    pub fn finish(&mut self, reason: FinishReason) {
        if self.grant.is_none() {
            return;
        }
        let m = &self.engine.metrics;
        m.e2e.observe(secs(self.last_at - self.arrival));
        // As vLLM: the phases of a finished request, observed when it ends.
        if let Some(first) = self.first_at {
            m.prefill_time.observe(secs(first - self.scheduled));
            m.decode_time.observe(secs(self.last_at - first));
        }
        m.inference_time
            .observe(secs(self.last_at - self.scheduled));
        m.success(reason).inc();
        self.release();
    }

    /// This sequence's prefill is over (first token, or gone before it).
    fn end_prefill(&mut self) {
        let n = std::mem::take(&mut self.prefilling);
        if n > 0 {
            self.engine.prefilling.fetch_sub(n, Ordering::Relaxed);
        }
    }

    fn release(&mut self) {
        self.end_prefill();
        if let Some(grant) = self.grant.take() {
            self.engine
                .kv_used
                .fetch_sub(self.kv_blocks_held, Ordering::Relaxed);
            self.kv_blocks_held = 0;
            drop(grant);
        }
    }
}

impl Drop for Sequence {
    fn drop(&mut self) {
        if self.grant.is_some() {
            self.engine.metrics.success(FinishReason::Abort).inc();
        }
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(cfg: InstanceConfig) -> Arc<Engine> {
        Engine::new(Arc::new(cfg), Arc::new(Metrics::new("m", 16, 100)))
    }

    fn spec(prompt: usize, out: usize) -> SeqSpec {
        SeqSpec {
            prompt: (0..prompt as u32).collect(),
            output_tokens: out,
            reserve_tokens: prompt + out,
            lora: None,
            arrival: Instant::now(),
        }
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[tokio::test(start_paused = true)]
    async fn ttft_is_prefill_and_decode_follows_itl() {
        let e = engine(InstanceConfig {
            ttft_ms: 40.0,
            prefill_ms_per_token: 0.5,
            itl_ms: 5.0,
            decode_slowdown: 0.0,
            ..Default::default()
        });
        let t0 = Instant::now();
        let mut s = e.schedule(spec(100, 10)).await.unwrap();
        let mut times = Vec::new();
        while let Some(due) = s.next_due() {
            tokio::time::sleep_until(due).await;
            let n = s.advance(Instant::now(), usize::MAX);
            assert_eq!(n, 1);
            times.push(Instant::now());
        }
        assert_eq!(times.len(), 10);
        assert_eq!(ms(times[0] - t0), 40.0 + 100.0 * 0.5);
        for w in times.windows(2) {
            assert_eq!(ms(w[1] - w[0]), 5.0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn uncached_prefill_slows_the_decode_of_others() {
        let e = engine(InstanceConfig {
            ttft_ms: 1.0,
            prefill_ms_per_token: 0.1,
            itl_ms: 10.0,
            decode_slowdown: 0.0,
            prefill_interference: 1.0,
            max_num_batched_tokens: 2048,
            ..Default::default()
        });
        let mut a = e.schedule(spec(16, 50)).await.unwrap();
        // a's own prefill is over at its first token: its gaps are the plain 10 ms.
        let t0 = Instant::now();
        tokio::time::sleep_until(a.next_due().unwrap()).await;
        a.advance(Instant::now(), 1);
        let gap = a.next_due().unwrap() - a.first_token_at().unwrap();
        assert!((ms(gap) - 10.0).abs() < 0.01, "{gap:?}");
        // A 4,096-token uncached prefill starts: a's next gap doubles (budget full), until it ends.
        let mut b = e.schedule(spec(4096, 2)).await.unwrap();
        let due = a.next_due().unwrap();
        tokio::time::sleep_until(due).await;
        a.advance(Instant::now(), 1);
        let gap = a.next_due().unwrap() - due;
        assert!((ms(gap) - 20.0).abs() < 0.01, "{gap:?}");
        // b's first token (after ~410 ms of prefill) ends the interference.
        tokio::time::sleep_until(b.next_due().unwrap()).await;
        b.advance(Instant::now(), 1);
        while a.next_due().unwrap() <= Instant::now() {
            a.advance(Instant::now(), 1);
        }
        let due = a.next_due().unwrap();
        tokio::time::sleep_until(due).await;
        a.advance(Instant::now(), 1);
        let gap = a.next_due().unwrap() - due;
        assert!(
            (ms(gap) - 10.0).abs() < 0.01,
            "{gap:?} after {:?}",
            t0.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queue_then_prefill_when_batch_is_full() {
        let e = engine(InstanceConfig {
            ttft_ms: 20.0,
            itl_ms: 10.0,
            max_num_seqs: 1,
            decode_slowdown: 0.0,
            ..Default::default()
        });
        let t0 = Instant::now();
        let mut a = e.schedule(spec(16, 5)).await.unwrap();
        let e2 = e.clone();
        let b = tokio::spawn(async move {
            let mut b = e2.schedule(spec(16, 1)).await.unwrap();
            b.run_to_end().await;
            (b.scheduled(), b.first_token_at())
        });
        tokio::task::yield_now().await;
        assert_eq!(e.snapshot().waiting, 1);
        assert_eq!(e.snapshot().running, 1);
        a.run_to_end().await;
        a.finish(FinishReason::Length);
        // a ends at 20 + 4 × 10 = 60 ms; b is scheduled then, first token 20 ms later.
        let (sched, first) = b.await.unwrap();
        assert_eq!(ms(sched - t0), 60.0);
        assert_eq!(ms(first.unwrap() - t0), 80.0);
    }

    #[tokio::test(start_paused = true)]
    async fn prefix_cache_hit_lowers_ttft_and_counts_cached_tokens() {
        let e = engine(InstanceConfig {
            ttft_ms: 10.0,
            prefill_ms_per_token: 1.0,
            block_size: 16,
            ..Default::default()
        });
        let mut first = e.schedule(spec(100, 1)).await.unwrap();
        assert_eq!(first.cached_tokens(), 0);
        first.run_to_end().await;
        drop(first);
        let t0 = Instant::now();
        let mut second = e.schedule(spec(100, 1)).await.unwrap();
        assert_eq!(second.cached_tokens(), 96);
        second.run_to_end().await;
        assert_eq!(ms(second.first_token_at().unwrap() - t0), 10.0 + 4.0);
    }

    #[tokio::test(start_paused = true)]
    async fn lora_slots_make_a_request_wait_but_not_others() {
        let e = engine(InstanceConfig {
            max_loras: 1,
            ttft_ms: 1.0,
            itl_ms: 1.0,
            ..Default::default()
        });
        let with = |l: &str| SeqSpec {
            lora: Some(l.to_string()),
            ..spec(4, 3)
        };
        let a = e.schedule(with("a")).await.unwrap();
        let e2 = e.clone();
        let spec_b = with("b");
        let b = tokio::spawn(async move { e2.schedule(spec_b).await });
        tokio::task::yield_now().await;
        assert_eq!(e.snapshot().waiting_loras, vec!["b".to_string()]);
        // A plain request behind it is not held up by the LoRA wait.
        let c = e.schedule(spec(4, 1)).await.unwrap();
        assert_eq!(c.scheduled(), Instant::now());
        // Same adapter as the active one gets in at once.
        let a2 = e.schedule(with("a")).await.unwrap();
        assert_eq!(e.snapshot().running_loras, vec!["a".to_string()]);
        tokio::time::sleep(Duration::from_millis(7)).await;
        drop(a);
        drop(a2);
        let seq_b = b.await.unwrap().unwrap();
        assert_eq!(
            seq_b.scheduled(),
            Instant::now(),
            "b is scheduled the moment the slot frees"
        );
        assert_eq!(e.snapshot().running_loras, vec!["b".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn kv_usage_grows_with_tokens_and_is_freed() {
        let e = engine(InstanceConfig {
            kv_blocks: 100,
            block_size: 10,
            ttft_ms: 1.0,
            itl_ms: 1.0,
            ..Default::default()
        });
        let mut s = e.schedule(spec(95, 20)).await.unwrap();
        assert_eq!(e.snapshot().kv_used_blocks, 10);
        s.run_to_end().await;
        assert_eq!(e.snapshot().kv_used_blocks, 12);
        assert!((e.snapshot().kv_usage - 0.12).abs() < 1e-9);
        s.finish(FinishReason::Length);
        assert_eq!(e.snapshot().kv_used_blocks, 0);
        assert_eq!(e.snapshot().running, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn kv_pressure_queues_and_oversized_is_rejected() {
        let e = engine(InstanceConfig {
            kv_blocks: 10,
            block_size: 10,
            ttft_ms: 1.0,
            itl_ms: 1.0,
            ..Default::default()
        });
        let a = e.schedule(spec(50, 30)).await.unwrap();
        let e2 = e.clone();
        let b = tokio::spawn(async move { e2.schedule(spec(50, 30)).await.map(|s| s.scheduled()) });
        tokio::task::yield_now().await;
        assert_eq!(e.snapshot().waiting, 1);
        tokio::time::sleep(Duration::from_millis(3)).await;
        drop(a);
        assert_eq!(b.await.unwrap().unwrap(), Instant::now());
        let err = e.schedule(spec(100, 30)).await.err().unwrap();
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
    }

    #[tokio::test(start_paused = true)]
    async fn full_waiting_queue_is_429_and_cancelled_waiters_leave() {
        let e = engine(InstanceConfig {
            max_num_seqs: 1,
            max_waiting: 1,
            ..Default::default()
        });
        let _a = e.schedule(spec(4, 1)).await.unwrap();
        let e2 = e.clone();
        let waiter = tokio::spawn(async move { e2.schedule(spec(4, 1)).await.map(|_| ()) });
        tokio::task::yield_now().await;
        let err = e.schedule(spec(4, 1)).await.err().unwrap();
        assert_eq!(err.status, http::StatusCode::TOO_MANY_REQUESTS);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(e.snapshot().waiting, 0);
    }

    #[test]
    fn block_hashes_chain_and_depend_on_model() {
        let p: Vec<u32> = (0..40).collect();
        let a = block_hashes("m", &p, 16);
        assert_eq!(a.len(), 2);
        assert_ne!(a, block_hashes("other", &p, 16));
        let mut q = p.clone();
        q[0] = 99;
        let b = block_hashes("m", &q, 16);
        assert_ne!(a[1], b[1], "a change in block 0 changes every later hash");
    }

    #[test]
    fn jittered_never_panics_on_extreme_times() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(jittered(1e300, 0.0, &mut rng), MAX_DELAY);
        assert_eq!(jittered(f64::INFINITY, 0.5, &mut rng), MAX_DELAY);
        assert_eq!(jittered(f64::NAN, 0.0, &mut rng), Duration::ZERO);
        assert_eq!(jittered(-5.0, 0.0, &mut rng), Duration::ZERO);
        assert_eq!(jittered(3.0, f64::NAN, &mut rng), Duration::from_millis(3));
        assert_eq!(jittered(1500.0, 0.0, &mut rng), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_longest_allowed_times_schedule_without_overflow() {
        let e = engine(InstanceConfig {
            ttft_ms: crate::config::limits::MAX_MS,
            prefill_ms_per_token: crate::config::limits::MAX_MS,
            itl_ms: crate::config::limits::MAX_MS,
            decode_slowdown: crate::config::limits::MAX_FACTOR,
            ..Default::default()
        });
        let t0 = Instant::now();
        let s = e.schedule(spec(1000, 2)).await.unwrap();
        // 1 h + 1000 × 1 h of prefill.
        assert_eq!(s.next_due().unwrap() - t0, Duration::from_secs(3600 * 1001));
    }
}
