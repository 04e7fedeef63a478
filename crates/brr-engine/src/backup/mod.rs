//! Backup: turn file trees into a snapshot.
//!
//! The walker (the calling thread) visits the sources depth-first in name order. Files whose size, mtime,
//! ctime, inode and device match the parent snapshot are not read again: their chunk list is reused.
//! Other files go to file-reader threads that chunk them and hand new chunks to the [`saver`]. Each
//! directory becomes a tree blob once its entries are done. When everything is stored and indexed, the
//! snapshot file is written: that single write is the commit. Unreadable entries are reported and skipped.

mod exclude;
mod files;
pub mod saver;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use brr_core::blob::{BlobType, Compression};
use brr_core::id::{BlobId, SnapshotId};
use brr_core::lockfile::LockKind;
use brr_core::snapshot::{BackupSummary, Snapshot, SnapshotMeta, encode_snapshot};
use brr_core::tree::{Node, NodeKind, Tree};
use brr_storage::FileKind;
use crossbeam_channel::{Receiver, Sender, bounded};

pub use exclude::Excludes;
pub use files::open_noatime;

use crate::error::{EngineError, Result};
use crate::fsmeta::{OwnerNames, is_sparse, node_from_metadata, read_xattrs, unchanged};
use crate::index::write_index_file;
use crate::lock;
use crate::parallel::cpu_threads;
use crate::progress::Progress;
use crate::repo::{Repository, host_and_user, now};
use saver::Saver;

/// Which snapshot to compare against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths.
    #[default]
    Auto,
    /// Read every file.
    None,
    /// This snapshot.
    Snapshot(SnapshotId),
}

/// What to back up and how.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Source paths.
    pub paths: Vec<PathBuf>,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// Exclude patterns (globs; with a `/` they match the whole path, otherwise a name).
    pub excludes: Vec<String>,
    /// Stay on the file system of each source.
    pub one_file_system: bool,
    /// Parent snapshot.
    pub parent: ParentChoice,
    /// Host name to record (default: this host).
    pub hostname: Option<String>,
    /// Compression override.
    pub compression: Option<Compression>,
    /// Reader and sealer threads (default: number of CPUs).
    pub threads: Option<usize>,
    /// Snapshot time override (tests, imports).
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// Outcome of a backup.
#[derive(Debug)]
pub struct BackupOutcome {
    /// The committed snapshot.
    pub snapshot: Snapshot,
    /// What the server's blob look-up saved, when the backend answers look-ups (`None` otherwise). Not
    /// part of the snapshot's summary: the repository format does not record it.
    pub lookup: Option<LookupSummary>,
}

/// What asking the server about new chunks saved a backup ([`saver::lookup`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LookupSummary {
    /// Look-up requests made.
    pub requests: u64,
    /// Chunks new to the loaded index that were asked about.
    pub blobs_asked: u64,
    /// Of those, blobs the server already held (in a pack a stored index file lists): neither sealed
    /// nor uploaded.
    pub blobs_present: u64,
    /// Plaintext bytes of those blobs.
    pub bytes_present: u64,
}

struct FileJob {
    path: PathBuf,
    size_hint: u64,
    reply: Sender<Result<files::FileChunks>>,
}

/// Files submitted to the readers but whose directories are not finished yet; past this many the walker
/// finishes the oldest directories first, so memory stays bounded while readers stay busy.
const MAX_FILES_IN_FLIGHT: usize = 4096;

enum Pending {
    Ready(Node),
    /// A subdirectory whose tree is queued; `handle` names it in the walker's queue.
    Dir {
        template: Node,
        handle: usize,
    },
    File {
        template: Node,
        path: PathBuf,
        rx: Receiver<Result<files::FileChunks>>,
        is_new: bool,
    },
}

struct Walker<'a> {
    repo: &'a Repository,
    saver: &'a Saver,
    excludes: Excludes,
    one_file_system: bool,
    owners: OwnerNames,
    jobs: Sender<FileJob>,
    refs: HashSet<BlobId>,
    summary: BackupSummary,
    progress: &'a dyn Progress,
    trees: crate::treecache::TreeLoader<'a>,
    /// Directories listed but not yet turned into trees, oldest (deepest-first) at the front.
    queue: std::collections::VecDeque<(usize, Vec<Pending>)>,
    /// Finished directory trees not yet claimed by their parent.
    done: std::collections::HashMap<usize, BlobId>,
    next_handle: usize,
    files_in_flight: usize,
}

/// Runs a backup and commits a snapshot.
pub fn backup(
    repo: &Arc<Repository>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(now);
    if opts.paths.is_empty() {
        return Err(EngineError::invalid(
            "sources",
            "nothing to back up: give at least one path",
        ));
    }
    let mut sources = Vec::new();
    for p in &opts.paths {
        let abs = std::path::absolute(p).map_err(|e| EngineError::io("resolve", p, e))?;
        let abs = normalize(&abs);
        std::fs::symlink_metadata(&abs).map_err(|e| EngineError::io("source", &abs, e))?;
        sources.push(abs);
    }
    sources.sort();
    sources.dedup();
    let excludes = Excludes::new(&opts.excludes)?;
    let (host, user) = host_and_user();
    let hostname = opts.hostname.clone().unwrap_or(host);
    let paths: Vec<String> = sources
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();

    // Register the session before reading the index or the GC records (see brr_core::gcrecord).
    let mut session = lock::acquire(repo.backend_arc(), LockKind::Shared, "backup")?;
    // Rewritten every few minutes so a server can tell this live session from a dead one.
    session.keep_fresh(lock::REFRESH_INTERVAL);
    // Not repo.load_index(): packs condemned by a GC record must not be deduplicated against.
    let mut index = crate::index::Index::load(repo.backend())?;
    let orphans = index.find_orphan_packs(repo.backend())?;
    if !orphans.is_empty() {
        tracing::info!(
            packs = orphans.len(),
            "indexing packs left by an interrupted backup"
        );
        write_index_file(repo.backend(), orphans.clone(), Vec::new())?;
        for p in &orphans {
            index.add_pack(p);
        }
        index.sort();
    }
    let index = Arc::new(index);

    let parent = match &opts.parent {
        ParentChoice::None => None,
        ParentChoice::Snapshot(id) => Some(repo.load_snapshot(*id)?),
        ParentChoice::Auto => repo
            .list_snapshots()?
            .into_iter()
            .rev()
            .find(|s| s.meta.hostname == hostname && s.meta.paths == paths),
    };
    let parent_root = match &parent {
        Some(s) => match repo.load_tree(&index, &s.meta.tree) {
            Ok(t) => Some(t),
            Err(e) => {
                progress.warn(&format!(
                    "parent snapshot {} unreadable, reading all files: {e}",
                    s.id.short()
                ));
                None
            }
        },
        None => None,
    };

    let threads = opts.threads.unwrap_or_else(cpu_threads).max(1);
    let saver = Saver::start(
        repo,
        index.clone(),
        opts.compression.unwrap_or(repo.compression()),
        threads,
    )?;
    progress.start("backup", None, None);

    let (job_tx, job_rx) = bounded::<FileJob>(threads * 4);
    let walk_result = std::thread::scope(|s| {
        // Counting the sources walks every directory a second time: only when someone looks.
        if progress.wants_totals() {
            let (sources, excludes) = (&sources, &excludes);
            s.spawn(move || {
                let (files, bytes) = scan_totals(sources, excludes, opts.one_file_system);
                progress.set_totals(Some(files), Some(bytes));
            });
        }
        for _ in 0..threads {
            let rx = job_rx.clone();
            let saver = &saver;
            s.spawn(move || {
                let mut buf = Vec::new();
                for job in rx {
                    let r = files::chunk_file(
                        repo,
                        saver,
                        &job.path,
                        job.size_hint,
                        &mut buf,
                        progress,
                    );
                    let _ = job.reply.send(r);
                }
            });
        }
        drop(job_rx);
        let mut walker = Walker {
            repo,
            saver: &saver,
            excludes: excludes.clone(),
            one_file_system: opts.one_file_system,
            owners: OwnerNames::default(),
            jobs: job_tx,
            refs: HashSet::new(),
            summary: BackupSummary::default(),
            progress,
            trees: crate::treecache::TreeLoader::new(repo, &index),
            queue: Default::default(),
            done: Default::default(),
            next_handle: 0,
            files_in_flight: 0,
        };
        let root = walker.walk_root(&sources, parent_root.as_ref());
        drop(walker.jobs);
        root.map(|r| (r, walker.refs, walker.summary))
    });
    let (root, refs, mut summary) = match walk_result {
        Ok(v) => v,
        Err(walk_error) => {
            // If a saver thread failed (storage full, write error), that is the real cause.
            return Err(match saver.finish(repo.backend()) {
                Err(saver_error) => saver_error,
                Ok(_) => walk_error,
            });
        }
    };
    let counters = saver.counters.clone();
    let lookup_counters = saver.lookup_counters.clone();
    saver.finish(repo.backend())?;
    let lookup = lookup_counters.map(|c| LookupSummary {
        requests: c.requests.load(Ordering::Relaxed),
        blobs_asked: c.blobs_asked.load(Ordering::Relaxed),
        blobs_present: c.blobs_present.load(Ordering::Relaxed),
        bytes_present: c.bytes_present.load(Ordering::Relaxed),
    });
    progress.finish();

    summary.data_blobs_added = counters.data_blobs.load(Ordering::Relaxed);
    summary.tree_blobs_added = counters.tree_blobs.load(Ordering::Relaxed);
    summary.bytes_added = counters.bytes_added.load(Ordering::Relaxed);
    summary.bytes_stored = counters.bytes_stored.load(Ordering::Relaxed);
    summary.duration_secs = started.elapsed().as_secs_f64();
    let meta = SnapshotMeta {
        time,
        hostname: hostname.clone(),
        username: user,
        paths: paths.clone(),
        tags: opts.tags.clone(),
        tree: root,
        parent: parent.as_ref().map(|p| p.id),
        excludes: opts.excludes.clone(),
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        summary,
    };
    let source_tag = repo
        .key()
        .source_tag(format!("{hostname}\0{}", paths.join("\0")).as_bytes());
    let (id, bytes) = encode_snapshot(repo.key(), &meta, source_tag, refs.into_iter().collect())?;
    repo.backend()
        .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
    session.release()?;
    let snapshot = repo.load_snapshot(id)?;
    Ok(BackupOutcome { snapshot, lookup })
}

/// Removes `.` and `..` components lexically (sources are absolute).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Virtual directories above the sources (`/`, `/home`, …) and the sources themselves.
#[derive(Default)]
struct VirtualDir {
    children: BTreeMap<Vec<u8>, VirtualChild>,
}

enum VirtualChild {
    Source,
    Dir(VirtualDir),
}

impl Walker<'_> {
    fn walk_root(&mut self, sources: &[PathBuf], parent: Option<&Tree>) -> Result<BlobId> {
        let mut root = VirtualDir::default();
        for src in sources {
            let comps: Vec<Vec<u8>> = src
                .components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(n) => Some(n.as_bytes().to_vec()),
                    _ => None,
                })
                .collect();
            if comps.is_empty() {
                // The source is `/` itself: its entries become the root.
                let handle = self.walk_dir(Path::new("/"), parent, None)?;
                return self.resolve(handle);
            }
            let mut cur = &mut root;
            for (i, c) in comps.iter().enumerate() {
                if i + 1 == comps.len() {
                    cur.children.insert(c.clone(), VirtualChild::Source);
                    break;
                }
                let entry = cur
                    .children
                    .entry(c.clone())
                    .or_insert_with(|| VirtualChild::Dir(VirtualDir::default()));
                match entry {
                    VirtualChild::Dir(d) => cur = d,
                    // A source inside another source: the outer one covers it.
                    VirtualChild::Source => break,
                }
            }
        }
        self.walk_virtual(Path::new("/"), &root, parent)
    }

    fn walk_virtual(
        &mut self,
        path: &Path,
        dir: &VirtualDir,
        parent: Option<&Tree>,
    ) -> Result<BlobId> {
        let mut nodes = Vec::new();
        for (name, child) in &dir.children {
            let child_path = path.join(std::ffi::OsStr::from_bytes(name));
            let parent_node = parent.and_then(|t| find(t, name));
            let md = match std::fs::symlink_metadata(&child_path) {
                Ok(md) => md,
                Err(e) => {
                    self.error(&child_path, &e.to_string());
                    continue;
                }
            };
            match child {
                VirtualChild::Source => {
                    if let Some(p) = self.entry(&child_path, name, md, parent_node)? {
                        let n = self.complete(p)?;
                        nodes.extend(n);
                    }
                }
                VirtualChild::Dir(d) => {
                    let sub_parent = self.parent_subtree(parent_node);
                    let id = self.walk_virtual(&child_path, d, sub_parent.as_ref())?;
                    let node = node_from_metadata(
                        name,
                        &md,
                        NodeKind::Dir { subtree: id },
                        read_xattrs(&child_path),
                        &self.owners,
                    );
                    nodes.push(node);
                }
            }
        }
        self.save_tree(nodes)
    }

    fn parent_subtree(&self, parent_node: Option<&Node>) -> Option<Tree> {
        match parent_node.map(|n| &n.kind) {
            Some(NodeKind::Dir { subtree }) => self.trees.load(subtree).ok(),
            _ => None,
        }
    }

    fn error(&mut self, path: &Path, message: &str) {
        let line = format!("{}: {message}", path.display());
        self.progress.warn(&line);
        self.summary.errors.push(line);
    }

    /// Lists a directory, starts work on its entries and queues it; returns its queue handle.
    fn walk_dir(&mut self, path: &Path, parent: Option<&Tree>, dev: Option<u64>) -> Result<usize> {
        let mut entries: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        match std::fs::read_dir(path) {
            Ok(rd) => {
                for e in rd {
                    match e {
                        Ok(e) => entries.push((e.file_name().as_bytes().to_vec(), e.path())),
                        Err(err) => self.error(path, &format!("listing: {err}")),
                    }
                }
            }
            Err(e) => self.error(path, &format!("listing: {e}")),
        }
        entries.sort();
        let mut pending = Vec::with_capacity(entries.len());
        let mut dirs = Vec::new();
        for (name, child) in entries {
            if self.excludes.is_excluded(&child, &name) {
                continue;
            }
            let md = match std::fs::symlink_metadata(&child) {
                Ok(md) => md,
                Err(e) => {
                    self.error(&child, &e.to_string());
                    continue;
                }
            };
            let parent_node = parent.and_then(|t| find(t, &name));
            if md.is_dir() {
                dirs.push((pending.len(), name, child, md, parent_node.cloned()));
                pending.push(None);
                continue;
            }
            pending.push(self.entry(&child, &name, md, parent_node)?);
        }
        // Subdirectories while the file readers work on this directory's files.
        for (slot, name, child, md, parent_node) in dirs {
            let same_fs = !self.one_file_system || dev.is_none_or(|d| d == md.dev());
            let sub_parent = self.parent_subtree(parent_node.as_ref());
            self.summary.dirs += 1;
            pending[slot] = Some(if same_fs {
                let handle = self.walk_dir(&child, sub_parent.as_ref(), dev.or(Some(md.dev())))?;
                let template = node_from_metadata(
                    &name,
                    &md,
                    NodeKind::Dir {
                        subtree: BlobId::default(),
                    },
                    read_xattrs(&child),
                    &self.owners,
                );
                Pending::Dir { template, handle }
            } else {
                let subtree = self.save_tree(Vec::new())?;
                Pending::Ready(node_from_metadata(
                    &name,
                    &md,
                    NodeKind::Dir { subtree },
                    read_xattrs(&child),
                    &self.owners,
                ))
            });
        }
        let pending: Vec<Pending> = pending.into_iter().flatten().collect();
        self.files_in_flight += pending
            .iter()
            .filter(|p| matches!(p, Pending::File { .. }))
            .count();
        let handle = self.next_handle;
        self.next_handle += 1;
        self.queue.push_back((handle, pending));
        while self.files_in_flight > MAX_FILES_IN_FLIGHT {
            self.finish_oldest()?;
        }
        Ok(handle)
    }

    /// Turns the oldest queued directory into a tree blob. Its subdirectories were queued before it, so
    /// they are already finished.
    fn finish_oldest(&mut self) -> Result<()> {
        let Some((handle, pending)) = self.queue.pop_front() else {
            return Err(EngineError::Damaged("directory queue is empty".into()));
        };
        let mut nodes = Vec::with_capacity(pending.len());
        for p in pending {
            if matches!(p, Pending::File { .. }) {
                self.files_in_flight -= 1;
            }
            nodes.extend(self.complete(p)?);
        }
        let id = self.save_tree(nodes)?;
        self.done.insert(handle, id);
        Ok(())
    }

    /// Finishes queued directories up to `handle` and returns its tree.
    fn resolve(&mut self, handle: usize) -> Result<BlobId> {
        loop {
            if let Some(id) = self.done.remove(&handle) {
                return Ok(id);
            }
            self.finish_oldest()?;
        }
    }

    /// Starts work on one non-directory entry (or a source directory).
    fn entry(
        &mut self,
        path: &Path,
        name: &[u8],
        md: std::fs::Metadata,
        parent_node: Option<&Node>,
    ) -> Result<Option<Pending>> {
        let ft = md.file_type();
        let xattrs = read_xattrs(path);
        if ft.is_dir() {
            let sub_parent = self.parent_subtree(parent_node);
            let handle = self.walk_dir(path, sub_parent.as_ref(), Some(md.dev()))?;
            self.summary.dirs += 1;
            return Ok(Some(Pending::Dir {
                template: node_from_metadata(
                    name,
                    &md,
                    NodeKind::Dir {
                        subtree: BlobId::default(),
                    },
                    xattrs,
                    &self.owners,
                ),
                handle,
            }));
        }
        if ft.is_file() {
            self.summary.total_bytes += md.len();
            if let Some(old) = parent_node
                && unchanged(old, &md)
                && let NodeKind::File { chunks, .. } = &old.kind
                && chunks.iter().all(|c| self.saver.is_known(&c.id))
            {
                self.refs.extend(chunks.iter().map(|c| c.id));
                self.summary.files_unmodified += 1;
                self.progress.items(1);
                self.progress.bytes(md.len());
                let kind = NodeKind::File {
                    size: md.len(),
                    chunks: chunks.clone(),
                    sparse: is_sparse(&md),
                };
                return Ok(Some(Pending::Ready(node_from_metadata(
                    name,
                    &md,
                    kind,
                    xattrs,
                    &self.owners,
                ))));
            }
            let (tx, rx) = bounded(1);
            self.jobs
                .send(FileJob {
                    path: path.to_path_buf(),
                    size_hint: md.len(),
                    reply: tx,
                })
                .map_err(|_| EngineError::Damaged("file readers stopped".into()))?;
            let template = node_from_metadata(
                name,
                &md,
                NodeKind::File {
                    size: 0,
                    chunks: Vec::new(),
                    sparse: is_sparse(&md),
                },
                xattrs,
                &self.owners,
            );
            return Ok(Some(Pending::File {
                template,
                path: path.to_path_buf(),
                rx,
                is_new: parent_node.is_none(),
            }));
        }
        self.summary.others += 1;
        let kind = if ft.is_symlink() {
            match std::fs::read_link(path) {
                Ok(t) => NodeKind::Symlink {
                    target: t.as_os_str().as_bytes().to_vec(),
                },
                Err(e) => {
                    self.error(path, &format!("reading link: {e}"));
                    return Ok(None);
                }
            }
        } else if ft.is_fifo() {
            NodeKind::Fifo
        } else if ft.is_socket() {
            NodeKind::Socket
        } else if ft.is_char_device() {
            NodeKind::CharDevice { rdev: md.rdev() }
        } else if ft.is_block_device() {
            NodeKind::BlockDevice { rdev: md.rdev() }
        } else {
            self.error(path, "unknown file type, skipped");
            return Ok(None);
        };
        Ok(Some(Pending::Ready(node_from_metadata(
            name,
            &md,
            kind,
            xattrs,
            &self.owners,
        ))))
    }

    /// Waits for a pending entry; a file that could not be read is reported and left out.
    fn complete(&mut self, p: Pending) -> Result<Option<Node>> {
        match p {
            Pending::Ready(n) => Ok(Some(n)),
            Pending::Dir {
                mut template,
                handle,
            } => {
                let id = self.resolve(handle)?;
                template.kind = NodeKind::Dir { subtree: id };
                Ok(Some(template))
            }
            Pending::File {
                mut template,
                path,
                rx,
                is_new,
            } => {
                let r = rx
                    .recv()
                    .map_err(|_| EngineError::Damaged("file reader stopped".into()))?;
                self.progress.items(1);
                match r {
                    Ok(fc) => {
                        self.summary.bytes_read += fc.size;
                        if is_new {
                            self.summary.files_new += 1;
                        } else {
                            self.summary.files_changed += 1;
                        }
                        self.refs.extend(fc.chunks.iter().map(|c| c.id));
                        if let NodeKind::File { size, chunks, .. } = &mut template.kind {
                            *size = fc.size;
                            *chunks = fc.chunks;
                        }
                        Ok(Some(template))
                    }
                    Err(EngineError::Io { op, source, .. }) => {
                        self.error(&path, &format!("{op}: {source}"));
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn save_tree(&mut self, nodes: Vec<Node>) -> Result<BlobId> {
        let bytes = Tree::new(nodes).encode()?;
        let id = self.repo.key().blob_id(&bytes);
        self.saver.save(BlobType::Tree, id, &bytes)?;
        self.refs.insert(id);
        Ok(id)
    }
}

fn find<'t>(tree: &'t Tree, name: &[u8]) -> Option<&'t Node> {
    tree.nodes
        .binary_search_by(|n| n.name.as_slice().cmp(name))
        .ok()
        .map(|i| &tree.nodes[i])
}

/// Counts files and bytes (stat only) so progress can show totals and an ETA.
fn scan_totals(sources: &[PathBuf], excludes: &Excludes, one_fs: bool) -> (u64, u64) {
    let mut files = 0u64;
    let mut bytes = 0u64;
    let mut stack: Vec<(PathBuf, Option<u64>)> =
        sources.iter().map(|s| (s.clone(), None)).collect();
    while let Some((p, dev)) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            if one_fs && dev.is_some_and(|d| d != md.dev()) {
                continue;
            }
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if !excludes.is_excluded(&path, e.file_name().as_bytes()) {
                        stack.push((path, dev.or(Some(md.dev()))));
                    }
                }
            }
        } else if md.is_file() {
            files += 1;
            bytes += md.len();
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lookup;
