//! `inferbench mock`: flags → fleet configuration → a running fleet until Ctrl-C or SIGTERM.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use inferbench_mock::{
    ConfigError, FaultConfig, FleetConfig, InstanceConfig, MockFleet, OutputMode,
};

/// Flags of `inferbench mock`. Flags set the defaults of every instance; `--config` pools
/// override them per pool.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MockArgs {
    /// `fit`: a digital twin of a measured server.
    #[command(subcommand)]
    action: Option<MockAction>,
    /// Number of instances (ports P..P+N-1).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// First port; 0 lets the OS choose each port. Each bound address is printed as `listening <addr>`.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// A fleet file (YAML: `defaults:` and `pools:`) for a heterogeneous fleet, or a profile
    /// written by `inferbench mock fit` (a digital twin of a measured server).
    #[arg(long, visible_alias = "profile")]
    config: Option<PathBuf>,
    /// Served model name.
    #[arg(long, default_value = "mock-model")]
    model: String,
    /// LoRA adapters registered at start-up, comma-separated.
    #[arg(long, value_delimiter = ',')]
    lora_adapters: Vec<String>,
    /// Adapters active in the batch at once.
    #[arg(long, default_value_t = 4)]
    max_loras: usize,
    /// Fixed prefill time (scheduling to first token with no prompt cost), ms.
    #[arg(long, default_value_t = 50.0)]
    ttft_ms: f64,
    /// Time between output tokens with a batch of one, ms.
    #[arg(long, default_value_t = 5.0)]
    itl_ms: f64,
    /// Prefill cost per uncached prompt token, ms.
    #[arg(long, default_value_t = 0.0)]
    prefill_ms_per_token: f64,
    /// Decode slow-down as the batch fills: ITL × (1 + f × (running−1)/max_num_seqs).
    #[arg(long, default_value_t = 0.5)]
    decode_slowdown: f64,
    /// Prefill slows everyone's decode: ITL × (1 + f × min(1, tokens being prefilled /
    /// max-num-batched-tokens)), as vLLM's chunked prefill shares each step (0: off).
    #[arg(long, default_value_t = 0.0)]
    prefill_interference: f64,
    /// The running batch slows a new prefill: × (1 + f × (running−1)/max_num_seqs) (0: off).
    #[arg(long, default_value_t = 0.0)]
    prefill_slowdown: f64,
    /// Each new prefill holds every running sequence's next token once for this × its prompt
    /// compute (llama.cpp-style; 0: off).
    #[arg(long, default_value_t = 0.0)]
    prefill_stall: f64,
    /// Tokens one engine step processes (the scale of --prefill-interference).
    #[arg(long, default_value_t = 2048)]
    max_num_batched_tokens: usize,
    /// Most sequences in the running batch.
    #[arg(long, default_value_t = 256)]
    max_num_seqs: usize,
    /// Most requests waiting; beyond this, 429.
    #[arg(long, default_value_t = 4096)]
    max_waiting: usize,
    /// KV-cache blocks.
    #[arg(long, default_value_t = 8192)]
    kv_blocks: usize,
    /// Tokens per KV-cache block.
    #[arg(long, default_value_t = 16)]
    block_size: usize,
    /// Most prompt + output tokens per request.
    #[arg(long, default_value_t = 32768)]
    max_model_len: usize,
    /// Largest accepted body, bytes; larger ones get 413.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most bytes of request bodies buffered at once per instance; beyond, 503.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_buffered_bytes: usize,
    /// Seconds a connection has to send complete request headers (0: no limit).
    #[arg(long, default_value_t = 10.0)]
    header_read_timeout_s: f64,
    /// Seconds a connection may stay open with no request in flight (0: no limit).
    #[arg(long, default_value_t = 60.0)]
    idle_timeout_s: f64,
    /// Relative jitter (0..1) on prefill and ITL, from the seed.
    #[arg(long, default_value_t = 0.0)]
    jitter: f64,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output text: random (seeded words) or echo (the prompt's tokens).
    #[arg(long, default_value = "random")]
    output: OutputMode,
    /// Tokens per SSE chunk.
    #[arg(long, default_value_t = 1)]
    tokens_per_chunk: usize,
    /// Fraction of requests answered at once with an error from --error-statuses.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Statuses for --error-rate, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "429,500,503")]
    error_statuses: Vec<u16>,
    /// Fraction of responses cut off half-way.
    #[arg(long, default_value_t = 0.0)]
    abort_rate: f64,
    /// Fraction of responses that stall half-way.
    #[arg(long, default_value_t = 0.0)]
    stall_rate: f64,
    /// Stall length, ms (0: until the client gives up).
    #[arg(long, default_value_t = 0)]
    stall_ms: u64,
    /// Delay before response headers, ms.
    #[arg(long, default_value_t = 0)]
    slow_start_ms: u64,
    /// Make /health answer 503.
    #[arg(long)]
    health_fail: bool,
    /// Close the connection after every response, although it says keep-alive.
    #[arg(long)]
    close_after_response: bool,
    /// Fraction of requests answered 200 with an OpenAI error object as the body.
    #[arg(long, default_value_t = 0.0)]
    error_200_rate: f64,
    /// Fraction of requests answered with bytes that are not HTTP, then closed.
    #[arg(long, default_value_t = 0.0)]
    garbage_rate: f64,
    /// Emit tokens on tokio's millisecond timer instead of the precise timer thread.
    #[arg(long)]
    coarse_timers: bool,
    /// Put vLLM's per-request `metrics` (queue, scheduled-to-first-token and generation time,
    /// ms) on each answer, as `vllm serve --enable-per-request-metrics` does.
    #[arg(long)]
    enable_per_request_metrics: bool,
    /// Seconds to let requests in flight finish on Ctrl-C / SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    grace_s: f64,
}

impl MockArgs {
    fn instance(&self) -> InstanceConfig {
        InstanceConfig {
            model: self.model.clone(),
            lora_adapters: self
                .lora_adapters
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
            max_loras: self.max_loras,
            ttft_ms: self.ttft_ms,
            prefill_ms_per_token: self.prefill_ms_per_token,
            itl_ms: self.itl_ms,
            decode_slowdown: self.decode_slowdown,
            prefill_interference: self.prefill_interference,
            prefill_slowdown: self.prefill_slowdown,
            prefill_factors: Vec::new(),
            prefill_stall: self.prefill_stall,
            itl_factors: Vec::new(),
            max_num_batched_tokens: self.max_num_batched_tokens,
            max_num_seqs: self.max_num_seqs,
            max_waiting: self.max_waiting,
            kv_blocks: self.kv_blocks,
            block_size: self.block_size,
            max_model_len: self.max_model_len,
            max_body_bytes: self.max_body_bytes,
            max_buffered_bytes: self.max_buffered_bytes,
            header_read_timeout_s: self.header_read_timeout_s,
            idle_timeout_s: self.idle_timeout_s,
            default_max_tokens: InstanceConfig::default().default_max_tokens,
            jitter: self.jitter,
            seed: self.seed,
            output: self.output,
            tokens_per_chunk: self.tokens_per_chunk,
            precise_timers: !self.coarse_timers,
            per_request_metrics: self.enable_per_request_metrics,
            faults: FaultConfig {
                error_rate: self.error_rate,
                error_statuses: self.error_statuses.clone(),
                abort_rate: self.abort_rate,
                stall_rate: self.stall_rate,
                stall_ms: self.stall_ms,
                slow_start_ms: self.slow_start_ms,
                health_fail: self.health_fail,
                wrong_model: None,
                close_after_response: self.close_after_response,
                error_200_rate: self.error_200_rate,
                garbage_rate: self.garbage_rate,
            },
        }
    }
}

/// What `inferbench mock` does besides serving.
#[derive(Debug, clap::Subcommand)]
pub enum MockAction {
    /// Fit the mock to a measured server (a run at several loads): writes a profile that
    /// `inferbench mock --profile` serves like that server.
    Fit(crate::fit_cmd::FitArgs),
}

/// Runs the fleet until Ctrl-C or SIGTERM.
pub async fn run(mut args: MockArgs) -> anyhow::Result<()> {
    if let Some(MockAction::Fit(f)) = args.action.take() {
        return crate::fit_cmd::run(f);
    }
    // Every flag is checked before anything starts: a bad --grace-s fails now, not at SIGTERM.
    let grace = inferbench_mock::config::seconds("--grace-s", args.grace_s)?;
    let base = args.instance();
    base.validate().map_err(flag_error)?;
    let fleet_cfg = match &args.config {
        Some(path) => FleetConfig::from_yaml_file(path, &args.host, args.port, &base)?,
        None => {
            FleetConfig::uniform(&args.host, args.port, args.instances, base).map_err(flag_error)?
        }
    };
    // Signal handlers go in before the addresses are printed: a script may signal at once.
    let signals = crate::signals::Signals::install()?;
    let fleet = MockFleet::start(fleet_cfg).await?;
    {
        let mut out = std::io::stdout().lock();
        for a in fleet.addrs() {
            writeln!(out, "listening {a}")?;
        }
        out.flush()?;
    }
    eprintln!(
        "inferbench mock: {} instance(s) up; Ctrl-C to stop",
        fleet.addrs().len()
    );
    signals.wait().await;
    eprintln!("inferbench mock: shutting down");
    fleet.shutdown(grace).await;
    Ok(())
}

/// A configuration error of the flags, naming the flag (`faults.error_rate` → `--error-rate`).
fn flag_error(e: ConfigError) -> anyhow::Error {
    match e {
        ConfigError::Invalid { field, message } => {
            let flag = field.trim_start_matches("faults.").replace('_', "-");
            anyhow::anyhow!("invalid mock flags: --{flag}: {message}")
        }
        other => anyhow::Error::new(other).context("invalid mock flags"),
    }
}
