//! The reverse proxy: BBR, routing, picking, forwarding with the body streamed through in both
//! directions, endpoint scraping, and the router's own `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::bbr::{self, BASE_MODEL_HEADER, MODEL_HEADER};
use crate::config::{PickerConfig, RouterConfig};
use crate::metrics::{Endpoint, parse};
use crate::picker::{Pick, PickRequest, Picker};

/// The endpoint chosen, on the upstream request and on the response.
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";
/// A request's id (kept from the client, or made up).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A negative value marks a request sheddable (429 when every endpoint is saturated).
pub const PRIORITY_HEADER: &str = "x-inferbench-priority";
/// Largest request body read for body-based routing.
pub const MAX_BODY: usize = 64 << 20;

/// A pool at run time.
pub struct Pool {
    /// Name.
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Its picker.
    pub picker: Box<dyn Picker>,
    scrape: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolEndpoint {
    pool: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

struct RouterMetrics {
    requests: Family<PoolEndpoint, Counter>,
    in_flight: Family<PoolEndpoint, Gauge>,
    decision: Family<PoolLabel, Histogram>,
    body_read: Histogram,
    scrape_errors: Family<EndpointLabel, Counter>,
    rejected: Family<CodeLabel, Counter>,
}

/// The router's shared state.
pub struct Router {
    pools: Vec<Pool>,
    routes: Vec<(Option<String>, Option<String>, usize)>,
    base_models: BTreeMap<String, String>,
    body_routing: bool,
    client: HyperClient<HttpConnector, Body>,
    metrics: RouterMetrics,
    registry: Registry,
    next_id: AtomicU64,
}

type HttpClient = HyperClient<HttpConnector, Body>;

impl Router {
    /// The pools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
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
}

/// The `server` header of the router's own replies.
pub const GATEWAY_SERVER: &str = "inferbench-router";

/// OpenAI-style JSON error.
fn error(status: StatusCode, kind: &str, message: &str, rid: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}});
    let mut r = (status, axum::Json(body)).into_response();
    // Says the gateway answered this itself, not a model server behind it (as Envoy's
    // `server: envoy` on its local replies): clients blame the right side.
    r.headers_mut().insert(
        http::header::SERVER,
        HeaderValue::from_static(GATEWAY_SERVER),
    );
    if let Ok(v) = HeaderValue::from_str(rid) {
        r.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    r
}

/// A response body that streams the upstream's and gives its endpoint slot back when done.
struct Guarded {
    inner: hyper::body::Incoming,
    _guard: InFlight,
}

struct InFlight {
    ep: Arc<Endpoint>,
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.ep.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.gauge.dec();
    }
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

async fn proxy(State(r): State<Arc<Router>>, req: Request<Body>) -> Response {
    let (mut parts, body) = req.into_parts();
    let rid = parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("ib-{:016x}", r.next_id.fetch_add(1, Ordering::Relaxed)));
    let path = parts.uri.path().to_string();
    let mut info = bbr::BodyInfo::default();
    let body = if r.body_routing {
        let t0 = Instant::now();
        let bytes = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                r.metrics
                    .rejected
                    .get_or_create(&CodeLabel { code: "400".into() })
                    .inc();
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "the request body could not be read (or is over 64 MiB)",
                    &rid,
                );
            }
        };
        let completion = parts.method == http::Method::POST && path.ends_with("completions");
        match bbr::parse(&bytes) {
            Ok(i) => info = i,
            Err(e) if completion => {
                r.metrics
                    .rejected
                    .get_or_create(&CodeLabel { code: "400".into() })
                    .inc();
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("the body is not JSON: {e}"),
                    &rid,
                );
            }
            Err(_) => {}
        }
        r.metrics.body_read.observe(t0.elapsed().as_secs_f64());
        if let Some(m) = &info.model
            && let Ok(v) = HeaderValue::from_str(m)
        {
            parts.headers.insert(MODEL_HEADER, v);
            if let Some(base) = r.base_models.get(m)
                && let Ok(v) = HeaderValue::from_str(base)
            {
                parts.headers.insert(BASE_MODEL_HEADER, v);
            }
        }
        Body::from(bytes)
    } else {
        body
    };
    let model_hdr = parts
        .headers
        .get(MODEL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let pool = &r.pools[r.route(model_hdr.as_deref(), &path)];
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
    r.metrics
        .decision
        .get_or_create(&PoolLabel {
            pool: pool.name.clone(),
        })
        .observe(t0.elapsed().as_secs_f64());
    let i = match pick {
        Pick::Endpoint(i) => i,
        Pick::Shed => {
            r.metrics
                .rejected
                .get_or_create(&CodeLabel { code: "429".into() })
                .inc();
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "every endpoint is saturated and the request is sheddable",
                &rid,
            );
        }
        Pick::NoEndpoint => {
            r.metrics
                .rejected
                .get_or_create(&CodeLabel { code: "503".into() })
                .inc();
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                &format!("no healthy endpoint in pool `{}`", pool.name),
                &rid,
            );
        }
    };
    let ep = pool.endpoints[i].clone();
    let labels = PoolEndpoint {
        pool: pool.name.clone(),
        endpoint: ep.addr.clone(),
    };
    r.metrics.requests.get_or_create(&labels).inc();
    let gauge = r.metrics.in_flight.get_or_create(&labels).clone();
    gauge.inc();
    ep.in_flight.fetch_add(1, Ordering::Relaxed);
    ep.since_scrape.fetch_add(1, Ordering::Relaxed);
    ep.sent.fetch_add(1, Ordering::Relaxed);
    let guard = InFlight {
        ep: ep.clone(),
        gauge,
    };

    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: http::Uri = match format!("http://{}{pq}", ep.addr).parse() {
        Ok(u) => u,
        Err(_) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "bad endpoint address",
                &rid,
            );
        }
    };
    parts.uri = uri;
    parts.headers.remove(http::header::HOST);
    let dest = HeaderValue::from_str(&ep.addr).ok();
    if let Some(d) = &dest {
        parts.headers.insert(DESTINATION_HEADER, d.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        parts.headers.insert(REQUEST_ID_HEADER, v);
    }
    let upstream = Request::from_parts(parts, body);
    match r.client.request(upstream).await {
        Ok(resp) => {
            let (mut rp, incoming) = resp.into_parts();
            if let Some(d) = dest {
                rp.headers.insert(DESTINATION_HEADER, d);
            }
            if let Ok(v) = HeaderValue::from_str(&rid) {
                rp.headers.insert(REQUEST_ID_HEADER, v);
            }
            Response::from_parts(
                rp,
                Body::new(Guarded {
                    inner: incoming,
                    _guard: guard,
                }),
            )
        }
        Err(e) => {
            drop(guard);
            r.metrics
                .rejected
                .get_or_create(&CodeLabel { code: "502".into() })
                .inc();
            let what = if e.is_connect() {
                "cannot connect to"
            } else {
                "failed talking to"
            };
            error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                &format!("{what} endpoint {}", ep.addr),
                &rid,
            )
        }
    }
}

async fn metrics_handler(State(r): State<Arc<Router>>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &r.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
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
            parse(&String::from_utf8_lossy(&body))
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(s)) => {
                *ep.scraped.write() = Some((s, Instant::now()));
                ep.since_scrape.store(0, Ordering::Relaxed);
                ep.scrape_failures.store(0, Ordering::Relaxed);
            }
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
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
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
            let _ = tx.send(());
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
    let mut registry = Registry::with_prefix("inferbench_router");
    let metrics = RouterMetrics {
        requests: Family::default(),
        in_flight: Family::default(),
        decision: Family::new_with_constructor(|| {
            Histogram::new([
                0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005,
                0.01,
            ])
        }),
        body_read: Histogram::new([0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.05]),
        scrape_errors: Family::default(),
        rejected: Family::default(),
    };
    registry.register(
        "requests",
        "Requests sent to each endpoint",
        metrics.requests.clone(),
    );
    registry.register(
        "in_flight",
        "Requests in flight at each endpoint",
        metrics.in_flight.clone(),
    );
    registry.register(
        "picker_decision_seconds",
        "Time the picker took per request",
        metrics.decision.clone(),
    );
    registry.register(
        "body_read_seconds",
        "Time reading and parsing request bodies (BBR stage)",
        metrics.body_read.clone(),
    );
    registry.register(
        "scrape_errors",
        "Failed scrapes of endpoint metrics",
        metrics.scrape_errors.clone(),
    );
    registry.register(
        "rejected",
        "Requests answered by the router itself, by status",
        metrics.rejected.clone(),
    );

    let mut pools = Vec::new();
    for p in &cfg.pools {
        let endpoints: Vec<Arc<Endpoint>> = p
            .endpoints
            .iter()
            .map(|e| Arc::new(Endpoint::new(e)))
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
        pools.push(Pool {
            name: p.name.clone(),
            endpoints,
            picker,
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
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client: HttpClient = HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(connector.clone());
    let router = Arc::new(Router {
        pools,
        routes,
        base_models: cfg.base_models.clone(),
        body_routing: cfg.body_routing,
        client,
        metrics,
        registry,
        next_id: AtomicU64::new(1),
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
    let scrape_client: HyperClient<HttpConnector, Empty<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    let every = Duration::from_millis(cfg.scrape_interval_ms.max(1));
    for p in router.pools.iter().filter(|p| p.scrape) {
        for ep in &p.endpoints {
            let errors = router
                .metrics
                .scrape_errors
                .get_or_create(&EndpointLabel {
                    endpoint: ep.addr.clone(),
                })
                .clone();
            tasks.push(tokio::spawn(scrape_loop(
                scrape_client.clone(),
                ep.clone(),
                every,
                errors,
            )));
        }
    }
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_handler))
        .fallback(proxy)
        .with_state(router.clone());
    // TCP_NODELAY: Nagle would hold each small SSE chunk until the last one is acknowledged.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    }));
    Ok(RouterHandle {
        addr,
        router,
        shutdown: Some(tx),
        tasks,
    })
}

/// Accepts a header name at compile time (for callers building requests).
pub fn header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}
