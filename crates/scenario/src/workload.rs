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
use serde::Deserialize;

use crate::config::{Config, ConfigError, Scenario, Target, Weighted};

/// The model a mock fleet serves when nothing else is said.
pub const DEFAULT_MODEL: &str = "mock-model";

/// One line of a prompts file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    prompt: Option<String>,
    messages: Option<Vec<Message>>,
    max_tokens: Option<usize>,
    model: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Message {
    role: String,
    content: String,
}

/// A prompt read from a file.
#[derive(Debug, Clone)]
struct FilePrompt {
    history: Vec<(String, String)>,
    prompt: String,
    max_tokens: Option<usize>,
    model: Option<String>,
}

/// Reads a whole JSONL prompts file and returns how many prompts it holds: validation calls it,
/// so that a bad line is reported before any request is sent.
pub(crate) fn check_prompts_file(path: &std::path::Path) -> Result<usize, ConfigError> {
    read_prompts(path).map(|p| p.len())
}

/// Reads a whole JSONL prompts file; errors name the file, the line (1-based, blank lines
/// counted) and the field (`json` when the line is not a JSON object of the right shape).
fn read_prompts(path: &std::path::Path) -> Result<Vec<FilePrompt>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_prompts(&text, &path.display().to_string())
}

/// Parses the text of a JSONL prompts file; `origin` names it in messages.
fn parse_prompts(text: &str, origin: &str) -> Result<Vec<FilePrompt>, ConfigError> {
    let max_tokens_limit = crate::validate::limits::MAX_TOKENS;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str, message: String| ConfigError::At {
            file: origin.to_string(),
            line: i as u64 + 1,
            field: field.into(),
            message,
        };
        let p: PromptLine = serde_json::from_str(line).map_err(|e| {
            // serde_json counts lines within the one line it was given: keep the column only.
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_string();
            at("json", format!("{msg} (column {})", e.column()))
        })?;
        let (history, prompt) = match (p.prompt, p.messages) {
            (Some(t), None) => (Vec::new(), t),
            (None, Some(mut m)) if !m.is_empty() => {
                let last = m.pop().map(|m| m.content).unwrap_or_default();
                (m.into_iter().map(|m| (m.role, m.content)).collect(), last)
            }
            _ => {
                return Err(at(
                    "prompt",
                    "needs exactly one of `prompt` or a non-empty `messages`".into(),
                ));
            }
        };
        if let Some(m) = p.max_tokens
            && m as u64 > max_tokens_limit
        {
            return Err(at(
                "max_tokens",
                format!("{m} is above the limit of {max_tokens_limit} tokens per request"),
            ));
        }
        out.push(FilePrompt {
            history,
            prompt,
            max_tokens: p.max_tokens,
            model: p.model,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::At {
            file: origin.to_string(),
            line: 1,
            field: "prompt".into(),
            message: if text.trim().is_empty() {
                "the file is empty: it holds no prompt".into()
            } else {
                "the file holds no prompt".into()
            },
        });
    }
    Ok(out)
}

/// The lengths a scenario asks for: explicit, else its preset, else 128 in / 64 out.
pub fn lengths(s: &Scenario) -> (LengthDist, LengthDist) {
    let w = &s.workload;
    let (mut p, mut o) = (
        LengthDist::Fixed { value: 128 },
        LengthDist::Fixed { value: 64 },
    );
    if let Some(preset) = w.preset {
        (p, o) = preset.lengths();
    }
    if let Some(t) = &w.prompt_tokens {
        p = t.0.clone();
    }
    if let Some(t) = &w.output_tokens {
        o = t.0.clone();
    }
    (p, o)
}

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
) -> Result<Source, ConfigError> {
    let w = &s.workload;
    let (prompt_dist, output_dist) = lengths(s);
    let mix_of = |m: &[crate::config::WeightedTokens]| -> Vec<(LengthDist, f64)> {
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
        Some(p) => Some(Arc::new(read_prompts(&c.relative(p))?)),
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
    Ok(Arc::new(move |k| {
        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut pick = rng.random::<f64>() * total;
        let mut model = mix.first().map(|m| m.0.clone()).unwrap_or_default();
        for (name, wt) in &mix {
            if pick < *wt {
                model = name.clone();
                break;
            }
            pick -= wt;
        }
        let stream = rng.random::<f64>() < stream_ratio;
        let mut max_tokens = pick_dist(&output_mix, &output_dist, &mut rng)
            .sample(&mut rng)
            .max(1);
        let mut history = Vec::new();
        let prompt_len = pick_dist(&prompt_mix, &prompt_dist, &mut rng).sample(&mut rng);
        // Prompt ids: request ids are small; prefix and follow-up ids live in their own ranges
        // so no two kinds start alike.
        let uid = seed.wrapping_mul(1_000_003).wrapping_add(k) & ((1 << 60) - 1);
        let prompt = if let Some(f) = &file {
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
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(e: ConfigError) -> (u64, String, String) {
        match e {
            ConfigError::At {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            ConfigError::Read { .. } => panic!("read error: {e}"),
        }
    }

    #[test]
    fn the_first_bad_line_is_named_with_its_column() {
        let text = "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": 3}\n{\"oops\"\n";
        let (line, field, message) = at(parse_prompts(text, "p.jsonl").unwrap_err());
        assert_eq!((line, field.as_str()), (3, "json"));
        assert!(message.contains("invalid type"), "{message}");
        assert!(message.ends_with("(column 12)"), "{message}");
        assert!(!message.contains("line 1"), "{message}");
    }

    #[test]
    fn lines_are_counted_with_blank_ones() {
        let text = "\n{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"extra\": 1}\n";
        let (line, _, message) = at(parse_prompts(text, "p.jsonl").unwrap_err());
        assert_eq!(line, 4, "{message}");
        assert!(message.contains("unknown field `extra`"), "{message}");
        let ok = parse_prompts("{\"prompt\": \"a\", \"max_tokens\": 7}\n", "p.jsonl").unwrap();
        assert_eq!((ok.len(), ok[0].max_tokens), (1, Some(7)));
    }

    proptest! {
        /// Any text, valid or not, is read without a panic; what is accepted holds prompts.
        #[test]
        fn any_text_is_read_without_panic(lines in proptest::collection::vec(
            prop_oneof![
                "\\PC{0,40}",
                any::<i64>().prop_map(|n| format!("{{\"prompt\": \"x\", \"max_tokens\": {n}}}")),
                any::<f64>().prop_map(|n| format!("{{\"prompt\": \"x\", \"max_tokens\": {n}}}")),
                Just("{\"messages\": []}".to_string()),
                Just("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}".to_string()),
            ],
            0..8,
        )) {
            let text = lines.join("\n");
            match parse_prompts(&text, "p.jsonl") {
                Ok(p) => {
                    prop_assert!(!p.is_empty());
                    for f in &p {
                        prop_assert!(f.max_tokens.is_none_or(|m| m as u64 <= crate::validate::limits::MAX_TOKENS));
                    }
                }
                Err(e) => {
                    let (line, _, _) = at(e);
                    prop_assert!(line >= 1 && line as usize <= lines.len().max(1));
                }
            }
        }
    }
}
