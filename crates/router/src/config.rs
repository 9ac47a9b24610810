//! The router's configuration: pools of endpoints, routes (by model header or path) to pools,
//! a picker per pool, and an adapter → base-model map. From flags for a quick start, or from
//! `router.yaml`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::picker::epp::EppConfig;

/// The whole router.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Pools of endpoints.
    pub pools: Vec<PoolConfig>,
    /// Routes, first match wins; requests no route matches go to the first pool.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Adapter → base model, for `X-Gateway-Base-Model-Name`.
    #[serde(default)]
    pub base_models: BTreeMap<String, String>,
    /// Read the body (BBR, prefix scoring); false streams requests through untouched.
    #[serde(default = "yes")]
    pub body_routing: bool,
    /// Endpoint metrics scrape period, ms (default 50).
    #[serde(default = "fifty")]
    pub scrape_interval_ms: u64,
    /// A client connection that has sent part of a request but not all of its headers for this
    /// long is closed, s (default 10).
    #[serde(default = "default_header_read_timeout_s")]
    pub header_read_timeout_s: f64,
    /// A client connection with no request in flight and nothing received for this long is
    /// closed, s (default 60).
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: f64,
    /// Largest request body, bytes (default 16 MiB): a larger one is answered with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Request-body bytes buffered at once over all connections (body routing reads bodies
    /// whole), bytes (default 64 MiB): a body that does not fit is answered with 503.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: u64,
    /// An endpoint that has taken a request but sent no response headers within this is given
    /// up on with 504, s (default 60).
    #[serde(default = "default_upstream_header_timeout_s")]
    pub upstream_header_timeout_s: f64,
    /// The whole exchange — reading the body, waiting for the endpoint, streaming its response
    /// back — ends after this, s (default 600); a response still streaming is cut off.
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: f64,
}

fn yes() -> bool {
    true
}

fn fifty() -> u64 {
    50
}

/// Default of [`RouterConfig::header_read_timeout_s`].
pub const DEFAULT_HEADER_READ_TIMEOUT_S: f64 = 10.0;
/// Default of [`RouterConfig::idle_timeout_s`].
pub const DEFAULT_IDLE_TIMEOUT_S: f64 = 60.0;
/// Default of [`RouterConfig::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;
/// Default of [`RouterConfig::max_buffered_bytes`].
pub const DEFAULT_MAX_BUFFERED_BYTES: u64 = 64 << 20;
/// Default of [`RouterConfig::upstream_header_timeout_s`].
pub const DEFAULT_UPSTREAM_HEADER_TIMEOUT_S: f64 = 60.0;
/// Default of [`RouterConfig::request_timeout_s`].
pub const DEFAULT_REQUEST_TIMEOUT_S: f64 = 600.0;

/// Shortest timeout accepted (1 ms).
pub const MIN_TIMEOUT_S: f64 = 0.001;
/// Longest timeout accepted (one day): beyond it a timeout is no protection.
pub const MAX_TIMEOUT_S: f64 = 86_400.0;
/// Largest `max_body_bytes` accepted (4 GiB).
pub const MAX_MAX_BODY_BYTES: u64 = 4 << 30;
/// Largest `max_buffered_bytes` accepted (1 TiB).
pub const MAX_MAX_BUFFERED_BYTES: u64 = 1 << 40;

fn default_header_read_timeout_s() -> f64 {
    DEFAULT_HEADER_READ_TIMEOUT_S
}

fn default_idle_timeout_s() -> f64 {
    DEFAULT_IDLE_TIMEOUT_S
}

fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

fn default_max_buffered_bytes() -> u64 {
    DEFAULT_MAX_BUFFERED_BYTES
}

fn default_upstream_header_timeout_s() -> f64 {
    DEFAULT_UPSTREAM_HEADER_TIMEOUT_S
}

fn default_request_timeout_s() -> f64 {
    DEFAULT_REQUEST_TIMEOUT_S
}

/// One pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Name (in metrics and routes).
    pub name: String,
    /// `host:port` of each endpoint.
    pub endpoints: Vec<String>,
    /// How to pick (default: epp with the EPP's default weights).
    #[serde(default)]
    pub picker: PickerConfig,
    /// Or: the Gateway API Inference Extension's `EndpointPickerConfig` file for this pool
    /// (relative to router.yaml), read into an epp picker; it replaces `picker`.
    #[serde(default)]
    pub picker_config: Option<std::path::PathBuf>,
}

/// A picker and its parameters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PickerConfig {
    /// Saturation filter + weighted scorers + max score.
    Epp(EppConfig),
    /// Each endpoint in turn.
    RoundRobin,
    /// Uniformly random.
    Random,
    /// Fewest requests in flight.
    LeastRequest,
}

impl Default for PickerConfig {
    fn default() -> Self {
        PickerConfig::Epp(EppConfig::default())
    }
}

impl PickerConfig {
    /// From the `--picker` flag.
    pub fn from_name(name: &str) -> Result<Self, String> {
        Ok(match name {
            "epp" => PickerConfig::Epp(EppConfig::default()),
            "round-robin" | "rr" => PickerConfig::RoundRobin,
            "random" => PickerConfig::Random,
            "least-request" => PickerConfig::LeastRequest,
            other => {
                return Err(format!(
                    "unknown picker `{other}` (epp, round-robin, random, least-request)"
                ));
            }
        })
    }
}

/// A route to a pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Matches `X-Gateway-Model-Name` (the body's model) exactly.
    pub model: Option<String>,
    /// Matches a path prefix.
    pub path_prefix: Option<String>,
    /// The pool.
    pub pool: String,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// File (or `flags`).
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl RouterConfig {
    /// One pool of `endpoints` with `picker`.
    pub fn quick(endpoints: Vec<String>, picker: PickerConfig) -> Self {
        RouterConfig {
            pools: vec![PoolConfig {
                name: "default".into(),
                endpoints,
                picker,
                picker_config: None,
            }],
            routes: Vec::new(),
            base_models: BTreeMap::new(),
            body_routing: true,
            scrape_interval_ms: 50,
            header_read_timeout_s: DEFAULT_HEADER_READ_TIMEOUT_S,
            idle_timeout_s: DEFAULT_IDLE_TIMEOUT_S,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            upstream_header_timeout_s: DEFAULT_UPSTREAM_HEADER_TIMEOUT_S,
            request_timeout_s: DEFAULT_REQUEST_TIMEOUT_S,
        }
    }

    /// Reads `router.yaml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let mut c: RouterConfig = serde_saphyr::from_str(&text).map_err(|e| ConfigError {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for p in &mut c.pools {
            if let Some(file) = p.picker_config.take() {
                let file = dir.join(file);
                p.picker = PickerConfig::Epp(crate::gie::EppConfigFile::load(&file).map_err(
                    |message| ConfigError {
                        origin: format!("{origin}: pool `{}`", p.name),
                        message,
                    },
                )?);
            }
        }
        c.validate(&origin)?;
        Ok(c)
    }

    /// Checks names, addresses, limits and timeouts.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError {
            origin: origin.to_string(),
            message,
        };
        if self.pools.is_empty() {
            return Err(err("no pool".into()));
        }
        for p in &self.pools {
            if p.endpoints.is_empty() {
                return Err(err(format!("pool `{}` has no endpoint", p.name)));
            }
            for e in &p.endpoints {
                if e.parse::<std::net::SocketAddr>().is_err() && !e.contains(':') {
                    return Err(err(format!(
                        "pool `{}`: endpoint `{e}` is not host:port",
                        p.name
                    )));
                }
            }
        }
        for r in &self.routes {
            if !self.pools.iter().any(|p| p.name == r.pool) {
                return Err(err(format!("route to unknown pool `{}`", r.pool)));
            }
        }
        if self.scrape_interval_ms == 0 {
            return Err(err("scrape_interval_ms must be at least 1".into()));
        }
        for (name, s) in [
            ("header_read_timeout_s", self.header_read_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
            ("upstream_header_timeout_s", self.upstream_header_timeout_s),
            ("request_timeout_s", self.request_timeout_s),
        ] {
            // Below a millisecond a timeout is no time at all.
            if !(s.is_finite() && (MIN_TIMEOUT_S..=MAX_TIMEOUT_S).contains(&s)) {
                return Err(err(format!(
                    "{name} must be a number of seconds from {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} (is {s})"
                )));
            }
        }
        for (name, n, max) in [
            ("max_body_bytes", self.max_body_bytes, MAX_MAX_BODY_BYTES),
            (
                "max_buffered_bytes",
                self.max_buffered_bytes,
                MAX_MAX_BUFFERED_BYTES,
            ),
        ] {
            if n == 0 || n > max {
                return Err(err(format!(
                    "{name} must be at least 1 and at most {max} (is {n})"
                )));
            }
        }
        if self.max_body_bytes > self.max_buffered_bytes {
            return Err(err(format!(
                "max_body_bytes ({}) must not be above max_buffered_bytes ({}): such a body could never be read",
                self.max_body_bytes, self.max_buffered_bytes
            )));
        }
        Ok(())
    }

    /// The limits and timeouts, as durations (the configuration validated).
    pub(crate) fn limits(&self) -> crate::limits::Limits {
        let secs = |s: f64| {
            std::time::Duration::try_from_secs_f64(s)
                .unwrap_or(std::time::Duration::from_secs(MAX_TIMEOUT_S as u64))
        };
        crate::limits::Limits {
            header_read: secs(self.header_read_timeout_s),
            idle: secs(self.idle_timeout_s),
            max_body: self.max_body_bytes,
            max_buffered: i64::try_from(self.max_buffered_bytes).unwrap_or(i64::MAX),
            upstream_header: secs(self.upstream_header_timeout_s),
            request: secs(self.request_timeout_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_reads_the_gies_endpoint_picker_config_relative_to_router_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("gie")).unwrap();
        std::fs::write(
            dir.path().join("gie/epp.yaml"),
            "kind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: prefix-cache-scorer\n\
             schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n    weight: 1\n\
             \x20 - pluginRef: prefix-cache-scorer\n    weight: 7\n",
        )
        .unwrap();
        let yaml = dir.path().join("router.yaml");
        std::fs::write(
            &yaml,
            "pools:\n- name: chat\n  endpoints: [\"127.0.0.1:8001\"]\n  picker_config: gie/epp.yaml\n\
             - name: rr\n  endpoints: [\"127.0.0.1:8002\"]\n  picker: {type: round-robin}\n",
        )
        .unwrap();
        let c = RouterConfig::load(&yaml).unwrap();
        match &c.pools[0].picker {
            PickerConfig::Epp(e) => {
                assert_eq!((e.queue, e.kv_cache, e.prefix), (1.0, 0.0, 7.0));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.pools[1].picker, PickerConfig::RoundRobin));
        // A missing file names the pool and the file.
        std::fs::write(
            &yaml,
            "pools:\n- name: chat\n  endpoints: [\"127.0.0.1:8001\"]\n  picker_config: nope.yaml\n",
        )
        .unwrap();
        let e = RouterConfig::load(&yaml).unwrap_err().to_string();
        assert!(e.contains("pool `chat`") && e.contains("nope.yaml"), "{e}");
    }

    #[test]
    fn limits_default_when_absent_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("router.yaml");
        std::fs::write(
            &yaml,
            "pools:\n- name: p\n  endpoints: [\"127.0.0.1:8001\"]\n",
        )
        .unwrap();
        let c = RouterConfig::load(&yaml).unwrap();
        assert_eq!(
            (
                c.header_read_timeout_s,
                c.idle_timeout_s,
                c.max_body_bytes,
                c.max_buffered_bytes,
                c.upstream_header_timeout_s,
                c.request_timeout_s
            ),
            (10.0, 60.0, 16 << 20, 64 << 20, 60.0, 600.0)
        );
        std::fs::write(
            &yaml,
            "pools:\n- name: p\n  endpoints: [\"127.0.0.1:8001\"]\nidle_timeout_s: 0.5\nmax_body_bytes: 1000\n",
        )
        .unwrap();
        let c = RouterConfig::load(&yaml).unwrap();
        assert_eq!((c.idle_timeout_s, c.max_body_bytes), (0.5, 1000));
        let l = c.limits();
        assert_eq!(l.idle, std::time::Duration::from_millis(500));
        assert_eq!(l.header_read, std::time::Duration::from_secs(10));
        std::fs::write(
            &yaml,
            "pools:\n- name: p\n  endpoints: [\"127.0.0.1:8001\"]\nrequest_timeout_s: 0\n",
        )
        .unwrap();
        let e = RouterConfig::load(&yaml).unwrap_err().to_string();
        assert!(
            e.contains("request_timeout_s") && e.contains("router.yaml"),
            "{e}"
        );

        let ok = RouterConfig::quick(vec!["127.0.0.1:1".into()], PickerConfig::RoundRobin);
        let bad = [
            (
                RouterConfig {
                    header_read_timeout_s: f64::NAN,
                    ..ok.clone()
                },
                "header_read_timeout_s",
            ),
            (
                RouterConfig {
                    idle_timeout_s: f64::INFINITY,
                    ..ok.clone()
                },
                "idle_timeout_s",
            ),
            (
                RouterConfig {
                    upstream_header_timeout_s: -1.0,
                    ..ok.clone()
                },
                "upstream_header_timeout_s",
            ),
            (
                RouterConfig {
                    request_timeout_s: 1e9,
                    ..ok.clone()
                },
                "request_timeout_s",
            ),
            (
                RouterConfig {
                    max_body_bytes: 0,
                    ..ok.clone()
                },
                "max_body_bytes",
            ),
            (
                RouterConfig {
                    max_buffered_bytes: u64::MAX,
                    ..ok.clone()
                },
                "max_buffered_bytes",
            ),
            (
                RouterConfig {
                    max_body_bytes: 2 << 20,
                    max_buffered_bytes: 1 << 20,
                    ..ok.clone()
                },
                "max_body_bytes (2097152) must not be above max_buffered_bytes (1048576)",
            ),
        ];
        for (c, field) in bad {
            let e = c.validate("flags").unwrap_err().to_string();
            assert!(e.starts_with("flags: ") && e.contains(field), "{e}");
        }
        assert!(ok.validate("flags").is_ok());
    }
}
