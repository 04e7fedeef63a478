//! Maintenance of a stored repository **without the key**: what a storage provider (`brrd`) runs on
//! its customers' repositories. Nothing here takes or needs a `MasterKey`.
//!
//! | module | does | reads |
//! |---|---|---|
//! | [`KeylessRepo`] (here) | a view of the stored files: config, snapshots' public parts, index files, pack trailers, GC records, locks | cleartext parts only |
//! | [`scrub`] | rehashes every content-addressed file against its name, parses every structure, finds referenced blobs no pack holds; names the snapshots each damaged or missing pack affects | every byte, in bounded ranges |
//! | [`retention`] | `brr_core::retention` over the snapshot headers' times, per repository or per source tag; removes the chosen snapshot files | snapshot headers |
//! | [`gc`] | the two-phase garbage collection of `brr prune` (docs/repository-format.md §16), with lock staleness judged by the caller | snapshot references, index files, trailers, GC records, locks |
//!
//! What the view cannot check without the key: the config's MAC, snapshot MACs, and that blobs decrypt
//! and hash to their IDs. A file whose name is the BLAKE3 of its bytes is intact as written; whether
//! its writer was honest is for key holders (`brr check`) to verify.

pub mod gc;
pub mod retention;
pub mod scrub;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use brr_core::config::RepoConfig;
use brr_core::gcrecord::GcRecord;
use brr_core::id::{BlobId, Id, IndexId, PackId, SnapshotId};
use brr_core::index::{IndexFile, IndexedPack};
use brr_core::lockfile::LockFile;
use brr_core::snapshot::parse_snapshot_public;
use brr_storage::{Backend, FileInfo, FileKind};
use chrono::{DateTime, FixedOffset};
use parking_lot::Mutex;

use crate::error::{EngineError, Result};
use crate::index::{read_index_files, read_pack_trailer};
use crate::parallel::parallel_map;

/// A stored repository seen without the key.
#[derive(Debug, Clone)]
pub struct KeylessRepo {
    backend: Arc<dyn Backend>,
    config: RepoConfig,
}

/// The cleartext part of one snapshot file, checked against its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicSnapshot {
    /// Its file name (the BLAKE3 of its bytes).
    pub id: SnapshotId,
    /// File size in bytes.
    pub size: u64,
    /// When the backup started, with the client's UTC offset.
    pub time: DateTime<FixedOffset>,
    /// The opaque source tag (hex): snapshots of one host and path set share it.
    pub source: String,
    /// The data key that sealed the metadata (hex).
    pub key_id: String,
    /// Every referenced blob, sorted.
    pub refs: Vec<BlobId>,
}

/// A file that could not be read or parsed: its name and why.
pub type Unreadable = (String, String);

/// A lock file as stored: its name (the session ID) and its content, if it parses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredLock {
    /// File name.
    pub name: String,
    /// Content; `None` when it does not parse.
    pub lock: Option<LockFile>,
}

impl KeylessRepo {
    /// Opens the repository at `backend`: reads and parses `config` (its MAC cannot be checked without
    /// the key).
    pub fn open(backend: Arc<dyn Backend>) -> Result<Self> {
        let bytes = match backend.read(FileKind::Config, brr_storage::CONFIG_NAME) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(EngineError::RepositoryNotFound {
                    location: backend.location(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let config = RepoConfig::decode(&bytes)?;
        Ok(KeylessRepo { backend, config })
    }

    /// The storage.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// A shared handle to the storage.
    pub fn backend_arc(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// The parsed config. **Unverified**: its MAC needs the key.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Reads one snapshot file, checks it against its name and parses its public part.
    pub fn read_snapshot(&self, name: &str) -> Result<PublicSnapshot> {
        let id = SnapshotId::from_hex(name)
            .map_err(|e| EngineError::Damaged(format!("snapshot file name {name:?}: {e}")))?;
        let bytes = self.backend.read(FileKind::Snapshot, name)?;
        public_snapshot(id, &bytes)
    }

    /// Every snapshot, oldest first (by time, then ID). A snapshot that does not match its name or does
    /// not parse is an error naming it: its references cannot be trusted.
    pub fn snapshots(&self) -> Result<Vec<PublicSnapshot>> {
        let (good, bad) = self.snapshots_lenient()?;
        match bad.into_iter().next() {
            Some((name, e)) => Err(EngineError::Damaged(format!("snapshot {name}: {e}"))),
            None => Ok(good),
        }
    }

    /// Every snapshot that reads and parses, oldest first, and the names of those that do not, with
    /// the reason. Snapshots removed while listing are left out.
    pub fn snapshots_lenient(&self) -> Result<(Vec<PublicSnapshot>, Vec<Unreadable>)> {
        self.collect_snapshots(true)
    }

    /// [`Self::snapshots_lenient`], with `refs` left empty unless `keep_refs` (what retention needs
    /// is small; all references of all snapshots may not be).
    pub(crate) fn collect_snapshots(
        &self,
        keep_refs: bool,
    ) -> Result<(Vec<PublicSnapshot>, Vec<Unreadable>)> {
        let names: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let loaded = parallel_map(names, 4, |name| {
            let r = self.read_snapshot(&name).map(|mut s| {
                if !keep_refs {
                    s.refs = Vec::new();
                }
                s
            });
            (name, r)
        });
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, r) in loaded {
            match r {
                Ok(s) => good.push(s),
                Err(EngineError::Storage(e)) if e.is_not_found() => {}
                Err(EngineError::Storage(e)) => return Err(e.into()),
                Err(EngineError::Damaged(m)) => bad.push((name, m)),
                Err(e) => bad.push((name, e.to_string())),
            }
        }
        good.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        bad.sort();
        Ok((good, bad))
    }

    /// The union of the references of every snapshot, read a few at a time (memory grows with the
    /// distinct blobs, not with the snapshots). A snapshot that does not match its name or does not
    /// parse is an error naming it: GC must not trust its references.
    pub fn referenced_blobs(&self) -> Result<HashSet<BlobId>> {
        let names: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let all = Mutex::new(HashSet::new());
        let results = parallel_map(names, 4, |name| -> Result<()> {
            match self.read_snapshot(&name) {
                Ok(s) => {
                    all.lock().extend(s.refs);
                    Ok(())
                }
                Err(EngineError::Storage(e)) if e.is_not_found() => Ok(()),
                Err(EngineError::Storage(e)) => Err(e.into()),
                Err(EngineError::Damaged(m)) => {
                    Err(EngineError::Damaged(format!("snapshot {name}: {m}")))
                }
                Err(e) => Err(e),
            }
        });
        let mut errors: Vec<EngineError> = results.into_iter().filter_map(|r| r.err()).collect();
        if !errors.is_empty() {
            // The first by name, so the message does not depend on thread timing.
            errors.sort_by_key(|e| e.to_string());
            return Err(errors.remove(0));
        }
        Ok(all.into_inner())
    }

    /// The live (not superseded) index files: IDs and contents. A damaged index file is an error.
    pub fn index_files(&self) -> Result<(Vec<IndexId>, Vec<IndexFile>)> {
        read_index_files(self.backend.as_ref())
    }

    /// Every pack file in storage (name and size).
    pub fn packs(&self) -> Result<Vec<FileInfo>> {
        Ok(self.backend.list(FileKind::Pack)?)
    }

    /// A pack's trailer, read from its end in ranges.
    pub fn pack_trailer(&self, id: PackId, size: u64) -> Result<IndexedPack> {
        read_pack_trailer(self.backend.as_ref(), id, size)
    }

    /// Every GC record, by name. A record that does not parse is an error naming it.
    pub fn gc_records(&self) -> Result<Vec<(String, GcRecord)>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Gc)? {
            match self.backend.read(FileKind::Gc, &f.name) {
                Ok(bytes) => {
                    let r = GcRecord::decode(&bytes).map_err(|e| {
                        EngineError::Damaged(format!("GC record gc/{}: {e}", f.name))
                    })?;
                    out.push((f.name, r));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every lock file, by name, with its content when it parses.
    pub fn locks(&self) -> Result<Vec<StoredLock>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Lock)? {
            match self.backend.read(FileKind::Lock, &f.name) {
                Ok(bytes) => out.push(StoredLock {
                    name: f.name,
                    lock: LockFile::decode(&bytes).ok(),
                }),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Checks snapshot bytes against their ID and parses the public part.
pub(crate) fn public_snapshot(id: SnapshotId, bytes: &[u8]) -> Result<PublicSnapshot> {
    if SnapshotId(Id::hash_of(bytes)) != id {
        return Err(EngineError::Damaged(
            "content does not match its name (bit rot or tampering)".into(),
        ));
    }
    let p = parse_snapshot_public(bytes).map_err(|e| EngineError::Damaged(e.to_string()))?;
    Ok(PublicSnapshot {
        id,
        size: bytes.len() as u64,
        time: p.header.time,
        source: p.header.source,
        key_id: p.header.key_id,
        refs: p.refs,
    })
}
