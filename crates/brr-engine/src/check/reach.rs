//! What each snapshot reaches ([`Reach`]), and the findings drawn from it: unloadable trees, unindexed
//! data blobs, and cleartext reference lists that disagree with the trees.

use std::collections::{BTreeSet, HashMap, HashSet};

use brr_core::id::{BlobId, SnapshotId};
use brr_core::snapshot::Snapshot;
use brr_storage::FileKind;

use super::graph::TreeGraph;
use super::snapshots::TreeFailure;
use super::{Findings, IndexView};
use crate::parallel::parallel_map;

/// What each snapshot reaches, as far as check needs it. Computed one snapshot at a time (in parallel)
/// and reduced at once: holding every snapshot's reachable set would not fit in memory for large
/// repositories.
pub(super) struct Reach {
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
    pub(super) fn compute(
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
    pub(super) fn affected(&self, blob: &BlobId) -> &[SnapshotId] {
        self.hits.get(blob).map(Vec::as_slice).unwrap_or_default()
    }
}

pub(super) fn list_ids(ids: &[SnapshotId]) -> String {
    const SHOWN: usize = 5;
    let mut s: Vec<String> = ids.iter().take(SHOWN).map(|i| i.short()).collect();
    if ids.len() > SHOWN {
        s.push(format!("and {} more", ids.len() - SHOWN));
    }
    s.join(", ")
}

pub(super) fn check_tree_failures(graph: &TreeGraph<TreeFailure>, reach: &Reach, f: &mut Findings) {
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

pub(super) fn check_data_blobs(snapshots: &[Snapshot], reach: &Reach, f: &mut Findings) {
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

pub(super) fn check_refs(
    view: &IndexView,
    snapshots: &[Snapshot],
    reach: &Reach,
    f: &mut Findings,
) {
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
