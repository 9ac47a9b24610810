//! The router's body-based routing (`inferbench_router::bbr::parse`), then what the router does
//! with its result (crates/router/src/server.rs): the model header and the prefix-cache block
//! hashes of the prefix text. Checks: no panic; when the body is a JSON object, the model read
//! is its `model` string, and `messages` round-trips through the prefix text unless that was cut
//! to what the prefix scorer hashes; the block hashes have the documented count.
#![no_main]

use http::HeaderValue;
use inferbench_router::bbr;
use inferbench_router::picker::prefix::{self, BLOCK_CHARS, BlockLru, MAX_BLOCKS};
use libfuzzer_sys::fuzz_target;

/// What bbr keeps of the prefix text (its private `PREFIX_BYTES`).
const PREFIX_BYTES: usize = BLOCK_CHARS * MAX_BLOCKS;

fuzz_target!(|body: &[u8]| {
    let info = match bbr::parse(body) {
        Ok(i) => i,
        Err(e) => {
            let _ = e.len();
            return;
        }
    };
    // Cross-check with a plain JSON parse when the body is an object.
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(body) {
        match o.get("model") {
            Some(serde_json::Value::String(m)) => assert_eq!(info.model.as_deref(), Some(m.as_str())),
            Some(serde_json::Value::Null) | None => assert_eq!(info.model, None),
            Some(other) => panic!("bbr accepted a non-string model {other}"),
        }
        if let Some(m) = o.get("messages").filter(|m| !m.is_null()) {
            let t = info.prefix_text.as_deref().expect("messages present but no prefix text");
            if t.len() < PREFIX_BYTES {
                let again: serde_json::Value =
                    serde_json::from_str(t).expect("prefix text is raw JSON");
                assert_eq!(&again, m);
            }
        }
    }
    if let Some(m) = &info.model {
        if let Ok(v) = HeaderValue::from_str(m) {
            assert_eq!(v.as_bytes(), m.as_bytes());
        }
    }
    if let Some(t) = &info.prefix_text {
        // Cut to the bytes the scorer hashes, extended to a char boundary.
        assert!(t.len() <= PREFIX_BYTES + 3, "prefix text of {} bytes", t.len());
        let model = info.model.as_deref().unwrap_or("");
        let hashes = prefix::block_hashes(model, t);
        assert_eq!(hashes.len(), (t.len() / BLOCK_CHARS).min(MAX_BLOCKS));
        let lru = BlockLru::new(MAX_BLOCKS);
        assert_eq!(prefix::score(&lru, &hashes), 0.0);
        lru.insert(&hashes);
        assert!(lru.len() <= MAX_BLOCKS);
        let s = prefix::score(&lru, &hashes);
        assert!(hashes.is_empty() || s == 1.0, "score after insert {s}");
        let small = BlockLru::new(3);
        small.insert(&hashes);
        assert!(small.len() <= 3);
    }
});
