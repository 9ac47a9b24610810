//! The `inferbench` binary: argument parsing and wiring, nothing else.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

mod check_cmd;
mod fit_cmd;
mod k8s_cmd;
mod merge_cmd;
mod mock_cmd;
mod output;
mod report_cmd;
mod router_cmd;
mod run_cmd;
mod signals;

use clap::{Parser, Subcommand};

/// Benchmarks LLM inference endpoints and the inference-routing layer in front of them.
#[derive(Debug, Parser)]
#[command(name = "inferbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a simulated vLLM fleet (OpenAI API, vLLM metrics) on 127.0.0.1.
    Mock(Box<mock_cmd::MockArgs>),
    /// Send load and report what happened: a scenario file, an ad-hoc scenario against
    /// --target URL, or (with neither) the built-in suite against an embedded mock fleet.
    Run(Box<run_cmd::RunArgs>),
    /// Serve the reference inference router (body-based routing + endpoint picking) on 127.0.0.1.
    Router(router_cmd::RouterArgs),
    /// Check a scenario file without running it.
    Validate {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Print the JSON Schema of scenario files (for editors and CI linting), or with --report
    /// of report.json.
    Schema {
        /// The schema of report.json instead.
        #[arg(long)]
        report: bool,
    },
    /// Smoke-test an endpoint: /health, /v1/models, one unary and one streaming completion.
    Check(check_cmd::CheckArgs),
    /// Re-render a saved run (its folder or report.json) as Markdown, HTML, JSON or CSV.
    Report(report_cmd::ReportArgs),
    /// Compare two runs: per scenario and metric the change and a verdict (exit 0 pass,
    /// 1 regression, 2 unusable input).
    Compare(report_cmd::CompareArgs),
    /// List recorded runs, or one scenario's trend across runs.
    History(report_cmd::HistoryArgs),
    /// Name a recorded run as a baseline, or list baselines.
    Baseline(report_cmd::BaselineArgs),
    /// The benchmark environment as Kubernetes manifests (fleet, InferencePool, EPP, BBR,
    /// Gateway, HTTPRoutes, and the load as an Indexed Job of shards).
    K8s(k8s_cmd::K8sArgs),
    /// Merge the reports of one run's shards (`run --shard I/N`) into one report, exactly.
    Merge(merge_cmd::MergeArgs),
}

/// `inferbench validate FILE`: parse and check, print what it holds.
fn validate(file: &std::path::Path) -> anyhow::Result<u8> {
    let c = inferbench_config::Config::load(file)?;
    let f = &c.file;
    println!(
        "{}: OK — {} target(s), {} scenario(s){}",
        file.display(),
        f.targets.len(),
        f.scenarios.len(),
        if f.suite.is_empty() {
            String::new()
        } else {
            format!(", a suite of {} entries", f.suite.len())
        }
    );
    for s in &f.scenarios {
        println!(
            "  {}{}",
            s.name.value,
            s.description
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The load generator runs on one thread unless told otherwise (see `--client-threads`);
    // servers use every core.
    let (threads, current_thread) = match &cli.command {
        Command::Run(a) => (a.client_threads, a.client_threads == 1),
        Command::Router(a) => (a.threads, a.threads == 1),
        _ => (0, false),
    };
    let mut builder = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if threads > 0 && !current_thread {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Mock(args) => mock_cmd::run(*args).await.map(|()| 0),
            Command::Run(args) => run_cmd::run(*args).await,
            Command::Validate { file } => validate(&file),
            Command::Schema { report } => {
                if report {
                    println!("{}", inferbench_results::report_schema());
                } else {
                    println!("{}", inferbench_config::schema());
                }
                Ok(0)
            }
            Command::Check(args) => check_cmd::run(args).await,
            Command::Router(args) => router_cmd::run(args).await.map(|()| 0),
            Command::Report(args) => report_cmd::report(args),
            Command::Compare(args) => report_cmd::compare(args),
            Command::History(args) => report_cmd::history(args),
            Command::Baseline(args) => report_cmd::baseline(args),
            Command::K8s(args) => k8s_cmd::run(args),
            Command::Merge(args) => merge_cmd::run(args),
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
