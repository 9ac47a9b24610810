//! The KV-cache utilization scorer: `1 − kv_cache_usage_perc`.

/// The score for a usage in 0..1.
pub fn score(kv_usage: f64) -> f64 {
    (1.0 - kv_usage).clamp(0.0, 1.0)
}
