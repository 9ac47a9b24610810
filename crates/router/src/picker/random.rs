//! A uniformly random endpoint among those up.

use std::sync::Arc;

use rand::RngExt;

use super::{Pick, PickRequest, Picker, alive};
use crate::endpoints::Endpoint;

/// Random choice.
#[derive(Debug, Default)]
pub struct Random;

impl Picker for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn pick(&self, _: &PickRequest<'_>, endpoints: &[Arc<Endpoint>]) -> Pick {
        let up = alive(endpoints);
        if up.is_empty() {
            return Pick::NoEndpoint;
        }
        Pick::Endpoint(up[rand::rng().random_range(0..up.len())])
    }
}
