//! Scrub finds damage in every kind of file and names the snapshots it affects.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brr_core::id::{PackId, SnapshotId};
use brr_storage::{Backend, FileInfo, FileKind, LocalBackend, StorageError};

use super::{first, flip, path_of, snap, view};
use crate::check::test_support::{init_on, new_repo, write_file};
use crate::keyless::KeylessRepo;
use crate::keyless::scrub::{Problem, ScrubOptions, ScrubReport, scrub};
use crate::progress::NoProgress;

fn run(v: &KeylessRepo) -> ScrubReport {
    scrub(
        v,
        &ScrubOptions {
            threads: 2,
            range_len: 64 * 1024,
        },
        &NoProgress,
    )
    .unwrap()
}

/// Snapshots referencing a blob of pack `name`, per the keyless view.
fn referencing(v: &KeylessRepo, name: &str) -> Vec<SnapshotId> {
    let id = PackId::from_hex(name).unwrap();
    let size = v.backend().size(FileKind::Pack, name).unwrap();
    let blobs: BTreeSet<_> = v
        .pack_trailer(id, size)
        .unwrap()
        .trailer
        .entries
        .iter()
        .map(|e| e.id)
        .collect();
    let mut out: Vec<SnapshotId> = v
        .snapshots()
        .unwrap()
        .into_iter()
        .filter(|s| s.refs.iter().any(|r| blobs.contains(r)))
        .map(|s| s.id)
        .collect();
    out.sort();
    out
}

/// Three snapshots of two sources sharing some data.
fn three_snapshots() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Arc<crate::Repository>,
) {
    let (dir, src, repo) = new_repo();
    write_file(&src.join("x/a"), 1, 300_000);
    write_file(&src.join("y/b"), 2, 200_000);
    snap(&repo, &src.join("x"));
    snap(&repo, &src.join("y"));
    write_file(&src.join("x/c"), 3, 100_000);
    snap(&repo, &src.join("x"));
    let root = dir.path().join("repo");
    (dir, root, repo)
}

#[test]
fn clean_repository_has_no_findings() {
    let (_dir, _root, repo) = three_snapshots();
    let r = run(&view(&repo));
    assert!(r.is_ok(), "{:#?}", r.findings);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    assert_eq!(r.snapshots, 3);
    assert!(r.packs >= 2 && r.files > r.packs && r.bytes > 0);
}

#[test]
fn a_flipped_byte_in_any_pack_names_the_pack_and_its_snapshots() {
    let (_dir, root, repo) = three_snapshots();
    let v = view(&repo);
    let mut packs: Vec<FileInfo> = v.packs().unwrap();
    packs.sort();
    let mut named = BTreeSet::new();
    for p in &packs {
        let expected = referencing(&v, &p.name);
        assert!(!expected.is_empty(), "every pack is used here");
        // In the blob data, and in the trailer (the last bytes are the footer's magic).
        for offset in [p.size as i64 / 3, -1] {
            let path = path_of(&root, FileKind::Pack, &p.name);
            let original = flip(&path, offset);
            let r = run(&v);
            std::fs::write(&path, original).unwrap();
            assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
            let f = &r.findings[0];
            assert!(
                f.file.ends_with(&p.name) && f.file.starts_with("data/"),
                "{f}"
            );
            assert_eq!(f.problem, Problem::Damaged);
            assert!(f.reason.contains("does not match its name"), "{f}");
            assert_eq!(f.snapshots, expected, "{f}");
            named.extend(expected.iter().copied());
        }
    }
    assert_eq!(named.len(), 3, "every snapshot is named by some pack");
    assert!(run(&v).is_ok());
}

#[test]
fn a_flipped_byte_in_an_index_file_snapshot_or_key_slot_is_found() {
    let (_dir, root, repo) = three_snapshots();
    let v = view(&repo);
    let snapshot = first(v.backend(), FileKind::Snapshot);
    for (kind, name, offset) in [
        (FileKind::Index, first(v.backend(), FileKind::Index), 40),
        (FileKind::Index, first(v.backend(), FileKind::Index), -1),
        (FileKind::Snapshot, snapshot.clone(), 20),
        (FileKind::Snapshot, snapshot.clone(), -1),
        (FileKind::Key, first(v.backend(), FileKind::Key), 30),
    ] {
        let path = path_of(&root, kind, &name);
        let original = flip(&path, offset);
        let r = run(&v);
        std::fs::write(&path, original).unwrap();
        let f = r
            .findings
            .iter()
            .find(|f| f.file.ends_with(&name))
            .unwrap_or_else(|| panic!("{kind:?} {offset}: {:#?}", r.findings));
        assert_eq!(f.problem, Problem::Damaged, "{f}");
        assert!(f.reason.contains("does not match its name"), "{f}");
        if kind == FileKind::Snapshot {
            assert_eq!(f.snapshots, vec![SnapshotId::from_hex(&name).unwrap()]);
            assert_eq!(r.snapshots, 2);
        }
        // A damaged index file only costs its descriptions: its packs are intact, and reported as
        // undescribed.
        assert_eq!(r.findings.len(), 1, "{kind:?}: {:#?}", r.findings);
    }
    assert!(run(&v).is_ok());
}

#[test]
fn unparseable_config_gc_record_and_lock_are_reported() {
    let (_dir, root, repo) = three_snapshots();
    let v = view(&repo);
    let config = path_of(&root, FileKind::Config, "config");
    let original = std::fs::read(&config).unwrap();
    std::fs::write(&config, b"{ not json").unwrap();
    v.backend().write(FileKind::Gc, "0123", b"{}").unwrap();
    v.backend().write(FileKind::Lock, "4567", b"[]").unwrap();
    let r = run(&v);
    std::fs::write(&config, original).unwrap();
    let files: Vec<&str> = r.findings.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(files, ["gc/0123", "config"], "{:#?}", r.findings);
    assert!(r.findings.iter().all(|f| f.problem == Problem::Damaged));
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].starts_with("locks/4567: unreadable lock"));
}

#[test]
fn a_missing_pack_is_named_with_its_snapshots_and_their_missing_blobs() {
    let (_dir, _root, repo) = three_snapshots();
    let v = view(&repo);
    let mut packs = v.packs().unwrap();
    packs.sort();
    let gone = &packs[0].name;
    let expected = referencing(&v, gone);
    v.backend().remove(FileKind::Pack, gone).unwrap();
    let r = run(&v);
    let f = &r.findings[0];
    assert!(f.file.ends_with(gone.as_str()), "{:#?}", r.findings);
    assert_eq!(f.problem, Problem::Missing);
    assert!(f.reason.contains("described by index file"), "{f}");
    assert_eq!(f.snapshots, expected);
    // Each affected snapshot is also reported with the blobs no stored pack holds.
    let lacking: Vec<SnapshotId> = r.findings[1..]
        .iter()
        .inspect(|f| {
            assert_eq!(f.problem, Problem::Missing);
            assert!(f.reason.contains("in no stored pack"), "{f}");
        })
        .flat_map(|f| f.snapshots.clone())
        .collect();
    assert_eq!(lacking, expected);
}

/// Records the largest ranged read of a pack and counts whole reads of packs.
#[derive(Debug)]
struct Reads {
    inner: LocalBackend,
    max_range: AtomicU64,
    whole_pack_reads: AtomicU64,
}

impl Backend for Reads {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<(), StorageError> {
        self.inner.create()
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        if kind == FileKind::Pack {
            self.whole_pack_reads.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        if kind == FileKind::Pack {
            self.max_range.fetch_max(len, Ordering::Relaxed);
        }
        self.inner.read_range(kind, name, offset, len)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        self.inner.size(kind, name)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        self.inner.write(kind, name, data)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        self.inner.remove(kind, name)
    }
}

#[test]
fn packs_are_read_in_bounded_ranges_only() {
    let dir = tempfile::tempdir().unwrap();
    let reads = Arc::new(Reads {
        inner: LocalBackend::new(dir.path().join("repo")),
        max_range: AtomicU64::new(0),
        whole_pack_reads: AtomicU64::new(0),
    });
    let repo = init_on(reads.clone());
    write_file(&dir.path().join("src/a"), 9, 2_500_000);
    snap(&repo, &dir.path().join("src"));
    let v = view(&repo);
    let biggest = v.packs().unwrap().iter().map(|p| p.size).max().unwrap();
    assert!(biggest > 500_000, "packs of about 1 MiB");
    reads.max_range.store(0, Ordering::Relaxed);
    reads.whole_pack_reads.store(0, Ordering::Relaxed);
    let r = scrub(
        &v,
        &ScrubOptions {
            threads: 2,
            range_len: 8192,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(r.is_ok(), "{:#?}", r.findings);
    assert_eq!(reads.whole_pack_reads.load(Ordering::Relaxed), 0);
    // Hash ranges of 8 KiB; the trailer is read with at most 64 KiB from the end.
    assert!(reads.max_range.load(Ordering::Relaxed) <= 64 * 1024);
}

#[test]
fn zero_threads_or_range_is_refused() {
    let (_dir, _src, repo) = new_repo();
    for opts in [
        ScrubOptions {
            threads: 0,
            ..Default::default()
        },
        ScrubOptions {
            range_len: 0,
            ..Default::default()
        },
    ] {
        let e = scrub(&view(&repo), &opts, &NoProgress).unwrap_err();
        assert_eq!(e.code(), "BRR-E009", "{e}");
    }
}

/// Any single flipped bit in any content-addressed file is found, on that file only.
#[test]
fn any_flipped_bit_in_any_content_addressed_file_is_found() {
    use proptest::test_runner::{Config, TestRunner};

    let (_dir, root, repo) = three_snapshots();
    let v = view(&repo);
    let mut files: Vec<(FileKind, FileInfo)> = Vec::new();
    for kind in [
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Key,
    ] {
        let mut list = v.backend().list(kind).unwrap();
        list.sort();
        files.extend(list.into_iter().map(|f| (kind, f)));
    }
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(0..files.len(), proptest::num::u64::ANY, 0u8..8),
            |(which, at, bit)| {
                let (kind, f) = &files[which];
                let path = path_of(&root, *kind, &f.name);
                let original = std::fs::read(&path).unwrap();
                let mut bytes = original.clone();
                bytes[(at % f.size) as usize] ^= 1 << bit;
                std::fs::write(&path, bytes).unwrap();
                let r = run(&v);
                std::fs::write(&path, original).unwrap();
                proptest::prop_assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
                proptest::prop_assert!(r.findings[0].file.ends_with(&f.name));
                proptest::prop_assert_eq!(r.findings[0].problem, Problem::Damaged);
                Ok(())
            },
        )
        .unwrap();
    assert!(run(&v).is_ok());
}

#[test]
fn a_key_slot_of_another_repository_is_reported() {
    let (_dir, _root, repo) = three_snapshots();
    let (_other_dir, _other_root, other) = three_snapshots();
    let name = first(other.backend(), FileKind::Key);
    let bytes = other.backend().read(FileKind::Key, &name).unwrap();
    repo.backend().write(FileKind::Key, &name, &bytes).unwrap();
    let r = run(&view(&repo));
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert!(r.findings[0].file.ends_with(&name));
    assert!(
        r.findings[0].reason.contains("belongs to repository"),
        "{}",
        r.findings[0]
    );
}
