//! The report of a whole invocation: every scenario run, its stages, and its verdicts. This is
//! `report.json`.

use serde::{Deserialize, Serialize};

use crate::run::{ResultError, RunResult, SloLimits};

/// How the warning about an incomplete request log begins (renderers that show the log's state
/// loudly leave the warning out).
pub const LOG_INCOMPLETE: &str = "the request log is incomplete";

/// A report: what ran and what held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// [`SCHEMA_VERSION`](crate::run::SCHEMA_VERSION).
    pub schema_version: u32,
    /// inferbench's version.
    pub tool_version: String,
    /// Unix time the invocation started, seconds.
    pub started_unix_s: u64,
    /// The scenario file, if one was used (`embedded` for the built-in suite).
    pub config: Option<String>,
    /// True if interrupted: what completed is here.
    pub partial: bool,
    /// Each scenario run, in order.
    pub scenarios: Vec<ScenarioReport>,
    /// Set when the run was one shard of several (`run --shard I/N`), or a merge of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

/// Which shard of a sharded run (`run --shard I/N`) a report holds, and what all its shards
/// share. A merged report has no `index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    /// This shard, from 0 (`None` on a merged report).
    pub index: Option<u32>,
    /// How many shards the run had.
    pub count: u32,
    /// The plan every shard of the run shares, by name: scenario file, scenario, target, seed,
    /// scale and a fingerprint of the file. Shards of different plans are never merged.
    pub plan: String,
    /// The common start of the schedule, Unix ms.
    pub start_at_unix_ms: Option<u64>,
    /// The scenario's own rules as written (thresholds, stress limits): a merge judges the merged
    /// result by them again.
    pub rules: Vec<String>,
}

/// One scenario against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// What it tests.
    pub description: Option<String>,
    /// Target name.
    pub target: String,
    /// Target URL(s), credentials removed.
    pub url: String,
    /// Repetition number (1-based).
    pub repeat: u32,
    /// The load kind: rate, concurrency, stages, sweep, stress or users.
    pub kind: String,
    /// Per stage (or sweep/stress step), in order.
    pub stages: Vec<StageReport>,
    /// All measured requests of the scenario.
    pub total: RunResult,
    /// The SLO verdict, if the scenario has one.
    pub slo: Option<SloReport>,
    /// Threshold verdicts.
    pub thresholds: Vec<Check>,
    /// For stress: where it broke.
    pub breaking_point: Option<BreakingPoint>,
    /// Routing arms side by side, with their overhead over `direct`.
    #[serde(default)]
    pub arms: Vec<ArmReport>,
    /// A replayed trace: what was replayed and how closely its schedule was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceReplay>,
    /// Every threshold passed (and the SLO, if any).
    pub passed: bool,
}

/// A trace replay: which requests of which file, how fast, and how closely the schedule was kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TraceReplay {
    /// The trace file.
    pub path: String,
    /// Its format: azure, mooncake, burstgpt or inferbench.
    pub format: String,
    /// Requests in the file (rows skipped not counted).
    pub rows: u64,
    /// Rows left out of the file, by reason.
    #[serde(default)]
    pub skipped: std::collections::BTreeMap<String, u64>,
    /// Requests replayed (after start, limit and the scenario's duration).
    pub requests: u64,
    /// Their prompt tokens, as the trace gives them.
    pub prompt_tokens: u64,
    /// Their output tokens, as the trace gives them.
    pub output_tokens: u64,
    /// At the trace's own instants (true), or its order and lengths at the scenario's load.
    pub at_trace_instants: bool,
    /// Multiplies the trace's time.
    pub time_scale: f64,
    /// Multiplies the request rate.
    pub rate_scale: f64,
    /// Seconds of the trace left out at its start.
    pub start_s: f64,
    /// Seconds from the first replayed request to the last, as replayed.
    pub span_s: f64,
    /// Mooncake: the share of prompt tokens its `hash_ids` say an unbounded prefix cache would
    /// hold (leading blocks whose chain of ids came before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implied_prefix_hit_rate: Option<f64>,
    /// How late requests were sent against their (scaled) trace instants, µs: the whole run's
    /// dispatch lag (at_trace_instants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p50_us: Option<u64>,
    /// 99th percentile of the lag, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_us: Option<u64>,
    /// Largest lag, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_max_us: Option<u64>,
    /// Requests sent more than 1 ms after their trace instant.
    #[serde(default)]
    pub late: u64,
}

/// One stage or step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StageReport {
    /// Label.
    pub name: String,
    /// Its results.
    pub result: RunResult,
}

/// A rule and how it came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// The rule as written.
    pub rule: String,
    /// The measured value, in the rule's unit, for people.
    pub measured: String,
    /// Whether it held.
    pub passed: bool,
}

/// SLO verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SloReport {
    /// Percentile that must meet the limits.
    pub percentile: f64,
    /// The limits.
    pub limits: SloLimits,
    /// One check per limit.
    pub checks: Vec<Check>,
    /// Requests per second that met every limit.
    pub goodput_rps: f64,
    /// Fraction of completed requests that met every limit.
    pub good_fraction: f64,
    /// All checks held.
    pub passed: bool,
}

/// One routing arm's results and what it adds over `direct`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArmReport {
    /// `direct`, `proxy-rr`, `epp` or a configuration's name.
    pub name: String,
    /// The URL the client sent to.
    pub url: String,
    /// Everything measured on this arm (all its windows merged).
    pub result: RunResult,
    /// CPU seconds the router of this arm used (none for `direct`).
    pub router_cpu_s: Option<f64>,
    /// Router CPU seconds per 1,000 requests.
    pub router_cpu_per_1000: Option<f64>,
    /// Peak resident memory of the router process, MB (when it ran as its own process).
    #[serde(default)]
    pub router_peak_rss_mb: Option<f64>,
    /// TTFT p50 / p95 / p99 minus direct's, µs (none without a direct arm).
    pub ttft_added_us: Option<[i64; 3]>,
    /// End-to-end p50 / p95 / p99 minus direct's, µs.
    pub e2e_added_us: Option<[i64; 3]>,
    /// Successful requests/s relative to direct, percent.
    pub throughput_change_pct: Option<f64>,
    /// Prompt tokens served from the prefix cache / prompt tokens.
    pub prefix_hit_rate: f64,
    /// Answers from the model asked for / requests.
    pub routing_accuracy: f64,
}

/// Where a stress test broke. Levels are rates (req/s), or concurrency for a concurrency
/// stress test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BreakingPoint {
    /// Highest level whose step passed every limit.
    pub last_passing_rate: Option<f64>,
    /// First level whose step failed a limit (none: it never broke up to the last level).
    pub breaking_rate: Option<f64>,
    /// The limits that failed at the breaking rate.
    pub failed: Vec<Check>,
}

impl Report {
    /// Parses a report.json, refusing other schema versions with a clear message.
    pub fn from_json(text: &str) -> Result<Self, ResultError> {
        crate::run::from_versioned_json(text)
    }

    /// Every scenario passed.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.passed)
    }
}

impl ScenarioReport {
    /// `name`, with ` (repeat N)` beyond the first repetition.
    pub fn label(&self) -> String {
        if self.repeat > 1 {
            format!("{} (repeat {})", self.name, self.repeat)
        } else {
            self.name.clone()
        }
    }

    /// Why it failed: one reason per threshold or SLO limit that did not hold, with what was
    /// measured (empty when it passed).
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .thresholds
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} failed (measured {})", c.rule, c.measured))
            .collect();
        if let Some(slo) = &self.slo {
            out.extend(
                slo.checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| format!("SLO {} failed (measured {})", c.rule, c.measured)),
            );
        }
        if out.is_empty() && !self.passed {
            out.push("failed".into());
        }
        out
    }
}
