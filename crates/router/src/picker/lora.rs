//! LoRA affinity: 1.0 when the adapter is active on the endpoint, 0.8 when it has a free slot
//! (active + waiting < max_lora), 0.6 when the adapter is waiting there, else 0.

use crate::endpoints::Scraped;

/// The score of endpoint state `s` for `model`.
pub fn score(model: &str, s: &Scraped) -> f64 {
    if s.running_loras.iter().any(|a| a == model) {
        1.0
    } else if s.running_loras.len() + s.waiting_loras.len() < s.max_lora {
        0.8
    } else if s.waiting_loras.iter().any(|a| a == model) {
        0.6
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_beats_free_beats_waiting() {
        let s = Scraped {
            running_loras: vec!["a".into()],
            waiting_loras: vec!["b".into()],
            max_lora: 2,
            ..Default::default()
        };
        assert_eq!(score("a", &s), 1.0);
        assert_eq!(score("b", &s), 0.6);
        assert_eq!(score("c", &s), 0.0);
        let free = Scraped {
            max_lora: 2,
            ..Default::default()
        };
        assert_eq!(score("c", &free), 0.8);
    }
}
