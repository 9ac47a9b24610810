//! `load.stages`: one engine run through a list of rate or concurrency levels, each flat or
//! ramping from the level before; every stage reported on its own.

use inferbench_config::Stage;
use inferbench_loadgen::engine::{Level, Load};
use tokio::sync::watch;

use super::Ran;
use crate::step::{Ctx, Step, scaled};

/// The engine levels of `list` (durations × `scale`) and the stages' names.
pub fn levels(list: &[Stage], scale: f64) -> (Vec<Level>, Vec<String>) {
    let mut prev = 0.0;
    let mut levels = Vec::new();
    let mut names = Vec::new();
    for (i, st) in list.iter().enumerate() {
        let level = match (&st.rate, &st.concurrency) {
            (Some(r), _) => r.value,
            (_, Some(n)) => n.value as f64,
            _ => 0.0,
        };
        levels.push(Level {
            duration: scaled(st.duration.value.0, scale),
            from: if st.ramp { prev } else { level },
            to: level,
        });
        names.push(
            st.name
                .clone()
                .unwrap_or_else(|| format!("stage {}", i + 1)),
        );
        prev = level;
    }
    (levels, names)
}

/// Runs the stages as one step, named `stages`.
pub async fn run(ctx: &Ctx<'_>, list: &[Stage], stop: watch::Receiver<bool>) -> Ran {
    let open = list.first().is_some_and(|st| st.rate.is_some());
    let (levels, names) = levels(list, ctx.opts.scale);
    let load = if open {
        Load::OpenStages {
            arrival: ctx.arrival,
            stages: levels,
        }
    } else {
        Load::ClosedStages { stages: levels }
    };
    Ran::single(ctx, Step::whole(ctx, "stages", load, None, names), stop).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_ramp_starts_from_the_stage_before() {
        let list: Vec<Stage> = serde_saphyr::from_str(
            "- {name: warm, duration: 10s, rate: 2}\n- {duration: 20s, rate: 8, ramp: true}\n- {duration: 5s, rate: 1}\n",
        )
        .expect("yaml");
        let (levels, names) = levels(&list, 0.5);
        assert_eq!(names, ["warm", "stage 2", "stage 3"]);
        let got: Vec<(Duration, f64, f64)> =
            levels.iter().map(|l| (l.duration, l.from, l.to)).collect();
        assert_eq!(
            got,
            [
                (Duration::from_secs(5), 2.0, 2.0),
                (Duration::from_secs(10), 2.0, 8.0),
                (Duration::from_millis(2500), 1.0, 1.0),
            ]
        );
    }
}
