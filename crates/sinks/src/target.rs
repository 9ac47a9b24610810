//! The server: its `_bulk` URI, the URL as it may be printed, the authorization header.

use base64::Engine;
use http::{HeaderValue, Uri};

use crate::{Auth, IndexConfig, SinkError};

/// Where `_bulk` requests go.
pub(crate) struct Target {
    /// `{url}/_bulk`, credentials removed.
    pub bulk: Uri,
    /// The base URL as it may be printed (no credentials).
    pub shown: String,
    /// `Authorization`, marked sensitive.
    pub auth: Option<HeaderValue>,
}

/// `url` with any `user:password@` removed.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some(s) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[s + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..s + 3], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The `user:password` in `url`, percent-decoded.
pub(crate) fn credentials(url: &str) -> Option<(String, String)> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let info = &rest[..rest[..end].rfind('@')?];
    let (u, p) = info.split_once(':').unwrap_or((info, ""));
    Some((percent_decode(u), percent_decode(p)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Target {
    pub(crate) fn parse(cfg: &IndexConfig) -> Result<Target, SinkError> {
        let shown = without_credentials(cfg.url.trim());
        let config = |message: String| SinkError::Config {
            url: shown.clone(),
            message,
        };
        if shown.starts_with("https://") {
            return Err(config(
                "https is not supported (inferbench has no TLS): use http://, e.g. through a local TLS-terminating proxy".into(),
            ));
        }
        if !shown.starts_with("http://") {
            return Err(config("the URL must start with http://".into()));
        }
        let base = shown.trim_end_matches('/');
        let bulk: Uri = format!("{base}/_bulk")
            .parse()
            .map_err(|e| config(format!("not a URL: {e}")))?;
        if bulk.host().is_none_or(str::is_empty) {
            return Err(config("the URL has no host".into()));
        }
        if bulk.query().is_some() {
            return Err(config("the URL must not have a query".into()));
        }
        let auth = match (&cfg.auth, credentials(cfg.url.trim())) {
            (Some(_), Some(_)) => {
                return Err(config(
                    "credentials are both in the URL and in the environment: give them once".into(),
                ));
            }
            (Some(a), None) => Some(a.clone()),
            (None, Some((user, password))) => Some(Auth::Basic { user, password }),
            (None, None) => None,
        };
        let auth = match auth {
            None => None,
            Some(a) => {
                let text = match a {
                    Auth::Basic { user, password } => format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{user}:{password}"))
                    ),
                    Auth::ApiKey(k) => format!("ApiKey {k}"),
                };
                let mut v = HeaderValue::from_str(&text)
                    .map_err(|_| config("the credentials are not a valid header value".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(Target {
            bulk,
            shown: base.to_string(),
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        assert_eq!(
            without_credentials("http://u:p%40ss@h:9200/x"),
            "http://h:9200/x"
        );
        assert_eq!(
            without_credentials("http://h:9200/a@b"),
            "http://h:9200/a@b"
        );
        assert_eq!(
            credentials("http://u:p%40ss@h:9200/x"),
            Some(("u".into(), "p@ss".into()))
        );
        let t = Target::parse(&IndexConfig::new("http://elastic:secret@127.0.0.1:9200/")).unwrap();
        assert_eq!(t.bulk.to_string(), "http://127.0.0.1:9200/_bulk");
        assert_eq!(t.shown, "http://127.0.0.1:9200");
        assert!(t.auth.unwrap().is_sensitive());
    }

    #[test]
    fn https_and_nonsense_are_refused_by_name() {
        let e = Target::parse(&IndexConfig::new("https://u:pw@h:9200"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("https://h:9200") && e.contains("TLS") && !e.contains("pw"),
            "{e}"
        );
        assert!(Target::parse(&IndexConfig::new("h:9200")).is_err());
        assert!(Target::parse(&IndexConfig::new("http://")).is_err());
    }
}
