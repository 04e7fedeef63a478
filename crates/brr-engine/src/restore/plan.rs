//! Planning a restore: walk the snapshot's trees once and list every entry to create, in depth-first
//! order (parents before children), with the files whose content must be written and the hard links
//! between them. Nothing on disk is touched here.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use brr_core::id::BlobId;
use brr_core::snapshot::Snapshot;
use brr_core::tree::{Node, NodeKind};

use crate::error::{EngineError, Result};
use crate::globs::NameOrPathGlobs;
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::treecache::TreeLoader;

/// Compiled include patterns. A pattern with a `/` matches the whole path inside the snapshot (without
/// the leading `/`, e.g. `home/me/docs/**`; `*` stays within one component), one without matches any
/// single name (`*.txt`). An entry is restored when it or one of its ancestors matches; the directories
/// leading to it are restored too. No pattern means everything.
#[derive(Debug, Default)]
pub(super) struct Includes(NameOrPathGlobs);

impl Includes {
    pub(super) fn new(patterns: &[String]) -> Result<Self> {
        let mut trimmed = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.trim_start_matches('/').trim_end_matches('/');
            if p.is_empty() {
                return Err(EngineError::invalid(
                    "include pattern",
                    "empty pattern (or `/`: omit --include to restore everything)",
                ));
            }
            trimmed.push(p);
        }
        Ok(Includes(NameOrPathGlobs::new(&trimmed, "include pattern")?))
    }

    fn everything(&self) -> bool {
        self.0.is_empty()
    }

    /// `path` is the snapshot path without its leading `/`.
    fn matches(&self, path: &[u8], name: &[u8]) -> bool {
        self.0.matches(Path::new(OsStr::from_bytes(path)), name)
    }
}

/// What restoring an entry means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum What {
    /// A directory.
    Dir,
    /// A regular file whose content is written; the index into [`Plan::files`].
    File(usize),
    /// A hard link to the file of this entry index (restored first).
    HardLink(usize),
    /// A symlink, FIFO, device or socket.
    Special,
    /// Not restored after all (a special entry that could not be created).
    Skipped,
}

/// One entry to restore.
#[derive(Debug)]
pub(super) struct Entry {
    /// Path relative to the restore target.
    pub rel: PathBuf,
    /// Path inside the snapshot, for messages (`/home/me/x`, lossy UTF-8).
    pub snap_path: String,
    /// Components in `rel`: 1 for an entry directly in the target.
    pub depth: usize,
    /// The node with its metadata.
    pub node: Node,
    /// How it is restored.
    pub what: What,
}

/// A directory whose tree blob could not be read: restored empty, reported as damaged.
#[derive(Debug)]
pub(super) struct LostDir {
    /// Entry index of the directory.
    pub entry: usize,
    /// Why.
    pub reason: String,
}

/// The complete plan.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Every entry, depth-first, parents before children, names in tree order.
    pub entries: Vec<Entry>,
    /// Entry indices of the files whose content is written.
    pub files: Vec<usize>,
    /// Bytes of content to write.
    pub total_bytes: u64,
    /// Directories whose listing is lost.
    pub lost_dirs: Vec<LostDir>,
}

struct Walker<'a> {
    /// Whole tree packs read once: one request per pack instead of one per directory (a remote
    /// repository would otherwise pay a round trip for every directory).
    trees: TreeLoader<'a>,
    includes: &'a Includes,
    progress: &'a dyn Progress,
    entries: Vec<Entry>,
    lost: Vec<(usize, String)>,
}

/// Builds the plan for `subpath` (None or `/`: everything). A directory subpath has its entries restored
/// directly into the target; a file or other entry is restored as `target/<its name>`.
pub(super) fn build(
    repo: &Repository,
    index: &Index,
    snapshot: &Snapshot,
    subpath: Option<&str>,
    includes: &Includes,
    progress: &dyn Progress,
) -> Result<Plan> {
    let mut w = Walker {
        trees: TreeLoader::new(repo, index),
        includes,
        progress,
        entries: Vec::new(),
        lost: Vec::new(),
    };
    let comps: Vec<&str> = subpath
        .unwrap_or("")
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let not_found = || EngineError::PathNotFound {
        path: subpath.unwrap_or("/").to_string(),
        snapshot: snapshot.id.short(),
    };
    if comps.contains(&"..") {
        return Err(not_found());
    }
    let mut tree_id = snapshot.meta.tree;
    let mut prefix = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        let tree = w.trees.load(&tree_id)?;
        let node = tree
            .nodes
            .binary_search_by(|n| n.name.as_slice().cmp(c.as_bytes()))
            .ok()
            .map(|i| tree.nodes[i].clone())
            .ok_or_else(not_found)?;
        let last = i + 1 == comps.len();
        match &node.kind {
            NodeKind::Dir { subtree } => {
                tree_id = *subtree;
                prefix.push(b'/');
                prefix.extend_from_slice(c.as_bytes());
            }
            _ if last => {
                // A single non-directory entry.
                let mut path = prefix.clone();
                path.push(b'/');
                path.extend_from_slice(&node.name);
                if includes.everything() || includes.matches(&path[1..], &node.name) {
                    w.push(&path, PathBuf::new(), 0, node);
                }
                return Ok(w.finish());
            }
            _ => return Err(not_found()),
        }
    }
    w.walk(
        &tree_id,
        &prefix,
        Path::new(""),
        0,
        includes.everything(),
        true,
    )?;
    Ok(w.finish())
}

impl Walker<'_> {
    fn push(&mut self, snap: &[u8], parent_rel: PathBuf, parent_depth: usize, node: Node) -> usize {
        let rel = parent_rel.join(OsStr::from_bytes(&node.name));
        let what = match node.kind {
            NodeKind::Dir { .. } => What::Dir,
            NodeKind::File { .. } => What::File(0),
            _ => What::Special,
        };
        self.entries.push(Entry {
            rel,
            snap_path: String::from_utf8_lossy(snap).into_owned(),
            depth: parent_depth + 1,
            node,
            what,
        });
        self.entries.len() - 1
    }

    /// Walks one tree; returns whether anything below was included. `root` is true for the top tree,
    /// whose unreadability is fatal.
    fn walk(
        &mut self,
        id: &BlobId,
        snap: &[u8],
        rel: &Path,
        depth: usize,
        inherited: bool,
        root: bool,
    ) -> Result<bool> {
        let tree = match self.trees.load(id) {
            Ok(t) => t,
            Err(e) if root => return Err(e),
            Err(e) => {
                let parent = self.entries.len() - 1;
                self.lost.push((parent, e.to_string()));
                self.progress.warn(&format!(
                    "{}: directory listing unreadable, restored empty: {e}",
                    String::from_utf8_lossy(snap)
                ));
                return Ok(true);
            }
        };
        let mut any = false;
        for node in tree.nodes {
            let mut path = snap.to_vec();
            path.push(b'/');
            path.extend_from_slice(&node.name);
            let matched = inherited || self.includes.matches(&path[1..], &node.name);
            match &node.kind {
                NodeKind::Dir { subtree } => {
                    let subtree = *subtree;
                    let mark = self.entries.len();
                    let lost_mark = self.lost.len();
                    let i = self.push(&path, rel.to_path_buf(), depth, node);
                    let child_rel = self.entries[i].rel.clone();
                    let below =
                        self.walk(&subtree, &path, &child_rel, depth + 1, matched, false)?;
                    if matched || below {
                        any = true;
                    } else {
                        self.entries.truncate(mark);
                        self.lost.truncate(lost_mark);
                    }
                }
                _ if matched => {
                    self.push(&path, rel.to_path_buf(), depth, node);
                    any = true;
                }
                _ => {}
            }
        }
        Ok(any)
    }

    /// Assigns file slots and hard links.
    fn finish(self) -> Plan {
        let mut plan = Plan {
            entries: self.entries,
            ..Default::default()
        };
        let mut first_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
        for i in 0..plan.entries.len() {
            let e = &plan.entries[i];
            let NodeKind::File { size, .. } = &e.node.kind else {
                continue;
            };
            let size = *size;
            if e.node.links > 1 {
                let key = (e.node.device, e.node.inode);
                if let Some(&first) = first_of_inode.get(&key) {
                    // Only when the snapshot recorded the same content: a file changed between reading
                    // its two names is restored as two files rather than losing one version.
                    if plan.entries[first].node.kind == e.node.kind {
                        plan.entries[i].what = What::HardLink(first);
                        continue;
                    }
                } else {
                    first_of_inode.insert(key, i);
                }
            }
            plan.entries[i].what = What::File(plan.files.len());
            plan.files.push(i);
            plan.total_bytes += size;
        }
        plan.lost_dirs = self
            .lost
            .into_iter()
            .map(|(entry, reason)| LostDir { entry, reason })
            .collect();
        plan
    }
}
