//! The audit trail: entries, queries and verification reports.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One audit entry. `hash` commits to every other field and to the previous entry's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Time, Unix milliseconds.
    pub at: i64,
    /// Who acted: `user:<id>`, `agent:<id>`, `anonymous` or `system`.
    pub actor: String,
    /// Company concerned, if any.
    pub company_id: Option<String>,
    /// Source address of the request.
    pub source: String,
    /// Action, e.g. `auth.login`.
    pub action: String,
    /// What the action was applied to.
    pub target: String,
    /// `success` or `failure` (or a short reason).
    pub outcome: String,
    /// Extra non-secret details.
    pub details: String,
    /// Hash of the previous entry (hex SHA-256).
    pub prev_hash: String,
    /// Hash of this entry (hex SHA-256).
    pub hash: String,
}

/// Query parameters of `GET /audit` and `GET /audit/export`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries at or after this time (Unix ms).
    #[serde(default)]
    pub from: Option<i64>,
    /// Entries before this time (Unix ms).
    #[serde(default)]
    pub to: Option<i64>,
    /// Exact actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// Company id.
    #[serde(default)]
    pub company_id: Option<String>,
    /// Exact action.
    #[serde(default)]
    pub action: Option<String>,
    /// Return entries with `seq` greater than this (pagination cursor).
    #[serde(default)]
    pub after: Option<i64>,
    /// Page size (1–500, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A page of audit entries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    /// Entries in chain order.
    pub entries: Vec<AuditEntry>,
    /// Cursor for the next page (`after=`), absent on the last page.
    pub next_after: Option<i64>,
}

/// The result of verifying the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReport {
    /// True when every entry and checkpoint checks out.
    pub ok: bool,
    /// Number of entries checked.
    pub entries: i64,
    /// Number of signed checkpoints checked.
    pub checkpoints: i64,
    /// Every problem found (empty when `ok`).
    pub problems: Vec<String>,
}
