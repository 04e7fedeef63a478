//! The sweep exclusion of a repository across every `brrd` node that shares the database.
//!
//! "Check a snapshot's references, then store it" and a GC sweep's "re-read the snapshots, then delete
//! packs" must never interleave (docs/server-repositories.md §4). Within one process a per-repository
//! mutex ([`Maintenance::sweep_exclusion`](super::maint::Maintenance::sweep_exclusion)) orders them;
//! nodes sharing a PostgreSQL database additionally take a session-level advisory lock keyed by the
//! repository, on a connection taken out of the pool for the purpose. Releasing it is closing that
//! connection: PostgreSQL drops a session's advisory locks when the session ends, so a guard dropped on
//! any path — error, panic, cancelled request — can never leave the lock behind in a pooled
//! connection. SQLite is a file of one node, so the mutex is the whole exclusion there.
//!
//! Order is always the process mutex first, then the database lock, so two holders never wait on each
//! other in opposite orders.

use sqlx::{AnyConnection, Connection};
use tokio::runtime::Handle;
use tokio::sync::OwnedMutexGuard;

use super::Service;
use crate::db::Engine;
use crate::error::Result;

/// Namespace mixed into every advisory-lock key, so brrd's keys do not meet another application's.
const KEY_DOMAIN: &[u8] = b"brrd.repo-sweep-exclusion.v1:";

/// Held while a snapshot is checked and stored, or while a GC sweep runs; released on drop.
#[derive(Debug)]
pub struct SweepGuard {
    /// Released last (fields drop in order): the database lock goes first.
    shared: Option<AnyConnection>,
    _local: OwnedMutexGuard<()>,
}

impl Drop for SweepGuard {
    fn drop(&mut self) {
        // Dropping the detached connection closes its socket; the server then ends the session and
        // with it the advisory lock. A graceful close is attempted when a runtime is at hand.
        if let Some(conn) = self.shared.take()
            && let Ok(handle) = Handle::try_current()
        {
            handle.spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}

/// The advisory-lock key of a repository: the first 8 bytes of a domain-separated BLAKE3 hash.
/// Distinct repositories colliding would only make them wait for each other, never break anything.
pub fn advisory_key(repo_id: &str) -> i64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(KEY_DOMAIN);
    hasher.update(repo_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    i64::from_le_bytes(first)
}

impl Service {
    /// Waits for and takes the sweep exclusion of a repository (async side).
    pub async fn sweep_exclusion(&self, repo_id: &str) -> Result<SweepGuard> {
        let local = self.maintenance.sweep_exclusion(repo_id).await;
        let shared = match self.db.engine {
            Engine::Sqlite => None,
            Engine::Postgres => {
                let mut conn = self.db.pool.acquire().await?.detach();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(advisory_key(repo_id))
                    .execute(&mut conn)
                    .await?;
                Some(conn)
            }
        };
        Ok(SweepGuard {
            shared,
            _local: local,
        })
    }

    /// The same exclusion for a blocking thread of the runtime (inside a GC's sweep).
    pub fn sweep_exclusion_blocking(&self, handle: &Handle, repo_id: &str) -> Result<SweepGuard> {
        handle.block_on(self.sweep_exclusion(repo_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_differ_per_repository() {
        assert_eq!(advisory_key("a"), advisory_key("a"));
        assert_ne!(advisory_key("a"), advisory_key("b"));
    }
}
