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
