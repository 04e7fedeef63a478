//! Integration tests: the real server over real TLS, against SQLite and (when configured) PostgreSQL.
//!
//! PostgreSQL: set `BRR_TEST_POSTGRES_URL` (see `.ci/postgres.sh`). Without it the PostgreSQL runs are
//! skipped with a notice locally, and fail when `CI` is set. S3: the repository-store tests also run
//! with their store on S3 when `BRR_TEST_S3_*` (see `.ci/s3.sh`) and the matching `AWS_*` credentials
//! are set; `BRR_REQUIRE_S3` or `CI` makes that mandatory.

#![allow(clippy::unwrap_used, missing_docs)]

mod access;
mod audit;
mod common;
mod journey;
mod lookup;
mod maintenance;
mod nodes;
mod repos;
mod robustness;
mod s3_store;
mod store_rules;
mod transport;
