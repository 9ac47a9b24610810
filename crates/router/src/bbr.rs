//! The body-based-routing stage: read `model` from the JSON body; the body itself is forwarded
//! unchanged.

use serde::Deserialize;

/// The header BBR sets.
pub const MODEL_HEADER: &str = "x-gateway-model-name";
/// The header with an adapter's base model.
pub const BASE_MODEL_HEADER: &str = "x-gateway-base-model-name";

/// What the router needs from a request body.
#[derive(Debug, Default, PartialEq)]
pub struct BodyInfo {
    /// `model`, if present.
    pub model: Option<String>,
    /// The text prefix caching keys on: the JSON of `messages`, or `prompt` — as much of it as
    /// the prefix scorer hashes (a few bytes more at most), not a copy of a large body.
    pub prefix_text: Option<String>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    messages: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    prompt: Option<&'a serde_json::value::RawValue>,
}

/// Bytes of text the prefix scorer hashes at most.
const PREFIX_BYTES: usize = crate::picker::prefix::BLOCK_CHARS * crate::picker::prefix::MAX_BLOCKS;

/// The start of `text` that holds its first [`PREFIX_BYTES`] bytes (ending on a character).
fn head(text: &str) -> &str {
    if text.len() <= PREFIX_BYTES {
        return text;
    }
    let mut end = PREFIX_BYTES;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    &text[..end]
}

/// Reads the body; `Err` when it is not a JSON object.
pub fn parse(body: &[u8]) -> Result<BodyInfo, String> {
    // serde would read a struct from a JSON array too: a body must be an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("the body is not a JSON object".into());
    }
    let b: Body<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let prefix_text = match (b.messages, b.prompt) {
        (Some(m), _) => Some(head(m.get()).to_string()),
        (None, Some(p)) => {
            let mut text =
                serde_json::from_str::<String>(p.get()).unwrap_or_else(|_| head(p.get()).into());
            let keep = head(&text).len();
            if keep < text.len() {
                text.truncate(keep);
                text.shrink_to_fit();
            }
            Some(text)
        }
        _ => None,
    };
    Ok(BodyInfo {
        model: b.model.map(|m| m.into_owned()),
        prefix_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_array_is_not_a_body() {
        assert!(parse(br#"["m",[1]]"#).is_err());
        assert!(parse(b"  {\"model\":\"m\"}").is_ok());
    }

    #[test]
    fn reads_model_and_prefix_text() {
        let b =
            parse(br#"{"model":"Qwen/Qwen2.5-3B","messages":[{"role":"user","content":"hi"}]}"#)
                .unwrap();
        assert_eq!(b.model.as_deref(), Some("Qwen/Qwen2.5-3B"));
        assert_eq!(
            b.prefix_text.as_deref(),
            Some(r#"[{"role":"user","content":"hi"}]"#)
        );
        let c = parse(br#"{"model":"m","prompt":"once upon"}"#).unwrap();
        assert_eq!(c.prefix_text.as_deref(), Some("once upon"));
        assert_eq!(parse(b"{}").unwrap(), BodyInfo::default());
        // A large body is not copied: the text keeps what the prefix scorer hashes.
        let long = "é".repeat(20_000);
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{long}"}}]}}"#);
        let t = parse(body.as_bytes()).unwrap().prefix_text.unwrap();
        assert_eq!(t.len(), PREFIX_BYTES + 1);
        assert!(body.contains(&t));
        let body = format!(r#"{{"model":"m","prompt":"{long}"}}"#);
        let t = parse(body.as_bytes()).unwrap().prefix_text.unwrap();
        assert_eq!(t, "é".repeat(PREFIX_BYTES / 2));
        assert_eq!(
            crate::picker::prefix::block_hashes("m", &t),
            crate::picker::prefix::block_hashes("m", &long)
        );
        assert!(parse(b"not json").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
