//! One module per load kind. Each turns its part of the scenario file into engine runs
//! ([`Step`](crate::step::Step)s) and returns what they produced as a [`Ran`]; the scenario
//! ([`crate::scenario`]) only picks the kind, then totals and judges.

pub mod arms;
pub mod flat;
pub mod stages;
pub mod stress;
pub mod sweep;
pub mod trace;
pub mod users;

use inferbench_config::LoadSpec;
use inferbench_results::run::RunResult;
use inferbench_results::suite::{ArmReport, BreakingPoint, StageReport};
use tokio::sync::watch;

use crate::step::{Ctx, Step, run_step};

/// What a load kind's engine runs produced.
#[derive(Debug, Default)]
pub struct Ran {
    /// Every stage, in order (a flat step is one stage).
    pub stages: Vec<StageReport>,
    /// Each step's whole result, in order: the scenario's total merges them.
    pub wholes: Vec<RunResult>,
    /// A stress test's breaking point.
    pub breaking_point: Option<BreakingPoint>,
    /// Routing arms, each with its overhead against `direct`.
    pub arms: Vec<ArmReport>,
}

impl Ran {
    /// What a load kind that is one engine run produced: that step's stages and result.
    pub async fn single(ctx: &Ctx<'_>, step: Step, stop: watch::Receiver<bool>) -> Ran {
        let mut ran = Ran::default();
        ran.keep(run_step(ctx, step, stop).await);
        ran
    }

    /// Keeps a step's stages and its whole result.
    pub fn keep(&mut self, (stages, whole): (Vec<StageReport>, RunResult)) {
        self.stages.extend(stages);
        self.wholes.push(whole);
    }
}

/// The load kinds, as a scenario file says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `arms:` — the same load through several routing arms, in alternating windows.
    Arms,
    /// `load.rate`: one open-loop step.
    Rate,
    /// `load.concurrency`: one closed-loop step.
    Concurrency,
    /// `load.stages`.
    Stages,
    /// `load.users`: a Locust-style ramp, then a hold.
    Users,
    /// `load.sweep`: synchronous, throughput, then rates between.
    Sweep,
    /// `load.stress`: step up until a limit breaks.
    Stress,
    /// No `load`, a `workload.trace`: the trace at its own instants.
    Trace,
    /// Nothing to run (validation refuses it; kept total for robustness).
    None,
}

impl Kind {
    /// The kind of scenario load `l` (arms win over the load shape, which they reuse).
    pub fn of(l: &LoadSpec, has_arms: bool) -> Kind {
        if has_arms {
            Kind::Arms
        } else if l.rate.is_some() {
            Kind::Rate
        } else if l.concurrency.is_some() {
            Kind::Concurrency
        } else if l.stages.is_some() {
            Kind::Stages
        } else if l.users.is_some() {
            Kind::Users
        } else if l.sweep.is_some() {
            Kind::Sweep
        } else if l.stress.is_some() {
            Kind::Stress
        } else {
            Kind::None
        }
    }

    /// The kind of scenario `s`: its load's, or a trace replayed at its own instants.
    pub fn of_scenario(s: &inferbench_config::Scenario) -> Kind {
        match Kind::of(&s.load, !s.arms.is_empty()) {
            Kind::None if s.workload.trace.is_some() => Kind::Trace,
            k => k,
        }
    }

    /// The kind named `name` in a report (`None` for a name this version does not know).
    pub fn from_name(name: &str) -> Option<Kind> {
        [
            Kind::Arms,
            Kind::Rate,
            Kind::Concurrency,
            Kind::Stages,
            Kind::Users,
            Kind::Sweep,
            Kind::Stress,
            Kind::Trace,
            Kind::None,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// Its name in the report (`kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Arms => "arms",
            Kind::Rate => "rate",
            Kind::Concurrency => "concurrency",
            Kind::Stages => "stages",
            Kind::Users => "users",
            Kind::Sweep => "sweep",
            Kind::Stress => "stress",
            Kind::Trace => "trace",
            Kind::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> LoadSpec {
        serde_saphyr::from_str(yaml).expect("load")
    }

    #[test]
    fn the_kind_is_what_the_file_says() {
        assert_eq!(Kind::of(&load("rate: 5"), false), Kind::Rate);
        assert_eq!(Kind::of(&load("rate: 5"), true), Kind::Arms);
        assert_eq!(Kind::of(&load("concurrency: 2"), false), Kind::Concurrency);
        assert_eq!(
            Kind::of(&load("stages: [{duration: 1s, rate: 1}]"), false),
            Kind::Stages
        );
        assert_eq!(
            Kind::of(
                &load("users: {users: 2, spawn_rate: 1, duration: 1s}"),
                false
            ),
            Kind::Users
        );
        assert_eq!(Kind::of(&load("sweep: {duration: 1s}"), false), Kind::Sweep);
        assert_eq!(
            Kind::of(
                &load("stress: {concurrency: [1], step_duration: 1s, limits: []}"),
                false
            )
            .name(),
            "stress"
        );
        assert_eq!(Kind::of(&load("{}"), false), Kind::None);
    }
}
