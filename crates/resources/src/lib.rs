//! What a process costs: CPU seconds (user + system) and resident memory, read from Linux's
//! `/proc`. The load generator reports its own CPU per request with these; a run measures the
//! routers and servers it starts with them. Elsewhere than Linux every reading is 0 or `None`.
//!
//! [`prometheus`] exposes this process's costs as the standard `process_*` Prometheus metrics
//! (the mock and the router register its collector).
//!
//! This crate is also where periodic resource sampling of a run's processes belongs (see
//! docs/architecture.md).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Clock ticks per second of `/proc/…/stat`'s CPU fields (`USER_HZ`, 100 on every Linux
/// architecture the project runs on).
const TICKS_PER_S: f64 = 100.0;

pub mod prometheus;

/// User + system CPU seconds from the text of a `/proc/…/stat` file (0 when unreadable).
pub fn stat_cpu_s(stat: &str) -> f64 {
    // The command name in `(…)` may hold spaces and parentheses: count fields after the last `)`.
    // After it: state is field 3; utime 14 and stime 15 (1-based), i.e. 11 and 12 here.
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS_PER_S
}

/// CPU seconds of process `pid` so far (`None` when it cannot be read: gone, or not Linux).
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat_cpu_s(&stat))
}

/// CPU seconds of this process so far (0 when unreadable).
pub fn own_cpu_s() -> f64 {
    stat_cpu_s(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU seconds of the calling thread so far (0 when unreadable).
pub fn thread_cpu_s() -> f64 {
    stat_cpu_s(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
}

/// CPU seconds of this process's threads whose name satisfies `pick` (0 when unreadable).
pub fn threads_cpu_s(pick: impl Fn(&str) -> bool) -> f64 {
    let mut total = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if pick(comm.trim_end()) {
                total +=
                    stat_cpu_s(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default());
            }
        }
    }
    total
}

/// A `kB` field (`VmRSS`, `VmHWM`, …) of a `/proc/…/status` text, in kB.
pub fn status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Memory of process `pid` now and at its peak, kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_kb: u64,
    /// Most resident since it started (`VmHWM`).
    pub peak_rss_kb: u64,
}

/// The memory of process `pid` (`None` when it cannot be read).
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Memory {
        rss_kb: status_kb(&status, "VmRSS")?,
        peak_rss_kb: status_kb(&status, "VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_count_from_the_last_parenthesis() {
        // utime 250 and stime 50 ticks; the command name holds `) (` and spaces.
        let stat = "1234 (a) (b c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0";
        assert!((stat_cpu_s(stat) - 3.0).abs() < 1e-9);
        assert_eq!(stat_cpu_s(""), 0.0);
        assert_eq!(stat_cpu_s("garbage"), 0.0);
    }

    #[test]
    fn status_fields_in_kb() {
        let status = "Name:\tx\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kb(status, "VmRSS"), Some(10240));
        assert_eq!(status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(status_kb(status, "VmSwap"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_can_be_read() {
        let m = memory(std::process::id()).expect("own /proc status");
        assert!(m.rss_kb > 0 && m.peak_rss_kb >= m.rss_kb);
        assert!(process_cpu_s(std::process::id()).is_some());
    }
}
