//! The optional TOTP second factor: enrolment, confirmation, disabling, and the check at login.
//! Codes are accepted within ±1 step and never twice (the last used step is stored). Wrong codes at
//! confirmation and disabling count against the account like failed logins (key `totp:<user id>`), so
//! a stolen session cannot guess its way to switching the second factor off.

use brr_api::auth::TotpEnrollment;

use super::{Ctx, Principal, Service};
use crate::clock::random_bytes;
use crate::error::{Error, Result};
use crate::totp::{base32, matching_step};

/// Outcome of the TOTP check at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The account has no second factor.
    NotEnabled,
    /// Enabled, and no code was sent.
    Missing,
    /// The code is right and unused.
    Accepted,
    /// Wrong, stale or replayed code.
    Rejected,
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    totp_secret: Option<String>,
    totp_enabled: i64,
    totp_last_step: i64,
}

impl Service {
    async fn totp_row(&self, user_id: &str) -> Result<TotpRow> {
        sqlx::query_as("SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// Accepts `code` for `secret` if it matches a step later than the last one used.
    async fn accept_code(
        &self,
        user_id: &str,
        secret_hex: &str,
        last_step: i64,
        code: &str,
    ) -> Result<bool> {
        let secret = hex::decode(secret_hex).map_err(Error::internal)?;
        let Some(step) = matching_step(&secret, code, self.now()) else {
            return Ok(false);
        };
        if step <= last_step {
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.db.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub(super) async fn check_login_totp(
        &self,
        user_id: &str,
        code: Option<&str>,
    ) -> Result<Check> {
        let row = self.totp_row(user_id).await?;
        let (1, Some(secret)) = (row.totp_enabled, row.totp_secret.as_deref()) else {
            return Ok(Check::NotEnabled);
        };
        let Some(code) = code else {
            return Ok(Check::Missing);
        };
        Ok(
            if self
                .accept_code(user_id, secret, row.totp_last_step, code)
                .await?
            {
                Check::Accepted
            } else {
                Check::Rejected
            },
        )
    }

    /// Checks a code for a settings change, throttled per account: refused while the account's TOTP
    /// attempts are locked, every wrong code audited and counted, a lock after
    /// `account_max_failures` wrong codes within `lockout_secs`.
    async fn throttled_code(
        &self,
        ctx: &Ctx,
        (id, company): (&str, Option<&str>),
        action: &str,
        secret: &str,
        last_step: i64,
        code: &str,
    ) -> Result<()> {
        let key = format!("totp:{id}");
        let target = format!("user:{id}");
        if let Some(minutes) = self.locked_minutes(&key).await? {
            self.record(ctx, company, action, &target, "locked", "")
                .await?;
            return Err(Error::Locked { minutes });
        }
        if self.accept_code(id, secret, last_step, code).await? {
            return self.clear_failures(&key).await;
        }
        self.record(ctx, company, action, &target, "failure", "")
            .await?;
        if self
            .record_failure(&key, self.config.account_max_failures)
            .await?
        {
            self.record(ctx, company, "auth.lockout", &target, "locked", "")
                .await?;
            return Err(Error::Locked {
                minutes: (self.config.lockout_secs + 59) / 60,
            });
        }
        Err(Error::BadCode)
    }

    fn caller_user(ctx: &Ctx) -> Result<(&str, Option<&str>)> {
        match ctx.principal()? {
            Principal::User { id, company_id, .. } => Ok((id, company_id.as_deref())),
            Principal::Agent { .. } => Err(Error::Forbidden),
        }
    }

    /// Starts enrolment: a new secret, not yet enabled.
    pub async fn totp_enroll(&self, ctx: &Ctx) -> Result<TotpEnrollment> {
        let (id, company) = Self::caller_user(ctx)?;
        if self.totp_row(id).await?.totp_enabled == 1 {
            return Err(Error::Conflict(
                "TOTP is enabled already; disable it first".into(),
            ));
        }
        let secret = random_bytes(self.rng.as_ref(), 20);
        sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_enabled = 0, totp_last_step = 0 WHERE id = $2",
        )
        .bind(hex::encode(&secret))
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        let email = self
            .user_by_id(id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        self.record(
            ctx,
            company,
            "user.totp_enroll",
            &format!("user:{id}"),
            "started",
            "",
        )
        .await?;
        let b32 = base32(&secret);
        Ok(TotpEnrollment {
            otpauth_uri: format!(
                "otpauth://totp/{issuer}:{email}?secret={b32}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
                issuer = self.config.issuer
            ),
            secret: b32,
        })
    }

    /// Enables TOTP once the user proves the authenticator works.
    pub async fn totp_confirm(&self, ctx: &Ctx, code: &str) -> Result<()> {
        let (id, company) = Self::caller_user(ctx)?;
        let row = self.totp_row(id).await?;
        let Some(secret) = row.totp_secret.as_deref() else {
            return Err(Error::Conflict("start enrolment first".into()));
        };
        let secret = secret.to_string();
        self.throttled_code(
            ctx,
            (id, company),
            "user.totp_enable",
            &secret,
            row.totp_last_step,
            code,
        )
        .await?;
        sqlx::query("UPDATE users SET totp_enabled = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        self.record(
            ctx,
            company,
            "user.totp_enable",
            &format!("user:{id}"),
            "success",
            "",
        )
        .await
    }

    /// Disables TOTP (a current code is required).
    pub async fn totp_disable(&self, ctx: &Ctx, code: &str) -> Result<()> {
        let (id, company) = Self::caller_user(ctx)?;
        let row = self.totp_row(id).await?;
        let (1, Some(secret)) = (row.totp_enabled, row.totp_secret.as_deref()) else {
            return Err(Error::Conflict("TOTP is not enabled".into()));
        };
        let secret = secret.to_string();
        self.throttled_code(
            ctx,
            (id, company),
            "user.totp_disable",
            &secret,
            row.totp_last_step,
            code,
        )
        .await?;
        sqlx::query("UPDATE users SET totp_enabled = 0, totp_secret = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        self.record(
            ctx,
            company,
            "user.totp_disable",
            &format!("user:{id}"),
            "success",
            "",
        )
        .await
    }
}
