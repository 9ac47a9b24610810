//! One scenario from command-line flags (`inferbench run --target URL --rate 10 …`): the flags
//! as given, turned into a [`Config`] that goes through the same validation and limits as a
//! file, with every error naming the flag that set the value.

use std::collections::BTreeMap;
use std::time::Duration;

use inferbench_workload::dist::LengthDist;
use inferbench_workload::units::parse_duration;

use crate::file::{
    ApiKind, ArrivalKind, Config, ConfigError, ConfigFile, Dur, LoadSpec, Loc, Scenario, Target,
    Tokens, Weighted, Workload,
};
use crate::threshold::Threshold;

/// The flags of one ad-hoc scenario, as the user wrote them.
#[derive(Debug, Clone)]
pub struct AdHoc {
    /// Base URL(s) of the endpoint (comma-separated are served in turn).
    pub url: String,
    /// Model to ask for.
    pub model: String,
    /// `--rate`: open loop, requests/s.
    pub rate: Option<f64>,
    /// `--concurrency`: closed loop, requests in flight.
    pub concurrency: Option<usize>,
    /// `--arrival`: `constant` or `poisson`.
    pub arrival: String,
    /// `--duration`.
    pub duration: Option<String>,
    /// `--requests`.
    pub requests: Option<u64>,
    /// `--warmup`.
    pub warmup: String,
    /// `--prompt-tokens` (a length distribution).
    pub prompt_tokens: String,
    /// `--output-tokens` (a length distribution).
    pub output_tokens: String,
    /// Streaming (`--no-stream` clears it).
    pub stream: bool,
    /// `--api`: `chat` or `completions`.
    pub api: String,
    /// `--seed`.
    pub seed: u64,
    /// `--timeout`.
    pub timeout: String,
    /// `--ttft-timeout`.
    pub ttft_timeout: String,
    /// `--stall-timeout`.
    pub stall_timeout: String,
    /// `--api-key-env`: the variable's name (the key itself is never held here).
    pub api_key_env: Option<String>,
    /// `--header Name: value`, repeated.
    pub headers: Vec<String>,
    /// `--max-in-flight`.
    pub max_in_flight: usize,
    /// `--retries`.
    pub retries: u32,
    /// `--retry-backoff`.
    pub retry_backoff: String,
    /// `--http2`.
    pub http2: bool,
    /// `--threshold`, repeated.
    pub thresholds: Vec<String>,
    /// `--trace FILE` and its settings: replay a trace (its instants unless `--rate` or
    /// `--concurrency` is given).
    pub trace: Option<AdHocTrace>,
}

/// `--trace FILE` with `--trace-format`, `--trace-time-scale`, `--trace-rate-scale`,
/// `--trace-start`, `--trace-limit`.
#[derive(Debug, Clone, Default)]
pub struct AdHocTrace {
    /// The file.
    pub path: String,
    /// Its format (else told by its first line).
    pub format: Option<String>,
    /// Multiplies the trace's time.
    pub time_scale: Option<f64>,
    /// Multiplies the request rate.
    pub rate_scale: Option<f64>,
    /// Leave out the trace's first part.
    pub start: Option<String>,
    /// Most requests.
    pub limit: Option<u64>,
}

/// Where each flag lands in the scenario file's fields (for messages).
const FLAG_FIELDS: [(&str, &str); 17] = [
    (
        "scenarios[0].workload.trace.time_scale",
        "--trace-time-scale",
    ),
    (
        "scenarios[0].workload.trace.rate_scale",
        "--trace-rate-scale",
    ),
    ("scenarios[0].workload.trace.start", "--trace-start"),
    ("scenarios[0].workload.trace.limit", "--trace-limit"),
    ("scenarios[0].workload.trace.format", "--trace-format"),
    ("scenarios[0].load.rate", "--rate"),
    ("scenarios[0].load.concurrency", "--concurrency"),
    ("scenarios[0].load.duration", "--duration"),
    ("scenarios[0].load.requests", "--requests"),
    ("scenarios[0].load.warmup", "--warmup"),
    ("scenarios[0].load.max_in_flight", "--max-in-flight"),
    ("scenarios[0].load.retries", "--retries"),
    ("scenarios[0].workload.prompt_tokens", "--prompt-tokens"),
    ("scenarios[0].workload.output_tokens", "--output-tokens"),
    ("targets[0].timeout", "--timeout"),
    ("targets[0].ttft_timeout", "--ttft-timeout"),
    ("targets[0].stall_timeout", "--stall-timeout"),
];

/// A validation message with its field paths named as the flags that set them.
fn flag_names(msg: &str) -> String {
    let mut m = msg.to_string();
    for (field, flag) in FLAG_FIELDS {
        m = m.replace(field, &format!("{flag} ({field})"));
    }
    m
}

fn flag(msg: impl Into<String>) -> ConfigError {
    ConfigError::Flag(msg.into())
}

/// A duration flag.
fn duration(flag_name: &str, v: &str) -> Result<Duration, ConfigError> {
    parse_duration(v).map_err(|e| flag(format!("{flag_name}: {e}")))
}

/// A length-distribution flag.
fn dist(flag_name: &str, v: &str) -> Result<LengthDist, ConfigError> {
    LengthDist::parse(v).map_err(|e| flag(format!("{flag_name}: {e}")))
}

impl AdHoc {
    /// The scenario file these flags describe (one target `cli`, one scenario `run`), validated
    /// with the same limits as a file. Flags are read in a fixed order (api, load, duration,
    /// lengths, headers, thresholds, timeouts, warm-up, back-off): with several bad flags, the
    /// first in that order is named.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let api = match self.api.as_str() {
            "chat" => ApiKind::Chat,
            "completions" => ApiKind::Completions,
            other => {
                return Err(flag(format!(
                    "--api must be chat or completions, not `{other}`"
                )));
            }
        };
        let load = match (&self.trace, self.rate, self.concurrency) {
            // A trace at its own instants.
            (Some(_), None, None) => LoadSpec::default(),
            _ => self.load()?,
        };
        let run_time = self
            .duration
            .as_deref()
            .map(|d| duration("--duration", d))
            .transpose()?;
        if run_time.is_none() && self.requests.is_none() && self.trace.is_none() {
            return Err(flag("give --duration (e.g. 30s) or --requests N"));
        }
        let prompt = dist("--prompt-tokens", &self.prompt_tokens)?;
        let output = dist("--output-tokens", &self.output_tokens)?;
        if output == (LengthDist::Fixed { value: 0 }) {
            return Err(flag("--output-tokens must be at least 1"));
        }
        let mut headers = BTreeMap::new();
        for h in &self.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| flag(format!("--header `{h}` is not `Name: value`")))?;
            headers.insert(name.trim().to_string(), value.trim().to_string());
        }
        for t in &self.thresholds {
            Threshold::parse(t).map_err(|e| flag(format!("--threshold: {e}")))?;
        }
        let target = Target {
            name: Loc::new("cli".into()),
            url: Loc::new(self.url.clone()),
            api_key_env: self.api_key_env.clone(),
            models: vec![self.model.clone()],
            headers,
            api,
            http2: self.http2,
            timeout: Some(Dur(duration("--timeout", &self.timeout)?)),
            ttft_timeout: Some(Dur(duration("--ttft-timeout", &self.ttft_timeout)?)),
            stall_timeout: Some(Dur(duration("--stall-timeout", &self.stall_timeout)?)),
            server_metrics: None,
        };
        let scenario = Scenario {
            name: Loc::new("run".into()),
            description: None,
            target: None,
            load,
            duration: run_time.map(|d| Loc::new(Dur(d))),
            requests: self.requests,
            warmup: Some(Dur(duration("--warmup", &self.warmup)?)),
            workload: Workload {
                prompt_tokens: Some(Tokens(prompt)),
                output_tokens: Some(Tokens(output)),
                stream: Some(self.stream),
                models: vec![Weighted {
                    name: self.model.clone(),
                    weight: None,
                }],
                trace: self.trace.as_ref().map(|t| t.spec()).transpose()?,
                ..Workload::default()
            },
            slo: None,
            thresholds: self
                .thresholds
                .iter()
                .map(|t| Loc::new(t.clone()))
                .collect(),
            seed: Some(self.seed),
            max_in_flight: Some(self.max_in_flight.max(1) as u64),
            retries: Some(self.retries),
            retry_backoff: Some(Dur(duration("--retry-backoff", &self.retry_backoff)?)),
            stop: None,
            arms: Vec::new(),
            arm_window: None,
        };
        let cfg = Config {
            file: ConfigFile {
                targets: vec![target],
                scenarios: vec![scenario],
                suite: Vec::new(),
            },
            origin: "command line".into(),
            text: String::new(),
        };
        crate::validate::validate(&cfg).map_err(|e| flag(flag_names(&e.to_string())))?;
        Ok(cfg)
    }

    /// The load: `--rate` (open, with `--arrival`) or `--concurrency` (closed).
    fn load(&self) -> Result<LoadSpec, ConfigError> {
        let arrival = match self.arrival.as_str() {
            "constant" => ArrivalKind::Constant,
            "poisson" => ArrivalKind::Poisson,
            other => {
                return Err(flag(format!(
                    "--arrival must be constant or poisson, not `{other}`"
                )));
            }
        };
        match (self.rate, self.concurrency) {
            (Some(r), None) if r.is_finite() && r > 0.0 => Ok(LoadSpec {
                rate: Some(Loc::new(r)),
                arrival: Some(arrival),
                ..LoadSpec::default()
            }),
            (Some(r), None) => Err(flag(format!("--rate must be a positive number, got {r}"))),
            (None, Some(c)) if c > 0 => Ok(LoadSpec {
                concurrency: Some(Loc::new(c as i64)),
                ..LoadSpec::default()
            }),
            (None, Some(_)) => Err(flag("--concurrency must be at least 1")),
            _ => Err(flag(
                "give --rate R (open loop) or --concurrency C (closed loop)",
            )),
        }
    }
}

impl AdHocTrace {
    fn spec(&self) -> Result<crate::file::TraceSpec, ConfigError> {
        Ok(crate::file::TraceSpec {
            path: Loc::new(self.path.clone()),
            format: self.format.clone().map(Loc::new),
            time_scale: self.time_scale.map(Loc::new),
            rate_scale: self.rate_scale.map(Loc::new),
            start: self
                .start
                .as_deref()
                .map(|d| duration("--trace-start", d).map(Dur))
                .transpose()?,
            limit: self.limit.map(|n| Loc::new(n.min(i64::MAX as u64) as i64)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> AdHoc {
        AdHoc {
            url: "http://127.0.0.1:8000".into(),
            model: "m".into(),
            rate: Some(10.0),
            concurrency: None,
            arrival: "poisson".into(),
            duration: Some("30s".into()),
            requests: None,
            warmup: "2s".into(),
            prompt_tokens: "uniform:10:20".into(),
            output_tokens: "64".into(),
            stream: true,
            api: "chat".into(),
            seed: 3,
            timeout: "600s".into(),
            ttft_timeout: "60s".into(),
            stall_timeout: "30s".into(),
            api_key_env: None,
            headers: vec!["X-Team: a: b".into()],
            max_in_flight: 100,
            retries: 0,
            retry_backoff: "100ms".into(),
            http2: false,
            thresholds: vec!["ttft.p95 < 500ms".into()],
            trace: None,
        }
    }

    #[test]
    fn flags_become_one_scenario() {
        let c = flags().config().expect("valid");
        let (t, s) = (&c.file.targets[0], &c.file.scenarios[0]);
        assert_eq!(t.url.value, "http://127.0.0.1:8000");
        assert_eq!(t.headers["X-Team"], "a: b");
        assert_eq!(s.load.rate.as_ref().map(|r| r.value), Some(10.0));
        assert_eq!(s.load.arrival, Some(ArrivalKind::Poisson));
        assert_eq!(
            s.duration.as_ref().map(|d| d.value.0),
            Some(Duration::from_secs(30))
        );
        assert_eq!(s.warmup.map(|d| d.0), Some(Duration::from_secs(2)));
        assert_eq!(
            s.workload.lengths(),
            (
                LengthDist::Uniform { min: 10, max: 20 },
                LengthDist::Fixed { value: 64 }
            )
        );
        assert_eq!(s.thresholds.len(), 1);
    }

    #[test]
    fn errors_name_the_flag() {
        let err = |f: AdHoc| f.config().expect_err("invalid").to_string();
        let mut f = flags();
        f.rate = Some(-1.0);
        assert_eq!(err(f), "--rate must be a positive number, got -1");
        let mut f = flags();
        f.duration = Some("soon".into());
        assert!(err(f).starts_with("--duration: "));
        let mut f = flags();
        f.duration = None;
        assert_eq!(err(f), "give --duration (e.g. 30s) or --requests N");
        let mut f = flags();
        f.output_tokens = "0".into();
        assert!(err(f).starts_with("--output-tokens"));
        let mut f = flags();
        f.rate = Some(1e9);
        // Past the limits: validation's message, with the field named as its flag.
        let e = err(f);
        assert!(e.contains("--rate (scenarios[0].load.rate)"), "{e}");
        let mut f = flags();
        f.headers = vec!["no colon".into()];
        assert_eq!(err(f), "--header `no colon` is not `Name: value`");
        let mut f = flags();
        f.thresholds = vec!["ttft.p95 <".into()];
        assert!(err(f).starts_with("--threshold: "));
        // Several bad flags: the first in reading order is named.
        let mut f = flags();
        f.arrival = "bursty".into();
        f.timeout = "x".into();
        assert_eq!(
            err(f),
            "--arrival must be constant or poisson, not `bursty`"
        );
        let mut f = flags();
        f.rate = None;
        f.headers = vec!["no colon".into()];
        assert_eq!(
            err(f),
            "give --rate R (open loop) or --concurrency C (closed loop)"
        );
    }
}
