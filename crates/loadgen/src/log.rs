//! The per-request log: one JSON line per finished request, streamed to disk by a writer thread
//! so the hot path never waits on I/O. If the disk cannot keep up, lines are dropped and counted
//! rather than memory growing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::client::Outcome;
use crate::recorder::error_label;

/// One line of the log. Times are µs from the run's start.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// Request number.
    pub k: u64,
    /// Model asked for.
    pub model: &'a str,
    /// Planned send.
    pub planned_us: u64,
    /// Actual send.
    pub sent_us: u64,
    /// Response headers.
    pub first_byte_us: Option<u64>,
    /// First output token.
    pub first_token_us: Option<u64>,
    /// End.
    pub end_us: u64,
    /// Events that carried output text.
    pub token_events: usize,
    /// HTTP status.
    pub status: Option<u16>,
    /// `kind/side`, if it failed.
    pub error: Option<String>,
    /// Detail of the failure (status body excerpt, protocol detail).
    pub error_detail: Option<String>,
    /// Model that answered.
    pub model_served: Option<&'a str>,
    /// Endpoint that served.
    pub endpoint: Option<&'a str>,
    /// Server's prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Server's output tokens.
    pub completion_tokens: Option<u64>,
    /// Cached prompt tokens.
    pub cached_tokens: Option<u64>,
    /// Was it in the warm-up.
    pub warmup: bool,
}

/// A cannot-open error names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the request log {path}: {message}")]
pub struct LogError {
    /// The file.
    pub path: String,
    /// What the OS said.
    pub message: String,
}

/// Sends lines to the writer thread.
#[derive(Clone)]
pub struct RequestLog {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog").finish_non_exhaustive()
    }
}

/// Owns the writer thread; [`LogWriter::finish`] flushes and reports.
pub struct LogWriter {
    handle: JoinHandle<std::io::Result<u64>>,
    dropped: Arc<AtomicU64>,
    path: PathBuf,
}

impl RequestLog {
    /// Opens (truncates) `path` and starts the writer.
    pub fn create(path: &Path) -> Result<(RequestLog, LogWriter), LogError> {
        let file = std::fs::File::create(path).map_err(|e| LogError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let (tx, rx) = sync_channel::<String>(65_536);
        let handle = std::thread::Builder::new()
            .name("inferbench-request-log".into())
            .spawn(move || {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
                let mut n = 0u64;
                for line in rx {
                    w.write_all(line.as_bytes())?;
                    w.write_all(b"\n")?;
                    n += 1;
                }
                w.flush()?;
                Ok(n)
            })
            .map_err(|e| LogError {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let dropped = Arc::new(AtomicU64::new(0));
        Ok((
            RequestLog {
                tx,
                dropped: dropped.clone(),
            },
            LogWriter {
                handle,
                dropped,
                path: path.to_path_buf(),
            },
        ))
    }

    /// Queues one line (never blocks).
    pub fn write(&self, line: &Line<'_>) {
        let Ok(text) = serde_json::to_string(line) else {
            return;
        };
        match self.tx.try_send(text) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A line for `o`.
    pub fn line<'a>(
        k: u64,
        model: &'a str,
        o: &'a Outcome,
        rel: impl Fn(tokio::time::Instant) -> u64,
        planned_us: u64,
        warmup: bool,
    ) -> Line<'a> {
        Line {
            k,
            model,
            planned_us,
            sent_us: rel(o.sent),
            first_byte_us: o.first_byte.map(&rel),
            first_token_us: o.first_token.map(&rel),
            end_us: rel(o.end),
            token_events: o.token_events.len(),
            status: o.status,
            error: o.error.as_ref().map(|(k, s)| error_label(k, *s)),
            error_detail: o.error.as_ref().and_then(|(k, _)| match k {
                crate::client::ErrorKind::Http { body, .. } => Some(body.clone()),
                crate::client::ErrorKind::Protocol { detail } => Some(detail.clone()),
                _ => None,
            }),
            model_served: o.model_served.as_deref(),
            endpoint: o.endpoint.as_deref(),
            prompt_tokens: o.prompt_tokens,
            completion_tokens: o.completion_tokens,
            cached_tokens: o.cached_tokens,
            warmup,
        }
    }
}

impl LogWriter {
    /// Waits for every queued line to be written; returns (lines written, lines dropped).
    /// Every [`RequestLog`] clone must be dropped first.
    pub fn finish(self) -> Result<(u64, u64), LogError> {
        let written = self
            .handle
            .join()
            .map_err(|_| LogError {
                path: self.path.display().to_string(),
                message: "writer thread failed".into(),
            })?
            .map_err(|e| LogError {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok((written, self.dropped.load(Ordering::Relaxed)))
    }
}
