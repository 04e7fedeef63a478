//! Generated test data: a deterministic pseudo-random generator and files written from it.

use std::fs;
use std::path::Path;

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` pseudo-random (incompressible) bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        for c in v.chunks_mut(8) {
            let x = self.next_u64().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
        v
    }

    /// `n` bytes of compressible text.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 8] = [
            "backup ",
            "restore ",
            "chunk ",
            "pack ",
            "index\n",
            "snapshot ",
            "tree ",
            "key ",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(WORDS[(self.next_u64() % 8) as usize].as_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Writes a file, creating its parent directories.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("create parent directories");
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes `size` pseudo-random bytes in 1 MiB pieces.
pub fn write_random(path: &Path, size: usize, seed: u64) {
    use std::io::Write;
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("create parent directories");
    }
    let mut rng = Rng::new(seed);
    let mut f = std::io::BufWriter::new(fs::File::create(path).expect("create file"));
    let mut left = size;
    while left > 0 {
        let n = left.min(1 << 20);
        f.write_all(&rng.bytes(n)).expect("write");
        left -= n;
    }
    f.flush().expect("flush");
}
