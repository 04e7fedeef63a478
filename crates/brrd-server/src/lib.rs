//! The brrd service: configuration, database, identity, access control, audit trail, the repository
//! store and HTTP API.
//!
//! Layers, each depending only on those above it:
//!
//! | module | what |
//! |---|---|
//! | [`error`], [`clock`], [`config`] | typed errors with stable codes; injected time and randomness; configuration |
//! | [`policy`], [`crypto`], [`keys`], [`tokens`], [`tls`], [`mail`] | validation, hashing, key files, JWTs, rustls, mail |
//! | [`db`], [`audit`] | the SQLite/PostgreSQL pool and migrations; the hash-chained audit log |
//! | [`service`] | domain operations; access decisions in [`service::access`] and, for repositories, [`service::repos::rules`] |
//! | [`service::repos`] | the repository store: records and usage, the file API with key-less upload checks, reindex and scrub (docs/server-repositories.md) |
//! | [`http`], [`server`] | thin axum layer (one error mapping, declared access per route) and listeners |
//!
//! Start a server with [`server::start`]; see docs/platform.md for configuration and operation.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod http;
pub mod keys;
pub mod mail;
pub mod policy;
pub mod server;
pub mod service;
pub mod tls;
pub mod tokens;
pub mod totp;

pub use config::Config;
pub use error::{Error, Result};
