//! What a run learned: [`run::RunResult`] (the versioned report schema) and
//! [`histogram::LatencyHistogram`], the bounded latency record that merges exactly.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod histogram;
pub mod merge;
pub mod run;
pub mod server;
pub mod suite;

/// The JSON Schema of report.json (`inferbench schema --report`).
pub fn report_schema() -> String {
    let s = schemars::schema_for!(suite::Report);
    serde_json::to_string_pretty(&s).unwrap_or_default()
}
