//! Repository locks.
//!
//! | operation | lock | why |
//! |---|---|---|
//! | backup | shared | registers the session so GC waits for it (see `brr_core::gcrecord`) |
//! | prune | exclusive | one prune at a time; never blocks or waits for backups |
//! | everything else | none | read-only, or idempotent content-addressed writes |
//!
//! A lock is a file `locks/<random id>`. It is removed when the holder finishes (also on error, through
//! `Drop`). A lock left by a killed process on *this* host is stale when its PID no longer runs, and is
//! removed automatically; locks of other hosts are only removed by `brr unlock`, because no clock can
//! prove another machine's process gone.
//!
//! **Refreshing.** A holder rewrites its lock file with the same bytes every [`REFRESH_INTERVAL`]
//! ([`RepoLock::keep_fresh`]) until it releases it, so a server that sees writes (but cannot see
//! processes) tells a live session from a dead one by the time of the last write. The content never
//! changes, so readers of any version agree on it. A lock found removed is not written again: whoever
//! removed it judged the session ended.
//!
//! Staleness is a judgement passed in ([`StaleJudge`]): brr on a machine uses [`same_host_dead`]; a
//! keyless maintainer (a server) supplies its own, based on when it last saw each lock written.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use brr_core::lockfile::{LockFile, LockKind};
use brr_storage::{Backend, FileKind};
use crossbeam_channel::{RecvTimeoutError, Sender};
use rand::RngCore;

use crate::error::{EngineError, Result};
use crate::repo::{host_and_user, now};

/// How often a held lock is rewritten by [`RepoLock::keep_fresh`] (2 minutes). A server should count a
/// session as ended only after several intervals without a write (docs/repository-format.md §15).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(120);

/// Decides whether a lock is stale from its name and parsed content (`None`: unreadable).
pub type StaleJudge<'a> = &'a (dyn Fn(&str, Option<&LockFile>) -> bool + Sync);

/// A held lock; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    backend: Arc<dyn Backend>,
    name: String,
    bytes: Vec<u8>,
    released: bool,
    refresher: Option<Refresher>,
}

#[derive(Debug)]
struct Refresher {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl RepoLock {
    /// The lock file's name (the session ID GC records refer to).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rewrites the lock file (same bytes) every `every` on a background thread until the lock is
    /// released or dropped. Stops by itself if the file was removed by someone else.
    pub fn keep_fresh(&mut self, every: Duration) {
        self.stop_refreshing();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let backend = self.backend.clone();
        let name = self.name.clone();
        let bytes = self.bytes.clone();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if !refresh(backend.as_ref(), &name, &bytes) {
                    break;
                }
            }
        });
        self.refresher = Some(Refresher { stop, thread });
    }

    fn stop_refreshing(&mut self) {
        if let Some(r) = self.refresher.take() {
            drop(r.stop);
            let _ = r.thread.join();
        }
    }

    /// Releases explicitly, reporting errors.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.stop_refreshing();
        match self.backend.remove(FileKind::Lock, &self.name) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// One refresh: rewrites the lock if it still exists. Returns whether to go on.
fn refresh(backend: &dyn Backend, name: &str, bytes: &[u8]) -> bool {
    match backend.size(FileKind::Lock, name) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            tracing::warn!(
                lock = name,
                "lock removed by someone else; no longer refreshed"
            );
            return false;
        }
        // A passing storage failure: try again at the next interval.
        Err(e) => {
            tracing::warn!(lock = name, error = %e, "cannot refresh lock");
            return true;
        }
    }
    if let Err(e) = backend.write(FileKind::Lock, name, bytes) {
        tracing::warn!(lock = name, error = %e, "cannot refresh lock");
    }
    true
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        self.stop_refreshing();
        if !self.released {
            let _ = self.backend.remove(FileKind::Lock, &self.name);
        }
    }
}

/// A lock file read from the repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LockInfo {
    /// File name.
    pub name: String,
    /// Content, if readable.
    pub lock: Option<LockFile>,
    /// Whether it is provably stale (same host, process gone).
    pub stale: bool,
}

/// Lists all locks, judging staleness by host and PID ([`same_host_dead`]).
pub fn list_locks(backend: &dyn Backend) -> Result<Vec<LockInfo>> {
    let (host, _) = host_and_user();
    list_locks_judged(backend, &|_, l| l.is_some_and(|l| same_host_dead(&host, l)))
}

/// The judgement of brr on a machine: a lock is stale if it was taken on `host` (this machine) by a
/// process that no longer runs. Locks of other hosts are never stale to it.
pub fn same_host_dead(host: &str, lock: &LockFile) -> bool {
    lock.hostname == host && !process_alive(lock.pid)
}

/// Lists all locks, judging staleness with `stale`.
pub fn list_locks_judged(backend: &dyn Backend, stale: StaleJudge<'_>) -> Result<Vec<LockInfo>> {
    let mut out = Vec::new();
    for f in backend.list(FileKind::Lock)? {
        let lock = match backend.read(FileKind::Lock, &f.name) {
            Ok(b) => LockFile::decode(&b).ok(),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let stale = stale(&f.name, lock.as_ref());
        out.push(LockInfo {
            name: f.name,
            lock,
            stale,
        });
    }
    Ok(out)
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid as u32 == std::process::id() {
        return true;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// Removes stale locks of this host; returns how many.
pub fn remove_stale_locks(backend: &dyn Backend) -> Result<usize> {
    let (host, _) = host_and_user();
    remove_stale_locks_judged(backend, &|_, l| l.is_some_and(|l| same_host_dead(&host, l)))
}

/// Removes the locks `stale` judges stale; returns how many.
pub fn remove_stale_locks_judged(backend: &dyn Backend, stale: StaleJudge<'_>) -> Result<usize> {
    let mut n = 0;
    for l in list_locks_judged(backend, stale)? {
        if l.stale {
            let _ = backend.remove(FileKind::Lock, &l.name);
            n += 1;
        }
    }
    Ok(n)
}

/// Removes every lock (`brr unlock --all`) or only stale ones; returns the names removed.
pub fn unlock(backend: &dyn Backend, all: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for l in list_locks(backend)? {
        if all || l.stale {
            match backend.remove(FileKind::Lock, &l.name) {
                Ok(()) => removed.push(l.name),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(removed)
}

fn describe(l: &LockInfo) -> String {
    match &l.lock {
        Some(f) => format!(
            "{} lock by {}@{} pid {} ({}) since {}",
            match f.kind {
                LockKind::Shared => "shared",
                LockKind::Exclusive => "exclusive",
            },
            f.username,
            f.hostname,
            f.pid,
            f.purpose,
            f.created.to_rfc3339()
        ),
        None => format!("unreadable lock {}", l.name),
    }
}

/// Takes a lock. An exclusive lock fails if another exclusive lock is held (stale ones of this host are
/// cleared first); shared locks never conflict.
pub fn acquire(backend: Arc<dyn Backend>, kind: LockKind, purpose: &str) -> Result<RepoLock> {
    let (host, _) = host_and_user();
    acquire_judged(backend, kind, purpose, &|_, l| {
        l.is_some_and(|l| same_host_dead(&host, l))
    })
}

/// Takes a lock like [`acquire`], with locks judged stale by `stale` (these are removed first when the
/// lock is exclusive).
pub fn acquire_judged(
    backend: Arc<dyn Backend>,
    kind: LockKind,
    purpose: &str,
    stale: StaleJudge<'_>,
) -> Result<RepoLock> {
    let (hostname, username) = host_and_user();
    let file = LockFile {
        kind,
        purpose: purpose.into(),
        hostname,
        pid: std::process::id(),
        username,
        created: now(),
    };
    let mut rnd = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut rnd);
    let name = hex::encode(rnd);
    if kind == LockKind::Exclusive {
        remove_stale_locks_judged(backend.as_ref(), stale)?;
        check_exclusive(backend.as_ref(), None, stale)?;
    }
    let bytes = file.encode()?;
    backend.write(FileKind::Lock, &name, &bytes)?;
    let lock = RepoLock {
        backend: backend.clone(),
        name,
        bytes,
        released: false,
        refresher: None,
    };
    if kind == LockKind::Exclusive {
        // Two prunes that raced past the first check: the one with the larger name backs off.
        check_exclusive(backend.as_ref(), Some(&lock.name), stale)?;
    }
    Ok(lock)
}

fn check_exclusive(backend: &dyn Backend, mine: Option<&str>, stale: StaleJudge<'_>) -> Result<()> {
    for l in list_locks_judged(backend, stale)? {
        if Some(l.name.as_str()) == mine {
            continue;
        }
        let exclusive = l
            .lock
            .as_ref()
            .is_some_and(|f| f.kind == LockKind::Exclusive);
        if exclusive && !l.stale && mine.is_none_or(|m| l.name.as_str() < m) {
            return Err(EngineError::Locked {
                holder: describe(&l),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use brr_storage::{CountingBackend, OpendalBackend};

    fn memory() -> Arc<CountingBackend<OpendalBackend>> {
        Arc::new(CountingBackend::new(OpendalBackend::memory().unwrap()))
    }

    #[test]
    fn a_fresh_lock_is_rewritten_with_the_same_bytes_until_released() {
        let backend = memory();
        let mut lock = acquire(backend.clone(), LockKind::Shared, "backup").unwrap();
        let name = lock.name().to_string();
        let original = backend.read(FileKind::Lock, &name).unwrap();
        let taken = backend.counts().writes;
        lock.keep_fresh(Duration::from_millis(1));
        // Wait for a few refreshes (bounded, so a broken refresher fails instead of hanging).
        for _ in 0..100_000 {
            if backend.counts().writes >= taken + 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(backend.counts().writes >= taken + 3, "refreshed");
        assert_eq!(backend.read(FileKind::Lock, &name).unwrap(), original);
        lock.release().unwrap();
        let after = backend.counts().writes;
        assert!(backend.list(FileKind::Lock).unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            backend.counts().writes,
            after,
            "the refresher stopped with the release"
        );
    }

    #[test]
    fn a_lock_removed_by_someone_else_is_not_written_again() {
        let backend = memory();
        let lock = acquire(backend.clone(), LockKind::Shared, "backup").unwrap();
        let name = lock.name().to_string();
        assert!(refresh(backend.as_ref(), &name, &lock.bytes));
        backend.remove(FileKind::Lock, &name).unwrap();
        let writes = backend.counts().writes;
        assert!(
            !refresh(backend.as_ref(), &name, &lock.bytes),
            "stop refreshing"
        );
        assert_eq!(backend.counts().writes, writes);
        assert!(backend.list(FileKind::Lock).unwrap().is_empty());
        drop(lock);
    }

    #[test]
    fn exclusive_lock_removes_what_the_judge_finds_stale_and_respects_the_rest() {
        let backend = memory();
        let other = LockFile {
            kind: LockKind::Exclusive,
            purpose: "gc".into(),
            hostname: "elsewhere".into(),
            pid: 7,
            username: "u".into(),
            created: now(),
        };
        backend
            .write(FileKind::Lock, "aaaa", &other.encode().unwrap())
            .unwrap();
        // The machine's own rule cannot judge another host's lock: it blocks.
        let e = acquire(backend.clone(), LockKind::Exclusive, "prune").unwrap_err();
        assert_eq!(e.code(), "BRR-E007");
        // A judge that knows it ended removes it.
        let judge = |name: &str, l: Option<&LockFile>| name == "aaaa" && l.is_some();
        let listed = list_locks_judged(backend.as_ref(), &judge).unwrap();
        assert!(listed.len() == 1 && listed[0].stale);
        let mine = acquire_judged(backend.clone(), LockKind::Exclusive, "gc", &judge).unwrap();
        let names: Vec<String> = backend
            .list(FileKind::Lock)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, vec![mine.name().to_string()]);
    }
}
