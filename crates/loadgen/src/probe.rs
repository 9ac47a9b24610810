//! One-off requests outside a load: whether a target accepts connections at all (before a run
//! sends any load) and plain GETs (`/health`, `/v1/models`) for the smoke test. Base URLs are
//! read the same way as the client reads them: `http://host[:port][/v1]`.

use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::net::{chain, host_port};

/// Most bytes of a probe's answer that are kept (the rest is read and dropped).
pub const MAX_PROBE_BODY_BYTES: usize = 16 << 20;

/// `path` (e.g. `/health`) under the base URL `base`, whose own path may end in `/v1`.
pub fn under(base: &str, path: &str) -> Result<Uri, String> {
    let uri: Uri = base.parse().map_err(|e| format!("not a URL: {e}"))?;
    let (host, port) = host_port(&uri).ok_or("no host in the URL")?;
    let prefix = uri.path().trim_end_matches('/');
    let prefix = prefix.strip_suffix("/v1").unwrap_or(prefix);
    format!("http://{host}:{port}{prefix}{path}")
        .parse()
        .map_err(|e| format!("not a URL: {e}"))
}

/// Opens (and closes) one TCP connection to `url`'s host and port, within `timeout`. The error
/// names `host:port` and `shown` (the URL as it may be printed: without credentials).
pub async fn reachable(url: &str, shown: &str, timeout: Duration) -> Result<(), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("target `{shown}` is not a URL: {e}"))?;
    let (host, port) = host_port(&uri).ok_or_else(|| format!("target `{shown}` has no host"))?;
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port} ({shown}): {e}")),
        Err(_) => Err(format!(
            "cannot connect to {host}:{port} ({shown}): no answer in {} s",
            timeout.as_secs()
        )),
    }
}

/// GETs `path` under base URL `base` (bearer `key` if given): the status and up to
/// [`MAX_PROBE_BODY_BYTES`] of the body as text (what arrived, if the body broke off), within
/// `timeout`.
pub async fn get(
    base: &str,
    path: &str,
    key: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let uri = under(base, path)?;
    let (host, port) = host_port(&uri)
        .map(|(h, p)| (h.to_string(), p))
        .ok_or("no host in the URL")?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HyperClient<_, Empty<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    let mut req = http::Request::new(Empty::new());
    *req.uri_mut() = uri;
    req.headers_mut()
        .insert(http::header::ACCEPT, http::HeaderValue::from_static("*/*"));
    if let Some(k) = key {
        let mut v = http::HeaderValue::from_str(&format!("Bearer {k}"))
            .map_err(|_| "the API key is not a valid header value".to_string())?;
        v.set_sensitive(true);
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    let work = async {
        let resp = client.request(req).await.map_err(|e| {
            if e.is_connect() {
                format!("cannot connect to {host}:{port}: {}", chain(&e))
            } else {
                format!("the request failed: {}", chain(&e))
            }
        })?;
        let status = resp.status().as_u16();
        // What came of the body: a body cut short still tells (a status, part of a message).
        let mut body = resp.into_body();
        let mut kept = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                let room = MAX_PROBE_BODY_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&d[..d.len().min(room)]);
            }
        }
        Ok::<_, String>((status, String::from_utf8_lossy(&kept).into_owned()))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer in {} s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_under_the_base_url() {
        let u = |b: &str, p: &str| under(b, p).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:8000", "/health").as_deref(),
            Ok("http://127.0.0.1:8000/health")
        );
        assert_eq!(
            u("http://h/v1/", "/v1/models").as_deref(),
            Ok("http://h:80/v1/models")
        );
        assert_eq!(
            u("http://h:1/prefix/v1", "/health").as_deref(),
            Ok("http://h:1/prefix/health")
        );
        assert!(under("not a url", "/x").is_err());
    }

    #[tokio::test]
    async fn a_closed_port_is_named() {
        // Bind then drop: the port is very likely closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a port");
        let url = format!("http://127.0.0.1:{port}");
        let e = reachable(&url, &url, Duration::from_secs(5))
            .await
            .expect_err("closed");
        assert!(
            e.starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
            "{e}"
        );
        let e = get(&url, "/health", None, Duration::from_secs(5))
            .await
            .expect_err("closed");
        assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[tokio::test]
    async fn a_body_cut_short_still_gives_its_status_and_text() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                // 100 bytes promised, 16 sent, then the connection closes.
                let _ = s.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nnot healthy yet.",
                );
            }
        });
        let (status, text) = get(
            &format!("http://{addr}"),
            "/health",
            None,
            Duration::from_secs(5),
        )
        .await
        .expect("an answer");
        assert_eq!((status, text.as_str()), (503, "not healthy yet."));
    }
}
