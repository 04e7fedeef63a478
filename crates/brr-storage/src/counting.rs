//! [`CountingBackend`]: a wrapper that counts operations and bytes, for tests and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Backend, FileInfo, FileKind, StorageError};

/// Operation and byte counts of a [`CountingBackend`]. Failed operations count as calls; bytes count
/// only what was actually read or written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Calls of [`Backend::read`].
    pub reads: u64,
    /// Calls of [`Backend::read_range`].
    pub range_reads: u64,
    /// Calls of [`Backend::size`].
    pub sizes: u64,
    /// Calls of [`Backend::write`].
    pub writes: u64,
    /// Calls of [`Backend::list`].
    pub lists: u64,
    /// Calls of [`Backend::remove`].
    pub removes: u64,
    /// Bytes returned by successful reads and range reads.
    pub bytes_read: u64,
    /// Bytes stored by successful writes.
    pub bytes_written: u64,
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    range_reads: AtomicU64,
    sizes: AtomicU64,
    writes: AtomicU64,
    lists: AtomicU64,
    removes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// Wraps a backend and counts every call and the bytes moved; behaviour is otherwise unchanged. Useful to
/// assert that a cache avoids reads, or to report transfer volumes.
#[derive(Debug)]
pub struct CountingBackend<B> {
    inner: B,
    counters: Counters,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl<B: Backend> CountingBackend<B> {
    /// Wrap `inner`, with all counts zero.
    pub fn new(inner: B) -> Self {
        CountingBackend {
            inner,
            counters: Counters::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> OpCounts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OpCounts {
            reads: get(&c.reads),
            range_reads: get(&c.range_reads),
            sizes: get(&c.sizes),
            writes: get(&c.writes),
            lists: get(&c.lists),
            removes: get(&c.removes),
            bytes_read: get(&c.bytes_read),
            bytes_written: get(&c.bytes_written),
        }
    }

    /// Set all counts back to zero.
    pub fn reset(&self) {
        let c = &self.counters;
        for a in [
            &c.reads,
            &c.range_reads,
            &c.sizes,
            &c.writes,
            &c.lists,
            &c.removes,
            &c.bytes_read,
            &c.bytes_written,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend> Backend for CountingBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<(), StorageError> {
        self.inner.create()
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        bump(&self.counters.reads, 1);
        let data = self.inner.read(kind, name)?;
        bump(&self.counters.bytes_read, data.len() as u64);
        Ok(data)
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        bump(&self.counters.range_reads, 1);
        let data = self.inner.read_range(kind, name, offset, len)?;
        bump(&self.counters.bytes_read, data.len() as u64);
        Ok(data)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        bump(&self.counters.sizes, 1);
        self.inner.size(kind, name)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        bump(&self.counters.writes, 1);
        self.inner.write(kind, name, data)?;
        bump(&self.counters.bytes_written, data.len() as u64);
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        bump(&self.counters.lists, 1);
        self.inner.list(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        bump(&self.counters.removes, 1);
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
    use std::sync::Arc;

    #[test]
    fn counts_calls_and_bytes() {
        let shared: Arc<dyn Backend> = Arc::new(OpendalBackend::memory().unwrap());
        let b = CountingBackend::new(shared);
        b.write(FileKind::Pack, "abcd", b"12345").unwrap();
        b.read(FileKind::Pack, "abcd").unwrap();
        b.read_range(FileKind::Pack, "abcd", 1, 2).unwrap();
        assert!(b.read(FileKind::Pack, "ffff").is_err());
        b.list(FileKind::Pack).unwrap();
        b.size(FileKind::Pack, "abcd").unwrap();
        b.remove(FileKind::Pack, "abcd").unwrap();
        assert_eq!(
            b.counts(),
            OpCounts {
                reads: 2,
                range_reads: 1,
                sizes: 1,
                writes: 1,
                lists: 1,
                removes: 1,
                bytes_read: 7,
                bytes_written: 5,
            }
        );
        b.reset();
        assert_eq!(b.counts(), OpCounts::default());
    }
}
