//! The repository store: one `brr_storage` backend per repository at `<company id>/<repository id>/`
//! under `[store] url`, blocking calls moved off the async workers, and the upload and download
//! semaphores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use brr_storage::{Backend, open_url_at};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::StoreConfig;
use crate::error::{Error, Result};

/// Opened repository backends and upload admission.
pub struct Store {
    base: String,
    open: Mutex<HashMap<String, Arc<dyn Backend>>>,
    uploads: Arc<Semaphore>,
    downloads: Arc<Semaphore>,
    reserved: Reserved,
    /// Largest accepted upload body.
    pub max_upload_bytes: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("base", &self.base).finish()
    }
}

impl Store {
    /// A store at `base` (checked by opening it once, which contacts nothing).
    pub fn new(base: String, config: &StoreConfig) -> Result<Self> {
        brr_storage::open_url(&base).map_err(|e| Error::Config(format!("store.url: {e}")))?;
        Ok(Store {
            base,
            open: Mutex::new(HashMap::new()),
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
            downloads: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
            reserved: Reserved::default(),
            max_upload_bytes: config.max_upload_bytes,
        })
    }

    /// The backend of one repository (opened once, then shared).
    pub fn backend(&self, company_id: &str, repo_id: &str) -> Result<Arc<dyn Backend>> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        if let Some(b) = open.get(repo_id) {
            return Ok(b.clone());
        }
        let b =
            open_url_at(&self.base, &format!("{company_id}/{repo_id}")).map_err(Error::storage)?;
        open.insert(repo_id.to_string(), b.clone());
        Ok(b)
    }

    /// Waits for an upload slot; the slot is released when the permit is dropped.
    pub async fn upload_permit(&self) -> Result<OwnedSemaphorePermit> {
        self.uploads
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)
    }

    /// Waits for a download slot (file bodies are read into memory whole, so they are bounded like
    /// uploads: at most `max_concurrent_uploads` at once).
    pub async fn download_permit(&self) -> Result<OwnedSemaphorePermit> {
        self.downloads
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)
    }
}

type Reserved = Arc<Mutex<HashMap<String, u64>>>;

/// Bytes of an upload in progress, counted against its company's byte quota until dropped (after the
/// upload is recorded in the database, or refused).
#[derive(Debug)]
pub struct Reservation {
    map: Reserved,
    company: String,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(v) = m.get_mut(&self.company)
        {
            *v = v.saturating_sub(self.bytes);
            if *v == 0 {
                m.remove(&self.company);
            }
        }
    }
}

impl Store {
    /// Reserves `bytes` for `company`; returns the reservation and the bytes other uploads of the
    /// company had reserved at that moment. Reserve first and read the recorded usage second: an
    /// upload that finished in between is then counted at least once, so a limit is never overshot.
    pub fn reserve(&self, company: &str, bytes: u64) -> Result<(Reservation, u64)> {
        let mut m = self
            .reserved
            .lock()
            .map_err(|_| Error::internal("reservation lock poisoned"))?;
        let entry = m.entry(company.to_string()).or_default();
        let others = *entry;
        *entry += bytes;
        Ok((
            Reservation {
                map: self.reserved.clone(),
                company: company.to_string(),
                bytes,
            },
            others,
        ))
    }
}

/// How long the start-up check of the store waits for answers.
pub const START_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The start-up check of an S3 store (`brrd serve`): lists, writes and removes a probe file under
/// `<base>/brrd-start-check/`, so that refused credentials, missing permissions or a missing bucket
/// stop the server with [`Error::StoreRefused`] naming the location, instead of failing every upload
/// later. A store that does not answer within [`START_CHECK_TIMEOUT`] is
/// [`Error::StoreUnavailable`] (the caller decides whether to start anyway). Folder stores are
/// checked by their first use.
pub async fn check_store(base: &str) -> Result<()> {
    if !base.starts_with("s3:") {
        return Ok(());
    }
    let location = base.to_string();
    // A random name: several nodes sharing the store may start at once.
    let probe_name = uuid::Uuid::new_v4().simple().to_string();
    let backend = open_url_at(base, "brrd-start-check")
        .map_err(|e| Error::Config(format!("store.url: {e}")))?;
    let probe = tokio::task::spawn_blocking(move || {
        backend.list(brr_storage::FileKind::Lock)?;
        backend.write(
            brr_storage::FileKind::Lock,
            &probe_name,
            b"brrd start-up check",
        )?;
        backend.remove(brr_storage::FileKind::Lock, &probe_name)
    });
    let outcome = tokio::time::timeout(START_CHECK_TIMEOUT, probe)
        .await
        .map_err(|_| {
            Error::StoreUnavailable(format!(
                "{location}: no answer within {} s",
                START_CHECK_TIMEOUT.as_secs()
            ))
        })?
        .map_err(Error::internal)?;
    match outcome {
        Ok(()) => Ok(()),
        Err(e) => Err(match Error::storage(e) {
            Error::StoreRefused {
                refusal, detail, ..
            } => Error::StoreRefused {
                refusal,
                location,
                detail,
            },
            Error::StoreUnavailable(detail) => {
                Error::StoreUnavailable(format!("{location}: {detail}"))
            }
            other => other,
        }),
    }
}

/// Runs a blocking storage call on the blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().display().to_string(), &StoreConfig::default()).unwrap();
        let (a, others) = store.reserve("c", 10).unwrap();
        assert_eq!(others, 0);
        let (b, others) = store.reserve("c", 5).unwrap();
        assert_eq!(others, 10);
        let (_, others) = store.reserve("d", 1).unwrap();
        assert_eq!(others, 0, "companies are counted apart");
        drop(a);
        let (_c, others) = store.reserve("c", 1).unwrap();
        assert_eq!(others, 5);
        drop(b);
        assert_eq!(store.reserve("c", 0).unwrap().1, 1);
    }

    #[test]
    fn bad_store_locations_are_configuration_errors() {
        let err = Store::new("ftp://x".into(), &StoreConfig::default()).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
}
