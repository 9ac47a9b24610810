//! What the configuration tests share: a good file, and the error a bad one gets.

use inferbench_config::{Config, ConfigError};

/// A file that parses: one target, one scenario at 10 requests/s for 30 s.
pub const GOOD: &str = "\
targets:
  - name: local
    url: http://127.0.0.1:8000
    models: [mock-model]
scenarios:
  - name: steady
    target: local
    load:
      rate: 10
    duration: 30s
";

/// The error `text` gets as `suite.yaml`: (line, field, the whole message).
pub fn err(text: &str) -> (u64, String, String) {
    err_in(text, "suite.yaml")
}

/// The error `text` gets as `origin`: (line, field, the whole message), which names the file.
pub fn err_in(text: &str, origin: &str) -> (u64, String, String) {
    match Config::parse(text, origin) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e @ ConfigError::At { .. }) => {
            let shown = e.to_string();
            let ConfigError::At { line, field, .. } = e else {
                unreachable!()
            };
            assert!(shown.starts_with(&format!("{origin}:")), "file: {shown}");
            (line, field, shown)
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}
