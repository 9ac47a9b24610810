//! The endpoint with the fewest requests the router has in flight there (ties at random).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::RngExt;

use super::{Pick, PickRequest, Picker, alive};
use crate::endpoints::Endpoint;

/// Least outstanding requests.
#[derive(Debug, Default)]
pub struct LeastRequest;

impl Picker for LeastRequest {
    fn name(&self) -> &str {
        "least-request"
    }

    fn pick(&self, _: &PickRequest<'_>, endpoints: &[Arc<Endpoint>]) -> Pick {
        let up = alive(endpoints);
        let min = up
            .iter()
            .map(|&i| endpoints[i].in_flight.load(Ordering::Relaxed))
            .min();
        let Some(min) = min else {
            return Pick::NoEndpoint;
        };
        let best: Vec<usize> = up
            .into_iter()
            .filter(|&i| endpoints[i].in_flight.load(Ordering::Relaxed) == min)
            .collect();
        Pick::Endpoint(best[rand::rng().random_range(0..best.len())])
    }
}
