//! Single-stage throughput: each stage of brr's data path measured alone on one core ([`StageResult`]).

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::{CDC_AVG, CDC_LABEL, CDC_MAX, CDC_MIN, MESSAGE};

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

pub(crate) fn aes_key() -> LessSafeKey {
    let unbound =
        UnboundKey::new(&AES_256_GCM, &[9u8; 32]).expect("a 32-byte AES-256 key is valid");
    LessSafeKey::new(unbound)
}

pub(crate) fn nonce_for(counter: u64) -> Nonce {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text_like;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
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
}
