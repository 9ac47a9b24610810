//! Object names and labels. Every name is a DNS-1035 label (lowercase letters, digits and `-`,
//! a letter first, at most 63 characters), which also makes it a valid DNS-1123 label and
//! subdomain, a Service name, and a label value. Names too long are cut and given a short hash
//! of the whole, so two long names that share a beginning stay apart.

use std::collections::BTreeMap;

/// Longest name (a DNS label; label values have the same limit).
pub const MAX_NAME: usize = 63;

/// Label naming the application suite (`app.kubernetes.io/part-of`), on every object.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// Label naming the scenario rendered (`app.kubernetes.io/instance`), on every object.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// Label naming the part of the environment (`app.kubernetes.io/component`): fleet, epp, bbr,
/// gateway, load.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// Label naming the workload an object belongs to (`app.kubernetes.io/name`).
pub const NAME: &str = "app.kubernetes.io/name";
/// The value of [`PART_OF`].
pub const PART_OF_VALUE: &str = "inferbench";

/// `text` as a DNS-1035 label: lowercased, every run of other characters turned into one `-`,
/// a leading digit prefixed with `ib-`, cut to [`MAX_NAME`] with a hash when longer; empty
/// text gives `inferbench`.
pub fn dns_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    let mut s = if trimmed.is_empty() {
        "inferbench".to_string()
    } else if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("ib-{trimmed}")
    } else {
        trimmed.to_string()
    };
    if s.len() > MAX_NAME {
        s = shorten(&s, text);
    }
    s
}

/// `parts` joined with `-` as one DNS-1035 label (each part sanitized first).
pub fn join(parts: &[&str]) -> String {
    let whole: Vec<String> = parts.iter().map(|p| dns_label(p)).collect();
    dns_label(&whole.join("-"))
}

/// `s` cut to fit [`MAX_NAME`] with `-` and 8 hex digits of a hash of `seed` at the end.
fn shorten(s: &str, seed: &str) -> String {
    let hash = format!("{:08x}", fnv1a(seed) as u32);
    let keep = MAX_NAME - hash.len() - 1;
    let head = s[..keep].trim_end_matches('-');
    format!("{head}-{hash}")
}

/// 64-bit FNV-1a: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// True when `s` is a DNS-1123 label: 1–63 characters, lowercase letters, digits and `-`,
/// alphanumeric at both ends.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// The labels of one workload: part-of, instance (the scenario), component and name. The same
/// set is a workload's selector, its pods' labels and (for the fleet) the InferencePool's
/// selector, so they cannot drift apart.
pub fn labels(instance: &str, component: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PART_OF.to_string(), PART_OF_VALUE.to_string()),
        (INSTANCE.to_string(), instance.to_string()),
        (COMPONENT.to_string(), component.to_string()),
        (NAME.to_string(), name.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("routing-overhead"), "routing-overhead");
        assert_eq!(
            dns_label("meta-llama/Llama-3.1-8B-Instruct"),
            "meta-llama-llama-3-1-8b-instruct"
        );
        assert_eq!(dns_label("  --Weird__Name!! "), "weird-name");
        assert_eq!(dns_label("1k rps"), "ib-1k-rps");
        assert_eq!(dns_label("///"), "inferbench");
        assert_eq!(join(&["a b", "EPP"]), "a-b-epp");
    }

    #[test]
    fn long_names_are_cut_with_a_hash_that_keeps_them_apart() {
        let a = dns_label(&format!("{}-one", "x".repeat(80)));
        let b = dns_label(&format!("{}-two", "x".repeat(80)));
        assert_eq!(a.len(), MAX_NAME);
        assert_ne!(a, b);
        assert!(is_dns1123_label(&a) && is_dns1123_label(&b));
        // Stable: the same input gives the same name on every run.
        assert_eq!(a, dns_label(&format!("{}-one", "x".repeat(80))));
    }

    #[test]
    fn the_check_refuses_what_kubernetes_refuses() {
        assert!(is_dns1123_label("a-1"));
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }
}
