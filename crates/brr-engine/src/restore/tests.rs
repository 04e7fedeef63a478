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

#[test]
fn restores_a_tricky_tree_exactly() {
    let f = fixture();
    let xattrs = tricky_tree(&f.src);
    let (snap, index) = run_backup(&f);
    let progress = Counting::default();
    let report = restore(
        &f.repo,
        &index,
        &snap,
        Some(&subpath(&f)),
        &RestoreOptions {
            verify: true,
            ..opts(&f.out)
        },
        &progress,
    )
    .unwrap();
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_same(&f.src, &f.out);

    // 10 regular files of which one is a hard link; content written once per inode.
    assert_eq!(report.files, 10);
    assert_eq!(report.verified_files, 9);
    assert_eq!(report.symlinks, 2);
    assert_eq!(report.others, 1);
    assert_eq!(report.dirs, 5);
    // Restore counted 9 files, then verify 9 more.
    assert_eq!(progress.items.load(Ordering::Relaxed), 18);
    assert_eq!(progress.bytes.load(Ordering::Relaxed), 2 * report.bytes);

    let (h1, h2) = (
        fs::metadata(f.out.join("h1")).unwrap(),
        fs::metadata(f.out.join("sub/h2")).unwrap(),
    );
    assert_eq!(h1.ino(), h2.ino());
    assert_eq!(h1.nlink(), 2);
    let sparse = fs::metadata(f.out.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 8 << 20);
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "{} blocks",
        sparse.blocks()
    );
    // The source's big file has many chunks.
    let tree = f.repo.load_tree(&index, &snap.meta.tree).unwrap();
    assert!(!tree.nodes.is_empty());
    if xattrs {
        assert_eq!(
            xattr::get(f.out.join("a.txt"), "user.brr-test")
                .unwrap()
                .unwrap(),
            b"value\0bin"
        );
    }
    unlock_ro(&f.src);
    unlock_ro(&f.out);
}

#[test]
fn full_restore_mirrors_absolute_paths_and_refuses_non_empty_target() {
    let f = fixture();
    fs::write(f.src.join("x"), b"x").unwrap();
    fs::create_dir(f.src.join("d")).unwrap();
    fs::write(f.src.join("d/y"), random(100_000)).unwrap();
    let (snap, index) = run_backup(&f);
    let report = restore(&f.repo, &index, &snap, None, &opts(&f.out), &NoProgress).unwrap();
    assert_eq!(report.files, 2);
    let mirrored = f.out.join(f.src.strip_prefix("/").unwrap());
    assert_same(&f.src, &mirrored);

    let err = restore(&f.repo, &index, &snap, None, &opts(&f.out), &NoProgress).unwrap_err();
    assert!(matches!(err, EngineError::InvalidArgument { .. }), "{err}");
    let err = restore(
        &f.repo,
        &index,
        &snap,
        Some("/no/such/path"),
        &opts(&f.out.join("n")),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::PathNotFound { .. }), "{err}");
}

#[test]
fn subpath_and_include() {
    let f = fixture();
    tricky_tree(&f.src);
    let (snap, index) = run_backup(&f);
    let sp = subpath(&f);

    // A directory subpath: its entries land directly in the target.
    let out = f.out.join("sub");
    let r = restore(
        &f.repo,
        &index,
        &snap,
        Some(&format!("{sp}/sub")),
        &opts(&out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.files, 2);
    assert_eq!(fs::read(out.join("deep/n.txt")).unwrap(), b"nested");
    assert!(out.join("h2").exists());

    // A file subpath: target/<name>.
    let out = f.out.join("file");
    restore(
        &f.repo,
        &index,
        &snap,
        Some(&format!("{sp}/a.txt")),
        &opts(&out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"hello restore\n");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);

    // Name patterns: only *.txt files and the directories leading to them.
    let out = f.out.join("txt");
    let r = restore(
        &f.repo,
        &index,
        &snap,
        Some(&sp),
        &RestoreOptions {
            include: vec!["*.txt".into()],
            ..opts(&out)
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.files, 3, "{r:?}");
    assert!(out.join("a.txt").exists() && out.join("sub/deep/n.txt").exists());
    assert!(
        !out.join("big.bin").exists()
            && !out.join("empty-dir").exists()
            && !out.join("ro-dir").exists()
    );
    assert_eq!(
        fs::metadata(out.join("sub")).unwrap().mtime(),
        fs::metadata(f.src.join("sub")).unwrap().mtime()
    );

    // Path patterns match the whole path inside the snapshot; a matched directory brings its content.
    let out = f.out.join("paths");
    let rel = sp.trim_start_matches('/');
    let r = restore(
        &f.repo,
        &index,
        &snap,
        None,
        &RestoreOptions {
            include: vec![format!("{rel}/sub"), format!("/{rel}/*.bin")],
            ..opts(&out)
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.files, 3, "{r:?}");
    let base = out.join(rel);
    assert!(
        base.join("sub/deep/n.txt").exists()
            && base.join("sub/h2").exists()
            && base.join("big.bin").exists()
    );
    assert!(!base.join("a.txt").exists());
    unlock_ro(&f.src);
}

#[test]
fn damaged_blob_is_reported_and_never_written() {
    let f = fixture();
    let big = random(300_000);
    fs::write(f.src.join("big.bin"), &big).unwrap();
    fs::write(f.src.join("other"), random(50_000)).unwrap();
    fs::write(f.src.join("small"), b"intact").unwrap();
    // A hard link to the damaged file, and a file already named like the damaged copy.
    fs::hard_link(f.src.join("big.bin"), f.src.join("big-link")).unwrap();
    fs::write(f.src.join("big.bin.brr-damaged"), b"decoy").unwrap();
    let (snap, index) = run_backup(&f);

    // Flip a byte in the middle of big.bin's second chunk, in the pack file on disk.
    let mut tree = f.repo.load_tree(&index, &snap.meta.tree).unwrap();
    for c in f.src.components().skip(1) {
        let n = tree
            .nodes
            .iter()
            .find(|n| n.name == c.as_os_str().as_bytes())
            .unwrap();
        let NodeKind::Dir { subtree } = n.kind else {
            panic!()
        };
        tree = f.repo.load_tree(&index, &subtree).unwrap();
    }
    let node = tree.nodes.iter().find(|n| n.name == b"big.bin").unwrap();
    let NodeKind::File { chunks, .. } = &node.kind else {
        panic!()
    };
    assert!(chunks.len() > 3);
    let bad = chunks[1];
    let bad_offset = u64::from(chunks[0].len);
    flip_blob(&f, &index, &bad.id);

    let progress = Counting::default();
    let report = restore(
        &f.repo,
        &index,
        &snap,
        Some(&subpath(&f)),
        &RestoreOptions {
            verify: true,
            ..opts(&f.out)
        },
        &progress,
    )
    .unwrap();
    // Both names of the damaged inode are reported and kept under a damaged name, as one inode; the
    // existing `big.bin.brr-damaged` is not replaced.
    assert_eq!(report.damaged.len(), 2, "{report:?}");
    for d in &report.damaged {
        assert_eq!(d.damaged_ranges, vec![(bad_offset, u64::from(bad.len))]);
        assert!(!d.reason.is_empty());
    }
    let by_name = |n: &str| report.damaged.iter().find(|d| d.path.ends_with(n)).unwrap();
    let (d1, d2) = (by_name("/big.bin"), by_name("/big-link"));
    assert!(
        d1.saved_as.ends_with("big.bin.brr-damaged-1"),
        "{}",
        d1.saved_as
    );
    assert!(
        d2.saved_as.ends_with("big-link.brr-damaged"),
        "{}",
        d2.saved_as
    );
    assert_eq!(
        fs::metadata(&d1.saved_as).unwrap().ino(),
        fs::metadata(&d2.saved_as).unwrap().ino()
    );
    assert_eq!(
        fs::read(f.out.join("big.bin.brr-damaged")).unwrap(),
        b"decoy"
    );
    assert!(progress.warnings.load(Ordering::Relaxed) >= 1);
    assert!(!f.out.join("big.bin").exists() && !f.out.join("big-link").exists());

    let restored = fs::read(&d1.saved_as).unwrap();
    assert_eq!(restored.len(), big.len());
    let (s, e) = (
        bad_offset as usize,
        (bad_offset + u64::from(bad.len)) as usize,
    );
    assert!(restored[s..e].iter().all(|&b| b == 0));
    assert!(restored[..s] == big[..s] && restored[e..] == big[e..]);
    assert_eq!(fs::read(f.out.join("small")).unwrap(), b"intact");
    assert_eq!(
        fs::read(f.out.join("other")).unwrap(),
        fs::read(f.src.join("other")).unwrap()
    );
    assert_eq!(report.verified_files, 3);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn overwrite_replaces_files_and_never_follows_planted_symlinks() {
    let f = fixture();
    fs::create_dir(f.src.join("sub")).unwrap();
    fs::write(f.src.join("sub/file"), b"from the snapshot").unwrap();
    fs::write(f.src.join("top"), b"new").unwrap();
    let (snap, index) = run_backup(&f);

    // The target already holds: `sub` as a symlink to a directory outside, `top` as a hard link to a
    // file outside.
    let outside = f.out.with_file_name("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep"), b"precious").unwrap();
    fs::create_dir_all(&f.out).unwrap();
    symlink(&outside, f.out.join("sub")).unwrap();
    fs::hard_link(outside.join("keep"), f.out.join("top")).unwrap();

    let report = restore(
        &f.repo,
        &index,
        &snap,
        Some(&subpath(&f)),
        &RestoreOptions {
            overwrite: true,
            ..opts(&f.out)
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(fs::symlink_metadata(f.out.join("sub")).unwrap().is_dir());
    assert_eq!(
        fs::read(f.out.join("sub/file")).unwrap(),
        b"from the snapshot"
    );
    assert_eq!(fs::read(f.out.join("top")).unwrap(), b"new");
    assert_eq!(fs::read(outside.join("keep")).unwrap(), b"precious");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn devices_as_root() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let f = fixture();
    let dev = nix::sys::stat::makedev(1, 3);
    if mknod(
        &f.src.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        dev,
    )
    .is_err()
    {
        return; // no CAP_MKNOD here
    }
    let (snap, index) = run_backup(&f);
    let report = restore(
        &f.repo,
        &index,
        &snap,
        Some(&subpath(&f)),
        &opts(&f.out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.others, 1, "{report:?}");
    let md = fs::symlink_metadata(f.out.join("null")).unwrap();
    assert_eq!(md.rdev(), dev);
    assert_eq!(md.mode() & 0o7777, 0o600);
}

#[test]
fn merge_ranges() {
    assert_eq!(
        merge(vec![(0, 5), (5, 5), (20, 1), (20, 3)]),
        vec![(0, 10), (20, 3)]
    );
    assert_eq!(merge(vec![]), vec![]);
}

/// Restore throughput on a generated tree. Run with
/// `BRR_BENCH_DATA=/tmp/brr-bench-data BRR_BENCH_MIB=1024 BRR_BENCH_WORK=/dev/shm cargo nextest run -p brr-engine restore::tests::bench --run-ignored only --no-capture`;
/// the data directory is generated once and kept, so other tools can be measured on the same tree.
#[test]
#[ignore = "benchmark"]
fn bench_restore() {
    let data = PathBuf::from(
        std::env::var("BRR_BENCH_DATA").unwrap_or_else(|_| "/tmp/brr-bench-data".into()),
    );
    let mib: usize = std::env::var("BRR_BENCH_MIB")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(512);
    if !data.exists() {
        // Three quarters in large incompressible files, a quarter in small compressible ones.
        fs::create_dir_all(data.join("large")).unwrap();
        for i in 0..mib * 3 / 4 / 64 {
            fs::write(data.join(format!("large/{i:03}.bin")), random(64 << 20)).unwrap();
        }
        let words = ["restore ", "backup ", "pack ", "chunk ", "index ", "tree "];
        for d in 0..32 {
            let dir = data.join(format!("small/{d:02}"));
            fs::create_dir_all(&dir).unwrap();
            for i in 0..(mib / 4) * 1024 / 32 / 32 {
                let mut s = Vec::with_capacity(32 << 10);
                let r = random(4096);
                while s.len() < 32 << 10 {
                    s.extend_from_slice(words[r[s.len() % 4096] as usize % words.len()].as_bytes());
                    s.extend_from_slice(&r[..(r[s.len() % 4096] % 16) as usize]);
                }
                fs::write(dir.join(format!("{i:04}.txt")), &s).unwrap();
            }
        }
    }
    // Repository and restore targets under BRR_BENCH_WORK (e.g. a tmpfs, to measure brr rather than the
    // disk). The repository is kept there, so repeated runs measure only the restore.
    let work = std::env::var("BRR_BENCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|_| data.parent().unwrap().to_path_buf());
    let repo_dir = work.join("brr-bench-repo");
    let backend = Arc::new(brr_storage::LocalBackend::new(&repo_dir));
    let repo = if repo_dir.join("config").exists() {
        Arc::new(Repository::open(backend, &brr_core::keyslot::Unlock::Password(b"pw")).unwrap())
    } else {
        let kdf = KdfParams {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        };
        let repo = Arc::new(
            Repository::init(
                backend,
                b"pw",
                &InitOptions {
                    kdf,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let options = BackupOptions {
            paths: vec![data.clone()],
            parent: ParentChoice::None,
            ..Default::default()
        };
        backup(&repo, &options, &NoProgress).unwrap();
        repo
    };
    let snap = repo.find_snapshot("latest").unwrap();
    let index = repo.load_index().unwrap();
    let rounds: usize = std::env::var("BRR_BENCH_ROUNDS")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    for verify in std::iter::repeat_n([false, true], rounds).flatten() {
        let out = work.join("brr-bench-out");
        let _ = fs::remove_dir_all(&out);
        let t = std::time::Instant::now();
        let (u0, s0) = cpu_secs();
        let report = restore(
            &repo,
            &index,
            &snap,
            Some(data.to_str().unwrap()),
            &RestoreOptions {
                target: out.clone(),
                verify,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let (u1, s1) = cpu_secs();
        assert!(report.damaged.is_empty() && report.errors.is_empty());
        let mib = report.bytes as f64 / 1048576.0;
        println!(
            "restore (verify: {verify}): {} files, {mib:.1} MiB in {secs:.2} s = {:.0} MiB/s; cpu: user {:.2} s, system {:.2} s",
            report.files,
            mib / secs,
            u1 - u0,
            s1 - s0
        );
        fs::remove_dir_all(&out).unwrap();
    }
}

/// User and system CPU seconds of this process (from /proc; clock ticks of 1/100 s).
fn cpu_secs() -> (f64, f64) {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (
        f[11].parse::<f64>().unwrap() / 100.0,
        f[12].parse::<f64>().unwrap() / 100.0,
    )
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

#[test]
fn unreadable_directory_is_reported_and_the_rest_restored() {
    let f = fixture();
    fs::create_dir(f.src.join("lost")).unwrap();
    fs::write(f.src.join("lost/inside"), b"gone").unwrap();
    fs::write(f.src.join("kept"), b"here").unwrap();
    let (snap, index) = run_backup(&f);
    let mut tree = f.repo.load_tree(&index, &snap.meta.tree).unwrap();
    for c in f.src.components().skip(1) {
        let n = tree
            .nodes
            .iter()
            .find(|n| n.name == c.as_os_str().as_bytes())
            .unwrap();
        let NodeKind::Dir { subtree } = n.kind else {
            panic!()
        };
        tree = f.repo.load_tree(&index, &subtree).unwrap();
    }
    let lost = tree.nodes.iter().find(|n| n.name == b"lost").unwrap();
    let NodeKind::Dir { subtree } = lost.kind else {
        panic!()
    };
    flip_blob(&f, &index, &subtree);

    let report = restore(
        &f.repo,
        &index,
        &snap,
        Some(&subpath(&f)),
        &opts(&f.out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert!(report.damaged[0].path.ends_with("/lost"));
    assert!(report.damaged[0].damaged_ranges.is_empty());
    assert!(f.out.join("lost").is_dir());
    assert_eq!(fs::read(f.out.join("kept")).unwrap(), b"here");
}

#[test]
fn unprivileged_owner_and_xattr_rules() {
    let me = Privileges {
        root: false,
        euid: 1000,
    };
    let mut node = brr_core::tree::Node {
        name: b"x".to_vec(),
        kind: NodeKind::Fifo,
        mode: 0o644,
        uid: 1000,
        gid: 50,
        user: None,
        group: None,
        mtime: Default::default(),
        atime: Default::default(),
        ctime: Default::default(),
        device: 0,
        inode: 0,
        links: 1,
        xattrs: Vec::new(),
    };
    // Own files: only the group is tried; others' files: nothing.
    assert_eq!(
        fsops::wants_owner(&node, me),
        Some((None, Some(nix::unistd::Gid::from_raw(50))))
    );
    node.uid = 0;
    assert_eq!(fsops::wants_owner(&node, me), None);
    assert!(
        fsops::wants_owner(
            &node,
            Privileges {
                root: true,
                euid: 0
            }
        )
        .is_some()
    );
    assert!(fsops::settable_xattr(b"user.a", me));
    assert!(!fsops::settable_xattr(b"security.selinux", me));
    assert!(!fsops::settable_xattr(b"trusted.x", me));
    assert!(fsops::settable_xattr(
        b"trusted.x",
        Privileges {
            root: true,
            euid: 0
        }
    ));
}
