//! Prompts files (`workload.prompts`): JSONL, one request a line, `prompt` or `messages`, with
//! optional `max_tokens` and `model`. Read whole at validation, so a bad line is reported before
//! any request is sent; errors name the file, the line and the field.

use serde::Deserialize;

use crate::file::ConfigError;

/// One line of a prompts file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    prompt: Option<String>,
    messages: Option<Vec<Message>>,
    max_tokens: Option<usize>,
    model: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Message {
    role: String,
    content: String,
}

/// A prompt read from a file.
#[derive(Debug, Clone)]
pub struct FilePrompt {
    /// The conversation before the prompt: (role, content).
    pub history: Vec<(String, String)>,
    /// The prompt (the last message).
    pub prompt: String,
    /// `max_tokens` for it, if the line sets one.
    pub max_tokens: Option<usize>,
    /// The model it asks for, if the line names one.
    pub model: Option<String>,
}

/// Reads a whole JSONL prompts file and returns how many prompts it holds: validation calls it,
/// so that a bad line is reported before any request is sent.
pub fn check_prompts_file(path: &std::path::Path) -> Result<usize, ConfigError> {
    read_prompts(path).map(|p| p.len())
}

/// Reads a whole JSONL prompts file; errors name the file, the line (1-based, blank lines
/// counted) and the field (`json` when the line is not a JSON object of the right shape).
pub fn read_prompts(path: &std::path::Path) -> Result<Vec<FilePrompt>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_prompts(&text, &path.display().to_string())
}

/// Parses the text of a JSONL prompts file; `origin` names it in messages.
pub fn parse_prompts(text: &str, origin: &str) -> Result<Vec<FilePrompt>, ConfigError> {
    let max_tokens_limit = crate::limits::MAX_TOKENS;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str, message: String| ConfigError::At {
            file: origin.to_string(),
            line: i as u64 + 1,
            field: field.into(),
            message,
        };
        let p: PromptLine = serde_json::from_str(line).map_err(|e| {
            // serde_json counts lines within the one line it was given: keep the column only.
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_string();
            at("json", format!("{msg} (column {})", e.column()))
        })?;
        let (history, prompt) = match (p.prompt, p.messages) {
            (Some(t), None) => (Vec::new(), t),
            (None, Some(mut m)) if !m.is_empty() => {
                let last = m.pop().map(|m| m.content).unwrap_or_default();
                (m.into_iter().map(|m| (m.role, m.content)).collect(), last)
            }
            _ => {
                return Err(at(
                    "prompt",
                    "needs exactly one of `prompt` or a non-empty `messages`".into(),
                ));
            }
        };
        if let Some(m) = p.max_tokens
            && m as u64 > max_tokens_limit
        {
            return Err(at(
                "max_tokens",
                format!("{m} is above the limit of {max_tokens_limit} tokens per request"),
            ));
        }
        out.push(FilePrompt {
            history,
            prompt,
            max_tokens: p.max_tokens,
            model: p.model,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::At {
            file: origin.to_string(),
            line: 1,
            field: "prompt".into(),
            message: if text.trim().is_empty() {
                "the file is empty: it holds no prompt".into()
            } else {
                "the file holds no prompt".into()
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(e: ConfigError) -> (u64, String, String) {
        match e {
            ConfigError::At {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            ConfigError::Read { .. } | ConfigError::Flag(_) => panic!("not a line error: {e}"),
        }
    }

    #[test]
    fn the_first_bad_line_is_named_with_its_column() {
        let text = "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": 3}\n{\"oops\"\n";
        let (line, field, message) = at(parse_prompts(text, "p.jsonl").unwrap_err());
        assert_eq!((line, field.as_str()), (3, "json"));
        assert!(message.contains("invalid type"), "{message}");
        assert!(message.ends_with("(column 12)"), "{message}");
        assert!(!message.contains("line 1"), "{message}");
    }

    #[test]
    fn lines_are_counted_with_blank_ones() {
        let text = "\n{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"extra\": 1}\n";
        let (line, _, message) = at(parse_prompts(text, "p.jsonl").unwrap_err());
        assert_eq!(line, 4, "{message}");
        assert!(message.contains("unknown field `extra`"), "{message}");
        let ok = parse_prompts("{\"prompt\": \"a\", \"max_tokens\": 7}\n", "p.jsonl").unwrap();
        assert_eq!((ok.len(), ok[0].max_tokens), (1, Some(7)));
    }

    proptest! {
        /// Any text, valid or not, is read without a panic; what is accepted holds prompts.
        #[test]
        fn any_text_is_read_without_panic(lines in proptest::collection::vec(
            prop_oneof![
                "\\PC{0,40}",
                any::<i64>().prop_map(|n| format!("{{\"prompt\": \"x\", \"max_tokens\": {n}}}")),
                any::<f64>().prop_map(|n| format!("{{\"prompt\": \"x\", \"max_tokens\": {n}}}")),
                Just("{\"messages\": []}".to_string()),
                Just("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}".to_string()),
            ],
            0..8,
        )) {
            let text = lines.join("\n");
            match parse_prompts(&text, "p.jsonl") {
                Ok(p) => {
                    prop_assert!(!p.is_empty());
                    for f in &p {
                        prop_assert!(f.max_tokens.is_none_or(|m| m as u64 <= crate::limits::MAX_TOKENS));
                    }
                }
                Err(e) => {
                    let (line, _, _) = at(e);
                    prop_assert!(line >= 1 && line as usize <= lines.len().max(1));
                }
            }
        }
    }
}
