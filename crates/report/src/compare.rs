//! `inferbench compare`: two runs side by side, per scenario and metric the change and a verdict —
//! regression, improvement or within noise.
//!
//! A latency metric is judged on its whole distribution: a Mann–Whitney U test on the two
//! histograms (ties handled as HDR buckets) says whether the shift is real, and a minimum effect
//! size on the median says whether it matters. The fixed rules of the user write-ups (FAIL when
//! p95 grows > 20% or the error rate exceeds 1%, WARN when p95 grows > 10%, p50 or throughput
//! moves > 15%) apply on top, but a percentile rule only fires when the two percentiles' confidence
//! intervals do not overlap: a p95 that moved within its own noise is not a regression. Token
//! gaps (ITL) come many per request and move together, so their test counts requests, not gaps.

use std::fmt::Write;

use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::RunResult;
use inferbench_results::suite::Report;
use serde::Serialize;

/// The thresholds of a comparison; every one can be set from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rules {
    /// Significance level of the rank test (two-sided).
    pub alpha: f64,
    /// Smallest change of a median, %, that counts as a regression or an improvement.
    pub min_effect_pct: f64,
    /// A p95 growing more than this, %, beyond its noise, fails.
    pub fail_p95_pct: f64,
    /// A p95 growing more than this, %, beyond its noise, warns.
    pub warn_p95_pct: f64,
    /// A p50 moving more than this, %, warns (when the test cannot call it).
    pub warn_p50_pct: f64,
    /// Throughput moving more than this, %, beyond counting noise, warns.
    pub warn_throughput_pct: f64,
    /// An error rate above this, %, fails.
    pub max_error_rate_pct: f64,
    /// Confidence of the percentile intervals (0.99: 99%).
    pub confidence: f64,
    /// Fewer samples than this on either side: the metric is not judged.
    pub min_samples: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            alpha: 0.001,
            min_effect_pct: 5.0,
            fail_p95_pct: 20.0,
            warn_p95_pct: 10.0,
            warn_p50_pct: 15.0,
            warn_throughput_pct: 15.0,
            max_error_rate_pct: 1.0,
            confidence: 0.99,
            min_samples: 20,
        }
    }
}

/// What a comparison concluded about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond noise and beyond the minimum effect, or a FAIL rule fired.
    Regression,
    /// A WARN rule fired.
    Warning,
    /// Better beyond noise and beyond the minimum effect.
    Improvement,
    /// No change the data can tell from noise.
    WithinNoise,
    /// Too few samples on one side.
    NotComparable,
}

impl Verdict {
    /// The word printed for it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Warning => "WARN",
            Verdict::Improvement => "improvement",
            Verdict::WithinNoise => "within noise",
            Verdict::NotComparable => "not comparable",
        }
    }
}

/// One metric of one scenario, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Scenario (and arm, as `scenario · arm`).
    pub scenario: String,
    /// Metric: `ttft`, `itl`, `tpot`, `e2e`, `throughput`, `output_tokens`, `error_rate`.
    pub metric: String,
    /// Unit of the values below.
    pub unit: String,
    /// Baseline: median (latencies) or the value.
    pub baseline: f64,
    /// Current: median (latencies) or the value.
    pub current: f64,
    /// Baseline p95 (latencies).
    pub baseline_p95: Option<f64>,
    /// Current p95 (latencies).
    pub current_p95: Option<f64>,
    /// Change of `current` vs `baseline`, %.
    pub change_pct: Option<f64>,
    /// Change of the p95, %.
    pub p95_change_pct: Option<f64>,
    /// p-value of the test that decided (rank test, or counting noise for throughput).
    pub p_value: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub reason: String,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The rules applied.
    pub rules: Rules,
    /// Every compared metric.
    pub rows: Vec<Row>,
    /// Scenarios found on one side only, and other remarks.
    pub notes: Vec<String>,
}

/// Two reports that cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// No scenario name in common.
    #[error(
        "the two reports have no scenario in common (baseline: {baseline}; current: {current})"
    )]
    NothingInCommon {
        /// Baseline scenario names.
        baseline: String,
        /// Current scenario names.
        current: String,
    },
}

impl Comparison {
    /// The worst verdict (regression first); within noise when nothing was judged.
    pub fn verdict(&self) -> Verdict {
        self.rows
            .iter()
            .map(|r| r.verdict)
            .filter(|v| *v != Verdict::NotComparable)
            .min()
            .unwrap_or(Verdict::WithinNoise)
    }

    /// Rows that are regressions.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
    }
}

/// Compares `current` with `baseline`, scenario by scenario (matched by name) and arm by arm.
pub fn compare(
    baseline: &Report,
    current: &Report,
    rules: &Rules,
) -> Result<Comparison, CompareError> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut common = 0;
    for c in &current.scenarios {
        let Some(b) = baseline.scenarios.iter().find(|b| b.name == c.name) else {
            notes.push(format!(
                "scenario `{}` is new (not in the baseline)",
                c.name
            ));
            continue;
        };
        common += 1;
        compare_results(&c.name, &b.total, &c.total, rules, &mut rows);
        for ca in &c.arms {
            if let Some(ba) = b.arms.iter().find(|a| a.name == ca.name) {
                let label = format!("{} · {}", c.name, ca.name);
                compare_results(&label, &ba.result, &ca.result, rules, &mut rows);
            }
        }
    }
    for b in &baseline.scenarios {
        if !current.scenarios.iter().any(|c| c.name == b.name) {
            notes.push(format!(
                "scenario `{}` is missing from the current run",
                b.name
            ));
        }
    }
    if common == 0 {
        let names = |r: &Report| {
            r.scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(CompareError::NothingInCommon {
            baseline: names(baseline),
            current: names(current),
        });
    }
    if baseline.partial || current.partial {
        notes.push(
            "a report is partial (the run was cut short): figures cover what completed".into(),
        );
    }
    Ok(Comparison {
        rules: *rules,
        rows,
        notes,
    })
}

fn pct(base: f64, cur: f64) -> Option<f64> {
    (base > 0.0 && cur.is_finite()).then(|| (cur - base) * 100.0 / base)
}

/// The two-sided normal tail, `erfc(|z| / √2)` (Numerical Recipes' `erfcc`, relative error
/// below 1.2e-7).
fn normal_two_sided_p(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    (t * poly.exp()).clamp(0.0, 1.0)
}

/// Mann–Whitney U of `a` vs `b` on their histograms: (two-sided p-value, probability that a
/// sample of `b` exceeds one of `a`, ties counting half). Ties are the histogram's buckets, with
/// the usual tie correction of the variance.
pub fn mann_whitney(a: &LatencyHistogram, b: &LatencyHistogram) -> (f64, f64) {
    mann_whitney_clustered(a, b, 1.0)
}

/// [`mann_whitney`] for samples that come in clusters (every gap between tokens of one request):
/// the variance is inflated by `design` (samples per independent unit), so thousands of
/// correlated token gaps count as the few hundred requests they came from.
fn mann_whitney_clustered(a: &LatencyHistogram, b: &LatencyHistogram, design: f64) -> (f64, f64) {
    let (n1, n2) = (a.count() as f64, b.count() as f64);
    if n1 == 0.0 || n2 == 0.0 {
        return (1.0, 0.5);
    }
    let (mut ia, mut ib) = (a.counts().peekable(), b.counts().peekable());
    let (mut rank0, mut ranks_b, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    loop {
        let v = match (ia.peek(), ib.peek()) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => break,
        };
        let ca = ia.next_if(|x| x.0 == v).map_or(0, |x| x.1) as f64;
        let cb = ib.next_if(|y| y.0 == v).map_or(0, |y| y.1) as f64;
        let t = ca + cb;
        // Ranks rank0+1 ..= rank0+t share their mean.
        ranks_b += cb * (rank0 + (t + 1.0) / 2.0);
        ties += t * t * t - t;
        rank0 += t;
    }
    let n = n1 + n2;
    let u_b = ranks_b - n2 * (n2 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    let var = var * design.max(1.0);
    let p = if var > 0.0 {
        normal_two_sided_p((u_b - mean) / var.sqrt())
    } else {
        1.0
    };
    (p, u_b / (n1 * n2))
}

/// The `z` of a two-sided interval of confidence `c` (0.9, 0.95, 0.99, 0.999; others round up).
fn z_of(c: f64) -> f64 {
    if c <= 0.90 {
        1.645
    } else if c <= 0.95 {
        1.960
    } else if c <= 0.99 {
        2.576
    } else {
        3.291
    }
}

/// A distribution-free confidence interval of the `q` quantile (the binomial order-statistic
/// interval, normal approximation), µs.
fn quantile_interval(h: &LatencyHistogram, q: f64, z: f64, design: f64) -> (u64, u64) {
    let n = (h.count().max(1) as f64 / design.max(1.0)).max(1.0);
    let se = (q * (1.0 - q) / n).sqrt();
    (
        h.quantile((q - z * se).max(0.0)),
        h.quantile((q + z * se).min(1.0)),
    )
}

fn compare_results(label: &str, b: &RunResult, c: &RunResult, rules: &Rules, rows: &mut Vec<Row>) {
    let z = z_of(rules.confidence);
    let (bl, cl) = (&b.total.latency, &c.total.latency);
    // Token gaps come many per request and move together: count them as their requests.
    let per_request = |h: &LatencyHistogram, ok: u64| h.count() as f64 / ok.max(1) as f64;
    let itl_design = per_request(&bl.itl, b.total.counts.ok)
        .max(per_request(&cl.itl, c.total.counts.ok))
        .max(1.0);
    for (metric, hb, hc, design) in [
        ("ttft", &bl.ttft, &cl.ttft, 1.0),
        ("itl", &bl.itl, &cl.itl, itl_design),
        ("tpot", &bl.tpot, &cl.tpot, 1.0),
        ("e2e", &bl.e2e, &cl.e2e, 1.0),
    ] {
        if hb.count() == 0 && hc.count() == 0 {
            continue;
        }
        rows.push(latency_row(label, metric, hb, hc, rules, z, design));
    }
    rows.push(throughput_row(
        label,
        "throughput",
        "req/s",
        (b.total.counts.ok, b.duration_s),
        (c.total.counts.ok, c.duration_s),
        rules,
    ));
    if b.total.counts.output_tokens > 0 || c.total.counts.output_tokens > 0 {
        rows.push(throughput_row(
            label,
            "output_tokens",
            "tok/s",
            (b.total.counts.output_tokens, b.duration_s),
            (c.total.counts.output_tokens, c.duration_s),
            rules,
        ));
    }
    rows.push(error_row(label, b, c, rules));
}

fn latency_row(
    label: &str,
    metric: &str,
    hb: &LatencyHistogram,
    hc: &LatencyHistogram,
    rules: &Rules,
    z: f64,
    design: f64,
) -> Row {
    let ms = |us: u64| us as f64 / 1000.0;
    let (b50, c50) = (hb.quantile(0.5), hc.quantile(0.5));
    let (b95, c95) = (hb.quantile(0.95), hc.quantile(0.95));
    let mut row = Row {
        scenario: label.to_string(),
        metric: metric.to_string(),
        unit: "ms".into(),
        baseline: ms(b50),
        current: ms(c50),
        baseline_p95: Some(ms(b95)),
        current_p95: Some(ms(c95)),
        change_pct: pct(b50 as f64, c50 as f64),
        p95_change_pct: pct(b95 as f64, c95 as f64),
        p_value: None,
        verdict: Verdict::NotComparable,
        reason: String::new(),
    };
    if hb.count() < rules.min_samples || hc.count() < rules.min_samples {
        row.reason = format!(
            "{} vs {} samples (fewer than {})",
            hb.count(),
            hc.count(),
            rules.min_samples
        );
        return row;
    }
    let (p, _) = mann_whitney_clustered(hb, hc, design);
    row.p_value = Some(p);
    let d50 = row.change_pct.unwrap_or(0.0);
    let d95 = row.p95_change_pct.unwrap_or(0.0);
    let shifted = p < rules.alpha && d50.abs() >= rules.min_effect_pct;
    // The p95 moved beyond its noise when the two intervals do not overlap.
    let (b_lo, b_hi) = quantile_interval(hb, 0.95, z, design);
    let (c_lo, c_hi) = quantile_interval(hc, 0.95, z, design);
    let p95_worse = c_lo > b_hi;
    let p95_better = c_hi < b_lo;
    (row.verdict, row.reason) = if shifted && d50 > 0.0 {
        (
            Verdict::Regression,
            format!("median {d50:+.1}% (rank test p = {p:.1e})"),
        )
    } else if p95_worse && d95 > rules.fail_p95_pct {
        (
            Verdict::Regression,
            format!("p95 {d95:+.1}% > {}%", rules.fail_p95_pct),
        )
    } else if shifted {
        (
            Verdict::Improvement,
            format!("median {d50:+.1}% (rank test p = {p:.1e})"),
        )
    } else if p95_worse && d95 > rules.warn_p95_pct {
        (
            Verdict::Warning,
            format!("p95 {d95:+.1}% > {}%", rules.warn_p95_pct),
        )
    } else if d50.abs() > rules.warn_p50_pct {
        (
            Verdict::Warning,
            format!(
                "median {d50:+.1}% moved > {}% (not significant: p = {p:.2})",
                rules.warn_p50_pct
            ),
        )
    } else if p95_better && d95 < -rules.min_effect_pct {
        (Verdict::Improvement, format!("p95 {d95:+.1}%"))
    } else if p < rules.alpha {
        (
            Verdict::WithinNoise,
            format!(
                "median {d50:+.1}%: real but below the {}% minimum effect",
                rules.min_effect_pct
            ),
        )
    } else {
        (Verdict::WithinNoise, format!("p = {p:.2}"))
    };
    row
}

/// Throughput: a count over a duration; its noise is the count's Poisson spread.
fn throughput_row(
    label: &str,
    metric: &str,
    unit: &str,
    (nb, db): (u64, f64),
    (nc, dc): (u64, f64),
    rules: &Rules,
) -> Row {
    let rate = |n: u64, d: f64| if d > 0.0 { n as f64 / d } else { 0.0 };
    let (rb, rc) = (rate(nb, db), rate(nc, dc));
    let change = pct(rb, rc);
    let mut row = Row {
        scenario: label.to_string(),
        metric: metric.to_string(),
        unit: unit.to_string(),
        baseline: rb,
        current: rc,
        baseline_p95: None,
        current_p95: None,
        change_pct: change,
        p95_change_pct: None,
        p_value: None,
        verdict: Verdict::NotComparable,
        reason: String::new(),
    };
    if db <= 0.0 || dc <= 0.0 || nb == 0 {
        row.reason = "no measured duration or nothing completed in the baseline".into();
        return row;
    }
    // Rates of two Poisson counts: z = (rc − rb) / √(nb/db² + nc/dc²).
    let se = (nb as f64 / (db * db) + nc as f64 / (dc * dc)).sqrt();
    let p = if se > 0.0 {
        normal_two_sided_p((rc - rb) / se)
    } else {
        1.0
    };
    row.p_value = Some(p);
    let d = change.unwrap_or(0.0);
    (row.verdict, row.reason) = if p < rules.alpha && d.abs() > rules.warn_throughput_pct {
        if d < 0.0 {
            (
                Verdict::Warning,
                format!("{d:+.1}% moved > {}%", rules.warn_throughput_pct),
            )
        } else {
            (Verdict::Improvement, format!("{d:+.1}%"))
        }
    } else {
        (Verdict::WithinNoise, format!("{d:+.1}%"))
    };
    row
}

fn error_row(label: &str, b: &RunResult, c: &RunResult, rules: &Rules) -> Row {
    let rate = |r: &RunResult| r.total.counts.error_fraction() * 100.0;
    let (eb, ec) = (rate(b), rate(c));
    let (verdict, reason) = if ec > rules.max_error_rate_pct {
        (
            Verdict::Regression,
            format!("{ec:.2}% > {}%", rules.max_error_rate_pct),
        )
    } else {
        (
            Verdict::WithinNoise,
            format!("≤ {}%", rules.max_error_rate_pct),
        )
    };
    Row {
        scenario: label.to_string(),
        metric: "error_rate".into(),
        unit: "%".into(),
        baseline: eb,
        current: ec,
        baseline_p95: None,
        current_p95: None,
        change_pct: None,
        p95_change_pct: None,
        p_value: None,
        verdict,
        reason,
    }
}

/// A compared value in its unit, written as the reports write it ([`crate::fmt`]).
fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "%" => crate::fmt::pct(v),
        "ms" => format!("{} ms", crate::fmt::ms_value(v)),
        "req/s" => format!("{} req/s", crate::fmt::rate(v)),
        "tok/s" => format!("{} tok/s", crate::fmt::tok_rate(v)),
        _ => format!("{v:.1} {unit}"),
    }
}

fn fmt_change(r: &Row) -> String {
    let mut s = r.change_pct.map_or("—".into(), |d| format!("{d:+.1}%"));
    if let Some(d) = r.p95_change_pct {
        let _ = write!(s, " (p95 {d:+.1}%)");
    }
    s
}

fn visible(r: &Row, quiet: bool) -> bool {
    !quiet || r.verdict == Verdict::Regression
}

/// Plain text for a terminal; `quiet` keeps only regressions.
pub fn to_text(c: &Comparison, quiet: bool) -> String {
    let mut out = String::new();
    for r in c.rows.iter().filter(|r| visible(r, quiet)) {
        let _ = writeln!(
            out,
            "{:<14} {:<32} {:>14} → {:<14} {:<20} {}",
            r.verdict.label(),
            format!("{} {}", r.scenario, r.metric),
            fmt_value(r.baseline, &r.unit),
            fmt_value(r.current, &r.unit),
            fmt_change(r),
            r.reason
        );
    }
    if !quiet {
        for n in &c.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
    let regressions = c.regressions().count();
    let _ = writeln!(
        out,
        "verdict: {} ({} regression{}, {} metrics compared)",
        c.verdict().label(),
        regressions,
        if regressions == 1 { "" } else { "s" },
        c.rows.len()
    );
    out
}

/// Markdown for a pull-request comment; `quiet` keeps only regressions.
pub fn to_markdown(c: &Comparison, quiet: bool) -> String {
    let mut out = String::new();
    let verdict = c.verdict();
    let icon = match verdict {
        Verdict::Regression => "❌",
        Verdict::Warning => "⚠️",
        _ => "✅",
    };
    let _ = writeln!(out, "### {icon} inferbench compare: {}\n", verdict.label());
    let shown: Vec<&Row> = c.rows.iter().filter(|r| visible(r, quiet)).collect();
    if shown.is_empty() {
        let _ = writeln!(out, "No regression in {} metrics compared.", c.rows.len());
    } else {
        let _ = writeln!(
            out,
            "| scenario | metric | baseline | current | change | verdict | why |\n| --- | --- | ---: | ---: | ---: | --- | --- |"
        );
    }
    for r in shown {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.scenario.replace('|', "\\|"),
            r.metric,
            fmt_value(r.baseline, &r.unit),
            fmt_value(r.current, &r.unit),
            fmt_change(r),
            r.verdict.label(),
            r.reason.replace('|', "\\|")
        );
    }
    if !quiet && !c.notes.is_empty() {
        out.push('\n');
        for n in &c.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    let r = &c.rules;
    let _ = writeln!(
        out,
        "\n<sub>Latency medians shown; rank test α = {}, minimum effect {}%; FAIL p95 > +{}% or errors > {}%; WARN p95 > +{}%, p50 or throughput ± {}%/{}%.</sub>",
        r.alpha,
        r.min_effect_pct,
        r.fail_p95_pct,
        r.max_error_rate_pct,
        r.warn_p95_pct,
        r.warn_p50_pct,
        r.warn_throughput_pct
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-normal sample (sum of uniforms from a small LCG).
    fn sample(n: usize, mean_us: f64, sd_us: f64, seed: u64) -> LatencyHistogram {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut h = LatencyHistogram::new();
        for _ in 0..n {
            let mut acc = 0.0;
            for _ in 0..12 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                acc += (s >> 11) as f64 / (1u64 << 53) as f64;
            }
            h.record((mean_us + (acc - 6.0) * sd_us).max(1.0) as u64);
        }
        h
    }

    fn report(ttft: LatencyHistogram, ok: u64, errors: u64) -> Report {
        let mut r = RunResult::empty("http://127.0.0.1:1", "rate 10/s");
        r.duration_s = 10.0;
        r.total.counts.requests = ok + errors;
        r.total.counts.ok = ok;
        if errors > 0 {
            r.total
                .counts
                .errors
                .insert("http_503/model_server".into(), errors);
        }
        r.total.latency.ttft = ttft;
        crate::testutil::one_scenario("chat", r)
    }

    fn ttft_row(c: &Comparison) -> &Row {
        c.rows.iter().find(|r| r.metric == "ttft").unwrap()
    }

    #[test]
    fn rank_test_matches_known_values() {
        // Identical samples: no evidence at all.
        let a = sample(500, 50_000.0, 5_000.0, 1);
        let (p, sup) = mann_whitney(&a, &a);
        assert!((p - 1.0).abs() < 1e-6, "{p}");
        assert!((sup - 0.5).abs() < 1e-9);
        // Shifted by one standard deviation: overwhelming evidence, superiority ≈ Φ(1/√2) ≈ 0.76.
        let b = sample(500, 55_000.0, 5_000.0, 2);
        let (p, sup) = mann_whitney(&a, &b);
        assert!(p < 1e-30, "{p}");
        assert!((sup - 0.76).abs() < 0.04, "{sup}");
        // Normal tail values.
        assert!((normal_two_sided_p(1.959_964) - 0.05).abs() < 1e-6);
        assert!((normal_two_sided_p(3.290_527) - 0.001).abs() < 1e-6);
    }

    #[test]
    fn same_distribution_is_within_noise_and_a_15pct_shift_is_a_regression() {
        let rules = Rules::default();
        let base = report(sample(2000, 50_000.0, 3_000.0, 1), 2000, 0);
        let same = report(sample(2000, 50_000.0, 3_000.0, 2), 2000, 0);
        let c = compare(&base, &same, &rules).unwrap();
        assert_eq!(c.verdict(), Verdict::WithinNoise, "{}", to_text(&c, false));
        let slower = report(sample(2000, 57_500.0, 3_450.0, 3), 2000, 0);
        let c = compare(&base, &slower, &rules).unwrap();
        let row = ttft_row(&c);
        assert_eq!(row.verdict, Verdict::Regression);
        assert!((row.change_pct.unwrap() - 15.0).abs() < 1.0, "{row:?}");
        assert_eq!(c.verdict(), Verdict::Regression);
        // The other way round it is an improvement.
        let c = compare(&slower, &base, &rules).unwrap();
        assert_eq!(ttft_row(&c).verdict, Verdict::Improvement);
        // Quiet text keeps only the regression lines (and the verdict).
        let c = compare(&base, &slower, &rules).unwrap();
        let quiet = to_text(&c, true);
        assert_eq!(quiet.lines().count(), 2, "{quiet}");
        assert!(to_markdown(&c, false).contains("| chat | ttft |"));
    }

    #[test]
    fn small_samples_are_not_judged_and_a_real_but_tiny_shift_is_noise() {
        let rules = Rules::default();
        let base = report(sample(10, 50_000.0, 3_000.0, 1), 10, 0);
        let cur = report(sample(10, 90_000.0, 3_000.0, 2), 10, 0);
        let c = compare(&base, &cur, &rules).unwrap();
        assert_eq!(ttft_row(&c).verdict, Verdict::NotComparable);
        // 2% slower with 20,000 samples: significant, but below the 5% minimum effect.
        let base = report(sample(20_000, 50_000.0, 1_000.0, 1), 20_000, 0);
        let cur = report(sample(20_000, 51_000.0, 1_000.0, 2), 20_000, 0);
        let c = compare(&base, &cur, &rules).unwrap();
        let row = ttft_row(&c);
        assert_eq!(row.verdict, Verdict::WithinNoise, "{row:?}");
        assert!(row.p_value.unwrap() < 1e-6);
    }

    #[test]
    fn fixed_rules_fire() {
        let rules = Rules::default();
        let base = report(sample(2000, 50_000.0, 3_000.0, 1), 2000, 0);
        // 3% errors: FAIL whatever the latency.
        let cur = report(sample(2000, 50_000.0, 3_000.0, 2), 1940, 60);
        let c = compare(&base, &cur, &rules).unwrap();
        let e = c.rows.iter().find(|r| r.metric == "error_rate").unwrap();
        assert_eq!(e.verdict, Verdict::Regression);
        assert!((e.current - 3.0).abs() < 1e-9);
        // A tail that grows 40% while the median stays: the p95 rule fails it.
        let mut tail = sample(1800, 50_000.0, 3_000.0, 2);
        tail.merge(&sample(200, 80_000.0, 1_000.0, 3));
        let mut btail = sample(1800, 50_000.0, 3_000.0, 4);
        btail.merge(&sample(200, 60_000.0, 1_000.0, 5));
        let c = compare(&report(btail, 2000, 0), &report(tail, 2000, 0), &rules).unwrap();
        let row = ttft_row(&c);
        assert_eq!(row.verdict, Verdict::Regression, "{row:?}");
        assert!(row.reason.contains("p95"), "{row:?}");
        // Throughput 30% lower, beyond counting noise: a warning.
        let mut slow = report(sample(2000, 50_000.0, 3_000.0, 2), 1400, 0);
        slow.scenarios[0].total.duration_s = 10.0;
        let c = compare(&base, &slow, &rules).unwrap();
        let t = c.rows.iter().find(|r| r.metric == "throughput").unwrap();
        assert_eq!(t.verdict, Verdict::Warning, "{t:?}");
    }

    #[test]
    fn reports_without_a_common_scenario_are_an_error() {
        let base = report(sample(100, 1.0, 0.0, 1), 100, 0);
        let mut cur = base.clone();
        cur.scenarios[0].name = "other".into();
        let e = compare(&base, &cur, &Rules::default()).unwrap_err();
        assert!(e.to_string().contains("chat"), "{e}");
    }
}
