//! The scenario loader + validator (`Config::parse`, what `inferbench validate FILE` runs after
//! reading the file) on arbitrary text. Must never panic; errors must format.
#![no_main]

use inferbench_config::Config;
use inferbench_config::yaml::{field_at, line_of};
use libfuzzer_sys::fuzz_target;

/// A directory that does not exist, so `prompts_file: relative/path` resolves to nothing.
const ORIGIN: &str = "/nonexistent-inferbench-fuzz/scenario.yaml";

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    match Config::parse(&text, ORIGIN) {
        Ok(c) => {
            let f = &c.file;
            assert!(!f.scenarios.is_empty());
            for s in &f.scenarios {
                let _ = c.scenario(s.name.value.as_str());
            }
            let _ = format!("{c:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
        }
    }
    // The line <-> field helpers used in messages, on a few lines (each call walks the text).
    let lines = text.lines().count() as u64;
    for n in [0, 1, lines / 2, lines, lines + 1] {
        let path = field_at(&text, n);
        if !path.is_empty() {
            let _ = line_of(&text, &path);
        }
    }
});
