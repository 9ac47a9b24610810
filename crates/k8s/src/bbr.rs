//! The Body Based Router, rendered when the scenario asks for several models or LoRA adapters:
//! a Deployment of the BBR image (an ext-proc server on 9004 that copies the body's `model` into
//! the `X-Gateway-Model-Name` header the HTTPRoutes match on), its Service, and a ServiceAccount
//! allowed to read ConfigMaps (BBR watches them for base-model maps).
//!
//! Hooking BBR into the Gateway as an ext-proc filter is implementation-specific (kgateway: a
//! GatewayExtension and a TrafficPolicy; Istio: an EnvoyFilter) and is not rendered here.

use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

use crate::manifest::Manifest;
use crate::meta::{container_security, deployment, object_meta, pod_security, resources, service};
use crate::names::labels;
use crate::plan::Plan;

/// BBR's ext-proc port.
pub const BBR_PORT: i32 = 9004;
/// BBR's health port.
pub const BBR_HEALTH_PORT: i32 = 9005;
/// The BBR image used unless `--bbr-image` says otherwise (GIE v1.5.0's; BBR has since moved to
/// llm-d's payload processor).
pub const DEFAULT_BBR_IMAGE: &str = "registry.k8s.io/gateway-api-inference-extension/bbr:v1.5.0";
/// The header BBR sets from the body's `model`.
pub const MODEL_HEADER: &str = "X-Gateway-Model-Name";

/// BBR's ServiceAccount, Role, RoleBinding, Deployment and Service.
pub fn bbr(plan: &Plan<'_>) -> Vec<Manifest> {
    let name = plan.bbr_name();
    let ns = &plan.opts.namespace;
    let l = labels(&plan.instance, "bbr", &name);
    let container = Container {
        name: "bbr".to_string(),
        image: Some(plan.opts.bbr_image.clone()),
        args: Some(vec!["--streaming".to_string()]),
        ports: Some(
            [("grpc", BBR_PORT), ("grpc-health", BBR_HEALTH_PORT)]
                .map(|(n, p)| ContainerPort {
                    name: Some(n.to_string()),
                    container_port: p,
                    protocol: Some("TCP".to_string()),
                    ..Default::default()
                })
                .to_vec(),
        ),
        resources: Some(resources("250m", "128Mi", None, None)),
        security_context: Some(container_security(false)),
        ..Default::default()
    };
    let deployment = deployment(
        &name,
        ns,
        &l,
        1,
        PodSpec {
            service_account_name: Some(name.clone()),
            security_context: Some(pod_security()),
            containers: vec![container],
            ..Default::default()
        },
    );
    let mut out = crate::meta::account(
        &name,
        ns,
        &l,
        vec![crate::meta::read_rule("", "configmaps")],
    )
    .to_vec();
    out.extend([
        Manifest::Deployment(deployment),
        Manifest::Service(service(
            object_meta(&name, ns, &l),
            &l,
            &[("grpc-ext-proc", BBR_PORT, Some("http2"))],
        )),
    ]);
    out
}
