//! [`OpendalBackend`]: object storage (S3-compatible, or memory for tests) through an `opendal::Operator`.
//!
//! The [`Backend`] trait is synchronous; every backend of the process shares one small multi-threaded
//! tokio runtime (two worker threads that drive network I/O, started on first use, so a server with a
//! backend per repository does not run two threads per repository), runs each operation as a task there
//! and blocks the calling thread until it completes. Any number of std threads may call it at once. It must **not** be called
//! from inside an async context (a tokio task): it would block that executor thread for the whole
//! operation (it does not panic or deadlock, but it stalls every other task on that thread). Async
//! callers wrap calls in `tokio::task::spawn_blocking`, which is fully supported.
//!
//! An S3 PUT is atomic per object and acknowledged only once stored, so [`Backend::write`] is a single
//! PUT: readers see the old object or the new one, never a part, and an interrupted upload leaves nothing.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use opendal::{ErrorKind, Operator};

use crate::error::one_line;
use crate::{Backend, CONFIG_NAME, FileInfo, FileKind, StorageError, relative_path, validate_name};

/// How long one operation may take before it fails as [`StorageError::Unavailable`], unless changed with
/// [`OpendalBackend::with_timeout`]. Generous, so that a 32 MiB pack still uploads over a slow uplink.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Where and how to reach an S3-compatible bucket. Requests use path-style addressing
/// (`https://endpoint/bucket/key`), which every S3-compatible server supports.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Base URL of the service, e.g. `https://s3.example.net` or `http://127.0.0.1:3900`.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Region for request signing (`garage` for a default Garage, `us-east-1` for MinIO and many others).
    pub region: String,
    /// Folder inside the bucket that holds the repository (`""` for the bucket root), e.g. `repos/alpha`.
    pub prefix: String,
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl S3Config {
    /// The prefix without leading or trailing `/`.
    fn clean_prefix(&self) -> &str {
        self.prefix.trim_matches('/')
    }

    /// `s3:<endpoint>/<bucket>/<prefix>`, the form [`open_url`](crate::open_url) accepts.
    fn location(&self) -> String {
        let mut s = format!("s3:{}/{}", self.endpoint.trim_end_matches('/'), self.bucket);
        if !self.clean_prefix().is_empty() {
            s.push('/');
            s.push_str(self.clean_prefix());
        }
        s
    }
}

/// A repository in an object store reached through `opendal`. See the module docs for threading rules.
pub struct OpendalBackend {
    op: Operator,
    location: String,
    timeout: Duration,
    /// The process-wide I/O runtime ([`io_runtime`]).
    runtime: tokio::runtime::Handle,
}

/// The I/O runtime shared by every [`OpendalBackend`] of the process, started on first use and never
/// stopped (its two idle workers cost nothing).
fn io_runtime() -> std::io::Result<tokio::runtime::Handle> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.handle().clone());
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("brr-storage-io")
        .enable_all()
        .build()?;
    if let Err(loser) = RUNTIME.set(built) {
        // Another thread won the race; drop ours without blocking (we may be inside an async context).
        loser.shutdown_background();
    }
    RUNTIME
        .get()
        .map(|rt| rt.handle().clone())
        .ok_or_else(|| std::io::Error::other("the shared I/O runtime is missing"))
}

impl std::fmt::Debug for OpendalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpendalBackend")
            .field("location", &self.location)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OpendalBackend {
    /// A new, empty repository in process memory; everything is lost when the backend is dropped.
    /// For tests.
    pub fn memory() -> Result<Self, StorageError> {
        let op = Operator::new(opendal::services::Memory::default()).map_err(|e| {
            StorageError::Backend {
                op: "set up memory storage",
                detail: one_line(e),
            }
        })?;
        Self::from_operator(op, "memory:".to_owned())
    }

    /// A repository in an S3-compatible bucket. Does no I/O: a wrong endpoint or bad credentials show up
    /// on the first operation. Credentials come only from `config` (no `~/.aws` files, no instance
    /// metadata).
    pub fn s3(config: S3Config) -> Result<Self, StorageError> {
        let location = config.location();
        let invalid = |reason: &str| StorageError::InvalidLocation {
            location: location.clone(),
            reason: reason.to_owned(),
        };
        if !(config.endpoint.starts_with("http://") || config.endpoint.starts_with("https://")) {
            return Err(invalid("the endpoint must start with http:// or https://"));
        }
        if config.bucket.is_empty() || config.bucket.contains('/') {
            return Err(invalid(
                "the bucket name must be non-empty and contain no '/'",
            ));
        }
        if config.access_key_id.is_empty() || config.secret_access_key.is_empty() {
            return Err(invalid(
                "an access key ID and a secret access key are required",
            ));
        }
        // Registers the HTTP transport (reqwest with rustls) that the S3 service sends requests through.
        opendal::install_default();
        let root = format!("/{}", config.clean_prefix());
        let builder = opendal::services::S3::default()
            .endpoint(config.endpoint.trim_end_matches('/'))
            .bucket(&config.bucket)
            .region(&config.region)
            .root(&root)
            .access_key_id(&config.access_key_id)
            .secret_access_key(&config.secret_access_key)
            .disable_config_load();
        let op = Operator::new(builder).map_err(|e| StorageError::InvalidLocation {
            location: location.clone(),
            reason: one_line(e),
        })?;
        Self::from_operator(op, location)
    }

    /// A backend over any `opendal` operator (whose root is the repository root), shown as `location`.
    pub fn from_operator(op: Operator, location: String) -> Result<Self, StorageError> {
        let runtime = io_runtime().map_err(|e| StorageError::Io {
            op: "start the I/O runtime for",
            path: location.clone(),
            source: e,
        })?;
        Ok(OpendalBackend {
            op,
            location,
            timeout: DEFAULT_TIMEOUT,
            runtime,
        })
    }

    /// Fail operations that take longer than `timeout` with [`StorageError::Unavailable`] (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Run the future made by `make` on the backend's runtime and wait for it on the calling thread.
    /// The outer error is about running at all (timeout, runtime gone); the inner result is the
    /// operation's.
    ///
    /// The future is spawned and its result comes back over a std channel rather than through
    /// `Runtime::block_on`, which panics on threads that are inside another runtime: this way the backend
    /// also works from `spawn_blocking` threads and, blocking, even from async tasks.
    fn run<T, F>(
        &self,
        op: &'static str,
        make: impl FnOnce(Operator) -> F,
    ) -> Result<opendal::Result<T>, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = opendal::Result<T>> + Send + 'static,
    {
        let runtime = &self.runtime;
        let timeout = self.timeout;
        let fut = make(self.op.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            // The receiver is gone only if the caller's thread died; nobody needs the result then.
            let _ = tx.send(tokio::time::timeout(timeout, fut).await);
        });
        match rx.recv() {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_elapsed)) => Err(StorageError::Unavailable {
                op,
                detail: format!("no answer from {} within {timeout:?}", self.location),
            }),
            Err(_) => Err(StorageError::Backend {
                op,
                detail: "the I/O task ended without a result".to_owned(),
            }),
        }
    }

    fn stat(&self, kind: FileKind, name: &str, path: &str) -> Result<u64, StorageError> {
        let path = path.to_owned();
        match self.run("stat", |op| async move { op.stat(&path).await })? {
            Ok(meta) if meta.is_dir() => Err(StorageError::NotFound {
                kind,
                name: name.to_owned(),
            }),
            Ok(meta) => Ok(meta.content_length()),
            Err(e) => Err(map_err("stat", kind, name, e)),
        }
    }

    fn folder_prefix(kind: FileKind) -> String {
        match kind.folder() {
            Some(folder) => format!("{folder}/"),
            None => String::new(),
        }
    }
}

/// How [`StorageError::Backend`] details of refusals begin (see [`Refusal::of`]).
const ACCESS_DENIED: &str = "access denied";
const NO_SUCH_BUCKET: &str = "no such bucket";

/// Why an object store refuses requests for good: something the operator must fix, not an outage.
/// Reported as [`StorageError::Backend`] (not retryable) whose detail starts with a fixed phrase, so
/// a server can tell its clients what is wrong without passing on the service's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service refuses the credentials (unknown access key, wrong secret, a signature for another
    /// region) or they lack a permission on the bucket.
    AccessDenied,
    /// The bucket does not exist.
    NoSuchBucket,
}

impl Refusal {
    /// The refusal a storage error reports, if it is one.
    pub fn of(e: &StorageError) -> Option<Refusal> {
        match e {
            StorageError::Backend { detail, .. } if detail.starts_with(ACCESS_DENIED) => {
                Some(Refusal::AccessDenied)
            }
            StorageError::Backend { detail, .. } if detail.starts_with(NO_SUCH_BUCKET) => {
                Some(Refusal::NoSuchBucket)
            }
            _ => None,
        }
    }

    /// What is wrong and what to check, in one line without secrets.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::AccessDenied => {
                "access denied: the S3 service refuses the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY unknown or wrong, AWS_REGION not the service's) or they may not read, write, list and delete in the bucket"
            }
            Refusal::NoSuchBucket => {
                "the bucket does not exist: create it or correct the bucket in the URL"
            }
        }
    }

    /// Of an opendal error: S3's `NoSuchBucket` (a 404 like a missing object, told apart by the
    /// error code in the body; a HEAD has no body, so a `stat` of a missing bucket stays
    /// [`StorageError::NotFound`]), any 403, and the 400 codes of unusable credentials.
    fn of_opendal(e: &opendal::Error) -> Option<Refusal> {
        let text = e.to_string();
        if text.contains("NoSuchBucket") {
            Some(Refusal::NoSuchBucket)
        } else if e.kind() == ErrorKind::PermissionDenied
            || [
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AuthorizationHeaderMalformed",
                "AccessDenied",
            ]
            .iter()
            .any(|code| text.contains(code))
        {
            Some(Refusal::AccessDenied)
        } else {
            None
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Refusal::AccessDenied => ACCESS_DENIED,
            Refusal::NoSuchBucket => NO_SUCH_BUCKET,
        }
    }
}

/// Translate an opendal error about one file.
fn map_err(op: &'static str, kind: FileKind, name: &str, e: opendal::Error) -> StorageError {
    match e.kind() {
        ErrorKind::NotFound if Refusal::of_opendal(&e).is_none() => StorageError::NotFound {
            kind,
            name: name.to_owned(),
        },
        _ => map_service_err(op, e),
    }
}

/// Translate an opendal error that is not about a missing file.
fn map_service_err(op: &'static str, e: opendal::Error) -> StorageError {
    if let Some(r) = Refusal::of_opendal(&e) {
        StorageError::Backend {
            op,
            detail: format!("{}: {}", r.prefix(), one_line(e)),
        }
    } else if e.kind() == ErrorKind::RateLimited || e.is_temporary() {
        StorageError::Unavailable {
            op,
            detail: one_line(e),
        }
    } else {
        StorageError::Backend {
            op,
            detail: one_line(e),
        }
    }
}

impl Backend for OpendalBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create(&self) -> Result<(), StorageError> {
        // Object stores have no folders to prepare; only refuse to overwrite an existing repository.
        // This check and a concurrent `create` can race: object stores such as Garage offer no
        // create-if-absent, so two simultaneous inits of one location cannot both be detected here.
        match self.size(FileKind::Config, CONFIG_NAME) {
            Ok(_) => Err(StorageError::AlreadyExists {
                location: self.location(),
            }),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        let path = relative_path(kind, name)?;
        match self.run("read", |op| async move { op.read(&path).await })? {
            Ok(buf) => Ok(buf.to_vec()),
            Err(e) => Err(map_err("read", kind, name, e)),
        }
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let path = relative_path(kind, name)?;
        let short = |got: u64| StorageError::ShortRead {
            kind,
            name: name.to_owned(),
            expected: len,
            got,
        };
        let end = match offset.checked_add(len) {
            Some(end) if len > 0 => end,
            // Nothing to fetch: the file must still exist and reach `offset`.
            _ => {
                let size = self.stat(kind, name, &path)?;
                return if offset.checked_add(len).is_some_and(|end| end <= size) {
                    Ok(Vec::new())
                } else {
                    Err(short(size.saturating_sub(offset).min(len)))
                };
            }
        };
        let owned = path.clone();
        match self.run("read", |op| async move {
            op.read_with(&owned).range(offset..end).await
        })? {
            Ok(buf) if buf.len() as u64 == len => Ok(buf.to_vec()),
            // Services differ on ranges past the end (a short body, "range not satisfiable", or opendal's
            // own "reader got too little data"): on any failure other than a missing file, the size
            // decides whether the file is just too short.
            Ok(_) => Err(short(
                self.stat(kind, name, &path)?
                    .saturating_sub(offset)
                    .min(len),
            )),
            Err(e) if e.kind() != ErrorKind::NotFound => match self.stat(kind, name, &path) {
                Ok(size) if size < end => Err(short(size.saturating_sub(offset).min(len))),
                Ok(_) => Err(map_err("read", kind, name, e)),
                Err(stat_err) if stat_err.is_not_found() => Err(stat_err),
                Err(_) => Err(map_err("read", kind, name, e)),
            },
            Err(e) => Err(map_err("read", kind, name, e)),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        let path = relative_path(kind, name)?;
        self.stat(kind, name, &path)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = relative_path(kind, name)?;
        let data = data.to_vec();
        match self.run("write", |op| async move { op.write(&path, data).await })? {
            Ok(_) => Ok(()),
            Err(e) => Err(map_err("write", kind, name, e)),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        if kind == FileKind::Config {
            return match self.size(kind, CONFIG_NAME) {
                Ok(size) => Ok(vec![FileInfo {
                    name: CONFIG_NAME.to_owned(),
                    size,
                }]),
                Err(e) if e.is_not_found() => Ok(Vec::new()),
                Err(e) => Err(e),
            };
        }
        let prefix = Self::folder_prefix(kind);
        let entries = match self.run("list", |op| async move {
            op.list_with(&prefix).recursive(true).await
        })? {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound && Refusal::of_opendal(&e).is_none() => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(map_service_err("list", e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let meta = entry.metadata();
            if meta.is_dir() {
                continue;
            }
            // Keep only files whose whole path is what the layout gives their name: this skips stray
            // objects, temporary names and packs in the wrong fan-out folder.
            let Some(name) = entry.path().rsplit('/').next() else {
                continue;
            };
            if validate_name(kind, name).is_err()
                || relative_path(kind, name).ok().as_deref() != Some(entry.path())
            {
                continue;
            }
            let size = if meta.is_file() {
                meta.content_length()
            } else {
                // Some services list names without metadata.
                match self.stat(kind, name, entry.path()) {
                    Ok(size) => size,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                }
            };
            out.push(FileInfo {
                name: name.to_owned(),
                size,
            });
        }
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        let path = relative_path(kind, name)?;
        // Object stores delete missing keys without complaint; the trait reports them.
        self.stat(kind, name, &path)?;
        match self.run("remove", |op| async move { op.delete(&path).await })? {
            Ok(()) => Ok(()),
            Err(e) => Err(map_err("remove", kind, name, e)),
        }
    }
}

#[cfg(test)]
mod tests;
