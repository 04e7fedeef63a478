//! Per-company quotas (stored bytes, snapshots, agents) and usage: set by provider admins, read by
//! company admins and provider staff, checked before anything is stored or enrolled.

use brr_api::identity::Role;
use brr_api::repos::{CompanyUsage, Quota};

use super::access::{Need, company_scope};
use super::repos::dedup_ratio;
use super::repos::store::Reservation;
use super::{Ctx, Service};
use crate::error::{Error, Result};

/// One company's stored bytes against its limit, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaGauge {
    /// Company.
    pub company_id: String,
    /// Bytes stored.
    pub stored_bytes: u64,
    /// Limit, if any.
    pub max_stored_bytes: Option<u64>,
}

/// How long a snapshot reservation counts at most (an upload that takes longer has died): twice the
/// longest upload a default configuration allows.
const RESERVATION_TTL_MS: i64 = 2 * 3600 * 1000;

/// The one-line refusal of a snapshot past the limit.
fn snapshot_refusal(stored: u64, pending: u64, max: u64) -> String {
    let pending = if pending > 0 {
        format!(" (and {pending} being uploaded)")
    } else {
        String::new()
    };
    format!("snapshot quota exceeded: {stored} of {max} snapshots stored{pending}")
}

/// A snapshot upload's place under its company's snapshot limit ([`Service::reserve_snapshot`]);
/// dropping it removes the reservation in the background (once the snapshot is recorded it no longer
/// counts anyway, and a reservation left by a crash stops counting after a while).
#[derive(Debug)]
pub struct SnapshotSlot {
    held: Option<(sqlx::AnyPool, String)>,
}

impl SnapshotSlot {
    fn none() -> Self {
        SnapshotSlot { held: None }
    }
}

impl Drop for SnapshotSlot {
    fn drop(&mut self) {
        let Some((pool, id)) = self.held.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = sqlx::query("DELETE FROM quota_reservations WHERE id = $1")
                    .bind(&id)
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "cannot remove a snapshot quota reservation");
                }
            });
        }
    }
}

fn to_i64(v: Option<u64>, what: &str) -> Result<Option<i64>> {
    v.map(|n| i64::try_from(n).map_err(|_| Error::invalid(format!("{what} is too large"))))
        .transpose()
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|n| u64::try_from(n).unwrap_or(0))
}

impl Service {
    /// Company admins of the company and provider staff may read quota and usage.
    fn check_usage_reader(&self, ctx: &Ctx, company_id: &str) -> Result<()> {
        let p = ctx.principal()?;
        match p.role() {
            Some(r) if r.is_provider() => company_scope(p, company_id, Need::Read),
            Some(Role::CompanyAdmin) => company_scope(p, company_id, Need::Manage),
            _ => match company_scope(p, company_id, Need::Read) {
                Ok(()) => Err(Error::Forbidden),
                Err(e) => Err(e),
            },
        }
    }

    /// The stored limits of a company (all `None` when none were set).
    pub async fn load_quota(&self, company_id: &str) -> Result<Quota> {
        let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT max_stored_bytes, max_snapshots, max_agents FROM company_quotas WHERE company_id = $1",
        )
        .bind(company_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row
            .map(|(b, s, a)| Quota {
                max_stored_bytes: to_u64(b),
                max_snapshots: to_u64(s),
                max_agents: to_u64(a),
            })
            .unwrap_or_default())
    }

    /// `GET /companies/{company_id}/quota`.
    pub async fn get_quota(&self, ctx: &Ctx, company_id: &str) -> Result<Quota> {
        self.check_usage_reader(ctx, company_id)?;
        self.company_status(company_id)
            .await?
            .ok_or(Error::NotFound)?;
        self.load_quota(company_id).await
    }

    /// `PUT /companies/{company_id}/quota` (provider admins).
    pub async fn set_quota(&self, ctx: &Ctx, company_id: &str, q: &Quota) -> Result<Quota> {
        let p = ctx.principal()?;
        if p.role() != Some(Role::ProviderAdmin) {
            return Err(Error::Forbidden);
        }
        self.company_status(company_id)
            .await?
            .ok_or(Error::NotFound)?;
        let bytes = to_i64(q.max_stored_bytes, "max_stored_bytes")?;
        let snaps = to_i64(q.max_snapshots, "max_snapshots")?;
        let agents = to_i64(q.max_agents, "max_agents")?;
        sqlx::query(
            "INSERT INTO company_quotas (company_id, max_stored_bytes, max_snapshots, max_agents, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (company_id) DO UPDATE SET \
             max_stored_bytes = excluded.max_stored_bytes, max_snapshots = excluded.max_snapshots, \
             max_agents = excluded.max_agents, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(company_id)
        .bind(bytes)
        .bind(snaps)
        .bind(agents)
        .bind(self.now())
        .bind(p.actor())
        .execute(&self.db.pool)
        .await?;
        let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
        self.record(
            ctx,
            Some(company_id),
            "quota.set",
            &format!("company:{company_id}"),
            "success",
            &format!(
                "max_stored_bytes={} max_snapshots={} max_agents={}",
                show(q.max_stored_bytes),
                show(q.max_snapshots),
                show(q.max_agents)
            ),
        )
        .await?;
        self.load_quota(company_id).await
    }

    /// Bytes stored over all of a company's repositories.
    pub async fn company_stored_bytes(&self, company_id: &str) -> Result<u64> {
        let (packs,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(p.size), 0) AS BIGINT) FROM repo_packs p JOIN repositories r ON r.id = p.repo_id WHERE r.company_id = $1",
        )
        .bind(company_id)
        .fetch_one(&self.db.pool)
        .await?;
        let (files,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(f.size), 0) AS BIGINT) FROM repo_files f JOIN repositories r ON r.id = f.repo_id WHERE r.company_id = $1",
        )
        .bind(company_id)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(u64::try_from(packs + files).unwrap_or(0))
    }

    /// Snapshots over all of a company's repositories.
    pub async fn company_snapshots(&self, company_id: &str) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM repo_snapshots s JOIN repositories r ON r.id = s.repo_id WHERE r.company_id = $1",
        )
        .bind(company_id)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Unrevoked agents of a company.
    pub async fn company_agents(&self, company_id: &str) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM agents WHERE company_id = $1 AND revoked_at IS NULL",
        )
        .bind(company_id)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Refuses storing `extra` more bytes past the company's limit.
    pub async fn check_quota_bytes(&self, company_id: &str, extra: u64) -> Result<()> {
        if let Some(max) = self.load_quota(company_id).await?.max_stored_bytes {
            let used = self.company_stored_bytes(company_id).await?;
            if used.saturating_add(extra) > max {
                return Err(Error::QuotaExceeded(format!(
                    "storage quota exceeded: {used} of {max} bytes used, this upload needs {extra} more"
                )));
            }
        }
        Ok(())
    }

    /// Reserves `extra` bytes for an upload of the company, refused past its byte limit counting the
    /// uploads in progress; hold the reservation until the upload is recorded.
    pub async fn reserve_bytes(&self, company_id: &str, extra: u64) -> Result<Reservation> {
        let (reservation, others) = self.store.reserve(company_id, extra)?;
        if let Some(max) = self.load_quota(company_id).await?.max_stored_bytes {
            let used = self.company_stored_bytes(company_id).await?;
            if used.saturating_add(others).saturating_add(extra) > max {
                let pending = if others > 0 {
                    format!(" (and {others} being uploaded)")
                } else {
                    String::new()
                };
                return Err(Error::QuotaExceeded(format!(
                    "storage quota exceeded: {used} of {max} bytes used{pending}, this upload needs {extra} more"
                )));
            }
        }
        Ok(reservation)
    }

    /// Starts a transaction that holds the company's quota row and reads the limits inside it. Quota
    /// checks of one company then run one at a time — a row lock on PostgreSQL (a second checker's
    /// update waits for the first to commit, and its next statement sees what the first inserted),
    /// the database write lock on SQLite — so a count and the insert it allows never interleave with
    /// another check's. Without a quota row there is no limit and nothing is held.
    pub(crate) async fn quota_tx(
        &self,
        company_id: &str,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, Quota)> {
        let mut tx = self.db.pool.begin().await?;
        let held =
            sqlx::query("UPDATE company_quotas SET updated_at = updated_at WHERE company_id = $1")
                .bind(company_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if held == 0 {
            return Ok((tx, Quota::default()));
        }
        let (b, s, a): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT max_stored_bytes, max_snapshots, max_agents FROM company_quotas WHERE company_id = $1",
        )
        .bind(company_id)
        .fetch_one(&mut *tx)
        .await?;
        let quota = Quota {
            max_stored_bytes: to_u64(b),
            max_snapshots: to_u64(s),
            max_agents: to_u64(a),
        };
        Ok((tx, quota))
    }

    /// Reserves a place for snapshot `snapshot_id` of repository `repo_id` under the company's
    /// snapshot limit, counting recorded snapshots and the uploads holding a reservation (exact under
    /// concurrency, also across brrd nodes sharing a database). Hold the slot until the snapshot is
    /// recorded: from then on the record counts instead of the reservation.
    pub async fn reserve_snapshot(
        &self,
        company_id: &str,
        repo_id: &str,
        snapshot_id: &str,
    ) -> Result<SnapshotSlot> {
        let (mut tx, quota) = self.quota_tx(company_id).await?;
        let Some(max) = quota.max_snapshots else {
            tx.rollback().await?;
            return Ok(SnapshotSlot::none());
        };
        let now = self.now();
        let oldest = now.saturating_sub(RESERVATION_TTL_MS);
        sqlx::query("DELETE FROM quota_reservations WHERE company_id = $1 AND created_at < $2")
            .bind(company_id)
            .bind(oldest)
            .execute(&mut *tx)
            .await?;
        let (stored, pending): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM repo_snapshots s JOIN repositories r ON r.id = s.repo_id WHERE r.company_id = $1),              (SELECT COUNT(*) FROM quota_reservations q WHERE q.company_id = $1 AND NOT EXISTS               (SELECT 1 FROM repo_snapshots s WHERE s.repo_id = q.repo_id AND s.snapshot_id = q.snapshot_id))",
        )
        .bind(company_id)
        .fetch_one(&mut *tx)
        .await?;
        let (stored, pending) = (
            to_u64(Some(stored)).unwrap_or(0),
            to_u64(Some(pending)).unwrap_or(0),
        );
        if stored.saturating_add(pending) >= max {
            tx.rollback().await?;
            return Err(Error::QuotaExceeded(snapshot_refusal(stored, pending, max)));
        }
        let id = self.new_id();
        sqlx::query(
            "INSERT INTO quota_reservations (id, company_id, repo_id, snapshot_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(company_id)
        .bind(repo_id)
        .bind(snapshot_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SnapshotSlot {
            held: Some((self.db.pool.clone(), id)),
        })
    }

    /// Counts the company's unrevoked agents inside a [`Service::quota_tx`] transaction and refuses
    /// one more past `max`.
    pub(crate) async fn check_agents_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        company_id: &str,
        max: Option<u64>,
    ) -> Result<()> {
        let Some(max) = max else {
            return Ok(());
        };
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM agents WHERE company_id = $1 AND revoked_at IS NULL",
        )
        .bind(company_id)
        .fetch_one(&mut **tx)
        .await?;
        let used = to_u64(Some(n)).unwrap_or(0);
        if used >= max {
            return Err(Error::QuotaExceeded(format!(
                "agent quota exceeded: {used} of {max} agents enrolled"
            )));
        }
        Ok(())
    }

    /// `GET /companies/{company_id}/usage`.
    pub async fn company_usage(&self, ctx: &Ctx, company_id: &str) -> Result<CompanyUsage> {
        self.check_usage_reader(ctx, company_id)?;
        self.company_status(company_id)
            .await?
            .ok_or(Error::NotFound)?;
        let repositories = self
            .with_usage(self.company_repos(company_id).await?)
            .await?;
        let logical: u64 = repositories.iter().map(|r| r.usage.logical_bytes).sum();
        let packs: u64 = repositories.iter().map(|r| r.usage.pack_bytes).sum();
        Ok(CompanyUsage {
            company_id: company_id.to_string(),
            quota: self.load_quota(company_id).await?,
            stored_bytes: self.company_stored_bytes(company_id).await?,
            snapshots: self.company_snapshots(company_id).await?,
            agents: self.company_agents(company_id).await?,
            logical_bytes: logical,
            dedup_ratio: dedup_ratio(logical, packs),
            repositories,
            last_failed_backup: self.last_failed_backup(company_id).await?,
        })
    }

    /// Stored bytes and limit of every company that stores something or has a limit (metrics).
    pub async fn quota_gauges(&self) -> Result<Vec<QuotaGauge>> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT company_id FROM repositories UNION SELECT company_id FROM company_quotas ORDER BY 1",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (c,) in ids {
            out.push(QuotaGauge {
                stored_bytes: self.company_stored_bytes(&c).await?,
                max_stored_bytes: self.load_quota(&c).await?.max_stored_bytes,
                company_id: c,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_refusals_give_stored_pending_and_limit_in_one_line() {
        assert_eq!(
            snapshot_refusal(3, 0, 3),
            "snapshot quota exceeded: 3 of 3 snapshots stored"
        );
        let m = snapshot_refusal(1, 2, 3);
        assert_eq!(
            m,
            "snapshot quota exceeded: 1 of 3 snapshots stored (and 2 being uploaded)"
        );
        assert!(!m.contains('\n'));
    }

    #[test]
    fn a_slot_without_a_quota_holds_nothing() {
        let slot = SnapshotSlot::none();
        assert!(slot.held.is_none());
        drop(slot);
    }
}
