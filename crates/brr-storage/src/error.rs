//! Errors of the storage crate.
//!
//! Policy: every failure of a [`Backend`](crate::Backend) method is a [`StorageError`] whose `Display` is
//! one line that names the file or location involved and says what went wrong, so a user can act on it
//! without a backtrace. Callers decide by variant or by the helpers [`StorageError::is_not_found`] and
//! [`StorageError::is_retryable`], never by the message; [`StorageError::code`] is a stable code that
//! documentation can explain. Errors from the operating system keep their `std::io::Error` as the
//! source; errors from a storage service (S3, a future HTTP backend) are flattened to one line of text
//! because their types belong to client libraries that callers must not depend on.

use crate::FileKind;

/// Every error a storage backend returns.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file does not exist.
    #[error("{kind} file {name:?} not found in the repository")]
    NotFound {
        /// Kind of the missing file.
        kind: FileKind,
        /// Name of the missing file.
        name: String,
    },

    /// [`Backend::create`](crate::Backend::create) found a `config` file: a repository already exists.
    #[error(
        "a repository already exists at {location} (it has a config file): open it, or choose an empty location"
    )]
    AlreadyExists {
        /// The backend's location.
        location: String,
    },

    /// A file name that the layout does not allow (see [`validate_name`](crate::validate_name)).
    #[error(
        "invalid repository file name {name:?}: names are 1 to 128 characters of 0-9, a-z and '-' \
         (pack names at least 2; the config file is named \"config\")"
    )]
    InvalidName {
        /// The rejected name, escaped for printing.
        name: String,
    },

    /// A repository location (URL or path) that cannot be opened as given.
    #[error("invalid repository location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },

    /// An operating-system error on a local path.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done: `"read"`, `"write"`, `"create folder"`, ….
        op: &'static str,
        /// The file or folder involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A storage service refused or failed an operation, and retrying will not help
    /// (bad credentials, missing bucket, permission denied, unexpected response).
    #[error("storage service error during {op}: {detail}")]
    Backend {
        /// What was being done: `"read"`, `"write"`, `"list"`, ….
        op: &'static str,
        /// The service's error, as one line.
        detail: String,
    },

    /// A storage service failed in a way that may pass: timeout, connection lost, rate limited, server
    /// error. Retrying later may succeed.
    #[error("storage service temporarily unavailable during {op}: {detail} (retrying may help)")]
    Unavailable {
        /// What was being done: `"read"`, `"write"`, `"list"`, ….
        op: &'static str,
        /// The service's error, as one line.
        detail: String,
    },

    /// A file is shorter than a read needed: it is truncated or damaged.
    #[error(
        "{kind} file {name:?} is shorter than expected: needed {expected} bytes, found {got} (truncated or damaged file)"
    )]
    ShortRead {
        /// Kind of the file.
        kind: FileKind,
        /// Name of the file.
        name: String,
        /// Bytes the read asked for.
        expected: u64,
        /// Bytes the file holds in the asked range.
        got: u64,
    },
}

impl StorageError {
    /// Whether the file did not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// Whether the same call may succeed if repeated later: a service that is temporarily unavailable, or
    /// an interrupted or timed-out system call. A retry wrapper retries exactly these.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Unavailable { .. } => true,
            StorageError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// A stable code for this kind of error, for documentation and support (`"S001"` …). Codes are never
    /// reused for another meaning.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::NotFound { .. } => "S001",
            StorageError::AlreadyExists { .. } => "S002",
            StorageError::InvalidName { .. } => "S003",
            StorageError::InvalidLocation { .. } => "S004",
            StorageError::Io { .. } => "S005",
            StorageError::Backend { .. } => "S006",
            StorageError::Unavailable { .. } => "S007",
            StorageError::ShortRead { .. } => "S008",
        }
    }

    /// An [`StorageError::Io`] for `path`.
    pub fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// Collapse a multi-line service message into one line.
pub(crate) fn one_line(s: impl std::fmt::Display) -> String {
    s.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<StorageError> {
        vec![
            StorageError::NotFound {
                kind: FileKind::Pack,
                name: "ab".into(),
            },
            StorageError::AlreadyExists {
                location: "/srv/repo".into(),
            },
            StorageError::InvalidName { name: "..".into() },
            StorageError::InvalidLocation {
                location: "ftp:x".into(),
                reason: "unknown scheme".into(),
            },
            StorageError::io(
                "write",
                std::path::Path::new("/srv/repo/keys/k"),
                std::io::Error::from(std::io::ErrorKind::Interrupted),
            ),
            StorageError::Backend {
                op: "read",
                detail: "access denied".into(),
            },
            StorageError::Unavailable {
                op: "read",
                detail: "timeout".into(),
            },
            StorageError::ShortRead {
                kind: FileKind::Index,
                name: "i".into(),
                expected: 10,
                got: 3,
            },
        ]
    }

    #[test]
    fn messages_are_one_line_and_codes_unique() {
        let mut codes = std::collections::BTreeSet::new();
        for e in samples() {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(!msg.is_empty());
            assert!(codes.insert(e.code()), "duplicate code {}", e.code());
        }
    }

    #[test]
    fn classification() {
        let all = samples();
        assert!(all[0].is_not_found());
        assert!(all.iter().filter(|e| e.is_not_found()).count() == 1);
        let retryable: Vec<&str> = all
            .iter()
            .filter(|e| e.is_retryable())
            .map(|e| e.code())
            .collect();
        assert_eq!(retryable, ["S005", "S007"]);
    }

    #[test]
    fn one_line_collapses_whitespace() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
