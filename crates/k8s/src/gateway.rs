//! The Gateway the load is sent to, and one HTTPRoute per arm: path `/baseline` to the fleet's
//! Service (the baseline: the gateway's own balancing), and `/<variant>` to that variant's
//! InferencePool (the EPP picks). Each rule strips its prefix (`URLRewrite` to `/`), so
//! `http://<gateway>/<arm>` is an ordinary OpenAI base URL. With several pools, each rule also
//! matches BBR's `X-Gateway-Model-Name` header, one rule per model or adapter name.

use crate::bbr::MODEL_HEADER;
use crate::crd::{
    AllowedRoutes, BackendRef, GATEWAY_API, GATEWAY_GROUP, Gateway, GatewaySpec, HeaderMatch,
    HttpRoute, HttpRouteFilter, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, HttpRouteTimeouts,
    INFERENCE_POOL_GROUP, Listener, ParentRef, PathMatch, PathRewrite, RouteNamespaces, UrlRewrite,
};
use crate::fleet::MOCK_PORT;
use crate::manifest::Manifest;
use crate::meta::object_meta;
use crate::names::{join, labels};
use crate::plan::{BASELINE, Plan, Pool};

/// The port the Gateway listens on (plain HTTP).
pub const GATEWAY_PORT: i32 = 80;
/// Most rules one HTTPRoute may hold (Gateway API); more make further routes.
pub const MAX_RULES: usize = 16;
/// The request timeout on every rule: as long as the load generator's own default, so long
/// generations are not cut by the gateway's default (often 15 s).
pub const REQUEST_TIMEOUT: &str = "600s";

/// The Gateway.
pub fn gateway(plan: &Plan<'_>) -> Manifest {
    let name = plan.gateway_name();
    let l = labels(&plan.instance, "gateway", &name);
    Manifest::Gateway(Gateway {
        api_version: GATEWAY_API.to_string(),
        kind: "Gateway".to_string(),
        metadata: object_meta(&name, &plan.opts.namespace, &l),
        spec: GatewaySpec {
            gateway_class_name: plan.opts.gateway_class.clone(),
            listeners: vec![Listener {
                name: "http".to_string(),
                protocol: "HTTP".to_string(),
                port: GATEWAY_PORT,
                allowed_routes: Some(AllowedRoutes {
                    namespaces: RouteNamespaces {
                        from: "Same".to_string(),
                    },
                }),
            }],
        },
    })
}

/// The HTTPRoutes: the baseline's, then one per picker variant.
pub fn routes(plan: &Plan<'_>) -> Vec<Manifest> {
    let mut out = routes_of(plan, BASELINE, |pool| BackendRef {
        group: None,
        kind: "Service".to_string(),
        name: pool.name.clone(),
        port: Some(MOCK_PORT),
    });
    for v in &plan.variants {
        out.extend(routes_of(plan, &v.key, |pool| BackendRef {
            group: Some(INFERENCE_POOL_GROUP.to_string()),
            kind: "InferencePool".to_string(),
            name: plan.inference_pool_name(pool, v),
            port: None,
        }));
    }
    out
}

/// The route(s) of `key`: one rule per pool (one per model name with several pools), at most
/// [`MAX_RULES`] per HTTPRoute.
fn routes_of(plan: &Plan<'_>, key: &str, backend: impl Fn(&Pool) -> BackendRef) -> Vec<Manifest> {
    let path = PathMatch {
        kind: "PathPrefix".to_string(),
        value: format!("/{key}"),
    };
    let rule = |headers: Vec<HeaderMatch>, pool: &Pool| HttpRouteRule {
        // URLRewrite's ReplacePrefixMatch needs exactly one PathPrefix match per rule.
        matches: vec![HttpRouteMatch {
            path: path.clone(),
            headers,
        }],
        filters: vec![HttpRouteFilter {
            kind: "URLRewrite".to_string(),
            url_rewrite: UrlRewrite {
                path: PathRewrite {
                    kind: "ReplacePrefixMatch".to_string(),
                    replace_prefix_match: "/".to_string(),
                },
            },
        }],
        backend_refs: vec![backend(pool)],
        timeouts: Some(HttpRouteTimeouts {
            request: REQUEST_TIMEOUT.to_string(),
        }),
    };
    let rules: Vec<HttpRouteRule> = if plan.pools.len() == 1 {
        vec![rule(Vec::new(), &plan.pools[0])]
    } else {
        plan.served_names()
            .map(|(model, pool)| {
                rule(
                    vec![HeaderMatch {
                        kind: "Exact".to_string(),
                        name: MODEL_HEADER.to_string(),
                        value: model.to_string(),
                    }],
                    pool,
                )
            })
            .collect()
    };
    let base = plan.route_name(key);
    rules
        .chunks(MAX_RULES)
        .enumerate()
        .map(|(i, chunk)| {
            let name = if i == 0 {
                base.clone()
            } else {
                join(&[&base, &(i + 1).to_string()])
            };
            let l = labels(&plan.instance, "gateway", &name);
            Manifest::HttpRoute(HttpRoute {
                api_version: GATEWAY_API.to_string(),
                kind: "HTTPRoute".to_string(),
                metadata: object_meta(&name, &plan.opts.namespace, &l),
                spec: HttpRouteSpec {
                    parent_refs: vec![ParentRef {
                        group: GATEWAY_GROUP.to_string(),
                        kind: "Gateway".to_string(),
                        name: plan.gateway_name(),
                    }],
                    rules: chunk.to_vec(),
                },
            })
        })
        .collect()
}
