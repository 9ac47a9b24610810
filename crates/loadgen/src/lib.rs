//! The load generator's sending side: the SSE parser that timestamps each event as its bytes
//! arrive ([`sse`]), the client that sends one request and classifies what came back
//! ([`client`]), the engine that schedules requests open- or closed-loop ([`engine`]), the
//! recorder that turns outcomes into histograms ([`recorder`]), the per-request log
//! ([`log`]) and one-off probes of a target ([`probe`]).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod engine;
pub mod log;
pub mod net;
pub mod probe;
pub mod recorder;
pub mod sse;
