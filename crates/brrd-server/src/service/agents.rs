//! Agents: machines enrolled with a company API key. The API key only enrols (and reads `/me`); the
//! agent backs up with its own credential `brra_<id>_<secret>`, which is returned once, stored only as
//! a SHA-256 hash, compared in constant time and never logged.

use brr_api::identity::Role;
use brr_api::repos::{Agent, EnrolledAgent};
use zeroize::Zeroizing;

use super::access::{Need, company_scope};
use super::{Ctx, Principal, Service};
use crate::clock::new_token;
use crate::crypto::{ct_eq, sha256_hex};
use crate::error::{Error, Result};
use crate::policy::check_name;

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: String,
    company_id: String,
    name: String,
    api_key_id: String,
    created_at: i64,
    last_seen_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<AgentRow> for Agent {
    fn from(r: AgentRow) -> Self {
        Agent {
            id: r.id,
            company_id: r.company_id,
            name: r.name,
            api_key_id: r.api_key_id,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            revoked_at: r.revoked_at,
        }
    }
}

const AGENT_COLUMNS: &str =
    "id, company_id, name, api_key_id, created_at, last_seen_at, revoked_at";

impl Service {
    /// `POST /agents/enroll` with a company API key: a new agent and its one-time credential.
    pub async fn enroll_agent(&self, ctx: &Ctx, name: &str) -> Result<EnrolledAgent> {
        let Principal::Agent {
            key_id,
            company_id,
            agent_id: None,
        } = ctx.principal()?
        else {
            return Err(Error::Forbidden);
        };
        let name = check_name("agent name", name)?;
        // The count and the insert run in one transaction holding the company's quota row, so
        // concurrent enrolments never pass the limit together.
        let (mut tx, quota) = self.quota_tx(company_id).await?;
        if let Err(e) = Self::check_agents_in(&mut tx, company_id, quota.max_agents).await {
            tx.rollback().await?;
            self.record(
                ctx,
                Some(company_id),
                "agent.enroll",
                &format!("api_key:{key_id}"),
                e.code(),
                &e.to_string(),
            )
            .await?;
            return Err(e);
        }
        let id = self.new_id().replace('-', "");
        let secret = Zeroizing::new(new_token(self.rng.as_ref()));
        sqlx::query(&format!(
            "INSERT INTO agents ({AGENT_COLUMNS}, secret_hash) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)"
        ))
        .bind(&id)
        .bind(company_id)
        .bind(&name)
        .bind(key_id)
        .bind(self.now())
        .bind(sha256_hex(secret.as_bytes()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.record(
            ctx,
            Some(company_id),
            "agent.enroll",
            &format!("agent:{id}"),
            "success",
            &format!("name={name}"),
        )
        .await?;
        Ok(EnrolledAgent {
            token: format!("brra_{id}_{}", secret.as_str()),
            agent_id: id,
        })
    }

    /// `GET /agents` (company admins): the company's agents.
    pub async fn list_agents(&self, ctx: &Ctx) -> Result<Vec<Agent>> {
        let company = self.agent_admin(ctx)?;
        let rows: Vec<AgentRow> = sqlx::query_as(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE company_id = $1 ORDER BY created_at, id"
        ))
        .bind(&company)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.into_iter().map(Agent::from).collect())
    }

    /// `DELETE /agents/{agent_id}` (company admins): the agent is refused from its next request on.
    pub async fn revoke_agent(&self, ctx: &Ctx, id: &str) -> Result<()> {
        let company = self.agent_admin(ctx)?;
        let r = sqlx::query(
            "UPDATE agents SET revoked_at = $1 WHERE id = $2 AND company_id = $3 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(id)
        .bind(&company)
        .execute(&self.db.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        self.record(
            ctx,
            Some(&company),
            "agent.revoke",
            &format!("agent:{id}"),
            "success",
            "",
        )
        .await
    }

    fn agent_admin(&self, ctx: &Ctx) -> Result<String> {
        let p = ctx.principal()?;
        let company = p.company_id().ok_or(Error::Forbidden)?;
        company_scope(p, company, Need::Manage)?;
        if p.role() != Some(Role::CompanyAdmin) {
            return Err(Error::Forbidden);
        }
        Ok(company.to_string())
    }

    /// Resolves `brra_<id>_<secret>` (the part after `brra_`): unrevoked agent of an active company
    /// (revoking the API key it enrolled with stops further enrolments, not the agent); notes when the agent was last seen.
    pub(crate) async fn authenticate_agent(&self, rest: &str) -> Result<Principal> {
        let (id, secret) = rest.split_once('_').ok_or(Error::Unauthenticated)?;
        let row: Option<(String, String, String, Option<i64>)> = sqlx::query_as(
            "SELECT company_id, secret_hash, api_key_id, revoked_at FROM agents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some((company_id, hash, key_id, revoked)) = row else {
            return Err(Error::Unauthenticated);
        };
        if revoked.is_some() || !ct_eq(&sha256_hex(secret.as_bytes()), &hash) {
            return Err(Error::Unauthenticated);
        }
        if self.company_status(&company_id).await?.as_deref() != Some("active") {
            return Err(Error::Unauthenticated);
        }
        // At most one write a minute per agent, not one per request, and off the request path: a
        // database write (with its sync) would otherwise delay the first request of every operation.
        let now = self.now();
        let pool = self.db.pool.clone();
        let agent = id.to_string();
        tokio::spawn(async move {
            let r = sqlx::query(
                "UPDATE agents SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $3)",
            )
            .bind(now)
            .bind(&agent)
            .bind(now - 60_000)
            .execute(&pool)
            .await;
            if let Err(e) = r {
                tracing::warn!(agent = %agent, error = %e, "could not record when the agent was last seen");
            }
        });
        Ok(Principal::Agent {
            key_id,
            company_id,
            agent_id: Some(id.to_string()),
        })
    }
}
