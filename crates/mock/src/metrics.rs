//! vLLM's Prometheus metrics, with vLLM's exact names and types, for one instance.
//!
//! Gauges are read from the engine at scrape time (a scrape costs one short lock and one encode),
//! counters and histograms are updated as requests progress.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::snapshot::{FinishReason, Snapshot};

pub use inferbench_resources::prometheus::Format;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishLabels {
    finish_reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoraLabels {
    running_lora_adapters: String,
    waiting_lora_adapters: String,
    max_lora: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    block_size: String,
    num_gpu_blocks: String,
}

/// Running and waiting adapters as last exposed.
type LoraSets = (Vec<String>, Vec<String>);

/// The metrics of one instance.
pub struct Metrics {
    registry: Registry,
    waiting: Gauge,
    running: Gauge,
    kv_usage: Gauge<f64, AtomicU64>,
    gpu_cache_usage: Gauge<f64, AtomicU64>,
    lora_info: Family<LoraLabels, Gauge<f64, AtomicU64>>,
    lora_last: parking_lot::Mutex<Option<LoraSets>>,
    max_loras: usize,
    /// `vllm:time_to_first_token_seconds`: arrival to first token.
    pub ttft: Histogram,
    /// `vllm:inter_token_latency_seconds`: gap between two tokens of one sequence.
    pub itl: Histogram,
    /// `vllm:time_per_output_token_seconds`: the older name of the same.
    pub tpot: Histogram,
    /// `vllm:e2e_request_latency_seconds`: arrival to last token.
    pub e2e: Histogram,
    /// `vllm:request_queue_time_seconds`: arrival to scheduling.
    pub queue_time: Histogram,
    /// `vllm:request_prefill_time_seconds`: scheduling to first token (observed at the end).
    pub prefill_time: Histogram,
    /// `vllm:request_decode_time_seconds`: first token to last token (observed at the end).
    pub decode_time: Histogram,
    /// `vllm:request_inference_time_seconds`: scheduling to last token (observed at the end).
    pub inference_time: Histogram,
    /// `inferbench:mock_ttft_lag_seconds`: how late first tokens left the mock (its own overhead).
    pub ttft_lag: Histogram,
    /// `vllm:prompt_tokens_total`.
    pub prompt_tokens: Counter,
    /// `vllm:generation_tokens_total`.
    pub generation_tokens: Counter,
    /// `vllm:prefix_cache_queries_total` (prompt tokens looked up).
    pub prefix_queries: Counter,
    /// `vllm:prefix_cache_hits_total` (prompt tokens found).
    pub prefix_hits: Counter,
    success_length: Counter,
    success_stop: Counter,
    success_abort: Counter,
}

const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const REQUEST_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

impl Metrics {
    /// Metrics for an instance serving `model` with the given cache geometry and LoRA slots.
    pub fn new(model: &str, block_size: usize, num_gpu_blocks: usize) -> Self {
        Self::with_max_loras(model, block_size, num_gpu_blocks, 0)
    }

    /// As [`Metrics::new`], with `max_loras` for `vllm:lora_requests_info`.
    pub fn with_max_loras(
        model: &str,
        block_size: usize,
        num_gpu_blocks: usize,
        max_loras: usize,
    ) -> Self {
        let mut registry = Registry::default();
        // The standard process_* metrics (of the whole process: every instance shows the same).
        registry.register_collector(Box::new(
            inferbench_resources::prometheus::ProcessCollector::new(),
        ));
        let cache_info = Family::<CacheLabels, Gauge>::default();
        cache_info
            .get_or_create(&CacheLabels {
                block_size: block_size.to_string(),
                num_gpu_blocks: num_gpu_blocks.to_string(),
            })
            .set(1);
        registry.register(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            cache_info,
        );
        let lora_info = Family::<LoraLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "vllm:lora_requests_info",
            "Running stats on lora requests",
            lora_info.clone(),
        );

        let sub = registry
            .sub_registry_with_label((Cow::Borrowed("model_name"), Cow::Owned(model.to_string())));
        let waiting = Gauge::default();
        let running = Gauge::default();
        let kv_usage = Gauge::<f64, AtomicU64>::default();
        let gpu_cache_usage = Gauge::<f64, AtomicU64>::default();
        sub.register(
            "vllm:num_requests_running",
            "Number of requests in model execution batches",
            running.clone(),
        );
        sub.register(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed",
            waiting.clone(),
        );
        sub.register(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage",
            kv_usage.clone(),
        );
        sub.register(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage",
            gpu_cache_usage.clone(),
        );
        let hist = |b: &[f64]| Histogram::new(b.iter().copied());
        let ttft = hist(TTFT_BUCKETS);
        let itl = hist(ITL_BUCKETS);
        // The older name exposes the same observations: one histogram under two names.
        let tpot = itl.clone();
        let e2e = hist(REQUEST_BUCKETS);
        let queue_time = hist(REQUEST_BUCKETS);
        sub.register(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds",
            ttft.clone(),
        );
        sub.register(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds",
            itl.clone(),
        );
        sub.register(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds",
            tpot.clone(),
        );
        sub.register(
            "vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds",
            e2e.clone(),
        );
        sub.register(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request",
            queue_time.clone(),
        );
        let prefill_time = hist(REQUEST_BUCKETS);
        let decode_time = hist(REQUEST_BUCKETS);
        let inference_time = hist(REQUEST_BUCKETS);
        sub.register(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request",
            prefill_time.clone(),
        );
        sub.register(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request",
            decode_time.clone(),
        );
        sub.register(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request",
            inference_time.clone(),
        );
        let ttft_lag = Histogram::new([
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        ]);
        sub.register(
            "inferbench:mock_ttft_lag_seconds",
            "How late the mock sent first tokens compared with its simulated schedule",
            ttft_lag.clone(),
        );
        let prompt_tokens = Counter::default();
        let generation_tokens = Counter::default();
        let prefix_queries = Counter::default();
        let prefix_hits = Counter::default();
        sub.register(
            "vllm:prompt_tokens",
            "Number of prefill tokens processed",
            prompt_tokens.clone(),
        );
        sub.register(
            "vllm:generation_tokens",
            "Number of generation tokens processed",
            generation_tokens.clone(),
        );
        sub.register(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens",
            prefix_queries.clone(),
        );
        sub.register(
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens",
            prefix_hits.clone(),
        );
        let success = Family::<FinishLabels, Counter>::default();
        sub.register(
            "vllm:request_success",
            "Count of successfully processed requests",
            success.clone(),
        );
        let take =
            |r: &'static str| success.get_or_create_owned(&FinishLabels { finish_reason: r });
        let (success_length, success_stop, success_abort) =
            (take("length"), take("stop"), take("abort"));
        Self {
            registry,
            waiting,
            running,
            kv_usage,
            gpu_cache_usage,
            lora_info,
            lora_last: parking_lot::Mutex::new(None),
            max_loras,
            ttft,
            itl,
            tpot,
            e2e,
            queue_time,
            prefill_time,
            decode_time,
            inference_time,
            ttft_lag,
            prompt_tokens,
            generation_tokens,
            prefix_queries,
            prefix_hits,
            success_length,
            success_stop,
            success_abort,
        }
    }

    /// The success counter of one finish reason.
    pub fn success(&self, reason: FinishReason) -> &Counter {
        match reason {
            FinishReason::Length => &self.success_length,
            FinishReason::Stop => &self.success_stop,
            FinishReason::Abort => &self.success_abort,
        }
    }

    /// The exposition text in the Prometheus text format 0.0.4, with the gauges taken from `snap`.
    pub fn render(&self, snap: &Snapshot) -> String {
        self.render_as(snap, Format::Text004)
    }

    /// The exposition text in `format` (see [`Format::negotiate`]: OpenMetrics when a scraper
    /// asks for it, else text 0.0.4, as vLLM), with the gauges taken from `snap`.
    pub fn render_as(&self, snap: &Snapshot, format: Format) -> String {
        self.waiting.set(snap.waiting as i64);
        self.running.set(snap.running as i64);
        self.kv_usage.set(snap.kv_usage);
        self.gpu_cache_usage.set(snap.kv_usage);
        {
            // As vLLM: one series whose value is the time the adapter sets last changed.
            let mut last = self.lora_last.lock();
            let changed = match &*last {
                Some((r, w)) => r != &snap.running_loras || w != &snap.waiting_loras,
                None => true,
            };
            if changed {
                let now = inferbench_timer::unix_now().as_secs_f64();
                *last = Some((snap.running_loras.clone(), snap.waiting_loras.clone()));
                self.lora_info.clear();
                self.lora_info
                    .get_or_create(&LoraLabels {
                        running_lora_adapters: snap.running_loras.join(","),
                        waiting_lora_adapters: snap.waiting_loras.join(","),
                        max_lora: self.max_loras.to_string(),
                    })
                    .set(now);
            }
        }
        // Writing into a String cannot fail.
        inferbench_resources::prometheus::encode(&self.registry, format).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_vllm_names_and_types() {
        let m = Metrics::with_max_loras("llama", 16, 1000, 2);
        m.ttft.observe(0.05);
        m.prompt_tokens.inc_by(7);
        m.success(FinishReason::Length).inc();
        let snap = Snapshot {
            running: 3,
            waiting: 2,
            kv_used_blocks: 250,
            kv_usage: 0.25,
            running_loras: vec!["a".into(), "b".into()],
            waiting_loras: vec!["c".into()],
        };
        let text = m.render(&snap);
        for needle in [
            "# TYPE vllm:num_requests_waiting gauge",
            "vllm:num_requests_waiting{model_name=\"llama\"} 2",
            "vllm:num_requests_running{model_name=\"llama\"} 3",
            "vllm:kv_cache_usage_perc{model_name=\"llama\"} 0.25",
            "vllm:gpu_cache_usage_perc{model_name=\"llama\"} 0.25",
            "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\"} 1",
            "vllm:lora_requests_info{running_lora_adapters=\"a,b\",waiting_lora_adapters=\"c\",max_lora=\"2\"}",
            "# TYPE vllm:time_to_first_token_seconds histogram",
            "vllm:time_to_first_token_seconds_bucket{model_name=\"llama\",le=\"0.06\"} 1",
            "vllm:time_to_first_token_seconds_count{model_name=\"llama\"} 1",
            "vllm:inter_token_latency_seconds_count",
            "vllm:time_per_output_token_seconds_count",
            "vllm:e2e_request_latency_seconds_count",
            "vllm:request_queue_time_seconds_count",
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            "vllm:prompt_tokens_total{model_name=\"llama\"} 7",
            "# HELP vllm:generation_tokens_total ",
            "# HELP vllm:prefix_cache_queries_total ",
            "# HELP vllm:prefix_cache_hits_total ",
            "# HELP vllm:request_success_total ",
            "# TYPE process_cpu_seconds_total counter",
            "# TYPE process_resident_memory_bytes gauge",
            "vllm:generation_tokens_total",
            "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_hits_total",
            "vllm:request_success_total{model_name=\"llama\",finish_reason=\"length\"} 1",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in\n{text}");
        }
    }
}
