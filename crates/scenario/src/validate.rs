//! Checks that go beyond types: positive rates, known names, one load kind, readable rules.
//! Every message names the file, the line and the field.

use std::collections::BTreeSet;

use crate::config::{Config, ConfigError, Load, Loc, Scenario};
use crate::threshold::Threshold;

/// Validates a parsed file.
pub fn validate(c: &Config) -> Result<(), ConfigError> {
    let f = &c.file;
    if f.scenarios.is_empty() {
        return Err(c.error(1, "scenarios", "the file defines no scenario"));
    }
    let mut names = BTreeSet::new();
    for t in &f.targets {
        if !names.insert(t.name.value.clone()) {
            return Err(c.error(
                t.name.line,
                "targets.name",
                format!("target `{}` is defined twice", *t.name),
            ));
        }
        let url = t.url.value.as_str();
        if url != "embedded" && !url.starts_with("http://") {
            let why = if url.starts_with("https://") {
                "https is not supported yet; use http:// (e.g. through a local port-forward)"
            } else {
                "must start with http:// (or be `embedded` for the built-in mock fleet)"
            };
            return Err(c.error(t.url.line, "targets.url", format!("`{url}` {why}")));
        }
    }
    let mut seen = BTreeSet::new();
    for s in &f.scenarios {
        if !seen.insert(s.name.value.clone()) {
            return Err(c.error(
                s.name.line,
                "scenarios.name",
                format!("scenario `{}` is defined twice", *s.name),
            ));
        }
        scenario(c, s)?;
    }
    for e in &f.suite {
        if c.scenario(&e.scenario).is_none() {
            return Err(c.error(
                e.scenario.line,
                "suite.scenario",
                format!(
                    "unknown scenario `{}` (defined: {})",
                    *e.scenario,
                    list(f.scenarios.iter().map(|s| s.name.value.as_str()))
                ),
            ));
        }
        for t in &e.targets {
            known_target(c, t)?;
        }
    }
    Ok(())
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn known_target(c: &Config, t: &Loc<String>) -> Result<(), ConfigError> {
    if c.target(t).is_none() {
        return Err(c.error(
            t.line,
            "target",
            format!(
                "unknown target `{}` (defined: {})",
                t.value,
                list(c.file.targets.iter().map(|t| t.name.value.as_str()))
            ),
        ));
    }
    Ok(())
}

fn positive(c: &Config, v: &Loc<f64>, field: &str) -> Result<(), ConfigError> {
    if !(v.value.is_finite() && v.value > 0.0) {
        return Err(c.error(
            v.line,
            field,
            format!("must be a number > 0, got {}", v.value),
        ));
    }
    Ok(())
}

fn at_least(c: &Config, v: &Loc<i64>, min: i64, field: &str) -> Result<(), ConfigError> {
    if v.value < min {
        return Err(c.error(
            v.line,
            field,
            format!("must be at least {min}, got {}", v.value),
        ));
    }
    Ok(())
}

fn scenario(c: &Config, s: &Scenario) -> Result<(), ConfigError> {
    let line = s.name.line;
    match &s.target {
        Some(t) => known_target(c, t)?,
        None if c.file.targets.is_empty() => {
            return Err(c.error(
                line,
                "target",
                format!(
                    "scenario `{}` has no target and the file defines none",
                    *s.name
                ),
            ));
        }
        None => {}
    }
    load(c, s, &s.load)?;
    if !s.arms.is_empty() {
        if s.load.rate.is_none() && s.load.concurrency.is_none() {
            return Err(c.error(line, "arms", "arms need a `rate` or `concurrency` load"));
        }
        if s.duration.is_none() {
            return Err(c.error(
                line,
                "arms",
                "arms need a duration (each arm runs that long, in windows taken in turn)",
            ));
        }
        let mut names = BTreeSet::new();
        for a in &s.arms {
            let ok = match a {
                crate::config::Arm::Named(n) => matches!(
                    n.as_str(),
                    "direct" | "proxy-rr" | "epp" | "round-robin" | "random" | "least-request"
                ),
                crate::config::Arm::Custom(cfg) => cfg.picker.as_deref().is_none_or(|p| {
                    matches!(p, "epp" | "round-robin" | "random" | "least-request")
                }),
            };
            if !ok {
                return Err(c.error(
                    line,
                    "arms",
                    format!(
                        "unknown arm `{}` (direct, proxy-rr, epp, round-robin, random, least-request, or {{name, picker, weights}})",
                        a.name()
                    ),
                ));
            }
            if !names.insert(a.name().to_string()) {
                return Err(c.error(line, "arms", format!("arm `{}` is listed twice", a.name())));
            }
        }
    }
    for t in &s.thresholds {
        Threshold::parse(t).map_err(|e| c.error(t.line, "thresholds", e.to_string()))?;
    }
    if let Some(d) = &s.duration
        && d.value.0.is_zero()
    {
        return Err(c.error(d.line, "duration", "must be longer than 0"));
    }
    let w = &s.workload;
    if let Some(r) = &w.stream_ratio
        && !(0.0..=1.0).contains(&r.value)
    {
        return Err(c.error(
            r.line,
            "stream_ratio",
            format!("must be within 0..1, got {}", r.value),
        ));
    }
    if !w.prompt_mix.is_empty() && w.prompt_tokens.is_some() {
        return Err(c.error(
            line,
            "workload.prompt_mix",
            "give prompt_tokens or prompt_mix, not both",
        ));
    }
    if !w.output_mix.is_empty() && w.output_tokens.is_some() {
        return Err(c.error(
            line,
            "workload.output_mix",
            "give output_tokens or output_mix, not both",
        ));
    }
    for m in w.prompt_mix.iter().chain(&w.output_mix) {
        if let Some(wt) = &m.weight {
            positive(c, wt, "weight")?;
        }
    }
    for m in w.models.iter().chain(&w.lora) {
        if let Some(wt) = &m.weight {
            positive(c, wt, "weight")?;
        }
    }
    if let Some(p) = &w.shared_prefix {
        at_least(c, &p.groups, 1, "shared_prefix.groups")?;
        at_least(
            c,
            &p.prompts_per_group,
            1,
            "shared_prefix.prompts_per_group",
        )?;
        at_least(c, &p.prefix_tokens, 0, "shared_prefix.prefix_tokens")?;
    }
    if let Some(m) = &w.multi_turn {
        at_least(c, &m.turns, 2, "multi_turn.turns")?;
    }
    if let Some(p) = &w.prompts_file {
        let path = c.relative(p);
        if !path.is_file() {
            return Err(c.error(
                p.line,
                "prompts_file",
                format!("{} is not a readable file", path.display()),
            ));
        }
    }
    if w.models.is_empty() && w.prompts_file.is_none() {
        let target = match &s.target {
            Some(t) => c.target(t),
            None => c.file.targets.first(),
        };
        if target.is_some_and(|t| t.models.is_empty() && t.url.value != "embedded") {
            return Err(c.error(
                line,
                "workload.models",
                format!("scenario `{}` names no model, and its target lists none: set workload.models or the target's models", *s.name),
            ));
        }
    }
    if let Some(slo) = &s.slo {
        if let Some(p) = &slo.percentile
            && !(p.value > 0.0 && p.value <= 100.0)
        {
            return Err(c.error(
                p.line,
                "slo.percentile",
                format!("must be within (0, 100], got {}", p.value),
            ));
        }
        if slo.ttft.is_none() && slo.tpot.is_none() && slo.e2e.is_none() {
            return Err(c.error(line, "slo", "sets no limit (ttft, tpot or e2e)"));
        }
    }
    Ok(())
}

fn load(c: &Config, s: &Scenario, l: &Load) -> Result<(), ConfigError> {
    let line = s.name.line;
    let kinds = [
        l.rate.is_some(),
        l.concurrency.is_some(),
        l.stages.is_some(),
        l.sweep.is_some(),
        l.stress.is_some(),
        l.users.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if kinds != 1 {
        return Err(c.error(
            line,
            "load",
            format!(
                "scenario `{}` needs exactly one of rate, concurrency, stages, sweep, stress, users (found {kinds})",
                *s.name
            ),
        ));
    }
    if let Some(r) = &l.rate {
        positive(c, r, "load.rate")?;
    }
    if let Some(n) = &l.concurrency {
        at_least(c, n, 1, "load.concurrency")?;
    }
    if (l.rate.is_some() || l.concurrency.is_some()) && s.duration.is_none() && s.requests.is_none()
    {
        return Err(c.error(
            line,
            "duration",
            format!(
                "scenario `{}` needs a duration or a number of requests",
                *s.name
            ),
        ));
    }
    if let Some(stages) = &l.stages {
        if stages.is_empty() {
            return Err(c.error(line, "load.stages", "lists no stage"));
        }
        let open = stages[0].rate.is_some();
        for st in stages {
            if st.duration.value.0.is_zero() {
                return Err(c.error(st.duration.line, "stages.duration", "must be longer than 0"));
            }
            match (&st.rate, &st.concurrency) {
                (Some(r), None) if open => {
                    if !(r.value.is_finite() && r.value >= 0.0) {
                        return Err(c.error(
                            r.line,
                            "stages.rate",
                            format!("must be a number ≥ 0, got {}", r.value),
                        ));
                    }
                }
                (None, Some(n)) if !open => at_least(c, n, 0, "stages.concurrency")?,
                _ => {
                    return Err(c.error(
                        st.duration.line,
                        "stages",
                        "each stage needs `rate` or `concurrency`, the same kind in every stage",
                    ));
                }
            }
        }
    }
    if let Some(sw) = &l.sweep {
        if let Some(k) = &sw.rates {
            at_least(c, k, 1, "sweep.rates")?;
        }
        if let Some(m) = &sw.max_concurrency {
            at_least(c, m, 1, "sweep.max_concurrency")?;
        }
        if sw.duration.value.0.is_zero() {
            return Err(c.error(sw.duration.line, "sweep.duration", "must be longer than 0"));
        }
    }
    if let Some(st) = &l.stress {
        match (&st.start, &st.step, &st.max, &st.concurrency) {
            (Some(start), Some(step), Some(max), None) => {
                positive(c, start, "stress.start")?;
                positive(c, step, "stress.step")?;
                positive(c, max, "stress.max")?;
                if max.value < start.value {
                    return Err(c.error(max.line, "stress.max", "must be at least `start`"));
                }
            }
            (None, None, None, Some(levels)) if !levels.is_empty() => {
                for n in levels {
                    at_least(c, n, 1, "stress.concurrency")?;
                }
            }
            _ => {
                return Err(c.error(
                    st.step_duration.line,
                    "stress",
                    "needs either start, step and max (rates) or a concurrency list",
                ));
            }
        }
        if st.step_duration.value.0.is_zero() {
            return Err(c.error(
                st.step_duration.line,
                "stress.step_duration",
                "must be longer than 0",
            ));
        }
        if st.limits.is_empty() {
            return Err(c.error(
                line,
                "stress.limits",
                "needs at least one limit, e.g. `error_rate < 5%`",
            ));
        }
        for t in &st.limits {
            Threshold::parse(t).map_err(|e| c.error(t.line, "stress.limits", e.to_string()))?;
        }
    }
    if let Some(u) = &l.users {
        at_least(c, &u.users, 1, "users.users")?;
        positive(c, &u.spawn_rate, "users.spawn_rate")?;
    }
    Ok(())
}
