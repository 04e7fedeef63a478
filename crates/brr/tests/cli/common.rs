//! Shared helpers: running `brr`, test repositories, generated data, comparing restored trees.
//!
//! Loaded with `#[path]` by more than one test binary, so the submodules are named by path too.

use serde_json::Value;

#[path = "common/data.rs"]
mod data;
#[path = "common/files.rs"]
mod files;
#[path = "common/process.rs"]
mod process;
#[path = "common/repo.rs"]
mod repo;

// Each test binary that loads these helpers uses its own subset of them.
#[allow(unused_imports)]
pub use data::{Rng, write, write_random};
#[allow(unused_imports)]
pub use files::{Compare, assert_same_tree, copy_dir, flip_byte, list_files, same_content};
#[allow(unused_imports)]
pub use process::{PASSWORD, Run, assert_no_panic, assert_one_line_error, brr, brr_at, run};
#[allow(unused_imports)]
pub use repo::{CHEAP_KDF, Repo, restored};

/// A temporary directory for one test.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("brr-cli-")
        .tempdir()
        .expect("temporary directory")
}

/// Whether the tests run as root (permission checks do not apply then).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A value of a JSON summary as u64.
pub fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key:?} in {v:#}"))
}
