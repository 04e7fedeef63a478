//! Scrub of the small files: snapshots, index files, GC records and locks, key slots, config. Each is
//! read whole (they are what every client loads anyway), one per thread at a time.

use std::collections::{HashMap, HashSet};

use brr_core::config::RepoConfig;
use brr_core::gcrecord::GcRecord;
use brr_core::id::{Id, IndexId, KeySlotId, PackId, SnapshotId};
use brr_core::index::{IndexFile, IndexedPack};
use brr_core::keyslot::KeySlot;
use brr_core::lockfile::LockFile;
use brr_storage::{Backend, FileInfo, FileKind};

use super::{Problem, Read, ScrubFinding, ScrubOptions, ScrubReport, found, read_whole};
use crate::check::file_path;
use crate::error::{EngineError, Result};
use crate::keyless::public_snapshot;
use crate::parallel::parallel_map;
use crate::progress::Progress;

pub(super) fn scrub_snapshots(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    report: &mut ScrubReport,
    progress: &dyn Progress,
) -> Result<(Vec<SnapshotId>, Vec<ScrubFinding>)> {
    let list = backend.list(FileKind::Snapshot)?;
    progress.start("scrubbing snapshots", Some(list.len() as u64), None);
    let results = parallel_map(list, opts.threads, |f| -> Result<(String, u64, Read<_>)> {
        let r = match SnapshotId::from_hex(&f.name) {
            Err(e) => Read::Bad(format!("name is not a snapshot ID: {e}")),
            Ok(id) => match read_whole(backend, FileKind::Snapshot, &f.name)? {
                None => Read::Gone,
                Some(bytes) => {
                    progress.items(1);
                    progress.bytes(bytes.len() as u64);
                    // Only the ID is kept: the references are read again, one snapshot at a time.
                    match public_snapshot(id, &bytes) {
                        Ok(s) => Read::Good(s.id),
                        Err(EngineError::Damaged(m)) => Read::Bad(m),
                        Err(e) => Read::Bad(e.to_string()),
                    }
                }
            },
        };
        Ok((f.name, f.size, r))
    });
    progress.finish();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in results {
        let (name, size, r) = r?;
        match r {
            Read::Good(s) => {
                report.files += 1;
                report.bytes += size;
                report.snapshots += 1;
                good.push(s);
            }
            Read::Bad(reason) => {
                report.files += 1;
                report.bytes += size;
                let mut f = found(FileKind::Snapshot, &name, Problem::Damaged, reason);
                if let Ok(id) = SnapshotId::from_hex(&name) {
                    f.snapshots = vec![id];
                }
                bad.push(f);
            }
            Read::Gone => {}
        }
    }
    Ok((good, bad))
}

/// Index files read: findings, and the packs live files describe (with the file describing each).
#[derive(Default)]
pub(super) struct IndexState {
    pub findings: Vec<ScrubFinding>,
    pub described: HashMap<PackId, (IndexedPack, IndexId)>,
}

pub(super) fn scrub_index_files(
    backend: &dyn Backend,
    opts: &ScrubOptions,
    report: &mut ScrubReport,
    progress: &dyn Progress,
) -> Result<IndexState> {
    let list = backend.list(FileKind::Index)?;
    progress.start("scrubbing index files", Some(list.len() as u64), None);
    let results = parallel_map(list, opts.threads, |f| -> Result<(FileInfo, Read<_>)> {
        let r = match IndexId::from_hex(&f.name) {
            Err(e) => Read::Bad(format!("name is not an index ID: {e}")),
            Ok(id) => match read_whole(backend, FileKind::Index, &f.name)? {
                None => Read::Gone,
                Some(bytes) => {
                    progress.items(1);
                    progress.bytes(bytes.len() as u64);
                    if IndexId(Id::hash_of(&bytes)) != id {
                        Read::Bad("content does not match its name (bit rot or tampering)".into())
                    } else {
                        match IndexFile::decode(&bytes) {
                            Ok(file) => Read::Good((id, file)),
                            Err(e) => Read::Bad(format!("does not decode: {e}")),
                        }
                    }
                }
            },
        };
        Ok((f, r))
    });
    progress.finish();
    let mut st = IndexState::default();
    let mut files: Vec<(IndexId, IndexFile)> = Vec::new();
    for r in results {
        let (f, r) = r?;
        match r {
            Read::Good(file) => files.push(file),
            Read::Bad(reason) => {
                st.findings
                    .push(found(FileKind::Index, &f.name, Problem::Damaged, reason))
            }
            Read::Gone => continue,
        }
        report.files += 1;
        report.bytes += f.size;
    }
    let superseded: HashSet<IndexId> = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    files.sort_by_key(|(id, _)| *id);
    for (id, file) in files.into_iter().filter(|(id, _)| !superseded.contains(id)) {
        for p in file.packs {
            st.described.entry(p.id).or_insert((p, id));
        }
    }
    Ok(st)
}

/// GC records: findings for unparseable ones, and every condemned pack.
pub(super) struct Records {
    pub findings: Vec<ScrubFinding>,
    pub condemned: HashSet<PackId>,
}

impl Records {
    pub fn contains(&self, id: &PackId) -> bool {
        self.condemned.contains(id)
    }
}

pub(super) fn scrub_gc_records(backend: &dyn Backend, report: &mut ScrubReport) -> Result<Records> {
    let mut out = Records {
        findings: Vec::new(),
        condemned: HashSet::new(),
    };
    let mut list = backend.list(FileKind::Gc)?;
    list.sort();
    for f in list {
        let Some(bytes) = read_whole(backend, FileKind::Gc, &f.name)? else {
            continue;
        };
        report.files += 1;
        report.bytes += bytes.len() as u64;
        match GcRecord::decode(&bytes) {
            Ok(r) => out.condemned.extend(r.packs.iter().map(|p| p.id)),
            Err(e) => out.findings.push(found(
                FileKind::Gc,
                &f.name,
                Problem::Damaged,
                format!("does not parse: {e}"),
            )),
        }
    }
    let mut locks = backend.list(FileKind::Lock)?;
    locks.sort();
    for f in locks {
        let Some(bytes) = read_whole(backend, FileKind::Lock, &f.name)? else {
            continue;
        };
        report.files += 1;
        report.bytes += bytes.len() as u64;
        if let Err(e) = LockFile::decode(&bytes) {
            report.warnings.push(format!(
                "{}: unreadable lock: {e}",
                file_path(FileKind::Lock, &f.name)
            ));
        }
    }
    Ok(out)
}

/// Key slots: each must match its name, parse, and belong to `repository` (the config's ID).
pub(super) fn scrub_keys(
    backend: &dyn Backend,
    repository: &str,
    opts: &ScrubOptions,
    report: &mut ScrubReport,
) -> Result<Vec<ScrubFinding>> {
    let list = backend.list(FileKind::Key)?;
    let results = parallel_map(list, opts.threads, |f| -> Result<(FileInfo, Read<()>)> {
        let r = match KeySlotId::from_hex(&f.name) {
            Err(e) => Read::Bad(format!("name is not a key slot ID: {e}")),
            Ok(id) => match read_whole(backend, FileKind::Key, &f.name)? {
                None => Read::Gone,
                Some(bytes) if KeySlotId(Id::hash_of(&bytes)) != id => {
                    Read::Bad("content does not match its name (bit rot or tampering)".into())
                }
                Some(bytes) => match KeySlot::decode(&bytes) {
                    Ok(slot) if slot.repository != repository => Read::Bad(format!(
                        "belongs to repository {:?}, not to this one ({repository})",
                        slot.repository
                    )),
                    Ok(_) => Read::Good(()),
                    Err(e) => Read::Bad(format!("does not parse: {e}")),
                },
            },
        };
        Ok((f, r))
    });
    let mut out = Vec::new();
    for r in results {
        let (f, r) = r?;
        match r {
            Read::Gone => continue,
            Read::Good(()) => {}
            Read::Bad(reason) => out.push(found(FileKind::Key, &f.name, Problem::Damaged, reason)),
        }
        report.files += 1;
        report.bytes += f.size;
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

pub(super) fn scrub_config(
    backend: &dyn Backend,
    report: &mut ScrubReport,
) -> Result<Option<ScrubFinding>> {
    let name = brr_storage::CONFIG_NAME;
    let Some(bytes) = read_whole(backend, FileKind::Config, name)? else {
        return Ok(Some(found(
            FileKind::Config,
            name,
            Problem::Missing,
            "the repository has no config",
        )));
    };
    report.files += 1;
    report.bytes += bytes.len() as u64;
    Ok(RepoConfig::decode(&bytes).err().map(|e| {
        found(
            FileKind::Config,
            name,
            Problem::Damaged,
            format!("does not parse: {e}"),
        )
    }))
}
