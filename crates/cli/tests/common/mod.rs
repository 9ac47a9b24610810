//! Shared by the binary's integration tests: `inferbench mock` as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `inferbench mock` and the addresses it printed; killed on drop.
pub struct Mock {
    pub child: Child,
    pub addrs: Vec<String>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    /// `http://addr` of every instance, comma-separated.
    #[allow(dead_code)]
    pub fn urls(&self) -> String {
        self.addrs
            .iter()
            .map(|a| format!("http://{a}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The binary, with its history store out of the source tree (one file per test process, in the
/// temp folder): runs record there instead of `results/history.db` beside the crate.
#[allow(dead_code)]
pub fn inferbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inferbench"));
    c.env(
        "INFERBENCH_HISTORY",
        std::env::temp_dir().join(format!("inferbench-tests-{}.db", std::process::id())),
    );
    c
}

/// Starts `inferbench mock ARGS` and waits for `n` `listening <addr>` lines.
#[allow(dead_code)]
pub fn start(args: &[&str], n: usize) -> Mock {
    let mut child = inferbench()
        .arg("mock")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start inferbench mock");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let mut addrs = Vec::new();
    while addrs.len() < n {
        let line = lines.next().expect("a `listening` line").expect("utf-8");
        let addr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected line {line}"));
        addrs.push(addr.to_string());
    }
    Mock { child, addrs }
}

/// `GET path` on `addr` (`host:port`) over plain HTTP/1.1; the response body (empty on any
/// failure).
#[allow(dead_code)]
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// `inferbench run ARGS --no-history --out <temp dir>`: the report it wrote, the exit code and
/// stdout (stderr in the panic if no report was written).
#[allow(dead_code)]
pub fn run_report(args: &[&str]) -> (inferbench_results::suite::Report, i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = inferbench()
        .arg("run")
        .args(args)
        .arg("--no-history")
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run inferbench");
    let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report.json ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report = inferbench_results::suite::Report::from_json(&text).expect("a report");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (report, out.status.code().unwrap_or(-1), stdout)
}

/// Waits (at most 30 s, else panics naming `what`) until the mock at `addr` shows a sample of
/// one of `names` at `min` or more on its `/metrics`: a test acts on what the server saw, not
/// after a guessed time.
#[allow(dead_code, clippy::disallowed_types)] // a real process's real wall clock
pub fn wait_for_metric(addr: &str, names: &[&str], min: f64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = http_get(addr, "/metrics");
        let reached = metrics.lines().any(|l| {
            names.iter().any(|n| l.starts_with(n))
                && l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v >= min)
        });
        if reached {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Writes `yaml` (a scenario file's text) to `dir/s.yaml` and runs it with `--no-history --out
/// dir/out`; panics with its output unless it passed. The report (as JSON) and stdout.
#[allow(dead_code)]
pub fn run_yaml(dir: &std::path::Path, yaml: &str) -> (serde_json::Value, String) {
    std::fs::write(dir.join("s.yaml"), yaml).expect("write the scenario file");
    let o = inferbench()
        .arg("run")
        .arg(dir.join("s.yaml"))
        .args(["--no-history", "--out"])
        .arg(dir.join("out"))
        .output()
        .expect("run inferbench");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(dir.join("out/report.json")).expect("report.json");
    (serde_json::from_str(&text).expect("a JSON report"), stdout)
}
