//! Keep-alive HTTP/1.1 connections to one endpoint, with what the proxy sets on every request
//! it sends there. A small pool made for the hot path: an idle stack per endpoint (the most
//! recently used connection first, so few stay warm), no per-request URI parsing, timers or
//! key hashing.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::endpoints::Endpoint;
use crate::limits::Buffered;

/// A request body on its way upstream: read whole (body-based routing), or streamed through.
pub type UpBody = Either<Buffered, Incoming>;

/// Idle connections kept per endpoint at most.
const MAX_IDLE: usize = 1024;
/// Connecting gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One endpoint as the proxy sends to it.
pub struct Upstream {
    /// What the pickers read.
    pub ep: Arc<Endpoint>,
    /// `host:port`, as the `Host` header.
    pub host: Option<HeaderValue>,
    /// The same, as the `x-gateway-destination-endpoint` header.
    pub dest: Option<HeaderValue>,
    /// Requests sent here (the router's `/metrics`).
    pub requests: Counter,
    /// Requests in flight here (the router's `/metrics`).
    pub in_flight: Gauge,
    idle: Mutex<Vec<SendRequest<UpBody>>>,
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error("cannot connect to endpoint {addr}: {message}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        message: String,
    },
    /// The connection failed while the request was sent or its response read.
    #[error("failed talking to endpoint {addr}: {message}")]
    Exchange {
        /// `host:port`.
        addr: String,
        /// Why.
        message: String,
    },
}

impl UpstreamError {
    /// Whether no connection could be made (nothing was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

impl Upstream {
    /// An endpoint with no connection yet.
    pub fn new(ep: Arc<Endpoint>, requests: Counter, in_flight: Gauge) -> Self {
        let host = HeaderValue::from_str(&ep.addr).ok();
        Self {
            dest: host.clone(),
            host,
            ep,
            requests,
            in_flight,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<SendRequest<UpBody>, UpstreamError> {
        let fail = |message: String| UpstreamError::Connect {
            addr: self.ep.addr.clone(),
            message,
        };
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(self.ep.addr.as_str()),
        )
        .await
        .map_err(|_| fail(format!("no answer in {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| fail(e.to_string()))?;
        // Nagle would hold a small request body until the headers are acknowledged.
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends `req` on an idle connection, or a new one. A request an idle connection could not
    /// take (closed by the server while it sat in the pool) goes on another. Returns the response and the
    /// connection, to be given back with [`Upstream::give_back`] once the body is read.
    pub async fn send(
        &self,
        mut req: Request<UpBody>,
    ) -> Result<(Response<Incoming>, SendRequest<UpBody>), UpstreamError> {
        if let Some(h) = &self.host {
            req.headers_mut().insert(http::header::HOST, h.clone());
        }
        loop {
            let pooled = self.idle.lock().pop();
            let reused = pooled.is_some();
            let mut sender = match pooled {
                Some(s) if s.is_closed() => continue,
                Some(s) => s,
                None => self.connect().await?,
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Connect {
                    addr: self.ep.addr.clone(),
                    message: "the connection closed at once".into(),
                });
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection was gone; another one takes it.
                    Some(m) => req = m,
                    // Written, then lost: the endpoint may have acted on it, so it does not go
                    // again (as hyper's own client).
                    None => {
                        return Err(UpstreamError::Exchange {
                            addr: self.ep.addr.clone(),
                            message: e.into_error().to_string(),
                        });
                    }
                },
            }
        }
    }

    /// Puts a connection whose last response was read to the end back in the pool.
    pub fn give_back(&self, sender: SendRequest<UpBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() >= MAX_IDLE {
            idle.retain(|s| !s.is_closed());
            if idle.len() >= MAX_IDLE {
                return;
            }
        }
        idle.push(sender);
    }

    /// Idle connections now (tests).
    pub fn idle(&self) -> usize {
        self.idle.lock().len()
    }
}
