//! `load.users`: a Locust-style closed loop — users added at `spawn_rate` per second up to
//! `users` (stage `ramp-up`), then held for `duration` (stage `hold`).

use std::time::Duration;

use inferbench_config::Users;
use inferbench_loadgen::engine::{Level, Load};
use tokio::sync::watch;

use super::Ran;
use crate::step::{Ctx, Step, scaled};

/// The ramp-up and hold levels of `u` (durations × `scale`).
pub fn levels(u: &Users, scale: f64) -> Vec<Level> {
    let n = u.users.value.max(1) as f64;
    let ramp = Duration::from_secs_f64(n / u.spawn_rate.value.max(1e-9));
    vec![
        Level {
            duration: scaled(ramp, scale),
            from: 0.0,
            to: n,
        },
        Level {
            duration: scaled(u.duration.value.0, scale),
            from: n,
            to: n,
        },
    ]
}

/// Runs the ramp and the hold as one step, named `users`.
pub async fn run(ctx: &Ctx<'_>, u: &Users, stop: watch::Receiver<bool>) -> Ran {
    let load = Load::ClosedStages {
        stages: levels(u, ctx.opts.scale),
    };
    let names = vec!["ramp-up".into(), "hold".into()];
    Ran::single(ctx, Step::whole(ctx, "users", load, None, names), stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_lasts_users_over_spawn_rate() {
        let u: Users =
            serde_saphyr::from_str("{users: 20, spawn_rate: 4, duration: 30s}").expect("yaml");
        let got: Vec<(Duration, f64, f64)> = levels(&u, 1.0)
            .iter()
            .map(|l| (l.duration, l.from, l.to))
            .collect();
        assert_eq!(
            got,
            [
                (Duration::from_secs(5), 0.0, 20.0),
                (Duration::from_secs(30), 20.0, 20.0)
            ]
        );
    }
}
