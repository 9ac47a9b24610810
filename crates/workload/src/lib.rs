//! What to send and when, with no sockets and no clocks: the same inputs and seed always give the
//! same requests at the same planned offsets.
//!
//! So far: token-exact prompt synthesis ([`prompt`]), length distributions ([`dist`]) and arrival
//! schedules ([`arrivals`]), production traces ([`trace`]).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arrivals;
pub mod dist;
pub mod prompt;
pub mod trace;
pub mod units;
