//! `inferbench report`, `compare`, `history` and `baseline`: saved runs re-rendered, compared and
//! kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use inferbench_report::compare::{self, Rules, Verdict};
use inferbench_report::history::{self, History, HistoryError};
use inferbench_results::suite::Report;

/// Where runs are recorded unless told otherwise (beside the default report folders).
pub const DEFAULT_HISTORY: &str = "results/history.db";

/// Exit code of `compare` for input it cannot use.
const EXIT_UNUSABLE: u8 = 2;

/// Output formats of `inferbench report`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// Markdown tables.
    Md,
    /// One self-contained HTML page with charts.
    Html,
    /// The canonical JSON (current schema).
    Json,
    /// One row per scenario, stage and arm.
    Csv,
}

/// `inferbench report DIR|report.json`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's folder (holding report.json) or a report.json file.
    pub input: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Output formats of `inferbench compare` and `history`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TableFormat {
    /// Plain text for a terminal.
    Text,
    /// Markdown (a pull-request comment).
    Md,
    /// JSON.
    Json,
}

/// `inferbench compare BASELINE CURRENT`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// BASELINE CURRENT, or only CURRENT with --baseline NAME. Each is a run folder, a
    /// report.json, a run id from `inferbench history` (`12` or `#12`), or `latest`.
    #[arg(num_args = 1..=2, required = true)]
    pub runs: Vec<String>,
    /// Compare against the named baseline in history (`inferbench baseline set`).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TableFormat,
    /// Print only regressions.
    #[arg(long, short)]
    pub quiet: bool,
    /// The history store (for run ids, `latest` and --baseline).
    #[arg(long, env = "INFERBENCH_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// Significance level of the rank test on latency distributions.
    #[arg(long, default_value_t = Rules::default().alpha)]
    pub alpha: f64,
    /// Smallest change of a median, %, that counts as a regression or improvement.
    #[arg(long, default_value_t = Rules::default().min_effect_pct)]
    pub min_effect: f64,
    /// FAIL when a p95 grows more than this, % (beyond its confidence interval).
    #[arg(long, default_value_t = Rules::default().fail_p95_pct)]
    pub fail_p95: f64,
    /// WARN when a p95 grows more than this, %.
    #[arg(long, default_value_t = Rules::default().warn_p95_pct)]
    pub warn_p95: f64,
    /// WARN when a p50 moves more than this, %.
    #[arg(long, default_value_t = Rules::default().warn_p50_pct)]
    pub warn_p50: f64,
    /// WARN when throughput moves more than this, %.
    #[arg(long, default_value_t = Rules::default().warn_throughput_pct)]
    pub warn_throughput: f64,
    /// FAIL when the current error rate exceeds this, %.
    #[arg(long, default_value_t = Rules::default().max_error_rate_pct)]
    pub max_error_rate: f64,
}

/// `inferbench history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show this scenario's trend across runs instead of the list of runs.
    #[arg(long)]
    pub scenario: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TableFormat,
    /// The history store.
    #[arg(long, env = "INFERBENCH_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
}

/// `inferbench baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub action: BaselineAction,
    /// The history store.
    #[arg(long, global = true, env = "INFERBENCH_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
}

/// What to do with baselines.
#[derive(Debug, Subcommand)]
pub enum BaselineAction {
    /// Name a recorded run as a baseline (`compare --baseline NAME` then compares with it).
    Set {
        /// A run id from `inferbench history` (`12` or `#12`), or `latest`.
        run: String,
        /// The baseline's name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List the baselines.
    List,
}

/// Reads a report: `path` is a run folder (holding report.json) or the file itself.
pub fn load_report(path: &Path) -> anyhow::Result<Report> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    Report::from_json(&text).with_context(|| format!("{}", file.display()))
}

/// The git commit to record with a run: `INFERBENCH_GIT_COMMIT`, `GITHUB_SHA`, or the commit of
/// the current directory's repository.
fn git_commit() -> Option<String> {
    for var in ["INFERBENCH_GIT_COMMIT", "GITHUB_SHA"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return Some(v.trim().to_string());
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}

/// Records a finished run; returns its id and the database's path.
pub fn record_history(
    db: &Path,
    report: &Report,
    dir: &Path,
) -> Result<(i64, PathBuf), HistoryError> {
    let json = dir.join("report.json");
    let path = std::fs::canonicalize(&json).unwrap_or(json);
    let mut h = History::open_or_create(db)?;
    let id = h.record(report, &path.display().to_string(), git_commit().as_deref())?;
    Ok((id, db.to_path_buf()))
}

/// A run id (`12`, `#12`) or `latest`, if `s` is one.
fn run_ref(h: &History, s: &str) -> anyhow::Result<i64> {
    if s == "latest" {
        return match h.latest()? {
            Some(r) => Ok(r.id),
            None => bail!("history {} holds no run yet", h.path().display()),
        };
    }
    match s.trim_start_matches('#').parse::<i64>() {
        Ok(id) => Ok(h.run(id)?.id),
        Err(_) => bail!(
            "`{s}` is neither a report (no such file or folder) nor a run id (`12`, `#12`, `latest`)"
        ),
    }
}

/// Resolves a compare argument to a report and a label.
fn resolve(arg: &str, history: &Path) -> anyhow::Result<(Report, String)> {
    let p = Path::new(arg);
    if p.exists() {
        return Ok((load_report(p)?, arg.to_string()));
    }
    let h = History::open_existing(history).with_context(|| {
        format!("`{arg}` is not a file or folder, so it was looked up in history")
    })?;
    let id = run_ref(&h, arg)?;
    let run = h.run(id)?;
    let report = load_report(Path::new(&run.report_path))
        .with_context(|| format!("run #{id} of history {}", history.display()))?;
    Ok((report, format!("run #{id}")))
}

/// `inferbench report`.
pub fn report(a: ReportArgs) -> anyhow::Result<u8> {
    let r = load_report(&a.input)?;
    let text = match a.format {
        ReportFormat::Md => inferbench_report::markdown::render(&r),
        ReportFormat::Html => inferbench_report::html::render(&r),
        ReportFormat::Json => serde_json::to_string_pretty(&r)? + "\n",
        ReportFormat::Csv => inferbench_report::csv::render(&r),
    };
    match a.out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print(&text),
    }
    Ok(0)
}

fn print(s: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

/// `inferbench compare`: 0 pass, 1 regression, 2 unusable input.
pub fn compare(a: CompareArgs) -> anyhow::Result<u8> {
    let rules = Rules {
        alpha: a.alpha,
        min_effect_pct: a.min_effect,
        fail_p95_pct: a.fail_p95,
        warn_p95_pct: a.warn_p95,
        warn_p50_pct: a.warn_p50,
        warn_throughput_pct: a.warn_throughput,
        max_error_rate_pct: a.max_error_rate,
        ..Rules::default()
    };
    let loaded = (|| -> anyhow::Result<_> {
        if !(rules.alpha > 0.0 && rules.alpha < 1.0) {
            bail!("--alpha must be between 0 and 1, got {}", rules.alpha);
        }
        let (base, cur) = match (&a.baseline, a.runs.as_slice()) {
            (Some(name), [current]) => {
                let h = History::open_existing(&a.history)?;
                let run = h.baseline(name)?;
                let base = load_report(Path::new(&run.report_path)).with_context(|| {
                    format!(
                        "baseline `{name}` (run #{}) of history {}",
                        run.id,
                        a.history.display()
                    )
                })?;
                (
                    (base, format!("baseline `{name}` (run #{})", run.id)),
                    resolve(current, &a.history)?,
                )
            }
            (Some(_), _) => bail!("with --baseline NAME give only CURRENT"),
            (None, [base, current]) => (resolve(base, &a.history)?, resolve(current, &a.history)?),
            (None, _) => bail!("give BASELINE and CURRENT (or --baseline NAME and CURRENT)"),
        };
        let c = compare::compare(&base.0, &cur.0, &rules)?;
        Ok((base.1, cur.1, c))
    })();
    let (base_label, cur_label, c) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(EXIT_UNUSABLE);
        }
    };
    match a.format {
        TableFormat::Text => {
            if !a.quiet {
                print(&format!("baseline: {base_label}\ncurrent:  {cur_label}\n"));
            }
            print(&compare::to_text(&c, a.quiet));
        }
        TableFormat::Md => print(&compare::to_markdown(&c, a.quiet)),
        TableFormat::Json => print(&(serde_json::to_string_pretty(&c)? + "\n")),
    }
    Ok(if c.verdict() == Verdict::Regression {
        1
    } else {
        0
    })
}

/// `inferbench history`.
pub fn history(a: HistoryArgs) -> anyhow::Result<u8> {
    let h = History::open_existing(&a.history)?;
    let style = match a.format {
        TableFormat::Md => history::Style::Markdown,
        TableFormat::Text | TableFormat::Json => history::Style::Text,
    };
    let json = matches!(a.format, TableFormat::Json);
    match &a.scenario {
        None => {
            let runs = h.runs(a.limit)?;
            if json {
                print(&(serde_json::to_string_pretty(&runs)? + "\n"));
            } else {
                print(&history::runs_table(&runs, &h.baselines()?, style));
            }
        }
        Some(name) => {
            let trend = h.trend(name, a.limit)?;
            if trend.is_empty() {
                bail!(
                    "no run of scenario `{name}` in history {}",
                    a.history.display()
                );
            }
            if json {
                print(&(serde_json::to_string_pretty(&trend)? + "\n"));
            } else {
                print(&history::trend_table(name, &trend, style));
            }
        }
    }
    Ok(0)
}

/// `inferbench baseline`.
pub fn baseline(a: BaselineArgs) -> anyhow::Result<u8> {
    let h = History::open_existing(&a.history)?;
    match a.action {
        BaselineAction::Set { run, name } => {
            let id = run_ref(&h, &run)?;
            h.set_baseline(&name, id, inferbench_timer::unix_now_s())?;
            let r = h.run(id)?;
            print(&format!(
                "baseline `{name}` → run #{id} ({}, {})\n",
                inferbench_report::utc(r.started_unix_s.max(0) as u64),
                r.report_path
            ));
        }
        BaselineAction::List => {
            let all = h.baselines()?;
            if all.is_empty() {
                print("(no baselines: `inferbench baseline set RUN --name NAME` makes one)\n");
            }
            for (name, id, at) in all {
                print(&format!(
                    "{name:<16} → run #{id} (set {})\n",
                    inferbench_report::utc(at.max(0) as u64)
                ));
            }
        }
    }
    Ok(0)
}
