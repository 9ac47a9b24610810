//! Fitting the mock to a measured server (a digital twin): from the steps of a run at several
//! loads (a `sweep` or `stages` scenario), the instance settings under which the mock serves as
//! the server did.
//!
//! The model fitted is the mock's own ([`crate::engine`]):
//! - **max concurrency** (`max_num_seqs`): the most requests the server ran at once (its
//!   `running` gauge), or what the caller says;
//! - **prefill**: `ttft_ms + prompt × prefill_ms_per_token` from the lightest step's TTFT p50,
//!   split by the server's own prompt time per token when it exports one;
//! - **TTFT vs batch** (`prefill_slowdown`): how much the others running stretch a new
//!   prefill, least squares over the steps with no queue;
//! - **ITL vs batch** (`itl_ms`, `decode_slowdown`): a line through (batch, ITL p50) over all
//!   steps;
//! - **prefill stall** (`prefill_stall`): a prompt's compute holds the others' next token (one
//!   engine step holds both), from the ITL mean's excess over its median at the busiest step;
//! - **jitter**: from the lightest step's ITL spread (p90 ÷ p50, at most ±20%).
//!
//! The batch of a step is a closed loop's concurrency, else the mean number of its requests in
//! the server (Little's law: the rate of completions × their mean end-to-end time), capped at
//! the max concurrency.

use serde::Serialize;

use crate::config::InstanceConfig;

/// What one step of a measured run says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepFigures {
    /// Its name (`synchronous`, `rate 4.5`, a stage's name).
    pub name: String,
    /// Open loop (arrivals see the time-average batch) or closed (each sees the others).
    pub open_loop: bool,
    /// Closed loop: the requests kept in flight (the batch, up to the max concurrency).
    pub concurrency: Option<f64>,
    /// Completed requests per second.
    pub rate: f64,
    /// Mean end-to-end time, ms.
    pub e2e_mean_ms: f64,
    /// TTFT p50, ms.
    pub ttft_p50_ms: f64,
    /// ITL p50, ms.
    pub itl_p50_ms: f64,
    /// ITL p90, ms.
    pub itl_p90_ms: f64,
    /// Mean ITL, ms (its excess over the median: the stalls a prefill causes).
    pub itl_mean_ms: f64,
    /// Mean prompt tokens per request.
    pub prompt_tokens: f64,
    /// Mean output tokens per request.
    pub output_tokens: f64,
    /// The server's most requests running at once, when it exports it.
    pub running_max: Option<f64>,
    /// The server's own prompt time per prompt token, ms, when it exports it.
    pub server_prefill_ms_per_token: Option<f64>,
}

impl StepFigures {
    /// Mean requests in the server: a closed loop's concurrency, else Little's law (completions
    /// per second × mean end-to-end time).
    pub fn in_server(&self) -> f64 {
        match self.concurrency {
            Some(c) if !self.open_loop => c,
            _ => self.rate * self.e2e_mean_ms / 1000.0,
        }
    }
}

/// One step of the fit: what was measured and what the fitted mock predicts with no queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitRow {
    /// The step.
    pub name: String,
    /// Mean requests running (capped at the max concurrency).
    pub batch: f64,
    /// Mean requests waiting for a slot.
    pub queued: f64,
    /// Measured TTFT p50, ms.
    pub ttft_p50_ms: f64,
    /// The fitted model's TTFT with no queue, ms (`None` where a queue makes it a lower bound
    /// only).
    pub ttft_model_ms: Option<f64>,
    /// Measured ITL p50, ms.
    pub itl_p50_ms: f64,
    /// The fitted model's ITL at this batch, ms.
    pub itl_model_ms: f64,
}

/// The fitted settings and how each step compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// The instance settings.
    pub instance: InstanceConfig,
    /// Per step, measured beside the model.
    pub rows: Vec<FitRow>,
    /// What the fit had to assume.
    pub notes: Vec<String>,
}

/// Why a run cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Not enough usable steps.
    #[error("{0}")]
    Data(String),
}

/// Least squares slope through the origin of y on x; `None` when every x is 0.
fn slope0(pts: &[(f64, f64)]) -> Option<f64> {
    let sxx: f64 = pts.iter().map(|(x, _)| x * x).sum();
    let sxy: f64 = pts.iter().map(|(x, y)| x * y).sum();
    (sxx > 1e-12).then(|| sxy / sxx)
}

/// Fits the mock to `steps`, serving `model`; `max_num_seqs` overrides what the server showed.
pub fn fit(
    steps: &[StepFigures],
    model: &str,
    max_num_seqs: Option<usize>,
) -> Result<Fitted, FitError> {
    let usable: Vec<&StepFigures> = steps
        .iter()
        .filter(|s| {
            s.rate > 0.0
                && s.e2e_mean_ms > 0.0
                && s.ttft_p50_ms > 0.0
                && s.itl_p50_ms > 0.0
                && s.output_tokens >= 2.0
        })
        .collect();
    if usable.is_empty() {
        return Err(FitError::Data(
            "no step has streamed answers of two tokens or more with TTFT and ITL: run a sweep or stages scenario with streaming on".into(),
        ));
    }
    let mut notes = Vec::new();
    // Max concurrency: said, else the server's running gauge, else the most in the server.
    let seen_running = usable
        .iter()
        .filter_map(|s| s.running_max)
        .fold(0.0f64, f64::max);
    let slots = match max_num_seqs {
        Some(n) => n.max(1),
        None if seen_running >= 1.0 => seen_running.round() as usize,
        None => {
            let most = usable.iter().map(|s| s.in_server()).fold(0.0, f64::max);
            notes.push(format!(
                "the server exports no running-requests gauge: max concurrency taken as the most requests measured in it ({most:.1}); give --max-num-seqs if you know it"
            ));
            most.ceil().max(1.0) as usize
        }
    };
    let s_f = slots as f64;
    let batch = |s: &StepFigures| s.in_server().clamp(1.0, s_f);
    // The lightest step: prefill and the batch-of-one ITL.
    let light = usable
        .iter()
        .min_by(|a, b| a.in_server().total_cmp(&b.in_server()))
        .copied()
        .ok_or_else(|| FitError::Data("no usable step".into()))?;
    let t1 = light.ttft_p50_ms;
    let p1 = light.prompt_tokens.max(0.0);
    let (base, per_token) = match light.server_prefill_ms_per_token {
        Some(ppt) if ppt > 0.0 && p1 > 0.0 => {
            let ppt = ppt.min(t1 / p1);
            ((t1 - ppt * p1).max(0.0), ppt)
        }
        _ => {
            notes.push(
                "the server exports no prompt time: the whole TTFT is a fixed prefill (prompt length does not change it in the twin)".into(),
            );
            (t1, 0.0)
        }
    };
    // ITL vs batch: the lightest step's ITL alone, then the slow-down through the others:
    // ITL / itl1 − 1 = slowdown × (batch − 1) / slots, least squares.
    let itl1 = light.itl_p50_ms;
    let pts: Vec<(f64, f64)> = usable
        .iter()
        .map(|s| ((batch(s) - batch(light)) / s_f, s.itl_p50_ms / itl1 - 1.0))
        .collect();
    let decode_slowdown = match slope0(&pts) {
        Some(k) => k.max(0.0),
        None => {
            notes.push("the steps' batches do not differ: ITL taken as constant".into());
            0.0
        }
    };
    // TTFT vs batch, from the steps with no queue: prefill × (1 + f × others / slots).
    let others = |s: &StepFigures| {
        let b = batch(s);
        if s.open_loop { b } else { b - 1.0 }.max(0.0)
    };
    let no_queue: Vec<(f64, f64)> = usable
        .iter()
        .filter(|s| s.in_server() <= 0.9 * s_f)
        .map(|s| (others(s) / s_f, s.ttft_p50_ms / t1 - 1.0))
        .collect();
    let prefill_slowdown = slope0(&no_queue).unwrap_or(0.0).max(0.0);
    // Measured factors per number running (1..=slots), through the steps' own points: the
    // linear fits above stand in only beyond the last point measured.
    let itl_factors = factors(
        usable
            .iter()
            .map(|s| (batch(s), s.itl_p50_ms / itl1))
            .collect(),
        slots,
        |r| 1.0 + decode_slowdown * (r - 1.0) / s_f,
    );
    let prefill_factors = factors(
        usable
            .iter()
            .filter(|s| s.in_server() <= 0.9 * s_f || !s.open_loop && s.in_server() <= s_f)
            .map(|s| (others(s) + 1.0, s.ttft_p50_ms / t1))
            .collect(),
        slots,
        |r| 1.0 + prefill_slowdown * (r - 1.0) / s_f,
    );
    let at = |f: &[f64], x: f64| interpolate(f, x);
    // A prompt's compute holds the others' next token (one engine step holds the prompt and
    // their decode): the gaps past the median add up, per request, to the prefills it sat
    // through (about one per other request running, in a loop with no queue) × the stall.
    let pre = p1 * per_token;
    let stall_from = usable
        .iter()
        .filter(|s| s.in_server() <= s_f && batch(s) >= 1.5 && s.itl_mean_ms > 0.0)
        .max_by(|a, b| batch(a).total_cmp(&batch(b)));
    // The lightest step has no prefills of others: its own excess (timer noise, a skewed
    // gap distribution) is not a stall, and is taken off in proportion.
    let own_excess = (light.itl_mean_ms - light.itl_p50_ms).max(0.0) / itl1;
    let prefill_stall = match stall_from {
        Some(s) if pre > 0.0 => {
            let excess = (s.itl_mean_ms - s.itl_p50_ms - own_excess * s.itl_p50_ms).max(0.0)
                * (s.output_tokens - 1.0);
            (excess / (batch(s) - 1.0) / pre).clamp(0.0, 5.0)
        }
        _ => 0.0,
    };
    // Uniform ±j puts p90 at 1 + 0.8 j; a heavy tail (a rare slow gap) is not jitter: capped.
    let jitter = ((light.itl_p90_ms / light.itl_p50_ms - 1.0) / 0.8).clamp(0.0, 0.2);
    let instance = InstanceConfig {
        model: model.to_string(),
        ttft_ms: round3(base),
        prefill_ms_per_token: round6(per_token),
        itl_ms: round3(itl1),
        decode_slowdown: round3(decode_slowdown),
        prefill_slowdown: round3(prefill_slowdown),
        prefill_factors: prefill_factors.iter().map(|f| round3(*f)).collect(),
        itl_factors: itl_factors.iter().map(|f| round3(*f)).collect(),
        prefill_stall: round3(prefill_stall),
        max_num_seqs: slots,
        jitter: round3(jitter),
        kv_blocks: 1 << 20,
        ..InstanceConfig::default()
    };
    let rows = usable
        .iter()
        .map(|s| {
            let b = batch(s);
            let queued = (s.in_server() - s_f).max(0.0);
            FitRow {
                name: s.name.clone(),
                batch: b,
                queued,
                ttft_p50_ms: s.ttft_p50_ms,
                ttft_model_ms: (queued == 0.0).then(|| {
                    (base + s.prompt_tokens * per_token) * at(&prefill_factors, others(s) + 1.0)
                }),
                itl_p50_ms: s.itl_p50_ms,
                itl_model_ms: itl1 * at(&itl_factors, b),
            }
        })
        .collect();
    Ok(Fitted {
        instance,
        rows,
        notes,
    })
}

/// Factors at 1, 2, …, `slots` running: linear between the measured points (x = running,
/// y = factor; anchored at (1, 1), points at one x averaged), `linear` beyond the last one
/// (continued from it).
fn factors(mut pts: Vec<(f64, f64)>, slots: usize, linear: impl Fn(f64) -> f64) -> Vec<f64> {
    pts.retain(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0);
    pts.push((1.0, 1.0));
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Points closer than 0.05 in x are one point.
    let mut merged: Vec<(f64, f64, f64)> = Vec::new();
    for (x, y) in pts {
        match merged.last_mut() {
            Some((mx, my, n)) if (x - *mx / *n).abs() < 0.05 => {
                *mx += x;
                *my += y;
                *n += 1.0;
            }
            _ => merged.push((x, y, 1.0)),
        }
    }
    let pts: Vec<(f64, f64)> = merged.into_iter().map(|(x, y, n)| (x / n, y / n)).collect();
    (1..=slots.max(1))
        .map(|r| {
            let x = r as f64;
            let last = pts[pts.len() - 1];
            if x >= last.0 {
                return (last.1 + linear(x) - linear(last.0)).max(0.01);
            }
            let i = pts.partition_point(|p| p.0 <= x).max(1);
            let (a, b) = (pts[i - 1], pts[i]);
            a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
        })
        .collect()
}

/// The factor at `x` running (fractional: between its neighbours).
fn interpolate(f: &[f64], x: f64) -> f64 {
    if f.is_empty() {
        return 1.0;
    }
    let x = x.clamp(1.0, f.len() as f64);
    let i = (x.floor() as usize).clamp(1, f.len());
    let lo = f[i - 1];
    let hi = f[i.min(f.len() - 1)];
    lo + (hi - lo) * (x - i as f64)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose ITL is 10 ms × (1 + 1.0 × (b − 1)/4), TTFT 30 ms + 0.1 ms/token with a
    /// 128-token prompt, slowed 0.5 × others/4, with 4 slots.
    fn step(name: &str, open: bool, in_server: f64) -> StepFigures {
        let slots = 4.0;
        let b = in_server.clamp(1.0, slots);
        let others = if open { b } else { b - 1.0 };
        let itl = 10.0 * (1.0 + 1.0 * (b - 1.0) / slots);
        let ttft = (30.0 + 128.0 * 0.1) * (1.0 + 0.5 * others / slots);
        let e2e = ttft + 63.0 * itl;
        StepFigures {
            name: name.into(),
            open_loop: open,
            concurrency: (!open).then_some(in_server),
            rate: in_server / e2e * 1000.0,
            e2e_mean_ms: e2e,
            ttft_p50_ms: ttft,
            itl_p50_ms: itl,
            itl_p90_ms: itl * 1.08,
            // Each request sits through (b − 1) prefills of 12.8 ms stall, over 63 gaps.
            itl_mean_ms: itl + (b - 1.0) * 12.8 / 63.0,
            prompt_tokens: 128.0,
            output_tokens: 64.0,
            running_max: Some(b.ceil()),
            server_prefill_ms_per_token: Some(0.1),
        }
    }

    #[test]
    fn a_server_the_model_describes_is_fitted_back() {
        let steps = [
            step("synchronous", false, 1.0),
            step("rate 1", true, 1.5),
            step("rate 2", true, 2.5),
            step("throughput", false, 4.0),
        ];
        let f = fit(&steps, "m", None).unwrap();
        let i = &f.instance;
        assert_eq!(i.max_num_seqs, 4);
        assert!((i.itl_ms - 10.0).abs() < 1e-3, "{i:?}");
        assert!((i.decode_slowdown - 1.0).abs() < 1e-3, "{i:?}");
        assert!((i.ttft_ms - 30.0).abs() < 1e-3, "{i:?}");
        assert!((i.prefill_ms_per_token - 0.1).abs() < 1e-6, "{i:?}");
        assert!((i.prefill_slowdown - 0.5).abs() < 1e-3, "{i:?}");
        assert!((i.jitter - 0.1).abs() < 1e-3, "{i:?}");
        // Each prefill holds the others for its whole prompt compute (12.8 ms).
        assert!((i.prefill_stall - 1.0).abs() < 1e-3, "{i:?}");
        assert_eq!(i.prefill_interference, 0.0);
        for r in &f.rows {
            assert!((r.itl_model_ms - r.itl_p50_ms).abs() < 1e-6, "{r:?}");
            if let Some(m) = r.ttft_model_ms {
                assert!((m - r.ttft_p50_ms).abs() < 1e-6, "{r:?}");
            }
        }
        assert!(f.notes.is_empty(), "{:?}", f.notes);
    }

    #[test]
    fn without_server_metrics_the_fit_says_what_it_assumed() {
        let mut steps = vec![step("synchronous", false, 1.0), step("c4", false, 4.0)];
        for s in &mut steps {
            s.running_max = None;
            s.server_prefill_ms_per_token = None;
        }
        let f = fit(&steps, "m", None).unwrap();
        assert_eq!(f.instance.max_num_seqs, 4);
        assert_eq!(f.instance.prefill_ms_per_token, 0.0);
        assert_eq!(f.notes.len(), 2, "{:?}", f.notes);
        let f = fit(&steps, "m", Some(8)).unwrap();
        assert_eq!(f.instance.max_num_seqs, 8);
    }

    #[test]
    fn nothing_usable_is_an_error() {
        let mut s = step("x", false, 1.0);
        s.output_tokens = 1.0;
        assert!(fit(&[s], "m", None).is_err());
        assert!(fit(&[], "m", None).is_err());
    }
}
