//! Snapshots and their trees: decrypts every snapshot file and loads every tree they reach.

use brr_core::id::{BlobId, SnapshotId};
use brr_core::snapshot::{Snapshot, decode_snapshot};
use brr_core::tree::Tree;
use brr_storage::FileKind;

use super::graph::TreeGraph;
use super::{Finding, Findings, finding, read_error};
use crate::error::Result;
use crate::index::Index;
use crate::parallel::parallel_map;
use crate::progress::Progress;
use crate::repo::Repository;

pub(super) fn check_snapshots(
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
pub(super) enum TreeFailure {
    /// No index entry.
    NotIndexed,
    /// Every stored copy failed; the first failure, located.
    Damaged(Finding),
}

pub(super) fn load_trees(
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
