//! The load generator's own capacity and accuracy on this machine, measured black-box on the real
//! binary: `inferbench mock` runs as one process, `inferbench run` as another, so each one's CPU
//! is its own (read from /proc) while they share the cores as they would in a user's run.
//!
//! `cargo bench -p inferbench --bench capacity [-- --seconds 8 --rates 1000,3000,5000,7000]`
//!
//! Parts:
//! 1. Streaming capacity: 64 output tokens per request against a mock with TTFT 50 ms, ITL 0
//!    (every token at once: the client's parsing cost without the mock's pacing), stepping the
//!    rate up. Per step: achieved rate, dispatch lag p50/p99, client and mock CPU-seconds per
//!    1,000 requests. The capacity is the highest rate with dispatch lag p99 < 1 ms and the
//!    achieved rate within 1 % of the target.
//! 2. The same at ITL 5 ms (64 events a request, each its own wake-up: the realistic case).
//! 3. Unary small requests: closed loop, 64 in flight, 16 prompt / 1 output token, TTFT 0.
//! 4. Accuracy: TTFT 50 ms / ITL 5 ms at 10 and 1,000 req/s: reported TTFT p50 minus the mock's
//!    own server-side TTFT (50 ms + its measured emission lag, from its /metrics), ITL p50 minus
//!    5 ms, achieved vs target rate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use inferbench_results::run::RunResult;
use inferbench_results::suite::Report;

const BIN: &str = env!("CARGO_BIN_EXE_inferbench");

struct Args {
    seconds: f64,
    rates: Vec<u32>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 8.0,
        rates: vec![1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000],
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--seconds" => a.seconds = next.parse().expect("--seconds N"),
            "--rates" => {
                a.rates = next
                    .split(',')
                    .map(|r| r.parse().expect("--rates R1,R2,..."))
                    .collect()
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// A mock process and its address.
struct Mock {
    child: Child,
    addr: String,
}

impl Mock {
    fn start(extra: &[&str]) -> Mock {
        let mut child = Command::new(BIN)
            .args(["mock", "--port", "0", "--instances", "1"])
            .args(["--max-num-seqs", "100000", "--max-waiting", "100000"])
            .args(["--kv-blocks", "10000000", "--decode-slowdown", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the mock");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("mock address");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .expect("`listening <addr>`")
            .to_string();
        Mock { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn cpu_s(&self) -> f64 {
        inferbench_resources::process_cpu_s(self.child.id()).unwrap_or(0.0)
    }

    /// `inferbench:mock_ttft_lag_seconds` sum and count from /metrics.
    fn lag_sum_count(&self) -> (f64, f64) {
        let mut s = TcpStream::connect(&self.addr).expect("metrics");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let find = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            find("inferbench:mock_ttft_lag_seconds_sum"),
            find("inferbench:mock_ttft_lag_seconds_count"),
        )
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `inferbench run` with `args` against `mock`; returns the report and the mock's CPU.
fn run(mock: &Mock, args: &[String]) -> (RunResult, f64) {
    let dir = std::env::temp_dir().join(format!("inferbench-capacity-{}", std::process::id()));
    let cpu0 = mock.cpu_s();
    let status = Command::new(BIN)
        .arg("run")
        .args(["--target", &mock.url(), "--no-history", "--out"])
        .arg(&dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("inferbench run");
    assert!(status.success(), "inferbench run {args:?} failed: {status}");
    let mock_cpu = mock.cpu_s() - cpu0;
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    let _ = std::fs::remove_dir_all(&dir);
    let report = Report::from_json(&text).expect("report");
    let total = report
        .scenarios
        .into_iter()
        .next()
        .expect("one scenario")
        .total;
    (total, mock_cpu)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn streaming_steps(a: &Args, itl_ms: &str) {
    let mock = Mock::start(&["--ttft-ms", "50", "--itl-ms", itl_ms]);
    println!("\n### Streaming, 64 output tokens, mock TTFT 50 ms / ITL {itl_ms} ms\n");
    println!(
        "| target req/s | achieved | dispatch lag p50 ms | p99 ms | late | client CPU s/1k | mock CPU s/1k | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut best = None;
    for &rate in &a.rates {
        let (r, mock_cpu) = run(
            &mock,
            &[
                "--rate".into(),
                rate.to_string(),
                "--duration".into(),
                format!("{}s", a.seconds),
                "--warmup".into(),
                "1s".into(),
                "--prompt-tokens".into(),
                "64".into(),
                "--output-tokens".into(),
                "64".into(),
            ],
        );
        let lag = r.client.dispatch_lag.summary();
        let achieved = r.achieved_rate();
        let sent = r.client.sent.max(1) as f64;
        println!(
            "| {rate} | {achieved:.0} | {:.3} | {:.3} | {} | {:.3} | {:.3} | {} |",
            ms(lag.p50_us),
            ms(lag.p99_us),
            r.client.late,
            r.client.cpu_s_per_1000(),
            mock_cpu * 1000.0 / sent,
            r.total.counts.failed(),
        );
        let kept_up = lag.p99_us < 1000
            && (achieved - rate as f64).abs() <= 0.01 * rate as f64
            && r.total.counts.failed() == 0;
        if kept_up {
            best = Some(rate);
        }
    }
    match best {
        Some(r) => println!("\nhighest rate with dispatch lag p99 < 1 ms: {r} req/s"),
        None => println!("\nno rate kept dispatch lag p99 under 1 ms"),
    }
}

fn unary(a: &Args) {
    let mock = Mock::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let (r, mock_cpu) = run(
        &mock,
        &[
            "--concurrency".into(),
            "64".into(),
            "--duration".into(),
            format!("{}s", a.seconds),
            "--warmup".into(),
            "1s".into(),
            "--prompt-tokens".into(),
            "16".into(),
            "--output-tokens".into(),
            "1".into(),
            "--no-stream".into(),
        ],
    );
    let sent = r.client.sent.max(1) as f64;
    println!("\n### Unary small requests, closed loop, 64 in flight, mock TTFT 0\n");
    println!(
        "{:.0} req/s, e2e p50 {:.3} ms, client CPU {:.3} s/1k, mock CPU {:.3} s/1k, errors {}",
        r.achieved_rate(),
        ms(r.total.latency.e2e.summary().p50_us),
        r.client.cpu_s_per_1000(),
        mock_cpu * 1000.0 / sent,
        r.total.counts.failed()
    );
}

fn accuracy(a: &Args) {
    println!("\n### Accuracy: mock TTFT 50 ms, ITL 5 ms, 64 output tokens\n");
    println!(
        "| rate | achieved | TTFT p50 ms | mock TTFT (50 + lag) ms | difference ms | ITL p50 ms | dispatch lag p99 ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for rate in [10u32, 1000] {
        // A fresh mock per rate, so its lag figures are this rate's alone.
        let mock = Mock::start(&["--ttft-ms", "50", "--itl-ms", "5"]);
        let seconds = if rate < 100 {
            a.seconds.max(5.0)
        } else {
            a.seconds
        };
        let (r, _) = run(
            &mock,
            &[
                "--rate".into(),
                rate.to_string(),
                "--duration".into(),
                format!("{seconds}s"),
                "--prompt-tokens".into(),
                "64".into(),
                "--output-tokens".into(),
                "64".into(),
            ],
        );
        let (sum, count) = mock.lag_sum_count();
        let lag_ms = if count > 0.0 {
            sum / count * 1000.0
        } else {
            0.0
        };
        let ttft = r.total.latency.ttft.summary();
        let server = 50.0 + lag_ms;
        println!(
            "| {rate} | {:.2} | {:.3} | {server:.3} | {:+.3} | {:.3} | {:.3} |",
            r.achieved_rate(),
            ms(ttft.p50_us),
            ms(ttft.p50_us) - server,
            ms(r.total.latency.itl.summary().p50_us),
            ms(r.client.dispatch_lag.summary().p99_us),
        );
    }
}

fn main() {
    let a = args();
    println!(
        "inferbench capacity: {} cores, {} s per step",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        a.seconds
    );
    streaming_steps(&a, "0");
    streaming_steps(&a, "5");
    unary(&a);
    accuracy(&a);
    std::thread::sleep(Duration::from_millis(10));
}
