//! `brr stats`: how much the repository holds and how well it deduplicates and compresses.
//!
//! Every distinct tree is loaded once, however many snapshots share it (trees of one level in parallel),
//! and per-tree file counts and sizes are summed bottom-up, so the cost grows with the number of
//! distinct directories, not with the number of snapshots.

use std::collections::HashMap;

use brr_core::id::BlobId;
use brr_storage::FileKind;

use crate::check::graph::TreeGraph;
use crate::error::{EngineError, Result};
use crate::index::Index;
use crate::parallel::cpu_threads;
use crate::progress::Progress;
use crate::repo::Repository;

/// Repository statistics.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct RepoStats {
    /// Snapshots.
    pub snapshots: u64,
    /// Regular files, summed over snapshots.
    pub files: u64,
    /// Sum of file sizes over all snapshots.
    pub logical_bytes: u64,
    /// Distinct data blobs referenced by the snapshots.
    pub unique_blobs: u64,
    /// Plaintext bytes of those distinct data blobs.
    pub unique_plain_bytes: u64,
    /// Bytes of all pack files.
    pub stored_bytes: u64,
    /// Pack files.
    pub packs: u64,
    /// Live index files.
    pub index_files: u64,
    /// `logical_bytes / unique_plain_bytes` (0 when there is no data).
    pub dedup_ratio: f64,
    /// `unique_plain_bytes / stored bytes of those blobs` (0 when there is no data).
    pub compression_ratio: f64,
    /// `1 - stored_bytes / logical_bytes` (0 when there is no data).
    pub space_saving: f64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Computes the statistics with an already loaded index. A tree that cannot be loaded is an error
/// (`brr check` says where).
pub fn stats(repo: &Repository, index: &Index, progress: &dyn Progress) -> Result<RepoStats> {
    let snapshots = repo.list_snapshots()?;
    progress.start("reading trees", None, None);
    let load = |id: &BlobId| repo.load_tree(index, id);
    let graph: TreeGraph<EngineError> = TreeGraph::load(
        snapshots.iter().map(|s| s.meta.tree),
        cpu_threads(),
        progress,
        &load,
    );
    progress.finish();
    if let Some((id, e)) = graph.failed.iter().next() {
        return Err(EngineError::Damaged(format!(
            "tree {} cannot be loaded (run `brr check`): {e}",
            id.short()
        )));
    }
    let totals = graph.totals();
    let mut st = RepoStats {
        snapshots: snapshots.len() as u64,
        ..Default::default()
    };
    for s in &snapshots {
        let (files, bytes) = totals.get(&s.meta.tree).copied().unwrap_or_default();
        st.files += files;
        st.logical_bytes += bytes;
    }
    let mut unique: HashMap<BlobId, u32> = HashMap::new();
    for t in graph.trees.values() {
        for c in &t.chunks {
            unique.insert(c.id, c.len);
        }
    }
    st.unique_blobs = unique.len() as u64;
    st.unique_plain_bytes = unique.values().map(|l| u64::from(*l)).sum();
    let stored_blob_bytes: u64 = unique
        .keys()
        .filter_map(|id| index.get(id))
        .map(|e| u64::from(e.length))
        .sum();
    for p in repo.backend().list(FileKind::Pack)? {
        st.packs += 1;
        st.stored_bytes += p.size;
    }
    st.index_files = index.files.len() as u64;
    st.dedup_ratio = ratio(st.logical_bytes, st.unique_plain_bytes);
    st.compression_ratio = ratio(st.unique_plain_bytes, stored_blob_bytes);
    st.space_saving = if st.logical_bytes == 0 {
        0.0
    } else {
        1.0 - ratio(st.stored_bytes, st.logical_bytes)
    };
    Ok(st)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::backup::{BackupOptions, backup};
    use crate::check::test_support::{new_repo, write_file};
    use crate::progress::NoProgress;

    #[test]
    fn counts_files_bytes_and_dedup() {
        let (_dir, src, repo) = new_repo();
        write_file(&src.join("a"), 1, 100_000);
        write_file(&src.join("sub/b"), 2, 50_000);
        std::fs::write(src.join("sub/empty"), b"").unwrap();
        let opts = BackupOptions {
            paths: vec![src.clone()],
            ..Default::default()
        };
        backup(&repo, &opts, &NoProgress).unwrap();
        // A second snapshot of the same data: logical size doubles, unique data does not.
        backup(&repo, &opts, &NoProgress).unwrap();
        let index = repo.load_index().unwrap();
        let st = stats(&repo, &index, &NoProgress).unwrap();
        assert_eq!(st.snapshots, 2);
        assert_eq!(st.files, 6);
        assert_eq!(st.logical_bytes, 2 * 150_000);
        assert_eq!(st.unique_plain_bytes, 150_000);
        assert!(st.unique_blobs >= 2);
        assert!((st.dedup_ratio - 2.0).abs() < 1e-9);
        assert!(st.packs >= 2 && st.stored_bytes > 0);
        assert!(st.index_files >= 1);
        assert!(st.compression_ratio > 0.0);
    }
}
