//! The client against servers that misbehave the way real ones do, each a few lines of raw TCP:
//! every request is counted, classified by what the answer shows, and nothing is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inferbench_loadgen::client::{Client, ClientConfig, ErrorKind, Outcome, RequestSpec, Side};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake server does with one request: the bytes to write, then whether to close.
type Script = Arc<dyn Fn(usize) -> (Vec<u8>, bool) + Send + Sync>;

/// Reads one HTTP request (headers and a Content-Length body); false at EOF.
async fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            return true;
        }
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// A server on 127.0.0.1:0 answering request number n (over all connections) with `script(n)`.
/// Returns its URL and the counter of requests it read in full.
async fn serve(script: Script) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (script, seen) = (script.clone(), seen2.clone());
            tokio::spawn(async move {
                while read_request(&mut s).await {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let (bytes, close) = script(n);
                    if s.write_all(&bytes).await.is_err() {
                        return;
                    }
                    if close {
                        // As llama.cpp's server: the close comes a moment after the answer, so
                        // a client that trusts `keep-alive` has already sent its next request.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let _ = s.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn sse(events: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    for e in events {
        body.push_str(&format!("data: {e}\n\n"));
    }
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

fn json(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const TOKEN: &str = r#"{"model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}"#;
const ROLE: &str = r#"{"model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}"#;
const USAGE: &str =
    r#"{"model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;

fn spec(stream: bool) -> RequestSpec {
    RequestSpec {
        model: "m".into(),
        prompt: "hello".into(),
        max_tokens: 2,
        stream,
        ..Default::default()
    }
}

async fn one(c: &Client, stream: bool) -> Outcome {
    let s = spec(stream);
    c.send(&s, c.body(&s)).await
}

/// llama.cpp's server: it closes the connection after each streamed answer while saying
/// `connection: keep-alive`. Every request must succeed; the ones that went out on a connection
/// the server had closed are sent again on a fresh one and counted as reconnects.
#[tokio::test]
async fn a_server_that_closes_after_each_answer_loses_nothing() {
    let (url, seen) = serve(Arc::new(|_| {
        (sse(&[ROLE, TOKEN, TOKEN, USAGE, "[DONE]"]), true)
    }))
    .await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let mut reconnects = 0;
    for i in 0..20 {
        let o = one(&c, true).await;
        assert!(o.error.is_none(), "request {i}: {:?}", o.error);
        assert_eq!(o.completion_tokens, Some(2));
        assert_eq!(o.token_events.len(), 2);
        reconnects += o.reconnects;
    }
    // The server saw each request exactly once: a resend only follows a request it never read.
    assert_eq!(seen.load(Ordering::SeqCst), 20);
    // Each request after the first went out on the connection the server was about to close
    // (19 here; a machine slower than the server's 100 ms close would find fewer).
    assert!(reconnects >= 10, "{reconnects}");
}

/// A connection closed after a unary answer that said `connection: close` is not reused.
#[tokio::test]
async fn connection_close_is_honoured() {
    let body = r#"{"model":"m","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (url, seen) = serve(Arc::new(move |_| (answer.clone().into_bytes(), true))).await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    for _ in 0..10 {
        let o = one(&c, false).await;
        assert!(o.error.is_none(), "{:?}", o.error);
        assert_eq!(
            o.reconnects, 0,
            "never sent on a connection the server closed"
        );
    }
    assert_eq!(seen.load(Ordering::SeqCst), 10);
}

/// HTTP 200 whose body is an error object (unary and as the answer to a streaming request), and
/// an error event inside a stream: failures, with the server's message.
#[tokio::test]
async fn a_200_with_an_error_body_is_a_failure() {
    let err = r#"{"error":{"message":"server overloaded, try later","type":"server_overloaded","code":503}}"#;
    let (url, _) = serve(Arc::new(move |n| match n % 3 {
        0 | 1 => (json("200 OK", err), false),
        _ => (
            sse(&[ROLE, TOKEN, r#"{"error":{"message":"generation failed"}}"#]),
            false,
        ),
    }))
    .await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    for (stream, want) in [
        (false, "server overloaded, try later"),
        (true, "server overloaded, try later"),
        (true, "generation failed"),
    ] {
        let o = one(&c, stream).await;
        match &o.error {
            Some((ErrorKind::Http200Error { message }, Side::ModelServer)) => {
                assert_eq!(message, want)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(o.status, Some(200));
    }
}

/// Bytes that are not HTTP: a protocol error from an unknown party, with what was wrong.
#[tokio::test]
async fn bytes_that_are_not_http_are_a_protocol_error() {
    let (url, _) = serve(Arc::new(|_| {
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(), true)
    }))
    .await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let o = one(&c, true).await;
    match &o.error {
        Some((ErrorKind::Protocol { detail }, Side::Unknown)) => {
            assert!(detail.contains("not HTTP"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

/// Invalid UTF-8 inside a stream is a protocol error, counted.
#[tokio::test]
async fn invalid_utf8_in_a_stream_is_a_protocol_error() {
    let mut stream = sse(&[ROLE, TOKEN, "@@", "[DONE]"]);
    // Swap the placeholder event for raw invalid bytes of the same length.
    let at = stream.windows(2).position(|w| w == b"@@").unwrap();
    stream[at] = 0xff;
    stream[at + 1] = 0xfe;
    let (url, _) = serve(Arc::new(move |_| (stream.clone(), false))).await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let o = one(&c, true).await;
    match &o.error {
        Some((ErrorKind::Protocol { detail }, _)) => assert!(detail.contains("UTF-8"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

/// A stream that stops sending after its first tokens fails after the stall timeout, not the
/// total one; the tokens that came are kept.
#[tokio::test]
async fn a_stalled_stream_times_out_after_the_stall_timeout() {
    let head =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    let ev = format!("data: {TOKEN}\n\n");
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes());
    // Never ends the body nor closes: the script keeps the connection open.
    let (url, _) = serve(Arc::new(move |_| (bytes.clone(), false))).await;
    let mut cfg = ClientConfig::new(&url);
    cfg.stall_timeout = Duration::from_millis(300);
    let c = Client::new(&cfg).unwrap();
    let o = one(&c, true).await;
    assert_eq!(
        o.error,
        Some((
            ErrorKind::Timeout {
                phase: "stall".into()
            },
            Side::ModelServer
        ))
    );
    assert_eq!(o.token_events.len(), 1);
    let took = o.end - o.sent;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// One enormous SSE line: a bounded protocol error, not gigabytes of memory.
#[tokio::test]
async fn an_endless_sse_line_is_a_bounded_protocol_error() {
    let (url, _) = serve(Arc::new(|_| {
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: ".to_vec();
        out.extend(std::iter::repeat_n(b'x', 20 << 20));
        (out, true)
    }))
    .await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let o = one(&c, true).await;
    match &o.error {
        Some((ErrorKind::Protocol { detail }, _)) => {
            assert!(detail.contains("larger than"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

/// Reasoning deltas count for TTFT; the first answer token is kept apart.
#[tokio::test]
async fn reasoning_deltas_count_for_ttft() {
    // A server that sends reasoning first, then (100 ms later) the answer.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        read_request(&mut s).await;
        let chunk = |e: &str| {
            let ev = format!("data: {e}\n\n");
            format!("{:x}\r\n{ev}\r\n", ev.len()).into_bytes()
        };
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        for r in ["reasoning_content", "reasoning"] {
            let ev = format!(r#"{{"model":"m","choices":[{{"delta":{{"{r}":"hmm"}}}}]}}"#);
            s.write_all(&chunk(&ev)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for e in [TOKEN, USAGE, "[DONE]"] {
            s.write_all(&chunk(e)).await.unwrap();
        }
        s.write_all(b"0\r\n\r\n").await.unwrap();
    });
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let o = one(&c, true).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.token_events.len(), 3);
    let (ft, fc) = (o.first_token.unwrap(), o.first_content.unwrap());
    assert!(fc - ft >= Duration::from_millis(90), "{:?}", fc - ft);
}

/// A unary answer larger than the bound: a protocol error, not unbounded memory.
#[tokio::test]
async fn an_oversized_unary_answer_is_a_bounded_protocol_error() {
    let (url, _) = serve(Arc::new(|_| {
        let n = inferbench_loadgen::client::MAX_BODY_BYTES + 1024;
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"x\":\"",
            n + 9
        )
        .into_bytes();
        out.extend(std::iter::repeat_n(b'a', n));
        out.extend_from_slice(b"\"}");
        (out, true)
    }))
    .await;
    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let o = one(&c, false).await;
    match &o.error {
        Some((ErrorKind::Protocol { detail }, _)) => {
            assert!(detail.contains("larger than"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}
