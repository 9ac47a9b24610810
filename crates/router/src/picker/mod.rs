//! Endpoint pickers: given a request and the pool's endpoints, choose one. One small trait, one
//! file per algorithm; the EPP-style picker composes scorers (one file each).

use std::sync::Arc;

use crate::endpoints::Endpoint;

pub mod epp;
pub mod kv_cache;
pub mod least_request;
pub mod lora;
pub mod prefix;
pub mod queue;
pub mod random;
pub mod round_robin;

/// What a picker may look at in a request.
#[derive(Debug, Clone, Default)]
pub struct PickRequest<'a> {
    /// The model (or adapter) asked for, if the body was read.
    pub model: Option<&'a str>,
    /// The text prefix caching keys on: the JSON of `messages`, or `prompt`.
    pub prefix_text: Option<&'a str>,
    /// The request may be shed (429) when every endpoint is saturated.
    pub sheddable: bool,
}

/// A picker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Send it to `endpoints[i]`.
    Endpoint(usize),
    /// Every endpoint is saturated and the request may be shed: 429.
    Shed,
    /// No endpoint can take it: 503.
    NoEndpoint,
}

/// Chooses an endpoint for each request.
pub trait Picker: Send + Sync {
    /// Its name in metrics and reports.
    fn name(&self) -> &str;
    /// The choice for `req` among `endpoints` (never empty).
    fn pick(&self, req: &PickRequest<'_>, endpoints: &[Arc<Endpoint>]) -> Pick;
}

/// Endpoints whose last scrape did not fail; all of them when every one failed (a router that
/// scrapes nothing, like round-robin, never marks any down).
pub fn alive(endpoints: &[Arc<Endpoint>]) -> Vec<usize> {
    let up: Vec<usize> = (0..endpoints.len())
        .filter(|&i| !endpoints[i].down())
        .collect();
    if up.is_empty() {
        (0..endpoints.len()).collect()
    } else {
        up
    }
}
