//! Prompts of an exact token count (cl100k_base), each starting with its own unique words so that
//! prefixes are shared only when a workload asks for it.

use inferbench_tokens::WORDS;

/// Writes prompts of exact lengths.
#[derive(Debug, Clone, Default)]
pub struct PromptSynth {
    _private: (),
}

impl PromptSynth {
    /// A synthesizer over the single-token word vocabulary.
    pub fn new() -> Self {
        Self { _private: () }
    }

    /// A prompt of exactly `tokens` tokens. Its first words spell `id` in base |vocabulary| (so
    /// two ids never share a first block), the rest follow from `id` deterministically.
    pub fn prompt(&self, id: u64, tokens: usize) -> String {
        let words = &*WORDS;
        let base = words.len() as u64;
        let mut out = String::with_capacity(tokens * 7);
        // The id's digits first (at least one word), least significant first.
        let mut rest = id;
        let mut written = 0;
        while written < tokens {
            out.push_str(words[(rest % base) as usize]);
            written += 1;
            rest /= base;
            if rest == 0 {
                break;
            }
        }
        // Then a deterministic walk seeded by the id.
        let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        while written < tokens {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push_str(words[(state % base) as usize]);
            written += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prompts_differ_from_the_first_token() {
        let s = PromptSynth::new();
        let a = inferbench_tokens::encode(&s.prompt(1, 50));
        let b = inferbench_tokens::encode(&s.prompt(2, 50));
        assert_ne!(a[0], b[0]);
        assert_eq!(s.prompt(7, 30), s.prompt(7, 30));
        assert_eq!(s.prompt(7, 0), "");
    }

    proptest! {
        #[test]
        fn prompt_has_exactly_the_asked_tokens(id: u64, tokens in 0usize..3000) {
            let s = PromptSynth::new();
            prop_assert_eq!(inferbench_tokens::count(&s.prompt(id, tokens)), tokens);
        }
    }
}
