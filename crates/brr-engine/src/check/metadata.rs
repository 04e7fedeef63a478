//! The small repository files check reads first: the config, key slots, locks and GC records.

use brr_core::config::RepoConfig;
use brr_core::gcrecord::GcRecord;
use brr_core::id::{Id, KeySlotId};
use brr_core::keyslot::KeySlot;
use brr_storage::FileKind;

use super::{Findings, read_error};
use crate::error::Result;
use crate::repo::Repository;

pub(super) fn check_config(repo: &Repository, f: &mut Findings) {
    let name = "config";
    let bytes = match repo.backend().read(FileKind::Config, name) {
        Ok(b) => b,
        Err(e) => return f.error(FileKind::Config, name, None, read_error(&e)),
    };
    let config = match RepoConfig::decode(&bytes) {
        Ok(c) => c,
        Err(e) => return f.error(FileKind::Config, name, None, format!("does not parse: {e}")),
    };
    if let Err(e) = config.verify(repo.key()) {
        return f.error(FileKind::Config, name, None, e.to_string());
    }
    if config != *repo.config() {
        return f.error(
            FileKind::Config,
            name,
            None,
            "differs from the config the repository was opened with (changed while open?)",
        );
    }
    match config.encode() {
        Ok(canonical) if canonical == bytes => {}
        _ => f.error(
            FileKind::Config,
            name,
            None,
            "bytes differ from the canonical encoding of its (authentic) content: modified outside brr",
        ),
    }
}

pub(super) fn check_keys(repo: &Repository, f: &mut Findings) -> Result<()> {
    let files = repo.backend().list(FileKind::Key)?;
    let mut good = 0usize;
    for file in &files {
        let name = &file.name;
        let Ok(id) = KeySlotId::from_hex(name) else {
            f.error(FileKind::Key, name, None, "file name is not a key slot ID");
            continue;
        };
        let bytes = match repo.backend().read(FileKind::Key, name) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue, // removed since the listing
            Err(e) => {
                f.error(FileKind::Key, name, None, read_error(&e));
                continue;
            }
        };
        if KeySlotId(Id::hash_of(&bytes)) != id {
            f.error(
                FileKind::Key,
                name,
                None,
                "content does not match its name (bit rot, truncation or tampering)",
            );
            continue;
        }
        match KeySlot::decode(&bytes) {
            Ok(slot) if slot.repository != repo.config().body.id => f.warn(
                FileKind::Key,
                name,
                format!("key slot of another repository ({})", slot.repository),
            ),
            Ok(_) => good += 1,
            Err(e) => f.error(FileKind::Key, name, None, format!("does not parse: {e}")),
        }
    }
    if files.is_empty() {
        f.error(
            FileKind::Key,
            "",
            None,
            "no key slot left: the repository cannot be opened again",
        );
    } else if good == files.len() {
        // Every slot is intact, so listing them succeeds; the one in use must be among them.
        let keys = repo.list_keys()?;
        if !keys.iter().any(|k| k.current) {
            f.error(
                FileKind::Key,
                "",
                None,
                "the key slot this repository was opened with no longer exists",
            );
        }
    }
    Ok(())
}

pub(super) fn check_locks(repo: &Repository, f: &mut Findings) -> Result<()> {
    for l in crate::lock::list_locks(repo.backend())? {
        match &l.lock {
            None => f.warn(
                FileKind::Lock,
                &l.name,
                "unparseable lock; remove it with `brr unlock --all` once no brr process runs",
            ),
            Some(lock) if l.stale => f.warn(
                FileKind::Lock,
                &l.name,
                format!(
                    "stale {} lock of process {} on this host, which no longer runs; `brr unlock` removes it",
                    lock.purpose, lock.pid
                ),
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

pub(super) fn check_gc_records(
    repo: &Repository,
    f: &mut Findings,
) -> Result<Vec<(String, GcRecord)>> {
    let mut out = Vec::new();
    for file in repo.backend().list(FileKind::Gc)? {
        match repo.backend().read(FileKind::Gc, &file.name) {
            Ok(bytes) => match GcRecord::decode(&bytes) {
                Ok(r) => {
                    f.warn(
                        FileKind::Gc,
                        &file.name,
                        format!(
                            "pending GC record ({} condemned packs, {}); the next prune completes it",
                            r.packs.len(),
                            if r.sealed {
                                format!("waiting for {} backup session(s)", r.sessions.len())
                            } else {
                                "not sealed".to_string()
                            }
                        ),
                    );
                    out.push((file.name, r));
                }
                Err(e) => f.error(
                    FileKind::Gc,
                    &file.name,
                    None,
                    format!("does not parse ({e}); backups cannot load the index while it exists"),
                ),
            },
            Err(e) if e.is_not_found() => {}
            Err(e) => f.error(FileKind::Gc, &file.name, None, read_error(&e)),
        }
    }
    Ok(out)
}
