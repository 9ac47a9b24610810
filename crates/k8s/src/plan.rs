//! What to render, decided once from the scenario and the options: the scenario, its pools (one
//! per base model it asks for), its picker variants (one per EPP arm), and every object's name
//! and URL, so the modules that build objects agree on them.

use inferbench_config::{Config, Scenario};

use crate::epp::EndpointPickerConfig;
use crate::fleet::MOCK_PORT;
use crate::names::{dns_label, join};
use crate::{RenderError, RenderOptions};

/// The model asked for when neither the scenario nor its target names one (the mock's default).
pub const DEFAULT_MODEL: &str = "mock-model";
/// The route key of the baseline arm (the gateway straight to the fleet's Service).
pub const BASELINE: &str = "baseline";

/// One simulated model-server pool: a Deployment of mocks serving one base model and its LoRA
/// adapters, a Service, and an InferencePool per picker variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Object name of the Deployment and Service (and label `app.kubernetes.io/name`).
    pub name: String,
    /// The base model served.
    pub model: String,
    /// LoRA adapters served beside it.
    pub adapters: Vec<String>,
}

/// One picker configuration compared by the scenario's arms: its own EPP and InferencePool per
/// pool, and its own path on the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// DNS-label key: path `/<key>` on the gateway, part of object names.
    pub key: String,
    /// The arm it comes from (`None` for the default variant of a scenario without EPP arms).
    pub arm: Option<String>,
    /// Its EndpointPickerConfig.
    pub config: EndpointPickerConfig,
}

/// Everything the object builders need.
pub struct Plan<'a> {
    /// The options.
    pub opts: &'a RenderOptions,
    /// The file.
    pub cfg: &'a Config,
    /// Index of the scenario in the file.
    pub index: usize,
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The scenario's name as a DNS label: label `app.kubernetes.io/instance`, names' prefix.
    pub instance: String,
    /// The pools.
    pub pools: Vec<Pool>,
    /// The picker variants (at least one).
    pub variants: Vec<Variant>,
}

impl<'a> Plan<'a> {
    /// Picks the scenario (the `--scenario` one, or the only one) and resolves pools and
    /// variants.
    pub fn new(cfg: &'a Config, opts: &'a RenderOptions) -> Result<Self, RenderError> {
        let scenarios = &cfg.file.scenarios;
        let index = match &opts.scenario {
            Some(name) => scenarios
                .iter()
                .position(|s| *s.name == *name)
                .ok_or_else(|| RenderError::Flag {
                    flag: "--scenario",
                    message: format!(
                        "no scenario `{name}` in {} (it has: {})",
                        cfg.origin,
                        list(scenarios)
                    ),
                })?,
            None if scenarios.len() == 1 => 0,
            None => {
                return Err(RenderError::Flag {
                    flag: "--scenario",
                    message: format!(
                        "{} has {} scenarios ({}): name the one to render",
                        cfg.origin,
                        scenarios.len(),
                        list(scenarios)
                    ),
                });
            }
        };
        let scenario = &scenarios[index];
        let instance = dns_label(&scenario.name);
        let pools = pools(cfg, scenario, &instance);
        let variants = crate::epp::variants(cfg, index, scenario, opts.epp_api)?;
        Ok(Plan {
            opts,
            cfg,
            index,
            scenario,
            instance,
            pools,
            variants,
        })
    }

    /// Several models or LoRA adapters: the gateway must read the body (BBR) to route.
    pub fn multi_model(&self) -> bool {
        self.pools.len() > 1 || self.pools.iter().any(|p| !p.adapters.is_empty())
    }

    /// Every model name requests may carry, with the pool serving it.
    pub fn served_names(&self) -> impl Iterator<Item = (&str, &Pool)> {
        self.pools.iter().flat_map(|p| {
            std::iter::once(p.model.as_str())
                .chain(p.adapters.iter().map(String::as_str))
                .map(move |m| (m, p))
        })
    }

    /// The InferencePool of `pool` for variant `v`: the pool's own name for the variant `epp`,
    /// else `<pool>-<variant>`.
    pub fn inference_pool_name(&self, pool: &Pool, v: &Variant) -> String {
        if v.key == "epp" {
            pool.name.clone()
        } else {
            join(&[&pool.name, &v.key])
        }
    }

    /// The EPP (ConfigMap, Deployment, Service) of that InferencePool: `<inference-pool>-epp`.
    pub fn epp_name(&self, pool: &Pool, v: &Variant) -> String {
        join(&[&self.inference_pool_name(pool, v), "epp"])
    }

    /// The ServiceAccount, Role and RoleBinding the EPPs share.
    pub fn picker_account(&self) -> String {
        join(&[&self.instance, "picker"])
    }

    /// The BBR's Deployment, Service and account.
    pub fn bbr_name(&self) -> String {
        join(&[&self.instance, "bbr"])
    }

    /// The Gateway.
    pub fn gateway_name(&self) -> String {
        join(&[&self.instance, "gateway"])
    }

    /// The HTTPRoute of route `key` (`baseline` or a variant's key).
    pub fn route_name(&self, key: &str) -> String {
        join(&[&self.instance, key])
    }

    /// The Job and its pods.
    pub fn load_name(&self) -> String {
        join(&[&self.instance, "load"])
    }

    /// The ConfigMap holding the scenario file.
    pub fn scenario_config_name(&self) -> String {
        join(&[&self.instance, "scenario"])
    }

    /// The gateway's base URL in the cluster: `--gateway-url`, else
    /// `http://<gateway>.<namespace>.svc.cluster.local` (kgateway names the proxy's Service
    /// after the Gateway; other implementations may not).
    pub fn gateway_url(&self) -> String {
        match &self.opts.gateway_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!(
                "http://{}.{}.svc.cluster.local",
                self.gateway_name(),
                self.opts.namespace
            ),
        }
    }

    /// The URL of route `key` on the gateway: `<gateway>/<key>`.
    pub fn route_url(&self, key: &str) -> String {
        format!("{}/{key}", self.gateway_url())
    }

    /// The fleet Service of `pool`, straight (no gateway).
    pub fn fleet_url(&self, pool: &Pool) -> String {
        format!(
            "http://{}.{}.svc.cluster.local:{MOCK_PORT}",
            pool.name, self.opts.namespace
        )
    }

    /// `scenarios[i]`, for error messages.
    pub fn field(&self, rest: &str) -> String {
        format!("scenarios[{}].{rest}", self.index)
    }
}

/// `a, b, c`.
fn list(scenarios: &[Scenario]) -> String {
    scenarios
        .iter()
        .map(|s| s.name.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pools of a scenario: one per base model in `workload.models` (names also listed under
/// `workload.lora` are adapters, not bases), else the target's first model, else
/// [`DEFAULT_MODEL`]; `workload.lora` adapters are served by the first pool. One pool is named
/// after the scenario; several are `<scenario>-<model>`.
pub fn pools(cfg: &Config, s: &Scenario, instance: &str) -> Vec<Pool> {
    let adapters = dedup(s.workload.lora.iter().map(|w| w.name.clone()));
    let mut bases = dedup(
        s.workload
            .models
            .iter()
            .map(|w| w.name.clone())
            .filter(|m| !adapters.contains(m)),
    );
    if bases.is_empty() {
        let target = match &s.target {
            Some(t) => cfg.target(t),
            None => cfg.file.targets.first(),
        };
        bases.push(
            target
                .and_then(|t| t.models.first().cloned())
                .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
        );
    }
    let single = bases.len() == 1;
    bases
        .into_iter()
        .enumerate()
        .map(|(i, model)| Pool {
            name: if single {
                instance.to_string()
            } else {
                join(&[instance, &model])
            },
            model,
            adapters: if i == 0 { adapters.clone() } else { Vec::new() },
        })
        .collect()
}

/// Names in first-seen order, each once.
fn dedup(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(scenario: &str) -> Config {
        let text = format!(
            "targets: [{{name: t, url: embedded, models: [base-of-target, other]}}]\nscenarios:\n{scenario}"
        );
        Config::parse(&text, "test.yaml").unwrap()
    }

    #[test]
    fn a_scenario_naming_no_model_gets_its_targets_first() {
        let c = cfg("  - {name: s, load: {rate: 1}, duration: 1s}\n");
        let p = pools(&c, &c.file.scenarios[0], "s");
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].model.as_str()),
            ("s", "base-of-target")
        );
        assert!(p[0].adapters.is_empty());
    }

    #[test]
    fn models_are_pools_and_adapters_ride_on_the_first() {
        let c = cfg(
            "  - name: s\n    load: {rate: 1}\n    duration: 1s\n    workload:\n      models: [{name: A/B}, {name: c}, {name: A/B}, {name: ad}]\n      lora: [{name: ad}, {name: ad2}]\n",
        );
        let p = pools(&c, &c.file.scenarios[0], "s");
        let got: Vec<(&str, &str, Vec<String>)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.model.as_str(), p.adapters.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("s-a-b", "A/B", vec!["ad".to_string(), "ad2".to_string()]),
                ("s-c", "c", vec![]),
            ]
        );
    }
}
