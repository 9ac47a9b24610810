//! The Gateway API Inference Extension's `EndpointPickerConfig`, read into the EPP picker's
//! weights: `plugins: [{name, type, parameters}]` and `schedulingProfiles: [{name, plugins:
//! [{pluginRef, weight}]}]`. The first profile is used; a scorer it does not reference has
//! weight 0.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::picker::epp::{EppConfig, FailureMode};

/// An `EndpointPickerConfig` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPickerConfig {
    /// e.g. `inference.networking.x-k8s.io/v1alpha1` (not checked).
    pub api_version: Option<String>,
    /// `EndpointPickerConfig`.
    pub kind: String,
    /// The plugins.
    pub plugins: Vec<Plugin>,
    /// Scheduling profiles; the first is used.
    #[serde(default)]
    pub scheduling_profiles: Vec<Profile>,
    /// FailOpen or FailClose (an inferbench extension; the GIE sets it on the InferencePool).
    pub failure_mode: Option<FailureMode>,
}

/// A plugin instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    /// Name referenced by profiles (default: the type).
    pub name: Option<String>,
    /// Plugin type, e.g. `queue-scorer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Parameters.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// A scheduling profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name.
    pub name: String,
    /// Plugins in this profile, with weights for scorers.
    pub plugins: Vec<PluginRef>,
}

/// A plugin used by a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    /// The plugin's name.
    pub plugin_ref: String,
    /// Scorer weight (default 1).
    pub weight: Option<f64>,
}

/// Plugin types understood.
pub const KNOWN: [&str; 8] = [
    "queue-scorer",
    "kv-cache-utilization-scorer",
    "prefix-cache-scorer",
    "lora-affinity-scorer",
    "max-score-picker",
    "random-picker",
    "single-profile-handler",
    "decode-filter",
];

impl EndpointPickerConfig {
    /// Parses a YAML document.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let c: EndpointPickerConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if c.kind != "EndpointPickerConfig" {
            return Err(format!("kind is `{}`, not EndpointPickerConfig", c.kind));
        }
        Ok(c)
    }

    /// The EPP picker configuration it describes.
    pub fn to_epp(&self) -> Result<EppConfig, String> {
        let mut by_name = BTreeMap::new();
        for p in &self.plugins {
            if !KNOWN.contains(&p.kind.as_str()) {
                return Err(format!(
                    "plugin type `{}` is not supported (supported: {})",
                    p.kind,
                    KNOWN.join(", ")
                ));
            }
            by_name.insert(p.name.clone().unwrap_or_else(|| p.kind.clone()), p);
        }
        let mut cfg = EppConfig {
            queue: 0.0,
            kv_cache: 0.0,
            prefix: 0.0,
            lora: 0.0,
            ..EppConfig::default()
        };
        if let Some(m) = self.failure_mode {
            cfg.failure_mode = m;
        }
        let profile = self
            .scheduling_profiles
            .first()
            .ok_or("no schedulingProfiles")?;
        for r in &profile.plugins {
            let p = by_name.get(&r.plugin_ref).ok_or_else(|| {
                format!(
                    "profile `{}` refers to plugin `{}`, which is not defined",
                    profile.name, r.plugin_ref
                )
            })?;
            let w = r.weight.unwrap_or(1.0);
            match p.kind.as_str() {
                "queue-scorer" => cfg.queue = w,
                "kv-cache-utilization-scorer" => cfg.kv_cache = w,
                "prefix-cache-scorer" => {
                    cfg.prefix = w;
                    if let Some(n) = p
                        .parameters
                        .get("lruCapacityPerServer")
                        .and_then(|v| v.as_u64())
                    {
                        cfg.prefix_lru_blocks = n as usize;
                    }
                }
                "lora-affinity-scorer" => cfg.lora = w,
                _ => {}
            }
        }
        Ok(cfg)
    }
}

/// Reading an `EndpointPickerConfig` file straight into the epp picker's weights.
pub struct EppConfigFile;

impl EppConfigFile {
    /// Reads and converts `path`; errors name the file.
    pub fn load(path: &std::path::Path) -> Result<EppConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        EndpointPickerConfig::from_yaml(&text)
            .and_then(|c| c.to_epp())
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
  parameters:
    hashBlockSize: 64
    maxPrefixBlocksToMatch: 256
    lruCapacityPerServer: 31250
- name: lora
  type: lora-affinity-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
"#;

    #[test]
    fn the_default_profile_gives_the_default_weights() {
        let c = EndpointPickerConfig::from_yaml(DOC)
            .unwrap()
            .to_epp()
            .unwrap();
        assert_eq!(
            (c.queue, c.kv_cache, c.prefix, c.lora),
            (2.0, 2.0, 3.0, 0.0)
        );
        assert_eq!(c.prefix_lru_blocks, 31250);
        let with_lora = DOC.replace(
            "  - pluginRef: max-score-picker",
            "  - pluginRef: lora\n    weight: 1\n  - pluginRef: max-score-picker",
        );
        let c = EndpointPickerConfig::from_yaml(&with_lora)
            .unwrap()
            .to_epp()
            .unwrap();
        assert_eq!(c.lora, 1.0);
    }

    #[test]
    fn unknown_plugins_and_dangling_refs_are_errors() {
        let bad = DOC.replace("type: max-score-picker", "type: weird-picker");
        let e = EndpointPickerConfig::from_yaml(&bad)
            .unwrap()
            .to_epp()
            .unwrap_err();
        assert!(
            e.contains("weird-picker") && e.contains("queue-scorer"),
            "{e}"
        );
        let dangling = DOC.replace("pluginRef: kv-cache-utilization-scorer", "pluginRef: kv");
        let e = EndpointPickerConfig::from_yaml(&dangling)
            .unwrap()
            .to_epp()
            .unwrap_err();
        assert!(e.contains("`kv`"), "{e}");
        assert!(EndpointPickerConfig::from_yaml("kind: Other\nplugins: []").is_err());
    }
}
