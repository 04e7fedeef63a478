//! Reading many trees fast: whole tree packs are read once and kept, instead of one ranged read per tree.
//!
//! A backup compares every directory with the parent snapshot's tree, and `stats`/`check` walk every
//! tree: tens of thousands of small blobs that live together in a few tree packs. Reading each pack once
//! turns thousands of small reads into a handful of large ones.

use std::collections::HashMap;
use std::sync::Arc;

use brr_core::blob::BlobType;
use brr_core::id::BlobId;
use brr_core::tree::Tree;
use brr_storage::FileKind;
use parking_lot::Mutex;

use crate::error::{EngineError, Result};
use crate::index::Index;
use crate::repo::Repository;

/// Packs larger than this are read blob by blob instead of cached whole.
const MAX_CACHED_PACK: u64 = 64 << 20;
/// Total bytes of cached packs before the cache is emptied.
const MAX_CACHE_BYTES: u64 = 512 << 20;

/// Cached packs by index position, and their total size.
type PackCache = (HashMap<u32, Arc<Vec<u8>>>, u64);

/// A cache of tree packs in front of [`Repository::load_tree`]. Shareable between threads.
pub struct TreeLoader<'a> {
    repo: &'a Repository,
    index: &'a Index,
    packs: Mutex<PackCache>,
}

impl<'a> TreeLoader<'a> {
    /// A loader over an index.
    pub fn new(repo: &'a Repository, index: &'a Index) -> Self {
        TreeLoader {
            repo,
            index,
            packs: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Loads, verifies and decodes a tree.
    pub fn load(&self, id: &BlobId) -> Result<Tree> {
        let entry = self.index.get(id).ok_or_else(|| {
            EngineError::Damaged(format!("tree blob {} is not in the index", id.short()))
        })?;
        let pack = self.index.pack(entry);
        if pack.size > MAX_CACHED_PACK || entry.blob_type != BlobType::Tree {
            return self.repo.load_tree(self.index, id);
        }
        let cached = self.packs.lock().0.get(&entry.pack).cloned();
        let bytes = match cached {
            Some(b) => b,
            None => {
                let b = Arc::new(
                    self.repo
                        .backend()
                        .read(FileKind::Pack, &pack.id.to_hex())?,
                );
                let mut guard = self.packs.lock();
                if guard.1 + b.len() as u64 > MAX_CACHE_BYTES {
                    guard.0.clear();
                    guard.1 = 0;
                }
                guard.1 += b.len() as u64;
                guard.0.insert(entry.pack, b.clone());
                b
            }
        };
        let (start, end) = (
            entry.offset as usize,
            entry.offset as usize + entry.length as usize,
        );
        let stored = match bytes.get(start..end) {
            Some(s) => s,
            // The pack on disk is shorter than indexed: fall back to the precise path for the error.
            None => return self.repo.load_tree(self.index, id),
        };
        let key_id = pack.key_ids.get(entry.key_index as usize).copied();
        match self
            .repo
            .open_stored_blob(key_id, BlobType::Tree, id, stored)
        {
            Ok(plain) => Ok(Tree::decode(&plain)?),
            // A damaged copy: try the other copies through the uncached path.
            Err(_) => self.repo.load_tree(self.index, id),
        }
    }
}
