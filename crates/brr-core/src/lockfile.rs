//! Lock files (`locks/<random id>`): who is working on the repository.
//!
//! `shared` locks are taken by backups (any number at once); an `exclusive` lock by prune (one at a time).
//! A lock names its host and process so a lock left by a killed process on the same host is recognised
//! as stale without relying on clocks; locks of other hosts are only removed by `brr unlock`.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, FormatError, Result};

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Many at once (backup).
    Shared,
    /// Alone among exclusive locks (prune).
    Exclusive,
}

/// A lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// What the holder does ("backup", "prune").
    pub purpose: String,
    /// Host name.
    pub hostname: String,
    /// Process ID on that host.
    pub pid: u32,
    /// User name.
    pub username: String,
    /// When it was taken.
    pub created: DateTime<FixedOffset>,
}

impl LockFile {
    /// Serializes for storage.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| CoreError::invalid("lock", e.to_string()))
    }

    /// Parses a lock file.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| FormatError::new("lock", e.to_string()).into())
    }
}
