//! Garbage-collection records (`gc/<id>`): packs condemned by a prune, waiting to be deleted.
//!
//! Deleting a pack is safe only when no snapshot references its blobs *and* no backup that might still
//! commit such a reference is running. A prune therefore works in two phases, with no exclusive lock on
//! backups and no trust in clocks or access times:
//!
//! 1. **Mark**: write a record with the condemned packs and the blob IDs they hold (`sessions` empty and
//!    `sealed = false`), then list the lock files of running backups and rewrite the record with them
//!    and `sealed = true`. Every backup writes its lock *before* it loads the index and reads `gc/`, and
//!    excludes condemned packs from deduplication: so any backup not listed saw the record.
//! 2. **Sweep** (the same or a later prune): once none of the listed sessions' locks exists any more,
//!    re-read all snapshots; a condemned pack is deleted only if no snapshot references a blob in it
//!    (otherwise it is re-indexed), and then the record is deleted.
//!
//! JSON; named by a random ID (the record is rewritten once, when sealed).

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, FormatError, Result};
use crate::id::{BlobId, PackId};

/// GC record format version.
pub const GC_RECORD_VERSION: u32 = 1;

/// A condemned pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CondemnedPack {
    /// The pack.
    pub id: PackId,
    /// Its size in bytes.
    pub size: u64,
    /// The blobs it holds.
    pub blobs: Vec<BlobId>,
}

/// A GC record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcRecord {
    /// Format version.
    pub version: u32,
    /// When the mark phase ran.
    pub created: DateTime<FixedOffset>,
    /// Whether the session list is complete.
    pub sealed: bool,
    /// Lock IDs of the backups running when the record was sealed.
    pub sessions: Vec<String>,
    /// Condemned packs.
    pub packs: Vec<CondemnedPack>,
}

impl GcRecord {
    /// Serializes for storage.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| CoreError::invalid("gc record", e.to_string()))
    }

    /// Parses a record.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let r: GcRecord = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::new("gc record", e.to_string()))?;
        if r.version != GC_RECORD_VERSION {
            return Err(CoreError::UnsupportedVersion {
                what: "gc record",
                version: r.version,
                supported: GC_RECORD_VERSION,
            });
        }
        Ok(r)
    }
}
