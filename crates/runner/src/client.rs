//! The load generator's client for a scenario file's target, and URLs made fit for a report.

use http::{HeaderName, HeaderValue};
use inferbench_config::{ApiKind, Target};
use inferbench_loadgen::client::{Api, Client, ClientConfig};

use crate::RunError;

/// Removes `user:password@` from each URL (comma-separated).
pub fn redact(urls: &str) -> String {
    urls.split(',')
        .map(|url| match (url.find("://"), url.find('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://{}", &url[..s], &url[at + 1..]),
            _ => url.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The client for target `t` at `urls`.
pub fn client_for(t: &Target, urls: &str) -> Result<Client, RunError> {
    let err = |message: String| RunError::Client {
        target: t.name.value.clone(),
        message,
    };
    let mut cfg = ClientConfig::new(urls);
    cfg.api = match t.api {
        ApiKind::Chat => Api::Chat,
        ApiKind::Completions => Api::Completions,
    };
    cfg.http2 = t.http2;
    if let Some(d) = t.timeout {
        cfg.total_timeout = d.0;
    }
    if let Some(d) = t.ttft_timeout {
        cfg.ttft_timeout = d.0;
    }
    if let Some(d) = t.stall_timeout {
        cfg.stall_timeout = d.0;
    }
    if let Some(var) = &t.api_key_env {
        let key = std::env::var(var).map_err(|_| {
            err(format!(
                "environment variable {var} (api_key_env) is not set"
            ))
        })?;
        cfg.api_key = Some(key);
    }
    for (k, v) in &t.headers {
        let name =
            HeaderName::try_from(k.as_str()).map_err(|_| err(format!("bad header name `{k}`")))?;
        let value = HeaderValue::try_from(v.as_str())
            .map_err(|_| err(format!("bad value for header {k}")))?;
        cfg.headers.push((name, value));
    }
    Client::new(&cfg).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_a_report() {
        assert_eq!(
            redact("http://user:secret@a:1/v1,http://b:2"),
            "http://a:1/v1,http://b:2"
        );
        assert_eq!(redact("http://a:1"), "http://a:1");
    }
}
