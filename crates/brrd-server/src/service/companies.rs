//! Companies, invitations and agent API keys.

use brr_api::identity::{
    ApiKey, Company, CompanyVisibility, CreateCompany, CreatedApiKey, Invitation, Role,
    UpdateCompany,
};

use super::access::{Need, company_scope};
use super::{Ctx, Service};
use crate::clock::new_token;
use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::policy::{check_name, check_site, normalize_email};

#[derive(sqlx::FromRow)]
struct CompanyRow {
    id: String,
    name: String,
    site: String,
    visibility: String,
    status: String,
    created_at: i64,
}

impl CompanyRow {
    fn into_api(self) -> Result<Company> {
        Ok(Company {
            visibility: CompanyVisibility::parse(&self.visibility)
                .ok_or_else(|| Error::internal("bad visibility in database"))?,
            id: self.id,
            name: self.name,
            site: self.site,
            status: self.status,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: String,
    company_id: String,
    email: String,
    role: String,
    status: String,
    expires_at: i64,
}

impl InvitationRow {
    fn into_api(self) -> Result<Invitation> {
        Ok(Invitation {
            role: Role::parse(&self.role).ok_or_else(|| Error::internal("bad role in database"))?,
            id: self.id,
            company_id: self.company_id,
            email: self.email,
            status: self.status,
            expires_at: self.expires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    company_id: String,
    name: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        ApiKey {
            id: r.id,
            company_id: r.company_id,
            name: r.name,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

const COMPANY_COLUMNS: &str = "id, name, site, visibility, status, created_at";

impl Service {
    /// Companies the caller may see: all for provider staff, the own one for everyone else.
    pub async fn list_companies(&self, ctx: &Ctx) -> Result<Vec<Company>> {
        let p = ctx.principal()?;
        let rows: Vec<CompanyRow> = match p.role() {
            Some(r) if r.is_provider() => {
                sqlx::query_as(&format!(
                    "SELECT {COMPANY_COLUMNS} FROM companies ORDER BY name"
                ))
                .fetch_all(&self.db.pool)
                .await?
            }
            _ => {
                sqlx::query_as(&format!(
                    "SELECT {COMPANY_COLUMNS} FROM companies WHERE id = $1"
                ))
                .bind(p.company_id().unwrap_or_default())
                .fetch_all(&self.db.pool)
                .await?
            }
        };
        rows.into_iter().map(CompanyRow::into_api).collect()
    }

    /// One company, within scope.
    pub async fn get_company(&self, ctx: &Ctx, id: &str) -> Result<Company> {
        company_scope(ctx.principal()?, id, Need::Read)?;
        self.load_company(id).await
    }

    async fn load_company(&self, id: &str) -> Result<Company> {
        let row: Option<CompanyRow> = sqlx::query_as(&format!(
            "SELECT {COMPANY_COLUMNS} FROM companies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.ok_or(Error::NotFound)?.into_api()
    }

    /// Creates a company and invites its first administrator (provider admins).
    pub async fn create_company(
        &self,
        ctx: &Ctx,
        req: &CreateCompany,
    ) -> Result<(Company, Invitation)> {
        let p = ctx.principal()?;
        if p.role() != Some(Role::ProviderAdmin) {
            return Err(Error::Forbidden);
        }
        let name = check_name("company name", &req.name)?;
        check_site(&req.site)?;
        let email = normalize_email(&req.admin_email)?;
        let id = self.new_id();
        let inserted = sqlx::query(
            "INSERT INTO companies (id, name, site, visibility, status, created_at) VALUES ($1, $2, $3, 'private', 'active', $4)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&req.site)
        .bind(self.now())
        .execute(&self.db.pool)
        .await;
        super::conflict_on_unique(inserted, "a company with this name exists")?;
        self.record(
            ctx,
            Some(&id),
            "company.create",
            &format!("company:{id}"),
            "success",
            &format!("site={}", req.site),
        )
        .await?;
        let inv = self.invite(ctx, &id, &email, Role::CompanyAdmin).await?;
        Ok((self.load_company(&id).await?, inv))
    }

    /// Changes visibility (company admin, provider admin) or status (provider admin only).
    pub async fn update_company(
        &self,
        ctx: &Ctx,
        id: &str,
        req: &UpdateCompany,
    ) -> Result<Company> {
        let p = ctx.principal()?;
        company_scope(p, id, Need::Manage)?;
        if let Some(status) = &req.status {
            if p.role() != Some(Role::ProviderAdmin) {
                return Err(Error::Forbidden);
            }
            if !matches!(status.as_str(), "active" | "suspended") {
                return Err(Error::invalid("status must be active or suspended"));
            }
            sqlx::query("UPDATE companies SET status = $1 WHERE id = $2")
                .bind(status)
                .bind(id)
                .execute(&self.db.pool)
                .await?;
            self.record(
                ctx,
                Some(id),
                "company.status",
                &format!("company:{id}"),
                "success",
                status,
            )
            .await?;
        }
        if let Some(v) = req.visibility {
            sqlx::query("UPDATE companies SET visibility = $1 WHERE id = $2")
                .bind(v.as_str())
                .bind(id)
                .execute(&self.db.pool)
                .await?;
            self.record(
                ctx,
                Some(id),
                "company.visibility",
                &format!("company:{id}"),
                "success",
                v.as_str(),
            )
            .await?;
        }
        self.load_company(id).await
    }

    /// Invites `email` into company `company_id` with a company role.
    pub async fn create_invitation(
        &self,
        ctx: &Ctx,
        company_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Invitation> {
        company_scope(ctx.principal()?, company_id, Need::Manage)?;
        self.load_company(company_id).await?;
        let email = normalize_email(email)?;
        if role.is_provider() {
            return Err(Error::invalid("invitations grant company roles only"));
        }
        self.invite(ctx, company_id, &email, role).await
    }

    async fn invite(
        &self,
        ctx: &Ctx,
        company_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Invitation> {
        let id = self.new_id();
        let expires_at = self.now() + self.config.invitation_ttl_secs * 1000;
        let inviter = ctx.principal()?.actor();
        sqlx::query(
            "INSERT INTO invitations (id, company_id, email, role, invited_by, status, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)",
        )
        .bind(&id)
        .bind(company_id)
        .bind(email)
        .bind(role.as_str())
        .bind(&inviter)
        .bind(expires_at)
        .bind(self.now())
        .execute(&self.db.pool)
        .await?;
        self.send_mail(
            email,
            "brr: you are invited",
            "You are invited to a company on brr.\nSign up with this address (POST /api/v1/auth/register); \
             a 6-digit PIN will then be sent to confirm it."
                .into(),
        )
        .await?;
        self.record(
            ctx,
            Some(company_id),
            "invitation.create",
            &format!("invitation:{id}"),
            "success",
            role.as_str(),
        )
        .await?;
        Ok(Invitation {
            id,
            company_id: company_id.into(),
            email: email.into(),
            role,
            status: "open".into(),
            expires_at,
        })
    }

    /// Invitations of a company.
    pub async fn list_invitations(&self, ctx: &Ctx, company_id: &str) -> Result<Vec<Invitation>> {
        company_scope(ctx.principal()?, company_id, Need::Manage)?;
        let rows: Vec<InvitationRow> = sqlx::query_as(
            "SELECT id, company_id, email, role, status, expires_at FROM invitations WHERE company_id = $1 ORDER BY created_at",
        )
        .bind(company_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.into_iter().map(InvitationRow::into_api).collect()
    }

    /// Revokes an open invitation.
    pub async fn revoke_invitation(&self, ctx: &Ctx, company_id: &str, id: &str) -> Result<()> {
        company_scope(ctx.principal()?, company_id, Need::Manage)?;
        let r = sqlx::query("UPDATE invitations SET status = 'revoked' WHERE id = $1 AND company_id = $2 AND status = 'open'")
            .bind(id)
            .bind(company_id)
            .execute(&self.db.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        self.record(
            ctx,
            Some(company_id),
            "invitation.revoke",
            &format!("invitation:{id}"),
            "success",
            "",
        )
        .await
    }

    /// Creates an agent API key; the secret is returned once and stored only as a hash.
    pub async fn create_api_key(
        &self,
        ctx: &Ctx,
        company_id: &str,
        name: &str,
    ) -> Result<CreatedApiKey> {
        let p = ctx.principal()?;
        company_scope(p, company_id, Need::Manage)?;
        if p.role() != Some(Role::CompanyAdmin) {
            return Err(Error::Forbidden);
        }
        let name = check_name("key name", name)?;
        let id = self.new_id().replace('-', "");
        let secret = new_token(self.rng.as_ref());
        let now = self.now();
        sqlx::query(
            "INSERT INTO api_keys (id, company_id, name, secret_hash, created_by, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&id)
        .bind(company_id)
        .bind(&name)
        .bind(sha256_hex(secret.as_bytes()))
        .bind(p.actor())
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        self.record(
            ctx,
            Some(company_id),
            "api_key.create",
            &format!("api_key:{id}"),
            "success",
            "",
        )
        .await?;
        Ok(CreatedApiKey {
            secret: format!("brr_{id}_{secret}"),
            key: ApiKey {
                id,
                company_id: company_id.into(),
                name,
                created_at: now,
                revoked_at: None,
            },
        })
    }

    /// Keys of a company (metadata only).
    pub async fn list_api_keys(&self, ctx: &Ctx, company_id: &str) -> Result<Vec<ApiKey>> {
        company_scope(ctx.principal()?, company_id, Need::Manage)?;
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, company_id, name, created_at, revoked_at FROM api_keys WHERE company_id = $1 ORDER BY created_at",
        )
        .bind(company_id)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes a key; the agent is refused from the next request on.
    pub async fn revoke_api_key(&self, ctx: &Ctx, company_id: &str, id: &str) -> Result<()> {
        company_scope(ctx.principal()?, company_id, Need::Manage)?;
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND company_id = $3 AND revoked_at IS NULL")
            .bind(self.now())
            .bind(id)
            .bind(company_id)
            .execute(&self.db.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        self.record(
            ctx,
            Some(company_id),
            "api_key.revoke",
            &format!("api_key:{id}"),
            "success",
            "",
        )
        .await
    }
}
