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
//! - **prefill interference** (`prefill_interference`, `max_num_batched_tokens`): a prompt's
//!   compute holds the others' decode for about its own length (one engine step holds both);
//! - **jitter**: from the lightest step's ITL spread.
//!
//! The batch of a step is the mean number of its requests in the server (Little's law: the rate
//! of completions × their mean end-to-end time), capped at the max concurrency.

use serde::Serialize;

use crate::config::InstanceConfig;

/// What one step of a measured run says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepFigures {
    /// Its name (`synchronous`, `rate 4.5`, a stage's name).
    pub name: String,
    /// Open loop (arrivals see the time-average batch) or closed (each sees the others).
    pub open_loop: bool,
    /// Completed requests per second.
    pub rate: f64,
    /// Mean end-to-end time, ms.
    pub e2e_mean_ms: f64,
    /// TTFT p50, ms.
    pub ttft_p50_ms: f64,
    /// ITL p50, ms.
    pub itl_p50_ms: f64,
    /// ITL p95, ms.
    pub itl_p95_ms: f64,
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
    /// Mean requests in the server (Little's law).
    pub fn in_server(&self) -> f64 {
        self.rate * self.e2e_mean_ms / 1000.0
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

/// Least squares line y = a + b x; `None` with fewer than two distinct x.
fn line(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx < 1e-9 {
        return None;
    }
    let b = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    Some((my - b * mx, b))
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
    // ITL vs batch: a line through (batch − 1, ITL p50).
    let pts: Vec<(f64, f64)> = usable
        .iter()
        .map(|s| (batch(s) - 1.0, s.itl_p50_ms))
        .collect();
    let (itl1, k) = match line(&pts) {
        Some((a, b)) if a > 0.0 => (a, b.max(0.0)),
        _ => {
            notes.push("the steps' batches do not differ: ITL taken as constant".into());
            (light.itl_p50_ms, 0.0)
        }
    };
    let decode_slowdown = k * s_f / itl1;
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
    // Interference: the server's prompt compute (`pre`) holds the others' decode for about its
    // own length. The mock slows the others by (1 + g) for a new sequence's whole prefill
    // phase (`base + pre`), which costs them (base + pre) × g / (1 + g): equal to `pre` when
    // g = pre / base (capped: a prefill with no fixed part would stall them outright).
    let pre = p1 * per_token;
    let interference = if pre > 0.0 {
        (pre / base.max(itl1)).min(50.0)
    } else {
        0.0
    };
    let jitter = ((light.itl_p95_ms / light.itl_p50_ms - 1.0) / 0.9).clamp(0.0, 0.5);
    let mean_prompt = usable.iter().map(|s| s.prompt_tokens).sum::<f64>() / usable.len() as f64;
    let instance = InstanceConfig {
        model: model.to_string(),
        ttft_ms: round3(base),
        prefill_ms_per_token: round6(per_token),
        itl_ms: round3(itl1),
        decode_slowdown: round3(decode_slowdown),
        prefill_slowdown: round3(prefill_slowdown),
        prefill_interference: round3(interference),
        max_num_batched_tokens: (mean_prompt.round() as usize).max(1),
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
                    (base + s.prompt_tokens * per_token)
                        * (1.0 + prefill_slowdown * others(s) / s_f)
                }),
                itl_p50_ms: s.itl_p50_ms,
                itl_model_ms: itl1 * (1.0 + decode_slowdown * (b - 1.0) / s_f),
            }
        })
        .collect();
    Ok(Fitted {
        instance,
        rows,
        notes,
    })
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
            rate: in_server / e2e * 1000.0,
            e2e_mean_ms: e2e,
            ttft_p50_ms: ttft,
            itl_p50_ms: itl,
            itl_p95_ms: itl * 1.09,
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
        // The prompt's compute (12.8 ms) holds the others for about its length: over the
        // 42.8 ms prefill phase, 42.8 × g / (1 + g) = 12.8.
        let g = i.prefill_interference;
        assert!((42.8 * g / (1.0 + g) - 12.8).abs() < 0.01, "{g}");
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
