//! `inferbench k8s render FILE`: flags → `inferbench_k8s::RenderOptions` → multi-document YAML
//! on stdout or in `--out`. The one wall-clock reading (`--start-in`) happens here, so rendering
//! itself stays deterministic.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use inferbench_k8s::{EppApi, FailureMode, RenderOptions};

/// Flags of `inferbench k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    command: K8sCommand,
}

/// Subcommands of `inferbench k8s`.
#[derive(Debug, Subcommand)]
enum K8sCommand {
    /// Render one scenario's benchmark environment as Kubernetes manifests.
    ///
    /// The mock fleet, the InferencePool(s) and their Endpoint Pickers (one per picker the arms
    /// compare), BBR when several models are asked for, a Gateway with one HTTPRoute per arm
    /// (`/baseline`, `/epp`, …), and the load as an Indexed Job whose shards start together.
    /// Apply before the start (`kubectl apply -f -`), then `inferbench merge` the pods' logs.
    Render(Box<RenderArgs>),
}

/// Flags of `inferbench k8s render`.
#[derive(Debug, Args)]
struct RenderArgs {
    /// The scenario file (YAML).
    file: PathBuf,
    /// The scenario to render (required when the file has more than one).
    #[arg(long)]
    scenario: Option<String>,
    /// Write the manifests to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Namespace of every object.
    #[arg(long, default_value = "inferbench")]
    namespace: String,
    /// Do not render the Namespace object (it exists already).
    #[arg(long)]
    no_namespace: bool,
    /// Image of inferbench (runs the mock fleet and the load).
    #[arg(long, default_value = inferbench_k8s::DEFAULT_IMAGE)]
    image: String,
    /// Image of the Endpoint Picker (default: the upstream GIE v1.5.0 EPP; with `--epp-api
    /// llm-d.ai`, give llm-d-router's).
    #[arg(long, default_value = inferbench_k8s::epp::DEFAULT_EPP_IMAGE)]
    epp_image: String,
    /// Image of the Body Based Router (rendered for multi-model scenarios).
    #[arg(long, default_value = inferbench_k8s::bbr::DEFAULT_BBR_IMAGE)]
    bbr_image: String,
    /// API group of InferenceObjective and EndpointPickerConfig: inference.networking.x-k8s.io
    /// (GIE ≤ v1.5.0) or llm-d.ai (llm-d-router).
    #[arg(long, default_value = "inference.networking.x-k8s.io", value_parser = ["inference.networking.x-k8s.io", "llm-d.ai"])]
    epp_api: String,
    /// What the gateway does when the Endpoint Picker fails: FailClose (reject) or FailOpen.
    #[arg(long, default_value = "FailClose", value_parser = ["FailClose", "FailOpen"])]
    failure_mode: String,
    /// Mock pods per pool.
    #[arg(long, default_value_t = 4)]
    replicas: i32,
    /// Load pods; each sends its shard (1/N of the arrivals) of the one schedule.
    #[arg(long, default_value_t = 1)]
    shards: i32,
    /// When every shard starts, Unix milliseconds.
    #[arg(long, conflicts_with = "start_in")]
    start_at: Option<u64>,
    /// Or: start this long after rendering (e.g. 2m, 90s); the Job must be applied, and its
    /// images pulled, before then.
    #[arg(long, default_value = "2m")]
    start_in: String,
    /// The Gateway's class.
    #[arg(long, default_value = "kgateway")]
    gateway_class: String,
    /// The gateway's base URL in the cluster (default
    /// http://<scenario>-gateway.<namespace>.svc.cluster.local, the Service kgateway makes).
    #[arg(long)]
    gateway_url: Option<String>,
    /// CPU request of each mock.
    #[arg(long, default_value = "500m")]
    fleet_cpu: String,
    /// Memory request and limit of each mock.
    #[arg(long, default_value = "256Mi")]
    fleet_memory: String,
    /// CPU request of each load pod.
    #[arg(long, default_value = "1")]
    load_cpu: String,
    /// Memory request of each load pod.
    #[arg(long, default_value = "1Gi")]
    load_memory: String,
    /// CPU limit of each load pod (default none: throttling delays sends and skews latencies).
    #[arg(long)]
    load_cpu_limit: Option<String>,
    /// Memory limit of each load pod (default: the request).
    #[arg(long)]
    load_memory_limit: Option<String>,
    /// An extra argument for every mock, repeated as needed (e.g. --mock-arg=--ttft-ms=80).
    #[arg(long = "mock-arg", allow_hyphen_values = true)]
    mock_args: Vec<String>,
}

/// Runs `inferbench k8s …`.
pub fn run(a: K8sArgs) -> anyhow::Result<u8> {
    match a.command {
        K8sCommand::Render(r) => render(*r),
    }
}

/// `inferbench k8s render`.
fn render(a: RenderArgs) -> anyhow::Result<u8> {
    let cfg = inferbench_config::Config::load(&a.file)?;
    let now_ms = inferbench_timer::unix_now().as_millis() as u64;
    let start_at = match a.start_at {
        Some(ms) => ms,
        None => {
            let d = inferbench_workload::units::parse_duration(&a.start_in)
                .map_err(|e| anyhow::anyhow!("--start-in: {e}"))?;
            now_ms + d.as_millis() as u64
        }
    };
    let default_epp_image = a.epp_image == inferbench_k8s::epp::DEFAULT_EPP_IMAGE;
    let opts = RenderOptions {
        scenario: a.scenario,
        namespace: a.namespace,
        create_namespace: !a.no_namespace,
        image: a.image,
        epp_image: a.epp_image,
        bbr_image: a.bbr_image,
        epp_api: EppApi::parse(&a.epp_api).unwrap_or_default(),
        failure_mode: if a.failure_mode == "FailOpen" {
            FailureMode::FailOpen
        } else {
            FailureMode::FailClose
        },
        replicas: a.replicas,
        shards: a.shards,
        start_at_unix_ms: start_at,
        gateway_class: a.gateway_class,
        gateway_url: a.gateway_url,
        fleet_cpu: a.fleet_cpu,
        fleet_memory: a.fleet_memory,
        load_cpu: a.load_cpu,
        load_memory: a.load_memory,
        load_cpu_limit: a.load_cpu_limit,
        load_memory_limit: a.load_memory_limit,
        mock_args: a.mock_args,
    };
    let manifests = inferbench_k8s::render(&cfg, &opts)?;
    let yaml = inferbench_k8s::to_yaml(&manifests)?;
    match &a.out {
        Some(path) => std::fs::write(path, &yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{yaml}"),
    }
    if opts.epp_api == EppApi::LlmD && default_epp_image {
        eprintln!(
            "note: --epp-api llm-d.ai with the GIE EPP image; pass --epp-image with llm-d-router's image"
        );
    }
    let left_s = (start_at as i64 - now_ms as i64) / 1000;
    eprintln!(
        "rendered {} objects{}; the load starts at {start_at} (Unix ms, {}): apply before then",
        manifests.len(),
        a.out
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default(),
        if left_s >= 0 {
            format!("in {left_s} s")
        } else {
            format!("{} s ago", -left_s)
        }
    );
    Ok(0)
}
