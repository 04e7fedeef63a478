//! Benchmark helpers for brr.
//!
//! The library measures what one core of this machine can do for each stage of brr's data path
//! (chunking, keyed hashing, compression, encryption, copying), with the same crates and settings
//! brr uses. The `brr-machine-limits` binary prints the results; `bench/run.sh` compares brr's
//! measured throughput against these ceilings.
//!
//! Nothing here asserts on timing: these are measurements, not tests.

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Size of one message for the per-message stages (AEAD, keyed hash, zstd): 1 MiB, the size of a large
/// brr chunk (new repositories average 512 KiB, older ones 1 MiB).
pub const MESSAGE: usize = 1 << 20;

/// FastCDC 2020 minimum chunk size of new brr repositories (256 KiB).
pub const CDC_MIN: usize = 256 * 1024;
/// FastCDC 2020 average chunk size of new brr repositories (512 KiB).
pub const CDC_AVG: usize = 512 * 1024;
/// FastCDC 2020 maximum chunk size of new brr repositories (4 MiB).
pub const CDC_MAX: usize = 4 * 1024 * 1024;
/// The chunk sizes as the report shows them.
pub const CDC_LABEL: &str = "256K/512K/4M";

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

/// Median of a non-empty list of numbers (mean of the two middle values for even lengths).
/// Returns 0.0 for an empty list.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The result of measuring one stage.
#[derive(Debug, Clone)]
pub struct StageResult {
    /// Short name of the stage, e.g. `"zstd -1 compress, text-like"`.
    pub name: String,
    /// The crate (and API) measured.
    pub krate: String,
    /// Input bytes processed per run.
    pub bytes: usize,
    /// Throughput of each run in MB/s (10^6 bytes per second of input).
    pub runs_mb_s: Vec<f64>,
    /// Output/input size ratio for compression stages.
    pub ratio: Option<f64>,
}

impl StageResult {
    /// Median throughput over the runs, in MB/s.
    pub fn median_mb_s(&self) -> f64 {
        median(&self.runs_mb_s)
    }

    /// The result as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": self.name,
            "crate": self.krate,
            "bytes": self.bytes,
            "mb_per_s": round1(self.median_mb_s()),
            "runs_mb_per_s": self.runs_mb_s.iter().map(|v| round1(*v)).collect::<Vec<_>>(),
            "ratio": self.ratio.map(|r| (r * 1000.0).round() / 1000.0),
        })
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Runs `f` `runs` times over `bytes` of input and records the throughput of each run.
/// `f` returns the number of output bytes (used for compression ratios; 0 otherwise).
fn measure(
    name: &str,
    krate: &str,
    bytes: usize,
    runs: usize,
    mut f: impl FnMut() -> usize,
) -> StageResult {
    // One warm-up pass: page faults, lazy initialisation and CPU feature detection stay out of
    // the measured runs.
    let out = f();
    let mut runs_mb_s = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        black_box(f());
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        runs_mb_s.push(bytes as f64 / secs / 1e6);
    }
    let ratio = (out > 0).then(|| out as f64 / bytes as f64);
    StageResult {
        name: name.into(),
        krate: krate.into(),
        bytes,
        runs_mb_s,
        ratio,
    }
}

/// Plain memory copy of `data` into a second buffer of the same size.
pub fn bench_memcpy(data: &[u8], runs: usize) -> StageResult {
    let mut dst = vec![0u8; data.len()];
    measure("memcpy", "std (copy_from_slice)", data.len(), runs, || {
        dst.copy_from_slice(black_box(data));
        black_box(&dst);
        0
    })
}

/// Keyed BLAKE3 over each 1 MiB message (brr's chunk ID).
pub fn bench_blake3_keyed(data: &[u8], runs: usize) -> StageResult {
    let key = [7u8; 32];
    measure(
        "BLAKE3 keyed hash, 1 MiB messages",
        "blake3 (keyed_hash)",
        data.len(),
        runs,
        || {
            let mut acc = 0u8;
            for msg in data.chunks(MESSAGE) {
                acc ^= blake3::keyed_hash(&key, msg).as_bytes()[0];
            }
            black_box(acc);
            0
        },
    )
}

/// FastCDC 2020 content-defined chunking with brr's sizes ([`CDC_MIN`], [`CDC_AVG`], [`CDC_MAX`]).
pub fn bench_fastcdc(data: &[u8], runs: usize) -> StageResult {
    measure(
        &format!("FastCDC 2020 chunking, {CDC_LABEL}"),
        "fastcdc (v2020::FastCDC)",
        data.len(),
        runs,
        || {
            let chunker = fastcdc::v2020::FastCDC::new(data, CDC_MIN, CDC_AVG, CDC_MAX);
            let mut n = 0usize;
            for chunk in chunker {
                n = n.wrapping_add(chunk.length ^ chunk.hash as usize);
            }
            black_box(n);
            0
        },
    )
}

fn aes_key() -> LessSafeKey {
    let unbound =
        UnboundKey::new(&AES_256_GCM, &[9u8; 32]).expect("a 32-byte AES-256 key is valid");
    LessSafeKey::new(unbound)
}

fn nonce_for(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// AES-256-GCM encryption of each 1 MiB message in place (aws-lc-rs `LessSafeKey`).
pub fn bench_aes_gcm_seal(data: &[u8], runs: usize) -> StageResult {
    let key = aes_key();
    let mut buf = data.to_vec();
    let mut counter = 0u64;
    measure(
        "AES-256-GCM encrypt, 1 MiB messages",
        "aws-lc-rs (aead::LessSafeKey)",
        data.len(),
        runs,
        || {
            for msg in buf.chunks_mut(MESSAGE) {
                counter += 1;
                let tag = key
                    .seal_in_place_separate_tag(nonce_for(counter), Aad::empty(), msg)
                    .expect("AES-GCM seal of a 1 MiB message");
                black_box(tag.as_ref()[0]);
            }
            0
        },
    )
}

/// AES-256-GCM decryption (with tag check) of each 1 MiB message into a separate output buffer
/// (aws-lc-rs `LessSafeKey::open_separate_gather`).
pub fn bench_aes_gcm_open(data: &[u8], runs: usize) -> StageResult {
    let key = aes_key();
    // Seal every message once; each run decrypts all ciphertexts into one plaintext buffer.
    let sealed: Vec<(Vec<u8>, Vec<u8>)> = data
        .chunks(MESSAGE)
        .enumerate()
        .map(|(i, msg)| {
            let mut ct = msg.to_vec();
            let tag = key
                .seal_in_place_separate_tag(nonce_for(i as u64), Aad::empty(), &mut ct)
                .expect("AES-GCM seal of a 1 MiB message");
            (ct, tag.as_ref().to_vec())
        })
        .collect();
    let mut out = vec![0u8; MESSAGE];
    measure(
        "AES-256-GCM decrypt, 1 MiB messages",
        "aws-lc-rs (aead::LessSafeKey)",
        data.len(),
        runs,
        || {
            for (i, (ct, tag)) in sealed.iter().enumerate() {
                key.open_separate_gather(
                    nonce_for(i as u64),
                    Aad::empty(),
                    ct,
                    tag,
                    &mut out[..ct.len()],
                )
                .expect("AES-GCM open of a message sealed above");
                black_box(out[0]);
            }
            0
        },
    )
}

/// zstd compression of each 1 MiB message at `level`, with a reused context (`zstd::bulk`).
pub fn bench_zstd_compress(data: &[u8], level: i32, kind: &str, runs: usize) -> StageResult {
    let mut comp = zstd::bulk::Compressor::new(level).expect("zstd compressor");
    let mut out = vec![0u8; zstd::zstd_safe::compress_bound(MESSAGE)];
    measure(
        &format!("zstd {level} compress, {kind}"),
        "zstd (bulk::Compressor)",
        data.len(),
        runs,
        || {
            let mut total = 0usize;
            for msg in data.chunks(MESSAGE) {
                total += comp
                    .compress_to_buffer(msg, &mut out[..])
                    .expect("zstd compress");
            }
            total
        },
    )
}

/// zstd decompression of `data` compressed per 1 MiB message at `level` (throughput counted on
/// the decompressed bytes).
pub fn bench_zstd_decompress(data: &[u8], level: i32, kind: &str, runs: usize) -> StageResult {
    let frames: Vec<Vec<u8>> = data
        .chunks(MESSAGE)
        .map(|m| zstd::bulk::compress(m, level).expect("zstd compress"))
        .collect();
    let mut dec = zstd::bulk::Decompressor::new().expect("zstd decompressor");
    let mut out = vec![0u8; MESSAGE];
    measure(
        &format!("zstd decompress (level {level}), {kind}"),
        "zstd (bulk::Decompressor)",
        data.len(),
        runs,
        || {
            let mut total = 0usize;
            for f in &frames {
                total += dec
                    .decompress_to_buffer(f, &mut out[..])
                    .expect("zstd decompress");
            }
            black_box(total);
            0
        },
    )
}

/// CPU seconds one core spends in each stage of brr's data path when it backs up, restores and
/// checks a real directory tree held in memory (see [`corpus_pipeline`]).
#[derive(Debug, Clone, Default)]
pub struct PipelineResult {
    /// Regular files walked.
    pub files: u64,
    /// Directories, symlinks and other non-regular entries walked.
    pub other_entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Chunks referenced by the files.
    pub chunks: u64,
    /// Distinct chunks (after deduplication by keyed hash).
    pub unique_chunks: u64,
    /// Bytes of distinct chunks before compression.
    pub unique_bytes: u64,
    /// Bytes of distinct chunks after compression (stored raw when zstd saves < 1/32).
    pub stored_bytes: u64,
    /// zstd level used.
    pub zstd_level: i32,
    /// Seconds: walk the tree and lstat every entry (the floor of an unchanged re-backup).
    pub walk_s: f64,
    /// Seconds: read every file from the (warm) page cache.
    pub read_s: f64,
    /// Seconds: FastCDC over every byte.
    pub chunk_s: f64,
    /// Seconds: keyed BLAKE3 over every chunk (the chunk ID).
    pub hash_s: f64,
    /// Seconds: zstd over every distinct chunk.
    pub compress_s: f64,
    /// Seconds: AES-256-GCM encryption of every distinct chunk.
    pub encrypt_s: f64,
    /// Seconds: AES-256-GCM decryption of every distinct chunk.
    pub decrypt_s: f64,
    /// Seconds: zstd decompression of every distinct compressed chunk.
    pub decompress_s: f64,
    /// Seconds: keyed BLAKE3 verification of every distinct chunk after decoding.
    pub verify_s: f64,
    /// Seconds: copying every referenced chunk (all `bytes`) into an output buffer, standing in
    /// for the copy into the page cache that writing the restored files costs.
    pub write_copy_s: f64,
    /// Seconds: creating every directory and file of the tree again under a scratch directory and
    /// writing its content (no fsync) — what the file system costs a restore. `None` when not
    /// measured (no `write_to` directory given).
    pub write_files_s: Option<f64>,
}

impl PipelineResult {
    /// One core's CPU floor for a first backup: read + chunk + hash + compress + encrypt.
    pub fn backup_s(&self) -> f64 {
        self.walk_s + self.read_s + self.chunk_s + self.hash_s + self.compress_s + self.encrypt_s
    }

    /// One core's floor for a full restore: decrypt + decompress + verify of distinct chunks, plus
    /// writing the files (measured through the file system when available, else one copy of every
    /// byte).
    pub fn restore_s(&self) -> f64 {
        self.decrypt_s
            + self.decompress_s
            + self.verify_s
            + self.write_files_s.unwrap_or(self.write_copy_s)
    }

    /// One core's CPU floor for a check that reads all data: decrypt + decompress + verify.
    pub fn check_s(&self) -> f64 {
        self.decrypt_s + self.decompress_s + self.verify_s
    }

    /// The result as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        serde_json::json!({
            "files": self.files,
            "other_entries": self.other_entries,
            "bytes": self.bytes,
            "chunks": self.chunks,
            "unique_chunks": self.unique_chunks,
            "unique_bytes": self.unique_bytes,
            "stored_bytes": self.stored_bytes,
            "zstd_level": self.zstd_level,
            "seconds_one_core": {
                "walk_lstat": r3(self.walk_s),
                "read": r3(self.read_s),
                "chunk": r3(self.chunk_s),
                "hash": r3(self.hash_s),
                "compress": r3(self.compress_s),
                "encrypt": r3(self.encrypt_s),
                "decrypt": r3(self.decrypt_s),
                "decompress": r3(self.decompress_s),
                "verify": r3(self.verify_s),
                "write_copy": r3(self.write_copy_s),
                "write_files": self.write_files_s.map(r3),
                "backup_total": r3(self.backup_s()),
                "restore_total": r3(self.restore_s()),
                "check_total": r3(self.check_s()),
                "rebackup_total": r3(self.walk_s),
            },
        })
    }
}

fn walk(
    dir: &std::path::Path,
    files: &mut Vec<std::path::PathBuf>,
    other: &mut u64,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_file() {
            files.push(path);
        } else {
            *other += 1;
            if meta.is_dir() {
                walk(&path, files, other)?;
            }
        }
    }
    Ok(())
}

struct StoredChunk {
    id: blake3::Hash,
    compressed: bool,
    plain_len: usize,
    sealed: Vec<u8>,
    tag: Vec<u8>,
}

/// Runs brr's data path single-threaded over the directory tree `dir`: walk + lstat, read, FastCDC
/// ([`CDC_MIN`] / [`CDC_AVG`] / [`CDC_MAX`]), keyed BLAKE3 per chunk, deduplication, zstd at `zstd_level` per
/// distinct chunk (kept raw when it saves less than 1/32, as brr does), AES-256-GCM; then the way
/// back for every distinct chunk (decrypt, decompress, verify) and a copy of every byte restored.
/// With `write_to`, the tree's files are also written again under that (empty, scratch) directory.
/// Each stage is timed on its own; the sums are the CPU a perfect implementation needs on one core.
///
/// # Errors
/// I/O errors from walking or reading the tree, and compression or AEAD errors (not expected).
pub fn corpus_pipeline(
    dir: &std::path::Path,
    zstd_level: i32,
    write_to: Option<&std::path::Path>,
) -> Result<PipelineResult, String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut r = PipelineResult {
        zstd_level,
        ..PipelineResult::default()
    };

    let t = Instant::now();
    let mut files = Vec::new();
    walk(dir, &mut files, &mut r.other_entries).map_err(io)?;
    r.walk_s = t.elapsed().as_secs_f64();
    r.files = files.len() as u64;

    let id_key = [3u8; 32];
    let key = aes_key();
    let mut comp = zstd::bulk::Compressor::new(zstd_level).map_err(|e| e.to_string())?;
    let mut zbuf = vec![0u8; zstd::zstd_safe::compress_bound(CDC_MAX)];
    let mut seen = std::collections::HashMap::<blake3::Hash, usize>::new();
    let mut stored: Vec<StoredChunk> = Vec::new();
    // Every chunk reference in file order, as an index into `stored` (for the restore copy).
    let mut refs: Vec<Vec<usize>> = Vec::with_capacity(files.len());

    for path in &files {
        let t = Instant::now();
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        r.read_s += t.elapsed().as_secs_f64();
        r.bytes += data.len() as u64;

        let t = Instant::now();
        let cuts: Vec<(usize, usize)> = if data.is_empty() {
            Vec::new()
        } else {
            fastcdc::v2020::FastCDC::new(&data, CDC_MIN, CDC_AVG, CDC_MAX)
                .map(|c| (c.offset, c.length))
                .collect()
        };
        r.chunk_s += t.elapsed().as_secs_f64();

        let mut file_refs = Vec::with_capacity(cuts.len());
        for (off, len) in cuts {
            let chunk = &data[off..off + len];
            r.chunks += 1;
            let t = Instant::now();
            let id = blake3::keyed_hash(&id_key, chunk);
            r.hash_s += t.elapsed().as_secs_f64();
            if let Some(&i) = seen.get(&id) {
                file_refs.push(i);
                continue;
            }
            r.unique_chunks += 1;
            r.unique_bytes += len as u64;

            let t = Instant::now();
            let clen = comp
                .compress_to_buffer(chunk, &mut zbuf[..])
                .map_err(|e| e.to_string())?;
            r.compress_s += t.elapsed().as_secs_f64();
            let compressed = clen + len / 32 <= len;
            let mut payload = if compressed {
                zbuf[..clen].to_vec()
            } else {
                chunk.to_vec()
            };

            let t = Instant::now();
            let n = stored.len() as u64;
            let tag = key
                .seal_in_place_separate_tag(nonce_for(n), Aad::empty(), &mut payload)
                .map_err(|_| "AES-GCM seal failed".to_string())?;
            r.encrypt_s += t.elapsed().as_secs_f64();
            r.stored_bytes += payload.len() as u64;

            seen.insert(id, stored.len());
            file_refs.push(stored.len());
            stored.push(StoredChunk {
                id,
                compressed,
                plain_len: len,
                sealed: payload,
                tag: tag.as_ref().to_vec(),
            });
        }
        refs.push(file_refs);
    }

    // The way back: every distinct chunk once, into reused buffers (as a restorer would).
    let mut decoded: Vec<Vec<u8>> = Vec::with_capacity(stored.len());
    let mut dec = zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?;
    let mut plain = vec![0u8; CDC_MAX];
    let mut unz = vec![0u8; CDC_MAX];
    for (i, c) in stored.iter().enumerate() {
        let n_ct = c.sealed.len();
        let t = Instant::now();
        key.open_separate_gather(
            nonce_for(i as u64),
            Aad::empty(),
            &c.sealed,
            &c.tag,
            &mut plain[..n_ct],
        )
        .map_err(|_| "AES-GCM open failed".to_string())?;
        r.decrypt_s += t.elapsed().as_secs_f64();
        let content: &[u8] = if c.compressed {
            let t = Instant::now();
            let n = dec
                .decompress_to_buffer(&plain[..n_ct], &mut unz[..])
                .map_err(|e| e.to_string())?;
            r.decompress_s += t.elapsed().as_secs_f64();
            &unz[..n]
        } else {
            &plain[..n_ct]
        };
        let t = Instant::now();
        let ok = content.len() == c.plain_len && blake3::keyed_hash(&id_key, content) == c.id;
        r.verify_s += t.elapsed().as_secs_f64();
        if !ok {
            return Err(format!("chunk {i} does not verify after decoding"));
        }
        decoded.push(content.to_vec());
    }
    // Writing the files: one copy of every referenced chunk.
    let mut out = vec![0u8; CDC_MAX];
    let t = Instant::now();
    for &i in refs.iter().flatten() {
        let c = &decoded[i];
        out[..c.len()].copy_from_slice(c);
        black_box(&out);
    }
    r.write_copy_s = t.elapsed().as_secs_f64();

    // And through the file system, when asked: the same tree under `write_to`.
    if let Some(dst) = write_to {
        let t = Instant::now();
        for (path, file_refs) in files.iter().zip(&refs) {
            let rel = path.strip_prefix(dir).map_err(|e| e.to_string())?;
            let target = dst.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let mut f =
                std::fs::File::create(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            for &i in file_refs {
                std::io::Write::write_all(&mut f, &decoded[i])
                    .map_err(|e| format!("{}: {e}", target.display()))?;
            }
        }
        r.write_files_s = Some(t.elapsed().as_secs_f64());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

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

    #[test]
    fn stages_run_on_small_inputs() {
        // Functional smoke test only: every stage runs and reports one entry per run.
        let data = text_like(2 * MESSAGE + 123, 9);
        for r in [
            bench_memcpy(&data, 1),
            bench_blake3_keyed(&data, 1),
            bench_fastcdc(&data, 1),
            bench_aes_gcm_seal(&data, 1),
            bench_aes_gcm_open(&data, 1),
            bench_zstd_compress(&data, 1, "text-like", 1),
            bench_zstd_decompress(&data, 1, "text-like", 1),
        ] {
            assert_eq!(r.runs_mb_s.len(), 1, "{}", r.name);
            assert_eq!(r.bytes, data.len());
        }
        let z = bench_zstd_compress(&data, 3, "text-like", 1);
        assert!(z.ratio.is_some_and(|r| r > 0.0 && r < 1.0));
    }

    #[test]
    fn pipeline_over_a_small_tree_deduplicates_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("brr-bench-pipeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        let text = text_like(3 * MESSAGE, 11);
        std::fs::write(dir.join("a.txt"), &text).expect("write");
        std::fs::write(dir.join("sub/b.txt"), &text).expect("write");
        std::fs::write(dir.join("sub/c.bin"), random_bytes(100_000, 12)).expect("write");
        std::fs::write(dir.join("empty"), b"").expect("write");
        let out =
            std::env::temp_dir().join(format!("brr-bench-pipeline-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let r = corpus_pipeline(&dir, 3, Some(&out)).expect("pipeline");
        let written = std::fs::read(out.join("sub/b.txt")).expect("written file");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&out);
        assert!(written == text, "the file written back equals the original");
        assert!(r.write_files_s.is_some());
        assert_eq!(r.files, 4);
        assert_eq!(r.other_entries, 1);
        assert_eq!(r.bytes, 2 * text.len() as u64 + 100_000);
        // The second copy of the text deduplicates entirely.
        assert_eq!(r.unique_bytes, text.len() as u64 + 100_000);
        assert!(r.chunks > r.unique_chunks);
        assert!(r.stored_bytes < r.unique_bytes);
    }
}
