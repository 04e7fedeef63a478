//! `brr check`: verify a repository and say exactly where it is damaged.
//!
//! | stage | what is verified | finding on failure |
//! |---|---|---|
//! | config | parses, MAC verifies with the open key, equals the config the repository was opened with, is stored in canonical form | error on `config` |
//! | key slots | name is the BLAKE3 of the bytes, parses, belongs to this repository; the slot in use still exists | error on `keys/<id>` |
//! | index files | name is the BLAKE3 of the bytes, parses; live files agree on every pack they share | error on `index/<id>` |
//! | packs (structure) | every indexed pack exists with the indexed size | error on `data/<xx>/<id>`; a pack nothing indexes is a warning (an interrupted backup's leftover) |
//! | locks, GC records | locks parse; GC records parse | unparseable lock: warning; pending GC record: warning; unparseable record: error |
//! | snapshots | name is the BLAKE3 of the bytes, MAC verifies, metadata decrypts | error on `snapshots/<id>` |
//! | trees | every tree reachable from every snapshot loads, decrypts and decodes; every data blob a tree names is indexed; each snapshot's cleartext `refs` equals the set of blobs reachable from its tree | error on the pack holding the bad tree (with offset) or on the snapshot |
//! | `--read-data` | every pack file is read whole: BLAKE3 equals its name, its trailer parses and matches the index, every blob decrypts and hashes to its ID | error on the pack with the blob's offset, the snapshots and files it affects |
//!
//! Check only reads; a state an interrupted backup or prune can leave (unindexed packs, superseded index
//! files still present, pending GC records, packs condemned but still referenced by a snapshot committed
//! during the mark phase) is a warning, never an error.

mod data;
pub(crate) mod graph;
mod index_files;
mod metadata;
mod reach;
mod snapshots;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use brr_core::blob::BlobType;
use brr_core::id::{BlobId, IndexId, PackId};
use brr_core::index::IndexedPack;
use brr_storage::{FileKind, StorageError, relative_path};

use crate::error::Result;
use crate::index::Index;
use crate::parallel::cpu_threads;
use crate::progress::Progress;
use crate::repo::Repository;
use index_files::{add_condemned_packs, check_index_files, check_pack_presence, list_packs};
use metadata::{check_config, check_gc_records, check_keys, check_locks};
use reach::{Reach, check_data_blobs, check_refs, check_tree_failures};
use snapshots::{check_snapshots, load_trees};

/// How thoroughly to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Read every pack in full and verify every blob.
    pub read_data: bool,
    /// Threads for loading trees and reading packs (default: number of CPUs).
    pub threads: Option<usize>,
}

/// What a check found.
#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    /// Damage: data is missing, unreadable or inconsistent.
    pub errors: Vec<Finding>,
    /// Harmless leftovers and pending work (interrupted backups, pending GC, unparseable locks).
    pub warnings: Vec<Finding>,
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct trees loaded.
    pub trees: u64,
    /// Distinct data blobs referenced by the trees.
    pub blobs: u64,
    /// Pack files in storage.
    pub packs: u64,
    /// Packs read in full (`read_data`).
    pub packs_read: u64,
    /// Bytes read from packs (`read_data`).
    pub bytes_read: u64,
}

impl CheckReport {
    /// True when no error was found (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Repository-relative path of the file concerned: `data/ab/ab12…`, `snapshots/…`, `index/…`,
    /// `keys/…`, `locks/…`, `gc/…` or `config`.
    pub file: String,
    /// Byte offset in that file, when the problem is at a known place (a blob in a pack).
    pub offset: Option<u64>,
    /// What is wrong, and what it affects.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} @{o}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Repository-relative path of a file (falls back to `kind/name` for names the layout rejects).
pub(crate) fn file_path(kind: FileKind, name: &str) -> String {
    relative_path(kind, name).unwrap_or_else(|_| match kind.folder() {
        Some(folder) => format!("{folder}/{name}"),
        None => name.to_string(),
    })
}

fn finding(kind: FileKind, name: &str, offset: Option<u64>, message: impl Into<String>) -> Finding {
    Finding {
        file: file_path(kind, name),
        offset,
        message: message.into(),
    }
}

fn read_error(e: &StorageError) -> String {
    if e.is_not_found() {
        "file is missing".into()
    } else {
        format!("cannot be read: {e}")
    }
}

/// Collects findings.
#[derive(Default)]
struct Findings {
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    fn error(&mut self, kind: FileKind, name: &str, offset: Option<u64>, msg: impl Into<String>) {
        self.errors.push(finding(kind, name, offset, msg));
    }
    fn warn(&mut self, kind: FileKind, name: &str, msg: impl Into<String>) {
        self.warnings.push(finding(kind, name, None, msg));
    }
}

/// Everything check learned from the index files and GC records.
struct IndexView {
    /// Blob locations: every pack of every live index file, plus condemned packs still in storage.
    index: Index,
    /// The trailer each indexed pack has according to the (first) live index file naming it.
    indexed: HashMap<PackId, (IndexId, IndexedPack)>,
    /// Packs condemned by a GC record, and the record.
    condemned: HashMap<PackId, String>,
}

/// Checks the repository. Returns `Err` only when checking itself cannot go on (a listing fails);
/// damage is reported in the [`CheckReport`].
pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let threads = opts.threads.unwrap_or_else(cpu_threads).max(1);
    let mut f = Findings::default();
    let mut report = CheckReport::default();

    progress.start("checking structure", None, None);
    check_config(repo, &mut f);
    check_keys(repo, &mut f)?;
    check_locks(repo, &mut f)?;
    let records = check_gc_records(repo, &mut f)?;
    progress.finish();
    // Snapshots, then index files, then the pack listing: a backup writes packs, then their index, then
    // its snapshot, so whatever a snapshot read here needs was written before what is read after it.
    let snapshots = check_snapshots(repo, threads, progress, &mut f)?;
    report.snapshots = snapshots.len() as u64;
    progress.start("checking index", None, None);
    let mut view = check_index_files(repo, threads, &mut f)?;
    let stored: HashMap<PackId, u64> = list_packs(repo, &mut f)?;
    report.packs = stored.len() as u64;
    add_condemned_packs(repo, &mut view, &records, &stored);
    check_pack_presence(&view, &stored, &mut f);
    progress.finish();

    progress.start("checking trees", None, None);
    let graph = load_trees(repo, &view.index, &snapshots, threads, progress);
    progress.finish();
    report.trees = graph.trees.len() as u64;
    let data_blobs: HashSet<BlobId> = graph
        .trees
        .values()
        .flat_map(|t| t.chunks.iter().map(|c| c.id))
        .collect();
    report.blobs = data_blobs.len() as u64;
    let missing_data: HashSet<BlobId> = data_blobs
        .into_iter()
        .filter(|b| {
            !view
                .index
                .all_locations(b)
                .iter()
                .any(|e| e.blob_type == BlobType::Data)
        })
        .collect();

    let mut damaged = Vec::new();
    let mut lost = HashSet::new();
    if opts.read_data {
        let read = data::read_all_packs(repo, &view, &stored, threads, progress);
        report.packs_read = read.packs;
        report.bytes_read = read.bytes;
        f.errors.extend(read.errors);
        lost = data::lost_blobs(&view, &read.bad_blobs);
        damaged = read.bad_blobs;
    }

    let reach = Reach::compute(&graph, &snapshots, &missing_data, &lost, threads);
    check_tree_failures(&graph, &reach, &mut f);
    check_data_blobs(&snapshots, &reach, &mut f);
    check_refs(&view, &snapshots, &reach, &mut f);
    data::describe_damage(repo, &view, &graph, &snapshots, &reach, &lost, &mut damaged);
    f.errors
        .extend(damaged.into_iter().map(|(_, finding)| finding));

    report.errors = f.errors;
    report.warnings = f.warnings;
    Ok(report)
}
