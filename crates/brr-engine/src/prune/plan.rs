//! Planning a prune: which GC records can be swept, which packs to condemn, which to repack, which
//! unindexed packs to adopt. Reads the repository, writes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use brr_core::gcrecord::{CondemnedPack, GcRecord};
use brr_core::id::{BlobId, IndexId, PackId};
use brr_core::index::IndexedPack;
use brr_storage::FileKind;

use super::{GcTarget, PruneOptions, PrunePlan};
use crate::error::{EngineError, Result};
use crate::index::{read_index_files, read_pack_trailer};
use crate::lock::list_locks;
use crate::parallel::parallel_map;

/// The GC records of the repository, and whether each can be swept now.
#[derive(Debug, Default)]
pub(crate) struct RecordState {
    /// Every record, by name.
    pub records: BTreeMap<String, GcRecord>,
    /// Records whose listed sessions are all gone (unsealed ones: when no other session runs now; they
    /// are sealed with the current sessions before anything else).
    pub eligible: Vec<String>,
    /// Records still waiting for sessions.
    pub waiting: Vec<String>,
    /// Lock names other than the caller's.
    pub other_sessions: Vec<String>,
}

/// Reads every GC record and lock. A record that does not parse stops the prune: it may condemn packs
/// whose fate nobody could then decide.
pub(crate) fn read_records(t: &GcTarget<'_>, own_lock: Option<&str>) -> Result<RecordState> {
    let backend = t.backend();
    let mut st = RecordState::default();
    for f in backend.list(FileKind::Gc)? {
        match backend.read(FileKind::Gc, &f.name) {
            Ok(bytes) => {
                let r = GcRecord::decode(&bytes)
                    .map_err(|e| EngineError::Damaged(format!("GC record gc/{}: {e}", f.name)))?;
                st.records.insert(f.name, r);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    st.other_sessions = list_locks(backend)?
        .into_iter()
        .map(|l| l.name)
        .filter(|n| Some(n.as_str()) != own_lock)
        .collect();
    st.other_sessions.sort();
    let running: HashSet<&String> = st.other_sessions.iter().collect();
    for (name, r) in &st.records {
        let done = if r.sealed {
            r.sessions.iter().all(|s| !running.contains(s))
        } else {
            running.is_empty()
        };
        if done {
            st.eligible.push(name.clone());
        } else {
            st.waiting.push(name.clone());
        }
    }
    Ok(st)
}

/// A pack to repack and the blobs to copy out of it (indices into its trailer entries).
#[derive(Debug, Clone)]
pub(crate) struct Repack {
    pub pack: IndexedPack,
    pub copy: Vec<usize>,
}

/// Everything the mark phase needs.
#[derive(Debug, Default)]
pub(crate) struct PackPlan {
    /// Live index files read; the rewritten index supersedes exactly these.
    pub index_files: Vec<IndexId>,
    /// Every pack they describe (first description wins).
    pub live_packs: Vec<IndexedPack>,
    /// Packs with no referenced blob (indexed or not).
    pub condemn: Vec<CondemnedPack>,
    /// Packs with too much unused space.
    pub repack: Vec<Repack>,
    /// Unindexed packs holding referenced blobs found nowhere else: indexed again, not condemned.
    pub adopt: Vec<IndexedPack>,
    /// Unindexed packs found (not named by any GC record).
    pub unindexed: u64,
    /// Pack files in storage.
    pub packs_total: u64,
    /// Blobs to copy.
    pub blobs_to_copy: u64,
    /// Estimated bytes freed.
    pub bytes_to_free: u64,
}

/// Plans the mark phase against the current repository state. `already_condemned` are packs some
/// existing GC record names: they are left to that record.
pub(crate) fn plan_packs(
    t: &GcTarget<'_>,
    opts: &PruneOptions,
    records: &BTreeMap<String, GcRecord>,
    threads: usize,
) -> Result<PackPlan> {
    let backend = t.backend();
    let t_protected = t.protected;
    let already_condemned: HashSet<PackId> = records
        .values()
        .flat_map(|r| r.packs.iter().map(|p| p.id))
        .collect();

    // Index files, then snapshots, then the pack listing, in this order: a backup stores its packs
    // before its snapshot, so every blob a snapshot read here references is in an index file read
    // here, in a pack listed here (adopted below if no index read here describes it), or in a pack a
    // GC record condemned.
    let (index_files, contents) = read_index_files(backend)?;
    let mut live: BTreeMap<PackId, IndexedPack> = BTreeMap::new();
    for file in contents {
        for p in file.packs {
            live.entry(p.id).or_insert(p);
        }
    }
    let referenced: HashSet<BlobId> = (t.referenced)()?;
    let stored: HashMap<PackId, u64> = backend
        .list(FileKind::Pack)?
        .into_iter()
        .filter_map(|f| PackId::from_hex(&f.name).ok().map(|id| (id, f.size)))
        .collect();

    let mut plan = PackPlan {
        index_files,
        packs_total: stored.len() as u64,
        ..Default::default()
    };

    // Packs that may serve blobs after this prune: indexed, present, and not condemned by anyone.
    let usable: Vec<&IndexedPack> = live
        .values()
        .filter(|p| stored.contains_key(&p.id) && !already_condemned.contains(&p.id))
        .collect();
    let mut available: HashSet<BlobId> = usable
        .iter()
        .flat_map(|p| p.trailer.entries.iter().map(|e| e.id))
        .collect();

    // Unindexed packs: read their trailers to know what they hold.
    let unindexed: Vec<(PackId, u64)> = {
        let mut v: Vec<(PackId, u64)> = stored
            .iter()
            .filter(|(id, _)| !live.contains_key(id) && !already_condemned.contains(id))
            .map(|(id, size)| (*id, *size))
            .collect();
        v.sort();
        v
    };
    plan.unindexed = unindexed.len() as u64;
    let trailers = parallel_map(unindexed, threads, |(id, size)| {
        read_pack_trailer(backend, id, size)
    });
    for t in trailers {
        // An unreadable pack is left alone: check reports it, and nothing can say what it holds.
        let Ok(pack) = t else { continue };
        let needed = pack
            .trailer
            .entries
            .iter()
            .any(|e| referenced.contains(&e.id) && !available.contains(&e.id));
        if needed {
            available.extend(pack.trailer.entries.iter().map(|e| e.id));
            plan.adopt.push(pack);
        } else if (t_protected)(&pack.id) {
            // A recent upload, maybe of a backup that will resume: left for a later run.
        } else {
            plan.bytes_to_free += pack.pack_len;
            plan.condemn.push(condemned(&pack));
        }
    }

    // Every referenced blob must be somewhere; else the repository is damaged and prune stops.
    let in_condemned: HashSet<BlobId> = records
        .values()
        .flat_map(|r| r.packs.iter().flat_map(|p| p.blobs.iter().copied()))
        .collect();
    let missing: Vec<&BlobId> = referenced
        .iter()
        .filter(|b| !available.contains(b) && !in_condemned.contains(b))
        .collect();
    if !missing.is_empty() {
        return Err(EngineError::Damaged(format!(
            "{} blob(s) referenced by snapshots are in no index or pack (e.g. {}); refusing to prune — run `brr check`",
            missing.len(),
            missing[0].short()
        )));
    }

    // Classify usable packs (and indexed packs whose file is gone: they serve nothing).
    let mut keep_as_is: Vec<&IndexedPack> = Vec::new();
    let mut candidates: Vec<&IndexedPack> = Vec::new();
    for p in live.values().filter(|p| !already_condemned.contains(&p.id)) {
        let total = p.data_len();
        let used: u64 = p
            .trailer
            .entries
            .iter()
            .filter(|e| referenced.contains(&e.id))
            .map(|e| u64::from(e.length))
            .sum();
        if stored.contains_key(&p.id) && (t.protected)(&p.id) {
            keep_as_is.push(p);
        } else if !stored.contains_key(&p.id) || used == 0 {
            if stored.contains_key(&p.id) {
                plan.bytes_to_free += p.pack_len;
            }
            plan.condemn.push(condemned(p));
        } else if (total - used) as f64 > opts.max_unused_fraction * total as f64 {
            candidates.push(p);
        } else {
            keep_as_is.push(p);
        }
    }
    let kept_blobs: HashSet<BlobId> = keep_as_is
        .iter()
        .flat_map(|p| p.trailer.entries.iter().map(|e| e.id))
        .chain(
            plan.adopt
                .iter()
                .flat_map(|p| p.trailer.entries.iter().map(|e| e.id)),
        )
        .collect();
    let mut copied: HashSet<BlobId> = HashSet::new();
    for p in candidates {
        let mut copy = Vec::new();
        let mut copy_bytes = 0u64;
        for (i, e) in p.trailer.entries.iter().enumerate() {
            if referenced.contains(&e.id) && !kept_blobs.contains(&e.id) && copied.insert(e.id) {
                copy.push(i);
                copy_bytes += u64::from(e.length);
            }
        }
        plan.blobs_to_copy += copy.len() as u64;
        plan.bytes_to_free += p.pack_len.saturating_sub(copy_bytes);
        plan.repack.push(Repack {
            pack: p.clone(),
            copy,
        });
    }
    plan.live_packs = live.into_values().collect();
    Ok(plan)
}

/// The GC record entry for a pack.
pub(crate) fn condemned(p: &IndexedPack) -> CondemnedPack {
    CondemnedPack {
        id: p.id,
        size: p.pack_len,
        blobs: p.trailer.entries.iter().map(|e| e.id).collect(),
    }
}

/// The public summary.
pub(crate) fn summarize(records: &RecordState, packs: &PackPlan) -> PrunePlan {
    PrunePlan {
        packs_total: packs.packs_total,
        packs_to_condemn: packs.condemn.iter().map(|c| c.id).collect(),
        packs_to_repack: packs.repack.iter().map(|r| r.pack.id).collect(),
        blobs_to_copy: packs.blobs_to_copy,
        bytes_to_free: packs.bytes_to_free,
        unindexed_packs: packs.unindexed,
        gc_records_to_sweep: records.eligible.clone(),
        gc_records_waiting: records.waiting.clone(),
    }
}
