//! Errors of the client.
//!
//! Policy: every failure is a [`ClientError`] whose `Display` is one line saying what went wrong and
//! what to do, never containing a token or password. Each variant has a stable code
//! ([`ClientError::code`], `BRR-N…`, listed in docs/errors.md) and an exit code for the `brr` command
//! line ([`ClientError::exit_code`], listed in docs/cli.md). Every HTTP status and server error code of
//! the repository contract (docs/server-repositories.md) maps to exactly one variant in
//! [`ClientError::from_status`]; callers decide by variant, never by message.

use brr_storage::StorageError;

/// Exit code: not logged in, or the server rejected the credential.
pub const EXIT_AUTH: i32 = 20;
/// Exit code: the server refused the operation for the caller's role.
pub const EXIT_FORBIDDEN: i32 = 21;
/// Exit code: the repository (or another named resource) does not exist for the caller's company.
pub const EXIT_NOT_FOUND: i32 = 22;
/// Exit code: the company's quota is exhausted.
pub const EXIT_QUOTA: i32 = 23;
/// Exit code: the repository is append-only and the operation deletes.
pub const EXIT_APPEND_ONLY: i32 = 24;
/// Exit code: the server cannot be reached, TLS failed, or it keeps failing (5xx).
pub const EXIT_UNREACHABLE: i32 = 25;

/// Every error of the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A server URL that cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A repository name the server would refuse.
    #[error(
        "invalid repository name {name:?}: a repository on a server is named with 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'"
    )]
    InvalidRepoName {
        /// The name, escaped.
        name: String,
    },
    /// A `--ca-cert` file that cannot be read or holds no certificate.
    #[error("CA certificate {path}: {reason}")]
    CaCert {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No credential is stored for the server.
    #[error(
        "not logged in to {server}: run `brr login --server {server} --email E` or `brr agent enroll --server {server} --api-key K`, or set BRR_SERVER_TOKEN"
    )]
    NotLoggedIn {
        /// The server URL.
        server: String,
    },
    /// 401: the token was rejected (expired session, revoked agent) or the e-mail/password is wrong.
    #[error(
        "{server} rejected the credentials: {message} (log in again with `brr login`, or enroll again)"
    )]
    Unauthorized {
        /// The server URL.
        server: String,
        /// The server's message.
        message: String,
    },
    /// 401 `auth.totp_required`: the account needs a TOTP code and none could be asked for.
    #[error(
        "{server} requires a TOTP code for this account: run `brr login` on a terminal, or set BRR_SERVER_TOTP"
    )]
    TotpRequired {
        /// The server URL.
        server: String,
    },
    /// 403: the caller's role does not allow the operation.
    #[error(
        "forbidden by {server}: {message} (your role does not allow this; ask a company admin)"
    )]
    Forbidden {
        /// The server URL.
        server: String,
        /// The server's message.
        message: String,
    },
    /// 403 `append_only`: the repository refuses deletions.
    #[error("refused by {server}: {message} (the repository is append-only)")]
    AppendOnly {
        /// The server URL.
        server: String,
        /// The server's message.
        message: String,
    },
    /// 403 `quota_exceeded`: the company's quota is used up.
    #[error(
        "quota exceeded on {server}: {message} (free space with forget/prune, or ask your provider)"
    )]
    QuotaExceeded {
        /// The server URL.
        server: String,
        /// The server's message.
        message: String,
    },
    /// 404 on a resource other than a repository file.
    #[error("{what} not found on {server} (or not visible to your company)")]
    NotFound {
        /// The server URL.
        server: String,
        /// What was looked for, e.g. `repository "docs"`.
        what: String,
    },
    /// 409: the request conflicts with the server's state (name taken, config exists, missing blobs).
    #[error("conflict on {server}: {message} [{code}]")]
    Conflict {
        /// The server URL.
        server: String,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Another 4xx: the server refused the request as invalid (name mismatch, bad pack, bad range …).
    #[error("{server} refused the request ({status}): {message} [{code}]")]
    Rejected {
        /// The server URL.
        server: String,
        /// HTTP status.
        status: u16,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// 429: too many failed logins for the account or from this address.
    #[error("{server} refuses for now: {message}")]
    Throttled {
        /// The server URL.
        server: String,
        /// The server's message.
        message: String,
    },
    /// 5xx (after retries for idempotent calls).
    #[error(
        "{server} failed ({status}): {message} (retry later; the provider's logs have details)"
    )]
    Server {
        /// The server URL.
        server: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached: DNS, connection refused or reset, timeout.
    #[error("cannot reach {server}: {detail}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// What failed.
        detail: String,
    },
    /// The TLS handshake failed: unknown certificate authority, wrong host name, protocol error.
    #[error("TLS with {server} failed: {detail} (for a private CA pass --ca-cert FILE)")]
    Tls {
        /// The server URL.
        server: String,
        /// What failed.
        detail: String,
    },
    /// The server answered something the contract does not allow.
    #[error("unexpected answer from {server}: {detail}")]
    Protocol {
        /// The server URL.
        server: String,
        /// What was wrong.
        detail: String,
    },
    /// The credentials file cannot be read or written.
    #[error("credentials file {path}: {detail}")]
    Credentials {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// The JSON error envelope, read leniently (extra fields are ignored).
#[derive(serde::Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(serde::Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The server's `(code, message)` from an error body, or a generic pair for a non-JSON body.
fn parse_body(status: u16, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => (e.error.code, one_line(&e.error.message)),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = one_line(text.chars().take(200).collect::<String>().as_str());
            let message = if text.is_empty() {
                format!("HTTP {status}")
            } else {
                text
            };
            (String::new(), message)
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl ClientError {
    /// The error for a non-success answer: `status`, the body (the JSON envelope if any), and `what`
    /// names the resource for a 404.
    pub fn from_status(server: &str, status: u16, body: &[u8], what: &str) -> ClientError {
        let (code, message) = parse_body(status, body);
        let server = server.to_owned();
        let has = |needle: &str| code.contains(needle);
        match status {
            401 if has("totp_required") => ClientError::TotpRequired { server },
            401 => ClientError::Unauthorized { server, message },
            403 if has("append_only") => ClientError::AppendOnly { server, message },
            403 if has("quota") => ClientError::QuotaExceeded { server, message },
            403 => ClientError::Forbidden { server, message },
            404 => ClientError::NotFound {
                server,
                what: what.to_owned(),
            },
            409 => ClientError::Conflict {
                server,
                code,
                message,
            },
            429 => ClientError::Throttled { server, message },
            500..=599 => ClientError::Server {
                server,
                status,
                message,
            },
            _ => ClientError::Rejected {
                server,
                status,
                code,
                message,
            },
        }
    }

    /// Whether repeating the same idempotent request later may succeed: unreachable server, timeout,
    /// 5xx, throttling.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. }
                | ClientError::Server { .. }
                | ClientError::Throttled { .. }
        )
    }

    /// Whether this error says something about the server or the caller's rights rather than about
    /// one file, so the command line should report it instead of the storage error it caused.
    pub fn is_refusal(&self) -> bool {
        self.exit_code() != 1
    }

    /// A stable code for documentation and support (`BRR-N001` …); never reused.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::InvalidUrl { .. } => "BRR-N001",
            ClientError::CaCert { .. } => "BRR-N002",
            ClientError::NotLoggedIn { .. } => "BRR-N003",
            ClientError::Unauthorized { .. } => "BRR-N004",
            ClientError::TotpRequired { .. } => "BRR-N005",
            ClientError::Forbidden { .. } => "BRR-N006",
            ClientError::AppendOnly { .. } => "BRR-N007",
            ClientError::QuotaExceeded { .. } => "BRR-N008",
            ClientError::NotFound { .. } => "BRR-N009",
            ClientError::Conflict { .. } => "BRR-N010",
            ClientError::Rejected { .. } => "BRR-N011",
            ClientError::Throttled { .. } => "BRR-N012",
            ClientError::Server { .. } => "BRR-N013",
            ClientError::Unreachable { .. } => "BRR-N014",
            ClientError::Tls { .. } => "BRR-N015",
            ClientError::Protocol { .. } => "BRR-N016",
            ClientError::Credentials { .. } => "BRR-N017",
            ClientError::InvalidRepoName { .. } => "BRR-N018",
        }
    }

    /// The exit code of the `brr` command line for this error (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::InvalidUrl { .. }
            | ClientError::InvalidRepoName { .. }
            | ClientError::CaCert { .. } => 2,
            ClientError::NotLoggedIn { .. }
            | ClientError::Unauthorized { .. }
            | ClientError::TotpRequired { .. }
            | ClientError::Throttled { .. } => EXIT_AUTH,
            ClientError::Forbidden { .. } => EXIT_FORBIDDEN,
            ClientError::NotFound { .. } => EXIT_NOT_FOUND,
            ClientError::QuotaExceeded { .. } => EXIT_QUOTA,
            ClientError::AppendOnly { .. } => EXIT_APPEND_ONLY,
            ClientError::Unreachable { .. }
            | ClientError::Tls { .. }
            | ClientError::Server { .. } => EXIT_UNREACHABLE,
            ClientError::Conflict { .. }
            | ClientError::Rejected { .. }
            | ClientError::Protocol { .. }
            | ClientError::Credentials { .. } => 1,
        }
    }

    /// As a storage error for the engine: `Unavailable` for what may pass, `Backend` otherwise (a
    /// missing file is mapped by the backend itself, which knows the kind and name).
    pub fn to_storage(&self, op: &'static str) -> StorageError {
        if self.is_retryable() {
            StorageError::Unavailable {
                op,
                detail: self.to_string(),
            }
        } else {
            StorageError::Backend {
                op,
                detail: self.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message}})
            .to_string()
            .into_bytes()
    }

    const S: &str = "https://brrd.test";

    #[test]
    fn every_contract_status_maps_to_one_variant() {
        let cases: &[(u16, &str, &str, i32)] = &[
            (401, "auth.required", "BRR-N004", EXIT_AUTH),
            (401, "auth.invalid_credentials", "BRR-N004", EXIT_AUTH),
            (401, "auth.totp_required", "BRR-N005", EXIT_AUTH),
            (403, "forbidden", "BRR-N006", EXIT_FORBIDDEN),
            (403, "access.forbidden", "BRR-N006", EXIT_FORBIDDEN),
            (403, "append_only", "BRR-N007", EXIT_APPEND_ONLY),
            (403, "repo.append_only", "BRR-N007", EXIT_APPEND_ONLY),
            (403, "quota_exceeded", "BRR-N008", EXIT_QUOTA),
            (404, "not_found", "BRR-N009", EXIT_NOT_FOUND),
            (409, "exists", "BRR-N010", 1),
            (409, "missing_blobs", "BRR-N010", 1),
            (400, "request.invalid", "BRR-N011", 1),
            (413, "too_large", "BRR-N011", 1),
            (416, "range", "BRR-N011", 1),
            (422, "name_mismatch", "BRR-N011", 1),
            (422, "bad_pack", "BRR-N011", 1),
            (429, "auth.throttled", "BRR-N012", EXIT_AUTH),
            (429, "auth.locked", "BRR-N012", EXIT_AUTH),
            (500, "internal", "BRR-N013", EXIT_UNREACHABLE),
            (503, "", "BRR-N013", EXIT_UNREACHABLE),
        ];
        for &(status, code, ours, exit) in cases {
            let e = ClientError::from_status(
                S,
                status,
                &body(code, "the\nmessage"),
                "repository \"x\"",
            );
            assert_eq!(e.code(), ours, "{status} {code}: {e}");
            assert_eq!(e.exit_code(), exit, "{status} {code}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn server_message_and_code_are_kept() {
        let e = ClientError::from_status(S, 409, &body("missing_blobs", "3 blobs missing"), "");
        assert_eq!(
            e.to_string(),
            "conflict on https://brrd.test: 3 blobs missing [missing_blobs]"
        );
        let e = ClientError::from_status(S, 404, b"", "repository \"docs\"");
        assert_eq!(
            e.to_string(),
            "repository \"docs\" not found on https://brrd.test (or not visible to your company)"
        );
    }

    #[test]
    fn non_json_bodies_become_one_line() {
        let e = ClientError::from_status(S, 502, b"<html>\n bad gateway\n</html>", "");
        assert_eq!(e.code(), "BRR-N013");
        assert!(e.to_string().contains("<html> bad gateway </html>"), "{e}");
        let e = ClientError::from_status(S, 400, b"", "");
        assert!(e.to_string().contains("HTTP 400"), "{e}");
    }

    #[test]
    fn retryable_errors_become_unavailable() {
        let down = ClientError::Unreachable {
            server: S.into(),
            detail: "connection refused".into(),
        };
        assert!(down.to_storage("read").is_retryable());
        let no = ClientError::from_status(S, 403, &body("forbidden", "no"), "");
        assert!(!no.to_storage("write").is_retryable());
        assert!(no.is_refusal());
        assert!(!ClientError::from_status(S, 422, b"", "").is_refusal());
    }

    #[test]
    fn codes_are_unique() {
        let all = [
            ClientError::InvalidUrl {
                url: "".into(),
                reason: "".into(),
            },
            ClientError::CaCert {
                path: "".into(),
                reason: "".into(),
            },
            ClientError::NotLoggedIn { server: "".into() },
            ClientError::Unauthorized {
                server: "".into(),
                message: "".into(),
            },
            ClientError::TotpRequired { server: "".into() },
            ClientError::Forbidden {
                server: "".into(),
                message: "".into(),
            },
            ClientError::AppendOnly {
                server: "".into(),
                message: "".into(),
            },
            ClientError::QuotaExceeded {
                server: "".into(),
                message: "".into(),
            },
            ClientError::NotFound {
                server: "".into(),
                what: "".into(),
            },
            ClientError::Conflict {
                server: "".into(),
                code: "".into(),
                message: "".into(),
            },
            ClientError::Rejected {
                server: "".into(),
                status: 400,
                code: "".into(),
                message: "".into(),
            },
            ClientError::Throttled {
                server: "".into(),
                message: "".into(),
            },
            ClientError::Server {
                server: "".into(),
                status: 500,
                message: "".into(),
            },
            ClientError::Unreachable {
                server: "".into(),
                detail: "".into(),
            },
            ClientError::Tls {
                server: "".into(),
                detail: "".into(),
            },
            ClientError::Protocol {
                server: "".into(),
                detail: "".into(),
            },
            ClientError::Credentials {
                path: "".into(),
                detail: "".into(),
            },
            ClientError::InvalidRepoName { name: "".into() },
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(ClientError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
