//! What every maintenance job shares: the per-repository exclusions, the counters exposed as metrics,
//! and [`RecordedBackend`], the store as maintenance sees it — every file it writes is recorded in the
//! database after it is stored, every file it removes is unrecorded before it is removed, so the
//! database only ever lags behind the store (docs/server-repositories.md §1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use brr_storage::{Backend, FileInfo, FileKind, StorageError};
use tokio::runtime::Handle;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::checks::{Parsed, kind_name, parse};
use super::{RepoRow, Service};
use crate::error::{Error, Result};

/// The actor of everything the server does on its own (audit, uploader of files it writes).
pub const SYSTEM: &str = "system";

type Locks = Mutex<HashMap<String, Arc<AsyncMutex<()>>>>;

/// Per-repository exclusions and maintenance counters, shared by the HTTP handlers, the scheduler and
/// the command line.
#[derive(Debug, Default)]
pub struct Maintenance {
    /// "Check a snapshot's references, then store it" against a GC sweep.
    sweeps: Locks,
    /// One maintenance job per repository at a time.
    jobs: Locks,
    /// Counters.
    pub counters: Counters,
    /// Retention runs started after snapshot uploads and not yet finished.
    pending: Pending,
}

/// A count of background runs, waitable.
#[derive(Debug)]
struct Pending(tokio::sync::watch::Sender<u64>);

impl Default for Pending {
    fn default() -> Self {
        Pending(tokio::sync::watch::channel(0).0)
    }
}

/// Counts one background run until dropped.
#[derive(Debug)]
pub struct PendingRun(tokio::sync::watch::Sender<u64>);

impl Drop for PendingRun {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Maintenance counters (`/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Garbage collections that ended without error.
    pub gc_runs: AtomicU64,
    /// Bytes of packs deleted by garbage collection.
    pub gc_reclaimed_bytes: AtomicU64,
    /// Snapshots deleted by retention.
    pub retention_deletions: AtomicU64,
    /// Snapshots marked for deletion after the delay (append-only).
    pub retention_marks: AtomicU64,
    /// Retention runs that ended without error.
    pub retention_runs: AtomicU64,
    /// Scheduled scrubs.
    pub scheduled_verifications: AtomicU64,
    /// Maintenance runs (any job) that failed.
    pub failed_runs: AtomicU64,
}

fn lock_of(map: &Locks, repo_id: &str) -> Arc<AsyncMutex<()>> {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    m.entry(repo_id.to_string()).or_default().clone()
}

impl Maintenance {
    /// The in-process half of the exclusion of snapshot upload checks and GC sweeps of one
    /// repository. Callers take the whole exclusion with `Service::sweep_exclusion`
    /// (module `exclusion`), which adds the lock shared with other nodes.
    pub async fn sweep_exclusion(&self, repo_id: &str) -> OwnedMutexGuard<()> {
        lock_of(&self.sweeps, repo_id).lock_owned().await
    }

    /// Waits until no other maintenance job runs on the repository.
    pub async fn job(&self, repo_id: &str) -> OwnedMutexGuard<()> {
        lock_of(&self.jobs, repo_id).lock_owned().await
    }

    /// Counts a background run until the returned value is dropped.
    pub fn start_background(&self) -> PendingRun {
        self.pending.0.send_modify(|n| *n += 1);
        PendingRun(self.pending.0.clone())
    }

    /// Waits until no background run (retention after an upload) is in progress.
    pub async fn background_idle(&self) {
        let mut rx = self.pending.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Adds a count.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let c = &self.counters;
        let mut out = String::new();
        for (name, help, v) in [
            (
                "brrd_repo_gc_runs_total",
                "Garbage collections run on repositories.",
                &c.gc_runs,
            ),
            (
                "brrd_repo_gc_reclaimed_bytes_total",
                "Bytes of packs deleted by garbage collection.",
                &c.gc_reclaimed_bytes,
            ),
            (
                "brrd_repo_retention_runs_total",
                "Retention runs on repositories.",
                &c.retention_runs,
            ),
            (
                "brrd_repo_retention_deletions_total",
                "Snapshots deleted by retention.",
                &c.retention_deletions,
            ),
            (
                "brrd_repo_retention_marks_total",
                "Snapshots of append-only repositories marked for deletion after the delay.",
                &c.retention_marks,
            ),
            (
                "brrd_repo_scheduled_verifications_total",
                "Scrubs run by the scheduler.",
                &c.scheduled_verifications,
            ),
            (
                "brrd_repo_maintenance_failures_total",
                "Maintenance runs (retention, GC, scrub) that failed.",
                &c.failed_runs,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// The backend of one repository as maintenance writes it: writes are recorded after they are
/// stored, removals unrecorded before they are removed. Use only on a blocking thread (it waits on the
/// database through `handle`).
#[derive(Debug)]
pub struct RecordedBackend {
    inner: Arc<dyn Backend>,
    svc: Arc<Service>,
    row: RepoRow,
    handle: Handle,
}

impl RecordedBackend {
    /// Wraps the stored backend of `row`; call from async code (it keeps the runtime's handle).
    pub fn new(svc: &Arc<Service>, row: &RepoRow) -> Result<Self> {
        Ok(RecordedBackend {
            inner: svc.store.backend(&row.company_id, &row.id)?,
            svc: svc.clone(),
            row: row.clone(),
            handle: Handle::current(),
        })
    }

    fn db_error(op: &'static str, e: Error) -> StorageError {
        StorageError::Backend {
            op,
            detail: format!("database: {e}"),
        }
    }
}

impl Service {
    /// Removes the database record of one file (the store is changed after this).
    pub(crate) async fn unrecord_file(
        &self,
        repo_id: &str,
        kind: FileKind,
        name: &str,
    ) -> Result<()> {
        let mut tx = self.db.pool.begin().await?;
        if kind == FileKind::Pack {
            for table in ["repo_blobs", "repo_packs"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE repo_id = $1 AND pack_id = $2"
                ))
                .bind(repo_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            }
        } else {
            sqlx::query("DELETE FROM repo_files WHERE repo_id = $1 AND kind = $2 AND name = $3")
                .bind(repo_id)
                .bind(kind_name(kind))
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let extra: &[&str] = match kind {
                FileKind::Snapshot => &[
                    "DELETE FROM repo_snapshots WHERE repo_id = $1 AND snapshot_id = $2",
                    "DELETE FROM repo_retention_marks WHERE repo_id = $1 AND snapshot_id = $2",
                ],
                FileKind::Index => &[
                    "DELETE FROM repo_supersedes WHERE repo_id = $1 AND index_id = $2",
                    "DELETE FROM repo_index_packs WHERE repo_id = $1 AND index_id = $2",
                ],
                FileKind::Gc => &["DELETE FROM repo_condemned WHERE repo_id = $1 AND gc_name = $2"],
                _ => &[],
            };
            for sql in extra {
                sqlx::query(sql)
                    .bind(repo_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Blobs of `ids` held by a recorded pack of the repository — condemned or not: what a snapshot
    /// may reference (docs/server-repositories.md §4: a backup listed in a GC record may reference
    /// blobs of packs condemned after it loaded the index; a sweep keeps those packs). With the
    /// smallest stored length of each.
    pub(crate) async fn stored_blobs(
        &self,
        repo_id: &str,
        ids: &[String],
    ) -> Result<HashMap<String, u64>> {
        let mut found = HashMap::new();
        for batch in ids.chunks(400) {
            let sql = format!(
                "SELECT blob_id, MIN(stored_len) FROM repo_blobs WHERE repo_id = $1 AND {} GROUP BY blob_id",
                super::record::blob_ids_condition("", 2, batch.len())
            );
            let q = sqlx::query_as::<_, (String, i64)>(&sql).bind(repo_id);
            for (id, len) in super::record::bind_blob_ids(q, batch)
                .fetch_all(&self.db.pool)
                .await?
            {
                found.insert(id, u64::try_from(len).unwrap_or(0));
            }
        }
        Ok(found)
    }
}

impl Backend for RecordedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> std::result::Result<(), StorageError> {
        self.inner.create()
    }

    fn read(&self, kind: FileKind, name: &str) -> std::result::Result<Vec<u8>, StorageError> {
        self.inner.read(kind, name)
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> std::result::Result<Vec<u8>, StorageError> {
        self.inner.read_range(kind, name, offset, len)
    }

    fn size(&self, kind: FileKind, name: &str) -> std::result::Result<u64, StorageError> {
        self.inner.size(kind, name)
    }

    fn write(
        &self,
        kind: FileKind,
        name: &str,
        data: &[u8],
    ) -> std::result::Result<(), StorageError> {
        self.inner.write(kind, name, data)?;
        // What the server writes is what it would accept from a client; a file it cannot parse is
        // still counted by size.
        let parsed = parse(kind, data).unwrap_or(Parsed::Other);
        let size = data.len() as u64;
        self.handle
            .block_on(
                self.svc
                    .record_file(SYSTEM, &self.row, (kind, name, size), &parsed, 0),
            )
            .map_err(|e| Self::db_error("write", e))
    }

    fn list(&self, kind: FileKind) -> std::result::Result<Vec<FileInfo>, StorageError> {
        self.inner.list(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> std::result::Result<(), StorageError> {
        self.handle
            .block_on(self.svc.unrecord_file(&self.row.id, kind, name))
            .map_err(|e| Self::db_error("remove", e))?;
        self.inner.remove(kind, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exclusions_are_per_repository_and_background_runs_are_awaited() {
        let m = Maintenance::default();
        let a = m.sweep_exclusion("a").await;
        // Another repository is not excluded; the same one is.
        let b = lock_of(&m.sweeps, "b").try_lock_owned();
        assert!(b.is_ok());
        assert!(lock_of(&m.sweeps, "a").try_lock_owned().is_err());
        drop(a);
        assert!(lock_of(&m.sweeps, "a").try_lock_owned().is_ok());
        // Jobs and sweeps are separate exclusions.
        let _job = m.job("a").await;
        assert!(lock_of(&m.sweeps, "a").try_lock_owned().is_ok());

        let run = m.start_background();
        let waiter = tokio::spawn(async move {
            drop(run);
        });
        waiter.await.unwrap();
        m.background_idle().await;
    }

    #[test]
    fn metrics_are_counters_in_the_text_format() {
        let m = Maintenance::default();
        Maintenance::add(&m.counters.gc_reclaimed_bytes, 42);
        let text = m.render_metrics();
        assert!(text.contains("# TYPE brrd_repo_gc_reclaimed_bytes_total counter\n"));
        assert!(text.contains("\nbrrd_repo_gc_reclaimed_bytes_total 42\n"));
        assert!(text.contains("\nbrrd_repo_maintenance_failures_total 0\n"));
    }
}
