//! What the router knows about each endpoint: vLLM's metrics scraped from `/metrics` (queue,
//! running batch, KV-cache usage, LoRA adapters), when they were read, and the router's own
//! count of requests in flight there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::time::Instant;

/// One scrape's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scraped {
    /// `vllm:num_requests_waiting`.
    pub waiting: f64,
    /// `vllm:num_requests_running`.
    pub running: f64,
    /// `vllm:kv_cache_usage_perc` (or the older `vllm:gpu_cache_usage_perc`), 0..1.
    pub kv_usage: f64,
    /// Adapters in the running batch (`vllm:lora_requests_info`).
    pub running_loras: Vec<String>,
    /// Adapters waiting.
    pub waiting_loras: Vec<String>,
    /// Most adapters at once.
    pub max_lora: usize,
}

/// The series the router reads; every other line is skipped before its value is parsed (a
/// vLLM `/metrics` is mostly histogram buckets).
const WANTED: [&[u8]; 5] = [
    b"vllm:num_requests_waiting",
    b"vllm:num_requests_running",
    b"vllm:kv_cache_usage_perc",
    b"vllm:gpu_cache_usage_perc",
    b"vllm:lora_requests_info",
];

/// Parses vLLM's Prometheus text. Unknown lines are ignored; a body with none of the gauges is
/// an error (not a vLLM server).
pub fn parse(text: &[u8]) -> Result<Scraped, String> {
    let mut s = Scraped::default();
    let mut seen = false;
    let mut kv_new = None;
    let mut kv_old = None;
    let mut lora_time = f64::NEG_INFINITY;
    // Valid UTF-8 (always, from vLLM) is split with memchr; anything else byte by byte.
    let lines: Box<dyn Iterator<Item = &[u8]>> = match std::str::from_utf8(text) {
        Ok(t) => Box::new(t.lines().map(str::as_bytes)),
        Err(_) => Box::new(text.split(|&b| b == b'\n')),
    };
    for line in lines {
        if !line.starts_with(b"vllm:") {
            continue;
        }
        let name_end = line
            .iter()
            .position(|&b| b == b'{' || b == b' ')
            .unwrap_or(line.len());
        let Some(which) = WANTED.iter().position(|w| *w == &line[..name_end]) else {
            continue;
        };
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((series, value)) = line.trim_end().rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let labels = series
            .split_once('{')
            .map_or("", |(_, l)| l.trim_end_matches('}'));
        match which {
            0 => {
                s.waiting += v;
                seen = true;
            }
            1 => {
                s.running += v;
                seen = true;
            }
            2 => kv_new = Some(v),
            3 => kv_old = Some(v),
            _ if v >= lora_time => {
                // The newest series (its value is a unix time) is the current state.
                lora_time = v;
                s.running_loras = list(label(labels, "running_lora_adapters"));
                s.waiting_loras = list(label(labels, "waiting_lora_adapters"));
                s.max_lora = label(labels, "max_lora").parse().unwrap_or(0);
            }
            _ => {}
        }
    }
    s.kv_usage = kv_new.or(kv_old).unwrap_or(0.0).clamp(0.0, 1.0);
    if !seen {
        return Err("no vllm:num_requests_waiting / running in /metrics".into());
    }
    Ok(s)
}

fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    // labels: k1="v1",k2="v2" (values without escaped quotes in vLLM's output)
    let pat = format!("{key}=\"");
    labels
        .find(&pat)
        .map(|i| &labels[i + pat.len()..])
        .and_then(|rest| rest.split_once('"').map(|(v, _)| v))
        .unwrap_or("")
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// One endpoint as the router sees it.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    /// The last good scrape and when it was read (shared: pickers read it on every request).
    pub scraped: RwLock<Option<(Arc<Scraped>, Instant)>>,
    /// Consecutive failed scrapes.
    pub scrape_failures: AtomicU64,
    /// Requests the router has in flight there now.
    pub in_flight: AtomicU64,
    /// Requests sent there since the last scrape (the scrape cannot know of them yet).
    pub since_scrape: AtomicU64,
    /// Requests sent there in all.
    pub sent: AtomicU64,
}

impl Endpoint {
    /// An endpoint nobody has scraped yet.
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_string(),
            scraped: RwLock::new(None),
            scrape_failures: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            since_scrape: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// The last scrape if, at `now`, it is younger than `max_age`.
    pub fn fresh(&self, now: Instant, max_age: Duration) -> Option<Arc<Scraped>> {
        let g = self.scraped.read();
        g.as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) <= max_age)
            .map(|(s, _)| s.clone())
    }

    /// Records a good scrape read at `at`.
    pub fn store(&self, s: Scraped, at: Instant) {
        *self.scraped.write() = Some((Arc::new(s), at));
        self.since_scrape.store(0, Ordering::Relaxed);
        self.scrape_failures.store(0, Ordering::Relaxed);
    }

    /// Whether the last scrape failed (the endpoint is presumed down).
    pub fn down(&self) -> bool {
        self.scrape_failures.load(Ordering::Relaxed) > 0
    }

    /// Queue length estimate: the scraped queue, or — when the router knows of more — the
    /// requests it has in flight there beyond the scraped running batch (fresher than any
    /// scrape when the router is the endpoint's only client).
    pub fn queue(&self, s: &Scraped) -> f64 {
        let beyond = self.in_flight.load(Ordering::Relaxed) as f64 - s.running;
        s.waiting.max(beyond)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP vllm:num_requests_waiting x
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 3
vllm:num_requests_running{model_name="m"} 7
vllm:kv_cache_usage_perc{model_name="m"} 0.25
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql,chat",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="2",running_lora_adapters="",waiting_lora_adapters="x"} 1.6e9
"#;

    #[test]
    fn reads_vllm_gauges() {
        let s = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(s.waiting, 3.0);
        assert_eq!(s.running, 7.0);
        assert_eq!(s.kv_usage, 0.25);
        assert_eq!(s.running_loras, ["sql", "chat"]);
        assert!(s.waiting_loras.is_empty());
        assert_eq!(s.max_lora, 2);
        assert!(parse(b"hello").is_err());
        let old = parse(b"vllm:num_requests_waiting 1\r\nvllm:gpu_cache_usage_perc 0.5\n").unwrap();
        assert_eq!(old.kv_usage, 0.5);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_reads_what_it_is_given(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            waiting in 0u32..1000,
        ) {
            let _ = parse(&junk);
            let mut text = junk.clone();
            text.extend_from_slice(format!("\nvllm:num_requests_waiting{{model_name=\"m\"}} {waiting}\n").as_bytes());
            let s = parse(&text).unwrap();
            // The junk may hold more of the same series (summed); never less.
            proptest::prop_assert!(s.waiting >= f64::from(waiting) || s.waiting.is_nan());
        }
    }
}
