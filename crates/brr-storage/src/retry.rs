//! [`RetryingBackend`]: a wrapper that repeats operations that failed with a retryable error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Backend, FileInfo, FileKind, StorageError};

/// How often and how patiently [`RetryingBackend`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub attempts: u32,
    /// Pause before the first retry; each later pause doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// Longest pause between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, pausing 0.5 s, 1 s, 2 s, 4 s, 8 s: rides out a server restart or a short network drop.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// Something that pauses the calling thread; a parameter so tests need not sleep.
type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// Wraps a backend and repeats any operation that fails with an error for which
/// [`StorageError::is_retryable`] holds, pausing between attempts per a [`RetryPolicy`]. Other errors and
/// the last attempt's error are returned as they are.
///
/// Every operation of the trait may be repeated safely: writes overwrite with the same bytes, and a
/// `remove` that reports [`StorageError::NotFound`] after an earlier attempt failed retryably is taken as
/// done (the earlier attempt most likely deleted the file before its answer was lost).
pub struct RetryingBackend<B> {
    inner: B,
    policy: RetryPolicy,
    sleep: Sleeper,
}

impl<B: fmt::Debug> fmt::Debug for RetryingBackend<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryingBackend")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> RetryingBackend<B> {
    /// Wrap `inner` with the default policy, pausing with `std::thread::sleep`.
    pub fn new(inner: B) -> Self {
        RetryingBackend {
            inner,
            policy: RetryPolicy::default(),
            sleep: Arc::new(std::thread::sleep),
        }
    }

    /// Use `policy` instead of the default.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Pause with `sleep` instead of `std::thread::sleep` (tests pass a recorder).
    pub fn with_sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Run `f` until it succeeds, fails for good, or attempts run out. `f` learns whether an earlier
    /// attempt failed retryably.
    fn retry<T>(
        &self,
        op: &str,
        mut f: impl FnMut(bool) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut delay = self.policy.first_delay;
        let mut retried = false;
        for attempt in 1.. {
            match f(retried) {
                Err(e) if e.is_retryable() && attempt < self.policy.attempts => {
                    tracing::warn!(op, attempt, error = %e, "storage operation failed; retrying in {delay:?}");
                    (self.sleep)(delay);
                    delay = (delay * 2).min(self.policy.max_delay);
                    retried = true;
                }
                result => return result,
            }
        }
        unreachable!("the attempt loop returns")
    }
}

impl<B: Backend> Backend for RetryingBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<(), StorageError> {
        self.retry("create", |_| self.inner.create())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        self.retry("read", |_| self.inner.read(kind, name))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        self.retry("read_range", |_| {
            self.inner.read_range(kind, name, offset, len)
        })
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        self.retry("size", |_| self.inner.size(kind, name))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        self.retry("write", |_| self.inner.write(kind, name, data))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        self.retry("list", |_| self.inner.list(kind))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        self.retry("remove", |retried| match self.inner.remove(kind, name) {
            Err(e) if retried && e.is_not_found() => Ok(()),
            other => other,
        })
    }

    fn lookup_blobs(&self, ids: &[String]) -> Result<Option<Vec<bool>>, StorageError> {
        self.retry("lookup", |_| self.inner.lookup_blobs(ids))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::OpendalBackend;

    /// Fails the first `failures` calls of every operation with a retryable error, after performing it.
    #[derive(Debug)]
    struct Flaky {
        inner: OpendalBackend,
        failures: u32,
        calls: AtomicU32,
    }

    impl Flaky {
        fn step<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                Err(StorageError::Unavailable {
                    op: "test",
                    detail: "answer lost".into(),
                })
            } else {
                result
            }
        }
    }

    impl Backend for Flaky {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn create(&self) -> Result<(), StorageError> {
            self.inner.create()
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
            self.step(self.inner.read(kind, name))
        }
        fn read_range(
            &self,
            kind: FileKind,
            name: &str,
            offset: u64,
            len: u64,
        ) -> Result<Vec<u8>, StorageError> {
            self.step(self.inner.read_range(kind, name, offset, len))
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
            self.step(self.inner.size(kind, name))
        }
        fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
            self.step(self.inner.write(kind, name, data))
        }
        fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
            self.step(self.inner.list(kind))
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
            self.step(self.inner.remove(kind, name))
        }
    }

    fn flaky(failures: u32) -> (RetryingBackend<Flaky>, Arc<Mutex<Vec<Duration>>>) {
        let pauses = Arc::new(Mutex::new(Vec::new()));
        let recorder = pauses.clone();
        let b = RetryingBackend::new(Flaky {
            inner: OpendalBackend::memory().unwrap(),
            failures,
            calls: AtomicU32::new(0),
        })
        .with_sleep(move |d| recorder.lock().unwrap().push(d));
        (b, pauses)
    }

    #[test]
    fn retries_with_backoff_then_succeeds() {
        let (b, pauses) = flaky(4);
        b.write(FileKind::Index, "i", b"data").unwrap();
        assert_eq!(
            *pauses.lock().unwrap(),
            [500, 1000, 2000, 4000].map(Duration::from_millis)
        );
        assert_eq!(b.read(FileKind::Index, "i").unwrap(), b"data");
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        let (b, pauses) = flaky(100);
        let err = b.read(FileKind::Index, "i").unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(pauses.lock().unwrap().len(), 5);
        assert_eq!(
            *pauses.lock().unwrap().last().unwrap(),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let (b, pauses) = flaky(0);
        assert!(
            b.read(FileKind::Index, "missing")
                .unwrap_err()
                .is_not_found()
        );
        assert!(b.read(FileKind::Index, "Bad").is_err());
        assert!(pauses.lock().unwrap().is_empty());
    }

    #[test]
    fn remove_whose_answer_was_lost_counts_as_done() {
        let b = RetryingBackend {
            inner: Flaky {
                inner: OpendalBackend::memory().unwrap(),
                failures: 1,
                calls: AtomicU32::new(0),
            },
            policy: RetryPolicy::default(),
            sleep: Arc::new(|_| {}),
        };
        b.inner.inner.write(FileKind::Lock, "l", b"x").unwrap();
        b.remove(FileKind::Lock, "l").unwrap();
        assert!(
            b.inner
                .inner
                .size(FileKind::Lock, "l")
                .unwrap_err()
                .is_not_found()
        );
        assert!(b.remove(FileKind::Lock, "l").unwrap_err().is_not_found());
    }
}
