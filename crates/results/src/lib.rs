//! What a run learned. So far: [`histogram::LatencyHistogram`], the bounded, mergeable latency
//! record every metric is kept in (the RunResult schema comes with issue 3).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod histogram;
