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
}

fn yes() -> bool {
    true
}

fn fifty() -> u64 {
    50
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

    /// Checks names and addresses.
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
        Ok(())
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
}
