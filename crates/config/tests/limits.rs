//! Bounds are checked before any request is sent: every value beyond a documented limit (and
//! every NaN, infinity or negative number) is refused with the file, the line, the field, the
//! value and the limit; prompts files are read to the end at validation.

use inferbench_config::limits;
use inferbench_config::yaml::line_of;
use inferbench_config::{Config, ConfigError};
use proptest::prelude::*;

mod common;
use common::{GOOD, err};

/// GOOD with `extra` lines added to the scenario (indented by 4).
fn with(extra: &str) -> String {
    format!("{GOOD}{extra}")
}

#[test]
fn rate_1e12_is_refused_with_the_limit() {
    let (line, field, shown) = err(&GOOD.replace("rate: 10", "rate: 1e12"));
    assert_eq!(
        (line, field.as_str()),
        (9, "scenarios[0].load.rate"),
        "{shown}"
    );
    assert!(
        shown.starts_with("suite.yaml:9: scenarios[0].load.rate: "),
        "{shown}"
    );
    assert!(shown.contains("1000000000000"), "value: {shown}");
    assert!(shown.contains("100000 requests/s"), "limit: {shown}");
}

#[test]
fn prompt_tokens_1e9_is_refused_with_the_limit() {
    let (line, field, shown) = err(&with("    workload:\n      prompt_tokens: 1e9\n"));
    assert_eq!(
        (line, field.as_str()),
        (12, "scenarios[0].workload.prompt_tokens"),
        "{shown}"
    );
    assert!(shown.contains("1000000000"), "value: {shown}");
    assert!(
        shown.contains("1000000 tokens per request"),
        "limit: {shown}"
    );
}

#[test]
fn concurrency_1e8_is_refused_with_the_limit() {
    let (line, field, shown) = err(&GOOD.replace("rate: 10", "concurrency: 100000000"));
    assert_eq!(
        (line, field.as_str()),
        (9, "scenarios[0].load.concurrency"),
        "{shown}"
    );
    assert!(
        shown.contains("100000000 is above the limit of 100000"),
        "{shown}"
    );
    // Written as a float it is not a whole number of the type: refused too, same field.
    let (line, field, shown) = err(&GOOD.replace("rate: 10", "concurrency: 1e8"));
    assert_eq!(
        (line, field.as_str()),
        (9, "scenarios[0].load.concurrency"),
        "{shown}"
    );
}

#[test]
fn nan_and_infinite_rates_are_refused() {
    for bad in [".nan", ".NaN", ".inf", "-.inf"] {
        let (line, field, shown) = err(&GOOD.replace("rate: 10", &format!("rate: {bad}")));
        assert_eq!(
            (line, field.as_str()),
            (9, "scenarios[0].load.rate"),
            "{shown}"
        );
        assert!(shown.contains("must be a number > 0"), "{shown}");
    }
    let (_, field, shown) = err(&GOOD.replace("rate: 10", "rate: .nan"));
    assert_eq!(field, "scenarios[0].load.rate");
    assert!(shown.contains("NaN"), "value: {shown}");
}

#[test]
fn nan_weights_and_distribution_parameters_are_refused() {
    let (line, field, shown) = err(&with(
        "    workload:\n      models:\n        - {name: mock-model, weight: .nan}\n",
    ));
    assert_eq!(
        (line, field.as_str()),
        (13, "scenarios[0].workload.models[0].weight"),
        "{shown}"
    );
    assert!(shown.contains("NaN"), "{shown}");
    let (_, field, shown) = err(&with(
        "    workload:\n      prompt_tokens: \"normal:nan:1:1:9\"\n",
    ));
    assert_eq!(field, "scenarios[0].workload.prompt_tokens", "{shown}");
}

#[test]
fn negative_values_are_refused_everywhere() {
    let cases: &[(&str, &str, &str)] = &[
        ("rate: 10", "rate: -1", "scenarios[0].load.rate"),
        (
            "rate: 10",
            "concurrency: -4",
            "scenarios[0].load.concurrency",
        ),
        ("duration: 30s", "duration: -5", "scenarios[0].duration"),
        ("duration: 30s", "duration: -5s", "scenarios[0].duration"),
        (
            "duration: 30s",
            "duration: 30s\n    requests: -3",
            "scenarios[0].requests",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    warmup: -1s",
            "scenarios[0].warmup",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    retries: -1",
            "scenarios[0].retries",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload: {prompt_tokens: -5}",
            "scenarios[0].workload",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      prompt_mix:\n        - {tokens: 10, weight: -1}",
            "scenarios[0].workload.prompt_mix[0].weight",
        ),
    ];
    for (from, to, want) in cases {
        let (line, field, shown) = err(&GOOD.replace(from, to));
        assert_eq!(&field, want, "{to}: {shown}");
        assert!(line > 0, "{to}: {shown}");
        assert!(shown.contains('-'), "value shown for {to}: {shown}");
    }
}

#[test]
fn values_just_at_the_limits_pass() {
    let text = "\
targets:
  - {name: local, url: http://127.0.0.1:8000, models: [m]}
scenarios:
  - name: top
    load: {rate: 100000}
    duration: 168h
    warmup: 168h
    requests: 1000000000
    max_in_flight: 1000000
    retries: 10
    retry_backoff: 1h
    workload: {prompt_tokens: 1000000, output_tokens: \"uniform:1:1000000\"}
  - name: closed
    load: {concurrency: 100000}
    duration: 604800
    workload:
      multi_turn: {turns: 1000, think_time: 1h}
      prompt_tokens: 500
      output_tokens: 500
  - name: steps
    load:
      stress: {start: 100, step: 100, max: 100000, step_duration: 1s, limits: [\"error_rate < 5%\"]}
";
    let c = Config::parse(text, "top.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.file.scenarios.len(), 3);
    assert_eq!(
        c.file.scenarios[0].load.rate.as_ref().map(|r| r.value),
        Some(100_000.0)
    );
    assert_eq!(c.file.scenarios[0].requests, Some(limits::MAX_REQUESTS));
    assert_eq!(
        c.file.scenarios[1]
            .load
            .concurrency
            .as_ref()
            .map(|r| r.value),
        Some(limits::MAX_CONCURRENCY)
    );
}

/// Each limit: (a change to GOOD, the field named, a piece of the message).
#[test]
fn every_limit_is_enforced_and_named() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "rate: 10",
            "rate: 100001",
            "scenarios[0].load.rate",
            "limit of 100000 requests/s",
        ),
        (
            "rate: 10",
            "concurrency: 100001",
            "scenarios[0].load.concurrency",
            "100001 is above the limit of 100000",
        ),
        (
            "duration: 30s",
            "duration: 169h",
            "scenarios[0].duration",
            "604800 s (7 days)",
        ),
        (
            "duration: 30s",
            "duration: 604801",
            "scenarios[0].duration",
            "604801 s is above",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    warmup: 8d_is_not_a_unit",
            "scenarios[0].warmup",
            "not a duration",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    warmup: 200h",
            "scenarios[0].warmup",
            "limit of 604800 s",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    requests: 1000000001",
            "scenarios[0].requests",
            "1000000001 is above the limit of 1000000000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    requests: 0",
            "scenarios[0].requests",
            "at least 1",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    max_in_flight: 1000001",
            "scenarios[0].max_in_flight",
            "limit of 1000000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    retries: 11",
            "scenarios[0].retries",
            "11 is above the limit of 10",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    retry_backoff: 2h",
            "scenarios[0].retry_backoff",
            "7200 s (2 h) is above the limit of 3600 s (1 h)",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    stop: {error_rate: 50%, min_requests: 2000000000}",
            "scenarios[0].stop.min_requests",
            "limit of 1000000000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      output_tokens: \"uniform:1:1000001\"",
            "scenarios[0].workload.output_tokens",
            "max 1000001 is above the limit of 1000000 tokens",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      prompt_tokens: \"normal:2000000:10:1:100\"",
            "scenarios[0].workload.prompt_tokens",
            "mean 2000000 is above",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      prompt_tokens: \"lognormal:100:2000000:1:100\"",
            "scenarios[0].workload.prompt_tokens",
            "sigma 2000000 is above",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      prompt_mix:\n        - tokens: 10\n        - tokens: 1000001",
            "scenarios[0].workload.prompt_mix[1].tokens",
            "1000001 is above",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      output_mix:\n        - {tokens: 10, weight: 0}\n        - {tokens: 20, weight: 0}",
            "scenarios[0].workload.output_mix",
            "every weight is 0",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      models:\n        - {name: a, weight: 2e9}",
            "scenarios[0].workload.models[0].weight",
            "limit of 1000000000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      models:\n        - {name: a, weight: 0}\n      lora:\n        - {name: b, weight: 0}",
            "scenarios[0].workload.models",
            "every weight of models and lora is 0",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      shared_prefix:\n        groups: 2\n        prompts_per_group: 2\n        prefix_tokens: 1000001",
            "scenarios[0].workload.shared_prefix.prefix_tokens",
            "1000001 tokens is above the limit of 1000000 tokens",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      prompt_tokens: 500000\n      shared_prefix:\n        groups: 2\n        prompts_per_group: 2\n        prefix_tokens: 600000",
            "scenarios[0].workload.shared_prefix.prefix_tokens",
            "make 1100000 tokens",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      shared_prefix:\n        groups: 2000000\n        prompts_per_group: 2\n        prefix_tokens: 10",
            "scenarios[0].workload.shared_prefix.groups",
            "2000000 is above the limit of 1000000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      multi_turn:\n        turns: 1001",
            "scenarios[0].workload.multi_turn.turns",
            "1001 is above the limit of 1000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      multi_turn:\n        turns: 2\n        think_time: 61m",
            "scenarios[0].workload.multi_turn.think_time",
            "3660 s is above the limit of 3600 s (1 h)",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    workload:\n      prompt_tokens: 100000\n      output_tokens: 1000\n      multi_turn:\n        turns: 10",
            "scenarios[0].workload.multi_turn.turns",
            "last request of up to 1010000 tokens",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    slo:\n      ttft: 200h",
            "scenarios[0].slo.ttft",
            "720000 s (200 h) is above the limit of 604800 s (7 days)",
        ),
        (
            "    url: http://127.0.0.1:8000",
            "    url: http://127.0.0.1:8000\n    timeout: 0s",
            "targets[0].timeout",
            "longer than 0",
        ),
        (
            "    url: http://127.0.0.1:8000",
            "    url: http://127.0.0.1:8000\n    ttft_timeout: 1000h",
            "targets[0].ttft_timeout",
            "limit of 604800 s",
        ),
        (
            "duration: 30s",
            "duration: 168h\n    arms: [direct, epp]\n    arm_window: 100ms",
            "scenarios[0].arm_window",
            "6048000 windows, above the limit of 1000000",
        ),
        (
            "duration: 30s",
            "duration: 30s\n    arms:\n      - direct\n      - name: mine\n        queue: -2",
            "scenarios[0].arms[1].queue",
            "≥ 0, got -2",
        ),
    ];
    for (from, to, want_field, want_msg) in cases {
        let text = GOOD.replace(from, to);
        let (line, field, shown) = err(&text);
        assert_eq!(&field, want_field, "{to}: {shown}");
        assert!(
            shown.contains(want_msg),
            "{to}: want `{want_msg}` in: {shown}"
        );
        assert!(line > 0, "{to}: line: {shown}");
        // The line is the one that holds the field, where the text has it on a line of its own.
        if let Some(l) = line_of(&text, want_field) {
            assert_eq!(line, l, "{to}: {shown}");
        }
    }
}

#[test]
fn load_kind_limits_are_enforced_and_named() {
    let load = |l: &str| GOOD.replace("      rate: 10\n    duration: 30s\n", l);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            load("      stages:\n        - {duration: 1s, rate: 100001}\n"),
            "scenarios[0].load.stages[0].rate",
            "limit of 100000 requests/s",
        ),
        (
            load("      stages:\n        - {duration: 1s, rate: .inf}\n"),
            "scenarios[0].load.stages[0].rate",
            "must be a number ≥ 0, got inf",
        ),
        (
            load("      stages:\n        - duration: 1s\n          concurrency: 200000\n"),
            "scenarios[0].load.stages[0].concurrency",
            "200000 is above the limit of 100000",
        ),
        (
            load("      stages:\n        - duration: 169h\n          rate: 1\n"),
            "scenarios[0].load.stages[0].duration",
            "limit of 604800 s",
        ),
        (
            load(&format!(
                "      stages:\n{}",
                "        - {duration: 1s, rate: 1}\n".repeat(1001)
            )),
            "scenarios[0].load.stages",
            "1001 stages is above the limit of 1000 stages",
        ),
        (
            load("      sweep:\n        rates: 1001\n        duration: 1s\n"),
            "scenarios[0].load.sweep.rates",
            "1001 is above the limit of 1000",
        ),
        (
            load("      sweep:\n        max_concurrency: 100001\n        duration: 1s\n"),
            "scenarios[0].load.sweep.max_concurrency",
            "limit of 100000",
        ),
        (
            load(
                "      stress:\n        start: 1\n        step: 0.01\n        max: 100\n        step_duration: 1s\n        limits: [\"error_rate < 5%\"]\n",
            ),
            "scenarios[0].load.stress.step",
            "9901 steps, above the limit of 1000",
        ),
        (
            load(
                "      stress:\n        start: 1\n        step: 1\n        max: 1e6\n        step_duration: 1s\n        limits: [\"error_rate < 5%\"]\n",
            ),
            "scenarios[0].load.stress.max",
            "limit of 100000 requests/s",
        ),
        (
            load(
                "      stress:\n        concurrency: [1, 200000]\n        step_duration: 1s\n        limits: [\"error_rate < 5%\"]\n",
            ),
            "scenarios[0].load.stress.concurrency[1]",
            "200000 is above the limit of 100000",
        ),
        (
            load(
                "      users:\n        users: 100001\n        spawn_rate: 10\n        duration: 1s\n",
            ),
            "scenarios[0].load.users.users",
            "limit of 100000",
        ),
        (
            load(
                "      users:\n        users: 1000\n        spawn_rate: 0.001\n        duration: 1s\n",
            ),
            "scenarios[0].load.users.spawn_rate",
            "ramp of 1000000 s, above the limit of 604800 s (7 days)",
        ),
        (
            load(
                "      users:\n        users: 10\n        spawn_rate: .nan\n        duration: 1s\n",
            ),
            "scenarios[0].load.users.spawn_rate",
            "got NaN",
        ),
    ];
    for (text, want_field, want_msg) in &cases {
        let (line, field, shown) = err(text);
        assert_eq!(&field, want_field, "{shown}");
        assert!(shown.contains(want_msg), "want `{want_msg}` in: {shown}");
        assert!(line > 0, "{shown}");
    }
}

#[test]
fn suite_repeats_are_bounded() {
    let text = format!("{GOOD}suite:\n  - scenario: steady\n    repeats: 1001\n");
    let (line, field, shown) = err(&text);
    assert_eq!((line, field.as_str()), (13, "suite[0].repeats"), "{shown}");
    assert!(shown.contains("1001 is above the limit of 1000"), "{shown}");
}

#[test]
fn flow_style_values_name_the_exact_field() {
    let (line, field, shown) =
        err(&GOOD.replace("    load:\n      rate: 10", "    load: {rate: 1e12}"));
    assert_eq!(
        (line, field.as_str()),
        (8, "scenarios[0].load.rate"),
        "{shown}"
    );
    let (line, field, shown) = err(&with("    workload: {output_tokens: 2000000}\n"));
    assert_eq!(
        (line, field.as_str()),
        (11, "scenarios[0].workload.output_tokens"),
        "{shown}"
    );
}

#[test]
fn huge_numeric_durations_are_errors_not_panics() {
    let (line, field, shown) = err(&GOOD.replace("duration: 30s", "duration: 1e300"));
    assert_eq!(
        (line, field.as_str()),
        (10, "scenarios[0].duration"),
        "{shown}"
    );
    assert!(
        shown.ends_with(
            "not a number of seconds ≥ 0 within the limit of 604800 s (7 days) (got `1e300`)"
        ),
        "{shown}"
    );
    let (_, field, shown) = err(&GOOD.replace("duration: 30s", "duration: -5"));
    assert_eq!(field, "scenarios[0].duration", "{shown}");
    assert!(shown.contains("(got `-5`)"), "{shown}");
}

#[test]
fn type_errors_show_the_value_written() {
    let (line, field, shown) =
        err(&GOOD.replace("duration: 30s", "duration: 30s\n    requests: -3"));
    assert_eq!(
        (line, field.as_str()),
        (11, "scenarios[0].requests"),
        "{shown}"
    );
    assert_eq!(
        shown,
        "suite.yaml:11: scenarios[0].requests: invalid u64 (got `-3`)"
    );
    let (_, field, shown) = err(&with("    workload: {prompt_tokens: 2.5}\n"));
    assert_eq!(field, "scenarios[0].workload", "{shown}");
    assert!(
        shown.contains("`2.5` is not a whole number of tokens ≥ 0"),
        "{shown}"
    );
}

/// A directory with a scenario file using `prompts.jsonl` holding `jsonl`.
fn prompts_case(name: &str, jsonl: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("inferbench-limits-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("prompts.jsonl"), jsonl).unwrap();
    let yaml = dir.join("suite.yaml");
    let text = with("    workload:\n      prompts_file: prompts.jsonl\n");
    std::fs::write(&yaml, &text).unwrap();
    (yaml, text)
}

fn load_err(path: &std::path::Path) -> (String, u64, String, String) {
    match Config::load(path) {
        Ok(_) => panic!("accepted {}", path.display()),
        Err(e @ ConfigError::At { .. }) => {
            let shown = e.to_string();
            let ConfigError::At {
                file, line, field, ..
            } = e
            else {
                unreachable!()
            };
            (file, line, field, shown)
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn a_prompts_file_with_a_bad_third_line_fails_validation() {
    let (yaml, _) = prompts_case(
        "bad3",
        "{\"prompt\": \"one\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"two\"}]}\n{\"prompt\": \"three\",}\n{\"prompt\": \"four\"}\n",
    );
    let (file, line, field, shown) = load_err(&yaml);
    assert!(file.ends_with("prompts.jsonl"), "{shown}");
    assert_eq!((line, field.as_str()), (3, "json"), "{shown}");
    assert!(shown.contains("prompts.jsonl:3: json: "), "{shown}");
    assert!(shown.contains("column"), "{shown}");
    assert!(
        shown.contains("the prompts_file of scenarios[0]") && shown.contains("suite.yaml:12"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(yaml.parent().unwrap());
}

#[test]
fn a_prompts_file_is_checked_to_the_end() {
    // A bad line far down, after blank lines (which count): its number is reported.
    let mut jsonl = "{\"prompt\": \"ok\"}\n".repeat(500);
    jsonl.push('\n');
    jsonl.push_str("{\"prompt\": \"x\", \"max_tokens\": 2000000}\n");
    let (yaml, _) = prompts_case("far", &jsonl);
    let (_, line, field, shown) = load_err(&yaml);
    assert_eq!((line, field.as_str()), (502, "max_tokens"), "{shown}");
    assert!(
        shown.contains("2000000 is above the limit of 1000000"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(yaml.parent().unwrap());

    let (yaml, _) = prompts_case("shape", "{\"prompt\": \"a\"}\n{\"model\": \"m\"}\n");
    let (_, line, field, shown) = load_err(&yaml);
    assert_eq!((line, field.as_str()), (2, "prompt"), "{shown}");
    let _ = std::fs::remove_dir_all(yaml.parent().unwrap());
}

#[test]
fn an_empty_prompts_file_fails_validation() {
    for (name, body) in [("empty", ""), ("blank", "\n  \n\n")] {
        let (yaml, _) = prompts_case(name, body);
        let (file, line, field, shown) = load_err(&yaml);
        assert!(file.ends_with("prompts.jsonl"), "{shown}");
        assert_eq!((line, field.as_str()), (1, "prompt"), "{shown}");
        assert!(shown.contains("the file is empty"), "{shown}");
        let _ = std::fs::remove_dir_all(yaml.parent().unwrap());
    }
}

#[test]
fn a_good_prompts_file_passes() {
    let (yaml, _) = prompts_case(
        "good",
        "{\"prompt\": \"one\", \"max_tokens\": 1000000}\n\n{\"prompt\": \"two\"}\n",
    );
    let c = Config::load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.file.scenarios.len(), 1);
    let _ = std::fs::remove_dir_all(yaml.parent().unwrap());
}

#[test]
fn line_of_finds_block_keys_only() {
    let text =
        "scenarios:\n  - name: a\n    load: {rate: 3}\n    workload:\n      prompt_tokens: 5\n";
    assert_eq!(
        line_of(text, "scenarios[0].workload.prompt_tokens"),
        Some(5)
    );
    assert_eq!(line_of(text, "scenarios[0].load"), Some(3));
    assert_eq!(line_of(text, "scenarios[0].load.rate"), None);
    assert_eq!(line_of(text, "scenarios[1].name"), None);
}

/// Numbers as people (and fuzzers) write them in YAML.
fn yaml_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| format!("{v}")),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        (0u32..400).prop_map(|e| format!("1e{e}")),
        (0u32..400).prop_map(|e| format!("-1e{e}")),
        Just(".nan".to_string()),
        Just(".inf".to_string()),
        Just("-.inf".to_string()),
        Just("-0".to_string()),
        Just("0x7fffffffffffffff".to_string()),
        Just("\"1e9\"".to_string()),
        Just("\"nan\"".to_string()),
        (
            any::<f64>(),
            prop_oneof![Just("s"), Just("ms"), Just("m"), Just("h"), Just("us")]
        )
            .prop_map(|(v, u)| format!("{v}{u}")),
        (0u64..2_000_000).prop_map(|v| format!("\"uniform:{v}:{}\"", v.saturating_mul(3))),
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| format!("\"normal:{a}:{b}:0:{}\"", 10)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever number goes in whichever numeric field, loading and validating never panics; an
    /// accepted file keeps every limit, a refused one names the file and a field.
    #[test]
    fn random_numbers_never_panic_the_loader(
        rate in yaml_number(),
        conc in yaml_number(),
        dur in yaml_number(),
        other in yaml_number(),
        which in 0usize..10,
        closed in any::<bool>(),
    ) {
        let load = if closed { format!("concurrency: {conc}") } else { format!("rate: {rate}") };
        let extra = [
            format!("requests: {other}"),
            format!("warmup: {other}"),
            format!("max_in_flight: {other}"),
            format!("retries: {other}"),
            format!("retry_backoff: {other}"),
            format!("workload: {{output_tokens: {other}}}"),
            format!("workload: {{multi_turn: {{turns: {other}}}}}"),
            format!("workload: {{models: [{{name: m, weight: {other}}}]}}"),
            format!("slo: {{ttft: {other}}}"),
            format!("seed: {other}"),
        ][which].clone();
        let text = format!(
            "targets:\n  - {{name: t, url: http://127.0.0.1:1, models: [m]}}\nscenarios:\n  - name: s\n    load:\n      {load}\n    duration: {dur}\n    {extra}\n"
        );
        match Config::parse(&text, "p.yaml") {
            Ok(c) => {
                let s = &c.file.scenarios[0];
                if let Some(r) = &s.load.rate {
                    prop_assert!(r.value.is_finite() && r.value > 0.0 && r.value <= limits::MAX_RATE);
                }
                if let Some(n) = &s.load.concurrency {
                    prop_assert!((1..=limits::MAX_CONCURRENCY).contains(&n.value));
                }
                if let Some(d) = &s.duration {
                    prop_assert!(d.value.0 <= limits::MAX_DURATION && !d.value.0.is_zero());
                }
                if let Some(n) = s.requests {
                    prop_assert!((1..=limits::MAX_REQUESTS).contains(&n));
                }
                if let Some(n) = s.retries {
                    prop_assert!(n <= limits::MAX_RETRIES);
                }
            }
            Err(ConfigError::At { file, field, .. }) => {
                prop_assert_eq!(file, "p.yaml");
                prop_assert!(!field.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected error kind: {}", e),
        }
    }

    /// Token fields take any number or distribution text without panicking.
    #[test]
    fn random_token_lengths_never_panic(tokens in yaml_number(), prompt in any::<bool>()) {
        let key = if prompt { "prompt_tokens" } else { "output_tokens" };
        let text = with(&format!("    workload:\n      {key}: {tokens}\n"));
        match Config::parse(&text, "p.yaml") {
            Ok(c) => {
                let w = &c.file.scenarios[0].workload;
                let t = if prompt { &w.prompt_tokens } else { &w.output_tokens };
                let t = t.as_ref().map(|t| t.0.typical()).unwrap_or(0.0);
                prop_assert!(t <= limits::MAX_TOKENS as f64);
            }
            Err(ConfigError::At { field, .. }) => prop_assert!(!field.is_empty()),
            Err(e) => prop_assert!(false, "unexpected error kind: {}", e),
        }
    }
}
