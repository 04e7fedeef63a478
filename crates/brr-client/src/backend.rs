//! [`RemoteBackend`]: a [`Backend`] over the repository file API of `brrd`
//! (`/api/v1/repos/{repo}/files/{kind}/{name}`, docs/server-repositories.md §3).

use std::sync::{Arc, Mutex};

use brr_storage::{Backend, FileInfo, FileKind, StorageError, validate_name};
use reqwest::Method;

use crate::ClientError;
use crate::client::{Client, Request};

/// A company repository on a `brrd` server, as a storage backend for the engine.
///
/// | trait method | request |
/// |---|---|
/// | `read` | `GET …/files/{kind}/{name}` |
/// | `read_range` | `GET` with `Range: bytes=A-B` (206; 416 → [`StorageError::ShortRead`]) |
/// | `size` | `HEAD` (`Content-Length`) |
/// | `write` | `PUT` (201 stored, 200 identical file already stored) |
/// | `list` | `GET …/files/{kind}` |
/// | `remove` | `DELETE` (204) |
/// | `create` | `HEAD …/files/config`: [`StorageError::AlreadyExists`] if present; the repository itself is created with `POST /repos` ([`crate::Repos::create`]) |
/// | `lookup_blobs` | `POST …/blobs/lookup`, at most [`brr_api::repos::MAX_LOOKUP_IDS`] IDs per request (retried like reads) |
///
/// A 404 on a file is [`StorageError::NotFound`] only if the repository exists; otherwise (no such
/// repository, or another company's) the call fails and [`RemoteBackend::refusal`] says why. Every
/// error that concerns the server or the caller's rights rather than one file (not logged in,
/// forbidden, quota, append-only, unreachable) is kept there too, so the command line reports it with
/// its own exit code instead of the storage error the engine returns.
#[derive(Debug)]
pub struct RemoteBackend {
    client: Arc<Client>,
    repo: String,
    refusal: Mutex<Option<ClientError>>,
}

fn kind_segment(kind: FileKind) -> &'static str {
    kind.folder().unwrap_or("config")
}

/// Whether a `PUT` of this kind may be repeated after a lost answer: content-addressed files (the
/// server answers a re-upload with 200), and locks and GC records (the same bytes under the same name
/// again; a lock refresh must survive a server restart). Not the config, which the server stores once.
fn idempotent_put(kind: FileKind) -> bool {
    kind != FileKind::Config
}

impl RemoteBackend {
    /// The repository `repo` of `client`'s server.
    pub fn new(client: Arc<Client>, repo: &str) -> Result<RemoteBackend, ClientError> {
        crate::url::validate_repo_name(repo)?;
        Ok(RemoteBackend {
            client,
            repo: repo.to_owned(),
            refusal: Mutex::new(None),
        })
    }

    /// The client.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The repository name.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The first error that concerned the server or the caller's rights, if any happened.
    pub fn refusal(&self) -> Option<ClientError> {
        self.refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn file_path(&self, kind: FileKind, name: &str) -> String {
        format!(
            "/api/v1/repos/{}/files/{}/{name}",
            self.repo,
            kind_segment(kind)
        )
    }

    fn what(&self) -> String {
        format!("repository {:?}", self.repo)
    }

    /// Keeps `e` if it is a refusal, and converts it for the engine.
    fn fail(&self, op: &'static str, e: ClientError) -> StorageError {
        if e.is_refusal() {
            let mut slot = self.refusal.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.clone());
            }
        }
        e.to_storage(op)
    }

    /// After a 404 on a file: [`StorageError::NotFound`] if the repository exists, else the
    /// repository's own 404 (kept as the refusal).
    fn missing(&self, op: &'static str, kind: FileKind, name: &str) -> StorageError {
        let req = Request::new(Method::GET, format!("/api/v1/repos/{}", self.repo), true)
            .what(self.what());
        match self.client.send(&req, &[]) {
            // A role that may not describe the repository still reached it: the file is missing.
            Ok(_) | Err(ClientError::Forbidden { .. }) => StorageError::NotFound {
                kind,
                name: name.to_owned(),
            },
            Err(e) => self.fail(op, e),
        }
    }

    fn get(
        &self,
        op: &'static str,
        req: &Request<'_>,
        kind: FileKind,
        name: &str,
    ) -> Result<crate::client::Reply, StorageError> {
        let reply = self
            .client
            .send(req, &[404, 416])
            .map_err(|e| self.fail(op, e))?;
        if reply.status == 404 {
            return Err(self.missing(op, kind, name));
        }
        Ok(reply)
    }
}

impl Backend for RemoteBackend {
    fn location(&self) -> String {
        format!("{} (repository {})", self.client.server(), self.repo)
    }

    fn create(&self) -> Result<(), StorageError> {
        match self.size(FileKind::Config, brr_storage::CONFIG_NAME) {
            Ok(_) => Err(StorageError::AlreadyExists {
                location: self.location(),
            }),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        validate_name(kind, name)?;
        let req = Request::new(Method::GET, self.file_path(kind, name), true).what(self.what());
        let reply = self.get("read", &req, kind, name)?;
        if reply.status != 200 {
            return Err(self.fail(
                "read",
                self.client
                    .protocol(format!("HTTP {} for a whole-file read", reply.status)),
            ));
        }
        Ok(reply.body)
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        validate_name(kind, name)?;
        let short = |got: u64| StorageError::ShortRead {
            kind,
            name: name.to_owned(),
            expected: len,
            got,
        };
        if len == 0 {
            let size = self.size(kind, name)?;
            return if size >= offset {
                Ok(Vec::new())
            } else {
                Err(short(0))
            };
        }
        let Some(last) = offset.checked_add(len - 1) else {
            let size = self.size(kind, name)?;
            return Err(short(size.saturating_sub(offset).min(len)));
        };
        let mut req = Request::new(Method::GET, self.file_path(kind, name), true).what(self.what());
        req.range = Some(format!("bytes={offset}-{last}"));
        let reply = self.get("read_range", &req, kind, name)?;
        match reply.status {
            206 => {
                let got = reply.body.len() as u64;
                if got == len {
                    Ok(reply.body)
                } else if got < len {
                    Err(short(got))
                } else {
                    Err(self.fail(
                        "read_range",
                        self.client.protocol(format!(
                            "asked for {len} bytes of {kind} file {name}, got {got}"
                        )),
                    ))
                }
            }
            // A server that ignores Range sends the whole file.
            200 => {
                let body = reply.body;
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                let end = usize::try_from(offset.saturating_add(len))
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                if (end - start) as u64 == len {
                    Ok(body[start..end].to_vec())
                } else {
                    Err(short((end - start) as u64))
                }
            }
            416 => {
                let size = self.size(kind, name)?;
                Err(short(size.saturating_sub(offset).min(len)))
            }
            other => Err(self.fail(
                "read_range",
                self.client
                    .protocol(format!("HTTP {other} for a ranged read")),
            )),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        validate_name(kind, name)?;
        let req = Request::new(Method::HEAD, self.file_path(kind, name), true).what(self.what());
        let reply = self.get("size", &req, kind, name)?;
        reply.content_length.ok_or_else(|| {
            self.fail(
                "size",
                self.client.protocol("a HEAD answer without Content-Length"),
            )
        })
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_name(kind, name)?;
        let req = Request::new(
            Method::PUT,
            self.file_path(kind, name),
            idempotent_put(kind),
        )
        .bytes(data)
        .what(self.what());
        self.client
            .send(&req, &[])
            .map(|_| ())
            .map_err(|e| self.fail("write", e))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        let path = format!("/api/v1/repos/{}/files/{}", self.repo, kind_segment(kind));
        let req = Request::new(Method::GET, path, true).what(self.what());
        let listed: Vec<brr_api::repos::FileEntry> =
            self.client.json(&req).map_err(|e| self.fail("list", e))?;
        Ok(listed
            .into_iter()
            .filter(|f| {
                let ok = validate_name(kind, &f.name).is_ok();
                if !ok {
                    tracing::warn!(kind = %kind, "the server listed an invalid file name; ignored");
                }
                ok
            })
            .map(|f| FileInfo {
                name: f.name,
                size: f.size,
            })
            .collect())
    }

    /// Which blobs the server holds in a pack a stored index file lists (docs/server-repositories.md
    /// §3): one request per [`brr_api::repos::MAX_LOOKUP_IDS`] IDs, each retried like a read (it
    /// changes nothing); no request for no IDs.
    fn lookup_blobs(&self, ids: &[String]) -> Result<Option<Vec<bool>>, StorageError> {
        let path = format!("/api/v1/repos/{}/blobs/lookup", self.repo);
        let mut present = Vec::with_capacity(ids.len());
        for batch in ids.chunks(brr_api::repos::MAX_LOOKUP_IDS) {
            let body = serde_json::to_vec(&brr_api::repos::BlobLookup {
                ids: batch.to_vec(),
            })
            .map_err(|e| self.fail("lookup_blobs", self.client.protocol(e)))?;
            let req = Request::new(Method::POST, path.as_str(), true)
                .json(&body)
                .what(self.what());
            let answer: brr_api::repos::BlobPresence = self
                .client
                .json(&req)
                .map_err(|e| self.fail("lookup_blobs", e))?;
            if answer.present.len() != batch.len() {
                return Err(self.fail(
                    "lookup_blobs",
                    self.client.protocol(format!(
                        "asked about {} blobs, got {} answers",
                        batch.len(),
                        answer.present.len()
                    )),
                ));
            }
            present.extend(answer.present);
        }
        Ok(Some(present))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        validate_name(kind, name)?;
        let req = Request::new(Method::DELETE, self.file_path(kind, name), true).what(self.what());
        let reply = self
            .client
            .send(&req, &[404])
            .map_err(|e| self.fail("remove", e))?;
        if reply.status == 404 {
            // After a lost answer the earlier attempt most likely deleted the file.
            if reply.attempts > 1 {
                return Ok(());
            }
            return Err(self.missing("remove", kind, name));
        }
        Ok(())
    }
}
