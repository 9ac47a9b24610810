//! Our own serde types for the custom resources k8s-openapi does not have: the Gateway API
//! Inference Extension's `InferencePool` (`inference.networking.k8s.io/v1`) and
//! `InferenceObjective` (`inference.networking.x-k8s.io/v1alpha2` or `llm-d.ai/v1alpha2`), and
//! the Gateway API's `Gateway` and `HTTPRoute` (`gateway.networking.k8s.io/v1`). Only the fields
//! we render are modelled; `metadata` is k8s-openapi's `ObjectMeta`. Field names follow the CRDs
//! exactly (camelCase); unset optional fields are left out.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// API group of `InferencePool`.
pub const INFERENCE_POOL_GROUP: &str = "inference.networking.k8s.io";
/// `apiVersion` of `InferencePool`.
pub const INFERENCE_POOL_API: &str = "inference.networking.k8s.io/v1";
/// `apiVersion` of `Gateway` and `HTTPRoute`.
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";
/// API group of `Gateway`.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A set of model-server pods the Endpoint Picker chooses among.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferencePool {
    /// `inference.networking.k8s.io/v1`.
    pub api_version: String,
    /// `InferencePool`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// What it selects and who picks.
    pub spec: InferencePoolSpec,
}

/// `InferencePool.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// The model-server pods (equality on labels only).
    pub selector: PoolSelector,
    /// Ports of the model servers in those pods.
    pub target_ports: Vec<PortNumber>,
    /// The Endpoint Picker's Service.
    pub endpoint_picker_ref: EndpointPickerRef,
}

/// `InferencePool.spec.selector`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSelector {
    /// Labels a pod must carry, all of them.
    pub match_labels: BTreeMap<String, String>,
}

/// A port number (`{number: N}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortNumber {
    /// 1–65535.
    pub number: i32,
}

/// `InferencePool.spec.endpointPickerRef`: the EPP's Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPickerRef {
    /// The Service's name (same namespace).
    pub name: String,
    /// Its ext-proc port (9002).
    pub port: PortNumber,
    /// What the gateway does when the picker does not answer.
    pub failure_mode: FailureMode,
}

/// What the gateway does when the Endpoint Picker fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FailureMode {
    /// Route anyway, to any endpoint.
    FailOpen,
    /// Reject the request (the default).
    #[default]
    FailClose,
}

/// Which API group serves `InferenceObjective` and `EndpointPickerConfig`: the Gateway API
/// Inference Extension's (up to v1.5.0) or llm-d's (llm-d-router, where the EPP moved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EppApi {
    /// `inference.networking.x-k8s.io` (GIE ≤ v1.5.0).
    #[default]
    GatewayApiInferenceExtension,
    /// `llm-d.ai` (llm-d-router).
    LlmD,
}

impl EppApi {
    /// The group as written on the command line: `inference.networking.x-k8s.io` or `llm-d.ai`.
    pub fn group(self) -> &'static str {
        match self {
            EppApi::GatewayApiInferenceExtension => "inference.networking.x-k8s.io",
            EppApi::LlmD => "llm-d.ai",
        }
    }

    /// `apiVersion` of `InferenceObjective`.
    pub fn objective_api_version(self) -> String {
        format!("{}/v1alpha2", self.group())
    }

    /// `apiVersion` of `EndpointPickerConfig`.
    pub fn picker_config_api_version(self) -> String {
        format!("{}/v1alpha1", self.group())
    }

    /// Reads a group name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inference.networking.x-k8s.io" => Some(EppApi::GatewayApiInferenceExtension),
            "llm-d.ai" => Some(EppApi::LlmD),
            _ => None,
        }
    }
}

/// The serving objective of requests to a pool (its priority); requests name it with the
/// `x-gateway-inference-objective` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceObjective {
    /// `inference.networking.x-k8s.io/v1alpha2` or `llm-d.ai/v1alpha2`.
    pub api_version: String,
    /// `InferenceObjective`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Priority and pool.
    pub spec: InferenceObjectiveSpec,
}

/// `InferenceObjective.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceObjectiveSpec {
    /// Higher is served first when the pool is saturated; negative may be shed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// The pool it applies to.
    pub pool_ref: PoolRef,
}

/// `InferenceObjective.spec.poolRef`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolRef {
    /// `inference.networking.k8s.io`.
    pub group: String,
    /// `InferencePool`.
    pub kind: String,
    /// The pool's name.
    pub name: String,
}

/// A Gateway API `Gateway`: the proxy the load is sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// `gateway.networking.k8s.io/v1`.
    pub api_version: String,
    /// `Gateway`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Class and listeners.
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The implementation (e.g. `kgateway`).
    pub gateway_class_name: String,
    /// Where it listens.
    pub listeners: Vec<Listener>,
}

/// `Gateway.spec.listeners[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Section name routes may attach to.
    pub name: String,
    /// `HTTP`.
    pub protocol: String,
    /// Port.
    pub port: i32,
    /// Which routes may attach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `listeners[].allowedRoutes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllowedRoutes {
    /// From which namespaces.
    pub namespaces: RouteNamespaces,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteNamespaces {
    /// `Same`, `All` or `Selector`.
    pub from: String,
}

/// A Gateway API `HTTPRoute`: which requests go to which backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// `gateway.networking.k8s.io/v1`.
    pub api_version: String,
    /// `HTTPRoute`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Parents and rules.
    pub spec: HttpRouteSpec,
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateway(s) it attaches to.
    pub parent_refs: Vec<ParentRef>,
    /// Rules, matched in order of specificity.
    pub rules: Vec<HttpRouteRule>,
}

/// `HTTPRoute.spec.parentRefs[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRef {
    /// `gateway.networking.k8s.io`.
    pub group: String,
    /// `Gateway`.
    pub kind: String,
    /// The Gateway's name.
    pub name: String,
}

/// `HTTPRoute.spec.rules[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// Any of these matches selects the rule.
    pub matches: Vec<HttpRouteMatch>,
    /// Changes made to the request on the way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
    /// Where matching requests go.
    pub backend_refs: Vec<BackendRef>,
    /// Time limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteTimeouts>,
}

/// `rules[].matches[]`: a path, and optionally headers; all must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteMatch {
    /// The path.
    pub path: PathMatch,
    /// Headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

/// `matches[].path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathMatch {
    /// `PathPrefix` or `Exact`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The path, starting with `/`.
    pub value: String,
}

/// `matches[].headers[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderMatch {
    /// `Exact`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Header name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `rules[].filters[]` (only `URLRewrite` is rendered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteFilter {
    /// `URLRewrite`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The rewrite.
    pub url_rewrite: UrlRewrite,
}

/// `filters[].urlRewrite`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlRewrite {
    /// The new path.
    pub path: PathRewrite,
}

/// `urlRewrite.path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathRewrite {
    /// `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the matched prefix becomes.
    pub replace_prefix_match: String,
}

/// `rules[].backendRefs[]`: a Service (group and kind left out) or an InferencePool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRef {
    /// `inference.networking.k8s.io` for an InferencePool; absent for a Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Service` or `InferencePool`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// A Service's port (an InferencePool's come from its `targetPorts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// `rules[].timeouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteTimeouts {
    /// Whole request, Gateway API duration (e.g. `600s`).
    pub request: String,
}
