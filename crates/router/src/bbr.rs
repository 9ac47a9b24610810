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
    /// The text prefix caching keys on: the JSON of `messages`, or `prompt`.
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

/// Reads the body; `Err` when it is not a JSON object.
pub fn parse(body: &[u8]) -> Result<BodyInfo, String> {
    let b: Body<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let prefix_text = match (b.messages, b.prompt) {
        (Some(m), _) => Some(m.get().to_string()),
        (None, Some(p)) => {
            Some(serde_json::from_str::<String>(p.get()).unwrap_or_else(|_| p.get().to_string()))
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
        assert!(parse(b"not json").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
