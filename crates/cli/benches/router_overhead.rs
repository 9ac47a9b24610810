//! What the routing layer adds: small unary requests at a fixed rate through 8 mock endpoints,
//! sent directly, through the reference router as a round-robin proxy (bodies unread), through
//! it with body routing and all four EPP scorers, and — when HAProxy is installed
//! (`apt-get install haproxy`) — through HAProxy in round-robin as a production reference. The
//! arms run interleaved in windows in one `inferbench run`, on the real binary.
//!
//! `cargo bench -p inferbench --bench router_overhead [-- --rate 1000 --seconds 30]`

use std::process::{Command, Stdio};

mod common;
use common::{Kill, arg};

const BIN: &str = env!("CARGO_BIN_EXE_inferbench");

fn main() {
    let rate = arg("--rate", 1000.0);
    let seconds = arg("--seconds", 30.0);
    let dir = std::env::temp_dir().join(format!("inferbench-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let (_mock, addrs) = common::spawn_mock(
        BIN,
        8,
        &["--ttft-ms", "1", "--itl-ms", "1", "--max-num-seqs", "1024"],
    );

    // HAProxy as the reference, when installed.
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    let mut haproxy_child = None;
    let mut arms = "[direct, proxy-rr, epp".to_string();
    if haproxy.exists() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut cfg = format!(
            "global\n    maxconn 4000\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 5s\n    \
             timeout client 60s\n    timeout server 60s\n    option http-keep-alive\n    http-reuse always\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    balance roundrobin\n"
        );
        for (i, a) in addrs.iter().enumerate() {
            cfg.push_str(&format!("    server s{i} {a}\n"));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("haproxy.cfg");
        let child = Command::new(haproxy)
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy");
        std::thread::sleep(std::time::Duration::from_millis(300));
        arms.push_str(&format!(
            ", {{name: haproxy-rr, url: \"http://127.0.0.1:{port}\"}}"
        ));
        haproxy_child = Some(Kill(child));
    }
    arms.push(']');
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    let scenario = format!(
        "targets:\n  - name: fleet\n    url: {}\n    models: [mock-model]\nscenarios:\n  \
         - name: overhead\n    load: {{rate: {rate}}}\n    duration: {seconds}s\n    warmup: 2s\n    \
         arm_window: 5s\n    arms: {arms}\n    workload: {{prompt_tokens: 32, output_tokens: 1, stream: false}}\n",
        urls.join(",")
    );
    let file = dir.join("overhead.yaml");
    std::fs::write(&file, scenario).expect("scenario");
    let hp_pid = haproxy_child.as_ref().map(|c| c.0.id());
    let hp_cpu0 = hp_pid.map(common::cpu_s);
    let report = common::run_file(BIN, &file, &dir.join("out"));
    let s = &report.scenarios[0];
    println!(
        "inferbench router overhead: {rate} req/s of small unary requests (32 in / 1 out) through 8 mock endpoints, {seconds} s in 5 s windows\n"
    );
    println!(
        "| arm | req/s | TTFT p50 ms | added p50 µs | added p95 µs | added p99 µs | errors | proxy CPU s/1k | proxy RSS |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for a in &s.arms {
        let c = &a.result.total.counts;
        let added = a
            .ttft_added_us
            .map_or(["—".into(), "—".into(), "—".into()], |v| {
                v.map(|x| format!("{x:+}"))
            });
        let (cpu, rss) = match (a.name.as_str(), hp_pid, hp_cpu0) {
            ("haproxy-rr", Some(pid), Some(c0)) => (
                format!(
                    "{:.3}",
                    (common::cpu_s(pid) - c0) * 1000.0 / c.requests.max(1) as f64
                ),
                format!("{} MB", common::rss_kb(pid) / 1024),
            ),
            (_, _, _) => (
                a.router_cpu_per_1000
                    .map_or("—".into(), |c| format!("{c:.3}")),
                a.router_peak_rss_mb
                    .map_or("—".into(), |m| format!("{m:.0} MB")),
            ),
        };
        println!(
            "| {} | {:.1} | {:.3} | {} | {} | {} | {} | {cpu} | {rss} |",
            a.name,
            a.result.achieved_rate(),
            a.result.total.latency.ttft.summary().p50_us as f64 / 1000.0,
            added[0],
            added[1],
            added[2],
            c.failed()
        );
    }
    drop(haproxy_child);
    let _ = std::fs::remove_dir_all(&dir);
}
