//! `inferbench merge`: the reports of one run's shards (`run --shard I/N`) merged exactly and
//! judged again (`inferbench_runner::merge`), written like a run's report (report.json, .md,
//! .html, .csv) and summed up on the console, ending with the verdict.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use inferbench_report::console::Outcome;
use inferbench_results::suite::Report;

/// Flags of `inferbench merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard reports: report.json files, files whose last line is one (a pod's log with
    /// `--report-stdout`), or directories holding them (each `*.json`, `*.log` and
    /// `*/report.json` inside).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where the merged report goes (default results/<UTC time>/).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The files `p` names: itself, or the shard reports in a directory.
fn files_of(p: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !p.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(p).with_context(|| format!("cannot read directory {}", p.display()))?;
    for e in entries.flatten() {
        let path = e.path();
        let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
        if path.is_dir() && path.join("report.json").is_file() {
            found.push(path.join("report.json"));
        } else if path.is_file() && (ext == "json" || ext == "log") {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        anyhow::bail!("{}: no *.json, *.log or */report.json inside", p.display());
    }
    Ok(found)
}

/// The report in `text`: the whole text, else its last non-empty line (a pod's log).
fn report_in(path: &Path, text: &str) -> anyhow::Result<Report> {
    if let Ok(r) = Report::from_json(text) {
        return Ok(r);
    }
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Report::from_json(last).with_context(|| {
        format!(
            "{}: neither the file nor its last line is an inferbench report",
            path.display()
        )
    })
}

/// Merges; exit code 0 when the merged run passes, 99 when a threshold or SLO fails.
pub fn run(a: MergeArgs) -> anyhow::Result<u8> {
    let mut reports = Vec::new();
    for input in &a.inputs {
        for f in files_of(input)? {
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            reports.push((f.display().to_string(), report_in(&f, &text)?));
        }
    }
    let n = reports.len();
    let merged = inferbench_runner::merge::merge(reports)?;
    let dir = a.out.unwrap_or_else(crate::output::default_dir);
    crate::output::prepare_out(&dir)?;
    for s in &merged.scenarios {
        print!("{}", inferbench_report::console::scenario(s));
    }
    let plan = merged.shard.as_ref().map_or("", |s| s.plan.as_str());
    println!("\nmerged {n} shards of {plan}");
    match crate::output::save(&dir, &merged) {
        Some(at) => println!("report: {}", at.join("report.json").display()),
        None => println!("report: NOT WRITTEN (see the errors above)"),
    }
    let verdict = inferbench_report::console::verdict(&merged);
    println!("{}", verdict.line);
    Ok(match verdict.outcome {
        Outcome::Pass => 0,
        Outcome::Fail => crate::run_cmd::EXIT_THRESHOLDS,
        Outcome::Interrupted => 130,
    })
}
