//! The queue scorer: `(maxQ − q) / (maxQ − minQ)` over the candidates (all 1 when equal).

/// Scores for queue lengths `q` (one per candidate).
pub fn scores(q: &[f64]) -> Vec<f64> {
    let max = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = q.iter().copied().fold(f64::INFINITY, f64::min);
    q.iter()
        .map(|&v| {
            if max > min {
                ((max - v) / (max - min)).clamp(0.0, 1.0)
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shortest_queue_scores_one() {
        assert_eq!(super::scores(&[0.0, 5.0, 10.0]), [1.0, 0.5, 0.0]);
        assert_eq!(super::scores(&[3.0, 3.0]), [1.0, 1.0]);
    }
}
