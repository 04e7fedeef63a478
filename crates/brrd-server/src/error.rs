//! Errors of the brrd service.
//!
//! Policy: every fallible function of this crate returns [`Error`]. Each variant has a stable code
//! ([`Error::code`]) that clients may match on and that docs/platform.md lists; the HTTP layer maps
//! variants to status codes in exactly one place (`http::error`). Messages never contain secrets,
//! passwords, tokens or PINs. Internal causes (database, I/O) are logged by the HTTP layer and shown to
//! clients only as `internal`.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in brrd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Wrong e-mail or password (deliberately not saying which).
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// A token is missing, malformed, expired or revoked.
    #[error("authentication required")]
    Unauthenticated,
    /// The password was right, but the account requires a TOTP code.
    #[error("a TOTP code is required for this account")]
    TotpRequired,
    /// Too many failed logins for this account.
    #[error("too many failed logins: this account is locked for {minutes} more minute(s)")]
    Locked {
        /// Minutes until the lock ends (rounded up).
        minutes: i64,
    },
    /// Too many failed attempts from this address.
    #[error("too many failed attempts from your address: try again in {minutes} minute(s)")]
    Throttled {
        /// Minutes until attempts are accepted again (rounded up).
        minutes: i64,
    },
    /// Authenticated, but the role does not allow it.
    #[error("your role does not allow this")]
    Forbidden,
    /// No such resource, or not visible to the caller (cross-company access looks like absence).
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The PIN or setup code is wrong, expired, used or out of attempts.
    #[error("the code is wrong, expired or used up; request a new one")]
    BadCode,
    /// The password does not meet the policy.
    #[error("password rejected: {0}")]
    WeakPassword(String),
    /// Self-registration is disabled and no invitation exists.
    #[error("registration requires an invitation")]
    RegistrationClosed,
    /// A company quota would be exceeded; the message gives used and limit.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The repository is append-only and the operation would delete or hide data.
    #[error("{0}")]
    AppendOnly(String),
    /// An uploaded file's name is not the BLAKE3 of its bytes.
    #[error("{0}")]
    NameMismatch(String),
    /// An uploaded pack's trailer does not decode or does not fill the pack.
    #[error("{0}")]
    BadPack(String),
    /// An uploaded index file, snapshot, lock or GC record does not decode.
    #[error("{0}")]
    BadFile(String),
    /// A snapshot references blobs the repository does not hold in a usable pack.
    #[error("{0}")]
    MissingBlobs(String),
    /// The file exists and may not be replaced.
    #[error("{0}")]
    Exists(String),
    /// A request body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A `Range` outside the file.
    #[error("range outside the file of {size} bytes")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// The repository store failed.
    #[error("store: {0}")]
    Storage(String),
    /// The repository store did not answer or asked to slow down (an S3 outage, a timeout): worth
    /// retrying. The detail is logged, never sent to clients.
    #[error("the repository store is unavailable; retry later")]
    StoreUnavailable(String),
    /// The repository store refuses the server's requests for a reason the provider must fix
    /// (credentials refused or without permission, a missing bucket): answered like an outage (503,
    /// retryable once fixed) with what is wrong; the service's own answer is logged, never sent.
    #[error("the repository store refuses the server's requests ({})", .refusal.describe())]
    StoreRefused {
        /// What is wrong.
        refusal: brr_storage::Refusal,
        /// The store's location (`store.url`, or the repository's place in it); not sent to clients.
        location: String,
        /// The service's answer, for the log.
        detail: String,
    },
    /// Configuration error (start-up only).
    #[error("configuration: {0}")]
    Config(String),
    /// Database failure.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migration failure.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// File system failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A retention policy that cannot be applied as given (422).
    #[error("{0}")]
    BadPolicy(String),
    /// Any other internal failure (crypto, mail transport, TLS set-up).
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "request.invalid",
            Error::InvalidCredentials => "auth.invalid_credentials",
            Error::Unauthenticated => "auth.required",
            Error::TotpRequired => "auth.totp_required",
            Error::Locked { .. } => "auth.locked",
            Error::Throttled { .. } => "auth.throttled",
            Error::Forbidden => "access.forbidden",
            Error::NotFound => "not_found",
            Error::Conflict(_) => "conflict",
            Error::BadCode => "auth.bad_code",
            Error::WeakPassword(_) => "auth.weak_password",
            Error::RegistrationClosed => "auth.registration_closed",
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::AppendOnly(_) => "append_only",
            Error::NameMismatch(_) => "name_mismatch",
            Error::BadPack(_) => "bad_pack",
            Error::BadFile(_) => "bad_file",
            Error::MissingBlobs(_) => "missing_blobs",
            Error::Exists(_) => "exists",
            Error::TooLarge(_) => "too_large",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::Config(_) => "config",
            Error::BadPolicy(_) => "bad_policy",
            Error::StoreUnavailable(_) | Error::StoreRefused { .. } => "store_unavailable",
            Error::Database(_)
            | Error::Migrate(_)
            | Error::Io(_)
            | Error::Internal(_)
            | Error::Storage(_) => "internal",
        }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Whether this is a refusal worth counting in metrics and the audit trail (quota, append-only,
    /// failed upload verification), as its stable code.
    pub fn refusal_reason(&self) -> Option<&'static str> {
        match self {
            Error::QuotaExceeded(_)
            | Error::AppendOnly(_)
            | Error::NameMismatch(_)
            | Error::BadPack(_)
            | Error::BadFile(_)
            | Error::MissingBlobs(_)
            | Error::Exists(_)
            | Error::TooLarge(_) => Some(self.code()),
            _ => None,
        }
    }

    /// Maps a store failure: a refusal the provider must fix (credentials, bucket)
    /// [`Error::StoreRefused`], a missing file [`Error::NotFound`], a retryable one (timeout, outage)
    /// [`Error::StoreUnavailable`], anything else internal.
    pub fn storage(e: brr_storage::StorageError) -> Self {
        if let Some(refusal) = brr_storage::Refusal::of(&e) {
            Error::StoreRefused {
                refusal,
                location: String::new(),
                detail: e.to_string(),
            }
        } else if e.is_not_found() {
            Error::NotFound
        } else if e.is_retryable() {
            Error::StoreUnavailable(e.to_string())
        } else {
            Error::Storage(e.to_string())
        }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
}
