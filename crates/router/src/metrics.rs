//! The router's own metrics (`inferbench_router_*` on its `/metrics`): requests and requests
//! in flight per endpoint, picker decision time per pool, body-read time, scrape errors, and
//! requests it answered itself by status. The per-request series are resolved once at start,
//! so a request hashes no labels. (What the router scrapes from endpoints is
//! [`crate::endpoints`].)

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolEndpoint {
    pool: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

/// The router's own figures.
pub(crate) struct RouterMetrics {
    requests: Family<PoolEndpoint, Counter>,
    in_flight: Family<PoolEndpoint, Gauge>,
    decision: Family<PoolLabel, Histogram>,
    /// Time reading and parsing request bodies.
    pub(crate) body_read: Histogram,
    scrape_errors: Family<EndpointLabel, Counter>,
    rejected: Family<CodeLabel, Counter>,
}

impl RouterMetrics {
    /// The metrics, registered in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = RouterMetrics {
            requests: Family::default(),
            in_flight: Family::default(),
            decision: Family::new_with_constructor(|| {
                Histogram::new([
                    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001,
                    0.005, 0.01,
                ])
            }),
            body_read: Histogram::new([0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.05]),
            scrape_errors: Family::default(),
            rejected: Family::default(),
        };
        registry.register(
            "requests",
            "Requests sent to each endpoint",
            m.requests.clone(),
        );
        registry.register(
            "in_flight",
            "Requests in flight at each endpoint",
            m.in_flight.clone(),
        );
        registry.register(
            "picker_decision_seconds",
            "Time the picker took per request",
            m.decision.clone(),
        );
        registry.register(
            "body_read_seconds",
            "Time reading and parsing request bodies (BBR stage)",
            m.body_read.clone(),
        );
        registry.register(
            "scrape_errors",
            "Failed scrapes of endpoint metrics",
            m.scrape_errors.clone(),
        );
        registry.register(
            "rejected",
            "Requests answered by the router itself, by status",
            m.rejected.clone(),
        );
        m
    }

    /// The requests and in-flight series of `endpoint` in `pool`.
    pub(crate) fn upstream(&self, pool: &str, endpoint: &str) -> (Counter, Gauge) {
        let labels = PoolEndpoint {
            pool: pool.to_string(),
            endpoint: endpoint.to_string(),
        };
        (
            self.requests.get_or_create(&labels).clone(),
            self.in_flight.get_or_create(&labels).clone(),
        )
    }

    /// The picker-decision histogram of `pool`.
    pub(crate) fn decision(&self, pool: &str) -> Histogram {
        self.decision
            .get_or_create(&PoolLabel {
                pool: pool.to_string(),
            })
            .clone()
    }

    /// The scrape-error counter of `endpoint`.
    pub(crate) fn scrape_errors(&self, endpoint: &str) -> Counter {
        self.scrape_errors
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_string(),
            })
            .clone()
    }
}

/// Requests the router answered itself, by status.
pub(crate) struct Rejected {
    pub(crate) bad_request: Counter,
    pub(crate) request_timeout: Counter,
    pub(crate) too_large: Counter,
    pub(crate) shed: Counter,
    pub(crate) bad_gateway: Counter,
    pub(crate) unavailable: Counter,
    pub(crate) gateway_timeout: Counter,
}

impl Rejected {
    /// The series of `m`'s `rejected` family, one per status.
    pub(crate) fn of(m: &RouterMetrics) -> Self {
        let code = |c: &str| {
            m.rejected
                .get_or_create(&CodeLabel { code: c.into() })
                .clone()
        };
        Rejected {
            bad_request: code("400"),
            request_timeout: code("408"),
            too_large: code("413"),
            shed: code("429"),
            bad_gateway: code("502"),
            unavailable: code("503"),
            gateway_timeout: code("504"),
        }
    }
}
