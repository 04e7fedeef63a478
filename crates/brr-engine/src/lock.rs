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

use std::sync::Arc;

use brr_core::lockfile::{LockFile, LockKind};
use brr_storage::{Backend, FileKind};
use rand::RngCore;

use crate::error::{EngineError, Result};
use crate::repo::{host_and_user, now};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    backend: Arc<dyn Backend>,
    name: String,
    released: bool,
}

impl RepoLock {
    /// The lock file's name (the session ID GC records refer to).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Releases explicitly, reporting errors.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        match self.backend.remove(FileKind::Lock, &self.name) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
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

/// Lists all locks.
pub fn list_locks(backend: &dyn Backend) -> Result<Vec<LockInfo>> {
    let (host, _) = host_and_user();
    let mut out = Vec::new();
    for f in backend.list(FileKind::Lock)? {
        let lock = match backend.read(FileKind::Lock, &f.name) {
            Ok(b) => LockFile::decode(&b).ok(),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let stale = lock
            .as_ref()
            .is_some_and(|l| l.hostname == host && !process_alive(l.pid));
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
    let mut n = 0;
    for l in list_locks(backend)? {
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
        remove_stale_locks(backend.as_ref())?;
        check_exclusive(backend.as_ref(), None)?;
    }
    backend.write(FileKind::Lock, &name, &file.encode()?)?;
    let lock = RepoLock {
        backend: backend.clone(),
        name,
        released: false,
    };
    if kind == LockKind::Exclusive {
        // Two prunes that raced past the first check: the one with the larger name backs off.
        check_exclusive(backend.as_ref(), Some(&lock.name))?;
    }
    Ok(lock)
}

fn check_exclusive(backend: &dyn Backend, mine: Option<&str>) -> Result<()> {
    for l in list_locks(backend)? {
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
