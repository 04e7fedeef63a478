//! The walker of a backup: visits the sources depth-first in name order on the calling thread, reuses
//! the chunk lists of files unchanged since the parent snapshot, hands other files to the file readers,
//! and turns each directory into a tree blob once its entries are done.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use brr_core::blob::BlobType;
use brr_core::id::BlobId;
use brr_core::snapshot::BackupSummary;
use brr_core::tree::{Node, NodeKind, Tree};
use crossbeam_channel::{Receiver, Sender, bounded};

use super::exclude::Excludes;
use super::files;
use super::saver::Saver;
use crate::error::{EngineError, Result};
use crate::fsmeta::{OwnerNames, is_sparse, node_from_metadata, read_xattrs, unchanged};
use crate::progress::Progress;
use crate::repo::Repository;

/// A file for the readers, with where to send its chunk list.
pub(super) struct FileJob {
    pub(super) path: PathBuf,
    pub(super) size_hint: u64,
    pub(super) reply: Sender<Result<files::FileChunks>>,
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

/// The walking state of one backup.
pub(super) struct Walker<'a> {
    repo: &'a Repository,
    saver: &'a Saver,
    excludes: Excludes,
    one_file_system: bool,
    owners: OwnerNames,
    /// Files for the readers; dropped by the caller once the walk is done.
    pub(super) jobs: Sender<FileJob>,
    /// Every blob the snapshot references.
    pub(super) refs: HashSet<BlobId>,
    /// Counts for the snapshot's summary.
    pub(super) summary: BackupSummary,
    progress: &'a dyn Progress,
    trees: crate::treecache::TreeLoader<'a>,
    /// Directories listed but not yet turned into trees, oldest (deepest-first) at the front.
    queue: std::collections::VecDeque<(usize, Vec<Pending>)>,
    /// Finished directory trees not yet claimed by their parent.
    done: std::collections::HashMap<usize, BlobId>,
    next_handle: usize,
    files_in_flight: usize,
}

impl<'a> Walker<'a> {
    /// A walker that sends files to `jobs`, saves trees through `saver` and reads parent trees
    /// through `index`.
    pub(super) fn new(
        repo: &'a Repository,
        index: &'a crate::index::Index,
        saver: &'a Saver,
        (excludes, one_file_system): (Excludes, bool),
        jobs: Sender<FileJob>,
        progress: &'a dyn Progress,
    ) -> Self {
        Walker {
            repo,
            saver,
            excludes,
            one_file_system,
            owners: OwnerNames::default(),
            jobs,
            refs: HashSet::new(),
            summary: BackupSummary::default(),
            progress,
            trees: crate::treecache::TreeLoader::new(repo, index),
            queue: Default::default(),
            done: Default::default(),
            next_handle: 0,
            files_in_flight: 0,
        }
    }
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
    /// Walks the sources and returns the root tree.
    pub(super) fn walk_root(
        &mut self,
        sources: &[PathBuf],
        parent: Option<&Tree>,
    ) -> Result<BlobId> {
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
pub(super) fn scan_totals(sources: &[PathBuf], excludes: &Excludes, one_fs: bool) -> (u64, u64) {
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
