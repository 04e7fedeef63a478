//! Scrub: verify a stored repository against bit rot, without the key.
//!
//! | what | check | finding |
//! |---|---|---|
//! | `config` | parses, version 1 (the MAC needs the key) | damaged `config` |
//! | key slots | BLAKE3 of the bytes = name; parses; belongs to this repository (its ID in `config`) | damaged `keys/<id>` |
//! | snapshots | BLAKE3 = name; public part decodes (`parse_snapshot_public`) | damaged `snapshots/<id>`, naming itself |
//! | index files | BLAKE3 = name; decodes; a pack a live index file describes is stored | damaged `index/<id>`; missing `data/…` |
//! | packs | BLAKE3 = name, read in ranges of [`ScrubOptions::range_len`]; trailer parses and its blobs fill the pack; trailer and size equal what live index files say | damaged `data/…` |
//! | references | every blob a snapshot references is held by a stored pack | missing blobs, on the snapshot |
//! | GC records, locks | parse | damaged `gc/<id>`; an unreadable lock is a warning |
//!
//! Every damaged or missing pack names the snapshots that reference a blob it holds (blobs known from
//! its trailer, or else from the index files that describe it). Memory is bounded by one snapshot or
//! index file per thread, the set of distinct blob IDs in packs, and the descriptions in live index
//! files — never by a pack (hashed range by range on [`ScrubOptions::threads`] threads) nor by the sum
//! of all snapshots' references (snapshots are verified first, then read again one at a time to link
//! them to damaged packs). Files removed while the scrub runs (by a concurrent prune) are not damage
//! and are skipped.

mod files;
mod packs;

use std::collections::{BTreeSet, HashMap, HashSet};

use brr_core::id::{BlobId, PackId, SnapshotId};
use brr_storage::{Backend, FileKind};

use super::KeylessRepo;
use crate::check::file_path;
use crate::error::{EngineError, Result};
use crate::keyless::public_snapshot;
use crate::parallel::parallel_map;
use crate::progress::Progress;
use files::{scrub_config, scrub_gc_records, scrub_index_files, scrub_keys, scrub_snapshots};
use packs::scrub_packs;

/// How to scrub.
#[derive(Debug, Clone, Copy)]
pub struct ScrubOptions {
    /// Threads reading files (default 2).
    pub threads: usize,
    /// Bytes read per range when hashing a pack (default 8 MiB).
    pub range_len: u64,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        ScrubOptions {
            threads: 2,
            range_len: 8 << 20,
        }
    }
}

/// Damaged or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// The file exists but is not what its name says, or does not parse.
    Damaged,
    /// The file (or a blob) is referenced but not stored.
    Missing,
}

/// One damaged or missing file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScrubFinding {
    /// Repository-relative path: `data/ab/ab12…`, `index/…`, `snapshots/…`, `keys/…`, `gc/…`, `config`.
    pub file: String,
    /// Damaged or missing.
    pub problem: Problem,
    /// What is wrong, in one line.
    pub reason: String,
    /// Snapshots affected: those referencing a blob of a damaged or missing pack, or the damaged
    /// snapshot itself. Sorted.
    pub snapshots: Vec<SnapshotId>,
}

impl std::fmt::Display for ScrubFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.problem {
            Problem::Damaged => "damaged",
            Problem::Missing => "missing",
        };
        write!(f, "{}: {what}: {}", self.file, self.reason)?;
        if !self.snapshots.is_empty() {
            let ids: Vec<String> = self.snapshots.iter().map(|s| s.short()).collect();
            write!(f, " (affects snapshots {})", ids.join(", "))?;
        }
        Ok(())
    }
}

/// What a scrub found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ScrubReport {
    /// Damaged and missing files, in the order packs, index files, snapshots, key slots, GC records,
    /// config; each group sorted by file.
    pub findings: Vec<ScrubFinding>,
    /// Harmless states: unreadable locks, packs no index file describes (an interrupted backup's).
    pub warnings: Vec<String>,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Snapshots that parsed.
    pub snapshots: u64,
    /// Pack files in storage.
    pub packs: u64,
}

impl ScrubReport {
    /// True when nothing is damaged or missing.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

pub(super) fn found(
    kind: FileKind,
    name: &str,
    problem: Problem,
    reason: impl Into<String>,
) -> ScrubFinding {
    ScrubFinding {
        file: file_path(kind, name),
        problem,
        reason: reason.into(),
        snapshots: Vec::new(),
    }
}

/// How one file turned out.
pub(super) enum Read<T> {
    Good(T),
    Bad(String),
    /// Removed since it was listed.
    Gone,
}

/// Reads a whole small file; storage errors other than "not found" stop the scrub.
pub(super) fn read_whole(
    backend: &dyn Backend,
    kind: FileKind,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    match backend.read(kind, name) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Scrubs the repository. Storage failures (other than files vanishing) stop it with an error;
/// damage is reported, never an error.
pub fn scrub(
    view: &KeylessRepo,
    opts: &ScrubOptions,
    progress: &dyn Progress,
) -> Result<ScrubReport> {
    if opts.threads == 0 || opts.range_len == 0 {
        return Err(EngineError::invalid(
            "scrub options",
            "threads and range length must be at least 1",
        ));
    }
    let backend = view.backend();
    let mut report = ScrubReport::default();

    // Snapshots before the pack listing: a backup stores its packs before its snapshot, so every pack
    // a snapshot read here needs is listed below.
    let (snapshots, mut snapshot_findings) = scrub_snapshots(backend, opts, &mut report, progress)?;
    let index = scrub_index_files(backend, opts, &mut report, progress)?;
    let records = scrub_gc_records(backend, &mut report)?;
    let packs = scrub_packs(backend, opts, &index, &mut report, progress)?;

    // Packs live index files describe that are not stored (and that no GC record condemned).
    let stored: &HashSet<PackId> = &packs.stored;
    let mut pack_findings = packs.findings;
    for (id, (desc, file)) in &index.described {
        if stored.contains(id) || records.contains(id) {
            continue;
        }
        // A prune may have rewritten the index and deleted the pack meanwhile: only if the index file
        // that names it is still there and the pack is still absent is it missing.
        let still_named = backend.size(FileKind::Index, &file.to_hex()).is_ok();
        let absent =
            matches!(backend.size(FileKind::Pack, &id.to_hex()), Err(e) if e.is_not_found());
        if still_named && absent {
            let f = found(
                FileKind::Pack,
                &id.to_hex(),
                Problem::Missing,
                format!("described by index file {} but not stored", file.short()),
            );
            pack_findings.push((f, desc.trailer.entries.iter().map(|e| e.id).collect()));
        }
    }

    // Referenced blobs that no stored pack holds (damaged packs' known blobs count as held: the
    // damaged pack is the finding).
    let mut held: HashSet<BlobId> = packs.healthy_blobs;
    let mut by_blob: HashMap<BlobId, Vec<usize>> = HashMap::new();
    for (i, (f, blobs)) in pack_findings.iter().enumerate() {
        if f.problem == Problem::Damaged {
            held.extend(blobs.iter().copied());
        }
        for b in blobs {
            by_blob.entry(*b).or_default().push(i);
        }
    }

    // Second pass over the snapshots of the first, one at a time per thread: memory is bounded by one
    // snapshot's references, not by all of them.
    progress.start("linking snapshots", Some(snapshots.len() as u64), None);
    let links = parallel_map(snapshots, opts.threads, |id| {
        let r = link_snapshot(backend, id, &by_blob, &held);
        progress.items(1);
        r
    });
    progress.finish();
    let mut affected: Vec<BTreeSet<SnapshotId>> = vec![BTreeSet::new(); pack_findings.len()];
    for link in links {
        let Some(link) = link? else { continue };
        for i in link.hits {
            affected[i].insert(link.id);
        }
        if let Some(mut f) = link.finding {
            f.snapshots = vec![link.id];
            snapshot_findings.push(f);
        }
    }

    let mut out: Vec<ScrubFinding> = pack_findings
        .into_iter()
        .zip(affected)
        .map(|((mut f, _), set)| {
            f.snapshots = set.into_iter().collect();
            f
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    let mut index_findings = index.findings;
    index_findings.sort_by(|a, b| a.file.cmp(&b.file));
    snapshot_findings.sort_by(|a, b| a.file.cmp(&b.file).then(a.reason.cmp(&b.reason)));
    out.extend(index_findings);
    out.extend(snapshot_findings);
    out.extend(scrub_keys(
        backend,
        &view.config().body.id,
        opts,
        &mut report,
    )?);
    out.extend(records.findings);
    out.extend(scrub_config(backend, &mut report)?);
    report.findings = out;
    report.warnings.sort();
    Ok(report)
}

/// One snapshot of the first pass, linked to the pack findings.
struct Link {
    id: SnapshotId,
    /// Pack findings holding a blob it references.
    hits: Vec<usize>,
    /// Blobs it references that no stored pack holds, or damage that appeared since the first pass.
    finding: Option<ScrubFinding>,
}

/// Reads snapshot `id` again and links it: which damaged or missing packs it needs, which of its blobs
/// no pack holds. `None` when it was forgotten meanwhile (its packs may be gone with it: not damage).
fn link_snapshot(
    backend: &dyn Backend,
    id: SnapshotId,
    by_blob: &HashMap<BlobId, Vec<usize>>,
    held: &HashSet<BlobId>,
) -> Result<Option<Link>> {
    let name = id.to_hex();
    let Some(bytes) = read_whole(backend, FileKind::Snapshot, &name)? else {
        return Ok(None);
    };
    let s = match public_snapshot(id, &bytes) {
        Ok(s) => s,
        Err(e) => {
            let reason = match e {
                EngineError::Damaged(m) => m,
                e => e.to_string(),
            };
            return Ok(Some(Link {
                id,
                hits: Vec::new(),
                finding: Some(found(FileKind::Snapshot, &name, Problem::Damaged, reason)),
            }));
        }
    };
    drop(bytes);
    let mut hits: Vec<usize> = s
        .refs
        .iter()
        .filter_map(|r| by_blob.get(r))
        .flatten()
        .copied()
        .collect();
    hits.sort_unstable();
    hits.dedup();
    let mut missing = s.refs.iter().filter(|b| !held.contains(b));
    let finding = missing.next().map(|first| {
        found(
            FileKind::Snapshot,
            &name,
            Problem::Missing,
            format!(
                "{} referenced blob(s) are in no stored pack (e.g. {})",
                1 + missing.count(),
                first.short()
            ),
        )
    });
    Ok(Some(Link { id, hits, finding }))
}
