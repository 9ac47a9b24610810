//! The smoke test after a deployment (`inferbench check URL`): `/health`, `/v1/models`, one
//! unary and one streaming completion, each passed or failed with its time and a diagnosis a
//! person can act on. The binary prints the lines as they come.

use std::time::Duration;

use inferbench_loadgen::client::{Api, Client, ClientConfig, ErrorKind, Outcome, RequestSpec};
use inferbench_loadgen::probe::get;
use tokio::time::Instant;

/// What to check.
#[derive(Debug, Clone)]
pub struct Smoke {
    /// Base URL of the endpoint.
    pub url: String,
    /// Model to try (default: the first one `/v1/models` lists, else `mock-model`).
    pub model: Option<String>,
    /// The API key, sent as a bearer token.
    pub api_key: Option<String>,
    /// Chat or completions.
    pub api: Api,
    /// Most time per check.
    pub timeout: Duration,
}

/// One line of the smoke test's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A check: passed or not, its name, how long it took, what it found.
    Check {
        /// Passed.
        ok: bool,
        /// `GET /health`, `unary completion`, …
        name: &'static str,
        /// How long it took.
        took: Duration,
        /// What it found, or what is wrong.
        detail: String,
    },
    /// A remark between checks.
    Note(String),
}

impl Line {
    fn check(ok: bool, name: &'static str, since: Instant, detail: impl Into<String>) -> Line {
        Line::Check {
            ok,
            name,
            took: since.elapsed(),
            detail: detail.into(),
        }
    }

    /// A failed check.
    pub fn failed(&self) -> bool {
        matches!(self, Line::Check { ok: false, .. })
    }
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

/// `GET /health`: 200, or 404 (a gateway may not expose it), passes. `Err` when the endpoint
/// cannot be reached at all (nothing else is worth trying).
async fn health(s: &Smoke, out: &mut impl FnMut(Line)) -> Result<(), String> {
    const NAME: &str = "GET /health";
    let t = Instant::now();
    match get(&s.url, "/health", s.api_key.as_deref(), s.timeout).await {
        Ok((200, _)) => out(Line::check(true, NAME, t, "200")),
        Ok((404, _)) => out(Line::check(
            true,
            NAME,
            t,
            "404: no /health here (a gateway may not expose it); continuing",
        )),
        Ok((code, body)) => out(Line::check(
            false,
            NAME,
            t,
            format!(
                "{code}: the server says it is not healthy: {}",
                body.chars().take(120).collect::<String>()
            ),
        )),
        Err(e) => {
            out(Line::check(false, NAME, t, e.clone()));
            out(Line::Note(format!(
                "the endpoint cannot be reached ({e}); is the URL right and the server up?"
            )));
            return Err(e);
        }
    }
    Ok(())
}

/// `GET /v1/models`: the models served (empty when the list cannot be had).
async fn models(s: &Smoke, out: &mut impl FnMut(Line)) -> Vec<String> {
    const NAME: &str = "GET /v1/models";
    let t = Instant::now();
    match get(&s.url, "/v1/models", s.api_key.as_deref(), s.timeout).await {
        Ok((200, body)) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let served: Vec<String> = v["data"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["id"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let ok = !served.is_empty();
            let detail = if ok {
                format!("{} model(s): {}", served.len(), served.join(", "))
            } else {
                "200 but no model listed (is this an OpenAI-compatible server?)".into()
            };
            out(Line::check(ok, NAME, t, detail));
            served
        }
        Ok((code @ (401 | 403), _)) => {
            let detail = format!("{code}: not authorized — pass the key with --api-key-env VAR");
            out(Line::check(false, NAME, t, detail));
            Vec::new()
        }
        Ok((code, _)) => {
            let detail = format!("{code}: wrong path? give the base URL (http://host:port)");
            out(Line::check(false, NAME, t, detail));
            Vec::new()
        }
        Err(e) => {
            out(Line::check(false, NAME, t, e));
            Vec::new()
        }
    }
}

/// One completion (streaming or not) of `model`: served by that model, with tokens, and for a
/// stream, tokens that arrive as they are made.
async fn completion(client: &Client, model: &str, served: &[String], stream: bool) -> Line {
    let spec = RequestSpec {
        model: model.to_string(),
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
    let mut detail = diagnose(&o, model, served);
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
    Line::Check {
        ok,
        name,
        took,
        detail,
    }
}

/// How the smoke test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// Every check passed.
    AllPassed,
    /// At least one check failed.
    SomeFailed,
    /// The endpoint could not be reached: nothing past `/health` was tried.
    Unreachable,
}

/// Runs the checks, giving each line to `out` as it comes. `Err`: the API key cannot be sent or
/// the client cannot be built for the URL.
pub async fn smoke(s: &Smoke, mut out: impl FnMut(Line)) -> Result<Summary, String> {
    if let Some(k) = &s.api_key
        && http::HeaderValue::from_str(&format!("Bearer {k}")).is_err()
    {
        return Err("the API key is not a valid header value".into());
    }
    let mut all_ok = true;
    let mut emit = |l: Line| {
        all_ok &= !l.failed();
        out(l);
    };
    if health(s, &mut emit).await.is_err() {
        return Ok(Summary::Unreachable);
    }
    let served = models(s, &mut emit).await;
    let model = s
        .model
        .clone()
        .or_else(|| served.first().cloned())
        .unwrap_or_else(|| crate::requests::DEFAULT_MODEL.into());
    if !served.is_empty() && !served.contains(&model) {
        emit(Line::Note(format!(
            "note: `{model}` is not in /v1/models (adapters may still be served)"
        )));
    }
    let mut cfg = ClientConfig::new(&s.url);
    cfg.api = s.api;
    cfg.api_key = s.api_key.clone();
    cfg.ttft_timeout = s.timeout;
    cfg.total_timeout = s.timeout;
    let client = Client::new(&cfg).map_err(|e| e.to_string())?;
    for stream in [false, true] {
        emit(completion(&client, &model, &served, stream).await);
    }
    Ok(if all_ok {
        Summary::AllPassed
    } else {
        Summary::SomeFailed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};

    fn smoke_of(url: &str, model: Option<&str>) -> Smoke {
        Smoke {
            url: url.to_string(),
            model: model.map(String::from),
            api_key: None,
            api: Api::Chat,
            timeout: Duration::from_secs(10),
        }
    }

    async fn lines(s: &Smoke) -> (Summary, Vec<Line>) {
        let mut got = Vec::new();
        let summary = smoke(s, |l| got.push(l)).await.expect("smoke");
        (summary, got)
    }

    fn names_and_results(lines: &[Line]) -> Vec<(&'static str, bool)> {
        lines
            .iter()
            .filter_map(|l| match l {
                Line::Check { ok, name, .. } => Some((*name, *ok)),
                Line::Note(_) => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_healthy_mock_passes_every_check() {
        let cfg = InstanceConfig {
            ttft_ms: 2.0,
            itl_ms: 0.5,
            ..InstanceConfig::default()
        };
        let fleet = MockFleet::start(FleetConfig::uniform("127.0.0.1", 0, 1, cfg).expect("cfg"))
            .await
            .expect("fleet");
        let url = fleet.urls()[0].clone();
        let (summary, got) = lines(&smoke_of(&url, None)).await;
        assert_eq!(summary, Summary::AllPassed, "{got:?}");
        assert_eq!(
            names_and_results(&got),
            [
                ("GET /health", true),
                ("GET /v1/models", true),
                ("unary completion", true),
                ("streaming completion", true)
            ]
        );
        // A model the fleet does not serve: named, and the completions fail with a diagnosis.
        let (summary, got) = lines(&smoke_of(&url, Some("no-such-model"))).await;
        assert_eq!(summary, Summary::SomeFailed);
        assert!(
            got.iter().any(
                |l| matches!(l, Line::Note(n) if n.contains("`no-such-model` is not in /v1/models"))
            ),
            "{got:?}"
        );
        fleet.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_stops_at_health() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let (summary, got) = lines(&smoke_of(&format!("http://127.0.0.1:{port}"), None)).await;
        assert_eq!(summary, Summary::Unreachable);
        assert_eq!(names_and_results(&got), [("GET /health", false)]);
        assert!(matches!(&got[1], Line::Note(n) if n.contains("cannot be reached")));
    }
}
