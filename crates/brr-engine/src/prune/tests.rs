#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use brr_core::gcrecord::GcRecord;
use brr_core::snapshot::{Snapshot, encode_snapshot};
use brr_storage::{Backend, FaultInjectingBackend, FileKind, LocalBackend};

use super::*;
use crate::backup::{BackupOptions, ParentChoice, backup};
use crate::check::test_support::{init_on, new_repo, write_file};
use crate::check::{CheckOptions, check};
use crate::forget::forget_ids;
use crate::progress::NoProgress;

fn snap(repo: &Arc<Repository>, path: &Path, parent: ParentChoice) -> Snapshot {
    backup(
        repo,
        &BackupOptions {
            paths: vec![path.to_path_buf()],
            parent,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap()
    .snapshot
}

fn assert_check_clean(repo: &Repository, allow_warnings: bool) {
    let r = check(
        repo,
        &CheckOptions {
            read_data: true,
            threads: Some(2),
        },
        &NoProgress,
    )
    .unwrap();
    assert!(r.errors.is_empty(), "errors: {:#?}", r.errors);
    if !allow_warnings {
        assert!(r.warnings.is_empty(), "warnings: {:#?}", r.warnings);
    }
}

/// Every blob a snapshot references reads back intact through a freshly loaded index.
fn assert_readable(repo: &Repository, s: &Snapshot) {
    let index = repo.load_index().unwrap();
    for id in &s.refs {
        let e = index
            .get(id)
            .unwrap_or_else(|| panic!("blob {} not indexed", id.short()));
        repo.read_blob_at(&index, e).unwrap();
    }
}

fn stored_bytes(repo: &Repository) -> u64 {
    repo.backend()
        .list(FileKind::Pack)
        .unwrap()
        .iter()
        .map(|f| f.size)
        .sum()
}

fn gc_records(repo: &Repository) -> Vec<(String, GcRecord)> {
    repo.backend()
        .list(FileKind::Gc)
        .unwrap()
        .into_iter()
        .map(|f| {
            let b = repo.backend().read(FileKind::Gc, &f.name).unwrap();
            (f.name, GcRecord::decode(&b).unwrap())
        })
        .collect()
}

/// Two snapshots of `src`: the first with files a and b, the second with a and c; the first forgotten.
/// Returns the second. Packs then hold unused blobs (b's), some mixed with used ones (a's).
fn two_generations(repo: &Arc<Repository>, src: &Path) -> Snapshot {
    write_file(&src.join("a"), 1, 600_000);
    write_file(&src.join("b"), 2, 600_000);
    let first = snap(repo, src, ParentChoice::Auto);
    std::fs::remove_file(src.join("b")).unwrap();
    write_file(&src.join("c"), 3, 300_000);
    let second = snap(repo, src, ParentChoice::Auto);
    assert_eq!(forget_ids(repo, &[first.id]).unwrap(), 1);
    second
}

const REPACK_ALL: PruneOptions = PruneOptions {
    dry_run: false,
    max_unused_fraction: 0.0,
    threads: Some(2),
};

#[test]
fn forget_then_prune_frees_space_repacks_and_stays_check_clean() {
    let (_dir, src, repo) = new_repo();
    let kept = two_generations(&repo, &src);
    let before = stored_bytes(&repo);

    let dry = plan_prune(&repo, &REPACK_ALL).unwrap();
    assert!(!dry.packs_to_condemn.is_empty(), "{dry:#?}");
    assert!(!dry.packs_to_repack.is_empty(), "{dry:#?}");
    assert!(dry.blobs_to_copy > 0 && dry.bytes_to_free > 0);
    let dry_report = prune(
        &repo,
        &PruneOptions {
            dry_run: true,
            ..REPACK_ALL
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(dry_report.packs_deleted, 0);
    assert_eq!(stored_bytes(&repo), before, "dry run changed nothing");

    let r = prune(&repo, &REPACK_ALL, &NoProgress).unwrap();
    assert_eq!(r.plan.packs_to_condemn, dry.packs_to_condemn);
    assert_eq!(r.plan.packs_to_repack, dry.packs_to_repack);
    assert_eq!(
        r.packs_deleted as usize,
        dry.packs_to_condemn.len() + dry.packs_to_repack.len()
    );
    assert!(r.packs_written >= 1);
    assert!(r.bytes_freed > 0);
    assert_eq!(r.packs_kept_referenced, 0);
    let after = stored_bytes(&repo);
    assert!(
        after + 500_000 < before,
        "before {before} after {after}: b's 600 kB should be gone"
    );
    assert!(gc_records(&repo).is_empty());
    assert_eq!(repo.backend().list(FileKind::Index).unwrap().len(), 1);
    assert_check_clean(&repo, false);
    assert_readable(&repo, &kept);

    // Nothing left to do.
    let again = prune(&repo, &REPACK_ALL, &NoProgress).unwrap();
    assert!(again.plan.packs_to_condemn.is_empty() && again.plan.packs_to_repack.is_empty());
    assert_eq!(stored_bytes(&repo), after);
}

#[test]
fn default_threshold_leaves_mostly_used_packs_alone() {
    let (_dir, src, repo) = new_repo();
    write_file(&src.join("a"), 1, 900_000);
    write_file(&src.join("b"), 2, 50_000);
    let first = snap(&repo, &src, ParentChoice::Auto);
    std::fs::remove_file(src.join("b")).unwrap();
    let second = snap(&repo, &src, ParentChoice::Auto);
    forget_ids(&repo, &[first.id]).unwrap();
    let r = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(r.plan.packs_to_repack.is_empty(), "{:#?}", r.plan);
    assert_check_clean(&repo, false);
    assert_readable(&repo, &second);
}

/// A backup that loaded the index before prune condemned a pack, and commits a snapshot using it
/// afterwards: the sweep waits for its lock, then keeps and re-indexes the pack.
#[test]
fn listed_session_that_commits_a_reference_to_a_condemned_pack_keeps_it() {
    let (_dir, src, repo) = new_repo();
    let x = src.join("x");
    let y = src.join("y");
    write_file(&x.join("a"), 1, 300_000);
    write_file(&y.join("c"), 3, 300_000);
    let old = snap(&repo, &x, ParentChoice::Auto);
    let other = snap(&repo, &y, ParentChoice::Auto);
    forget_ids(&repo, &[old.id]).unwrap();

    // The concurrent backup registers and loads the index: `old`'s blobs are all there to dedup.
    let session = crate::lock::acquire(repo.backend_arc(), LockKind::Shared, "backup").unwrap();
    let seen = repo.load_index().unwrap();
    assert!(old.refs.iter().all(|b| seen.contains(b)));

    let marked = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(!marked.plan.packs_to_condemn.is_empty());
    assert_eq!(marked.packs_deleted, 0, "the session is listed: mark only");
    let records = gc_records(&repo);
    assert_eq!(records.len(), 1);
    assert!(records[0].1.sealed);
    assert_eq!(records[0].1.sessions, vec![session.name().to_string()]);
    assert_eq!(marked.plan.gc_records_waiting, vec![records[0].0.clone()]);
    // While it waits, the repository is consistent.
    assert_check_clean(&repo, true);

    // The session commits a snapshot that deduplicated everything against what it loaded.
    let mut meta = old.meta.clone();
    meta.time = crate::repo::now();
    let source: [u8; 16] = hex::decode(&old.header.source).unwrap().try_into().unwrap();
    let (id, bytes) = encode_snapshot(repo.key(), &meta, source, old.refs.clone()).unwrap();
    repo.backend()
        .write(FileKind::Snapshot, &id.to_hex(), &bytes)
        .unwrap();
    let committed = repo.load_snapshot(id).unwrap();
    // Still running: another prune waits too.
    let waiting = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!(waiting.packs_deleted, 0);
    assert_eq!(waiting.plan.gc_records_waiting.len(), 1);
    let check_now = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
    assert!(check_now.errors.is_empty(), "{:#?}", check_now.errors);
    session.release().unwrap();

    let swept = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!(swept.plan.gc_records_to_sweep, vec![records[0].0.clone()]);
    assert!(swept.packs_kept_referenced >= 1, "{swept:#?}");
    assert_eq!(swept.packs_deleted, 0, "{swept:#?}");
    assert!(gc_records(&repo).is_empty());
    assert_check_clean(&repo, false);
    assert_readable(&repo, &committed);
    assert_readable(&repo, &other);

    // Once that snapshot is forgotten too, the space goes.
    forget_ids(&repo, &[committed.id]).unwrap();
    let freed = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(freed.packs_deleted >= 1 && freed.bytes_freed > 0);
    assert_check_clean(&repo, false);
    assert_readable(&repo, &other);
}

/// A backup that starts after the mark sees the GC record and stores new copies instead of
/// deduplicating against condemned packs, so the sweep may delete them.
#[test]
fn backup_after_mark_does_not_use_condemned_packs() {
    let (_dir, src, repo) = new_repo();
    let x = src.join("x");
    write_file(&x.join("a"), 1, 300_000);
    write_file(&src.join("y/c"), 3, 10_000);
    let old = snap(&repo, &x, ParentChoice::Auto);
    snap(&repo, &src.join("y"), ParentChoice::Auto);
    forget_ids(&repo, &[old.id]).unwrap();

    let session = crate::lock::acquire(repo.backend_arc(), LockKind::Shared, "backup").unwrap();
    let marked = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!(marked.packs_deleted, 0);
    let condemned: Vec<PackId> = gc_records(&repo)[0].1.packs.iter().map(|p| p.id).collect();

    let fresh = backup(
        &repo,
        &BackupOptions {
            paths: vec![x.clone()],
            parent: ParentChoice::None,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap()
    .snapshot;
    assert!(fresh.meta.summary.data_blobs_added > 0, "stored new copies");
    // Same file content, so the same data blobs: their condemned copies were not used.
    let condemned_blobs: Vec<_> = gc_records(&repo)[0]
        .1
        .packs
        .iter()
        .flat_map(|p| p.blobs.clone())
        .collect();
    assert!(fresh.refs.iter().any(|b| condemned_blobs.contains(b)));
    session.release().unwrap();

    let swept = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!(swept.packs_kept_referenced, 0);
    assert!(swept.packs_deleted as usize >= condemned.len());
    for p in &condemned {
        assert!(repo.backend().size(FileKind::Pack, &p.to_hex()).is_err());
    }
    assert_check_clean(&repo, false);
    assert_readable(&repo, &fresh);
}

struct Faulty {
    _dir: tempfile::TempDir,
    fault: Arc<FaultInjectingBackend<LocalBackend>>,
    repo: Arc<Repository>,
    kept: Snapshot,
}

fn faulty() -> Faulty {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let fault = Arc::new(FaultInjectingBackend::new(LocalBackend::new(
        dir.path().join("repo"),
    )));
    let backend: Arc<dyn Backend> = fault.clone();
    let repo = init_on(backend);
    let kept = two_generations(&repo, &src);
    Faulty {
        _dir: dir,
        fault,
        repo,
        kept,
    }
}

fn recover_and_verify(f: &Faulty, what: &str) {
    f.fault.heal();
    let r = check(
        &f.repo,
        &CheckOptions {
            read_data: true,
            threads: Some(2),
        },
        &NoProgress,
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{what}: {:#?}", r.errors);
    assert_readable(&f.repo, &f.kept);
    prune(&f.repo, &REPACK_ALL, &NoProgress).unwrap();
    assert_check_clean(&f.repo, false);
    assert_readable(&f.repo, &f.kept);
    assert!(gc_records(&f.repo).is_empty(), "{what}");
    assert!(f.repo.backend().list(FileKind::Lock).unwrap().is_empty());
}

#[test]
fn interrupted_prune_leaves_a_check_clean_repository() {
    // How many writes a full prune makes.
    let f = faulty();
    let start = f.fault.writes_attempted();
    let r = prune(&f.repo, &REPACK_ALL, &NoProgress).unwrap();
    assert!(r.packs_deleted > 0 && r.packs_written > 0);
    let writes = f.fault.writes_attempted() - start;
    assert!(writes >= 6, "lock, pack, index, record ×2, index: {writes}");

    for n in 1..=writes {
        let f = faulty();
        f.fault.fail_nth_write(n);
        assert!(
            prune(&f.repo, &REPACK_ALL, &NoProgress).is_err(),
            "write {n} of {writes} failed, prune must fail"
        );
        recover_and_verify(&f, &format!("write {n} of {writes} failed"));
    }
    for kind in [FileKind::Index, FileKind::Pack, FileKind::Gc] {
        let f = faulty();
        f.fault.fail_removes_of(kind);
        assert!(prune(&f.repo, &REPACK_ALL, &NoProgress).is_err());
        recover_and_verify(&f, &format!("removes of {kind} failed"));
    }
}

#[test]
fn prune_refuses_when_referenced_data_is_missing() {
    let (_dir, src, repo) = new_repo();
    let s = two_generations(&repo, &src);
    let index = repo.load_index().unwrap();
    let e = index.get(&s.refs[0]).unwrap();
    let pack = index.pack(e).id;
    for f in repo.backend().list(FileKind::Index).unwrap() {
        let bytes = repo.backend().read(FileKind::Index, &f.name).unwrap();
        let mut file = brr_core::index::IndexFile::decode(&bytes).unwrap();
        file.packs.retain(|p| p.id != pack);
        repo.backend().remove(FileKind::Index, &f.name).unwrap();
        crate::index::write_index_file(repo.backend(), file.packs, file.supersedes).unwrap();
    }
    repo.backend()
        .remove(FileKind::Pack, &pack.to_hex())
        .unwrap();
    let before = stored_bytes(&repo);
    let err = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, EngineError::Damaged(_)), "{err}");
    assert_eq!(stored_bytes(&repo), before);
    assert!(gc_records(&repo).is_empty());
}

#[test]
fn invalid_fraction_is_rejected() {
    let (_dir, _src, repo) = new_repo();
    let opts = PruneOptions {
        max_unused_fraction: 1.5,
        ..Default::default()
    };
    assert!(plan_prune(&repo, &opts).is_err());
}
