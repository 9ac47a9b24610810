//! The load generator's own live metrics (`run --metrics-listen ADDR`): Prometheus text on
//! `http://ADDR/metrics` while the run goes on — requests by scenario, outcome and error class,
//! requests in flight, TTFT, inter-token and end-to-end latency and dispatch lag as histograms,
//! output tokens, and the standard `process_*` of inferbench itself — so a dashboard shows the
//! client side beside the gateway's and the servers' figures as the run happens.
//!
//! Warm-up requests are counted with `phase="warmup"` and kept out of the latency histograms,
//! as they are kept out of the report.

use std::net::SocketAddr;
use std::sync::Arc;

use inferbench_loadgen::client::Outcome;
use inferbench_loadgen::engine::{Live, Observer};
use inferbench_loadgen::recorder::error_label;
use inferbench_resources::prometheus::{Format, ProcessCollector, encode};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

/// Buckets of time to first token and end-to-end latency, s: 1 ms to 5 min.
const LATENCY_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];
/// Buckets of the gaps between tokens, s: 0.5 ms to 2.5 s.
const ITL_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 2.5,
];
/// Buckets of dispatch lag (sent after planned), s: 10 µs to 1 s.
const LAG_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    scenario: String,
    /// `measured` or `warmup`.
    phase: &'static str,
    /// `ok` or the error class (`http_503/gateway`, `timeout_ttft/model_server`, …).
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabel {
    scenario: String,
}

/// The live metrics of one `inferbench run`.
#[derive(Debug)]
pub struct LiveMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    output_tokens: Family<ScenarioLabel, Counter>,
    in_flight: Gauge,
    ttft: Family<ScenarioLabel, Histogram>,
    itl: Family<ScenarioLabel, Histogram>,
    e2e: Family<ScenarioLabel, Histogram>,
    lag: Family<ScenarioLabel, Histogram>,
    /// The step running now: its in-flight count is read at each scrape.
    current: Mutex<Option<Arc<Live>>>,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveMetrics {
    /// Empty metrics, registered under `inferbench_`, with this process's `process_*`.
    pub fn new() -> Self {
        fn latency() -> Histogram {
            Histogram::new(LATENCY_BUCKETS)
        }
        fn itl() -> Histogram {
            Histogram::new(ITL_BUCKETS)
        }
        fn lag() -> Histogram {
            Histogram::new(LAG_BUCKETS)
        }
        let hist =
            |f: fn() -> Histogram| Family::<ScenarioLabel, Histogram>::new_with_constructor(f);
        let mut m = LiveMetrics {
            registry: Registry::default(),
            requests: Family::default(),
            output_tokens: Family::default(),
            in_flight: Gauge::default(),
            ttft: hist(latency),
            itl: hist(itl),
            e2e: hist(latency),
            lag: hist(lag),
            current: Mutex::new(None),
        };
        m.registry
            .register_collector(Box::new(ProcessCollector::new()));
        let r = m.registry.sub_registry_with_prefix("inferbench");
        r.register(
            "client_requests",
            "Requests finished, by scenario, phase (measured or warmup) and outcome (ok or the error class)",
            m.requests.clone(),
        );
        r.register(
            "client_output_tokens",
            "Output tokens received in measured requests that succeeded",
            m.output_tokens.clone(),
        );
        r.register(
            "client_requests_in_flight",
            "Requests sent and not yet finished",
            m.in_flight.clone(),
        );
        r.register(
            "client_ttft_seconds",
            "Time to first token of measured requests that succeeded",
            m.ttft.clone(),
        );
        r.register(
            "client_itl_seconds",
            "Gaps between token events of measured streaming requests that succeeded",
            m.itl.clone(),
        );
        r.register(
            "client_e2e_seconds",
            "End-to-end latency of measured requests that succeeded",
            m.e2e.clone(),
        );
        r.register(
            "client_dispatch_lag_seconds",
            "How late each request went out after its planned instant (the load generator's own lag)",
            m.lag.clone(),
        );
        m
    }

    /// The step running now has the live counters `live`: its in-flight count is the one
    /// served from now on.
    pub fn track(&self, live: &Arc<Live>) {
        *self.current.lock() = Some(live.clone());
    }

    /// The observer of the requests of one step of `scenario`.
    pub fn observer(self: &Arc<Self>, scenario: &str) -> Arc<dyn Observer> {
        Arc::new(StepObserver {
            metrics: self.clone(),
            scenario: ScenarioLabel {
                scenario: scenario.to_string(),
            },
        })
    }

    /// The exposition in `format`.
    pub fn render(&self, format: Format) -> String {
        let n = self.current.lock().as_ref().map_or(0, |l| {
            l.in_flight.load(std::sync::atomic::Ordering::Relaxed)
        });
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
        encode(&self.registry, format).unwrap_or_default()
    }

    /// Serves `/metrics` on `addr` until the process ends; returns the bound address.
    pub async fn serve(self: &Arc<Self>, addr: &str) -> Result<SocketAddr, String> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        let me = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let me = me.clone();
                async move {
                    let format = Format::negotiate(
                        headers
                            .get(axum::http::header::ACCEPT)
                            .and_then(|v| v.to_str().ok()),
                    );
                    (
                        [(axum::http::header::CONTENT_TYPE, format.content_type())],
                        me.render(format),
                    )
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(local)
    }
}

/// Records one step's requests under its scenario's label.
#[derive(Debug)]
struct StepObserver {
    metrics: Arc<LiveMetrics>,
    scenario: ScenarioLabel,
}

impl Observer for StepObserver {
    fn finished(&self, planned: Instant, _model: &str, o: &Outcome, warmup: bool) {
        let m = &self.metrics;
        let outcome = match &o.error {
            Some((kind, side)) => error_label(kind, *side),
            None => "ok".to_string(),
        };
        m.requests
            .get_or_create(&RequestLabels {
                scenario: self.scenario.scenario.clone(),
                phase: if warmup { "warmup" } else { "measured" },
                outcome,
            })
            .inc();
        if warmup {
            return;
        }
        let s = &self.scenario;
        m.lag
            .get_or_create(s)
            .observe(o.sent.saturating_duration_since(planned).as_secs_f64());
        // Latencies of successful requests only, as the report's.
        if o.error.is_some() {
            return;
        }
        m.e2e
            .get_or_create(s)
            .observe(o.end.saturating_duration_since(o.sent).as_secs_f64());
        if let Some(ft) = o.first_token {
            m.ttft
                .get_or_create(s)
                .observe(ft.saturating_duration_since(o.sent).as_secs_f64());
        }
        if o.token_events.len() > 1 {
            let itl = m.itl.get_or_create(s);
            for (gap, tokens) in o.itl_samples() {
                for _ in 0..tokens.min(10_000) {
                    itl.observe(gap.as_secs_f64());
                }
            }
        }
        m.output_tokens.get_or_create(s).inc_by(o.output_tokens());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_finished_request_shows_in_every_family() {
        let m = Arc::new(LiveMetrics::new());
        let live = Arc::new(Live::default());
        m.track(&live);
        let obs = m.observer("chat");
        let planned = Instant::now();
        let mut o = Outcome::new(planned + Duration::from_micros(300));
        o.first_token = Some(planned + Duration::from_millis(40));
        o.token_events = vec![
            planned + Duration::from_millis(40),
            planned + Duration::from_millis(45),
            planned + Duration::from_millis(50),
        ];
        o.end = planned + Duration::from_millis(50);
        o.status = Some(200);
        o.completion_tokens = Some(3);
        obs.finished(planned, "m", &o, false);
        obs.finished(planned, "m", &o, true);
        live.in_flight
            .store(7, std::sync::atomic::Ordering::Relaxed);
        let t = m.render(Format::Text004);
        for line in [
            "inferbench_client_requests_total{scenario=\"chat\",phase=\"measured\",outcome=\"ok\"} 1",
            "inferbench_client_requests_total{scenario=\"chat\",phase=\"warmup\",outcome=\"ok\"} 1",
            "inferbench_client_requests_in_flight 7",
            "inferbench_client_output_tokens_total{scenario=\"chat\"} 3",
            // 40 ms TTFT: in the 0.05 bucket, not the 0.025 one.
            "inferbench_client_ttft_seconds_bucket{le=\"0.025\",scenario=\"chat\"} 0",
            "inferbench_client_ttft_seconds_bucket{le=\"0.05\",scenario=\"chat\"} 1",
            // Two 5 ms gaps.
            "inferbench_client_itl_seconds_count{scenario=\"chat\"} 2",
            "inferbench_client_itl_seconds_bucket{le=\"0.005\",scenario=\"chat\"} 2",
            "inferbench_client_e2e_seconds_count{scenario=\"chat\"} 1",
            // 300 µs late.
            "inferbench_client_dispatch_lag_seconds_bucket{le=\"0.00025\",scenario=\"chat\"} 0",
            "inferbench_client_dispatch_lag_seconds_bucket{le=\"0.0005\",scenario=\"chat\"} 1",
            "# HELP inferbench_client_requests_total Requests finished",
            "process_cpu_seconds_total ",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
    }
}
