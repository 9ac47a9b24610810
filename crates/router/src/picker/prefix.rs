//! The approximate prefix-cache scorer, as the EPP's: the request text (the JSON of `messages`,
//! or `prompt`) cut into 64-character blocks (≈16 tokens), chained 64-bit hashes seeded by the
//! model name, the partial tail dropped, at most 256 blocks; the score is the share of leading
//! blocks the endpoint is believed to hold. Each endpoint keeps an LRU of the block hashes of the
//! requests sent to it.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use parking_lot::Mutex;

/// Characters per block.
pub const BLOCK_CHARS: usize = 64;
/// Blocks hashed per request at most.
pub const MAX_BLOCKS: usize = 256;

/// The chained block hashes of `text` for `model`.
pub fn block_hashes(model: &str, text: &str) -> Vec<u64> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut h = {
        let mut s = std::hash::DefaultHasher::new();
        model.hash(&mut s);
        s.finish()
    };
    for block in bytes.chunks_exact(BLOCK_CHARS).take(MAX_BLOCKS) {
        let mut s = std::hash::DefaultHasher::new();
        h.hash(&mut s);
        block.hash(&mut s);
        h = s.finish();
        out.push(h);
    }
    out
}

/// A bounded set of block hashes, least recently used evicted first.
#[derive(Debug)]
pub struct BlockLru {
    inner: Mutex<Lru>,
}

/// Block hashes are already well mixed 64-bit values: a map keyed by them need not hash again.
#[derive(Debug, Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u64 keys; kept correct for any other.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug)]
struct Lru {
    cap: usize,
    generation: u64,
    last_use: HashMap<u64, u64, BuildHasherDefault<Prehashed>>,
    order: VecDeque<(u64, u64)>,
}

impl BlockLru {
    /// Holds at most `cap` blocks.
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Mutex::new(Lru {
                cap: cap.max(1),
                generation: 0,
                last_use: HashMap::default(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Leading blocks of `hashes` present.
    pub fn leading_hits(&self, hashes: &[u64]) -> usize {
        let g = self.inner.lock();
        hashes
            .iter()
            .take_while(|h| g.last_use.contains_key(h))
            .count()
    }

    /// Records that the endpoint now holds `hashes`.
    pub fn insert(&self, hashes: &[u64]) {
        let mut g = self.inner.lock();
        for &h in hashes {
            g.generation += 1;
            let gen_now = g.generation;
            g.last_use.insert(h, gen_now);
            g.order.push_back((h, gen_now));
        }
        // Evict the least recently used; entries touched again later are skipped.
        while g.last_use.len() > g.cap {
            let Some((h, gen_then)) = g.order.pop_front() else {
                break;
            };
            if g.last_use.get(&h) == Some(&gen_then) {
                g.last_use.remove(&h);
            }
        }
        // Keep the order queue from growing with stale entries.
        if g.order.len() > 4 * g.cap {
            let Lru {
                last_use, order, ..
            } = &mut *g;
            order.retain(|(h, gen_then)| last_use.get(h) == Some(gen_then));
        }
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.inner.lock().last_use.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The score: leading hits over total blocks (0 for a text shorter than one block).
pub fn score(lru: &BlockLru, hashes: &[u64]) -> f64 {
    if hashes.is_empty() {
        0.0
    } else {
        lru.leading_hits(hashes) as f64 / hashes.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_share_leading_blocks() {
        let a = format!("{}{}", "x".repeat(640), "tail-a".repeat(20));
        let b = format!("{}{}", "x".repeat(640), "tail-b".repeat(20));
        let ha = block_hashes("m", &a);
        let hb = block_hashes("m", &b);
        assert_eq!(ha[..10], hb[..10]);
        assert_ne!(ha[10], hb[10]);
        // Another model never shares.
        assert_ne!(block_hashes("other", &a)[0], ha[0]);
        let lru = BlockLru::new(1000);
        lru.insert(&ha);
        assert_eq!(score(&lru, &ha), 1.0);
        assert!((score(&lru, &hb) - 10.0 / hb.len() as f64).abs() < 1e-9);
        assert_eq!(block_hashes("m", &"y".repeat(63)).len(), 0);
        assert_eq!(block_hashes("m", &"y".repeat(64 * 300)).len(), MAX_BLOCKS);
    }

    #[test]
    fn lru_evicts_the_oldest_and_keeps_the_reused() {
        let lru = BlockLru::new(3);
        lru.insert(&[1, 2, 3]);
        lru.insert(&[1]);
        lru.insert(&[4]);
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.leading_hits(&[1]), 1, "1 was used again");
        assert_eq!(lru.leading_hits(&[2]), 0, "2 was the oldest");
        for i in 0..10_000u64 {
            lru.insert(&[i + 100]);
        }
        assert_eq!(lru.len(), 3);
    }
}
