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

/// One segment of a rate profile: `duration_s` seconds in which the rate goes linearly from
/// `from` to `to` requests/s (equal for a constant stage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSegment {
    /// Length, seconds.
    pub duration_s: f64,
    /// Rate at the start, requests/s.
    pub from: f64,
    /// Rate at the end, requests/s.
    pub to: f64,
}

/// Planned offsets (µs) for a piecewise-linear rate: stages and ramps. Arrival k is where the
/// cumulative expected count Λ(t) = ∫ rate reaches k (constant) or the k-th sum of unit
/// exponentials (Poisson: a non-homogeneous Poisson process by time change). Ends after the
/// last segment.
#[derive(Debug, Clone)]
pub struct ProfileSchedule {
    arrival: Arrival,
    segments: Vec<RateSegment>,
    /// Index of the segment being walked, its start time (s) and Λ at its start.
    seg: usize,
    seg_start_s: f64,
    seg_start_l: f64,
    k: u64,
    next_l: f64,
    rng: Xoshiro256PlusPlus,
}

impl ProfileSchedule {
    /// A schedule over `segments` (negative or non-finite rates count as 0).
    pub fn new(arrival: Arrival, segments: Vec<RateSegment>, seed: u64) -> Self {
        let segments = segments
            .into_iter()
            .map(|s| RateSegment {
                duration_s: if s.duration_s.is_finite() {
                    s.duration_s.max(0.0)
                } else {
                    0.0
                },
                from: if s.from.is_finite() {
                    s.from.max(0.0)
                } else {
                    0.0
                },
                to: if s.to.is_finite() { s.to.max(0.0) } else { 0.0 },
            })
            .collect();
        let mut p = Self {
            arrival,
            segments,
            seg: 0,
            seg_start_s: 0.0,
            seg_start_l: 0.0,
            k: 0,
            next_l: 0.0,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        };
        p.next_l = p.draw_gap();
        p
    }

    /// Λ advance to the next arrival: 1 for constant (the first at Λ = 0.5, so a stage of n
    /// expected requests holds n), Exp(1) for Poisson.
    fn draw_gap(&mut self) -> f64 {
        match self.arrival {
            Arrival::Constant => {
                if self.k == 0 {
                    0.5
                } else {
                    1.0
                }
            }
            Arrival::Poisson => -(1.0 - self.rng.random::<f64>()).ln(),
        }
    }
}

impl Iterator for ProfileSchedule {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let target = self.next_l;
        loop {
            let s = *self.segments.get(self.seg)?;
            let area = s.duration_s * (s.from + s.to) / 2.0;
            let x = target - self.seg_start_l;
            if x <= area && area > 0.0 {
                // Solve from·τ + (to − from)/(2d)·τ² = x for τ in [0, d], in the form that is
                // stable when the slope is zero or negative.
                let a = (s.to - s.from) / (2.0 * s.duration_s);
                let b = s.from;
                let disc = (b * b + 4.0 * a * x).max(0.0);
                let denom = b + disc.sqrt();
                let tau = if denom > 0.0 {
                    (2.0 * x / denom).min(s.duration_s)
                } else {
                    0.0
                };
                let at_s = self.seg_start_s + tau;
                self.k += 1;
                let gap = self.draw_gap();
                self.next_l = target + gap;
                return Some((at_s * 1e6).round() as u64);
            }
            self.seg += 1;
            self.seg_start_s += s.duration_s;
            self.seg_start_l += area;
        }
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

    #[test]
    fn profile_constant_stage_matches_the_plain_schedule() {
        let p: Vec<u64> = ProfileSchedule::new(
            Arrival::Constant,
            vec![RateSegment {
                duration_s: 2.0,
                from: 10.0,
                to: 10.0,
            }],
            1,
        )
        .collect();
        // 20 requests in 2 s, at 50 ms, 150 ms, … (centred in their slots).
        assert_eq!(p.len(), 20);
        assert_eq!(p[0], 50_000);
        assert_eq!(p[1], 150_000);
        assert_eq!(p[19], 1_950_000);
    }

    #[test]
    fn profile_linear_ramp_has_the_integral_count_and_speeds_up() {
        // 0 → 100 req/s over 10 s: 500 expected arrivals; then 5 s at 100: 500 more.
        let p: Vec<u64> = ProfileSchedule::new(
            Arrival::Constant,
            vec![
                RateSegment {
                    duration_s: 10.0,
                    from: 0.0,
                    to: 100.0,
                },
                RateSegment {
                    duration_s: 5.0,
                    from: 100.0,
                    to: 100.0,
                },
            ],
            1,
        )
        .collect();
        assert_eq!(p.len(), 1000);
        let in_first_half = p.iter().filter(|&&t| t < 5_000_000).count();
        // Λ(5 s) = 125.
        assert_eq!(in_first_half, 125);
        assert!(p.windows(2).all(|w| w[0] <= w[1]));
        let gaps: Vec<u64> = p.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[10] > gaps[400], "gaps shrink as the rate grows");
        // The flat part is evenly spaced at 10 ms.
        assert!(gaps[990].abs_diff(10_000) <= 1);
    }

    #[test]
    fn profile_poisson_counts_follow_the_rate() {
        let p: Vec<u64> = ProfileSchedule::new(
            Arrival::Poisson,
            vec![
                RateSegment {
                    duration_s: 20.0,
                    from: 200.0,
                    to: 200.0,
                },
                RateSegment {
                    duration_s: 20.0,
                    from: 0.0,
                    to: 0.0,
                },
                RateSegment {
                    duration_s: 20.0,
                    from: 50.0,
                    to: 50.0,
                },
            ],
            7,
        )
        .collect();
        let first = p.iter().filter(|&&t| t < 20_000_000).count() as f64;
        let pause = p
            .iter()
            .filter(|&&t| (20_000_000..40_000_000).contains(&t))
            .count();
        let last = p.iter().filter(|&&t| t >= 40_000_000).count() as f64;
        // 4000 ± 4σ (σ = √4000 ≈ 63); 1000 ± 4σ (σ ≈ 32).
        assert!((first - 4000.0).abs() < 253.0, "{first}");
        assert_eq!(pause, 0);
        assert!((last - 1000.0).abs() < 127.0, "{last}");
    }
}
