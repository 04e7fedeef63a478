//! The conformance suite every [`Backend`] must pass: backends in this crate, wrappers, and backends in
//! other crates (a remote HTTP backend, caching layers).
//!
//! The checks panic with a message naming the backend and the broken expectation, so they are meant to
//! be called from tests:
//!
//! ```
//! let backend = brr_storage::OpendalBackend::memory()?;
//! brr_storage::conformance::run_all(&backend);
//! # Ok::<(), brr_storage::StorageError>(())
//! ```
//!
//! [`run_all`] needs an empty location. Each check in [`CHECKS`] can also run alone on an empty or
//! created location; each removes the files it wrote (the `config` file stays).

use std::collections::BTreeSet;

use crate::{Backend, CONFIG_NAME, FileInfo, FileKind, MAX_NAME_LEN, StorageError};

mod concurrency;
mod files;
mod names;

pub use concurrency::check_concurrent_writes;
pub use files::{
    check_create, check_empty_and_large_files, check_read_range, check_size,
    check_write_read_overwrite,
};
pub use names::{check_invalid_names, check_list, check_not_found, check_remove};

/// One conformance check: panics if `backend` breaks the contract.
pub type Check = fn(&dyn Backend);

/// Every check, by name, in the order [`run_all`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("create", check_create),
    ("write_read_overwrite", check_write_read_overwrite),
    ("read_range", check_read_range),
    ("size", check_size),
    ("list", check_list),
    ("remove", check_remove),
    ("not_found", check_not_found),
    ("invalid_names", check_invalid_names),
    ("empty_and_large_files", check_empty_and_large_files),
    ("concurrent_writes", check_concurrent_writes),
];

/// Size of the large file in [`check_empty_and_large_files`]: bigger than a pack (32 MiB).
pub const LARGE_FILE_SIZE: usize = 40 << 20;

/// Run every check of [`CHECKS`] on `backend`, whose location must be empty. Panics on the first failure.
pub fn run_all(backend: &dyn Backend) {
    for (name, check) in CHECKS {
        eprintln!("conformance check {name} on {}", backend.location());
        check(backend);
    }
}

/// Deterministic pseudo-random bytes (xorshift), distinct for distinct seeds.
pub fn test_data(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn ok<T>(b: &dyn Backend, what: &str, result: Result<T, StorageError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{}: {what} failed: {e} ({e:?})", b.location()),
    }
}

fn err<T: std::fmt::Debug>(
    b: &dyn Backend,
    what: &str,
    result: Result<T, StorageError>,
) -> StorageError {
    match result {
        Ok(v) => panic!(
            "{}: {what} succeeded ({v:?}) but should have failed",
            b.location()
        ),
        Err(e) => {
            assert!(
                !e.to_string().contains('\n'),
                "{}: {what}: error message not one line: {e}",
                b.location()
            );
            e
        }
    }
}

fn expect_not_found<T: std::fmt::Debug>(
    b: &dyn Backend,
    what: &str,
    result: Result<T, StorageError>,
) {
    let e = err(b, what, result);
    assert!(
        e.is_not_found(),
        "{}: {what}: expected NotFound, got {e:?}",
        b.location()
    );
}

fn names(files: &[FileInfo]) -> BTreeSet<String> {
    files.iter().map(|f| f.name.clone()).collect()
}

fn listed(b: &dyn Backend, kind: FileKind) -> BTreeSet<FileInfo> {
    let files = ok(b, &format!("list {kind}"), b.list(kind));
    let set: BTreeSet<FileInfo> = files.iter().cloned().collect();
    assert_eq!(
        set.len(),
        files.len(),
        "{}: list {kind} returned duplicates: {files:?}",
        b.location()
    );
    set
}

/// Create the repository location unless a `config` shows it already exists.
fn ensure_created(b: &dyn Backend) {
    match b.create() {
        Ok(()) | Err(StorageError::AlreadyExists { .. }) => {}
        Err(e) => panic!("{}: create failed: {e}", b.location()),
    }
}

/// A valid name of `kind` for test number `i`; packs get a hex prefix so they spread over fan-out folders.
fn name_for(kind: FileKind, tag: &str, i: usize) -> String {
    match kind {
        FileKind::Config => CONFIG_NAME.to_owned(),
        FileKind::Pack => format!("{:02x}{tag}-{i}", (i * 37 + tag.len() * 11) % 256),
        _ => format!("{tag}-{i}"),
    }
}
