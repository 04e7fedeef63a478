//! The file API of a repository: list, read (ranges), upload with key-less checks, delete, blob
//! look-up (docs/server-repositories.md §3).
//!
//! Order of an upload: access rule → size limit → upload slot (semaphore) → body read chunk by chunk,
//! hashed as it arrives, refused past the limit → name = BLAKE3 → already stored? (200, nothing
//! rewritten) → content checks → quota → atomic store write → database record. The database only
//! ever lags behind the store (a crash between the two is healed by the retried upload), so a
//! snapshot is accepted only when every blob it references is recorded in a stored pack.

use std::collections::HashMap;

use brr_storage::{FileKind, validate_name};
use futures_util::{Stream, StreamExt};

use super::checks::{self, Parsed, content_addressed, kind_name};
use super::rules::{Allowed, FileOp, RepoOp, file_rule};
use super::store::blocking;
use super::{RepoRow, Service};
use crate::error::{Error, Result};
use crate::service::Ctx;

/// Blob IDs per database query.
const BATCH: usize = 400;

/// A `Range: bytes=…` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=A-` or `bytes=A-B` (inclusive).
    From(u64, Option<u64>),
    /// `bytes=-N`: the last N bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses one range of a `Range` header; several ranges or other units are refused.
    pub fn parse(header: &str) -> Result<ByteRange> {
        let bad = || Error::invalid(format!("unsupported Range {header:?}: use bytes=A-B"));
        let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
        if spec.contains(',') {
            return Err(bad());
        }
        let (a, b) = spec.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        match (a.trim().is_empty(), b.trim().is_empty()) {
            (true, false) => Ok(ByteRange::Suffix(num(b)?)),
            (false, true) => Ok(ByteRange::From(num(a)?, None)),
            (false, false) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(bad());
                }
                Ok(ByteRange::From(a, Some(b)))
            }
            (true, true) => Err(bad()),
        }
    }

    /// Offset and length inside a file of `size` bytes; [`Error::RangeNotSatisfiable`] outside it.
    pub fn resolve(self, size: u64) -> Result<(u64, u64)> {
        let out = Error::RangeNotSatisfiable { size };
        match self {
            ByteRange::From(a, _) if a >= size => Err(out),
            ByteRange::From(a, b) => {
                let end = b.unwrap_or(u64::MAX).min(size - 1);
                Ok((a, end - a + 1))
            }
            ByteRange::Suffix(0) => Err(out),
            ByteRange::Suffix(n) if size == 0 => {
                let _ = n;
                Err(out)
            }
            ByteRange::Suffix(n) => {
                let len = n.min(size);
                Ok((size - len, len))
            }
        }
    }
}

/// A file (or part of one) read from a repository.
#[derive(Debug)]
pub struct FileRead {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The whole file's size.
    pub size: u64,
    /// For a range request: offset of `bytes`.
    pub range_start: Option<u64>,
}

/// The outcome of an accepted upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False if an identical file was already stored (nothing was rewritten).
    pub created: bool,
    /// Bytes received.
    pub size: u64,
}

/// Reads a body chunk by chunk into memory, hashing as it arrives, refusing it past `limit` bytes.
pub async fn read_body<S, B, E>(
    mut body: S,
    limit: u64,
    hint: Option<u64>,
) -> Result<(Vec<u8>, String)>
where
    S: Stream<Item = std::result::Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let cap = hint.unwrap_or(0).min(limit).min(64 << 20);
    let mut buf = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::invalid(format!("the upload broke off: {e}")))?;
        let chunk = chunk.as_ref();
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large(limit));
        }
        hasher.update(chunk);
        buf.extend_from_slice(chunk);
    }
    Ok((buf, hasher.finalize().to_hex().to_string()))
}

fn too_large(limit: u64) -> Error {
    Error::TooLarge(format!(
        "the body exceeds the upload limit of {limit} bytes"
    ))
}

fn check_file_name(kind: FileKind, name: &str) -> Result<()> {
    validate_name(kind, name).map_err(|e| Error::invalid(e.to_string()))
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
            if stored != bytes {
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
                Parsed::Snapshot { refs, .. } => {
                    self.usable_blobs(&row.id, refs).await?.values().sum()
                }
                _ => 0,
            };
            self.record_file(&actor, row, (kind, name, size), &parsed, ref_bytes)
                .await?;
            return Ok(Stored {
                created: false,
                size,
            });
        }
        let mut snapshot_bytes = 0;
        match &parsed {
            Parsed::Snapshot { refs, .. } => {
                snapshot_bytes = self.check_refs(&row.id, refs).await?;
                self.check_quota_snapshots(&row.company_id).await?;
            }
            Parsed::Index { supersedes, packs } if row.append_only_now(self.now()) => {
                self.check_append_only_index(&backend, supersedes, packs)
                    .await?;
            }
            _ => {}
        }
        let old = existing.unwrap_or(0);
        self.check_quota_bytes(&row.company_id, size.saturating_sub(old))
            .await?;
        let n = name.to_string();
        let data = bytes;
        let b = backend.clone();
        blocking(move || b.write(kind, &n, &data).map_err(Error::storage)).await?;
        self.record_file(&actor, row, (kind, name, size), &parsed, snapshot_bytes)
            .await?;
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

    /// Blobs of `ids` the repository holds in a recorded pack that no GC record condemns, with the
    /// smallest stored length of each.
    pub async fn usable_blobs(
        &self,
        repo_id: &str,
        ids: &[String],
    ) -> Result<HashMap<String, u64>> {
        let mut found = HashMap::new();
        for batch in ids.chunks(BATCH) {
            let sql = format!(
                "SELECT b.blob_id, MIN(b.stored_len) FROM repo_blobs b \
                 WHERE b.repo_id = $1 AND b.blob_id IN ({}) \
                 AND NOT EXISTS (SELECT 1 FROM repo_condemned c WHERE c.repo_id = b.repo_id AND c.pack_id = b.pack_id) \
                 GROUP BY b.blob_id",
                placeholders(2, batch.len())
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(repo_id);
            for id in batch {
                q = q.bind(id);
            }
            for (id, len) in q.fetch_all(&self.db.pool).await? {
                found.insert(id, u64::try_from(len).unwrap_or(0));
            }
        }
        Ok(found)
    }

    /// Every reference must be usable; returns the sum of their stored lengths.
    async fn check_refs(&self, repo_id: &str, refs: &[String]) -> Result<u64> {
        let found = self.usable_blobs(repo_id, refs).await?;
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

    /// Records what the server learned from a stored file (idempotent).
    pub(super) async fn record_file(
        &self,
        actor: &str,
        row: &RepoRow,
        (kind, name, size): (FileKind, &str, u64),
        parsed: &Parsed,
        ref_bytes: u64,
    ) -> Result<()> {
        let now = self.now();
        let size_i = i64::try_from(size).map_err(Error::internal)?;
        let mut tx = self.db.pool.begin().await?;
        if let Parsed::Pack(blobs) = parsed {
            sqlx::query(
                "INSERT INTO repo_packs (repo_id, pack_id, size, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (repo_id, pack_id) DO NOTHING",
            )
            .bind(&row.id)
            .bind(name)
            .bind(size_i)
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for chunk in blobs.chunks(100) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = 3 + i * 4;
                        format!("($1, ${b}, $2, ${}, ${}, ${})", b + 1, b + 2, b + 3)
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO repo_blobs (repo_id, blob_id, pack_id, blob_type, blob_offset, stored_len) VALUES {} \
                     ON CONFLICT (repo_id, blob_id, pack_id) DO NOTHING",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql).bind(&row.id).bind(name);
                for blob in chunk {
                    q = q
                        .bind(&blob.id)
                        .bind(blob.blob_type)
                        .bind(i64::try_from(blob.offset).map_err(Error::internal)?)
                        .bind(i64::try_from(blob.length).map_err(Error::internal)?);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO repo_files (repo_id, kind, name, size, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (repo_id, kind, name) DO UPDATE SET size = excluded.size, uploaded_by = excluded.uploaded_by, uploaded_at = excluded.uploaded_at",
        )
        .bind(&row.id)
        .bind(kind_name(kind))
        .bind(name)
        .bind(size_i)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        match parsed {
            Parsed::Snapshot {
                time_ms,
                source,
                refs,
            } => {
                sqlx::query(
                    "INSERT INTO repo_snapshots (repo_id, snapshot_id, time, source, ref_count, size, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (repo_id, snapshot_id) DO NOTHING",
                )
                .bind(&row.id)
                .bind(name)
                .bind(*time_ms)
                .bind(source)
                .bind(i64::try_from(refs.len()).map_err(Error::internal)?)
                .bind(i64::try_from(ref_bytes).map_err(Error::internal)?)
                .bind(actor)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Parsed::Index { supersedes, .. } => {
                for s in supersedes {
                    sqlx::query(
                        "INSERT INTO repo_supersedes (repo_id, index_id, superseded_id) VALUES ($1, $2, $3) \
                         ON CONFLICT (repo_id, index_id, superseded_id) DO NOTHING",
                    )
                    .bind(&row.id)
                    .bind(name)
                    .bind(s)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Parsed::Gc(packs) => {
                sqlx::query("DELETE FROM repo_condemned WHERE repo_id = $1 AND gc_name = $2")
                    .bind(&row.id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for p in packs {
                    sqlx::query(
                        "INSERT INTO repo_condemned (repo_id, gc_name, pack_id) VALUES ($1, $2, $3) \
                         ON CONFLICT (repo_id, gc_name, pack_id) DO NOTHING",
                    )
                    .bind(&row.id)
                    .bind(name)
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Parsed::Pack(_) | Parsed::Other => {}
        }
        tx.commit().await?;
        Ok(())
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
                let extra = match kind {
                    FileKind::Snapshot => {
                        Some("DELETE FROM repo_snapshots WHERE repo_id = $1 AND snapshot_id = $2")
                    }
                    FileKind::Index => {
                        Some("DELETE FROM repo_supersedes WHERE repo_id = $1 AND index_id = $2")
                    }
                    FileKind::Gc => {
                        Some("DELETE FROM repo_condemned WHERE repo_id = $1 AND gc_name = $2")
                    }
                    _ => None,
                };
                if let Some(sql) = extra {
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

    /// `POST /repos/{repo}/blobs/lookup`.
    pub async fn lookup_blobs(&self, ctx: &Ctx, repo: &str, ids: &[String]) -> Result<Vec<bool>> {
        if ids.len() > brr_api::repos::MAX_LOOKUP_IDS {
            return Err(Error::invalid(format!(
                "at most {} IDs per look-up, got {}",
                brr_api::repos::MAX_LOOKUP_IDS,
                ids.len()
            )));
        }
        for id in ids {
            if id.len() != 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(Error::invalid(format!(
                    "blob ID {:?} is not 64 lower-case hex characters",
                    &id[..id.len().min(80)]
                )));
            }
        }
        let (row, _) = self
            .file_access(ctx, repo, FileKind::Pack, FileOp::Read)
            .await?;
        let found = self.usable_blobs(&row.id, ids).await?;
        Ok(ids.iter().map(|i| found.contains_key(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            ByteRange::parse("bytes=0-9").unwrap().resolve(100).unwrap(),
            (0, 10)
        );
        assert_eq!(
            ByteRange::parse("bytes=90-").unwrap().resolve(100).unwrap(),
            (90, 10)
        );
        assert_eq!(
            ByteRange::parse("bytes=90-500")
                .unwrap()
                .resolve(100)
                .unwrap(),
            (90, 10)
        );
        assert_eq!(
            ByteRange::parse("bytes=-5").unwrap().resolve(100).unwrap(),
            (95, 5)
        );
        assert_eq!(
            ByteRange::parse("bytes=-500")
                .unwrap()
                .resolve(100)
                .unwrap(),
            (0, 100)
        );
        assert!(matches!(
            ByteRange::parse("bytes=100-").unwrap().resolve(100),
            Err(Error::RangeNotSatisfiable { size: 100 })
        ));
        assert!(ByteRange::parse("bytes=-0").unwrap().resolve(100).is_err());
        for bad in [
            "bytes=5-1",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=a-b",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn body_is_hashed_and_limited() {
        let chunks: Vec<std::result::Result<Vec<u8>, String>> =
            vec![Ok(b"hello ".to_vec()), Ok(b"world".to_vec())];
        let (bytes, hash) = read_body(futures_util::stream::iter(chunks.clone()), 11, None)
            .await
            .unwrap();
        assert_eq!(bytes, b"hello world");
        assert_eq!(hash, blake3::hash(b"hello world").to_hex().to_string());
        assert!(matches!(
            read_body(futures_util::stream::iter(chunks), 10, None).await,
            Err(Error::TooLarge(_))
        ));
        let broken: Vec<std::result::Result<Vec<u8>, String>> = vec![Err("reset".into())];
        assert!(matches!(
            read_body(futures_util::stream::iter(broken), 10, None).await,
            Err(Error::Invalid(_))
        ));
    }
}
