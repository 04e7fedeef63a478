//! The JSON error envelope every failed request returns: `{ "error": { "code", "message" } }`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ApiError,
}

/// A stable, machine-readable error code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// Stable code, e.g. `auth.invalid_credentials`; documented in docs/platform.md.
    pub code: String,
    /// Message for people; never contains secrets.
    pub message: String,
}
