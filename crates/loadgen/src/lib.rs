//! The load generator's sending side: the HTTP/SSE client, the engine and the recorder.
//!
//! So far: the SSE parser that timestamps each event as its bytes arrive, and the client that
//! sends one request and classifies what came back (the engine and recorder come with issue 3).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod engine;
pub mod log;
pub mod recorder;
pub mod sse;
