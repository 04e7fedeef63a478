//! Garbage collection without the key: the prune protocol with sessions judged by the caller.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use brr_core::gcrecord::GcRecord;
use brr_core::lockfile::{LockFile, LockKind};
use brr_core::snapshot::{Snapshot, encode_snapshot};
use brr_storage::FileKind;
use chrono::{TimeDelta, Utc};

use super::{flip, path_of, snap, view};
use crate::check::test_support::{new_repo, write_file};
use crate::check::{CheckOptions, check};
use crate::forget::forget_ids;
use crate::keyless::gc::{
    GcOptions, SessionJudge, collect_garbage, collect_garbage_protecting, folder_lock_times,
    plan_collect, stale_after,
};
use crate::progress::NoProgress;
use crate::repo::Repository;

fn assert_check_clean(repo: &Repository) {
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
    assert!(r.warnings.is_empty(), "warnings: {:#?}", r.warnings);
}

/// Every blob the snapshot references reads back intact (with the key).
fn assert_readable(repo: &Repository, s: &Snapshot) {
    let index = repo.load_index().unwrap();
    for id in &s.refs {
        let e = index
            .get(id)
            .unwrap_or_else(|| panic!("blob {} not indexed", id.short()));
        repo.read_blob_at(&index, e).unwrap();
    }
}

fn records(repo: &Repository) -> Vec<(String, GcRecord)> {
    let mut v: Vec<(String, GcRecord)> = repo
        .backend()
        .list(FileKind::Gc)
        .unwrap()
        .into_iter()
        .map(|f| {
            let b = repo.backend().read(FileKind::Gc, &f.name).unwrap();
            (f.name, GcRecord::decode(&b).unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn stored_bytes(repo: &Repository) -> u64 {
    let packs = repo.backend().list(FileKind::Pack).unwrap();
    packs.iter().map(|f| f.size).sum()
}

const OPTS: GcOptions = GcOptions {
    dry_run: false,
    max_unused_fraction: 0.0,
    threads: Some(2),
};

/// A judge that never finds a lock stale.
const NEVER: SessionJudge<'static> = SessionJudge {
    last_written: &|_| None,
    is_stale: &|_, _, _| false,
};

#[test]
fn keyless_gc_frees_what_forget_left_and_keeps_the_rest_readable() {
    let (_dir, src, repo) = new_repo();
    write_file(&src.join("a"), 1, 600_000);
    write_file(&src.join("b"), 2, 600_000);
    let first = snap(&repo, &src);
    std::fs::remove_file(src.join("b")).unwrap();
    write_file(&src.join("c"), 3, 300_000);
    let second = snap(&repo, &src);
    forget_ids(&repo, &[first.id]).unwrap();
    let before = stored_bytes(&repo);

    let v = view(&repo);
    let plan = plan_collect(&v, &OPTS).unwrap();
    assert!(!plan.packs_to_condemn.is_empty() && !plan.packs_to_repack.is_empty());
    assert_eq!(stored_bytes(&repo), before, "planning changes nothing");

    let r = collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
    assert!(r.packs_deleted > 0 && r.packs_written > 0, "{r:#?}");
    assert!(stored_bytes(&repo) < before);
    assert!(records(&repo).is_empty(), "no session: swept at once");
    assert!(repo.backend().list(FileKind::Lock).unwrap().is_empty());
    assert_check_clean(&repo);
    assert_readable(&repo, &second);
}

/// Protected packs (a server's recent uploads) are neither condemned nor repacked; once no longer
/// protected, the same collection frees them.
#[test]
fn protected_packs_are_left_for_a_later_collection() {
    let (_dir, src, repo) = new_repo();
    write_file(&src.join("a"), 1, 600_000);
    write_file(&src.join("b"), 2, 600_000);
    let first = snap(&repo, &src);
    std::fs::remove_file(src.join("b")).unwrap();
    let second = snap(&repo, &src);
    forget_ids(&repo, &[first.id]).unwrap();
    let packs_before = repo.backend().list(FileKind::Pack).unwrap();
    let before = stored_bytes(&repo);
    let v = view(&repo);

    let none =
        collect_garbage_protecting(&v, &OPTS, &NEVER, &|sweep| sweep(), &|_| true, &NoProgress)
            .unwrap();
    assert!(none.plan.packs_to_condemn.is_empty(), "{none:#?}");
    assert!(none.plan.packs_to_repack.is_empty(), "{none:#?}");
    assert_eq!(stored_bytes(&repo), before);
    assert_eq!(
        repo.backend().list(FileKind::Pack).unwrap().len(),
        packs_before.len()
    );

    let later =
        collect_garbage_protecting(&v, &OPTS, &NEVER, &|sweep| sweep(), &|_| false, &NoProgress)
            .unwrap();
    assert!(later.packs_deleted > 0, "{later:#?}");
    assert!(stored_bytes(&repo) < before);
    assert_check_clean(&repo);
    assert_readable(&repo, &second);
}

/// A backup session (its lock present) that loaded the index before the mark and commits afterwards
/// a snapshot referencing condemned packs: nothing it references is deleted.
#[test]
fn concurrent_session_keeps_everything_its_later_snapshot_references() {
    let (_dir, src, repo) = new_repo();
    write_file(&src.join("x/a"), 1, 300_000);
    write_file(&src.join("y/c"), 3, 300_000);
    let old = snap(&repo, &src.join("x"));
    let other = snap(&repo, &src.join("y"));
    forget_ids(&repo, &[old.id]).unwrap();

    let session = crate::lock::acquire(repo.backend_arc(), LockKind::Shared, "backup").unwrap();
    let seen = repo.load_index().unwrap();
    assert!(old.refs.iter().all(|b| seen.contains(b)));
    let v = view(&repo);

    let marked = collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
    assert!(!marked.plan.packs_to_condemn.is_empty());
    assert_eq!(marked.packs_deleted, 0, "a session runs: mark only");
    let recs = records(&repo);
    assert_eq!(recs.len(), 1);
    assert!(recs[0].1.sealed);
    assert_eq!(recs[0].1.sessions, vec![session.name().to_string()]);

    // The session commits a snapshot deduplicated against what it loaded.
    let mut meta = old.meta.clone();
    meta.time = crate::repo::now();
    let source: [u8; 16] = hex::decode(&old.header.source).unwrap().try_into().unwrap();
    let (id, bytes) = encode_snapshot(repo.key(), &meta, source, old.refs.clone()).unwrap();
    repo.backend()
        .write(FileKind::Snapshot, &id.to_hex(), &bytes)
        .unwrap();
    let committed = repo.load_snapshot(id).unwrap();

    let waiting = collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
    assert_eq!(waiting.packs_deleted, 0);
    assert_eq!(waiting.plan.gc_records_waiting, vec![recs[0].0.clone()]);
    session.release().unwrap();

    let swept = collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
    assert_eq!(swept.plan.gc_records_to_sweep, vec![recs[0].0.clone()]);
    assert!(swept.packs_kept_referenced >= 1, "{swept:#?}");
    assert!(records(&repo).is_empty());
    assert_check_clean(&repo);
    assert_readable(&repo, &committed);
    assert_readable(&repo, &other);
}

/// A lock of a backup that died on another machine: the judge decides by the last write the server
/// saw. Fresh, it holds the GC back; old, it is removed and the GC completes.
#[test]
fn dead_session_is_judged_by_its_last_write() {
    let (dir, src, repo) = new_repo();
    write_file(&src.join("x/a"), 1, 300_000);
    write_file(&src.join("y/c"), 3, 300_000);
    let old = snap(&repo, &src.join("x"));
    let other = snap(&repo, &src.join("y"));
    forget_ids(&repo, &[old.id]).unwrap();
    let lock = LockFile {
        kind: LockKind::Shared,
        purpose: "backup".into(),
        hostname: "a-machine-gone-for-good".into(),
        pid: 1,
        username: "u".into(),
        created: crate::repo::now(),
    };
    let name = "00112233445566778899aabbccddeeff";
    repo.backend()
        .write(FileKind::Lock, name, &lock.encode().unwrap())
        .unwrap();
    let root = dir.path().join("repo");
    let times = folder_lock_times(root.clone());
    let timeout = TimeDelta::minutes(15);
    let fresh = stale_after(Utc::now(), timeout);
    let judge = SessionJudge {
        last_written: &times,
        is_stale: &fresh,
    };
    let v = view(&repo);
    let marked = collect_garbage(&v, &OPTS, &judge, &NoProgress).unwrap();
    assert_eq!(marked.packs_deleted, 0, "{marked:#?}");
    assert_eq!(records(&repo)[0].1.sessions, vec![name.to_string()]);

    // Nobody rewrote it for an hour.
    let file = std::fs::File::options()
        .write(true)
        .open(path_of(&root, FileKind::Lock, name))
        .unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let swept = collect_garbage(&v, &OPTS, &judge, &NoProgress).unwrap();
    assert!(swept.packs_deleted > 0, "{swept:#?}");
    assert!(repo.backend().list(FileKind::Lock).unwrap().is_empty());
    assert!(records(&repo).is_empty());
    assert_check_clean(&repo);
    assert_readable(&repo, &other);
}

#[test]
fn keyless_gc_refuses_a_damaged_snapshot_and_a_running_prune() {
    let (dir, src, repo) = new_repo();
    write_file(&src.join("a"), 1, 100_000);
    let s = snap(&repo, &src);
    let v = view(&repo);

    let prune = crate::lock::acquire(repo.backend_arc(), LockKind::Exclusive, "prune").unwrap();
    let e = collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap_err();
    assert_eq!(e.code(), "BRR-E007", "{e}");
    prune.release().unwrap();

    let path = path_of(&dir.path().join("repo"), FileKind::Snapshot, &s.id.to_hex());
    let original = flip(&path, 12);
    let e = collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap_err();
    assert_eq!(e.code(), "BRR-E010", "{e}");
    assert!(e.to_string().contains(&s.id.to_hex()), "{e}");
    std::fs::write(&path, original).unwrap();
    collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
    assert_check_clean(&repo);
    let _ = Arc::clone(&repo);
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// Back up source `0..3` with file content `seed`.
    Backup(usize, u64),
    /// Forget the n-th snapshot (modulo the count).
    Forget(usize),
    /// Run the keyless GC (repacking everything partly unused).
    Gc,
    /// A backup session starts, loads the index, and will commit the n-th snapshot's references.
    Open(usize),
    /// The open session commits its snapshot and ends.
    Commit,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0usize..3, 0u64..4).prop_map(|(s, seed)| Step::Backup(s, seed)),
        2 => (0usize..8).prop_map(Step::Forget),
        3 => Just(Step::Gc),
        1 => (0usize..8).prop_map(Step::Open),
        1 => Just(Step::Commit),
    ]
}

/// Backups, then a session opens; forgets, GCs and backups run under it; it commits; anything after.
fn history() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::collection::vec;
    use proptest::prelude::*;
    let backup = (0usize..3, 0u64..4).prop_map(|(s, seed)| Step::Backup(s, seed));
    let under = prop_oneof![
        1 => (0usize..3, 0u64..4).prop_map(|(s, seed)| Step::Backup(s, seed)),
        3 => (0usize..8).prop_map(Step::Forget),
        3 => Just(Step::Gc),
    ];
    (
        vec(backup, 1..5),
        0usize..8,
        vec(under, 1..8),
        vec(step(), 0..6),
    )
        .prop_map(|(before, open, during, after)| {
            let mut steps = before;
            steps.push(Step::Open(open));
            steps.extend(during);
            steps.push(Step::Commit);
            steps.extend(after);
            steps
        })
}

/// Any history of backups, forgets, keyless GCs and sessions that commit references they loaded before
/// a GC ran: the repository stays check-clean and every snapshot reads back completely.
#[test]
fn random_histories_with_sessions_keep_every_snapshot_readable() {
    use proptest::test_runner::{Config, TestRunner};

    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&history(), |steps| {
            let (_dir, src, repo) = new_repo();
            let v = view(&repo);
            let mut session: Option<(crate::lock::RepoLock, Snapshot)> = None;
            for s in &steps {
                match s {
                    Step::Backup(n, seed) => {
                        let dir = src.join(format!("s{n}"));
                        write_file(&dir.join("f"), *seed, 40_000);
                        write_file(&dir.join(format!("g{seed}")), 100 + seed, 20_000);
                        snap(&repo, &dir);
                    }
                    Step::Forget(i) => {
                        let all = repo.list_snapshots().unwrap();
                        if !all.is_empty() {
                            forget_ids(&repo, &[all[i % all.len()].id]).unwrap();
                        }
                    }
                    Step::Gc => {
                        collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
                    }
                    Step::Open(i) => {
                        let all = repo.list_snapshots().unwrap();
                        if session.is_some() || all.is_empty() {
                            continue;
                        }
                        let lock =
                            crate::lock::acquire(repo.backend_arc(), LockKind::Shared, "backup")
                                .unwrap();
                        // What a backup loads: packs no GC record condemns. It deduplicates against
                        // them only; a snapshot needing other copies would store them anew.
                        let index = crate::index::Index::load(repo.backend()).unwrap();
                        let like = all[i % all.len()].clone();
                        if like.refs.iter().all(|b| index.contains(b)) {
                            session = Some((lock, like));
                        } else {
                            lock.release().unwrap();
                        }
                    }
                    Step::Commit => {
                        if let Some((lock, like)) = session.take() {
                            let mut meta = like.meta.clone();
                            meta.time = crate::repo::now();
                            let source: [u8; 16] = hex::decode(&like.header.source)
                                .unwrap()
                                .try_into()
                                .unwrap();
                            let (id, bytes) =
                                encode_snapshot(repo.key(), &meta, source, like.refs.clone())
                                    .unwrap();
                            repo.backend()
                                .write(FileKind::Snapshot, &id.to_hex(), &bytes)
                                .unwrap();
                            lock.release().unwrap();
                        }
                    }
                }
            }
            if let Some((lock, _)) = session.take() {
                lock.release().unwrap();
            }
            collect_garbage(&v, &OPTS, &NEVER, &NoProgress).unwrap();
            proptest::prop_assert!(records(&repo).is_empty());
            assert_check_clean(&repo);
            for s in repo.list_snapshots().unwrap() {
                assert_readable(&repo, &s);
            }
            Ok(())
        })
        .unwrap();
}

/// Sweeps, and only sweeps, run inside the caller's exclusion; an exclusion that refuses stops the GC
/// before anything is deleted.
#[test]
fn sweeps_run_inside_the_callers_exclusion() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::error::EngineError;
    use crate::keyless::gc::collect_garbage_excluding;

    let (_dir, src, repo) = new_repo();
    write_file(&src.join("x/a"), 1, 300_000);
    write_file(&src.join("y/c"), 3, 300_000);
    let old = snap(&repo, &src.join("x"));
    let other = snap(&repo, &src.join("y"));
    forget_ids(&repo, &[old.id]).unwrap();
    let v = view(&repo);

    let entered = AtomicUsize::new(0);
    let count = |sweep: &mut dyn FnMut() -> crate::Result<()>| {
        entered.fetch_add(1, Ordering::SeqCst);
        sweep()
    };
    let session = crate::lock::acquire(repo.backend_arc(), LockKind::Shared, "backup").unwrap();
    let marked = collect_garbage_excluding(&v, &OPTS, &NEVER, &count, &NoProgress).unwrap();
    assert_eq!(marked.packs_deleted, 0);
    assert_eq!(
        entered.load(Ordering::SeqCst),
        0,
        "marking needs no exclusion"
    );
    session.release().unwrap();

    let packs_before = repo.backend().list(FileKind::Pack).unwrap().len();
    let refuse = |_: &mut dyn FnMut() -> crate::Result<()>| Err(EngineError::Interrupted);
    let e = collect_garbage_excluding(&v, &OPTS, &NEVER, &refuse, &NoProgress).unwrap_err();
    assert_eq!(e.code(), "BRR-E011");
    assert_eq!(
        repo.backend().list(FileKind::Pack).unwrap().len(),
        packs_before
    );
    assert_eq!(records(&repo).len(), 1, "the record waits for the next run");

    let swept = collect_garbage_excluding(&v, &OPTS, &NEVER, &count, &NoProgress).unwrap();
    assert!(swept.packs_deleted > 0, "{swept:#?}");
    assert_eq!(entered.load(Ordering::SeqCst), 1);
    assert!(records(&repo).is_empty());
    assert_check_clean(&repo);
    assert_readable(&repo, &other);
}
