//! The simulated fleet: per pool, a Deployment of `inferbench mock` (one simulated vLLM server
//! per pod on port 8000, serving the pool's base model and LoRA adapters, ready when `/health`
//! answers) and a ClusterIP Service in front of it — the baseline arm's backend.

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::manifest::Manifest;
use crate::meta::{container_security, deployment, object_meta, pod_security, resources, service};
use crate::names::labels;
use crate::plan::{Plan, Pool};

/// The port every mock serves on (the InferencePool's `targetPorts`).
pub const MOCK_PORT: i32 = 8000;
/// `app.kubernetes.io/component` of the fleet.
pub const COMPONENT: &str = "fleet";

/// The pod labels of `pool`'s mocks: the Deployment's and Service's selector and the
/// InferencePool's `selector.matchLabels`.
pub fn pod_labels(plan: &Plan<'_>, pool: &Pool) -> std::collections::BTreeMap<String, String> {
    labels(&plan.instance, COMPONENT, &pool.name)
}

/// The mock's arguments: `mock --host 0.0.0.0 --port 8000 --model M [--lora-adapters A,B]`,
/// then `--mock-arg`s.
pub fn mock_args(plan: &Plan<'_>, pool: &Pool) -> Vec<String> {
    let mut args: Vec<String> = [
        "mock",
        "--host",
        "0.0.0.0",
        "--port",
        &MOCK_PORT.to_string(),
        "--model",
        &pool.model,
    ]
    .map(String::from)
    .to_vec();
    if !pool.adapters.is_empty() {
        args.push("--lora-adapters".to_string());
        args.push(pool.adapters.join(","));
    }
    args.extend(plan.opts.mock_args.iter().cloned());
    args
}

/// The Deployment and Service of one pool.
pub fn fleet(plan: &Plan<'_>, pool: &Pool) -> Vec<Manifest> {
    let ns = &plan.opts.namespace;
    let l = pod_labels(plan, pool);
    let container = Container {
        name: "mock".to_string(),
        image: Some(plan.opts.image.clone()),
        args: Some(mock_args(plan, pool)),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: MOCK_PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health".to_string()),
                port: IntOrString::String("http".to_string()),
                ..Default::default()
            }),
            period_seconds: Some(2),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        resources: Some(resources(
            &plan.opts.fleet_cpu,
            &plan.opts.fleet_memory,
            None,
            Some(&plan.opts.fleet_memory),
        )),
        security_context: Some(container_security(true)),
        ..Default::default()
    };
    let deployment = deployment(
        &pool.name,
        ns,
        &l,
        plan.opts.replicas,
        PodSpec {
            security_context: Some(pod_security()),
            automount_service_account_token: Some(false),
            containers: vec![container],
            ..Default::default()
        },
    );
    let svc = service(
        object_meta(&pool.name, ns, &l),
        &l,
        &[("http", MOCK_PORT, Some("http"))],
    );
    vec![Manifest::Deployment(deployment), Manifest::Service(svc)]
}
