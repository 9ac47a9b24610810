//! Token counting and text synthesis with the `cl100k_base` vocabulary that tiktoken-rs embeds
//! (nothing is downloaded): shared by the mock (to count prompts and write outputs) and the
//! workload generator (to write prompts of an exact length).
#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::LazyLock;

use tiktoken_rs::CoreBPE;

/// The tokenizer every count in the mock uses.
pub fn bpe() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// Token ids of `text` (no special tokens).
pub fn encode(text: &str) -> Vec<u32> {
    bpe().encode_ordinary(text)
}

/// Number of tokens in `text`.
pub fn count(text: &str) -> usize {
    encode(text).len()
}

/// Candidate output words; only those that are a single token with their leading space are kept,
/// so that the text of N output chunks re-tokenizes to exactly N tokens.
const CANDIDATES: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "about", "into", "than", "them", "time", "some", "could", "only", "new", "what",
    "two", "first", "then", "do", "any", "like", "my", "now", "over", "such", "our", "man", "me",
    "even", "most", "made", "after", "also", "did", "many", "before", "must", "through", "back",
    "years", "where", "much", "your", "way", "well", "down", "should", "because", "each", "just",
    "those", "people", "how", "too", "little", "state", "good", "very", "make", "world", "still",
    "own", "see", "men", "work", "long", "get", "here", "between", "both", "life", "being",
    "under", "never", "day", "same", "another", "know", "while", "last", "might", "us", "great",
    "old", "year", "off", "come", "since", "against", "go", "came", "right", "used", "take",
    "three", "model", "token", "river", "light", "stone", "garden", "music", "water", "market",
    "signal", "cloud", "paper", "window", "engine", "forest", "number", "answer", "question",
    "system", "network", "record", "value", "field",
];

/// The output vocabulary: words (with their leading space) that are one token each.
pub static WORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let bpe = bpe();
    let mut out: Vec<&'static str> = CANDIDATES
        .iter()
        .map(|w| &*Box::leak(format!(" {w}").into_boxed_str()))
        .filter(|w| bpe.encode_ordinary(w).len() == 1)
        .collect();
    if out.is_empty() {
        out.push(" the");
    }
    out
});

/// The text of one token id, as JSON-safe text (invalid UTF-8 fragments replaced).
pub fn token_text(id: u32) -> String {
    match bpe().decode_bytes(&[id]) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_words_are_single_tokens_and_compose_exactly() {
        assert!(WORDS.len() > 100, "only {} single-token words", WORDS.len());
        let text: String = WORDS.iter().copied().collect();
        assert_eq!(count(&text), WORDS.len());
    }

    #[test]
    fn counts_known_text() {
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
    }
}
