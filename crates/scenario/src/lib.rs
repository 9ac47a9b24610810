//! Scenario files and suites: targets, scenarios (load shapes, workloads, SLOs, thresholds),
//! their validation with file/line/field messages, a JSON Schema generated from the types, and
//! the runner that turns them into engine runs and a [`Report`](inferbench_results::report::Report).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arms;
pub mod config;
pub mod embedded;
pub mod progress;
pub mod runner;
pub mod threshold;
pub mod validate;
pub mod workload;

/// The built-in suite `inferbench run` runs with no file and no target.
pub const BUILTIN_SUITE: &str = include_str!("builtin.yaml");

/// The JSON Schema of a scenario file.
pub fn schema() -> String {
    let s = schemars::schema_for!(config::ConfigFile);
    serde_json::to_string_pretty(&s).unwrap_or_default()
}
