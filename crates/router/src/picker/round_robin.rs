//! Round robin over the endpoints that are up: the plain-gateway baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Pick, PickRequest, Picker, alive};
use crate::endpoints::Endpoint;

/// Each endpoint in turn.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Picker for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn pick(&self, _: &PickRequest<'_>, endpoints: &[Arc<Endpoint>]) -> Pick {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        if !endpoints.is_empty() && endpoints.iter().all(|e| !e.down()) {
            // The usual case, without building the list of endpoints that are up.
            return Pick::Endpoint(turn % endpoints.len());
        }
        let up = alive(endpoints);
        let i = turn % up.len().max(1);
        up.get(i).map_or(Pick::NoEndpoint, |&e| Pick::Endpoint(e))
    }
}
