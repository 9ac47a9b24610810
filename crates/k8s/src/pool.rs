//! The inference arm's backend: per pool and picker variant, an `InferencePool` selecting the
//! pool's mocks (exactly the fleet Deployment's pod labels) on port 8000 with its EPP's Service
//! as `endpointPickerRef`, and an `InferenceObjective` for it.

use crate::crd::{
    EndpointPickerRef, INFERENCE_POOL_API, INFERENCE_POOL_GROUP, InferenceObjective,
    InferenceObjectiveSpec, InferencePool, InferencePoolSpec, PoolRef, PoolSelector, PortNumber,
};
use crate::epp::EXT_PROC_PORT;
use crate::fleet::{MOCK_PORT, pod_labels};
use crate::manifest::Manifest;
use crate::meta::object_meta;
use crate::names::labels;
use crate::plan::{Plan, Pool, Variant};

/// The InferencePool and InferenceObjective of `pool` for variant `v`.
pub fn inference_pool(plan: &Plan<'_>, pool: &Pool, v: &Variant) -> Vec<Manifest> {
    let name = plan.inference_pool_name(pool, v);
    let ns = &plan.opts.namespace;
    let l = labels(&plan.instance, "inference-pool", &name);
    let ip = InferencePool {
        api_version: INFERENCE_POOL_API.to_string(),
        kind: "InferencePool".to_string(),
        metadata: object_meta(&name, ns, &l),
        spec: InferencePoolSpec {
            selector: PoolSelector {
                match_labels: pod_labels(plan, pool),
            },
            target_ports: vec![PortNumber { number: MOCK_PORT }],
            endpoint_picker_ref: EndpointPickerRef {
                name: plan.epp_name(pool, v),
                port: PortNumber {
                    number: EXT_PROC_PORT,
                },
                failure_mode: plan.opts.failure_mode,
            },
        },
    };
    let objective = InferenceObjective {
        api_version: plan.opts.epp_api.objective_api_version(),
        kind: "InferenceObjective".to_string(),
        metadata: object_meta(&name, ns, &l),
        spec: InferenceObjectiveSpec {
            priority: Some(0),
            pool_ref: PoolRef {
                group: INFERENCE_POOL_GROUP.to_string(),
                kind: "InferencePool".to_string(),
                name: name.clone(),
            },
        },
    };
    vec![
        Manifest::InferencePool(ip),
        Manifest::InferenceObjective(objective),
    ]
}
