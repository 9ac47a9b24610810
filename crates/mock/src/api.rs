//! The OpenAI request shapes the mock reads, and the chunk and response texts it writes.

use serde::Deserialize;

use crate::error::ApiError;
use crate::tokens;

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
}

/// A chat message's content: a string, or a list of parts of which the text parts count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Deserialize)]
pub struct ContentPart {
    /// Part type (`text`, `image_url`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// One chat message.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The content; may be absent on assistant tool calls.
    #[serde(default)]
    pub content: Option<Content>,
}

/// A completions prompt: text, texts, token ids, or lists of token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text.
    Text(String),
    /// Token ids.
    Tokens(Vec<u32>),
    /// Several texts (only one is served: n = 1 per prompt is all the mock does).
    Texts(Vec<String>),
    /// Several token-id lists.
    TokenLists(Vec<Vec<u32>>),
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// The request fields the mock honours (others are accepted and ignored, as vLLM does).
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// Model or adapter name.
    pub model: Option<String>,
    /// Chat messages.
    pub messages: Option<Vec<Message>>,
    /// Completions prompt.
    pub prompt: Option<Prompt>,
    /// Most output tokens.
    pub max_tokens: Option<i64>,
    /// Chat: the newer name of `max_tokens`.
    pub max_completion_tokens: Option<i64>,
    /// vLLM: fewest output tokens before a stop may happen.
    pub min_tokens: Option<i64>,
    /// vLLM: never stop before `max_tokens`.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Stream with SSE.
    #[serde(default)]
    pub stream: bool,
    /// Stream options.
    pub stream_options: Option<StreamOptions>,
    /// Choices per prompt: only 1 is served.
    pub n: Option<i64>,
}

/// A request, validated and tokenized.
#[derive(Debug)]
pub struct Parsed {
    /// The model name as asked.
    pub model: String,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// `max_tokens` (or `max_completion_tokens`), if given.
    pub max_tokens: Option<usize>,
    /// `min_tokens` (0 if absent).
    pub min_tokens: usize,
    /// `ignore_eos`.
    pub ignore_eos: bool,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Parses and checks a request body.
pub fn parse(api: Api, body: &[u8]) -> Result<Parsed, ApiError> {
    let req: CompletionRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("the request body is not valid JSON for this endpoint: {e}"),
            None,
        )
    })?;
    let model = match req.model {
        Some(m) if !m.is_empty() => m,
        _ => {
            return Err(ApiError::bad_request(
                "the request has no `model` field",
                Some("model"),
            ));
        }
    };
    let non_negative =
        |v: Option<i64>, name: &'static str, min: i64| -> Result<Option<usize>, ApiError> {
            match v {
                Some(x) if x < min => Err(ApiError::bad_request(
                    format!("{name} must be at least {min}, got {x}"),
                    Some(name),
                )),
                Some(x) => Ok(Some(x as usize)),
                None => Ok(None),
            }
        };
    if let Some(n) = req.n
        && n != 1
    {
        return Err(ApiError::bad_request(
            format!("n must be 1 on this server, got {n}"),
            Some("n"),
        ));
    }
    let max_tokens = match api {
        Api::Chat => non_negative(
            req.max_completion_tokens.or(req.max_tokens),
            "max_tokens",
            1,
        )?,
        Api::Completions => non_negative(req.max_tokens, "max_tokens", 1)?,
    };
    let min_tokens = non_negative(req.min_tokens, "min_tokens", 0)?.unwrap_or(0);
    if let Some(max) = max_tokens
        && min_tokens > max
    {
        return Err(ApiError::bad_request(
            format!("min_tokens ({min_tokens}) must be less than or equal to max_tokens ({max})"),
            Some("min_tokens"),
        ));
    }
    let prompt = match api {
        Api::Chat => {
            let Some(messages) = req.messages else {
                return Err(ApiError::bad_request(
                    "the request has no `messages` field",
                    Some("messages"),
                ));
            };
            if messages.is_empty() {
                return Err(ApiError::bad_request(
                    "`messages` is empty",
                    Some("messages"),
                ));
            }
            let mut ids = Vec::new();
            for m in &messages {
                match &m.content {
                    Some(Content::Text(t)) => ids.extend(tokens::encode(t)),
                    Some(Content::Parts(parts)) => {
                        for p in parts {
                            if let Some(t) = &p.text {
                                ids.extend(tokens::encode(t));
                            }
                        }
                    }
                    None => {}
                }
                let _ = &m.role;
            }
            ids
        }
        Api::Completions => match req.prompt {
            None => {
                return Err(ApiError::bad_request(
                    "the request has no `prompt` field",
                    Some("prompt"),
                ));
            }
            Some(Prompt::Text(t)) => tokens::encode(&t),
            Some(Prompt::Tokens(ids)) => ids,
            Some(Prompt::Texts(ts)) if ts.len() == 1 => tokens::encode(&ts[0]),
            Some(Prompt::TokenLists(mut ls)) if ls.len() == 1 => ls.swap_remove(0),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "this server serves one prompt per request",
                    Some("prompt"),
                ));
            }
        },
    };
    Ok(Parsed {
        model,
        prompt,
        max_tokens,
        min_tokens,
        ignore_eos: req.ignore_eos,
        stream: req.stream,
        include_usage: req.stream_options.map(|o| o.include_usage).unwrap_or(false),
    })
}

/// Writes `s` as the inside of a JSON string (no quotes).
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    if quoted.len() >= 2 {
        out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
    }
}

/// The fixed pieces of one stream's SSE chunks, built once per request so that each token
/// costs two copies and its text.
pub struct ChunkFormat {
    head: Vec<u8>,
    tail: &'static [u8],
    last_tail: Vec<u8>,
    role: Vec<u8>,
    usage_head: Vec<u8>,
}

impl ChunkFormat {
    /// Chunk pieces for a stream of `api` with this id, creation time and model.
    pub fn new(api: Api, id: &str, created: u64, model: &str, finish: &str) -> Self {
        let mut prefix = Vec::with_capacity(128);
        prefix.extend_from_slice(b"data: {\"id\":\"");
        escape_into(&mut prefix, id);
        prefix.extend_from_slice(match api {
            Api::Chat => b"\",\"object\":\"chat.completion.chunk\",\"created\":",
            Api::Completions => b"\",\"object\":\"text_completion\",\"created\":",
        });
        prefix.extend_from_slice(created.to_string().as_bytes());
        prefix.extend_from_slice(b",\"model\":\"");
        escape_into(&mut prefix, model);
        prefix.extend_from_slice(b"\",\"choices\":");
        let mut head = prefix.clone();
        let tail: &[u8] = match api {
            Api::Chat => {
                head.extend_from_slice(b"[{\"index\":0,\"delta\":{\"content\":\"");
                b"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
            }
            Api::Completions => {
                head.extend_from_slice(b"[{\"index\":0,\"text\":\"");
                b"\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]}\n\n"
            }
        };
        let last_tail = match api {
            Api::Chat => format!("\"}},\"logprobs\":null,\"finish_reason\":\"{finish}\"}}]}}\n\n"),
            Api::Completions => {
                format!("\",\"logprobs\":null,\"finish_reason\":\"{finish}\",\"stop_reason\":null}}]}}\n\n")
            }
        }
        .into_bytes();
        let mut role = prefix.clone();
        if api == Api::Chat {
            role.extend_from_slice(b"[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        } else {
            role.clear();
        }
        let mut usage_head = prefix;
        usage_head.extend_from_slice(b"[],\"usage\":");
        Self {
            head,
            tail,
            last_tail,
            role,
            usage_head,
        }
    }

    /// The role chunk that opens a chat stream (empty for completions).
    pub fn role_chunk(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.role);
    }

    /// One chunk carrying `text` (already JSON-escaped); `last` marks the finishing chunk.
    pub fn token_chunk(&self, out: &mut Vec<u8>, text: &[u8], last: bool) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(text);
        out.extend_from_slice(if last { &self.last_tail } else { self.tail });
    }

    /// The usage chunk and the end marker.
    pub fn usage_chunk(&self, out: &mut Vec<u8>, usage: &Usage) {
        self.final_chunk(out, Some(usage), None);
    }

    /// The last chunk: `usage` and/or vLLM's per-request `metrics` object (JSON text).
    pub fn final_chunk(&self, out: &mut Vec<u8>, usage: Option<&Usage>, metrics: Option<&str>) {
        // `usage_head` ends with `"choices":[],"usage":`.
        out.extend_from_slice(&self.usage_head);
        match usage {
            Some(u) => out.extend_from_slice(u.to_json().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(m) = metrics {
            out.extend_from_slice(b",\"metrics\":");
            out.extend_from_slice(m.as_bytes());
        }
        out.extend_from_slice(b"}\n\n");
    }
}

/// The end-of-stream marker.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Output tokens.
    pub completion_tokens: usize,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
}

impl Usage {
    /// The OpenAI `usage` object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"prompt_tokens\":{},\"total_tokens\":{},\"completion_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{}}}}}",
            self.prompt_tokens,
            self.prompt_tokens + self.completion_tokens,
            self.completion_tokens,
            self.cached_tokens
        )
    }

    /// As a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "completion_tokens": self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        })
    }
}

/// The body of a unary answer.
pub fn unary_body(
    api: Api,
    id: &str,
    created: u64,
    model: &str,
    text: &str,
    finish: &str,
    usage: &Usage,
) -> String {
    let value = match api {
        Api::Chat => serde_json::json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": []},
                "logprobs": null,
                "finish_reason": finish,
                "stop_reason": null,
            }],
            "usage": usage.to_value(),
        }),
        Api::Completions => serde_json::json!({
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": finish,
                "stop_reason": null,
            }],
            "usage": usage.to_value(),
        }),
    };
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_valid_json_events() {
        for api in [Api::Chat, Api::Completions] {
            let f = ChunkFormat::new(api, "id-1", 7, "org/model\"x", "length");
            let mut out = Vec::new();
            f.role_chunk(&mut out);
            f.token_chunk(&mut out, b" the", false);
            f.token_chunk(&mut out, b" end", true);
            f.usage_chunk(
                &mut out,
                &Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                    cached_tokens: 1,
                },
            );
            let text = String::from_utf8(out).unwrap();
            let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
            for e in &events {
                let json = e.strip_prefix("data: ").unwrap();
                let v: serde_json::Value = serde_json::from_str(json).unwrap();
                assert_eq!(v["model"], "org/model\"x");
            }
            let last: serde_json::Value =
                serde_json::from_str(&events[events.len() - 1][6..]).unwrap();
            assert_eq!(last["usage"]["total_tokens"], 5);
            assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
            assert_eq!(last["choices"].as_array().unwrap().len(), 0);
            let fin: serde_json::Value =
                serde_json::from_str(&events[events.len() - 2][6..]).unwrap();
            assert_eq!(fin["choices"][0]["finish_reason"], "length");
        }
    }

    #[test]
    fn parse_checks_fields() {
        let p = parse(Api::Chat, br#"{"model":"m","messages":[{"role":"user","content":"hello world"}],"max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(p.prompt.len(), 2);
        assert_eq!(p.max_tokens, Some(5));
        assert!(p.stream && p.include_usage);
        let p = parse(
            Api::Completions,
            br#"{"model":"m","prompt":[1,2,3],"max_tokens":2,"min_tokens":1,"ignore_eos":true}"#,
        )
        .unwrap();
        assert_eq!(p.prompt, vec![1, 2, 3]);
        assert!(p.ignore_eos);
        for (api, body, param) in [
            (
                Api::Chat,
                &br#"{"messages":[{"role":"user","content":"x"}]}"#[..],
                Some("model"),
            ),
            (Api::Chat, br#"{"model":"m"}"#, Some("messages")),
            (Api::Completions, br#"{"model":"m"}"#, Some("prompt")),
            (
                Api::Completions,
                br#"{"model":"m","prompt":"x","max_tokens":0}"#,
                Some("max_tokens"),
            ),
            (
                Api::Completions,
                br#"{"model":"m","prompt":"x","max_tokens":-3}"#,
                Some("max_tokens"),
            ),
            (
                Api::Completions,
                br#"{"model":"m","prompt":"x","max_tokens":2,"min_tokens":3}"#,
                Some("min_tokens"),
            ),
            (Api::Completions, br#"{"model":"m","#, None),
            (
                Api::Completions,
                br#"{"model":"m","prompt":"x","stream":"yes"}"#,
                None,
            ),
        ] {
            let e = parse(api, body).unwrap_err();
            assert_eq!(
                e.status,
                http::StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(e.param, param, "{}", String::from_utf8_lossy(body));
        }
    }
}
