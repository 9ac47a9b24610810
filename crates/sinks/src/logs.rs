//! Request logs as documents: each JSONL line (`loadgen::log::Line`) with the run, scenario, step
//! and an `@timestamp`, read line by line (memory stays bounded by one batch).

use std::path::{Path, PathBuf};

use inferbench_results::suite::Report;
use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt;

use crate::SinkError;
use crate::bulk::Bulk;
use crate::docs::iso8601_ms;

/// A request log and what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogFile {
    /// The JSONL file.
    pub path: PathBuf,
    /// The scenario's name.
    pub scenario: String,
    /// The step (stage, sweep step, arm) the log is of, if known.
    pub step: Option<String>,
    /// The target's name, if known.
    pub target: Option<String>,
    /// The target's URL (credentials removed), if known.
    pub url: Option<String>,
    /// Unix time the step started, seconds: the lines' µs count from it.
    pub started_unix_s: u64,
}

/// The runner's file-name form of a name: all but ASCII letters, digits, `-`, `_` become `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl RequestLogFile {
    /// Finds what the runner's log `requests-<scenario>-<step>[-w<N>].jsonl` belongs to: the
    /// scenario of `report` whose file-name form is the longest prefix (the last one, if
    /// repeated: its log replaced the others'), then its stage or arm likewise. The start is
    /// that stage's or arm's (else the scenario's, else the report's). A name that matches no
    /// scenario keeps its middle part as the scenario and the report's start.
    ///
    /// An arm's later windows (`-w2`…) get the arm's first start: their timestamps are early by
    /// the windows before them. Give [`RequestLogFile`]s directly to be exact.
    pub fn resolve(report: &Report, path: &Path) -> RequestLogFile {
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = stem.strip_suffix(".jsonl").unwrap_or(&stem);
        let middle = stem.strip_prefix("requests-").unwrap_or(stem);
        let scenario = report
            .scenarios
            .iter()
            .filter(|s| middle.starts_with(&format!("{}-", sanitize(&s.name))))
            .max_by_key(|s| sanitize(&s.name).len());
        let Some(s) = scenario else {
            return RequestLogFile {
                path: path.to_path_buf(),
                scenario: middle.to_string(),
                step: None,
                target: None,
                url: None,
                started_unix_s: report.started_unix_s,
            };
        };
        let rest = &middle[sanitize(&s.name).len() + 1..];
        let steps = s
            .stages
            .iter()
            .map(|st| (&st.name, st.result.started_unix_s))
            .chain(s.arms.iter().map(|a| (&a.name, a.result.started_unix_s)));
        let step = steps
            .filter(|(n, _)| rest.starts_with(&sanitize(n)))
            .max_by_key(|(n, _)| n.len());
        let first_nonzero = |xs: &[u64]| xs.iter().copied().find(|&x| x > 0).unwrap_or(0);
        RequestLogFile {
            path: path.to_path_buf(),
            scenario: s.name.clone(),
            step: Some(step.map_or_else(|| rest.to_string(), |(n, _)| n.clone())),
            target: Some(s.target.clone()),
            url: Some(s.url.clone()),
            started_unix_s: first_nonzero(&[
                step.map_or(0, |(_, t)| t),
                s.total.started_unix_s,
                report.started_unix_s,
            ]),
        }
    }
}

/// `a - b` in ms, when both are there and in order.
fn ms_between(a: Option<u64>, b: Option<u64>) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if a >= b => json!((a - b) as f64 / 1000.0),
        _ => Value::Null,
    }
}

/// The document for one log line.
fn request_doc(
    mut m: Map<String, Value>,
    run_id: &str,
    tool_version: &str,
    log: &RequestLogFile,
    file: &str,
    line_no: u64,
) -> Map<String, Value> {
    let get = |k: &str| m.get(k).and_then(Value::as_u64);
    let sent = get("sent_us").or(get("planned_us")).unwrap_or(0);
    let at_ms = log
        .started_unix_s
        .saturating_mul(1000)
        .saturating_add(sent / 1000);
    let ttft = ms_between(get("first_token_us"), get("sent_us"));
    let e2e = ms_between(get("end_us"), get("sent_us"));
    let ok = m.get("error").is_none_or(Value::is_null);
    m.insert("@timestamp".into(), json!(iso8601_ms(at_ms)));
    m.insert("run_id".into(), json!(run_id));
    m.insert("tool_version".into(), json!(tool_version));
    m.insert("scenario".into(), json!(log.scenario));
    m.insert("step".into(), json!(log.step));
    m.insert("target".into(), json!(log.target));
    m.insert("url".into(), json!(log.url));
    m.insert("doc".into(), json!("request"));
    m.insert("log_file".into(), json!(file));
    m.insert("line".into(), json!(line_no));
    m.insert("succeeded".into(), json!(ok));
    m.insert("ttft_ms".into(), ttft);
    m.insert("e2e_ms".into(), e2e);
    m
}

/// Sends every line of `log` through `bulk` into `index`. Lines that are not JSON objects are
/// skipped and counted (`IndexSummary::skipped`), naming file and line.
pub(crate) async fn stream(
    bulk: &mut Bulk<'_>,
    index: &str,
    run_id: &str,
    report: &Report,
    log: &RequestLogFile,
) -> Result<(), SinkError> {
    let shown = log.path.display().to_string();
    let err = |e: std::io::Error| SinkError::Log {
        path: shown.clone(),
        message: e.to_string(),
    };
    let file = tokio::fs::File::open(&log.path).await.map_err(err)?;
    let name = log
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, file);
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line).await.map_err(err)? == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => {
                let doc = request_doc(m, run_id, &report.tool_version, log, &name, line_no);
                bulk.summary.request_docs += 1;
                bulk.push(
                    index,
                    &format!("{run_id}:{name}:{line_no}"),
                    &Value::Object(doc),
                )
                .await?;
            }
            Ok(_) => {
                bulk.summary.skipped += 1;
                bulk.summary
                    .error(format!("{shown}:{line_no}: not a JSON object, skipped"));
            }
            Err(e) => {
                bulk.summary.skipped += 1;
                bulk.summary
                    .error(format!("{shown}:{line_no}: not JSON ({e}), skipped"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_results::run::RunResult;
    use inferbench_results::suite::{ScenarioReport, StageReport};

    fn scenario(name: &str, stages: &[(&str, u64)]) -> ScenarioReport {
        let mut total = RunResult::empty("t", "l");
        total.started_unix_s = 1000;
        ScenarioReport {
            name: name.into(),
            description: None,
            target: "t".into(),
            url: "http://t".into(),
            repeat: 1,
            kind: "stages".into(),
            stages: stages
                .iter()
                .map(|(n, t)| {
                    let mut r = RunResult::empty("t", "l");
                    r.started_unix_s = *t;
                    StageReport {
                        name: n.to_string(),
                        result: r,
                    }
                })
                .collect(),
            total,
            slo: None,
            thresholds: vec![],
            breaking_point: None,
            arms: vec![],
            trace: None,
            passed: true,
        }
    }

    #[test]
    fn file_names_find_their_scenario_and_step() {
        let report = Report {
            schema_version: 3,
            tool_version: "0.1.0".into(),
            started_unix_s: 900,
            config: None,
            partial: false,
            scenarios: vec![
                scenario("chat", &[("rate 4.00", 1001)]),
                scenario("chat-long", &[("rate 4.00", 2001), ("rate 8.00", 2002)]),
            ],
            shard: None,
        };
        let r = |f: &str| RequestLogFile::resolve(&report, Path::new(f));
        let a = r("/x/requests-chat-long-rate_8_00.jsonl");
        assert_eq!(
            (a.scenario.as_str(), a.step.as_deref(), a.started_unix_s),
            ("chat-long", Some("rate 8.00"), 2002)
        );
        let b = r("requests-chat-rate_4_00.jsonl");
        assert_eq!(
            (b.scenario.as_str(), b.step.as_deref(), b.started_unix_s),
            ("chat", Some("rate 4.00"), 1001)
        );
        let c = r("requests-chat-odd.jsonl");
        assert_eq!((c.step.as_deref(), c.started_unix_s), (Some("odd"), 1000));
        let d = r("requests-other-x.jsonl");
        assert_eq!(
            (d.scenario.as_str(), d.step, d.started_unix_s),
            ("other-x", None, 900)
        );
    }
}
