//! Garbage collection without the key: the two-phase protocol of `brr prune`
//! (docs/repository-format.md §16, `crate::prune`) run on a [`KeylessRepo`].
//!
//! Everything prune reads is cleartext (snapshot references, index files, pack trailers, GC records,
//! locks), and repacking copies stored blobs — ciphertext — unchanged. The one thing a server cannot do
//! like `brr` is judge a lock stale by host and PID: the caller passes a [`SessionJudge`] that decides
//! from the lock's name, content and the time the caller last saw it written (backups rewrite their lock
//! every [`crate::lock::REFRESH_INTERVAL`]). Locks judged stale are removed before the GC takes its
//! own exclusive lock (purpose `"gc"`), exactly as `brr prune` removes dead locks of its host; every
//! other lock is a running session that condemned packs wait for.
//!
//! A snapshot that does not match its name or does not parse stops the GC (its references cannot be
//! trusted), as does a referenced blob that no pack holds.

use std::collections::HashSet;
use std::path::PathBuf;

use brr_core::id::{BlobId, PackId};
use brr_core::lockfile::LockFile;
use brr_storage::{FileKind, relative_path};
use chrono::{DateTime, TimeDelta, Utc};

use super::KeylessRepo;
use crate::error::Result;
use crate::progress::Progress;
use crate::prune::{GcTarget, PrunePlan, PruneReport, plan_gc, run_gc};

pub use crate::prune::PruneOptions as GcOptions;

/// The smallest and largest pack size repacking uses, whatever the (unverified) config says.
const PACK_SIZE_BOUNDS: (u32, u32) = (1 << 20, 1 << 30);

/// Whether a lock is stale, from its name, its content (`None`: unreadable) and when it was last seen
/// written (`None`: never).
pub type StalePredicate<'a> =
    &'a (dyn Fn(&str, Option<&LockFile>, Option<DateTime<Utc>>) -> bool + Sync);

/// When a lock counts as ended, for a maintainer that cannot see processes.
pub struct SessionJudge<'a> {
    /// When the caller last saw lock `name` written (`None`: never).
    pub last_written: &'a (dyn Fn(&str) -> Option<DateTime<Utc>> + Sync),
    /// Whether a lock is stale, from its name, its content (`None`: unreadable) and
    /// `last_written`.
    pub is_stale: StalePredicate<'a>,
}

impl std::fmt::Debug for SessionJudge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionJudge")
    }
}

/// A staleness rule: a lock last written at least `timeout` before `now` has ended; a lock never seen
/// written has not (the caller learns its time first). Choose `timeout` as several
/// [`crate::lock::REFRESH_INTERVAL`]s (15 minutes); clients that do not refresh (older versions) need a
/// longer one, at least for exclusive locks, since two collections must never overlap.
pub fn stale_after(
    now: DateTime<Utc>,
    timeout: TimeDelta,
) -> impl Fn(&str, Option<&LockFile>, Option<DateTime<Utc>>) -> bool + Sync {
    move |_, _, seen| seen.is_some_and(|t| now.signed_duration_since(t) >= timeout)
}

/// Last-write times of the locks of a repository stored in a local folder `root`: the files'
/// modification times (a refresh rewrites the file, so its time moves).
pub fn folder_lock_times(root: PathBuf) -> impl Fn(&str) -> Option<DateTime<Utc>> + Sync {
    move |name| {
        let rel = relative_path(FileKind::Lock, name).ok()?;
        let modified = std::fs::metadata(root.join(rel)).ok()?.modified().ok()?;
        Some(DateTime::<Utc>::from(modified))
    }
}

/// Packs a collection must leave alone (see [`collect_garbage_protecting`]).
pub type ProtectedPacks<'a> = &'a (dyn Fn(&PackId) -> bool + Sync);

/// Runs `sweep` under the caller's exclusion (see [`collect_garbage_excluding`]).
pub type Exclusion<'a> = &'a (dyn Fn(&mut dyn FnMut() -> Result<()>) -> Result<()> + Sync);

/// Runs `f` on the GC target of `view`.
fn with_target<T>(
    view: &KeylessRepo,
    judge: &SessionJudge<'_>,
    exclusive: Exclusion<'_>,
    protected: ProtectedPacks<'_>,
    f: impl FnOnce(&GcTarget<'_>) -> Result<T>,
) -> Result<T> {
    let referenced = || -> Result<HashSet<BlobId>> { view.referenced_blobs() };
    let stale = |name: &str, lock: Option<&LockFile>| {
        (judge.is_stale)(name, lock, (judge.last_written)(name))
    };
    let (lo, hi) = PACK_SIZE_BOUNDS;
    f(&GcTarget {
        backend: view.backend_arc(),
        pack_size: view.config().body.pack_size.clamp(lo, hi) as usize,
        referenced: &referenced,
        stale: &stale,
        purpose: "gc",
        exclusive,
        protected,
    })
}

/// Plans a collection without the lock and without changing anything.
pub fn plan_collect(view: &KeylessRepo, opts: &GcOptions) -> Result<PrunePlan> {
    let judge = SessionJudge {
        last_written: &|_| None,
        is_stale: &|_, _, _| false,
    };
    with_target(view, &judge, &|sweep| sweep(), &|_| false, |t| {
        plan_gc(t, opts)
    })
}

/// Collects garbage: removes the locks `judge` finds stale, takes the exclusive lock, sweeps the GC
/// records whose sessions have all ended, marks unused packs (repacking mostly unused ones), and sweeps
/// at once when no session runs. The same protocol and report as `brr prune`.
pub fn collect_garbage(
    view: &KeylessRepo,
    opts: &GcOptions,
    judge: &SessionJudge<'_>,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    collect_garbage_excluding(view, opts, judge, &|sweep| sweep(), progress)
}

/// [`collect_garbage`], with every sweep — re-reading the snapshots, then deleting packs — run inside
/// `exclusive` (e.g. `&|sweep| { let _g = repo_mutex.lock(); sweep() }`). A store that checks each
/// snapshot upload ("every referenced blob is in a stored pack") under the same exclusion never
/// accepts a snapshot whose packs a sweep is about to delete, even from a session it judged ended
/// wrongly; uploads wait only for sweeps, not for repacking.
pub fn collect_garbage_excluding(
    view: &KeylessRepo,
    opts: &GcOptions,
    judge: &SessionJudge<'_>,
    exclusive: Exclusion<'_>,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    collect_garbage_protecting(view, opts, judge, exclusive, &|_| false, progress)
}

/// [`collect_garbage_excluding`] that neither condemns nor repacks the packs `protected` names —
/// a server passes the packs uploaded within a grace period, so that a backup interrupted before its
/// snapshot finds its uploads again when it resumes, even if a collection ran in between. Protected
/// packs that hold no referenced blob are collected by a later run, once no longer protected.
pub fn collect_garbage_protecting(
    view: &KeylessRepo,
    opts: &GcOptions,
    judge: &SessionJudge<'_>,
    exclusive: Exclusion<'_>,
    protected: ProtectedPacks<'_>,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    with_target(view, judge, exclusive, protected, |t| {
        run_gc(t, opts, progress)
    })
}
