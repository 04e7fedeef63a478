//! Scrub of packs: each hashed range by range against its name, its trailer parsed and compared with
//! the live index files' description. A damaged pack's blobs are those its trailer and the live index
//! name, so the snapshots it affects are found even when the damage is in the trailer.

use std::collections::HashSet;

use brr_core::id::{BlobId, Id, PackId};
use brr_core::index::IndexedPack;
use brr_storage::{Backend, FileInfo, FileKind, StorageError};

use super::files::IndexState;
use super::{Problem, ScrubFinding, ScrubOptions, ScrubReport, found};
use crate::check::file_path;
use crate::error::{EngineError, Result};
use crate::parallel::parallel_map;
use crate::progress::Progress;

/// What the pack pass found.
pub(super) struct Packs {
    /// Damaged packs and the blobs known to be in each.
    pub findings: Vec<(ScrubFinding, Vec<BlobId>)>,
    /// Packs found in storage, intact or not.
    pub stored: HashSet<PackId>,
    /// Blobs of intact packs.
    pub healthy_blobs: HashSet<BlobId>,
}

pub(super) fn scrub_packs(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    index: &IndexState,
    report: &mut ScrubReport,
    progress: &dyn Progress,
) -> Result<Packs> {
    let list = backend.list(FileKind::Pack)?;
    report.packs = list.len() as u64;
    let total: u64 = list.iter().map(|f| f.size).sum();
    progress.start("scrubbing packs", Some(list.len() as u64), Some(total));
    let results = parallel_map(list, opts.threads, |f| {
        let r = scrub_pack(backend, opts, index, &f, progress);
        progress.items(1);
        (f, r)
    });
    progress.finish();
    let mut out = Packs {
        findings: Vec::new(),
        stored: HashSet::new(),
        healthy_blobs: HashSet::new(),
    };
    for (f, r) in results {
        let Ok(id) = PackId::from_hex(&f.name) else {
            out.findings.push((
                found(
                    FileKind::Pack,
                    &f.name,
                    Problem::Damaged,
                    "name is not a pack ID",
                ),
                Vec::new(),
            ));
            continue;
        };
        match r? {
            PackRead::Gone => continue,
            PackRead::Good(p) => {
                out.healthy_blobs
                    .extend(p.trailer.entries.iter().map(|e| e.id));
            }
            PackRead::Bad(reason, blobs) => out.findings.push((
                found(FileKind::Pack, &f.name, Problem::Damaged, reason),
                blobs,
            )),
        }
        report.files += 1;
        report.bytes += f.size;
        if !index.described.contains_key(&id) {
            report.warnings.push(format!(
                "{}: no live index file describes it (left by an interrupted backup, or condemned)",
                file_path(FileKind::Pack, &f.name)
            ));
        }
        out.stored.insert(id);
    }
    Ok(out)
}

/// How one pack turned out.
enum PackRead {
    Good(IndexedPack),
    /// The reason, and the blob IDs known to be in it.
    Bad(String, Vec<BlobId>),
    /// Removed since it was listed.
    Gone,
}

/// Hashes one pack in ranges and checks its trailer. A bad pack carries the blob IDs known to be in
/// it (from its trailer, else from the index file describing it).
fn scrub_pack(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    index: &IndexState,
    f: &FileInfo,
    progress: &dyn Progress,
) -> Result<PackRead> {
    let Ok(id) = PackId::from_hex(&f.name) else {
        return Ok(PackRead::Bad("name is not a pack ID".into(), Vec::new()));
    };
    let described = index.described.get(&id).map(|(p, _)| p);
    // The blobs of a damaged pack: what the live index says and what its own (possibly damaged)
    // trailer says, both — a flipped bit in the trailer changes a blob ID.
    let known = |trailer: Option<&IndexedPack>| -> Vec<BlobId> {
        let mut ids: Vec<BlobId> = trailer
            .into_iter()
            .chain(described)
            .flat_map(|p| p.trailer.entries.iter().map(|e| e.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let bad =
        |reason: String, trailer: Option<&IndexedPack>| Ok(PackRead::Bad(reason, known(trailer)));
    let gone = |e: &StorageError| e.is_not_found();

    let mut hasher = blake3::Hasher::new();
    let mut offset = 0u64;
    while offset < f.size {
        let len = opts.range_len.min(f.size - offset);
        match backend.read_range(FileKind::Pack, &f.name, offset, len) {
            Ok(chunk) => {
                hasher.update(&chunk);
                progress.bytes(len);
            }
            Err(e) if gone(&e) => return Ok(PackRead::Gone),
            Err(StorageError::ShortRead { .. }) => {
                return bad(format!("shorter than listed ({} bytes)", f.size), None);
            }
            Err(e) => return Err(e.into()),
        }
        offset += len;
    }
    let trailer = match crate::index::read_pack_trailer(backend, id, f.size) {
        Ok(t) => Some(t),
        Err(EngineError::Storage(e)) if gone(&e) => return Ok(PackRead::Gone),
        Err(EngineError::Storage(e)) if !matches!(e, StorageError::ShortRead { .. }) => {
            return Err(e.into());
        }
        Err(e) => {
            if PackId(Id(*hasher.finalize().as_bytes())) != id {
                return bad(
                    format!("content does not match its name (bit rot or tampering); trailer: {e}"),
                    None,
                );
            }
            return bad(format!("trailer does not decode: {e}"), None);
        }
    };
    if PackId(Id(*hasher.finalize().as_bytes())) != id {
        return bad(
            "content does not match its name (bit rot or tampering)".into(),
            trailer.as_ref(),
        );
    }
    let Some(trailer) = trailer else {
        return bad("trailer unreadable".into(), None);
    };
    if let Some(d) = described
        && (d.pack_len != trailer.pack_len || d.trailer != trailer.trailer)
    {
        return bad(
            format!(
                "trailer or size ({} bytes) differ from the live index file's description ({} bytes)",
                trailer.pack_len, d.pack_len
            ),
            Some(&trailer),
        );
    }
    Ok(PackRead::Good(trailer))
}
