//! Backup: turn file trees into a snapshot.
//!
//! The walker ([`walk`], the calling thread) visits the sources depth-first in name order. Files whose size, mtime,
//! ctime, inode and device match the parent snapshot are not read again: their chunk list is reused.
//! Other files go to file-reader threads that chunk them and hand new chunks to the [`saver`]. Each
//! directory becomes a tree blob once its entries are done. When everything is stored and indexed, the
//! snapshot file is written: that single write is the commit. Unreadable entries are reported and skipped.

mod exclude;
mod files;
pub mod saver;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use brr_core::blob::Compression;
use brr_core::id::SnapshotId;
use brr_core::lockfile::LockKind;
use brr_core::snapshot::{Snapshot, SnapshotMeta, decode_snapshot, encode_snapshot};
use brr_storage::FileKind;
use crossbeam_channel::bounded;

pub use exclude::Excludes;
pub use files::open_noatime;

use crate::error::{EngineError, Result};
use crate::index::write_index_file;
use crate::lock;
use crate::parallel::cpu_threads;
use crate::progress::Progress;
use crate::repo::{Repository, host_and_user, now};
use saver::Saver;
use walk::{FileJob, Walker, scan_totals};

/// Which snapshot to compare against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths.
    #[default]
    Auto,
    /// Read every file.
    None,
    /// This snapshot.
    Snapshot(SnapshotId),
}

/// What to back up and how.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Source paths.
    pub paths: Vec<PathBuf>,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// Exclude patterns (globs; with a `/` they match the whole path, otherwise a name).
    pub excludes: Vec<String>,
    /// Stay on the file system of each source.
    pub one_file_system: bool,
    /// Parent snapshot.
    pub parent: ParentChoice,
    /// Host name to record (default: this host).
    pub hostname: Option<String>,
    /// Compression override.
    pub compression: Option<Compression>,
    /// Reader and sealer threads (default: number of CPUs).
    pub threads: Option<usize>,
    /// Snapshot time override (tests, imports).
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// Outcome of a backup.
#[derive(Debug)]
pub struct BackupOutcome {
    /// The committed snapshot.
    pub snapshot: Snapshot,
    /// What the server's blob look-up saved, when the backend answers look-ups (`None` otherwise). Not
    /// part of the snapshot's summary: the repository format does not record it.
    pub lookup: Option<LookupSummary>,
}

/// What asking the server about new chunks saved a backup ([`saver::lookup`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LookupSummary {
    /// Look-up requests made.
    pub requests: u64,
    /// Chunks new to the loaded index that were asked about.
    pub blobs_asked: u64,
    /// Of those, blobs the server already held (in a pack a stored index file lists): neither sealed
    /// nor uploaded.
    pub blobs_present: u64,
    /// Plaintext bytes of those blobs.
    pub bytes_present: u64,
    /// Chunks new to the loaded index sent on without asking (the stage backs off after batches that
    /// found nothing).
    pub blobs_not_asked: u64,
}

/// Runs a backup and commits a snapshot.
pub fn backup(
    repo: &Arc<Repository>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(now);
    if opts.paths.is_empty() {
        return Err(EngineError::invalid(
            "sources",
            "nothing to back up: give at least one path",
        ));
    }
    let mut sources = Vec::new();
    for p in &opts.paths {
        let abs = std::path::absolute(p).map_err(|e| EngineError::io("resolve", p, e))?;
        let abs = normalize(&abs);
        std::fs::symlink_metadata(&abs).map_err(|e| EngineError::io("source", &abs, e))?;
        sources.push(abs);
    }
    sources.sort();
    sources.dedup();
    let excludes = Excludes::new(&opts.excludes)?;
    let (host, user) = host_and_user();
    let hostname = opts.hostname.clone().unwrap_or(host);
    let paths: Vec<String> = sources
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();

    // Register the session before reading the index or the GC records (see brr_core::gcrecord).
    let mut session = lock::acquire(repo.backend_arc(), LockKind::Shared, "backup")?;
    // Rewritten every few minutes so a server can tell this live session from a dead one.
    session.keep_fresh(lock::REFRESH_INTERVAL);
    // Not repo.load_index(): packs condemned by a GC record must not be deduplicated against.
    let mut index = crate::index::Index::load(repo.backend())?;
    let orphans = index.find_orphan_packs(repo.backend())?;
    if !orphans.is_empty() {
        tracing::info!(
            packs = orphans.len(),
            "indexing packs left by an interrupted backup"
        );
        write_index_file(repo.backend(), orphans.clone(), Vec::new())?;
        for p in &orphans {
            index.add_pack(p);
        }
        index.sort();
    }
    let index = Arc::new(index);

    let parent = match &opts.parent {
        ParentChoice::None => None,
        ParentChoice::Snapshot(id) => Some(repo.load_snapshot(*id)?),
        ParentChoice::Auto => find_parent(repo, &hostname, &paths, progress)?,
    };
    let parent_root = match &parent {
        Some(s) => match repo.load_tree(&index, &s.meta.tree) {
            Ok(t) => Some(t),
            Err(e) => {
                progress.warn(&format!(
                    "parent snapshot {} unreadable, reading all files: {e}",
                    s.id.short()
                ));
                None
            }
        },
        None => None,
    };

    let threads = opts.threads.unwrap_or_else(cpu_threads).max(1);
    let saver = Saver::start(
        repo,
        index.clone(),
        opts.compression.unwrap_or(repo.compression()),
        threads,
    )?;
    progress.start("backup", None, None);

    let (job_tx, job_rx) = bounded::<FileJob>(threads * 4);
    let walk_result = std::thread::scope(|s| {
        // Counting the sources walks every directory a second time: only when someone looks.
        if progress.wants_totals() {
            let (sources, excludes) = (&sources, &excludes);
            s.spawn(move || {
                let (files, bytes) = scan_totals(sources, excludes, opts.one_file_system);
                progress.set_totals(Some(files), Some(bytes));
            });
        }
        for _ in 0..threads {
            let rx = job_rx.clone();
            let saver = &saver;
            s.spawn(move || {
                let mut buf = Vec::new();
                for job in rx {
                    let r = files::chunk_file(
                        repo,
                        saver,
                        &job.path,
                        job.size_hint,
                        &mut buf,
                        progress,
                    );
                    let _ = job.reply.send(r);
                }
            });
        }
        drop(job_rx);
        let mut walker = Walker::new(
            repo,
            &index,
            &saver,
            (excludes.clone(), opts.one_file_system),
            job_tx,
            progress,
        );
        let root = walker.walk_root(&sources, parent_root.as_ref());
        drop(walker.jobs);
        root.map(|r| (r, walker.refs, walker.summary))
    });
    let (root, refs, mut summary) = match walk_result {
        Ok(v) => v,
        Err(walk_error) => {
            // If a saver thread failed (storage full, write error), that is the real cause.
            return Err(match saver.finish(repo.backend()) {
                Err(saver_error) => saver_error,
                Ok(_) => walk_error,
            });
        }
    };
    let counters = saver.counters.clone();
    let lookup_counters = saver.lookup_counters.clone();
    saver.finish(repo.backend())?;
    let lookup = lookup_counters.map(|c| LookupSummary {
        requests: c.requests.load(Ordering::Relaxed),
        blobs_asked: c.blobs_asked.load(Ordering::Relaxed),
        blobs_present: c.blobs_present.load(Ordering::Relaxed),
        bytes_present: c.bytes_present.load(Ordering::Relaxed),
        blobs_not_asked: c.blobs_not_asked.load(Ordering::Relaxed),
    });
    progress.finish();

    summary.data_blobs_added = counters.data_blobs.load(Ordering::Relaxed);
    summary.tree_blobs_added = counters.tree_blobs.load(Ordering::Relaxed);
    summary.bytes_added = counters.bytes_added.load(Ordering::Relaxed);
    summary.bytes_stored = counters.bytes_stored.load(Ordering::Relaxed);
    summary.duration_secs = started.elapsed().as_secs_f64();
    let meta = SnapshotMeta {
        time,
        hostname: hostname.clone(),
        username: user,
        paths: paths.clone(),
        tags: opts.tags.clone(),
        tree: root,
        parent: parent.as_ref().map(|p| p.id),
        excludes: opts.excludes.clone(),
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        summary,
    };
    let tag = source_tag(repo, &hostname, &paths);
    let (id, bytes) = encode_snapshot(repo.key(), &meta, tag, refs.into_iter().collect())?;
    repo.backend()
        .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
    session.release()?;
    // The bytes just stored, not read back: one request less on a server.
    let snapshot = decode_snapshot(repo.key(), id, &bytes)?;
    Ok(BackupOutcome { snapshot, lookup })
}

/// The newest snapshot of this host and path set. Candidates come from the cleartext headers (their
/// source tag is this host and path set's), newest first; each is loaded, and so verified, until one's
/// sealed metadata names the same host and paths. Only that snapshot's whole file is read, however many
/// the repository holds; a damaged candidate is skipped with a warning.
fn find_parent(
    repo: &Repository,
    hostname: &str,
    paths: &[String],
    progress: &dyn Progress,
) -> Result<Option<Snapshot>> {
    let tag = hex::encode(source_tag(repo, hostname, paths));
    let mut candidates = Vec::new();
    for (id, header) in repo.snapshot_headers()? {
        match header {
            Ok(h) if h.source == tag => candidates.push(id),
            Ok(_) => {}
            Err(e) => progress.warn(&format!("not considered as the parent: {e}")),
        }
    }
    while let Some(id) = candidates.pop() {
        match repo.load_snapshot(id) {
            Ok(s) if s.meta.hostname == hostname && s.meta.paths == paths => return Ok(Some(s)),
            Ok(_) => {}
            Err(EngineError::Storage(e)) if e.is_not_found() => {}
            Err(e) => progress.warn(&format!(
                "snapshot {} not considered as the parent: {e}",
                id.short()
            )),
        }
    }
    Ok(None)
}

/// The source tag of a host and path set (docs/repository-format.md §3).
fn source_tag(repo: &Repository, hostname: &str, paths: &[String]) -> [u8; 16] {
    repo.key()
        .source_tag(format!("{hostname}\0{}", paths.join("\0")).as_bytes())
}

/// Removes `.` and `..` components lexically (sources are absolute).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lookup;
