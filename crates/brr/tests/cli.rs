//! End-to-end tests of the `brr` command line: every test runs the real binary against a local repository
//! in its own temporary directory, so the tests run in parallel.
//!
//! Repositories are created with cheap Argon2id settings and (where many chunks and packs help) small
//! chunks and packs; see `common::Repo::init`.

#![allow(clippy::unwrap_used)]

#[path = "cli/common.rs"]
mod common;

#[path = "cli/corruption.rs"]
mod corruption;
#[path = "cli/errors.rs"]
mod errors;
#[path = "cli/incremental.rs"]
mod incremental;
#[path = "cli/keyless.rs"]
mod keyless;
#[path = "cli/keys.rs"]
mod keys;
#[path = "cli/kill.rs"]
mod kill;
#[path = "cli/prune.rs"]
mod prune;
#[path = "cli/roundtrip.rs"]
mod roundtrip;
#[path = "cli/stats.rs"]
mod stats;
