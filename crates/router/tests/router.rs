//! The router in front of real mock instances: streaming passes through token by token, body
//! routing reaches the right pool, pickers spread or concentrate as they should, a dead endpoint
//! is avoided once its scrapes fail, and every failure is classified.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use inferbench_loadgen::client::{Client, ClientConfig, RequestSpec};
use inferbench_loadgen::engine::{self, Live, Load, Plan};
use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};
use inferbench_router::config::{PoolConfig, RouteConfig};
use inferbench_router::picker::epp::EppConfig;
use inferbench_router::{PickerConfig, RouterConfig, start};
use inferbench_workload::arrivals::Arrival;

async fn instance(cfg: InstanceConfig) -> MockFleet {
    MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, 1, cfg).unwrap())
        .await
        .unwrap()
}

fn fast(model: &str) -> InstanceConfig {
    InstanceConfig {
        model: model.into(),
        ttft_ms: 5.0,
        itl_ms: 2.0,
        decode_slowdown: 0.0,
        ..Default::default()
    }
}

fn addr(f: &MockFleet) -> String {
    f.addrs()[0].to_string()
}

fn spec(model: &str, stream: bool, tokens: usize) -> RequestSpec {
    RequestSpec {
        model: model.into(),
        prompt: "Tell me about routers".into(),
        max_tokens: tokens,
        stream,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_and_streams_token_by_token() {
    let mut fleets = Vec::new();
    for _ in 0..4 {
        fleets.push(instance(fast("mock-model")).await);
    }
    let cfg = RouterConfig::quick(fleets.iter().map(addr).collect(), PickerConfig::RoundRobin);
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    let mut per_endpoint = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..40 {
        let s = spec("mock-model", true, 16);
        let o = c.send(&s, c.body(&s)).await;
        assert!(o.error.is_none(), "{:?}", o.error);
        assert_eq!(o.token_events.len(), 16);
        // Not buffered: 15 gaps of 2 ms (30 ms) arrive spread out, not at once (a loaded
        // machine may deliver the first few together, never all).
        let spread = *o.token_events.last().unwrap() - o.token_events[0];
        assert!(spread >= Duration::from_millis(15), "{spread:?}");
        *per_endpoint.entry(o.endpoint.unwrap()).or_default() += 1;
    }
    assert_eq!(per_endpoint.len(), 4);
    assert!(per_endpoint.values().all(|&n| n == 10), "{per_endpoint:?}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_routing_sends_each_model_to_its_pool() {
    let a = instance(fast("model-a")).await;
    let b = instance(fast("org/model-b")).await;
    let cfg = RouterConfig {
        pools: vec![
            PoolConfig {
                name: "a".into(),
                endpoints: vec![addr(&a)],
                picker: PickerConfig::RoundRobin,
                picker_config: None,
            },
            PoolConfig {
                name: "b".into(),
                endpoints: vec![addr(&b)],
                picker: PickerConfig::RoundRobin,
                picker_config: None,
            },
        ],
        routes: vec![RouteConfig {
            model: Some("org/model-b".into()),
            path_prefix: None,
            pool: "b".into(),
        }],
        ..RouterConfig::quick(vec![], PickerConfig::RoundRobin)
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    for (model, ep) in [("model-a", addr(&a)), ("org/model-b", addr(&b))] {
        for stream in [true, false] {
            let s = spec(model, stream, 4);
            let o = c.send(&s, c.body(&s)).await;
            assert!(o.error.is_none(), "{:?}", o.error);
            assert_eq!(o.model_served.as_deref(), Some(model));
            assert_eq!(o.endpoint.as_deref(), Some(ep.as_str()));
        }
    }
    // An unparsable completion body is the router's 400, in OpenAI's error shape.
    let http = reqwest_like_post(&r.url(), b"{not json").await;
    assert_eq!(http.0, 400);
    assert!(http.1.contains("\"error\""), "{}", http.1);
    r.shutdown().await;
}

/// A bare HTTP/1.1 POST to /v1/chat/completions: (status, body).
async fn reqwest_like_post(url: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hostport = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epp_avoids_a_dead_endpoint_and_no_failure_is_lost() {
    let mut fleets = Vec::new();
    for _ in 0..3 {
        fleets.push(instance(fast("mock-model")).await);
    }
    let addrs: Vec<String> = fleets.iter().map(addr).collect();
    let cfg = RouterConfig::quick(addrs.clone(), PickerConfig::Epp(EppConfig::default()));
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    // Let the first scrapes land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = Client::new(&ClientConfig::new(&r.url())).unwrap();
    let source: engine::Source = Arc::new(|_| spec("mock-model", true, 8));
    let plan = Plan {
        load: Load::Open {
            rate: 100.0,
            arrival: Arrival::Constant,
        },
        duration: Some(Duration::from_secs(2)),
        requests: None,
        warmup: Duration::ZERO,
        max_in_flight: 1000,
        seed: 1,
        log: None,
        retry: Default::default(),
        slo: None,
        shard: Default::default(),
        start_at: None,
    };
    let live = Arc::new(Live::default());
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let dead = fleets.remove(0);
    let dead_addr = addrs[0].clone();
    let run = tokio::spawn(engine::run(
        client,
        source,
        plan,
        live.clone(),
        rx,
        Duration::from_secs(5),
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    dead.shutdown(Duration::from_millis(10)).await;
    let sent_at_death = r.router.pools()[0].endpoints[0]
        .sent
        .load(std::sync::atomic::Ordering::Relaxed);
    let out = run.await.unwrap();
    let ep0 = &r.router.pools()[0].endpoints[0];
    assert_eq!(ep0.addr, dead_addr);
    let sent_dead_total = ep0.sent.load(std::sync::atomic::Ordering::Relaxed);
    // After the death, at most the requests picked before the failed scrape (≤ 200 ms at
    // 100 req/s spread over 3) went there.
    assert!(
        sent_dead_total - sent_at_death <= 20,
        "{sent_at_death} then {sent_dead_total}"
    );
    let c = &out.recorded.total.counts;
    // Nothing lost: every sent request is either ok or a classified failure.
    assert_eq!(c.requests, 200);
    assert_eq!(c.ok + c.failed(), c.requests);
    for k in c.errors.keys() {
        assert!(
            k.ends_with("/gateway") || k.ends_with("/model_server"),
            "unclassified {k}"
        );
    }
    // The survivors served the rest.
    assert!(c.ok >= 170, "{c:?}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epp_without_metrics_fails_closed_with_503() {
    // Nothing listens there: scrapes fail, FailClose rejects.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = l.local_addr().unwrap().to_string();
    drop(l);
    let cfg = RouterConfig::quick(vec![nowhere], PickerConfig::Epp(EppConfig::default()));
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, body) = reqwest_like_post(&r.url(), br#"{"model":"m","messages":[]}"#).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no healthy endpoint"), "{body}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lora_affinity_concentrates_adapter_requests() {
    let mut fleets = Vec::new();
    for _ in 0..4 {
        fleets.push(
            instance(InstanceConfig {
                lora_adapters: vec!["sql-lora".into()],
                max_loras: 1,
                ttft_ms: 20.0,
                itl_ms: 5.0,
                decode_slowdown: 0.0,
                ..Default::default()
            })
            .await,
        );
    }
    // Affinity (1.0 active vs 0.8 free slot, × 3) outweighs a one-request queue difference
    // (× 0.5).
    let epp = EppConfig {
        queue: 0.5,
        kv_cache: 0.0,
        prefix: 0.0,
        lora: 3.0,
        ..Default::default()
    };
    let cfg = RouterConfig::quick(fleets.iter().map(addr).collect(), PickerConfig::Epp(epp));
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = Client::new(&ClientConfig::new(&r.url())).unwrap();
    // One long request first makes the adapter active on one endpoint.
    let warm = client.clone();
    let first = tokio::spawn(async move {
        let s = spec("sql-lora", true, 200);
        warm.send(&s, warm.body(&s)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let source: engine::Source = Arc::new(|_| spec("sql-lora", true, 20));
    let plan = Plan {
        load: Load::Closed { concurrency: 3 },
        duration: None,
        requests: Some(60),
        warmup: Duration::ZERO,
        max_in_flight: 100,
        seed: 1,
        log: None,
        retry: Default::default(),
        slo: None,
        shard: Default::default(),
        start_at: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = engine::run(
        client,
        source,
        plan,
        Arc::new(Live::default()),
        rx,
        Duration::from_secs(5),
    )
    .await;
    let warm_outcome = first.await.unwrap();
    assert!(warm_outcome.error.is_none());
    let active = warm_outcome.endpoint.unwrap();
    let by_ep = &out.recorded.by_endpoint;
    let on_active = by_ep.get(&active).map_or(0, |g| g.counts.ok);
    assert_eq!(out.recorded.total.counts.ok, 60);
    // Round robin would put 15 there; affinity puts nearly all.
    assert!(
        on_active >= 45,
        "{on_active} of 60 on the active endpoint: {:?}",
        by_ep.keys()
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_metrics_count_requests_and_decisions() {
    let f = instance(fast("mock-model")).await;
    let cfg = RouterConfig::quick(vec![addr(&f)], PickerConfig::LeastRequest);
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    for _ in 0..5 {
        let s = spec("mock-model", false, 2);
        assert!(c.send(&s, c.body(&s)).await.error.is_none());
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let line = format!(
        "inferbench_router_requests_total{{pool=\"default\",endpoint=\"{}\"}} 5",
        addr(&f)
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("inferbench_router_picker_decision_seconds_count{pool=\"default\"} 5"));
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused_and_a_closed_one_is_replaced() {
    // Sequential requests share one kept-alive connection; a client's `Connection: close`
    // ends its own connection, not the router's to the endpoint.
    let f = instance(fast("mock-model")).await;
    let cfg = RouterConfig::quick(vec![addr(&f)], PickerConfig::RoundRobin);
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    for _ in 0..10 {
        let s = spec("mock-model", false, 2);
        assert!(c.send(&s, c.body(&s)).await.error.is_none());
    }
    let body =
        br#"{"model":"mock-model","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#;
    assert_eq!(reqwest_like_post(&r.url(), body).await.0, 200);
    // A client speaking HTTP/2 (prior knowledge) to the router: streamed through as well.
    let mut h2 = ClientConfig::new(&r.url());
    h2.http2 = true;
    let c2 = Client::new(&h2).unwrap();
    let s = spec("mock-model", true, 8);
    let o = c2.send(&s, c2.body(&s)).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert!(o.http2);
    assert_eq!(o.token_events.len(), 8);
    assert_eq!(r.router.pools()[0].idle_connections(0), 1);
    r.shutdown().await;

    // An endpoint that closes every connection after its answer (without saying so): each
    // request after the first finds its pooled connection gone and goes on a new one.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"object":"list","data":[]}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    let cfg = RouterConfig::quick(vec![upstream], PickerConfig::RoundRobin);
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("{}/v1/models", r.url());
    for i in 0..5 {
        let hostport = r.addr.to_string();
        let mut s = tokio::net::TcpStream::connect(&hostport).await.unwrap();
        let head =
            format!("GET /v1/models HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(
            out.starts_with("HTTP/1.1 200"),
            "request {i} to {url}: {out}"
        );
        assert!(out.contains(r#""object":"list""#), "{out}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
    r.shutdown().await;
}

/// A router configuration with small limits for the tests below (each test changes what it
/// needs).
fn limited(endpoints: Vec<String>) -> RouterConfig {
    RouterConfig {
        header_read_timeout_s: 30.0,
        idle_timeout_s: 30.0,
        upstream_header_timeout_s: 30.0,
        request_timeout_s: 60.0,
        ..RouterConfig::quick(endpoints, PickerConfig::RoundRobin)
    }
}

/// Reads from `s` until the peer closes it (end of stream or reset): whatever came.
async fn until_closed(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One request on a kept-alive connection: (status, body). The response must carry a
/// Content-Length.
async fn keep_alive_request(s: &mut tokio::net::TcpStream, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while got.len() < end + len {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed in the body");
        got.extend_from_slice(&buf[..n]);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        String::from_utf8_lossy(&got[end..end + len]).to_string(),
    )
}

/// An endpoint that reads each request (its Content-Length) and answers 200 with a small JSON
/// body, on kept-alive connections.
async fn plain_backend() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65536];
                loop {
                    let end = loop {
                        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while got.len() < end + len {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    got.drain(..end + len);
                    let body = format!(r#"{{"object":"chat.completion","received":{len}}}"#);
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A chat request of about `size` bytes of JSON.
fn big_body(size: usize) -> Vec<u8> {
    let head = r#"{"model":"mock-model","max_tokens":2,"messages":[{"role":"user","content":""#;
    let tail = r#""}]}"#;
    let mut b = head.as_bytes().to_vec();
    b.resize(size - tail.len(), b'a');
    b.extend_from_slice(tail.as_bytes());
    b
}

/// The router's `/metrics` text.
async fn router_metrics(r: &inferbench_router::RouterHandle) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_cut_off_after_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let f = instance(fast("mock-model")).await;
    let cfg = RouterConfig {
        header_read_timeout_s: 0.3,
        ..limited(vec![addr(&f)])
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    // A connection that says nothing is idle (30 s here), not a slow head.
    let mut quiet = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    // Slowloris: a head sent a line every 50 ms, never ending.
    let s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let t0 = std::time::Instant::now();
    let drip = tokio::spawn(async move {
        if wr
            .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            return;
        }
        for i in 0..400 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if wr
                .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the slow head's connection is still open after 10 s");
    let took = t0.elapsed();
    drip.abort();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // The quiet connection is still served.
    let body =
        br#"{"model":"mock-model","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#;
    let (status, text) = keep_alive_request(&mut quiet, body).await;
    assert_eq!(status, 200, "{text}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let f = instance(InstanceConfig {
        itl_ms: 25.0,
        ..fast("mock-model")
    })
    .await;
    let cfg = RouterConfig {
        header_read_timeout_s: 0.2,
        idle_timeout_s: 1.0,
        ..limited(vec![addr(&f)])
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let body =
        br#"{"model":"mock-model","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#;
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    assert_eq!(keep_alive_request(&mut s, body).await.0, 200);
    // Idle for well over the header-read timeout: still open (that one is for heads).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(keep_alive_request(&mut s, body).await.0, 200);
    let t0 = std::time::Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(10), until_closed(&mut s))
        .await
        .expect("the idle connection is still open after 10 s");
    let took = t0.elapsed();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(took >= Duration::from_secs(1), "{took:?}");
    // A response streaming for longer than the idle timeout (60 gaps of ≥ 25 ms) is not cut.
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    let sp = spec("mock-model", true, 60);
    let o = c.send(&sp, c.body(&sp)).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.token_events.len(), 60);
    assert!(o.end - o.sent >= Duration::from_millis(1475));
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_endpoint_is_answered_with_504_after_the_upstream_header_timeout() {
    use tokio::io::AsyncReadExt;
    // Takes connections and reads requests, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    let cfg = RouterConfig {
        upstream_header_timeout_s: 0.3,
        ..limited(vec![upstream])
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let t0 = std::time::Instant::now();
    let (status, text) = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest_like_post(&r.url(), br#"{"model":"m","messages":[]}"#),
    )
    .await
    .expect("no answer within 10 s");
    let took = t0.elapsed();
    assert_eq!(status, 504, "{text}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let lower = text.to_lowercase();
    assert!(lower.contains("server: inferbench-router"), "{text}");
    assert!(text.contains(r#""type":"gateway_timeout""#), "{text}");
    // The load generator puts it on the router's side.
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    let sp = spec("m", false, 2);
    let o = c.send(&sp, c.body(&sp)).await;
    match &o.error {
        Some((inferbench_loadgen::client::ErrorKind::Http { status, .. }, side)) => {
            assert_eq!(*status, 504);
            assert_eq!(*side, inferbench_loadgen::client::Side::Gateway);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        router_metrics(&r)
            .await
            .contains("inferbench_router_rejected_total{code=\"504\"} 2")
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_still_streaming_at_the_request_timeout_is_cut_off() {
    let f = instance(InstanceConfig {
        itl_ms: 50.0,
        ..fast("mock-model")
    })
    .await;
    let cfg = RouterConfig {
        request_timeout_s: 0.5,
        ..limited(vec![addr(&f)])
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = Client::new(&ClientConfig::new(&r.url())).unwrap();
    // 200 tokens 50 ms apart would take 10 s.
    let sp = spec("mock-model", true, 200);
    let o = tokio::time::timeout(Duration::from_secs(10), c.send(&sp, c.body(&sp)))
        .await
        .expect("not cut off within 10 s");
    assert_eq!(o.status, Some(200));
    assert!(o.error.is_some());
    assert!(!o.token_events.is_empty() && o.token_events.len() < 200);
    assert!(o.end - o.sent >= Duration::from_millis(500));
    // Its endpoint slot is given back.
    assert_eq!(
        r.router.pools()[0].endpoints[0]
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_per_request_limit_is_answered_with_413() {
    use tokio::io::AsyncWriteExt;
    let upstream = plain_backend().await;
    let cfg = RouterConfig {
        max_body_bytes: 1 << 20,
        max_buffered_bytes: 2 << 20,
        ..limited(vec![upstream])
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    // Declared over the limit: refused before it is read (then read away, so that the client
    // gets the answer).
    let (status, text) = reqwest_like_post(&r.url(), &big_body((1 << 20) + 1)).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.to_lowercase().contains("server: inferbench-router"),
        "{text}"
    );
    assert!(text.contains("max_body_bytes"), "{text}");
    // Chunked, undeclared: refused once the limit is passed.
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let body = big_body(3 << 19);
    for piece in body.chunks(64 << 10) {
        let _ = s
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await;
        let _ = s.write_all(piece).await;
        let _ = s.write_all(b"\r\n").await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let text = String::from_utf8_lossy(&until_closed(&mut s).await).to_string();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // At the limit: forwarded whole.
    let (status, text) = reqwest_like_post(&r.url(), &big_body(1 << 20)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""received":1048576"#), "{text}");
    assert_eq!(r.router.buffered_bytes(), 0);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bodies_past_the_buffered_limit_get_503_and_the_rest_go_through() {
    use tokio::io::AsyncWriteExt;
    let upstream = plain_backend().await;
    let cfg = RouterConfig {
        max_body_bytes: 1 << 20,
        max_buffered_bytes: 2 << 20,
        ..limited(vec![upstream])
    };
    let r = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let body = Arc::new(big_body(1 << 20));
    // Eight heads of 1 MiB bodies first: two fit the 2 MiB, six are refused at once.
    let mut conns = Vec::new();
    for _ in 0..8 {
        let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        conns.push(s);
    }
    let refused = "inferbench_router_rejected_total{code=\"503\"} 6";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !router_metrics(&r).await.contains(refused) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            router_metrics(&r).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(r.router.buffered_bytes(), 2 << 20);
    assert!(
        router_metrics(&r)
            .await
            .contains("inferbench_router_buffered_body_bytes 2097152")
    );
    // Then the bodies, all at once.
    let mut tasks = Vec::new();
    for mut s in conns {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let _ = s.write_all(&body).await;
            String::from_utf8_lossy(&until_closed(&mut s).await).to_string()
        }));
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let text = t.await.unwrap();
        let status = text.split_whitespace().nth(1).unwrap_or("none").to_string();
        if status == "503" {
            assert!(text.contains("max_buffered_bytes"), "{text}");
            assert!(
                text.to_lowercase().contains("server: inferbench-router"),
                "{text}"
            );
        }
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(
        statuses,
        [("200".to_string(), 2), ("503".to_string(), 6)].into()
    );
    // All given back; the router serves as before.
    assert_eq!(r.router.buffered_bytes(), 0);
    for _ in 0..3 {
        let (status, text) = reqwest_like_post(&r.url(), &body).await;
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(r.router.buffered_bytes(), 0);
    r.shutdown().await;
}
