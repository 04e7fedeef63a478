//! The sweep phase: decide the fate of every pack of one GC record whose sessions have ended.
//!
//! | step | what |
//! |---|---|
//! | 1 | re-read every snapshot (after the sessions ended, so a snapshot any of them committed is seen) |
//! | 2 | a condemned pack is **kept** if some snapshot references a blob in it that no usable pack holds (usable: described by a live index file, present, not condemned by any record); a live index file is made to describe it |
//! | 3 | every other pack is removed from the live index files that still name it (one new file superseding them), then deleted |
//! | 4 | the record is deleted |
//!
//! Dying at any point is safe: packs are deleted only after no live index names them, and the record
//! goes last, so the next prune repeats what is left.

use std::collections::{BTreeMap, HashMap, HashSet};

use brr_core::gcrecord::{CondemnedPack, GcRecord};
use brr_core::id::{BlobId, IndexId, PackId};
use brr_core::index::IndexedPack;
use brr_storage::FileKind;

use super::{GcTarget, PruneReport};
use crate::error::{EngineError, Result};
use crate::index::{read_index_files, read_pack_trailer, write_index_file};

/// Sweeps record `name`. The caller holds the exclusive lock and has verified that none of the
/// record's sessions is still running.
pub(super) fn sweep(
    t: &GcTarget<'_>,
    name: &str,
    record: &GcRecord,
    report: &mut PruneReport,
) -> Result<()> {
    let backend = t.backend();
    let referenced: HashSet<BlobId> = (t.referenced)()?;
    let mut condemned_anywhere: HashSet<PackId> = HashSet::new();
    for f in backend.list(FileKind::Gc)? {
        match backend.read(FileKind::Gc, &f.name) {
            Ok(bytes) => {
                let r = GcRecord::decode(&bytes)
                    .map_err(|e| EngineError::Damaged(format!("GC record gc/{}: {e}", f.name)))?;
                condemned_anywhere.extend(r.packs.iter().map(|p| p.id));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    condemned_anywhere.extend(record.packs.iter().map(|p| p.id));
    let (files, contents) = read_index_files(backend)?;
    let stored: HashMap<PackId, u64> = backend
        .list(FileKind::Pack)?
        .into_iter()
        .filter_map(|f| PackId::from_hex(&f.name).ok().map(|id| (id, f.size)))
        .collect();
    let described: HashSet<PackId> = contents
        .iter()
        .flat_map(|f| f.packs.iter().map(|p| p.id))
        .collect();
    let mut available: HashSet<BlobId> = contents
        .iter()
        .flat_map(|f| f.packs.iter())
        .filter(|p| stored.contains_key(&p.id) && !condemned_anywhere.contains(&p.id))
        .flat_map(|p| p.trailer.entries.iter().map(|e| e.id))
        .collect();

    let mut packs: Vec<&CondemnedPack> = record.packs.iter().collect();
    packs.sort_by_key(|p| p.id);
    let mut keep: Vec<&CondemnedPack> = Vec::new();
    let mut delete: Vec<&CondemnedPack> = Vec::new();
    for p in packs {
        let needed = stored.contains_key(&p.id)
            && p.blobs
                .iter()
                .any(|b| referenced.contains(b) && !available.contains(b));
        if needed {
            available.extend(p.blobs.iter().copied());
            keep.push(p);
        } else {
            delete.push(p);
        }
    }

    // Kept packs must be described by a live index file before the record goes.
    let mut to_index: Vec<IndexedPack> = Vec::new();
    for p in keep.iter().filter(|p| !described.contains(&p.id)) {
        to_index.push(read_pack_trailer(backend, p.id, stored[&p.id])?);
    }
    if !to_index.is_empty() {
        write_index_file(backend, to_index, Vec::new())?;
        report.index_files_rewritten += 1;
    }

    // Deleted packs leave every live index file first.
    let doomed: HashSet<PackId> = delete.iter().map(|p| p.id).collect();
    let mut affected: Vec<IndexId> = Vec::new();
    let mut remaining: BTreeMap<PackId, IndexedPack> = BTreeMap::new();
    for (id, file) in files.iter().zip(contents) {
        if file.packs.iter().any(|p| doomed.contains(&p.id)) {
            affected.push(*id);
            for p in file.packs.into_iter().filter(|p| !doomed.contains(&p.id)) {
                remaining.entry(p.id).or_insert(p);
            }
        }
    }
    if !affected.is_empty() {
        write_index_file(backend, remaining.into_values().collect(), affected.clone())?;
        report.index_files_rewritten += 1;
        for old in &affected {
            match backend.remove(FileKind::Index, &old.to_hex()) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for p in &delete {
        match backend.remove(FileKind::Pack, &p.id.to_hex()) {
            Ok(()) => {
                report.packs_deleted += 1;
                report.bytes_freed += stored.get(&p.id).copied().unwrap_or(p.size);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    report.packs_kept_referenced += keep.len() as u64;
    match backend.remove(FileKind::Gc, name) {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
