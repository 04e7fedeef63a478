//! Garbage collection without the key (`POST /repos/{repo}/gc`, `brrd repo gc`, the scheduler):
//! `brr_engine::keyless::gc::collect_garbage_protecting` on the stored files, through
//! [`RecordedBackend`] so the database record (packs, blobs, index files, GC records, stored bytes)
//! follows every file the GC writes or deletes.
//!
//! Running backups are the repository's lock files; a lock counts as ended once the server has not
//! seen it uploaded for `maintenance.session_timeout_secs` (clients rewrite it every 2 minutes; the
//! time of each upload is `repo_files.uploaded_at`, by the server's clock). Every sweep runs under the
//! repository's sweep exclusion, the one the snapshot upload check holds from checking references to
//! storing the snapshot, so a snapshot is never accepted for packs a sweep is deleting. Packs uploaded
//! within `maintenance.pack_grace_secs` (default a day) are left alone, so a backup interrupted before
//! its snapshot still finds its uploads when it resumes, even if a collection ran in between.
//!
//! Client-triggered GC of an append-only repository is refused (403 `append_only`): a GC deletes only
//! unreferenced data, but a compromised admin account could still use it right after forcing
//! snapshots out; the scheduler collects those repositories after retention.

use std::collections::HashSet;
use std::sync::Arc;

use brr_api::identity::Role;
use brr_api::maintenance::GcReport;
use brr_core::id::PackId;
use brr_engine::keyless::KeylessRepo;
use brr_engine::keyless::gc::{GcOptions, SessionJudge, collect_garbage_protecting, stale_after};
use brr_engine::{EngineError, NoProgress};
use chrono::{DateTime, TimeDelta, Utc};
use tokio::runtime::Handle;

use super::maint::{Maintenance, RecordedBackend};
use super::rules::RepoOp;
use super::store::blocking;
use super::{RepoRow, Service};
use crate::error::{Error, Result};
use crate::service::Ctx;

impl Service {
    /// `POST /repos/{repo}/gc`: company admins, unless the repository is append-only.
    pub async fn gc_repo(self: &Arc<Self>, ctx: &Ctx, key: &str) -> Result<GcReport> {
        if ctx.principal()?.role() != Some(Role::CompanyAdmin) {
            // Agents and members: the rule below answers 404 for other companies first.
            self.resolve_repo(ctx, key, RepoOp::Read).await?;
            return Err(Error::Forbidden);
        }
        let row = self.resolve_repo(ctx, key, RepoOp::Manage).await?;
        if row.append_only_now(self.now()) {
            let e = Error::AppendOnly(
                "the repository is append-only: garbage collection runs only on the server's schedule".into(),
            );
            self.audit_refusal(ctx, &row, "repo.gc", &e).await?;
            return Err(e);
        }
        // Who asked, then (as `system`) what the collection did.
        self.record(
            ctx,
            Some(&row.company_id),
            "repo.gc_request",
            &format!("repo:{}", row.id),
            "success",
            "",
        )
        .await?;
        self.collect_garbage(&row).await
    }

    /// Collects garbage in one repository (as `system`), holding its maintenance job exclusion.
    pub async fn collect_garbage(self: &Arc<Self>, row: &RepoRow) -> Result<GcReport> {
        let _job = self.maintenance.job(&row.id).await;
        self.collect_garbage_locked(row).await
    }

    pub(crate) async fn collect_garbage_locked(
        self: &Arc<Self>,
        row: &RepoRow,
    ) -> Result<GcReport> {
        let before = self.repo_usage(&row.id).await?.stored_bytes;
        let backend: Arc<dyn brr_storage::Backend> = Arc::new(RecordedBackend::new(self, row)?);
        let svc = self.clone();
        let repo_id = row.id.clone();
        let now = DateTime::<Utc>::from_timestamp_millis(self.now()).unwrap_or_default();
        let timeout = TimeDelta::seconds(
            i64::try_from(self.config.maintenance.session_timeout_secs).unwrap_or(i64::MAX / 1000),
        );
        let grace_ms = i64::try_from(self.config.maintenance.pack_grace_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let recent = self
            .recent_packs(&row.id, self.now().saturating_sub(grace_ms))
            .await?;
        let handle = Handle::current();
        let report = blocking(move || {
            let view = KeylessRepo::open(backend).map_err(|e| match e {
                EngineError::RepositoryNotFound { .. } => Error::Conflict(
                    "the repository has no config file yet: nothing to collect".into(),
                ),
                other => Error::Storage(other.to_string()),
            })?;
            let last_written = |name: &str| -> Option<DateTime<Utc>> {
                let t = handle.block_on(svc.lock_seen_at(&repo_id, name)).ok()??;
                DateTime::<Utc>::from_timestamp_millis(t)
            };
            let stale = stale_after(now, timeout);
            let judge = SessionJudge {
                last_written: &last_written,
                is_stale: &stale,
            };
            let exclusive = |sweep: &mut dyn FnMut() -> brr_engine::Result<()>| {
                let _g = svc
                    .sweep_exclusion_blocking(&handle, &repo_id)
                    .map_err(|e| {
                        EngineError::Storage(brr_storage::StorageError::Unavailable {
                            op: "take the sweep exclusion",
                            detail: e.to_string(),
                        })
                    })?;
                sweep()
            };
            let protected = |id: &PackId| recent.contains(id);
            collect_garbage_protecting(
                &view,
                &GcOptions::default(),
                &judge,
                &exclusive,
                &protected,
                &NoProgress,
            )
            .map_err(|e| Error::Storage(format!("garbage collection: {e}")))
        })
        .await?;
        let after = self.repo_usage(&row.id).await?.stored_bytes;
        let out = GcReport {
            packs_total: report.plan.packs_total,
            packs_condemned: report.plan.packs_to_condemn.len() as u64,
            packs_repacked: report.plan.packs_to_repack.len() as u64,
            packs_deleted: report.packs_deleted,
            bytes_freed: report.bytes_freed,
            packs_written: report.packs_written,
            packs_kept_referenced: report.packs_kept_referenced,
            gc_records_waiting: report.plan.gc_records_waiting.len() as u64,
            stored_bytes_before: before,
            stored_bytes_after: after,
        };
        Maintenance::add(&self.maintenance.counters.gc_runs, 1);
        Maintenance::add(
            &self.maintenance.counters.gc_reclaimed_bytes,
            out.bytes_freed,
        );
        self.audit_system(
            row,
            "repo.gc",
            "",
            "success",
            &format!(
                "reclaimed_bytes={} packs_deleted={} packs_condemned={} packs_repacked={} waiting_records={}",
                out.bytes_freed,
                out.packs_deleted,
                out.packs_condemned,
                out.packs_repacked,
                out.gc_records_waiting
            ),
        )
        .await?;
        Ok(out)
    }

    /// Collects garbage in a repository by id (`brrd repo gc`), append-only or not: the operator runs
    /// it on the server, where retention decided what is deleted.
    pub async fn collect_garbage_by_id(self: &Arc<Self>, repo_id: &str) -> Result<GcReport> {
        let row: RepoRow = sqlx::query_as(&format!(
            "SELECT {} FROM repositories WHERE id = $1",
            super::REPO_COLUMNS
        ))
        .bind(repo_id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or(Error::NotFound)?;
        self.collect_garbage(&row).await
    }

    /// When the server last stored lock `name` of the repository (Unix ms), if it holds it.
    pub async fn lock_seen_at(&self, repo_id: &str, name: &str) -> Result<Option<i64>> {
        let t: Option<(i64,)> = sqlx::query_as(
            "SELECT uploaded_at FROM repo_files WHERE repo_id = $1 AND kind = 'locks' AND name = $2",
        )
        .bind(repo_id)
        .bind(name)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(t.map(|(t,)| t))
    }
}

impl Service {
    /// Packs of `repo_id` recorded as uploaded after `since_ms` (Unix ms): protected from
    /// collection by `maintenance.pack_grace_secs`. Names that are not pack IDs are skipped.
    async fn recent_packs(&self, repo_id: &str, since_ms: i64) -> Result<HashSet<PackId>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT pack_id FROM repo_packs WHERE repo_id = $1 AND uploaded_at > $2",
        )
        .bind(repo_id)
        .bind(since_ms)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id,)| PackId::from_hex(&id).ok())
            .collect())
    }
}
