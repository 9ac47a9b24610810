//! Reading a scenario file: parse (serde-saphyr) then validate, so a [`Config`] that exists
//! is one that can run.

use std::path::Path;

use crate::file::{Config, ConfigError, ConfigFile};
use crate::yaml::{field_at, first_line_of, with_value};

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates `text`; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            let column = e.location().map_or(0, |l| l.column());
            let message = with_value(text, line, column, &first_line_of(&e.to_string()));
            ConfigError::At {
                file: origin.to_string(),
                line,
                field: field_at(text, line),
                message,
            }
        })?;
        let c = Config {
            file,
            origin: origin.to_string(),
            text: text.to_string(),
        };
        crate::validate::validate(&c)?;
        Ok(c)
    }
}
