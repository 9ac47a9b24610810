//! Showing and keeping what a run learned: the [`console`] summary, [`markdown`] and [`html`] reports, [`csv`] exports,
//! [`compare`] (two runs, a verdict per scenario and metric) and [`history`] (every run in an
//! embedded SQLite store).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cells;
pub mod compare;
pub mod console;
pub mod csv;
pub mod history;
pub mod html;
pub mod markdown;

/// Civil UTC date and time of a Unix time: (year, month, day, hour, minute, second)
/// (Howard Hinnant's days-to-civil algorithm).
pub fn utc_parts(unix_s: u64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, rem) = (unix_s / 86_400, unix_s % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let r = rem as u32;
    (y, m, d, r / 3600, r % 3600 / 60, r % 60)
}

/// A Unix time as `2026-11-25 01:02:03 UTC`.
pub fn utc(unix_s: u64) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(unix_s);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// Builders the unit tests share.
#[cfg(test)]
pub(crate) mod testutil {
    use inferbench_results::report::{Report, ScenarioReport};
    use inferbench_results::run::{RunResult, SCHEMA_VERSION};

    /// A passing report of one `rate` scenario called `name` whose result is `total`.
    pub(crate) fn one_scenario(name: &str, total: RunResult) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            started_unix_s: 1_700_000_000,
            config: Some("examples/x.yaml".into()),
            partial: false,
            scenarios: vec![ScenarioReport {
                name: name.into(),
                description: None,
                target: "local".into(),
                url: total.target.clone(),
                repeat: 1,
                kind: "rate".into(),
                stages: vec![],
                total,
                slo: None,
                thresholds: vec![],
                breaking_point: None,
                arms: vec![],
                passed: true,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_795_568_523), "2026-11-25 01:02:03 UTC");
    }
}
