//! The whole data path over a real directory tree, each stage timed on its own ([`PipelineResult`]).

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::aead::Aad;

use crate::stages::{aes_key, nonce_for};
use crate::{CDC_AVG, CDC_MAX, CDC_MIN};

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
    use crate::{MESSAGE, random_bytes, text_like};

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
