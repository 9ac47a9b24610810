//! Turns a scenario's `workload:` into the request source the engine calls for request k:
//! lengths, model and adapter mix, stream/unary mix, shared prefixes, JSONL prompts and
//! multi-turn conversations. Deterministic in (seed, k).

use std::sync::Arc;
use std::time::Duration;

use inferbench_loadgen::client::RequestSpec;
use inferbench_loadgen::engine::Source;
use inferbench_workload::dist::LengthDist;
use inferbench_workload::prompt::PromptSynth;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use inferbench_config::{Config, ConfigError, Scenario, Target, Weighted};

/// The model a mock fleet serves when nothing else is said.
pub const DEFAULT_MODEL: &str = "mock-model";

/// The models a scenario asks for, with weights: its mix, else the target's first model.
pub fn model_mix(s: &Scenario, target: &Target) -> Vec<(String, f64)> {
    let w = &s.workload;
    let weight = |m: &Weighted| m.weight.as_ref().map_or(1.0, |w| w.value);
    let mut mix: Vec<(String, f64)> = w
        .models
        .iter()
        .chain(&w.lora)
        .map(|m| (m.name.clone(), weight(m)))
        .collect();
    if w.models.is_empty() {
        let base = target
            .models
            .first()
            .cloned()
            .unwrap_or_else(|| DEFAULT_MODEL.to_string());
        // Adapters alone share the load with the base model only if it is listed.
        if mix.is_empty() {
            mix.push((base, 1.0));
        }
    }
    mix
}

/// Request `k`'s own randomness (the same whichever shard or step sends it).
fn request_rng(seed: u64, k: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A model drawn from the weighted `mix` (weights summing to `total`); the first if it is empty.
fn pick_model(mix: &[(String, f64)], total: f64, rng: &mut Xoshiro256PlusPlus) -> String {
    let mut pick = rng.random::<f64>() * total;
    for (name, wt) in mix {
        if pick < *wt {
            return name.clone();
        }
        pick -= wt;
    }
    mix.first().map(|m| m.0.clone()).unwrap_or_default()
}

/// One class of a weighted mix (or `default` when there is no mix).
fn pick_dist<'a>(
    mix: &'a [(LengthDist, f64)],
    default: &'a LengthDist,
    rng: &mut Xoshiro256PlusPlus,
) -> &'a LengthDist {
    if mix.is_empty() {
        return default;
    }
    let total: f64 = mix.iter().map(|m| m.1).sum();
    let mut x = rng.random::<f64>() * total;
    for (d, w) in mix {
        if x < *w {
            return d;
        }
        x -= w;
    }
    &mix[mix.len() - 1].0
}

/// Builds the request source of scenario `s` on `target`.
/// `time_scale` multiplies the think time (as `--scale` does every duration).
pub fn source(
    c: &Config,
    s: &Scenario,
    target: &Target,
    seed: u64,
    time_scale: f64,
    trace: Option<Arc<crate::trace::TraceRun>>,
) -> Result<Source, ConfigError> {
    let w = &s.workload;
    let (prompt_dist, output_dist) = s.workload.lengths();
    let mix_of = |m: &[inferbench_config::WeightedTokens]| -> Vec<(LengthDist, f64)> {
        m.iter()
            .map(|x| {
                (
                    x.tokens.0.clone(),
                    x.weight.as_ref().map_or(1.0, |w| w.value),
                )
            })
            .collect()
    };
    let prompt_mix = mix_of(&w.prompt_mix);
    let output_mix = mix_of(&w.output_mix);
    let mix = model_mix(s, target);
    let total: f64 = mix.iter().map(|(_, w)| w).sum();
    let stream_ratio = match (&w.stream_ratio, w.stream) {
        (Some(r), _) => r.value,
        (None, Some(false)) => 0.0,
        _ => 1.0,
    };
    let prefix = w.shared_prefix.as_ref().map(|p| {
        (
            p.groups.value.max(1) as u64,
            p.prompts_per_group.value.max(1) as u64,
            p.prefix_tokens.value.max(0) as usize,
        )
    });
    let file = match &w.prompts_file {
        Some(p) => Some(Arc::new(inferbench_config::prompts::read_prompts(
            &c.relative(p),
        )?)),
        None => None,
    };
    let turns = w
        .multi_turn
        .as_ref()
        .map_or(1, |m| m.turns.value.max(1) as usize);
    let think = w
        .multi_turn
        .as_ref()
        .and_then(|m| m.think_time)
        .map_or(Duration::ZERO, |d| d.0.mul_f64(time_scale.clamp(0.0, 1e6)));
    let prefix_seed = s.seed.unwrap_or(1);
    let synth = PromptSynth::new();
    if let Some(tr) = trace {
        // The trace's lengths, models (when the target serves them) and blocks; the stream
        // mix from the trace when it says, else the workload's.
        let served: Vec<String> = target.models.clone();
        return Ok(Arc::new(move |k| {
            let r = tr.row(k);
            let mut rng = request_rng(seed, k);
            let mut model = pick_model(&mix, total, &mut rng);
            if let Some(m) = r.model.as_ref().filter(|m| served.contains(m)) {
                model = m.clone();
            }
            let stream = r
                .stream
                .unwrap_or_else(|| rng.random::<f64>() < stream_ratio);
            let uid = seed.wrapping_mul(1_000_003).wrapping_add(k) & ((1 << 60) - 1);
            RequestSpec {
                model,
                prompt: crate::trace::prompt(&synth, r, uid),
                max_tokens: (r.output_tokens as usize).max(1),
                stream,
                prompt_tokens: Some(r.prompt_tokens as usize),
                ..RequestSpec::default()
            }
        }));
    }
    Ok(Arc::new(move |k| {
        let mut rng = request_rng(seed, k);
        let mut model = pick_model(&mix, total, &mut rng);
        let stream = rng.random::<f64>() < stream_ratio;
        let mut max_tokens = pick_dist(&output_mix, &output_dist, &mut rng)
            .sample(&mut rng)
            .max(1);
        let mut history = Vec::new();
        let prompt_len = pick_dist(&prompt_mix, &prompt_dist, &mut rng).sample(&mut rng);
        // Prompt ids: request ids are small; prefix and follow-up ids live in their own ranges
        // so no two kinds start alike.
        let uid = seed.wrapping_mul(1_000_003).wrapping_add(k) & ((1 << 60) - 1);
        let mut known_len = Some(prompt_len);
        let prompt = if let Some(f) = &file {
            known_len = None;
            let p = &f[(k % f.len() as u64) as usize];
            history = p.history.clone();
            if let Some(m) = p.max_tokens {
                max_tokens = m.max(1);
            }
            if let Some(m) = &p.model {
                model = m.clone();
            }
            p.prompt.clone()
        } else if let Some((groups, members, prefix_tokens)) = prefix {
            let g = rng.random_range(0..groups);
            let m = rng.random_range(0..members);
            // The groups' prefixes depend on the scenario's seed only: every window and arm of
            // a run shares the same system prompts.
            let mut text = synth.prompt((1 << 61) | (prefix_seed << 32) ^ g, prefix_tokens);
            let suffix_id =
                (1 << 62) | ((prefix_seed ^ g).wrapping_mul(1_000_033) ^ m ^ (seed << 40));
            text.push_str(&synth.prompt(suffix_id, prompt_len));
            known_len = Some(prefix_tokens + prompt_len);
            text
        } else {
            synth.prompt(uid, prompt_len)
        };
        let follow_ups = (1..turns)
            .map(|t| {
                let id =
                    (3 << 61) | (uid.wrapping_mul(64).wrapping_add(t as u64) & ((1 << 61) - 1));
                synth.prompt(id, prompt_dist.sample(&mut rng))
            })
            .collect();
        RequestSpec {
            model,
            prompt,
            history,
            max_tokens,
            stream,
            follow_ups,
            think_time: think,
            prompt_tokens: known_len,
        }
    }))
}
