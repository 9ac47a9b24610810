//! The verdicts of a scenario: its thresholds (per routing arm when it has arms), the default
//! gates every scenario gets, and its SLO with goodput.

use inferbench_config::Scenario;
use inferbench_config::threshold::{Metric, Threshold};
use inferbench_results::run::{RunResult, SloLimits};
use inferbench_results::suite::{ArmReport, Check, SloReport};

use crate::kinds::Kind;

/// What a scenario is judged by: its thresholds and stress limits as written, and its SLO
/// (percentile and per-request limits). Kept in a shard's report, so that merged shards are
/// judged again by the same rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// `thresholds`, as written.
    pub thresholds: Vec<String>,
    /// A stress test's `limits`, as written.
    pub stress_limits: Vec<String>,
    /// The SLO: its percentile and limits.
    pub slo: Option<(f64, SloLimits)>,
}

impl Rules {
    /// The rules of scenario `s`.
    pub fn of(s: &Scenario) -> Rules {
        Rules {
            thresholds: s.thresholds.iter().map(|t| t.value.clone()).collect(),
            stress_limits: s
                .load
                .stress
                .as_ref()
                .map(|st| st.limits.iter().map(|t| t.value.clone()).collect())
                .unwrap_or_default(),
            slo: s.slo.as_ref().map(|slo| {
                let p = slo.percentile.as_ref().map_or(95.0, |p| p.value);
                (p, slo_limits(slo))
            }),
        }
    }
}

fn parsed(rules: &[String]) -> Vec<Threshold> {
    rules
        .iter()
        .filter_map(|t| Threshold::parse(t).ok())
        .collect()
}

/// `check` with the arm it judged named in its rule.
fn on_arm(mut c: Check, arm: Option<&str>) -> Check {
    if let Some(a) = arm {
        c.rule = format!("arm {a}: {}", c.rule);
    }
    c
}

/// The scenario's threshold checks and SLO verdict.
///
/// Each routing arm is judged on its own results (a rule fails when any arm fails it, and the
/// check names the arm); other scenarios on their total. Besides the scenario's own rules:
/// the default gate `error_rate < 1%` unless the scenario sets its own error-rate rule (for a
/// stress test, a limit counts too, and the gate judges the steps below the breaking point),
/// and a failed check for any judged result without a single successful request.
pub fn verdicts(
    rules: &Rules,
    kind: Kind,
    total: &RunResult,
    wholes: &[RunResult],
    broke: bool,
    arms: &[ArmReport],
) -> (Vec<Check>, Option<SloReport>) {
    let judged: Vec<(Option<&str>, &RunResult)> = if arms.is_empty() {
        vec![(None, total)]
    } else {
        arms.iter()
            .map(|a| (Some(a.name.as_str()), &a.result))
            .collect()
    };
    let own = parsed(&rules.thresholds);
    let stress_limits = parsed(&rules.stress_limits);
    let mut checks = Vec::new();
    for t in &own {
        for (arm, r) in &judged {
            checks.push(on_arm(t.judge(r), *arm));
        }
    }
    let own_error_rule = own
        .iter()
        .chain(&stress_limits)
        .any(|t| t.metric == Metric::ErrorRate);
    if !own_error_rule {
        let gate = Threshold::default_error_gate();
        if kind == Kind::Stress {
            // The step that broke a limit is expected to fail: judge the steps before it.
            let below = &wholes[..wholes.len().saturating_sub(usize::from(broke))];
            if !below.is_empty() {
                let mut merged = RunResult::empty(&total.target, kind.name());
                for w in below {
                    merged.append(w);
                }
                let mut c = gate.judge(&merged);
                c.rule = format!("{} on the steps below the breaking point", c.rule);
                checks.push(c);
            }
        } else {
            for (arm, r) in &judged {
                checks.push(on_arm(gate.judge(r), *arm));
            }
        }
    }
    for (arm, r) in &judged {
        let c = &r.total.counts;
        if c.ok == 0 {
            checks.push(on_arm(
                Check {
                    rule: "successful requests > 0 (default)".into(),
                    measured: format!("0 of {} completed", c.requests),
                    passed: false,
                },
                *arm,
            ));
        }
    }
    let slo_report = rules.slo.map(|(p, limits)| {
        let mut slo_checks = Vec::new();
        for (name, lim) in [
            ("ttft", limits.ttft_us),
            ("tpot", limits.tpot_us),
            ("e2e", limits.e2e_us),
        ] {
            if let Some(us) = lim
                && let Ok(t) = Threshold::parse(&format!("{name}.p{p} <= {}ms", us as f64 / 1000.0))
            {
                for (arm, r) in &judged {
                    slo_checks.push(on_arm(t.judge(r), *arm));
                }
            }
        }
        let c = &total.total.counts;
        SloReport {
            percentile: p,
            limits,
            passed: slo_checks.iter().all(|c| c.passed),
            checks: slo_checks,
            goodput_rps: c.good as f64 / total.duration_s.max(1e-9),
            good_fraction: c.good as f64 / c.requests.max(1) as f64,
        }
    });
    (checks, slo_report)
}

/// The per-request limits of an SLO, µs.
pub fn slo_limits(slo: &inferbench_config::Slo) -> SloLimits {
    SloLimits {
        ttft_us: slo.ttft.map(|d| d.0.as_micros() as u64),
        tpot_us: slo.tpot.map(|d| d.0.as_micros() as u64),
        e2e_us: slo.e2e.map(|d| d.0.as_micros() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_config::Config;

    fn config(scenario: &str) -> Config {
        let text = format!(
            "targets:\n  - {{name: t, url: http://127.0.0.1:1, models: [m]}}\nscenarios:\n  - name: s\n{scenario}"
        );
        Config::parse(&text, "test").unwrap()
    }

    /// `requests` completed of which `failed` failed, over 10 s.
    fn result(requests: u64, failed: u64) -> RunResult {
        let mut r = RunResult::empty("http://x", "rate 10/s");
        r.duration_s = 10.0;
        r.total.counts.requests = requests;
        r.total.counts.ok = requests - failed;
        r.total.counts.ok_in_window = requests - failed;
        if failed > 0 {
            r.total
                .counts
                .errors
                .insert("http_500/model_server".into(), failed);
        }
        for i in 0..requests - failed {
            r.total.latency.ttft.record(1000 + i);
        }
        r
    }

    fn arm(name: &str, result: RunResult) -> ArmReport {
        ArmReport {
            name: name.into(),
            url: "http://x".into(),
            result,
            router_cpu_s: None,
            router_cpu_per_1000: None,
            router_peak_rss_mb: None,
            ttft_added_us: None,
            e2e_added_us: None,
            throughput_change_pct: None,
            prefix_hit_rate: 0.0,
            routing_accuracy: 1.0,
        }
    }

    fn summary(checks: &[Check]) -> Vec<(String, String, bool)> {
        checks
            .iter()
            .map(|c| (c.rule.clone(), c.measured.clone(), c.passed))
            .collect()
    }

    fn row(rule: &str, measured: &str, passed: bool) -> (String, String, bool) {
        (rule.into(), measured.into(), passed)
    }

    #[test]
    fn every_scenario_gets_the_default_error_gate() {
        let c = config("    load: {rate: 10}\n    duration: 10s\n");
        let s = &c.file.scenarios[0];
        let bad = result(40, 17);
        let (checks, slo) = verdicts(
            &Rules::of(s),
            Kind::Rate,
            &bad,
            std::slice::from_ref(&bad),
            false,
            &[],
        );
        assert!(slo.is_none());
        assert_eq!(
            summary(&checks),
            [row("error_rate < 1% (default)", "42.50%", false)]
        );
        let good = result(200, 1);
        let (checks, _) = verdicts(
            &Rules::of(s),
            Kind::Rate,
            &good,
            std::slice::from_ref(&good),
            false,
            &[],
        );
        assert_eq!(
            summary(&checks),
            [row("error_rate < 1% (default)", "0.50%", true)]
        );
    }

    #[test]
    fn no_successful_request_never_passes() {
        let c = config(
            "    load: {rate: 10}\n    duration: 10s\n    thresholds: [\"error_rate <= 100%\"]\n",
        );
        let s = &c.file.scenarios[0];
        let none = result(5, 5);
        let (checks, _) = verdicts(
            &Rules::of(s),
            Kind::Rate,
            &none,
            std::slice::from_ref(&none),
            false,
            &[],
        );
        // Its own error rule replaces the default gate; the success rule stays.
        assert_eq!(
            summary(&checks),
            [
                row("error_rate <= 100%", "100.00%", true),
                row(
                    "successful requests > 0 (default)",
                    "0 of 5 completed",
                    false
                )
            ]
        );
        // Nothing completed at all: an error rate of 0% must not pass it either.
        let empty = result(0, 0);
        let (checks, _) = verdicts(&Rules::of(s), Kind::Rate, &empty, &[], false, &[]);
        assert!(checks.iter().any(|c| !c.passed));
    }

    #[test]
    fn arms_are_judged_one_by_one() {
        let c = config(
            "    load: {rate: 10}\n    duration: 10s\n    arms: [direct, epp]\n    thresholds: [\"ttft.p50 < 1.5ms\"]\n    slo: {ttft: 2ms}\n",
        );
        let s = &c.file.scenarios[0];
        let direct = result(100, 0);
        let mut epp = result(100, 5);
        epp.total.latency.ttft = Default::default();
        for _ in 0..95 {
            epp.total.latency.ttft.record(3000);
        }
        let mut total = direct.clone();
        total.append(&epp);
        let arms = [arm("direct", direct.clone()), arm("epp", epp.clone())];
        let (checks, slo) = verdicts(
            &Rules::of(s),
            Kind::Arms,
            &total,
            &[direct, epp],
            false,
            &arms,
        );
        let got = summary(&checks);
        assert_eq!(
            got.iter()
                .map(|(r, _, p)| (r.as_str(), *p))
                .collect::<Vec<_>>(),
            [
                ("arm direct: ttft.p50 < 1.5ms", true),
                ("arm epp: ttft.p50 < 1.5ms", false),
                ("arm direct: error_rate < 1% (default)", true),
                ("arm epp: error_rate < 1% (default)", false),
            ]
        );
        // Merged, the total's 2.5% errors would fail too, but its TTFT p50 would pass: only
        // per arm does the slow arm show.
        assert!(Threshold::parse("ttft.p50 < 1.5ms").unwrap().check(&total));
        let slo = slo.unwrap();
        assert!(!slo.passed);
        assert_eq!(
            slo.checks
                .iter()
                .map(|c| (c.rule.as_str(), c.passed))
                .collect::<Vec<_>>(),
            [
                ("arm direct: ttft.p95 <= 2ms", true),
                ("arm epp: ttft.p95 <= 2ms", false)
            ]
        );
    }

    #[test]
    fn stress_gates_the_steps_below_its_breaking_point() {
        let c = config(
            "    load:\n      stress: {start: 10, step: 10, max: 50, step_duration: 1s, limits: [\"ttft.p99 < 1s\"]}\n",
        );
        let s = &c.file.scenarios[0];
        let steps = [result(100, 0), result(100, 0), result(100, 60)];
        let mut total = RunResult::empty("http://x", "stress");
        for w in &steps {
            total.append(w);
        }
        let (checks, _) = verdicts(&Rules::of(s), Kind::Stress, &total, &steps, true, &[]);
        assert_eq!(
            summary(&checks),
            [row(
                "error_rate < 1% (default) on the steps below the breaking point",
                "0.00%",
                true
            )]
        );
        // It never broke: every step is judged.
        let (checks, _) = verdicts(&Rules::of(s), Kind::Stress, &total, &steps, false, &[]);
        assert_eq!(checks[0].measured, "20.00%");
        assert!(!checks[0].passed);
        // An error-rate limit is the scenario's own rule: no default gate.
        let c = config(
            "    load:\n      stress: {start: 10, step: 10, max: 50, step_duration: 1s, limits: [\"error_rate < 5%\"]}\n",
        );
        let (checks, _) = verdicts(
            &Rules::of(&c.file.scenarios[0]),
            Kind::Stress,
            &total,
            &steps,
            false,
            &[],
        );
        assert!(checks.is_empty(), "{checks:?}");
    }
}
