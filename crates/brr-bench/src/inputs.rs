//! Deterministic input data for the benchmarks: text-like (compressible) and random bytes.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "for", "on", "with", "as", "by", "at", "from", "that",
    "this", "be", "are", "it", "or", "an", "not", "which", "have", "has", "was", "backup",
    "restore", "replica", "snapshot", "chunk", "index", "pack", "tenant", "company", "user",
    "audit", "incident", "region", "site", "fn", "let", "mut", "struct", "impl", "pub", "use",
    "match", "return", "if", "else", "while", "loop", "async", "await", "self", "Some", "None",
    "Ok", "Err", "error", "warn", "info", "debug", "trace", "request", "response", "status",
    "code", "value", "key", "data", "file", "path", "size", "time", "0", "1", "2", "3", "4", "5",
    "6", "7", "8", "9", "10", "42", "100", "255", "1024", "4096", "65536", "true", "false", "null",
    "{}", "[]", "()", ";", ":", ",", ".", "=", "==", "!=", "<=", ">=",
];

/// `len` bytes of text-like data (indented lines of words, like source code and logs), the same
/// kind of bytes as the small files of the benchmark corpus. Compresses about 2–3× with zstd.
pub fn text_like(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(len + 256);
    while out.len() < len {
        let indent = 4 * (rng.next_u32() % 4) as usize;
        out.extend(std::iter::repeat_n(b' ', indent));
        let words = 4 + (rng.next_u32() % 11) as usize;
        for w in 0..words {
            if w > 0 {
                out.push(b' ');
            }
            let word = WORDS[rng.next_u32() as usize % WORDS.len()];
            out.extend_from_slice(word.as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// `len` bytes of uniformly random (incompressible) data.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MESSAGE;

    #[test]
    fn generators_are_deterministic_and_sized() {
        assert_eq!(text_like(10_000, 1), text_like(10_000, 1));
        assert_eq!(text_like(10_000, 1).len(), 10_000);
        assert_eq!(random_bytes(4096, 2), random_bytes(4096, 2));
        assert_ne!(random_bytes(4096, 2), random_bytes(4096, 3));
    }

    #[test]
    fn text_like_compresses_and_random_does_not() {
        let text = text_like(MESSAGE, 5);
        let rand = random_bytes(MESSAGE, 5);
        let ct = zstd::bulk::compress(&text, 1).expect("compress").len();
        let cr = zstd::bulk::compress(&rand, 1).expect("compress").len();
        assert!(
            ct < text.len() / 2,
            "text-like data should compress at least 2x, got {ct}"
        );
        assert!(
            cr >= rand.len(),
            "random data should not compress, got {cr}"
        );
    }
}
