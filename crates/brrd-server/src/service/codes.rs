//! One-time codes (e-mailed PINs and bootstrap setup codes) and the login throttles.

use super::{Ctx, Service};
use crate::crypto::{ct_eq, hmac_hex};
use crate::error::{Error, Result};

/// What a one-time code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sign-up: the address belongs to the registrant.
    Register,
    /// Password reset.
    Reset,
    /// Bootstrap administrator's first password.
    Setup,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::Reset => "reset",
            Purpose::Setup => "setup",
        }
    }
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: String,
    code_hash: String,
    expires_at: i64,
    attempts: i64,
    used: i64,
}

/// State of a throttle key.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct ThrottleRow {
    failures: i64,
    window_start: i64,
    locked_until: i64,
}

impl Service {
    fn code_hash(&self, email: &str, purpose: Purpose, code: &str) -> Result<String> {
        hmac_hex(&self.keys.pepper, &[purpose.as_str(), email, code])
    }

    /// Stores a new code for `email` (replacing older ones for the same purpose); returns nothing —
    /// the caller mails or prints the code it generated.
    pub(crate) async fn store_code(
        &self,
        email: &str,
        purpose: Purpose,
        code: &str,
        ttl_secs: i64,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("DELETE FROM one_time_codes WHERE email = $1 AND purpose = $2")
            .bind(email)
            .bind(purpose.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO one_time_codes (id, email, purpose, code_hash, expires_at, attempts, used, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, $6)",
        )
        .bind(self.new_id())
        .bind(email)
        .bind(purpose.as_str())
        .bind(self.code_hash(email, purpose, code)?)
        .bind(now + ttl_secs * 1000)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Consumes a code: single use, before expiry, within the attempt limit. Any failure is
    /// [`Error::BadCode`], also for addresses that have no code (no enumeration), and counts against
    /// the client address's throttle (shared with failed logins), so that requesting fresh PINs
    /// does not give unlimited guesses.
    pub(crate) async fn consume_code(
        &self,
        ctx: &Ctx,
        email: &str,
        purpose: Purpose,
        code: &str,
    ) -> Result<()> {
        let ip_key = format!("ip:{}", ctx.ip);
        if let Some(minutes) = self.locked_minutes(&ip_key).await? {
            return Err(Error::Throttled { minutes });
        }
        let r = self.check_code(email, purpose, code).await;
        if matches!(r, Err(Error::BadCode)) {
            self.record_failure(&ip_key, self.config.ip_max_failures)
                .await?;
        }
        r
    }

    async fn check_code(&self, email: &str, purpose: Purpose, code: &str) -> Result<()> {
        let row: Option<CodeRow> = sqlx::query_as(
            "SELECT id, code_hash, expires_at, attempts, used FROM one_time_codes WHERE email = $1 AND purpose = $2",
        )
        .bind(email)
        .bind(purpose.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else {
            return Err(Error::BadCode);
        };
        let max = self.config.pin_max_attempts;
        if row.used != 0 || row.expires_at <= self.now() || row.attempts >= max {
            return Err(Error::BadCode);
        }
        // Count the attempt before comparing, so parallel guesses cannot exceed the limit.
        let counted = sqlx::query(
            "UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts = $2 AND used = 0",
        )
        .bind(&row.id)
        .bind(row.attempts)
        .execute(&self.db.pool)
        .await?;
        if counted.rows_affected() != 1 {
            return Err(Error::BadCode);
        }
        if !ct_eq(&self.code_hash(email, purpose, code)?, &row.code_hash) {
            return Err(Error::BadCode);
        }
        let used = sqlx::query("UPDATE one_time_codes SET used = 1 WHERE id = $1 AND used = 0")
            .bind(&row.id)
            .execute(&self.db.pool)
            .await?;
        if used.rows_affected() != 1 {
            return Err(Error::BadCode);
        }
        Ok(())
    }

    async fn throttle_row(&self, key: &str) -> Result<Option<ThrottleRow>> {
        Ok(sqlx::query_as(
            "SELECT failures, window_start, locked_until FROM throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.db.pool)
        .await?)
    }

    /// Minutes left of a lock on `key`, if locked.
    pub(crate) async fn locked_minutes(&self, key: &str) -> Result<Option<i64>> {
        let now = self.now();
        Ok(self
            .throttle_row(key)
            .await?
            .filter(|r| r.locked_until > now)
            .map(|r| (r.locked_until - now + 59_999) / 60_000))
    }

    /// Records a failure on `key`; locks it once `max` failures fall within the window. Returns true
    /// when this failure caused the lock.
    pub(crate) async fn record_failure(&self, key: &str, max: i64) -> Result<bool> {
        let now = self.now();
        let window = self.config.lockout_secs * 1000;
        let row = self.throttle_row(key).await?;
        let (failures, start) = match row {
            Some(r) if now - r.window_start < window => (r.failures + 1, r.window_start),
            _ => (1, now),
        };
        let lock = failures >= max;
        let locked_until = if lock { now + window } else { 0 };
        sqlx::query(
            "INSERT INTO throttle (key, failures, window_start, locked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET failures = $2, window_start = $3, locked_until = $4",
        )
        .bind(key)
        .bind(if lock { 0 } else { failures })
        .bind(if lock { now } else { start })
        .bind(locked_until)
        .execute(&self.db.pool)
        .await?;
        Ok(lock)
    }

    /// Forgets failures on `key` (after a successful login or password reset).
    pub(crate) async fn clear_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM throttle WHERE key = $1")
            .bind(key)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}
