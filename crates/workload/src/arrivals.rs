//! Planned send instants of an open-loop schedule, as microsecond offsets from the stage start.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// How requests are spread in time at a given rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Evenly spaced: request k at k / rate.
    Constant,
    /// A Poisson process: exponential gaps with mean 1 / rate.
    Poisson,
}

/// An endless iterator of planned offsets, µs, at `rate` per second (rate must be > 0).
#[derive(Debug, Clone)]
pub struct Schedule {
    arrival: Arrival,
    rate: f64,
    k: u64,
    t_us: f64,
    rng: Xoshiro256PlusPlus,
}

impl Schedule {
    /// A schedule at `rate` requests/s, seeded.
    pub fn new(arrival: Arrival, rate: f64, seed: u64) -> Self {
        Self {
            arrival,
            rate,
            k: 0,
            t_us: 0.0,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }
}

impl Iterator for Schedule {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return None;
        }
        let at = match self.arrival {
            // Computed from k, not accumulated, so there is no drift however long the run.
            Arrival::Constant => (self.k as f64 * 1e6 / self.rate).round(),
            Arrival::Poisson => {
                let t = self.t_us;
                // Inverse transform: −ln(U)/rate, U in (0, 1].
                let u: f64 = 1.0 - self.rng.random::<f64>();
                self.t_us += -u.ln() * 1e6 / self.rate;
                t.round()
            }
        };
        self.k += 1;
        Some(at as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_exact() {
        let v: Vec<u64> = Schedule::new(Arrival::Constant, 1000.0, 0)
            .take(5)
            .collect();
        assert_eq!(v, [0, 1000, 2000, 3000, 4000]);
        let v: Vec<u64> = Schedule::new(Arrival::Constant, 3.0, 0).take(4).collect();
        assert_eq!(v, [0, 333_333, 666_667, 1_000_000]);
        // No drift after a million requests.
        assert_eq!(
            Schedule::new(Arrival::Constant, 7.0, 0).nth(7_000_000),
            Some(1_000_000_000_000)
        );
    }

    #[test]
    fn poisson_gaps_are_exponential() {
        let rate = 200.0;
        let v: Vec<u64> = Schedule::new(Arrival::Poisson, rate, 42)
            .take(100_001)
            .collect();
        let gaps: Vec<f64> = v.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        // Mean 5,000 µs; an exponential's stddev equals its mean (coefficient of variation 1).
        assert!((mean - 5000.0).abs() < 50.0, "mean {mean}");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.02,
            "cv {}",
            var.sqrt() / mean
        );
        // P(gap > mean) = e^-1.
        let over = gaps.iter().filter(|g| **g > 5000.0).count() as f64 / n;
        assert!((over - (-1.0f64).exp()).abs() < 0.01, "{over}");
        // Same seed, same schedule.
        let again: Vec<u64> = Schedule::new(Arrival::Poisson, rate, 42).take(10).collect();
        assert_eq!(&v[..10], &again[..]);
    }

    #[test]
    fn zero_or_bad_rate_ends() {
        assert_eq!(Schedule::new(Arrival::Constant, 0.0, 0).next(), None);
        assert_eq!(Schedule::new(Arrival::Poisson, f64::NAN, 0).next(), None);
    }
}
