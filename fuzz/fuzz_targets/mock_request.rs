//! The mock server's request parsing (`inferbench_mock::api::parse`, public, called by
//! crates/mock/src/server.rs on every request body) plus what follows it without a server: the
//! error body, and the stream chunks / unary answer that echo the model name.
//!
//! Byte 0 picks the endpoint (even: chat/completions, odd: completions); the rest is the body.
#![no_main]

use inferbench_mock::ApiError;
use inferbench_mock::api::{self, Api, ChunkFormat, Usage};
use libfuzzer_sys::fuzz_target;

fn json(s: &[u8], what: &str) -> serde_json::Value {
    serde_json::from_slice(s)
        .unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {}", String::from_utf8_lossy(s)))
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, body)) = input.split_first() else {
        return;
    };
    let api = if sel % 2 == 0 { Api::Chat } else { Api::Completions };
    let p = match api::parse(api, body) {
        Ok(p) => p,
        Err(e) => {
            let v = json(e.body().as_bytes(), "error body");
            assert_eq!(v["error"]["code"].as_u64(), Some(e.status.as_u16() as u64));
            let _ = e.to_string();
            return;
        }
    };
    assert!(!p.model.is_empty());
    if let Some(max) = p.max_tokens {
        assert!(max >= 1);
        assert!(p.min_tokens <= max);
    }
    let v = json(ApiError::unknown_model(&p.model).body().as_bytes(), "404 body");
    assert!(v["error"]["message"].as_str().unwrap().contains(&p.model));

    // The streamed chunks echo the model: every event must be JSON naming it.
    let usage = Usage {
        prompt_tokens: p.prompt.len(),
        completion_tokens: p.max_tokens.unwrap_or(16).min(1 << 20),
        cached_tokens: 0,
    };
    let fmt = ChunkFormat::new(api, "cmpl-fuzz", 1, &p.model, "length");
    let mut out = Vec::new();
    fmt.role_chunk(&mut out);
    let mut text = Vec::new();
    api::escape_into(&mut text, &p.model);
    fmt.token_chunk(&mut out, &text, false);
    fmt.token_chunk(&mut out, &text, true);
    fmt.usage_chunk(&mut out, &usage);
    out.extend_from_slice(api::DONE);
    let s = std::str::from_utf8(&out).expect("chunks are UTF-8");
    let mut events = 0;
    for ev in s.split("\n\n").filter(|e| !e.is_empty()) {
        let data = ev.strip_prefix("data: ").expect("event starts with data: ");
        assert!(!data.contains('\n'), "an event spans lines: {data:?}");
        if data == "[DONE]" {
            continue;
        }
        let v = json(data.as_bytes(), "chunk");
        assert_eq!(v["model"].as_str(), Some(p.model.as_str()));
        events += 1;
    }
    assert_eq!(events, if api == Api::Chat { 4 } else { 3 });

    let model = p.model.clone();
    let unary = api::unary_body(api, "cmpl-fuzz", 1, &model, &model, "stop", &usage);
    let v = json(unary.as_bytes(), "unary body");
    assert_eq!(v["model"].as_str(), Some(model.as_str()));
});
