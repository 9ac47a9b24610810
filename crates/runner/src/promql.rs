//! Resource figures from Prometheus (`run --prometheus URL [--prometheus-queries FILE]`): each
//! query is evaluated over exactly each stage's, step's and arm's measured window — a counter
//! (CPU seconds) as its increase from the window's start to its end, a gauge (memory, a rate) as
//! its mean and maximum over the window — per series, beside what `--watch-process` samples
//! locally.

use std::time::Duration;

use inferbench_results::run::PromSeries;
use serde::Deserialize;
use tokio::time::Instant;

/// One query of a queries file (the `metricName`/`query` shape the write-ups use).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Its name in the report.
    #[serde(rename = "metricName")]
    pub name: String,
    /// PromQL; `$NAMESPACE` is replaced by `--prometheus-namespace`.
    pub query: String,
    /// `counter` (its increase over the window: CPU seconds) or `gauge` (mean and maximum);
    /// default: `counter` for a `_total` series not inside `rate`/`irate`/`increase`, else `gauge`.
    #[serde(default)]
    pub kind: Option<Kind>,
}

/// How a query's values are summed up over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A monotonic counter: its increase over the window.
    Counter,
    /// A level: its mean and maximum over the window.
    Gauge,
}

impl Query {
    /// The kind, said or inferred.
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or_else(|| {
            let q = self.query.as_str();
            if q.contains("_total")
                && !["rate(", "irate(", "increase("]
                    .iter()
                    .any(|f| q.contains(f))
            {
                Kind::Counter
            } else {
                Kind::Gauge
            }
        })
    }
}

/// The queries used without a file: the process metrics every Go and Rust exporter (the EPP,
/// BBR, inferbench's mock and router) exposes, and the container metrics the write-ups query
/// (cAdvisor, by pod).
pub fn default_queries() -> Vec<Query> {
    let q = |name: &str, query: &str, kind| Query {
        name: name.into(),
        query: query.into(),
        kind: Some(kind),
    };
    vec![
        q(
            "process-cpu-seconds",
            "process_cpu_seconds_total",
            Kind::Counter,
        ),
        q(
            "process-memory",
            "process_resident_memory_bytes",
            Kind::Gauge,
        ),
        q(
            "container-cpu-seconds",
            "sum(container_cpu_usage_seconds_total{namespace=~\"$NAMESPACE\",container!=\"\"}) by (pod)",
            Kind::Counter,
        ),
        q(
            "container-memory",
            "sum(container_memory_working_set_bytes{namespace=~\"$NAMESPACE\",container!=\"\"}) by (pod)",
            Kind::Gauge,
        ),
    ]
}

/// Reads a queries file: a YAML list of `{metricName, query, kind?}`.
pub fn load_queries(path: &std::path::Path) -> Result<Vec<Query>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let qs: Vec<Query> =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if qs.is_empty() {
        return Err(format!("{}: no query", path.display()));
    }
    Ok(qs)
}

/// Where and what to query.
#[derive(Debug, Clone)]
pub struct Prometheus {
    /// Base URL, e.g. http://127.0.0.1:9090.
    pub url: String,
    /// The queries.
    pub queries: Vec<Query>,
    /// `$NAMESPACE` in queries (a regex; default `.+`).
    pub namespace: String,
    /// How long after a scenario's last window to wait before querying, so that Prometheus has
    /// scraped past it (about its scrape interval).
    pub settle: Duration,
}

/// `s` percent-encoded for a URL query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The labels of a series, `name=value` joined by `,` (without `__name__`).
fn labels(metric: &serde_json::Map<String, serde_json::Value>) -> String {
    metric
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Series>,
}

/// One series of a query's answer.
#[derive(Deserialize)]
pub(crate) struct Series {
    pub(crate) metric: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub(crate) value: Option<(f64, String)>,
    #[serde(default)]
    pub(crate) values: Vec<(f64, String)>,
}

/// How far either side of a window's edge raw samples are read, s: wider than any sensible
/// scrape interval.
const EDGE_RANGE_S: u32 = 60;

/// A window shorter than this many scrape intervals gets a note on its counters' precision.
const MIN_SCRAPES_PER_WINDOW: f64 = 10.0;

/// A counter's value at `t` from its raw samples `(unix s, value)`, oldest first: linear between
/// the samples on either side, the nearest one when `t` is outside them, the one before when
/// the counter reset between them.
fn interpolate(samples: &[(f64, f64)], t: f64) -> Option<f64> {
    let after = samples.iter().position(|(ts, _)| *ts > t);
    match after {
        None => samples.last().map(|s| s.1),
        Some(0) => samples.first().map(|s| s.1),
        Some(i) => {
            let (t0, v0) = samples[i - 1];
            let (t1, v1) = samples[i];
            if v1 < v0 || t1 <= t0 {
                Some(v0)
            } else {
                Some(v0 + (v1 - v0) * (t - t0) / (t1 - t0))
            }
        }
    }
}

/// Unix seconds of instant `t` (by the wall clock now).
pub fn unix_of(t: Instant) -> f64 {
    let now = Instant::now();
    let wall = inferbench_timer::unix_now().as_secs_f64();
    if t <= now {
        wall - now.saturating_duration_since(t).as_secs_f64()
    } else {
        wall + t.saturating_duration_since(now).as_secs_f64()
    }
}

impl Prometheus {
    pub(crate) async fn api(&self, path_and_query: &str) -> Result<Vec<Series>, String> {
        let (status, body) = inferbench_loadgen::probe::get(
            &self.url,
            path_and_query,
            None,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| format!("prometheus {}: {e}", self.url))?;
        let a: Answer = serde_json::from_str(&body).map_err(|e| {
            format!(
                "prometheus {}: HTTP {status}, not a query answer: {e}",
                self.url
            )
        })?;
        if a.status != "success" {
            return Err(format!(
                "prometheus {}: {}",
                self.url,
                a.error.unwrap_or_else(|| format!("HTTP {status}"))
            ));
        }
        Ok(a.data.map(|d| d.result).unwrap_or_default())
    }

    pub(crate) async fn instant(&self, q: &str, at: f64) -> Result<Vec<Series>, String> {
        self.api(&format!("/api/v1/query?query={}&time={at:.3}", encode(q)))
            .await
    }

    /// Every query over the windows of `r` (Unix seconds), per series, added up over the
    /// windows, into `r.prometheus`. A query that fails becomes a warning.
    pub async fn attach(&self, r: &mut inferbench_results::run::RunResult) {
        let mut all: Vec<PromSeries> = Vec::new();
        for [from, to] in r.windows.clone() {
            let (series, warnings) = self.window(from, to).await;
            for w in warnings {
                let w = format!("prometheus: {w}");
                if !r.warnings.contains(&w) {
                    r.warnings.push(w);
                }
            }
            for s in series {
                match all
                    .iter_mut()
                    .find(|x| x.metric == s.metric && x.labels == s.labels)
                {
                    Some(x) => x.add(&s),
                    None => all.push(s),
                }
            }
        }
        r.prometheus = all;
    }

    /// Every query over the window from `start` to `end` (Unix seconds), per series. A query
    /// that fails is reported as a warning and left out.
    pub async fn window(&self, start: f64, end: f64) -> (Vec<PromSeries>, Vec<String>) {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for q in &self.queries {
            let text = q.query.replace("$NAMESPACE", &self.namespace);
            let got = match q.kind() {
                Kind::Counter => self.counter(&text, start, end, &mut warnings).await,
                Kind::Gauge => self.gauge(&text, start, end).await,
            };
            match got {
                Ok(series) => out.extend(series.into_iter().map(
                    |(labels, mean, max, increase)| PromSeries {
                        metric: q.name.clone(),
                        labels,
                        window_s: end - start,
                        increase,
                        mean,
                        max,
                    },
                )),
                Err(e) => warnings.push(format!("{}: {e}", q.name)),
            }
        }
        (out, warnings)
    }

    /// A counter's increase per series (start to end), with its mean rate as `mean`.
    ///
    /// A plain selector is read at each edge from its raw samples around it, interpolated to the
    /// edge's instant: a scrape interval no longer shifts the window by up to one interval at
    /// each end. An expression that cannot take a range (e.g. `sum(…)`) falls back to the values
    /// the instant queries at the edges return.
    ///
    /// Where the rate changes at an edge (an arm's traffic starts or stops there), a linear
    /// interpolation still misses part of a scrape interval's change at each edge: a window
    /// shorter than [`MIN_SCRAPES_PER_WINDOW`] scrape intervals gets a note in `notes`.
    async fn counter(
        &self,
        q: &str,
        start: f64,
        end: f64,
        notes: &mut Vec<String>,
    ) -> Result<Vec<(String, Option<f64>, Option<f64>, Option<f64>)>, String> {
        let (a, b) = match (self.edge(q, start).await, self.edge(q, end).await) {
            (Ok((a, ia)), Ok((b, ib))) => {
                let interval = ia.max(ib);
                let window = end - start;
                if interval > 0.0 && window < MIN_SCRAPES_PER_WINDOW * interval {
                    let note = format!(
                        "windows of {window:.1} s are under {MIN_SCRAPES_PER_WINDOW:.0} scrape intervals ({interval:.1} s): counters that jump at a window's edge read up to {:.0}% low; use longer windows or a shorter scrape interval",
                        100.0 * interval / window / 2.0
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                (a, b)
            }
            _ => {
                let value = |s: &Series| {
                    Some((
                        labels(&s.metric),
                        s.value.as_ref().and_then(|v| v.1.parse::<f64>().ok())?,
                    ))
                };
                let a = self.instant(q, start).await?;
                let b = self.instant(q, end).await?;
                (
                    a.iter().filter_map(value).collect(),
                    b.iter().filter_map(value).collect(),
                )
            }
        };
        Ok(b.iter()
            .filter_map(|(l, vb)| {
                let va = a.iter().find(|(la, _)| la == l)?.1;
                let inc = (vb - va).max(0.0);
                let rate = inc / (end - start).max(1e-9);
                Some((l.clone(), Some(rate), None, Some(inc)))
            })
            .collect())
    }

    /// Each series of the selector `q` at instant `t`, interpolated between its last raw sample
    /// at or before `t` and its first after (within [`EDGE_RANGE_S`] either side). Errors when
    /// `q` is not a selector that takes a range.
    /// Also returns the longest median gap between a series' samples (its scrape interval).
    async fn edge(&self, q: &str, t: f64) -> Result<(Vec<(String, f64)>, f64), String> {
        let range = format!("{q}[{}s]", 2 * EDGE_RANGE_S);
        let series = self.instant(&range, t + EDGE_RANGE_S as f64).await?;
        let interval = series
            .iter()
            .filter_map(|s| {
                let mut gaps: Vec<f64> = s.values.windows(2).map(|w| w[1].0 - w[0].0).collect();
                gaps.sort_by(f64::total_cmp);
                gaps.get(gaps.len() / 2).copied()
            })
            .fold(0.0, f64::max);
        let values = series
            .iter()
            .filter_map(|s| {
                let samples: Vec<(f64, f64)> = s
                    .values
                    .iter()
                    .filter_map(|(ts, v)| Some((*ts, v.parse::<f64>().ok()?)))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                Some((labels(&s.metric), interpolate(&samples, t)?))
            })
            .collect();
        Ok((values, interval))
    }

    /// A gauge's mean and maximum per series over the window (1 s steps, at least 2 points).
    async fn gauge(
        &self,
        q: &str,
        start: f64,
        end: f64,
    ) -> Result<Vec<(String, Option<f64>, Option<f64>, Option<f64>)>, String> {
        let step = ((end - start) / 200.0).max(1.0);
        let series = self
            .api(&format!(
                "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step:.3}",
                encode(q)
            ))
            .await?;
        Ok(series
            .iter()
            .map(|s| {
                let g = inferbench_results::server::GaugeStats::of(
                    s.values.iter().filter_map(|(_, x)| x.parse::<f64>().ok()),
                );
                (labels(&s.metric), g.map(|g| g.mean), g.map(|g| g.max), None)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_interpolated_between_raw_samples() {
        let s = [(10.0, 100.0), (11.0, 102.0), (12.0, 103.0)];
        assert_eq!(interpolate(&s, 10.5), Some(101.0));
        assert_eq!(interpolate(&s, 11.0), Some(102.0));
        assert_eq!(interpolate(&s, 11.25), Some(102.25));
        assert_eq!(interpolate(&s, 9.0), Some(100.0));
        assert_eq!(interpolate(&s, 13.0), Some(103.0));
        // A reset between the two samples: the one before counts.
        assert_eq!(interpolate(&[(1.0, 50.0), (2.0, 3.0)], 1.5), Some(50.0));
        assert_eq!(interpolate(&[], 1.0), None);
    }

    #[test]
    fn kinds_are_inferred_from_the_query() {
        let q = |query: &str| Query {
            name: "x".into(),
            query: query.into(),
            kind: None,
        };
        assert_eq!(q("process_cpu_seconds_total").kind(), Kind::Counter);
        assert_eq!(
            q("sum(irate(container_cpu_usage_seconds_total{})) by (pod)").kind(),
            Kind::Gauge
        );
        assert_eq!(q("container_memory_working_set_bytes").kind(), Kind::Gauge);
        assert_eq!(encode("a{b=\"c\"} [1m]"), "a%7Bb%3D%22c%22%7D%20%5B1m%5D");
    }

    #[test]
    fn the_write_ups_queries_file_reads() {
        let dir = std::env::temp_dir().join(format!("inferbench-q-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("metrics.yml");
        std::fs::write(
            &f,
            "- query: sum(irate(container_cpu_usage_seconds_total{}[1m])) by (pod)\n  metricName: cpu-usage\n- query: sum(container_memory_working_set_bytes{}) by (pod)\n  metricName: memory-usage\n",
        )
        .unwrap();
        let qs = load_queries(&f).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[0].name, "cpu-usage");
        assert_eq!(qs[1].kind(), Kind::Gauge);
        std::fs::write(&f, "- {metricName: x}\n").unwrap();
        assert!(load_queries(&f).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
