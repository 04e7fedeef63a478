//! `brrd repo reindex`: rebuilds the database's record of a repository (packs and their blobs, index
//! supersession and the packs each index lists, snapshots, GC records, file sizes) from the files in the store, which are the truth.
//! Run it on an idle repository; files that do not decode are reported and left out.

use brr_core::pack::{FOOTER_LEN, Footer};
use brr_storage::FileKind;
use serde::Serialize;

use super::checks::{self, BlobRow, Parsed, kind_name};
use super::store::blocking;
use super::{REPO_COLUMNS, RepoRow, Service};
use crate::error::{Error, Result};

/// What a reindex found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReindexReport {
    /// The repository.
    pub repo_id: String,
    /// Packs recorded.
    pub packs: u64,
    /// Blobs recorded.
    pub blobs: u64,
    /// Snapshots recorded.
    pub snapshots: u64,
    /// Other files recorded.
    pub files: u64,
    /// `kind/name: reason` of every file left out.
    pub unreadable: Vec<String>,
}

/// Tables holding the record of a repository, children first.
const TABLES: [&str; 7] = [
    "repo_blobs",
    "repo_packs",
    "repo_snapshots",
    "repo_files",
    "repo_supersedes",
    "repo_index_packs",
    "repo_condemned",
];

/// The order files are recorded in: packs and GC records before the snapshots that refer to them.
const ORDER: [FileKind; 7] = [
    FileKind::Pack,
    FileKind::Gc,
    FileKind::Index,
    FileKind::Key,
    FileKind::Config,
    FileKind::Lock,
    FileKind::Snapshot,
];

/// Reads only the trailer of a stored pack.
pub(super) fn pack_blobs(
    b: &dyn brr_storage::Backend,
    name: &str,
    size: u64,
) -> Result<Vec<BlobRow>> {
    if size < FOOTER_LEN as u64 {
        return Err(Error::BadPack(format!("only {size} bytes")));
    }
    let foot = b
        .read_range(
            FileKind::Pack,
            name,
            size - FOOTER_LEN as u64,
            FOOTER_LEN as u64,
        )
        .map_err(Error::storage)?;
    let footer = Footer::decode(&foot, size).map_err(|e| Error::BadPack(e.to_string()))?;
    let tail_len = u64::from(footer.trailer_len) + FOOTER_LEN as u64;
    let tail = b
        .read_range(FileKind::Pack, name, size - tail_len, tail_len)
        .map_err(Error::storage)?;
    match checks::parse_trailer(&tail, size)? {
        Parsed::Pack(rows) => Ok(rows),
        _ => Err(Error::internal("pack parser returned another kind")),
    }
}

impl Service {
    /// Every repository id, for `brrd repo reindex --all`.
    pub async fn all_repo_ids(&self) -> Result<Vec<String>> {
        let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM repositories ORDER BY id")
            .fetch_all(&self.db.pool)
            .await?;
        Ok(ids.into_iter().map(|(i,)| i).collect())
    }

    /// Rebuilds the record of one repository from its files.
    pub async fn reindex_repo(&self, repo_id: &str) -> Result<ReindexReport> {
        let row: RepoRow = sqlx::query_as(&format!(
            "SELECT {REPO_COLUMNS} FROM repositories WHERE id = $1"
        ))
        .bind(repo_id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or(Error::NotFound)?;
        let backend = self.store.backend(&row.company_id, &row.id)?;
        let b = backend.clone();
        // Read and parse everything first, so a store failure leaves the old record untouched.
        let (parsed, unreadable) = blocking(move || {
            let mut parsed = Vec::new();
            let mut unreadable = Vec::new();
            for kind in ORDER {
                let mut files = b.list(kind).map_err(Error::storage)?;
                files.sort();
                for f in files {
                    let r = if kind == FileKind::Pack {
                        pack_blobs(b.as_ref(), &f.name, f.size).map(Parsed::Pack)
                    } else {
                        b.read(kind, &f.name)
                            .map_err(Error::storage)
                            .and_then(|bytes| {
                                let h = blake3::hash(&bytes).to_hex().to_string();
                                checks::check_name(kind, &f.name, &h)?;
                                checks::parse(kind, &bytes)
                            })
                    };
                    match r {
                        Ok(p) => parsed.push((kind, f.name, f.size, p)),
                        Err(e @ (Error::Storage(_) | Error::StoreUnavailable(_))) => return Err(e),
                        Err(e) => unreadable.push(format!("{}/{}: {e}", kind_name(kind), f.name)),
                    }
                }
            }
            Ok((parsed, unreadable))
        })
        .await?;
        let mut tx = self.db.pool.begin().await?;
        for table in TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE repo_id = $1"))
                .bind(&row.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let mut report = ReindexReport {
            repo_id: row.id.clone(),
            unreadable,
            ..ReindexReport::default()
        };
        for (kind, name, size, p) in parsed {
            let ref_bytes = match &p {
                Parsed::Snapshot { refs, .. } => {
                    report.snapshots += 1;
                    self.stored_blobs(&row.id, refs).await?.values().sum()
                }
                Parsed::Pack(blobs) => {
                    report.packs += 1;
                    report.blobs += blobs.len() as u64;
                    0
                }
                _ => {
                    report.files += 1;
                    0
                }
            };
            self.record_file("system", &row, (kind, &name, size), &p, ref_bytes)
                .await?;
        }
        let ev = crate::audit::AuditEvent {
            actor: "system".into(),
            company_id: Some(row.company_id.clone()),
            source: "local".into(),
            action: "repo.reindex".into(),
            target: format!("repo:{}", row.id),
            outcome: if report.unreadable.is_empty() {
                "success".into()
            } else {
                "damaged".into()
            },
            details: format!(
                "packs={} blobs={} snapshots={} files={} unreadable={}",
                report.packs,
                report.blobs,
                report.snapshots,
                report.files,
                report.unreadable.len()
            ),
        };
        self.audit.append(self.now(), ev).await?;
        Ok(report)
    }
}
