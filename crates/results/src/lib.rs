//! What a run learned: [`run::RunResult`] (the versioned report schema) and
//! [`histogram::LatencyHistogram`], the bounded latency record that merges exactly.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod histogram;
pub mod report;
pub mod run;
