//! The client against a real mock fleet: timing, usage, and every failure kind classified.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use inferbench_loadgen::client::{Api, Client, ClientConfig, ErrorKind, RequestSpec, Side};
use inferbench_mock::{FaultConfig, FleetConfig, InstanceConfig, MockFleet};

async fn fleet(cfg: InstanceConfig) -> MockFleet {
    MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, 1, cfg).unwrap())
        .await
        .unwrap()
}

fn spec(stream: bool, max_tokens: usize) -> RequestSpec {
    RequestSpec {
        model: "mock-model".into(),
        prompt: "Tell me a story".into(),
        max_tokens,
        stream,
        ..Default::default()
    }
}

fn with_header(url: &str, name: &'static str, value: &'static str) -> Client {
    let mut cfg = ClientConfig::new(url);
    cfg.headers.push((
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    ));
    Client::new(&cfg).unwrap()
}

#[tokio::test]
async fn streaming_request_is_timed_per_token() {
    let f = fleet(InstanceConfig {
        ttft_ms: 30.0,
        itl_ms: 4.0,
        decode_slowdown: 0.0,
        ..Default::default()
    })
    .await;
    let c = Client::new(&ClientConfig::new(&f.urls()[0])).unwrap();
    let s = spec(true, 16);
    let o = c.send(&s, c.body(&s)).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.token_events.len(), 16);
    assert_eq!(o.completion_tokens, Some(16));
    assert_eq!(o.prompt_tokens, Some(4));
    assert_eq!(o.model_served.as_deref(), Some("mock-model"));
    assert_eq!(
        o.endpoint.as_deref(),
        Some(f.addrs()[0].to_string().as_str())
    );
    let ttft = o.first_token.unwrap() - o.sent;
    assert!(ttft >= Duration::from_millis(30), "{ttft:?}");
    // TTFT 30 ms then 15 gaps of 4 ms: the last token cannot arrive before 90 ms (a loaded
    // machine may deliver the first tokens late and together, never the last one early).
    let whole = *o.token_events.last().unwrap() - o.sent;
    assert!(whole >= Duration::from_millis(89), "{whole:?}");
    assert!(o.token_events.windows(2).all(|w| w[1] >= w[0]));
}

#[tokio::test]
async fn unary_and_completions() {
    let f = fleet(InstanceConfig {
        ttft_ms: 1.0,
        itl_ms: 1.0,
        ..Default::default()
    })
    .await;
    let mut cfg = ClientConfig::new(&format!("{}/v1/", f.urls()[0]));
    cfg.api = Api::Completions;
    let c = Client::new(&cfg).unwrap();
    let s = spec(false, 7);
    let o = c.send(&s, c.body(&s)).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.output_tokens(), 7);
    assert_eq!(o.first_token, Some(o.end));
}

#[tokio::test]
async fn each_failure_is_classified() {
    let f = fleet(InstanceConfig {
        ttft_ms: 1.0,
        itl_ms: 2.0,
        faults: FaultConfig {
            stall_ms: 0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let url = f.urls()[0].clone();
    let s = spec(true, 10);

    let c = with_header(&url, "x-mock-error", "503");
    let o = c.send(&s, c.body(&s)).await;
    match o.error {
        Some((ErrorKind::Http { status: 503, body }, Side::ModelServer)) => {
            assert!(body.contains("fault injected"))
        }
        other => panic!("{other:?}"),
    }

    let c = with_header(&url, "x-mock-error", "abort");
    let o = c.send(&s, c.body(&s)).await;
    assert!(
        matches!(
            &o.error,
            Some((ErrorKind::BrokenStream { detail }, Side::ModelServer)) if !detail.is_empty()
        ),
        "{:?}",
        o.error
    );
    assert_eq!(o.token_events.len(), 5, "tokens before the cut are kept");

    let c = with_header(&url, "x-mock-error", "garbage");
    let o = c.send(&s, c.body(&s)).await;
    assert!(
        matches!(
            o.error,
            Some((ErrorKind::Protocol { .. }, Side::ModelServer))
        ),
        "{:?}",
        o.error
    );

    let mut cfg = ClientConfig::new(&url);
    cfg.headers.push((
        HeaderName::from_static("x-mock-error"),
        HeaderValue::from_static("stall"),
    ));
    cfg.total_timeout = Duration::from_millis(300);
    let c = Client::new(&cfg).unwrap();
    let o = c.send(&s, c.body(&s)).await;
    assert_eq!(
        o.error,
        Some((
            ErrorKind::Timeout {
                phase: "total".into()
            },
            Side::ModelServer
        ))
    );

    let slow = spec(true, 2);
    let f2 = fleet(InstanceConfig {
        ttft_ms: 200.0,
        ..Default::default()
    })
    .await;
    let mut cfg = ClientConfig::new(&f2.urls()[0]);
    cfg.ttft_timeout = Duration::from_millis(50);
    let c2 = Client::new(&cfg).unwrap();
    let o = c2.send(&slow, c2.body(&slow)).await;
    assert_eq!(
        o.error,
        Some((
            ErrorKind::Timeout {
                phase: "ttft".into()
            },
            Side::ModelServer
        ))
    );
    drop(c);

    let c = Client::new(&ClientConfig::new(&url)).unwrap();
    let mut unknown = spec(true, 2);
    unknown.model = "nope".into();
    let o = c.send(&unknown, c.body(&unknown)).await;
    assert!(
        matches!(
            o.error,
            Some((ErrorKind::Http { status: 404, .. }, Side::ModelServer))
        ),
        "{:?}",
        o.error
    );
}

#[tokio::test]
async fn unreachable_target_is_a_connect_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let c = Client::new(&ClientConfig::new(&format!("http://{addr}"))).unwrap();
    let s = spec(true, 2);
    let o = c.send(&s, c.body(&s)).await;
    // No gateway is known to be in the path: the connection is blamed, with the OS's words.
    match &o.error {
        Some((ErrorKind::Connect { detail }, Side::Connection)) => {
            assert!(detail.contains(&addr.to_string()), "{detail}");
            assert!(detail.to_lowercase().contains("refused"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_targets_and_keys_are_rejected_clearly() {
    for url in ["ftp://x", "localhost:8000", "https://x", "http://"] {
        let e = Client::new(&ClientConfig::new(url))
            .unwrap_err()
            .to_string();
        assert!(e.contains(url), "{e}");
    }
    let mut cfg = ClientConfig::new("http://127.0.0.1:1");
    cfg.api_key = Some("bad\nkey".into());
    let e = Client::new(&cfg).unwrap_err().to_string();
    assert!(
        !e.contains("bad\nkey"),
        "the key never appears in a message"
    );
    cfg.api_key = Some("sk-secret".into());
    let c = Client::new(&cfg).unwrap();
    assert!(!format!("{c:?}").contains("sk-secret"));
}

#[tokio::test]
async fn http2_streams_and_unary_over_one_connection() {
    let f = fleet(InstanceConfig {
        ttft_ms: 5.0,
        itl_ms: 1.0,
        decode_slowdown: 0.0,
        ..Default::default()
    })
    .await;
    let mut cfg = ClientConfig::new(&f.urls()[0]);
    cfg.http2 = true;
    let c = Client::new(&cfg).unwrap();
    // Several streams at once share the HTTP/2 connection; each is timed on its own.
    let s = spec(true, 8);
    let outs = futures_join(&c, &s, 8).await;
    for o in &outs {
        assert!(o.error.is_none(), "{:?}", o.error);
        assert!(o.http2, "the answer must come over HTTP/2");
        assert_eq!(o.token_events.len(), 8);
        assert_eq!(o.completion_tokens, Some(8));
    }
    let u = spec(false, 4);
    let o = c.send(&u, c.body(&u)).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert!(o.http2);
    assert_eq!(o.completion_tokens, Some(4));
    // The HTTP/1.1 default really is HTTP/1.1.
    let c1 = Client::new(&ClientConfig::new(&f.urls()[0])).unwrap();
    assert!(!c1.send(&u, c1.body(&u)).await.http2);
}

async fn futures_join(
    c: &Client,
    s: &RequestSpec,
    n: usize,
) -> Vec<inferbench_loadgen::client::Outcome> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (c, s) = (c.clone(), s.clone());
        set.spawn(async move { c.send(&s, c.body(&s)).await });
    }
    let mut out = Vec::new();
    while let Some(o) = set.join_next().await {
        out.push(o.unwrap());
    }
    out
}
