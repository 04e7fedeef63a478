//! Login, sessions and refresh tokens, bootstrap, registration and password reset.

use brr_api::auth::TokenResponse;
use brr_api::identity::UserStatus;

use super::{Ctx, Principal, Service};
use crate::clock::new_token;
use crate::crypto::{sha256_hex, verify_password};
use crate::error::{Error, Result};
use crate::policy::{check_password, normalize_email};

#[derive(sqlx::FromRow)]
struct RefreshRow {
    session_id: String,
    user_id: String,
    expires_at: i64,
    used_at: Option<i64>,
}

impl Service {
    /// Checks e-mail, password and (when enabled) the TOTP code; on success opens a session and
    /// returns tokens.
    pub async fn login(
        &self,
        ctx: &Ctx,
        email: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<TokenResponse> {
        let ip_key = format!("ip:{}", ctx.ip);
        if let Some(minutes) = self.locked_minutes(&ip_key).await? {
            self.record(ctx, None, "auth.login", &ip_key, "throttled", "")
                .await?;
            return Err(Error::Throttled { minutes });
        }
        // Unparseable addresses are treated like unknown ones (same answer, same work).
        let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
        let acct_key = format!("acct:{email}");
        if let Some(minutes) = self.locked_minutes(&acct_key).await? {
            self.record(
                ctx,
                None,
                "auth.login",
                &format!("email:{email}"),
                "locked",
                "",
            )
            .await?;
            return Err(Error::Locked { minutes });
        }
        let user = self.user_by_email(&email).await?;
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let password_ok = verify_password(&hash, password);
        let keys = (ip_key.as_str(), acct_key.as_str());
        let user = match user {
            Some(u)
                if password_ok
                    && u.password_hash.is_some()
                    && u.status()? == UserStatus::Active =>
            {
                u
            }
            Some(u) => {
                return Err(self
                    .login_failed(
                        ctx,
                        keys,
                        &format!("user:{}", u.id),
                        u.company_id.as_deref(),
                        "failure",
                    )
                    .await);
            }
            None => {
                return Err(self
                    .login_failed(ctx, keys, &format!("email:{email}"), None, "failure")
                    .await);
            }
        };
        let target = format!("user:{}", user.id);
        if let Some(c) = &user.company_id
            && self.company_status(c).await?.as_deref() != Some("active")
        {
            self.record(ctx, Some(c), "auth.login", &target, "company_inactive", "")
                .await?;
            return Err(Error::InvalidCredentials);
        }
        match self.check_login_totp(&user.id, totp).await? {
            super::totp::Check::NotEnabled | super::totp::Check::Accepted => {}
            super::totp::Check::Missing => return Err(Error::TotpRequired),
            super::totp::Check::Rejected => {
                return Err(self
                    .login_failed(ctx, keys, &target, user.company_id.as_deref(), "bad_totp")
                    .await);
            }
        }
        self.clear_failures(&acct_key).await?;
        let session_id = self.new_id();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, revoked_at) VALUES ($1, $2, $3, NULL)",
        )
        .bind(&session_id)
        .bind(&user.id)
        .bind(self.now())
        .execute(&self.db.pool)
        .await?;
        let tokens = self.issue_tokens(&user.id, &session_id).await?;
        let ctx = Ctx {
            principal: Some(Principal::User {
                id: user.id.clone(),
                company_id: user.company_id.clone(),
                role: user.role()?,
                session_id: session_id.clone(),
            }),
            ip: ctx.ip,
        };
        self.record(
            &ctx,
            user.company_id.as_deref(),
            "auth.login",
            &target,
            "success",
            &format!("session:{session_id}"),
        )
        .await?;
        Ok(tokens)
    }

    /// Counts a failed login against the client address and the account, audits it, and returns the
    /// error to answer with ([`Error::Locked`] when this failure locked the account).
    async fn login_failed(
        &self,
        ctx: &Ctx,
        (ip_key, acct_key): (&str, &str),
        target: &str,
        company: Option<&str>,
        outcome: &str,
    ) -> Error {
        let r: Result<Error> = async {
            self.record_failure(ip_key, self.config.ip_max_failures)
                .await?;
            let locked = self
                .record_failure(acct_key, self.config.account_max_failures)
                .await?;
            self.record(ctx, company, "auth.login", target, outcome, "")
                .await?;
            if locked {
                self.record(ctx, company, "auth.lockout", target, "locked", "")
                    .await?;
                return Ok(Error::Locked {
                    minutes: (self.config.lockout_secs + 59) / 60,
                });
            }
            Ok(Error::InvalidCredentials)
        }
        .await;
        r.unwrap_or_else(|e| e)
    }

    async fn issue_tokens(&self, user_id: &str, session_id: &str) -> Result<TokenResponse> {
        let refresh = new_token(self.rng.as_ref());
        let now = self.now();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at, used_at, created_at) \
             VALUES ($1, $2, $3, $4, NULL, $5)",
        )
        .bind(sha256_hex(refresh.as_bytes()))
        .bind(session_id)
        .bind(user_id)
        .bind(now + self.config.refresh_token_ttl_secs * 1000)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(TokenResponse {
            access_token: self.tokens.issue(user_id, session_id, now)?,
            token_type: "Bearer".into(),
            expires_in: self.tokens.ttl_secs().unsigned_abs(),
            refresh_token: refresh,
        })
    }

    /// Rotates a refresh token. Presenting an already rotated token revokes the whole session.
    pub async fn refresh(&self, ctx: &Ctx, refresh_token: &str) -> Result<TokenResponse> {
        let hash = sha256_hex(refresh_token.as_bytes());
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT session_id, user_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else {
            self.record(ctx, None, "auth.refresh", "unknown", "failure", "")
                .await?;
            return Err(Error::Unauthenticated);
        };
        let target = format!("session:{}", row.session_id);
        if row.used_at.is_some() {
            self.revoke_session(&row.session_id).await?;
            self.record(
                ctx,
                None,
                "auth.refresh_reuse",
                &target,
                "session_revoked",
                &format!("user:{}", row.user_id),
            )
            .await?;
            return Err(Error::Unauthenticated);
        }
        let now = self.now();
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&hash)
        .execute(&self.db.pool)
        .await?;
        if marked.rows_affected() != 1 {
            self.revoke_session(&row.session_id).await?;
            return Err(Error::Unauthenticated);
        }
        let revoked: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM sessions WHERE id = $1")
                .bind(&row.session_id)
                .fetch_optional(&self.db.pool)
                .await?;
        let user = self.user_by_id(&row.user_id).await?;
        let active = user.as_ref().map(|u| u.status()).transpose()? == Some(UserStatus::Active);
        if row.expires_at <= now || revoked != Some(None) || !active {
            self.record(ctx, None, "auth.refresh", &target, "failure", "")
                .await?;
            return Err(Error::Unauthenticated);
        }
        self.issue_tokens(&row.user_id, &row.session_id).await
    }

    async fn revoke_session(&self, session_id: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(self.now())
            .bind(session_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Ends the caller's session (its access and refresh tokens stop working at once).
    pub async fn logout(&self, ctx: &Ctx) -> Result<()> {
        let p = ctx.principal()?;
        let Principal::User {
            session_id,
            company_id,
            ..
        } = p
        else {
            return Err(Error::Forbidden);
        };
        self.revoke_session(session_id).await?;
        self.record(
            ctx,
            company_id.as_deref(),
            "auth.logout",
            &format!("session:{session_id}"),
            "success",
            "",
        )
        .await
    }

    /// Ends every session of the caller.
    pub async fn logout_all(&self, ctx: &Ctx) -> Result<u64> {
        let p = ctx.principal()?;
        let Principal::User { id, company_id, .. } = p else {
            return Err(Error::Forbidden);
        };
        let n = self.revoke_all_sessions(id).await?;
        self.record(
            ctx,
            company_id.as_deref(),
            "auth.logout_all",
            &format!("user:{id}"),
            "success",
            &format!("sessions={n}"),
        )
        .await?;
        Ok(n)
    }

    /// Changes the caller's password (the current one is required); other sessions end.
    pub async fn change_password(
        &self,
        ctx: &Ctx,
        current: &str,
        new_password: &str,
    ) -> Result<()> {
        let Principal::User { id, session_id, .. } = ctx.principal()? else {
            return Err(Error::Forbidden);
        };
        let user = self.user_by_id(id).await?.ok_or(Error::Unauthenticated)?;
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| verify_password(h, current));
        if !ok {
            self.record(
                ctx,
                user.company_id.as_deref(),
                "user.password_change",
                &format!("user:{id}"),
                "failure",
                "",
            )
            .await?;
            return Err(Error::InvalidCredentials);
        }
        check_password(new_password, &user.email, self.config.password_min_length)?;
        self.set_password(id, new_password, None).await?;
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL")
            .bind(self.now())
            .bind(id)
            .bind(session_id)
            .execute(&self.db.pool)
            .await?;
        self.record(
            ctx,
            user.company_id.as_deref(),
            "user.password_change",
            &format!("user:{id}"),
            "success",
            "",
        )
        .await
    }
}
