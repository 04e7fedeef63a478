//! Restore tests: the shared fixture (a repository, a source tree, a target) and helpers; the tests live
//! in the submodules, one concern each.

#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brr_core::chunker::ChunkerParams;
use brr_core::keyslot::KdfParams;
use brr_core::snapshot::Snapshot;
use brr_core::tree::NodeKind;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;
use rand::RngCore;

use super::*;
use crate::backup::{BackupOptions, ParentChoice, backup};
use crate::progress::NoProgress;
use crate::repo::InitOptions;

mod bench;
mod damage;
mod fidelity;
mod rules;
mod targets;

struct Fixture {
    _dir: tempfile::TempDir,
    repo_dir: PathBuf,
    src: PathBuf,
    out: PathBuf,
    repo: Arc<Repository>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let repo = Repository::init(
        Arc::new(brr_storage::LocalBackend::new(&repo_dir)),
        b"pw",
        &InitOptions {
            kdf: KdfParams {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1,
            },
            chunker: ChunkerParams {
                min_size: 4096,
                avg_size: 16384,
                max_size: 65536,
                normalization: 1,
            },
            pack_size: 1 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    Fixture {
        src,
        out: dir.path().join("out"),
        repo_dir,
        repo: Arc::new(repo),
        _dir: dir,
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

fn set_times(path: &Path, secs: i64, nanos: i64) {
    let t = TimeSpec::new(secs, nanos);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// A tree with one of everything; returns whether xattrs could be set.
fn tricky_tree(src: &Path) -> bool {
    fs::write(src.join("a.txt"), b"hello restore\n").unwrap();
    fs::write(src.join("big.bin"), random(300_000)).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::create_dir(src.join("empty-dir")).unwrap();
    fs::create_dir_all(src.join("sub/deep")).unwrap();
    fs::write(src.join("sub/deep/n.txt"), b"nested").unwrap();
    fs::set_permissions(
        src.join("sub/deep/n.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::write(src.join("setuid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::create_dir(src.join("sticky")).unwrap();
    fs::set_permissions(src.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(src.join("ro-dir")).unwrap();
    fs::write(src.join("ro-dir/inside"), b"x").unwrap();
    fs::set_permissions(src.join("ro-dir/inside"), fs::Permissions::from_mode(0o444)).unwrap();
    symlink("a.txt", src.join("link")).unwrap();
    symlink("/nonexistent/outside", src.join("dangling")).unwrap();
    fs::write(src.join("h1"), random(20_000)).unwrap();
    fs::hard_link(src.join("h1"), src.join("sub/h2")).unwrap();
    // Sparse: 8 MiB with 64 KiB of data in the middle.
    let sparse = fs::File::create(src.join("sparse")).unwrap();
    sparse.set_len(8 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, &random(65536), 4 << 20).unwrap();
    drop(sparse);
    fs::write(
        src.join(OsStr::from_bytes(b"caf\xe9-\xff.txt")),
        b"latin-1 name",
    )
    .unwrap();
    nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o620)).unwrap();
    let xattrs = xattr::set(src.join("a.txt"), "user.brr-test", b"value\0bin").is_ok();
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(
            &src.join("a.txt"),
            Some(nix::unistd::Uid::from_raw(4321)),
            Some(nix::unistd::Gid::from_raw(4322)),
        )
        .unwrap();
    }
    let mut n = 0;
    for e in walk(src) {
        n += 1;
        set_times(&e, 1_600_000_000 + n, 123_456_789 + n);
    }
    set_times(src, 1_500_000_000, 42);
    fs::set_permissions(src.join("ro-dir"), fs::Permissions::from_mode(0o555)).unwrap();
    xattrs
}

/// Every path below `root`, children before their directory (so times can be set bottom-up).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn run_backup(f: &Fixture) -> (Snapshot, Index) {
    let snap = backup(
        &f.repo,
        &BackupOptions {
            paths: vec![f.src.clone()],
            parent: ParentChoice::None,
            threads: Some(2),
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap()
    .snapshot;
    let index = f.repo.load_index().unwrap();
    (snap, index)
}

fn opts(target: &Path) -> RestoreOptions {
    RestoreOptions {
        target: target.to_path_buf(),
        threads: Some(2),
        ..Default::default()
    }
}

/// Asserts that `b` is an exact copy of `a`: kinds, content, modes, owners, mtimes (ns), link targets,
/// user xattrs; directory times included.
fn assert_same(a: &Path, b: &Path) {
    let mut names_a: Vec<_> = fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut names_b: Vec<_> = fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b, "entries of {}", a.display());
    for name in names_a {
        let (pa, pb) = (a.join(&name), b.join(&name));
        let (ma, mb) = (
            fs::symlink_metadata(&pa).unwrap(),
            fs::symlink_metadata(&pb).unwrap(),
        );
        let what = pa.display().to_string();
        assert_eq!(ma.file_type(), mb.file_type(), "{what}");
        assert_eq!(ma.mtime(), mb.mtime(), "{what}");
        assert_eq!(ma.mtime_nsec(), mb.mtime_nsec(), "{what}");
        assert_eq!((ma.uid(), ma.gid()), (mb.uid(), mb.gid()), "{what}");
        if ma.file_type().is_symlink() {
            assert_eq!(fs::read_link(&pa).unwrap(), fs::read_link(&pb).unwrap());
            continue;
        }
        assert_eq!(ma.mode(), mb.mode(), "{what}");
        let xa: Vec<_> = xattr::list(&pa)
            .unwrap()
            .filter(|n| n.as_bytes().starts_with(b"user."))
            .collect();
        for n in &xa {
            assert_eq!(
                xattr::get(&pa, n).unwrap(),
                xattr::get(&pb, n).unwrap(),
                "{what}"
            );
        }
        if ma.is_dir() {
            assert_same(&pa, &pb);
        } else if ma.is_file() {
            assert_eq!(ma.len(), mb.len(), "{what}");
            assert!(
                fs::read(&pa).unwrap() == fs::read(&pb).unwrap(),
                "content of {what}"
            );
        }
    }
}

fn subpath(f: &Fixture) -> String {
    f.src.to_str().unwrap().to_string()
}

fn unlock_ro(root: &Path) {
    for p in [root.join("ro-dir")] {
        if p.exists() {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

#[derive(Default)]
struct Counting {
    items: AtomicU64,
    bytes: AtomicU64,
    warnings: AtomicU64,
}

impl Progress for Counting {
    fn items(&self, n: u64) {
        self.items.fetch_add(n, Ordering::Relaxed);
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    fn warn(&self, _: &str) {
        self.warnings.fetch_add(1, Ordering::Relaxed);
    }
}

/// Flips a byte in the middle of a stored blob, in its pack file on disk.
fn flip_blob(f: &Fixture, index: &Index, id: &brr_core::id::BlobId) {
    let loc = index.get(id).unwrap();
    let pack = index.pack(loc).id.to_hex();
    let pack_path = f.repo_dir.join("data").join(&pack[..2]).join(&pack);
    let mut bytes = fs::read(&pack_path).unwrap();
    bytes[(loc.offset + loc.length / 2) as usize] ^= 0x01;
    fs::set_permissions(&pack_path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&pack_path, &bytes).unwrap();
}
