//! The `inferbench` binary: argument parsing and wiring, nothing else.
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

mod mock_cmd;
mod run_cmd;

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
    Mock(mock_cmd::MockArgs),
    /// Send load to an OpenAI-compatible endpoint and report what it did.
    Run(run_cmd::RunArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The load generator runs on one thread unless told otherwise (see `--client-threads`);
    // servers use every core.
    let threads = match &cli.command {
        Command::Run(a) => a.client_threads,
        Command::Mock(_) => 0,
    };
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
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
            Command::Mock(args) => mock_cmd::run(args).await.map(|()| 0),
            Command::Run(args) => run_cmd::run(args).await,
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
