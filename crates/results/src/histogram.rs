//! A latency histogram in microseconds: HDR (3 significant digits, 1 µs to 1 hour), so memory is
//! bounded however many samples, and serialized (HDR V2 + deflate, base64) so that two reports
//! merge exactly into what one run over both would have recorded.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Largest value recorded, µs (one hour); larger values are clamped to it.
pub const MAX_US: u64 = 3_600_000_000;

/// Percentiles and moments of a histogram, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Smallest, µs.
    pub min_us: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Standard deviation, µs.
    pub stddev_us: f64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 95th percentile, µs.
    pub p95_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest, µs.
    pub max_us: u64,
}

/// Errors reading a serialized histogram.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// Not base64.
    #[error("histogram is not base64: {0}")]
    Base64(String),
    /// Not an HDR V2 histogram.
    #[error("histogram does not decode: {0}")]
    Decode(String),
}

/// A latency histogram, µs.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    h: Histogram<u64>,
    clamped: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::with_digits(3)
    }

    /// An empty histogram keeping 2 significant digits (1% resolution, about a seventh of the
    /// memory: 3,328 counters instead of 23,552): for many small histograms, such as one per
    /// second of a timeline.
    pub fn coarse() -> Self {
        Self::with_digits(2)
    }

    fn with_digits(digits: u8) -> Self {
        Self {
            h: Histogram::new_with_bounds(1, MAX_US, digits).expect("constant bounds are valid"),
            clamped: 0,
        }
    }

    /// Records one value, µs (0 is recorded as 1; beyond [`MAX_US`] is clamped and counted).
    pub fn record(&mut self, us: u64) {
        let v = if us > MAX_US {
            self.clamped += 1;
            MAX_US
        } else {
            us.max(1)
        };
        // In range by construction.
        let _ = self.h.record(v);
    }

    /// Records `n` equal values, µs (as [`record`](Self::record) `n` times).
    pub fn record_n(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        let v = if us > MAX_US {
            self.clamped += n;
            MAX_US
        } else {
            us.max(1)
        };
        // In range by construction.
        let _ = self.h.record_n(v, n);
    }

    /// Values that were clamped to [`MAX_US`].
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Samples.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The value at quantile `q` (0..=1), µs.
    pub fn quantile(&self, q: f64) -> u64 {
        self.h.value_at_quantile(q)
    }

    /// Every distinct recorded value (the highest value of its bucket, µs) with its count, in
    /// increasing order: what a rank test on two distributions needs.
    pub fn counts(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.h.iter_recorded().map(|v| {
            (
                self.h.highest_equivalent(v.value_iterated_to()),
                v.count_at_value(),
            )
        })
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides: cannot fail.
        let _ = self.h.add(&other.h);
        self.clamped += other.clamped;
    }

    /// Percentiles and moments (all zero when empty).
    pub fn summary(&self) -> Summary {
        let h = &self.h;
        if h.is_empty() {
            return Summary {
                count: 0,
                min_us: 0,
                mean_us: 0.0,
                stddev_us: 0.0,
                p50_us: 0,
                p90_us: 0,
                p95_us: 0,
                p99_us: 0,
                p999_us: 0,
                max_us: 0,
            };
        }
        Summary {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            stddev_us: h.stdev(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }

    /// HDR V2 + deflate, base64.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Writing into a Vec only fails on a histogram too large to encode, which bounds prevent.
        let _ = V2DeflateSerializer::new().serialize(&self.h, &mut buf);
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// The inverse of [`LatencyHistogram::encode`].
    pub fn decode(text: &str) -> Result<Self, HistogramError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| HistogramError::Base64(e.to_string()))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
        // Keep the precision it was written with (1 to 3 significant digits).
        let mut out = Self::with_digits(h.sigfig().clamp(1, 3));
        out.h
            .add(&h)
            .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
        Ok(out)
    }
}

/// Read back as `{"hdr": "<base64>", "clamped": N}` (the readable summary beside them is
/// ignored: the histogram holds it).
#[derive(Deserialize)]
struct Wire {
    hdr: String,
    #[serde(default)]
    clamped: u64,
}

/// Written as the summary in milliseconds, for people, `jq` and dashboards (`null` when nothing
/// was recorded), then the exact histogram (HDR V2 + deflate, base64) and how many values were
/// clamped.
#[derive(Serialize)]
struct WireOut {
    count: u64,
    mean_ms: Option<f64>,
    stddev_ms: Option<f64>,
    min_ms: Option<f64>,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    max_ms: Option<f64>,
    hdr: String,
    clamped: u64,
}

/// µs as ms, to the µs.
fn ms(us: f64) -> f64 {
    (us).round() / 1000.0
}

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.summary();
        let some = |us: f64| (x.count > 0).then(|| ms(us));
        WireOut {
            count: x.count,
            mean_ms: some(x.mean_us),
            stddev_ms: some(x.stddev_us),
            min_ms: some(x.min_us as f64),
            p50_ms: some(x.p50_us as f64),
            p90_ms: some(x.p90_us as f64),
            p95_ms: some(x.p95_us as f64),
            p99_ms: some(x.p99_us as f64),
            p999_ms: some(x.p999_us as f64),
            max_ms: some(x.max_us as f64),
            hdr: self.encode(),
            clamped: self.clamped,
        }
        .serialize(s)
    }
}

impl schemars::JsonSchema for LatencyHistogram {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LatencyHistogram".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let ms = |what: &str| serde_json::json!({"type": ["number", "null"], "description": format!("{what}, milliseconds (null when nothing was recorded)")});
        schemars::json_schema!({
            "type": "object",
            "description": "A latency histogram: its summary in milliseconds (for reading), and the exact HDR histogram (for merging and comparing).",
            "required": ["hdr"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "description": "Samples"},
                "mean_ms": ms("Mean"),
                "stddev_ms": ms("Standard deviation"),
                "min_ms": ms("Smallest"),
                "p50_ms": ms("Median"),
                "p90_ms": ms("90th percentile"),
                "p95_ms": ms("95th percentile"),
                "p99_ms": ms("99th percentile"),
                "p999_ms": ms("99.9th percentile"),
                "max_ms": ms("Largest"),
                "hdr": {"type": "string", "description": "HDR histogram V2 + deflate, base64: µs, 1 µs to 1 h, 3 significant digits; merges exactly"},
                "clamped": {"type": "integer", "minimum": 0, "description": "Values above 1 h, recorded as 1 h"}
            }
        })
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let mut h = LatencyHistogram::decode(&w.hdr).map_err(serde::de::Error::custom)?;
        h.clamped = w.clamped;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn summary_of_known_values() {
        let mut h = LatencyHistogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_us, 1);
        assert_eq!(s.max_us, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p99_us, 990);
        assert!((s.mean_us - 500.5).abs() < 0.5);
        let counts: Vec<(u64, u64)> = h.counts().collect();
        assert_eq!(counts.len(), 1000);
        assert_eq!(counts[499], (500, 1));
        h.record(MAX_US * 2);
        assert_eq!(h.clamped(), 1);
        assert_eq!(LatencyHistogram::new().summary().count, 0);
    }

    #[test]
    fn the_json_is_readable_and_round_trips() {
        let mut h = LatencyHistogram::new();
        for v in 1..=1000 {
            h.record(v * 100);
        }
        let v: serde_json::Value = serde_json::to_value(&h).expect("json");
        assert_eq!(v["count"], 1000);
        // HDR keeps 3 significant digits: each figure is the top of its bucket,
        // within 0.1% of the recorded value.
        for (key, want) in [("p50_ms", 50.0), ("p95_ms", 95.0), ("max_ms", 100.0)] {
            let got = v[key].as_f64().expect(key);
            assert!(got >= want && got <= want * 1.001, "{key}: {got} vs {want}");
        }
        assert!(v["hdr"].is_string());
        // The summary is for reading; the histogram comes back exactly.
        let back: LatencyHistogram = serde_json::from_value(v).expect("read back");
        assert_eq!(back, h);
        // Nothing recorded: no figure rather than a latency of 0.
        let empty = serde_json::to_value(LatencyHistogram::new()).expect("json");
        assert_eq!(
            (empty["count"].as_u64(), empty["p95_ms"].is_null()),
            (Some(0), true)
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(LatencyHistogram::decode("not base64 !").is_err());
        assert!(LatencyHistogram::decode("aGVsbG8=").is_err());
        assert!(serde_json::from_str::<LatencyHistogram>("{\"hdr\": 5}").is_err());
    }

    proptest! {
        /// Merging two serialized histograms equals one histogram of both sample sets.
        #[test]
        fn merge_of_round_trips_equals_one_run(a in proptest::collection::vec(0u64..10_000_000_000, 0..300),
                                               b in proptest::collection::vec(0u64..10_000_000_000, 0..300)) {
            let mut ha = LatencyHistogram::new();
            let mut hb = LatencyHistogram::new();
            let mut both = LatencyHistogram::new();
            for v in &a { ha.record(*v); both.record(*v); }
            for v in &b { hb.record(*v); both.record(*v); }
            let ja = serde_json::to_string(&ha).unwrap();
            let jb = serde_json::to_string(&hb).unwrap();
            let mut merged: LatencyHistogram = serde_json::from_str(&ja).unwrap();
            merged.merge(&serde_json::from_str(&jb).unwrap());
            prop_assert_eq!(merged.summary(), both.summary());
            prop_assert_eq!(merged.clamped(), both.clamped());
            prop_assert_eq!(merged, both);
        }
    }
}
