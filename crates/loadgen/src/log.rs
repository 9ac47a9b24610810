//! The per-request log: one JSON line per finished request, streamed to disk by a writer thread
//! so the hot path never waits on I/O. If the disk cannot keep up, lines are dropped and counted
//! rather than memory growing; if a write fails (disk full), the first error is kept and every
//! line from then on is counted as dropped. [`LogWriter::finish`] returns both: a log is never
//! silently incomplete.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
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
    /// Prompt tokens sent, when the source knew them (for replaying the log as a trace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len: Option<usize>,
    /// Output tokens asked for.
    pub max_tokens: usize,
    /// Streamed.
    pub stream: bool,
    /// The server's own timing of this request, ms, when its answer carries one (llama.cpp
    /// `timings`, vLLM `--enable-per-request-metrics`): waiting in its queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_queue_ms: Option<f64>,
    /// The server's prefill (scheduled to first token), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_prefill_ms: Option<f64>,
    /// The server's decode (first to last token), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_decode_ms: Option<f64>,
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
    handle: JoinHandle<Written>,
    dropped: Arc<AtomicU64>,
    path: PathBuf,
}

/// What the writer thread did.
#[derive(Debug, Default)]
struct Written {
    lines: u64,
    /// Lines queued but not written because a write failed.
    lost: u64,
    /// The first write error.
    error: Option<std::io::Error>,
}

/// How a request log ended: see [`LogWriter::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// Lines written to the file.
    pub written: u64,
    /// Lines not in the file: dropped because the writer could not keep up, or lost to a failed
    /// write.
    pub dropped: u64,
    /// The first error, naming the file (the log is incomplete).
    pub error: Option<String>,
}

/// Buffered lines are written out past this many bytes (and when the queue runs dry).
const CHUNK: usize = 256 * 1024;

/// The writer thread: batches lines into chunks and writes each whole; after the first failed
/// write, counts every further line as lost instead of writing it.
fn write_all_lines(mut file: std::fs::File, rx: Receiver<String>) -> Written {
    let mut out = Written::default();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    let mut pending = 0u64;
    let mut flush = |buf: &mut Vec<u8>, pending: &mut u64, out: &mut Written| {
        if *pending == 0 {
            return;
        }
        if out.error.is_none() {
            match file.write_all(buf) {
                Ok(()) => out.lines += *pending,
                Err(e) => {
                    out.error = Some(e);
                    out.lost += *pending;
                }
            }
        } else {
            out.lost += *pending;
        }
        buf.clear();
        *pending = 0;
    };
    loop {
        let line = match rx.try_recv() {
            Ok(line) => line,
            Err(TryRecvError::Empty) => {
                // Nothing queued: write what is buffered, then wait.
                flush(&mut buf, &mut pending, &mut out);
                match rx.recv() {
                    Ok(line) => line,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        pending += 1;
        if buf.len() >= CHUNK {
            flush(&mut buf, &mut pending, &mut out);
        }
    }
    flush(&mut buf, &mut pending, &mut out);
    if out.error.is_none()
        && let Err(e) = file.flush()
    {
        out.error = Some(e);
    }
    out
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
            .spawn(move || write_all_lines(file, rx))
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
        spec: &'a crate::client::RequestSpec,
        o: &'a Outcome,
        rel: impl Fn(tokio::time::Instant) -> u64,
        planned_us: u64,
        warmup: bool,
    ) -> Line<'a> {
        Line {
            k,
            model: &spec.model,
            planned_us,
            sent_us: rel(o.sent),
            first_byte_us: o.first_byte.map(&rel),
            first_token_us: o.first_token.map(&rel),
            end_us: rel(o.end),
            token_events: o.token_events.len(),
            status: o.status,
            error: o.error.as_ref().map(|(k, s)| error_label(k, *s)),
            error_detail: o
                .error
                .as_ref()
                .and_then(|(k, _)| k.detail().map(str::to_string)),
            model_served: o.model_served.as_deref(),
            endpoint: o.endpoint.as_deref(),
            prompt_tokens: o.prompt_tokens,
            completion_tokens: o.completion_tokens,
            cached_tokens: o.cached_tokens,
            warmup,
            prompt_len: spec.prompt_tokens,
            max_tokens: spec.max_tokens,
            stream: spec.stream,
            server_queue_ms: o.server_timing.as_ref().and_then(|t| t.queue_ms),
            server_prefill_ms: o.server_timing.as_ref().and_then(|t| t.prefill_ms),
            server_decode_ms: o.server_timing.as_ref().and_then(|t| t.decode_ms),
        }
    }
}

impl LogWriter {
    /// Waits for every queued line to be written and says how it went: lines written, lines
    /// dropped (the queue was full, or a write failed) and the first error. Never fails: an
    /// incomplete log is reported, not hidden. Every [`RequestLog`] clone must be dropped first.
    pub fn finish(self) -> LogSummary {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let name = self.path.display().to_string();
        match self.handle.join() {
            Ok(w) => LogSummary {
                written: w.lines,
                dropped: dropped + w.lost,
                error: w.error.map(|e| {
                    LogError {
                        path: name,
                        message: e.to_string(),
                    }
                    .to_string()
                }),
            },
            Err(_) => LogSummary {
                written: 0,
                dropped,
                error: Some(
                    LogError {
                        path: name,
                        message: "the writer thread failed".into(),
                    }
                    .to_string(),
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(k: u64) -> Line<'static> {
        Line {
            k,
            model: "m",
            planned_us: k,
            sent_us: k,
            first_byte_us: None,
            first_token_us: None,
            end_us: k + 1,
            token_events: 0,
            status: Some(200),
            error: None,
            error_detail: None,
            model_served: None,
            endpoint: None,
            prompt_tokens: None,
            completion_tokens: None,
            cached_tokens: None,
            warmup: false,
            prompt_len: Some(10),
            max_tokens: 4,
            stream: true,
            server_queue_ms: None,
            server_prefill_ms: None,
            server_decode_ms: None,
        }
    }

    #[test]
    fn a_line_carries_the_request_and_the_servers_own_timing() {
        let t0 = tokio::time::Instant::now();
        let mut o = Outcome::new(t0);
        o.server_timing = Some(crate::client::ServerTiming {
            queue_ms: Some(1.5),
            prefill_ms: Some(20.25),
            decode_ms: Some(80.0),
            decode_tokens: Some(16),
        });
        let spec = crate::client::RequestSpec {
            model: "m".into(),
            max_tokens: 16,
            stream: true,
            prompt_tokens: Some(64),
            ..Default::default()
        };
        let line = RequestLog::line(3, &spec, &o, |_| 0, 7, false);
        let v: serde_json::Value = serde_json::to_value(&line).unwrap();
        assert_eq!(v["prompt_len"], 64);
        assert_eq!(v["max_tokens"], 16);
        assert_eq!(v["stream"], true);
        assert_eq!(v["server_queue_ms"], 1.5);
        assert_eq!(v["server_prefill_ms"], 20.25);
        assert_eq!(v["server_decode_ms"], 80.0);
        // No timing, no keys.
        let bare = Outcome::new(t0);
        let v = serde_json::to_value(RequestLog::line(3, &spec, &bare, |_| 0, 7, false)).unwrap();
        assert!(v.get("server_prefill_ms").is_none());
    }

    #[test]
    fn every_line_is_written_and_counted() {
        let path =
            std::env::temp_dir().join(format!("inferbench-log-test-{}.jsonl", std::process::id()));
        let (log, writer) = RequestLog::create(&path).unwrap();
        for k in 0..1000 {
            log.write(&line(k));
        }
        drop(log);
        let s = writer.finish();
        assert_eq!(
            s,
            LogSummary {
                written: 1000,
                dropped: 0,
                error: None
            }
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(text.lines().last().unwrap().starts_with("{\"k\":999,"));
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_reported_not_swallowed() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let (log, writer) = RequestLog::create(Path::new("/dev/full")).unwrap();
        for k in 0..500 {
            log.write(&line(k));
        }
        drop(log);
        let s = writer.finish();
        assert_eq!(s.written, 0);
        assert_eq!(s.dropped, 500, "every line is counted as dropped");
        let e = s.error.expect("the write error is kept");
        assert!(e.contains("/dev/full"), "{e}");
        assert!(e.contains("No space left"), "{e}");
    }
}
