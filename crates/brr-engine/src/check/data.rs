//! `check --read-data`: read every pack in full and verify it blob by blob, then say what the damage
//! affects.

use std::collections::{HashMap, HashSet};

use brr_core::id::{BlobId, Id, PackId};
use brr_core::pack::{PackTrailer, parse_pack_tail};
use brr_core::snapshot::Snapshot;
use brr_core::tree::NodeKind;
use brr_storage::FileKind;
use parking_lot::Mutex;

use super::graph::TreeGraph;
use super::reach::{Reach, list_ids};
use super::snapshots::TreeFailure;
use super::{Finding, IndexView, finding, read_error};
use crate::parallel::parallel_map;
use crate::progress::Progress;
use crate::repo::Repository;

pub(super) struct PackReadResult {
    pub packs: u64,
    pub bytes: u64,
    pub errors: Vec<Finding>,
    /// Blobs that failed to verify, with the finding describing each.
    pub bad_blobs: Vec<(BlobId, Finding)>,
}

pub(super) fn read_all_packs(
    repo: &Repository,
    view: &IndexView,
    stored: &HashMap<PackId, u64>,
    threads: usize,
    progress: &dyn Progress,
) -> PackReadResult {
    let mut packs: Vec<(PackId, u64)> = stored.iter().map(|(id, s)| (*id, *s)).collect();
    packs.sort();
    let total: u64 = packs.iter().map(|(_, s)| s).sum();
    progress.start("reading packs", Some(packs.len() as u64), Some(total));
    let out = Mutex::new(PackReadResult {
        packs: 0,
        bytes: 0,
        errors: Vec::new(),
        bad_blobs: Vec::new(),
    });
    parallel_map(packs, threads, |(id, size)| {
        let (errors, bad, read) = verify_pack(repo, view, id);
        progress.items(1);
        progress.bytes(size);
        let mut o = out.lock();
        o.packs += 1;
        o.bytes += read;
        o.errors.extend(errors);
        o.bad_blobs.extend(bad);
    });
    progress.finish();
    let mut out = out.into_inner();
    out.errors
        .sort_by(|a, b| a.file.cmp(&b.file).then(a.offset.cmp(&b.offset)));
    out.bad_blobs
        .sort_by(|a, b| a.1.file.cmp(&b.1.file).then(a.1.offset.cmp(&b.1.offset)));
    out
}

/// Reads one pack in full and verifies it; returns pack-level errors, bad blobs and bytes read.
fn verify_pack(
    repo: &Repository,
    view: &IndexView,
    id: PackId,
) -> (Vec<Finding>, Vec<(BlobId, Finding)>, u64) {
    let name = id.to_hex();
    let mut errors = Vec::new();
    let mut bad = Vec::new();
    let bytes = match repo.backend().read(FileKind::Pack, &name) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return (errors, bad, 0), // removed meanwhile (prune)
        Err(e) => {
            errors.push(finding(FileKind::Pack, &name, None, read_error(&e)));
            return (errors, bad, 0);
        }
    };
    let len = bytes.len() as u64;
    if PackId(Id::hash_of(&bytes)) != id {
        errors.push(finding(
            FileKind::Pack,
            &name,
            None,
            "content does not match its name (bit rot, truncation or tampering)",
        ));
    }
    let trailer = match parse_pack_tail(&bytes, len) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(finding(
                FileKind::Pack,
                &name,
                None,
                format!("trailer does not parse: {e}"),
            ));
            None
        }
    };
    let indexed = view.indexed.get(&id);
    if let (Some(t), Some((index_id, p))) = (&trailer, indexed)
        && (*t != p.trailer || p.pack_len != len)
    {
        errors.push(finding(
            FileKind::Pack,
            &name,
            None,
            format!("trailer disagrees with index/{}", index_id.to_hex()),
        ));
    }
    // Verify the blobs where the index says they are (that is where restore reads them); a pack no
    // index describes is verified by its own trailer.
    let described: Option<&PackTrailer> = indexed.map(|(_, p)| &p.trailer).or(trailer.as_ref());
    if let Some(t) = described {
        for e in &t.entries {
            let start = u64::from(e.offset);
            let end = start + u64::from(e.length);
            let problem = if end > len {
                Some("extends past the end of the pack".to_string())
            } else {
                repo.open_stored_blob(
                    t.key_of(e),
                    e.blob_type,
                    &e.id,
                    &bytes[start as usize..end as usize],
                )
                .err()
                .map(|err| err.to_string())
            };
            if let Some(p) = problem {
                bad.push((
                    e.id,
                    finding(
                        FileKind::Pack,
                        &name,
                        Some(start),
                        format!(
                            "{} blob {} ({} bytes): {p}",
                            e.blob_type,
                            e.id.short(),
                            e.length
                        ),
                    ),
                ));
            }
        }
    }
    (errors, bad, len)
}

/// Blobs none of whose copies verified.
pub(super) fn lost_blobs(view: &IndexView, bad: &[(BlobId, Finding)]) -> HashSet<BlobId> {
    let mut bad_locations: HashMap<BlobId, usize> = HashMap::new();
    for (b, _) in bad {
        *bad_locations.entry(*b).or_default() += 1;
    }
    bad_locations
        .into_iter()
        .filter(|(b, n)| view.index.all_locations(b).len() <= *n)
        .map(|(b, _)| b)
        .collect()
}

/// Adds to each bad blob's finding whether an intact copy exists and which snapshots and files it hits.
pub(super) fn describe_damage(
    repo: &Repository,
    view: &IndexView,
    graph: &TreeGraph<TreeFailure>,
    snapshots: &[Snapshot],
    reach: &Reach,
    lost: &HashSet<BlobId>,
    bad: &mut [(BlobId, Finding)],
) {
    if bad.is_empty() {
        return;
    }
    let tainted = graph.trees_reaching(lost);
    let mut files_of: HashMap<BlobId, Vec<String>> = HashMap::new();
    const MAX_SNAPSHOTS_WALKED: usize = 3;
    const MAX_FILES: usize = 10;
    // Only trees that lead to a lost blob are opened, in at most a few snapshots.
    for s in snapshots
        .iter()
        .filter(|s| tainted.contains(&s.meta.tree))
        .take(MAX_SNAPSHOTS_WALKED)
    {
        let mut stack = vec![(s.meta.tree, String::new())];
        let mut walked = 0;
        while let Some((tree_id, path)) = stack.pop() {
            if lost.contains(&tree_id) {
                let list = files_of.entry(tree_id).or_default();
                if list.len() < MAX_FILES {
                    list.push(format!("{path}/ (directory listing)"));
                }
                continue;
            }
            if !tainted.contains(&tree_id) || walked > 10_000 {
                continue;
            }
            walked += 1;
            let Ok(tree) = repo.load_tree(&view.index, &tree_id) else {
                continue;
            };
            for n in &tree.nodes {
                let p = format!("{path}/{}", n.display_name());
                match &n.kind {
                    NodeKind::File { chunks, .. } => {
                        for c in chunks.iter().filter(|c| lost.contains(&c.id)) {
                            let list = files_of.entry(c.id).or_default();
                            if list.len() < MAX_FILES && !list.contains(&p) {
                                list.push(p.clone());
                            }
                        }
                    }
                    NodeKind::Dir { subtree } => stack.push((*subtree, p)),
                    _ => {}
                }
            }
        }
    }
    for (blob, found) in bad.iter_mut() {
        if !lost.contains(blob) {
            found
                .message
                .push_str("; an intact copy exists in another pack");
            continue;
        }
        let affected = reach.affected(blob);
        if affected.is_empty() {
            found
                .message
                .push_str("; no snapshot references it (prune will remove it)");
            continue;
        }
        found
            .message
            .push_str(&format!("; affects snapshot(s) {}", list_ids(affected)));
        if let Some(files) = files_of.get(blob) {
            found
                .message
                .push_str(&format!(" (e.g. {})", files.join(", ")));
        }
    }
}
