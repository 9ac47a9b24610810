//! `inferbench check URL`: the smoke test after a deployment (`inferbench_runner::smoke`) —
//! `/health`, `/v1/models`, one unary and one streaming completion — each ✓ or ✗ with its time
//! and a diagnosis a person can act on.

use anyhow::Context;
use clap::Args;
use inferbench_loadgen::client::Api;
use inferbench_runner::smoke::{Line, Smoke, Summary, smoke};

/// Flags of `inferbench check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Base URL of the endpoint, e.g. http://127.0.0.1:8000.
    url: String,
    /// Model to try (default: the first one /v1/models lists).
    #[arg(long)]
    model: Option<String>,
    /// Environment variable holding the API key.
    #[arg(long)]
    api_key_env: Option<String>,
    /// chat or completions.
    #[arg(long, default_value = "chat")]
    api: String,
    /// Most time per check.
    #[arg(long, default_value = "30s")]
    timeout: String,
}

fn print(l: &Line) {
    match l {
        Line::Check {
            ok,
            name,
            took,
            detail,
        } => println!(
            "{} {:<22} {:>9.1} ms  {}",
            if *ok { "✓" } else { "✗" },
            name,
            took.as_secs_f64() * 1000.0,
            detail
        ),
        Line::Note(n) => println!("  {n}"),
    }
}

/// Runs the checks; exit code 0 when all pass, 1 otherwise.
pub async fn run(a: CheckArgs) -> anyhow::Result<u8> {
    let timeout = crate::run_cmd::parse_duration(&a.timeout).context("--timeout")?;
    let api_key = match &a.api_key_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("--api-key-env: environment variable {var} is not set"))?,
        ),
        None => None,
    };
    let url = a.url.trim_end_matches('/').to_string();
    println!("inferbench check {}", inferbench_runner::redact(&url));
    let s = Smoke {
        url,
        model: a.model,
        api_key,
        api: if a.api == "completions" {
            Api::Completions
        } else {
            Api::Chat
        },
        timeout,
    };
    match smoke(&s, |l| print(&l)).await.map_err(anyhow::Error::msg)? {
        Summary::AllPassed => {
            println!("all checks passed");
            Ok(0)
        }
        Summary::SomeFailed => {
            println!("some checks failed");
            Ok(1)
        }
        // The note above said why.
        Summary::Unreachable => Ok(1),
    }
}
