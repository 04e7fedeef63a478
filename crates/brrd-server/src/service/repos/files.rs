//! The file API of a repository: list, read (ranges), upload with key-less checks, delete, blob
//! look-up (docs/server-repositories.md §3).
//!
//! Order of an upload: access rule → size limit → upload slot (semaphore) → body read chunk by chunk,
//! hashed as it arrives, refused past the limit → name = BLAKE3 → already stored? (200, nothing
//! rewritten) → content checks → quota → atomic store write → database record. The database only
//! ever lags behind the store (a crash between the two is healed by the retried upload, or, for a
//! pack a resumed backup adopts without uploading it again, by the index file that describes it), so
//! a snapshot is accepted only when every blob it references is recorded in a stored pack.

use brr_storage::{FileKind, validate_name};
use futures_util::Stream;

use super::checks::{self, Parsed, content_addressed, kind_name};
use super::rules::{Allowed, FileOp, RepoOp, file_rule};
use super::store::blocking;
use super::{RepoRow, Service};
use crate::error::{Error, Result};
use crate::service::Ctx;

use super::transfer::too_large;
pub use super::transfer::{ByteRange, FileRead, Stored, read_body};

fn check_file_name(kind: FileKind, name: &str) -> Result<()> {
    validate_name(kind, name).map_err(|e| Error::invalid(e.to_string()))
}

impl Service {
    async fn file_access(
        &self,
        ctx: &Ctx,
        repo: &str,
        kind: FileKind,
        op: FileOp,
    ) -> Result<(RepoRow, Allowed)> {
        let row = self.resolve_repo(ctx, repo, RepoOp::Read).await?;
        let allowed = file_rule(
            ctx.principal()?,
            &row.company_id,
            kind,
            op,
            row.append_only_now(self.now()),
        );
        match allowed {
            Ok(a) => Ok((row, a)),
            Err(e) => {
                if e.refusal_reason().is_some() {
                    self.audit_refusal(ctx, &row, "repo.file_delete", &e)
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// `GET /repos/{repo}/files/{kind}`.
    pub async fn list_files(
        &self,
        ctx: &Ctx,
        repo: &str,
        kind: FileKind,
    ) -> Result<Vec<brr_api::repos::FileEntry>> {
        let (row, _) = self.file_access(ctx, repo, kind, FileOp::Read).await?;
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let mut files = blocking(move || backend.list(kind).map_err(Error::storage)).await?;
        files.sort();
        Ok(files
            .into_iter()
            .map(|f| brr_api::repos::FileEntry {
                name: f.name,
                size: f.size,
            })
            .collect())
    }

    /// `GET` (whole or one range) and `HEAD` (`range = None`, `body = false`) of a file.
    pub async fn read_file(
        &self,
        ctx: &Ctx,
        repo: &str,
        kind: FileKind,
        name: &str,
        range: Option<ByteRange>,
        body: bool,
    ) -> Result<FileRead> {
        check_file_name(kind, name)?;
        let (row, _) = self.file_access(ctx, repo, kind, FileOp::Read).await?;
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let name = name.to_string();
        let _permit = if body {
            Some(self.store.download_permit().await?)
        } else {
            None
        };
        blocking(move || {
            let size = backend.size(kind, &name).map_err(Error::storage)?;
            if !body {
                return Ok(FileRead {
                    bytes: Vec::new(),
                    size,
                    range_start: None,
                });
            }
            match range {
                None => Ok(FileRead {
                    bytes: backend.read(kind, &name).map_err(Error::storage)?,
                    size,
                    range_start: None,
                }),
                Some(r) => {
                    let (offset, len) = r.resolve(size)?;
                    Ok(FileRead {
                        bytes: backend
                            .read_range(kind, &name, offset, len)
                            .map_err(Error::storage)?,
                        size,
                        range_start: Some(offset),
                    })
                }
            }
        })
        .await
    }

    /// `PUT /repos/{repo}/files/{kind}/{name}`: see the module docs for the order of checks.
    pub async fn put_file<S, B, E>(
        &self,
        ctx: &Ctx,
        repo: &str,
        kind: FileKind,
        name: &str,
        content_length: Option<u64>,
        body: S,
    ) -> Result<Stored>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        check_file_name(kind, name)?;
        let (row, _) = self.file_access(ctx, repo, kind, FileOp::Write).await?;
        let r = self
            .put_checked(ctx, &row, kind, name, content_length, body)
            .await;
        if let Err(e) = &r
            && e.refusal_reason().is_some()
        {
            self.record(
                ctx,
                Some(&row.company_id),
                "repo.upload",
                &format!("repo:{}/{}/{name}", row.id, kind_name(kind)),
                e.code(),
                &e.to_string(),
            )
            .await?;
        }
        r
    }

    async fn put_checked<S, B, E>(
        &self,
        ctx: &Ctx,
        row: &RepoRow,
        kind: FileKind,
        name: &str,
        content_length: Option<u64>,
        body: S,
    ) -> Result<Stored>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let actor = ctx.principal()?.actor();
        let limit = self.store.max_upload_bytes;
        if content_length.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let backend = self.store.backend(&row.company_id, &row.id)?;
        // Refuse before reading when the announced size alone exceeds the quota.
        if let Some(n) = content_length
            && !self.file_exists(&backend, kind, name).await?
        {
            self.check_quota_bytes(&row.company_id, n).await?;
        }
        let _permit = self.store.upload_permit().await?;
        let (bytes, hash) = read_body(body, limit, content_length).await?;
        checks::check_name(kind, name, &hash)?;
        let size = bytes.len() as u64;
        let existing = {
            let b = backend.clone();
            let n = name.to_string();
            blocking(move || match b.size(kind, &n) {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(Error::storage(e)),
            })
            .await?
        };
        if existing.is_some() && kind == FileKind::Config {
            let b = backend.clone();
            let stored =
                blocking(move || b.read(FileKind::Config, "config").map_err(Error::storage))
                    .await?;
            if stored[..] != bytes[..] {
                return Err(Error::Exists(
                    "the repository already has a config file".into(),
                ));
            }
            return Ok(Stored {
                created: false,
                size,
            });
        }
        let parsed = checks::parse(kind, &bytes)?;
        if existing.is_some() && content_addressed(kind) {
            // An identical file is stored (its name is its hash): record it in case an earlier
            // upload stopped between store and database, and answer without rewriting.
            let ref_bytes = match &parsed {
                Parsed::Snapshot { refs, .. } => self.stored_refs_total(&row.id, refs).await?.1,
                _ => 0,
            };
            self.record_file(&actor, row, (kind, name, size), &parsed, ref_bytes)
                .await?;
            if let Parsed::Index { packs, .. } = &parsed {
                self.adopt_stored_packs(&actor, row, packs).await?;
            }
            return Ok(Stored {
                created: false,
                size,
            });
        }
        let mut snapshot_bytes = 0;
        // A snapshot's reference check and its store write exclude a GC sweep of this repository
        // (docs/server-repositories.md §4).
        let _sweep = match &parsed {
            Parsed::Snapshot { .. } => Some(self.sweep_exclusion(&row.id).await?),
            _ => None,
        };
        // Held until the snapshot is recorded: exact snapshot quotas under concurrency.
        let mut _snapshot_slot = None;
        match &parsed {
            Parsed::Snapshot { refs, .. } => {
                let started = std::time::Instant::now();
                snapshot_bytes = self.check_refs(&row.id, refs).await?;
                tracing::debug!(
                    repo = %row.id,
                    refs = refs.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot references checked"
                );
                _snapshot_slot = Some(
                    self.reserve_snapshot(&row.company_id, &row.id, name)
                        .await?,
                );
            }
            Parsed::Index { supersedes, packs } if row.append_only_now(self.now()) => {
                self.check_append_only_index(&backend, supersedes, packs)
                    .await?;
            }
            _ => {}
        }
        let old = existing.unwrap_or(0);
        let _reservation = self
            .reserve_bytes(&row.company_id, size.saturating_sub(old))
            .await?;
        let n = name.to_string();
        let data = bytes;
        let b = backend.clone();
        blocking(move || b.write(kind, &n, &data).map_err(Error::storage)).await?;
        self.record_file(&actor, row, (kind, name, size), &parsed, snapshot_bytes)
            .await?;
        if let Parsed::Index { packs, .. } = &parsed {
            self.adopt_stored_packs(&actor, row, packs).await?;
        }
        if let Parsed::Snapshot { refs, .. } = &parsed {
            self.record(
                ctx,
                Some(&row.company_id),
                "repo.snapshot_commit",
                &format!("repo:{}/snapshots/{name}", row.id),
                "success",
                &format!("refs={} bytes={snapshot_bytes}", refs.len()),
            )
            .await?;
        }
        Ok(Stored {
            created: true,
            size,
        })
    }

    async fn file_exists(
        &self,
        backend: &std::sync::Arc<dyn brr_storage::Backend>,
        kind: FileKind,
        name: &str,
    ) -> Result<bool> {
        let b = backend.clone();
        let n = name.to_string();
        blocking(move || match b.size(kind, &n) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(Error::storage(e)),
        })
        .await
    }

    /// Every reference must be a blob of a recorded pack, condemned or not (a backup listed in a GC
    /// record may reference blobs of packs condemned after it loaded the index; the sweep keeps them);
    /// returns the sum of their stored lengths.
    async fn check_refs(&self, repo_id: &str, refs: &[String]) -> Result<u64> {
        let (held, bytes) = self.stored_refs_total(repo_id, refs).await?;
        if held == refs.len() {
            return Ok(bytes);
        }
        // Some are missing: name them (one row per held blob, only on this refusal path).
        let found = self.stored_blobs(repo_id, refs).await?;
        let missing: Vec<&String> = refs.iter().filter(|r| !found.contains_key(*r)).collect();
        if !missing.is_empty() {
            let first: Vec<String> = missing
                .iter()
                .take(3)
                .map(|m| m[..16].to_string())
                .collect();
            return Err(Error::MissingBlobs(format!(
                "snapshot refused: {} of its {} referenced blobs are in no stored pack of this repository (first: {})",
                missing.len(),
                refs.len(),
                first.join(", ")
            )));
        }
        Ok(found.values().sum())
    }

    /// Append-only: an index file that supersedes others must describe every pack they describe.
    async fn check_append_only_index(
        &self,
        backend: &std::sync::Arc<dyn brr_storage::Backend>,
        supersedes: &[String],
        packs: &[String],
    ) -> Result<()> {
        let b = backend.clone();
        let old = supersedes.to_vec();
        let packs: std::collections::HashSet<String> = packs.iter().cloned().collect();
        blocking(move || {
            for s in old {
                let bytes = match b.read(FileKind::Index, &s) {
                    Ok(bytes) => bytes,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(Error::storage(e)),
                };
                let Ok(f) = brr_core::index::IndexFile::decode(&bytes) else {
                    continue;
                };
                let dropped = f
                    .packs
                    .iter()
                    .filter(|p| !packs.contains(&p.id.to_hex()))
                    .count();
                if dropped > 0 {
                    return Err(Error::AppendOnly(format!(
                        "the repository is append-only: this index file supersedes {} but drops {dropped} of its packs",
                        &s[..s.len().min(16)]
                    )));
                }
            }
            Ok(())
        })
        .await
    }

    /// `DELETE /repos/{repo}/files/{kind}/{name}`.
    pub async fn delete_file(
        &self,
        ctx: &Ctx,
        repo: &str,
        kind: FileKind,
        name: &str,
    ) -> Result<()> {
        check_file_name(kind, name)?;
        let (row, allowed) = self.file_access(ctx, repo, kind, FileOp::Delete).await?;
        if allowed == Allowed::IfSuperseded {
            let by: Option<(String,)> = sqlx::query_as(
                "SELECT s.index_id FROM repo_supersedes s JOIN repo_files f \
                 ON f.repo_id = s.repo_id AND f.kind = 'index' AND f.name = s.index_id \
                 WHERE s.repo_id = $1 AND s.superseded_id = $2",
            )
            .bind(&row.id)
            .bind(name)
            .fetch_optional(&self.db.pool)
            .await?;
            if by.is_none() {
                let e = if row.append_only_now(self.now()) {
                    Error::AppendOnly(format!(
                        "the repository is append-only: index {name} is superseded by no stored index file"
                    ))
                } else {
                    Error::Forbidden
                };
                if e.refusal_reason().is_some() {
                    self.audit_refusal(ctx, &row, "repo.file_delete", &e)
                        .await?;
                }
                return Err(e);
            }
        }
        // The database first: it may only ever claim less than the store holds.
        let mut tx = self.db.pool.begin().await?;
        match kind {
            FileKind::Pack => {
                for table in ["repo_blobs", "repo_packs"] {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE repo_id = $1 AND pack_id = $2"
                    ))
                    .bind(&row.id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            _ => {
                sqlx::query(
                    "DELETE FROM repo_files WHERE repo_id = $1 AND kind = $2 AND name = $3",
                )
                .bind(&row.id)
                .bind(kind_name(kind))
                .bind(name)
                .execute(&mut *tx)
                .await?;
                let extra: &[&str] = match kind {
                    FileKind::Snapshot => {
                        &["DELETE FROM repo_snapshots WHERE repo_id = $1 AND snapshot_id = $2"]
                    }
                    FileKind::Index => &[
                        "DELETE FROM repo_supersedes WHERE repo_id = $1 AND index_id = $2",
                        "DELETE FROM repo_index_packs WHERE repo_id = $1 AND index_id = $2",
                    ],
                    FileKind::Gc => {
                        &["DELETE FROM repo_condemned WHERE repo_id = $1 AND gc_name = $2"]
                    }
                    _ => &[],
                };
                for sql in extra {
                    sqlx::query(sql)
                        .bind(&row.id)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let n = name.to_string();
        blocking(move || backend.remove(kind, &n).map_err(Error::storage)).await?;
        if kind != FileKind::Lock {
            self.record(
                ctx,
                Some(&row.company_id),
                "repo.file_delete",
                &format!("repo:{}/{}/{name}", row.id, kind_name(kind)),
                "success",
                "",
            )
            .await?;
        }
        Ok(())
    }

    /// `POST /repos/{repo}/blobs/lookup`: which of `ids` the client may deduplicate against
    /// ([`Service::usable_blobs`]), in request order.
    pub async fn lookup_blobs(&self, ctx: &Ctx, repo: &str, ids: &[String]) -> Result<Vec<bool>> {
        let (row, _) = self
            .file_access(ctx, repo, FileKind::Pack, FileOp::Read)
            .await?;
        if ids.len() > brr_api::repos::MAX_LOOKUP_IDS {
            return Err(Error::invalid(format!(
                "at most {} IDs per look-up, got {}",
                brr_api::repos::MAX_LOOKUP_IDS,
                ids.len()
            )));
        }
        if let Some(bad) = ids.iter().find(|id| {
            id.len() != 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }) {
            let shown: String = bad.chars().take(80).flat_map(char::escape_debug).collect();
            return Err(Error::invalid(format!(
                "blob ID \"{shown}\" is not 64 lower-case hex characters"
            )));
        }
        let found = self.usable_blobs(&row.id, ids).await?;
        Ok(ids.iter().map(|i| found.contains_key(i)).collect())
    }
}
