//! One rendered Kubernetes object, typed, and the multi-document YAML of a list of them.

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::crd::{Gateway, HttpRoute, InferenceObjective, InferencePool};

/// A rendered object: a built-in kind (k8s-openapi) or one of our CRD types. Serializes as the
/// object itself, `apiVersion` and `kind` included.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum Manifest {
    /// `v1/Namespace`.
    Namespace(Namespace),
    /// `v1/ServiceAccount`.
    ServiceAccount(ServiceAccount),
    /// `rbac.authorization.k8s.io/v1/Role`.
    Role(Role),
    /// `rbac.authorization.k8s.io/v1/RoleBinding`.
    RoleBinding(RoleBinding),
    /// `v1/ConfigMap`.
    ConfigMap(ConfigMap),
    /// `apps/v1/Deployment`.
    Deployment(Deployment),
    /// `v1/Service`.
    Service(Service),
    /// `inference.networking.k8s.io/v1/InferencePool`.
    InferencePool(InferencePool),
    /// `…/v1alpha2/InferenceObjective`.
    InferenceObjective(InferenceObjective),
    /// `gateway.networking.k8s.io/v1/Gateway`.
    Gateway(Gateway),
    /// `gateway.networking.k8s.io/v1/HTTPRoute`.
    HttpRoute(HttpRoute),
    /// `batch/v1/Job`.
    Job(Job),
}

impl Manifest {
    /// Its `kind`.
    pub fn kind(&self) -> &str {
        match self {
            Manifest::Namespace(_) => Namespace::KIND,
            Manifest::ServiceAccount(_) => ServiceAccount::KIND,
            Manifest::Role(_) => Role::KIND,
            Manifest::RoleBinding(_) => RoleBinding::KIND,
            Manifest::ConfigMap(_) => ConfigMap::KIND,
            Manifest::Deployment(_) => Deployment::KIND,
            Manifest::Service(_) => Service::KIND,
            Manifest::InferencePool(o) => &o.kind,
            Manifest::InferenceObjective(o) => &o.kind,
            Manifest::Gateway(o) => &o.kind,
            Manifest::HttpRoute(o) => &o.kind,
            Manifest::Job(_) => Job::KIND,
        }
    }

    /// Its `apiVersion`.
    pub fn api_version(&self) -> &str {
        match self {
            Manifest::Namespace(_) => Namespace::API_VERSION,
            Manifest::ServiceAccount(_) => ServiceAccount::API_VERSION,
            Manifest::Role(_) => Role::API_VERSION,
            Manifest::RoleBinding(_) => RoleBinding::API_VERSION,
            Manifest::ConfigMap(_) => ConfigMap::API_VERSION,
            Manifest::Deployment(_) => Deployment::API_VERSION,
            Manifest::Service(_) => Service::API_VERSION,
            Manifest::InferencePool(o) => &o.api_version,
            Manifest::InferenceObjective(o) => &o.api_version,
            Manifest::Gateway(o) => &o.api_version,
            Manifest::HttpRoute(o) => &o.api_version,
            Manifest::Job(_) => Job::API_VERSION,
        }
    }

    /// Its metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Namespace(o) => &o.metadata,
            Manifest::ServiceAccount(o) => &o.metadata,
            Manifest::Role(o) => &o.metadata,
            Manifest::RoleBinding(o) => &o.metadata,
            Manifest::ConfigMap(o) => &o.metadata,
            Manifest::Deployment(o) => &o.metadata,
            Manifest::Service(o) => &o.metadata,
            Manifest::InferencePool(o) => &o.metadata,
            Manifest::InferenceObjective(o) => &o.metadata,
            Manifest::Gateway(o) => &o.metadata,
            Manifest::HttpRoute(o) => &o.metadata,
            Manifest::Job(o) => &o.metadata,
        }
    }

    /// Its `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }
}

/// The objects as one multi-document YAML stream (documents separated by `---`), in order.
pub fn to_yaml(manifests: &[Manifest]) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string_multiple(manifests)
}
