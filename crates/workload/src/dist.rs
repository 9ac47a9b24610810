//! Distributions of token lengths: fixed, uniform, normal or lognormal, clamped to [min, max].

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal};
use serde::Deserialize;

/// A distribution of a token count.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LengthDist {
    /// Always `value`.
    Fixed {
        /// The count.
        value: usize,
    },
    /// Uniform in `min..=max`.
    Uniform {
        /// Smallest.
        min: usize,
        /// Largest.
        max: usize,
    },
    /// Normal with `mean` and `stddev`, rounded and clamped to `min..=max`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
        /// Smallest.
        min: usize,
        /// Largest.
        max: usize,
    },
    /// Lognormal whose median is `median` and whose log has standard deviation `sigma`,
    /// clamped to `min..=max`.
    Lognormal {
        /// Median.
        median: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
        /// Smallest.
        min: usize,
        /// Largest.
        max: usize,
    },
}

/// A distribution that cannot be sampled.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct DistError(pub String);

impl LengthDist {
    /// Parses the compact form used on the command line and in scenario files: `N`,
    /// `uniform:MIN:MAX`, `normal:MEAN:SD:MIN:MAX` or `lognormal:MEDIAN:SIGMA:MIN:MAX`.
    pub fn parse(s: &str) -> Result<Self, DistError> {
        let parts: Vec<&str> = s.split(':').map(str::trim).collect();
        let n = |i: usize| -> Result<f64, DistError> {
            let p = parts
                .get(i)
                .ok_or_else(|| DistError(format!("`{s}` has too few fields")))?;
            p.parse::<f64>()
                .map_err(|_| DistError(format!("`{p}` in `{s}` is not a number")))
        };
        let u = |i: usize| -> Result<usize, DistError> {
            let v = n(i)?;
            if v >= 0.0 && v.fract() == 0.0 && v < 1e12 {
                Ok(v as usize)
            } else {
                Err(DistError(format!(
                    "`{v}` in `{s}` is not a whole number ≥ 0"
                )))
            }
        };
        let d = match parts[0] {
            "uniform" if parts.len() == 3 => LengthDist::Uniform {
                min: u(1)?,
                max: u(2)?,
            },
            "normal" if parts.len() == 5 => LengthDist::Normal {
                mean: n(1)?,
                stddev: n(2)?,
                min: u(3)?,
                max: u(4)?,
            },
            "lognormal" if parts.len() == 5 => LengthDist::Lognormal {
                median: n(1)?,
                sigma: n(2)?,
                min: u(3)?,
                max: u(4)?,
            },
            _ if parts.len() == 1 => LengthDist::Fixed { value: u(0)? },
            _ => {
                return Err(DistError(format!(
                    "`{s}` is not N, uniform:MIN:MAX, normal:MEAN:SD:MIN:MAX or lognormal:MEDIAN:SIGMA:MIN:MAX"
                )));
            }
        };
        d.validate()
            .map_err(|e| DistError(format!("`{s}`: {}", e.0)))?;
        Ok(d)
    }

    /// The mean, roughly (for labels and presets): the value, the midpoint, the mean or median.
    pub fn typical(&self) -> f64 {
        match *self {
            LengthDist::Fixed { value } => value as f64,
            LengthDist::Uniform { min, max } => (min + max) as f64 / 2.0,
            LengthDist::Normal { mean, .. } => mean,
            LengthDist::Lognormal { median, .. } => median,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), DistError> {
        let range = |min: usize, max: usize| {
            if min > max {
                Err(DistError(format!(
                    "min ({min}) is greater than max ({max})"
                )))
            } else {
                Ok(())
            }
        };
        match *self {
            LengthDist::Fixed { .. } => Ok(()),
            LengthDist::Uniform { min, max } => range(min, max),
            LengthDist::Normal {
                mean,
                stddev,
                min,
                max,
            } => {
                range(min, max)?;
                if !mean.is_finite() || !stddev.is_finite() || stddev < 0.0 {
                    return Err(DistError(format!(
                        "normal needs a finite mean and stddev ≥ 0, got {mean}, {stddev}"
                    )));
                }
                Ok(())
            }
            LengthDist::Lognormal {
                median,
                sigma,
                min,
                max,
            } => {
                range(min, max)?;
                if !(median.is_finite() && median > 0.0 && sigma.is_finite() && sigma >= 0.0) {
                    return Err(DistError(format!(
                        "lognormal needs median > 0 and sigma ≥ 0, got {median}, {sigma}"
                    )));
                }
                Ok(())
            }
        }
    }

    /// One sample. Parameters must have passed [`LengthDist::validate`]; invalid ones fall back
    /// to their `min`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match *self {
            LengthDist::Fixed { value } => value,
            LengthDist::Uniform { min, max } => {
                if min >= max {
                    min
                } else {
                    rng.random_range(min..=max)
                }
            }
            LengthDist::Normal {
                mean,
                stddev,
                min,
                max,
            } => match Normal::new(mean, stddev) {
                Ok(d) => clamp(d.sample(rng), min, max),
                Err(_) => min,
            },
            LengthDist::Lognormal {
                median,
                sigma,
                min,
                max,
            } => match LogNormal::new(median.ln(), sigma) {
                Ok(d) => clamp(d.sample(rng), min, max),
                Err(_) => min,
            },
        }
    }
}

fn clamp(x: f64, min: usize, max: usize) -> usize {
    let r = x.round();
    if r.is_nan() || r <= min as f64 {
        min
    } else if r >= max as f64 {
        max
    } else {
        r as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    fn samples(d: &LengthDist, n: usize) -> Vec<usize> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn distributions_respect_bounds_and_centre() {
        let u = samples(&LengthDist::Uniform { min: 10, max: 20 }, 10_000);
        assert!(u.iter().all(|x| (10..=20).contains(x)));
        assert!(u.contains(&10) && u.contains(&20));
        let n = samples(
            &LengthDist::Normal {
                mean: 500.0,
                stddev: 50.0,
                min: 400,
                max: 600,
            },
            20_000,
        );
        let mean = n.iter().sum::<usize>() as f64 / n.len() as f64;
        assert!((mean - 500.0).abs() < 2.0, "{mean}");
        let l = samples(
            &LengthDist::Lognormal {
                median: 200.0,
                sigma: 0.5,
                min: 1,
                max: 100_000,
            },
            20_001,
        );
        let mut sorted = l.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2] as f64;
        assert!((median - 200.0).abs() < 6.0, "{median}");
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(
            LengthDist::Uniform { min: 5, max: 1 }
                .validate()
                .unwrap_err()
                .0
                .contains("min")
        );
        assert!(
            LengthDist::Lognormal {
                median: 0.0,
                sigma: 1.0,
                min: 1,
                max: 2
            }
            .validate()
            .is_err()
        );
        assert!(
            LengthDist::Normal {
                mean: 1.0,
                stddev: -1.0,
                min: 1,
                max: 2
            }
            .validate()
            .is_err()
        );
    }
}
