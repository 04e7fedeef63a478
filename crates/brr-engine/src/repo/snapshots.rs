//! Reading snapshots: whole files (verified) and, for choosing which to read, their cleartext headers.

use brr_core::id::SnapshotId;
use brr_core::snapshot::{
    SNAPSHOT_HEADER_PREFIX, Snapshot, SnapshotHeader, decode_snapshot, parse_snapshot_header,
    snapshot_header_len,
};
use brr_storage::FileKind;

use super::Repository;
use crate::error::{EngineError, Result};
use crate::parallel::parallel_map;

impl Repository {
    /// Reads and verifies one snapshot file.
    pub fn load_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        let bytes = self.backend.read(FileKind::Snapshot, &id.to_hex())?;
        Ok(decode_snapshot(&self.key, id, &bytes)?)
    }

    /// All snapshots, oldest first. A damaged snapshot file is an error naming it.
    pub fn list_snapshots(&self) -> Result<Vec<Snapshot>> {
        let names: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let loaded = parallel_map(names, 8, |name| -> Result<Option<Snapshot>> {
            let id = SnapshotId::from_hex(&name)
                .map_err(|e| EngineError::Damaged(format!("snapshot file name {name:?}: {e}")))?;
            match self.load_snapshot(id) {
                Ok(s) => Ok(Some(s)),
                Err(EngineError::Storage(e)) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        });
        let mut out = Vec::new();
        for s in loaded {
            if let Some(s) = s? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.meta.time.cmp(&b.meta.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The cleartext header of every snapshot, oldest first, each read from the start of its file (one
    /// small ranged read, not the whole file with its reference list). A header that does not parse is
    /// returned as its error. Headers are not authenticated until the whole file is decoded with
    /// [`Repository::load_snapshot`]: they choose which snapshots to load, nothing more.
    pub fn snapshot_headers(&self) -> Result<Vec<(SnapshotId, Result<SnapshotHeader>)>> {
        let files = self.backend.list(FileKind::Snapshot)?;
        let read = parallel_map(
            files,
            8,
            |f| -> Result<Option<(SnapshotId, Result<SnapshotHeader>)>> {
                let id = SnapshotId::from_hex(&f.name).map_err(|e| {
                    EngineError::Damaged(format!("snapshot file name {:?}: {e}", f.name))
                })?;
                let read =
                    |len: u64| match self.backend.read_range(FileKind::Snapshot, &f.name, 0, len) {
                        Ok(b) => Ok(Some(b)),
                        Err(e) if e.is_not_found() => Ok(None),
                        Err(e) => Err(EngineError::from(e)),
                    };
                let Some(mut prefix) = read((SNAPSHOT_HEADER_PREFIX as u64).min(f.size))? else {
                    return Ok(None);
                };
                if let Ok(need) = snapshot_header_len(&prefix)
                    && need > prefix.len()
                    && need as u64 <= f.size
                {
                    match read(need as u64)? {
                        Some(longer) => prefix = longer,
                        None => return Ok(None),
                    }
                }
                let header = parse_snapshot_header(&prefix)
                    .map_err(|e| EngineError::Damaged(format!("snapshot {}: {e}", id.short())));
                Ok(Some((id, header)))
            },
        );
        let mut out = Vec::new();
        for entry in read {
            out.extend(entry?);
        }
        // Damaged headers first, then by time and name.
        let order =
            |(id, h): &(SnapshotId, Result<SnapshotHeader>)| (h.as_ref().ok().map(|h| h.time), *id);
        out.sort_by_key(order);
        Ok(out)
    }

    /// Finds a snapshot by full ID, unique prefix, or `latest` (optionally restricted by `filter`).
    pub fn find_snapshot(&self, query: &str) -> Result<Snapshot> {
        let q = query.trim();
        if q.is_empty() {
            return Err(EngineError::BadSnapshotId { query: q.into() });
        }
        if q == "latest" {
            // The newest by header time, then loaded (and so verified) alone; a damaged header is an
            // error, as it would be when listing.
            let mut newest = None;
            for (id, header) in self.snapshot_headers()? {
                header?;
                newest = Some(id);
            }
            let id = newest.ok_or_else(|| EngineError::SnapshotNotFound { query: q.into() })?;
            return self.load_snapshot(id);
        }
        if !q.bytes().all(|b| b.is_ascii_hexdigit()) || q.len() > 64 {
            return Err(EngineError::BadSnapshotId { query: q.into() });
        }
        let lower = q.to_ascii_lowercase();
        let matches: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|f| f.name)
            .filter(|n| n.starts_with(&lower))
            .collect();
        match matches.len() {
            0 => Err(EngineError::SnapshotNotFound { query: q.into() }),
            1 => {
                let id = SnapshotId::from_hex(&matches[0])
                    .map_err(|e| EngineError::Damaged(e.to_string()))?;
                self.load_snapshot(id)
            }
            _ => Err(EngineError::AmbiguousSnapshot {
                query: q.into(),
                candidates: matches
                    .iter()
                    .map(|m| m[..8.min(m.len())].to_string())
                    .collect(),
            }),
        }
    }
}
