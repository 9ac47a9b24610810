//! The HTTP client that sends one OpenAI request and times everything about its answer.
//!
//! hyper with a keep-alive pool (TCP_NODELAY: Nagle would hold small requests for tens of ms);
//! the body is read frame by frame and fed to the [`SseParser`](crate::sse::SseParser), so each
//! event carries the instant its bytes arrived. Failures are classified by kind and by the side
//! that most likely caused them: the client (us), the gateway in front, or the model server.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::sse::SseParser;

/// Which OpenAI endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
}

/// How to reach the target.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://127.0.0.1:8000` (a trailing `/v1` is allowed).
    pub target: String,
    /// Endpoint.
    pub api: Api,
    /// Sent as `Authorization: Bearer …`; never logged or reported.
    pub api_key: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Most time to connect.
    pub connect_timeout: Duration,
    /// Most time from send to the first token (streaming) or the whole answer (unary).
    pub ttft_timeout: Duration,
    /// Most time for the whole request.
    pub total_timeout: Duration,
    /// Speak HTTP/2 (prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
}

impl ClientConfig {
    /// Defaults for `target`: chat, no key, 10 s connect, 60 s TTFT, 600 s total, HTTP/1.1.
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_string(),
            api: Api::Chat,
            api_key: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            ttft_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(600),
            http2: false,
        }
    }
}

/// A bad client configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The target is not an http URL.
    #[error("target `{url}` is not a usable http:// URL: {why}")]
    BadTarget {
        /// The URL as given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The API key cannot be a header value.
    #[error("the API key contains characters not allowed in an HTTP header")]
    BadKey,
}

/// One request to send.
#[derive(Debug, Clone, Default)]
pub struct RequestSpec {
    /// Model (or adapter) asked for.
    pub model: String,
    /// Prompt text (the last user message in chat).
    pub prompt: String,
    /// Earlier messages of the conversation, `(role, content)`, sent before the prompt (chat);
    /// with the completions API they are joined into the prompt text.
    pub history: Vec<(String, String)>,
    /// Output tokens to force (`max_tokens` + `ignore_eos` + `min_tokens`).
    pub max_tokens: usize,
    /// Stream with SSE.
    pub stream: bool,
    /// Later user turns of a multi-turn conversation: each is sent after the previous answer,
    /// with the whole conversation so far.
    pub follow_ups: Vec<String>,
    /// Pause between an answer and the next turn.
    pub think_time: Duration,
}

/// What kind of failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection could not be made.
    Connect,
    /// A timeout: `phase` is `ttft` or `total`.
    Timeout {
        /// Which timeout fired.
        phase: String,
    },
    /// An error status, with the start of the body.
    Http {
        /// The status.
        status: u16,
        /// Up to 200 characters of the body.
        body: String,
    },
    /// The stream or connection broke before the answer was complete.
    BrokenStream,
    /// The bytes were not what the protocol says (not SSE/JSON, no `[DONE]`, no tokens).
    Protocol {
        /// What was wrong.
        detail: String,
    },
}

/// Which side a failure most likely came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// inferbench itself.
    Client,
    /// The gateway or proxy in front of the model servers.
    Gateway,
    /// A model server.
    ModelServer,
}

/// Everything learned about one request. Instants are tokio instants (µs conversion happens in
/// the recorder, against the run's start).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When it went out.
    pub sent: Instant,
    /// When the response headers arrived.
    pub first_byte: Option<Instant>,
    /// When the first event with output text arrived (unary: the end).
    pub first_token: Option<Instant>,
    /// Arrival of every event that carried output text.
    pub token_events: Vec<Instant>,
    /// When the answer ended (or failed).
    pub end: Instant,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// The failure, if any, and its side.
    pub error: Option<(ErrorKind, Side)>,
    /// `model` of the answer.
    pub model_served: Option<String>,
    /// The endpoint that served it (`x-inferbench-endpoint` or `x-gateway-destination-endpoint-served`).
    pub endpoint: Option<String>,
    /// The server's `usage.prompt_tokens`.
    pub prompt_tokens: Option<u64>,
    /// The server's `usage.completion_tokens`.
    pub completion_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`.
    pub cached_tokens: Option<u64>,
    /// The answer came over HTTP/2.
    pub http2: bool,
    /// The answer's text, kept only for conversations (their next turn sends it back).
    pub text: Option<String>,
}

impl Outcome {
    fn new(sent: Instant) -> Self {
        Self {
            sent,
            first_byte: None,
            first_token: None,
            token_events: Vec::new(),
            end: sent,
            status: None,
            error: None,
            model_served: None,
            endpoint: None,
            prompt_tokens: None,
            completion_tokens: None,
            cached_tokens: None,
            http2: false,
            text: None,
        }
    }

    /// Output tokens: the server's count when it gave one, else the events that carried text.
    pub fn output_tokens(&self) -> u64 {
        self.completion_tokens
            .unwrap_or(self.token_events.len() as u64)
    }
}

/// The client: one per run, shared by every request.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    uris: Arc<[Uri]>,
    next: Arc<AtomicUsize>,
    api: Api,
    headers: HeaderMap,
    ttft_timeout: Duration,
    total_timeout: Duration,
}

impl std::fmt::Debug for Client {
    // The headers may hold the API key: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("uris", &self.uris)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// The endpoint headers, in order of preference.
const ENDPOINT_HEADERS: [&str; 3] = [
    "x-inferbench-endpoint",
    "x-gateway-destination-endpoint-served",
    "x-gateway-destination-endpoint",
];

impl Client {
    /// A client for `cfg`; fails on an unusable URL or key.
    pub fn new(cfg: &ClientConfig) -> Result<Self, ClientError> {
        let path = match cfg.api {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        };
        // Several base URLs, comma-separated, are served in turn (the client spreads the load).
        let mut uris = Vec::new();
        for one in cfg
            .target
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            uris.push(endpoint_uri(one, path)?);
        }
        if uris.is_empty() {
            return Err(ClientError::BadTarget {
                url: cfg.target.clone(),
                why: "it is empty".into(),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(key) = &cfg.api_key {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ClientError::BadKey)?;
            v.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, v);
        }
        for (k, v) in &cfg.headers {
            headers.append(k.clone(), v.clone());
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .http2_only(cfg.http2)
            .build(connector);
        Ok(Self {
            http,
            uris: uris.into(),
            next: Arc::new(AtomicUsize::new(0)),
            api: cfg.api,
            headers,
            ttft_timeout: cfg.ttft_timeout,
            total_timeout: cfg.total_timeout,
        })
    }

    /// The request body for `spec`.
    pub fn body(&self, spec: &RequestSpec) -> Bytes {
        let mut v = match self.api {
            Api::Chat => {
                let mut messages: Vec<serde_json::Value> = spec
                    .history
                    .iter()
                    .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
                    .collect();
                messages.push(serde_json::json!({"role": "user", "content": spec.prompt}));
                serde_json::json!({
                    "model": spec.model,
                    "messages": messages,
                    "max_tokens": spec.max_tokens,
                    "max_completion_tokens": spec.max_tokens,
                })
            }
            Api::Completions => {
                let mut prompt = String::new();
                for (_, content) in &spec.history {
                    prompt.push_str(content);
                }
                prompt.push_str(&spec.prompt);
                serde_json::json!({
                    "model": spec.model,
                    "prompt": prompt,
                    "max_tokens": spec.max_tokens,
                })
            }
        };
        v["ignore_eos"] = true.into();
        v["min_tokens"] = spec.max_tokens.into();
        v["stream"] = spec.stream.into();
        if spec.stream {
            v["stream_options"] = serde_json::json!({"include_usage": true});
        }
        Bytes::from(v.to_string())
    }

    /// Sends one request now and reads the whole answer. Never panics on what the server does:
    /// every failure ends up in `Outcome::error`.
    pub async fn send(&self, spec: &RequestSpec, body: Bytes) -> Outcome {
        let sent = Instant::now();
        let mut out = Outcome::new(sent);
        let deadline = sent + self.total_timeout;
        let ttft_deadline = sent + self.ttft_timeout.min(self.total_timeout);
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.uris.len();
        *req.uri_mut() = self.uris[i].clone();
        *req.headers_mut() = self.headers.clone();
        let resp = match tokio::time::timeout_at(ttft_deadline, self.http.request(req)).await {
            Err(_) => {
                return fail(
                    out,
                    ErrorKind::Timeout {
                        phase: "ttft".into(),
                    },
                    Side::ModelServer,
                );
            }
            Ok(Err(e)) => {
                let (kind, side) = if e.is_connect() {
                    (ErrorKind::Connect, Side::Gateway)
                } else {
                    (ErrorKind::BrokenStream, Side::Gateway)
                };
                return fail(out, kind, side);
            }
            Ok(Ok(r)) => r,
        };
        out.first_byte = Some(Instant::now());
        out.http2 = resp.version() == http::Version::HTTP_2;
        let status = resp.status();
        out.status = Some(status.as_u16());
        out.endpoint = ENDPOINT_HEADERS.iter().find_map(|h| {
            resp.headers()
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        let from_model_server = out.endpoint.is_some();
        // A gateway's own reply (no endpoint chosen; Envoy, kgateway or our router naming
        // itself) is the gateway's, even when it is shaped like OpenAI's error JSON.
        let gateway_reply = !from_model_server && is_gateway_reply(resp.headers());
        let mut body = resp.into_body();
        if !status.is_success() {
            let mut text = Vec::new();
            while text.len() < 4096 {
                match tokio::time::timeout_at(deadline, body.frame()).await {
                    Ok(Some(Ok(f))) => {
                        if let Ok(d) = f.into_data() {
                            text.extend_from_slice(&d);
                        }
                    }
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&text);
            let excerpt: String = text.chars().take(200).collect();
            let openai_error = text.contains("\"error\"") && !gateway_reply;
            let side = error_side(status, from_model_server, openai_error);
            return fail(
                out,
                ErrorKind::Http {
                    status: status.as_u16(),
                    body: excerpt,
                },
                side,
            );
        }
        let keep_text = !spec.follow_ups.is_empty();
        let mut parser = SseParser::new();
        let mut unary = Vec::new();
        let mut done = false;
        let mut protocol_error: Option<String> = None;
        loop {
            let limit = if out.first_token.is_none() {
                ttft_deadline.min(deadline)
            } else {
                deadline
            };
            let frame = match tokio::time::timeout_at(limit, body.frame()).await {
                Err(_) => {
                    let phase = if out.first_token.is_none() {
                        "ttft"
                    } else {
                        "total"
                    };
                    return fail(
                        out,
                        ErrorKind::Timeout {
                            phase: phase.into(),
                        },
                        Side::ModelServer,
                    );
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    let side = if from_model_server {
                        Side::ModelServer
                    } else {
                        Side::Gateway
                    };
                    return fail(out, ErrorKind::BrokenStream, side);
                }
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let at = Instant::now();
            if !spec.stream {
                unary.extend_from_slice(&data);
                continue;
            }
            parser.push(&data, at, |ev| {
                if ev.data == "[DONE]" {
                    done = true;
                    return;
                }
                match serde_json::from_str::<Chunk<'_>>(&ev.data) {
                    Ok(c) => {
                        if out.model_served.is_none() {
                            out.model_served = c.model.map(|m| m.into_owned());
                        }
                        if let Some(u) = c.usage {
                            out.prompt_tokens = u.prompt_tokens;
                            out.completion_tokens = u.completion_tokens;
                            out.cached_tokens =
                                u.prompt_tokens_details.and_then(|d| d.cached_tokens);
                        }
                        let has_text = c.choices.iter().any(|ch| {
                            ch.text.as_deref().is_some_and(|t| !t.is_empty())
                                || ch
                                    .delta
                                    .as_ref()
                                    .and_then(|d| d.content.as_deref())
                                    .is_some_and(|t| !t.is_empty())
                        });
                        if keep_text {
                            let t = out.text.get_or_insert_with(String::new);
                            for ch in &c.choices {
                                if let Some(x) = ch.text.as_deref() {
                                    t.push_str(x);
                                }
                                if let Some(x) =
                                    ch.delta.as_ref().and_then(|d| d.content.as_deref())
                                {
                                    t.push_str(x);
                                }
                            }
                        }
                        if has_text {
                            if out.first_token.is_none() {
                                out.first_token = Some(ev.at);
                            }
                            out.token_events.push(ev.at);
                        }
                    }
                    Err(e) => {
                        if protocol_error.is_none() {
                            let excerpt: String = ev.data.chars().take(80).collect();
                            protocol_error = Some(format!("an event is not JSON ({e}): {excerpt}"));
                        }
                    }
                }
            });
        }
        out.end = Instant::now();
        let side = if from_model_server {
            Side::ModelServer
        } else {
            Side::Gateway
        };
        if spec.stream {
            let cut = parser.finish();
            if let Some(detail) = protocol_error {
                return fail(out, ErrorKind::Protocol { detail }, side);
            }
            if !done {
                let detail = if cut {
                    "the stream ended inside an event"
                } else {
                    "the stream ended without [DONE]"
                };
                return fail(
                    out,
                    ErrorKind::Protocol {
                        detail: detail.into(),
                    },
                    side,
                );
            }
            if out.first_token.is_none() {
                return fail(
                    out,
                    ErrorKind::Protocol {
                        detail: "no output tokens in the stream".into(),
                    },
                    side,
                );
            }
        } else {
            match serde_json::from_slice::<Unary>(&unary) {
                Ok(u) => {
                    out.model_served = u.model;
                    if keep_text {
                        out.text = u
                            .choices
                            .into_iter()
                            .find_map(|c| c.message.and_then(|m| m.content).or(c.text));
                    }
                    if let Some(us) = u.usage {
                        out.prompt_tokens = us.prompt_tokens;
                        out.completion_tokens = us.completion_tokens;
                        out.cached_tokens = us.prompt_tokens_details.and_then(|d| d.cached_tokens);
                    }
                    out.first_token = Some(out.end);
                }
                Err(e) => {
                    return fail(
                        out,
                        ErrorKind::Protocol {
                            detail: format!("the answer is not JSON: {e}"),
                        },
                        side,
                    );
                }
            }
        }
        out
    }
}

/// The completion URI under base URL `target`.
fn endpoint_uri(target: &str, path: &str) -> Result<Uri, ClientError> {
    let base = target.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    let bad = |why: &str| ClientError::BadTarget {
        url: target.to_string(),
        why: why.to_string(),
    };
    let uri: Uri = format!("{base}{path}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https is not supported yet")),
        _ => return Err(bad("it must start with http://")),
    }
    if uri.host().is_none() {
        return Err(bad("it has no host"));
    }
    Ok(uri)
}

fn fail(mut out: Outcome, kind: ErrorKind, side: Side) -> Outcome {
    out.end = Instant::now();
    out.error = Some((kind, side));
    out
}

/// True when the headers say a gateway answered by itself: `server: envoy` (Envoy, kgateway,
/// Istio), `server: inferbench-router`, or Envoy's `x-envoy-*` headers on a local reply.
fn is_gateway_reply(h: &http::HeaderMap) -> bool {
    let server = h
        .get(http::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    server.contains("envoy")
        || server.contains("inferbench-router")
        || server.contains("kgateway")
        || h.keys().any(|k| k.as_str().starts_with("x-envoy-"))
}

/// Who answered with an error status: a model server names itself in a header or answers with
/// OpenAI's JSON error; a bare 502/503/504/429 without either comes from the gateway.
fn error_side(status: StatusCode, from_model_server: bool, openai_error: bool) -> Side {
    match status.as_u16() {
        // Credentials are the client's to fix, whoever refused them.
        401 | 403 | 407 => Side::Client,
        _ if from_model_server || openai_error => Side::ModelServer,
        // A 4xx from something that is not a model server: a wrong path or a malformed request.
        400..=499 if status != StatusCode::TOO_MANY_REQUESTS => Side::Client,
        _ => Side::Gateway,
    }
}

/// A streamed chunk, borrowing from the event text: no allocation per token in the common case.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<UsageWire>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UsageWire {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Unary {
    model: Option<String>,
    usage: Option<UsageWire>,
    #[serde(default)]
    choices: Vec<UnaryChoice>,
}

#[derive(Deserialize)]
struct UnaryChoice {
    text: Option<String>,
    message: Option<UnaryMessage>,
}

#[derive(Deserialize)]
struct UnaryMessage {
    content: Option<String>,
}

#[cfg(test)]
mod side_tests {
    use super::*;

    #[test]
    fn a_gateways_own_reply_is_the_gateways_even_in_openai_shape() {
        let mut h = http::HeaderMap::new();
        assert!(!is_gateway_reply(&h));
        h.insert(http::header::SERVER, "uvicorn".parse().unwrap());
        assert!(!is_gateway_reply(&h));
        for server in ["envoy", "istio-envoy", "inferbench-router"] {
            h.insert(http::header::SERVER, server.parse().unwrap());
            assert!(is_gateway_reply(&h), "{server}");
        }
        let mut h = http::HeaderMap::new();
        h.insert("x-envoy-upstream-service-time", "3".parse().unwrap());
        assert!(is_gateway_reply(&h));
        // The classification that follows: an OpenAI-shaped 503 from a model server vs the
        // same body from a gateway's local reply.
        let s503 = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(error_side(s503, false, true), Side::ModelServer);
        assert_eq!(
            error_side(s503, false, !is_gateway_reply(&h)),
            Side::Gateway
        );
        assert_eq!(error_side(s503, true, false), Side::ModelServer);
        assert_eq!(
            error_side(StatusCode::UNAUTHORIZED, false, false),
            Side::Client
        );
    }
}
