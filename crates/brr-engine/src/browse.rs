//! Browsing snapshots: walking trees (`brr ls`) and comparing two snapshots (`brr diff`). Trees are
//! read through a [`TreeLoader`], whole tree packs at a time, so a remote repository is not asked once
//! per directory.

use brr_core::id::BlobId;
use brr_core::tree::{Node, NodeKind, Tree};
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::index::Index;
use crate::repo::Repository;
use crate::treecache::TreeLoader;

/// Splits a snapshot path like `/home/me/docs` into components.
pub fn split_path(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Finds the node at `path` below `root`; `Ok(None)` for the root itself.
pub fn find_node(
    repo: &Repository,
    index: &Index,
    root: &BlobId,
    path: &str,
) -> Result<Option<Node>> {
    let comps = split_path(path);
    let mut tree = repo.load_tree(index, root)?;
    let mut found = None;
    for (i, c) in comps.iter().enumerate() {
        let node = tree
            .nodes
            .iter()
            .find(|n| n.name == c.as_bytes())
            .cloned()
            .ok_or_else(|| EngineError::PathNotFound {
                path: path.to_string(),
                snapshot: String::new(),
            })?;
        if i + 1 < comps.len() {
            match &node.kind {
                NodeKind::Dir { subtree } => tree = repo.load_tree(index, subtree)?,
                _ => {
                    return Err(EngineError::PathNotFound {
                        path: path.to_string(),
                        snapshot: String::new(),
                    });
                }
            }
        }
        found = Some(node);
    }
    Ok(found)
}

/// Calls `f(path, node)` for every entry below `root` (depth-first, name order), starting at `start`.
pub fn walk(
    repo: &Repository,
    index: &Index,
    root: &BlobId,
    start: Option<&str>,
    f: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let (tree_id, prefix) = match start {
        None => (*root, String::new()),
        Some(p) if split_path(p).is_empty() => (*root, String::new()),
        Some(p) => {
            let prefix = format!("/{}", split_path(p).join("/"));
            match find_node(repo, index, root, p)? {
                Some(node) => {
                    f(&prefix, &node)?;
                    match node.kind {
                        NodeKind::Dir { subtree } => (subtree, prefix),
                        _ => return Ok(()),
                    }
                }
                None => (*root, String::new()),
            }
        }
    };
    walk_tree(&TreeLoader::new(repo, index), &tree_id, &prefix, f)
}

fn walk_tree(
    trees: &TreeLoader,
    id: &BlobId,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let tree = trees.load(id)?;
    for node in &tree.nodes {
        let path = format!("{prefix}/{}", node.display_name());
        f(&path, node)?;
        if let NodeKind::Dir { subtree } = &node.kind {
            walk_tree(trees, subtree, &path, f)?;
        }
    }
    Ok(())
}

/// How an entry differs between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only in the second snapshot.
    Added,
    /// Only in the first snapshot.
    Removed,
    /// Content differs.
    Modified,
    /// Same content, different metadata (mode, owner, times, xattrs).
    Metadata,
    /// A different kind of entry (e.g. file became directory).
    TypeChanged,
}

impl Change {
    /// One-character marker as shown by `brr diff`.
    pub fn marker(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
            Change::Metadata => 'U',
            Change::TypeChanged => 'T',
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    /// Path inside the snapshots.
    pub path: String,
    /// What changed.
    pub change: Change,
}

/// Compares two trees; identical subtrees (same ID) are skipped without loading them.
pub fn diff(repo: &Repository, index: &Index, a: &BlobId, b: &BlobId) -> Result<Vec<DiffEntry>> {
    let mut out = Vec::new();
    let trees = TreeLoader::new(repo, index);
    diff_trees(&trees, Some(a), Some(b), "", &mut out)?;
    Ok(out)
}

fn load(trees: &TreeLoader, id: Option<&BlobId>) -> Result<Tree> {
    match id {
        Some(id) => trees.load(id),
        None => Ok(Tree::default()),
    }
}

fn subtree(n: &Node) -> Option<&BlobId> {
    match &n.kind {
        NodeKind::Dir { subtree } => Some(subtree),
        _ => None,
    }
}

fn diff_trees(
    trees: &TreeLoader,
    a: Option<&BlobId>,
    b: Option<&BlobId>,
    prefix: &str,
    out: &mut Vec<DiffEntry>,
) -> Result<()> {
    if a.is_some() && a == b {
        return Ok(());
    }
    let (ta, tb) = (load(trees, a)?, load(trees, b)?);
    let (mut i, mut j) = (0, 0);
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let ord = match (ta.nodes.get(i), tb.nodes.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                let n = &ta.nodes[i];
                let path = format!("{prefix}/{}", n.display_name());
                out.push(DiffEntry {
                    path: path.clone(),
                    change: Change::Removed,
                });
                if let Some(s) = subtree(n) {
                    diff_trees(trees, Some(s), None, &path, out)?;
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let n = &tb.nodes[j];
                let path = format!("{prefix}/{}", n.display_name());
                out.push(DiffEntry {
                    path: path.clone(),
                    change: Change::Added,
                });
                if let Some(s) = subtree(n) {
                    diff_trees(trees, None, Some(s), &path, out)?;
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&ta.nodes[i], &tb.nodes[j]);
                let path = format!("{prefix}/{}", x.display_name());
                if x.type_char() != y.type_char() {
                    out.push(DiffEntry {
                        path: path.clone(),
                        change: Change::TypeChanged,
                    });
                    diff_trees(trees, subtree(x), subtree(y), &path, out)?;
                } else if let (Some(sa), Some(sb)) = (subtree(x), subtree(y)) {
                    if metadata_differs(x, y) {
                        out.push(DiffEntry {
                            path: path.clone(),
                            change: Change::Metadata,
                        });
                    }
                    diff_trees(trees, Some(sa), Some(sb), &path, out)?;
                } else if content_differs(x, y) {
                    out.push(DiffEntry {
                        path,
                        change: Change::Modified,
                    });
                } else if metadata_differs(x, y) {
                    out.push(DiffEntry {
                        path,
                        change: Change::Metadata,
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn content_differs(x: &Node, y: &Node) -> bool {
    match (&x.kind, &y.kind) {
        (NodeKind::File { chunks: a, .. }, NodeKind::File { chunks: b, .. }) => a != b,
        (a, b) => a != b,
    }
}

fn metadata_differs(x: &Node, y: &Node) -> bool {
    x.mode != y.mode
        || x.uid != y.uid
        || x.gid != y.gid
        || x.mtime != y.mtime
        || x.xattrs != y.xattrs
}
