//! The load: a ConfigMap holding the scenario file as the pods read it, and an Indexed Job of
//! `--shards` pods, each running its shard of the one global schedule (`inferbench run
//! /config/scenario.yaml --scenario NAME --url <gateway> --shard $(JOB_COMPLETION_INDEX)/N
//! --start-at <UNIX_MS> --no-history --report-stdout`), all starting at the same instant. The
//! pods print their report as the last line of their logs, for `inferbench merge`.
//!
//! The scenario file in the ConfigMap is the rendered scenario only (with the file's targets,
//! without its suite): its arms are turned into URL arms on the gateway's routes (so `epp` is the
//! real EPP, `proxy-rr` the gateway's own balancing, `direct` the fleet's Service), and its
//! `prompts_file` and `workload.trace` file are carried along beside it.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, PodAffinityTerm,
    PodAntiAffinity, PodSpec, PodTemplateSpec, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use inferbench_config::{Arm, ConfigFile, Scenario};

use crate::RenderError;
use crate::epp::is_epp_arm;
use crate::manifest::Manifest;
use crate::meta::{container_security, object_meta, pod_security, resources};
use crate::names::{dns_label, labels};
use crate::plan::{BASELINE, Plan};

/// Where the scenario ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/config";
/// The scenario file's key in the ConfigMap.
pub const SCENARIO_KEY: &str = "scenario.yaml";
/// The prompts file's key in the ConfigMap (the scenario names it relatively).
pub const PROMPTS_KEY: &str = "prompts.jsonl";
/// The trace file's key in the ConfigMap, before its extension (`trace.csv`, `trace.jsonl`).
pub const TRACE_KEY: &str = "trace";
/// Where each pod writes its report files (an emptyDir; the report also goes to stdout).
pub const RESULTS_DIR: &str = "/results";
/// Largest ConfigMap the API server accepts.
pub const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

/// The scenario ConfigMap and the Indexed Job.
pub fn load(plan: &Plan<'_>) -> Result<Vec<Manifest>, RenderError> {
    if plan.opts.shards > 1 && !shardable(plan.scenario) {
        return Err(RenderError::Flag {
            flag: "--shards",
            message: format!(
                "scenario `{}` cannot be split over pods: a sweep's or stress test's next step depends on what the last one measured, and routing arms alternate windows; render it with --shards 1 (one pod)",
                plan.scenario.name.value
            ),
        });
    }
    let ns = &plan.opts.namespace;
    let data = scenario_files(plan)?;
    let cm_name = plan.scenario_config_name();
    let config = ConfigMap {
        metadata: object_meta(&cm_name, ns, &labels(&plan.instance, "load", &cm_name)),
        data: Some(data),
        ..Default::default()
    };
    let name = plan.load_name();
    let l = labels(&plan.instance, "load", &name);
    let shards = plan.opts.shards;
    let container = Container {
        name: "load".to_string(),
        image: Some(plan.opts.image.clone()),
        args: Some(run_args(plan)),
        resources: Some(resources(
            &plan.opts.load_cpu,
            &plan.opts.load_memory,
            plan.opts.load_cpu_limit.as_deref(),
            Some(
                plan.opts
                    .load_memory_limit
                    .as_deref()
                    .unwrap_or(&plan.opts.load_memory),
            ),
        )),
        security_context: Some(container_security(true)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "scenario".to_string(),
                mount_path: CONFIG_DIR.to_string(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "results".to_string(),
                mount_path: RESULTS_DIR.to_string(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let spread = WeightedPodAffinityTerm {
        weight: 100,
        pod_affinity_term: PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(l.clone()),
                ..Default::default()
            }),
            topology_key: "kubernetes.io/hostname".to_string(),
            ..Default::default()
        },
    };
    let job = Job {
        metadata: object_meta(&name, ns, &l),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".to_string()),
            completions: Some(shards),
            parallelism: Some(shards),
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(l.clone()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    automount_service_account_token: Some(false),
                    security_context: Some(pod_security()),
                    affinity: Some(Affinity {
                        pod_anti_affinity: Some(PodAntiAffinity {
                            preferred_during_scheduling_ignored_during_execution: Some(vec![
                                spread,
                            ]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "scenario".to_string(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: cm_name.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        Volume {
                            name: "results".to_string(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(vec![Manifest::ConfigMap(config), Manifest::Job(job)])
}

/// The URL the pods send to (`--url`): the first picker variant's route on the gateway.
pub fn load_url(plan: &Plan<'_>) -> String {
    plan.route_url(&plan.variants[0].key)
}

/// Whether scenario `s` can be split over pods (`run --shard`): a rate, concurrency, stages,
/// users or trace load without routing arms (the rule `runner::check_sharding` applies). A
/// sweep's and a stress test's next step depends on what the last one measured, and arms
/// alternate windows one after another: those run on one pod.
pub fn shardable(s: &Scenario) -> bool {
    let l = &s.load;
    let trace_instants = s.workload.trace.is_some()
        && l.rate.is_none()
        && l.concurrency.is_none()
        && l.stages.is_none()
        && l.users.is_none()
        && l.sweep.is_none()
        && l.stress.is_none();
    s.arms.is_empty()
        && (l.rate.is_some()
            || l.concurrency.is_some()
            || l.stages.is_some()
            || l.users.is_some()
            || trace_instants)
}

/// The ConfigMap key a trace file travels under: `trace` and the file's own extension (the
/// format is told by the first line or by `format:`, never by the name).
pub fn trace_key(path: &str) -> String {
    match std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty() && e.len() <= 16 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        Some(ext) => format!("{TRACE_KEY}.{ext}"),
        None => TRACE_KEY.to_string(),
    }
}

/// Each pod's arguments to `inferbench`: a shard of the plan from the common start, or (a
/// scenario that cannot be split) the whole plan on the Job's one pod.
pub fn run_args(plan: &Plan<'_>) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        format!("{CONFIG_DIR}/{SCENARIO_KEY}"),
        "--scenario".to_string(),
        plan.scenario.name.value.clone(),
        "--url".to_string(),
        load_url(plan),
    ];
    if shardable(plan.scenario) {
        args.extend([
            "--shard".to_string(),
            format!("$(JOB_COMPLETION_INDEX)/{}", plan.opts.shards),
            "--start-at".to_string(),
            plan.opts.start_at_unix_ms.to_string(),
        ]);
    }
    args.extend([
        "--no-history".to_string(),
        "--report-stdout".to_string(),
        "--out".to_string(),
        RESULTS_DIR.to_string(),
    ]);
    args
}

/// Where arm `a` sends in the cluster: its own URL, the fleet's Service (`direct` with one pool),
/// its variant's route (EPP arms), or the baseline route (every other picker: the gateway
/// balances by itself).
pub fn arm_url(plan: &Plan<'_>, a: &Arm) -> String {
    match a {
        Arm::Custom(c) if c.url.is_some() => c.url.clone().unwrap_or_default(),
        Arm::Named(n) if n == "direct" && plan.pools.len() == 1 => plan.fleet_url(&plan.pools[0]),
        a if is_epp_arm(a) => plan.route_url(&dns_label(a.name())),
        _ => plan.route_url(BASELINE),
    }
}

/// The ConfigMap's files: the scenario file as the pods read it, and its prompts file if any.
pub fn scenario_files(plan: &Plan<'_>) -> Result<BTreeMap<String, String>, RenderError> {
    let cfg = plan.cfg;
    let mut doc: Doc = serde_saphyr::from_str(&cfg.text)
        .map_err(|e| RenderError::field(cfg, "", format!("cannot read it again: {e}")))?;
    let mut data = BTreeMap::new();
    // The carried file that weighs most, named if the ConfigMap is too big.
    let mut biggest = (plan.field("workload"), 0usize);
    let Doc::Map(top) = &mut doc else {
        return Err(RenderError::field(cfg, "", "not a mapping"));
    };
    top.retain(|(k, _)| k.as_str() != Some("suite"));
    for (k, v) in top.iter_mut() {
        if k.as_str() != Some("scenarios") {
            continue;
        }
        let Doc::Seq(list) = v else {
            return Err(RenderError::field(cfg, "scenarios", "not a list"));
        };
        let mut s = list.swap_remove(plan.index);
        if let Some(arms) = s.get_mut("arms") {
            *arms = Doc::Seq(
                plan.scenario
                    .arms
                    .iter()
                    .map(|a| {
                        Doc::Map(vec![
                            (Doc::str("name"), Doc::str(a.name())),
                            (Doc::str("url"), Doc::str(&arm_url(plan, a))),
                        ])
                    })
                    .collect(),
            );
        }
        // Files the scenario names, read here and carried under a fixed key the rewritten
        // scenario names instead: (field, path as written, key, the YAML keys to rewrite).
        let w = &plan.scenario.workload;
        let carried = [
            w.prompts_file.as_ref().map(|pf| {
                (
                    "workload.prompts_file",
                    pf.value.clone(),
                    PROMPTS_KEY.to_string(),
                    &["prompts_file"][..],
                )
            }),
            w.trace.as_ref().map(|t| {
                (
                    "workload.trace.path",
                    t.path.value.clone(),
                    trace_key(&t.path.value),
                    &["trace", "path"][..],
                )
            }),
        ];
        for (field, file, key, keys) in carried.into_iter().flatten() {
            let field = plan.field(field);
            let path = cfg.relative(&file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| RenderError::field(cfg, &field, format!("{}: {e}", path.display())))?;
            let size = key.len() + text.len();
            if size > biggest.1 {
                biggest = (field.clone(), size);
            }
            data.insert(key.clone(), text);
            let mut at = s.get_mut("workload");
            for k in keys {
                at = at.and_then(|d| d.get_mut(k));
            }
            match at {
                Some(p) => *p = Doc::str(&key),
                None => {
                    return Err(RenderError::field(
                        cfg,
                        &field,
                        "not found again in the file as written",
                    ));
                }
            }
        }
        *list = vec![s];
    }
    let text = serde_saphyr::to_string(&doc).map_err(|e| RenderError::Yaml(e.to_string()))?;
    // Still a scenario file (its validation runs in the pods, where its files are).
    serde_saphyr::from_str::<ConfigFile>(&text).map_err(|e| {
        RenderError::Yaml(format!("the rewritten scenario file does not parse: {e}"))
    })?;
    data.insert(SCENARIO_KEY.to_string(), text);
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_CONFIG_MAP_BYTES {
        return Err(RenderError::field(
            cfg,
            &biggest.0,
            format!(
                "the scenario and the files it names make {size} bytes, above a ConfigMap's {MAX_CONFIG_MAP_BYTES}; the pods read them from one, so cut the file to the part that is replayed (e.g. `head -n 20001 trace.csv > part.csv`)"
            ),
        ));
    }
    Ok(data)
}

/// A YAML document read without a schema, keeping the order of keys (so the rewritten file
/// reads like the original).
#[derive(Debug, Clone, PartialEq)]
enum Doc {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Doc>),
    Map(Vec<(Doc, Doc)>),
}

impl Doc {
    fn str(s: &str) -> Doc {
        Doc::Str(s.to_string())
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Doc::Str(s) => Some(s),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Doc> {
        match self {
            Doc::Map(m) => m
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Serialize for Doc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Doc::Null => s.serialize_unit(),
            Doc::Bool(b) => s.serialize_bool(*b),
            Doc::Int(i) => s.serialize_i64(*i),
            Doc::UInt(u) => s.serialize_u64(*u),
            Doc::Float(f) => s.serialize_f64(*f),
            Doc::Str(t) => s.serialize_str(t),
            Doc::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Doc::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Doc, E> {
                Ok(Doc::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Doc, E> {
                Ok(Doc::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Doc, D2::Error> {
                Doc::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Doc, E> {
                Ok(Doc::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Doc, E> {
                Ok(Doc::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Doc, E> {
                Ok(Doc::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Doc, E> {
                Ok(Doc::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Doc, E> {
                Ok(Doc::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Doc, E> {
                Ok(Doc::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(Doc::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry()? {
                    out.push((k, v));
                }
                Ok(Doc::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_keeps_its_order_and_values() {
        let text = "b: 1\na: [x, 2.5, true, null]\nc: {z: '007', y: -3}\n";
        let d: Doc = serde_saphyr::from_str(text).unwrap();
        let out = serde_saphyr::to_string(&d).unwrap();
        assert!(out.starts_with("b: 1\na:"), "{out}");
        let back: Doc = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(back, d);
    }
}
