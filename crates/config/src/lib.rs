//! The scenario file: its types (targets, scenarios with load shapes, workloads, SLOs and
//! thresholds, suites), how it is read and validated (every error names file, line and field),
//! its limits, its JSON Schema, the built-in suite, and scenarios built from command-line flags.
//! Nothing here sends a request: running is `inferbench-runner`'s job.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adhoc;
pub mod file;
pub mod limits;
mod load;
pub mod prompts;
pub mod threshold;
pub mod trace;
pub mod validate;
pub mod yaml;

pub use file::*;

/// The built-in suite `inferbench run` runs with no file and no target.
pub const BUILTIN_SUITE: &str = include_str!("builtin.yaml");

/// The JSON Schema of a scenario file.
pub fn schema() -> String {
    let s = schemars::schema_for!(file::ConfigFile);
    serde_json::to_string_pretty(&s).unwrap_or_default()
}
