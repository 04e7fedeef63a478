//! Repositories stored for companies (docs/server-repositories.md): their records and usage here, the
//! file API in [`files`], the access rules in [`rules`], key-less upload checks in [`checks`], the
//! storage backends in [`store`].

pub mod body;
pub mod checks;
pub mod exclusion;
pub mod files;
pub mod gc;
pub mod maint;
mod record;
pub mod reindex;
pub mod retention;
pub mod rules;
pub mod store;
pub mod transfer;
pub mod verify;

use brr_api::repos::{CreateRepository, RepoUsage, Repository, SnapshotInfo, UpdateRepository};

use super::{Ctx, Service};
use crate::error::{Error, Result};
use rules::{RepoOp, repo_rule};
pub use store::Store;

/// Default delay before turning append-only off takes effect: 7 days.
pub const DEFAULT_DELETE_DELAY_SECS: i64 = 7 * 24 * 3600;
/// Longest accepted delay: one year.
pub const MAX_DELETE_DELAY_SECS: i64 = 365 * 24 * 3600;

/// A repository as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepoRow {
    /// Id.
    pub id: String,
    /// Owning company.
    pub company_id: String,
    /// Name.
    pub name: String,
    /// 1 if append-only was set (see [`RepoRow::append_only_now`]).
    pub append_only: i64,
    /// When a requested end of append-only takes effect.
    pub append_only_ends_at: Option<i64>,
    /// Delay for turning append-only off.
    pub delete_delay_secs: i64,
    /// Creation time.
    pub created_at: i64,
    /// Creator.
    pub created_by: String,
}

pub(crate) const REPO_COLUMNS: &str = "id, company_id, name, append_only, append_only_ends_at, delete_delay_secs, created_at, created_by";

impl RepoRow {
    /// Whether deletions are refused at `now`.
    pub fn append_only_now(&self, now: i64) -> bool {
        self.append_only == 1 && self.append_only_ends_at.is_none_or(|t| now < t)
    }

    fn into_api(self, now: i64, usage: RepoUsage) -> Repository {
        Repository {
            append_only: self.append_only_now(now),
            append_only_ends_at: self.append_only_ends_at.filter(|_| self.append_only == 1),
            id: self.id,
            company_id: self.company_id,
            name: self.name,
            delete_delay_secs: self.delete_delay_secs,
            created_at: self.created_at,
            created_by: self.created_by,
            usage,
        }
    }
}

/// Repository names: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn check_repo_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "repository name must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
        ))
    }
}

fn check_delay(secs: i64) -> Result<()> {
    if (0..=MAX_DELETE_DELAY_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "delete_delay_secs must be between 0 and {MAX_DELETE_DELAY_SECS}"
        )))
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Logical over stored bytes, 0 when nothing is stored.
pub fn dedup_ratio(logical: u64, stored: u64) -> f64 {
    if stored == 0 {
        0.0
    } else {
        logical as f64 / stored as f64
    }
}

#[derive(sqlx::FromRow)]
struct SnapRow {
    snapshot_id: String,
    time: i64,
    source: String,
    ref_count: i64,
    size: i64,
    created_at: i64,
}

impl Service {
    /// `POST /repos`: a company admin creates a repository in the own company.
    pub async fn create_repo(&self, ctx: &Ctx, req: &CreateRepository) -> Result<Repository> {
        let p = ctx.principal()?;
        let company = p.company_id().ok_or(Error::Forbidden)?.to_string();
        repo_rule(p, &company, RepoOp::Manage)?;
        check_repo_name(&req.name)?;
        let delay = req.delete_delay_secs.unwrap_or(DEFAULT_DELETE_DELAY_SECS);
        check_delay(delay)?;
        let row = RepoRow {
            id: self.new_id(),
            company_id: company.clone(),
            name: req.name.clone(),
            append_only: i64::from(req.append_only),
            append_only_ends_at: None,
            delete_delay_secs: delay,
            created_at: self.now(),
            created_by: p.actor(),
        };
        let inserted = sqlx::query(&format!(
            "INSERT INTO repositories ({REPO_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&row.id)
        .bind(&row.company_id)
        .bind(&row.name)
        .bind(row.append_only)
        .bind(row.append_only_ends_at)
        .bind(row.delete_delay_secs)
        .bind(row.created_at)
        .bind(&row.created_by)
        .execute(&self.db.pool)
        .await;
        super::conflict_on_unique(
            inserted,
            &format!("a repository named {} exists in this company", req.name),
        )?;
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let created = store::blocking(move || match backend.create() {
            Ok(()) | Err(brr_storage::StorageError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(Error::storage(e)),
        })
        .await;
        if let Err(e) = created {
            // The store refused (e.g. S3 unreachable): take the row back, so that no repository exists
            // without its store and the same name can be created once the store answers.
            sqlx::query("DELETE FROM repositories WHERE id = $1")
                .bind(&row.id)
                .execute(&self.db.pool)
                .await?;
            return Err(e);
        }
        self.record(
            ctx,
            Some(&company),
            "repo.create",
            &format!("repo:{}", row.id),
            "success",
            &format!("name={} append_only={}", row.name, req.append_only),
        )
        .await?;
        Ok(row.into_api(self.now(), RepoUsage::default()))
    }

    /// `GET /repos`: the caller's company's repositories (all of them for provider staff).
    pub async fn list_repos(&self, ctx: &Ctx) -> Result<Vec<Repository>> {
        let p = ctx.principal()?;
        let rows: Vec<RepoRow> = match (p.role(), p.company_id()) {
            (Some(r), _) if r.is_provider() => {
                sqlx::query_as(&format!(
                    "SELECT {REPO_COLUMNS} FROM repositories ORDER BY company_id, name"
                ))
                .fetch_all(&self.db.pool)
                .await?
            }
            (_, Some(c)) => {
                repo_rule(p, c, RepoOp::Read)?;
                self.company_repos(c).await?
            }
            _ => return Err(Error::Forbidden),
        };
        self.with_usage(rows).await
    }

    /// Every repository of a company, by name.
    pub async fn company_repos(&self, company_id: &str) -> Result<Vec<RepoRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {REPO_COLUMNS} FROM repositories WHERE company_id = $1 ORDER BY name"
        ))
        .bind(company_id)
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// Adds usage to repository rows.
    pub async fn with_usage(&self, rows: Vec<RepoRow>) -> Result<Vec<Repository>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let usage = self.repo_usage(&r.id).await?;
            out.push(r.into_api(self.now(), usage));
        }
        Ok(out)
    }

    /// Finds a repository by id or, within the caller's company, by name, and applies the rule:
    /// another company's repository is [`Error::NotFound`], like a missing one.
    pub async fn resolve_repo(&self, ctx: &Ctx, key: &str, op: RepoOp) -> Result<RepoRow> {
        let p = ctx.principal()?;
        let row: Option<RepoRow> = if uuid::Uuid::parse_str(key).is_ok() {
            sqlx::query_as(&format!(
                "SELECT {REPO_COLUMNS} FROM repositories WHERE id = $1"
            ))
            .bind(key.to_ascii_lowercase())
            .fetch_optional(&self.db.pool)
            .await?
        } else {
            match p.company_id() {
                Some(c) if check_repo_name(key).is_ok() => sqlx::query_as(&format!(
                    "SELECT {REPO_COLUMNS} FROM repositories WHERE company_id = $1 AND name = $2"
                ))
                .bind(c)
                .bind(key)
                .fetch_optional(&self.db.pool)
                .await?,
                _ => None,
            }
        };
        let row = row.ok_or(Error::NotFound)?;
        repo_rule(p, &row.company_id, op)?;
        Ok(row)
    }

    /// `GET /repos/{repo}`.
    pub async fn get_repo(&self, ctx: &Ctx, key: &str) -> Result<Repository> {
        let row = self.resolve_repo(ctx, key, RepoOp::Read).await?;
        let usage = self.repo_usage(&row.id).await?;
        Ok(row.into_api(self.now(), usage))
    }

    /// `PATCH /repos/{repo}` (company admins): append-only on at once, off after the delay.
    pub async fn update_repo(
        &self,
        ctx: &Ctx,
        key: &str,
        req: &UpdateRepository,
    ) -> Result<Repository> {
        let mut row = self.resolve_repo(ctx, key, RepoOp::Manage).await?;
        let now = self.now();
        let mut changes = Vec::new();
        if let Some(delay) = req.delete_delay_secs {
            check_delay(delay)?;
            if row.append_only_now(now) && delay < row.delete_delay_secs {
                let e = Error::AppendOnly(
                    "the repository is append-only: its delete delay can only grow".into(),
                );
                self.audit_refusal(ctx, &row, "repo.update", &e).await?;
                return Err(e);
            }
            row.delete_delay_secs = delay;
            changes.push(format!("delete_delay_secs={delay}"));
        }
        match req.append_only {
            Some(true) => {
                row.append_only = 1;
                row.append_only_ends_at = None;
                changes.push("append_only=true".into());
            }
            Some(false) if row.append_only_now(now) => {
                if row.append_only_ends_at.is_none() {
                    row.append_only_ends_at = Some(now + row.delete_delay_secs * 1000);
                }
                changes.push(format!(
                    "append_only=false from {}",
                    row.append_only_ends_at.unwrap_or(now)
                ));
            }
            Some(false) => {
                row.append_only = 0;
                row.append_only_ends_at = None;
                changes.push("append_only=false".into());
            }
            None => {}
        }
        sqlx::query(
            "UPDATE repositories SET append_only = $1, append_only_ends_at = $2, delete_delay_secs = $3 WHERE id = $4",
        )
        .bind(row.append_only)
        .bind(row.append_only_ends_at)
        .bind(row.delete_delay_secs)
        .bind(&row.id)
        .execute(&self.db.pool)
        .await?;
        self.record(
            ctx,
            Some(&row.company_id),
            "repo.update",
            &format!("repo:{}", row.id),
            "success",
            &changes.join(" "),
        )
        .await?;
        let usage = self.repo_usage(&row.id).await?;
        Ok(row.into_api(now, usage))
    }

    /// Audits a refused repository operation (quota, append-only, failed verification).
    pub async fn audit_refusal(
        &self,
        ctx: &Ctx,
        repo: &RepoRow,
        action: &str,
        e: &Error,
    ) -> Result<()> {
        self.record(
            ctx,
            Some(&repo.company_id),
            action,
            &format!("repo:{}", repo.id),
            e.code(),
            &e.to_string(),
        )
        .await
    }

    /// What a repository holds (see [`RepoUsage`]).
    pub async fn repo_usage(&self, repo_id: &str) -> Result<RepoUsage> {
        let (pack_bytes, packs): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), COUNT(*) FROM repo_packs WHERE repo_id = $1",
        )
        .bind(repo_id)
        .fetch_one(&self.db.pool)
        .await?;
        let (file_bytes,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM repo_files WHERE repo_id = $1",
        )
        .bind(repo_id)
        .fetch_one(&self.db.pool)
        .await?;
        let (snapshots, logical): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM repo_snapshots WHERE repo_id = $1",
        )
        .bind(repo_id)
        .fetch_one(&self.db.pool)
        .await?;
        let last: Vec<SnapRow> = sqlx::query_as(
            "SELECT snapshot_id, time, source, ref_count, size, created_at FROM repo_snapshots s \
             WHERE repo_id = $1 AND time = (SELECT MAX(time) FROM repo_snapshots t WHERE t.repo_id = s.repo_id AND t.source = s.source) \
             ORDER BY source, snapshot_id",
        )
        .bind(repo_id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut last_snapshots: Vec<SnapshotInfo> = Vec::new();
        for s in last {
            if last_snapshots.last().is_some_and(|l| l.source == s.source) {
                continue;
            }
            last_snapshots.push(SnapshotInfo {
                id: s.snapshot_id,
                time: s.time,
                source: s.source,
                refs: to_u64(s.ref_count),
                bytes: to_u64(s.size),
                committed_at: s.created_at,
            });
        }
        let pack_bytes = to_u64(pack_bytes);
        let logical = to_u64(logical);
        Ok(RepoUsage {
            stored_bytes: pack_bytes + to_u64(file_bytes),
            pack_bytes,
            packs: to_u64(packs),
            snapshots: to_u64(snapshots),
            logical_bytes: logical,
            dedup_ratio: dedup_ratio(logical, pack_bytes),
            last_snapshots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for good in ["a", "0", "web-1", &"a".repeat(63)] {
            assert!(check_repo_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a/b", &"a".repeat(64)] {
            assert!(check_repo_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn append_only_ends_only_after_the_delay() {
        let mut r = RepoRow {
            id: "r".into(),
            company_id: "c".into(),
            name: "n".into(),
            append_only: 1,
            append_only_ends_at: Some(1000),
            delete_delay_secs: 1,
            created_at: 0,
            created_by: "u".into(),
        };
        assert!(r.append_only_now(999));
        assert!(!r.append_only_now(1000));
        r.append_only_ends_at = None;
        assert!(r.append_only_now(i64::MAX));
        r.append_only = 0;
        assert!(!r.append_only_now(0));
    }
}
