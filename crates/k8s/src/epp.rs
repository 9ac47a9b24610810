//! The Endpoint Picker (EPP): its `EndpointPickerConfig` (one per picker variant the scenario's
//! arms compare), and per InferencePool a ConfigMap holding that config, a Deployment running the
//! EPP image against the pool, and a Service on the ext-proc port 9002; plus one ServiceAccount,
//! Role and RoleBinding letting every EPP read pods, pools and objectives.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, GRPCAction,
    ObjectFieldSelector, PodSpec, Probe, Volume, VolumeMount,
};
use serde::{Deserialize, Serialize, Serializer};

use inferbench_config::{Arm, Config, Scenario};

use crate::RenderError;
use crate::crd::{EppApi, INFERENCE_POOL_GROUP};
use crate::manifest::Manifest;
use crate::meta::{container_security, deployment, object_meta, pod_security, read_rule, service};
use crate::names::{dns_label, labels};
use crate::plan::{Plan, Pool, Variant};

/// The EPP's ext-proc (gRPC) port, which the InferencePool's `endpointPickerRef` names.
pub const EXT_PROC_PORT: i32 = 9002;
/// The EPP's gRPC health port.
pub const HEALTH_PORT: i32 = 9003;
/// The EPP's Prometheus metrics port.
pub const METRICS_PORT: i32 = 9090;
/// The key of the config file in the EPP's ConfigMap (mounted at `/config`).
pub const CONFIG_KEY: &str = "epp-config.yaml";
/// Where the EPP reads its config.
pub const CONFIG_PATH: &str = "/config/epp-config.yaml";
/// The EPP image used unless `--epp-image` says otherwise: the upstream GIE v1.5.0 EPP. With
/// `--epp-api llm-d.ai`, pass llm-d-router's image instead.
pub const DEFAULT_EPP_IMAGE: &str = "registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0";

/// The EPP's configuration file, as the GIE and llm-d-router read it (`EndpointPickerConfig`):
/// plugins, and scheduling profiles that weigh the scorers among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPickerConfig {
    /// `inference.networking.x-k8s.io/v1alpha1` or `llm-d.ai/v1alpha1`.
    pub api_version: String,
    /// `EndpointPickerConfig`.
    pub kind: String,
    /// Plugin instances.
    pub plugins: Vec<PluginSpec>,
    /// Profiles; the single-profile handler runs the one there is.
    pub scheduling_profiles: Vec<SchedulingProfile>,
}

/// `plugins[]`: a plugin instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginSpec {
    /// Name referenced by profiles (default: the type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Plugin type, e.g. `queue-scorer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Parameters, passed to the plugin as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// `schedulingProfiles[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulingProfile {
    /// Name.
    pub name: String,
    /// Plugins it runs, scorers with weights.
    pub plugins: Vec<SchedulingPlugin>,
}

/// `schedulingProfiles[].plugins[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingPlugin {
    /// The plugin's name.
    pub plugin_ref: String,
    /// A scorer's weight (whole numbers are written as integers).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_as_integer"
    )]
    pub weight: Option<f64>,
}

/// Writes `2.0` as `2`, so EPP versions that read weights as integers accept it too.
fn whole_as_integer<S: Serializer>(w: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match w {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => s.serialize_i64(*v as i64),
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

/// Scorer weights of a picker variant (CONTRACTS.md's default profile: queue 2, kv-cache 2,
/// prefix-cache 3; LoRA affinity off). A weight of 0 leaves the scorer out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// `queue-scorer`.
    pub queue: f64,
    /// `kv-cache-utilization-scorer`.
    pub kv_cache: f64,
    /// `prefix-cache-scorer`.
    pub prefix: f64,
    /// `lora-affinity-scorer`.
    pub lora: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            queue: 2.0,
            kv_cache: 2.0,
            prefix: 3.0,
            lora: 0.0,
        }
    }
}

impl Weights {
    /// Scorer plugin types with their weights, in the order they are written.
    pub fn scorers(&self) -> [(&'static str, f64); 4] {
        [
            ("queue-scorer", self.queue),
            ("kv-cache-utilization-scorer", self.kv_cache),
            ("prefix-cache-scorer", self.prefix),
            ("lora-affinity-scorer", self.lora),
        ]
    }
}

impl EndpointPickerConfig {
    /// The scorers with non-zero weight, `max-score-picker` and `single-profile-handler`, in one
    /// profile `default`.
    pub fn from_weights(api: EppApi, w: &Weights) -> Self {
        let mut plugins = Vec::new();
        let mut refs = Vec::new();
        for (kind, weight) in w.scorers() {
            if weight != 0.0 {
                plugins.push(PluginSpec {
                    name: None,
                    kind: kind.to_string(),
                    parameters: None,
                });
                refs.push(SchedulingPlugin {
                    plugin_ref: kind.to_string(),
                    weight: Some(weight),
                });
            }
        }
        for kind in ["max-score-picker", "single-profile-handler"] {
            plugins.push(PluginSpec {
                name: None,
                kind: kind.to_string(),
                parameters: None,
            });
        }
        refs.push(SchedulingPlugin {
            plugin_ref: "max-score-picker".to_string(),
            weight: None,
        });
        EndpointPickerConfig {
            api_version: api.picker_config_api_version(),
            kind: "EndpointPickerConfig".to_string(),
            plugins,
            scheduling_profiles: vec![SchedulingProfile {
                name: "default".to_string(),
                plugins: refs,
            }],
        }
    }

    /// The weight the first profile gives the scorer of type `kind` (0 when it has none).
    pub fn weight_of(&self, kind: &str) -> f64 {
        let Some(profile) = self.scheduling_profiles.first() else {
            return 0.0;
        };
        profile
            .plugins
            .iter()
            .filter(|r| {
                self.plugins
                    .iter()
                    .any(|p| p.kind == kind && p.name.as_deref().unwrap_or(&p.kind) == r.plugin_ref)
            })
            .map(|r| r.weight.unwrap_or(1.0))
            .sum()
    }

    /// Sets the first profile's weight of scorer `kind`, adding the plugin if missing; 0
    /// removes it from the profile.
    fn set_weight(&mut self, kind: &str, weight: f64) {
        let name = match self.plugins.iter().find(|p| p.kind == kind) {
            Some(p) => p.name.clone().unwrap_or_else(|| p.kind.clone()),
            None => {
                if weight == 0.0 {
                    return;
                }
                self.plugins.insert(
                    0,
                    PluginSpec {
                        name: None,
                        kind: kind.to_string(),
                        parameters: None,
                    },
                );
                kind.to_string()
            }
        };
        if self.scheduling_profiles.is_empty() {
            self.scheduling_profiles.push(SchedulingProfile {
                name: "default".to_string(),
                plugins: Vec::new(),
            });
        }
        let profile = &mut self.scheduling_profiles[0];
        profile.plugins.retain(|r| r.plugin_ref != name);
        if weight != 0.0 {
            profile.plugins.insert(
                0,
                SchedulingPlugin {
                    plugin_ref: name,
                    weight: Some(weight),
                },
            );
        } else if !self
            .scheduling_profiles
            .iter()
            .any(|p| p.plugins.iter().any(|r| r.plugin_ref == name))
        {
            self.plugins
                .retain(|p| p.name.as_deref().unwrap_or(&p.kind) != name);
        }
    }

    /// As YAML text (the ConfigMap's file).
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        serde_saphyr::to_string(self).map_err(|e| RenderError::Yaml(e.to_string()))
    }
}

/// True when arm `a` is routed by an EPP (`epp`, or a picker configuration whose picker is epp
/// and that names no URL of its own).
pub fn is_epp_arm(a: &Arm) -> bool {
    match a {
        Arm::Named(n) => n == "epp",
        Arm::Custom(c) => c.url.is_none() && c.picker.as_deref().is_none_or(|p| p == "epp"),
    }
}

/// The picker variants to render: one per EPP arm of the scenario, in order (an arm's weights
/// override the defaults, or its `picker_config` file's); a scenario without one gets the
/// default profile as variant `epp`.
pub fn variants(
    cfg: &Config,
    index: usize,
    s: &Scenario,
    api: EppApi,
) -> Result<Vec<Variant>, RenderError> {
    let mut out = Vec::new();
    for (j, a) in s.arms.iter().enumerate() {
        if !is_epp_arm(a) {
            continue;
        }
        let config = match a {
            Arm::Named(_) => EndpointPickerConfig::from_weights(api, &Weights::default()),
            Arm::Custom(c) => {
                let mut base = match &c.picker_config {
                    Some(file) => {
                        let field = format!("scenarios[{index}].arms[{j}].picker_config");
                        let path = cfg.relative(file);
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            RenderError::field(cfg, &field, format!("{}: {e}", path.display()))
                        })?;
                        let mut read: EndpointPickerConfig = serde_saphyr::from_str(&text)
                            .map_err(|e| {
                                RenderError::field(
                                    cfg,
                                    &field,
                                    format!("{}: not an EndpointPickerConfig: {e}", path.display()),
                                )
                            })?;
                        read.api_version = api.picker_config_api_version();
                        read
                    }
                    None => EndpointPickerConfig::from_weights(api, &Weights::default()),
                };
                for (kind, w) in [
                    ("queue-scorer", c.queue),
                    ("kv-cache-utilization-scorer", c.kv_cache),
                    ("prefix-cache-scorer", c.prefix),
                    ("lora-affinity-scorer", c.lora),
                ] {
                    if let Some(w) = w {
                        base.set_weight(kind, w);
                    }
                }
                base
            }
        };
        out.push(Variant {
            key: dns_label(a.name()),
            arm: Some(a.name().to_string()),
            config,
        });
    }
    if out.is_empty() {
        out.push(Variant {
            key: "epp".to_string(),
            arm: None,
            config: EndpointPickerConfig::from_weights(api, &Weights::default()),
        });
    }
    Ok(out)
}

/// The ServiceAccount, Role and RoleBinding every EPP of the scenario runs as: read pods,
/// InferencePools and InferenceObjectives in the namespace.
pub fn rbac(plan: &Plan<'_>) -> Vec<Manifest> {
    let name = plan.picker_account();
    let ns = &plan.opts.namespace;
    let l = labels(&plan.instance, "epp", &name);
    crate::meta::account(
        &name,
        ns,
        &l,
        vec![
            read_rule("", "pods"),
            read_rule(INFERENCE_POOL_GROUP, "inferencepools"),
            read_rule(plan.opts.epp_api.group(), "inferenceobjectives"),
        ],
    )
    .to_vec()
}

/// The EPP of one InferencePool: ConfigMap (the variant's config), Deployment, Service.
pub fn epp(plan: &Plan<'_>, pool: &Pool, v: &Variant) -> Result<Vec<Manifest>, RenderError> {
    let name = plan.epp_name(pool, v);
    let ns = &plan.opts.namespace;
    let l = labels(&plan.instance, "epp", &name);
    let config = ConfigMap {
        metadata: object_meta(&name, ns, &l),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_string(),
            v.config.to_yaml()?,
        )])),
        ..Default::default()
    };
    let grpc_probe = |delay| Probe {
        grpc: Some(GRPCAction {
            port: HEALTH_PORT,
            service: Some("inference-extension".to_string()),
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(10),
        ..Default::default()
    };
    let container = Container {
        name: "epp".to_string(),
        image: Some(plan.opts.epp_image.clone()),
        args: Some(
            [
                "--pool-name",
                &plan.inference_pool_name(pool, v),
                "--pool-namespace",
                ns,
                "--config-file",
                CONFIG_PATH,
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(
            [
                ("grpc", EXT_PROC_PORT),
                ("grpc-health", HEALTH_PORT),
                ("metrics", METRICS_PORT),
            ]
            .map(|(n, p)| ContainerPort {
                name: Some(n.to_string()),
                container_port: p,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            })
            .to_vec(),
        ),
        env: Some(vec![EnvVar {
            name: "NAMESPACE".to_string(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.namespace".to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        readiness_probe: Some(grpc_probe(5)),
        liveness_probe: Some(grpc_probe(5)),
        resources: Some(crate::meta::resources("500m", "512Mi", None, None)),
        security_context: Some(container_security(false)),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".to_string(),
            mount_path: "/config".to_string(),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let deployment = deployment(
        &name,
        ns,
        &l,
        1,
        PodSpec {
            service_account_name: Some(plan.picker_account()),
            // As long as the longest request the pool may still be serving.
            termination_grace_period_seconds: Some(130),
            security_context: Some(pod_security()),
            containers: vec![container],
            volumes: Some(vec![Volume {
                name: "config".to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        },
    );
    let svc = service(
        object_meta(&name, ns, &l),
        &l,
        &[
            ("grpc-ext-proc", EXT_PROC_PORT, Some("http2")),
            ("http-metrics", METRICS_PORT, None),
        ],
    );
    Ok(vec![
        Manifest::ConfigMap(config),
        Manifest::Deployment(deployment),
        Manifest::Service(svc),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_is_the_contracts_one() {
        let c = EndpointPickerConfig::from_weights(EppApi::default(), &Weights::default());
        assert_eq!(c.api_version, "inference.networking.x-k8s.io/v1alpha1");
        let types: Vec<&str> = c.plugins.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(
            types,
            [
                "queue-scorer",
                "kv-cache-utilization-scorer",
                "prefix-cache-scorer",
                "max-score-picker",
                "single-profile-handler"
            ]
        );
        assert_eq!(c.weight_of("queue-scorer"), 2.0);
        assert_eq!(c.weight_of("kv-cache-utilization-scorer"), 2.0);
        assert_eq!(c.weight_of("prefix-cache-scorer"), 3.0);
        assert_eq!(c.weight_of("lora-affinity-scorer"), 0.0);
        let yaml = c.to_yaml().unwrap();
        assert!(yaml.contains("weight: 3\n"), "{yaml}");
        let back: EndpointPickerConfig = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn llm_d_uses_its_own_group() {
        let c = EndpointPickerConfig::from_weights(EppApi::LlmD, &Weights::default());
        assert_eq!(c.api_version, "llm-d.ai/v1alpha1");
    }

    #[test]
    fn weights_can_be_changed_added_and_removed() {
        let mut c = EndpointPickerConfig::from_weights(EppApi::default(), &Weights::default());
        c.set_weight("queue-scorer", 5.0);
        c.set_weight("prefix-cache-scorer", 0.0);
        c.set_weight("lora-affinity-scorer", 1.5);
        assert_eq!(c.weight_of("queue-scorer"), 5.0);
        assert_eq!(c.weight_of("prefix-cache-scorer"), 0.0);
        assert_eq!(c.weight_of("lora-affinity-scorer"), 1.5);
        assert!(c.to_yaml().unwrap().contains("weight: 1.5"));
    }
}
