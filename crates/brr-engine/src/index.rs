//! The in-memory master index: where every blob is stored.
//!
//! Built from all live index files (minus superseded ones and minus packs condemned by a GC record), it
//! answers "is this blob stored, and where" with a binary search over one sorted vector of 48-byte
//! entries — the whole index costs 48 bytes of RAM per blob plus one small record per pack, and no
//! per-entry allocation. It is immutable once built and shared between threads; blobs added by a running
//! backup are tracked by that backup.

use std::collections::{HashMap, HashSet};

use brr_core::blob::BlobType;
use brr_core::crypto::KeyId;
use brr_core::gcrecord::GcRecord;
use brr_core::id::{BlobId, IndexId, PackId};
use brr_core::index::{IndexFile, IndexedPack};
use brr_core::pack::{FOOTER_LEN, parse_pack_tail};
use brr_storage::{Backend, FileKind};

use crate::error::{EngineError, Result};
use crate::parallel::parallel_map;

/// One blob's location. 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The blob.
    pub id: BlobId,
    /// Position of the pack in [`Index::packs`].
    pub pack: u32,
    /// Offset in the pack.
    pub offset: u32,
    /// Stored length.
    pub length: u32,
    /// Data or tree.
    pub blob_type: BlobType,
    /// Index into the pack's key table.
    pub key_index: u8,
}

/// A pack known to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    /// Its name.
    pub id: PackId,
    /// Total size.
    pub size: u64,
    /// Keys that sealed its blobs.
    pub key_ids: Vec<KeyId>,
    /// Number of blobs.
    pub blobs: u32,
}

/// The master index.
#[derive(Debug, Default)]
pub struct Index {
    packs: Vec<PackInfo>,
    pack_pos: HashMap<PackId, u32>,
    entries: Vec<IndexEntry>,
    /// Live index files this index was built from.
    pub files: Vec<IndexId>,
    /// Packs excluded because a GC record condemned them.
    pub condemned: HashSet<PackId>,
    /// The GC records read while loading.
    pub gc_records: Vec<(String, GcRecord)>,
}

impl Index {
    /// Loads every live index file and every GC record of the repository.
    pub fn load(backend: &dyn Backend) -> Result<Self> {
        let mut gc_records = Vec::new();
        for f in backend.list(FileKind::Gc)? {
            match backend.read(FileKind::Gc, &f.name) {
                Ok(bytes) => gc_records.push((f.name, GcRecord::decode(&bytes)?)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let condemned: HashSet<PackId> = gc_records
            .iter()
            .flat_map(|(_, r)| r.packs.iter().map(|p| p.id))
            .collect();
        let (files, contents) = read_index_files(backend)?;
        let mut index = Index {
            files,
            condemned,
            gc_records,
            ..Default::default()
        };
        for file in contents {
            for pack in file.packs {
                index.add_pack(&pack);
            }
        }
        index.sort();
        Ok(index)
    }

    /// Like [`Index::load`], and also indexes packs that a GC record condemned but that still exist. Readers
    /// (restore, ls, diff, stats) use this: a snapshot committed by a backup that ran during a prune may
    /// reference blobs in such a pack until the next prune re-indexes it. Backups must not (they would
    /// deduplicate against packs about to be deleted) and use [`Index::load`].
    pub fn load_with_condemned(backend: &dyn Backend) -> Result<Self> {
        let mut index = Self::load(backend)?;
        if index.condemned.is_empty() {
            return Ok(index);
        }
        let sizes: HashMap<String, u64> = backend
            .list(FileKind::Pack)?
            .into_iter()
            .map(|f| (f.name, f.size))
            .collect();
        let condemned = std::mem::take(&mut index.condemned);
        for id in &condemned {
            if let Some(size) = sizes.get(&id.to_hex())
                && let Ok(pack) = read_pack_trailer(backend, *id, *size)
            {
                index.add_pack(&pack);
            }
        }
        index.condemned = condemned;
        index.sort();
        Ok(index)
    }

    /// Adds a pack (ignored if already present or condemned). Call [`Index::sort`] after adding.
    pub fn add_pack(&mut self, pack: &IndexedPack) {
        if self.pack_pos.contains_key(&pack.id) || self.condemned.contains(&pack.id) {
            return;
        }
        let pos = self.packs.len() as u32;
        self.packs.push(PackInfo {
            id: pack.id,
            size: pack.pack_len,
            key_ids: pack.trailer.key_ids.clone(),
            blobs: pack.trailer.entries.len() as u32,
        });
        self.pack_pos.insert(pack.id, pos);
        self.entries
            .extend(pack.trailer.entries.iter().map(|e| IndexEntry {
                id: e.id,
                pack: pos,
                offset: e.offset,
                length: e.length,
                blob_type: e.blob_type,
                key_index: e.key_index,
            }));
    }

    /// Restores the sorted order after additions.
    pub fn sort(&mut self) {
        self.entries
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
    }

    /// The first location of a blob.
    pub fn get(&self, id: &BlobId) -> Option<&IndexEntry> {
        let i = self.entries.partition_point(|e| e.id < *id);
        self.entries.get(i).filter(|e| e.id == *id)
    }

    /// Whether a blob is stored.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.get(id).is_some()
    }

    /// Every location of a blob (duplicates arise from concurrent backups).
    pub fn all_locations(&self, id: &BlobId) -> &[IndexEntry] {
        let start = self.entries.partition_point(|e| e.id < *id);
        let end = start + self.entries[start..].partition_point(|e| e.id == *id);
        &self.entries[start..end]
    }

    /// The pack an entry lives in.
    pub fn pack(&self, entry: &IndexEntry) -> &PackInfo {
        &self.packs[entry.pack as usize]
    }

    /// All packs.
    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// All entries, sorted by blob ID.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Whether a pack is indexed.
    pub fn has_pack(&self, id: &PackId) -> bool {
        self.pack_pos.contains_key(id)
    }

    /// Number of blobs (with duplicates).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Packs that exist in storage but no live index describes, and that no GC record condemned: left by a
    /// backup that was killed before it wrote its index. Their trailers are read so they can be indexed.
    pub fn find_orphan_packs(&self, backend: &dyn Backend) -> Result<Vec<IndexedPack>> {
        let orphans: Vec<(PackId, u64)> = backend
            .list(FileKind::Pack)?
            .into_iter()
            .filter_map(|f| PackId::from_hex(&f.name).ok().map(|id| (id, f.size)))
            .filter(|(id, _)| !self.has_pack(id) && !self.condemned.contains(id))
            .collect();
        let found = parallel_map(orphans, 4, |(id, size)| {
            read_pack_trailer(backend, id, size)
        });
        // A pack that cannot be parsed is not adopted (check reports it); the backup goes on.
        Ok(found.into_iter().filter_map(|r| r.ok()).collect())
    }
}

/// Reads and decodes a pack's trailer.
pub fn read_pack_trailer(backend: &dyn Backend, id: PackId, size: u64) -> Result<IndexedPack> {
    let name = id.to_hex();
    let tail_len = size.min(64 * 1024);
    let tail = backend.read_range(FileKind::Pack, &name, size - tail_len, tail_len)?;
    let trailer = match parse_pack_tail(&tail, size) {
        Ok(t) => t,
        Err(_) if tail_len < size && tail.len() >= FOOTER_LEN => {
            // The trailer is longer than the first guess: read exactly what the footer says.
            let footer = brr_core::pack::Footer::decode(&tail[tail.len() - FOOTER_LEN..], size)?;
            let need = u64::from(footer.trailer_len) + FOOTER_LEN as u64;
            let tail = backend.read_range(FileKind::Pack, &name, size - need, need)?;
            parse_pack_tail(&tail, size)?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(IndexedPack {
        id,
        pack_len: size,
        trailer,
    })
}

/// Reads all index files; returns the live (not superseded) IDs and contents.
pub fn read_index_files(backend: &dyn Backend) -> Result<(Vec<IndexId>, Vec<IndexFile>)> {
    loop {
        let names: Vec<String> = backend
            .list(FileKind::Index)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let results = parallel_map(names, 8, |name| -> Result<Option<(IndexId, IndexFile)>> {
            let id = IndexId::from_hex(&name)
                .map_err(|e| EngineError::Damaged(format!("index file name {name:?}: {e}")))?;
            match backend.read(FileKind::Index, &name) {
                Ok(bytes) => {
                    let actual = IndexId(brr_core::id::Id::hash_of(&bytes));
                    if actual != id {
                        return Err(EngineError::Damaged(format!(
                            "index file {name}: content does not match its name (bit rot or tampering)"
                        )));
                    }
                    Ok(Some((
                        id,
                        IndexFile::decode(&bytes)
                            .map_err(|e| EngineError::Damaged(format!("index file {name}: {e}")))?,
                    )))
                }
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e.into()),
            }
        });
        let mut files = Vec::new();
        let mut vanished = false;
        for r in results {
            match r? {
                Some(f) => files.push(f),
                None => vanished = true,
            }
        }
        if vanished {
            // Consolidated by a concurrent process between list and read: list again.
            continue;
        }
        let superseded: HashSet<IndexId> = files
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        let (ids, contents) = files
            .into_iter()
            .filter(|(id, _)| !superseded.contains(id))
            .unzip();
        return Ok((ids, contents));
    }
}

/// Writes an index file for `packs`, superseding `supersedes`; returns its ID.
pub fn write_index_file(
    backend: &dyn Backend,
    packs: Vec<IndexedPack>,
    supersedes: Vec<IndexId>,
) -> Result<IndexId> {
    let (id, bytes) = IndexFile { supersedes, packs }.encode();
    backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brr_core::id::Id;
    use brr_core::pack::PackWriter;

    fn pack(seed: u8, n: usize) -> IndexedPack {
        let mut w = PackWriter::with_capacity(0);
        for i in 0..n {
            w.add(
                BlobType::Data,
                BlobId(Id::hash_of(&[seed, i as u8])),
                KeyId([0; 16]),
                &[0u8; 41],
            );
        }
        let f = w.finish();
        IndexedPack {
            id: f.id,
            pack_len: f.bytes.len() as u64,
            trailer: f.trailer,
        }
    }

    #[test]
    fn entry_is_48_bytes() {
        assert!(
            std::mem::size_of::<IndexEntry>() <= 48,
            "{}",
            std::mem::size_of::<IndexEntry>()
        );
    }

    #[test]
    fn lookup() {
        let mut idx = Index::default();
        let a = pack(1, 10);
        let b = pack(2, 10);
        idx.add_pack(&a);
        idx.add_pack(&b);
        idx.add_pack(&a);
        idx.sort();
        assert_eq!(idx.len(), 20);
        for e in a.trailer.entries.iter().chain(b.trailer.entries.iter()) {
            let got = idx.get(&e.id).unwrap();
            assert_eq!(got.offset, e.offset);
        }
        assert!(!idx.contains(&BlobId(Id::hash_of(b"nope"))));
    }
}
