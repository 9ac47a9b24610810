//! The reverse proxy: BBR, routing, picking, forwarding with the body streamed through in both
//! directions, endpoint scraping, and the router's own `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::bbr::{self, BASE_MODEL_HEADER, MODEL_HEADER};
use crate::config::{PickerConfig, RouterConfig};
use crate::endpoints::{Endpoint, parse};
use crate::limits::{
    Buffered, ConnState, Expired, InFlight, Limits, Reservation, Watchdog, Watched,
};
use crate::metrics::{Rejected, RouterMetrics};
use crate::picker::{Pick, PickRequest, Picker};
use crate::upstream::{UpBody, Upstream};

/// The endpoint chosen, on the upstream request and on the response.
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";
/// A request's id (kept from the client, or made up).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A negative value marks a request sheddable (429 when every endpoint is saturated).
pub const PRIORITY_HEADER: &str = "x-inferbench-priority";
/// A refused request body is read (and thrown away) up to this, so that a client that sends
/// its whole body before reading the answer gets the answer rather than a reset; a larger one
/// is not read.
const DRAIN_MAX: u64 = 64 << 20;

/// A pool at run time.
pub struct Pool {
    /// Name.
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Its picker.
    pub picker: Box<dyn Picker>,
    upstreams: Vec<Upstream>,
    decision: Histogram,
    scrape: bool,
}

/// The router's shared state.
pub struct Router {
    pools: Vec<Pool>,
    routes: Vec<(Option<String>, Option<String>, usize)>,
    base_models: BTreeMap<String, HeaderValue>,
    body_routing: bool,
    metrics: RouterMetrics,
    rejected: Rejected,
    registry: Registry,
    next_id: AtomicU64,
    limits: Limits,
    /// Request-body bytes buffered now, over all connections (the budget, and a gauge).
    buffered: Gauge,
}

impl Pool {
    /// Idle keep-alive connections to endpoint `i` now.
    pub fn idle_connections(&self, i: usize) -> usize {
        self.upstreams.get(i).map_or(0, Upstream::idle)
    }
}

impl Router {
    /// The pools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Request-body bytes buffered now, over all connections.
    pub fn buffered_bytes(&self) -> u64 {
        u64::try_from(self.buffered.get()).unwrap_or(0)
    }

    fn route(&self, model: Option<&str>, path: &str) -> usize {
        for (m, prefix, pool) in &self.routes {
            let model_ok = m.as_deref().is_none_or(|m| Some(m) == model);
            let path_ok = prefix.as_deref().is_none_or(|p| path.starts_with(p));
            if model_ok && path_ok && (m.is_some() || prefix.is_some()) {
                return *pool;
            }
        }
        0
    }

    /// A new `x-request-id`: `ib-` and 16 hex digits.
    fn request_id(&self) -> HeaderValue {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut buf = *b"ib-0000000000000000";
        for (i, b) in buf[3..].iter_mut().enumerate() {
            let nibble = (n >> (60 - 4 * i)) & 0xf;
            *b = b"0123456789abcdef"[nibble as usize];
        }
        HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&buf))
            .unwrap_or_else(|_| HeaderValue::from_static("ib"))
    }
}

/// The `server` header of the router's own replies.
pub const GATEWAY_SERVER: &str = "inferbench-router";

/// What the router answers with: an endpoint's response streamed through, or its own.
type RespBody = Either<Full<Bytes>, Guarded>;

/// A response on its way to the client, its request counted in flight on the connection (for
/// the connection's watchdog) until the body is sent or dropped.
pub struct ClientBody {
    inner: RespBody,
    _in_flight: InFlight,
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// OpenAI-style JSON error.
fn error(status: StatusCode, kind: &str, message: &str, rid: &HeaderValue) -> Response<RespBody> {
    let body = serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}});
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(body.to_string()))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Says the gateway answered this itself, not a model server behind it (as Envoy's
    // `server: envoy` on its local replies): clients blame the right side.
    h.insert(
        http::header::SERVER,
        HeaderValue::from_static(GATEWAY_SERVER),
    );
    h.insert(REQUEST_ID_HEADER, rid.clone());
    r
}

/// Why an endpoint's response was cut off on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The endpoint's connection failed.
    #[error(transparent)]
    Upstream(#[from] hyper::Error),
    /// The exchange ran past `request_timeout_s`.
    #[error("the request ran past request_timeout_s")]
    TimedOut,
}

/// A response body that streams the upstream's, gives its endpoint slot back when done and —
/// read to the end — its connection back to the pool; cut off at the request's deadline.
pub struct Guarded {
    inner: Incoming,
    done: bool,
    conn: Option<SendRequest<UpBody>>,
    pool: Arc<Router>,
    at: (usize, usize),
    /// Fires at the request's deadline.
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let up = &self.pool.pools[self.at.0].upstreams[self.at.1];
        up.ep.in_flight.fetch_sub(1, Ordering::Relaxed);
        up.in_flight.dec();
        if let Some(conn) = self.conn.take()
            && (self.done || http_body::Body::is_end_stream(&self.inner))
        {
            up.give_back(conn);
        }
    }
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = ResponseError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseError>>> {
        if self.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(ResponseError::TimedOut)));
        }
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = r {
            self.done = true;
        }
        r.map_err(ResponseError::Upstream)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(h: &mut http::HeaderMap) {
    h.remove(http::header::CONNECTION);
    h.remove("keep-alive");
}

/// Why a request body was not read whole.
enum BodyFail {
    /// The connection failed.
    Broken,
    /// Over `max_body_bytes`.
    TooLarge,
    /// Over what is left of `max_buffered_bytes`.
    Busy,
}

/// Reads a request body whole (of `declared` bytes, if known), counting it against the body
/// limit and the router's budget as it comes: a declared length is reserved before anything is
/// read, an undeclared one as it grows. A body that comes in one piece is not copied.
async fn read_body(
    r: &Router,
    body: &mut Incoming,
    declared: Option<u64>,
) -> Result<(Bytes, Reservation), BodyFail> {
    let max = r.limits.max_body;
    let mut reservation = Reservation::new(&r.buffered, r.limits.max_buffered);
    if let Some(n) = declared
        && !reservation.cover(n)
    {
        return Err(BodyFail::Busy);
    }
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyFail::Broken)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        len = len.saturating_add(data.len() as u64);
        if len > max {
            return Err(BodyFail::TooLarge);
        }
        if first.is_none() && buf.capacity() == 0 {
            if !reservation.cover(len) {
                return Err(BodyFail::Busy);
            }
            first = Some(data);
            continue;
        }
        // Room for this piece: the declared length at once, or twice what came so far.
        let cap = if let Some(f) = first.take() {
            let cap = declared.unwrap_or(len.saturating_mul(2)).max(len).min(max);
            buf.extend_from_slice(&f);
            cap
        } else if len > buf.capacity() as u64 {
            (buf.capacity() as u64).saturating_mul(2).max(len).min(max)
        } else {
            0
        };
        if cap > 0 {
            let Ok(more) = usize::try_from(cap.saturating_sub(buf.len() as u64)) else {
                return Err(BodyFail::TooLarge);
            };
            if !reservation.cover(cap) {
                return Err(BodyFail::Busy);
            }
            buf.reserve_exact(more);
        }
        buf.extend_from_slice(&data);
    }
    let bytes = match first {
        Some(f) => f,
        None => Bytes::from(buf),
    };
    Ok((bytes, reservation))
}

/// Answers a body the router will not take with 413 or 503, after reading (and throwing away)
/// the rest of it when `drain` — for at most the header-read timeout and [`DRAIN_MAX`] bytes.
async fn refuse_body(
    r: &Router,
    fail: BodyFail,
    body: &mut Incoming,
    drain: bool,
    deadline: Instant,
    rid: &HeaderValue,
) -> Response<RespBody> {
    let resp = match fail {
        BodyFail::TooLarge => {
            r.rejected.too_large.inc();
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                &format!(
                    "the request body is over {} bytes (max_body_bytes)",
                    r.limits.max_body
                ),
                rid,
            )
        }
        BodyFail::Busy => {
            r.rejected.unavailable.inc();
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                &format!(
                    "the router holds as many request-body bytes as it may ({}, max_buffered_bytes); retry",
                    r.limits.max_buffered
                ),
                rid,
            )
        }
        BodyFail::Broken => {
            r.rejected.bad_request.inc();
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the request body could not be read",
                rid,
            );
        }
    };
    if drain {
        let until = (Instant::now() + r.limits.header_read).min(deadline);
        let _ = tokio::time::timeout_at(until, async {
            let mut left = DRAIN_MAX;
            while let Some(Ok(f)) = body.frame().await {
                if let Some(d) = f.data_ref() {
                    left = left.saturating_sub(d.len() as u64);
                    if left == 0 {
                        break;
                    }
                }
            }
        })
        .await;
    }
    resp
}

/// An answer the router gives itself instead of proxying (boxed: it is the cold path).
type Refusal = Box<Response<RespBody>>;

/// The BBR stage (with body routing on): reads the body within the request's deadline (the
/// `timer`, set for the request that arrived at `start`), parses the model and the prefix text out of it and sets the model headers. With
/// body routing off the body streams through untouched.
async fn body_stage(
    r: &Arc<Router>,
    parts: &mut http::request::Parts,
    mut body: Incoming,
    declared: Option<u64>,
    timer: &mut std::pin::Pin<Box<tokio::time::Sleep>>,
    start: Instant,
    rid: &HeaderValue,
) -> Result<(UpBody, bbr::BodyInfo), Refusal> {
    let deadline = start + r.limits.request;
    if !r.body_routing {
        return Ok((Either::Right(body), bbr::BodyInfo::default()));
    }
    let read = tokio::select! {
        biased;
        read = read_body(r, &mut body, declared) => Ok(read),
        () = timer.as_mut() => Err(()),
    };
    let (bytes, reservation) = match read {
        Ok(Ok(b)) => b,
        Ok(Err(fail)) => {
            // Refused before a byte was read only when the declared length did not fit.
            let unread = matches!(fail, BodyFail::Busy) && declared.is_some();
            let h1 = parts.version < http::Version::HTTP_2;
            let drain = h1
                && !matches!(fail, BodyFail::Broken)
                && !(unread && parts.headers.contains_key(http::header::EXPECT));
            return Err(Box::new(
                refuse_body(r, fail, &mut body, drain, deadline, rid).await,
            ));
        }
        Err(_) => {
            r.rejected.request_timeout.inc();
            return Err(Box::new(error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "the request body did not arrive within request_timeout_s",
                rid,
            )));
        }
    };
    let completion =
        parts.method == http::Method::POST && parts.uri.path().ends_with("completions");
    let info = match bbr::parse(&bytes) {
        Ok(i) => i,
        Err(e) if completion => {
            r.rejected.bad_request.inc();
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("the body is not JSON: {e}"),
                rid,
            )));
        }
        Err(_) => bbr::BodyInfo::default(),
    };
    r.metrics.body_read.observe(start.elapsed().as_secs_f64());
    if let Some(m) = &info.model
        && let Ok(v) = HeaderValue::from_str(m)
    {
        parts.headers.insert(MODEL_HEADER, v);
        if let Some(base) = r.base_models.get(m) {
            parts.headers.insert(BASE_MODEL_HEADER, base.clone());
        }
    }
    Ok((Either::Left(Buffered::new(bytes, reservation)), info))
}

/// The pool the request is routed to and the endpoint its picker chooses (with the instant the
/// choice was made), or the router's refusal: 503 with no endpoint, 429 when shed.
fn pick_endpoint(
    r: &Router,
    parts: &http::request::Parts,
    info: &bbr::BodyInfo,
    rid: &HeaderValue,
) -> Result<(usize, usize, Instant), Refusal> {
    let pool_at = r.route(
        parts
            .headers
            .get(MODEL_HEADER)
            .and_then(|v| v.to_str().ok()),
        parts.uri.path(),
    );
    let pool = &r.pools[pool_at];
    let sheddable = parts
        .headers
        .get(PRIORITY_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .is_some_and(|p| p < 0);
    let t0 = Instant::now();
    let pick = pool.picker.pick(
        &PickRequest {
            model: info.model.as_deref(),
            prefix_text: info.prefix_text.as_deref(),
            sheddable,
        },
        &pool.endpoints,
    );
    let t1 = Instant::now();
    pool.decision
        .observe(t1.saturating_duration_since(t0).as_secs_f64());
    match pick {
        Pick::Endpoint(i) if i < pool.upstreams.len() => Ok((pool_at, i, t1)),
        Pick::Endpoint(_) | Pick::NoEndpoint => {
            r.rejected.unavailable.inc();
            Err(Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                &format!("no healthy endpoint in pool `{}`", pool.name),
                rid,
            )))
        }
        Pick::Shed => {
            r.rejected.shed.inc();
            Err(Box::new(error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "every endpoint is saturated and the request is sheddable",
                rid,
            )))
        }
    }
}

async fn proxy(r: &Arc<Router>, req: Request<Incoming>) -> Response<RespBody> {
    let start = Instant::now();
    let deadline = start + r.limits.request;
    let (mut parts, mut body) = req.into_parts();
    let rid = match parts.headers.get(REQUEST_ID_HEADER) {
        Some(v) => v.clone(),
        None => r.request_id(),
    };
    // Over HTTP/1 a body left unread makes the connection close under a client still sending
    // it (a reset, not our answer): a refused one is read away, unless the client waits for
    // `100 Continue` (it is not sent when the body is refused before it is read).
    let h1 = parts.version < http::Version::HTTP_2;
    let declared = http_body::Body::size_hint(&body).exact();
    if declared.is_some_and(|n| n > r.limits.max_body) {
        let drain = h1
            && !parts.headers.contains_key(http::header::EXPECT)
            && declared.is_some_and(|n| n <= DRAIN_MAX);
        return refuse_body(r, BodyFail::TooLarge, &mut body, drain, deadline, &rid).await;
    }
    // One timer for the whole exchange: the request's deadline while its body is read, the
    // endpoint's while its headers are awaited, the request's again while the response streams.
    let mut timer = Box::pin(tokio::time::sleep_until(deadline));
    let (body, info) =
        match body_stage(r, &mut parts, body, declared, &mut timer, start, &rid).await {
            Ok(x) => x,
            Err(refused) => return *refused,
        };
    let (pool_at, i, t1) = match pick_endpoint(r, &parts, &info, &rid) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let up = &r.pools[pool_at].upstreams[i];
    up.requests.inc();
    up.in_flight.inc();
    up.ep.in_flight.fetch_add(1, Ordering::Relaxed);
    up.ep.since_scrape.fetch_add(1, Ordering::Relaxed);
    up.ep.sent.fetch_add(1, Ordering::Relaxed);

    strip_hop_by_hop(&mut parts.headers);
    if let Some(d) = &up.dest {
        parts.headers.insert(DESTINATION_HEADER, d.clone());
    }
    parts.headers.insert(REQUEST_ID_HEADER, rid.clone());
    let wait = (t1 + r.limits.upstream_header).min(deadline);
    if wait < deadline {
        timer.as_mut().reset(wait);
    }
    let sent = tokio::select! {
        biased;
        sent = up.send(Request::from_parts(parts, body)) => Ok(sent),
        () = timer.as_mut() => Err(()),
    };
    match sent {
        Ok(Ok((resp, conn))) => {
            if wait < deadline {
                timer.as_mut().reset(deadline);
            }
            let (mut rp, incoming) = resp.into_parts();
            strip_hop_by_hop(&mut rp.headers);
            if let Some(d) = &up.dest {
                rp.headers.insert(DESTINATION_HEADER, d.clone());
            }
            rp.headers.insert(REQUEST_ID_HEADER, rid);
            let guarded = Guarded {
                inner: incoming,
                done: false,
                conn: Some(conn),
                pool: r.clone(),
                at: (pool_at, i),
                timer,
            };
            Response::from_parts(rp, Either::Right(guarded))
        }
        Ok(Err(e)) => {
            up.ep.in_flight.fetch_sub(1, Ordering::Relaxed);
            up.in_flight.dec();
            r.rejected.bad_gateway.inc();
            let what = if e.is_connect() {
                "cannot connect to"
            } else {
                "failed talking to"
            };
            error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                &format!("{what} endpoint {}", up.ep.addr),
                &rid,
            )
        }
        Err(_) => {
            // The request (and the connection it is on) is dropped: the endpoint sees it go.
            up.ep.in_flight.fetch_sub(1, Ordering::Relaxed);
            up.in_flight.dec();
            r.rejected.gateway_timeout.inc();
            error(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                &format!(
                    "endpoint {} sent no response headers within {:.3} s",
                    up.ep.addr,
                    wait.saturating_duration_since(t1).as_secs_f64()
                ),
                &rid,
            )
        }
    }
}

/// The router's own `/metrics`, or the proxy.
async fn handle(r: &Arc<Router>, req: Request<Incoming>) -> Response<RespBody> {
    if req.uri().path() == "/metrics" && req.method() == http::Method::GET {
        // OpenMetrics when the scraper asks for it (Prometheus does), else text 0.0.4.
        use inferbench_resources::prometheus::{Format, encode};
        let accept = req.headers().get(http::header::ACCEPT);
        let format = Format::negotiate(accept.and_then(|v| v.to_str().ok()));
        let Ok(text) = encode(&r.registry, format) else {
            let mut resp = Response::new(Either::Left(Full::default()));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return resp;
        };
        let mut resp = Response::new(Either::Left(Full::new(Bytes::from(text))));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        return resp;
    }
    proxy(r, req).await
}

/// Scrapes `ep` every `every` until the task is aborted.
async fn scrape_loop(
    client: HyperClient<HttpConnector, Empty<Bytes>>,
    ep: Arc<Endpoint>,
    every: Duration,
    errors: Counter,
) {
    let uri: Option<http::Uri> = format!("http://{}/metrics", ep.addr).parse().ok();
    let Some(uri) = uri else {
        return;
    };
    let timeout = (every * 4).max(Duration::from_millis(200));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let work = async {
            let resp = client.get(uri.clone()).await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("status {}", resp.status()));
            }
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            parse(&body)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(s)) => ep.store(s, Instant::now()),
            _ => {
                ep.scrape_failures.fetch_add(1, Ordering::Relaxed);
                errors.inc();
            }
        }
    }
}

/// A running router.
pub struct RouterHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (pools, endpoints).
    pub router: Arc<Router>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RouterHandle {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and scraping.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

/// A router that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// Address.
        addr: String,
        /// Why.
        message: String,
    },
}

/// Starts the router on `listen` (port 0: any).
pub async fn start(cfg: RouterConfig, listen: SocketAddr) -> Result<RouterHandle, StartError> {
    cfg.validate("router configuration")?;
    // The standard process_* metrics unprefixed; the router's own under `inferbench_router_`.
    let mut registry = Registry::default();
    registry.register_collector(Box::new(
        inferbench_resources::prometheus::ProcessCollector::new(),
    ));
    let own = registry.sub_registry_with_prefix("inferbench_router");
    let metrics = RouterMetrics::register(own);
    let rejected = Rejected::of(&metrics);
    let buffered = Gauge::default();
    own.register(
        "buffered_body_bytes",
        "Request-body bytes buffered now (body routing), over all connections",
        buffered.clone(),
    );
    let mut pools = Vec::new();
    for p in &cfg.pools {
        let endpoints: Vec<Arc<Endpoint>> = p
            .endpoints
            .iter()
            .map(|e| Arc::new(Endpoint::new(e)))
            .collect();
        let upstreams = endpoints
            .iter()
            .map(|ep| {
                let (requests, in_flight) = metrics.upstream(&p.name, &ep.addr);
                Upstream::new(ep.clone(), requests, in_flight)
            })
            .collect();
        let (picker, scrape): (Box<dyn Picker>, bool) = match &p.picker {
            PickerConfig::Epp(c) => (
                Box::new(crate::picker::epp::Epp::new(c.clone(), endpoints.len())),
                true,
            ),
            PickerConfig::RoundRobin => (
                Box::new(crate::picker::round_robin::RoundRobin::default()),
                false,
            ),
            PickerConfig::Random => (Box::new(crate::picker::random::Random), false),
            PickerConfig::LeastRequest => {
                (Box::new(crate::picker::least_request::LeastRequest), false)
            }
        };
        let decision = metrics.decision(&p.name);
        pools.push(Pool {
            name: p.name.clone(),
            endpoints,
            picker,
            upstreams,
            decision,
            scrape,
        });
    }
    let routes = cfg
        .routes
        .iter()
        .filter_map(|r| {
            cfg.pools
                .iter()
                .position(|p| p.name == r.pool)
                .map(|i| (r.model.clone(), r.path_prefix.clone(), i))
        })
        .collect();
    let base_models = cfg
        .base_models
        .iter()
        .filter_map(|(adapter, base)| {
            HeaderValue::from_str(base)
                .ok()
                .map(|v| (adapter.clone(), v))
        })
        .collect();
    let router = Arc::new(Router {
        pools,
        routes,
        base_models,
        body_routing: cfg.body_routing,
        metrics,
        rejected,
        registry,
        next_id: AtomicU64::new(1),
        limits: cfg.limits(),
        buffered,
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Bind {
            addr: listen.to_string(),
            message: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind {
        addr: listen.to_string(),
        message: e.to_string(),
    })?;
    let mut tasks = Vec::new();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let scrape_client: HyperClient<HttpConnector, Empty<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    let every = Duration::from_millis(cfg.scrape_interval_ms.max(1));
    for p in router.pools.iter().filter(|p| p.scrape) {
        for ep in &p.endpoints {
            let errors = router.metrics.scrape_errors(&ep.addr);
            tasks.push(tokio::spawn(scrape_loop(
                scrape_client.clone(),
                ep.clone(),
                every,
                errors,
            )));
        }
    }
    // Ready once every scraped endpoint has answered (or failed) its first scrape, so the first
    // requests are not refused for want of metrics (FailClose); never longer than 1 s.
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline
        && router.pools.iter().filter(|p| p.scrape).any(|p| {
            p.endpoints
                .iter()
                .any(|e| e.scraped.read().is_none() && !e.down())
        })
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tasks.push(tokio::spawn(serve(listener, router.clone(), rx)));
    Ok(RouterHandle {
        addr,
        router,
        shutdown: Some(tx),
        tasks,
    })
}

/// Accepts connections until told to stop; each serves HTTP/1.1 with keep-alive (or h2c), and
/// on stop finishes the requests it is on. Each connection's watchdog closes it when a request
/// head takes longer than the header-read timeout, or when it has been idle for the idle one.
async fn serve(
    listener: tokio::net::TcpListener,
    router: Arc<Router>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        // Nagle would hold each small SSE chunk until the last one is acknowledged.
        let _ = tcp.set_nodelay(true);
        let state = Arc::new(ConnState::default());
        let r = router.clone();
        let in_conn = state.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let r = r.clone();
            let in_flight =
                InFlight::begin(in_conn.clone(), req.version() == http::Version::HTTP_2);
            async move {
                let resp = handle(&r, req).await;
                Ok::<_, std::convert::Infallible>(resp.map(|inner| ClientBody {
                    inner,
                    _in_flight: in_flight,
                }))
            }
        });
        let limits = router.limits;
        let mut stop = stop.clone();
        tokio::spawn(async move {
            // HTTP/1.1 with keep-alive, or HTTP/2 with prior knowledge (h2c), as the client
            // opens; upstream it is HTTP/1.1, as vLLM serves.
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let io = TokioIo::new(Watched::new(tcp, state.clone()));
            let conn = builder.serve_connection(io, svc);
            let mut conn = std::pin::pin!(conn);
            let mut dog = Watchdog::new(&limits, Instant::now());
            let every = dog.every();
            let tick = tokio::time::sleep(every);
            let mut tick = std::pin::pin!(tick);
            loop {
                tokio::select! {
                    _ = conn.as_mut() => return,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.as_mut().await;
                        return;
                    }
                    () = tick.as_mut() => {
                        let now = Instant::now();
                        match dog.look(now, state.take()) {
                            None => tick.as_mut().reset(now + every),
                            // A head that never ends: dropped, as hyper drops one that is
                            // malformed.
                            Some(Expired::HeaderRead) => return,
                            Some(Expired::Idle) => {
                                conn.as_mut().graceful_shutdown();
                                let _ = tokio::time::timeout(limits.header_read, conn.as_mut())
                                    .await;
                                return;
                            }
                        }
                    }
                }
            }
        });
    }
}

/// Accepts a header name at compile time (for callers building requests).
pub fn header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}
