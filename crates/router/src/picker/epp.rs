//! The EPP-style picker: a saturation filter, then weighted scorers (queue, KV cache, prefix
//! cache, LoRA affinity), then the maximum score with ties broken at random. Defaults as the
//! Gateway API Inference Extension's: weights 2 / 2 / 3 / 0; saturated at queue ≥ 5, KV ≥ 0.8 or
//! metrics older than 200 ms; FailClose.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Pick, PickRequest, Picker, kv_cache, lora, prefix, queue};
use crate::endpoints::{Endpoint, Scraped};

/// What to do when no endpoint has usable metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum FailureMode {
    /// Route anyway (round robin over the endpoints that are up).
    FailOpen,
    /// Reject with 503.
    #[default]
    FailClose,
}

/// Weights and limits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EppConfig {
    /// `queue-scorer` weight.
    pub queue: f64,
    /// `kv-cache-utilization-scorer` weight.
    pub kv_cache: f64,
    /// `prefix-cache-scorer` weight.
    pub prefix: f64,
    /// `lora-affinity-scorer` weight.
    pub lora: f64,
    /// Saturated at this queue length or more.
    pub queue_threshold: f64,
    /// Saturated at this KV-cache usage or more.
    pub kv_threshold: f64,
    /// Metrics older than this make an endpoint saturated, ms.
    pub staleness_ms: u64,
    /// Blocks each endpoint's prefix LRU holds.
    pub prefix_lru_blocks: usize,
    /// FailOpen or FailClose.
    pub failure_mode: FailureMode,
}

impl Default for EppConfig {
    fn default() -> Self {
        Self {
            queue: 2.0,
            kv_cache: 2.0,
            prefix: 3.0,
            lora: 0.0,
            queue_threshold: 5.0,
            kv_threshold: 0.8,
            staleness_ms: 200,
            prefix_lru_blocks: 65_536,
            failure_mode: FailureMode::FailClose,
        }
    }
}

/// The picker, with one prefix LRU per endpoint.
pub struct Epp {
    cfg: EppConfig,
    lrus: Vec<prefix::BlockLru>,
    rr: super::round_robin::RoundRobin,
}

impl Epp {
    /// A picker over `n` endpoints.
    pub fn new(cfg: EppConfig, n: usize) -> Self {
        let lrus = (0..n)
            .map(|_| prefix::BlockLru::new(cfg.prefix_lru_blocks))
            .collect();
        Self {
            cfg,
            lrus,
            rr: Default::default(),
        }
    }

    /// Score of every candidate (for tests and debugging).
    pub fn scores(
        &self,
        req: &PickRequest<'_>,
        endpoints: &[Arc<Endpoint>],
        cands: &[(usize, Arc<Scraped>)],
        hashes: &[u64],
    ) -> Vec<f64> {
        let q: Vec<f64> = cands.iter().map(|(i, s)| endpoints[*i].queue(s)).collect();
        let qs = queue::scores(&q);
        cands
            .iter()
            .zip(qs)
            .map(|((i, s), qscore)| {
                let mut total = self.cfg.queue * qscore;
                total += self.cfg.kv_cache * kv_cache::score(s.kv_usage);
                if self.cfg.prefix > 0.0
                    && let Some(lru) = self.lrus.get(*i)
                {
                    total += self.cfg.prefix * prefix::score(lru, hashes);
                }
                if self.cfg.lora > 0.0
                    && let Some(m) = req.model
                {
                    total += self.cfg.lora * lora::score(m, s);
                }
                total
            })
            .collect()
    }
}

impl Picker for Epp {
    fn name(&self) -> &str {
        "epp"
    }

    fn pick(&self, req: &PickRequest<'_>, endpoints: &[Arc<Endpoint>]) -> Pick {
        let now = Instant::now();
        let max_age = Duration::from_millis(self.cfg.staleness_ms);
        let mut cands: Vec<(usize, Arc<Scraped>)> = endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.down())
            .filter_map(|(i, e)| e.fresh(now, max_age).map(|s| (i, s)))
            .collect();
        if cands.is_empty() {
            return match self.cfg.failure_mode {
                FailureMode::FailOpen => self.rr.pick(req, endpoints),
                FailureMode::FailClose => Pick::NoEndpoint,
            };
        }
        let unsaturated = |(i, s): &(usize, Arc<Scraped>)| {
            endpoints[*i].queue(s) < self.cfg.queue_threshold && s.kv_usage < self.cfg.kv_threshold
        };
        if cands.iter().any(unsaturated) {
            cands.retain(unsaturated);
        } else if req.sheddable {
            return Pick::Shed;
        }
        let hashes = match (req.prefix_text, self.cfg.prefix > 0.0) {
            (Some(t), true) => prefix::block_hashes(req.model.unwrap_or(""), t),
            _ => Vec::new(),
        };
        let scores = self.scores(req, endpoints, &cands, &hashes);
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tied: Vec<usize> = cands
            .iter()
            .zip(&scores)
            .filter(|(_, s)| (**s - best).abs() < 1e-9)
            .map(|((i, _), _)| *i)
            .collect();
        // No tie only when a score is NaN (a server reporting NaN): take the first candidate.
        let chosen = match tied.len() {
            0 => cands[0].0,
            n => tied[rand::rng().random_range(0..n)],
        };
        if !hashes.is_empty()
            && let Some(lru) = self.lrus.get(chosen)
        {
            lru.insert(&hashes);
        }
        Pick::Endpoint(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(addr: &str, waiting: f64, kv: f64) -> Arc<Endpoint> {
        let e = Endpoint::new(addr);
        e.store(
            Scraped {
                waiting,
                kv_usage: kv,
                ..Default::default()
            },
            Instant::now(),
        );
        Arc::new(e)
    }

    // Paused time: the scrapes stay fresh however slowly a busy machine runs the test.
    #[tokio::test(start_paused = true)]
    async fn prefers_short_queues_and_free_cache_and_skips_saturated() {
        let p = Epp::new(EppConfig::default(), 3);
        let eps = [ep("a", 4.0, 0.5), ep("b", 0.0, 0.1), ep("c", 9.0, 0.0)];
        let r = PickRequest::default();
        for _ in 0..20 {
            assert_eq!(p.pick(&r, &eps), Pick::Endpoint(1));
        }
        // All saturated: sheddable requests are shed, others still routed.
        let full = [ep("a", 6.0, 0.9), ep("b", 7.0, 0.85)];
        let p = Epp::new(EppConfig::default(), 2);
        let shed = PickRequest {
            sheddable: true,
            ..Default::default()
        };
        assert_eq!(p.pick(&shed, &full), Pick::Shed);
        assert!(matches!(p.pick(&r, &full), Pick::Endpoint(_)));
        // No metrics at all: FailClose rejects, FailOpen routes.
        let blind = [Arc::new(Endpoint::new("x"))];
        assert_eq!(
            Epp::new(EppConfig::default(), 1).pick(&r, &blind),
            Pick::NoEndpoint
        );
        let open = EppConfig {
            failure_mode: FailureMode::FailOpen,
            ..Default::default()
        };
        assert_eq!(Epp::new(open, 1).pick(&r, &blind), Pick::Endpoint(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_prefix_sticks_to_its_endpoint() {
        let p = Epp::new(EppConfig::default(), 4);
        let eps: Vec<_> = (0..4).map(|i| ep(&format!("e{i}"), 0.0, 0.0)).collect();
        let text = "s".repeat(64 * 20);
        let r = PickRequest {
            model: Some("m"),
            prefix_text: Some(&text),
            sheddable: false,
        };
        let Pick::Endpoint(first) = p.pick(&r, &eps) else {
            panic!()
        };
        for _ in 0..20 {
            assert_eq!(p.pick(&r, &eps), Pick::Endpoint(first));
        }
    }
}
