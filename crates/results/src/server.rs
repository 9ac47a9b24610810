//! The model servers' side of a window: what their own `/metrics` counted between its start and
//! its end (counter and histogram deltas, never lifetime totals, and gauges over the window),
//! and the decomposition of the client's time to first token into network and gateway, queue
//! and prefill.
//!
//! Histograms keep their bucket deltas, so windows (an arm's several, a scenario's stages) add
//! exactly; their means are exact (sum / count), their percentiles only as fine as the server's
//! buckets (interpolated inside a bucket, as PromQL's `histogram_quantile`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Widest bucket, as a share of its upper bound, a percentile is read from.
pub const FINE_BUCKET: f64 = 0.25;

/// Roles of server histograms: each a time per request (or per token, `itl`).
pub const HISTOGRAM_ROLES: [&str; 6] = ["queue", "prefill", "decode", "ttft", "itl", "e2e"];
/// Roles of server counters.
pub const COUNTER_ROLES: [&str; 8] = [
    "requests",
    "prompt_tokens",
    "generation_tokens",
    "prefix_hits",
    "prefix_queries",
    "prompt_seconds",
    "decode_seconds",
    "aborted",
];
/// Roles of server gauges.
pub const GAUGE_ROLES: [&str; 3] = ["running", "waiting", "kv_usage"];

/// A server histogram's change over a window, summed over every endpoint and label set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerHistogram {
    /// Observations in the window.
    pub count: f64,
    /// Sum of the observations, s.
    pub sum_s: f64,
    /// Cumulative count per finite upper bound `le` (s), ascending (`+Inf` is `count`).
    pub buckets: Vec<(f64, f64)>,
    /// Mean, ms (exact: sum / count).
    pub mean_ms: Option<f64>,
    /// Median, ms, interpolated inside its bucket.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms, interpolated inside its bucket.
    pub p90_ms: Option<f64>,
}

impl ServerHistogram {
    /// From cumulative `(le, count)` buckets (ascending; a `+Inf` one is dropped: it is
    /// `count`), `count` and `sum_s`.
    pub fn new(mut buckets: Vec<(f64, f64)>, count: f64, sum_s: f64) -> Self {
        buckets.retain(|(le, c)| le.is_finite() && c.is_finite());
        let mut h = ServerHistogram {
            count,
            sum_s,
            buckets,
            ..Default::default()
        };
        h.summarize();
        h
    }

    /// Recomputes the mean and percentiles from the counts.
    fn summarize(&mut self) {
        let ok = self.count > 0.0 && self.count.is_finite();
        self.mean_ms = ok.then(|| self.sum_s / self.count * 1000.0);
        self.p50_ms = self.fine_quantile(0.5).map(|s| s * 1000.0);
        self.p90_ms = self.fine_quantile(0.9).map(|s| s * 1000.0);
    }

    /// The `q` quantile when the server's buckets pin it down: the bucket it falls in is no
    /// wider than [`FINE_BUCKET`] of its upper bound (vLLM's request-time buckets start at
    /// 0.3 s: a 20 ms median inside them is not a figure).
    pub fn fine_quantile(&self, q: f64) -> Option<f64> {
        let v = self.quantile(q)?;
        let i = self.buckets.iter().position(|(le, _)| *le >= v)?;
        let lo = if i == 0 { 0.0 } else { self.buckets[i - 1].0 };
        let hi = self.buckets[i].0;
        (hi > 0.0 && (hi - lo) / hi <= FINE_BUCKET).then_some(v)
    }

    /// The `q` quantile, s: linear inside the bucket it falls in (from 0 for the first); the
    /// last finite bound when it falls in `+Inf`. `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 || !self.count.is_finite() {
            return None;
        }
        let rank = q * self.count;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank && c > prev.1 {
                let f = (rank - prev.1) / (c - prev.1);
                return Some(prev.0 + (le - prev.0) * f.clamp(0.0, 1.0));
            }
            prev = (le, c);
        }
        Some(prev.0)
    }

    /// Adds another window's change (same buckets; a bound only one side has is kept).
    pub fn add(&mut self, other: &ServerHistogram) {
        self.count += other.count;
        self.sum_s += other.sum_s;
        let mut merged: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for &(le, c) in self.buckets.iter().chain(&other.buckets) {
            let e = merged.entry(ordered(le)).or_insert((le, 0.0));
            e.1 += c;
        }
        self.buckets = merged.into_values().collect();
        self.summarize();
    }
}

/// A key that sorts `f64`s (bounds, all ≥ 0 or +Inf) in numeric order.
fn ordered(x: f64) -> u64 {
    x.to_bits()
}

/// A gauge over a window's samples, summed over endpoints (`kv_usage`: averaged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GaugeStats {
    /// Samples taken.
    pub samples: u64,
    /// Mean over the samples.
    pub mean: f64,
    /// Largest sample.
    pub max: f64,
}

impl GaugeStats {
    /// The statistics of `values` (non-finite ones left out); `None` without any.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<GaugeStats> {
        let (mut n, mut sum, mut max) = (0u64, 0.0, f64::MIN);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            n += 1;
            sum += v;
            max = max.max(v);
        }
        (n > 0).then(|| GaugeStats {
            samples: n,
            mean: sum / n as f64,
            max,
        })
    }

    /// Adds another window's samples.
    pub fn add(&mut self, o: &GaugeStats) {
        let n = self.samples + o.samples;
        if n > 0 {
            self.mean = (self.mean * self.samples as f64 + o.mean * o.samples as f64) / n as f64;
        }
        self.max = if self.samples == 0 {
            o.max
        } else if o.samples == 0 {
            self.max
        } else {
            self.max.max(o.max)
        };
        self.samples = n;
    }
}

/// Most points a [`ServerView::series`] keeps: beyond it neighbours are averaged in pairs, so a
/// run of any length stays this small.
pub const MAX_SERIES_POINTS: usize = 600;

/// The servers' gauges at one moment (one scrape, or the mean of neighbouring ones): what the
/// report draws over time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GaugePoint {
    /// When, Unix seconds.
    pub unix_s: f64,
    /// Requests running, summed over the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<f64>,
    /// Requests waiting, summed over the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<f64>,
    /// KV-cache use, 0–1, averaged over the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_usage: Option<f64>,
}

impl GaugePoint {
    /// The value of gauge `role` (`running`, `waiting`, `kv_usage`).
    pub fn get(&self, role: &str) -> Option<f64> {
        match role {
            "running" => self.running,
            "waiting" => self.waiting,
            "kv_usage" => self.kv_usage,
            _ => None,
        }
    }

    /// Sets gauge `role`.
    pub fn set(&mut self, role: &str, v: f64) {
        match role {
            "running" => self.running = Some(v),
            "waiting" => self.waiting = Some(v),
            "kv_usage" => self.kv_usage = Some(v),
            _ => {}
        }
    }

    /// The mean of two neighbours.
    fn mean(a: &GaugePoint, b: &GaugePoint) -> GaugePoint {
        let m = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => Some((x + y) / 2.0),
            (x, y) => x.or(y),
        };
        GaugePoint {
            unix_s: (a.unix_s + b.unix_s) / 2.0,
            running: m(a.running, b.running),
            waiting: m(a.waiting, b.waiting),
            kv_usage: m(a.kv_usage, b.kv_usage),
        }
    }
}

/// Sorts `points` by time, keeps one point per instant, and averages neighbours in pairs until
/// at most [`MAX_SERIES_POINTS`] remain.
pub fn thin_series(points: &mut Vec<GaugePoint>) {
    points.retain(|p| p.unix_s.is_finite());
    points.sort_by(|a, b| a.unix_s.total_cmp(&b.unix_s));
    points.dedup_by(|b, a| (a.unix_s - b.unix_s).abs() < 1e-6);
    while points.len() > MAX_SERIES_POINTS {
        *points = points
            .chunks(2)
            .map(|c| match c {
                [a, b] => GaugePoint::mean(a, b),
                [a] => *a,
                _ => GaugePoint::default(),
            })
            .collect();
    }
}

/// What the model servers counted over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerView {
    /// The metric names' family: `vllm`, `llamacpp`, `sglang` or `custom`.
    pub profile: String,
    /// The `/metrics` URLs scraped.
    pub endpoints: Vec<String>,
    /// Seconds the window covered.
    pub window_s: f64,
    /// Histogram changes by role (`queue`, `prefill`, `decode`, `ttft`, `itl`, `e2e`).
    #[serde(default)]
    pub histograms: BTreeMap<String, ServerHistogram>,
    /// Counter increases by role (`requests`, `prompt_tokens`, `generation_tokens`, …).
    #[serde(default)]
    pub counters: BTreeMap<String, f64>,
    /// Gauges by role (`running`, `waiting`, `kv_usage`).
    #[serde(default)]
    pub gauges: BTreeMap<String, GaugeStats>,
    /// The gauges over time, one point per scrape in the window (at most
    /// [`MAX_SERIES_POINTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<GaugePoint>,
}

impl ServerView {
    /// Adds another window of the same servers.
    pub fn add(&mut self, o: &ServerView) {
        self.window_s += o.window_s;
        for (k, h) in &o.histograms {
            self.histograms.entry(k.clone()).or_default().add(h);
        }
        for (k, v) in &o.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
        for (k, g) in &o.gauges {
            self.gauges.entry(k.clone()).or_default().add(g);
        }
        for e in &o.endpoints {
            if !self.endpoints.contains(e) {
                self.endpoints.push(e.clone());
            }
        }
        self.series.extend_from_slice(&o.series);
        thin_series(&mut self.series);
    }

    /// The histogram of `role`, if the servers have it and it saw anything.
    pub fn histogram(&self, role: &str) -> Option<&ServerHistogram> {
        self.histograms.get(role).filter(|h| h.count > 0.0)
    }

    /// Prefix-cache hit rate (hits / queries), when both are counted.
    pub fn prefix_hit_rate(&self) -> Option<f64> {
        let q = *self.counters.get("prefix_queries")?;
        let h = *self.counters.get("prefix_hits")?;
        (q > 0.0).then(|| h / q)
    }
}

/// The servers' own per-request timings (from answers that carry them: llama.cpp's `timings`,
/// vLLM's per-request `metrics`) as exact histograms, µs, with each request's residual: its
/// client TTFT minus the server's queue and prefill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestTimings {
    /// Successful requests whose answer carried a timing.
    pub requests: u64,
    /// Waiting in the server's queue (vLLM only).
    pub queue: crate::histogram::LatencyHistogram,
    /// Prompt processing to the first token.
    pub prefill: crate::histogram::LatencyHistogram,
    /// Client TTFT − queue − prefill, per request (clamped at 0).
    pub residual: crate::histogram::LatencyHistogram,
    /// Requests whose server time exceeded the client's TTFT (clock or rounding).
    pub negative_residuals: u64,
    /// Server decode time per generated token after the first.
    pub decode_per_token: crate::histogram::LatencyHistogram,
}

impl RequestTimings {
    /// Records one request: the client's TTFT, µs, and the server's queue, prefill and decode
    /// (ms) with its generated tokens.
    pub fn record(
        &mut self,
        client_ttft_us: u64,
        queue_ms: Option<f64>,
        prefill_ms: Option<f64>,
        decode_ms: Option<f64>,
        tokens: Option<u64>,
    ) {
        let Some(prefill_ms) = prefill_ms else {
            return;
        };
        let us = |ms: f64| (ms * 1000.0).round().max(0.0) as u64;
        self.requests += 1;
        if let Some(q) = queue_ms {
            self.queue.record(us(q));
        }
        self.prefill.record(us(prefill_ms));
        let server = us(prefill_ms + queue_ms.unwrap_or(0.0));
        if server > client_ttft_us {
            self.negative_residuals += 1;
        }
        self.residual.record(client_ttft_us.saturating_sub(server));
        if let (Some(d), Some(n)) = (decode_ms, tokens)
            && n > 1
        {
            self.decode_per_token.record(us(d / (n - 1) as f64));
        }
    }

    /// Adds another record.
    pub fn merge(&mut self, o: &RequestTimings) {
        self.requests += o.requests;
        self.queue.merge(&o.queue);
        self.prefill.merge(&o.prefill);
        self.residual.merge(&o.residual);
        self.negative_residuals += o.negative_residuals;
        self.decode_per_token.merge(&o.decode_per_token);
    }
}

/// One part of the time to first token, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Part {
    /// Mean (exact for server parts: their sum / count).
    pub mean_ms: f64,
    /// Median (server parts: as fine as their buckets).
    pub p50_ms: Option<f64>,
    /// 90th percentile (server parts: as fine as their buckets).
    pub p90_ms: Option<f64>,
}

/// The client's time to first token split into where it went.
///
/// `client_ttft = network_gateway + queue + prefill`, exactly at the mean; at p50 and p90 each
/// part is its own percentile (percentiles do not add), the residual the client's percentile
/// minus the server's TTFT percentile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decomposition {
    /// What the client measured.
    pub client_ttft: Part,
    /// What the servers measured, arrival to first token.
    pub server_ttft: Option<Part>,
    /// Waiting in the servers' queues.
    pub queue: Option<Part>,
    /// Scheduled to first token (prompt processing and the first decode step).
    pub prefill: Option<Part>,
    /// Server time to first token neither queue nor prefill (vLLM times its TTFT from
    /// arrival: request processing before the queue, tokenization), mean only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_other: Option<Part>,
    /// The rest: client to server and back, the gateway, HTTP and streaming (client − server).
    pub network_gateway: Option<Part>,
    /// Server decode time per generated token after the first, ms.
    pub decode_per_token_ms: Option<f64>,
    /// Requests the servers finished in the window.
    pub server_requests: Option<f64>,
    /// Requests the client measured in the window.
    pub client_requests: u64,
    /// Tokens the servers generated in the window.
    pub server_generation_tokens: Option<f64>,
    /// Output tokens the client counted.
    pub client_output_tokens: u64,
    /// Prompt tokens the servers processed in the window.
    pub server_prompt_tokens: Option<f64>,
    /// Prompt tokens the client was told of (`usage`).
    pub client_input_tokens: u64,
    /// Requests whose answers carried the server's own timing: when set, prefill, queue and the
    /// residual are per request, exact at every percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_requests: Option<u64>,
    /// Why a figure should not be trusted as it stands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Decomposition {
    /// Mean decode time of a request after its first token, ms: the servers' time per token
    /// after the first times the tokens after the first per request (the servers' counts where
    /// they gave them, else the client's). With the TTFT parts it makes the end-to-end bar.
    pub fn decode_mean_ms(&self) -> Option<f64> {
        let per_token = self.decode_per_token_ms?;
        let (tokens, requests) = match (self.server_generation_tokens, self.server_requests) {
            (Some(t), Some(n)) if n > 0.0 => (t, n),
            _ => (
                self.client_output_tokens as f64,
                self.client_requests as f64,
            ),
        };
        (requests > 0.0).then(|| per_token * (tokens / requests - 1.0).max(0.0))
    }
}

/// Replaces the parts the servers' per-request timings know, exactly at every percentile: the
/// prefill, the queue (when timed), and the residual per request.
pub fn apply_request_timings(d: &mut Decomposition, t: &RequestTimings, client: Part) {
    use crate::histogram::LatencyHistogram;
    let part = |h: &LatencyHistogram| {
        let s = h.summary();
        (h.count() > 0).then(|| Part {
            mean_ms: s.mean_us / 1000.0,
            p50_ms: Some(s.p50_us as f64 / 1000.0),
            p90_ms: Some(s.p90_us as f64 / 1000.0),
        })
    };
    if let Some(p) = part(&t.prefill) {
        d.prefill = Some(p);
    }
    if let Some(q) = part(&t.queue) {
        d.queue = Some(q);
    }
    if let Some(r) = part(&t.residual) {
        d.network_gateway = Some(r);
        // Per request, the residual is client − queue − prefill: nothing else is left over.
        d.server_other = None;
        // The server's part, per request: what the client saw minus the residual.
        d.server_ttft = Some(Part {
            mean_ms: client.mean_ms - r.mean_ms,
            p50_ms: None,
            p90_ms: None,
        });
    }
    if let Some(p) = part(&t.decode_per_token) {
        d.decode_per_token_ms = Some(p.mean_ms);
    }
    d.timed_requests = Some(t.requests);
    if t.negative_residuals > 0 {
        d.warnings.push(format!(
            "{} of {} requests: the server's own time exceeded the client's TTFT (clocks or rounding)",
            t.negative_residuals, t.requests
        ));
    }
}

fn part_of(h: &ServerHistogram) -> Option<Part> {
    Some(Part {
        mean_ms: h.mean_ms?,
        p50_ms: h.p50_ms,
        p90_ms: h.p90_ms,
    })
}

/// The decomposition of a client TTFT (`client`: mean, p50, p90 in ms; `requests` measured,
/// `ok` of them successful) against the servers' view `v`.
pub fn decompose(
    v: &ServerView,
    client: Part,
    requests: u64,
    output_tokens: u64,
    input_tokens: u64,
) -> Decomposition {
    let queue = v.histogram("queue").and_then(part_of);
    let prefill = v.histogram("prefill").and_then(part_of);
    let mut server_ttft = v.histogram("ttft").and_then(part_of);
    // llama.cpp has no per-request histograms: its prompt seconds per request stand for prefill.
    let server_requests = v
        .counters
        .get("requests")
        .copied()
        .or_else(|| v.histogram("e2e").map(|h| h.count))
        .or_else(|| v.histogram("ttft").map(|h| h.count));
    let prefill = prefill.or_else(|| {
        let secs = *v.counters.get("prompt_seconds")?;
        let n = server_requests.unwrap_or(requests as f64);
        (n > 0.0).then(|| Part {
            mean_ms: secs / n * 1000.0,
            p50_ms: None,
            p90_ms: None,
        })
    });
    if server_ttft.is_none()
        && let (Some(q), Some(p)) = (queue, prefill)
    {
        server_ttft = Some(Part {
            mean_ms: q.mean_ms + p.mean_ms,
            p50_ms: None,
            p90_ms: None,
        });
    }
    if server_ttft.is_none() {
        server_ttft = prefill;
    }
    // SGLang times its queue and TTFT but not prefill: the difference is.
    let prefill = prefill.or_else(|| {
        let (s, q) = (server_ttft?, queue?);
        Some(Part {
            mean_ms: (s.mean_ms - q.mean_ms).max(0.0),
            p50_ms: None,
            p90_ms: None,
        })
    });
    // What the server's TTFT holds beyond queue and prefill, so the parts add up.
    let server_other = match (server_ttft, queue, prefill) {
        (Some(s), q, Some(p)) => {
            let rest = s.mean_ms - q.map_or(0.0, |q| q.mean_ms) - p.mean_ms;
            (rest > 0.001).then_some(Part {
                mean_ms: rest,
                p50_ms: None,
                p90_ms: None,
            })
        }
        _ => None,
    };
    let network_gateway = server_ttft.map(|s| Part {
        mean_ms: client.mean_ms - s.mean_ms,
        p50_ms: client.p50_ms.zip(s.p50_ms).map(|(c, s)| c - s),
        p90_ms: client.p90_ms.zip(s.p90_ms).map(|(c, s)| c - s),
    });
    let generation = v.counters.get("generation_tokens").copied();
    let decode_per_token_ms = match (v.histogram("decode"), generation, server_requests) {
        (Some(d), Some(g), Some(n)) if g - n > 0.0 => Some(d.sum_s / (g - n) * 1000.0),
        _ => v
            .counters
            .get("decode_seconds")
            .zip(generation)
            .filter(|(_, g)| *g > 0.0)
            .map(|(s, g)| s / g * 1000.0),
    };
    let mut warnings = Vec::new();
    if let Some(r) = network_gateway
        && r.mean_ms < -(0.1f64).max(0.02 * client.mean_ms)
    {
        warnings.push(format!(
            "the servers' time to first token ({:.3} ms) exceeds the client's ({:.3} ms): the windows do not line up, or other clients share the servers",
            r.mean_ms.abs() + client.mean_ms,
            client.mean_ms
        ));
    }
    if let Some(n) = server_requests {
        let c = requests as f64;
        if (n - c).abs() > 2.0 + 0.05 * c {
            warnings.push(format!(
                "the servers finished {n:.0} requests in the window, the client measured {c:.0} (by planned instant): requests in flight across the window's edge (a queue draining into the next stage), or other clients on the servers"
            ));
        }
    }
    Decomposition {
        client_ttft: client,
        server_ttft,
        queue,
        prefill,
        server_other,
        network_gateway,
        decode_per_token_ms,
        server_requests,
        client_requests: requests,
        server_generation_tokens: generation,
        client_output_tokens: output_tokens,
        server_prompt_tokens: v.counters.get("prompt_tokens").copied(),
        client_input_tokens: input_tokens,
        timed_requests: None,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(obs: &[f64], bounds: &[f64]) -> ServerHistogram {
        let mut b: Vec<(f64, f64)> = bounds
            .iter()
            .map(|&le| (le, obs.iter().filter(|&&x| x <= le).count() as f64))
            .collect();
        b.push((f64::INFINITY, obs.len() as f64));
        ServerHistogram::new(b, obs.len() as f64, obs.iter().sum())
    }

    #[test]
    fn quantiles_interpolate_inside_buckets_and_means_are_exact() {
        let h = hist(&[0.01, 0.02, 0.03, 0.04], &[0.025, 0.05, 0.1]);
        assert!((h.mean_ms.unwrap() - 25.0).abs() < 1e-9);
        // Rank 2 of 4 is the top of the first bucket.
        assert!((h.quantile(0.5).unwrap() - 0.025).abs() < 1e-12);
        // Rank 3.6: 80% of the way through (0.025, 0.05].
        assert!((h.quantile(0.9).unwrap() - 0.045).abs() < 1e-12);
        assert_eq!(ServerHistogram::default().quantile(0.5), None);
        // All in +Inf: the last finite bound.
        let h = hist(&[5.0], &[0.1]);
        assert_eq!(h.quantile(0.5), Some(0.1));
        // Coarse buckets give no percentile; fine ones do.
        let coarse = hist(&[0.02, 0.02], &[0.3, 0.5]);
        assert_eq!((coarse.p50_ms, coarse.fine_quantile(0.5)), (None, None));
        let fine = hist(&[0.0205, 0.0205], &[0.019, 0.020, 0.021, 0.022]);
        assert!((fine.p50_ms.unwrap() - 20.5).abs() < 1e-9, "{fine:?}");
    }

    #[test]
    fn windows_add_exactly() {
        let bounds = [0.01, 0.1, 1.0];
        let (a, b) = ([0.005, 0.05], [0.5, 0.05, 0.002]);
        let mut h = hist(&a, &bounds);
        h.add(&hist(&b, &bounds));
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        assert_eq!(h, hist(&all, &bounds));
        let mut g = GaugeStats {
            samples: 2,
            mean: 1.0,
            max: 2.0,
        };
        g.add(&GaugeStats {
            samples: 2,
            mean: 3.0,
            max: 4.0,
        });
        assert_eq!((g.samples, g.mean, g.max), (4, 2.0, 4.0));
    }

    #[test]
    fn the_residual_is_client_minus_server_at_the_mean() {
        let b = [0.001, 0.01, 0.1, 1.0];
        let mut v = ServerView::default();
        v.histograms.insert("queue".into(), hist(&[0.0, 0.0], &b));
        v.histograms
            .insert("prefill".into(), hist(&[0.05, 0.05], &b));
        v.histograms.insert("ttft".into(), hist(&[0.05, 0.05], &b));
        v.counters.insert("requests".into(), 2.0);
        let client = Part {
            mean_ms: 50.3,
            p50_ms: Some(50.3),
            p90_ms: Some(50.4),
        };
        let d = decompose(&v, client, 2, 10, 20);
        assert!((d.network_gateway.unwrap().mean_ms - 0.3).abs() < 1e-9);
        assert_eq!(d.queue.unwrap().mean_ms, 0.0);
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        // The servers saw more than the client: said.
        v.counters.insert("requests".into(), 50.0);
        let d = decompose(&v, client, 2, 10, 20);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        // A server TTFT above the client's: said.
        let d = decompose(
            &v,
            Part {
                mean_ms: 40.0,
                ..client
            },
            50,
            10,
            20,
        );
        assert!(d.warnings[0].contains("exceeds"), "{:?}", d.warnings);
    }

    #[test]
    fn llamacpp_prompt_seconds_stand_for_prefill() {
        let mut v = ServerView::default();
        v.counters.insert("prompt_seconds".into(), 0.2);
        v.counters.insert("decode_seconds".into(), 1.0);
        v.counters.insert("generation_tokens".into(), 100.0);
        let client = Part {
            mean_ms: 25.0,
            p50_ms: None,
            p90_ms: None,
        };
        let d = decompose(&v, client, 10, 100, 0);
        assert!((d.prefill.unwrap().mean_ms - 20.0).abs() < 1e-9);
        assert!((d.network_gateway.unwrap().mean_ms - 5.0).abs() < 1e-9);
        assert!((d.decode_per_token_ms.unwrap() - 10.0).abs() < 1e-9);
        // No server request count: the client's 10 requests of 10 tokens, 9 decoded each.
        assert!((d.decode_mean_ms().unwrap() - 90.0).abs() < 1e-9);
    }

    #[test]
    fn series_add_in_time_order_and_stay_bounded() {
        let pt = |t: f64, r: f64| GaugePoint {
            unix_s: t,
            running: Some(r),
            ..Default::default()
        };
        let mut a = ServerView {
            series: vec![pt(1.0, 1.0), pt(2.0, 2.0)],
            ..Default::default()
        };
        // A later window sharing its first scrape with this one's last: kept once.
        let b = ServerView {
            series: vec![pt(2.0, 2.0), pt(3.0, 4.0), pt(0.5, 0.0)],
            ..Default::default()
        };
        a.add(&b);
        let ts: Vec<f64> = a.series.iter().map(|p| p.unix_s).collect();
        assert_eq!(ts, [0.5, 1.0, 2.0, 3.0]);
        // A day of scrapes every second: at most MAX_SERIES_POINTS, means kept.
        let mut long: Vec<GaugePoint> = (0..86_400).map(|i| pt(i as f64, 10.0)).collect();
        long.push(GaugePoint {
            unix_s: f64::NAN,
            ..Default::default()
        });
        thin_series(&mut long);
        assert!(long.len() <= MAX_SERIES_POINTS && long.len() > MAX_SERIES_POINTS / 2);
        assert!(long.iter().all(|p| p.running == Some(10.0)));
        assert!(long.windows(2).all(|w| w[0].unix_s < w[1].unix_s));
        // A gauge one point lacks is the other's.
        let m = GaugePoint::mean(&pt(0.0, 4.0), &GaugePoint::default());
        assert_eq!(m.running, Some(4.0));
    }

    #[test]
    fn a_requests_decode_is_its_tokens_after_the_first() {
        let d = Decomposition {
            decode_per_token_ms: Some(2.0),
            server_generation_tokens: Some(300.0),
            server_requests: Some(10.0),
            client_output_tokens: 1,
            client_requests: 1,
            ..Default::default()
        };
        // The servers' counts win: 30 tokens a request, 29 after the first.
        assert!((d.decode_mean_ms().unwrap() - 58.0).abs() < 1e-9);
        let none = Decomposition {
            decode_per_token_ms: Some(2.0),
            ..Default::default()
        };
        assert_eq!(none.decode_mean_ms(), None);
        let one_token = Decomposition {
            decode_per_token_ms: Some(2.0),
            client_output_tokens: 5,
            client_requests: 5,
            ..Default::default()
        };
        assert_eq!(one_token.decode_mean_ms(), Some(0.0));
    }
}
