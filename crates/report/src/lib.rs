//! Showing and keeping what a run learned: [`markdown`] and [`html`] reports, [`csv`] exports,
//! [`compare`] (two runs, a verdict per scenario and metric) and [`history`] (every run in an
//! embedded SQLite store).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compare;
pub mod csv;
pub mod history;
pub mod html;
pub mod markdown;
