//! The tree graph of a set of snapshots: every distinct tree blob loaded once, in parallel, one level of
//! the directory hierarchy at a time. Used by `check` (reachability, the `refs` lists) and `stats`
//! (file counts and sizes without walking a shared subtree twice).

use std::collections::{HashMap, HashSet};

use brr_core::id::BlobId;
use brr_core::tree::{ChunkRef, NodeKind, Tree};

use crate::parallel::parallel_map;
use crate::progress::Progress;

/// What one tree contributes, without its names and metadata.
#[derive(Debug, Default)]
pub(crate) struct TreeInfo {
    /// Subtrees of its directories.
    pub subtrees: Vec<BlobId>,
    /// Chunks of its files, in order.
    pub chunks: Vec<ChunkRef>,
    /// Regular files directly in it.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}

impl TreeInfo {
    fn of(tree: &Tree) -> Self {
        let mut info = TreeInfo::default();
        for n in &tree.nodes {
            match &n.kind {
                NodeKind::File { size, chunks, .. } => {
                    info.files += 1;
                    info.bytes += size;
                    info.chunks.extend_from_slice(chunks);
                }
                NodeKind::Dir { subtree } => info.subtrees.push(*subtree),
                _ => {}
            }
        }
        info
    }
}

/// Every tree reachable from some roots.
#[derive(Debug)]
pub(crate) struct TreeGraph<E> {
    /// Trees that loaded.
    pub trees: HashMap<BlobId, TreeInfo>,
    /// Trees that did not, with why.
    pub failed: HashMap<BlobId, E>,
}

impl<E: Send> TreeGraph<E> {
    /// Loads every tree reachable from `roots` with `load`, on `threads` threads.
    pub fn load(
        roots: impl IntoIterator<Item = BlobId>,
        threads: usize,
        progress: &dyn Progress,
        load: &(dyn Fn(&BlobId) -> Result<Tree, E> + Sync),
    ) -> Self {
        let mut graph = TreeGraph {
            trees: HashMap::new(),
            failed: HashMap::new(),
        };
        let mut seen: HashSet<BlobId> = HashSet::new();
        let mut frontier: Vec<BlobId> = roots.into_iter().filter(|r| seen.insert(*r)).collect();
        while !frontier.is_empty() {
            let loaded = parallel_map(std::mem::take(&mut frontier), threads, |id| {
                let r = load(&id).map(|t| TreeInfo::of(&t));
                progress.items(1);
                (id, r)
            });
            for (id, r) in loaded {
                match r {
                    Ok(info) => {
                        frontier.extend(info.subtrees.iter().filter(|s| seen.insert(**s)));
                        graph.trees.insert(id, info);
                    }
                    Err(e) => {
                        graph.failed.insert(id, e);
                    }
                }
            }
        }
        graph
    }

    /// Every blob (trees and data) reachable from `root`, the root included.
    pub fn reachable(&self, root: BlobId) -> HashSet<BlobId> {
        let mut out = HashSet::new();
        let mut stack = vec![root];
        while let Some(t) = stack.pop() {
            if !out.insert(t) {
                continue;
            }
            if let Some(info) = self.trees.get(&t) {
                out.extend(info.chunks.iter().map(|c| c.id));
                stack.extend(info.subtrees.iter().copied());
            }
        }
        out
    }

    /// Files and bytes below each tree, subtrees included (each computed once).
    pub fn totals(&self) -> HashMap<BlobId, (u64, u64)> {
        let mut memo: HashMap<BlobId, (u64, u64)> = HashMap::with_capacity(self.trees.len());
        for &start in self.trees.keys() {
            // Post-order without recursion: a tree is summed once all its subtrees are.
            let mut visiting: HashSet<BlobId> = HashSet::new();
            let mut stack = vec![(start, false)];
            while let Some((t, expanded)) = stack.pop() {
                if memo.contains_key(&t) {
                    continue;
                }
                let Some(info) = self.trees.get(&t) else {
                    memo.insert(t, (0, 0));
                    continue;
                };
                if expanded {
                    let (mut files, mut bytes) = (info.files, info.bytes);
                    for s in &info.subtrees {
                        let (f, b) = memo.get(s).copied().unwrap_or_default();
                        files += f;
                        bytes += b;
                    }
                    memo.insert(t, (files, bytes));
                } else if visiting.insert(t) {
                    // `visiting` also stops a (forged) cycle of trees from looping forever.
                    stack.push((t, true));
                    for s in &info.subtrees {
                        if !memo.contains_key(s) && !visiting.contains(s) {
                            stack.push((*s, false));
                        }
                    }
                }
            }
        }
        memo
    }

    /// Trees from which any blob of `bad` is reachable (a bad tree itself included).
    pub fn trees_reaching(&self, bad: &HashSet<BlobId>) -> HashSet<BlobId> {
        let mut memo: HashMap<BlobId, bool> = HashMap::new();
        let all: Vec<BlobId> = self
            .trees
            .keys()
            .chain(self.failed.keys())
            .copied()
            .collect();
        for start in all {
            let mut visiting: HashSet<BlobId> = HashSet::new();
            let mut stack = vec![(start, false)];
            while let Some((t, expanded)) = stack.pop() {
                if memo.contains_key(&t) {
                    continue;
                }
                let Some(info) = self.trees.get(&t) else {
                    memo.insert(t, bad.contains(&t));
                    continue;
                };
                if expanded {
                    let hit = bad.contains(&t)
                        || info.chunks.iter().any(|c| bad.contains(&c.id))
                        || info
                            .subtrees
                            .iter()
                            .any(|s| memo.get(s).copied().unwrap_or(false));
                    memo.insert(t, hit);
                } else if visiting.insert(t) {
                    // `visiting` also stops a (forged) cycle of trees from looping forever.
                    stack.push((t, true));
                    for s in &info.subtrees {
                        if !memo.contains_key(s) && !visiting.contains(s) {
                            stack.push((*s, false));
                        }
                    }
                }
            }
        }
        memo.into_iter()
            .filter(|(_, v)| *v)
            .map(|(k, _)| k)
            .collect()
    }
}
