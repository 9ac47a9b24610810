//! `inferbench router`: a reference inference router. Body-based routing (the model from the
//! JSON body → `X-Gateway-Model-Name`), routes to pools, and per pool an endpoint picker —
//! round-robin, random, least-request, or EPP-style scoring over each endpoint's vLLM metrics
//! (queue, KV cache, prefix cache, LoRA affinity) scraped every 50 ms. Bodies stream through.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bbr;
pub mod config;
pub mod endpoints;
pub mod gie;
pub mod limits;
pub mod metrics;
pub mod picker;
pub mod server;
pub mod upstream;

pub use config::{PickerConfig, RouterConfig};
pub use server::{RouterHandle, start};
