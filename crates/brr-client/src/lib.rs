//! The client side of "backup to the service": `brr` talking to `brrd` over HTTPS.
//!
//! This crate holds no engine logic. It speaks the HTTP API of docs/server-repositories.md and hands
//! the engine a [`RemoteBackend`], so backups, restores and maintenance run exactly as on a local
//! repository; only the transport differs.
//!
//! | piece | does |
//! |---|---|
//! | [`ServerUrl`] | parses and normalises `https://HOST[:PORT]` (the key of the credentials store) |
//! | [`Client`] | blocking HTTPS (rustls, system roots plus an optional `--ca-cert` PEM), bearer credential, retries with backoff of idempotent requests on connection errors, timeouts, 429 and 5xx, automatic session refresh |
//! | [`CredentialStore`] | `$XDG_CONFIG_HOME/brr/credentials.toml`, mode 0600, one [`Entry`] per server: a session (access and refresh token) or an agent token |
//! | [`login`], [`logout`], [`enroll`] | the login flow (password, then a TOTP code if the server asks), ending a session, enrolling a machine with a company API key |
//! | [`Repos`] | `POST /repos`, `GET /repos`, `GET /repos/{repo}` |
//! | [`RemoteBackend`] | [`brr_storage::Backend`] over `/api/v1/repos/{repo}/files/…` |
//! | [`ClientError`] | every status and server error code mapped to one variant with a stable code and an exit code |
//!
//! Secrets (passwords, tokens) are zeroized after use, sent only in headers marked sensitive, never
//! logged and never part of an error message.
//!
//! ```no_run
//! use std::sync::Arc;
//! use brr_client::{Client, ClientOptions, Credential, CredentialStore, RemoteBackend, ServerUrl};
//! use brr_storage::{Backend, FileKind};
//!
//! let server = ServerUrl::parse("https://backup.example.net")?;
//! let store = CredentialStore::new(CredentialStore::default_path().unwrap());
//! let entry = store.get(server.as_str())?.unwrap_or_default();
//! let credential = Client::credential_for(&store, &server, &entry)?;
//! let client = Arc::new(Client::new(&server, credential, &ClientOptions::default())?);
//! let repo = RemoteBackend::new(client, "laptops")?;
//! println!("{} snapshots", repo.list(FileKind::Snapshot)?.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod api;
mod backend;
mod client;
mod credentials;
mod error;
mod tls;
mod transport;
mod url;

#[cfg(test)]
mod tests;

pub use api::{LoginPrompt, Repos, enroll, login, logout};
pub use backend::RemoteBackend;
pub use client::{Client, ClientOptions, Credential, Reply, Request, RetryPolicy};
pub use credentials::{CredentialStore, Entry, StoreLock};
pub use error::{
    ClientError, EXIT_APPEND_ONLY, EXIT_AUTH, EXIT_FORBIDDEN, EXIT_NOT_FOUND, EXIT_QUOTA,
    EXIT_UNREACHABLE,
};
pub use reqwest::Method;
pub use url::{ServerUrl, validate_repo_name};

/// An error and its sources as one line (reqwest nests the interesting part in sources).
pub(crate) fn one_line_error(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
