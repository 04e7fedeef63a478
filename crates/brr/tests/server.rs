//! End-to-end tests of backing up to the service: the real `brrd` binary with TLS and the real `brr`
//! binary as company admins and enrolled agents of two companies, each with its own credentials file.
//!
//! `brrd` is taken from the same target folder as `brr` (`cargo nextest run --workspace` and
//! `cargo build -p brrd` put it there).

#![allow(clippy::unwrap_used)]

#[path = "cli/common.rs"]
#[allow(dead_code)]
mod common;

#[path = "server/harness.rs"]
mod harness;

#[path = "server/flows.rs"]
mod flows;
#[path = "server/kill.rs"]
mod kill;
#[path = "server/lookup.rs"]
mod lookup;
#[path = "server/maintenance.rs"]
mod maintenance;
#[path = "server/s3.rs"]
mod s3;
