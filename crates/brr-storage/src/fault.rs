//! [`FaultInjectingBackend`]: a wrapper that makes chosen operations fail, for tests of the layers above.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{Backend, FileInfo, FileKind, StorageError};

#[derive(Debug, Default)]
struct Faults {
    /// Write numbers (1-based, counted since the wrapper was made) that fail.
    write_numbers: BTreeSet<u64>,
    /// Kinds whose writes fail.
    write_kinds: BTreeSet<FileKind>,
    /// Kinds whose reads (`read`, `read_range`) fail.
    read_kinds: BTreeSet<FileKind>,
    /// Kinds whose removals fail.
    remove_kinds: BTreeSet<FileKind>,
}

/// Wraps a backend and fails chosen operations with [`StorageError::Backend`] *before* they reach it, so
/// a failed write stores nothing. Faults can be added and cleared while the backend is in use (share it
/// in an `Arc`); everything not chosen passes straight through.
///
/// ```
/// use brr_storage::{Backend, FaultInjectingBackend, FileKind, OpendalBackend};
///
/// let b = FaultInjectingBackend::new(OpendalBackend::memory()?);
/// b.fail_nth_write(2);
/// b.write(FileKind::Index, "i1", b"ok")?;
/// assert!(b.write(FileKind::Index, "i2", b"fails").is_err());
/// b.write(FileKind::Index, "i3", b"ok again")?;
/// assert!(b.size(FileKind::Index, "i2").unwrap_err().is_not_found());
/// # Ok::<(), brr_storage::StorageError>(())
/// ```
#[derive(Debug)]
pub struct FaultInjectingBackend<B> {
    inner: B,
    writes: AtomicU64,
    faults: Mutex<Faults>,
}

impl<B: Backend> FaultInjectingBackend<B> {
    /// Wrap `inner`, with no faults yet.
    pub fn new(inner: B) -> Self {
        FaultInjectingBackend {
            inner,
            writes: AtomicU64::new(0),
            faults: Mutex::new(Faults::default()),
        }
    }

    /// Fail the `n`-th write from now (`1` = the next one), whatever its kind. Every call of
    /// [`Backend::write`] counts, including failed ones.
    pub fn fail_nth_write(&self, n: u64) {
        let target = self.writes.load(Ordering::SeqCst).saturating_add(n.max(1));
        self.faults().write_numbers.insert(target);
    }

    /// Fail every write of files of `kind` until [`FaultInjectingBackend::heal`].
    pub fn fail_writes_of(&self, kind: FileKind) {
        self.faults().write_kinds.insert(kind);
    }

    /// Fail every `read` and `read_range` of files of `kind` until [`FaultInjectingBackend::heal`].
    pub fn fail_reads_of(&self, kind: FileKind) {
        self.faults().read_kinds.insert(kind);
    }

    /// Fail every `remove` of files of `kind` until [`FaultInjectingBackend::heal`].
    pub fn fail_removes_of(&self, kind: FileKind) {
        self.faults().remove_kinds.insert(kind);
    }

    /// Clear all faults; later operations pass through.
    pub fn heal(&self) {
        *self.faults() = Faults::default();
    }

    /// How many writes were attempted through this wrapper.
    pub fn writes_attempted(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> B {
        self.inner
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        // A panicking test thread must not make every later call panic too.
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn injected(op: &'static str, kind: FileKind, name: &str) -> StorageError {
    StorageError::Backend {
        op,
        detail: format!("injected fault for {kind} file {name:?}"),
    }
}

impl<B: Backend> Backend for FaultInjectingBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<(), StorageError> {
        self.inner.create()
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        if self.faults().read_kinds.contains(&kind) {
            return Err(injected("read", kind, name));
        }
        self.inner.read(kind, name)
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        if self.faults().read_kinds.contains(&kind) {
            return Err(injected("read", kind, name));
        }
        self.inner.read_range(kind, name, offset, len)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        self.inner.size(kind, name)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let number = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = {
            let mut faults = self.faults();
            faults.write_numbers.remove(&number) || faults.write_kinds.contains(&kind)
        };
        if fail {
            return Err(injected("write", kind, name));
        }
        self.inner.write(kind, name, data)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        self.inner.list(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        if self.faults().remove_kinds.contains(&kind) {
            return Err(injected("remove", kind, name));
        }
        self.inner.remove(kind, name)
    }

    fn lookup_blobs(&self, ids: &[String]) -> Result<Option<Vec<bool>>, StorageError> {
        self.inner.lookup_blobs(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpendalBackend;

    #[test]
    fn kind_faults_until_healed() {
        let b = FaultInjectingBackend::new(OpendalBackend::memory().unwrap());
        b.fail_writes_of(FileKind::Pack);
        let err = b.write(FileKind::Pack, "abcd", b"x").unwrap_err();
        assert!(matches!(err, StorageError::Backend { .. }));
        assert!(!err.is_retryable());
        b.write(FileKind::Index, "i", b"x").unwrap();
        assert!(b.inner().list(FileKind::Pack).unwrap().is_empty());

        b.fail_reads_of(FileKind::Index);
        assert!(b.read(FileKind::Index, "i").is_err());
        assert!(b.read_range(FileKind::Index, "i", 0, 1).is_err());
        b.fail_removes_of(FileKind::Index);
        assert!(b.remove(FileKind::Index, "i").is_err());

        b.heal();
        b.write(FileKind::Pack, "abcd", b"x").unwrap();
        assert_eq!(b.read(FileKind::Index, "i").unwrap(), b"x");
        b.remove(FileKind::Index, "i").unwrap();
        assert_eq!(b.writes_attempted(), 3);
    }

    #[test]
    fn nth_write_counts_from_now() {
        let b = FaultInjectingBackend::new(OpendalBackend::memory().unwrap());
        b.write(FileKind::Key, "k0", b"x").unwrap();
        b.fail_nth_write(1);
        b.fail_nth_write(3);
        assert!(b.write(FileKind::Key, "k1", b"x").is_err());
        b.write(FileKind::Key, "k2", b"x").unwrap();
        assert!(b.write(FileKind::Key, "k3", b"x").is_err());
        b.write(FileKind::Key, "k4", b"x").unwrap();
        let mut names: Vec<String> = b
            .list(FileKind::Key)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        names.sort();
        assert_eq!(names, ["k0", "k2", "k4"]);
    }
}
