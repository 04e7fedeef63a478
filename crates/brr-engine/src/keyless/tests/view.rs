//! The keyless view lists what the keyed repository holds, and refuses what is not a repository.

use std::sync::Arc;

use brr_core::lockfile::LockKind;
use brr_storage::{Backend, FileKind, LocalBackend};

use super::{snap, view};
use crate::check::test_support::{new_repo, write_file};
use crate::index::read_index_files;
use crate::keyless::KeylessRepo;

#[test]
fn the_view_lists_snapshots_index_files_packs_and_locks_like_the_keyed_repository() {
    let (_dir, src, repo) = new_repo();
    write_file(&src.join("x/a"), 1, 200_000);
    write_file(&src.join("y/b"), 2, 200_000);
    snap(&repo, &src.join("x"));
    snap(&repo, &src.join("y"));
    let v = view(&repo);
    assert_eq!(v.config(), repo.config());

    let keyed = repo.list_snapshots().unwrap();
    let public = v.snapshots().unwrap();
    assert_eq!(public.len(), 2);
    for (k, p) in keyed.iter().zip(&public) {
        assert_eq!(p.id, k.id);
        assert_eq!(p.time, k.meta.time);
        assert_eq!(p.source, k.header.source);
        assert_eq!(p.key_id, k.header.key_id);
        assert_eq!(p.refs, k.refs);
        assert_eq!(
            p.size,
            repo.backend()
                .size(FileKind::Snapshot, &p.id.to_hex())
                .unwrap()
        );
    }
    assert_ne!(public[0].source, public[1].source, "two sources, two tags");
    let union: std::collections::HashSet<_> =
        keyed.iter().flat_map(|s| s.refs.iter().copied()).collect();
    assert_eq!(v.referenced_blobs().unwrap(), union);
    assert_eq!(v.read_snapshot(&public[0].id.to_hex()).unwrap(), public[0]);

    let (ids, files) = v.index_files().unwrap();
    assert_eq!((ids, files), read_index_files(repo.backend()).unwrap());
    for p in v.packs().unwrap() {
        let id = brr_core::id::PackId::from_hex(&p.name).unwrap();
        let t = v.pack_trailer(id, p.size).unwrap();
        assert_eq!(t.pack_len, p.size);
        assert!(!t.trailer.entries.is_empty());
    }

    assert!(v.gc_records().unwrap().is_empty());
    let held = crate::lock::acquire(repo.backend_arc(), LockKind::Shared, "backup").unwrap();
    repo.backend()
        .write(FileKind::Lock, "ffff", b"not a lock")
        .unwrap();
    let locks = v.locks().unwrap();
    assert_eq!(locks.len(), 2);
    let mine = locks.iter().find(|l| l.name == held.name()).unwrap();
    assert_eq!(mine.lock.as_ref().unwrap().kind, LockKind::Shared);
    assert!(locks.iter().any(|l| l.name == "ffff" && l.lock.is_none()));
}

#[test]
fn no_config_is_no_repository_and_a_bad_config_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("r")));
    backend.create().unwrap();
    let e = KeylessRepo::open(backend.clone()).unwrap_err();
    assert_eq!(e.code(), "BRR-E001", "{e}");
    backend
        .write(FileKind::Config, "config", b"{\"body\":1}")
        .unwrap();
    let e = KeylessRepo::open(backend).unwrap_err();
    assert_eq!(e.code(), "BRR-C001", "{e}");
}

#[test]
fn a_snapshot_under_a_wrong_name_is_refused() {
    let (_dir, src, repo) = new_repo();
    write_file(&src.join("a"), 1, 1000);
    let s = snap(&repo, &src);
    let bytes = repo
        .backend()
        .read(FileKind::Snapshot, &s.id.to_hex())
        .unwrap();
    let wrong = "00".repeat(32);
    repo.backend()
        .write(FileKind::Snapshot, &wrong, &bytes)
        .unwrap();
    let v = view(&repo);
    let e = v.read_snapshot(&wrong).unwrap_err();
    assert_eq!(e.code(), "BRR-E010", "{e}");
    let (good, bad) = v.snapshots_lenient().unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, wrong);
    assert!(v.snapshots().unwrap_err().to_string().contains(&wrong));
    let e = v.referenced_blobs().unwrap_err();
    assert_eq!(e.code(), "BRR-E010", "{e}");
    assert!(e.to_string().contains(&wrong), "{e}");
    let e = v.read_snapshot("not-hex").unwrap_err();
    assert_eq!(e.code(), "BRR-E010", "{e}");
}
