//! `inferbench check URL`: the smoke test after a deployment — `/health`, `/v1/models`, one
//! unary and one streaming completion — each ✓ or ✗ with its time and a diagnosis a person can
//! act on.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use inferbench_loadgen::client::{Api, Client, ClientConfig, ErrorKind, Outcome, RequestSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Flags of `inferbench check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Base URL of the endpoint, e.g. http://127.0.0.1:8000.
    url: String,
    /// Model to try (default: the first one /v1/models lists).
    #[arg(long)]
    model: Option<String>,
    /// Environment variable holding the API key.
    #[arg(long)]
    api_key_env: Option<String>,
    /// chat or completions.
    #[arg(long, default_value = "chat")]
    api: String,
    /// Most time per check.
    #[arg(long, default_value = "30s")]
    timeout: String,
}

/// A plain HTTP/1.1 GET: (status, body).
async fn get(
    url: &str,
    path: &str,
    key: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let host = uri.host().ok_or("no host in the URL")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let base = uri.path().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    let full = format!("{base}{path}");
    let work = async {
        let mut s = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let auth = key
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {full} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Accept: */*\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send failed: {e}"))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read failed: {e}"))?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer in {} s", timeout.as_secs()))??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("the answer is not HTTP")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// Decodes a chunked body (enough for small answers).
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

struct Line {
    ok: bool,
    name: &'static str,
    took: Duration,
    detail: String,
}

fn print(l: &Line) {
    println!(
        "{} {:<22} {:>9.1} ms  {}",
        if l.ok { "✓" } else { "✗" },
        l.name,
        l.took.as_secs_f64() * 1000.0,
        l.detail
    );
}

/// What a failed completion means, in words a person can act on.
fn diagnose(o: &Outcome, model: &str, served: &[String]) -> String {
    match &o.error {
        None => String::new(),
        Some((ErrorKind::Http { status, body }, side)) => match status {
            401 | 403 => format!(
                "HTTP {status}: not authorized — pass the key with --api-key-env VAR (side: {side:?})"
            ),
            404 if body.to_lowercase().contains("model") => format!(
                "HTTP 404: model `{model}` is not served here (served: {})",
                served.join(", ")
            ),
            404 => "HTTP 404: wrong path — give the server's base URL (http://host:port), not a full endpoint path".to_string(),
            400 if body.to_lowercase().contains("model") => {
                format!("HTTP 400 about the model: {body}")
            }
            429 => "HTTP 429: the server or gateway is rate limiting or saturated".to_string(),
            s if *s >= 500 => format!("HTTP {s} from the {side:?}: {body}"),
            s => format!("HTTP {s}: {body}"),
        },
        Some((ErrorKind::Connect { detail }, _)) => format!("cannot connect: {detail}"),
        Some((ErrorKind::Timeout { phase }, _)) => format!("timed out ({phase})"),
        Some((ErrorKind::Http200Error { message }, side)) => {
            format!("HTTP 200 with an error object as the answer ({side:?}): {message}")
        }
        Some((ErrorKind::BrokenStream { detail }, side)) => {
            format!("the connection broke mid-answer ({side:?}): {detail}")
        }
        Some((ErrorKind::Protocol { detail }, _)) => detail.clone(),
    }
}

/// Runs the checks; exit code 0 when all pass, 1 otherwise.
pub async fn run(a: CheckArgs) -> anyhow::Result<u8> {
    let timeout = crate::run_cmd::parse_duration(&a.timeout).context("--timeout")?;
    let key = match &a.api_key_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("--api-key-env: environment variable {var} is not set"))?,
        ),
        None => None,
    };
    let url = a.url.trim_end_matches('/').to_string();
    let shown = inferbench_scenario::runner::redact(&url);
    println!("inferbench check {shown}");
    let mut all_ok = true;
    let mut report = |l: Line| {
        all_ok &= l.ok;
        print(&l);
    };

    // 1. /health
    let t = Instant::now();
    let health = get(&url, "/health", key.as_deref(), timeout).await;
    report(match &health {
        Ok((200, _)) => Line {
            ok: true,
            name: "GET /health",
            took: t.elapsed(),
            detail: "200".into(),
        },
        Ok((404, _)) => Line {
            ok: true,
            name: "GET /health",
            took: t.elapsed(),
            detail: "404: no /health here (a gateway may not expose it); continuing".into(),
        },
        Ok((s, b)) => Line {
            ok: false,
            name: "GET /health",
            took: t.elapsed(),
            detail: format!(
                "{s}: the server says it is not healthy: {}",
                b.chars().take(120).collect::<String>()
            ),
        },
        Err(e) => Line {
            ok: false,
            name: "GET /health",
            took: t.elapsed(),
            detail: e.clone(),
        },
    });
    if let Err(e) = &health {
        println!("  the endpoint cannot be reached ({e}); is the URL right and the server up?");
        return Ok(1);
    }

    // 2. /v1/models
    let t = Instant::now();
    let mut served: Vec<String> = Vec::new();
    match get(&url, "/v1/models", key.as_deref(), timeout).await {
        Ok((200, body)) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            served = v["data"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["id"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let ok = !served.is_empty();
            report(Line {
                ok,
                name: "GET /v1/models",
                took: t.elapsed(),
                detail: if ok {
                    format!("{} model(s): {}", served.len(), served.join(", "))
                } else {
                    "200 but no model listed (is this an OpenAI-compatible server?)".into()
                },
            });
        }
        Ok((s @ (401 | 403), _)) => report(Line {
            ok: false,
            name: "GET /v1/models",
            took: t.elapsed(),
            detail: format!("{s}: not authorized — pass the key with --api-key-env VAR"),
        }),
        Ok((s, _)) => report(Line {
            ok: false,
            name: "GET /v1/models",
            took: t.elapsed(),
            detail: format!("{s}: wrong path? give the base URL (http://host:port)"),
        }),
        Err(e) => report(Line {
            ok: false,
            name: "GET /v1/models",
            took: t.elapsed(),
            detail: e,
        }),
    }
    let model = a
        .model
        .clone()
        .or_else(|| served.first().cloned())
        .unwrap_or_else(|| "mock-model".into());
    if !served.is_empty() && !served.contains(&model) {
        println!("  note: `{model}` is not in /v1/models (adapters may still be served)");
    }

    // 3 and 4: one unary and one streaming completion.
    let mut cfg = ClientConfig::new(&url);
    cfg.api = if a.api == "completions" {
        Api::Completions
    } else {
        Api::Chat
    };
    cfg.api_key = key.clone();
    cfg.ttft_timeout = timeout;
    cfg.total_timeout = timeout;
    let client = Client::new(&cfg)?;
    for stream in [false, true] {
        let spec = RequestSpec {
            model: model.clone(),
            prompt: "Say hello in five words.".into(),
            max_tokens: 8,
            stream,
            ..Default::default()
        };
        let name = if stream {
            "streaming completion"
        } else {
            "unary completion"
        };
        let o = client.send(&spec, client.body(&spec)).await;
        let took = o.end.saturating_duration_since(o.sent);
        let mut detail = diagnose(&o, &model, &served);
        let mut ok = o.error.is_none();
        if ok {
            let served_model = o.model_served.clone().unwrap_or_default();
            detail = format!(
                "{} output token(s) from `{served_model}`{}",
                o.output_tokens(),
                o.endpoint
                    .as_ref()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default()
            );
            if !served_model.is_empty() && served_model != model {
                ok = false;
                detail = format!("answered by `{served_model}`, not `{model}`: misrouted");
            }
            if stream {
                let ttft = o.first_token.map_or(0.0, |f| {
                    f.saturating_duration_since(o.sent).as_secs_f64() * 1000.0
                });
                let n = o.token_events.len();
                let spread = match (o.token_events.first(), o.token_events.last()) {
                    (Some(a), Some(b)) => b.saturating_duration_since(*a),
                    _ => Duration::ZERO,
                };
                detail.push_str(&format!(", TTFT {ttft:.1} ms, {n} events"));
                if n > 3 && spread < Duration::from_micros(500) {
                    detail.push_str(" — all events arrived at once: something between us and the model buffers the stream");
                }
            }
        } else if stream && let Some((ErrorKind::Protocol { .. }, _)) = &o.error {
            detail.push_str(" — not streaming: does the server or a proxy ignore `stream: true`?");
        }
        report(Line {
            ok,
            name,
            took,
            detail,
        });
    }
    println!(
        "{}",
        if all_ok {
            "all checks passed"
        } else {
            "some checks failed"
        }
    );
    Ok(if all_ok { 0 } else { 1 })
}
