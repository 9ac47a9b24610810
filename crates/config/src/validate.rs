//! Checks that go beyond types, all made before any request is sent: rates, concurrencies, token
//! counts, durations and counts within the [`limits`], known names, one load kind, readable
//! rules, and prompts files read to the end. Every message names the file, the line and the
//! field (its dotted path, e.g. `scenarios[0].load.rate`), and for a limit the value and the limit.

use std::collections::BTreeSet;
use std::time::Duration;

use inferbench_workload::dist::LengthDist;

use crate::file::{
    Config, ConfigError, Dur, LoadSpec, Loc, Scenario, Stage, Stress, Sweep, Tokens, Users,
    Weighted,
};
use crate::limits::*;
use crate::threshold::Threshold;

/// Validates a parsed file (or a configuration built from flags).
pub fn validate(c: &Config) -> Result<(), ConfigError> {
    let f = &c.file;
    if f.scenarios.is_empty() {
        return Err(c.error(1, "scenarios", "the file defines no scenario"));
    }
    let mut names = BTreeSet::new();
    for (i, t) in f.targets.iter().enumerate() {
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
        let v = At {
            c,
            near: t.name.line,
        };
        let tp = format!("targets[{i}]");
        for (d, name) in [
            (t.timeout, "timeout"),
            (t.ttft_timeout, "ttft_timeout"),
            (t.stall_timeout, "stall_timeout"),
        ] {
            if let Some(d) = d {
                v.duration(d, 0, &format!("{tp}.{name}"), true, MAX_DURATION)?;
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (i, s) in f.scenarios.iter().enumerate() {
        if !seen.insert(s.name.value.clone()) {
            return Err(c.error(
                s.name.line,
                "scenarios.name",
                format!("scenario `{}` is defined twice", *s.name),
            ));
        }
        scenario(c, i, s)?;
    }
    for (i, e) in f.suite.iter().enumerate() {
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
        if let Some(r) = e.repeats {
            let v = At {
                c,
                near: e.scenario.line,
            };
            v.count(
                0,
                &format!("suite[{i}].repeats"),
                i128::from(r),
                1,
                MAX_REPEATS.into(),
                "",
            )?;
        }
    }
    Ok(())
}

/// Where errors about one part of the file go: the file, and the line to fall back on when a
/// value's own line is unknown and cannot be found (a key inside a `{…}` mapping).
struct At<'a> {
    c: &'a Config,
    near: u64,
}

impl At<'_> {
    /// An error about the field at `path`: on `line` when known (> 0), else on the line that
    /// holds `path` or its closest parent, else on `near`.
    fn err(&self, line: u64, path: &str, message: impl Into<String>) -> ConfigError {
        // A key inside a `{…}` mapping has no line of its own: take its closest parent's.
        let mut line = line;
        let mut p = path;
        while line == 0 && !p.is_empty() {
            line = crate::yaml::line_of(&self.c.text, p).unwrap_or(0);
            p = p.rfind(['.', '[']).map_or("", |i| &p[..i]);
        }
        if line == 0 {
            line = self.near;
        }
        ConfigError::At {
            file: self.c.origin.clone(),
            line,
            field: path.to_string(),
            message: message.into(),
        }
    }

    /// A rate in requests/s: finite, > 0 (≥ 0 with `zero_ok`), at most [`MAX_RATE`].
    fn rate(&self, v: &Loc<f64>, path: &str, zero_ok: bool, unit: &str) -> Result<(), ConfigError> {
        let x = v.value;
        let low_ok = if zero_ok { x >= 0.0 } else { x > 0.0 };
        if !(x.is_finite() && low_ok) {
            let op = if zero_ok { "≥" } else { ">" };
            return Err(self.err(v.line, path, format!("must be a number {op} 0, got {x}")));
        }
        if x > MAX_RATE {
            return Err(self.err(
                v.line,
                path,
                format!("{x} {unit} is above the limit of {MAX_RATE} {unit}"),
            ));
        }
        Ok(())
    }

    /// A whole number within `min..=max`; `unit` follows numbers in the message.
    fn count(
        &self,
        line: u64,
        path: &str,
        n: i128,
        min: i128,
        max: i128,
        unit: &str,
    ) -> Result<(), ConfigError> {
        if n < min {
            return Err(self.err(line, path, format!("must be at least {min}, got {n}")));
        }
        if n > max {
            return Err(self.err(
                line,
                path,
                format!("{n}{unit} is above the limit of {max}{unit}"),
            ));
        }
        Ok(())
    }

    /// A whole number of a `Loc<i64>` within `min..=max`.
    fn int(
        &self,
        v: &Loc<i64>,
        path: &str,
        min: i64,
        max: i64,
        unit: &str,
    ) -> Result<(), ConfigError> {
        self.count(v.line, path, v.value.into(), min.into(), max.into(), unit)
    }

    /// A duration > 0 (with `nonzero`) and at most `max`.
    fn duration(
        &self,
        d: Dur,
        line: u64,
        path: &str,
        nonzero: bool,
        max: Duration,
    ) -> Result<(), ConfigError> {
        if nonzero && d.0.is_zero() {
            return Err(self.err(line, path, "must be longer than 0"));
        }
        if d.0 > max {
            return Err(self.err(
                line,
                path,
                format!(
                    "{} is above the limit of {}",
                    show_duration(d.0),
                    show_duration(max)
                ),
            ));
        }
        Ok(())
    }

    /// Every parameter of a token length within 0..=[`MAX_TOKENS`].
    fn tokens(&self, t: &Tokens, path: &str) -> Result<(), ConfigError> {
        let max = MAX_TOKENS as f64;
        let params: Vec<(&str, f64)> = match t.0 {
            LengthDist::Fixed { value } => vec![("", value as f64)],
            LengthDist::Uniform { min, max } => vec![("min", min as f64), ("max", max as f64)],
            LengthDist::Normal {
                mean,
                stddev,
                min,
                max,
            } => vec![
                ("mean", mean),
                ("stddev", stddev),
                ("min", min as f64),
                ("max", max as f64),
            ],
            LengthDist::Lognormal {
                median,
                sigma,
                min,
                max,
            } => vec![
                ("median", median),
                ("sigma", sigma),
                ("min", min as f64),
                ("max", max as f64),
            ],
        };
        for (name, x) in params {
            let what = if name.is_empty() {
                String::new()
            } else {
                format!("{name} ")
            };
            if !(x.is_finite() && x >= 0.0) {
                return Err(self.err(0, path, format!("{what}must be a number ≥ 0, got {x}")));
            }
            if x > max {
                return Err(self.err(
                    0,
                    path,
                    format!("{what}{x} is above the limit of {MAX_TOKENS} tokens per request"),
                ));
            }
        }
        Ok(())
    }

    /// A relative weight (default 1): finite, ≥ 0, at most [`MAX_WEIGHT`]; returns it.
    fn weight(&self, w: Option<&Loc<f64>>, path: &str) -> Result<f64, ConfigError> {
        let Some(w) = w else { return Ok(1.0) };
        self.float(w.value, w.line, path)?;
        Ok(w.value)
    }

    /// A number finite, ≥ 0 and at most [`MAX_WEIGHT`].
    fn float(&self, x: f64, line: u64, path: &str) -> Result<(), ConfigError> {
        if !(x.is_finite() && x >= 0.0) {
            return Err(self.err(line, path, format!("must be a number ≥ 0, got {x}")));
        }
        if x > MAX_WEIGHT {
            return Err(self.err(
                line,
                path,
                format!("{x} is above the limit of {MAX_WEIGHT}"),
            ));
        }
        Ok(())
    }
}

/// `90 s`, `604800 s (7 days)`, `0.25 s`.
fn show_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    let days = s / 86_400.0;
    if d.subsec_nanos() == 0 && d.as_secs().is_multiple_of(86_400) && days >= 1.0 {
        format!("{s} s ({days} days)")
    } else if d.subsec_nanos() == 0 && d.as_secs().is_multiple_of(3600) && s >= 3600.0 {
        format!("{s} s ({} h)", s / 3600.0)
    } else {
        format!("{s} s")
    }
}

/// The largest value a length can take.
fn longest(d: &LengthDist) -> u64 {
    match *d {
        LengthDist::Fixed { value } => value as u64,
        LengthDist::Uniform { max, .. }
        | LengthDist::Normal { max, .. }
        | LengthDist::Lognormal { max, .. } => max as u64,
    }
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

fn scenario(c: &Config, i: usize, s: &Scenario) -> Result<(), ConfigError> {
    let line = s.name.line;
    let sp = format!("scenarios[{i}]");
    let v = At { c, near: line };
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
    load(c, &sp, s, &s.load)?;
    if let Some(d) = &s.duration {
        v.duration(
            d.value,
            d.line,
            &format!("{sp}.duration"),
            true,
            MAX_DURATION,
        )?;
    }
    if let Some(n) = s.requests {
        v.count(
            0,
            &format!("{sp}.requests"),
            n.into(),
            1,
            MAX_REQUESTS.into(),
            "",
        )?;
    }
    if let Some(d) = s.warmup {
        v.duration(d, 0, &format!("{sp}.warmup"), false, MAX_DURATION)?;
    }
    if let Some(n) = s.max_in_flight {
        v.count(
            0,
            &format!("{sp}.max_in_flight"),
            n.into(),
            1,
            MAX_IN_FLIGHT.into(),
            "",
        )?;
    }
    if let Some(n) = s.retries {
        v.count(
            0,
            &format!("{sp}.retries"),
            n.into(),
            0,
            MAX_RETRIES.into(),
            "",
        )?;
    }
    if let Some(d) = s.retry_backoff {
        v.duration(
            d,
            0,
            &format!("{sp}.retry_backoff"),
            false,
            MAX_RETRY_BACKOFF,
        )?;
    }
    if let Some(n) = s.stop.as_ref().and_then(|st| st.min_requests) {
        v.count(
            0,
            &format!("{sp}.stop.min_requests"),
            n.into(),
            0,
            MAX_REQUESTS.into(),
            "",
        )?;
    }
    if !s.arms.is_empty() {
        arms(&v, &sp, s)?;
    }
    for t in &s.thresholds {
        Threshold::parse(t).map_err(|e| c.error(t.line, "thresholds", e.to_string()))?;
    }
    workload(c, &sp, s)?;
    if let Some(slo) = &s.slo {
        slo_ok(&v, &sp, line, slo)?;
    }
    Ok(())
}

/// Routing arms: known names or pickers, each once, finite weights, a flat load with a duration,
/// and windows within the limit.
fn arms(v: &At<'_>, sp: &str, s: &Scenario) -> Result<(), ConfigError> {
    let (c, line) = (v.c, s.name.line);
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
    for (j, a) in s.arms.iter().enumerate() {
        let ok = match a {
            crate::file::Arm::Named(n) => matches!(
                n.as_str(),
                "direct" | "proxy-rr" | "epp" | "round-robin" | "random" | "least-request"
            ),
            crate::file::Arm::Custom(cfg) => cfg
                .picker
                .as_deref()
                .is_none_or(|p| matches!(p, "epp" | "round-robin" | "random" | "least-request")),
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
        if let crate::file::Arm::Custom(cfg) = a {
            for (x, name) in [
                (cfg.queue, "queue"),
                (cfg.kv_cache, "kv_cache"),
                (cfg.prefix, "prefix"),
                (cfg.lora, "lora"),
                (cfg.queue_threshold, "queue_threshold"),
                (cfg.kv_threshold, "kv_threshold"),
            ] {
                if let Some(x) = x {
                    v.float(x, 0, &format!("{sp}.arms[{j}].{name}"))?;
                }
            }
        }
    }
    if let Some(wd) = s.arm_window {
        let path = format!("{sp}.arm_window");
        v.duration(wd, 0, &path, true, MAX_DURATION)?;
        if let Some(d) = &s.duration {
            let windows = d.value.0.as_secs_f64() / wd.0.as_secs_f64();
            if windows > MAX_ARM_WINDOWS {
                return Err(v.err(
                    0,
                    &path,
                    format!(
                        "{} s windows over {} make {windows:.0} windows, above the limit of {MAX_ARM_WINDOWS}",
                        wd.0.as_secs_f64(),
                        show_duration(d.value.0)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `slo`: a percentile in (0, 100], at least one limit, limits within the longest duration.
fn slo_ok(v: &At<'_>, sp: &str, line: u64, slo: &crate::file::Slo) -> Result<(), ConfigError> {
    let c = v.c;
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
    for (d, name) in [(slo.ttft, "ttft"), (slo.tpot, "tpot"), (slo.e2e, "e2e")] {
        if let Some(d) = d {
            v.duration(d, 0, &format!("{sp}.slo.{name}"), false, MAX_DURATION)?;
        }
    }
    Ok(())
}

/// `shared_prefix`: groups, prompts per group, a prefix that with the longest prompt stays within
/// the token limit. Returns the longest prompt with its prefix.
fn shared_prefix_ok(
    v: &At<'_>,
    wp: &str,
    sh: &crate::file::SharedPrefix,
    mut prompt_max: u64,
) -> Result<u64, ConfigError> {
    let pp = format!("{wp}.shared_prefix");
    v.int(
        &sh.groups,
        &format!("{pp}.groups"),
        1,
        MAX_PREFIX_GROUPS,
        "",
    )?;
    v.int(
        &sh.prompts_per_group,
        &format!("{pp}.prompts_per_group"),
        1,
        MAX_PREFIX_GROUPS,
        "",
    )?;
    let tokens_limit = i64::try_from(MAX_TOKENS).unwrap_or(i64::MAX);
    v.int(
        &sh.prefix_tokens,
        &format!("{pp}.prefix_tokens"),
        0,
        tokens_limit,
        " tokens",
    )?;
    prompt_max += sh.prefix_tokens.value.unsigned_abs();
    if prompt_max > MAX_TOKENS {
        return Err(v.err(
            sh.prefix_tokens.line,
            &format!("{pp}.prefix_tokens"),
            format!(
                "a prefix of {} tokens and a prompt of up to {} make {prompt_max} tokens, above the limit of {MAX_TOKENS} tokens per request",
                sh.prefix_tokens.value,
                prompt_max - sh.prefix_tokens.value.unsigned_abs()
            ),
        ));
    }
    Ok(prompt_max)
}

/// `multi_turn`: turns, think time, and a last turn (which carries every earlier prompt and
/// answer) within the token limit.
fn multi_turn_ok(
    v: &At<'_>,
    wp: &str,
    m: &crate::file::MultiTurn,
    prompt_max: u64,
    output_max: u64,
) -> Result<(), ConfigError> {
    let mp = format!("{wp}.multi_turn");
    v.int(&m.turns, &format!("{mp}.turns"), 2, MAX_TURNS, "")?;
    if let Some(d) = m.think_time {
        v.duration(d, 0, &format!("{mp}.think_time"), false, MAX_THINK_TIME)?;
    }
    // The last turn carries every earlier prompt and answer.
    let turns = m.turns.value.unsigned_abs();
    let whole = turns.saturating_mul(prompt_max.saturating_add(output_max));
    if whole > MAX_TOKENS {
        return Err(v.err(
            m.turns.line,
            &format!("{mp}.turns"),
            format!(
                "{turns} turns of up to {prompt_max} prompt + {output_max} output tokens make a last request of up to {whole} tokens, above the limit of {MAX_TOKENS} tokens per request"
            ),
        ));
    }
    Ok(())
}

/// `trace`: its scales and limits, and the file read to the end now (its errors name the
/// trace's line and column).
fn trace_ok(v: &At<'_>, wp: &str, t: &crate::file::TraceSpec) -> Result<(), ConfigError> {
    let tp = format!("{wp}.trace");
    for (x, name) in [(&t.time_scale, "time_scale"), (&t.rate_scale, "rate_scale")] {
        if let Some(x) = x
            && !(x.value.is_finite() && x.value > 0.0 && x.value <= 1e6)
        {
            return Err(v.err(
                x.line,
                &format!("{tp}.{name}"),
                format!("must be a number > 0 and ≤ 1000000, got {}", x.value),
            ));
        }
    }
    if let Some(n) = &t.limit {
        v.int(n, &format!("{tp}.limit"), 1, MAX_REQUESTS as i64, "")?;
    }
    if let Some(d) = t.start {
        v.duration(d, 0, &format!("{tp}.start"), false, MAX_DURATION)?;
    }
    crate::trace::load(v.c, t).map_err(|e| match e {
        crate::trace::Error::Format(name) => v.err(
            t.format.as_ref().map_or(0, |f| f.line),
            &format!("{tp}.format"),
            format!("unknown trace format `{name}` (known: azure, mooncake, burstgpt, inferbench)"),
        ),
        crate::trace::Error::Trace(e) => ConfigError::Flag(format!(
            "{e} (the trace of {tp}, {}:{})",
            v.c.origin,
            if t.path.line > 0 { t.path.line } else { v.near }
        )),
        crate::trace::Error::Empty => v.err(
            t.path.line,
            &format!("{tp}.path"),
            "the trace's selection (start, limit) leaves no request",
        ),
    })?;
    Ok(())
}

/// `prompts_file`: a readable file, read to the end now, so a bad line is found before any
/// request, not in the middle of a run. Its errors name the JSONL line and the YAML line.
fn prompts_file_ok(v: &At<'_>, sp: &str, wp: &str, pf: &Loc<String>) -> Result<(), ConfigError> {
    let (c, line) = (v.c, v.near);
    let path = c.relative(pf);
    let field = format!("{wp}.prompts_file");
    if !path.is_file() {
        return Err(v.err(
            pf.line,
            &field,
            format!("{} is not a readable file", path.display()),
        ));
    }
    // Read to the end now: a bad line is found before any request, not in the middle of a
    // run.
    let yaml_line = if pf.line > 0 {
        pf.line
    } else {
        crate::yaml::line_of(&c.text, &field).unwrap_or(line)
    };
    crate::prompts::check_prompts_file(&path).map_err(|e| match e {
        ConfigError::Read { path, message } => {
            v.err(pf.line, &field, format!("cannot read {path}: {message}"))
        }
        ConfigError::At {
            file,
            line: jsonl_line,
            field: json_field,
            message,
        } => ConfigError::At {
            file,
            line: jsonl_line,
            field: json_field,
            message: format!(
                "{message} (the prompts_file of {sp}, {}:{yaml_line})",
                c.origin
            ),
        },
        flag @ ConfigError::Flag(_) => flag,
    })?;
    Ok(())
}

fn workload(c: &Config, sp: &str, s: &Scenario) -> Result<(), ConfigError> {
    let line = s.name.line;
    let v = At { c, near: line };
    let w = &s.workload;
    let wp = format!("{sp}.workload");
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
    for (t, name) in [
        (&w.prompt_tokens, "prompt_tokens"),
        (&w.output_tokens, "output_tokens"),
    ] {
        if let Some(t) = t {
            v.tokens(t, &format!("{wp}.{name}"))?;
        }
    }
    for (mix, name) in [(&w.prompt_mix, "prompt_mix"), (&w.output_mix, "output_mix")] {
        let mut total = 0.0;
        for (j, m) in mix.iter().enumerate() {
            v.tokens(&m.tokens, &format!("{wp}.{name}[{j}].tokens"))?;
            total += v.weight(m.weight.as_ref(), &format!("{wp}.{name}[{j}].weight"))?;
        }
        if !mix.is_empty() && total <= 0.0 {
            return Err(v.err(0, &format!("{wp}.{name}"), "every weight is 0"));
        }
    }
    // Models and adapters are drawn from one mix.
    let mut total = 0.0;
    for (list, name) in [(&w.models, "models"), (&w.lora, "lora")] {
        for (j, m) in list.iter().enumerate() {
            let m: &Weighted = m;
            total += v.weight(m.weight.as_ref(), &format!("{wp}.{name}[{j}].weight"))?;
        }
    }
    if !(w.models.is_empty() && w.lora.is_empty()) && total <= 0.0 {
        let list = if w.models.is_empty() {
            "lora"
        } else {
            "models"
        };
        return Err(v.err(
            0,
            &format!("{wp}.{list}"),
            "every weight of models and lora is 0",
        ));
    }
    // The longest prompt and output one request can have.
    let (p, o) = s.workload.lengths();
    let longest_of = |mix: &[crate::file::WeightedTokens], d: &LengthDist| {
        mix.iter()
            .map(|m| longest(&m.tokens.0))
            .max()
            .unwrap_or_else(|| longest(d))
    };
    let (mut prompt_max, output_max) =
        (longest_of(&w.prompt_mix, &p), longest_of(&w.output_mix, &o));
    if let Some(sh) = &w.shared_prefix {
        prompt_max = shared_prefix_ok(&v, &wp, sh, prompt_max)?;
    }
    if let Some(m) = &w.multi_turn {
        multi_turn_ok(&v, &wp, m, prompt_max, output_max)?;
    }
    if let Some(pf) = &w.prompts_file {
        prompts_file_ok(&v, sp, &wp, pf)?;
    }
    if let Some(t) = &w.trace {
        if w.prompts_file.is_some() || w.shared_prefix.is_some() || w.multi_turn.is_some() {
            return Err(v.err(
                t.path.line,
                &format!("{wp}.trace"),
                "a trace gives the requests: drop prompts_file, shared_prefix and multi_turn",
            ));
        }
        trace_ok(&v, &wp, t)?;
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
    Ok(())
}

fn load(c: &Config, sp: &str, s: &Scenario, l: &LoadSpec) -> Result<(), ConfigError> {
    let line = s.name.line;
    let v = At { c, near: line };
    let lp = format!("{sp}.load");
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
    let trace = s.workload.trace.is_some();
    if kinds == 0 && trace {
        // The trace's own instants.
        if !s.arms.is_empty() {
            return Err(c.error(
                line,
                "arms",
                format!(
                    "scenario `{}` replays a trace at its own instants and has arms: arms alternate windows of one load, so give a `load` (the trace's lengths at that pace) or drop the arms",
                    *s.name
                ),
            ));
        }
        return Ok(());
    }
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
        v.rate(r, &format!("{lp}.rate"), false, REQ_S)?;
    }
    if let Some(n) = &l.concurrency {
        v.int(n, &format!("{lp}.concurrency"), 1, MAX_CONCURRENCY, "")?;
    }
    if (l.rate.is_some() || l.concurrency.is_some())
        && s.duration.is_none()
        && s.requests.is_none()
        && !trace
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
        stages_ok(&v, &lp, line, stages)?;
    }
    if let Some(sw) = &l.sweep {
        sweep_ok(&v, &lp, sw)?;
    }
    if let Some(st) = &l.stress {
        stress_ok(&v, &lp, line, st)?;
    }
    if let Some(u) = &l.users {
        users_ok(&v, &lp, u)?;
    }
    Ok(())
}

/// The unit of open-loop rates in messages.
const REQ_S: &str = "requests/s";

/// `load.stages`: at least one, each with a duration and a level of the same kind.
fn stages_ok(v: &At<'_>, lp: &str, line: u64, stages: &[Stage]) -> Result<(), ConfigError> {
    let c = v.c;
    if stages.is_empty() {
        return Err(c.error(line, "load.stages", "lists no stage"));
    }
    v.count(
        0,
        &format!("{lp}.stages"),
        stages.len() as i128,
        1,
        MAX_STEPS.into(),
        " stages",
    )?;
    let open = stages[0].rate.is_some();
    for (k, st) in stages.iter().enumerate() {
        let stp = format!("{lp}.stages[{k}]");
        v.duration(
            st.duration.value,
            st.duration.line,
            &format!("{stp}.duration"),
            true,
            MAX_DURATION,
        )?;
        match (&st.rate, &st.concurrency) {
            (Some(r), None) if open => v.rate(r, &format!("{stp}.rate"), true, REQ_S)?,
            (None, Some(n)) if !open => {
                v.int(n, &format!("{stp}.concurrency"), 0, MAX_CONCURRENCY, "")?;
            }
            _ => {
                return Err(c.error(
                    st.duration.line,
                    "stages",
                    "each stage needs `rate` or `concurrency`, the same kind in every stage",
                ));
            }
        }
    }
    Ok(())
}

/// `load.sweep`: its rate count, concurrency and step duration.
fn sweep_ok(v: &At<'_>, lp: &str, sw: &Sweep) -> Result<(), ConfigError> {
    let wp = format!("{lp}.sweep");
    if let Some(k) = &sw.rates {
        v.count(
            k.line,
            &format!("{wp}.rates"),
            k.value.into(),
            1,
            MAX_STEPS.into(),
            "",
        )?;
    }
    if let Some(m) = &sw.max_concurrency {
        v.int(m, &format!("{wp}.max_concurrency"), 1, MAX_CONCURRENCY, "")?;
    }
    v.duration(
        sw.duration.value,
        sw.duration.line,
        &format!("{wp}.duration"),
        true,
        MAX_DURATION,
    )?;
    Ok(())
}

/// `load.stress`: rates (start, step, max) or a concurrency list, a step duration, limits.
fn stress_ok(v: &At<'_>, lp: &str, line: u64, st: &Stress) -> Result<(), ConfigError> {
    let c = v.c;
    let xp = format!("{lp}.stress");
    match (&st.start, &st.step, &st.max, &st.concurrency) {
        (Some(start), Some(step), Some(max), None) => {
            v.rate(start, &format!("{xp}.start"), false, REQ_S)?;
            v.rate(step, &format!("{xp}.step"), false, REQ_S)?;
            v.rate(max, &format!("{xp}.max"), false, REQ_S)?;
            if max.value < start.value {
                return Err(c.error(max.line, "stress.max", "must be at least `start`"));
            }
            let steps = ((max.value - start.value) / step.value).floor() + 1.0;
            if steps > MAX_STEPS as f64 {
                return Err(v.err(
                    step.line,
                    &format!("{xp}.step"),
                    format!(
                        "steps of {} from {} to {} make {steps} steps, above the limit of {MAX_STEPS}",
                        step.value, start.value, max.value
                    ),
                ));
            }
        }
        (None, None, None, Some(levels)) if !levels.is_empty() => {
            v.count(
                0,
                &format!("{xp}.concurrency"),
                levels.len() as i128,
                1,
                MAX_STEPS.into(),
                " levels",
            )?;
            for (k, n) in levels.iter().enumerate() {
                v.int(n, &format!("{xp}.concurrency[{k}]"), 1, MAX_CONCURRENCY, "")?;
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
    v.duration(
        st.step_duration.value,
        st.step_duration.line,
        &format!("{xp}.step_duration"),
        true,
        MAX_DURATION,
    )?;
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
    Ok(())
}

/// `load.users`: users, spawn rate, hold duration, and a ramp within the longest duration.
fn users_ok(v: &At<'_>, lp: &str, u: &Users) -> Result<(), ConfigError> {
    let up = format!("{lp}.users");
    v.int(&u.users, &format!("{up}.users"), 1, MAX_CONCURRENCY, "")?;
    v.rate(&u.spawn_rate, &format!("{up}.spawn_rate"), false, "users/s")?;
    v.duration(
        u.duration.value,
        u.duration.line,
        &format!("{up}.duration"),
        false,
        MAX_DURATION,
    )?;
    let ramp = u.users.value as f64 / u.spawn_rate.value;
    if ramp > MAX_DURATION.as_secs_f64() {
        return Err(v.err(
            u.spawn_rate.line,
            &format!("{up}.spawn_rate"),
            format!(
                "{} users at {} users/s make a ramp of {ramp} s, above the limit of {}",
                u.users.value,
                u.spawn_rate.value,
                show_duration(MAX_DURATION)
            ),
        ));
    }
    Ok(())
}
