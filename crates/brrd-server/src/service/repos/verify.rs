//! Scrub of a stored repository without the key (`POST /repos/{repo}/verify`, `brrd repo verify`):
//! `brr_engine::keyless::scrub` rehashes every content-addressed file against its name, parses every
//! structure and names the snapshots each damaged or missing pack affects.

use brr_api::identity::Role;
use brr_api::repos::{VerifyFinding, VerifyReport};
use brr_engine::keyless::KeylessRepo;
use brr_engine::keyless::scrub::{Problem, ScrubOptions, scrub};
use brr_engine::{EngineError, NoProgress};

use super::rules::RepoOp;
use super::store::blocking;
use super::{RepoRow, Service};
use crate::error::{Error, Result};
use crate::service::Ctx;

impl Service {
    /// `POST /repos/{repo}/verify`: company admins of the company, provider admins and operators.
    pub async fn verify_repo(&self, ctx: &Ctx, key: &str) -> Result<VerifyReport> {
        let op = match ctx.principal()?.role() {
            Some(Role::ProviderAdmin | Role::Operator) => RepoOp::Read,
            Some(Role::CompanyAdmin) => RepoOp::Manage,
            _ => return Err(Error::Forbidden),
        };
        let row = self.resolve_repo(ctx, key, op).await?;
        let actor = ctx.principal()?.actor();
        self.verify_row(&row, &actor, &ctx.ip.to_string()).await
    }

    /// Scrubs every repository or one by id (`brrd repo verify`), as `system`.
    pub async fn verify_repo_by_id(&self, repo_id: &str) -> Result<VerifyReport> {
        let row: RepoRow = sqlx::query_as(&format!(
            "SELECT {} FROM repositories WHERE id = $1",
            super::REPO_COLUMNS
        ))
        .bind(repo_id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or(Error::NotFound)?;
        self.verify_row(&row, "system", "local").await
    }

    async fn verify_row(&self, row: &RepoRow, actor: &str, source: &str) -> Result<VerifyReport> {
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let report = blocking(move || {
            let view = KeylessRepo::open(backend).map_err(|e| match e {
                EngineError::RepositoryNotFound { .. } => Error::Conflict(
                    "the repository has no config file yet: nothing to verify".into(),
                ),
                EngineError::Storage(e) => Error::storage(e),
                other => Error::BadFile(format!("the config does not decode: {}", other.code())),
            })?;
            scrub(&view, &ScrubOptions::default(), &NoProgress)
                .map_err(|e| Error::Storage(e.to_string()))
        })
        .await?;
        let out = VerifyReport {
            ok: report.is_ok(),
            findings: report
                .findings
                .iter()
                .map(|f| VerifyFinding {
                    file: f.file.clone(),
                    problem: match f.problem {
                        Problem::Damaged => "damaged".into(),
                        Problem::Missing => "missing".into(),
                    },
                    reason: f.reason.clone(),
                    snapshots: f.snapshots.iter().map(|s| s.to_hex()).collect(),
                })
                .collect(),
            warnings: report.warnings,
            files: report.files,
            bytes: report.bytes,
            snapshots: report.snapshots,
            packs: report.packs,
        };
        let ev = crate::audit::AuditEvent {
            actor: actor.to_string(),
            company_id: Some(row.company_id.clone()),
            source: source.to_string(),
            action: "repo.verify".into(),
            target: format!("repo:{}", row.id),
            outcome: if out.ok { "success" } else { "damaged" }.into(),
            details: format!(
                "files={} bytes={} findings={}{}",
                out.files,
                out.bytes,
                out.findings.len(),
                out.findings
                    .first()
                    .map(|f| format!(" first={}", f.file))
                    .unwrap_or_default()
            ),
        };
        self.audit.append(self.now(), ev).await?;
        Ok(out)
    }
}
