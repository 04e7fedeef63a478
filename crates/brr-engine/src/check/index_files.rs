//! Index files and the pack listing: reads the live index files into an [`IndexView`], adds what GC
//! records condemn, and checks that every indexed pack is stored with its indexed size.

use std::collections::{HashMap, HashSet};

use brr_core::gcrecord::GcRecord;
use brr_core::id::{Id, IndexId, PackId};
use brr_core::index::{IndexFile, IndexedPack};
use brr_storage::FileKind;

use super::{Findings, IndexView, finding, read_error};
use crate::error::Result;
use crate::index::{Index, read_pack_trailer};
use crate::parallel::parallel_map;
use crate::repo::Repository;

pub(super) fn list_packs(repo: &Repository, f: &mut Findings) -> Result<HashMap<PackId, u64>> {
    let mut out = HashMap::new();
    for file in repo.backend().list(FileKind::Pack)? {
        match PackId::from_hex(&file.name) {
            Ok(id) => {
                out.insert(id, file.size);
            }
            Err(_) => f.warn(FileKind::Pack, &file.name, "not a pack name; ignored"),
        }
    }
    Ok(out)
}

pub(super) fn check_index_files(
    repo: &Repository,
    threads: usize,
    f: &mut Findings,
) -> Result<IndexView> {
    let files = loop {
        let names: Vec<String> = repo
            .backend()
            .list(FileKind::Index)?
            .into_iter()
            .map(|i| i.name)
            .collect();
        let read = parallel_map(names, threads, |name| {
            let r = (|| {
                let id = IndexId::from_hex(&name)
                    .map_err(|_| "file name is not an index ID".to_string())?;
                let bytes = match repo.backend().read(FileKind::Index, &name) {
                    Ok(b) => b,
                    // Superseded and deleted since the listing (a prune or backup consolidated it).
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(read_error(&e)),
                };
                if IndexId(Id::hash_of(&bytes)) != id {
                    return Err(
                        "content does not match its name (bit rot, truncation or tampering)".into(),
                    );
                }
                IndexFile::decode(&bytes)
                    .map(|file| Some((id, file)))
                    .map_err(|e| format!("does not parse: {e}"))
            })();
            (name, r)
        });
        let mut files: Vec<(IndexId, IndexFile)> = Vec::new();
        let mut errors = Vec::new();
        let mut vanished = false;
        for (name, r) in read {
            match r {
                Ok(Some(x)) => files.push(x),
                Ok(None) => vanished = true,
                Err(msg) => errors.push(finding(FileKind::Index, &name, None, msg)),
            }
        }
        if !vanished {
            f.errors.extend(errors);
            break files;
        }
        // What replaced the vanished file was written after the listing: list again.
    };
    let mut files = files;
    let superseded: HashSet<IndexId> = files
        .iter()
        .flat_map(|(_, file)| file.supersedes.iter().copied())
        .collect();
    files.sort_by_key(|(id, _)| *id);

    let mut index = Index::default();
    let mut indexed: HashMap<PackId, (IndexId, IndexedPack)> = HashMap::new();
    for (id, file) in files.iter().filter(|(id, _)| !superseded.contains(id)) {
        for pack in &file.packs {
            match indexed.get(&pack.id) {
                Some((other, first)) if first != pack => f.error(
                    FileKind::Index,
                    &id.to_hex(),
                    None,
                    format!(
                        "describes pack {} differently from index/{}",
                        pack.id.short(),
                        other.to_hex()
                    ),
                ),
                Some(_) => {}
                None => {
                    index.add_pack(pack);
                    indexed.insert(pack.id, (*id, pack.clone()));
                }
            }
        }
    }
    index.files = files
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !superseded.contains(id))
        .collect();

    Ok(IndexView {
        index,
        indexed,
        condemned: HashMap::new(),
    })
}

/// Notes the packs GC records condemn and makes those no index describes any more readable: until the
/// sweep, blobs a snapshot committed during the mark phase may live there.
pub(super) fn add_condemned_packs(
    repo: &Repository,
    view: &mut IndexView,
    records: &[(String, GcRecord)],
    stored: &HashMap<PackId, u64>,
) {
    for (name, record) in records {
        for p in &record.packs {
            view.condemned.entry(p.id).or_insert_with(|| name.clone());
            if !view.indexed.contains_key(&p.id)
                && let Some(&size) = stored.get(&p.id)
                && let Ok(pack) = read_pack_trailer(repo.backend(), p.id, size)
            {
                view.index.add_pack(&pack);
            }
        }
    }
    view.index.sort();
}

pub(super) fn check_pack_presence(
    view: &IndexView,
    stored: &HashMap<PackId, u64>,
    f: &mut Findings,
) {
    let mut indexed: Vec<_> = view.indexed.iter().collect();
    indexed.sort_by_key(|(id, _)| **id);
    for (id, (index_id, pack)) in indexed {
        match stored.get(id) {
            // Condemned and deleted by a prune's sweep since the index was read.
            None if view.condemned.contains_key(id) => {}
            None => f.error(
                FileKind::Pack,
                &id.to_hex(),
                None,
                format!(
                    "pack is missing (indexed by index/{}, {} blobs)",
                    index_id.to_hex(),
                    pack.trailer.entries.len()
                ),
            ),
            Some(&size) if size != pack.pack_len => f.error(
                FileKind::Pack,
                &id.to_hex(),
                None,
                format!(
                    "pack is {size} bytes but index/{} says {} (truncated or replaced)",
                    index_id.to_hex(),
                    pack.pack_len
                ),
            ),
            Some(_) => {}
        }
    }
    let mut unindexed: Vec<&PackId> = stored
        .keys()
        .filter(|id| !view.indexed.contains_key(id))
        .collect();
    unindexed.sort();
    for id in unindexed {
        match view.condemned.get(id) {
            Some(record) => f.warn(
                FileKind::Pack,
                &id.to_hex(),
                format!("condemned by gc/{record}, waiting to be deleted"),
            ),
            None => f.warn(
                FileKind::Pack,
                &id.to_hex(),
                "pack no index file describes (left by an interrupted backup or prune; the next backup indexes it, prune removes it if unused)",
            ),
        }
    }
}
