//! The built-in mock fleet a run starts when its target is `embedded`: two simulated vLLM
//! instances on 127.0.0.1, serving a base model and a LoRA adapter (two model names through the
//! same endpoints). It runs on its own one-thread runtime, so the client's thread stays its own.

use std::time::Duration;

use inferbench_mock::{FleetConfig, InstanceConfig, MockFleet};

use crate::requests::DEFAULT_MODEL;

/// The adapter the embedded fleet serves beside its base model.
pub const DEFAULT_ADAPTER: &str = "mock-lora";

/// A running embedded fleet.
pub struct EmbeddedFleet {
    fleet: Option<MockFleet>,
    runtime: Option<tokio::runtime::Runtime>,
    urls: Vec<String>,
}

impl EmbeddedFleet {
    /// Starts two instances; `models` (if given) names the base model first and adapters after.
    pub async fn start(models: &[String]) -> Result<Self, String> {
        let base = models
            .first()
            .cloned()
            .unwrap_or_else(|| DEFAULT_MODEL.to_string());
        let adapters: Vec<String> = if models.len() > 1 {
            models[1..].to_vec()
        } else {
            vec![DEFAULT_ADAPTER.to_string()]
        };
        let cfg = InstanceConfig {
            model: base,
            lora_adapters: adapters,
            ttft_ms: 40.0,
            itl_ms: 5.0,
            // Long prompts cost prefill time, so payload sizes show in TTFT.
            prefill_ms_per_token: 0.01,
            // Each answer carries its timing: the report splits every request's TTFT.
            per_request_metrics: true,
            ..Default::default()
        };
        let fleet_cfg = FleetConfig::uniform("127.0.0.1", 0, 2, cfg).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            // Named so the client's CPU figure leaves this runtime out.
            .thread_name(format!(
                "{}-mock",
                inferbench_loadgen::engine::NOT_CLIENT_THREAD_PREFIX
            ))
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let fleet = runtime
            .spawn(MockFleet::start(fleet_cfg))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let urls = fleet.urls();
        Ok(Self {
            fleet: Some(fleet),
            runtime: Some(runtime),
            urls,
        })
    }

    /// Base URLs of the instances.
    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// Stops the fleet.
    pub async fn shutdown(mut self) {
        if let (Some(fleet), Some(rt)) = (self.fleet.take(), self.runtime.as_ref()) {
            let _ = rt.spawn(fleet.shutdown(Duration::from_millis(500))).await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for EmbeddedFleet {
    fn drop(&mut self) {
        // Dropping a runtime inside async code would panic: let it go in the background.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
