//! Failed backups, judged without the key from what the server sees (docs/server-repositories.md §6).
//!
//! A **backup session** is a lock file whose cleartext says `kind: shared, purpose: backup`, from the
//! first time brrd stores it (`repo_backup_sessions.started_at`, the uploader as principal, the lock's
//! host name). It ends when the lock is deleted, or when brrd has not seen it uploaded for
//! `maintenance.session_timeout_secs` (the scheduler's pass, [`Service::expire_backup_sessions`]). It
//! **completed** if a snapshot uploaded by the same principal was recorded in the repository since the
//! session started; otherwise it **failed** (`ended_without_snapshot` or `expired`). A snapshot upload
//! refused with `missing_blobs` or `quota_exceeded` is a failed backup at once (that reason), and
//! marks the uploader's open sessions of the repository failed, so that their end does not count the
//! same backup twice.
//!
//! Each failure is a row of `backup_failures` (so `brrd_backups_failed_total{reason}` is the same on
//! every node and survives restarts), a `system` audit entry `repo.backup_failed` and the company's
//! `last_failed_backup` in its usage. Hooks never fail the request that triggers them: their own
//! errors are logged.

use brr_api::repos::FailedBackup;
use brr_core::lockfile::{LockFile, LockKind};
use brr_storage::FileKind;

use super::repos::RepoRow;
use super::repos::rules::RepoOp;
use super::repos::store::blocking;
use super::{Ctx, Service};
use crate::error::{Error, Result};

/// Reasons of failed backups, as metric labels and in `backup_failures.reason`.
pub const REASONS: [&str; 4] = [
    "expired",
    "ended_without_snapshot",
    "missing_blobs",
    "quota_exceeded",
];

/// Whether a lock file's cleartext names a backup session (a shared lock taken for a backup).
pub fn is_backup_lock(lock: &LockFile) -> bool {
    lock.kind == LockKind::Shared && lock.purpose == "backup"
}

/// Host names are shown, not trusted: one line, at most 253 characters.
fn clean_host(h: &str) -> String {
    h.chars()
        .filter(|c| !c.is_control())
        .take(253)
        .collect::<String>()
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    company_id: String,
    principal: String,
    hostname: String,
    started_at: i64,
    outcome: Option<String>,
}

impl Service {
    /// After a lock file was stored: opens a backup session the first time brrd sees a backup lock.
    pub async fn backup_lock_stored(&self, ctx: &Ctx, repo: &str, lock: &str) {
        if let Err(e) = self.open_session(ctx, repo, lock).await {
            tracing::warn!(repo, lock, error = %e, "cannot record a backup session");
        }
    }

    async fn open_session(&self, ctx: &Ctx, repo: &str, lock: &str) -> Result<()> {
        let row = self.resolve_repo(ctx, repo, RepoOp::Read).await?;
        let known: Option<(i64,)> = sqlx::query_as(
            "SELECT started_at FROM repo_backup_sessions WHERE repo_id = $1 AND lock_name = $2",
        )
        .bind(&row.id)
        .bind(lock)
        .fetch_optional(&self.db.pool)
        .await?;
        if known.is_some() {
            return Ok(());
        }
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let name = lock.to_string();
        let bytes =
            blocking(move || backend.read(FileKind::Lock, &name).map_err(Error::storage)).await?;
        let Ok(parsed) = LockFile::decode(&bytes) else {
            return Ok(());
        };
        if !is_backup_lock(&parsed) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO repo_backup_sessions (repo_id, lock_name, company_id, principal, hostname, started_at, ended_at, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL) ON CONFLICT (repo_id, lock_name) DO NOTHING",
        )
        .bind(&row.id)
        .bind(lock)
        .bind(&row.company_id)
        .bind(ctx.principal()?.actor())
        .bind(clean_host(&parsed.hostname))
        .bind(self.now())
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// After a lock file was deleted: ends its backup session, if it is one.
    pub async fn backup_lock_deleted(&self, ctx: &Ctx, repo: &str, lock: &str) {
        let r = async {
            let row = self.resolve_repo(ctx, repo, RepoOp::Read).await?;
            self.end_session(&row, lock, "ended_without_snapshot").await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(repo, lock, error = %e, "cannot end a backup session");
        }
    }

    /// After a snapshot upload was refused: `missing_blobs` and `quota_exceeded` are failed backups.
    pub async fn backup_snapshot_refused(&self, ctx: &Ctx, repo: &str, e: &Error) {
        let reason = match e {
            Error::MissingBlobs(_) | Error::QuotaExceeded(_) => e.code(),
            _ => return,
        };
        let r = async {
            let row = self.resolve_repo(ctx, repo, RepoOp::Read).await?;
            let principal = ctx.principal()?.actor();
            let hosts: Vec<(String,)> = sqlx::query_as(
                "SELECT hostname FROM repo_backup_sessions WHERE repo_id = $1 AND principal = $2 \
                 AND ended_at IS NULL AND outcome IS NULL ORDER BY started_at DESC",
            )
            .bind(&row.id)
            .bind(&principal)
            .fetch_all(&self.db.pool)
            .await?;
            sqlx::query(
                "UPDATE repo_backup_sessions SET outcome = 'failed' WHERE repo_id = $1 AND principal = $2 \
                 AND ended_at IS NULL AND outcome IS NULL",
            )
            .bind(&row.id)
            .bind(&principal)
            .execute(&self.db.pool)
            .await?;
            let host = hosts.first().map(|(h,)| h.as_str()).unwrap_or("");
            self.record_backup_failure(&row, reason, &principal, host, None)
                .await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(repo, error = %e, "cannot record a failed backup");
        }
    }

    /// Ends the open session of `lock` (if any and not ended yet) and judges it; `reason` is what a
    /// failure is recorded as.
    async fn end_session(&self, row: &RepoRow, lock: &str, reason: &'static str) -> Result<()> {
        let now = self.now();
        let won = sqlx::query(
            "UPDATE repo_backup_sessions SET ended_at = $1 WHERE repo_id = $2 AND lock_name = $3 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(&row.id)
        .bind(lock)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if won == 0 {
            return Ok(());
        }
        let s: SessionRow = sqlx::query_as(
            "SELECT company_id, principal, hostname, started_at, outcome FROM repo_backup_sessions \
             WHERE repo_id = $1 AND lock_name = $2",
        )
        .bind(&row.id)
        .bind(lock)
        .fetch_one(&self.db.pool)
        .await?;
        if s.outcome.is_some() {
            return Ok(());
        }
        let (snapshots,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM repo_snapshots WHERE repo_id = $1 AND created_by = $2 AND created_at >= $3",
        )
        .bind(&row.id)
        .bind(&s.principal)
        .bind(s.started_at)
        .fetch_one(&self.db.pool)
        .await?;
        let outcome = if snapshots > 0 { "completed" } else { "failed" };
        sqlx::query(
            "UPDATE repo_backup_sessions SET outcome = $1 WHERE repo_id = $2 AND lock_name = $3",
        )
        .bind(outcome)
        .bind(&row.id)
        .bind(lock)
        .execute(&self.db.pool)
        .await?;
        if snapshots == 0 {
            debug_assert_eq!(s.company_id, row.company_id);
            self.record_backup_failure(row, reason, &s.principal, &s.hostname, Some(lock))
                .await?;
        }
        Ok(())
    }

    async fn record_backup_failure(
        &self,
        row: &RepoRow,
        reason: &'static str,
        principal: &str,
        host: &str,
        lock: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO backup_failures (id, company_id, repo_id, reason, principal, hostname, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.new_id())
        .bind(&row.company_id)
        .bind(&row.id)
        .bind(reason)
        .bind(principal)
        .bind(host)
        .bind(self.now())
        .execute(&self.db.pool)
        .await?;
        let target = lock.map(|l| format!("locks/{l}")).unwrap_or_default();
        self.audit_system(
            row,
            "repo.backup_failed",
            &target,
            "failure",
            &format!("reason={reason} principal={principal} host={host}"),
        )
        .await
    }

    /// Ends every open backup session whose lock brrd has not seen uploaded for
    /// `maintenance.session_timeout_secs` (or that is no longer stored); returns how many ended.
    /// Run by the scheduler on every pass.
    pub async fn expire_backup_sessions(&self) -> Result<u64> {
        let timeout_ms = i64::try_from(self.config.maintenance.session_timeout_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let before = self.now().saturating_sub(timeout_ms);
        let stale: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.repo_id, s.lock_name FROM repo_backup_sessions s LEFT JOIN repo_files f \
             ON f.repo_id = s.repo_id AND f.kind = 'locks' AND f.name = s.lock_name \
             WHERE s.ended_at IS NULL AND (f.uploaded_at IS NULL OR f.uploaded_at < $1) \
             ORDER BY s.started_at",
        )
        .bind(before)
        .fetch_all(&self.db.pool)
        .await?;
        let mut ended = 0;
        for (repo_id, lock) in stale {
            let row: Option<RepoRow> = sqlx::query_as(&format!(
                "SELECT {} FROM repositories WHERE id = $1",
                super::repos::REPO_COLUMNS
            ))
            .bind(&repo_id)
            .fetch_optional(&self.db.pool)
            .await?;
            if let Some(row) = row {
                self.end_session(&row, &lock, "expired").await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Failed backups per reason, over every company (every reason listed, 0 included).
    pub async fn backup_failure_counts(&self) -> Result<Vec<(&'static str, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT reason, COUNT(*) FROM backup_failures GROUP BY reason")
                .fetch_all(&self.db.pool)
                .await?;
        Ok(REASONS
            .iter()
            .map(|r| {
                let n = rows
                    .iter()
                    .find(|(reason, _)| reason == r)
                    .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
                (*r, n)
            })
            .collect())
    }

    /// The company's most recent failed backup, if any.
    pub async fn last_failed_backup(&self, company_id: &str) -> Result<Option<FailedBackup>> {
        let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT f.repo_id, f.reason, f.principal, f.hostname, f.at FROM backup_failures f \
             WHERE f.company_id = $1 ORDER BY f.at DESC, f.id DESC LIMIT 1",
        )
        .bind(company_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(
            row.map(|(repo_id, reason, principal, hostname, at)| FailedBackup {
                repo_id,
                reason,
                principal,
                hostname: Some(hostname).filter(|h| !h.is_empty()),
                at,
            }),
        )
    }
}

/// `brrd_backups_failed_total` in the Prometheus text format.
pub fn render_failures(counts: &[(&'static str, u64)]) -> String {
    let mut t = String::from(
        "# HELP brrd_backups_failed_total Failed backups by reason (sessions ended or expired without a snapshot, refused snapshots).\n\
         # TYPE brrd_backups_failed_total counter\n",
    );
    for (reason, n) in counts {
        t.push_str(&format!(
            "brrd_backups_failed_total{{reason=\"{reason}\"}} {n}\n"
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(kind: LockKind, purpose: &str) -> LockFile {
        LockFile {
            kind,
            purpose: purpose.into(),
            hostname: "web-1".into(),
            pid: 7,
            username: "root".into(),
            created: chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap(),
        }
    }

    #[test]
    fn only_shared_backup_locks_are_sessions() {
        assert!(is_backup_lock(&lock(LockKind::Shared, "backup")));
        assert!(!is_backup_lock(&lock(LockKind::Exclusive, "prune")));
        assert!(!is_backup_lock(&lock(LockKind::Shared, "check")));
    }

    #[test]
    fn host_names_are_one_line_and_bounded() {
        assert_eq!(clean_host("a\nb\tc"), "abc");
        assert_eq!(clean_host(&"x".repeat(300)).len(), 253);
    }

    #[test]
    fn every_reason_is_rendered() {
        let t = render_failures(&[("expired", 2), ("missing_blobs", 0)]);
        assert!(
            t.contains("brrd_backups_failed_total{reason=\"expired\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("brrd_backups_failed_total{reason=\"missing_blobs\"} 0\n"));
        assert!(t.contains("# TYPE brrd_backups_failed_total counter\n"));
    }
}
