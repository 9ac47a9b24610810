//! The load generator's sending side: the HTTP/SSE client, the engine and the recorder.
//!
//! So far: the SSE parser that timestamps each event as its bytes arrive (the client, engine and
//! recorder come with issue 3).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod sse;
