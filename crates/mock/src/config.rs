//! Configuration of simulated instances and fleets.
//!
//! [`InstanceConfig`] is what one simulated vLLM server is; [`FleetConfig`] is a set of pools of
//! such servers, read from a YAML file (`--config fleet.yaml`) or built from command-line flags.
//! Every duration is in milliseconds (`_ms`) or seconds (`_s`) as named, every size in tokens,
//! blocks or bytes as named. [`InstanceConfig::validate`] bounds every number (see [`limits`]), so
//! no setting can make the server panic or wait beyond the bounds.

use std::path::Path;
use std::time::Duration;

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
    /// Close the TCP connection after every response although the response says
    /// `Connection: keep-alive` (as llama.cpp's server does after a stream): a client that reuses
    /// the connection finds it dead.
    pub close_after_response: bool,
    /// Fraction (0..=1) of completion requests answered HTTP 200 with an OpenAI error object as
    /// the body (`application/json`, also when a stream was asked for), as some gateways do.
    pub error_200_rate: f64,
    /// Fraction (0..=1) of completion requests answered with bytes that are not HTTP at all, after
    /// which the connection is closed.
    pub garbage_rate: f64,
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
    /// How much the running batch slows a new sequence's prefill (its step is shared with the
    /// others' decode, as llama.cpp's and vLLM's are): prefill × (1 + factor × (running − 1) /
    /// `max_num_seqs`). 0 (the default) leaves prefill alone.
    #[serde(default)]
    pub prefill_slowdown: f64,
    /// Measured instead of linear (a fitted twin): prefill × `prefill_factors[r − 1]` with r
    /// sequences running when it is scheduled (itself included; the last entry beyond the
    /// list). Empty (the default): `prefill_slowdown`.
    #[serde(default)]
    pub prefill_factors: Vec<f64>,
    /// Each new prefill holds every running sequence's next token once for this × its prompt
    /// compute (uncached tokens × `prefill_ms_per_token`): one engine step holding a whole
    /// prompt, as llama.cpp's does. 0 (the default): off.
    #[serde(default)]
    pub prefill_stall: f64,
    /// Measured instead of linear: ITL × `itl_factors[r − 1]` with r running (the last entry
    /// beyond the list). Empty (the default): `decode_slowdown`.
    #[serde(default)]
    pub itl_factors: Vec<f64>,
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
    /// Largest accepted request body, bytes; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Most bytes of request bodies held in memory at once over all connections of the instance;
    /// a body that does not fit in what is left is answered 503.
    pub max_buffered_bytes: usize,
    /// Seconds a connection has to send complete request headers, from its opening or from the
    /// first byte of a later request; then it is closed (slowloris). 0: no limit.
    pub header_read_timeout_s: f64,
    /// Seconds a connection may stay open with no request in flight; then it is closed. 0: no
    /// limit.
    pub idle_timeout_s: f64,
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
    /// Each answer carries its own timing as vLLM's `--enable-per-request-metrics` does: a
    /// `metrics` object (queue, time to first token from scheduling, generation time, ms) on
    /// the last streamed chunk or the unary body.
    pub per_request_metrics: bool,
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
            prefill_slowdown: 0.0,
            prefill_factors: Vec::new(),
            prefill_stall: 0.0,
            itl_factors: Vec::new(),
            max_num_batched_tokens: 2048,
            max_num_seqs: 256,
            max_waiting: 4096,
            kv_blocks: 8192,
            block_size: 16,
            max_model_len: 32768,
            max_body_bytes: 8 * 1024 * 1024,
            max_buffered_bytes: 64 * 1024 * 1024,
            header_read_timeout_s: 10.0,
            idle_timeout_s: 60.0,
            default_max_tokens: 256,
            jitter: 0.0,
            seed: 0,
            output: OutputMode::Random,
            tokens_per_chunk: 1,
            precise_timers: true,
            faults: FaultConfig::default(),
            per_request_metrics: false,
        }
    }
}

/// The bounds [`InstanceConfig::validate`] enforces.
pub mod limits {
    /// Longest simulated time (TTFT, ITL, prefill per token, stall, slow start), ms: one hour.
    pub const MAX_MS: f64 = 3_600_000.0;
    /// Largest slow-down factor (`decode_slowdown`, `prefill_interference`).
    pub const MAX_FACTOR: f64 = 1_000.0;
    /// Longest server timeout and shutdown grace period, s: one hour.
    pub const MAX_TIMEOUT_S: f64 = 3_600.0;
    /// Largest `max_num_seqs`, `max_loras` and `tokens_per_chunk`.
    pub const MAX_SEQS: usize = 1_000_000;
    /// Largest `max_waiting`.
    pub const MAX_WAITING: usize = 10_000_000;
    /// Largest token counts (`max_model_len`, `max_num_batched_tokens`, `default_max_tokens`,
    /// `block_size`).
    pub const MAX_TOKENS: usize = 10_000_000;
    /// Largest `kv_blocks`.
    pub const MAX_KV_BLOCKS: usize = 1_000_000_000;
    /// Largest `max_body_bytes`: 1 GiB.
    pub const MAX_BODY_BYTES: usize = 1 << 30;
    /// Largest `max_buffered_bytes`: 64 GiB.
    pub const MAX_BUFFERED_BYTES: usize = 64 << 30;
    /// Most instances in one fleet.
    pub const MAX_INSTANCES: usize = 10_000;
}

fn invalid(field: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        message,
    }
}

/// A number as people write it: `1e300` rather than three hundred digits.
fn num(v: f64) -> String {
    let a = v.abs();
    if a.is_finite() && a != 0.0 && !(1e-6..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A finite number in `0..=max` (NaN, infinities and negatives fail); the error names `field`.
fn check_f64(field: &str, v: f64, max: f64, unit: &str) -> Result<(), ConfigError> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "must be a finite number from 0 to {max}{unit}, got {}",
                num(v)
            ),
        ))
    }
}

fn check_usize(field: &str, v: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be from {min} to {max}, got {v}"),
        ))
    }
}

/// `v` seconds as a duration, if finite and in `0..=`[`limits::MAX_TIMEOUT_S`]; the error names
/// `field` (a key or a flag such as `--grace-s`).
pub fn seconds(field: &str, v: f64) -> Result<Duration, ConfigError> {
    check_f64(field, v, limits::MAX_TIMEOUT_S, " s")?;
    Duration::try_from_secs_f64(v).map_err(|e| invalid(field, e.to_string()))
}

impl InstanceConfig {
    /// Checks every field's range (see [`limits`]); the error names the field and the bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use limits::*;
        if self.model.trim().is_empty() {
            return Err(invalid("model", "must not be empty".into()));
        }
        for (name, v) in [
            ("ttft_ms", self.ttft_ms),
            ("prefill_ms_per_token", self.prefill_ms_per_token),
            ("itl_ms", self.itl_ms),
        ] {
            check_f64(name, v, MAX_MS, " ms")?;
        }
        for (name, v) in [
            ("decode_slowdown", self.decode_slowdown),
            ("prefill_interference", self.prefill_interference),
            ("prefill_slowdown", self.prefill_slowdown),
            ("prefill_stall", self.prefill_stall),
        ] {
            check_f64(name, v, MAX_FACTOR, "")?;
        }
        for (name, list) in [
            ("prefill_factors", &self.prefill_factors),
            ("itl_factors", &self.itl_factors),
        ] {
            if list.len() > 4096 {
                return Err(invalid(
                    name,
                    format!("{} entries, at most 4096", list.len()),
                ));
            }
            for &v in list.iter() {
                if !(v.is_finite() && v > 0.0) {
                    return Err(invalid(name, format!("must be numbers > 0, got {v}")));
                }
                check_f64(name, v, MAX_FACTOR, "")?;
            }
        }
        for (name, v) in [
            ("header_read_timeout_s", self.header_read_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
        ] {
            check_f64(name, v, MAX_TIMEOUT_S, " s (0: no limit)")?;
        }
        for (name, v) in [
            ("faults.stall_ms", self.faults.stall_ms),
            ("faults.slow_start_ms", self.faults.slow_start_ms),
        ] {
            if v as f64 > MAX_MS {
                return Err(invalid(
                    name,
                    format!("must be from 0 to {MAX_MS} ms, got {v}"),
                ));
            }
        }
        for (name, v, min, max) in [
            ("max_num_seqs", self.max_num_seqs, 1, MAX_SEQS),
            ("max_loras", self.max_loras, 0, MAX_SEQS),
            ("tokens_per_chunk", self.tokens_per_chunk, 1, MAX_SEQS),
            ("max_waiting", self.max_waiting, 0, MAX_WAITING),
            (
                "max_num_batched_tokens",
                self.max_num_batched_tokens,
                1,
                MAX_TOKENS,
            ),
            ("block_size", self.block_size, 1, MAX_TOKENS),
            ("max_model_len", self.max_model_len, 1, MAX_TOKENS),
            ("default_max_tokens", self.default_max_tokens, 1, MAX_TOKENS),
            ("kv_blocks", self.kv_blocks, 1, MAX_KV_BLOCKS),
            ("max_body_bytes", self.max_body_bytes, 1, MAX_BODY_BYTES),
            (
                "max_buffered_bytes",
                self.max_buffered_bytes,
                1,
                MAX_BUFFERED_BYTES.min(tokio::sync::Semaphore::MAX_PERMITS),
            ),
        ] {
            check_usize(name, v, min, max)?;
        }
        if self.max_buffered_bytes < self.max_body_bytes {
            return Err(invalid(
                "max_buffered_bytes",
                format!(
                    "must be at least max_body_bytes ({}), got {}",
                    self.max_body_bytes, self.max_buffered_bytes
                ),
            ));
        }
        if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
            return Err(invalid(
                "jitter",
                format!("must be a finite number in 0..1, got {}", num(self.jitter)),
            ));
        }
        for (name, v) in [
            ("faults.error_rate", self.faults.error_rate),
            ("faults.abort_rate", self.faults.abort_rate),
            ("faults.stall_rate", self.faults.stall_rate),
            ("faults.error_200_rate", self.faults.error_200_rate),
            ("faults.garbage_rate", self.faults.garbage_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(
                    name,
                    format!("must be a fraction from 0 to 1, got {}", num(v)),
                ));
            }
        }
        for s in &self.faults.error_statuses {
            if !(400..=599).contains(s) {
                return Err(invalid(
                    "faults.error_statuses",
                    format!("{s} is not an HTTP error status (400 to 599)"),
                ));
            }
        }
        if self.lora_adapters.iter().any(|a| a == &self.model) {
            return Err(invalid(
                "lora_adapters",
                "an adapter may not share the model's name".into(),
            ));
        }
        Ok(())
    }

    /// The header-read timeout, `None` when off (0).
    pub fn header_read_timeout(&self) -> Option<Duration> {
        timeout(self.header_read_timeout_s)
    }

    /// The idle keep-alive timeout, `None` when off (0).
    pub fn idle_timeout(&self) -> Option<Duration> {
        timeout(self.idle_timeout_s)
    }
}

fn timeout(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok().filter(|d| !d.is_zero())
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
        check_usize("instances", n, 1, limits::MAX_INSTANCES)?;
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
            check_usize("instances", pool.instances, 1, limits::MAX_INSTANCES)
                .map_err(|e| e.within(&format!("{origin}: {label}")))?;
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
            if instances.len() > limits::MAX_INSTANCES {
                return Err(ConfigError::Invalid {
                    field: format!("{origin}: pools"),
                    message: format!(
                        "the pools add up to more than {} instances",
                        limits::MAX_INSTANCES
                    ),
                });
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

    type Setter = fn(&mut InstanceConfig, f64);

    #[test]
    fn validate_rejects_huge_infinite_nan_and_negative_numbers() {
        let fields: Vec<(&str, Setter)> = vec![
            ("ttft_ms", |c, v| c.ttft_ms = v),
            ("itl_ms", |c, v| c.itl_ms = v),
            ("prefill_ms_per_token", |c, v| c.prefill_ms_per_token = v),
            ("decode_slowdown", |c, v| c.decode_slowdown = v),
            ("prefill_interference", |c, v| c.prefill_interference = v),
            ("prefill_slowdown", |c, v| c.prefill_slowdown = v),
            ("header_read_timeout_s", |c, v| c.header_read_timeout_s = v),
            ("idle_timeout_s", |c, v| c.idle_timeout_s = v),
            ("jitter", |c, v| c.jitter = v),
            ("faults.error_rate", |c, v| c.faults.error_rate = v),
            ("faults.abort_rate", |c, v| c.faults.abort_rate = v),
            ("faults.stall_rate", |c, v| c.faults.stall_rate = v),
            ("faults.error_200_rate", |c, v| c.faults.error_200_rate = v),
            ("faults.garbage_rate", |c, v| c.faults.garbage_rate = v),
        ];
        for (field, set) in &fields {
            for (v, shown) in [
                (1e300, "1e300"),
                (f64::INFINITY, "inf"),
                (f64::NEG_INFINITY, "-inf"),
                (f64::NAN, "NaN"),
                (-1.0, "-1"),
            ] {
                let mut c = InstanceConfig::default();
                set(&mut c, v);
                let err = c.validate().map(|_| ()).unwrap_err().to_string();
                assert!(
                    err.starts_with(&format!("{field}: ")),
                    "{field} = {v}: {err}"
                );
                assert!(
                    err.ends_with(&format!("got {shown}")),
                    "{field} = {v}: {err}"
                );
            }
            // The bound itself (or just under it, for jitter) is accepted.
            let mut c = InstanceConfig::default();
            set(&mut c, 0.5);
            assert!(c.validate().is_ok(), "{field} = 0.5");
        }
        let mut c = InstanceConfig {
            itl_ms: limits::MAX_MS,
            ttft_ms: limits::MAX_MS,
            ..Default::default()
        };
        assert!(c.validate().is_ok());
        c.itl_ms = limits::MAX_MS + 0.5;
        let err = c.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "itl_ms: must be a finite number from 0 to 3600000 ms, got 3600000.5"
        );
    }

    #[test]
    fn validate_bounds_counts_and_whole_milliseconds() {
        type Set = fn(&mut InstanceConfig);
        let cases: Vec<(&str, Set)> = vec![
            ("faults.stall_ms", |c| c.faults.stall_ms = u64::MAX),
            ("faults.slow_start_ms", |c| {
                c.faults.slow_start_ms = 3_600_001
            }),
            ("max_num_seqs", |c| c.max_num_seqs = usize::MAX),
            ("max_num_seqs", |c| c.max_num_seqs = 0),
            ("max_waiting", |c| c.max_waiting = usize::MAX),
            ("kv_blocks", |c| c.kv_blocks = 0),
            ("max_model_len", |c| c.max_model_len = usize::MAX),
            ("tokens_per_chunk", |c| c.tokens_per_chunk = 0),
            ("max_body_bytes", |c| c.max_body_bytes = usize::MAX),
            ("max_buffered_bytes", |c| c.max_buffered_bytes = usize::MAX),
            ("max_buffered_bytes", |c| {
                c.max_body_bytes = 1000;
                c.max_buffered_bytes = 999;
            }),
            ("faults.error_statuses", |c| {
                c.faults.error_statuses = vec![200]
            }),
        ];
        for (field, set) in cases {
            let mut c = InstanceConfig::default();
            set(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("{field}: ")), "{field}: {err}");
        }
        let err = FleetConfig::uniform("127.0.0.1", 0, 1_000_000, InstanceConfig::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "instances: must be from 1 to 10000, got 1000000");
        let err = FleetConfig::uniform("127.0.0.1", 0, 0, InstanceConfig::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "instances: must be from 1 to 10000, got 0");
    }

    #[test]
    fn seconds_rejects_what_duration_cannot_hold() {
        assert_eq!(
            seconds("--grace-s", 2.5).unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(seconds("--grace-s", 0.0).unwrap(), Duration::ZERO);
        for v in [1e30, 1e300, f64::INFINITY, f64::NAN, -1.0, 3600.5] {
            let err = seconds("--grace-s", v).unwrap_err().to_string();
            assert!(
                err.starts_with("--grace-s: must be a finite number from 0 to 3600 s"),
                "{v}: {err}"
            );
        }
    }

    #[test]
    fn fleet_yaml_rejects_non_finite_values_and_names_the_key() {
        let parse = |yaml: &str| {
            FleetConfig::from_yaml_str(yaml, "f.yaml", "127.0.0.1", 0, &InstanceConfig::default())
                .unwrap_err()
                .to_string()
        };
        // YAML's .inf and .nan are refused by the parser, at their place.
        for yaml in [
            "pools:\n  - ttft_ms: .inf\n",
            "pools:\n  - itl_ms: .nan\n",
            "pools:\n  - itl_ms: 1e400\n",
        ] {
            let err = parse(yaml);
            assert!(
                err.starts_with("f.yaml: ") && err.contains("line 2") && err.contains("non-finite"),
                "{yaml}: {err}"
            );
        }
        for (yaml, key) in [
            (
                "pools:\n  - prefill_ms_per_token: 1e300\n",
                "prefill_ms_per_token",
            ),
            ("pools:\n  - idle_timeout_s: -1\n", "idle_timeout_s"),
            (
                "pools:\n  - faults: {garbage_rate: 2}\n",
                "faults.garbage_rate",
            ),
            (
                "defaults:\n  max_buffered_bytes: 10\npools:\n  - {}\n",
                "max_buffered_bytes",
            ),
            ("pools:\n  - instances: 20000\n", "instances"),
        ] {
            let err = parse(yaml);
            assert!(
                err.starts_with(&format!("f.yaml: pools[0]: {key}: ")),
                "{yaml}: {err}"
            );
        }
        let fleet = FleetConfig::from_yaml_str(
            "pools:\n  - header_read_timeout_s: 0.5\n    faults: {close_after_response: true, error_200_rate: 0.25}\n",
            "f.yaml",
            "127.0.0.1",
            0,
            &InstanceConfig::default(),
        )
        .unwrap();
        let c = &fleet.instances[0].1;
        assert_eq!(c.header_read_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(60)));
        assert!(c.faults.close_after_response);
        assert_eq!(c.faults.error_200_rate, 0.25);
        let off = InstanceConfig {
            idle_timeout_s: 0.0,
            ..Default::default()
        };
        assert_eq!(off.idle_timeout(), None);
    }
}
