//! Integration tests: the real server over real TLS, against SQLite and (when configured) PostgreSQL.
//!
//! PostgreSQL: set `BRR_TEST_POSTGRES_URL` (see `.ci/postgres.sh`). Without it the PostgreSQL runs are
//! skipped with a notice locally, and fail when `CI` is set.

#![allow(clippy::unwrap_used, missing_docs)]

mod access;
mod audit;
mod common;
mod journey;
mod maintenance;
mod repos;
mod store_rules;
mod transport;
