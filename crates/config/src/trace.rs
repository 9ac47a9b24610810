//! A scenario's `workload.trace`, read: the trace file in its format, and which part of it to
//! replay how fast.

use std::path::PathBuf;

use inferbench_workload::trace::{self, Replay, Trace, TraceError, TraceFormat};

use crate::{Config, TraceSpec};

/// Why a scenario's trace cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// `format:` names no known format.
    #[error("unknown trace format `{0}`")]
    Format(String),
    /// The file cannot be read, or a line of it is wrong.
    #[error("{0}")]
    Trace(#[from] TraceError),
    /// The selection (start, limit) leaves nothing.
    #[error("the trace's selection leaves no request")]
    Empty,
}

/// A trace ready to replay.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Where it was read from.
    pub path: PathBuf,
    /// The whole trace.
    pub trace: Trace,
    /// What part of it, how fast (the scenario's `duration` is applied by the runner).
    pub replay: Replay,
}

impl Loaded {
    /// Requests in the file (skipped rows not counted).
    pub fn rows(&self) -> usize {
        self.trace.requests.len()
    }
}

/// Reads the trace `t` of a scenario in file `c`.
pub fn load(c: &Config, t: &TraceSpec) -> Result<Loaded, Error> {
    let format = match &t.format {
        Some(f) => {
            Some(TraceFormat::parse(&f.value).ok_or_else(|| Error::Format(f.value.clone()))?)
        }
        None => None,
    };
    let path = c.relative(&t.path);
    let trace = trace::read(&path, format)?;
    let replay = Replay {
        start_us: t
            .start
            .map_or(0, |d| d.0.as_micros().min(u128::from(u64::MAX)) as u64),
        limit: t.limit.as_ref().map(|n| n.value.max(1) as u64),
        time_scale: t.time_scale.as_ref().map_or(1.0, |x| x.value),
        rate_scale: t.rate_scale.as_ref().map_or(1.0, |x| x.value),
        window_us: None,
    };
    let loaded = Loaded {
        path,
        trace,
        replay,
    };
    if loaded.trace.select(&loaded.replay).is_empty() {
        return Err(Error::Empty);
    }
    Ok(loaded)
}
