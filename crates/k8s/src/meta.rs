//! Pieces every object shares: metadata with the common labels, the pod and container security
//! settings, resource requests, and a Service in front of a workload.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, ResourceRequirements, SeccompProfile, SecurityContext,
    Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The non-root user our containers (and the EPP's distroless image) run as.
pub const NON_ROOT_UID: i64 = 65532;

/// Metadata: name, namespace and labels.
pub fn object_meta(name: &str, namespace: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

/// Pod-level security: non-root (a numeric user, so the kubelet can check it), the runtime's
/// default seccomp profile.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(NON_ROOT_UID),
        run_as_group: Some(NON_ROOT_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Container-level security: no privilege escalation, every capability dropped, and (for our
/// own image, which writes nothing outside its mounted volumes) a read-only root filesystem.
pub fn container_security(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Requests (and limits, where given) of CPU and memory.
pub fn resources(
    cpu: &str,
    memory: &str,
    cpu_limit: Option<&str>,
    memory_limit: Option<&str>,
) -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    let mut limits = BTreeMap::new();
    if let Some(c) = cpu_limit {
        limits.insert("cpu".to_string(), q(c));
    }
    if let Some(m) = memory_limit {
        limits.insert("memory".to_string(), q(m));
    }
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), q(cpu)),
            ("memory".to_string(), q(memory)),
        ])),
        limits: (!limits.is_empty()).then_some(limits),
        ..Default::default()
    }
}

/// True when `s` is a Kubernetes quantity (`500m`, `1`, `1.5`, `256Mi`, `1G`, `1e3`).
pub fn is_quantity(s: &str) -> bool {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let num_ok = !num.is_empty()
        && num != "."
        && num.matches('.').count() <= 1
        && num.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    num_ok && suffix_ok
}

/// A ClusterIP Service selecting `selector`, with `(name, port, app_protocol)` ports (each
/// targeting the same port number on the pods).
pub fn service(
    meta: ObjectMeta,
    selector: &BTreeMap<String, String>,
    ports: &[(&str, i32, Option<&str>)],
) -> Service {
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector.clone()),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port, proto)| ServicePort {
                        name: Some(name.to_string()),
                        port: *port,
                        target_port: Some(IntOrString::Int(*port)),
                        protocol: Some("TCP".to_string()),
                        app_protocol: proto.map(str::to_string),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Deployment of `replicas` pods labelled `labels` (its selector too), running `pod`.
pub fn deployment(
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    replicas: i32,
    pod: k8s_openapi::api::core::v1::PodSpec,
) -> Deployment {
    Deployment {
        metadata: object_meta(name, namespace, labels),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: k8s_openapi::api::core::v1::PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A rule that reads (`get`, `list`, `watch`) `resource` of API group `group` (`""`: core).
pub fn read_rule(group: &str, resource: &str) -> k8s_openapi::api::rbac::v1::PolicyRule {
    k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(vec![resource.to_string()]),
        verbs: ["get", "list", "watch"].map(String::from).to_vec(),
        ..Default::default()
    }
}

/// A ServiceAccount `name` in `namespace`, a Role of `rules`, and the RoleBinding between them.
pub fn account(
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
) -> [crate::manifest::Manifest; 3] {
    use crate::manifest::Manifest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
    [
        Manifest::ServiceAccount(ServiceAccount {
            metadata: object_meta(name, namespace, labels),
            ..Default::default()
        }),
        Manifest::Role(Role {
            metadata: object_meta(name, namespace, labels),
            rules: Some(rules),
        }),
        Manifest::RoleBinding(RoleBinding {
            metadata: object_meta(name, namespace, labels),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_string(),
                kind: "Role".to_string(),
                name: name.to_string(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_string(),
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }]),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_checked() {
        for ok in ["500m", "1", "1.5", "256Mi", "1Gi", "2G", "1e3", "0.5"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1 Gi", "1GB", "-1", "1..2", "abc", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
