//! Configuration of simulated instances and fleets.
//!
//! [`InstanceConfig`] is what one simulated vLLM server is; [`FleetConfig`] is a set of pools of
//! such servers, read from a YAML file (`--config fleet.yaml`) or built from command-line flags.
//! Every duration is in milliseconds (`_ms`), every size in tokens or blocks as named.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How the simulated model produces its output text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// Deterministic pseudo-random English words, one token each, drawn from the seed.
    #[default]
    Random,
    /// The prompt's own tokens, repeated as often as needed.
    Echo,
}

impl std::str::FromStr for OutputMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Self::Random),
            "echo" => Ok(Self::Echo),
            other => Err(format!(
                "unknown output mode `{other}` (expected random or echo)"
            )),
        }
    }
}

/// Faults an instance injects into its own answers, to exercise clients and gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Fraction (0..=1) of completion requests answered at once with an error status.
    pub error_rate: f64,
    /// The statuses drawn from (uniformly) when `error_rate` fires; default 429, 500, 503.
    pub error_statuses: Vec<u16>,
    /// Fraction (0..=1) of streamed responses cut off (connection reset) half-way.
    pub abort_rate: f64,
    /// Fraction (0..=1) of streamed responses that stop sending half-way.
    pub stall_rate: f64,
    /// How long a stall lasts, in ms; 0 means until the client gives up.
    pub stall_ms: u64,
    /// Extra delay before the response headers of every completion, in ms.
    pub slow_start_ms: u64,
    /// `/health` answers 503 instead of 200.
    pub health_fail: bool,
    /// Answer every request in the name of this model instead of the one served (misrouting).
    pub wrong_model: Option<String>,
}

impl FaultConfig {
    /// The statuses to draw injected errors from.
    pub fn statuses(&self) -> &[u16] {
        if self.error_statuses.is_empty() {
            &[429, 500, 503]
        } else {
            &self.error_statuses
        }
    }
}

/// One simulated vLLM server: its model, speed, capacity and faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceConfig {
    /// The served model name (`--served-model-name` in vLLM).
    pub model: String,
    /// LoRA adapters registered at start-up (servable by name).
    pub lora_adapters: Vec<String>,
    /// How many adapters may be active in the running batch at once.
    pub max_loras: usize,
    /// Fixed part of prefill: time from scheduling to the first token with no prompt cost, ms.
    pub ttft_ms: f64,
    /// Prefill cost per uncached prompt token, ms.
    pub prefill_ms_per_token: f64,
    /// Time between two output tokens of one sequence with a batch of one, ms.
    pub itl_ms: f64,
    /// How much decode slows as the batch fills: ITL × (1 + factor × (running − 1) / max_num_seqs).
    pub decode_slowdown: f64,
    /// How much prefill work slows everyone's decode (vLLM's chunked prefill shares each step's
    /// token budget): ITL × (1 + factor × min(1, uncached prompt tokens being prefilled /
    /// `max_num_batched_tokens`)). 0 (the default) leaves decode alone.
    pub prefill_interference: f64,
    /// Tokens one engine step processes (vLLM's `max_num_batched_tokens`): the scale of
    /// `prefill_interference`.
    pub max_num_batched_tokens: usize,
    /// Most sequences in the running batch.
    pub max_num_seqs: usize,
    /// Most requests waiting to be scheduled; beyond this, 429.
    pub max_waiting: usize,
    /// KV-cache size in blocks.
    pub kv_blocks: usize,
    /// Tokens per KV-cache block.
    pub block_size: usize,
    /// Most prompt + output tokens of one request.
    pub max_model_len: usize,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Output tokens a request gets when it sets no `max_tokens` and a natural stop would be later.
    pub default_max_tokens: usize,
    /// Relative jitter (0..1) applied to prefill and every ITL, drawn from the seed.
    pub jitter: f64,
    /// Seed of everything random the instance does.
    pub seed: u64,
    /// Output text mode.
    pub output: OutputMode,
    /// Tokens packed into one SSE chunk (1 = one chunk per token, as vLLM).
    pub tokens_per_chunk: usize,
    /// Emit tokens on a sub-millisecond timer thread (true) or on tokio's millisecond timer
    /// (false; follows a paused tokio clock in tests).
    pub precise_timers: bool,
    /// Faults to inject.
    pub faults: FaultConfig,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        Self {
            model: "mock-model".to_string(),
            lora_adapters: Vec::new(),
            max_loras: 4,
            ttft_ms: 50.0,
            prefill_ms_per_token: 0.0,
            itl_ms: 5.0,
            decode_slowdown: 0.5,
            prefill_interference: 0.0,
            max_num_batched_tokens: 2048,
            max_num_seqs: 256,
            max_waiting: 4096,
            kv_blocks: 8192,
            block_size: 16,
            max_model_len: 32768,
            max_body_bytes: 8 * 1024 * 1024,
            default_max_tokens: 256,
            jitter: 0.0,
            seed: 0,
            output: OutputMode::Random,
            tokens_per_chunk: 1,
            precise_timers: true,
            faults: FaultConfig::default(),
        }
    }
}

impl InstanceConfig {
    /// Checks every field's range; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, why: String| {
            Err(ConfigError::Invalid {
                field: field.to_string(),
                message: why,
            })
        };
        if self.model.trim().is_empty() {
            return bad("model", "must not be empty".into());
        }
        for (name, v) in [
            ("ttft_ms", self.ttft_ms),
            ("prefill_ms_per_token", self.prefill_ms_per_token),
            ("itl_ms", self.itl_ms),
            ("decode_slowdown", self.decode_slowdown),
            ("prefill_interference", self.prefill_interference),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(name, format!("must be a finite number ≥ 0, got {v}"));
            }
        }
        for (name, v) in [
            ("max_num_seqs", self.max_num_seqs),
            ("max_num_batched_tokens", self.max_num_batched_tokens),
            ("kv_blocks", self.kv_blocks),
            ("block_size", self.block_size),
            ("max_model_len", self.max_model_len),
            ("tokens_per_chunk", self.tokens_per_chunk),
            ("max_body_bytes", self.max_body_bytes),
            ("default_max_tokens", self.default_max_tokens),
        ] {
            if v == 0 {
                return bad(name, "must be at least 1".into());
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return bad("jitter", format!("must be in 0..1, got {}", self.jitter));
        }
        for (name, v) in [
            ("faults.error_rate", self.faults.error_rate),
            ("faults.abort_rate", self.faults.abort_rate),
            ("faults.stall_rate", self.faults.stall_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, format!("must be a fraction in 0..=1, got {v}"));
            }
        }
        for s in &self.faults.error_statuses {
            if !(400..=599).contains(s) {
                return bad(
                    "faults.error_statuses",
                    format!("{s} is not an HTTP error status"),
                );
            }
        }
        if self.lora_adapters.iter().any(|a| a == &self.model) {
            return bad(
                "lora_adapters",
                "an adapter may not share the model's name".into(),
            );
        }
        Ok(())
    }
}

/// A pool of identical instances inside a fleet file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PoolConfig {
    /// A name for people and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// How many instances of this pool to start.
    #[serde(default = "one")]
    pub instances: usize,
    /// First port of this pool (instances take consecutive ports); absent: the fleet's next port.
    #[serde(default)]
    pub port: Option<u16>,
    /// The instance settings, flattened beside the pool keys; unset keys take the fleet's defaults.
    #[serde(flatten)]
    pub instance: serde_json::Map<String, serde_json::Value>,
}

fn one() -> usize {
    1
}

/// The raw fleet file: defaults shared by every pool, and the pools.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    #[serde(default)]
    defaults: serde_json::Map<String, serde_json::Value>,
    pools: Vec<PoolConfig>,
}

/// A whole simulated fleet: every instance to start, in port order.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Host to bind; 127.0.0.1 unless told otherwise.
    pub host: String,
    /// Instances with the port each asks for (0 = any free port).
    pub instances: Vec<(u16, InstanceConfig)>,
}

impl FleetConfig {
    /// `n` identical instances on ports `port..port+n` (all OS-chosen when `port` is 0).
    pub fn uniform(
        host: &str,
        port: u16,
        n: usize,
        instance: InstanceConfig,
    ) -> Result<Self, ConfigError> {
        instance.validate()?;
        let instances = (0..n)
            .map(|i| {
                let p = consecutive_port(port, i)?;
                let mut c = instance.clone();
                c.seed = instance.seed.wrapping_add(i as u64);
                Ok((p, c))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Self {
            host: host.to_string(),
            instances,
        })
    }

    /// Reads a fleet file. `base` gives the defaults that the file's `defaults:` and each pool
    /// override; pools without a `port` follow `first_port` consecutively (0 = OS-chosen).
    pub fn from_yaml_file(
        path: &Path,
        host: &str,
        first_port: u16,
        base: &InstanceConfig,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_yaml_str(&text, &path.display().to_string(), host, first_port, base)
    }

    /// Parses fleet YAML; `origin` names the source in error messages.
    pub fn from_yaml_str(
        text: &str,
        origin: &str,
        host: &str,
        first_port: u16,
        base: &InstanceConfig,
    ) -> Result<Self, ConfigError> {
        let file: FleetFile = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        if file.pools.is_empty() {
            return Err(ConfigError::Invalid {
                field: format!("{origin}: pools"),
                message: "lists no pool".into(),
            });
        }
        let base_json = instance_to_json(base);
        let mut instances = Vec::new();
        let mut next = 0usize;
        for (pi, pool) in file.pools.iter().enumerate() {
            let label = pool.name.clone().unwrap_or_else(|| format!("pools[{pi}]"));
            let mut merged = base_json.clone();
            for (k, v) in file.defaults.iter().chain(pool.instance.iter()) {
                merged.insert(k.clone(), v.clone());
            }
            let cfg: InstanceConfig = serde_json::from_value(serde_json::Value::Object(merged))
                .map_err(|e| ConfigError::Invalid {
                    field: format!("{origin}: {label}"),
                    message: e.to_string(),
                })?;
            cfg.validate()
                .map_err(|e| e.within(&format!("{origin}: {label}")))?;
            if pool.instances == 0 {
                return Err(ConfigError::Invalid {
                    field: format!("{origin}: {label}.instances"),
                    message: "must be at least 1".into(),
                });
            }
            for i in 0..pool.instances {
                let port = match pool.port {
                    Some(p) => consecutive_port(p, i)?,
                    None => {
                        let p = consecutive_port(first_port, next)?;
                        next += 1;
                        p
                    }
                };
                let mut c = cfg.clone();
                c.seed = cfg.seed.wrapping_add((instances.len()) as u64);
                instances.push((port, c));
            }
        }
        Ok(Self {
            host: host.to_string(),
            instances,
        })
    }
}

fn consecutive_port(first: u16, i: usize) -> Result<u16, ConfigError> {
    if first == 0 {
        return Ok(0);
    }
    u16::try_from(first as usize + i).map_err(|_| ConfigError::Invalid {
        field: "port".into(),
        message: format!("{first} + {i} is beyond 65535"),
    })
}

/// The instance settings as a JSON object, for merging with a fleet file's keys.
fn instance_to_json(c: &InstanceConfig) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_yaml_merges_defaults_and_pools() {
        let yaml = "defaults:\n  itl_ms: 7\npools:\n  - name: big\n    model: llama\n    instances: 2\n    ttft_ms: 80\n  - model: qwen\n    itl_ms: 3\n    lora_adapters: [a, b]\n";
        let fleet = FleetConfig::from_yaml_str(
            yaml,
            "fleet.yaml",
            "127.0.0.1",
            9000,
            &InstanceConfig::default(),
        )
        .unwrap();
        assert_eq!(fleet.instances.len(), 3);
        assert_eq!(fleet.instances[0].0, 9000);
        assert_eq!(fleet.instances[2].0, 9002);
        assert_eq!(fleet.instances[0].1.model, "llama");
        assert_eq!(fleet.instances[0].1.ttft_ms, 80.0);
        assert_eq!(fleet.instances[1].1.itl_ms, 7.0);
        assert_eq!(fleet.instances[2].1.itl_ms, 3.0);
        assert_eq!(fleet.instances[2].1.lora_adapters, vec!["a", "b"]);
        assert_ne!(fleet.instances[0].1.seed, fleet.instances[1].1.seed);
    }

    #[test]
    fn fleet_yaml_errors_name_the_place() {
        let err = FleetConfig::from_yaml_str(
            "pools:\n  - model: m\n    itl_ms: -1\n",
            "f.yaml",
            "127.0.0.1",
            0,
            &InstanceConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("f.yaml") && err.contains("itl_ms"), "{err}");
        let err = FleetConfig::from_yaml_str(
            "pools:\n  - model: m\n    itl_msec: 1\n",
            "f.yaml",
            "127.0.0.1",
            0,
            &InstanceConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("f.yaml") && err.contains("itl_msec"), "{err}");
        let err = FleetConfig::from_yaml_str(
            "pool: []\n",
            "f.yaml",
            "127.0.0.1",
            0,
            &InstanceConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("f.yaml") && err.contains("line"), "{err}");
    }

    #[test]
    fn validate_rejects_bad_ranges() {
        let c = InstanceConfig {
            faults: FaultConfig {
                error_rate: 1.5,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("faults.error_rate")
        );
        let c = InstanceConfig {
            block_size: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("block_size"));
    }
}
