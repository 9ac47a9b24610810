//! Showing and keeping what a run learned: the [`console`] summary, [`markdown`] and [`html`]
//! reports, [`csv`] exports, [`compare`] (two runs, a verdict per scenario and metric) and
//! [`history`] (every run in an embedded SQLite store, and its listing).
//!
//! The three renderings of a run share one section model (`section`: each part of the report
//! built once as rows of typed cells) and one way of writing figures ([`fmt`]), so a figure reads
//! the same on the console, in report.md and in report.html.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compare;
pub mod console;
pub mod csv;
pub mod fmt;
pub mod history;
pub mod html;
pub mod markdown;
mod section;
mod text;

pub use fmt::{utc, utc_parts};

#[cfg(test)]
mod testutil;
