//! The model servers' own view of a run: their `/metrics` scraped every second and at each
//! window's edges, read through a profile of metric names (vLLM, llama.cpp, SGLang, or a
//! mapping file), and summed up per window as counter and histogram deltas and gauge
//! statistics ([`ServerView`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use inferbench_results::server::{
    GaugePoint, GaugeStats, ServerHistogram, ServerView, thin_series,
};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::time::Instant;

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`x_bucket`, `x_total`, …).
    pub name: String,
    /// Its labels, as written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// The samples of a Prometheus text exposition (0.0.4 or OpenMetrics); comments, blank lines
/// and lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(r)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels after the `{`: `(labels, the text after the closing })`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((out, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push((key, value));
        s = &s[end + 1..];
    }
}

/// Which metric names stand for which role, for one kind of server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Its name in the report (`vllm`, `llamacpp`, `sglang`, or the mapping file's).
    #[serde(default = "custom")]
    pub name: String,
    /// Histogram families (without `_bucket`/`_sum`/`_count`) by role: `queue`, `prefill`,
    /// `decode`, `ttft`, `itl`, `e2e`; several names: the first present is used.
    #[serde(default, deserialize_with = "one_or_many")]
    pub histograms: BTreeMap<String, Vec<String>>,
    /// Counters (full sample names, e.g. `x_total`) by role: `requests`, `prompt_tokens`,
    /// `generation_tokens`, `prefix_hits`, `prefix_queries`, `prompt_seconds`,
    /// `decode_seconds`, `aborted`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub counters: BTreeMap<String, Vec<String>>,
    /// Gauges by role: `running`, `waiting`, `kv_usage`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub gauges: BTreeMap<String, Vec<String>>,
}

/// A role's metric: one name, or several (the first present is used).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let m: BTreeMap<String, OneOrMany> = Deserialize::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| {
            let names = match v {
                OneOrMany::One(n) => vec![n],
                OneOrMany::Many(ns) => ns,
            };
            (k, names)
        })
        .collect())
}

fn custom() -> String {
    "custom".into()
}

fn roles(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(r, names)| (r.to_string(), names.iter().map(|n| n.to_string()).collect()))
        .collect()
}

impl Profile {
    /// vLLM (V1 metric names; the older names after them).
    pub fn vllm() -> Self {
        Profile {
            name: "vllm".into(),
            histograms: roles(&[
                ("queue", &["vllm:request_queue_time_seconds"]),
                ("prefill", &["vllm:request_prefill_time_seconds"]),
                ("decode", &["vllm:request_decode_time_seconds"]),
                ("ttft", &["vllm:time_to_first_token_seconds"]),
                (
                    "itl",
                    &[
                        "vllm:inter_token_latency_seconds",
                        "vllm:time_per_output_token_seconds",
                    ],
                ),
                ("e2e", &["vllm:e2e_request_latency_seconds"]),
            ]),
            counters: roles(&[
                ("requests", &["vllm:request_success_total"]),
                ("prompt_tokens", &["vllm:prompt_tokens_total"]),
                ("generation_tokens", &["vllm:generation_tokens_total"]),
                (
                    "prefix_hits",
                    &[
                        "vllm:prefix_cache_hits_total",
                        "vllm:gpu_prefix_cache_hits_total",
                    ],
                ),
                (
                    "prefix_queries",
                    &[
                        "vllm:prefix_cache_queries_total",
                        "vllm:gpu_prefix_cache_queries_total",
                    ],
                ),
            ]),
            gauges: roles(&[
                ("running", &["vllm:num_requests_running"]),
                ("waiting", &["vllm:num_requests_waiting"]),
                (
                    "kv_usage",
                    &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
                ),
            ]),
        }
    }

    /// llama.cpp's server (`--metrics`): time counters, no per-request histograms.
    pub fn llamacpp() -> Self {
        Profile {
            name: "llamacpp".into(),
            histograms: BTreeMap::new(),
            counters: roles(&[
                ("prompt_tokens", &["llamacpp:prompt_tokens_total"]),
                ("prompt_seconds", &["llamacpp:prompt_seconds_total"]),
                ("generation_tokens", &["llamacpp:tokens_predicted_total"]),
                (
                    "decode_seconds",
                    &["llamacpp:tokens_predicted_seconds_total"],
                ),
            ]),
            gauges: roles(&[
                ("running", &["llamacpp:requests_processing"]),
                ("waiting", &["llamacpp:requests_deferred"]),
                ("kv_usage", &["llamacpp:kv_cache_usage_ratio"]),
            ]),
        }
    }

    /// SGLang (`--enable-metrics`).
    pub fn sglang() -> Self {
        Profile {
            name: "sglang".into(),
            histograms: roles(&[
                ("queue", &["sglang:queue_time_seconds"]),
                ("ttft", &["sglang:time_to_first_token_seconds"]),
                (
                    "itl",
                    &[
                        "sglang:inter_token_latency_seconds",
                        "sglang:time_per_output_token_seconds",
                    ],
                ),
                ("e2e", &["sglang:e2e_request_latency_seconds"]),
            ]),
            counters: roles(&[
                ("requests", &["sglang:num_requests_total"]),
                ("prompt_tokens", &["sglang:prompt_tokens_total"]),
                ("generation_tokens", &["sglang:generation_tokens_total"]),
                ("prefix_hits", &["sglang:cached_tokens_total"]),
                // Cached over prompt tokens: the same ratio vLLM's prefix-cache counters give.
                ("prefix_queries", &["sglang:prompt_tokens_total"]),
                ("aborted", &["sglang:num_aborted_requests_total"]),
            ]),
            gauges: roles(&[
                ("running", &["sglang:num_running_reqs"]),
                ("waiting", &["sglang:num_queue_reqs"]),
                ("kv_usage", &["sglang:token_usage"]),
            ]),
        }
    }

    /// The built-in profile whose prefix the exposition's names carry.
    pub fn detect(samples: &[Sample]) -> Option<Profile> {
        let has = |p: &str| samples.iter().any(|s| s.name.starts_with(p));
        if has("vllm:") {
            Some(Profile::vllm())
        } else if has("llamacpp:") {
            Some(Profile::llamacpp())
        } else if has("sglang:") {
            Some(Profile::sglang())
        } else {
            None
        }
    }

    /// Reads a mapping file (YAML: `name`, `histograms`, `counters`, `gauges`, each role to one
    /// metric name or a list).
    pub fn load(path: &std::path::Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let p: Profile =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (kind, map, known) in [
            (
                "histograms",
                &p.histograms,
                &inferbench_results::server::HISTOGRAM_ROLES[..],
            ),
            (
                "counters",
                &p.counters,
                &inferbench_results::server::COUNTER_ROLES[..],
            ),
            (
                "gauges",
                &p.gauges,
                &inferbench_results::server::GAUGE_ROLES[..],
            ),
        ] {
            for role in map.keys() {
                if !known.contains(&role.as_str()) {
                    return Err(format!(
                        "{}: {kind}.{role}: not a role (known: {})",
                        path.display(),
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(p)
    }
}

/// A histogram as scraped: cumulative count per bound (keyed by the bound's bits), count, sum.
type Scraped = (BTreeMap<u64, (f64, f64)>, f64, f64);

/// The role values of one scrape of every endpoint, summed.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    at: Option<Instant>,
    /// Every endpoint answered (a window's edge is read only from such a scrape: one missing
    /// would read as a counter reset).
    complete: bool,
    /// Per role: cumulative count per bound (by the bound's bits), count, sum.
    hist: BTreeMap<String, Scraped>,
    counters: BTreeMap<String, f64>,
    /// Per role: the sum over endpoints and how many endpoints had it.
    gauges: BTreeMap<String, (f64, u32)>,
}

impl Snapshot {
    /// Adds one endpoint's samples, read through `p`.
    fn add(&mut self, p: &Profile, samples: &[Sample]) {
        let first_present = |names: &[String], suffix: &str| -> Option<String> {
            names
                .iter()
                .map(|n| format!("{n}{suffix}"))
                .find(|n| samples.iter().any(|s| &s.name == n))
        };
        for (role, names) in &p.histograms {
            let Some(count_name) = first_present(names, "_count") else {
                continue;
            };
            let family = count_name.trim_end_matches("_count");
            let (bucket_name, sum_name) = (format!("{family}_bucket"), format!("{family}_sum"));
            let e = self.hist.entry(role.clone()).or_default();
            for s in samples {
                if s.name == bucket_name {
                    let Some(le) = s.labels.iter().find(|(k, _)| k == "le").and_then(|(_, v)| {
                        match v.as_str() {
                            "+Inf" | "Inf" => Some(f64::INFINITY),
                            v => v.parse::<f64>().ok(),
                        }
                    }) else {
                        continue;
                    };
                    e.0.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
                } else if s.name == count_name {
                    e.1 += s.value;
                } else if s.name == sum_name {
                    e.2 += s.value;
                }
            }
        }
        for (role, names) in &p.counters {
            if let Some(n) = first_present(names, "") {
                *self.counters.entry(role.clone()).or_default() += samples
                    .iter()
                    .filter(|s| s.name == n && s.value.is_finite())
                    .map(|s| s.value)
                    .sum::<f64>();
            }
        }
        for (role, names) in &p.gauges {
            if let Some(n) = first_present(names, "") {
                let e = self.gauges.entry(role.clone()).or_default();
                e.0 += samples
                    .iter()
                    .filter(|s| s.name == n && s.value.is_finite())
                    .map(|s| s.value)
                    .sum::<f64>();
                e.1 += 1;
            }
        }
    }

    /// A gauge's value: summed over endpoints, but `kv_usage` averaged.
    fn gauge(&self, role: &str) -> Option<f64> {
        let (sum, n) = *self.gauges.get(role)?;
        (n > 0).then(|| {
            if role == "kv_usage" {
                sum / n as f64
            } else {
                sum
            }
        })
    }
}

/// The change of a counter from `a` to `b`; a counter that went down (a restarted server)
/// counts from zero.
fn delta(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

/// Scrapes the model servers' `/metrics` every second and at marks; hands out the view of any
/// window in between.
#[derive(Debug)]
pub struct ServerSampler {
    /// `host:port` of each server.
    endpoints: Vec<String>,
    profile: Mutex<Option<Profile>>,
    snapshots: Mutex<Vec<Snapshot>>,
    /// Scrape failures, said once each in the report.
    problems: Mutex<Vec<String>>,
}

/// Most snapshots kept (a day of 1 s scrapes); the oldest go first.
const MAX_SNAPSHOTS: usize = 86_400;

impl ServerSampler {
    /// A sampler of `endpoints` (`host:port`), with `profile` or one detected from the first
    /// scrape; scrapes every `period` on the current runtime until dropped.
    pub fn start(
        endpoints: Vec<String>,
        profile: Option<Profile>,
        period: Duration,
    ) -> Arc<ServerSampler> {
        let s = Arc::new(ServerSampler {
            endpoints,
            profile: Mutex::new(profile),
            snapshots: Mutex::new(Vec::new()),
            problems: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&s);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(s) = weak.upgrade() else { return };
                s.mark().await;
            }
        });
        s
    }

    /// Scrapes every server now and keeps the snapshot (at a window's edge); returns the
    /// instant it stands for.
    pub async fn mark(&self) -> Instant {
        let at = Instant::now();
        // Concurrently, one result per endpoint, in order.
        let handles: Vec<_> = self
            .endpoints
            .iter()
            .map(|e| tokio::spawn(scrape(e.clone())))
            .collect();
        let mut scrapes = Vec::with_capacity(handles.len());
        for h in handles {
            scrapes.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        let mut snap = Snapshot {
            at: Some(at),
            complete: true,
            ..Default::default()
        };
        for (e, got) in self.endpoints.iter().zip(scrapes) {
            match got {
                Ok(samples) => {
                    let mut p = self.profile.lock();
                    if p.is_none() {
                        *p = Profile::detect(&samples);
                    }
                    match p.as_ref() {
                        Some(p) => snap.add(p, &samples),
                        None => {
                            snap.complete = false;
                            self.problem(format!(
                            "server metrics: http://{e}/metrics has no vllm:, llamacpp: or sglang: metrics (give a mapping with --server-metrics-map)"
                        ));
                        }
                    }
                }
                Err(msg) => {
                    snap.complete = false;
                    self.problem(format!("server metrics: http://{e}/metrics: {msg}"));
                }
            }
        }
        let mut all = self.snapshots.lock();
        let i = all.partition_point(|x| x.at <= snap.at);
        all.insert(i, snap);
        if all.len() > MAX_SNAPSHOTS {
            all.remove(0);
        }
        at
    }

    fn problem(&self, p: String) {
        let mut ps = self.problems.lock();
        if !ps.contains(&p) && ps.len() < 20 {
            ps.push(p);
        }
    }

    /// Problems met while scraping, to be said in the report.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().clone()
    }

    /// The servers' view from `from` to `to`: deltas between the snapshots nearest each (marks
    /// are taken at windows' edges), gauges over the snapshots between.
    pub fn view(&self, from: Instant, to: Instant) -> Option<ServerView> {
        let all = self.snapshots.lock();
        let nearest = |t: Instant| {
            all.iter().filter(|s| s.complete).min_by_key(|s| {
                s.at.map_or(Duration::MAX, |at| {
                    at.saturating_duration_since(t)
                        .max(t.saturating_duration_since(at))
                })
            })
        };
        let a = nearest(from)?;
        let b = nearest(to).filter(|b| b.at > a.at)?;
        let (ta, tb) = (a.at?, b.at?);
        let profile = self.profile.lock().as_ref()?.name.clone();
        let mut v = ServerView {
            profile,
            endpoints: self
                .endpoints
                .iter()
                .map(|e| format!("http://{e}/metrics"))
                .collect(),
            window_s: tb.saturating_duration_since(ta).as_secs_f64(),
            ..Default::default()
        };
        deltas(a, b, &mut v);
        let within = || {
            all.iter()
                .filter(move |s| s.at >= Some(ta) && s.at <= Some(tb))
        };
        for role in inferbench_results::server::GAUGE_ROLES {
            if let Some(g) = GaugeStats::of(within().filter_map(|s| s.gauge(role))) {
                v.gauges.insert(role.to_string(), g);
            }
        }
        v.series = within()
            .filter_map(|s| {
                let mut p = GaugePoint {
                    unix_s: crate::promql::unix_of(s.at?),
                    ..Default::default()
                };
                for role in inferbench_results::server::GAUGE_ROLES {
                    if let Some(x) = s.gauge(role) {
                        p.set(role, x);
                    }
                }
                Some(p)
            })
            .collect();
        thin_series(&mut v.series);
        Some(v)
    }
}

/// The histogram and counter changes from snapshot `a` to `b`, into `v`.
fn deltas(a: &Snapshot, b: &Snapshot, v: &mut ServerView) {
    for (role, (bb, cb, sb)) in &b.hist {
        let (ba, ca, sa) = a.hist.get(role).cloned().unwrap_or_default();
        let reset = cb < &ca;
        let buckets = bb
            .iter()
            .map(|(k, (le, c))| {
                let before = if reset {
                    0.0
                } else {
                    ba.get(k).map_or(0.0, |x| x.1)
                };
                (*le, (c - before).max(0.0))
            })
            .collect();
        let (count, sum) = if reset {
            (*cb, *sb)
        } else {
            (cb - ca, (sb - sa).max(0.0))
        };
        v.histograms
            .insert(role.clone(), ServerHistogram::new(buckets, count, sum));
    }
    for (role, vb) in &b.counters {
        let va = a.counters.get(role).copied().unwrap_or(0.0);
        v.counters.insert(role.clone(), delta(va, *vb));
    }
}

/// The servers' view over `windows` (Unix s) read from Prometheus instead of scraped: each role
/// summed over the series `selector` picks (e.g. `{namespace="llm"}`), histograms and counters
/// at each window's edges, gauges over it; `profile` or the one whose names Prometheus has.
/// `None` when Prometheus has none of a known server's metrics.
pub async fn view_from_prometheus(
    p: &crate::promql::Prometheus,
    profile: Option<&Profile>,
    selector: &str,
    windows: &[[f64; 2]],
) -> Result<Option<ServerView>, String> {
    let profile = match profile {
        Some(pr) => pr.clone(),
        None => {
            let mut found = None;
            for (prefix, pr) in [
                ("vllm:", Profile::vllm()),
                ("llamacpp:", Profile::llamacpp()),
                ("sglang:", Profile::sglang()),
            ] {
                let q = format!("count({{__name__=~\"{prefix}.+\"}})");
                let at = windows.last().map_or(0.0, |w| w[1]);
                if !p.instant(&q, at).await?.is_empty() {
                    found = Some(pr);
                    break;
                }
            }
            match found {
                Some(pr) => pr,
                None => return Ok(None),
            }
        }
    };
    let mut total: Option<ServerView> = None;
    for &[from, to] in windows {
        let a = prom_snapshot(p, &profile, selector, from).await?;
        let b = prom_snapshot(p, &profile, selector, to).await?;
        let mut v = ServerView {
            profile: profile.name.clone(),
            endpoints: vec![format!("{}{selector}", p.url)],
            window_s: to - from,
            ..Default::default()
        };
        deltas(&a, &b, &mut v);
        for (role, names) in &profile.gauges {
            let agg = if role == "kv_usage" { "avg" } else { "sum" };
            for name in names {
                let q = crate::promql::encode(&format!("{agg}({name}{selector})"));
                let step = ((to - from) / 200.0).max(1.0);
                let series = p
                    .api(&format!(
                        "/api/v1/query_range?query={q}&start={from:.3}&end={to:.3}&step={step:.3}"
                    ))
                    .await?;
                let vals: Vec<(f64, f64)> = series
                    .iter()
                    .flat_map(|s| s.values.iter())
                    .filter_map(|(t, x)| Some((*t, x.parse::<f64>().ok()?)))
                    .collect();
                if let Some(g) = GaugeStats::of(vals.iter().map(|(_, x)| *x)) {
                    v.gauges.insert(role.clone(), g);
                    // Over time: one point per step, the roles side by side.
                    for (t, x) in vals {
                        match v.series.iter_mut().find(|p| (p.unix_s - t).abs() < 1e-6) {
                            Some(p) => p.set(role, x),
                            None => {
                                let mut p = GaugePoint {
                                    unix_s: t,
                                    ..Default::default()
                                };
                                p.set(role, x);
                                v.series.push(p);
                            }
                        }
                    }
                    break;
                }
            }
        }
        thin_series(&mut v.series);
        match &mut total {
            Some(t) => t.add(&v),
            None => total = Some(v),
        }
    }
    Ok(total)
}

/// The profile's histograms and counters summed over `selector`'s series at `t` (Unix s).
async fn prom_snapshot(
    p: &crate::promql::Prometheus,
    profile: &Profile,
    selector: &str,
    t: f64,
) -> Result<Snapshot, String> {
    let scalar = |series: &[crate::promql::Series]| {
        series
            .first()
            .and_then(|s| s.value.as_ref())
            .and_then(|v| v.1.parse::<f64>().ok())
    };
    let mut snap = Snapshot {
        complete: true,
        ..Default::default()
    };
    for (role, names) in &profile.histograms {
        for name in names {
            let buckets = p
                .instant(&format!("sum by (le) ({name}_bucket{selector})"), t)
                .await?;
            if buckets.is_empty() {
                continue;
            }
            let mut by_le = BTreeMap::new();
            for s in &buckets {
                let le = s
                    .metric
                    .get("le")
                    .and_then(|v| v.as_str())
                    .and_then(|v| match v {
                        "+Inf" | "Inf" => Some(f64::INFINITY),
                        v => v.parse::<f64>().ok(),
                    });
                let c = s.value.as_ref().and_then(|v| v.1.parse::<f64>().ok());
                if let (Some(le), Some(c)) = (le, c) {
                    by_le.insert(le.to_bits(), (le, c));
                }
            }
            let count = scalar(
                &p.instant(&format!("sum({name}_count{selector})"), t)
                    .await?,
            );
            let sum = scalar(&p.instant(&format!("sum({name}_sum{selector})"), t).await?);
            snap.hist.insert(
                role.clone(),
                (by_le, count.unwrap_or(0.0), sum.unwrap_or(0.0)),
            );
            break;
        }
    }
    for (role, names) in &profile.counters {
        for name in names {
            if let Some(v) = scalar(&p.instant(&format!("sum({name}{selector})"), t).await?) {
                snap.counters.insert(role.clone(), v);
                break;
            }
        }
    }
    Ok(snap)
}

/// One scrape of `http://{endpoint}/metrics`.
async fn scrape(endpoint: String) -> Result<Vec<Sample>, String> {
    let (status, body) = inferbench_loadgen::probe::get(
        &format!("http://{endpoint}"),
        "/metrics",
        None,
        Duration::from_secs(5),
    )
    .await
    .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    // Parsing a large exposition takes a while: off the runtime's workers, which send load.
    tokio::task::spawn_blocking(move || parse(&body))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_exposition_formats_parse() {
        let t = "# HELP vllm:x help\n# TYPE vllm:x counter\nvllm:x_total{model_name=\"a \\\"b\\\"\",le=\"+Inf\"} 3.5e1\nplain 2 1700000000\nbad line here\nh_bucket{le=\"0.1\"} +Inf\n";
        let s = parse(t);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].name, "vllm:x_total");
        assert_eq!(
            s[0].labels,
            [
                ("model_name".to_string(), "a \"b\"".to_string()),
                ("le".to_string(), "+Inf".to_string())
            ]
        );
        assert_eq!(s[0].value, 35.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("plain", 2.0));
        assert!(s[2].value.is_infinite());
    }

    /// An SGLang `--enable-metrics` exposition (its metric names as SGLang's
    /// `metrics/collector.py` registers them; values ours) after `n` requests.
    fn sglang_exposition(n: u64, running: u64, waiting: u64) -> String {
        let l = "{model_name=\"qwen\",engine_type=\"unified\"}";
        let b = |le: &str, c: u64| {
            format!("sglang:queue_time_seconds_bucket{{model_name=\"qwen\",le=\"{le}\"}} {c}\n")
        };
        format!(
            "# HELP sglang:num_running_reqs The number of running requests.\n# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{l} {running}\nsglang:num_queue_reqs{l} {waiting}\nsglang:token_usage{l} 0.25\nsglang:prompt_tokens_total{l} {}\nsglang:generation_tokens_total{l} {}\nsglang:cached_tokens_total{l} {}\nsglang:num_requests_total{l} {n}\n{}{}{}sglang:queue_time_seconds_count{{model_name=\"qwen\"}} {n}\nsglang:queue_time_seconds_sum{{model_name=\"qwen\"}} {}\nsglang:time_to_first_token_seconds_count{l} {n}\nsglang:time_to_first_token_seconds_sum{l} {}\n",
            n * 100,
            n * 20,
            n * 40,
            b("0.005", n / 2),
            b("0.05", n),
            b("+Inf", n),
            n as f64 * 0.01,
            n as f64 * 0.05,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn an_sglang_server_is_read_by_its_own_names() {
        let samples = parse(&sglang_exposition(10, 3, 2));
        let p = Profile::detect(&samples).expect("a profile");
        assert_eq!(p.name, "sglang");
        let t0 = Instant::now();
        let snap = |at: u64, text: &str| {
            let mut s = Snapshot {
                at: Some(t0 + Duration::from_secs(at)),
                complete: true,
                ..Default::default()
            };
            s.add(&p, &parse(text));
            s
        };
        let s = ServerSampler {
            endpoints: vec!["e:1".into()],
            profile: Mutex::new(Some(p.clone())),
            snapshots: Mutex::new(vec![
                snap(0, &sglang_exposition(10, 3, 2)),
                snap(1, &sglang_exposition(30, 5, 4)),
            ]),
            problems: Mutex::new(Vec::new()),
        };
        let v = s.view(t0, t0 + Duration::from_secs(1)).expect("a window");
        assert_eq!(v.profile, "sglang");
        assert_eq!(v.counters["requests"], 20.0);
        assert_eq!(v.counters["prompt_tokens"], 2_000.0);
        assert_eq!(v.counters["generation_tokens"], 400.0);
        // 800 of 2,000 prompt tokens came from the cache.
        assert_eq!(v.prefix_hit_rate(), Some(0.4));
        let q = &v.histograms["queue"];
        assert_eq!(q.count, 20.0);
        assert!((q.mean_ms.unwrap() - 10.0).abs() < 1e-9, "{q:?}");
        let ttft = &v.histograms["ttft"];
        assert!((ttft.mean_ms.unwrap() - 50.0).abs() < 1e-9, "{ttft:?}");
        assert_eq!(v.gauges["running"].max, 5.0);
        assert_eq!(v.gauges["waiting"].max, 4.0);
        assert_eq!(v.gauges["kv_usage"].mean, 0.25);
        assert_eq!(v.series.len(), 2);
    }

    #[test]
    fn a_mapping_file_takes_one_name_or_several_and_refuses_unknown_roles() {
        let dir = std::env::temp_dir().join(format!("inferbench-map-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("map.yaml");
        std::fs::write(
            &f,
            "name: tgi\nhistograms:\n  queue: tgi_queue_duration\n  ttft: [a_ttft, b_ttft]\ncounters:\n  generation_tokens: tgi_tokens_total\n",
        )
        .unwrap();
        let p = Profile::load(&f).unwrap();
        assert_eq!(p.name, "tgi");
        assert_eq!(p.histograms["queue"], ["tgi_queue_duration"]);
        assert_eq!(p.histograms["ttft"], ["a_ttft", "b_ttft"]);
        assert_eq!(p.counters["generation_tokens"], ["tgi_tokens_total"]);
        std::fs::write(&f, "histograms:\n  queeu: x\n").unwrap();
        let e = Profile::load(&f).unwrap_err();
        assert!(e.contains("histograms.queeu: not a role"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panic(t in "\\PC{0,300}") {
            let _ = parse(&t);
        }

        #[test]
        fn written_samples_read_back(v in -1e12f64..1e12, label in "[a-z \"\\\\]{0,12}") {
            let esc = label.replace('\\', "\\\\").replace('"', "\\\"");
            let s = parse(&format!("m_total{{k=\"{esc}\"}} {v}\n"));
            prop_assert_eq!(s.len(), 1);
            prop_assert_eq!(&s[0].labels[0].1, &label);
            prop_assert_eq!(s[0].value, v);
        }
    }

    fn snap(at: Instant, text: &str) -> Snapshot {
        let mut s = Snapshot {
            at: Some(at),
            complete: true,
            ..Default::default()
        };
        s.add(&Profile::vllm(), &parse(text));
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_is_the_change_between_its_edges() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let expo = |n: u64, running: u64| {
            format!(
                "vllm:request_queue_time_seconds_bucket{{le=\"0.3\"}} {n}\nvllm:request_queue_time_seconds_bucket{{le=\"+Inf\"}} {n}\nvllm:request_queue_time_seconds_count {n}\nvllm:request_queue_time_seconds_sum {}\nvllm:request_success_total{{finished_reason=\"stop\"}} {n}\nvllm:request_success_total{{finished_reason=\"length\"}} 1\nvllm:num_requests_running {running}\nvllm:kv_cache_usage_perc 0.5\n",
                n as f64 * 0.01
            )
        };
        let s = ServerSampler {
            endpoints: vec!["e:1".into()],
            profile: Mutex::new(Some(Profile::vllm())),
            snapshots: Mutex::new(vec![
                snap(at(0), &expo(100, 2)),
                snap(at(1), &expo(110, 4)),
                snap(at(2), &expo(130, 6)),
            ]),
            problems: Mutex::new(Vec::new()),
        };
        let v = s.view(at(0), at(2)).unwrap();
        let q = &v.histograms["queue"];
        assert_eq!((q.count, q.buckets.clone()), (30.0, vec![(0.3, 30.0)]));
        assert!((q.mean_ms.unwrap() - 10.0).abs() < 1e-9);
        // Both finish reasons summed; the constant one adds nothing.
        assert_eq!(v.counters["requests"], 30.0);
        let r = v.gauges["running"];
        assert_eq!((r.samples, r.mean, r.max), (3, 4.0, 6.0));
        assert_eq!(v.window_s, 2.0);
        // Over time: one point per scrape, 1 s apart, with the running and KV gauges.
        let running: Vec<Option<f64>> = v.series.iter().map(|p| p.running).collect();
        assert_eq!(running, [Some(2.0), Some(4.0), Some(6.0)]);
        assert!(
            v.series
                .iter()
                .all(|p| p.kv_usage == Some(0.5) && p.waiting.is_none())
        );
        let dt: Vec<f64> = v
            .series
            .windows(2)
            .map(|w| w[1].unix_s - w[0].unix_s)
            .collect();
        assert!(dt.iter().all(|d| (d - 1.0).abs() < 1e-3), "{dt:?}");
        // A server restart (counts went down): the end's counts, from zero.
        s.snapshots.lock().push(snap(at(3), &expo(5, 0)));
        assert_eq!(s.view(at(2), at(3)).unwrap().counters["requests"], 6.0);
    }
}
