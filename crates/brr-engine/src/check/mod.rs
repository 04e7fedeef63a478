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
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};

use brr_core::blob::BlobType;
use brr_core::config::RepoConfig;
use brr_core::gcrecord::GcRecord;
use brr_core::id::{BlobId, Id, IndexId, KeySlotId, PackId, SnapshotId};
use brr_core::index::{IndexFile, IndexedPack};
use brr_core::keyslot::KeySlot;

use brr_core::snapshot::{Snapshot, decode_snapshot};
use brr_core::tree::Tree;
use brr_storage::{FileKind, StorageError, relative_path};

use crate::error::Result;
use crate::index::{Index, read_pack_trailer};
use crate::parallel::{cpu_threads, parallel_map};
use crate::progress::Progress;
use crate::repo::Repository;
use graph::TreeGraph;

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

fn check_config(repo: &Repository, f: &mut Findings) {
    let name = "config";
    let bytes = match repo.backend().read(FileKind::Config, name) {
        Ok(b) => b,
        Err(e) => return f.error(FileKind::Config, name, None, read_error(&e)),
    };
    let config = match RepoConfig::decode(&bytes) {
        Ok(c) => c,
        Err(e) => return f.error(FileKind::Config, name, None, format!("does not parse: {e}")),
    };
    if let Err(e) = config.verify(repo.key()) {
        return f.error(FileKind::Config, name, None, e.to_string());
    }
    if config != *repo.config() {
        return f.error(
            FileKind::Config,
            name,
            None,
            "differs from the config the repository was opened with (changed while open?)",
        );
    }
    match config.encode() {
        Ok(canonical) if canonical == bytes => {}
        _ => f.error(
            FileKind::Config,
            name,
            None,
            "bytes differ from the canonical encoding of its (authentic) content: modified outside brr",
        ),
    }
}

fn check_keys(repo: &Repository, f: &mut Findings) -> Result<()> {
    let files = repo.backend().list(FileKind::Key)?;
    let mut good = 0usize;
    for file in &files {
        let name = &file.name;
        let Ok(id) = KeySlotId::from_hex(name) else {
            f.error(FileKind::Key, name, None, "file name is not a key slot ID");
            continue;
        };
        let bytes = match repo.backend().read(FileKind::Key, name) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue, // removed since the listing
            Err(e) => {
                f.error(FileKind::Key, name, None, read_error(&e));
                continue;
            }
        };
        if KeySlotId(Id::hash_of(&bytes)) != id {
            f.error(
                FileKind::Key,
                name,
                None,
                "content does not match its name (bit rot, truncation or tampering)",
            );
            continue;
        }
        match KeySlot::decode(&bytes) {
            Ok(slot) if slot.repository != repo.config().body.id => f.warn(
                FileKind::Key,
                name,
                format!("key slot of another repository ({})", slot.repository),
            ),
            Ok(_) => good += 1,
            Err(e) => f.error(FileKind::Key, name, None, format!("does not parse: {e}")),
        }
    }
    if files.is_empty() {
        f.error(
            FileKind::Key,
            "",
            None,
            "no key slot left: the repository cannot be opened again",
        );
    } else if good == files.len() {
        // Every slot is intact, so listing them succeeds; the one in use must be among them.
        let keys = repo.list_keys()?;
        if !keys.iter().any(|k| k.current) {
            f.error(
                FileKind::Key,
                "",
                None,
                "the key slot this repository was opened with no longer exists",
            );
        }
    }
    Ok(())
}

fn check_locks(repo: &Repository, f: &mut Findings) -> Result<()> {
    for l in crate::lock::list_locks(repo.backend())? {
        match &l.lock {
            None => f.warn(
                FileKind::Lock,
                &l.name,
                "unparseable lock; remove it with `brr unlock --all` once no brr process runs",
            ),
            Some(lock) if l.stale => f.warn(
                FileKind::Lock,
                &l.name,
                format!(
                    "stale {} lock of process {} on this host, which no longer runs; `brr unlock` removes it",
                    lock.purpose, lock.pid
                ),
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_gc_records(repo: &Repository, f: &mut Findings) -> Result<Vec<(String, GcRecord)>> {
    let mut out = Vec::new();
    for file in repo.backend().list(FileKind::Gc)? {
        match repo.backend().read(FileKind::Gc, &file.name) {
            Ok(bytes) => match GcRecord::decode(&bytes) {
                Ok(r) => {
                    f.warn(
                        FileKind::Gc,
                        &file.name,
                        format!(
                            "pending GC record ({} condemned packs, {}); the next prune completes it",
                            r.packs.len(),
                            if r.sealed {
                                format!("waiting for {} backup session(s)", r.sessions.len())
                            } else {
                                "not sealed".to_string()
                            }
                        ),
                    );
                    out.push((file.name, r));
                }
                Err(e) => f.error(
                    FileKind::Gc,
                    &file.name,
                    None,
                    format!("does not parse ({e}); backups cannot load the index while it exists"),
                ),
            },
            Err(e) if e.is_not_found() => {}
            Err(e) => f.error(FileKind::Gc, &file.name, None, read_error(&e)),
        }
    }
    Ok(out)
}

fn list_packs(repo: &Repository, f: &mut Findings) -> Result<HashMap<PackId, u64>> {
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

fn check_index_files(repo: &Repository, threads: usize, f: &mut Findings) -> Result<IndexView> {
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
fn add_condemned_packs(
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

fn check_pack_presence(view: &IndexView, stored: &HashMap<PackId, u64>, f: &mut Findings) {
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

fn check_snapshots(
    repo: &Repository,
    threads: usize,
    progress: &dyn Progress,
    f: &mut Findings,
) -> Result<Vec<Snapshot>> {
    let names: Vec<String> = repo
        .backend()
        .list(FileKind::Snapshot)?
        .into_iter()
        .map(|i| i.name)
        .collect();
    progress.start("checking snapshots", Some(names.len() as u64), None);
    let loaded = parallel_map(names, threads, |name| {
        let r = (|| {
            let id = SnapshotId::from_hex(&name)
                .map_err(|_| "file name is not a snapshot ID".to_string())?;
            let bytes = match repo.backend().read(FileKind::Snapshot, &name) {
                Ok(b) => b,
                // Forgotten since the listing.
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(read_error(&e)),
            };
            decode_snapshot(repo.key(), id, &bytes)
                .map(Some)
                .map_err(|e| e.to_string())
        })();
        progress.items(1);
        (name, r)
    });
    progress.finish();
    let mut out = Vec::new();
    for (name, r) in loaded {
        match r {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(msg) => f.error(FileKind::Snapshot, &name, None, msg),
        }
    }
    out.sort_by(|a, b| a.meta.time.cmp(&b.meta.time).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Why a tree could not be loaded.
#[derive(Debug, Clone)]
enum TreeFailure {
    /// No index entry.
    NotIndexed,
    /// Every stored copy failed; the first failure, located.
    Damaged(Finding),
}

fn load_trees(
    repo: &Repository,
    index: &Index,
    snapshots: &[Snapshot],
    threads: usize,
    progress: &dyn Progress,
) -> TreeGraph<TreeFailure> {
    let load = |id: &BlobId| -> Result<Tree, TreeFailure> {
        let locations = index.all_locations(id);
        if locations.is_empty() {
            return Err(TreeFailure::NotIndexed);
        }
        let mut first = None;
        for loc in locations {
            let pack = index.pack(loc).id.to_hex();
            let r = repo
                .read_blob_at(index, loc)
                .and_then(|bytes| Ok(Tree::decode(&bytes)?));
            match r {
                Ok(t) => return Ok(t),
                Err(e) => {
                    first.get_or_insert_with(|| {
                        finding(
                            FileKind::Pack,
                            &pack,
                            Some(u64::from(loc.offset)),
                            format!("tree blob {}: {e}", id.short()),
                        )
                    });
                }
            }
        }
        Err(TreeFailure::Damaged(first.unwrap_or_else(|| {
            finding(FileKind::Index, "", None, "unreachable: no location")
        })))
    };
    TreeGraph::load(
        snapshots.iter().map(|s| s.meta.tree),
        threads,
        progress,
        &load,
    )
}

/// What each snapshot reaches, as far as check needs it. Computed one snapshot at a time (in parallel)
/// and reduced at once: holding every snapshot's reachable set would not fit in memory for large
/// repositories.
struct Reach {
    /// For each blob of interest (unloadable tree, unindexed data blob, lost blob): the snapshots
    /// reaching it, oldest first.
    hits: HashMap<BlobId, Vec<SnapshotId>>,
    /// Per snapshot (in `snapshots` order): reachable blobs its `refs` omit and `refs` not reachable;
    /// `None` when an unloadable tree makes the reachable set incomplete.
    refs_mismatch: Vec<Option<(usize, usize)>>,
    /// Per snapshot: the unindexed data blobs it reaches.
    missing: Vec<Vec<BlobId>>,
}

impl Reach {
    fn compute(
        graph: &TreeGraph<TreeFailure>,
        snapshots: &[Snapshot],
        missing_data: &HashSet<BlobId>,
        lost: &HashSet<BlobId>,
        threads: usize,
    ) -> Self {
        let interesting: HashSet<BlobId> = graph
            .failed
            .keys()
            .chain(missing_data)
            .chain(lost)
            .copied()
            .collect();
        let per_snapshot = parallel_map(snapshots.iter().collect(), threads, |s: &Snapshot| {
            let r = graph.reachable(s.meta.tree);
            let mut hit: Vec<BlobId> = if interesting.len() < r.len() {
                interesting
                    .iter()
                    .filter(|b| r.contains(*b))
                    .copied()
                    .collect()
            } else {
                r.iter()
                    .filter(|b| interesting.contains(*b))
                    .copied()
                    .collect()
            };
            hit.sort();
            let complete = !hit.iter().any(|b| graph.failed.contains_key(b));
            let mismatch = complete.then(|| {
                let refs: HashSet<&BlobId> = s.refs.iter().collect();
                let unlisted = r.iter().filter(|b| !refs.contains(b)).count();
                let extra = s.refs.iter().filter(|b| !r.contains(b)).count();
                (unlisted, extra)
            });
            (hit, mismatch)
        });
        let mut reach = Reach {
            hits: HashMap::new(),
            refs_mismatch: Vec::with_capacity(snapshots.len()),
            missing: Vec::with_capacity(snapshots.len()),
        };
        for (s, (hit, mismatch)) in snapshots.iter().zip(per_snapshot) {
            reach.missing.push(
                hit.iter()
                    .filter(|b| missing_data.contains(*b))
                    .copied()
                    .collect(),
            );
            for b in hit {
                reach.hits.entry(b).or_default().push(s.id);
            }
            reach.refs_mismatch.push(mismatch);
        }
        reach
    }

    /// The snapshots reaching `blob`.
    fn affected(&self, blob: &BlobId) -> &[SnapshotId] {
        self.hits.get(blob).map(Vec::as_slice).unwrap_or_default()
    }
}

fn list_ids(ids: &[SnapshotId]) -> String {
    const SHOWN: usize = 5;
    let mut s: Vec<String> = ids.iter().take(SHOWN).map(|i| i.short()).collect();
    if ids.len() > SHOWN {
        s.push(format!("and {} more", ids.len() - SHOWN));
    }
    s.join(", ")
}

fn check_tree_failures(graph: &TreeGraph<TreeFailure>, reach: &Reach, f: &mut Findings) {
    let mut failed: Vec<_> = graph.failed.iter().collect();
    failed.sort_by_key(|(id, _)| **id);
    for (id, failure) in failed {
        let affected = reach.affected(id);
        let which = format!("affects snapshot(s) {}", list_ids(affected));
        match failure {
            TreeFailure::NotIndexed => {
                let name = affected.first().map(|s| s.to_hex()).unwrap_or_default();
                f.error(
                    FileKind::Snapshot,
                    &name,
                    None,
                    format!("tree blob {} is not in any index; {which}", id.short()),
                );
            }
            TreeFailure::Damaged(found) => {
                let mut found = found.clone();
                found.message = format!("{}; {which}", found.message);
                f.errors.push(found);
            }
        }
    }
}

fn check_data_blobs(snapshots: &[Snapshot], reach: &Reach, f: &mut Findings) {
    // One finding per snapshot, listing its missing blobs (a lost pack can take thousands at once).
    for (s, blobs) in snapshots.iter().zip(&reach.missing) {
        if blobs.is_empty() {
            continue;
        }
        let shown: Vec<String> = blobs.iter().take(5).map(|b| b.short()).collect();
        f.error(
            FileKind::Snapshot,
            &s.id.to_hex(),
            None,
            format!(
                "{} data blob(s) referenced by its trees are not in any index: {}{}",
                blobs.len(),
                shown.join(", "),
                if blobs.len() > 5 { ", …" } else { "" }
            ),
        );
    }
}

fn check_refs(view: &IndexView, snapshots: &[Snapshot], reach: &Reach, f: &mut Findings) {
    for (s, mismatch) in snapshots.iter().zip(&reach.refs_mismatch) {
        // `None`: the reachable set is incomplete; the unloadable tree is already reported.
        if let Some((unlisted, extra)) = *mismatch
            && (unlisted > 0 || extra > 0)
        {
            f.error(
                FileKind::Snapshot,
                &s.id.to_hex(),
                None,
                format!(
                    "cleartext reference list disagrees with its trees: {unlisted} reachable blob(s) not listed (garbage collection could delete them), {extra} listed blob(s) not reachable"
                ),
            );
        }
        // Blobs that only a condemned pack holds: committed during a prune's mark phase. Not damage, as
        // the sweep keeps such packs; worth knowing.
        let mut only_condemned: BTreeSet<String> = BTreeSet::new();
        for b in &s.refs {
            let locs = view.index.all_locations(b);
            if !locs.is_empty()
                && locs
                    .iter()
                    .all(|l| view.condemned.contains_key(&view.index.pack(l).id))
                && let Some(record) = view.condemned.get(&view.index.pack(&locs[0]).id)
            {
                only_condemned.insert(record.clone());
            }
        }
        for record in only_condemned {
            f.warn(
                FileKind::Snapshot,
                &s.id.to_hex(),
                format!(
                    "references blobs that only packs condemned by gc/{record} hold; the next prune keeps and re-indexes them"
                ),
            );
        }
    }
}
