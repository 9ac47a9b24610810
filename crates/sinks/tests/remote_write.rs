//! `--remote-write` against a local receiver that checks the remote-write 1.0 contract:
//! `POST`, `Content-Encoding: snappy`, `Content-Type: application/x-protobuf`, the version
//! header, and a body that decodes as a `WriteRequest` of the run's series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use inferbench_sinks::remote_write::{push, series_of};

mod common;
use common::report;

/// One received series: its labels, its value and its timestamp (ms).
type Received = (BTreeMap<String, String>, f64, i64);

/// What the receiver saw.
type Seen = Arc<Mutex<Vec<Received>>>;

fn varint(b: &[u8], i: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i).ok_or("truncated varint")?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

/// The length-delimited fields with tag `want` of a message; any other field is an error
/// unless it is a varint or fixed64 (skipped).
fn fields(b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i)?;
        match key & 7 {
            0 => out.push((key >> 3, varint(b, &mut i)?.to_le_bytes().to_vec())),
            1 => {
                let v = b.get(i..i + 8).ok_or("truncated fixed64")?;
                out.push((key >> 3, v.to_vec()));
                i += 8;
            }
            2 => {
                let n = usize::try_from(varint(b, &mut i)?).map_err(|e| e.to_string())?;
                let v = b.get(i..i + n).ok_or("truncated bytes")?;
                out.push((key >> 3, v.to_vec()));
                i += n;
            }
            w => return Err(format!("wire type {w}")),
        }
    }
    Ok(out)
}

fn decode(body: &[u8]) -> Result<Vec<Received>, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (tag, ts) in fields(&raw)? {
        if tag != 1 {
            return Err(format!("WriteRequest field {tag}"));
        }
        let mut labels = BTreeMap::new();
        let mut names = Vec::new();
        let mut sample = None;
        for (tag, v) in fields(&ts)? {
            match tag {
                1 => {
                    let kv = fields(&v)?;
                    let s = |i: usize| String::from_utf8(kv[i].1.clone()).unwrap();
                    names.push(s(0));
                    labels.insert(s(0), s(1));
                }
                2 => {
                    let f = fields(&v)?;
                    let value = f64::from_le_bytes(f[0].1[..8].try_into().unwrap());
                    let t = i64::from_le_bytes(f[1].1[..8].try_into().unwrap());
                    sample = Some((value, t));
                }
                t => return Err(format!("TimeSeries field {t}")),
            }
        }
        // Remote write requires labels sorted by name.
        let mut sorted = names.clone();
        sorted.sort();
        if names != sorted {
            return Err(format!("labels not sorted: {names:?}"));
        }
        let (v, t) = sample.ok_or("a series without a sample")?;
        out.push((labels, v, t));
    }
    Ok(out)
}

async fn receive(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    if h("content-encoding") != "snappy"
        || h("content-type") != "application/x-protobuf"
        || h("x-prometheus-remote-write-version") != "0.1.0"
    {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    if h("authorization") != "Basic dTpzM2NyM3Q=" {
        return StatusCode::UNAUTHORIZED;
    }
    match decode(&body) {
        Ok(s) => {
            seen.lock().unwrap().extend(s);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn start() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/api/v1/write", post(receive))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("127.0.0.1:{}", addr.port()), seen)
}

#[tokio::test]
async fn the_run_arrives_as_a_write_request_with_every_series() {
    let (addr, seen) = start().await;
    let rep = report();
    let p = push(&format!("http://u:s3cr3t@{addr}/api/v1/write"), "r42", &rep)
        .await
        .unwrap();
    let got = seen.lock().unwrap().clone();
    let want = series_of("r42", &rep);
    assert_eq!((p.series, got.len()), (want.len(), want.len()));
    for (s, (labels, v, t)) in want.iter().zip(&got) {
        let l: BTreeMap<String, String> = s.labels.iter().cloned().collect();
        assert_eq!((&l, *v), (labels, s.value));
        assert!(*t > 1_700_000_000_000, "stamped now: {t}");
    }
    // Every stage of `chat`, both arms of `routing`, and the whole of each.
    let parts: std::collections::BTreeSet<String> = got
        .iter()
        .filter(|(l, _, _)| l["__name__"] == "inferbench_requests")
        .map(|(l, _, _)| {
            format!(
                "{}/{}",
                l["scenario"],
                l.get("stage").or(l.get("arm")).unwrap()
            )
        })
        .collect();
    assert_eq!(
        parts.into_iter().collect::<Vec<_>>(),
        [
            "chat/all",
            "chat/rate 2.00",
            "chat/rate 4.00",
            "chat/rate 8.00",
            "routing/all",
            "routing/direct",
            "routing/epp"
        ]
    );
    let chat = got
        .iter()
        .find(|(l, _, _)| {
            l["__name__"] == "inferbench_requests" && l["scenario"] == "chat" && l["stage"] == "all"
        })
        .unwrap();
    assert_eq!(chat.1, rep.scenarios[0].total.total.counts.requests as f64);
}

#[tokio::test]
async fn a_refusal_names_the_status_and_url_never_the_password() {
    let (addr, _) = start().await;
    let e = push(
        &format!("http://u:wrong@{addr}/api/v1/write"),
        "r",
        &report(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("401") && e.contains(&addr), "{e}");
    assert!(!e.contains("wrong"), "{e}");
    let e = push("http://u:wrong@127.0.0.1:1/api/v1/write", "r", &report())
        .await
        .unwrap_err();
    assert!(e.contains("127.0.0.1:1") && !e.contains("wrong"), "{e}");
    let e = push("https://example.invalid/w", "r", &report())
        .await
        .unwrap_err();
    assert!(e.contains("only http://"), "{e}");
}
