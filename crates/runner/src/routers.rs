//! Routing arms: for each, the URL the client sends to — the fleet itself (`direct`), another
//! gateway's URL, or a reference router: a child process (`inferbench router`, so its CPU and
//! memory are its own) when the executable is known, else in-process on its own runtime.

use inferbench_router::config::PickerConfig;
use inferbench_router::picker::epp::EppConfig;
use inferbench_router::{RouterConfig, RouterHandle};

use inferbench_config::Arm;

/// A started arm.
pub struct ArmServer {
    /// Label.
    pub name: String,
    /// Where the client sends.
    pub url: String,
    thread: Option<String>,
    runtime: Option<tokio::runtime::Runtime>,
    handle: Option<RouterHandle>,
    child: Option<Child>,
}

/// A router running as a child process, killed when dropped.
struct Child {
    process: std::process::Child,
    _config_dir: tempfile::TempDir,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts `exe router --config <cfg> --port 0` and reads the address it prints.
async fn spawn_router(
    exe: &std::path::Path,
    cfg: &RouterConfig,
) -> Result<(Child, String), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let path = dir.path().join("router.yaml");
    // JSON is YAML: the router reads it back with the same types.
    let text = serde_json::to_string_pretty(cfg).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut process = std::process::Command::new(exe)
        .arg("router")
        .arg("--config")
        .arg(&path)
        // One worker, as the in-process runtime and the HAProxy reference (nbthread 1).
        .args(["--port", "0", "--threads", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {} router: {e}", exe.display()))?;
    let stdout = process.stdout.take();
    let child = Child {
        process,
        _config_dir: dir,
    };
    let Some(stdout) = stdout else {
        return Err("the router's output is not readable".into());
    };
    // Its first line names the address; give it 10 s.
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), line)
        .await
        .map_err(|_| "the router did not say where it listens within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    match line.trim().strip_prefix("listening ") {
        Some(addr) => Ok((child, format!("http://{addr}"))),
        None => Err(format!(
            "the router did not start (it printed `{}`)",
            line.trim()
        )),
    }
}

/// The router configuration of an arm over `backends` (`host:port`), or `None` for direct;
/// `relative` resolves a `picker_config` path against the scenario file.
pub fn router_config(
    arm: &Arm,
    backends: &[String],
    relative: &dyn Fn(&str) -> std::path::PathBuf,
) -> Result<Option<RouterConfig>, String> {
    let quick = |p: PickerConfig, body: bool| {
        let mut c = RouterConfig::quick(backends.to_vec(), p);
        c.body_routing = body;
        Ok(Some(c))
    };
    match arm {
        Arm::Named(n) => match n.as_str() {
            "direct" => Ok(None),
            "proxy-rr" => quick(PickerConfig::RoundRobin, false),
            "epp" => quick(PickerConfig::Epp(EppConfig::default()), true),
            "round-robin" => quick(PickerConfig::RoundRobin, true),
            "random" => quick(PickerConfig::Random, true),
            _ => quick(PickerConfig::LeastRequest, true),
        },
        Arm::Custom(c) => {
            let d = EppConfig::default();
            let picker = match c.picker.as_deref().unwrap_or("epp") {
                "round-robin" => PickerConfig::RoundRobin,
                "random" => PickerConfig::Random,
                "least-request" => PickerConfig::LeastRequest,
                _ => {
                    let base = match &c.picker_config {
                        Some(file) => inferbench_router::gie::EppConfigFile::load(&relative(file))
                            .map_err(|e| format!("arm `{}`: {e}", c.name))?,
                        None => d,
                    };
                    PickerConfig::Epp(EppConfig {
                        queue: c.queue.unwrap_or(base.queue),
                        kv_cache: c.kv_cache.unwrap_or(base.kv_cache),
                        prefix: c.prefix.unwrap_or(base.prefix),
                        lora: c.lora.unwrap_or(base.lora),
                        queue_threshold: c.queue_threshold.unwrap_or(base.queue_threshold),
                        kv_threshold: c.kv_threshold.unwrap_or(base.kv_threshold),
                        ..base
                    })
                }
            };
            quick(picker, c.body_routing.unwrap_or(true))
        }
    }
}

impl ArmServer {
    /// Starts arm number `index` in front of `backends`.
    pub async fn start(
        arm: &Arm,
        index: usize,
        backends: &[String],
        relative: &dyn Fn(&str) -> std::path::PathBuf,
        exe: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        if let Arm::Custom(c) = arm
            && let Some(url) = &c.url
        {
            return Ok(ArmServer {
                name: c.name.clone(),
                url: url.clone(),
                thread: None,
                runtime: None,
                handle: None,
                child: None,
            });
        }
        let Some(cfg) = router_config(arm, backends, relative)? else {
            return Ok(ArmServer {
                name: arm.name().to_string(),
                url: backends
                    .iter()
                    .map(|b| format!("http://{b}"))
                    .collect::<Vec<_>>()
                    .join(","),
                thread: None,
                runtime: None,
                handle: None,
                child: None,
            });
        };
        if let Some(exe) = exe {
            let (child, url) = spawn_router(exe, &cfg).await?;
            return Ok(ArmServer {
                name: arm.name().to_string(),
                url,
                thread: None,
                runtime: None,
                handle: None,
                child: Some(child),
            });
        }
        // Named apart: the client's CPU figure leaves these threads out, this arm's counts them.
        let thread = format!(
            "{}-a{index}",
            inferbench_loadgen::engine::NOT_CLIENT_THREAD_PREFIX
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread.clone())
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let listen = "127.0.0.1:0"
            .parse()
            .map_err(|_| "bad address".to_string())?;
        let handle = runtime
            .spawn(inferbench_router::start(cfg, listen))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(ArmServer {
            name: arm.name().to_string(),
            url: handle.url(),
            thread: Some(thread),
            runtime: Some(runtime),
            handle: Some(handle),
            child: None,
        })
    }

    /// CPU seconds of this arm's router so far — its process, or its threads (none for direct).
    pub fn cpu_s(&self) -> Option<f64> {
        if let Some(c) = &self.child {
            return inferbench_resources::process_cpu_s(c.process.id());
        }
        let name = self.thread.as_deref()?;
        Some(inferbench_resources::threads_cpu_s(|comm| comm == name))
    }

    /// Peak resident memory of the router process, MB (`VmHWM`); none when in-process.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        let c = self.child.as_ref()?;
        Some(inferbench_resources::memory(c.process.id())?.peak_rss_kb as f64 / 1024.0)
    }

    /// Stops the router.
    pub async fn shutdown(mut self) {
        if let (Some(h), Some(rt)) = (self.handle.take(), self.runtime.as_ref()) {
            let _ = rt.spawn(h.shutdown()).await;
        }
        if let Some(rt) = self.runtime.take() {
            // Dropping a runtime inside async code would panic: let it go in the background.
            rt.shutdown_background();
        }
    }
}

impl Drop for ArmServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
