//! The connection layer, as a raw TCP client sees it: connection-level faults (close after each
//! response, errors with status 200, bytes that are not HTTP) and the limits that keep the server
//! from being held hostage (header-read and idle timeouts, the request-body buffer budget).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use inferbench_mock::{FaultConfig, GARBAGE, InstanceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Bound of every wait in these tests: far above what any of them needs.
const PATIENCE: Duration = Duration::from_secs(10);

fn fast() -> InstanceConfig {
    InstanceConfig {
        ttft_ms: 2.0,
        itl_ms: 1.0,
        ..Default::default()
    }
}

/// A raw HTTP/1.1 client connection that keeps what it read past one response.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

/// One response: status, head (lower-cased), body.
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Self {
        Self {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes; false at the end of the stream (or a reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match timeout(PATIENCE, self.s.read(&mut chunk))
            .await
            .expect("the server answers or closes within 10 s")
        {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response head, `None` if the connection ends first.
    async fn head(&mut self) -> Option<(u16, String)> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
                return Some((status, head));
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "the body is cut short");
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return String::from_utf8_lossy(&line[..end]).into_owned();
            }
            assert!(self.fill().await, "the chunked body is cut short");
        }
    }

    /// The next complete response (content-length or chunked body).
    async fn response(&mut self) -> Option<RawResponse> {
        let (status, head) = self.head().await?;
        Some(self.body_of(status, head).await)
    }

    /// The body that follows a response head.
    async fn body_of(&mut self, status: u16, head: String) -> RawResponse {
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let body = if let Some(n) = length {
            self.take(n).await
        } else if head.contains("transfer-encoding: chunked") {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(self.line().await.trim(), 16).unwrap();
                body.extend(self.take(size).await);
                self.take(2).await;
                if size == 0 {
                    break;
                }
            }
            body
        } else {
            Vec::new()
        };
        RawResponse { status, head, body }
    }

    /// Reads to the end of the stream; everything that came.
    async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Waits for the server to close; how long that took. Fails if bytes come instead.
    async fn closed_after(&mut self) -> Duration {
        let t0 = Instant::now();
        let more = self.fill().await;
        assert!(
            !more,
            "expected the end of the stream, got {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        t0.elapsed()
    }
}

fn chat_request(stream: bool) -> Vec<u8> {
    let body = chat_body("mock-model", "Hello there", 5, stream);
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: mock\r\n\r\n";

#[tokio::test]
async fn close_after_response_says_keep_alive_then_closes() {
    let fleet = fleet(
        1,
        InstanceConfig {
            faults: FaultConfig {
                close_after_response: true,
                ..Default::default()
            },
            ..fast()
        },
    )
    .await;
    let addr = fleet.addrs()[0];
    for request in [chat_request(true), chat_request(false), HEALTH.to_vec()] {
        let mut c = Raw::connect(addr).await;
        c.send(&request).await;
        let r = c.response().await.expect("a response");
        assert_eq!(r.status, 200);
        assert!(
            r.head.contains("\r\nconnection: keep-alive\r\n"),
            "{}",
            r.head
        );
        assert!(!r.head.contains("connection: close"), "{}", r.head);
        // Taken at its word, the connection is reused: it is dead.
        let _ = c.s.write_all(HEALTH).await;
        c.closed_after().await;
    }
    let mut c = Raw::connect(addr).await;
    c.send(&chat_request(true)).await;
    let r = c.response().await.unwrap();
    assert!(String::from_utf8_lossy(&r.body).contains("data: [DONE]"));

    // Without the fault the same connection serves a second request.
    let fleet = fleet_of(fast()).await;
    let mut c = Raw::connect(fleet.addrs()[0]).await;
    c.send(&chat_request(true)).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
}

async fn fleet_of(cfg: InstanceConfig) -> inferbench_mock::MockFleet {
    fleet(1, cfg).await
}

#[tokio::test]
async fn error_200_rate_answers_200_with_an_openai_error_body() {
    let fleet = fleet_of(InstanceConfig {
        faults: FaultConfig {
            error_200_rate: 1.0,
            ..Default::default()
        },
        ..fast()
    })
    .await;
    let c = client();
    let url = format!("{}/v1/chat/completions", fleet.urls()[0]);
    for stream in [false, true] {
        let r = post(&c, &url, &chat_body("mock-model", "x", 4, stream)).await;
        assert_eq!(r.status, 200, "stream {stream}");
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        let v = r.json();
        assert_eq!(v["error"]["type"], "server_overloaded");
        assert_eq!(v["error"]["code"], 503);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("overloaded")
        );
        assert!(v.get("choices").is_none());
    }
    // At rate 0.5 about half are such errors, the others real answers.
    let fleet = fleet_of(InstanceConfig {
        faults: FaultConfig {
            error_200_rate: 0.5,
            ..Default::default()
        },
        ..fast()
    })
    .await;
    let url = format!("{}/v1/completions", fleet.urls()[0]);
    let body = r#"{"model":"mock-model","prompt":"x","max_tokens":1}"#;
    let mut errors = 0;
    for _ in 0..100 {
        let r = post(&c, &url, body).await;
        assert_eq!(r.status, 200);
        if r.json().get("error").is_some() {
            errors += 1;
        } else {
            assert_eq!(r.json()["choices"][0]["finish_reason"], "length");
        }
    }
    assert!((30..=70).contains(&errors), "{errors} of 100 at rate 0.5");
}

#[tokio::test]
async fn garbage_rate_answers_bytes_that_are_not_http() {
    let fleet = fleet_of(InstanceConfig {
        faults: FaultConfig {
            garbage_rate: 1.0,
            ..Default::default()
        },
        ..fast()
    })
    .await;
    let addr = fleet.addrs()[0];
    for stream in [false, true] {
        let mut c = Raw::connect(addr).await;
        c.send(&chat_request(stream)).await;
        let got = c.rest().await;
        assert!(
            !got.starts_with(b"HTTP/"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(got, GARBAGE);
    }
    // An HTTP client sees a protocol error, not a status.
    let c = client();
    let r = post(
        &c,
        &format!("{}/v1/chat/completions", fleet.urls()[0]),
        &chat_body("mock-model", "x", 2, false),
    )
    .await;
    assert_eq!(r.status, 0);
    assert!(r.error.is_some());
    // Only completions are hit; the instance stays up.
    let mut c = Raw::connect(addr).await;
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
}

#[tokio::test]
async fn slow_request_headers_are_cut_at_the_header_read_timeout() {
    let fleet = fleet_of(InstanceConfig {
        header_read_timeout_s: 0.3,
        ..fast()
    })
    .await;
    let addr = fleet.addrs()[0];
    let t0 = Instant::now();
    // Half a request line, then nothing.
    let mut half = Raw::connect(addr).await;
    half.send(b"POST /v1/chat/completions HT").await;
    // Nothing at all.
    let mut silent = Raw::connect(addr).await;
    for c in [&mut half, &mut silent] {
        c.closed_after().await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(5),
            "closed after {took:?}"
        );
    }
    // Once a request is done, an idle keep-alive connection is not under the header timeout.
    let mut c = Raw::connect(addr).await;
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(900)).await;
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    // But its next request head is: started and left unfinished, it is cut.
    c.send(b"GET /hea").await;
    let took = c.closed_after().await;
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let fleet = fleet_of(InstanceConfig {
        idle_timeout_s: 0.3,
        itl_ms: 5.0,
        decode_slowdown: 0.0,
        ..fast()
    })
    .await;
    let addr = fleet.addrs()[0];
    let mut c = Raw::connect(addr).await;
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    let took = c.closed_after().await;
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    // A request in flight longer than the idle timeout (120 tokens × 5 ms) is not cut.
    let mut c = Raw::connect(addr).await;
    let body = chat_body("mock-model", "x", 120, true);
    c.send(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    let t0 = Instant::now();
    let r = c.response().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(500));
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(text.contains("\"completion_tokens\":120,"), "{text}");
    c.closed_after().await;
}

/// Opens a connection and sends the head of a `len`-byte chat request that waits for
/// `100 Continue` before its body; returns it with the first status the server answers.
async fn announce(addr: SocketAddr, len: usize) -> (Raw, RawResponse) {
    let mut c = Raw::connect(addr).await;
    c.send(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nexpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let first = match c.head().await.expect("an answer to the head") {
        (100, head) => RawResponse {
            status: 100,
            head,
            body: Vec::new(),
        },
        (status, head) => c.body_of(status, head).await,
    };
    (c, first)
}

/// A valid chat request body of exactly `len` bytes (JSON padded with spaces).
fn padded_body(len: usize) -> Vec<u8> {
    let mut b = chat_body("mock-model", "x", 2, false).into_bytes();
    b.resize(len, b' ');
    b
}

#[tokio::test]
async fn buffered_bodies_are_capped_with_503_and_the_server_recovers() {
    const MB: usize = 1_000_000;
    let fleet = fleet_of(InstanceConfig {
        max_body_bytes: 1_500_000,
        max_buffered_bytes: 2 * 1024 * 1024,
        ..fast()
    })
    .await;
    let addr = fleet.addrs()[0];
    // Eight 1 MB bodies announced at once against a 2 MiB budget: two fit.
    let mut waiting = Vec::new();
    let mut rejected = 0;
    for _ in 0..8 {
        let (c, first) = announce(addr, MB).await;
        match first.status {
            100 => waiting.push(c),
            503 => {
                rejected += 1;
                assert!(first.head.contains("content-type: application/json"));
                let v: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
                assert_eq!(v["error"]["code"], 503);
                assert_eq!(v["error"]["type"], "ServiceUnavailableError");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("max_buffered_bytes")
                );
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(waiting.len(), 2);
    assert_eq!(rejected, 6);
    for c in &mut waiting {
        c.send(&padded_body(MB)).await;
    }
    for c in &mut waiting {
        let r = c.response().await.unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["usage"]["completion_tokens"], 2);
    }
    // The budget is back: two more fit again, and ordinary requests are served.
    for _ in 0..2 {
        let (mut c, first) = announce(addr, MB).await;
        assert_eq!(first.status, 100);
        c.send(&padded_body(MB)).await;
        assert_eq!(c.response().await.unwrap().status, 200);
    }
    let r = post(
        &client(),
        &format!("{}/v1/chat/completions", fleet.urls()[0]),
        &chat_body("mock-model", "x", 2, false),
    )
    .await;
    assert_eq!(r.status, 200);
    // A body larger than max_body_bytes alone is 413, before any of it is sent.
    let (_, first) = announce(addr, 1_500_001).await;
    assert_eq!(first.status, 413);
    let v: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(v["error"]["code"], 413);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes = 1500000")
    );
}

#[tokio::test]
async fn chunked_bodies_are_counted_against_both_limits() {
    let fleet = fleet_of(InstanceConfig {
        max_body_bytes: 1000,
        max_buffered_bytes: 1000,
        ..fast()
    })
    .await;
    let addr = fleet.addrs()[0];
    let chunked = |body: &[u8]| {
        let mut r = b"POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for part in body.chunks(300) {
            r.extend(format!("{:x}\r\n", part.len()).into_bytes());
            r.extend_from_slice(part);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    let mut c = Raw::connect(addr).await;
    c.send(&chunked(&padded_body(900))).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    let mut c = Raw::connect(addr).await;
    c.send(&chunked(&padded_body(1200))).await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 413);
    // Nothing stays reserved.
    let mut c = Raw::connect(addr).await;
    c.send(&chunked(&padded_body(1000))).await;
    assert_eq!(c.response().await.unwrap().status, 200);
}

#[tokio::test]
async fn http2_connections_are_served_and_not_cut_between_requests() {
    let fleet = fleet_of(InstanceConfig {
        header_read_timeout_s: 0.3,
        ..fast()
    })
    .await;
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let c: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build(connector);
    let url = format!("{}/v1/chat/completions", fleet.urls()[0]);
    for stream in [true, false] {
        let r = post(&c, &url, &chat_body("mock-model", "x", 3, stream)).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
        // Idle longer than the header timeout: HTTP/2 frames are not request heads.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_ends_within_the_grace_period() {
    let fleet = fleet_of(InstanceConfig {
        ttft_ms: 60_000.0,
        ..fast()
    })
    .await;
    let addr = fleet.addrs()[0];
    // A request that would take a minute, and an idle connection.
    let mut busy = Raw::connect(addr).await;
    busy.send(&chat_request(true)).await;
    let mut idle = Raw::connect(addr).await;
    idle.send(HEALTH).await;
    assert_eq!(idle.response().await.unwrap().status, 200);
    let t0 = Instant::now();
    fleet.shutdown(Duration::from_millis(300)).await;
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    idle.closed_after().await;
    busy.rest().await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}
