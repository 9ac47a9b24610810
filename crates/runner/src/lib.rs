//! Runs scenario files (`inferbench-config`): the suite's plan ([`suite`]), each scenario by its
//! load kind ([`kinds`]: flat rate or concurrency, stages, users, sweep, stress, routing arms),
//! each engine run ([`step`]), the requests sent ([`requests`]), the routers routing arms start
//! ([`routers`]), the embedded mock fleet ([`embedded`]) and the verdicts ([`verdict`]).
//! What it returns is a [`Report`](inferbench_results::suite::Report).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod embedded;
pub mod kinds;
pub mod live_metrics;
pub mod merge;
pub mod progress;
pub mod promql;
pub mod requests;
pub mod routers;
pub mod scenario;
pub mod server_metrics;
pub mod smoke;
pub mod step;
pub mod suite;
pub mod trace;
pub mod verdict;
pub mod watch;

use std::path::PathBuf;

use inferbench_config::ConfigError;
pub use inferbench_loadgen::engine::Shard;

pub use client::{client_for, redact};
pub use scenario::run_scenario;
pub use suite::run_suite;

/// How to run a file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Multiplies every duration and request count (e.g. 0.1 for a quick check); 1 runs as
    /// written.
    pub scale: f64,
    /// Replaces every target's URL (several, comma-separated, are served in turn).
    pub url_override: Option<String>,
    /// Run only this scenario.
    pub only_scenario: Option<String>,
    /// Run only against this target.
    pub only_target: Option<String>,
    /// Write per-request JSONL logs here.
    pub log_dir: Option<PathBuf>,
    /// Print progress to stderr.
    pub progress: bool,
    /// Also write the config's path into the report.
    pub config_label: Option<String>,
    /// Run routing arms' routers as child processes of this executable (`EXE router …`), so
    /// their CPU and memory are their own; `None` runs them in-process on their own runtime.
    pub router_exe: Option<PathBuf>,
    /// Send only this shard of the plan (`--shard I/N`); shards of one run are merged with
    /// `inferbench merge`.
    pub shard: Option<Shard>,
    /// Start the schedule at this Unix time, ms (`--start-at`): shards of one run share it.
    pub start_at_unix_ms: Option<u64>,
    /// Processes whose CPU and memory every stage, step and arm reports (`--watch-process`).
    pub watch: Vec<watch::Watched>,
    /// Resource queries every stage, step and arm reports, from Prometheus (`--prometheus`).
    pub prometheus: Option<promql::Prometheus>,
    /// Model servers whose `/metrics` give each window's server side (`--server-metrics`):
    /// base URLs, or `target` for the target's own; overrides the target's `server_metrics`.
    pub server_metrics: Option<Vec<String>>,
    /// With `--server-metrics prometheus`: the label selector of the servers' series in
    /// Prometheus (`--server-metrics-selector`, e.g. `{namespace="llm"}`).
    pub server_selector: String,
    /// The metric names to read them with (`--server-metrics-map`); default: detected.
    pub server_profile: Option<server_metrics::Profile>,
    /// The load generator's live metrics (`--metrics-listen`), fed by every step.
    pub live_metrics: Option<std::sync::Arc<live_metrics::LiveMetrics>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scale: 1.0,
            url_override: None,
            only_scenario: None,
            only_target: None,
            log_dir: None,
            progress: false,
            config_label: None,
            router_exe: None,
            shard: None,
            start_at_unix_ms: None,
            watch: Vec::new(),
            prometheus: None,
            live_metrics: None,
            server_metrics: None,
            server_selector: String::new(),
            server_profile: None,
        }
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A scenario or target asked for on the command line does not exist.
    #[error("{0}")]
    Select(String),
    /// The client cannot be built (bad URL, key, header).
    #[error("target `{target}`: {message}")]
    Client {
        /// Target name.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// A target does not accept connections.
    #[error("{0}")]
    Unreachable(String),
    /// The embedded fleet did not start.
    #[error("cannot start the embedded mock fleet: {0}")]
    Embedded(String),
}
