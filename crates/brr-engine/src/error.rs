//! Errors of the engine.
//!
//! Policy: library code returns [`EngineError`]; each variant is one precise, actionable line, carries
//! its source, and maps to a stable code ([`EngineError::code`]) and to the CLI's exit code
//! ([`EngineError::exit_code`], documented in docs/cli.md). Damage found in a repository is never
//! silently skipped: it is an error, or — where work can go on (restore, check) — a reported finding.

use brr_core::CoreError;
use brr_storage::StorageError;

/// Every error the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A format or crypto error from the core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A storage error.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No repository at the location.
    #[error("no brr repository at {location} (run `brr init` to create one)")]
    RepositoryNotFound {
        /// Where we looked.
        location: String,
    },
    /// `init` on an existing repository.
    #[error("a repository already exists at {location}")]
    AlreadyExists {
        /// Where.
        location: String,
    },
    /// No key slot opens with the given secret.
    #[error("wrong password or key for the repository at {location}")]
    WrongPassword {
        /// Where.
        location: String,
    },
    /// No snapshot matches.
    #[error("no snapshot matches {query:?} (see `brr snapshots`)")]
    SnapshotNotFound {
        /// What was asked for.
        query: String,
    },
    /// A snapshot reference that is neither `latest` nor hexadecimal.
    #[error(
        "{query:?} is not a snapshot ID: use `latest`, a full ID or a unique prefix of one (see `brr snapshots`)"
    )]
    BadSnapshotId {
        /// What was asked for.
        query: String,
    },
    /// A prefix that matches several snapshots.
    #[error("snapshot ID prefix {query:?} is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousSnapshot {
        /// What was asked for.
        query: String,
        /// Short IDs that match.
        candidates: Vec<String>,
    },
    /// A path inside a snapshot that does not exist.
    #[error("{path:?} does not exist in snapshot {snapshot}")]
    PathNotFound {
        /// The path.
        path: String,
        /// The snapshot (short ID).
        snapshot: String,
    },
    /// The repository is locked by another process in a conflicting way.
    #[error("repository is locked: {holder} (if that process is gone, run `brr unlock`)")]
    Locked {
        /// Who holds it.
        holder: String,
    },
    /// A local file system error outside the repository.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A caller supplied an invalid argument.
    #[error("invalid {what}: {detail}")]
    InvalidArgument {
        /// The parameter.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The repository is damaged in a way that stops this operation.
    #[error("repository damaged: {0}")]
    Damaged(String),
    /// The operation was interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
}

/// Result alias of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// Shorthand for [`EngineError::Io`].
    pub fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        EngineError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    /// Shorthand for [`EngineError::InvalidArgument`].
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            what,
            detail: detail.into(),
        }
    }

    /// Stable error code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Core(e) => e.code(),
            EngineError::Storage(e) => e.code(),
            EngineError::RepositoryNotFound { .. } => "BRR-E001",
            EngineError::AlreadyExists { .. } => "BRR-E002",
            EngineError::WrongPassword { .. } => "BRR-E003",
            EngineError::SnapshotNotFound { .. } => "BRR-E004",
            EngineError::AmbiguousSnapshot { .. } => "BRR-E005",
            EngineError::BadSnapshotId { .. } => "BRR-E012",
            EngineError::PathNotFound { .. } => "BRR-E006",
            EngineError::Locked { .. } => "BRR-E007",
            EngineError::Io { .. } => "BRR-E008",
            EngineError::InvalidArgument { .. } => "BRR-E009",
            EngineError::Damaged(_) => "BRR-E010",
            EngineError::Interrupted => "BRR-E011",
        }
    }

    /// The process exit code the CLI uses for this error (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::InvalidArgument { .. } => 2,
            EngineError::Core(CoreError::InvalidArgument { .. }) => 2,
            EngineError::RepositoryNotFound { .. } | EngineError::AlreadyExists { .. } => 10,
            EngineError::WrongPassword { .. } | EngineError::Core(CoreError::WrongPassword) => 11,
            EngineError::SnapshotNotFound { .. }
            | EngineError::AmbiguousSnapshot { .. }
            | EngineError::BadSnapshotId { .. }
            | EngineError::PathNotFound { .. } => 12,
            EngineError::Locked { .. } => 13,
            EngineError::Damaged(_) => 14,
            EngineError::Core(e) if e.is_integrity_error() => 14,
            EngineError::Interrupted => 130,
            _ => 1,
        }
    }
}
