//! `inferbench mock fit RUN_DIR|report.json -o profile.yaml`: a digital twin of a measured
//! server — the mock's settings fitted from a run at several loads, written as a fleet file that
//! `inferbench mock --profile` serves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use inferbench_mock::fit::{StepFigures, fit};
use inferbench_results::run::RunResult;
use inferbench_results::suite::ScenarioReport;

/// Flags of `inferbench mock fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// A run's folder (holding report.json) or a report.json: a `sweep` or `stages` scenario
    /// run against the server to copy, streaming, ideally with its /metrics scraped
    /// (`--server-metrics target`).
    run: PathBuf,
    /// Where to write the profile (a fleet file for `inferbench mock --profile`).
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// The scenario of the run to fit from (default: the first with several steps).
    #[arg(long)]
    scenario: Option<String>,
    /// The model name the twin serves (default: the one the run asked for).
    #[arg(long)]
    model: Option<String>,
    /// The server's max concurrency (e.g. llama-server's --parallel), if its metrics do not
    /// show it.
    #[arg(long)]
    max_num_seqs: Option<usize>,
    /// Instances in the twin's fleet.
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

/// What one step of a report says, for the fit.
pub fn figures(name: &str, r: &RunResult) -> StepFigures {
    let l = &r.total.latency;
    let c = &r.total.counts;
    let per_ok = |n: u64| {
        if c.ok > 0 {
            n as f64 / c.ok as f64
        } else {
            0.0
        }
    };
    let server = r.server.as_ref();
    StepFigures {
        name: name.to_string(),
        open_loop: r.target_rate.is_some(),
        concurrency: closed_level(&r.load),
        rate: r.achieved_rate(),
        e2e_mean_ms: l.e2e.summary().mean_us / 1000.0,
        ttft_p50_ms: l.ttft.summary().p50_us as f64 / 1000.0,
        itl_p50_ms: l.itl.summary().p50_us as f64 / 1000.0,
        itl_p90_ms: l.itl.summary().p90_us as f64 / 1000.0,
        itl_mean_ms: l.itl.summary().mean_us / 1000.0,
        prompt_tokens: per_ok(c.input_tokens),
        output_tokens: per_ok(c.output_tokens),
        running_max: server.and_then(|v| v.gauges.get("running")).map(|g| g.max),
        // The server's prompt time per prompt token: its prompt seconds (llama.cpp), else its
        // prefill histogram (vLLM) over the prompt tokens it counted.
        server_prefill_ms_per_token: server.and_then(|v| {
            let t = *v.counters.get("prompt_tokens")?;
            let s = v.counters.get("prompt_seconds").copied().or_else(|| {
                let h = v.histograms.get("prefill")?;
                (h.count > 0.0).then_some(h.sum_s)
            })?;
            (t > 0.0 && s > 0.0).then(|| s * 1000.0 / t)
        }),
    }
}

/// A closed loop's level from its load label (`concurrency 4`, a stage's `users 4.00`; not a
/// ramp `users 0.00→8.00`).
fn closed_level(label: &str) -> Option<f64> {
    let rest = label
        .strip_prefix("concurrency ")
        .or_else(|| label.strip_prefix("users "))?;
    rest.trim().parse().ok()
}

/// The scenario to fit from: the one named, else the first with several steps.
fn pick<'a>(
    scenarios: &'a [ScenarioReport],
    name: Option<&str>,
    file: &Path,
) -> anyhow::Result<&'a ScenarioReport> {
    match name {
        Some(n) => scenarios.iter().find(|s| s.name == n).with_context(|| {
            format!(
                "{}: no scenario `{n}` (it has: {})",
                file.display(),
                scenarios.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        }),
        None => scenarios
            .iter()
            .find(|s| s.stages.len() >= 2)
            .with_context(|| format!("{}: no scenario has several steps: fit from a sweep or stages run (several loads)", file.display())),
    }
}

/// Runs `mock fit`.
pub fn run(a: FitArgs) -> anyhow::Result<()> {
    let report = crate::report_cmd::load_report(&a.run)?;
    let s = pick(&report.scenarios, a.scenario.as_deref(), &a.run)?;
    let mut steps: Vec<StepFigures> = s
        .stages
        .iter()
        .map(|st| figures(&st.name, &st.result))
        .collect();
    // The mock counts the prompt it is sent; a real server counts it with its chat template.
    // With the run's request logs, prompt figures are put in the tokens the twin will count.
    if let Some(r) = sent_per_counted(&a.run) {
        for st in &mut steps {
            st.prompt_tokens *= r;
            st.server_prefill_ms_per_token = st.server_prefill_ms_per_token.map(|p| p / r);
        }
    }
    let model = match &a.model {
        Some(m) => m.clone(),
        None => s
            .total
            .by_model
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "mock-model".into()),
    };
    if a.instances == 0 {
        bail!("--instances must be at least 1");
    }
    let f = fit(&steps, &model, a.max_num_seqs)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.run.display()))?;
    f.instance
        .validate()
        .map_err(|e| anyhow::anyhow!("the fitted settings are out of the mock's bounds: {e}"))?;
    let text = profile_yaml(&f, &a, s);
    std::fs::write(&a.out, &text).with_context(|| format!("cannot write {}", a.out.display()))?;
    print!("{}", table(&f));
    for n in &f.notes {
        eprintln!("note: {n}");
    }
    eprintln!(
        "wrote {}: serve it with `inferbench mock --profile {} --port 8000`",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

/// Prompt tokens sent per prompt token the server counted, from the run folder's request logs
/// (`--log-requests`: `prompt_len` beside the server's `prompt_tokens`); `None` without them.
fn sent_per_counted(run: &Path) -> Option<f64> {
    let dir = if run.is_dir() { run } else { run.parent()? };
    let (mut sent, mut counted) = (0u64, 0u64);
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with("requests-") && name.ends_with(".jsonl")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(p), Some(c)) = (v["prompt_len"].as_u64(), v["prompt_tokens"].as_u64()) {
                sent += p;
                counted += c;
            }
        }
    }
    (sent > 0 && counted > 0).then(|| sent as f64 / counted as f64)
}

/// The fit, step by step: measured beside the model.
fn table(f: &inferbench_mock::fit::Fitted) -> String {
    let mut o = String::from(
        "step                     batch  queued  TTFT p50 ms (model)   ITL p50 ms (model)\n",
    );
    for r in &f.rows {
        let _ = writeln!(
            o,
            "{:<24} {:>5.2} {:>7.2}  {:>9.2} ({:>9})  {:>8.2} ({:>7.2})",
            r.name,
            r.batch,
            r.queued,
            r.ttft_p50_ms,
            r.ttft_model_ms
                .map_or("queued".into(), |m| format!("{m:.2}")),
            r.itl_p50_ms,
            r.itl_model_ms
        );
    }
    o
}

/// The profile: a fleet file with the fitted defaults, and how it was made in comments.
fn profile_yaml(f: &inferbench_mock::fit::Fitted, a: &FitArgs, s: &ScenarioReport) -> String {
    let i = &f.instance;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# A digital twin fitted by `inferbench mock fit` from {}",
        a.run.display()
    );
    let _ = writeln!(
        o,
        "# (scenario `{}` against {}, {} steps).",
        s.name,
        s.url,
        s.stages.len()
    );
    let _ = writeln!(
        o,
        "# Serve it: inferbench mock --profile {} --port 8000",
        a.out.display()
    );
    o.push_str("#\n");
    for line in table(f).lines() {
        let _ = writeln!(o, "# {line}");
    }
    for n in &f.notes {
        let _ = writeln!(o, "# note: {n}");
    }
    o.push_str("defaults:\n");
    let model = serde_json::to_string(&i.model).unwrap_or_else(|_| "\"mock-model\"".into());
    let _ = writeln!(o, "  model: {model}");
    let _ = writeln!(o, "  ttft_ms: {}", i.ttft_ms);
    let _ = writeln!(o, "  prefill_ms_per_token: {}", i.prefill_ms_per_token);
    let _ = writeln!(o, "  prefill_slowdown: {}", i.prefill_slowdown);
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        o,
        "  # measured factors by requests running (1, 2, …): prefill, then ITL"
    );
    let _ = writeln!(o, "  prefill_factors: [{}]", list(&i.prefill_factors));
    let _ = writeln!(o, "  itl_factors: [{}]", list(&i.itl_factors));
    let _ = writeln!(o, "  itl_ms: {}", i.itl_ms);
    let _ = writeln!(o, "  decode_slowdown: {}", i.decode_slowdown);
    let _ = writeln!(o, "  prefill_stall: {}", i.prefill_stall);
    let _ = writeln!(o, "  max_num_seqs: {}", i.max_num_seqs);
    let _ = writeln!(o, "  kv_blocks: {}", i.kv_blocks);
    let _ = writeln!(o, "  jitter: {}", i.jitter);
    o.push_str("pools:\n");
    let _ = writeln!(o, "  - name: twin\n    instances: {}", a.instances);
    o
}
