//! The maintenance scheduler of `brrd serve`: one background task that, every
//! `maintenance.interval_secs`, walks the repositories one at a time and runs what is due on each —
//! retention, then garbage collection, then a scrub — each under the repository's job exclusion (never
//! two jobs on one repository at once, also against on-demand runs). A failing job is logged, counted
//! (`brrd_repo_maintenance_failures_total`), audited (`repo.maintenance`, outcome `failure`) and
//! retried at its next due time; the others go on. Due times come from the service's clock and the
//! last runs recorded in `repo_maintenance`, so tests drive [`run_due`] with a manual clock.
//!
//! Shutdown: the task stops at the next repository boundary (a job that runs is finished, never cut).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::Service;
use super::repos::maint::Maintenance;
use super::repos::{REPO_COLUMNS, RepoRow};
use crate::error::{Error, Result};

/// When maintenance runs (`[maintenance]`). A period of 0 turns that job off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// Run the scheduler at all.
    pub enabled: bool,
    /// How often the scheduler looks for due jobs, in seconds.
    pub interval_secs: u64,
    /// Retention on every repository with a policy, in seconds (it also runs after each snapshot).
    pub retention_every_secs: u64,
    /// Garbage collection of every repository, in seconds.
    pub gc_every_secs: u64,
    /// Scrub of every repository, in seconds.
    pub verify_every_secs: u64,
    /// A backup's lock not uploaded again for this long counts as ended (clients rewrite it every
    /// 2 minutes).
    pub session_timeout_secs: u64,
    /// Packs uploaded within this many seconds are neither condemned nor repacked by garbage
    /// collection: a backup interrupted before its snapshot (network loss, a killed client, a
    /// restarted brrd) finds its uploads again when it resumes. 0 turns the grace period off.
    pub pack_grace_secs: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            enabled: true,
            interval_secs: 300,
            retention_every_secs: 3600,
            gc_every_secs: 24 * 3600,
            verify_every_secs: 7 * 24 * 3600,
            session_timeout_secs: 15 * 60,
            pack_grace_secs: 24 * 3600,
        }
    }
}

impl MaintenanceConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.interval_secs == 0 {
            return Err(Error::Config(
                "maintenance.interval_secs must be at least 1".into(),
            ));
        }
        if self.session_timeout_secs < 300 {
            return Err(Error::Config(
                "maintenance.session_timeout_secs must be at least 300 (clients refresh their lock every 120 s)".into(),
            ));
        }
        Ok(())
    }
}

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Retention.
    Retention,
    /// Garbage collection.
    Gc,
    /// Scrub.
    Verify,
}

impl Job {
    /// The name in `repo_maintenance` and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Job::Retention => "retention",
            Job::Gc => "gc",
            Job::Verify => "verify",
        }
    }

    fn every_secs(self, c: &MaintenanceConfig) -> u64 {
        match self {
            Job::Retention => c.retention_every_secs,
            Job::Gc => c.gc_every_secs,
            Job::Verify => c.verify_every_secs,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Jobs run, as (repository id, job).
    pub ran: Vec<(String, &'static str)>,
    /// Jobs that failed, as (repository id, job, message).
    pub failed: Vec<(String, &'static str, String)>,
    /// Backup sessions ended because their lock was not refreshed in time (`crate::service::backups`).
    pub sessions_expired: u64,
}

/// Whether a job last run at `last` (Unix ms) is due at `now` every `every_secs` (0: never).
pub fn is_due(last: Option<i64>, every_secs: u64, now: i64) -> bool {
    if every_secs == 0 {
        return false;
    }
    let every_ms = i64::try_from(every_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    last.is_none_or(|t| now.saturating_sub(t) >= every_ms)
}

impl Service {
    async fn last_run(&self, repo_id: &str, job: Job) -> Result<Option<i64>> {
        let t: Option<(i64,)> = sqlx::query_as(
            "SELECT last_run_at FROM repo_maintenance WHERE repo_id = $1 AND job = $2",
        )
        .bind(repo_id)
        .bind(job.name())
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(t.map(|(t,)| t))
    }

    async fn set_last_run(&self, repo_id: &str, job: Job, at: i64, outcome: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO repo_maintenance (repo_id, job, last_run_at, outcome) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo_id, job) DO UPDATE SET last_run_at = excluded.last_run_at, outcome = excluded.outcome",
        )
        .bind(repo_id)
        .bind(job.name())
        .bind(at)
        .bind(outcome)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Runs one job on one repository now, under its job exclusion. A repository without a config
    /// file yet is skipped (not a failure).
    pub async fn run_job(self: &Arc<Self>, row: &RepoRow, job: Job) -> Result<()> {
        let _g = self.maintenance.job(&row.id).await;
        let r = match job {
            Job::Retention => self.apply_retention_locked(row).await.map(|_| ()),
            Job::Gc => self.collect_garbage_locked(row).await.map(|_| ()),
            Job::Verify => self.verify_repo_by_id(&row.id).await.map(|report| {
                Maintenance::add(&self.maintenance.counters.scheduled_verifications, 1);
                if !report.ok {
                    tracing::warn!(repo = %row.id, findings = report.findings.len(), "scheduled scrub found damage");
                }
            }),
        };
        match r {
            Err(Error::Conflict(_)) => Ok(()),
            other => other,
        }
    }
}

/// Runs every due job on every repository, one repository at a time, stopping between repositories
/// once `stop` is set.
pub async fn run_due(svc: &Arc<Service>, stop: &AtomicBool) -> Result<Pass> {
    let rows: Vec<RepoRow> = sqlx::query_as(&format!(
        "SELECT {REPO_COLUMNS} FROM repositories ORDER BY id"
    ))
    .fetch_all(&svc.db.pool)
    .await?;
    let config = &svc.config.maintenance;
    let mut pass = Pass::default();
    // Backup sessions first: cheap, and independent of the repositories' jobs.
    match svc.expire_backup_sessions().await {
        Ok(n) => pass.sessions_expired = n,
        Err(e) => tracing::error!(error = %e, "cannot judge expired backup sessions"),
    }
    for row in rows {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        for job in [Job::Retention, Job::Gc, Job::Verify] {
            let now = svc.now();
            if !is_due(
                svc.last_run(&row.id, job).await?,
                job.every_secs(config),
                now,
            ) {
                continue;
            }
            let outcome = match svc.run_job(&row, job).await {
                Ok(()) => {
                    pass.ran.push((row.id.clone(), job.name()));
                    "success".to_string()
                }
                Err(e) => {
                    Maintenance::add(&svc.maintenance.counters.failed_runs, 1);
                    tracing::error!(repo = %row.id, job = job.name(), error = %e, "maintenance job failed");
                    let msg = e.to_string();
                    svc.audit_system(
                        &row,
                        "repo.maintenance",
                        "",
                        "failure",
                        &format!("job={} {msg}", job.name()),
                    )
                    .await?;
                    pass.failed.push((row.id.clone(), job.name(), msg));
                    "failure".to_string()
                }
            };
            svc.set_last_run(&row.id, job, now, &outcome).await?;
        }
    }
    Ok(pass)
}

/// Starts the scheduler task; it ends when `stop` is notified (`Running::shutdown`).
pub fn spawn(svc: Arc<Service>, stop: Arc<Notify>) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let stopping = AtomicBool::new(false);
        let notified = stop.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let period = std::time::Duration::from_secs(svc.config.maintenance.interval_secs);
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut notified => break,
                _ = ticks.tick() => {}
            }
            let run = run_due(&svc, &stopping);
            tokio::pin!(run);
            let r = tokio::select! {
                r = &mut run => r,
                _ = &mut notified => {
                    // Finish the job that runs; the pass stops at the next repository.
                    stopping.store(true, Ordering::SeqCst);
                    let r = run.await;
                    if let Err(e) = r {
                        tracing::error!(error = %e, "maintenance pass failed");
                    }
                    break;
                }
            };
            if let Err(e) = r {
                Maintenance::add(&svc.maintenance.counters.failed_runs, 1);
                tracing::error!(error = %e, "maintenance pass failed");
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times() {
        assert!(is_due(None, 10, 0));
        assert!(!is_due(None, 0, 0), "0 turns a job off");
        assert!(!is_due(Some(1000), 10, 10_999));
        assert!(is_due(Some(1000), 10, 11_000));
    }

    #[test]
    fn settings_are_checked() {
        assert!(MaintenanceConfig::default().validate().is_ok());
        let c = MaintenanceConfig {
            session_timeout_secs: 60,
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("session_timeout_secs")
        );
    }
}
