//! The `_bulk` client: NDJSON batches bounded by documents and bytes, the answer read item by
//! item, retries with exponential backoff (the whole batch on HTTP 429, 5xx or a transport
//! error; only the items refused with 429 otherwise), a batch halved on HTTP 413.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::target::Target;
use crate::{IndexConfig, IndexSummary, MAX_BACKOFF, SinkError};

/// Most bytes of a `_bulk` answer read (the rest is an error).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// One document: its action and source lines, each ending in `\n`.
struct Item {
    ndjson: Vec<u8>,
    id: String,
}

/// Batches documents and sends them.
pub(crate) struct Bulk<'a> {
    cfg: &'a IndexConfig,
    target: Target,
    client: HyperClient<HttpConnector, Full<Bytes>>,
    batch: Vec<Item>,
    batch_bytes: usize,
    pub(crate) summary: IndexSummary,
}

/// What one `_bulk` request came to.
enum Answer {
    /// HTTP status and body.
    Http(u16, Bytes),
    /// No answer: the message.
    Transport(String),
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn excerpt(b: &[u8]) -> String {
    let t = String::from_utf8_lossy(&b[..b.len().min(300)]);
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl<'a> Bulk<'a> {
    pub(crate) fn new(cfg: &'a IndexConfig, target: Target) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(cfg.timeout));
        Bulk {
            cfg,
            target,
            client: HyperClient::builder(TokioExecutor::new()).build(connector),
            batch: Vec::new(),
            batch_bytes: 0,
            summary: IndexSummary::default(),
        }
    }

    fn server_error(&self, message: String) -> SinkError {
        SinkError::Server {
            url: self.target.shown.clone(),
            message,
            summary: Box::new(self.summary.clone()),
        }
    }

    /// Queues one document for `index` with `_id` `id`; sends a batch when it is full.
    pub(crate) async fn push(
        &mut self,
        index: &str,
        id: &str,
        source: &Value,
    ) -> Result<(), SinkError> {
        let mut ndjson =
            serde_json::to_vec(&json!({"index": {"_index": index, "_id": id}})).unwrap_or_default();
        ndjson.push(b'\n');
        // A Value always serializes (string keys); a failure would be an empty object.
        serde_json::to_writer(&mut ndjson, source).unwrap_or_default();
        ndjson.push(b'\n');
        if !self.batch.is_empty() && self.batch_bytes + ndjson.len() > self.cfg.batch_bytes {
            self.flush().await?;
        }
        self.summary.sent += 1;
        self.batch_bytes += ndjson.len();
        self.batch.push(Item {
            ndjson,
            id: id.to_string(),
        });
        if self.batch.len() >= self.cfg.batch_docs || self.batch_bytes >= self.cfg.batch_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is queued and says what was done.
    pub(crate) async fn finish(mut self) -> Result<IndexSummary, SinkError> {
        self.flush().await?;
        Ok(self.summary)
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let items = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if items.is_empty() {
            return Ok(());
        }
        self.send(items).await
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.cfg
            .backoff
            .saturating_mul(1u32 << attempt.min(20))
            .min(MAX_BACKOFF)
    }

    /// Sends `items` until each is indexed or refused for good.
    async fn send(&mut self, items: Vec<Item>) -> Result<(), SinkError> {
        let mut queue: VecDeque<(Vec<Item>, u32)> = VecDeque::from([(items, 0)]);
        while let Some((items, attempt)) = queue.pop_front() {
            let mut body = Vec::with_capacity(items.iter().map(|i| i.ndjson.len()).sum());
            for i in &items {
                body.extend_from_slice(&i.ndjson);
            }
            let bytes = body.len();
            let whole_retry = |why: String, this: &mut Self| -> Result<Duration, SinkError> {
                if attempt >= this.cfg.max_retries {
                    return Err(
                        this.server_error(format!("{why}; gave up after {attempt} retries"))
                    );
                }
                this.summary.retried_batches += 1;
                Ok(this.backoff(attempt))
            };
            match self.post(Bytes::from(body)).await {
                Answer::Transport(why) => {
                    let wait = whole_retry(why, self)?;
                    tokio::time::sleep(wait).await;
                    queue.push_front((items, attempt + 1));
                }
                Answer::Http(413, _) => {
                    if items.len() > 1 {
                        let mut first = items;
                        let second = first.split_off(first.len() / 2);
                        queue.push_front((second, attempt));
                        queue.push_front((first, attempt));
                    } else {
                        self.summary.failed += 1;
                        let id = &items[0].id;
                        self.summary.error(format!(
                            "document {id}: {bytes} bytes is more than the server accepts in one request (HTTP 413)"
                        ));
                    }
                }
                Answer::Http(status @ (429 | 500..=599), body) => {
                    let wait = whole_retry(format!("HTTP {status} ({})", excerpt(&body)), self)?;
                    tokio::time::sleep(wait).await;
                    queue.push_front((items, attempt + 1));
                }
                Answer::Http(200..=299, body) => {
                    let again = self.read_items(items, &body, attempt)?;
                    if !again.is_empty() {
                        self.summary.retried_batches += 1;
                        tokio::time::sleep(self.backoff(attempt)).await;
                        queue.push_front((again, attempt + 1));
                    }
                }
                Answer::Http(status, body) => {
                    let hint = match status {
                        401 | 403 => {
                            " (check INFERBENCH_INDEX_USER/PASSWORD or INFERBENCH_INDEX_API_KEY)"
                        }
                        404 => " (is this the server's base URL?)",
                        _ => "",
                    };
                    return Err(self.server_error(format!(
                        "POST /_bulk answered HTTP {status}{hint}: {}",
                        excerpt(&body)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Counts the items of a 2xx answer; returns those refused with 429 that may be retried.
    fn read_items(
        &mut self,
        items: Vec<Item>,
        body: &[u8],
        attempt: u32,
    ) -> Result<Vec<Item>, SinkError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            self.server_error(format!(
                "the answer to POST /_bulk is not JSON ({e}): {}",
                excerpt(body)
            ))
        })?;
        let errors = v.get("errors").and_then(Value::as_bool);
        let answers = v.get("items").and_then(Value::as_array);
        let Some(answers) = answers else {
            return Err(self.server_error(format!(
                "the answer to POST /_bulk has no `items`: {}",
                excerpt(body)
            )));
        };
        if answers.len() != items.len() {
            return Err(self.server_error(format!(
                "POST /_bulk answered {} items for {} documents",
                answers.len(),
                items.len()
            )));
        }
        if errors == Some(false) {
            self.summary.indexed += items.len() as u64;
            return Ok(Vec::new());
        }
        let mut again = Vec::new();
        for (item, answer) in items.into_iter().zip(answers) {
            // `{"index": {"status": 201, ...}}`: the one key is the action.
            let result = answer
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            match status {
                200..=299 => self.summary.indexed += 1,
                429 if attempt < self.cfg.max_retries => again.push(item),
                _ => {
                    self.summary.failed += 1;
                    let e = result.get("error");
                    let why = match e {
                        Some(Value::Object(o)) => format!(
                            "{}: {}",
                            o.get("type").and_then(Value::as_str).unwrap_or("error"),
                            o.get("reason").and_then(Value::as_str).unwrap_or("")
                        ),
                        Some(other) => other.to_string(),
                        None => "no error given".into(),
                    };
                    let retried = if status == 429 {
                        format!(" (after {attempt} retries)")
                    } else {
                        String::new()
                    };
                    self.summary.error(format!(
                        "document {}: status {status}{retried}: {why}",
                        item.id
                    ));
                }
            }
        }
        Ok(again)
    }

    /// One `POST {url}/_bulk`, within the timeout.
    async fn post(&self, body: Bytes) -> Answer {
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.target.bulk.clone();
        let h = req.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-ndjson"),
        );
        h.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some(a) = &self.target.auth {
            h.insert(http::header::AUTHORIZATION, a.clone());
        }
        let work = async {
            let resp = match self.client.request(req).await {
                Ok(r) => r,
                Err(e) if e.is_connect() => {
                    return Answer::Transport(format!("cannot connect: {}", chain(&e)));
                }
                Err(e) => return Answer::Transport(format!("the request failed: {}", chain(&e))),
            };
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            let mut kept = Vec::new();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(d) = f.into_data() {
                            if kept.len() + d.len() > MAX_ANSWER_BYTES {
                                return Answer::Transport(format!(
                                    "the answer is larger than {MAX_ANSWER_BYTES} bytes"
                                ));
                            }
                            kept.extend_from_slice(&d);
                        }
                    }
                    Err(e) => {
                        return Answer::Transport(format!(
                            "the answer broke off (HTTP {status}): {}",
                            chain(&e)
                        ));
                    }
                }
            }
            Answer::Http(status, Bytes::from(kept))
        };
        match tokio::time::timeout(self.cfg.timeout, work).await {
            Ok(a) => a,
            Err(_) => Answer::Transport(format!(
                "no answer in {:.1} s",
                self.cfg.timeout.as_secs_f64()
            )),
        }
    }
}
