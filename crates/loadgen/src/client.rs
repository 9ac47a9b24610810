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
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::net::chain;
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
    /// Most time between two token events once the first has come (a stalled stream).
    pub stall_timeout: Duration,
    /// Speak HTTP/2 (prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
}

impl ClientConfig {
    /// Defaults for `target`: chat, no key, 10 s connect, 60 s TTFT, 30 s stall, 600 s total,
    /// HTTP/1.1.
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_string(),
            api: Api::Chat,
            api_key: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            ttft_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(600),
            stall_timeout: Duration::from_secs(30),
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
    /// The prompt's length in tokens when the source knows it (synthesized prompts): logged, so
    /// a run's request log can be replayed as a trace.
    pub prompt_tokens: Option<usize>,
}

/// What kind of failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection could not be made (the OS's or resolver's words in `detail`).
    Connect {
        /// The underlying error.
        detail: String,
    },
    /// A timeout: `phase` is `ttft` (nothing yet), `stall` (no token for the stall timeout
    /// after the first) or `total`.
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
    /// HTTP 200 whose body (or a streamed event) is an error object, as some servers and
    /// gateways answer overload: the server's message is kept.
    Http200Error {
        /// The error's message (up to 200 characters).
        message: String,
    },
    /// The stream or connection broke before the answer was complete.
    BrokenStream {
        /// The underlying error.
        detail: String,
    },
    /// The bytes were not what the protocol says (not HTTP, not SSE/JSON, invalid UTF-8, an
    /// event or body past its size limit, no `[DONE]`, no tokens).
    Protocol {
        /// What was wrong.
        detail: String,
    },
}

impl ErrorKind {
    /// The detail a person needs: the body excerpt, the server's message or the underlying
    /// error text.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ErrorKind::Connect { detail }
            | ErrorKind::BrokenStream { detail }
            | ErrorKind::Protocol { detail } => Some(detail),
            ErrorKind::Http { body, .. } => Some(body),
            ErrorKind::Http200Error { message } => Some(message),
            ErrorKind::Timeout { .. } => None,
        }
    }
}

/// Which side a failure came from, as far as the answer shows it: never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// inferbench itself.
    Client,
    /// The gateway or proxy in front of the model servers (it named itself).
    Gateway,
    /// A model server.
    ModelServer,
    /// The connection failed (refused, reset, closed) before anything identified who was at
    /// the other end.
    Connection,
    /// Something answered that identified itself as nothing known (e.g. bytes that are not HTTP).
    Unknown,
}

/// Everything learned about one request. Instants are tokio instants (µs conversion happens in
/// the recorder, against the run's start).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When it went out.
    pub sent: Instant,
    /// When the response headers arrived.
    pub first_byte: Option<Instant>,
    /// When the first event with output text arrived, reasoning or answer (unary: the end).
    pub first_token: Option<Instant>,
    /// When the first event with *answer* text (`content`/`text`, not reasoning) arrived; the
    /// same as `first_token` for models that do not reason aloud.
    pub first_content: Option<Instant>,
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
    /// The server's own timing of this request, when its answer carries one (llama.cpp's
    /// `timings`, vLLM's per-request `metrics`).
    pub server_timing: Option<ServerTiming>,
    /// The answer came over HTTP/2.
    pub http2: bool,
    /// The answer's text, kept only for conversations (their next turn sends it back).
    pub text: Option<String>,
    /// Times the request was sent again on a fresh connection because a reused one failed
    /// before any response byte (the server had closed it; it never saw the request).
    pub reconnects: u32,
}

impl Outcome {
    /// An outcome with nothing received yet, sent at `sent`.
    pub fn new(sent: Instant) -> Self {
        Self {
            sent,
            first_byte: None,
            first_token: None,
            first_content: None,
            token_events: Vec::new(),
            end: sent,
            status: None,
            error: None,
            model_served: None,
            endpoint: None,
            prompt_tokens: None,
            completion_tokens: None,
            cached_tokens: None,
            server_timing: None,
            http2: false,
            text: None,
            reconnects: 0,
        }
    }

    /// Inter-token latencies as (gap per token, how many tokens it stands for), over the
    /// server's own count of generated tokens where it gave one.
    ///
    /// One token per event (the usual case) gives each gap between events once. When the
    /// server's `usage.completion_tokens` says the events carried more tokens (a server that
    /// streams in chunks, speculative decoding) or fewer, the `n − 1` tokens after the first are
    /// spread evenly over the `e − 1` gaps: each gap counts for its share of them (whole
    /// numbers that add up to `n − 1`) and is divided by the tokens per gap, `(n − 1) / (e −
    /// 1)`. So the ITL's count is the server's tokens after the first and its mean is the
    /// decode time per server token, never the time per network event.
    pub fn itl_samples(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        let gaps = self.token_events.len().saturating_sub(1) as u64;
        let tokens = match self.completion_tokens {
            Some(n) if gaps > 0 && n >= 1 => n - 1,
            _ => gaps,
        };
        let per_gap = if gaps > 0 {
            tokens as f64 / gaps as f64
        } else {
            1.0
        };
        self.token_events
            .windows(2)
            .enumerate()
            .filter_map(move |(i, w)| {
                let (i, t, g) = (i as u128, u128::from(tokens), u128::from(gaps));
                // Whole shares that add up to `tokens`: ⌊(i+1)·t/g⌋ − ⌊i·t/g⌋.
                let weight = ((i + 1) * t / g - i * t / g) as u64;
                let gap = w[1].saturating_duration_since(w[0]);
                (weight > 0).then(|| (gap.div_f64(per_gap), weight))
            })
    }

    /// Output tokens: the server's count when it gave one, else the events that carried text.
    pub fn output_tokens(&self) -> u64 {
        self.completion_tokens
            .unwrap_or(self.token_events.len() as u64)
    }
}

/// Most bytes of a unary answer (or a JSON answer to a streaming request) kept: past this the
/// request fails as a `protocol` error instead of memory growing.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Most idle keep-alive connections kept per target URL.
const MAX_IDLE_PER_TARGET: usize = 4096;

/// One base URL as the HTTP/1.1 client sends to it: what every request there carries, and its
/// own keep-alive pool (an idle stack, the most recently used connection first).
struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// The request path (origin form).
    path: Uri,
    /// The `Host` header.
    host: HeaderValue,
    idle: Mutex<Vec<http1::SendRequest<Full<Bytes>>>>,
}

impl Target {
    /// An idle connection that still looks open, if any.
    fn checkout(&self) -> Option<http1::SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock();
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }
}

/// A connection lent to one exchange: given back to its pool once the answer was read to its
/// end and the server did not ask to close it; dropped (closed) otherwise.
struct Lease<'a> {
    target: &'a Target,
    conn: Option<http1::SendRequest<Full<Bytes>>>,
    reusable: bool,
}

impl Lease<'_> {
    fn give_back(mut self) {
        if let Some(c) = self.conn.take()
            && self.reusable
            && !c.is_closed()
        {
            let mut idle = self.target.idle.lock();
            if idle.len() < MAX_IDLE_PER_TARGET {
                idle.push(c);
            }
        }
    }
}

/// How requests travel: HTTP/1.1 on our own keep-alive pools (so a request lost on a reused
/// connection is known and sent again), or HTTP/2 with prior knowledge (hyper's pool: one
/// multiplexed connection per host).
enum Transport {
    Http1(Arc<[Target]>),
    Http2(Box<HyperClient<HttpConnector, Full<Bytes>>>, Arc<[Uri]>),
}

/// The client: one per run, shared by every request.
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
    next: Arc<AtomicUsize>,
    api: Api,
    headers: HeaderMap,
    connect_timeout: Duration,
    ttft_timeout: Duration,
    total_timeout: Duration,
    stall_timeout: Duration,
}

impl std::fmt::Debug for Client {
    // The headers may hold the API key: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
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

/// What the response headers tell about who is answering.
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// A model server named itself (endpoint header).
    model_server: bool,
    /// A gateway named itself or is evidently in the path.
    gateway: bool,
}

impl Origin {
    /// The side to blame for a failure after the headers: the one that named itself, else the
    /// connection (no guess).
    fn side(self) -> Side {
        if self.model_server {
            Side::ModelServer
        } else if self.gateway {
            Side::Gateway
        } else {
            Side::Connection
        }
    }
}

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
        let transport = if cfg.http2 {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(cfg.connect_timeout));
            let http = HyperClient::builder(TokioExecutor::new())
                .pool_max_idle_per_host(usize::MAX)
                .http2_only(true)
                .build(connector);
            Transport::Http2(Box::new(http), uris.into())
        } else {
            let mut targets = Vec::new();
            for uri in &uris {
                let bad = |why: &str| ClientError::BadTarget {
                    url: cfg.target.clone(),
                    why: why.to_string(),
                };
                let auth = uri.authority().ok_or_else(|| bad("it has no host"))?;
                let (host, port) =
                    crate::net::host_port(uri).ok_or_else(|| bad("it has no host"))?;
                let addr = format!("{host}:{port}");
                let host_header = HeaderValue::from_str(auth.as_str())
                    .map_err(|_| bad("its host is not a valid header value"))?;
                let path: Uri = uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
                targets.push(Target {
                    addr,
                    path,
                    host: host_header,
                    idle: Mutex::new(Vec::new()),
                });
            }
            Transport::Http1(targets.into())
        };
        Ok(Self {
            transport: Arc::new(transport),
            next: Arc::new(AtomicUsize::new(0)),
            api: cfg.api,
            headers,
            connect_timeout: cfg.connect_timeout,
            ttft_timeout: cfg.ttft_timeout,
            total_timeout: cfg.total_timeout,
            stall_timeout: cfg.stall_timeout,
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

    /// A new HTTP/1.1 connection to `t`.
    async fn connect(&self, t: &Target) -> Result<http1::SendRequest<Full<Bytes>>, ErrorKind> {
        let tcp = match tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(t.addr.as_str()),
        )
        .await
        {
            Err(_) => {
                return Err(ErrorKind::Connect {
                    detail: format!(
                        "no connection to {} within {} ms",
                        t.addr,
                        self.connect_timeout.as_millis()
                    ),
                });
            }
            Ok(Err(e)) => {
                return Err(ErrorKind::Connect {
                    detail: format!("{}: {e}", t.addr),
                });
            }
            Ok(Ok(tcp)) => tcp,
        };
        // Nagle would hold a small request until the previous segment is acknowledged.
        let _ = tcp.set_nodelay(true);
        let (sender, conn) =
            http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| ErrorKind::Connect {
                    detail: format!("{}: {}", t.addr, chain(&e)),
                })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request on HTTP/1.1 and returns the response headers with the connection
    /// lent for reading the body. A request that fails on a reused connection before any
    /// response byte is sent again on a fresh one (the server closed the idle connection and
    /// never saw it), counted in `out.reconnects`.
    async fn exchange_h1<'t>(
        &self,
        t: &'t Target,
        body: &Bytes,
        out: &mut Outcome,
    ) -> Result<(http::Response<Incoming>, Lease<'t>), (ErrorKind, Side)> {
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only { None } else { t.checkout() };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => self.connect(t).await.map_err(|k| (k, Side::Connection))?,
            };
            if conn.ready().await.is_err() {
                // Closed while idle, found before anything was written: try another.
                if reused {
                    continue;
                }
                return Err((
                    ErrorKind::Connect {
                        detail: format!("{}: the new connection closed at once", t.addr),
                    },
                    Side::Connection,
                ));
            }
            let mut req = http::Request::new(Full::new(body.clone()));
            *req.method_mut() = http::Method::POST;
            *req.uri_mut() = t.path.clone();
            *req.headers_mut() = self.headers.clone();
            req.headers_mut().insert(http::header::HOST, t.host.clone());
            match conn.send_request(req).await {
                Ok(resp) => {
                    let reusable = keeps_alive(&resp);
                    return Ok((
                        resp,
                        Lease {
                            target: t,
                            conn: Some(conn),
                            reusable,
                        },
                    ));
                }
                Err(e) if reused && lost_before_answer(&e) => {
                    out.reconnects += 1;
                    fresh_only = true;
                }
                Err(e) => return Err(transport_error(&e)),
            }
        }
    }

    /// Sends one request now and reads the whole answer. Never panics on what the server does:
    /// every failure ends up in `Outcome::error`.
    pub async fn send(&self, spec: &RequestSpec, body: Bytes) -> Outcome {
        let sent = Instant::now();
        let mut out = Outcome::new(sent);
        let deadline = sent + self.total_timeout;
        let ttft_deadline = sent + self.ttft_timeout.min(self.total_timeout);
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let ttft_timeout = || {
            (
                ErrorKind::Timeout {
                    phase: "ttft".into(),
                },
                Side::ModelServer,
            )
        };
        match &*self.transport {
            Transport::Http1(targets) => {
                let t = &targets[i % targets.len()];
                let exchange = self.exchange_h1(t, &body, &mut out);
                let r = match tokio::time::timeout_at(ttft_deadline, exchange).await {
                    Err(_) => Err(ttft_timeout()),
                    Ok(r) => r,
                };
                match r {
                    Err((kind, side)) => fail(out, kind, side),
                    Ok((resp, lease)) => {
                        let (out, read_to_end) = self
                            .read_answer(spec, resp, out, ttft_deadline, deadline)
                            .await;
                        if read_to_end {
                            lease.give_back();
                        }
                        out
                    }
                }
            }
            Transport::Http2(http, uris) => {
                let mut req = http::Request::new(Full::new(body));
                *req.method_mut() = http::Method::POST;
                *req.uri_mut() = uris[i % uris.len()].clone();
                *req.headers_mut() = self.headers.clone();
                match tokio::time::timeout_at(ttft_deadline, http.request(req)).await {
                    Err(_) => {
                        let (k, s) = ttft_timeout();
                        fail(out, k, s)
                    }
                    Ok(Err(e)) => {
                        let (kind, side) = if e.is_connect() {
                            (ErrorKind::Connect { detail: chain(&e) }, Side::Connection)
                        } else {
                            (
                                ErrorKind::BrokenStream { detail: chain(&e) },
                                Side::Connection,
                            )
                        };
                        fail(out, kind, side)
                    }
                    Ok(Ok(resp)) => {
                        self.read_answer(spec, resp, out, ttft_deadline, deadline)
                            .await
                            .0
                    }
                }
            }
        }
    }

    /// Reads and classifies an answer whose headers have come. The flag says whether the body
    /// was read to its end (the connection can carry another request).
    async fn read_answer(
        &self,
        spec: &RequestSpec,
        resp: http::Response<Incoming>,
        mut out: Outcome,
        ttft_deadline: Instant,
        deadline: Instant,
    ) -> (Outcome, bool) {
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
        let gateway_reply = is_gateway_reply(resp.headers());
        let from_model_server = out.endpoint.is_some() && !gateway_reply;
        let origin = Origin {
            model_server: from_model_server,
            gateway: gateway_reply
                || resp
                    .headers()
                    .contains_key("x-gateway-destination-endpoint-served"),
        };
        let json_answer = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
        let mut body = resp.into_body();
        if !status.is_success() {
            let (text, ended) = error_text(&mut body, deadline).await;
            let excerpt: String = text.chars().take(200).collect();
            // A gateway's own reply (Envoy, kgateway or our router naming itself) is the
            // gateway's, even when it is shaped like OpenAI's error JSON.
            let openai_error = text.contains("\"error\"") && !gateway_reply;
            let side = error_side(status, from_model_server, openai_error);
            let kind = ErrorKind::Http {
                status: status.as_u16(),
                body: excerpt,
            };
            return (fail(out, kind, side), ended);
        }
        let error_side_200 = if gateway_reply {
            Side::Gateway
        } else {
            Side::ModelServer
        };
        // A streaming request answered with plain JSON is read whole, as a unary answer.
        let as_sse = spec.stream && !json_answer;
        let mut parser = SseParser::new();
        let mut st = Stream {
            keep_text: !spec.follow_ups.is_empty(),
            ..Stream::default()
        };
        let mut unary = Vec::new();
        loop {
            let limit = match st.last_token {
                None => ttft_deadline.min(deadline),
                Some(t) => deadline.min(t + self.stall_timeout),
            };
            let frame = match tokio::time::timeout_at(limit, body.frame()).await {
                Err(_) => {
                    let phase = match st.last_token {
                        None => "ttft",
                        Some(_) if Instant::now() >= deadline => "total",
                        Some(_) => "stall",
                    };
                    let kind = ErrorKind::Timeout {
                        phase: phase.into(),
                    };
                    return (fail(out, kind, Side::ModelServer), false);
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let kind = ErrorKind::BrokenStream { detail: chain(&e) };
                    return (fail(out, kind, origin.side()), false);
                }
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let at = Instant::now();
            if !as_sse {
                if unary.len() + data.len() > MAX_BODY_BYTES {
                    let detail = format!("the answer is larger than {MAX_BODY_BYTES} bytes");
                    return (
                        fail(out, ErrorKind::Protocol { detail }, origin.side()),
                        false,
                    );
                }
                unary.extend_from_slice(&data);
                continue;
            }
            parser.push(&data, at, |ev| st.event(&mut out, &ev.data, ev.at));
            if parser.overflowed() {
                let detail = format!(
                    "an SSE event is larger than {} bytes",
                    crate::sse::DEFAULT_MAX_EVENT_BYTES
                );
                return (
                    fail(out, ErrorKind::Protocol { detail }, origin.side()),
                    false,
                );
            }
            if let Some(message) = st.error_event.take() {
                return (
                    fail(out, ErrorKind::Http200Error { message }, error_side_200),
                    false,
                );
            }
        }
        out.end = Instant::now();
        let side = origin.side();
        let out = if as_sse {
            st.finish(out, &mut parser, side)
        } else {
            // Unary, or a JSON answer to a streaming request.
            unary_answer(out, &unary, spec.stream, st.keep_text, side, error_side_200)
        };
        (out, true)
    }
}

/// About the first 4 KiB of an error answer's body, as text, and whether the body was read to
/// its end.
async fn error_text(body: &mut Incoming, deadline: Instant) -> (String, bool) {
    let mut text = Vec::new();
    let mut ended = false;
    while text.len() < 4096 {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    text.extend_from_slice(&d);
                }
            }
            Ok(None) => {
                ended = true;
                break;
            }
            _ => break,
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), ended)
}

/// What a streamed answer has shown so far, beyond the outcome's own fields.
#[derive(Default)]
struct Stream {
    /// Keep the answer's text (a conversation's next turn needs it).
    keep_text: bool,
    /// `[DONE]` came.
    done: bool,
    /// The first event that was not JSON.
    protocol_error: Option<String>,
    /// An error object sent as an event.
    error_event: Option<String>,
    /// When the last token came (the stall timeout counts from it).
    last_token: Option<Instant>,
}

impl Stream {
    /// One SSE event's data, arrived at `at`: a chunk (model, usage, tokens, text), an error
    /// object, `[DONE]`, or something that is not JSON.
    fn event(&mut self, out: &mut Outcome, data: &str, at: Instant) {
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let c = match serde_json::from_str::<Chunk<'_>>(data) {
            Ok(c) => c,
            Err(e) => {
                if self.protocol_error.is_none() {
                    let excerpt: String = data.chars().take(80).collect();
                    self.protocol_error = Some(format!("an event is not JSON ({e}): {excerpt}"));
                }
                return;
            }
        };
        if let Some(e) = c.error {
            if self.error_event.is_none() {
                self.error_event = Some(e.message());
            }
            return;
        }
        if out.model_served.is_none() {
            out.model_served = c.model.map(|m| m.into_owned());
        }
        if let Some(u) = c.usage {
            out.prompt_tokens = u.prompt_tokens;
            out.completion_tokens = u.completion_tokens;
            out.cached_tokens = u.prompt_tokens_details.and_then(|d| d.cached_tokens);
        }
        if let Some(t) = server_timing(c.timings, c.metrics) {
            out.server_timing = Some(t);
        }
        let mut answer = false;
        let mut reasoning = false;
        for ch in &c.choices {
            let delta = ch.delta.as_ref();
            answer |= ch.text.as_deref().is_some_and(|t| !t.is_empty())
                || delta
                    .and_then(|d| d.content.as_deref())
                    .is_some_and(|t| !t.is_empty());
            reasoning |= delta.is_some_and(|d| {
                d.reasoning_content
                    .as_deref()
                    .is_some_and(|t| !t.is_empty())
                    || d.reasoning.as_deref().is_some_and(|t| !t.is_empty())
            });
        }
        if self.keep_text {
            let t = out.text.get_or_insert_with(String::new);
            for ch in &c.choices {
                if let Some(x) = ch.text.as_deref() {
                    t.push_str(x);
                }
                if let Some(x) = ch.delta.as_ref().and_then(|d| d.content.as_deref()) {
                    t.push_str(x);
                }
            }
        }
        if answer && out.first_content.is_none() {
            out.first_content = Some(at);
        }
        if answer || reasoning {
            if out.first_token.is_none() {
                out.first_token = Some(at);
            }
            out.token_events.push(at);
            self.last_token = Some(at);
        }
    }

    /// The outcome of a stream that ended: complete, or why not.
    fn finish(self, out: Outcome, parser: &mut SseParser, side: Side) -> Outcome {
        let cut = parser.finish();
        let protocol = |detail: String| ErrorKind::Protocol { detail };
        if parser.invalid_utf8() > 0 {
            let detail = format!(
                "{} event(s) in the stream are not valid UTF-8",
                parser.invalid_utf8()
            );
            return fail(out, protocol(detail), side);
        }
        if let Some(detail) = self.protocol_error {
            return fail(out, protocol(detail), side);
        }
        if !self.done {
            let detail = if cut {
                "the stream ended inside an event"
            } else {
                "the stream ended without [DONE]"
            };
            return fail(out, protocol(detail.into()), side);
        }
        if out.first_token.is_none() {
            return fail(out, protocol("no output tokens in the stream".into()), side);
        }
        out
    }
}

/// The outcome of an answer read whole: a unary completion, an error object with status 200, a
/// JSON answer to a streaming request, or something that is not JSON.
fn unary_answer(
    mut out: Outcome,
    body: &[u8],
    asked_to_stream: bool,
    keep_text: bool,
    side: Side,
    error_side_200: Side,
) -> Outcome {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(body)
        && let Some(e) = e.error
    {
        let message = e.message();
        return fail(out, ErrorKind::Http200Error { message }, error_side_200);
    }
    let u = match serde_json::from_slice::<Unary>(body) {
        Ok(u) => u,
        Err(e) => {
            let detail = if std::str::from_utf8(body).is_err() {
                "the answer is not valid UTF-8".to_string()
            } else {
                format!("the answer is not JSON: {e}")
            };
            return fail(out, ErrorKind::Protocol { detail }, side);
        }
    };
    if asked_to_stream {
        let detail = "asked to stream, the server answered with one JSON body".into();
        return fail(out, ErrorKind::Protocol { detail }, side);
    }
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
    out.server_timing = server_timing(u.timings, u.metrics);
    out.first_token = Some(out.end);
    out.first_content = Some(out.end);
    out
}

/// True when the response lets the connection carry another request.
fn keeps_alive<B>(resp: &http::Response<B>) -> bool {
    let close = resp
        .headers()
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("close"))
        });
    resp.version() == http::Version::HTTP_11 && !close
}

/// True when a request failed without any answer on a connection the server had closed: it
/// was never seen there and can be sent again.
fn lost_before_answer(e: &hyper::Error) -> bool {
    if e.is_parse() || e.is_timeout() || e.is_user() {
        return false;
    }
    if e.is_canceled() || e.is_incomplete_message() || e.is_closed() {
        return true;
    }
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        src = s.source();
    }
    false
}

/// The class of a failure before any answer: bytes that are not HTTP are a protocol error from
/// an unknown party; anything else is the connection's, with its cause.
fn transport_error(e: &hyper::Error) -> (ErrorKind, Side) {
    if e.is_parse() || e.is_parse_status() {
        return (
            ErrorKind::Protocol {
                detail: format!("the answer is not HTTP: {}", chain(e)),
            },
            Side::Unknown,
        );
    }
    (
        ErrorKind::BrokenStream { detail: chain(e) },
        Side::Connection,
    )
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

/// A server's own timing of one request, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerTiming {
    /// Waiting in its queue (vLLM `metrics.queue_time_ms`).
    pub queue_ms: Option<f64>,
    /// Scheduled to first token: prompt processing (llama.cpp `timings.prompt_ms`, vLLM
    /// `metrics.time_to_first_token_ms`).
    pub prefill_ms: Option<f64>,
    /// First to last token (llama.cpp `timings.predicted_ms`, vLLM
    /// `metrics.generation_time_ms`).
    pub decode_ms: Option<f64>,
    /// Tokens the server generated (llama.cpp `timings.predicted_n`).
    pub decode_tokens: Option<u64>,
}

/// llama.cpp's `timings` object.
#[derive(Deserialize)]
struct TimingsWire {
    prompt_ms: Option<f64>,
    predicted_ms: Option<f64>,
    predicted_n: Option<u64>,
}

/// vLLM's per-request `metrics` object (`--enable-per-request-metrics`).
#[derive(Deserialize)]
struct MetricsWire {
    queue_time_ms: Option<f64>,
    time_to_first_token_ms: Option<f64>,
    generation_time_ms: Option<f64>,
}

/// The server timing of an answer's `timings` or `metrics`, if it has either.
fn server_timing(t: Option<TimingsWire>, m: Option<MetricsWire>) -> Option<ServerTiming> {
    let ok = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
    match (t, m) {
        (_, Some(m)) => Some(ServerTiming {
            queue_ms: ok(m.queue_time_ms),
            prefill_ms: ok(m.time_to_first_token_ms),
            decode_ms: ok(m.generation_time_ms),
            decode_tokens: None,
        }),
        (Some(t), None) => Some(ServerTiming {
            queue_ms: None,
            prefill_ms: ok(t.prompt_ms),
            decode_ms: ok(t.predicted_ms),
            decode_tokens: t.predicted_n,
        }),
        (None, None) => None,
    }
}

/// A streamed chunk, borrowing from the event text: no allocation per token in the common case.
#[derive(Deserialize)]
struct Chunk<'a> {
    /// llama.cpp: the request's timings, on the last chunk.
    timings: Option<TimingsWire>,
    /// vLLM (per-request metrics on): the request's timings, on the last chunk.
    metrics: Option<MetricsWire>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<UsageWire>,
    /// An error event (vLLM and others send one in the stream when generation fails).
    error: Option<ErrorWire>,
}

/// An OpenAI error object: `{"message": …}`, or a bare string some servers send.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorWire {
    Object {
        #[serde(default)]
        message: Option<serde_json::Value>,
        #[serde(default, rename = "type")]
        kind: Option<serde_json::Value>,
    },
    Other(serde_json::Value),
}

impl ErrorWire {
    /// The server's message, up to 200 characters.
    fn message(&self) -> String {
        let text = match self {
            ErrorWire::Object { message, kind } => match (message, kind) {
                (Some(serde_json::Value::String(m)), _) => m.clone(),
                (Some(m), _) => m.to_string(),
                (None, Some(k)) => k.to_string(),
                (None, None) => "error object without a message".to_string(),
            },
            ErrorWire::Other(serde_json::Value::String(s)) => s.clone(),
            ErrorWire::Other(v) => v.to_string(),
        };
        text.chars().take(200).collect()
    }
}

/// A whole JSON answer that may be an error object.
#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorWire>,
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
    /// DeepSeek/vLLM reasoning parsers.
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    /// vLLM's newer name, OpenRouter, Ollama.
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
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
    timings: Option<TimingsWire>,
    metrics: Option<MetricsWire>,
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

#[cfg(test)]
mod timing_tests {
    use super::*;

    #[test]
    fn llamacpp_timings_and_vllm_metrics_are_read() {
        let c: Chunk<'_> = serde_json::from_str(
            r#"{"choices":[{"finish_reason":"length","index":0,"delta":{}}],"timings":{"cache_n":30,"prompt_n":1,"prompt_ms":16.185,"predicted_n":5,"predicted_ms":62.051}}"#,
        )
        .unwrap();
        let t = server_timing(c.timings, c.metrics).unwrap();
        assert_eq!(
            (t.queue_ms, t.prefill_ms, t.decode_ms, t.decode_tokens),
            (None, Some(16.185), Some(62.051), Some(5))
        );
        let u: Unary = serde_json::from_str(
            r#"{"model":"m","choices":[],"metrics":{"time_to_first_token_ms":85.2,"generation_time_ms":1240.5,"queue_time_ms":12.3,"mean_itl_ms":9.1}}"#,
        )
        .unwrap();
        let t = server_timing(u.timings, u.metrics).unwrap();
        assert_eq!(
            (t.queue_ms, t.prefill_ms, t.decode_ms),
            (Some(12.3), Some(85.2), Some(1240.5))
        );
        // Nonsense values are dropped, not trusted.
        let c: Chunk<'_> =
            serde_json::from_str(r#"{"choices":[],"timings":{"prompt_ms":-4}}"#).unwrap();
        assert_eq!(
            server_timing(c.timings, c.metrics).unwrap().prefill_ms,
            None
        );
        let c: Chunk<'_> = serde_json::from_str(r#"{"choices":[]}"#).unwrap();
        assert!(server_timing(c.timings, c.metrics).is_none());
    }
}

#[cfg(test)]
mod itl_tests {
    use super::*;

    /// An outcome whose text events came `gaps_ms` apart, the server counting `tokens`.
    fn outcome(gaps_ms: &[u64], tokens: Option<u64>) -> Outcome {
        let t0 = tokio::time::Instant::now();
        let mut o = Outcome::new(t0);
        let mut t = t0;
        o.token_events.push(t);
        for g in gaps_ms {
            t += Duration::from_millis(*g);
            o.token_events.push(t);
        }
        o.completion_tokens = tokens;
        o
    }

    fn samples(o: &Outcome) -> Vec<(u64, u64)> {
        o.itl_samples()
            .map(|(d, n)| (d.as_micros() as u64, n))
            .collect()
    }

    #[test]
    fn one_token_an_event_gives_the_gaps() {
        let o = outcome(&[5, 7, 6], Some(4));
        assert_eq!(samples(&o), [(5_000, 1), (7_000, 1), (6_000, 1)]);
        // No server count: the events are the tokens.
        assert_eq!(samples(&outcome(&[5, 7, 6], None)), samples(&o));
    }

    #[test]
    fn chunks_of_tokens_are_counted_by_the_servers_count() {
        // 4 events, 10 tokens: 9 tokens after the first over 3 gaps, 3 a gap.
        let o = outcome(&[30, 36, 33], Some(10));
        assert_eq!(samples(&o), [(10_000, 3), (12_000, 3), (11_000, 3)]);
        let n: u64 = o.itl_samples().map(|(_, n)| n).sum();
        assert_eq!(n, 9);
        // Uneven: 7 tokens after the first over 3 gaps → shares 2, 2, 3, each gap ÷ 7/3.
        let o = outcome(&[21, 21, 21], Some(8));
        let s = samples(&o);
        assert_eq!(s.iter().map(|x| x.1).collect::<Vec<_>>(), [2, 2, 3]);
        assert!(s.iter().all(|x| x.0 == 9_000), "{s:?}");
        // The mean per server token is the decode time over the tokens after the first.
        let total: u64 = s.iter().map(|(us, n)| us * n).sum();
        assert_eq!(total, 63_000);
    }

    #[test]
    fn fewer_tokens_than_events_and_nonsense_counts_stay_bounded() {
        // 2 tokens over 4 events: 1 token after the first, one gap counts for it.
        let o = outcome(&[10, 10, 10], Some(2));
        let n: u64 = o.itl_samples().map(|(_, n)| n).sum();
        assert_eq!(n, 1);
        // A server that says 0 tokens: the events stand.
        assert_eq!(
            samples(&outcome(&[4, 4], Some(0))),
            [(4_000, 1), (4_000, 1)]
        );
        // A huge count does not overflow.
        let o = outcome(&[1, 1], Some(u64::MAX));
        let n: u64 = o.itl_samples().map(|(_, n)| n).sum();
        assert_eq!(n, u64::MAX - 1);
        // One event: no gap.
        assert_eq!(samples(&outcome(&[], Some(50))), []);
    }
}
