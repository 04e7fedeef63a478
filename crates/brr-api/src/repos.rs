//! Repositories on the server, their files, usage, quotas and enrolled agents (docs/server-repositories.md).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A repository stored by brrd for one company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Id (UUID); also the last folder of its location in the store.
    pub id: String,
    /// Owning company.
    pub company_id: String,
    /// Name, unique in the company (`[a-z0-9][a-z0-9-]{0,62}`).
    pub name: String,
    /// Whether deletions through the API are refused now (an `append_only` turned off takes effect
    /// only after `delete_delay_secs`).
    pub append_only: bool,
    /// When a requested end of append-only takes effect (Unix ms), if one is pending.
    pub append_only_ends_at: Option<i64>,
    /// Delay before a deletion of an append-only repository's snapshots may take effect, in seconds.
    pub delete_delay_secs: i64,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// `user:<id>` of the creator.
    pub created_by: String,
    /// Usage counters.
    pub usage: RepoUsage,
}

/// What a repository holds, as far as the server can know without the key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoUsage {
    /// Bytes of every file stored (packs, index files, snapshots, keys, config, locks, GC records).
    pub stored_bytes: u64,
    /// Bytes of pack files.
    pub pack_bytes: u64,
    /// Pack files.
    pub packs: u64,
    /// Snapshots.
    pub snapshots: u64,
    /// Sum over snapshots of the stored (compressed, encrypted) lengths of the blobs each references:
    /// plaintext sizes are unknown to the server.
    pub logical_bytes: u64,
    /// `logical_bytes / pack_bytes` (0 when nothing is stored).
    pub dedup_ratio: f64,
    /// The newest snapshot of each source tag.
    pub last_snapshots: Vec<SnapshotInfo>,
}

/// A committed snapshot as the server sees it (cleartext header and reference list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotInfo {
    /// Snapshot file name.
    pub id: String,
    /// Header time (Unix ms).
    pub time: i64,
    /// Opaque source tag (hex).
    pub source: String,
    /// Referenced blobs.
    pub refs: u64,
    /// Sum of the stored lengths of the referenced blobs.
    pub bytes: u64,
    /// When it was uploaded (Unix ms).
    pub committed_at: i64,
}

/// `POST /repos`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepository {
    /// Name, unique in the company.
    pub name: String,
    /// Refuse deletions through the API.
    #[serde(default)]
    pub append_only: bool,
    /// Delay in seconds before turning append-only off takes effect (default 7 days).
    #[serde(default)]
    pub delete_delay_secs: Option<i64>,
}

/// `PATCH /repos/{repo}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRepository {
    /// Turn append-only on (at once) or off (after `delete_delay_secs`).
    #[serde(default)]
    pub append_only: Option<bool>,
    /// New delay; refused while the repository is append-only.
    #[serde(default)]
    pub delete_delay_secs: Option<i64>,
}

/// One file of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// `POST /repos/{repo}/blobs/lookup`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobLookup {
    /// Blob IDs (64 hex characters), at most 10 000.
    pub ids: Vec<String>,
}

/// Answer of `POST /repos/{repo}/blobs/lookup`, in the order of the request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobPresence {
    /// Whether the repository holds each blob in a stored pack that a stored index file lists and no
    /// GC record condemns (what a backup may deduplicate against).
    pub present: Vec<bool>,
}

/// Most IDs one blob look-up may ask about.
pub const MAX_LOOKUP_IDS: usize = 10_000;

/// A company's limits; `None` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Bytes stored over all repositories.
    #[serde(default)]
    pub max_stored_bytes: Option<u64>,
    /// Snapshots over all repositories.
    #[serde(default)]
    pub max_snapshots: Option<u64>,
    /// Enrolled, unrevoked agents.
    #[serde(default)]
    pub max_agents: Option<u64>,
}

/// `GET /companies/{company_id}/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyUsage {
    /// The company.
    pub company_id: String,
    /// Its limits.
    pub quota: Quota,
    /// Bytes stored over all repositories.
    pub stored_bytes: u64,
    /// Snapshots over all repositories.
    pub snapshots: u64,
    /// Unrevoked agents.
    pub agents: u64,
    /// Sum of the repositories' logical bytes.
    pub logical_bytes: u64,
    /// Logical bytes over pack bytes (0 when nothing is stored).
    pub dedup_ratio: f64,
    /// Each repository with its usage.
    pub repositories: Vec<Repository>,
    /// The company's most recent failed backup (docs/server-repositories.md §6), if any.
    #[serde(default)]
    pub last_failed_backup: Option<FailedBackup>,
}

/// A failed backup, judged by the server without the key: a backup session that ended or expired
/// without a snapshot, or a snapshot upload refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedBackup {
    /// The repository.
    pub repo_id: String,
    /// `expired`, `ended_without_snapshot`, `missing_blobs` or `quota_exceeded`.
    pub reason: String,
    /// Who ran it (`agent:<id>` or `user:<id>`).
    pub principal: String,
    /// The host name of its backup lock, when one was open.
    pub hostname: Option<String>,
    /// When the server judged it failed (Unix ms).
    pub at: i64,
}

/// `POST /agents/enroll` (authenticated with a company API key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollAgent {
    /// Name of the machine.
    pub name: String,
}

/// Answer of `POST /agents/enroll`: the agent's own credential, shown only once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolledAgent {
    /// The new agent's id.
    pub agent_id: String,
    /// `brra_<id>_<secret>`: the bearer token of the agent.
    pub token: String,
}

/// An enrolled agent (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Id.
    pub id: String,
    /// Company.
    pub company_id: String,
    /// Machine name.
    pub name: String,
    /// The API key it enrolled with.
    pub api_key_id: String,
    /// Enrolment time (Unix ms).
    pub created_at: i64,
    /// Last authenticated request (Unix ms), if any.
    pub last_seen_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// Answer of `POST /repos/{repo}/verify`: a scrub of every stored file without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReport {
    /// True when nothing is damaged or missing.
    pub ok: bool,
    /// Damaged and missing files.
    pub findings: Vec<VerifyFinding>,
    /// Harmless states (unreadable locks, packs no index file describes).
    pub warnings: Vec<String>,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Snapshots that parsed.
    pub snapshots: u64,
    /// Pack files stored.
    pub packs: u64,
}

/// One damaged or missing file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyFinding {
    /// Repository-relative path (`data/ab/ab12…`, `index/…`, `snapshots/…`, `keys/…`, `gc/…`, `config`).
    pub file: String,
    /// `damaged` or `missing`.
    pub problem: String,
    /// What is wrong, in one line.
    pub reason: String,
    /// Snapshots affected (file names).
    pub snapshots: Vec<String>,
}
