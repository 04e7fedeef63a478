//! Scrub: verify a stored repository against bit rot, without the key.
//!
//! | what | check | finding |
//! |---|---|---|
//! | `config` | parses, version 1 (the MAC needs the key) | damaged `config` |
//! | key slots | BLAKE3 of the bytes = name; parses | damaged `keys/<id>` |
//! | snapshots | BLAKE3 = name; public part decodes (`parse_snapshot_public`) | damaged `snapshots/<id>`, naming itself |
//! | index files | BLAKE3 = name; decodes; a pack a live index file describes is stored | damaged `index/<id>`; missing `data/…` |
//! | packs | BLAKE3 = name, read in ranges of [`ScrubOptions::range_len`]; trailer parses and its blobs fill the pack; trailer and size equal what live index files say | damaged `data/…` |
//! | references | every blob a snapshot references is held by a stored pack | missing blobs, on the snapshot |
//! | GC records, locks | parse | damaged `gc/<id>`; an unreadable lock is a warning |
//!
//! Every damaged or missing pack names the snapshots that reference a blob it holds (blobs known from
//! its trailer, or else from the index files that describe it). Memory is bounded by the largest
//! snapshot or index file and by the set of blob IDs, never by a pack: packs are hashed range by range
//! on [`ScrubOptions::threads`] threads. Files removed while the scrub runs (by a concurrent prune) are
//! not damage and are skipped.

use std::collections::{HashMap, HashSet};

use brr_core::config::RepoConfig;
use brr_core::gcrecord::GcRecord;
use brr_core::id::{BlobId, Id, IndexId, KeySlotId, PackId, SnapshotId};
use brr_core::index::{IndexFile, IndexedPack};
use brr_core::keyslot::KeySlot;
use brr_core::lockfile::LockFile;
use brr_storage::{Backend, FileInfo, FileKind, StorageError};

use super::{KeylessRepo, PublicSnapshot, public_snapshot};
use crate::check::file_path;
use crate::error::{EngineError, Result};
use crate::parallel::parallel_map;
use crate::progress::Progress;

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

fn found(kind: FileKind, name: &str, problem: Problem, reason: impl Into<String>) -> ScrubFinding {
    ScrubFinding {
        file: file_path(kind, name),
        problem,
        reason: reason.into(),
        snapshots: Vec::new(),
    }
}

/// How one file turned out.
enum Read<T> {
    Good(T),
    Bad(String),
    /// Removed since it was listed.
    Gone,
}

/// Reads a whole small file; storage errors other than "not found" stop the scrub.
fn read_whole(backend: &dyn Backend, kind: FileKind, name: &str) -> Result<Option<Vec<u8>>> {
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
    let stored: HashSet<PackId> = packs.outcomes.iter().map(|o| o.id).collect();
    let mut pack_findings = packs.findings;
    for (id, (desc, file)) in &index.described {
        if stored.contains(id) || records.contains(id) || !packs.names_ok {
            continue;
        }
        // A prune may have rewritten the index and deleted the pack meanwhile: only if the index file
        // that names it is still there and the pack is still absent is it missing.
        let still_named = backend.size(FileKind::Index, &file.to_hex()).is_ok();
        let absent =
            matches!(backend.size(FileKind::Pack, &id.to_hex()), Err(e) if e.is_not_found());
        if still_named && absent {
            let mut f = found(
                FileKind::Pack,
                &id.to_hex(),
                Problem::Missing,
                format!("described by index file {} but not stored", file.short()),
            );
            f.snapshots = Vec::new();
            pack_findings.push((f, desc.trailer.entries.iter().map(|e| e.id).collect()));
        }
    }

    // Which snapshots each damaged or missing pack affects.
    let mut by_blob: HashMap<BlobId, Vec<usize>> = HashMap::new();
    for (i, (_, blobs)) in pack_findings.iter().enumerate() {
        for b in blobs {
            by_blob.entry(*b).or_default().push(i);
        }
    }
    let mut affected: Vec<HashSet<SnapshotId>> = vec![HashSet::new(); pack_findings.len()];
    for s in &snapshots {
        for r in &s.refs {
            if let Some(list) = by_blob.get(r) {
                for &i in list {
                    affected[i].insert(s.id);
                }
            }
        }
    }
    drop(by_blob);

    // Referenced blobs that no stored pack holds (damaged packs' known blobs count as held: the
    // damaged pack is the finding).
    let mut held: HashSet<BlobId> = packs.healthy_blobs;
    for (f, blobs) in &pack_findings {
        if f.problem == Problem::Damaged {
            held.extend(blobs.iter().copied());
        }
    }
    for s in &snapshots {
        let missing: Vec<&BlobId> = s.refs.iter().filter(|b| !held.contains(b)).collect();
        if let Some(first) = missing.first() {
            let mut f = found(
                FileKind::Snapshot,
                &s.id.to_hex(),
                Problem::Missing,
                format!(
                    "{} referenced blob(s) are in no stored pack (e.g. {})",
                    missing.len(),
                    first.short()
                ),
            );
            f.snapshots = vec![s.id];
            snapshot_findings.push(f);
        }
    }

    let mut out: Vec<ScrubFinding> = pack_findings
        .into_iter()
        .zip(affected)
        .map(|((mut f, _), set)| {
            let mut ids: Vec<SnapshotId> = set.into_iter().collect();
            ids.sort();
            f.snapshots = ids;
            f
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    let mut index_findings = index.findings;
    index_findings.sort_by(|a, b| a.file.cmp(&b.file));
    snapshot_findings.sort_by(|a, b| a.file.cmp(&b.file).then(a.reason.cmp(&b.reason)));
    out.extend(index_findings);
    out.extend(snapshot_findings);
    out.extend(scrub_keys(backend, opts, &mut report)?);
    out.extend(records.findings);
    out.extend(scrub_config(backend, &mut report)?);
    report.findings = out;
    report.snapshots = snapshots.len() as u64;
    report.warnings.sort();
    Ok(report)
}

fn scrub_snapshots(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    report: &mut ScrubReport,
    progress: &dyn Progress,
) -> Result<(Vec<PublicSnapshot>, Vec<ScrubFinding>)> {
    let list = backend.list(FileKind::Snapshot)?;
    progress.start("scrubbing snapshots", Some(list.len() as u64), None);
    let results = parallel_map(list, opts.threads, |f| -> Result<(String, u64, Read<_>)> {
        let r = match SnapshotId::from_hex(&f.name) {
            Err(e) => Read::Bad(format!("name is not a snapshot ID: {e}")),
            Ok(id) => match read_whole(backend, FileKind::Snapshot, &f.name)? {
                None => Read::Gone,
                Some(bytes) => {
                    progress.items(1);
                    progress.bytes(bytes.len() as u64);
                    match public_snapshot(id, &bytes) {
                        Ok(s) => Read::Good(s),
                        Err(EngineError::Damaged(m)) => Read::Bad(m),
                        Err(e) => Read::Bad(e.to_string()),
                    }
                }
            },
        };
        Ok((f.name, f.size, r))
    });
    progress.finish();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in results {
        let (name, size, r) = r?;
        match r {
            Read::Good(s) => {
                report.files += 1;
                report.bytes += size;
                good.push(s);
            }
            Read::Bad(reason) => {
                report.files += 1;
                report.bytes += size;
                let mut f = found(FileKind::Snapshot, &name, Problem::Damaged, reason);
                if let Ok(id) = SnapshotId::from_hex(&name) {
                    f.snapshots = vec![id];
                }
                bad.push(f);
            }
            Read::Gone => {}
        }
    }
    Ok((good, bad))
}

/// Index files read: findings, and the packs live files describe (with the file describing each).
#[derive(Default)]
struct IndexState {
    findings: Vec<ScrubFinding>,
    described: HashMap<PackId, (IndexedPack, IndexId)>,
}

fn scrub_index_files(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    report: &mut ScrubReport,
    progress: &dyn Progress,
) -> Result<IndexState> {
    let list = backend.list(FileKind::Index)?;
    progress.start("scrubbing index files", Some(list.len() as u64), None);
    let results = parallel_map(list, opts.threads, |f| -> Result<(FileInfo, Read<_>)> {
        let r = match IndexId::from_hex(&f.name) {
            Err(e) => Read::Bad(format!("name is not an index ID: {e}")),
            Ok(id) => match read_whole(backend, FileKind::Index, &f.name)? {
                None => Read::Gone,
                Some(bytes) => {
                    progress.items(1);
                    progress.bytes(bytes.len() as u64);
                    if IndexId(Id::hash_of(&bytes)) != id {
                        Read::Bad("content does not match its name (bit rot or tampering)".into())
                    } else {
                        match IndexFile::decode(&bytes) {
                            Ok(file) => Read::Good((id, file)),
                            Err(e) => Read::Bad(format!("does not decode: {e}")),
                        }
                    }
                }
            },
        };
        Ok((f, r))
    });
    progress.finish();
    let mut st = IndexState::default();
    let mut files: Vec<(IndexId, IndexFile)> = Vec::new();
    for r in results {
        let (f, r) = r?;
        match r {
            Read::Good(file) => files.push(file),
            Read::Bad(reason) => {
                st.findings
                    .push(found(FileKind::Index, &f.name, Problem::Damaged, reason))
            }
            Read::Gone => continue,
        }
        report.files += 1;
        report.bytes += f.size;
    }
    let superseded: HashSet<IndexId> = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    files.sort_by_key(|(id, _)| *id);
    for (id, file) in files.into_iter().filter(|(id, _)| !superseded.contains(id)) {
        for p in file.packs {
            st.described.entry(p.id).or_insert((p, id));
        }
    }
    Ok(st)
}

/// GC records: findings for unparseable ones, and every condemned pack.
struct Records {
    findings: Vec<ScrubFinding>,
    condemned: HashSet<PackId>,
}

impl Records {
    fn contains(&self, id: &PackId) -> bool {
        self.condemned.contains(id)
    }
}

fn scrub_gc_records(backend: &dyn Backend, report: &mut ScrubReport) -> Result<Records> {
    let mut out = Records {
        findings: Vec::new(),
        condemned: HashSet::new(),
    };
    let mut list = backend.list(FileKind::Gc)?;
    list.sort();
    for f in list {
        let Some(bytes) = read_whole(backend, FileKind::Gc, &f.name)? else {
            continue;
        };
        report.files += 1;
        report.bytes += bytes.len() as u64;
        match GcRecord::decode(&bytes) {
            Ok(r) => out.condemned.extend(r.packs.iter().map(|p| p.id)),
            Err(e) => out.findings.push(found(
                FileKind::Gc,
                &f.name,
                Problem::Damaged,
                format!("does not parse: {e}"),
            )),
        }
    }
    let mut locks = backend.list(FileKind::Lock)?;
    locks.sort();
    for f in locks {
        let Some(bytes) = read_whole(backend, FileKind::Lock, &f.name)? else {
            continue;
        };
        report.files += 1;
        report.bytes += bytes.len() as u64;
        if let Err(e) = LockFile::decode(&bytes) {
            report.warnings.push(format!(
                "{}: unreadable lock: {e}",
                file_path(FileKind::Lock, &f.name)
            ));
        }
    }
    Ok(out)
}

/// What the pack pass found.
struct Packs {
    /// Damaged packs and the blobs known to be in each.
    findings: Vec<(ScrubFinding, Vec<BlobId>)>,
    /// Packs read, valid or not.
    outcomes: Vec<PackOutcome>,
    /// Blobs of intact packs.
    healthy_blobs: HashSet<BlobId>,
    /// Every listed pack name was a pack ID (else "missing" could be wrong and is not reported).
    names_ok: bool,
}

struct PackOutcome {
    id: PackId,
}

fn scrub_packs(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    index: &IndexState,
    report: &mut ScrubReport,
    progress: &dyn Progress,
) -> Result<Packs> {
    let list = backend.list(FileKind::Pack)?;
    report.packs = list.len() as u64;
    let total: u64 = list.iter().map(|f| f.size).sum();
    progress.start("scrubbing packs", Some(list.len() as u64), Some(total));
    let results = parallel_map(list, opts.threads, |f| {
        let r = scrub_pack(backend, opts, index, &f, progress);
        progress.items(1);
        (f, r)
    });
    progress.finish();
    let mut out = Packs {
        findings: Vec::new(),
        outcomes: Vec::new(),
        healthy_blobs: HashSet::new(),
        names_ok: true,
    };
    for (f, r) in results {
        let Ok(id) = PackId::from_hex(&f.name) else {
            out.names_ok = false;
            out.findings.push((
                found(
                    FileKind::Pack,
                    &f.name,
                    Problem::Damaged,
                    "name is not a pack ID",
                ),
                Vec::new(),
            ));
            continue;
        };
        match r? {
            PackRead::Gone => continue,
            PackRead::Good(p) => {
                out.healthy_blobs
                    .extend(p.trailer.entries.iter().map(|e| e.id));
            }
            PackRead::Bad(reason, blobs) => out.findings.push((
                found(FileKind::Pack, &f.name, Problem::Damaged, reason),
                blobs,
            )),
        }
        report.files += 1;
        report.bytes += f.size;
        if !index.described.contains_key(&id) {
            report.warnings.push(format!(
                "{}: no live index file describes it (left by an interrupted backup, or condemned)",
                file_path(FileKind::Pack, &f.name)
            ));
        }
        out.outcomes.push(PackOutcome { id });
    }
    Ok(out)
}

/// How one pack turned out.
enum PackRead {
    Good(IndexedPack),
    /// The reason, and the blob IDs known to be in it.
    Bad(String, Vec<BlobId>),
    /// Removed since it was listed.
    Gone,
}

/// Hashes one pack in ranges and checks its trailer. A bad pack carries the blob IDs known to be in
/// it (from its trailer, else from the index file describing it).
fn scrub_pack(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    index: &IndexState,
    f: &FileInfo,
    progress: &dyn Progress,
) -> Result<PackRead> {
    let Ok(id) = PackId::from_hex(&f.name) else {
        return Ok(PackRead::Bad("name is not a pack ID".into(), Vec::new()));
    };
    let described = index.described.get(&id).map(|(p, _)| p);
    let known = |trailer: Option<&IndexedPack>| -> Vec<BlobId> {
        trailer
            .or(described)
            .map(|p| p.trailer.entries.iter().map(|e| e.id).collect())
            .unwrap_or_default()
    };
    let bad =
        |reason: String, trailer: Option<&IndexedPack>| Ok(PackRead::Bad(reason, known(trailer)));
    let gone = |e: &StorageError| e.is_not_found();

    let mut hasher = blake3::Hasher::new();
    let mut offset = 0u64;
    while offset < f.size {
        let len = opts.range_len.min(f.size - offset);
        match backend.read_range(FileKind::Pack, &f.name, offset, len) {
            Ok(chunk) => {
                hasher.update(&chunk);
                progress.bytes(len);
            }
            Err(e) if gone(&e) => return Ok(PackRead::Gone),
            Err(StorageError::ShortRead { .. }) => {
                return bad(format!("shorter than listed ({} bytes)", f.size), None);
            }
            Err(e) => return Err(e.into()),
        }
        offset += len;
    }
    let trailer = match crate::index::read_pack_trailer(backend, id, f.size) {
        Ok(t) => Some(t),
        Err(EngineError::Storage(e)) if gone(&e) => return Ok(PackRead::Gone),
        Err(EngineError::Storage(e)) if !matches!(e, StorageError::ShortRead { .. }) => {
            return Err(e.into());
        }
        Err(e) => {
            if PackId(Id(*hasher.finalize().as_bytes())) != id {
                return bad(
                    format!("content does not match its name (bit rot or tampering); trailer: {e}"),
                    None,
                );
            }
            return bad(format!("trailer does not decode: {e}"), None);
        }
    };
    if PackId(Id(*hasher.finalize().as_bytes())) != id {
        return bad(
            "content does not match its name (bit rot or tampering)".into(),
            trailer.as_ref(),
        );
    }
    let Some(trailer) = trailer else {
        return bad("trailer unreadable".into(), None);
    };
    if let Some(d) = described
        && (d.pack_len != trailer.pack_len || d.trailer != trailer.trailer)
    {
        return bad(
            format!(
                "trailer or size ({} bytes) differ from the live index file's description ({} bytes)",
                trailer.pack_len, d.pack_len
            ),
            Some(&trailer),
        );
    }
    Ok(PackRead::Good(trailer))
}

fn scrub_keys(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    report: &mut ScrubReport,
) -> Result<Vec<ScrubFinding>> {
    let list = backend.list(FileKind::Key)?;
    let results = parallel_map(list, opts.threads, |f| -> Result<(FileInfo, Read<()>)> {
        let r = match KeySlotId::from_hex(&f.name) {
            Err(e) => Read::Bad(format!("name is not a key slot ID: {e}")),
            Ok(id) => match read_whole(backend, FileKind::Key, &f.name)? {
                None => Read::Gone,
                Some(bytes) if KeySlotId(Id::hash_of(&bytes)) != id => {
                    Read::Bad("content does not match its name (bit rot or tampering)".into())
                }
                Some(bytes) => match KeySlot::decode(&bytes) {
                    Ok(_) => Read::Good(()),
                    Err(e) => Read::Bad(format!("does not parse: {e}")),
                },
            },
        };
        Ok((f, r))
    });
    let mut out = Vec::new();
    for r in results {
        let (f, r) = r?;
        match r {
            Read::Gone => continue,
            Read::Good(()) => {}
            Read::Bad(reason) => out.push(found(FileKind::Key, &f.name, Problem::Damaged, reason)),
        }
        report.files += 1;
        report.bytes += f.size;
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

fn scrub_config(backend: &dyn Backend, report: &mut ScrubReport) -> Result<Option<ScrubFinding>> {
    let name = brr_storage::CONFIG_NAME;
    let Some(bytes) = read_whole(backend, FileKind::Config, name)? else {
        return Ok(Some(found(
            FileKind::Config,
            name,
            Problem::Missing,
            "the repository has no config",
        )));
    };
    report.files += 1;
    report.bytes += bytes.len() as u64;
    Ok(RepoConfig::decode(&bytes).err().map(|e| {
        found(
            FileKind::Config,
            name,
            Problem::Damaged,
            format!("does not parse: {e}"),
        )
    }))
}
