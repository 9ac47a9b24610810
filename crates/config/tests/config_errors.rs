//! Each class of configuration error names the file, the line and the field.

use inferbench_config::Config;

mod common;
use common::{GOOD, err};

#[test]
fn the_good_file_parses() {
    let c = Config::parse(GOOD, "suite.yaml").unwrap();
    assert_eq!(c.file.scenarios.len(), 1);
    assert_eq!(
        *c.file.scenarios[0].load.rate.as_ref().unwrap().value(),
        10.0
    );
}

trait Value<T> {
    fn value(&self) -> &T;
}
impl<T> Value<T> for inferbench_config::Loc<T> {
    fn value(&self) -> &T {
        &self.value
    }
}

#[test]
fn unknown_key() {
    let (line, field, shown) = err(&GOOD.replace("    duration: 30s", "    duratoin: 30s"));
    assert_eq!(line, 10, "{shown}");
    assert_eq!(field, "scenarios[0].duratoin", "{shown}");
    assert!(shown.contains("duratoin"), "{shown}");
    assert!(shown.contains("suite.yaml:10:"), "{shown}");
}

#[test]
fn wrong_type() {
    let (line, field, shown) = err(&GOOD.replace("rate: 10", "rate: fast"));
    assert_eq!(line, 9, "{shown}");
    assert_eq!(field, "scenarios[0].load.rate", "{shown}");
    assert!(shown.contains("suite.yaml:9:"), "{shown}");
}

#[test]
fn negative_rate() {
    let (line, field, shown) = err(&GOOD.replace("rate: 10", "rate: -10"));
    assert_eq!(line, 9, "{shown}");
    assert_eq!(field, "scenarios[0].load.rate", "{shown}");
    assert!(shown.contains("> 0") && shown.contains("-10"), "{shown}");
}

#[test]
fn unknown_target_name() {
    let (line, field, shown) = err(&GOOD.replace("target: local", "target: prod"));
    assert_eq!(line, 7, "{shown}");
    assert_eq!(field, "scenarios[0].target", "{shown}");
    assert!(
        shown.contains("unknown target `prod`") && shown.contains("local"),
        "{shown}"
    );
}

#[test]
fn bad_threshold_and_duration_and_load_kinds() {
    let with_threshold = format!("{GOOD}    thresholds: [\"ttft.p95 < fast\"]\n");
    let (line, field, shown) = err(&with_threshold);
    assert_eq!(
        (line, field.as_str()),
        (11, "scenarios[0].thresholds"),
        "{shown}"
    );
    let (line, _, shown) = err(&GOOD.replace("duration: 30s", "duration: soon"));
    assert_eq!(line, 10, "{shown}");
    let (_, field, shown) =
        err(&GOOD.replace("      rate: 10", "      rate: 10\n      concurrency: 3"));
    assert_eq!(field, "scenarios[0].name", "{shown}");
    assert!(shown.contains("exactly one of"), "{shown}");
}

#[test]
fn builtin_suite_is_valid() {
    let c = Config::parse(inferbench_config::BUILTIN_SUITE, "built-in").unwrap();
    assert!(c.file.scenarios.len() >= 6);
}

#[test]
fn schema_is_generated_from_the_types() {
    let s: serde_json::Value = serde_json::from_str(&inferbench_config::schema()).unwrap();
    assert!(s["properties"]["scenarios"].is_object());
    let text = s.to_string();
    assert!(text.contains("prefix_tokens") && text.contains("spawn_rate"));
}
