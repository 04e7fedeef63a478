//! Verifying restored files: read each one back and check every chunk's keyed hash against the
//! snapshot's chunk list.

use std::io::Read;

use brr_core::tree::ChunkRef;

use super::data::FileState;
use super::fsops::reopen;
use crate::parallel::parallel_map;
use crate::progress::Progress;
use crate::repo::Repository;

/// Checks `files` (state, snapshot path, chunks); returns the number verified and the mismatches.
pub(super) fn verify(
    repo: &Repository,
    files: Vec<(&FileState, &str, &[ChunkRef])>,
    threads: usize,
    progress: &dyn Progress,
) -> (u64, Vec<String>) {
    let results = parallel_map(files, threads, |(state, snap_path, chunks)| {
        let r = verify_one(repo, state, chunks, progress);
        progress.items(1);
        r.map_err(|e| format!("{snap_path}: verification failed: {e}"))
    });
    let mut ok = 0;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                progress.warn(&e);
                errors.push(e);
            }
        }
    }
    (ok, errors)
}

fn verify_one(
    repo: &Repository,
    state: &FileState,
    chunks: &[ChunkRef],
    progress: &dyn Progress,
) -> Result<(), String> {
    let mut f = reopen(&state.path, false, state.id).map_err(|e| e.to_string())?;
    let expected: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
    let actual = f.metadata().map_err(|e| e.to_string())?.len();
    if actual != expected {
        return Err(format!("size is {actual} bytes, expected {expected}"));
    }
    let mut buf = vec![0u8; chunks.iter().map(|c| c.len as usize).max().unwrap_or(0)];
    let mut offset = 0u64;
    for c in chunks {
        let buf = &mut buf[..c.len as usize];
        f.read_exact(buf)
            .map_err(|e| format!("reading at offset {offset}: {e}"))?;
        if repo.key().blob_id(buf) != c.id {
            return Err(format!(
                "content at offset {offset} ({} bytes) does not match chunk {}",
                c.len,
                c.id.short()
            ));
        }
        offset += u64::from(c.len);
        progress.bytes(u64::from(c.len));
    }
    Ok(())
}
