//! Retention without the key (docs/server-repositories.md §4): policies per repository, or per source
//! tag inside it, stored in `repo_retention`; applied after each committed snapshot and on a schedule
//! with `brr_engine::keyless::retention::plan_for` over the snapshots' header times (UTC periods).
//!
//! Plan, then apply: the plan is computed from the database's record of the snapshots (header time
//! and source tag per snapshot, `repo_snapshots`; no snapshot file is read); selected snapshots are
//! deleted through [`RecordedBackend`] (unrecorded first, removed second), each deletion audited as
//! `system`. In a repository that is append-only at that moment a selected snapshot is only *marked*
//! (`repo_retention_marks`) and deleted by a later run once `delete_delay_secs` has passed since the
//! mark, if the policy still selects it then; a mark the policy no longer selects is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use brr_api::maintenance::{RetentionPolicies, RetentionPolicy, RetentionReport};
use brr_core::id::SnapshotId;
use brr_core::retention::RetentionPolicy as CorePolicy;
use brr_engine::keyless::retention::{
    Grouping, KeylessRetentionOptions, plan_for, remove_snapshots,
};
use brr_engine::keyless::{KeylessRepo, PublicSnapshot};

use super::maint::{Maintenance, RecordedBackend, SYSTEM};
use super::rules::RepoOp;
use super::store::blocking;
use super::{RepoRow, Service};
use crate::error::{Error, Result};
use crate::service::Ctx;

/// Largest count a rule accepts.
pub const MAX_KEEP: u32 = 100_000;

#[derive(Debug, Clone, sqlx::FromRow)]
struct PolicyRow {
    source: String,
    grouped_by: String,
    keep_last: Option<i64>,
    keep_hourly: Option<i64>,
    keep_daily: Option<i64>,
    keep_weekly: Option<i64>,
    keep_monthly: Option<i64>,
    keep_yearly: Option<i64>,
}

fn count(v: Option<i64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

impl PolicyRow {
    fn to_api(&self) -> RetentionPolicy {
        RetentionPolicy {
            grouping: Some(self.grouped_by.clone()),
            source: Some(self.source.clone()).filter(|s| !s.is_empty()),
            keep_last: count(self.keep_last),
            keep_hourly: count(self.keep_hourly),
            keep_daily: count(self.keep_daily),
            keep_weekly: count(self.keep_weekly),
            keep_monthly: count(self.keep_monthly),
            keep_yearly: count(self.keep_yearly),
        }
    }

    fn options(&self) -> KeylessRetentionOptions {
        KeylessRetentionOptions {
            policy: core_policy(&self.to_api()),
            grouping: if self.grouped_by == "repository" {
                Grouping::Repository
            } else {
                Grouping::SourceTag
            },
            source: None,
            clock: Default::default(),
        }
    }
}

fn core_policy(p: &RetentionPolicy) -> CorePolicy {
    CorePolicy {
        keep_last: p.keep_last,
        keep_hourly: p.keep_hourly,
        keep_daily: p.keep_daily,
        keep_weekly: p.keep_weekly,
        keep_monthly: p.keep_monthly,
        keep_yearly: p.keep_yearly,
        keep_within_secs: None,
    }
}

/// Checks a policy; returns its grouping (`repository` or `source`). Refusals are one line each.
pub fn validate_policy(p: &RetentionPolicy) -> Result<&'static str> {
    let grouping = match p.grouping.as_deref() {
        None | Some("source") => "source",
        Some("repository") => "repository",
        Some(other) => {
            return Err(Error::BadPolicy(format!(
                "grouping must be \"repository\" or \"source\", not {:?}",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    if let Some(tag) = &p.source {
        let hex = tag.len() == 32
            && tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(Error::BadPolicy(format!(
                "source must be a source tag of 32 lower-case hex characters, not {:?}",
                tag.chars().take(40).collect::<String>()
            )));
        }
        if grouping == "repository" && p.grouping.is_some() {
            return Err(Error::BadPolicy(
                "a policy for one source cannot group by repository".into(),
            ));
        }
    }
    for (name, v) in [
        ("keep_last", p.keep_last),
        ("keep_hourly", p.keep_hourly),
        ("keep_daily", p.keep_daily),
        ("keep_weekly", p.keep_weekly),
        ("keep_monthly", p.keep_monthly),
        ("keep_yearly", p.keep_yearly),
    ] {
        if v.is_some_and(|n| n > MAX_KEEP) {
            return Err(Error::BadPolicy(format!(
                "{name} must be at most {MAX_KEEP}"
            )));
        }
    }
    core_policy(p).validate().map_err(|e| {
        Error::BadPolicy(format!(
            "the policy keeps nothing: set at least one of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly above 0 ({e})"
        ))
    })?;
    Ok(grouping)
}

/// What to delete now and what to mark, from the selection and the stored marks (pure).
pub fn decide(
    selected: &[String],
    marks: &HashMap<String, i64>,
    append_only: bool,
    delay_ms: i64,
    now: i64,
) -> (Vec<String>, Vec<String>) {
    if !append_only {
        return (selected.to_vec(), Vec::new());
    }
    let mut delete = Vec::new();
    let mut mark = Vec::new();
    for s in selected {
        match marks.get(s) {
            Some(at) if now.saturating_sub(*at) >= delay_ms => delete.push(s.clone()),
            Some(_) => {}
            None => mark.push(s.clone()),
        }
    }
    (delete, mark)
}

impl Service {
    /// `GET /repos/{repo}/retention`: members of the company.
    pub async fn get_retention(&self, ctx: &Ctx, key: &str) -> Result<RetentionPolicies> {
        let row = self.resolve_repo(ctx, key, RepoOp::Read).await?;
        Ok(RetentionPolicies {
            policies: self
                .retention_rows(&row.id)
                .await?
                .iter()
                .map(PolicyRow::to_api)
                .collect(),
        })
    }

    async fn retention_rows(&self, repo_id: &str) -> Result<Vec<PolicyRow>> {
        Ok(sqlx::query_as(
            "SELECT source, grouped_by, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly \
             FROM repo_retention WHERE repo_id = $1 ORDER BY source",
        )
        .bind(repo_id)
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// `PUT /repos/{repo}/retention`: company admins set the repository's policy, or one source's.
    pub async fn set_retention(
        &self,
        ctx: &Ctx,
        key: &str,
        p: &RetentionPolicy,
    ) -> Result<RetentionPolicies> {
        let row = self.resolve_repo(ctx, key, RepoOp::Manage).await?;
        let grouping = validate_policy(p)?;
        let source = p.source.clone().unwrap_or_default();
        let opt = |v: Option<u32>| v.map(i64::from);
        sqlx::query(
            "INSERT INTO repo_retention (repo_id, source, grouped_by, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (repo_id, source) DO UPDATE SET \
             grouped_by = excluded.grouped_by, keep_last = excluded.keep_last, keep_hourly = excluded.keep_hourly, \
             keep_daily = excluded.keep_daily, keep_weekly = excluded.keep_weekly, keep_monthly = excluded.keep_monthly, \
             keep_yearly = excluded.keep_yearly, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(&row.id)
        .bind(&source)
        .bind(grouping)
        .bind(opt(p.keep_last))
        .bind(opt(p.keep_hourly))
        .bind(opt(p.keep_daily))
        .bind(opt(p.keep_weekly))
        .bind(opt(p.keep_monthly))
        .bind(opt(p.keep_yearly))
        .bind(self.now())
        .bind(ctx.principal()?.actor())
        .execute(&self.db.pool)
        .await?;
        self.record(
            ctx,
            Some(&row.company_id),
            "repo.retention_set",
            &format!("repo:{}", row.id),
            "success",
            &format!(
                "source={} grouping={grouping} policy={}",
                if source.is_empty() { "*" } else { &source },
                core_policy(p)
            ),
        )
        .await?;
        self.get_retention(ctx, key).await
    }

    /// `DELETE /repos/{repo}/retention?source=TAG`: company admins remove a policy (the repository's
    /// own without `source`); nothing is deleted any more by it.
    pub async fn delete_retention(&self, ctx: &Ctx, key: &str, source: Option<&str>) -> Result<()> {
        let row = self.resolve_repo(ctx, key, RepoOp::Manage).await?;
        let source = source.unwrap_or_default();
        let gone = sqlx::query("DELETE FROM repo_retention WHERE repo_id = $1 AND source = $2")
            .bind(&row.id)
            .bind(source)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(Error::NotFound);
        }
        self.record(
            ctx,
            Some(&row.company_id),
            "repo.retention_delete",
            &format!("repo:{}", row.id),
            "success",
            &format!("source={}", if source.is_empty() { "*" } else { source }),
        )
        .await
    }

    /// Applies the repository's retention policies now (as `system`). Without a policy, nothing.
    /// Holds the repository's maintenance job exclusion.
    pub async fn apply_retention(self: &Arc<Self>, row: &RepoRow) -> Result<RetentionReport> {
        let _job = self.maintenance.job(&row.id).await;
        self.apply_retention_locked(row).await
    }

    pub(crate) async fn apply_retention_locked(
        self: &Arc<Self>,
        row: &RepoRow,
    ) -> Result<RetentionReport> {
        let policies = self.retention_rows(&row.id).await?;
        if policies.is_empty() {
            return Ok(RetentionReport::default());
        }
        let backend: Arc<dyn brr_storage::Backend> = Arc::new(RecordedBackend::new(self, row)?);
        // Only the config is read from the store (deletions go through the view); the snapshots'
        // times and source tags come from the record.
        let view = blocking(move || match KeylessRepo::open(backend) {
            Ok(v) => Ok(Some(v)),
            Err(brr_engine::EngineError::RepositoryNotFound { .. }) => Ok(None),
            Err(brr_engine::EngineError::Storage(e)) => Err(Error::storage(e)),
            Err(e) => Err(Error::Storage(e.to_string())),
        })
        .await?;
        let Some(view) = view else {
            return Ok(RetentionReport::default());
        };
        let (snapshots, unreadable) = self.recorded_snapshots(&row.id).await?;
        // Per-source policies take their sources out of the repository's policy.
        let overridden: HashSet<&str> = policies
            .iter()
            .filter(|p| !p.source.is_empty())
            .map(|p| p.source.as_str())
            .collect();
        let mut selected: Vec<String> = Vec::new();
        let mut kept = 0u64;
        for p in &policies {
            let members: Vec<_> = snapshots
                .iter()
                .filter(|s| {
                    if p.source.is_empty() {
                        !overridden.contains(s.source.as_str())
                    } else {
                        s.source == p.source
                    }
                })
                .cloned()
                .collect();
            let plan = plan_for(&members, &p.options())
                .map_err(|e| Error::internal(format!("retention plan: {e}")))?;
            kept += plan.groups.iter().map(|g| g.keep.len() as u64).sum::<u64>();
            selected.extend(plan.to_remove().map(|id| id.to_hex()));
        }
        let now = self.now();
        let append_only = row.append_only_now(now);
        let marks: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT snapshot_id, marked_at FROM repo_retention_marks WHERE repo_id = $1",
        )
        .bind(&row.id)
        .fetch_all(&self.db.pool)
        .await?
        .into_iter()
        .collect();
        let (delete, mark) = decide(
            &selected,
            &marks,
            append_only,
            row.delete_delay_secs.saturating_mul(1000),
            now,
        );
        let chosen: HashSet<&String> = selected.iter().collect();
        for stale in marks.keys().filter(|m| !chosen.contains(m)) {
            sqlx::query("DELETE FROM repo_retention_marks WHERE repo_id = $1 AND snapshot_id = $2")
                .bind(&row.id)
                .bind(stale)
                .execute(&self.db.pool)
                .await?;
        }
        for m in &mark {
            sqlx::query(
                "INSERT INTO repo_retention_marks (repo_id, snapshot_id, marked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (repo_id, snapshot_id) DO NOTHING",
            )
            .bind(&row.id)
            .bind(m)
            .bind(now)
            .execute(&self.db.pool)
            .await?;
            self.audit_system(
                row,
                "repo.retention_mark",
                &format!("snapshots/{m}"),
                "success",
                &format!("deleted after {} s", row.delete_delay_secs),
            )
            .await?;
        }
        // One at a time, each audited as soon as it is gone: a failure part-way leaves every
        // deletion that happened audited.
        for d in &delete {
            let Ok(id) = SnapshotId::from_hex(d) else {
                continue;
            };
            let v = view.clone();
            blocking(move || {
                remove_snapshots(&v, &[id])
                    .map(|_| ())
                    .map_err(|e| match e {
                        brr_engine::EngineError::Storage(e) => Error::storage(e),
                        e => Error::Storage(e.to_string()),
                    })
            })
            .await?;
            Maintenance::add(&self.maintenance.counters.retention_deletions, 1);
            self.audit_system(
                row,
                "repo.retention_delete",
                &format!("snapshots/{d}"),
                "success",
                "",
            )
            .await?;
        }
        Maintenance::add(&self.maintenance.counters.retention_runs, 1);
        Maintenance::add(
            &self.maintenance.counters.retention_marks,
            mark.len() as u64,
        );
        Ok(RetentionReport {
            kept,
            deleted: delete,
            marked: mark,
            unreadable: unreadable.into_iter().map(|(n, _)| n).collect(),
        })
    }

    /// The repository's snapshots as recorded (`repo_snapshots`: header time and source tag, kept in
    /// step with the store and rebuilt by `brrd repo reindex`), in the form the retention planner
    /// takes; records whose snapshot ID does not decode are returned as unreadable.
    async fn recorded_snapshots(
        &self,
        repo_id: &str,
    ) -> Result<(Vec<PublicSnapshot>, Vec<(String, String)>)> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT snapshot_id, time, source FROM repo_snapshots WHERE repo_id = $1 ORDER BY time, snapshot_id",
        )
        .bind(repo_id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut good = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for (id, time, source) in rows {
            let parsed = SnapshotId::from_hex(&id)
                .ok()
                .zip(chrono::DateTime::from_timestamp_millis(time).map(|t| t.fixed_offset()));
            match parsed {
                Some((sid, time)) => good.push(PublicSnapshot {
                    id: sid,
                    size: 0,
                    time,
                    source,
                    key_id: String::new(),
                    refs: Vec::new(),
                }),
                None => bad.push((id, "recorded with an invalid ID or time".to_string())),
            }
        }
        Ok((good, bad))
    }

    /// After a committed snapshot upload: applies retention in the background, never failing the
    /// upload (a failure is logged, counted and audited; the schedule retries).
    pub async fn retention_after_snapshot(self: &Arc<Self>, ctx: &Ctx, key: &str) {
        let Ok(row) = self.resolve_repo(ctx, key, RepoOp::Read).await else {
            return;
        };
        let pending = self.maintenance.start_background();
        let svc = self.clone();
        tokio::spawn(async move {
            let _pending = pending;
            if let Err(e) = svc.apply_retention(&row).await {
                Maintenance::add(&svc.maintenance.counters.failed_runs, 1);
                tracing::error!(repo = %row.id, error = %e, "retention after a snapshot failed");
                let _ = svc
                    .audit_system(
                        &row,
                        "repo.maintenance",
                        "",
                        "failure",
                        &format!("job=retention {e}"),
                    )
                    .await;
            }
        });
    }

    /// Appends a `system` audit event about a repository (`target` is relative to it).
    pub(crate) async fn audit_system(
        &self,
        row: &RepoRow,
        action: &str,
        target: &str,
        outcome: &str,
        details: &str,
    ) -> Result<()> {
        let ev = crate::audit::AuditEvent {
            actor: SYSTEM.into(),
            company_id: Some(row.company_id.clone()),
            source: "local".into(),
            action: action.into(),
            target: if target.is_empty() {
                format!("repo:{}", row.id)
            } else {
                format!("repo:{}/{target}", row.id)
            },
            outcome: outcome.into(),
            details: details.into(),
        };
        self.audit.append(self.now(), ev).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(last: Option<u32>) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: last,
            ..Default::default()
        }
    }

    #[test]
    fn policies_are_validated_with_one_line_each() {
        assert_eq!(validate_policy(&policy(Some(3))).unwrap(), "source");
        let mut p = policy(Some(3));
        p.grouping = Some("repository".into());
        assert_eq!(validate_policy(&p).unwrap(), "repository");
        for (bad, needle) in [
            (policy(None), "keeps nothing"),
            (policy(Some(0)), "keeps nothing"),
            (policy(Some(MAX_KEEP + 1)), "at most"),
            (
                RetentionPolicy {
                    grouping: Some("host".into()),
                    ..policy(Some(1))
                },
                "grouping",
            ),
            (
                RetentionPolicy {
                    source: Some("XYZ".into()),
                    ..policy(Some(1))
                },
                "source",
            ),
        ] {
            let e = validate_policy(&bad).unwrap_err();
            assert!(matches!(e, Error::BadPolicy(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn append_only_marks_first_and_deletes_after_the_delay() {
        let sel = vec!["a".to_string(), "b".to_string()];
        let (d, m) = decide(&sel, &HashMap::new(), false, 1000, 0);
        assert_eq!((d.len(), m.len()), (2, 0));
        let (d, m) = decide(&sel, &HashMap::new(), true, 1000, 0);
        assert_eq!((d, m), (vec![], sel.clone()));
        let marks: HashMap<String, i64> = [("a".to_string(), 0), ("b".to_string(), 500)].into();
        let (d, m) = decide(&sel, &marks, true, 1000, 999);
        assert!(d.is_empty() && m.is_empty());
        let (d, m) = decide(&sel, &marks, true, 1000, 1000);
        assert_eq!((d, m), (vec!["a".to_string()], vec![]));
    }
}
