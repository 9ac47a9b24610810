//! Watched processes (`run --watch-process NAME=PID|PATTERN`): a gateway, a router, a model
//! server on this machine, sampled every second from `/proc` during the run, so every stage,
//! step and arm reports what they cost over exactly its window — CPU seconds (and per 1,000
//! requests) and resident memory.

use std::sync::Arc;
use std::time::Duration;

use inferbench_results::run::ProcessUsage;
use parking_lot::Mutex;
use tokio::time::Instant;

/// Most samples kept per run: past it, every other one is dropped and the period doubles, so
/// memory stays bounded however long the run (a week at 1 Hz fits without thinning).
const MAX_SAMPLES: usize = 1 << 20;

/// A process to watch: its name in the report and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The name it is reported under.
    pub name: String,
    /// Its process id.
    pub pid: u32,
}

/// Reads `NAME=PID` or `NAME=PATTERN`: a pattern names the oldest other process whose command
/// line contains it (as `pgrep -o -f` does).
pub fn parse(spec: &str) -> Result<Watched, String> {
    let (name, what) = spec
        .split_once('=')
        .filter(|(n, w)| !n.trim().is_empty() && !w.trim().is_empty())
        .ok_or_else(|| format!("--watch-process `{spec}` is not NAME=PID or NAME=PATTERN"))?;
    let (name, what) = (name.trim().to_string(), what.trim());
    let pid = match what.parse::<u32>() {
        Ok(pid) => pid,
        Err(_) => find(what).ok_or_else(|| {
            format!("--watch-process {name}: no process's command line contains `{what}`")
        })?,
    };
    if inferbench_resources::process_cpu_s(pid).is_none() {
        return Err(format!(
            "--watch-process {name}: process {pid} cannot be read (gone, or not Linux)"
        ));
    }
    Ok(Watched { name, pid })
}

/// The oldest process (lowest id) other than this one whose command line contains `pattern`.
fn find(pattern: &str) -> Option<u32> {
    let me = std::process::id();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| *p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                let text = String::from_utf8_lossy(&c).replace('\0', " ");
                text.contains(pattern)
            })
        })
        .collect();
    pids.sort_unstable();
    pids.first().copied()
}

/// One reading of every watched process: CPU seconds and resident kB (`None`: not readable).
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    readings: Vec<Option<(f64, u64)>>,
}

/// Samples the watched processes on a thread of its own until dropped.
pub struct Sampler {
    watched: Vec<Watched>,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

fn read(w: &[Watched]) -> Vec<Option<(f64, u64)>> {
    w.iter()
        .map(|p| {
            let cpu = inferbench_resources::process_cpu_s(p.pid)?;
            let rss = inferbench_resources::memory(p.pid)?.rss_kb;
            Some((cpu, rss))
        })
        .collect()
}

impl Sampler {
    /// Starts sampling `watched` every `period`.
    pub fn start(watched: Vec<Watched>, period: Duration) -> Sampler {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let stop: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (w, s, st) = (watched.clone(), samples.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("inferbench-watch".into())
            .spawn(move || {
                let mut period = period;
                while !st.load(std::sync::atomic::Ordering::Relaxed) {
                    let sample = Sample {
                        at: Instant::now(),
                        readings: read(&w),
                    };
                    let mut all = s.lock();
                    all.push(sample);
                    if all.len() >= MAX_SAMPLES {
                        let mut i = 0;
                        all.retain(|_| {
                            i += 1;
                            i % 2 == 1
                        });
                        period *= 2;
                    }
                    drop(all);
                    std::thread::sleep(period);
                }
            });
        if let Err(e) = spawned {
            eprintln!("warning: watched processes are not sampled: {e}");
        }
        Sampler {
            watched,
            samples,
            stop,
        }
    }

    /// Takes one sample now (at the edges of a window, so short windows have figures too).
    pub fn mark(&self) {
        let sample = Sample {
            at: Instant::now(),
            readings: read(&self.watched),
        };
        let mut all = self.samples.lock();
        let at = all.partition_point(|x| x.at <= sample.at);
        all.insert(at, sample);
    }

    /// What each watched process cost from `from` to `to`: CPU seconds at each edge
    /// interpolated between the samples either side of it (as the Prometheus side reads its
    /// counters), memory over the samples in between.
    pub fn usage(&self, from: Instant, to: Instant) -> Vec<ProcessUsage> {
        let all = self.samples.lock();
        let inside: Vec<&Sample> = all.iter().filter(|s| s.at >= from && s.at <= to).collect();
        self.watched
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let cpu: Vec<(Instant, f64)> = all
                    .iter()
                    .filter_map(|s| s.readings[i].map(|r| (s.at, r.0)))
                    .collect();
                let (cpu_s, window_s) = match (cpu_at(&cpu, from), cpu_at(&cpu, to)) {
                    (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => (
                        (c1 - c0).max(0.0),
                        t1.saturating_duration_since(t0).as_secs_f64(),
                    ),
                    _ => (0.0, 0.0),
                };
                let rss: Vec<u64> = inside
                    .iter()
                    .filter_map(|s| s.readings[i].map(|r| r.1))
                    .collect();
                let mb = |kb: u64| kb as f64 / 1024.0;
                ProcessUsage {
                    name: w.name.clone(),
                    pid: w.pid,
                    samples: rss.len() as u64,
                    window_s,
                    cpu_s,
                    peak_rss_mb: rss.iter().copied().max().map_or(0.0, mb),
                    mean_rss_mb: if rss.is_empty() {
                        0.0
                    } else {
                        mb(rss.iter().sum::<u64>()) / rss.len() as f64
                    },
                }
            })
            .collect()
    }
}

/// The CPU seconds at `t` from `(instant, cpu s)` samples, oldest first: linear between the
/// samples either side of `t`; the nearest sample (and its instant) when `t` is outside them.
fn cpu_at(samples: &[(Instant, f64)], t: Instant) -> Option<(Instant, f64)> {
    let after = samples.iter().position(|(at, _)| *at > t);
    match after {
        None => samples.last().copied(),
        Some(0) => samples.first().copied(),
        Some(k) => {
            let ((t0, c0), (t1, c1)) = (samples[k - 1], samples[k]);
            let span = t1.saturating_duration_since(t0).as_secs_f64();
            if span <= 0.0 || c1 < c0 {
                return Some((t, c0));
            }
            let f = t.saturating_duration_since(t0).as_secs_f64() / span;
            Some((t, c0 + (c1 - c0) * f))
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_process() {
        let me = std::process::id();
        // This process by id (a pattern never matches the caller itself).
        assert_eq!(
            parse(&format!("self={me}")),
            Ok(Watched {
                name: "self".into(),
                pid: me
            })
        );
        assert!(parse("no-equals").is_err());
        assert!(parse("=123").is_err());
        let e = parse("x=surely-no-process-has-this-in-its-command-line-42")
            .expect_err("no such process");
        assert!(e.contains("no process's command line contains"), "{e}");
        assert!(parse("x=4000000000").is_err());
    }

    #[test]
    fn cpu_at_an_edge_is_interpolated() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let s = [(at(0), 1.0), (at(1000), 2.0), (at(2000), 4.0)];
        assert_eq!(cpu_at(&s, at(500)), Some((at(500), 1.5)));
        assert_eq!(cpu_at(&s, at(1500)), Some((at(1500), 3.0)));
        // Outside the samples: the nearest one, at its own instant.
        assert_eq!(cpu_at(&s, at(3000)), Some((at(2000), 4.0)));
        assert_eq!(cpu_at(&[], at(1)), None);
        // A restarted process (CPU went down): the sample before.
        assert_eq!(
            cpu_at(&[(at(0), 5.0), (at(10), 1.0)], at(5)),
            Some((at(5), 5.0))
        );
    }

    #[test]
    fn a_busy_process_shows_its_cpu_and_memory() {
        let me = Watched {
            name: "self".into(),
            pid: std::process::id(),
        };
        let s = Sampler::start(vec![me], Duration::from_millis(20));
        let from = Instant::now();
        s.mark();
        // Burn 0.3 s of CPU on this thread, by the process's own CPU clock (not wall time: on a
        // busy machine 300 ms of wall time can hold a third as much CPU), for at most 30 s.
        let cpu = || inferbench_resources::process_cpu_s(std::process::id()).unwrap_or(0.0);
        let (t, c0) = (Instant::now(), cpu());
        let mut x = 0u64;
        while cpu() - c0 < 0.3 && t.elapsed() < Duration::from_secs(30) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
        }
        std::hint::black_box(x);
        let to = Instant::now();
        s.mark();
        let u = s.usage(from, to);
        assert_eq!(u.len(), 1);
        let u = &u[0];
        assert!(u.cpu_s > 0.25 && u.cpu_s < 2.0, "{u:?}");
        assert!(
            u.peak_rss_mb > 1.0 && u.peak_rss_mb >= u.mean_rss_mb,
            "{u:?}"
        );
        assert!(u.samples >= 2, "{u:?}");
        assert_eq!(u.cpu_per_1000(0), None);
    }
}
