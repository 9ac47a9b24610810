//! The result of one run: a versioned, serializable record whose histograms merge exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histogram::LatencyHistogram;

/// The schema version written into every report; readers refuse others.
pub const SCHEMA_VERSION: u32 = 3;

/// The oldest schema version still read: version 2 had no completions-in-window counts (its
/// throughput counted requests planned in the window); they are filled from `ok` on reading.
pub const OLDEST_SCHEMA_VERSION: u32 = 2;

/// Latency histograms of one group of requests, µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Latencies {
    /// Time to first token, from the actual send.
    pub ttft: LatencyHistogram,
    /// Time to first token, from the planned send instant (corrected for coordinated omission).
    pub ttft_from_planned: LatencyHistogram,
    /// Gap between two token events of one stream.
    pub itl: LatencyHistogram,
    /// Time per output token: (e2e − TTFT) / (output tokens − 1).
    pub tpot: LatencyHistogram,
    /// End to end, from the actual send.
    pub e2e: LatencyHistogram,
    /// End to end, from the planned send instant.
    pub e2e_from_planned: LatencyHistogram,
    /// Time to the response headers.
    pub ttfb: LatencyHistogram,
    /// Time to the first *answer* token (not reasoning): equal to TTFT for models that do not
    /// reason aloud; later for those that stream `reasoning_content` first.
    #[serde(default)]
    pub ttft_answer: LatencyHistogram,
}

impl Latencies {
    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.ttft.merge(&other.ttft);
        self.ttft_from_planned.merge(&other.ttft_from_planned);
        self.itl.merge(&other.itl);
        self.tpot.merge(&other.tpot);
        self.e2e.merge(&other.e2e);
        self.e2e_from_planned.merge(&other.e2e_from_planned);
        self.ttfb.merge(&other.ttfb);
        self.ttft_answer.merge(&other.ttft_answer);
    }
}

/// Counts of one group of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    /// Requests that completed (recorded, after warm-up).
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed, by `kind/side` (e.g. `http_503/model_server`).
    pub errors: BTreeMap<String, u64>,
    /// Prompt tokens of successful requests (the server's count).
    pub input_tokens: u64,
    /// Output tokens of successful requests (the server's count when given).
    pub output_tokens: u64,
    /// Prompt tokens served from a prefix cache.
    pub cached_tokens: u64,
    /// Successful requests that met every per-request SLO limit (goodput); 0 without SLOs.
    #[serde(default)]
    pub good: u64,
    /// Requests sent but neither answered nor failed when the run was stopped (Ctrl-C, SIGTERM,
    /// a stop condition): `sent = warm-up + requests + interrupted`. Not in `requests`.
    #[serde(default)]
    pub interrupted: u64,
    /// Successful requests that *completed* inside the measured window (throughput counts these:
    /// past capacity, completions fall behind the offered rate).
    #[serde(default)]
    pub ok_in_window: u64,
    /// Output tokens of the requests in `ok_in_window`.
    #[serde(default)]
    pub output_tokens_in_window: u64,
}

impl Counts {
    /// Adds `other`.
    pub fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_tokens += other.cached_tokens;
        self.good += other.good;
        self.interrupted += other.interrupted;
        self.ok_in_window += other.ok_in_window;
        self.output_tokens_in_window = self
            .output_tokens_in_window
            .saturating_add(other.output_tokens_in_window);
    }

    /// Failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Failed requests as a fraction of requests (0 with none).
    pub fn error_fraction(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failed() as f64 / self.requests as f64
        }
    }
}

/// Per-request limits of a service-level objective: a request that succeeds within all of them
/// counts toward goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SloLimits {
    /// Most time to first token, µs.
    pub ttft_us: Option<u64>,
    /// Most time per output token, µs.
    pub tpot_us: Option<u64>,
    /// Most end-to-end time, µs.
    pub e2e_us: Option<u64>,
}

/// One group: counts and latencies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    /// Counts.
    pub counts: Counts,
    /// Latencies of successful requests.
    pub latency: Latencies,
}

impl Group {
    /// Adds `other`.
    pub fn merge(&mut self, other: &Group) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
    }
}

/// The load generator's own health: did it keep up?
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientHealth {
    /// Actual send minus planned send, µs.
    pub dispatch_lag: LatencyHistogram,
    /// Most requests in flight at once.
    pub peak_in_flight: u64,
    /// Planned arrivals not sent because the in-flight cap was reached.
    pub dropped: u64,
    /// Requests sent more than 1 ms after their planned instant.
    #[serde(default)]
    pub late: u64,
    /// Client process CPU seconds over the whole run (warm-up included).
    pub cpu_seconds: f64,
    /// Requests sent over the whole run (warm-up included): `cpu_seconds` is spent on these.
    #[serde(default)]
    pub sent: u64,
    /// Retries made (each failed attempt that was tried again); counted apart from requests.
    #[serde(default)]
    pub retries: u64,
    /// Requests sent again on a fresh connection because a reused keep-alive connection failed
    /// before any response byte (the server had closed it: it never saw the request).
    #[serde(default)]
    pub reconnects: u64,
    /// Requests sent but not finished when the run stopped (see `Counts::interrupted`),
    /// warm-up included.
    #[serde(default)]
    pub interrupted: u64,
    /// Request-log lines dropped because the disk could not keep up or a write failed.
    #[serde(default)]
    pub log_dropped: u64,
    /// The request-log writer's first error, if any (the log is incomplete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}

impl ClientHealth {
    /// Client CPU seconds per 1,000 requests sent.
    pub fn cpu_s_per_1000(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.cpu_seconds * 1000.0 / self.sent as f64
        }
    }
}

/// The error label of a request served by another model than the one it asked for (the routing
/// layer sent it to the wrong pool): kind `misrouted`, blamed on the gateway.
pub const MISROUTED: &str = "misrouted/gateway";

/// Most buckets a [`Timeline`] keeps; past them, neighbours merge and the bucket width doubles.
pub const MAX_TIME_BUCKETS: usize = 120;

/// What happened over time during the measured part of a run, in equal buckets: latency over
/// time, throughput over time, errors over time. Bounded: at most [`MAX_TIME_BUCKETS`] buckets
/// (the width starts at one second and doubles as the run grows), each with coarse histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timeline {
    /// Width of one bucket, seconds.
    pub bucket_s: f64,
    /// Buckets from the end of warm-up on; bucket `i` covers `[i, i+1) × bucket_s`.
    pub buckets: Vec<TimeBucket>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            bucket_s: 1.0,
            buckets: Vec::new(),
        }
    }
}

/// One bucket of a [`Timeline`]: requests by their planned send instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeBucket {
    /// Requests planned in this bucket that completed.
    pub requests: u64,
    /// Of which succeeded.
    pub ok: u64,
    /// Of which failed.
    pub errors: u64,
    /// Output tokens of the successful ones.
    pub output_tokens: u64,
    /// Time to first token of the successful ones (2 significant digits).
    pub ttft: LatencyHistogram,
    /// End to end of the successful ones (2 significant digits).
    pub e2e: LatencyHistogram,
}

impl TimeBucket {
    fn coarse() -> Self {
        TimeBucket {
            ttft: LatencyHistogram::coarse(),
            e2e: LatencyHistogram::coarse(),
            ..Default::default()
        }
    }

    fn merge(&mut self, other: &TimeBucket) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.errors += other.errors;
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.ttft.merge(&other.ttft);
        self.e2e.merge(&other.e2e);
    }
}

impl Timeline {
    /// The bucket for a request planned `at_s` seconds after the end of warm-up, widening the
    /// buckets first when it lies beyond the last one.
    pub fn bucket_at(&mut self, at_s: f64) -> &mut TimeBucket {
        let at_s = at_s.max(0.0);
        while at_s / self.bucket_s >= MAX_TIME_BUCKETS as f64 {
            self.widen();
        }
        let i = (at_s / self.bucket_s) as usize;
        while self.buckets.len() <= i {
            self.buckets.push(TimeBucket::coarse());
        }
        &mut self.buckets[i]
    }

    /// Doubles the bucket width, merging neighbours.
    fn widen(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        for pair in old.chunks(2) {
            let mut b = pair[0].clone();
            if let Some(second) = pair.get(1) {
                b.merge(second);
            }
            self.buckets.push(b);
        }
        self.bucket_s *= 2.0;
    }

    /// Adds another timeline of the same run's clock (a shard): buckets align after widening
    /// the finer one.
    pub fn merge(&mut self, other: &Timeline) {
        self.merge_at(other, 0.0);
    }

    /// Adds a timeline that started `offset_s` seconds after this one (the next step of a
    /// sweep, the next window of an arm); a bucket lands where its start falls.
    pub fn merge_at(&mut self, other: &Timeline, offset_s: f64) {
        let mut other = other.clone();
        while other.bucket_s < self.bucket_s && !other.buckets.is_empty() {
            other.widen();
        }
        while self.bucket_s < other.bucket_s {
            self.widen();
        }
        for (i, b) in other.buckets.iter().enumerate() {
            let at = offset_s + i as f64 * other.bucket_s;
            self.bucket_at(at).merge(b);
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// inferbench's version.
    pub tool_version: String,
    /// Unix time the run started, seconds.
    pub started_unix_s: u64,
    /// Measured seconds (after warm-up).
    pub duration_s: f64,
    /// Target URL (never credentials).
    pub target: String,
    /// The load as asked (`rate 10/s poisson`, `concurrency 8`).
    pub load: String,
    /// Requests per second asked for (open loop).
    pub target_rate: Option<f64>,
    /// True when the run was cut short (Ctrl-C, error).
    pub partial: bool,
    /// Everything.
    pub total: Group,
    /// By model asked for.
    pub by_model: BTreeMap<String, Group>,
    /// By endpoint that served.
    pub by_endpoint: BTreeMap<String, Group>,
    /// Requests whose answer named another model than the one asked for.
    pub misrouted: u64,
    /// The client's own health.
    pub client: ClientHealth,
    /// Warnings for the reader (e.g. the client could not keep up).
    pub warnings: Vec<String>,
    /// Latency, throughput and errors over time (absent from reports written before it).
    #[serde(default)]
    pub timeline: Timeline,
    /// What watched processes (`--watch-process`: a gateway, a router, a server) cost over this
    /// run's measured window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessUsage>,
    /// Resource series read from Prometheus (`--prometheus`) over this run's measured window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus: Vec<PromSeries>,
    /// The measured windows this result covers, Unix seconds `[from, to]` (one per engine run:
    /// a routing arm has one per window), for reading other sources over exactly them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<[f64; 2]>,
    /// What the model servers' own `/metrics` counted over the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::server::ServerView>,
    /// The servers' own per-request timings, from answers that carried them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timing: Option<crate::server::RequestTimings>,
    /// The client's time to first token split into network and gateway, queue and prefill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decomposition: Option<crate::server::Decomposition>,
}

/// One series of a Prometheus query over a measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PromSeries {
    /// The query's name (`metricName`).
    pub metric: String,
    /// The series' labels, `name=value` joined by `,`.
    pub labels: String,
    /// Seconds of the window.
    pub window_s: f64,
    /// A counter's increase over the window (CPU seconds for a CPU counter).
    pub increase: Option<f64>,
    /// A gauge's mean over the window; a counter's mean rate (cores for a CPU counter).
    pub mean: Option<f64>,
    /// A gauge's maximum over the window.
    pub max: Option<f64>,
}

impl PromSeries {
    /// Adds another window of the same series: increases add, the mean is weighted by time,
    /// the maximum is the larger.
    pub fn add(&mut self, other: &PromSeries) {
        let w = self.window_s + other.window_s;
        self.mean = match (self.mean, other.mean) {
            (Some(a), Some(b)) if w > 0.0 => Some((a * self.window_s + b * other.window_s) / w),
            (a, b) => a.or(b),
        };
        self.increase = match (self.increase, other.increase) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.window_s = w;
    }
}

/// What one watched process cost over a measured window: CPU and resident memory, sampled from
/// `/proc` every second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessUsage {
    /// The name it was watched under.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Samples inside the window.
    pub samples: u64,
    /// Seconds of the window the CPU figure covers.
    pub window_s: f64,
    /// CPU seconds (user + system) used in the window.
    pub cpu_s: f64,
    /// Largest resident memory seen in the window, MB.
    pub peak_rss_mb: f64,
    /// Mean resident memory over the window's samples, MB.
    pub mean_rss_mb: f64,
}

impl ProcessUsage {
    /// Mean CPU cores busy over the window.
    pub fn mean_cores(&self) -> f64 {
        if self.window_s > 0.0 {
            self.cpu_s / self.window_s
        } else {
            0.0
        }
    }

    /// CPU seconds per 1,000 of `requests` (`None` without requests).
    pub fn cpu_per_1000(&self, requests: u64) -> Option<f64> {
        (requests > 0).then(|| self.cpu_s * 1000.0 / requests as f64)
    }

    /// Adds another window of the same process (the next window of an arm, the next step).
    pub fn add(&mut self, other: &ProcessUsage) {
        let n = self.samples + other.samples;
        if n > 0 {
            self.mean_rss_mb = (self.mean_rss_mb * self.samples as f64
                + other.mean_rss_mb * other.samples as f64)
                / n as f64;
        }
        self.samples = n;
        self.window_s += other.window_s;
        self.cpu_s += other.cpu_s;
        self.peak_rss_mb = self.peak_rss_mb.max(other.peak_rss_mb);
    }
}

/// A report that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// Not JSON of this schema.
    #[error("not an inferbench report: {0}")]
    Parse(String),
    /// Another schema version.
    #[error(
        "report schema version {found} is not supported (this inferbench reads version {SCHEMA_VERSION})"
    )]
    Version {
        /// The version in the file.
        found: u64,
    },
}

/// Parses JSON whose `schema_version` must be [`SCHEMA_VERSION`].
pub(crate) fn from_versioned_json<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, ResultError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ResultError::Parse(e.to_string()))?;
    let found = v
        .get("schema_version")
        .and_then(|x| x.as_u64())
        .unwrap_or(0);
    if found < u64::from(OLDEST_SCHEMA_VERSION) || found > u64::from(SCHEMA_VERSION) {
        return Err(ResultError::Version { found });
    }
    let mut v = v;
    if found < 3 {
        migrate_counts_v2(&mut v);
        v["schema_version"] = SCHEMA_VERSION.into();
    }
    serde_json::from_value(v).map_err(|e| ResultError::Parse(e.to_string()))
}

/// Version 2 → 3: every `Counts` object gains `ok_in_window` = `ok` and
/// `output_tokens_in_window` = `output_tokens` (what version 2's throughput counted).
fn migrate_counts_v2(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if m.contains_key("ok") && m.contains_key("errors") && !m.contains_key("ok_in_window") {
                let ok = m.get("ok").cloned().unwrap_or(0.into());
                let tokens = m.get("output_tokens").cloned().unwrap_or(0.into());
                m.insert("ok_in_window".into(), ok);
                m.insert("output_tokens_in_window".into(), tokens);
            }
            for x in m.values_mut() {
                migrate_counts_v2(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(migrate_counts_v2),
        _ => {}
    }
}

impl RunResult {
    /// A result with nothing recorded yet.
    pub fn empty(target: &str, load: &str) -> Self {
        RunResult {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix_s: 0,
            duration_s: 0.0,
            target: target.to_string(),
            load: load.to_string(),
            target_rate: None,
            partial: false,
            total: Group::default(),
            by_model: BTreeMap::new(),
            by_endpoint: BTreeMap::new(),
            misrouted: 0,
            client: ClientHealth::default(),
            warnings: Vec::new(),
            timeline: Timeline::default(),
            processes: Vec::new(),
            prometheus: Vec::new(),
            windows: Vec::new(),
            server: None,
            server_timing: None,
            decomposition: None,
        }
    }

    /// Sets [`RunResult::decomposition`] from the servers' view and the client's TTFT (none
    /// without a view).
    pub fn decompose(&mut self) {
        let empty = crate::server::ServerView::default();
        let view = self
            .server
            .as_ref()
            .or(self.server_timing.as_ref().map(|_| &empty));
        self.decomposition = view.map(|v| {
            let s = self.total.latency.ttft.summary();
            let ms = |us: u64| us as f64 / 1000.0;
            let seen = self.total.latency.ttft.count() > 0;
            let client = crate::server::Part {
                mean_ms: if seen { s.mean_us / 1000.0 } else { 0.0 },
                p50_ms: seen.then(|| ms(s.p50_us)),
                p90_ms: seen.then(|| ms(s.p90_us)),
            };
            let c = &self.total.counts;
            let mut d =
                crate::server::decompose(v, client, c.requests, c.output_tokens, c.input_tokens);
            if let Some(t) = &self.server_timing {
                crate::server::apply_request_timings(&mut d, t, client);
            }
            d
        });
    }

    /// Reads a report, checking its schema version first.
    pub fn from_json(text: &str) -> Result<Self, ResultError> {
        from_versioned_json(text)
    }

    /// `n` per measured second (0 when nothing was measured).
    pub fn per_second(&self, n: u64) -> f64 {
        if self.duration_s.is_finite() && self.duration_s > 0.0 {
            n as f64 / self.duration_s
        } else {
            0.0
        }
    }

    /// Achieved throughput: successful requests that *completed* inside the measured window,
    /// per second (past capacity this falls below the offered rate).
    pub fn achieved_rate(&self) -> f64 {
        self.per_second(self.total.counts.ok_in_window)
    }

    /// Output tokens of the successful requests that completed inside the window, per second.
    pub fn output_tokens_per_s(&self) -> f64 {
        self.per_second(self.total.counts.output_tokens_in_window)
    }

    /// Merges another run's results into this one (a distributed run's shards): counts and
    /// histograms add exactly; durations take the longer; timelines align.
    pub fn merge(&mut self, other: &RunResult) {
        self.add(other);
        self.take_observations(other, false);
        self.duration_s = self.duration_s.max(other.duration_s);
        self.timeline.merge(&other.timeline);
        // Every shard scraped the same servers over the same window: one view, not their sum.
        if self.server.is_none() {
            self.server = other.server.clone();
        }
        self.decompose();
    }

    /// Adds a run that came after this one (the next step of a sweep, the next window of an
    /// arm): counts and histograms add exactly, durations add, timelines follow each other.
    pub fn append(&mut self, next: &RunResult) {
        self.add(next);
        self.take_observations(next, true);
        self.timeline.merge_at(&next.timeline, self.duration_s);
        self.duration_s += next.duration_s;
        match (&mut self.server, &next.server) {
            (Some(a), Some(b)) => a.add(b),
            (a @ None, Some(b)) => *a = Some(b.clone()),
            _ => {}
        }
        self.decompose();
    }

    /// Everything [`RunResult::merge`] and [`RunResult::append`] share: all but time.
    fn add(&mut self, other: &RunResult) {
        self.total.merge(&other.total);
        for (k, g) in &other.by_model {
            self.by_model.entry(k.clone()).or_default().merge(g);
        }
        for (k, g) in &other.by_endpoint {
            self.by_endpoint.entry(k.clone()).or_default().merge(g);
        }
        self.misrouted += other.misrouted;
        self.client.dispatch_lag.merge(&other.client.dispatch_lag);
        self.client.peak_in_flight = self.client.peak_in_flight.max(other.client.peak_in_flight);
        self.client.dropped += other.client.dropped;
        self.client.late += other.client.late;
        self.client.cpu_seconds += other.client.cpu_seconds;
        self.client.sent += other.client.sent;
        self.client.retries += other.client.retries;
        self.client.reconnects += other.client.reconnects;
        self.client.interrupted += other.client.interrupted;
        self.client.log_dropped += other.client.log_dropped;
        if self.client.log_error.is_none() {
            self.client.log_error = other.client.log_error.clone();
        }
        self.partial |= other.partial;
        self.warnings.extend(other.warnings.iter().cloned());
        match (&mut self.server_timing, &other.server_timing) {
            (Some(a), Some(b)) => a.merge(b),
            (a @ None, Some(b)) => *a = Some(b.clone()),
            _ => {}
        }
    }

    /// What was observed beside the requests (watched processes, Prometheus series, windows),
    /// from `other`. A later window (`add`): process CPU and series increases add, windows
    /// follow. Another shard over the same window (not `add`): a process or series both saw is
    /// one observation, kept once (N shards reading one Prometheus would count its CPU N
    /// times); what only the other saw (its own pod's processes) joins.
    fn take_observations(&mut self, other: &RunResult, add: bool) {
        for p in &other.processes {
            match self
                .processes
                .iter_mut()
                .find(|q| q.name == p.name && q.pid == p.pid)
            {
                Some(q) if add => q.add(p),
                Some(_) => {}
                None => self.processes.push(p.clone()),
            }
        }
        for w in &other.windows {
            if add || !self.windows.contains(w) {
                self.windows.push(*w);
            }
        }
        for p in &other.prometheus {
            match self
                .prometheus
                .iter_mut()
                .find(|q| q.metric == p.metric && q.labels == p.labels)
            {
                Some(q) if add => q.add(p),
                Some(_) => {}
                None => self.prometheus.push(p.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64) -> RunResult {
        let mut total = Group::default();
        for i in 0..100 {
            total.latency.ttft.record(1000 + i * seed);
            total.latency.itl.record(50 + i);
        }
        total.counts.requests = 100;
        total.counts.ok = 99;
        total.counts.ok_in_window = 99;
        total
            .counts
            .errors
            .insert("http_503/model_server".into(), 1);
        RunResult {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            started_unix_s: 1,
            duration_s: 10.0,
            target: "http://127.0.0.1:8000".into(),
            load: "rate 10/s".into(),
            target_rate: Some(10.0),
            partial: false,
            by_model: [("m".to_string(), total.clone())].into(),
            by_endpoint: BTreeMap::new(),
            total,
            misrouted: 0,
            client: ClientHealth::default(),
            warnings: vec![],
            timeline: Timeline::default(),
            processes: Vec::new(),
            prometheus: Vec::new(),
            windows: Vec::new(),
            server: None,
            server_timing: None,
            decomposition: None,
        }
    }

    #[test]
    fn report_round_trips_and_checks_version() {
        let r = sample(3);
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert_eq!(RunResult::from_json(&text).unwrap(), r);
        let other = text.replace("\"schema_version\": 3", "\"schema_version\": 99");
        assert!(
            RunResult::from_json(&other)
                .unwrap_err()
                .to_string()
                .contains("99")
        );
        assert!(RunResult::from_json("{").is_err());
    }

    #[test]
    fn a_version_2_report_reads_with_its_throughput_from_ok() {
        let mut r = sample(3);
        r.total.counts.output_tokens = 500;
        let mut v = serde_json::to_value(&r).unwrap();
        v["schema_version"] = 2.into();
        for path in ["/total/counts", "/by_model/m/counts"] {
            let m = v.pointer_mut(path).unwrap().as_object_mut().unwrap();
            m.remove("ok_in_window");
            m.remove("output_tokens_in_window");
            m.remove("interrupted");
        }
        let back = RunResult::from_json(&v.to_string()).unwrap();
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        assert_eq!(back.total.counts.ok_in_window, 99);
        assert_eq!(back.total.counts.output_tokens_in_window, 500);
        assert_eq!(back.by_model["m"].counts.ok_in_window, 99);
        assert!((back.achieved_rate() - 9.9).abs() < 1e-9);
        v["schema_version"] = 1.into();
        assert!(RunResult::from_json(&v.to_string()).is_err());
    }

    #[test]
    fn shards_share_one_observation_and_later_windows_add() {
        let series = |increase: f64| PromSeries {
            metric: "process-cpu-seconds".into(),
            labels: "job=epp".into(),
            window_s: 10.0,
            increase: Some(increase),
            mean: None,
            max: None,
        };
        let mut a = sample(1);
        a.prometheus = vec![series(2.0)];
        a.windows = vec![[0.0, 10.0]];
        let mut b = sample(2);
        b.prometheus = vec![series(2.0)];
        b.windows = vec![[0.0, 10.0]];
        // Two shards of one run read the one Prometheus over the one window: one observation.
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.prometheus.len(), 1);
        assert_eq!(merged.prometheus[0].increase, Some(2.0));
        assert_eq!(merged.windows, vec![[0.0, 10.0]]);
        assert_eq!(merged.total.counts.requests, 200);
        // The next window of a sweep: its increase adds.
        let mut later = b.clone();
        later.windows = vec![[10.0, 20.0]];
        let mut appended = a.clone();
        appended.append(&later);
        assert_eq!(appended.prometheus[0].increase, Some(4.0));
        assert_eq!(appended.windows.len(), 2);
    }

    #[test]
    fn merging_two_reports_equals_one_run_over_both() {
        let (a, b) = (sample(3), sample(7));
        let mut merged = RunResult::from_json(&serde_json::to_string(&a).unwrap()).unwrap();
        merged.merge(&RunResult::from_json(&serde_json::to_string(&b).unwrap()).unwrap());
        let mut both = LatencyHistogram::new();
        for i in 0..100 {
            both.record(1000 + i * 3);
            both.record(1000 + i * 7);
        }
        assert_eq!(merged.total.latency.ttft, both);
        assert_eq!(merged.total.counts.requests, 200);
        assert_eq!(merged.total.counts.errors["http_503/model_server"], 2);
        assert_eq!(merged.by_model["m"].counts.ok, 198);
        assert_eq!(merged.duration_s, 10.0, "shards: the longer");
        // One after the other instead: the same counts, times add, timelines follow.
        let (mut first, mut second) = (sample(3), sample(7));
        first.timeline.bucket_at(0.5).requests = 1;
        second.timeline.bucket_at(0.5).requests = 2;
        first.append(&second);
        assert_eq!(first.total.counts.requests, 200);
        assert_eq!(first.duration_s, 20.0);
        assert_eq!(first.timeline.buckets[0].requests, 1);
        assert_eq!(first.timeline.buckets[10].requests, 2);
    }

    #[test]
    fn timeline_stays_bounded_and_keeps_every_request() {
        let mut t = Timeline::default();
        // 1,000 s at one request per second: 120 one-second buckets would not hold it.
        for s in 0..1000 {
            let b = t.bucket_at(s as f64 + 0.5);
            b.requests += 1;
            b.ttft.record(1000 + s);
        }
        assert!(t.buckets.len() <= MAX_TIME_BUCKETS);
        assert_eq!(t.bucket_s, 16.0);
        assert_eq!(t.buckets.iter().map(|b| b.requests).sum::<u64>(), 1000);
        assert_eq!(t.buckets[0].requests, 16);
        let json = serde_json::to_string(&t).unwrap();
        let back: Timeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        // A shard with finer buckets merges into the same clock.
        let mut fine = Timeline::default();
        fine.bucket_at(17.0).requests += 1;
        t.merge(&fine);
        assert_eq!(t.buckets[1].requests, 17);
        // A later step lands after this one.
        let mut next = Timeline::default();
        next.bucket_at(0.5).requests += 5;
        t.merge_at(&next, 1000.0);
        assert_eq!(t.buckets[62].requests, 5 + 8);
        // Reports from before the timeline still read.
        let mut old = serde_json::to_value(sample(1)).unwrap();
        old.as_object_mut().unwrap().remove("timeline");
        let r = RunResult::from_json(&old.to_string()).unwrap();
        assert!(r.timeline.buckets.is_empty());
    }
}
