//! Server-side maintenance of repositories without the key: retention policies and garbage
//! collection (docs/server-repositories.md §4).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A retention policy (`PUT /repos/{repo}/retention`, one entry of `GET`). Absent counts are unused
/// rules; at least one count must be above zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// `repository` (one group) or `source` (one group per source tag; default).
    #[serde(default)]
    pub grouping: Option<String>,
    /// A source tag (32 lower-case hex): this policy applies to that source's snapshots only, instead
    /// of the repository's policy. Absent: the repository's policy.
    #[serde(default)]
    pub source: Option<String>,
    /// Keep the N newest snapshots.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent hours.
    #[serde(default)]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent days.
    #[serde(default)]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent ISO weeks.
    #[serde(default)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent months.
    #[serde(default)]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent years.
    #[serde(default)]
    pub keep_yearly: Option<u32>,
}

/// The retention policies of a repository (`GET /repos/{repo}/retention`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicies {
    /// The repository's own policy first (no `source`), then per-source policies by tag.
    pub policies: Vec<RetentionPolicy>,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionReport {
    /// Snapshots kept.
    pub kept: u64,
    /// Snapshots deleted (file names).
    pub deleted: Vec<String>,
    /// Snapshots newly marked for deletion after `delete_delay_secs` (append-only repositories).
    pub marked: Vec<String>,
    /// Snapshots whose record could not be used (an ID or time that does not decode): neither kept
    /// nor deleted. Retention plans from the database's record, so a damaged snapshot file is found
    /// by a scrub or `brrd repo reindex`, not here.
    pub unreadable: Vec<String>,
}

/// What one garbage collection did (`POST /repos/{repo}/gc`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcReport {
    /// Pack files before the run.
    pub packs_total: u64,
    /// Packs condemned (no referenced blob) by this run.
    pub packs_condemned: u64,
    /// Packs repacked (live blobs copied, ciphertext unchanged) by this run.
    pub packs_repacked: u64,
    /// Packs deleted by sweeps.
    pub packs_deleted: u64,
    /// Bytes of the deleted packs.
    pub bytes_freed: u64,
    /// Packs written by repacking.
    pub packs_written: u64,
    /// Condemned packs a sweep kept because a snapshot committed meanwhile references them.
    pub packs_kept_referenced: u64,
    /// GC records still waiting for running backups to end.
    pub gc_records_waiting: u64,
    /// Stored bytes of the repository before and after.
    pub stored_bytes_before: u64,
    /// Stored bytes after the run.
    pub stored_bytes_after: u64,
}
