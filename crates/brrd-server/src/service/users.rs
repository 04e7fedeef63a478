//! The caller's own account and company administrators' management of their users.

use brr_api::audit::AuditQuery;
use brr_api::identity::{Me, PersonalDataExport, UpdateUser, User, UserStatus};

use super::access::{Need, company_scope};
use super::{Ctx, Principal, Service, USER_COLUMNS, UserRow};
use crate::error::{Error, Result};

impl Service {
    /// `GET /me`.
    pub async fn me(&self, ctx: &Ctx) -> Result<Me> {
        match ctx.principal()? {
            Principal::User { id, company_id, .. } => {
                let user = self.user_by_id(id).await?.ok_or(Error::Unauthenticated)?;
                Ok(Me {
                    user: Some(user.to_api()?),
                    api_key_id: None,
                    agent_id: None,
                    company_id: company_id.clone(),
                })
            }
            Principal::Agent {
                key_id,
                company_id,
                agent_id,
            } => Ok(Me {
                agent_id: agent_id.clone(),
                user: None,
                api_key_id: Some(key_id.clone()),
                company_id: Some(company_id.clone()),
            }),
        }
    }

    /// The caller's personal data: the account and every audit entry the caller acted in.
    pub async fn export_me(&self, ctx: &Ctx) -> Result<PersonalDataExport> {
        let Principal::User { id, company_id, .. } = ctx.principal()? else {
            return Err(Error::Forbidden);
        };
        let user = self
            .user_by_id(id)
            .await?
            .ok_or(Error::Unauthenticated)?
            .to_api()?;
        let mut q = AuditQuery {
            actor: Some(format!("user:{id}")),
            limit: Some(500),
            ..AuditQuery::default()
        };
        let mut audit = Vec::new();
        loop {
            let page = self.audit.query(&q, None).await?;
            audit.extend(page.entries);
            match page.next_after {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
        self.record(
            ctx,
            company_id.as_deref(),
            "user.export",
            &format!("user:{id}"),
            "success",
            "",
        )
        .await?;
        Ok(PersonalDataExport { user, audit })
    }

    /// Users of a company (company admin of it, provider admin).
    pub async fn list_users(&self, ctx: &Ctx, company_id: &str) -> Result<Vec<User>> {
        company_scope(ctx.principal()?, company_id, Need::Manage)?;
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE company_id = $1 ORDER BY email"
        ))
        .bind(company_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(UserRow::to_api).collect()
    }

    async fn member(&self, company_id: &str, user_id: &str) -> Result<UserRow> {
        match self.user_by_id(user_id).await? {
            Some(u) if u.company_id.as_deref() == Some(company_id) => Ok(u),
            _ => Err(Error::NotFound),
        }
    }

    /// Changes a user's role, status or visibility. Disabling ends every session at once.
    pub async fn update_user(
        &self,
        ctx: &Ctx,
        company_id: &str,
        user_id: &str,
        req: &UpdateUser,
    ) -> Result<User> {
        let p = ctx.principal()?;
        company_scope(p, company_id, Need::Manage)?;
        let user = self.member(company_id, user_id).await?;
        let is_self = matches!(p, Principal::User { id, .. } if id == user_id);
        if let Some(role) = req.role {
            if role.is_provider() {
                return Err(Error::invalid("only company roles can be granted here"));
            }
            if is_self {
                return Err(Error::Conflict("you cannot change your own role".into()));
            }
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(user_id)
                .execute(&self.db.pool)
                .await?;
            self.record(
                ctx,
                Some(company_id),
                "user.role",
                &format!("user:{user_id}"),
                "success",
                &format!("{} -> {}", user.role, role.as_str()),
            )
            .await?;
        }
        if let Some(status) = req.status {
            if status == UserStatus::Pending {
                return Err(Error::invalid("status must be active or disabled"));
            }
            if is_self {
                return Err(Error::Conflict("you cannot change your own status".into()));
            }
            if user.status()? == UserStatus::Pending {
                return Err(Error::Conflict(
                    "the user has not confirmed the e-mail address yet".into(),
                ));
            }
            sqlx::query("UPDATE users SET status = $1 WHERE id = $2")
                .bind(status.as_str())
                .bind(user_id)
                .execute(&self.db.pool)
                .await?;
            if status == UserStatus::Disabled {
                self.revoke_all_sessions(user_id).await?;
            }
            self.record(
                ctx,
                Some(company_id),
                "user.status",
                &format!("user:{user_id}"),
                "success",
                status.as_str(),
            )
            .await?;
        }
        if let Some(v) = req.visibility {
            sqlx::query("UPDATE users SET visibility = $1 WHERE id = $2")
                .bind(v.as_str())
                .bind(user_id)
                .execute(&self.db.pool)
                .await?;
            self.record(
                ctx,
                Some(company_id),
                "user.visibility",
                &format!("user:{user_id}"),
                "success",
                v.as_str(),
            )
            .await?;
        }
        self.member(company_id, user_id).await?.to_api()
    }

    /// Deletes a user (personal data erased; audit entries keep only the id). Sessions end at once.
    pub async fn delete_user(&self, ctx: &Ctx, company_id: &str, user_id: &str) -> Result<()> {
        let p = ctx.principal()?;
        company_scope(p, company_id, Need::Manage)?;
        self.member(company_id, user_id).await?;
        if matches!(p, Principal::User { id, .. } if id == user_id) {
            return Err(Error::Conflict("you cannot delete yourself".into()));
        }
        self.revoke_all_sessions(user_id).await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&self.db.pool)
            .await?;
        self.record(
            ctx,
            Some(company_id),
            "user.delete",
            &format!("user:{user_id}"),
            "success",
            "",
        )
        .await
    }
}
