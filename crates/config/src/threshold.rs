//! k6-style pass/fail rules on a run's results: `ttft.p95 < 500ms`, `error_rate < 1%`,
//! `routing_accuracy >= 100%`, `throughput > 50`. Used for scenario thresholds and for the
//! limits of a stress test.

use inferbench_results::histogram::LatencyHistogram;
use inferbench_results::run::RunResult;
use inferbench_results::suite::Check;
use serde::{Deserialize, Serialize};

/// The error rate above which every scenario fails unless it sets its own `error_rate` rule
/// (a fraction: 1%).
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;

/// The name of the default gate in reports.
pub const DEFAULT_ERROR_GATE: &str = "error_rate < 1% (default)";

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The rule as written.
    pub expr: String,
    /// What is measured.
    pub metric: Metric,
    /// The comparison.
    pub op: Op,
    /// The bound, in the metric's unit (µs for latencies, a fraction for rates, per second for
    /// throughputs).
    pub value: f64,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Stat {
    /// A percentile, 0–100.
    Percentile(f64),
    /// Mean.
    Mean,
    /// Smallest.
    Min,
    /// Largest.
    Max,
}

/// What a rule measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Metric {
    /// A latency histogram (`ttft`, `itl`, `tpot`, `e2e`, `ttfb`, `ttft_from_planned`,
    /// `e2e_from_planned`, `dispatch_lag`) and a statistic, µs.
    Latency(String, Stat),
    /// Failed / completed, a fraction.
    ErrorRate,
    /// Requests answered by the model asked for / completed, a fraction.
    RoutingAccuracy,
    /// Successful requests that completed inside the measured window, per second.
    Throughput,
    /// Output tokens of those requests per second.
    OutputTps,
    /// Requests per second meeting every SLO limit.
    Goodput,
    /// Requests completed.
    Requests,
}

const LATENCIES: [&str; 8] = [
    "ttft",
    "itl",
    "tpot",
    "e2e",
    "ttfb",
    "ttft_from_planned",
    "e2e_from_planned",
    "dispatch_lag",
];

/// A rule that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{expr}`: {why}")]
pub struct ThresholdError {
    /// The rule.
    pub expr: String,
    /// What is wrong.
    pub why: String,
}

impl Threshold {
    /// Parses `METRIC OP VALUE`.
    pub fn parse(expr: &str) -> Result<Self, ThresholdError> {
        let err = |why: &str| ThresholdError {
            expr: expr.to_string(),
            why: why.to_string(),
        };
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (pos, len, op) = ops
            .iter()
            .filter_map(|(s, op)| expr.find(s).map(|p| (p, s.len(), *op)))
            .min_by_key(|(p, l, _)| (*p, usize::MAX - l))
            .ok_or_else(|| err("no comparison (<, <=, >, >=, ==)"))?;
        let lhs = expr[..pos].trim();
        let rhs = expr[pos + len..].trim();
        let metric = parse_metric(lhs).map_err(|w| err(&w))?;
        let value = parse_value(&metric, rhs).map_err(|w| err(&w))?;
        Ok(Threshold {
            expr: expr.trim().to_string(),
            metric,
            op,
            value,
        })
    }

    /// The gate every scenario gets unless it sets its own error-rate rule:
    /// [`DEFAULT_ERROR_GATE`].
    pub fn default_error_gate() -> Self {
        Threshold {
            expr: DEFAULT_ERROR_GATE.to_string(),
            metric: Metric::ErrorRate,
            op: Op::Lt,
            value: DEFAULT_MAX_ERROR_RATE,
        }
    }

    /// The measured value in `r` (same unit as `value`).
    pub fn measure(&self, r: &RunResult) -> f64 {
        let c = &r.total.counts;
        match &self.metric {
            Metric::Latency(name, stat) => {
                let h = histogram(r, name);
                let s = h.summary();
                match stat {
                    Stat::Percentile(p) => h.quantile(p / 100.0) as f64,
                    Stat::Mean => s.mean_us,
                    Stat::Min => s.min_us as f64,
                    Stat::Max => s.max_us as f64,
                }
            }
            Metric::ErrorRate => c.error_fraction(),
            Metric::RoutingAccuracy => {
                if c.requests == 0 {
                    1.0
                } else {
                    1.0 - r.misrouted as f64 / c.requests as f64
                }
            }
            Metric::Throughput => r.achieved_rate(),
            Metric::OutputTps => r.output_tokens_per_s(),
            Metric::Goodput => r.per_second(c.good),
            Metric::Requests => c.requests as f64,
        }
    }

    /// Whether `r` holds a sample of the metric: a latency histogram with no sample (TPOT of
    /// unary or one-token answers, ITL without streams) was not measured.
    pub fn measured_in(&self, r: &RunResult) -> bool {
        match &self.metric {
            Metric::Latency(name, _) => histogram(r, name).count() > 0,
            _ => true,
        }
    }

    /// This rule judged on `r`, for a report: the rule, the measured value, passed or not. A
    /// latency never observed (TPOT of unary or one-token answers, ITL without streams) cannot
    /// pass a limit on it.
    pub fn judge(&self, r: &RunResult) -> Check {
        if !self.measured_in(r) {
            return Check {
                rule: self.expr.clone(),
                measured: "not measured (no request observed it)".into(),
                passed: false,
            };
        }
        Check {
            rule: self.expr.clone(),
            measured: self.display(self.measure(r)),
            passed: self.check(r),
        }
    }

    /// Whether `r` passes (never on a latency that was not measured).
    pub fn check(&self, r: &RunResult) -> bool {
        if !self.measured_in(r) {
            return false;
        }
        let v = self.measure(r);
        match self.op {
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Eq => (v - self.value).abs() < 1e-9,
        }
    }

    /// `v` in the metric's display unit: ms for latencies, % for rates.
    pub fn display(&self, v: f64) -> String {
        match self.metric {
            Metric::Latency(..) => format!("{:.3} ms", v / 1000.0),
            Metric::ErrorRate | Metric::RoutingAccuracy => format!("{:.2}%", v * 100.0),
            Metric::Requests => format!("{v:.0}"),
            _ => format!("{v:.2}/s"),
        }
    }
}

fn histogram<'a>(r: &'a RunResult, name: &str) -> &'a LatencyHistogram {
    let l = &r.total.latency;
    match name {
        "ttft" => &l.ttft,
        "itl" => &l.itl,
        "tpot" => &l.tpot,
        "e2e" => &l.e2e,
        "ttfb" => &l.ttfb,
        "ttft_from_planned" => &l.ttft_from_planned,
        "e2e_from_planned" => &l.e2e_from_planned,
        _ => &r.client.dispatch_lag,
    }
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    match s {
        "error_rate" => return Ok(Metric::ErrorRate),
        "routing_accuracy" => return Ok(Metric::RoutingAccuracy),
        "throughput" | "rps" => return Ok(Metric::Throughput),
        "output_tps" | "output_tokens_per_s" => return Ok(Metric::OutputTps),
        "goodput" => return Ok(Metric::Goodput),
        "requests" => return Ok(Metric::Requests),
        _ => {}
    }
    let (name, stat) = s.split_once('.').ok_or_else(|| {
        format!(
            "unknown metric `{s}` (latencies: {} with .p50/.p95/.p99/.p99.9/.mean/.min/.max; or error_rate, routing_accuracy, throughput, output_tps, goodput, requests)",
            LATENCIES.join(", ")
        )
    })?;
    if !LATENCIES.contains(&name) {
        return Err(format!(
            "unknown latency `{name}` (one of {})",
            LATENCIES.join(", ")
        ));
    }
    let stat = match stat {
        "mean" | "avg" => Stat::Mean,
        "min" => Stat::Min,
        "max" => Stat::Max,
        p if p.starts_with('p') => {
            let v: f64 = p[1..]
                .parse()
                .map_err(|_| format!("`{p}` is not a percentile like p95 or p99.9"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("percentile {v} is not within 0–100"));
            }
            Stat::Percentile(v)
        }
        other => return Err(format!("unknown statistic `{other}`")),
    };
    Ok(Metric::Latency(name.to_string(), stat))
}

fn parse_value(metric: &Metric, s: &str) -> Result<f64, String> {
    let num = |t: &str| -> Result<f64, String> {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{s}` is not a number"))
    };
    match metric {
        Metric::Latency(..) => {
            let (n, mul) = if let Some(n) = s.strip_suffix("ms") {
                (n, 1000.0)
            } else if let Some(n) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
                (n, 1.0)
            } else if let Some(n) = s.strip_suffix('s') {
                (n, 1e6)
            } else {
                return Err(format!("`{s}` needs a unit: us, ms or s"));
            };
            Ok(num(n)? * mul)
        }
        Metric::ErrorRate | Metric::RoutingAccuracy => match s.strip_suffix('%') {
            Some(n) => Ok(num(n)? / 100.0),
            None => num(s),
        },
        _ => num(s.trim_end_matches("/s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_latency_never_measured_cannot_pass() {
        // Unary answers only: no TPOT or ITL sample at all.
        let mut r = RunResult::empty("t", "rate");
        r.total.counts.requests = 10;
        r.total.counts.ok = 10;
        r.total.latency.ttft.record(1_000);
        let tpot = Threshold::parse("tpot.p95 < 50ms").unwrap();
        assert!(!tpot.measured_in(&r));
        assert!(!tpot.check(&r), "0 µs of nothing is not under 50 ms");
        let ttft = Threshold::parse("ttft.p95 < 50ms").unwrap();
        assert!(ttft.measured_in(&r) && ttft.check(&r));
        r.total.latency.tpot.record(2_000);
        assert!(tpot.check(&r));
    }

    #[test]
    fn parses_the_forms_users_write() {
        let t = Threshold::parse("ttft.p95 < 500ms").unwrap();
        assert_eq!(
            t.metric,
            Metric::Latency("ttft".into(), Stat::Percentile(95.0))
        );
        assert_eq!((t.op, t.value), (Op::Lt, 500_000.0));
        let t = Threshold::parse("error_rate<1%").unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::ErrorRate, Op::Lt, 0.01));
        let t = Threshold::parse("routing_accuracy >= 100%").unwrap();
        assert_eq!((t.op, t.value), (Op::Ge, 1.0));
        let t = Threshold::parse("e2e.p99.9 <= 2s").unwrap();
        assert_eq!(
            t.metric,
            Metric::Latency("e2e".into(), Stat::Percentile(99.9))
        );
        assert_eq!(t.value, 2e6);
        assert_eq!(Threshold::parse("throughput > 50/s").unwrap().value, 50.0);
        assert!(Threshold::parse("ttft.p95 < 500").is_err(), "unit needed");
        assert!(Threshold::parse("latency.p95 < 1s").is_err());
        assert!(Threshold::parse("ttft.p95 500ms").is_err());
        assert!(Threshold::parse("ttft.p150 < 1s").is_err());
    }

    #[test]
    fn checks_against_a_result() {
        let mut r = RunResult::empty("t", "l");
        for us in 1..=100u64 {
            r.total.latency.ttft.record(us * 1000);
        }
        r.total.counts.requests = 100;
        r.total.counts.ok = 98;
        r.total.counts.ok_in_window = 97;
        r.total
            .counts
            .errors
            .insert("http_500/model_server".into(), 2);
        r.misrouted = 1;
        r.duration_s = 10.0;
        assert!(Threshold::parse("ttft.p50 < 51ms").unwrap().check(&r));
        assert!(!Threshold::parse("ttft.p99 < 90ms").unwrap().check(&r));
        assert!(!Threshold::parse("error_rate < 1%").unwrap().check(&r));
        assert!(Threshold::parse("error_rate <= 2%").unwrap().check(&r));
        assert!(
            !Threshold::parse("routing_accuracy >= 100%")
                .unwrap()
                .check(&r)
        );
        // Throughput counts the completions inside the window.
        assert!(Threshold::parse("throughput >= 9.7").unwrap().check(&r));
        assert!(!Threshold::parse("throughput >= 9.8").unwrap().check(&r));
        let gate = Threshold::default_error_gate();
        assert_eq!(gate.expr, "error_rate < 1% (default)");
        assert_eq!(
            gate,
            Threshold {
                expr: gate.expr.clone(),
                ..Threshold::parse("error_rate < 1%").unwrap()
            }
        );
        assert!(!gate.check(&r), "2% errors fail the default gate");
        r.total.counts.requests = 200;
        assert!(!gate.check(&r), "exactly 1% fails: the rule is strict");
        r.total.counts.requests = 201;
        assert!(gate.check(&r));
    }

    proptest! {
        /// Any text: a rule or an error, never a panic.
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Threshold::parse(&s);
        }

        #[test]
        fn latency_rules_round_trip(p in 1u32..100, v in 1u32..100_000, op in 0usize..5) {
            let ops = ["<", "<=", ">", ">=", "=="];
            let t = Threshold::parse(&format!("itl.p{p} {} {v}us", ops[op])).unwrap();
            prop_assert_eq!(t.value, v as f64);
            prop_assert_eq!(t.metric, Metric::Latency("itl".into(), Stat::Percentile(p as f64)));
        }
    }
}
