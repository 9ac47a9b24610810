//! Shipping results out. Today: OpenSearch / Elasticsearch bulk indexing ([`index_run`]) of a
//! run's [`Report`] (one summary document per scenario, stage and routing arm) and, optionally,
//! of its per-request JSONL logs (one document per request, streamed line by line).
//!
//! Plain `http://` only: the project has no TLS stack. See `docs/sinks.md`.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use inferbench_results::suite::Report;

mod bulk;
pub mod docs;
pub mod logs;
pub mod remote_write;
mod target;

pub use logs::RequestLogFile;

/// The index prefix when none is given: documents go to `inferbench-runs` and
/// `inferbench-requests`.
pub const DEFAULT_PREFIX: &str = "inferbench";
/// Most documents in one `_bulk` request.
pub const DEFAULT_BATCH_DOCS: usize = 500;
/// Most bytes of NDJSON in one `_bulk` request (5 MiB).
pub const DEFAULT_BATCH_BYTES: usize = 5 << 20;
/// Retries of one batch (whole, or its items rejected with 429) before giving up.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF`].
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest one `_bulk` request may take (connecting, sending, answering).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How many error messages [`IndexSummary::first_errors`] keeps.
pub const MAX_ERRORS_KEPT: usize = 10;

/// Environment variable: the user for HTTP basic authentication (with
/// [`ENV_PASSWORD`]).
pub const ENV_USER: &str = "INFERBENCH_INDEX_USER";
/// Environment variable: the password for HTTP basic authentication (with [`ENV_USER`]).
pub const ENV_PASSWORD: &str = "INFERBENCH_INDEX_PASSWORD";
/// Environment variable: an Elasticsearch API key (sent as `Authorization: ApiKey <key>`).
pub const ENV_API_KEY: &str = "INFERBENCH_INDEX_API_KEY";

/// Where and how to index.
#[derive(Clone)]
pub struct IndexConfig {
    /// The server's base URL, `http://host[:port][/path]`. Credentials in it
    /// (`http://user:pass@host`) are used for basic authentication and never printed.
    pub url: String,
    /// Index name prefix: summaries go to `{prefix}-runs`, requests to `{prefix}-requests`.
    pub prefix: String,
    /// Also index one document per request from the request logs.
    pub requests: bool,
    /// Most documents per `_bulk` request.
    pub batch_docs: usize,
    /// Most NDJSON bytes per `_bulk` request (a single larger document goes alone).
    pub batch_bytes: usize,
    /// Retries of a batch before giving up.
    pub max_retries: u32,
    /// Authentication, if the server wants it.
    pub auth: Option<Auth>,
    /// Wait before the first retry (doubling, capped at [`MAX_BACKOFF`]).
    pub backoff: Duration,
    /// Most time one `_bulk` request may take.
    pub timeout: Duration,
}

/// How to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP basic authentication.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// An Elasticsearch API key (the base64 `id:key` form), sent as `Authorization: ApiKey …`.
    ApiKey(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: *** }}"),
            Auth::ApiKey(_) => write!(f, "ApiKey(***)"),
        }
    }
}

impl std::fmt::Debug for IndexConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexConfig")
            .field("url", &target::without_credentials(&self.url))
            .field("prefix", &self.prefix)
            .field("requests", &self.requests)
            .field("batch_docs", &self.batch_docs)
            .field("batch_bytes", &self.batch_bytes)
            .field("max_retries", &self.max_retries)
            .field("auth", &self.auth)
            .field("backoff", &self.backoff)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl IndexConfig {
    /// Defaults for `url`, no authentication.
    pub fn new(url: &str) -> Self {
        IndexConfig {
            url: url.to_string(),
            prefix: DEFAULT_PREFIX.to_string(),
            requests: false,
            batch_docs: DEFAULT_BATCH_DOCS,
            batch_bytes: DEFAULT_BATCH_BYTES,
            max_retries: DEFAULT_MAX_RETRIES,
            auth: None,
            backoff: DEFAULT_BACKOFF,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The configuration for `--index-to URL [--index-prefix P] [--index-requests]`, with
    /// authentication from the environment: [`ENV_USER`] and [`ENV_PASSWORD`] (basic), or
    /// [`ENV_API_KEY`]. Checks the URL (`http://` with a host) and the prefix (a valid index
    /// name) so a mistake shows before the run, not after it.
    pub fn from_env(url: &str, prefix: Option<&str>, requests: bool) -> Result<Self, SinkError> {
        Self::from_vars(url, prefix, requests, |k| {
            std::env::var(k).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`IndexConfig::from_env`] with the variables read by `var`.
    pub fn from_vars(
        url: &str,
        prefix: Option<&str>,
        requests: bool,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SinkError> {
        let mut cfg = IndexConfig::new(url);
        if let Some(p) = prefix {
            cfg.prefix = p.to_string();
        }
        cfg.requests = requests;
        let shown = target::without_credentials(url);
        let config = |message: String| SinkError::Config {
            url: shown.clone(),
            message,
        };
        cfg.auth = match (var(ENV_USER), var(ENV_PASSWORD), var(ENV_API_KEY)) {
            (None, None, None) => None,
            (Some(user), Some(password), None) => Some(Auth::Basic { user, password }),
            (None, None, Some(key)) => Some(Auth::ApiKey(key)),
            (Some(_), None, None) => {
                return Err(config(format!(
                    "{ENV_USER} is set but {ENV_PASSWORD} is not"
                )));
            }
            (None, Some(_), None) => {
                return Err(config(format!(
                    "{ENV_PASSWORD} is set but {ENV_USER} is not"
                )));
            }
            (_, _, Some(_)) => {
                return Err(config(format!(
                    "set either {ENV_USER} and {ENV_PASSWORD}, or {ENV_API_KEY}, not both"
                )));
            }
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks the URL, the prefix and the batch limits.
    pub fn check(&self) -> Result<(), SinkError> {
        let t = target::Target::parse(self)?;
        let config = |message: String| SinkError::Config {
            url: t.shown.clone(),
            message,
        };
        check_prefix(&self.prefix).map_err(config)?;
        if self.batch_docs == 0 || self.batch_bytes == 0 {
            return Err(config(
                "the batch limits (documents, bytes) must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The index of the summary documents, `{prefix}-runs`.
    pub fn runs_index(&self) -> String {
        format!("{}-runs", self.prefix)
    }

    /// The index of the request documents, `{prefix}-requests`.
    pub fn requests_index(&self) -> String {
        format!("{}-requests", self.prefix)
    }
}

/// An index name prefix OpenSearch and Elasticsearch both accept: lowercase, none of
/// `\ / * ? " < > | , # :` or spaces, not starting with `-`, `_` or `+`.
fn check_prefix(p: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "index prefix `{p}` is not a valid index name: {why}"
        ))
    };
    if p.is_empty() {
        return bad("it is empty");
    }
    if p.starts_with(['-', '_', '+']) {
        return bad("it starts with `-`, `_` or `+`");
    }
    if p.chars().any(|c| c.is_uppercase()) {
        return bad("it has uppercase letters");
    }
    if let Some(c) = p
        .chars()
        .find(|c| "\\/*?\"<>|,#: ".contains(*c) || c.is_control())
    {
        return bad(&format!("it contains `{c}`"));
    }
    if p.len() > 200 {
        return bad("it is longer than 200 bytes");
    }
    Ok(())
}

/// What indexing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSummary {
    /// Documents handed to the server (each counted once, however often it was retried).
    pub sent: u64,
    /// Of which the server indexed.
    pub indexed: u64,
    /// Of which the server refused for good (or still refused with 429 after every retry).
    pub failed: u64,
    /// Times a batch (whole, or the items of it refused with 429) was sent again.
    pub retried_batches: u64,
    /// Summary documents sent (scenarios, stages, arms).
    pub summary_docs: u64,
    /// Request documents sent.
    pub request_docs: u64,
    /// Request-log lines that were not JSON objects, not sent.
    pub skipped: u64,
    /// The first few errors ([`MAX_ERRORS_KEPT`]), each naming the document or line.
    pub first_errors: Vec<String>,
}

impl IndexSummary {
    pub(crate) fn error(&mut self, e: String) {
        if self.first_errors.len() < MAX_ERRORS_KEPT {
            self.first_errors.push(e);
        }
    }
}

/// Why indexing could not be done. Every message names the server's URL (never credentials) or
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration cannot work.
    #[error("cannot index to {url}: {message}")]
    Config {
        /// The server, credentials removed.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The server could not be reached, refused the requests, or kept failing.
    #[error("indexing to {url} failed: {message}")]
    Server {
        /// The server, credentials removed.
        url: String,
        /// What happened.
        message: String,
        /// What was done before it stopped.
        summary: Box<IndexSummary>,
    },
    /// A request log could not be read.
    #[error("cannot read the request log {path}: {message}")]
    Log {
        /// The file.
        path: String,
        /// What the OS said.
        message: String,
    },
}

/// Indexes a run: one summary document per scenario, stage and arm of `report` into
/// `{prefix}-runs`, and with `cfg.requests` one document per line of each request log into
/// `{prefix}-requests` (each log's scenario, step and start found from its file name, see
/// [`RequestLogFile::resolve`]). Documents carry `_id`s derived from `run_id`, so indexing the
/// same run again replaces its documents rather than doubling them.
pub async fn index_run(
    cfg: &IndexConfig,
    run_id: &str,
    report: &Report,
    request_logs: &[PathBuf],
) -> Result<IndexSummary, SinkError> {
    let logs: Vec<RequestLogFile> = request_logs
        .iter()
        .map(|p| RequestLogFile::resolve(report, p))
        .collect();
    index_run_with(cfg, run_id, report, &logs).await
}

/// [`index_run`] with each request log's scenario, step and start given explicitly.
pub async fn index_run_with(
    cfg: &IndexConfig,
    run_id: &str,
    report: &Report,
    request_logs: &[RequestLogFile],
) -> Result<IndexSummary, SinkError> {
    cfg.check()?;
    let t = target::Target::parse(cfg)?;
    let mut bulk = bulk::Bulk::new(cfg, t);
    let runs_index = cfg.runs_index();
    for d in docs::summary_docs(run_id, report) {
        bulk.summary.summary_docs += 1;
        bulk.push(&runs_index, &d.id, &d.source).await?;
    }
    if cfg.requests {
        let index = cfg.requests_index();
        for log in request_logs {
            logs::stream(&mut bulk, &index, run_id, report, log).await?;
        }
    }
    bulk.finish().await
}
