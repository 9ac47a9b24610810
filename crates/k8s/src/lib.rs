//! The benchmark environment as Kubernetes manifests, rendered from a scenario file: the
//! simulated fleet (`inferbench mock` Deployments and Services), InferencePools and
//! InferenceObjectives, the Endpoint Picker (one per picker variant the scenario's arms compare),
//! the Body Based Router for multi-model scenarios, a Gateway with one HTTPRoute per arm, and the
//! load as an Indexed Job of shards starting together.
//!
//! Built-in kinds are k8s-openapi's types; the CRDs are ours ([`crd`]). Nothing is built from
//! text templates: objects are values, serialized with serde-saphyr. Rendering reads no clock
//! and no cluster: the same file and options give the same YAML.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bbr;
pub mod crd;
pub mod epp;
pub mod fleet;
pub mod gateway;
pub mod job;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod plan;
pub mod pool;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use inferbench_config::Config;

pub use crd::{EppApi, FailureMode};
pub use manifest::Manifest;
pub use plan::Plan;

/// The image of `inferbench` itself (mock fleet and load pods) unless `--image` says otherwise.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/inferbench/inferbench:", env!("CARGO_PKG_VERSION"));

/// Everything `render` needs besides the scenario file (the flags of `inferbench k8s render`).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The scenario to render (`--scenario`); needed when the file has more than one.
    pub scenario: Option<String>,
    /// Namespace of every object (`--namespace`).
    pub namespace: String,
    /// Also render the Namespace object itself (off with `--no-namespace`).
    pub create_namespace: bool,
    /// Image running `inferbench mock` and `inferbench run` (`--image`).
    pub image: String,
    /// The Endpoint Picker's image (`--epp-image`).
    pub epp_image: String,
    /// The Body Based Router's image (`--bbr-image`).
    pub bbr_image: String,
    /// API group of InferenceObjective and EndpointPickerConfig (`--epp-api`).
    pub epp_api: EppApi,
    /// The InferencePools' `endpointPickerRef.failureMode` (`--failure-mode`).
    pub failure_mode: FailureMode,
    /// Mock pods per pool (`--replicas`).
    pub replicas: i32,
    /// Load pods, each sending its shard of the schedule (`--shards`).
    pub shards: i32,
    /// The instant every shard starts, Unix milliseconds (`--start-at`, or now + `--start-in`).
    pub start_at_unix_ms: u64,
    /// The Gateway's class (`--gateway-class`).
    pub gateway_class: String,
    /// The gateway's base URL in the cluster (`--gateway-url`; default: the Gateway's name as a
    /// Service in the namespace, as kgateway names it).
    pub gateway_url: Option<String>,
    /// CPU request of each mock (`--fleet-cpu`).
    pub fleet_cpu: String,
    /// Memory request and limit of each mock (`--fleet-memory`).
    pub fleet_memory: String,
    /// CPU request of each load pod (`--load-cpu`).
    pub load_cpu: String,
    /// Memory request of each load pod (`--load-memory`).
    pub load_memory: String,
    /// CPU limit of each load pod (`--load-cpu-limit`; default none: throttling would delay
    /// sends and distort latencies).
    pub load_cpu_limit: Option<String>,
    /// Memory limit of each load pod (`--load-memory-limit`; default: the request).
    pub load_memory_limit: Option<String>,
    /// Extra arguments for every mock (`--mock-arg`, repeated), e.g. `--ttft-ms=80`.
    pub mock_args: Vec<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            scenario: None,
            namespace: "inferbench".to_string(),
            create_namespace: true,
            image: DEFAULT_IMAGE.to_string(),
            epp_image: epp::DEFAULT_EPP_IMAGE.to_string(),
            bbr_image: bbr::DEFAULT_BBR_IMAGE.to_string(),
            epp_api: EppApi::default(),
            failure_mode: FailureMode::default(),
            replicas: 4,
            shards: 1,
            start_at_unix_ms: 0,
            gateway_class: "kgateway".to_string(),
            gateway_url: None,
            fleet_cpu: "500m".to_string(),
            fleet_memory: "256Mi".to_string(),
            load_cpu: "1".to_string(),
            load_memory: "1Gi".to_string(),
            load_cpu_limit: None,
            load_memory_limit: None,
            mock_args: Vec::new(),
        }
    }
}

/// Why nothing was rendered; each names the flag or the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A flag's value cannot be used.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag, e.g. `--shards`.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A field of the scenario file cannot be rendered.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The file.
        file: String,
        /// Dotted path of the field, e.g. `scenarios[0].workload.prompts_file`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Two objects of one kind would get the same name (names are cut and sanitized, so
    /// different model or arm names can meet).
    #[error(
        "two {kind}s would both be named `{name}`: rename the models or arms whose names sanitize alike"
    )]
    Collision {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
    },
    /// Serialization failed (a bug).
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

impl RenderError {
    /// An error at `field` of `cfg`'s file.
    pub fn field(cfg: &Config, field: &str, message: impl Into<String>) -> Self {
        RenderError::Field {
            file: cfg.origin.clone(),
            field: if field.is_empty() {
                "(the file)".to_string()
            } else {
                field.to_string()
            },
            message: message.into(),
        }
    }
}

/// Every object of the benchmark environment for one scenario, in apply order: namespace, fleet,
/// EPP accounts, per pool and variant the EPP and InferencePool, BBR (multi-model), Gateway and
/// HTTPRoutes, then the scenario ConfigMap and the Job.
pub fn render(cfg: &Config, opts: &RenderOptions) -> Result<Vec<Manifest>, RenderError> {
    check(opts)?;
    let plan = Plan::new(cfg, opts)?;
    let mut out = Vec::new();
    if opts.create_namespace {
        out.push(Manifest::Namespace(Namespace {
            metadata: ObjectMeta {
                name: Some(opts.namespace.clone()),
                labels: Some(
                    [(names::PART_OF, names::PART_OF_VALUE)]
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }));
    }
    for pool in &plan.pools {
        out.extend(fleet::fleet(&plan, pool));
    }
    out.extend(epp::rbac(&plan));
    for v in &plan.variants {
        for pool in &plan.pools {
            out.extend(epp::epp(&plan, pool, v)?);
            out.extend(pool::inference_pool(&plan, pool, v));
        }
    }
    if plan.multi_model() {
        out.extend(bbr::bbr(&plan));
    }
    out.push(gateway::gateway(&plan));
    out.extend(gateway::routes(&plan));
    out.extend(job::load(&plan)?);
    unique(&out)?;
    Ok(out)
}

/// The objects as one multi-document YAML stream, documents separated by `---`.
pub fn to_yaml(manifests: &[Manifest]) -> Result<String, RenderError> {
    manifest::to_yaml(manifests).map_err(|e| RenderError::Yaml(e.to_string()))
}

/// The options' own checks, each naming its flag.
fn check(o: &RenderOptions) -> Result<(), RenderError> {
    let flag = |flag, message: String| Err(RenderError::Flag { flag, message });
    if !names::is_dns1123_label(&o.namespace) {
        return flag(
            "--namespace",
            format!(
                "`{}` is not a DNS-1123 label (lowercase letters, digits, `-`, at most 63)",
                o.namespace
            ),
        );
    }
    if !(1..=10_000).contains(&o.shards) {
        return flag("--shards", format!("{} is not within 1..=10000", o.shards));
    }
    if !(1..=10_000).contains(&o.replicas) {
        return flag(
            "--replicas",
            format!("{} is not within 1..=10000", o.replicas),
        );
    }
    for (f, v) in [
        ("--image", &o.image),
        ("--epp-image", &o.epp_image),
        ("--bbr-image", &o.bbr_image),
        ("--gateway-class", &o.gateway_class),
    ] {
        if v.trim().is_empty() || v.chars().any(char::is_whitespace) {
            return flag(f, format!("`{v}` is empty or has spaces"));
        }
    }
    for (f, v) in [
        ("--fleet-cpu", Some(&o.fleet_cpu)),
        ("--fleet-memory", Some(&o.fleet_memory)),
        ("--load-cpu", Some(&o.load_cpu)),
        ("--load-memory", Some(&o.load_memory)),
        ("--load-cpu-limit", o.load_cpu_limit.as_ref()),
        ("--load-memory-limit", o.load_memory_limit.as_ref()),
    ] {
        if let Some(v) = v
            && !meta::is_quantity(v)
        {
            return flag(
                f,
                format!("`{v}` is not a Kubernetes quantity (e.g. 500m, 2, 256Mi, 1Gi)"),
            );
        }
    }
    if let Some(u) = &o.gateway_url
        && !u.starts_with("http://")
    {
        return flag(
            "--gateway-url",
            format!("`{u}` must start with http:// (the load generator speaks plain HTTP)"),
        );
    }
    Ok(())
}

/// No two objects of one kind share a name.
fn unique(out: &[Manifest]) -> Result<(), RenderError> {
    let mut seen = BTreeSet::new();
    for m in out {
        if !seen.insert((m.kind().to_string(), m.name().to_string())) {
            return Err(RenderError::Collision {
                kind: m.kind().to_string(),
                name: m.name().to_string(),
            });
        }
    }
    Ok(())
}
