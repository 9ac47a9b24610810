//! Shared by the binary's benchmarks: child processes, flags, and /proc readings.

use std::process::Child;

/// A child process killed on drop.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: f64) -> f64 {
    let v: Vec<String> = std::env::args().collect();
    v.iter()
        .position(|a| a == name)
        .and_then(|i| v.get(i + 1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of process `pid`.
#[allow(dead_code)]
pub fn cpu_s(pid: u32) -> f64 {
    inferbench_resources::process_cpu_s(pid).unwrap_or(0.0)
}

/// Resident memory of process `pid`, kB.
#[allow(dead_code)]
pub fn rss_kb(pid: u32) -> u64 {
    inferbench_resources::memory(pid).map_or(0, |m| m.rss_kb)
}

/// Starts `inferbench mock` with `args` on OS-chosen ports; returns it and its `instances`
/// addresses.
#[allow(dead_code)]
pub fn spawn_mock(bin: &str, instances: usize, args: &[&str]) -> (Kill, Vec<String>) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin)
        .args(["mock", "--port", "0", "--instances", &instances.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the mock");
    let out = child.stdout.take().expect("mock stdout");
    let kill = Kill(child);
    let addrs = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("listening ").map(String::from))
        .take(instances)
        .collect();
    (kill, addrs)
}

/// Runs `inferbench run FILE --out OUT --no-history` and reads its report; a failed threshold
/// (exit 99) still has one.
#[allow(dead_code)]
pub fn run_file(
    bin: &str,
    file: &std::path::Path,
    out: &std::path::Path,
) -> inferbench_results::suite::Report {
    use std::process::{Command, Stdio};
    let status = Command::new(bin)
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .arg("--no-history")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("inferbench run");
    assert!(
        status.code() == Some(0) || status.code() == Some(99),
        "inferbench run {}: {status}",
        file.display()
    );
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    inferbench_results::suite::Report::from_json(&text).expect("report")
}
