//! Sign-up and account recovery: bootstrap and staff setup codes, registration by invitation or
//! open registration with an e-mailed PIN, password reset.

use brr_api::auth::RegisterRequest;
use brr_api::identity::{CompanyVisibility, Role, UserStatus};

use super::codes::Purpose;
use super::{Ctx, Service, USER_COLUMNS, UserRow};
use crate::clock::{new_pin, new_token};
use crate::crypto::hash_password;
use crate::error::{Error, Result};
use crate::policy::{check_name, check_password, check_site, normalize_email};

/// Neutral text for requests whose outcome must not reveal whether an account exists.
pub const CHECK_MAIL: &str = "If the address can be used, a 6-digit PIN has been sent to it.";

impl Service {
    /// Creates the first provider administrator (only while none exists) and returns a one-time setup
    /// code valid for 24 hours.
    pub async fn bootstrap(&self, email: &str) -> Result<String> {
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = $1")
            .bind(Role::ProviderAdmin.as_str())
            .fetch_one(&self.db.pool)
            .await?;
        if existing > 0 {
            return Err(Error::Conflict(
                "a provider administrator exists already".into(),
            ));
        }
        self.create_staff(email, Role::ProviderAdmin).await
    }

    /// Creates a pending provider staff account (provider admin, operator or security officer) and
    /// returns its one-time setup code (valid 24 hours, used with `POST /auth/setup`).
    pub async fn create_staff(&self, email: &str, role: Role) -> Result<String> {
        if !role.is_provider() {
            return Err(Error::invalid(
                "staff roles are provider_admin, operator and security_officer",
            ));
        }
        let email = normalize_email(email)?;
        if self.user_by_email(&email).await?.is_some() {
            return Err(Error::Conflict(
                "an account with this address exists".into(),
            ));
        }
        let id = self.new_id();
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, NULL, $2, $3, $4, NULL, $5, 'inherit', $6)"
        ))
        .bind(&id)
        .bind(&email)
        .bind("Provider staff")
        .bind(role.as_str())
        .bind(UserStatus::Pending.as_str())
        .bind(self.now())
        .execute(&self.db.pool)
        .await?;
        let code = new_token(self.rng.as_ref());
        self.store_code(&email, Purpose::Setup, &code, 24 * 3600)
            .await?;
        let ctx = Ctx {
            principal: None,
            ip: std::net::IpAddr::from([127, 0, 0, 1]),
        };
        self.record(
            &ctx,
            None,
            "admin.create_staff",
            &format!("user:{id}"),
            "success",
            role.as_str(),
        )
        .await?;
        Ok(code)
    }

    /// Sets the bootstrap administrator's password with the setup code.
    pub async fn setup(&self, ctx: &Ctx, email: &str, code: &str, password: &str) -> Result<()> {
        let email = normalize_email(email).map_err(|_| Error::BadCode)?;
        self.consume_code(ctx, &email, Purpose::Setup, code).await?;
        check_password(password, &email, self.config.password_min_length)?;
        let user = self.user_by_email(&email).await?.ok_or(Error::BadCode)?;
        self.set_password(&user.id, password, Some(UserStatus::Active))
            .await?;
        self.record(
            ctx,
            None,
            "auth.setup",
            &format!("user:{}", user.id),
            "success",
            "",
        )
        .await
    }

    pub(super) async fn set_password(
        &self,
        user_id: &str,
        password: &str,
        status: Option<UserStatus>,
    ) -> Result<()> {
        let hash = hash_password(self.rng.as_ref(), password)?;
        let q = match status {
            Some(s) => {
                sqlx::query("UPDATE users SET password_hash = $1, status = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(s.as_str())
                    .bind(user_id)
            }
            None => sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user_id),
        };
        q.execute(&self.db.pool).await?;
        Ok(())
    }

    /// Sign-up. With an open invitation for the address the user joins that company with the invited
    /// role; otherwise, if open registration is enabled, a new company is created with the user as its
    /// administrator. A PIN is mailed either way; the account stays `pending` until it is verified.
    pub async fn register(&self, ctx: &Ctx, req: &RegisterRequest) -> Result<()> {
        let email = normalize_email(&req.email)?;
        let name = check_name("display name", &req.display_name)?;
        check_password(&req.password, &email, self.config.password_min_length)?;
        if let Some(existing) = self.user_by_email(&email).await? {
            if existing.status()? != UserStatus::Pending {
                // Do not reveal that the account exists; tell the owner instead.
                self.send_mail(
                    &email,
                    "brr: sign-up attempt",
                    "Someone tried to sign up with this address, which already has an account.\n\
                     If it was you, use password reset instead."
                        .into(),
                )
                .await?;
                self.record(
                    ctx,
                    existing.company_id.as_deref(),
                    "auth.register",
                    &format!("user:{}", existing.id),
                    "exists",
                    "",
                )
                .await?;
                return Ok(());
            }
            // A pending sign-up is replaced by the new one.
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(&existing.id)
                .execute(&self.db.pool)
                .await?;
        }
        let now = self.now();
        let invitation: Option<(String, String)> = sqlx::query_as(
            "SELECT company_id, role FROM invitations WHERE email = $1 AND status = 'open' AND expires_at > $2 \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(&email)
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        let (company_id, role) = match invitation {
            Some((c, r)) => (
                c,
                Role::parse(&r).ok_or_else(|| Error::internal("bad role"))?,
            ),
            None if self.config.open_registration => {
                let company_name = check_name(
                    "company name",
                    req.company_name.as_deref().unwrap_or_default(),
                )?;
                let site = req.site.as_deref().unwrap_or_default();
                check_site(site)?;
                let id = self.new_id();
                let inserted = sqlx::query(
                    "INSERT INTO companies (id, name, site, visibility, status, created_at) VALUES ($1, $2, $3, $4, 'pending', $5)",
                )
                .bind(&id)
                .bind(&company_name)
                .bind(site)
                .bind(CompanyVisibility::Private.as_str())
                .bind(now)
                .execute(&self.db.pool)
                .await;
                super::conflict_on_unique(inserted, "a company with this name exists")?;
                (id, Role::CompanyAdmin)
            }
            None => return Err(Error::RegistrationClosed),
        };
        let id = self.new_id();
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 'inherit', $8)"
        ))
        .bind(&id)
        .bind(&company_id)
        .bind(&email)
        .bind(&name)
        .bind(role.as_str())
        .bind(hash_password(self.rng.as_ref(), &req.password)?)
        .bind(UserStatus::Pending.as_str())
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        self.send_pin(&email, Purpose::Register).await?;
        self.record(
            ctx,
            Some(&company_id),
            "auth.register",
            &format!("user:{id}"),
            "pin_sent",
            role.as_str(),
        )
        .await
    }

    async fn send_pin(&self, email: &str, purpose: Purpose) -> Result<()> {
        let pin = new_pin(self.rng.as_ref());
        self.store_code(email, purpose, &pin, self.config.pin_ttl_secs)
            .await?;
        let (subject, what) = match purpose {
            Purpose::Register => (
                "brr: confirm your e-mail address",
                "confirm your e-mail address",
            ),
            _ => ("brr: password reset", "reset your password"),
        };
        let minutes = (self.config.pin_ttl_secs + 59) / 60;
        self.send_mail(
            email,
            subject,
            format!(
                "Your PIN to {what} is:\n\nPIN: {pin}\n\nIt is valid for {minutes} minutes and can be used once.\n\
                 If you did not ask for it, ignore this message."
            ),
        )
        .await
    }

    /// Proves the address with the PIN and activates the account (and a new company).
    pub async fn verify_registration(&self, ctx: &Ctx, email: &str, pin: &str) -> Result<()> {
        let email = normalize_email(email).map_err(|_| Error::BadCode)?;
        if let Err(e) = self.consume_code(ctx, &email, Purpose::Register, pin).await {
            self.record(
                ctx,
                None,
                "auth.register_verify",
                &format!("email:{email}"),
                "failure",
                "",
            )
            .await?;
            return Err(e);
        }
        let user: UserRow = self.user_by_email(&email).await?.ok_or(Error::BadCode)?;
        if user.status()? != UserStatus::Pending {
            return Err(Error::BadCode);
        }
        sqlx::query("UPDATE users SET status = 'active' WHERE id = $1")
            .bind(&user.id)
            .execute(&self.db.pool)
            .await?;
        if let Some(c) = &user.company_id {
            sqlx::query(
                "UPDATE companies SET status = 'active' WHERE id = $1 AND status = 'pending'",
            )
            .bind(c)
            .execute(&self.db.pool)
            .await?;
            sqlx::query("UPDATE invitations SET status = 'accepted' WHERE email = $1 AND company_id = $2 AND status = 'open'")
                .bind(&email)
                .bind(c)
                .execute(&self.db.pool)
                .await?;
        }
        self.record(
            ctx,
            user.company_id.as_deref(),
            "auth.register_verify",
            &format!("user:{}", user.id),
            "success",
            "",
        )
        .await
    }

    /// Mails a reset PIN if an active account has this address; the answer is the same either way.
    pub async fn request_password_reset(&self, ctx: &Ctx, email: &str) -> Result<()> {
        let Ok(email) = normalize_email(email) else {
            return Ok(());
        };
        match self.user_by_email(&email).await? {
            Some(u) if u.status()? == UserStatus::Active => {
                self.send_pin(&email, Purpose::Reset).await?;
                self.record(
                    ctx,
                    u.company_id.as_deref(),
                    "auth.password_reset",
                    &format!("user:{}", u.id),
                    "pin_sent",
                    "",
                )
                .await
            }
            _ => {
                self.record(
                    ctx,
                    None,
                    "auth.password_reset",
                    &format!("email:{email}"),
                    "no_account",
                    "",
                )
                .await
            }
        }
    }

    /// Sets a new password with a reset PIN; every session of the user ends.
    pub async fn confirm_password_reset(
        &self,
        ctx: &Ctx,
        email: &str,
        pin: &str,
        new_password: &str,
    ) -> Result<()> {
        let email = normalize_email(email).map_err(|_| Error::BadCode)?;
        check_password(new_password, &email, self.config.password_min_length)?;
        if let Err(e) = self.consume_code(ctx, &email, Purpose::Reset, pin).await {
            self.record(
                ctx,
                None,
                "auth.password_reset_confirm",
                &format!("email:{email}"),
                "failure",
                "",
            )
            .await?;
            return Err(e);
        }
        let user = self.user_by_email(&email).await?.ok_or(Error::BadCode)?;
        self.set_password(&user.id, new_password, None).await?;
        self.revoke_all_sessions(&user.id).await?;
        self.clear_failures(&format!("acct:{email}")).await?;
        self.record(
            ctx,
            user.company_id.as_deref(),
            "auth.password_reset_confirm",
            &format!("user:{}", user.id),
            "success",
            "",
        )
        .await
    }
}
