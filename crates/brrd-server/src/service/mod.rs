//! Domain logic: identity, sessions, companies, the directory, the audit trail, repositories, agents
//! and quotas, independent of HTTP.
//!
//! Every operation takes a [`Ctx`] (who is calling, from where) and returns a typed [`Error`]. Company
//! scope and roles are enforced in one place, [`access`].

pub mod access;
pub mod agents;
pub mod auth;
pub mod backups;
pub mod codes;
pub mod companies;
pub mod directory;
pub mod quotas;
pub mod repos;
pub mod scheduler;
pub mod signup;
pub mod totp;
pub mod users;

use std::net::IpAddr;
use std::sync::Arc;

use brr_api::identity::{Role, User, UserStatus, UserVisibility};

use crate::audit::{AuditEvent, AuditLog};
use crate::clock::{Clock, Random};
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::mail::{Mail, Mailer};
use crate::tokens::TokenKeys;

pub use access::Principal;
pub use brr_api::identity::Role as RoleName;

/// Who is calling and from where.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The authenticated caller, if any.
    pub principal: Option<Principal>,
    /// The client address (from the socket, or from a trusted proxy's `X-Forwarded-For`).
    pub ip: IpAddr,
}

impl Ctx {
    /// The caller, or [`Error::Unauthenticated`].
    pub fn principal(&self) -> Result<&Principal> {
        self.principal.as_ref().ok_or(Error::Unauthenticated)
    }

    fn actor(&self) -> String {
        self.principal
            .as_ref()
            .map(Principal::actor)
            .unwrap_or_else(|| "anonymous".into())
    }
}

/// Injected dependencies.
pub struct Deps {
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Randomness source.
    pub rng: Arc<dyn Random>,
    /// Mail transport.
    pub mailer: Arc<dyn Mailer>,
}

/// The service: everything a request handler needs.
pub struct Service {
    /// Database.
    pub db: Db,
    /// Configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Randomness source.
    pub rng: Arc<dyn Random>,
    /// Mail transport.
    pub mailer: Arc<dyn Mailer>,
    /// The audit trail.
    pub audit: AuditLog,
    /// The repository store.
    pub store: repos::Store,
    /// Per-repository exclusions and counters of maintenance (retention, GC, scrubs).
    pub maintenance: repos::maint::Maintenance,
    tokens: TokenKeys,
    keys: Arc<Keys>,
    dummy_hash: String,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("db", &self.db.engine)
            .finish()
    }
}

/// A user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Company (none for provider staff).
    pub company_id: Option<String>,
    /// Normalised e-mail.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role text.
    pub role: String,
    /// Argon2id PHC string.
    pub password_hash: Option<String>,
    /// Status text.
    pub status: String,
    /// Visibility override text.
    pub visibility: String,
    /// Creation time.
    pub created_at: i64,
}

/// Columns of [`UserRow`].
pub const USER_COLUMNS: &str =
    "id, company_id, email, display_name, role, password_hash, status, visibility, created_at";

impl UserRow {
    /// Parsed role.
    pub fn role(&self) -> Result<Role> {
        Role::parse(&self.role).ok_or_else(|| Error::internal("bad role in database"))
    }

    /// Parsed status.
    pub fn status(&self) -> Result<UserStatus> {
        UserStatus::parse(&self.status).ok_or_else(|| Error::internal("bad status in database"))
    }

    /// The API form.
    pub fn to_api(&self) -> Result<User> {
        Ok(User {
            id: self.id.clone(),
            company_id: self.company_id.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role()?,
            status: self.status()?,
            visibility: UserVisibility::parse(&self.visibility)
                .ok_or_else(|| Error::internal("bad visibility in database"))?,
            created_at: self.created_at,
        })
    }
}

/// Maps a unique-constraint violation to [`Error::Conflict`].
fn conflict_on_unique<T>(r: std::result::Result<T, sqlx::Error>, what: &str) -> Result<T> {
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(Error::Conflict(what.into()))
        }
        other => Ok(other?),
    }
}

impl Service {
    /// Builds the service: opens keys, the audit log and the dummy hash used against enumeration.
    pub fn new(db: Db, config: Arc<Config>, keys: Arc<Keys>, deps: Deps) -> Result<Self> {
        let tokens = TokenKeys::new(&keys, &config.issuer, config.access_token_ttl_secs)?;
        let audit = AuditLog::new(db.clone(), keys.clone(), config.audit_checkpoint_every);
        let store = repos::Store::new(config.store_url(), &config.store)?;
        let dummy_hash =
            crate::crypto::hash_password(deps.rng.as_ref(), "dummy password for timing")?;
        Ok(Service {
            db,
            config,
            clock: deps.clock,
            rng: deps.rng,
            mailer: deps.mailer,
            audit,
            store,
            maintenance: Default::default(),
            tokens,
            keys,
            dummy_hash,
        })
    }

    /// Now, Unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn new_id(&self) -> String {
        crate::clock::new_id(self.rng.as_ref())
    }

    /// Appends to the audit trail.
    pub async fn record(
        &self,
        ctx: &Ctx,
        company_id: Option<&str>,
        action: &str,
        target: &str,
        outcome: &str,
        details: &str,
    ) -> Result<()> {
        let ev = AuditEvent {
            actor: ctx.actor(),
            company_id: company_id.map(str::to_string),
            source: ctx.ip.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
            details: details.to_string(),
        };
        self.audit.append(self.now(), ev).await.map(|_| ())
    }

    async fn send_mail(&self, to: &str, subject: &str, body: String) -> Result<()> {
        self.mailer
            .send(Mail {
                to: to.to_string(),
                subject: subject.to_string(),
                body,
            })
            .await
    }

    /// Loads a user by id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        Ok(
            sqlx::query_as::<_, UserRow>(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?,
        )
    }

    /// Loads a user by normalised e-mail.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.db.pool)
        .await?)
    }

    /// Company status, if the company exists.
    pub async fn company_status(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT status FROM companies WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.pool)
                .await?,
        )
    }

    /// Revokes every session of a user (log out everywhere, disable, delete, password change).
    pub async fn revoke_all_sessions(&self, user_id: &str) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(user_id)
        .execute(&self.db.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
