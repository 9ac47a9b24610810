//! Prometheus remote write 1.0 (`run --remote-write URL`): a run's summary series — requests,
//! failures, achieved rate, output tokens/s, TTFT/ITL/e2e quantiles, client CPU — per scenario,
//! stage and arm, labelled by run id, pushed once at the end of the run as a snappy-compressed
//! protobuf `WriteRequest`, so they land where the dashboards already read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::RunResult;
use inferbench_results::suite::Report;

/// One series: its labels (with `__name__`) and one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Labels, `__name__` among them; sorted by name when encoded.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// The quantiles written for each latency.
const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")];

/// The series of one result (`part`: `all`, a stage's or an arm's name).
fn of_result(base: &[(String, String)], part_label: (&str, &str), r: &RunResult) -> Vec<Series> {
    let mut out = Vec::new();
    let mut push = |name: &str, extra: Option<(&str, &str)>, value: f64| {
        if !value.is_finite() {
            return;
        }
        let mut labels = base.to_vec();
        labels.push(("__name__".into(), name.into()));
        labels.push((part_label.0.into(), part_label.1.into()));
        if let Some((k, v)) = extra {
            labels.push((k.into(), v.into()));
        }
        out.push(Series { labels, value });
    };
    let c = &r.total.counts;
    push("inferbench_requests", None, c.requests as f64);
    push("inferbench_failed_requests", None, c.failed() as f64);
    push(
        "inferbench_achieved_requests_per_second",
        None,
        r.achieved_rate(),
    );
    push(
        "inferbench_output_tokens_per_second",
        None,
        r.output_tokens_per_s(),
    );
    push("inferbench_client_cpu_seconds", None, r.client.cpu_seconds);
    let lat: [(&str, &LatencyHistogram); 3] = [
        ("inferbench_ttft_seconds", &r.total.latency.ttft),
        ("inferbench_itl_seconds", &r.total.latency.itl),
        ("inferbench_e2e_seconds", &r.total.latency.e2e),
    ];
    for (name, h) in lat {
        if h.count() == 0 {
            continue;
        }
        for (q, label) in QUANTILES {
            push(name, Some(("quantile", label)), h.quantile(q) as f64 / 1e6);
        }
    }
    out
}

/// Every series of `report`, labelled `run_id`, `scenario`, `target` and `stage` (`all` for a
/// scenario's total) or `arm`.
pub fn series_of(run_id: &str, report: &Report) -> Vec<Series> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        let base = vec![
            ("run_id".to_string(), run_id.to_string()),
            ("scenario".to_string(), s.name.clone()),
            ("target".to_string(), s.target.clone()),
        ];
        out.extend(of_result(&base, ("stage", "all"), &s.total));
        if s.arms.is_empty() && s.stages.len() > 1 {
            for st in &s.stages {
                out.extend(of_result(&base, ("stage", &st.name), &st.result));
            }
        }
        for a in &s.arms {
            out.extend(of_result(&base, ("arm", &a.name), &a.result));
        }
    }
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(tag: u8, data: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// The protobuf `prometheus.WriteRequest` of `series`, every sample at `ts_ms`.
pub fn encode(series: &[Series], ts_ms: i64) -> Vec<u8> {
    let mut req = Vec::new();
    for s in series {
        let mut ts = Vec::new();
        let mut labels = s.labels.clone();
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in &labels {
            let mut l = Vec::new();
            bytes_field(0x0a, k.as_bytes(), &mut l); // Label.name = 1
            bytes_field(0x12, v.as_bytes(), &mut l); // Label.value = 2
            bytes_field(0x0a, &l, &mut ts); // TimeSeries.labels = 1
        }
        let mut sample = vec![0x09]; // Sample.value = 1, fixed64
        sample.extend_from_slice(&s.value.to_le_bytes());
        sample.push(0x10); // Sample.timestamp = 2, varint
        varint(ts_ms as u64, &mut sample);
        bytes_field(0x12, &sample, &mut ts); // TimeSeries.samples = 2
        bytes_field(0x0a, &ts, &mut req); // WriteRequest.timeseries = 1
    }
    req
}

/// What a push did.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// Series written.
    pub series: usize,
    /// Bytes sent (compressed).
    pub bytes: usize,
}

/// Pushes `report`'s series to the remote-write endpoint `url` (e.g.
/// `http://127.0.0.1:9090/api/v1/write`), stamped now. The error names the URL and what the
/// server said.
pub async fn push(url: &str, run_id: &str, report: &Report) -> Result<Pushed, String> {
    // `user:password@` in the URL becomes basic authentication and is never printed.
    let auth = crate::target::credentials(url.trim()).map(|(user, password)| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    });
    let url = &crate::target::without_credentials(url.trim());
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("--remote-write {url}: not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--remote-write {url}: only http:// is supported (no TLS in this build)"
        ));
    }
    let series = series_of(run_id, report);
    let ts_ms = inferbench_timer::unix_now().as_millis() as i64;
    let raw = encode(&series, ts_ms);
    let body = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| format!("--remote-write: snappy: {e}"))?;
    let n = body.len();
    let mut req = http::Request::new(Full::new(Bytes::from(body)));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    h.insert(
        http::header::CONTENT_ENCODING,
        http::HeaderValue::from_static("snappy"),
    );
    h.insert(
        "x-prometheus-remote-write-version",
        http::HeaderValue::from_static("0.1.0"),
    );
    if let Some(a) = auth {
        let mut v = http::HeaderValue::from_str(&a)
            .map_err(|_| format!("--remote-write {url}: the credentials are not a valid header"))?;
        v.set_sensitive(true);
        h.insert(http::header::AUTHORIZATION, v);
    }
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("--remote-write {url}: {e}"))?;
        let status = resp.status();
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(300)
                    .collect::<String>()
            })
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "--remote-write {url}: HTTP {status}: {}",
                text.trim()
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| format!("--remote-write {url}: no answer in 30 s"))??;
    Ok(Pushed {
        series: series.len(),
        bytes: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_request_is_protobuf() {
        let s = Series {
            labels: vec![("b".into(), "2".into()), ("__name__".into(), "m".into())],
            value: 1.5,
        };
        let got = encode(&[s], 300);
        // Labels sorted (`__name__` first), then one sample: 1.5 at 300 ms.
        let mut want = vec![0x0a, 37];
        want.extend([0x0a, 13, 0x0a, 8]);
        want.extend(b"__name__");
        want.extend([0x12, 1, b'm']);
        want.extend([0x0a, 6, 0x0a, 1, b'b', 0x12, 1, b'2']);
        want.extend([0x12, 12, 0x09]);
        want.extend(1.5f64.to_le_bytes());
        want.extend([0x10, 0xac, 0x02]);
        assert_eq!(got, want);
    }
}
