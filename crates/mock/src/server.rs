//! The HTTP face of one simulated instance, and the fleet that runs many in one process.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body::{Body as _, Frame};
use http_body_util::BodyExt;
use parking_lot::{Mutex, RwLock};
use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::api::{self, Api, ChunkFormat, Usage};
use crate::config::{FleetConfig, InstanceConfig, OutputMode};
use crate::conn::{self, ConnCtl, ConnLimits};
use crate::engine::{Engine, FinishReason, SeqSpec, Sequence};
use crate::error::{ApiError, ConfigError};
use crate::metrics::{self, Metrics};
use crate::timer::Deadline;
use crate::tokens;

/// The response header that names the instance that served a request.
pub const ENDPOINT_HEADER: &str = "x-inferbench-endpoint";
/// The request header that forces a fault: an HTTP status (`503`), `abort`, `stall` or `garbage`.
pub const FAULT_HEADER: &str = "x-mock-error";

/// Most tokens written in one body frame when many are due at once (ITL 0, or a late poll).
const MAX_TOKENS_PER_FRAME: usize = 32;

/// A fault that strikes a response part-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MidFault {
    /// Reset the connection.
    Abort,
    /// Stop sending.
    Stall,
    /// Send an event that is not JSON, then end without `[DONE]`.
    Garbage,
}

/// One simulated vLLM server.
pub struct Instance {
    cfg: Arc<InstanceConfig>,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    endpoint: HeaderValue,
    loras: RwLock<BTreeSet<String>>,
    counter: AtomicU64,
    fault_rng: Mutex<StdRng>,
    /// Bytes of request bodies that may still be buffered (`max_buffered_bytes`).
    body_budget: Arc<Semaphore>,
}

impl Instance {
    /// An instance for `cfg` that will answer as `endpoint` (`ip:port`).
    pub fn new(cfg: InstanceConfig, endpoint: &str) -> Arc<Self> {
        let metrics = Arc::new(Metrics::with_max_loras(
            &cfg.model,
            cfg.block_size,
            cfg.kv_blocks,
            cfg.max_loras,
        ));
        let cfg = Arc::new(cfg);
        let engine = Engine::new(cfg.clone(), metrics.clone());
        Arc::new(Self {
            loras: RwLock::new(cfg.lora_adapters.iter().cloned().collect()),
            fault_rng: Mutex::new(StdRng::seed_from_u64(cfg.seed ^ 0xFA17)),
            endpoint: HeaderValue::from_str(endpoint)
                .unwrap_or(HeaderValue::from_static("unknown")),
            counter: AtomicU64::new(0),
            body_budget: Arc::new(Semaphore::new(
                cfg.max_buffered_bytes.min(Semaphore::MAX_PERMITS),
            )),
            engine,
            metrics,
            cfg,
        })
    }

    /// Its engine (for tests and embedding).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The axum router serving its endpoints. It enforces the request-body limits itself; the
    /// timeouts, `close_after_response` and `garbage_rate` belong to the connection layer that
    /// [`MockFleet`] puts around it.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/v1/models", get(models))
            .route("/health", get(health))
            .route("/metrics", get(metrics_handler))
            .route("/v1/load_lora_adapter", post(load_lora))
            .route("/v1/unload_lora_adapter", post(unload_lora))
            .fallback(not_found)
            .with_state(self.clone())
    }

    fn error(&self, e: ApiError) -> Response {
        let mut r = (
            e.status,
            [(header::CONTENT_TYPE, "application/json")],
            e.body(),
        )
            .into_response();
        r.headers_mut()
            .insert(ENDPOINT_HEADER, self.endpoint.clone());
        r
    }

    fn draw(&self, p: f64) -> bool {
        p > 0.0 && self.fault_rng.lock().random_bool(p.min(1.0))
    }
}

async fn chat(State(inst): State<Arc<Instance>>, req: Request) -> Response {
    handle(inst, Api::Chat, req).await
}

async fn completions(State(inst): State<Arc<Instance>>, req: Request) -> Response {
    handle(inst, Api::Completions, req).await
}

/// A request body in memory, holding its share of the instance's `max_buffered_bytes`.
struct Buffered {
    bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Instance {
    /// Takes `more` bytes of the buffer budget into `held`; 503 when they are not there.
    fn reserve(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        more: usize,
    ) -> Result<(), ApiError> {
        if more == 0 {
            return Ok(());
        }
        let permit = u32::try_from(more)
            .ok()
            .and_then(|n| self.body_budget.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                ApiError::status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the server is holding too many request bodies at once (max_buffered_bytes = {}); retry later",
                        self.cfg.max_buffered_bytes
                    ),
                )
            })?;
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }

    fn too_large(&self) -> ApiError {
        ApiError::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than this server accepts (max_body_bytes = {})",
                self.cfg.max_body_bytes
            ),
        )
    }

    /// Reads a request body within `max_body_bytes` (413) and the instance's buffer budget (503).
    /// A body announced by its length is reserved whole before any of it is read.
    async fn read_body(&self, body: Body) -> Result<Buffered, ApiError> {
        let max = self.cfg.max_body_bytes;
        let hint = body.size_hint();
        if hint.lower() > max as u64 {
            return Err(self.too_large());
        }
        let announced = hint.exact().map(|n| n as usize).unwrap_or(0);
        let mut permit = None;
        self.reserve(&mut permit, announced)?;
        let mut reserved = announced;
        let mut buf = BytesMut::with_capacity(announced);
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("cannot read the request body: {e}"), None)
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let total = buf.len() + data.len();
            if total > max {
                return Err(self.too_large());
            }
            if total > reserved {
                self.reserve(&mut permit, total - reserved)?;
                reserved = total;
            }
            buf.extend_from_slice(&data);
        }
        Ok(Buffered {
            bytes: buf.freeze(),
            _permit: permit,
        })
    }
}

/// The body of an error answered with status 200, as some gateways do.
fn error_200_body() -> String {
    serde_json::json!({
        "error": {
            "message": "The server is overloaded (fault injected by faults.error_200_rate)",
            "type": "server_overloaded",
            "code": 503,
        }
    })
    .to_string()
}

/// The adapter a request asks for (`None`: the base model) and its `max_tokens` within the
/// context window, or why it is refused.
fn admit(inst: &Instance, parsed: &api::Parsed) -> Result<(Option<String>, usize), ApiError> {
    let cfg = &inst.cfg;
    let lora = if parsed.model == cfg.model {
        None
    } else if inst.loras.read().contains(&parsed.model) {
        Some(parsed.model.clone())
    } else {
        return Err(ApiError::unknown_model(&parsed.model));
    };
    let prompt_len = parsed.prompt.len();
    if prompt_len >= cfg.max_model_len {
        return Err(ApiError::bad_request(
            format!(
                "This model's maximum context length is {} tokens. However, your prompt has {} tokens.",
                cfg.max_model_len, prompt_len
            ),
            Some("messages"),
        ));
    }
    let room = cfg.max_model_len - prompt_len;
    match parsed.max_tokens {
        Some(m) if m > room => Err(ApiError::bad_request(
            format!(
                "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the messages, {} in the completion). Please reduce the length of the messages or completion.",
                cfg.max_model_len,
                prompt_len + m,
                prompt_len,
                m
            ),
            Some("max_tokens"),
        )),
        Some(m) => Ok((lora, m)),
        None => Ok((lora, room)),
    }
}

/// The fault the request's `FAULT_HEADER` asks for: one mid-answer (`abort`, `stall`,
/// `garbage`), or an error status returned at once (`Err`).
fn header_fault(headers: &http::HeaderMap) -> Result<Option<MidFault>, ApiError> {
    let Some(v) = headers.get(FAULT_HEADER).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    match v.trim() {
        "abort" => Ok(Some(MidFault::Abort)),
        "stall" => Ok(Some(MidFault::Stall)),
        "garbage" => Ok(Some(MidFault::Garbage)),
        code => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) if status.as_u16() >= 400 => Err(ApiError::status(
                status,
                format!("fault injected by the {FAULT_HEADER} header"),
            )),
            _ => Err(ApiError::bad_request(
                format!(
                    "{FAULT_HEADER} must be an HTTP error status, abort, stall or garbage; got `{code}`"
                ),
                None,
            )),
        },
    }
}

/// The faults drawn at the configured rates, in a fixed order (so a seed replays them): an
/// answer given at once (an error status, a 200 carrying an error, bytes that are not HTTP),
/// else the mid-answer fault, if any (the header's wins).
fn drawn_fault(
    inst: &Instance,
    ctl: Option<&Arc<ConnCtl>>,
    mut mid_fault: Option<MidFault>,
) -> Drawn {
    let faults = &inst.cfg.faults;
    if inst.draw(faults.error_rate) {
        let statuses = faults.statuses();
        let i = inst.fault_rng.lock().random_range(0..statuses.len());
        let status = StatusCode::from_u16(statuses[i]).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Drawn::Answer(
            inst.error(ApiError::status(status, "fault injected by the error rate")),
        );
    }
    if inst.draw(faults.error_200_rate) {
        let mut r = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            error_200_body(),
        )
            .into_response();
        r.headers_mut()
            .insert(ENDPOINT_HEADER, inst.endpoint.clone());
        return Drawn::Answer(r);
    }
    if let Some(ctl) = ctl
        && inst.draw(faults.garbage_rate)
    {
        // Whatever is written from now on becomes bytes that are not HTTP, then the end.
        ctl.send_garbage();
        return Drawn::Answer(StatusCode::OK.into_response());
    }
    if mid_fault.is_none() {
        if inst.draw(faults.abort_rate) {
            mid_fault = Some(MidFault::Abort);
        } else if inst.draw(faults.stall_rate) {
            mid_fault = Some(MidFault::Stall);
        }
    }
    Drawn::Go(mid_fault)
}

/// What the drawn faults decided.
enum Drawn {
    /// Answer now with this.
    Answer(Response),
    /// Go on, with this fault in the middle of the answer (if any).
    Go(Option<MidFault>),
}

/// How many tokens the answer has and why it ends: `max_tokens` with `ignore_eos`, else a
/// seeded natural length (at least `min_tokens`).
fn output_length(
    cfg: &InstanceConfig,
    parsed: &api::Parsed,
    max_tokens: usize,
    rng: &mut StdRng,
) -> (usize, FinishReason) {
    if parsed.ignore_eos {
        return (max_tokens, FinishReason::Length);
    }
    let natural = rng.random_range(1..=cfg.default_max_tokens);
    let out = natural.max(parsed.min_tokens).max(1).min(max_tokens);
    let finish = if natural >= max_tokens {
        FinishReason::Length
    } else {
        FinishReason::Stop
    };
    (out, finish)
}

/// An answer's parts that do not depend on how it is sent.
struct Answer {
    seq: Sequence,
    api: Api,
    id: String,
    created: u64,
    served_model: String,
    text: TextSource,
    finish: FinishReason,
    fault_at: Option<(MidFault, usize)>,
    stall: Duration,
    arrival: Instant,
}

/// The streaming answer: an SSE body that writes each token when it is due.
fn sse_response(a: Answer, cfg: &InstanceConfig, include_usage: bool) -> Response {
    let fmt = ChunkFormat::new(a.api, &a.id, a.created, &a.served_model, a.finish.as_str());
    let body = SseBody {
        seq: a.seq,
        fmt,
        text: a.text,
        sleep: Deadline::on(crate::timer::Side::Server, a.arrival, cfg.precise_timers),
        finish: a.finish,
        include_usage,
        per_request_metrics: cfg.per_request_metrics,
        role_pending: a.api == Api::Chat,
        per_chunk: cfg.tokens_per_chunk,
        pending: Vec::new(),
        pending_count: 0,
        fault_at: a.fault_at,
        stall: a.stall,
        stalled: false,
        abort_next: false,
        done: false,
    };
    let mut r = Response::new(Body::new(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn handle(inst: Arc<Instance>, api: Api, req: Request) -> Response {
    let arrival = Instant::now();
    let cfg = inst.cfg.clone();
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let ctl = parts.extensions.get::<Arc<ConnCtl>>().cloned();
    let body = match inst.read_body(body).await {
        Ok(b) => b,
        Err(e) => return inst.error(e),
    };
    let parsed = match api::parse(api, &body.bytes) {
        Ok(p) => p,
        Err(e) => return inst.error(e),
    };
    // The body's memory (and its share of the buffer budget) goes back now.
    drop(body);
    let (lora, max_tokens) = match admit(&inst, &parsed) {
        Ok(x) => x,
        Err(e) => return inst.error(e),
    };
    // Faults decided up front.
    let mid_fault = match header_fault(&headers) {
        Ok(f) => f,
        Err(e) => return inst.error(e),
    };
    let mid_fault = match drawn_fault(&inst, ctl.as_ref(), mid_fault) {
        Drawn::Go(f) => f,
        Drawn::Answer(r) => return r,
    };
    let faults = &cfg.faults;
    if faults.slow_start_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.slow_start_ms)).await;
    }

    let req_no = inst.counter.fetch_add(1, Ordering::Relaxed);
    let mut rng = StdRng::seed_from_u64(
        cfg.seed.rotate_left(17) ^ req_no.wrapping_mul(0xA24B_AED4_963E_E407),
    );
    let (output_tokens, finish) = output_length(&cfg, &parsed, max_tokens, &mut rng);
    let text = TextSource::new(cfg.output, &parsed.prompt, rng);
    let prompt_len = parsed.prompt.len();
    let spec = SeqSpec {
        reserve_tokens: prompt_len + output_tokens,
        prompt: parsed.prompt,
        output_tokens,
        lora,
        arrival,
    };
    let seq = match inst.engine.schedule(spec).await {
        Ok(s) => s,
        Err(e) => return inst.error(e),
    };
    let id = match api {
        Api::Chat => format!("chatcmpl-{:x}-{req_no:x}", cfg.seed),
        Api::Completions => format!("cmpl-{:x}-{req_no:x}", cfg.seed),
    };
    let answer = Answer {
        seq,
        api,
        id,
        created: inferbench_timer::unix_now_s(),
        served_model: faults
            .wrong_model
            .clone()
            .unwrap_or_else(|| parsed.model.clone()),
        text,
        finish,
        fault_at: mid_fault.map(|f| (f, (output_tokens / 2).max(1))),
        stall: Duration::from_millis(faults.stall_ms),
        arrival,
    };
    let mut response = if parsed.stream {
        sse_response(answer, &cfg, parsed.include_usage)
    } else {
        let deadline = Deadline::on(crate::timer::Side::Server, arrival, cfg.precise_timers);
        unary(
            answer.seq,
            deadline,
            api,
            &answer.id,
            answer.created,
            &answer.served_model,
            answer.text,
            finish,
            answer.fault_at,
            answer.stall,
            cfg.per_request_metrics,
        )
        .await
    };
    let h = response.headers_mut();
    h.insert(ENDPOINT_HEADER, inst.endpoint.clone());
    if let Some(rid) = headers.get("x-request-id") {
        h.insert("x-request-id", rid.clone());
    }
    response
}

#[allow(clippy::too_many_arguments)]
async fn unary(
    mut seq: Sequence,
    mut deadline: Deadline,
    api: Api,
    id: &str,
    created: u64,
    model: &str,
    mut text: TextSource,
    finish: FinishReason,
    fault_at: Option<(MidFault, usize)>,
    stall: Duration,
    per_request_metrics: bool,
) -> Response {
    while let Some(due) = seq.next_due() {
        deadline.sleep_until(due).await;
        seq.advance(Instant::now(), usize::MAX);
    }

    match fault_at {
        Some((MidFault::Stall, _)) => {
            if stall.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(stall).await;
        }
        Some((MidFault::Abort, _)) => {
            // Headers go out, then the body breaks: the client sees a reset mid-response.
            return Response::new(Body::new(AbortBody));
        }
        Some((MidFault::Garbage, _)) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"id\": \"broken",
            )
                .into_response();
        }
        None => {}
    }
    let mut content = Vec::with_capacity(seq.output_tokens() * 6);
    for _ in 0..seq.output_tokens() {
        text.push_raw(&mut content);
    }
    let usage = Usage {
        prompt_tokens: seq.prompt_tokens(),
        completion_tokens: seq.output_tokens(),
        cached_tokens: seq.cached_tokens(),
    };
    seq.finish(finish);
    let content = String::from_utf8_lossy(&content);
    let mut body = api::unary_body(api, id, created, model, &content, finish.as_str(), &usage);
    if per_request_metrics && body.ends_with('}') {
        // vLLM's per-request `metrics`, beside `usage`.
        body.pop();
        body.push_str(",\"metrics\":");
        body.push_str(&seq.metrics_json());
        body.push('}');
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A body that fails at once: the client gets headers, then a broken connection.
struct AbortBody;

impl http_body::Body for AbortBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault: abort",
        ))))
    }
}

/// Where output text comes from.
enum TextSource {
    Random(StdRng),
    Echo { texts: Vec<Vec<u8>>, pos: usize },
}

impl TextSource {
    fn new(mode: OutputMode, prompt: &[u32], rng: StdRng) -> Self {
        match mode {
            OutputMode::Echo if !prompt.is_empty() => {
                let texts = prompt
                    .iter()
                    .map(|id| {
                        let mut v = Vec::new();
                        api::escape_into(&mut v, &tokens::token_text(*id));
                        v
                    })
                    .collect();
                TextSource::Echo { texts, pos: 0 }
            }
            _ => TextSource::Random(rng),
        }
    }

    /// Appends the next token's text, JSON-escaped.
    fn push_escaped(&mut self, out: &mut Vec<u8>) {
        match self {
            TextSource::Random(rng) => {
                let words = &*tokens::WORDS;
                out.extend_from_slice(words[rng.random_range(0..words.len())].as_bytes());
            }
            TextSource::Echo { texts, pos } => {
                out.extend_from_slice(&texts[*pos % texts.len()]);
                *pos += 1;
            }
        }
    }

    /// Appends the next token's text, unescaped.
    fn push_raw(&mut self, out: &mut Vec<u8>) {
        match self {
            TextSource::Echo { texts, pos } => {
                let esc = &texts[*pos % texts.len()];
                *pos += 1;
                let quoted = [b"\"", esc.as_slice(), b"\""].concat();
                if let Ok(s) = serde_json::from_slice::<String>(&quoted) {
                    out.extend_from_slice(s.as_bytes());
                }
            }
            random => random.push_escaped(out),
        }
    }
}

/// A streamed answer: SSE events written as the engine produces tokens.
struct SseBody {
    seq: Sequence,
    fmt: ChunkFormat,
    text: TextSource,
    sleep: Deadline,
    finish: FinishReason,
    include_usage: bool,
    /// Write vLLM's per-request `metrics` on the last chunk.
    per_request_metrics: bool,
    role_pending: bool,
    per_chunk: usize,
    pending: Vec<u8>,
    pending_count: usize,
    fault_at: Option<(MidFault, usize)>,
    stall: Duration,
    stalled: bool,
    abort_next: bool,
    done: bool,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.abort_next {
                // Waiting a moment lets the server flush what was sent before the cut.
                if this.sleep.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done = true;
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "fault: abort mid-stream",
                ))));
            }
            if this.stalled {
                if this.stall.is_zero() || this.sleep.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.stalled = false;
                this.fault_at = None;
            }
            let limit = match this.fault_at {
                Some((_, at)) => at
                    .saturating_sub(this.seq.emitted())
                    .clamp(1, MAX_TOKENS_PER_FRAME),
                None => MAX_TOKENS_PER_FRAME,
            };
            let n = this.seq.advance(Instant::now(), limit);
            if n == 0
                && let Some(due) = this.seq.next_due()
            {
                this.sleep.reset(due);
                if this.sleep.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            if this.seq.emitted() == n
                && let Some(first) = this.seq.first_token_at()
            {
                this.seq
                    .engine()
                    .record_ttft_lag(Instant::now().saturating_duration_since(first));
            }
            let mut out = Vec::with_capacity(n * 160 + 64);
            if this.role_pending {
                this.fmt.role_chunk(&mut out);
                this.role_pending = false;
            }
            let finished = this.seq.is_done();
            for i in 0..n {
                this.text.push_escaped(&mut this.pending);
                this.pending_count += 1;
                let last = finished && i + 1 == n;
                if this.pending_count >= this.per_chunk || last {
                    this.fmt.token_chunk(&mut out, &this.pending, last);
                    this.pending.clear();
                    this.pending_count = 0;
                }
            }
            if let Some((fault, at)) = this.fault_at
                && this.seq.emitted() >= at
                && !finished
            {
                match fault {
                    MidFault::Abort => {
                        // What was produced goes out; the next poll breaks the connection.
                        this.abort_next = true;
                        this.sleep.reset(Instant::now() + Duration::from_millis(1));
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    MidFault::Garbage => {
                        out.extend_from_slice(b"data: {\"id\": \"broken\", \"choices\": [\n\n");
                        this.done = true;
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    MidFault::Stall => {
                        this.stalled = true;
                        if !this.stall.is_zero() {
                            let until = Instant::now() + this.stall;
                            this.sleep.reset(until);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
            }
            if finished {
                let usage = Usage {
                    prompt_tokens: this.seq.prompt_tokens(),
                    completion_tokens: this.seq.output_tokens(),
                    cached_tokens: this.seq.cached_tokens(),
                };
                let metrics = this.per_request_metrics.then(|| this.seq.metrics_json());
                if this.include_usage || metrics.is_some() {
                    this.fmt.final_chunk(
                        &mut out,
                        this.include_usage.then_some(&usage),
                        metrics.as_deref(),
                    );
                }
                out.extend_from_slice(api::DONE);
                this.seq.finish(this.finish);
                this.done = true;
            }
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

async fn models(State(inst): State<Arc<Instance>>) -> Response {
    let created = inferbench_timer::unix_now_s();
    let cfg = &inst.cfg;
    let mut data = vec![serde_json::json!({
        "id": cfg.model, "object": "model", "created": created, "owned_by": "vllm",
        "root": cfg.model, "parent": null, "max_model_len": cfg.max_model_len,
    })];
    for a in inst.loras.read().iter() {
        data.push(serde_json::json!({
            "id": a, "object": "model", "created": created, "owned_by": "vllm",
            "root": a, "parent": cfg.model, "max_model_len": cfg.max_model_len,
        }));
    }
    let mut r = axum::Json(serde_json::json!({"object": "list", "data": data})).into_response();
    r.headers_mut()
        .insert(ENDPOINT_HEADER, inst.endpoint.clone());
    r
}

async fn health(State(inst): State<Arc<Instance>>) -> Response {
    let status = if inst.cfg.faults.health_fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut r = status.into_response();
    r.headers_mut()
        .insert(ENDPOINT_HEADER, inst.endpoint.clone());
    r
}

async fn metrics_handler(State(inst): State<Arc<Instance>>, headers: http::HeaderMap) -> Response {
    // As vLLM: OpenMetrics when the scraper asks for it (Prometheus does), else text 0.0.4.
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = metrics::Format::negotiate(accept);
    let text = inst.metrics.render_as(&inst.engine.snapshot(), format);
    ([(header::CONTENT_TYPE, format.content_type())], text).into_response()
}

#[derive(serde::Deserialize)]
struct LoraRequest {
    lora_name: Option<String>,
    #[allow(dead_code)]
    lora_path: Option<String>,
}

async fn lora_name(inst: &Instance, req: Request) -> Result<String, Box<Response>> {
    let body = inst
        .read_body(req.into_body())
        .await
        .map_err(|e| Box::new(inst.error(e)))?;
    let req: LoraRequest = serde_json::from_slice(&body.bytes).map_err(|e| {
        inst.error(ApiError::bad_request(
            format!("the request body is not valid JSON: {e}"),
            None,
        ))
    })?;
    match req.lora_name {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(Box::new(inst.error(ApiError::bad_request(
            "`lora_name` is required",
            Some("lora_name"),
        )))),
    }
}

async fn load_lora(State(inst): State<Arc<Instance>>, req: Request) -> Response {
    let name = match lora_name(&inst, req).await {
        Ok(n) => n,
        Err(r) => return *r,
    };
    if name == inst.cfg.model || !inst.loras.write().insert(name.clone()) {
        return inst.error(ApiError::bad_request(
            format!("The lora adapter '{name}' has already been loaded."),
            Some("lora_name"),
        ));
    }
    (
        StatusCode::OK,
        format!("Success: LoRA adapter '{name}' added successfully."),
    )
        .into_response()
}

async fn unload_lora(State(inst): State<Arc<Instance>>, req: Request) -> Response {
    let name = match lora_name(&inst, req).await {
        Ok(n) => n,
        Err(r) => return *r,
    };
    if !inst.loras.write().remove(&name) {
        return inst.error(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The lora adapter '{name}' cannot be found."),
            param: Some("lora_name"),
        });
    }
    (
        StatusCode::OK,
        format!("Success: LoRA adapter '{name}' removed successfully."),
    )
        .into_response()
}

async fn not_found(State(inst): State<Arc<Instance>>, uri: http::Uri) -> Response {
    inst.error(ApiError::status(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    ))
}

/// A running fleet of instances in this process.
pub struct MockFleet {
    addrs: Vec<SocketAddr>,
    instances: Vec<Arc<Instance>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl MockFleet {
    /// Binds every instance of `cfg` and starts serving. Fails if a port cannot be bound.
    pub async fn start(cfg: FleetConfig) -> Result<Self, ConfigError> {
        // Load the tokenizer and output vocabulary now, not inside the first request's TTFT.
        let _ = tokens::WORDS.len();
        let (shutdown, rx) = watch::channel(false);
        let mut fleet = Self {
            addrs: Vec::new(),
            instances: Vec::new(),
            shutdown,
            tasks: Vec::new(),
        };
        for (port, icfg) in cfg.instances {
            icfg.validate()?;
            let want = format!("{}:{}", cfg.host, port);
            let listener =
                tokio::net::TcpListener::bind(&want)
                    .await
                    .map_err(|e| ConfigError::Bind {
                        addr: want.clone(),
                        message: e.to_string(),
                    })?;
            let addr = listener.local_addr().map_err(|e| ConfigError::Bind {
                addr: want,
                message: e.to_string(),
            })?;
            let limits = ConnLimits {
                header_read_timeout: icfg.header_read_timeout(),
                idle_timeout: icfg.idle_timeout(),
                close_after_response: icfg.faults.close_after_response,
            };
            let inst = Instance::new(icfg, &addr.to_string());
            let task = tokio::spawn(conn::serve(listener, inst.router(), limits, rx.clone()));
            fleet.addrs.push(addr);
            fleet.instances.push(inst);
            fleet.tasks.push(task);
        }
        Ok(fleet)
    }

    /// The bound addresses, in configuration order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `http://ip:port` of each instance.
    pub fn urls(&self) -> Vec<String> {
        self.addrs.iter().map(|a| format!("http://{a}")).collect()
    }

    /// The instances, in configuration order.
    pub fn instances(&self) -> &[Arc<Instance>] {
        &self.instances
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, then stops.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        for mut t in self.tasks {
            tokio::select! {
                _ = &mut t => {}
                _ = &mut deadline => { t.abort(); }
            }
        }
    }
}
