#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use brr_core::blob::BlobType;
use brr_core::id::SnapshotId;
use brr_core::pack::parse_pack_tail;
use brr_storage::{FileKind, relative_path};

use super::*;
use crate::backup::{BackupOptions, backup};
use crate::check::test_support::{new_repo, write_file};
use crate::progress::NoProgress;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: Arc<Repository>,
    snapshot: SnapshotId,
}

fn fixture() -> Fixture {
    let (dir, src, repo) = new_repo();
    write_file(&src.join("a"), 1, 150_000);
    write_file(&src.join("sub/b"), 2, 200_000);
    let out = backup(
        &repo,
        &BackupOptions {
            paths: vec![src],
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    Fixture {
        root: dir.path().join("repo"),
        _dir: dir,
        repo,
        snapshot: out.snapshot.id,
    }
}

fn run(repo: &Repository, read_data: bool) -> CheckReport {
    check(
        repo,
        &CheckOptions {
            read_data,
            threads: Some(2),
        },
        &NoProgress,
    )
    .unwrap()
}

/// One file of each kind: (kind label, repository-relative path).
fn files_of_each_kind(f: &Fixture) -> Vec<(&'static str, String)> {
    let index = f.repo.load_index().unwrap();
    let pack_with = |t: BlobType| {
        let e = index.entries().iter().find(|e| e.blob_type == t).unwrap();
        relative_path(FileKind::Pack, &index.pack(e).id.to_hex()).unwrap()
    };
    let first = |kind: FileKind| {
        let name = f.repo.backend().list(kind).unwrap()[0].name.clone();
        relative_path(kind, &name).unwrap()
    };
    vec![
        ("config", "config".to_string()),
        ("key slot", first(FileKind::Key)),
        ("index", first(FileKind::Index)),
        (
            "snapshot",
            relative_path(FileKind::Snapshot, &f.snapshot.to_hex()).unwrap(),
        ),
        ("data pack", pack_with(BlobType::Data)),
        ("tree pack", pack_with(BlobType::Tree)),
    ]
}

fn assert_names(report: &CheckReport, path: &str, what: &str) {
    assert!(
        report.errors.iter().any(|e| e.file == path),
        "{what}: no error names {path}; errors: {:#?}",
        report.errors
    );
}

fn with_modified(root: &Path, path: &str, change: impl FnOnce(&Path), body: impl FnOnce()) {
    let full = root.join(path);
    let original = std::fs::read(&full).unwrap();
    change(&full);
    body();
    std::fs::write(&full, original).unwrap();
}

#[test]
fn clean_repository_has_no_findings() {
    let f = fixture();
    let r = run(&f.repo, true);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    assert_eq!(r.snapshots, 1);
    assert!(r.trees >= 3);
    assert!(r.blobs >= 2);
    assert_eq!(r.packs_read, r.packs);
    assert!(r.bytes_read > 350_000);
}

#[test]
fn read_data_finds_any_flipped_byte_and_names_the_file() {
    let f = fixture();
    for (what, path) in files_of_each_kind(&f) {
        let len = std::fs::metadata(f.root.join(&path)).unwrap().len() as usize;
        for pos in [0, len / 3, len / 2, len - 1] {
            with_modified(
                &f.root,
                &path,
                |full| {
                    let mut b = std::fs::read(full).unwrap();
                    b[pos] ^= 0x01;
                    std::fs::write(full, b).unwrap();
                },
                || {
                    let r = run(&f.repo, true);
                    assert_names(&r, &path, &format!("{what} byte {pos} flipped"));
                },
            );
        }
    }
    // Restored: clean again.
    assert!(run(&f.repo, true).errors.is_empty());
}

#[test]
fn damaged_blob_is_located_with_offset_snapshot_and_file() {
    let f = fixture();
    let index = f.repo.load_index().unwrap();
    // The first data blob of the file `a`.
    let snap = f.repo.load_snapshot(f.snapshot).unwrap();
    let data: Vec<_> = index
        .entries()
        .iter()
        .filter(|e| e.blob_type == BlobType::Data && snap.refs.contains(&e.id))
        .collect();
    let e = data[0];
    let pack = relative_path(FileKind::Pack, &index.pack(e).id.to_hex()).unwrap();
    with_modified(
        &f.root,
        &pack,
        |full| {
            let mut b = std::fs::read(full).unwrap();
            b[e.offset as usize + 40] ^= 0x80;
            std::fs::write(full, b).unwrap();
        },
        || {
            let r = run(&f.repo, true);
            let hit = r
                .errors
                .iter()
                .find(|x| x.file == pack && x.offset == Some(u64::from(e.offset)))
                .unwrap_or_else(|| panic!("{:#?}", r.errors));
            assert!(hit.message.contains(&e.id.short()), "{hit}");
            assert!(hit.message.contains(&f.snapshot.short()), "{hit}");
            assert!(
                hit.message.contains("/a") || hit.message.contains("/sub/b"),
                "{hit}"
            );
        },
    );
}

#[test]
fn truncated_files_are_named() {
    let f = fixture();
    for (what, path) in files_of_each_kind(&f) {
        with_modified(
            &f.root,
            &path,
            |full| {
                let b = std::fs::read(full).unwrap();
                std::fs::write(full, &b[..b.len() - 1]).unwrap();
            },
            || {
                // Truncation is found by the structure check already.
                let r = run(&f.repo, false);
                assert_names(&r, &path, &format!("{what} truncated"));
            },
        );
    }
}

#[test]
fn deleted_files_are_reported() {
    let f = fixture();
    for (what, path) in files_of_each_kind(&f) {
        with_modified(
            &f.root,
            &path,
            |full| std::fs::remove_file(full).unwrap(),
            || {
                let r = run(&f.repo, false);
                match what {
                    // A snapshot deleted is indistinguishable from one forgotten.
                    "snapshot" => assert!(r.errors.is_empty(), "{:#?}", r.errors),
                    // Its name is unknown once deleted; the slot in use is missed.
                    "key slot" => assert!(
                        r.errors.iter().any(|e| e.file.starts_with("keys/")),
                        "{:#?}",
                        r.errors
                    ),
                    // The packs it described lose their index: blobs referenced are unindexed.
                    "index" => {
                        assert!(
                            r.errors.iter().any(|e| e.file.starts_with("snapshots/")),
                            "{:#?}",
                            r.errors
                        );
                        assert!(r.warnings.iter().any(|w| w.file.starts_with("data/")));
                    }
                    _ => assert_names(&r, &path, &format!("{what} deleted")),
                }
            },
        );
    }
}

#[test]
fn wrong_refs_list_is_an_error() {
    let f = fixture();
    let s = f.repo.load_snapshot(f.snapshot).unwrap();
    // A snapshot whose cleartext list omits one blob: a server would let GC delete it.
    let mut refs = s.refs.clone();
    refs.pop();
    let source: [u8; 16] = hex::decode(&s.header.source).unwrap().try_into().unwrap();
    let (id, bytes) =
        brr_core::snapshot::encode_snapshot(f.repo.key(), &s.meta, source, refs).unwrap();
    f.repo
        .backend()
        .write(FileKind::Snapshot, &id.to_hex(), &bytes)
        .unwrap();
    let r = run(&f.repo, false);
    assert_names(
        &r,
        &relative_path(FileKind::Snapshot, &id.to_hex()).unwrap(),
        "refs",
    );
    assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
}

#[test]
fn leftovers_are_warnings() {
    let f = fixture();
    let b = f.repo.backend();
    b.write(FileKind::Lock, "0123", b"not json").unwrap();
    // A pack nobody indexed: copy an existing pack under its own name with one blob less.
    let index = f.repo.load_index().unwrap();
    let info = &index.packs()[0];
    let full = b.read(FileKind::Pack, &info.id.to_hex()).unwrap();
    let trailer = parse_pack_tail(&full, full.len() as u64).unwrap();
    let mut w = brr_core::pack::PackWriter::with_capacity(0);
    let e = trailer.entries[0];
    w.add(
        e.blob_type,
        e.id,
        trailer.key_of(&e).unwrap(),
        &full[e.offset as usize..(e.offset + e.length) as usize],
    );
    let p = w.finish();
    b.write(FileKind::Pack, &p.id.to_hex(), &p.bytes).unwrap();
    let r = run(&f.repo, true);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(r.warnings.iter().any(|w| w.file == "locks/0123"));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.file == relative_path(FileKind::Pack, &p.id.to_hex()).unwrap())
    );
}

#[test]
fn damaged_tree_is_found_without_read_data() {
    let f = fixture();
    let index = f.repo.load_index().unwrap();
    let snap = f.repo.load_snapshot(f.snapshot).unwrap();
    let e = index
        .entries()
        .iter()
        .find(|e| e.id == snap.meta.tree)
        .unwrap();
    let pack = relative_path(FileKind::Pack, &index.pack(e).id.to_hex()).unwrap();
    with_modified(
        &f.root,
        &pack,
        |full| {
            let mut b = std::fs::read(full).unwrap();
            b[e.offset as usize + 30] ^= 0x04;
            std::fs::write(full, b).unwrap();
        },
        || {
            let r = run(&f.repo, false);
            let hit = r
                .errors
                .iter()
                .find(|x| x.file == pack && x.offset == Some(u64::from(e.offset)))
                .unwrap_or_else(|| panic!("{:#?}", r.errors));
            assert!(hit.message.contains(&f.snapshot.short()), "{hit}");
            // The rest of the snapshot is unreachable, not reported as a wrong refs list.
            assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
        },
    );
}
