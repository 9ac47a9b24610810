//! What the router knows about each endpoint: vLLM's metrics scraped from `/metrics` (queue,
//! running batch, KV-cache usage, LoRA adapters), when they were read, and the router's own
//! count of requests in flight there.

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

/// Parses vLLM's Prometheus text. Unknown lines are ignored; a body with none of the gauges is
/// an error (not a vLLM server).
pub fn parse(text: &str) -> Result<Scraped, String> {
    let mut s = Scraped::default();
    let mut seen = false;
    let mut kv_new = None;
    let mut kv_old = None;
    let mut lora_time = f64::NEG_INFINITY;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        match name {
            "vllm:num_requests_waiting" => {
                s.waiting += v;
                seen = true;
            }
            "vllm:num_requests_running" => {
                s.running += v;
                seen = true;
            }
            "vllm:kv_cache_usage_perc" => kv_new = Some(v),
            "vllm:gpu_cache_usage_perc" => kv_old = Some(v),
            "vllm:lora_requests_info" if v >= lora_time => {
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
    /// The last good scrape and when it was read.
    pub scraped: RwLock<Option<(Scraped, Instant)>>,
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

    /// The last scrape if it is younger than `max_age`.
    pub fn fresh(&self, max_age: Duration) -> Option<Scraped> {
        let g = self.scraped.read();
        g.as_ref()
            .filter(|(_, at)| at.elapsed() <= max_age)
            .map(|(s, _)| s.clone())
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
        let s = parse(SAMPLE).unwrap();
        assert_eq!(s.waiting, 3.0);
        assert_eq!(s.running, 7.0);
        assert_eq!(s.kv_usage, 0.25);
        assert_eq!(s.running_loras, ["sql", "chat"]);
        assert!(s.waiting_loras.is_empty());
        assert_eq!(s.max_lora, 2);
        assert!(parse("hello").is_err());
        let old = parse("vllm:num_requests_waiting 1\nvllm:gpu_cache_usage_perc 0.5\n").unwrap();
        assert_eq!(old.kv_usage, 0.5);
    }
}
