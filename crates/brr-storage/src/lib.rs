//! Repository storage for brr: opaque files by kind and name.
//!
//! This crate stores and fetches whole files of a repository. It knows nothing about encryption,
//! compression or file formats: the engine hands it bytes that are already encrypted, and it hands them
//! back unchanged. Everything above it talks to the small, synchronous [`Backend`] trait.
//!
//! # Backends
//!
//! | Backend | Where | Made by |
//! |---|---|---|
//! | [`LocalBackend`] | a folder on a local or mounted file system (`std::fs`, no async runtime) | [`LocalBackend::new`], `open_url("/srv/repo")`, `open_url("local:/srv/repo")` |
//! | [`OpendalBackend`] (S3) | an S3-compatible object store: Garage, MinIO, Ceph RGW, AWS S3 | [`OpendalBackend::s3`], `open_url("s3:https://host/bucket/prefix")` |
//! | [`OpendalBackend`] (memory) | process memory, for tests | [`OpendalBackend::memory`], `open_url("memory:")` |
//!
//! Wrappers add behaviour around any backend and are backends themselves, so the engine never knows
//! which are present:
//!
//! | Wrapper | Does |
//! |---|---|
//! | [`RetryingBackend`] | repeats operations that failed with [`StorageError::is_retryable`], with backoff |
//! | [`FaultInjectingBackend`] | fails chosen operations (the n-th write, writes of a kind, …), for tests |
//! | [`CountingBackend`] | counts operations and bytes, for tests and metrics |
//!
//! A typical remote stack is `RetryingBackend<OpendalBackend>`. The trait is implemented for `Arc<B>`,
//! `Box<B>` and `&B` too, so wrappers also hold shared trait objects (`CountingBackend<Arc<dyn Backend>>`).
//!
//! **Later additions fit the same shapes.** A caching wrapper (a local folder that keeps index, snapshot
//! and pack files fetched from S3) holds an inner `B: Backend` plus a [`LocalBackend`] as its cache:
//! `read`/`read_range` try the cache and fill it on a miss; `write` and `remove` go to the inner backend
//! first and then update the cache; `list` always asks the inner backend. Pack, index and snapshot
//! files are written once under content-derived names, so such a cache needs no invalidation beyond
//! `remove` (locks and `config` are not cached). A remote backend that talks to a `brrd` server over
//! HTTPS implements [`Backend`] directly, mapping HTTP statuses to [`StorageError`] (404 to `NotFound`, 5xx and timeouts to
//! `Unavailable`); the server side stores what it receives through one of the backends here. Every new
//! backend and wrapper must pass the [`conformance`] suite, as every backend in this crate does.
//!
//! # Layout (frozen)
//!
//! Paths are relative to the repository root (a folder, or a bucket plus prefix). The layout is part of
//! the repository format: do not change it.
//!
//! | [`FileKind`] | Path | Names |
//! |---|---|---|
//! | `Config` | `config` | exactly `config` |
//! | `Key` | `keys/<name>` | 1–128 of `[0-9a-z-]` |
//! | `Pack` | `data/<first two chars of name>/<name>` (256 fan-out folders `00`…`ff` for hex names) | 2–128 of `[0-9a-z-]` |
//! | `Index` | `index/<name>` | 1–128 of `[0-9a-z-]` |
//! | `Snapshot` | `snapshots/<name>` | 1–128 of `[0-9a-z-]` |
//! | `Lock` | `locks/<name>` | 1–128 of `[0-9a-z-]` |
//! | `Gc` | `gc/<name>` | 1–128 of `[0-9a-z-]` |
//!
//! Any other name (empty, `..`, containing `/`, `.`, upper case, …) is rejected with
//! [`StorageError::InvalidName`] by every method, before any I/O. Names starting with `.` are therefore
//! never repository files: the local backend uses them for temporary files, and `list` skips them.
//!
//! # Contract
//!
//! | Property | Guarantee |
//! |---|---|
//! | Atomic write | A reader sees either no file, the complete old file or the complete new file, never a part. |
//! | Crash safety | A crash, kill or power loss at any moment leaves the old state or the complete new file (plus, locally, possibly a `.`-temporary file that `list` ignores). |
//! | Durability | When [`Backend::write`] or [`Backend::remove`] returns `Ok`, the change is on stable storage (locally: file and folder `fsync`ed; S3: the PUT was acknowledged). |
//! | Overwrite | `write` replaces an existing file of the same name (last writer wins); there is no compare-and-swap, because common S3 servers (Garage) do not enforce conditional writes. |
//! | Exact reads | [`Backend::read_range`] returns exactly `len` bytes or fails with [`StorageError::ShortRead`]. |
//! | Concurrency | Every backend is `Send + Sync`; any number of threads may call any method at once. |
//! | Listing | [`Backend::list`] returns files of one kind in unspecified order; a file written before the call starts is listed (S3 lists are strongly consistent on Garage and AWS). |
//! | Not found | Missing files are [`StorageError::NotFound`] from `read`, `read_range`, `size` and `remove`. |
//!
//! # Example
//!
//! ```
//! use brr_storage::{open_url, FileKind};
//!
//! let repo = open_url("memory:")?;
//! repo.create()?;
//! repo.write(FileKind::Snapshot, "s1", b"encrypted bytes")?;
//! assert_eq!(repo.read_range(FileKind::Snapshot, "s1", 10, 5)?, b"bytes");
//! assert_eq!(repo.list(FileKind::Snapshot)?.len(), 1);
//! # Ok::<(), brr_storage::StorageError>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::sync::Arc;

pub mod conformance;
mod counting;
mod direct_write;
mod error;
mod fault;
mod kind;
mod local;
mod object;
mod retry;
mod url;

pub use counting::{CountingBackend, OpCounts};
pub use error::StorageError;
pub use fault::FaultInjectingBackend;
pub use kind::{
    CONFIG_NAME, FileKind, MAX_NAME_LEN, pack_fanout_folders, relative_path, validate_name,
};
pub use local::LocalBackend;
pub use object::{DEFAULT_TIMEOUT, OpendalBackend, Refusal, S3Config};
pub use retry::{RetryPolicy, RetryingBackend};
pub use url::{DEFAULT_S3_REGION, open_url, open_url_at};

/// A file found by [`Backend::list`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileInfo {
    /// The file's name (without folder).
    pub name: String,
    /// The file's size in bytes.
    pub size: u64,
}

/// Storage of opaque repository files by kind and name. See the crate docs for the layout and the
/// atomicity, durability and concurrency contract every implementation keeps.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Human-readable location, e.g. "/srv/repo" or "s3://bucket/prefix".
    fn location(&self) -> String;

    /// Prepare an empty repository location (create folders). Fails with
    /// [`StorageError::AlreadyExists`] if `config` exists; succeeds again on a location without `config`.
    fn create(&self) -> Result<(), StorageError>;

    /// The whole file.
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError>;

    /// Exactly `len` bytes at `offset`; [`StorageError::ShortRead`] (not a short result) if the file is
    /// shorter than `offset + len`.
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError>;

    /// Size in bytes; [`StorageError::NotFound`] if absent.
    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError>;

    /// Store atomically and durably: a reader never sees a partial file, a crash or kill at any moment
    /// leaves either the old state or the complete new file, and when this returns the data is on stable
    /// storage (local: write to a temp file in the same folder named with a leading '.', fsync file,
    /// rename, fsync folder). Overwrites an existing file of the same name.
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError>;

    /// All files of a kind (for Pack: across all 256 folders), ignoring temp files; order unspecified.
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError>;

    /// Delete; [`StorageError::NotFound`] if absent.
    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError>;

    /// Optional capability: which of the blobs `ids` (64 lower-case hex characters each) the
    /// repository already holds in a pack that one of its stored index files lists and no GC record
    /// condemns — what a backup may deduplicate against without uploading. `Ok(None)` (the default)
    /// means the backend cannot tell, and callers rely on the index files alone; otherwise one answer
    /// per ID, in order. With no IDs it answers without I/O, so `lookup_blobs(&[])` is the probe.
    ///
    /// Local, memory and S3 backends do not offer it (the engine's own index is as good); a backend
    /// over a `brrd` server does (`POST /repos/{repo}/blobs/lookup`). The retrying, counting and
    /// fault-injecting wrappers forward it; a wrapper that did not would hide it, which is always safe:
    /// a blob answered `false` is only stored again.
    fn lookup_blobs(&self, ids: &[String]) -> Result<Option<Vec<bool>>, StorageError> {
        let _ = ids;
        Ok(None)
    }
}

macro_rules! delegate_backend {
    ($($ty:ty),*) => {$(
        impl<B: Backend + ?Sized> Backend for $ty {
            fn location(&self) -> String {
                (**self).location()
            }
            fn create(&self) -> Result<(), StorageError> {
                (**self).create()
            }
            fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
                (**self).read(kind, name)
            }
            fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
                (**self).read_range(kind, name, offset, len)
            }
            fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
                (**self).size(kind, name)
            }
            fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
                (**self).write(kind, name, data)
            }
            fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
                (**self).list(kind)
            }
            fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
                (**self).remove(kind, name)
            }
            fn lookup_blobs(&self, ids: &[String]) -> Result<Option<Vec<bool>>, StorageError> {
                (**self).lookup_blobs(ids)
            }
        }
    )*};
}

// Wrappers are generic over `B: Backend`; these let them wrap shared or boxed trait objects too, e.g.
// `CountingBackend<Arc<dyn Backend>>`.
delegate_backend!(Arc<B>, Box<B>, &B);

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that offers the look-up: every ID that starts with `a` is present.
    #[derive(Debug)]
    struct Answers(LocalBackend);

    impl Backend for Answers {
        fn location(&self) -> String {
            self.0.location()
        }
        fn create(&self) -> Result<(), StorageError> {
            self.0.create()
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
            self.0.read(kind, name)
        }
        fn read_range(
            &self,
            kind: FileKind,
            name: &str,
            offset: u64,
            len: u64,
        ) -> Result<Vec<u8>, StorageError> {
            self.0.read_range(kind, name, offset, len)
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
            self.0.size(kind, name)
        }
        fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
            self.0.write(kind, name, data)
        }
        fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
            self.0.list(kind)
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
            self.0.remove(kind, name)
        }
        fn lookup_blobs(&self, ids: &[String]) -> Result<Option<Vec<bool>>, StorageError> {
            Ok(Some(ids.iter().map(|i| i.starts_with('a')).collect()))
        }
    }

    #[test]
    fn blob_look_up_is_not_offered_by_default_and_shared_handles_forward_it() {
        let dir = tempfile::tempdir().unwrap();
        let ids = vec!["a".repeat(64), "b".repeat(64)];
        let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        assert_eq!(local.lookup_blobs(&ids).unwrap(), None);
        assert_eq!(local.lookup_blobs(&[]).unwrap(), None);
        let memory: Box<dyn Backend> = Box::new(OpendalBackend::memory().unwrap());
        assert_eq!(memory.lookup_blobs(&ids).unwrap(), None);
        let answers = Answers(LocalBackend::new(dir.path()));
        let shared: Arc<dyn Backend> = Arc::new(Answers(LocalBackend::new(dir.path())));
        assert_eq!(shared.lookup_blobs(&ids).unwrap(), Some(vec![true, false]));
        fn probe<B: Backend>(b: B) -> Option<Vec<bool>> {
            b.lookup_blobs(&[]).unwrap()
        }
        assert_eq!(probe(&answers), Some(Vec::new()));
        assert_eq!(probe(Box::new(answers)), Some(Vec::new()));
    }

    #[test]
    fn the_retrying_counting_and_fault_wrappers_forward_the_look_up() {
        let dir = tempfile::tempdir().unwrap();
        let ids = vec!["a".repeat(64), "b".repeat(64)];
        let want = Some(vec![true, false]);
        let inner = || Answers(LocalBackend::new(dir.path()));
        assert_eq!(
            RetryingBackend::new(inner()).lookup_blobs(&ids).unwrap(),
            want
        );
        assert_eq!(
            CountingBackend::new(inner()).lookup_blobs(&ids).unwrap(),
            want
        );
        assert_eq!(
            FaultInjectingBackend::new(inner())
                .lookup_blobs(&ids)
                .unwrap(),
            want
        );
    }
}
