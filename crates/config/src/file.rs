//! The scenario file: `targets:` (where to send), `scenarios:` (what to send, how hard, what
//! must hold) and `suite:` (which scenarios against which targets). Parsed with serde-saphyr;
//! every error names the file, the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use inferbench_workload::dist::LengthDist;
use inferbench_workload::units::parse_duration;

use crate::yaml::field_at;

/// A value with the line it was written on (0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Loc<T> {
    /// The value.
    pub value: T,
    /// 1-based line in the file; 0 when unknown.
    pub line: u64,
}

impl<T> Loc<T> {
    /// A value not read from a file.
    pub fn new(value: T) -> Self {
        Self { value, line: 0 }
    }
}

impl<T> std::ops::Deref for Loc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Loc<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Loc {
            value: s.value,
            line: s.referenced.line(),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Loc<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A duration written as `30s`, `2m`, `500ms`, `1h`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            N(f64),
            S(String),
        }
        match Repr::deserialize(d)? {
            // `try_`: a number of seconds too large for a Duration is an error, not a panic
            // (the limits themselves are checked, with the field named, by validation).
            Repr::N(v) => match Duration::try_from_secs_f64(v) {
                Ok(d) if v.is_finite() => Ok(Dur(d)),
                _ => Err(serde::de::Error::custom(format!(
                    "not a number of seconds ≥ 0 within the limit of {} s (7 days)",
                    crate::limits::MAX_DURATION.as_secs()
                ))),
            },
            Repr::S(s) => parse_duration(&s)
                .map(Dur)
                .map_err(|e| serde::de::Error::custom(e.to_string())),
        }
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: `30s`, `2m`, `500ms`, `1h`, or a number of seconds.",
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9.]+\\s*(us|µs|ms|s|m|h)?\\s*$"}
            ]
        })
    }
}

/// A token count: a number, or a distribution `uniform:MIN:MAX`, `normal:MEAN:SD:MIN:MAX`,
/// `lognormal:MEDIAN:SIGMA:MIN:MAX`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens(pub LengthDist);

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            N(u64),
            F(f64),
            S(String),
        }
        let text = match Repr::deserialize(d)? {
            Repr::N(n) => n.to_string(),
            // `1e6` is a whole number written as a float; its bound is checked by validation.
            Repr::F(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e15 => {
                format!("{v:.0}")
            }
            Repr::F(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 => {
                return Err(serde::de::Error::custom(format!(
                    "{v:e} is above the limit of {} tokens per request",
                    crate::limits::MAX_TOKENS
                )));
            }
            Repr::F(v) => {
                return Err(serde::de::Error::custom(format!(
                    "`{v}` is not a whole number of tokens ≥ 0"
                )));
            }
            Repr::S(s) => s,
        };
        LengthDist::parse(&text)
            .map(Tokens)
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

impl JsonSchema for Tokens {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tokens".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A token count, or a distribution: `uniform:MIN:MAX`, `normal:MEAN:SD:MIN:MAX`, `lognormal:MEDIAN:SIGMA:MIN:MAX`.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^(uniform|normal|lognormal):"}
            ]
        })
    }
}

/// A fraction written as `0.05` or `5%`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fraction(pub f64);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            N(f64),
            S(String),
        }
        let v = match Repr::deserialize(d)? {
            Repr::N(v) => v,
            Repr::S(s) => {
                let t = s.trim();
                match t.strip_suffix('%') {
                    Some(n) => n.trim().parse::<f64>().map(|v| v / 100.0),
                    None => t.parse::<f64>(),
                }
                .map_err(|_| {
                    serde::de::Error::custom(format!("`{s}` is not a fraction (0.05 or 5%)"))
                })?
            }
        };
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(serde::de::Error::custom(format!(
                "{v} is not a fraction within 0..1 (or 0%..100%)"
            )));
        }
        Ok(Fraction(v))
    }
}

impl JsonSchema for Fraction {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fraction".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A fraction: 0.05, or a percentage string like `5%`.",
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": "^\\s*[0-9.]+\\s*%\\s*$"}
            ]
        })
    }
}

/// Ends a scenario early (the suite goes on), checked on live counts four times a second.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopWhen {
    /// Stop when failed / finished requests exceeds this (e.g. `50%`).
    pub error_rate: Fraction,
    /// Only once this many requests have finished (default 20).
    pub min_requests: Option<u64>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where requests go.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// What to run.
    pub scenarios: Vec<Scenario>,
    /// Which scenarios against which targets; without it, every scenario runs once against its
    /// target (or the first target).
    #[serde(default)]
    pub suite: Vec<SuiteEntry>,
}

/// Which OpenAI endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// `/v1/chat/completions`.
    #[default]
    Chat,
    /// `/v1/completions`.
    Completions,
}

/// A deployment to benchmark.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name used by scenarios and the suite.
    pub name: Loc<String>,
    /// Base URL (`http://host:port`, a trailing `/v1` is fine), or `embedded` to start the
    /// built-in mock fleet in-process.
    pub url: Loc<String>,
    /// Environment variable holding the API key (sent as a Bearer token; never reported).
    pub api_key_env: Option<String>,
    /// Models served there; the first is the default model of scenarios that name none.
    #[serde(default)]
    pub models: Vec<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Endpoint: chat (default) or completions.
    #[serde(default)]
    pub api: ApiKind,
    /// Speak HTTP/2 (prior knowledge).
    #[serde(default)]
    pub http2: bool,
    /// Most time for a whole request (default 600 s).
    pub timeout: Option<Dur>,
    /// Most time to the first token (default 60 s).
    pub ttft_timeout: Option<Dur>,
    /// Most time between two tokens once the first has come: a stalled stream fails as
    /// `timeout_stall` (default 30 s).
    #[serde(default)]
    pub stall_timeout: Option<Dur>,
    /// The model servers' own `/metrics`, scraped every second for the server's side of each
    /// window (queue, prefill, decode, tokens): `true` scrapes each target URL's `/metrics`, a
    /// list gives the servers' base URLs (e.g. the pods behind a gateway). Default: on for the
    /// embedded fleet, off otherwise.
    #[serde(default)]
    pub server_metrics: Option<ServerMetrics>,
}

/// Which model servers' `/metrics` to scrape.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ServerMetrics {
    /// `true`: each target URL; `false`: none.
    Enabled(bool),
    /// These base URLs (`http://host:port`).
    Urls(Vec<String>),
}

/// Spacing of open-loop arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalKind {
    /// Evenly spaced.
    #[default]
    Constant,
    /// Exponential gaps.
    Poisson,
}

/// A test: load, workload, and what must hold.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name.
    pub name: Loc<String>,
    /// One line on what it tests.
    pub description: Option<String>,
    /// Target name (default: the first target).
    pub target: Option<Loc<String>>,
    /// How hard, and how the pressure changes (absent with `workload.trace`: the trace's own
    /// arrival instants).
    #[serde(default)]
    pub load: LoadSpec,
    /// Measured time for `rate` and `concurrency` loads.
    pub duration: Option<Loc<Dur>>,
    /// Or: stop after this many measured requests (warm-up ones come on top).
    pub requests: Option<u64>,
    /// Time at the start whose requests are not counted.
    pub warmup: Option<Dur>,
    /// What each request looks like.
    #[serde(default)]
    pub workload: Workload,
    /// Service-level objective: per-request limits and the percentile that must meet them.
    pub slo: Option<Slo>,
    /// Pass/fail rules on the results, e.g. `ttft.p95 < 500ms`, `error_rate < 1%`; a failed
    /// one makes the run exit with code 99.
    #[serde(default)]
    pub thresholds: Vec<Loc<String>>,
    /// Seed of arrivals and lengths (default 1).
    pub seed: Option<u64>,
    /// Open loop: most requests in flight (default 10,000).
    pub max_in_flight: Option<u64>,
    /// Retries of a failed request (default 0).
    pub retries: Option<u32>,
    /// Wait before the first retry, doubling at each further one (default 100ms).
    pub retry_backoff: Option<Dur>,
    /// Stop condition: end this scenario early when it is clearly broken.
    pub stop: Option<StopWhen>,
    /// Routing arms run side by side on the same load, interleaved in windows (A B A B …):
    /// `direct` (the client spreads requests over the target's URLs itself), `proxy-rr` (the
    /// reference router in round-robin, bodies unread: the baseline gateway), `epp` (body
    /// routing + the EPP's default scorers), or a named picker configuration.
    #[serde(default)]
    pub arms: Vec<Arm>,
    /// Length of each arm's window (default 5s).
    pub arm_window: Option<Dur>,
}

/// A routing arm: a name (`direct`, `proxy-rr`, `epp`, `round-robin`, `random`,
/// `least-request`) or a named picker configuration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Arm {
    /// A built-in arm.
    Named(String),
    /// A picker configuration.
    Custom(ArmConfig),
}

/// A named picker configuration for an arm.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    /// Label in the report.
    pub name: String,
    /// epp (default), round-robin, random or least-request.
    pub picker: Option<String>,
    /// EPP `queue-scorer` weight (default 2).
    pub queue: Option<f64>,
    /// EPP `kv-cache-utilization-scorer` weight (default 2).
    pub kv_cache: Option<f64>,
    /// EPP `prefix-cache-scorer` weight (default 3).
    pub prefix: Option<f64>,
    /// EPP `lora-affinity-scorer` weight (default 0).
    pub lora: Option<f64>,
    /// EPP saturation filter: an endpoint with this many requests waiting or more is saturated
    /// (default 5).
    pub queue_threshold: Option<f64>,
    /// EPP saturation filter: an endpoint whose KV cache is this full or more is saturated
    /// (default 0.8).
    pub kv_threshold: Option<f64>,
    /// Or: a Gateway API Inference Extension `EndpointPickerConfig` file (relative to this
    /// scenario file) for an epp picker; the weights above then do not apply.
    pub picker_config: Option<String>,
    /// Read bodies (body-based routing, prefix scoring); default true.
    pub body_routing: Option<bool>,
    /// Or: send to this URL instead of starting a router — another gateway or proxy (e.g.
    /// HAProxy or nginx in front of the same fleet), measured side by side with the others.
    pub url: Option<String>,
}

impl Arm {
    /// Its label.
    pub fn name(&self) -> &str {
        match self {
            Arm::Named(n) => n,
            Arm::Custom(c) => &c.name,
        }
    }
}

/// The load: exactly one of `rate`, `concurrency`, `stages`, `sweep`, `stress`, `users`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Open loop at this many requests/s.
    pub rate: Option<Loc<f64>>,
    /// Open-loop spacing: constant (default) or poisson.
    pub arrival: Option<ArrivalKind>,
    /// Closed loop with this many requests in flight.
    pub concurrency: Option<Loc<i64>>,
    /// A sequence of stages (all `rate` or all `concurrency`), each optionally ramping.
    pub stages: Option<Vec<Stage>>,
    /// guidellm-style sweep: synchronous, then the maximum throughput, then rates between.
    pub sweep: Option<Sweep>,
    /// Step the rate up until a limit breaks; reports the breaking point.
    pub stress: Option<Stress>,
    /// Locust-style users ramp: add users at `spawn_rate` per second up to `users`.
    pub users: Option<Users>,
}

/// One stage of `stages`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Label in the report (default `stage N`).
    pub name: Option<String>,
    /// Length of the stage.
    pub duration: Loc<Dur>,
    /// Requests/s (open loop).
    pub rate: Option<Loc<f64>>,
    /// Requests in flight (closed loop).
    pub concurrency: Option<Loc<i64>>,
    /// Ramp linearly from the previous stage's level (0 before the first) to this one's.
    #[serde(default)]
    pub ramp: bool,
}

/// The sweep load.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Constant rates between the synchronous and the maximum rate (default 5).
    pub rates: Option<Loc<i64>>,
    /// Length of each step.
    pub duration: Loc<Dur>,
    /// Concurrency of the throughput step (default 256).
    pub max_concurrency: Option<Loc<i64>>,
}

/// The stress load: rates `start`, `start + step`, … up to `max` (open loop), or the listed
/// `concurrency` levels (closed loop).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stress {
    /// First rate, requests/s.
    pub start: Option<Loc<f64>>,
    /// Added at each step.
    pub step: Option<Loc<f64>>,
    /// Highest rate tried.
    pub max: Option<Loc<f64>>,
    /// Or: concurrency levels to step through, e.g. [1, 5, 10, 25, 50, 100].
    pub concurrency: Option<Vec<Loc<i64>>>,
    /// Length of each step.
    pub step_duration: Loc<Dur>,
    /// Rules every step must pass, e.g. `error_rate < 5%`, `ttft.p95 < 2s`; the first step that
    /// fails one is the breaking point.
    pub limits: Vec<Loc<String>>,
}

/// The users ramp.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// Users at the top.
    pub users: Loc<i64>,
    /// Users added per second.
    pub spawn_rate: Loc<f64>,
    /// Time at the top after the ramp.
    pub duration: Loc<Dur>,
}

/// Request size presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// ≈100 prompt tokens, 100 output.
    Small,
    /// ≈500 prompt tokens, 200 output.
    Medium,
    /// ≈2,000 prompt tokens, 300 output.
    Large,
    /// 8,192 prompt tokens, 512 output.
    LongContext,
}

impl Preset {
    /// Prompt and output lengths.
    pub fn lengths(self) -> (LengthDist, LengthDist) {
        let (p, o) = match self {
            Preset::Small => ((90, 110), 100),
            Preset::Medium => ((450, 550), 200),
            Preset::Large => ((1900, 2100), 300),
            Preset::LongContext => ((8192, 8192), 512),
        };
        let prompt = if p.0 == p.1 {
            LengthDist::Fixed { value: p.0 }
        } else {
            LengthDist::Uniform { min: p.0, max: p.1 }
        };
        (prompt, LengthDist::Fixed { value: o })
    }
}

/// A name with a weight.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Weighted {
    /// Model or adapter name.
    pub name: String,
    /// Relative weight (default 1).
    pub weight: Option<Loc<f64>>,
}

/// A token length with a weight, for mixes of request classes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedTokens {
    /// The length (a number or a distribution).
    pub tokens: Tokens,
    /// Relative weight (default 1).
    pub weight: Option<Loc<f64>>,
}

/// N groups × M prompts sharing a P-token prefix per group.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefix {
    /// Groups (distinct prefixes).
    pub groups: Loc<i64>,
    /// Distinct prompts per group.
    pub prompts_per_group: Loc<i64>,
    /// Tokens of each group's shared prefix (the rest of the prompt follows `prompt_tokens`).
    pub prefix_tokens: Loc<i64>,
}

/// Conversations whose history grows.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiTurn {
    /// Turns per conversation (≥ 2).
    pub turns: Loc<i64>,
    /// Pause between an answer and the next turn.
    pub think_time: Option<Dur>,
}

/// What each request looks like.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Size preset: small, medium, large or long-context (explicit lengths override it).
    pub preset: Option<Preset>,
    /// Prompt tokens (default 128).
    pub prompt_tokens: Option<Tokens>,
    /// Output tokens, forced with `max_tokens` + `ignore_eos` (default 64).
    pub output_tokens: Option<Tokens>,
    /// Or: a weighted mix of prompt lengths, e.g. 40% short, 40% medium, 20% long.
    #[serde(default)]
    pub prompt_mix: Vec<WeightedTokens>,
    /// Or: a weighted mix of output lengths.
    #[serde(default)]
    pub output_mix: Vec<WeightedTokens>,
    /// Stream the answers (default true).
    pub stream: Option<bool>,
    /// Fraction of requests that stream (0..1); overrides `stream`.
    pub stream_ratio: Option<Loc<f64>>,
    /// Weighted mix of models (default: the target's first model).
    #[serde(default)]
    pub models: Vec<Weighted>,
    /// Weighted mix of LoRA adapters, asked for by name beside `models`.
    #[serde(default)]
    pub lora: Vec<Weighted>,
    /// Prefix-sharing groups (the prefix-cache-aware routing case).
    pub shared_prefix: Option<SharedPrefix>,
    /// Prompts from a JSONL file (path relative to this file): each line has `prompt` or
    /// `messages`, and optionally `max_tokens` and `model`.
    pub prompts_file: Option<Loc<String>>,
    /// Multi-turn conversations.
    pub multi_turn: Option<MultiTurn>,
    /// Requests from a production trace: its lengths (and models, and shared prompt blocks),
    /// at its own arrival instants when the scenario sets no `load`, else at the load's pace.
    pub trace: Option<TraceSpec>,
}

/// A trace to replay.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file (relative to this file).
    pub path: Loc<String>,
    /// `azure`, `mooncake`, `burstgpt` or `inferbench` (default: told by the first line).
    pub format: Option<Loc<String>>,
    /// Multiplies the trace's time: 0.5 replays it twice as fast (default 1).
    pub time_scale: Option<Loc<f64>>,
    /// Multiplies the request rate: 2 sends twice as many per second (default 1).
    pub rate_scale: Option<Loc<f64>>,
    /// Leave out the trace's first part: requests before this time from its first request.
    pub start: Option<Dur>,
    /// Replay at most this many requests.
    pub limit: Option<Loc<i64>>,
}

impl Workload {
    /// The lengths a scenario asks for: explicit, else its preset, else 128 in / 64 out.
    pub fn lengths(&self) -> (LengthDist, LengthDist) {
        let w = self;
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
}

/// Per-request limits; the scenario passes its SLO when `percentile` of requests meet each.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Most time to first token.
    pub ttft: Option<Dur>,
    /// Most time per output token.
    pub tpot: Option<Dur>,
    /// Most end-to-end time.
    pub e2e: Option<Dur>,
    /// Percentile that must meet the limits (default 95).
    pub percentile: Option<Loc<f64>>,
}

/// One line of the suite.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteEntry {
    /// Scenario name.
    pub scenario: Loc<String>,
    /// Target names (default: the scenario's target).
    #[serde(default)]
    pub targets: Vec<Loc<String>>,
    /// Times to run it (default 1).
    pub repeats: Option<u32>,
}

/// A configuration that cannot be used: where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A command-line flag cannot be used; the message starts with the flag.
    #[error("{0}")]
    Flag(String),
    /// The file cannot be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Wrong YAML, a wrong type, an unknown key, or a value that makes no sense.
    #[error("{file}{}: {field}: {message}", line_part(*line))]
    At {
        /// The file.
        file: String,
        /// 1-based line (0 if unknown).
        line: u64,
        /// Dotted path of the field, e.g. `scenarios[1].load.rate`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// `:LINE`, or nothing when the line is unknown (0): values built from command-line flags.
fn line_part(line: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// A parsed file with where it came from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file's contents.
    pub file: ConfigFile,
    /// Its path (for messages and relative paths).
    pub origin: String,
    /// The text (to name fields in later messages).
    pub text: String,
}

impl Config {
    /// An error at `line`, naming the field found there.
    pub fn error(
        &self,
        line: u64,
        fallback_field: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let found = field_at(&self.text, line);
        ConfigError::At {
            file: self.origin.clone(),
            line,
            field: if found.is_empty() {
                fallback_field.to_string()
            } else {
                found
            },
            message: message.into(),
        }
    }

    /// A path in the file resolved against the file's directory.
    pub fn relative(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        Path::new(&self.origin)
            .parent()
            .map_or_else(|| p.to_path_buf(), |d| d.join(p))
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.file.targets.iter().find(|t| *t.name == name)
    }

    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.file.scenarios.iter().find(|s| *s.name == name)
    }
}
