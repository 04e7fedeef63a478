//! `brr prune`: reclaim the space of forgotten snapshots with two-phase garbage collection
//! (`brr_core::gcrecord`), never deleting anything a running backup may still reference.
//!
//! One run, under the exclusive lock (stale locks of this host are removed when it is taken):
//!
//! | step | what | writes |
//! |---|---|---|
//! | 1. sweep | every GC record whose listed sessions are all gone (an unsealed record left by a crashed prune is sealed first with the sessions running now) | see the `sweep` module |
//! | 2. plan | referenced blobs = union of all snapshots' `refs`; packs with none → condemn; packs whose unused bytes exceed `max_unused_fraction` → repack; unindexed packs no record names → condemn, or adopt if they hold a referenced blob found nowhere else | nothing |
//! | 3. repack | copy the live blobs' stored bytes (ciphertext, no decryption; key IDs kept) into new packs, then one index file for them | new packs, one index file |
//! | 4. mark | GC record with the condemned and repacked packs (unsealed), list the locks, rewrite the record sealed with every other lock's name | `gc/<random>` twice |
//! | 5. index | one index file with every pack read in step 2 minus the condemned ones, plus adopted and new packs, superseding every index file read in step 2 and step 3's file; then delete those | one index file, removals |
//! | 6. sweep now | if no other session was listed, the new record is swept in the same run | see the `sweep` module |
//!
//! Backups take their shared lock before they read `gc/` and the index, and never deduplicate against
//! condemned packs; a backup that is not listed in a record therefore saw it. A listed backup may have
//! deduplicated against a pack condemned under it; the sweep waits for it and keeps such packs.
//! No clock or access time is trusted anywhere. Every step leaves a repository `check` accepts if the
//! process dies right after it (new packs are indexed before anything is condemned; a new index file
//! is written before the files it supersedes are deleted; packs are deleted only once no live index
//! names them).

mod plan;
mod sweep;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use brr_core::blob::BlobType;
use brr_core::gcrecord::{CondemnedPack, GC_RECORD_VERSION, GcRecord};
use brr_core::id::{BlobId, Id, IndexId, PackId};
use brr_core::index::IndexedPack;
use brr_core::lockfile::{LockFile, LockKind};
use brr_core::pack::PackWriter;
use brr_storage::{Backend, FileKind};
use rand::RngCore;

use crate::error::{EngineError, Result};
use crate::index::write_index_file;
use crate::lock::{self, StaleJudge};
use crate::parallel::cpu_threads;
use crate::progress::Progress;
use crate::repo::{Repository, host_and_user, now};
use plan::{PackPlan, condemned, plan_packs, read_records, summarize};

/// How to prune.
#[derive(Debug, Clone, Copy)]
pub struct PruneOptions {
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// Repack packs whose unused bytes exceed this fraction of their blob bytes (0.0–1.0; default 0.25).
    pub max_unused_fraction: f64,
    /// Threads for reading pack trailers (default: number of CPUs).
    pub threads: Option<usize>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused_fraction: 0.25,
            threads: None,
        }
    }
}

/// What a prune will do (and, for a real run, what it planned).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PrunePlan {
    /// Pack files in storage.
    pub packs_total: u64,
    /// Packs holding no referenced blob (indexed or not), to be deleted.
    pub packs_to_condemn: Vec<PackId>,
    /// Packs with too much unused space: live blobs copied out, then deleted.
    pub packs_to_repack: Vec<PackId>,
    /// Blobs copied by repacking.
    pub blobs_to_copy: u64,
    /// Estimated bytes freed (condemned and repacked packs minus the bytes copied).
    pub bytes_to_free: u64,
    /// Packs in storage that no index file describes and no GC record names.
    pub unindexed_packs: u64,
    /// GC records that can be swept now.
    pub gc_records_to_sweep: Vec<String>,
    /// GC records still waiting for backup sessions to end.
    pub gc_records_waiting: Vec<String>,
}

/// What a prune did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PruneReport {
    /// The plan of this run.
    pub plan: PrunePlan,
    /// Packs deleted by sweeps.
    pub packs_deleted: u64,
    /// Bytes of those packs.
    pub bytes_freed: u64,
    /// New packs written by repacking.
    pub packs_written: u64,
    /// Condemned packs a sweep kept because a snapshot committed meanwhile references them.
    pub packs_kept_referenced: u64,
    /// Index files written.
    pub index_files_rewritten: u64,
}

fn validate(opts: &PruneOptions) -> Result<()> {
    if !(0.0..=1.0).contains(&opts.max_unused_fraction) {
        return Err(EngineError::invalid(
            "max unused fraction",
            format!("{} is not between 0 and 1", opts.max_unused_fraction),
        ));
    }
    Ok(())
}

/// What the two-phase GC needs from a repository, keyed ([`prune`]) or not
/// (`crate::keyless::gc`): storage, the target pack size, the blobs the snapshots reference, and how
/// to judge locks stale. The key is needed by none of it.
pub(crate) struct GcTarget<'a> {
    /// The repository's storage.
    pub backend: Arc<dyn Backend>,
    /// Target size of packs written by repacking.
    pub pack_size: usize,
    /// The union of every stored snapshot's references, read now; fails on a snapshot that cannot be
    /// trusted (its references might be wrong).
    pub referenced: &'a (dyn Fn() -> Result<HashSet<BlobId>> + Sync),
    /// Which locks count as ended (removed before the exclusive lock is taken).
    pub stale: StaleJudge<'a>,
    /// The purpose written into the exclusive lock.
    pub purpose: &'static str,
    /// Runs a sweep (re-read snapshots, delete packs) under the caller's exclusion, so that a store
    /// which checks snapshot uploads can serialize those checks with sweeps. Keyed: runs it directly.
    pub exclusive: SweepExclusion<'a>,
    /// Packs this run must neither condemn nor repack (a server protects recently uploaded packs, so
    /// an interrupted backup that resumes later still finds its uploads). Keyed: none.
    pub protected: &'a (dyn Fn(&PackId) -> bool + Sync),
}

/// Runs the given sweep under an exclusion of the caller's and returns its result.
pub(crate) type SweepExclusion<'a> =
    &'a (dyn Fn(&mut dyn FnMut() -> Result<()>) -> Result<()> + Sync);

impl GcTarget<'_> {
    /// The storage.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }
}

/// Runs `f` on the GC target of a keyed repository: references from verified snapshots, locks judged
/// stale by host and PID.
fn with_keyed<T>(repo: &Repository, f: impl FnOnce(&GcTarget<'_>) -> Result<T>) -> Result<T> {
    let (host, _) = host_and_user();
    let referenced = || -> Result<HashSet<BlobId>> {
        Ok(repo
            .list_snapshots()?
            .iter()
            .flat_map(|s| s.refs.iter().copied())
            .collect())
    };
    let stale = |_: &str, l: Option<&LockFile>| l.is_some_and(|l| lock::same_host_dead(&host, l));
    f(&GcTarget {
        backend: repo.backend_arc(),
        pack_size: repo.config().body.pack_size as usize,
        referenced: &referenced,
        stale: &stale,
        purpose: "prune",
        exclusive: &|sweep| sweep(),
        protected: &|_| false,
    })
}

/// Plans a prune without the lock and without changing anything (`--dry-run`). The real run plans
/// again after sweeping, so its numbers can differ when records are swept first.
pub fn plan_prune(repo: &Repository, opts: &PruneOptions) -> Result<PrunePlan> {
    with_keyed(repo, |t| plan_gc(t, opts))
}

/// Prunes: sweeps what can be swept, marks what is unused, and sweeps that too when no backup runs.
pub fn prune(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    with_keyed(repo, |t| run_gc(t, opts, progress))
}

/// [`plan_prune`] on any GC target.
pub(crate) fn plan_gc(t: &GcTarget<'_>, opts: &PruneOptions) -> Result<PrunePlan> {
    validate(opts)?;
    let threads = opts.threads.unwrap_or_else(cpu_threads).max(1);
    let records = read_records(t, None)?;
    let packs = plan_packs(t, opts, &records.records, threads)?;
    Ok(summarize(&records, &packs))
}

/// [`prune`] on any GC target.
pub(crate) fn run_gc(
    t: &GcTarget<'_>,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    validate(opts)?;
    if opts.dry_run {
        return Ok(PruneReport {
            plan: plan_gc(t, opts)?,
            ..Default::default()
        });
    }
    let threads = opts.threads.unwrap_or_else(cpu_threads).max(1);
    // Taking the exclusive lock also removes the locks judged stale.
    let mut session =
        lock::acquire_judged(t.backend.clone(), LockKind::Exclusive, t.purpose, t.stale)?;
    session.keep_fresh(lock::REFRESH_INTERVAL);
    let me = session.name().to_string();
    let mut report = PruneReport::default();

    progress.start("sweeping", None, None);
    let before = read_records(t, Some(&me))?;
    for (name, record) in &before.records {
        // A record left unsealed by a prune that died is sealed with the sessions running now: a backup
        // not running now either saw the record or committed before the sweep reads the snapshots.
        let record = if record.sealed {
            record.clone()
        } else {
            seal(t, name, record.clone(), &before.other_sessions)?
        };
        if before.eligible.contains(name) {
            (t.exclusive)(&mut || sweep::sweep(t, name, &record, &mut report))?;
        }
    }
    progress.finish();

    progress.start("planning", None, None);
    let records = read_records(t, Some(&me))?;
    let packs = plan_packs(t, opts, &records.records, threads)?;
    progress.finish();
    report.plan = summarize(&before, &packs);
    report.plan.gc_records_waiting = records.waiting.clone();

    if let Some((name, record)) = mark(t, packs, &me, &mut report, progress)? {
        if record.sessions.is_empty() {
            progress.start("sweeping", None, None);
            (t.exclusive)(&mut || sweep::sweep(t, &name, &record, &mut report))?;
            progress.finish();
        } else {
            report.plan.gc_records_waiting.push(name);
        }
    }
    session.release()?;
    Ok(report)
}

fn random_name() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn write_record(t: &GcTarget<'_>, name: &str, record: &GcRecord) -> Result<()> {
    t.backend().write(FileKind::Gc, name, &record.encode()?)?;
    Ok(())
}

/// Seals `record` with `sessions` and stores it.
fn seal(
    t: &GcTarget<'_>,
    name: &str,
    mut record: GcRecord,
    sessions: &[String],
) -> Result<GcRecord> {
    record.sealed = true;
    record.sessions = sessions.to_vec();
    write_record(t, name, &record)?;
    Ok(record)
}

/// Repacks, writes and seals the GC record, rewrites the index. Returns the new record, if any.
fn mark(
    t: &GcTarget<'_>,
    plan: PackPlan,
    me: &str,
    report: &mut PruneReport,
    progress: &dyn Progress,
) -> Result<Option<(String, GcRecord)>> {
    let backend = t.backend();
    let (new_packs, repacked, new_index) = repack(t, &plan, report, progress)?;
    let mut doomed: Vec<CondemnedPack> = plan.condemn.clone();
    doomed.extend(repacked.iter().map(condemned));
    if doomed.is_empty() && plan.adopt.is_empty() && new_packs.is_empty() {
        return Ok(None);
    }

    let mut record = None;
    if !doomed.is_empty() {
        let name = random_name();
        let unsealed = GcRecord {
            version: GC_RECORD_VERSION,
            created: now(),
            sealed: false,
            sessions: Vec::new(),
            packs: doomed,
        };
        write_record(t, &name, &unsealed)?;
        // Listed only now that the record is stored: any backup that starts later sees it.
        let sessions: Vec<String> = lock::list_locks(backend)?
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n != me)
            .collect();
        let sealed = seal(t, &name, unsealed, &sessions)?;
        record = Some((name, sealed));
    }

    // One index file for everything that stays, superseding everything read.
    let gone: std::collections::HashSet<PackId> = record
        .as_ref()
        .map(|(_, r)| r.packs.iter().map(|p| p.id).collect())
        .unwrap_or_default();
    let mut packs: Vec<IndexedPack> = plan
        .live_packs
        .into_iter()
        .filter(|p| !gone.contains(&p.id))
        .collect();
    packs.extend(plan.adopt);
    packs.extend(new_packs);
    let mut supersedes: Vec<IndexId> = plan.index_files;
    supersedes.extend(new_index);
    write_index_file(backend, packs, supersedes.clone())?;
    report.index_files_rewritten += 1;
    for old in supersedes {
        match backend.remove(FileKind::Index, &old.to_hex()) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(record)
}

/// Copies the live blobs of the packs to repack into new packs and indexes them. Returns the new
/// packs, the old packs that were copied (now safe to condemn) and the index file written.
fn repack(
    t: &GcTarget<'_>,
    plan: &PackPlan,
    report: &mut PruneReport,
    progress: &dyn Progress,
) -> Result<(Vec<IndexedPack>, Vec<IndexedPack>, Option<IndexId>)> {
    if plan.repack.is_empty() {
        return Ok((Vec::new(), Vec::new(), None));
    }
    let backend = t.backend();
    let pack_size = t.pack_size;
    let total: u64 = plan.repack.iter().map(|r| r.pack.pack_len).sum();
    progress.start("repacking", Some(plan.repack.len() as u64), Some(total));
    let mut written: Vec<IndexedPack> = Vec::new();
    let mut done: Vec<IndexedPack> = Vec::new();
    let mut data = PackWriter::with_capacity(pack_size);
    let mut trees = PackWriter::with_capacity(1 << 20);
    let flush = |w: PackWriter, written: &mut Vec<IndexedPack>| -> Result<()> {
        let p = w.finish();
        backend.write(FileKind::Pack, &p.id.to_hex(), &p.bytes)?;
        written.push(IndexedPack {
            id: p.id,
            pack_len: p.bytes.len() as u64,
            trailer: p.trailer,
        });
        Ok(())
    };
    for r in &plan.repack {
        if r.copy.is_empty() {
            // Every live blob of it is kept elsewhere: nothing to read.
            progress.items(1);
            done.push(r.pack.clone());
            continue;
        }
        let name = r.pack.id.to_hex();
        let bytes = backend.read(FileKind::Pack, &name)?;
        progress.items(1);
        progress.bytes(bytes.len() as u64);
        if PackId(Id::hash_of(&bytes)) != r.pack.id || bytes.len() as u64 != r.pack.pack_len {
            // Copying from a damaged pack could spread the damage; leave it for `check`.
            progress.warn(&format!(
                "pack {name} does not match its name; not repacked (run `brr check --read-data`)"
            ));
            continue;
        }
        for &i in &r.copy {
            let e = &r.pack.trailer.entries[i];
            let key = r.pack.trailer.key_of(e).ok_or_else(|| {
                EngineError::Damaged(format!("pack {name}: entry {i} names no key"))
            })?;
            let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let w = match e.blob_type {
                BlobType::Data => &mut data,
                BlobType::Tree => &mut trees,
            };
            w.add(e.blob_type, e.id, key, stored);
            if w.data_len() >= pack_size {
                let full = std::mem::replace(w, PackWriter::with_capacity(pack_size));
                flush(full, &mut written)?;
            }
        }
        done.push(r.pack.clone());
    }
    for w in [data, trees] {
        if !w.is_empty() {
            flush(w, &mut written)?;
        }
    }
    progress.finish();
    report.packs_written += written.len() as u64;
    // The copies are indexed before anything is condemned.
    let index = if written.is_empty() {
        None
    } else {
        report.index_files_rewritten += 1;
        Some(write_index_file(backend, written.clone(), Vec::new())?)
    };
    Ok((written, done, index))
}
