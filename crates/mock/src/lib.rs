//! `inferbench mock`: a simulated vLLM fleet.
//!
//! Each instance speaks vLLM's OpenAI-compatible API (`/v1/chat/completions`, `/v1/completions`,
//! `/v1/models`, `/health`, `/metrics`, LoRA load/unload) and simulates its engine: continuous
//! batching, a KV cache, a prefix cache and LoRA slots, on tokio's clock. Every answer names the
//! instance that served it in the `x-inferbench-endpoint` header.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod config;
mod conn;
pub mod engine;
pub mod error;
pub mod fit;
pub mod metrics;
pub mod server;
pub mod snapshot;

/// Token counting (re-exported from `inferbench-tokens`).
pub use inferbench_tokens as tokens;

/// Precise deadlines (re-exported from `inferbench-timer`).
pub use inferbench_timer as timer;

pub use config::{FaultConfig, FleetConfig, InstanceConfig, OutputMode};
pub use conn::GARBAGE;
pub use error::{ApiError, ConfigError};
pub use server::{ENDPOINT_HEADER, FAULT_HEADER, Instance, MockFleet};
