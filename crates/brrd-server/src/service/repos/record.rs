//! The database record of stored files: what the server learned from each (idempotent inserts), and
//! which blobs a client may deduplicate against (in a recorded pack that a stored index file lists and
//! no GC record condemns).

use std::collections::HashMap;

use brr_storage::FileKind;

use super::checks::{Parsed, kind_name};
use super::{RepoRow, Service};
use crate::db::Engine;
use crate::error::{Error, Result};

/// Blob IDs per database query.
const BATCH: usize = 400;

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key a blob is indexed by (migration 0008): the first 16 hex digits of its ID.
pub(crate) fn blob_key(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// The condition selecting the rows of `n` blob IDs bound from placeholder `$first` on, their keys
/// first (see [`bind_blob_ids`]): `blob_key IN (…)` lets the database seek the compact blob index,
/// `blob_id IN (…)` keeps exactly the IDs asked for. `alias` is the table alias with its dot, or "".
pub(crate) fn blob_ids_condition(alias: &str, first: usize, n: usize) -> String {
    format!(
        "{alias}blob_key IN ({}) AND {alias}blob_id IN ({})",
        placeholders(first, n),
        placeholders(first + n, n)
    )
}

/// Binds `ids` for [`blob_ids_condition`]: their keys, then the IDs.
pub(crate) fn bind_blob_ids<'q, O>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    ids: &'q [String],
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    for id in ids {
        q = q.bind(blob_key(id));
    }
    for id in ids {
        q = q.bind(id.as_str());
    }
    q
}

/// Snapshot references per query of the snapshot check. The references travel as one JSON array
/// that the database joins against the blob index (one seek per reference, no parameter list to
/// parse): measured on SQLite, 24 000 references took ~70 ms this way against ~100–150 ms as 60
/// queries of 400 `IN` parameters each.
const REFS_PER_QUERY: usize = 20_000;
/// Fewer references than this are checked by one query.
const MIN_REFS_PER_QUERY: usize = 4_096;

/// Blob rows per insert into `repo_blobs`. Not more: SQLite looks each `$n` parameter up by name in a
/// list as long as the statement's parameters, so a statement's binding cost grows with the square of
/// its length (measured: at 100 rows, 5 parameters each, 16 % of the database thread's time).
const BLOBS_PER_INSERT: usize = 32;

/// Pack IDs per insert into `repo_index_packs`.
const PACKS_PER_INSERT: usize = 200;

/// Records which packs the index file `index` lists (idempotent).
async fn record_index_packs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repo_id: &str,
    index: &str,
    packs: &[String],
) -> Result<()> {
    for chunk in packs.chunks(PACKS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO repo_index_packs (repo_id, index_id, pack_id) VALUES {} \
             ON CONFLICT (repo_id, index_id, pack_id) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(repo_id).bind(index);
        for p in chunk {
            q = q.bind(p);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Service {
    /// How many of `refs` (unique blob IDs) a recorded pack of the repository holds, condemned or not
    /// (what a snapshot may reference, as [`Service::stored_blobs`]), and the sum of the smallest
    /// stored length of each: the snapshot check as one aggregate row per [`REFS_PER_QUERY`]
    /// references instead of one row per blob. `refs` must be unique (a duplicate counts once).
    pub(crate) async fn stored_refs_total(
        &self,
        repo_id: &str,
        refs: &[String],
    ) -> Result<(usize, u64)> {
        let (mut found, mut bytes) = (0usize, 0u64);
        let refs_table = match self.db.engine {
            Engine::Sqlite => "json_each($2) j",
            Engine::Postgres => "json_array_elements_text(CAST($2 AS json)) AS j(value)",
        };
        let sql = format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(t.len), 0) AS BIGINT) FROM \
             (SELECT MIN(b.stored_len) AS len FROM {refs_table} JOIN repo_blobs b \
             ON b.blob_key = substr(j.value, 1, 16) AND b.blob_id = j.value \
             WHERE b.repo_id = $1 GROUP BY b.blob_id) t"
        );
        // Two queries at once (each on its own pooled connection) when there are enough references:
        // a reader per core, and the client waits for this check.
        let per_query = refs
            .len()
            .div_ceil(2)
            .clamp(MIN_REFS_PER_QUERY, REFS_PER_QUERY);
        let batches: Vec<&[String]> = refs.chunks(per_query).collect();
        for pair in batches.chunks(2) {
            let answers = futures_util::future::try_join_all(
                pair.iter()
                    .map(|batch| self.refs_total_query(&sql, repo_id, batch)),
            )
            .await?;
            for (n, len) in answers {
                found += usize::try_from(n).unwrap_or(0);
                bytes += u64::try_from(len).unwrap_or(0);
            }
        }
        Ok((found, bytes))
    }

    /// One query of [`Service::stored_refs_total`]: found references and their stored bytes.
    async fn refs_total_query(
        &self,
        sql: &str,
        repo_id: &str,
        batch: &[String],
    ) -> Result<(i64, i64)> {
        let list = serde_json::to_string(batch).map_err(Error::internal)?;
        Ok(sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(repo_id)
            .bind(list)
            .fetch_one(&self.db.pool)
            .await?)
    }

    /// Blobs of `ids` a client may deduplicate against (the blob look-up): held by a recorded pack
    /// that a stored index file lists and no GC record condemns, with the smallest stored length of
    /// each. A pack no stored index lists (a backup still running, or one that died) does not count: a
    /// snapshot referencing its blobs could not be restored, since no index would locate them.
    pub async fn usable_blobs(
        &self,
        repo_id: &str,
        ids: &[String],
    ) -> Result<HashMap<String, u64>> {
        let mut found = HashMap::new();
        for batch in ids.chunks(BATCH) {
            let sql = format!(
                "SELECT b.blob_id, MIN(b.stored_len) FROM repo_blobs b \
                 WHERE b.repo_id = $1 AND {} \
                 AND NOT EXISTS (SELECT 1 FROM repo_condemned c WHERE c.repo_id = b.repo_id AND c.pack_id = b.pack_id) \
                 AND EXISTS (SELECT 1 FROM repo_index_packs i JOIN repo_files f \
                     ON f.repo_id = i.repo_id AND f.kind = 'index' AND f.name = i.index_id \
                     WHERE i.repo_id = b.repo_id AND i.pack_id = b.pack_id) \
                 GROUP BY b.blob_id",
                blob_ids_condition("b.", 2, batch.len())
            );
            let q = sqlx::query_as::<_, (String, i64)>(&sql).bind(repo_id);
            for (id, len) in bind_blob_ids(q, batch).fetch_all(&self.db.pool).await? {
                found.insert(id, u64::try_from(len).unwrap_or(0));
            }
        }
        Ok(found)
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
            for chunk in blobs.chunks(BLOBS_PER_INSERT) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = 3 + i * 5;
                        format!(
                            "($1, ${b}, ${}, $2, ${}, ${}, ${})",
                            b + 1,
                            b + 2,
                            b + 3,
                            b + 4
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO repo_blobs (repo_id, blob_id, blob_key, pack_id, blob_type, blob_offset, stored_len) VALUES {} \
                     ON CONFLICT (pack_id, repo_id, blob_id) DO NOTHING",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql).bind(&row.id).bind(name);
                for blob in chunk {
                    q = q
                        .bind(&blob.id)
                        .bind(blob_key(&blob.id))
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
            Parsed::Index { supersedes, packs } => {
                record_index_packs(&mut tx, &row.id, name, packs).await?;
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

    /// Records the packs of `packs` that are stored but not recorded — left by an upload that stopped
    /// between store and database (a crash of brrd), which a resumed backup adopts into an index file
    /// without uploading them again. Their trailers are read from the store. Returns how many.
    pub(super) async fn adopt_stored_packs(
        &self,
        actor: &str,
        row: &RepoRow,
        packs: &[String],
    ) -> Result<u64> {
        let mut recorded = std::collections::HashSet::new();
        for batch in packs.chunks(BATCH) {
            let sql = format!(
                "SELECT pack_id FROM repo_packs WHERE repo_id = $1 AND pack_id IN ({})",
                placeholders(2, batch.len())
            );
            let mut q = sqlx::query_as::<_, (String,)>(&sql).bind(&row.id);
            for p in batch {
                q = q.bind(p);
            }
            recorded.extend(q.fetch_all(&self.db.pool).await?.into_iter().map(|(p,)| p));
        }
        let unrecorded: Vec<String> = packs
            .iter()
            .filter(|p| !recorded.contains(*p))
            .cloned()
            .collect();
        if unrecorded.is_empty() {
            return Ok(0);
        }
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let found = super::store::blocking(move || {
            let mut found = Vec::new();
            for p in unrecorded {
                let size = match backend.size(FileKind::Pack, &p) {
                    Ok(s) => s,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(Error::storage(e)),
                };
                match super::reindex::pack_blobs(backend.as_ref(), &p, size) {
                    Ok(blobs) => found.push((p, size, blobs)),
                    Err(e @ (Error::Storage(_) | Error::StoreUnavailable(_))) => return Err(e),
                    Err(e) => tracing::warn!(pack = %p, error = %e, "stored pack not adopted"),
                }
            }
            Ok(found)
        })
        .await?;
        let n = found.len() as u64;
        for (p, size, blobs) in found {
            self.record_file(
                actor,
                row,
                (FileKind::Pack, &p, size),
                &Parsed::Pack(blobs),
                0,
            )
            .await?;
        }
        Ok(n)
    }
}
