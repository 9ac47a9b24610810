//! Bulk indexing against a local sink that enforces the `_bulk` contract: NDJSON action/source
//! pairs (malformed → 400), `Content-Type: application/x-ndjson`, per-item results with
//! `errors`, 413 past a byte limit, forced 429s (whole requests and single items), basic auth.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use inferbench_sinks::{Auth, IndexConfig, SinkError, index_run};
use serde_json::{Value, json};

mod common;
use common::report;

/// How the sink behaves.
#[derive(Default, Clone)]
struct Rules {
    /// Requests larger than this get 413.
    max_bytes: Option<usize>,
    /// The first N requests get HTTP 429.
    reject_requests: u64,
    /// The first N documents seen get a per-item 429.
    reject_items: u64,
    /// Documents with `"k": K` for K in this set are refused for good (400, mapping error).
    poison_k: Vec<u64>,
    /// Expected `Authorization` header.
    auth: Option<String>,
}

#[derive(Default)]
struct Sink {
    rules: Rules,
    requests: u64,
    items_seen: u64,
    status_counts: BTreeMap<u16, u64>,
    /// Stored documents: (index, id, source), every accepted one (duplicates would show).
    docs: Vec<(String, String, Value)>,
}

type Shared = Arc<Mutex<Sink>>;

fn error(status: StatusCode, reason: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(
            json!({"error": {"type": "parse_exception", "reason": reason}, "status": status.as_u16()}),
        ),
    )
}

async fn bulk(
    State(sink): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let mut s = sink.lock().unwrap();
    s.requests += 1;
    let answer = handle(&mut s, &headers, &body);
    *s.status_counts.entry(answer.0.as_u16()).or_insert(0) += 1;
    answer
}

fn handle(s: &mut Sink, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Json<Value>) {
    if let Some(want) = &s.rules.auth
        && headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing authentication credentials",
        );
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-ndjson") {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "Content-Type must be application/x-ndjson",
        );
    }
    if let Some(max) = s.rules.max_bytes
        && body.len() > max
    {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "request entity too large");
    }
    if s.rules.reject_requests > 0 {
        s.rules.reject_requests -= 1;
        return error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
    }
    if body.is_empty() || !body.ends_with(b"\n") {
        return error(
            StatusCode::BAD_REQUEST,
            "the bulk request must be terminated by a newline",
        );
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => return error(StatusCode::BAD_REQUEST, "not UTF-8"),
    };
    let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
    if !lines.len().is_multiple_of(2) {
        return error(
            StatusCode::BAD_REQUEST,
            "an action line without a source line",
        );
    }
    // Validate everything first: a malformed request is refused whole, nothing stored.
    let mut pairs = Vec::new();
    for pair in lines.chunks(2) {
        let action: Value = match serde_json::from_str(pair[0]) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("action line: {e}")),
        };
        let Some(obj) = action.as_object().filter(|o| o.len() == 1) else {
            return error(
                StatusCode::BAD_REQUEST,
                "an action line has exactly one key",
            );
        };
        let Some(meta) = obj.get("index").and_then(Value::as_object) else {
            return error(StatusCode::BAD_REQUEST, "only `index` actions are expected");
        };
        let Some(index) = meta.get("_index").and_then(Value::as_str) else {
            return error(StatusCode::BAD_REQUEST, "`_index` is missing");
        };
        let id = meta
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let source: Value = match serde_json::from_str(pair[1]) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return error(StatusCode::BAD_REQUEST, "a source line is an object"),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("source line: {e}")),
        };
        pairs.push((index.to_string(), id, source));
    }
    let mut errors = false;
    let mut items = Vec::new();
    for (index, id, source) in pairs {
        s.items_seen += 1;
        let k = source.get("k").and_then(Value::as_u64);
        let (status, err) = if s.items_seen <= s.rules.reject_items {
            (
                429,
                Some(("es_rejected_execution_exception", "rejected execution")),
            )
        } else if k.is_some_and(|k| s.rules.poison_k.contains(&k)) {
            (
                400,
                Some(("mapper_parsing_exception", "failed to parse field [k]")),
            )
        } else {
            (201, None)
        };
        if let Some((t, r)) = err {
            errors = true;
            items.push(json!({"index": {"_index": index, "_id": id, "status": status, "error": {"type": t, "reason": r}}}));
        } else {
            items.push(
                json!({"index": {"_index": index, "_id": id, "status": 201, "result": "created"}}),
            );
            s.docs.push((index, id, source));
        }
    }
    (
        StatusCode::OK,
        Json(json!({"took": 1, "errors": errors, "items": items})),
    )
}

async fn start_sink(rules: Rules) -> (String, Shared) {
    let sink: Shared = Arc::new(Mutex::new(Sink {
        rules,
        ..Default::default()
    }));
    let app = Router::new()
        .route("/_bulk", post(bulk))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), sink)
}

/// Writes `n` request-log lines as the load generator does.
fn write_log(dir: &std::path::Path, name: &str, n: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for k in 0..n {
        let sent = k * 10_000 + 5;
        let failed = k % 50 == 7;
        let line = json!({
            "k": k, "model": "llama", "planned_us": k * 10_000, "sent_us": sent,
            "first_byte_us": sent + 1_000, "first_token_us": if failed { Value::Null } else { json!(sent + 40_000) },
            "end_us": sent + 900_000, "token_events": if failed { 0 } else { 90 },
            "status": if failed { 503 } else { 200 },
            "error": if failed { json!("http_503/model_server") } else { Value::Null },
            "error_detail": if failed { json!("overloaded") } else { Value::Null },
            "model_served": "llama", "endpoint": "10.0.0.1:8000", "prompt_tokens": 512,
            "completion_tokens": 100, "cached_tokens": 0, "warmup": k < 5,
        });
        writeln!(f, "{line}").unwrap();
    }
    path
}

fn cfg(url: &str) -> IndexConfig {
    let mut c = IndexConfig::new(url);
    c.requests = true;
    c.backoff = Duration::from_millis(5);
    c
}

#[tokio::test]
async fn a_run_is_indexed_whole_through_forced_429s() {
    let (url, sink) = start_sink(Rules {
        reject_requests: 2,
        reject_items: 37,
        auth: Some("Basic ZWxhc3RpYzpzM2NyZXQ=".into()), // elastic:s3cret
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let logs = vec![
        write_log(dir.path(), "requests-chat-rate_4_00.jsonl", 600),
        write_log(dir.path(), "requests-routing-epp-w1.jsonl", 400),
    ];
    let mut c = cfg(&url);
    c.batch_docs = 128;
    c.auth = Some(Auth::Basic {
        user: "elastic".into(),
        password: "s3cret".into(),
    });
    let report = report();
    let s = index_run(&c, "run-1", &report, &logs)
        .await
        .expect("indexed");

    assert_eq!(s.summary_docs, 8, "2 scenarios + 4 stages + 2 arms");
    assert_eq!(s.request_docs, 1000);
    assert_eq!(s.sent, 1008);
    assert_eq!(s.indexed, 1008);
    assert_eq!((s.failed, s.skipped), (0, 0));
    assert!(s.first_errors.is_empty(), "{:?}", s.first_errors);
    // Two whole requests refused, then 37 items over the first batch: three retries.
    assert_eq!(s.retried_batches, 3);

    let sink = sink.lock().unwrap();
    assert_eq!(sink.status_counts.get(&429), Some(&2));
    assert!(
        !sink.status_counts.contains_key(&400),
        "{:?}",
        sink.status_counts
    );
    assert_eq!(sink.docs.len(), 1008, "nothing lost, nothing duplicated");
    let ids: HashSet<&str> = sink.docs.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(ids.len(), 1008, "every _id once");
    let template = template_properties();
    for (_, id, doc) in &sink.docs {
        conforms(doc, &template, id);
    }
    let runs: Vec<&Value> = sink
        .docs
        .iter()
        .filter(|d| d.0 == "inferbench-runs")
        .map(|d| &d.2)
        .collect();
    assert_eq!(runs.len(), 8);
    let by = |doc: &str| runs.iter().filter(|d| d["doc"] == doc).count();
    assert_eq!((by("scenario"), by("stage"), by("arm")), (2, 4, 2));
    let stage = runs
        .iter()
        .find(|d| d["doc"] == "stage" && d["name"] == "rate 4.00")
        .unwrap();
    assert_eq!(stage["@timestamp"], "2026-12-03T00:34:34.000Z");
    assert_eq!(stage["scenario"], "chat");
    assert_eq!(stage["kind"], "stages");
    assert_eq!(
        (stage["requests"].as_u64(), stage["failed"].as_u64()),
        (Some(120), Some(3))
    );
    assert_eq!(stage["error_rate"].as_f64(), Some(0.025));
    assert_eq!(stage["achieved_rps"].as_f64(), Some(11.7));
    assert_eq!(stage["output_tps"].as_f64(), Some(1170.0));
    assert_eq!(stage["latency"]["ttft_ms"]["count"], 117);
    assert!(
        (stage["latency"]["ttft_ms"]["p50"].as_f64().unwrap() - 55.8).abs() < 0.1,
        "{}",
        stage["latency"]["ttft_ms"]
    );
    assert_eq!(stage["client"]["dispatch_lag_p99_ms"].as_f64(), Some(0.25));
    assert_eq!(stage["error_kinds"], json!(["http_503/model_server"]));
    let epp = runs
        .iter()
        .find(|d| d["doc"] == "arm" && d["name"] == "epp")
        .unwrap();
    assert_eq!(epp["ttft_added_ms"]["p99"].as_f64(), Some(0.3));
    assert_eq!(epp["scenario"], "routing");

    let reqs: Vec<&Value> = sink
        .docs
        .iter()
        .filter(|d| d.0 == "inferbench-requests")
        .map(|d| &d.2)
        .collect();
    assert_eq!(reqs.len(), 1000);
    let chat = reqs.iter().filter(|d| d["scenario"] == "chat").count();
    assert_eq!(chat, 600);
    let r = reqs
        .iter()
        .find(|d| d["scenario"] == "chat" && d["k"] == 250)
        .unwrap();
    // The stage "rate 4.00" started at START + 10; request 250 was sent 2.500005 s later.
    assert_eq!(r["@timestamp"], "2026-12-03T00:34:36.500Z");
    assert_eq!(r["step"], "rate 4.00");
    assert_eq!(r["run_id"], "run-1");
    assert_eq!(r["ttft_ms"].as_f64(), Some(40.0));
    assert_eq!(r["succeeded"], true);
    assert_eq!(
        (r["target"].as_str(), r["url"].as_str()),
        (Some("vllm"), Some("http://vllm:8000"))
    );
    let failed = reqs
        .iter()
        .filter(|d| d["scenario"] == "routing" && d["succeeded"] == false)
        .count();
    assert_eq!(failed, 8, "k % 50 == 7 over 400 lines");
    let epp_req = reqs.iter().find(|d| d["scenario"] == "routing").unwrap();
    assert_eq!(epp_req["step"], "epp");
}

#[tokio::test]
async fn a_413_halves_the_batch_until_it_fits() {
    let (url, sink) = start_sink(Rules {
        max_bytes: Some(40_000),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let logs = vec![write_log(dir.path(), "requests-chat-rate_2_00.jsonl", 1000)];
    let mut c = cfg(&url);
    c.batch_docs = 500; // ~500 KB per batch: far over the sink's 40 KB.
    let s = index_run(&c, "run-413", &report(), &logs)
        .await
        .expect("indexed");
    assert_eq!((s.sent, s.indexed, s.failed), (1008, 1008, 0));
    assert_eq!(s.retried_batches, 0, "a split is not a retry");
    let sink = sink.lock().unwrap();
    assert!(sink.status_counts[&413] >= 3, "{:?}", sink.status_counts);
    assert_eq!(sink.docs.len(), 1008);
    let ids: HashSet<&str> = sink.docs.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(ids.len(), 1008);
    assert!(!sink.status_counts.contains_key(&400));
}

#[tokio::test]
async fn a_document_too_large_alone_and_refused_items_are_counted_not_hidden() {
    let (url, sink) = start_sink(Rules {
        max_bytes: Some(1_000),
        poison_k: vec![3, 4],
        reject_items: 1,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let logs = vec![write_log(dir.path(), "requests-chat-rate_2_00.jsonl", 10)];
    let mut c = cfg(&url);
    c.max_retries = 1;
    let s = index_run(&c, "run-x", &report(), &logs)
        .await
        .expect("indexed");
    // Summary documents are ~2 KB each: each alone is still too large.
    assert_eq!(s.sent, 18);
    assert_eq!(s.failed, 8 + 2, "{:?}", s.first_errors);
    assert_eq!(s.indexed, 8);
    assert_eq!(s.first_errors.len(), 10);
    assert!(
        s.first_errors[0].contains("HTTP 413"),
        "{}",
        s.first_errors[0]
    );
    assert!(
        s.first_errors
            .iter()
            .any(|e| e.contains("mapper_parsing_exception")),
        "{:?}",
        s.first_errors
    );
    assert_eq!(s.retried_batches, 1, "the one item refused with 429");
    assert_eq!(sink.lock().unwrap().docs.len(), 8);
}

#[tokio::test]
async fn a_dead_url_names_the_url_never_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut c = cfg(&format!("http://elastic:hunter2@127.0.0.1:{port}"));
    c.max_retries = 2;
    let e = index_run(&c, "run-dead", &report(), &[])
        .await
        .expect_err("dead");
    let text = e.to_string();
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.contains("gave up after 2 retries"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("elastic"),
        "{text}"
    );
    match e {
        SinkError::Server { summary, .. } => {
            assert_eq!((summary.indexed, summary.retried_batches), (0, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[tokio::test]
async fn wrong_credentials_stop_with_the_status_and_the_url() {
    let (url, _sink) = start_sink(Rules {
        auth: Some("Basic nope".into()),
        ..Default::default()
    })
    .await;
    let c = IndexConfig::from_vars(&url, Some("bench"), false, |k| match k {
        "INFERBENCH_INDEX_USER" => Some("u".into()),
        "INFERBENCH_INDEX_PASSWORD" => Some("topsecret".into()),
        _ => None,
    })
    .unwrap();
    let e = index_run(&c, "r", &report(), &[])
        .await
        .expect_err("401")
        .to_string();
    assert!(e.contains(&url) && e.contains("HTTP 401"), "{e}");
    assert!(!e.contains("topsecret"), "{e}");
}

#[test]
fn configuration_mistakes_show_before_the_run() {
    let none = |_: &str| None;
    assert!(IndexConfig::from_vars("http://h:9200", None, false, none).is_ok());
    let e = IndexConfig::from_vars("http://h:9200", Some("Bench"), false, none)
        .unwrap_err()
        .to_string();
    assert!(e.contains("uppercase"), "{e}");
    let e = IndexConfig::from_vars("http://h:9200", None, false, |k| {
        (k == "INFERBENCH_INDEX_USER").then(|| "u".to_string())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("INFERBENCH_INDEX_PASSWORD"), "{e}");
    let c = IndexConfig::from_vars("http://h:9200", None, true, |k| {
        (k == "INFERBENCH_INDEX_API_KEY").then(|| "abc".to_string())
    })
    .unwrap();
    assert_eq!(c.auth, Some(Auth::ApiKey("abc".into())));
    assert_eq!(
        (c.runs_index().as_str(), c.requests_index().as_str()),
        ("inferbench-runs", "inferbench-requests")
    );
}

#[tokio::test]
async fn the_sink_refuses_malformed_ndjson() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (url, sink) = start_sink(Rules::default()).await;
    let addr = url.trim_start_matches("http://").to_string();
    for body in [
        "{\"index\":{\"_index\":\"x\"}}\n",          // no source line
        "{\"index\":{\"_index\":\"x\"}}\n{\"a\":1}", // no final newline
        "{\"index\":{}}\n{\"a\":1}\n",               // no _index
        "not json\n{\"a\":1}\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{body:?}: {out}");
    }
    assert!(sink.lock().unwrap().docs.is_empty());
}

/// The mapped fields of `deploy/opensearch/index-template.json`.
fn template_properties() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/opensearch/index-template.json"
    );
    let t: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(t["index_patterns"], json!(["inferbench-*"]));
    t["template"]["mappings"]["properties"].clone()
}

/// Every field of `doc` is mapped by the template, with a type its value fits (so no field is
/// left to dynamic mapping and no value would be refused).
fn conforms(doc: &Value, props: &Value, at: &str) {
    let Value::Object(m) = doc else {
        panic!("{at}: not an object")
    };
    for (k, v) in m {
        let here = format!("{at}.{k}");
        let mapping = props
            .get(k)
            .unwrap_or_else(|| panic!("{here} is not in the index template"));
        let values: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for v in values {
            if v.is_null() {
                continue;
            }
            if let Some(sub) = mapping.get("properties") {
                conforms(v, sub, &here);
                continue;
            }
            let ty = mapping["type"].as_str().unwrap();
            let fits = match ty {
                "keyword" | "date" => v.is_string(),
                "long" | "integer" => v.is_u64() || v.is_i64(),
                "float" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => false,
            };
            assert!(fits, "{here}: {v} does not fit the mapped type {ty}");
        }
    }
}
