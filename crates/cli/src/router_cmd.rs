//! `inferbench router`: flags or router.yaml → a running reference router until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use inferbench_router::{PickerConfig, RouterConfig};

/// Flags of `inferbench router`.
#[derive(Debug, Args)]
pub struct RouterArgs {
    /// Port to listen on (0: any; the address is printed as `listening <addr>`).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// A backend `host:port` (repeatable, or comma-separated).
    #[arg(long = "backend", value_delimiter = ',')]
    backends: Vec<String>,
    /// epp, round-robin, random or least-request.
    #[arg(long, default_value = "epp")]
    picker: String,
    /// Stream request bodies through unread (no body-based routing, no prefix scoring): the
    /// plain-proxy baseline.
    #[arg(long)]
    no_body_routing: bool,
    /// Endpoint metrics scrape period, ms.
    #[arg(long, default_value_t = 50)]
    scrape_interval_ms: u64,
    /// Worker threads (0: one per core). One avoids cross-thread wake-ups: less CPU and latency
    /// per request at moderate rates; scenario arms run their routers with one.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The Gateway API Inference Extension's EndpointPickerConfig (plugins and scheduling
    /// profiles) for the --backend pool's EPP picker.
    #[arg(long)]
    picker_config: Option<PathBuf>,
    /// A router file (YAML: pools, routes, pickers, base_models) instead of --backend/--picker.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A client connection that sent part of a request's head but not the rest within this is
    /// closed, s [default: 10, or router.yaml's header_read_timeout_s].
    #[arg(long, value_name = "S")]
    header_read_timeout_s: Option<f64>,
    /// A client connection with no request in flight and nothing received for this long is
    /// closed, s [default: 60, or router.yaml's idle_timeout_s].
    #[arg(long, value_name = "S")]
    idle_timeout_s: Option<f64>,
    /// Largest request body; a larger one is answered with 413 [default: 16777216 (16 MiB), or
    /// router.yaml's max_body_bytes].
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<u64>,
    /// Request-body bytes buffered at once over all connections; a body that does not fit is
    /// answered with 503 [default: 67108864 (64 MiB), or router.yaml's max_buffered_bytes].
    #[arg(long, value_name = "BYTES")]
    max_buffered_bytes: Option<u64>,
    /// An endpoint that sent no response headers within this is given up on with 504, s
    /// [default: 60, or router.yaml's upstream_header_timeout_s].
    #[arg(long, value_name = "S")]
    upstream_header_timeout_s: Option<f64>,
    /// The whole exchange, the response's streaming included, ends after this, s [default: 600,
    /// or router.yaml's request_timeout_s].
    #[arg(long, value_name = "S")]
    request_timeout_s: Option<f64>,
}

/// Runs the router until Ctrl-C or SIGTERM.
pub async fn run(a: RouterArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(p) => RouterConfig::load(p)?,
        None => {
            if a.backends.is_empty() {
                anyhow::bail!("give --backend HOST:PORT (repeatable) or --config router.yaml");
            }
            let picker = match &a.picker_config {
                Some(p) => PickerConfig::Epp(
                    inferbench_router::gie::EppConfigFile::load(p).map_err(anyhow::Error::msg)?,
                ),
                None => PickerConfig::from_name(&a.picker).map_err(anyhow::Error::msg)?,
            };
            let mut c = RouterConfig::quick(a.backends.clone(), picker);
            c.body_routing = !a.no_body_routing;
            c.scrape_interval_ms = a.scrape_interval_ms;
            c
        }
    };
    // Flags override the file's values (or the defaults); `start` checks them.
    if let Some(s) = a.header_read_timeout_s {
        cfg.header_read_timeout_s = s;
    }
    if let Some(s) = a.idle_timeout_s {
        cfg.idle_timeout_s = s;
    }
    if let Some(n) = a.max_body_bytes {
        cfg.max_body_bytes = n;
    }
    if let Some(n) = a.max_buffered_bytes {
        cfg.max_buffered_bytes = n;
    }
    if let Some(s) = a.upstream_header_timeout_s {
        cfg.upstream_header_timeout_s = s;
    }
    if let Some(s) = a.request_timeout_s {
        cfg.request_timeout_s = s;
    }
    let listen: SocketAddr = format!("{}:{}", a.host, a.port)
        .parse()
        .with_context(|| format!("`{}:{}` is not an address to listen on", a.host, a.port))?;
    let signals = crate::signals::Signals::install()?;
    let handle = inferbench_router::start(cfg, listen).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", handle.addr)?;
        out.flush()?;
    }
    for p in handle.router.pools() {
        eprintln!(
            "inferbench router: pool `{}` ({}) → {}",
            p.name,
            p.picker.name(),
            p.endpoints
                .iter()
                .map(|e| e.addr.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!(
        "inferbench router: metrics at http://{}/metrics; Ctrl-C to stop",
        handle.addr
    );
    signals.wait().await;
    eprintln!("inferbench router: shutting down");
    handle.shutdown().await;
    Ok(())
}
