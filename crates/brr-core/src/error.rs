//! Errors of the core crate.
//!
//! Policy: every failure of a core function is a [`CoreError`] that says *what* object was involved and
//! *why* it was rejected, in one line a user can act on. Callers (the engine, the CLI, the server) match on
//! the variant, never on the message; [`CoreError::code`] gives a stable code that documentation can
//! explain. A corrupt or tampered repository object is always [`CoreError::Format`] or
//! [`CoreError::Authentication`], never a panic: every parser here accepts arbitrary bytes.

use std::fmt;

/// A repository object whose bytes do not follow the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The kind of object ("pack trailer", "snapshot", "tree", …).
    pub what: &'static str,
    /// What exactly is wrong.
    pub detail: String,
}

impl FormatError {
    /// A new format error about `what`.
    pub fn new(what: &'static str, detail: impl Into<String>) -> Self {
        FormatError {
            what,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {}: {}", self.what, self.detail)
    }
}

impl std::error::Error for FormatError {}

/// Every error the core crate returns.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Bytes that do not parse as the expected object.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Decryption or MAC verification failed: the object was damaged or tampered with, or belongs to
    /// another repository.
    #[error(
        "authentication failed for {what}: the data is damaged, was tampered with, or belongs to another repository"
    )]
    Authentication {
        /// The object that failed to authenticate.
        what: String,
    },
    /// Content hash does not match the expected ID.
    #[error("{what}: content hash mismatch (expected {expected}, got {actual})")]
    HashMismatch {
        /// The object.
        what: String,
        /// The expected ID (hex).
        expected: String,
        /// The computed ID (hex).
        actual: String,
    },
    /// No key slot accepts the given password or key.
    #[error("wrong password or key: no key slot of this repository can be opened with it")]
    WrongPassword,
    /// An object written by a newer (or unknown) format version.
    #[error("unsupported {what} version {version}: this brr understands version {supported}")]
    UnsupportedVersion {
        /// The object.
        what: &'static str,
        /// The version found.
        version: u32,
        /// The version this build supports.
        supported: u32,
    },
    /// A caller supplied an invalid parameter.
    #[error("invalid {what}: {detail}")]
    InvalidArgument {
        /// The parameter.
        what: &'static str,
        /// Why it was refused.
        detail: String,
    },
    /// A cryptographic primitive failed in a way that is not an authentication failure (key derivation
    /// parameters, RSA key parsing, …).
    #[error("cryptography error in {what}: {detail}")]
    Crypto {
        /// The operation.
        what: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// Compression or decompression failed.
    #[error("compression error: {0}")]
    Compression(String),
}

impl CoreError {
    /// Stable error code, documented in docs/errors.md.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Format(_) => "BRR-C001",
            CoreError::Authentication { .. } => "BRR-C002",
            CoreError::HashMismatch { .. } => "BRR-C003",
            CoreError::WrongPassword => "BRR-C004",
            CoreError::UnsupportedVersion { .. } => "BRR-C005",
            CoreError::InvalidArgument { .. } => "BRR-C006",
            CoreError::Crypto { .. } => "BRR-C007",
            CoreError::Compression(_) => "BRR-C008",
        }
    }

    /// True when the error means the stored data is damaged or was tampered with.
    pub fn is_integrity_error(&self) -> bool {
        matches!(
            self,
            CoreError::Format(_)
                | CoreError::Authentication { .. }
                | CoreError::HashMismatch { .. }
                | CoreError::Compression(_)
        )
    }

    /// Shorthand for [`CoreError::InvalidArgument`].
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            what,
            detail: detail.into(),
        }
    }
}

/// Result alias of the core crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

impl From<crate::retention::RetentionError> for CoreError {
    fn from(e: crate::retention::RetentionError) -> Self {
        CoreError::InvalidArgument {
            what: "retention policy",
            detail: e.to_string(),
        }
    }
}
