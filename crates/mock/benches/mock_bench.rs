//! What one mock instance sustains per CPU core, and the TTFT overhead it adds.
//!
//! `cargo bench -p inferbench-mock --bench mock_bench [-- --seconds 10 --streams 1000]`
//!
//! The instance runs on its own one-thread runtime and the client on another, so the server's
//! CPU time is that one thread's (read from /proc/thread-self/stat on it). Each phase keeps
//! `--streams` streaming requests in flight (closed loop) for `--seconds`, after a warm-up.
//! Phases: ITL 0 (pure serving cost), ITL 5 ms, and the TTFT overhead at TTFT 20 ms / ITL 5 ms:
//! client-observed TTFT minus the configured 20 ms, at p50/p99. A 20 Hz scrape of /metrics on
//! 8 instances is measured last.
// Wall-clock deadlines for servers in other threads and processes (not paused time).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};
use parking_lot::Mutex;
use tokio::runtime::Runtime;
use tokio::time::Instant;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Args {
    seconds: f64,
    warmup: f64,
    streams: usize,
    output_tokens: usize,
    only: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10.0,
        warmup: 2.0,
        streams: 1000,
        output_tokens: 256,
        only: None,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--seconds" => a.seconds = next.parse().expect("--seconds N"),
            "--warmup" => a.warmup = next.parse().expect("--warmup N"),
            "--streams" => a.streams = next.parse().expect("--streams N"),
            "--output-tokens" => a.output_tokens = next.parse().expect("--output-tokens N"),
            "--phase" => a.only = Some(next.parse().expect("--phase N (1-based)")),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu() -> f64 {
    inferbench_resources::thread_cpu_s()
}

/// CPU seconds of the whole process.
fn process_cpu() -> f64 {
    inferbench_resources::own_cpu_s()
}

fn server_cpu(rt: &Runtime) -> f64 {
    rt.block_on(async { rt.spawn(async { thread_cpu() }).await.unwrap_or(0.0) })
}

fn connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c
}

/// Starts `n` instances of `cfg` on the server runtime.
fn start_fleet(server_rt: &Runtime, n: usize, cfg: InstanceConfig) -> MockFleet {
    let fleet_cfg = FleetConfig::uniform("127.0.0.1", 0, n, cfg).expect("config");
    server_rt
        .block_on(async { server_rt.spawn(MockFleet::start(fleet_cfg)).await })
        .expect("join")
        .expect("fleet")
}

/// Stops a fleet started with [`start_fleet`].
fn stop_fleet(server_rt: &Runtime, fleet: MockFleet) {
    server_rt
        .block_on(async {
            server_rt
                .spawn(fleet.shutdown(Duration::from_secs(1)))
                .await
        })
        .ok();
}

fn one_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

struct Phase {
    name: &'static str,
    cfg: InstanceConfig,
}

struct Outcome {
    requests: u64,
    tokens: u64,
    seconds: f64,
    server_cpu_s: f64,
    client_process_cpu_s: f64,
    ttft_us: Histogram<u64>,
    errors: u64,
    server_lag: inferbench_mock::engine::LagSummary,
}

fn run_phase(server_rt: &Runtime, client_rt: &Runtime, a: &Args, phase: &Phase) -> Outcome {
    let fleet = start_fleet(server_rt, 1, phase.cfg.clone());
    let url = format!("{}/v1/chat/completions", fleet.urls()[0]);
    let body = Bytes::from(
        serde_json::json!({
            "model": "mock-model",
            "messages": [{"role": "user", "content": "Write a long story about a river."}],
            "max_tokens": a.output_tokens,
            "ignore_eos": true,
            "stream": true,
        })
        .to_string(),
    );
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ttft = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    ));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(connector());
    let expected_events = a.output_tokens + 2; // role chunk + tokens + [DONE]
    let mut users = Vec::new();
    for user in 0..a.streams {
        // Users start spread over the first second, as real clients do, not in lock-step.
        let offset = Duration::from_micros(user as u64 * 1_000_000 / a.streams as u64);
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (measuring, stop, requests, tokens, errors, ttft) = (
            measuring.clone(),
            stop.clone(),
            requests.clone(),
            tokens.clone(),
            errors.clone(),
            ttft.clone(),
        );
        users.push(client_rt.spawn(async move {
            tokio::time::sleep(offset).await;
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::post(&url)
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                    .expect("request");
                let sent = Instant::now();
                let Ok(resp) = client.request(req).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut b = resp.into_body();
                let mut events = 0usize;
                let mut first: Option<Instant> = None;
                let mut ok = true;
                let mut last_byte = 0u8;
                while let Some(frame) = b.frame().await {
                    let Ok(frame) = frame else {
                        ok = false;
                        break;
                    };
                    if let Ok(d) = frame.into_data() {
                        // Count event ends, including one split across two frames.
                        let mut n = d.windows(2).filter(|w| w == b"\n\n").count();
                        if last_byte == b'\n' && d.first() == Some(&b'\n') {
                            n += 1;
                        }
                        last_byte = d.last().copied().unwrap_or(last_byte);
                        // The first frame carries the role chunk and the first token together.
                        if first.is_none() && n >= 2 {
                            first = Some(Instant::now());
                        }
                        events += n;
                    }
                }
                if !ok || events != expected_events {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if measuring.load(Ordering::Relaxed) {
                    requests.fetch_add(1, Ordering::Relaxed);
                    tokens.fetch_add((events - 2) as u64, Ordering::Relaxed);
                    if let Some(f) = first {
                        let us = (f - sent).as_micros() as u64;
                        let _ = ttft.lock().record(us.max(1));
                    }
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs_f64(a.warmup));
    let (s0, c0, t0) = (
        server_cpu(server_rt),
        process_cpu(),
        std::time::Instant::now(),
    );
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    measuring.store(false, Ordering::Relaxed);
    let (s1, c1, elapsed) = (
        server_cpu(server_rt),
        process_cpu(),
        t0.elapsed().as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);
    client_rt.block_on(async {
        for u in users {
            let _ = tokio::time::timeout(Duration::from_secs(30), u).await;
        }
    });
    let server_lag = fleet.instances()[0].engine().ttft_lag();
    stop_fleet(server_rt, fleet);
    let ttft_us = ttft.lock().clone();
    Outcome {
        requests: requests.load(Ordering::Relaxed),
        tokens: tokens.load(Ordering::Relaxed),
        seconds: elapsed,
        server_cpu_s: s1 - s0,
        client_process_cpu_s: (c1 - c0) - (s1 - s0),
        ttft_us,
        errors: errors.load(Ordering::Relaxed),
        server_lag,
    }
}

fn scrape_cost(server_rt: &Runtime, client_rt: &Runtime, seconds: f64) -> (f64, u64, usize) {
    let fleet = start_fleet(server_rt, 8, InstanceConfig::default());
    let urls: Vec<String> = fleet
        .urls()
        .iter()
        .map(|u| format!("{u}/metrics"))
        .collect();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector());
    // Some history in the histograms, as on a busy server.
    client_rt.block_on(async {
        for u in fleet.urls() {
            for _ in 0..20 {
                let req = http::Request::post(format!("{u}/v1/completions"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(
                        br#"{"model":"mock-model","prompt":"hello","max_tokens":4,"ignore_eos":true}"#,
                    )))
                    .expect("request");
                if let Ok(r) = client.request(req).await {
                    let _ = r.into_body().collect().await;
                }
            }
        }
    });
    let bytes = Arc::new(AtomicU64::new(0));
    let scrapes = Arc::new(AtomicU64::new(0));
    let s0 = server_cpu(server_rt);
    let start = std::time::Instant::now();
    client_rt.block_on(async {
        let mut tasks = Vec::new();
        for u in urls {
            let (client, bytes, scrapes) = (client.clone(), bytes.clone(), scrapes.clone());
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                let end = Instant::now() + Duration::from_secs_f64(seconds);
                while Instant::now() < end {
                    tick.tick().await;
                    let req = http::Request::get(&u)
                        .body(Full::new(Bytes::new()))
                        .expect("request");
                    if let Ok(r) = client.request(req).await
                        && let Ok(b) = r.into_body().collect().await
                    {
                        bytes.fetch_add(b.to_bytes().len() as u64, Ordering::Relaxed);
                        scrapes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let cpu = server_cpu(server_rt) - s0;
    let elapsed = start.elapsed().as_secs_f64();
    stop_fleet(server_rt, fleet);
    let n = scrapes.load(Ordering::Relaxed);
    (
        cpu / elapsed,
        n,
        (bytes.load(Ordering::Relaxed) / n.max(1)) as usize,
    )
}

fn main() {
    let a = args();
    let server_rt = one_thread_runtime();
    let client_rt = one_thread_runtime();
    println!(
        "inferbench mock benchmark: {} streams, {} output tokens each, {:.0} s per phase (+{:.0} s warm-up), {} cores",
        a.streams,
        a.output_tokens,
        a.seconds,
        a.warmup,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let big = |itl: f64, ttft: f64| InstanceConfig {
        ttft_ms: ttft,
        itl_ms: itl,
        max_num_seqs: a.streams * 2,
        kv_blocks: 1_000_000,
        max_waiting: a.streams * 4,
        ..Default::default()
    };
    let phases = [
        Phase {
            name: "ITL 0",
            cfg: big(0.0, 0.0),
        },
        Phase {
            name: "ITL 5 ms",
            cfg: InstanceConfig {
                decode_slowdown: 0.0,
                ..big(5.0, 0.0)
            },
        },
        Phase {
            name: "TTFT 20 ms, ITL 5 ms",
            cfg: InstanceConfig {
                decode_slowdown: 0.0,
                ..big(5.0, 20.0)
            },
        },
        Phase {
            name: "TTFT 20 ms, ITL 20 ms",
            cfg: InstanceConfig {
                decode_slowdown: 0.0,
                ..big(20.0, 20.0)
            },
        },
    ];
    println!(
        "| phase | req/s | streamed tokens/s | server CPU (cores) | tokens/s per server core | req/s per server core | client CPU (cores) | TTFT p50 | TTFT p99 | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, p) in phases.iter().enumerate() {
        if a.only.is_some_and(|o| o != i + 1) {
            continue;
        }
        let o = run_phase(&server_rt, &client_rt, &a, p);
        let cores = o.server_cpu_s / o.seconds;
        let rps = o.requests as f64 / o.seconds;
        let tps = o.tokens as f64 / o.seconds;
        let ms = |q: f64| o.ttft_us.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} ms | {:.2} ms | {} |",
            p.name,
            rps,
            tps,
            cores,
            tps / cores.max(1e-9),
            rps / cores.max(1e-9),
            o.client_process_cpu_s / o.seconds,
            ms(0.5),
            ms(0.99),
            o.errors
        );
        println!(
            "  server-side TTFT overhead (first token sent minus due, {} requests): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            o.server_lag.count,
            o.server_lag.p50_us as f64 / 1000.0,
            o.server_lag.p99_us as f64 / 1000.0,
            o.server_lag.max_us as f64 / 1000.0
        );
        if p.cfg.ttft_ms > 0.0 {
            println!(
                "  client-observed TTFT minus configured {} ms at {} streams: p50 {:.3} ms, p99 {:.3} ms",
                p.cfg.ttft_ms,
                a.streams,
                ms(0.5) - p.cfg.ttft_ms,
                ms(0.99) - p.cfg.ttft_ms
            );
        }
    }
    let (cores, scrapes, size) = scrape_cost(&server_rt, &client_rt, a.seconds);
    println!(
        "/metrics at 20 Hz on 8 instances: {scrapes} scrapes of {size} bytes, server CPU {:.3}% of one core",
        cores * 100.0
    );
}
