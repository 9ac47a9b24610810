//! A small HTTP client for the mock's integration tests: raw hyper, so every body frame's arrival
//! can be seen.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};
use tokio::time::Instant;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

pub async fn fleet(n: usize, cfg: InstanceConfig) -> MockFleet {
    MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, n, cfg).unwrap())
        .await
        .unwrap()
}

/// What came back: status, headers, the body, and for each data frame its arrival and bytes.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub frames: Vec<(Instant, Bytes)>,
    pub sent: Instant,
    pub error: Option<String>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The SSE events' data payloads, in order, with the arrival of the frame that completed each.
    pub fn events(&self) -> Vec<(Instant, String)> {
        let mut out = Vec::new();
        let mut buf = String::new();
        for (at, frame) in &self.frames {
            buf.push_str(&String::from_utf8_lossy(frame));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(d) = line.strip_prefix("data: ") {
                        out.push((*at, d.to_string()));
                    }
                }
            }
        }
        out
    }
    /// Arrival of the first event with non-empty content.
    pub fn first_token_at(&self) -> Option<Instant> {
        self.events().into_iter().find_map(|(at, d)| {
            let v: serde_json::Value = serde_json::from_str(&d).ok()?;
            let c = &v["choices"][0];
            let t = c["delta"]["content"].as_str().or(c["text"].as_str())?;
            (!t.is_empty()).then_some(at)
        })
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub async fn request(
    c: &HttpClient,
    method: &str,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let sent = Instant::now();
    let resp = match tokio::time::timeout(Duration::from_secs(30), c.request(req))
        .await
        .expect("response headers within 30 s")
    {
        Ok(r) => r,
        Err(e) => {
            let error = Some(format!("{e:?}"));
            return Reply {
                status: 0,
                headers: http::HeaderMap::new(),
                body: Vec::new(),
                frames: Vec::new(),
                sent,
                error,
            };
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut frames = Vec::new();
    let mut all = Vec::new();
    let mut error = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), body.frame()).await {
            Err(_) => {
                error = Some("timeout".to_string());
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                error = Some(e.to_string());
                break;
            }
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    all.extend_from_slice(&d);
                    frames.push((Instant::now(), d));
                }
            }
        }
    }
    Reply {
        status,
        headers,
        body: all,
        frames,
        sent,
        error,
    }
}

pub async fn post(c: &HttpClient, url: &str, body: &str) -> Reply {
    request(c, "POST", url, body, &[]).await
}

pub async fn get(c: &HttpClient, url: &str) -> Reply {
    request(c, "GET", url, "", &[]).await
}

/// The value of one metric series (exact line prefix) in a `/metrics` text.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("no series `{series}` in\n{text}"))
}

pub fn chat_body(model: &str, content: &str, max_tokens: usize, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "ignore_eos": true,
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
    .to_string()
}
