//! Round trip of a tricky tree: every kind of entry and metadata brr records comes back exactly.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use crate::common::{Compare, Repo, Rng, assert_same_tree, is_root, restored, scratch, write};

const MIB: usize = 1 << 20;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Every path below `root` (and `root`), children before parents.
fn all_entries(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if fs::symlink_metadata(root).unwrap().is_dir() {
        let mut names: Vec<_> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.extend(all_entries(&p));
        }
    }
    out.push(root.to_path_buf());
    out
}

/// Builds the tree; returns whether user xattrs could be set (the file system may refuse them).
fn build_tree(src: &Path) -> bool {
    let mut rng = Rng::new(7);
    // Empty file, empty dirs, nested dirs.
    write(&src.join("empty-file"), b"");
    fs::create_dir_all(src.join("empty-dir")).unwrap();
    fs::create_dir_all(src.join("nested/empty/deeper/still-empty")).unwrap();
    write(&src.join("a/b/c/d/e/deep.txt"), b"deep down\n");
    // Tiny files of 1..=64 bytes.
    for i in 1..=64usize {
        write(&src.join(format!("tiny/{i:03}")), &rng.bytes(i));
    }
    // A file of many chunks: random, then compressible, then random again.
    let mut big = rng.bytes(12 * MIB);
    big.extend(rng.text(6 * MIB));
    big.extend(rng.bytes(2 * MIB + 12_345));
    write(&src.join("big/huge-ish.bin"), &big);
    // The same data again under another name (deduplicated, restored independently).
    write(&src.join("big/copy.bin"), &big[..5 * MIB]);
    // Sparse: 64 MiB with a few data blocks, one at the very end.
    let sparse = fs::File::create(src.join("sparse.img")).unwrap();
    sparse.set_len(64 * MIB as u64).unwrap();
    for (off, len) in [
        (0u64, 4096usize),
        (17 * MIB as u64, 65_536),
        (40 * MIB as u64 + 12_288, 100_000),
        (64 * MIB as u64 - 4096, 4096),
    ] {
        sparse.write_all_at(&rng.bytes(len), off).unwrap();
    }
    drop(sparse);
    // Non-UTF-8 names: a file and a directory with a file inside.
    write(
        &src.join(OsStr::from_bytes(b"caf\xff\xfe.bin")),
        b"not utf-8 name\n",
    );
    let odd_dir = src.join(OsStr::from_bytes(b"dir-\xfe\xff"));
    write(&odd_dir.join(OsStr::from_bytes(b"\xffinner")), b"inner\n");
    write(
        &src.join("spaces and \u{e9}m\u{f8}j\u{ee} \u{1f600}.txt"),
        b"unicode\n",
    );
    // Symlinks: relative, absolute, dangling, to a directory, to a non-UTF-8 name.
    symlink("a/b/c/d/e/deep.txt", src.join("link-relative")).unwrap();
    symlink(src.join("big/huge-ish.bin"), src.join("link-absolute")).unwrap();
    symlink("no/such/target", src.join("link-dangling")).unwrap();
    symlink("a/b", src.join("link-to-dir")).unwrap();
    symlink(OsStr::from_bytes(b"caf\xff\xfe.bin"), src.join("link-odd")).unwrap();
    // Hard links: three names of one inode across directories, and a separate pair.
    write(&src.join("hard/one"), b"one inode, three names\n");
    fs::hard_link(src.join("hard/one"), src.join("hard/two")).unwrap();
    fs::hard_link(src.join("hard/one"), src.join("a/three")).unwrap();
    write(&src.join("hard/pair-a"), &rng.bytes(100_000));
    fs::hard_link(src.join("hard/pair-a"), src.join("hard/pair-b")).unwrap();
    write(&src.join("hard/not-a-link"), b"one inode, three names\n");
    // A FIFO.
    nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    // Extended attributes.
    let mut xattrs_ok = true;
    for (p, name, value) in [
        (src.join("tiny/001"), "user.brr.test", b"value".to_vec()),
        (
            src.join("tiny/001"),
            "user.brr.binary",
            vec![0, 1, 2, 255, 0],
        ),
        (src.join("a"), "user.brr.dir", b"on a directory".to_vec()),
        (src.join("big/huge-ish.bin"), "user.empty", Vec::new()),
    ] {
        if let Err(e) = xattr::set(&p, name, &value) {
            eprintln!(
                "note: cannot set xattr {name} on {} ({e}); xattrs are not compared",
                p.display()
            );
            xattrs_ok = false;
        }
    }
    // Owner (only root can give files away).
    if is_root() {
        write(&src.join("owned-by-other"), b"uid 1234, gid 5678\n");
        std::os::unix::fs::lchown(src.join("owned-by-other"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(src.join("link-dangling"), Some(4321), Some(8765)).unwrap();
    }
    // Permission bits. A file nobody may read only when root can still read it back for the comparison.
    write(&src.join("perm/none"), b"mode 000\n");
    write(&src.join("perm/exec"), b"#!/bin/sh\n");
    write(&src.join("perm/setuid"), b"setuid\n");
    write(&src.join("perm/readonly"), b"read only\n");
    write(&src.join("perm/inside-setgid/file"), b"in a setgid dir\n");
    fs::create_dir_all(src.join("perm/sticky")).unwrap();
    fs::create_dir_all(src.join("perm/private")).unwrap();
    chmod(
        &src.join("perm/none"),
        if is_root() { 0o000 } else { 0o400 },
    );
    chmod(&src.join("perm/exec"), 0o755);
    chmod(&src.join("perm/setuid"), 0o4755);
    chmod(&src.join("perm/readonly"), 0o444);
    chmod(&src.join("perm/inside-setgid"), 0o2775);
    chmod(&src.join("perm/sticky"), 0o1777);
    chmod(&src.join("perm/private"), 0o700);
    chmod(&src.join("tiny/064"), 0o600);
    // Times with nanoseconds on everything (symlinks included), set last so nothing changes them again.
    // One before 1970 and one after 2038.
    for (i, p) in all_entries(src).iter().enumerate() {
        let i = i as i64;
        let secs = match i % 7 {
            0 => -86_400 * 365 - i,
            1 => 4_102_444_800 + i,
            _ => 1_600_000_000 + i * 3_601,
        };
        let mtime = TimeSpec::new(secs, (123_456_789 + i * 7_919) % 1_000_000_000);
        let atime = TimeSpec::new(1_700_000_000 + i, 1 + i);
        utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &atime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", p.display()));
    }
    xattrs_ok
}

#[test]
fn round_trip_of_a_tricky_tree() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    let xattrs_ok = build_tree(&src);
    let sparse = fs::metadata(src.join("sparse.img")).unwrap();
    if sparse.blocks() * 512 >= sparse.len() / 2 {
        eprintln!(
            "note: the file system does not keep sparse.img sparse; sparseness is not compared"
        );
    }

    let repo = Repo::init(&tmp.path().join("repo"));
    let b = repo.backup(&[&src]);
    assert_eq!(
        b["summary"]["errors"].as_array().map(Vec::len),
        Some(0),
        "backup errors: {b:#}"
    );

    let target = tmp.path().join("restore");
    let r = repo.restore_verified("latest", &target);
    assert!(
        r["report"]["verified_files"].as_u64().unwrap() > 0,
        "nothing verified: {r:#}"
    );

    let out = restored(&target, &src);
    let compared = assert_same_tree(
        &src,
        &out,
        Compare {
            xattrs: xattrs_ok,
            ..Compare::ALL
        },
    );
    assert!(compared > 100, "only {compared} entries compared");

    // The restored tree is exactly what a second restore of the snapshot by its ID gives too.
    let id = b["snapshot"].as_str().unwrap();
    let target2 = tmp.path().join("restore-by-id");
    repo.restore_verified(&id[..10], &target2);
    assert_same_tree(&src, &restored(&target2, &src), Compare::CONTENT);

    // Restoring a single file of the snapshot by path.
    let one = tmp.path().join("one");
    let deep = src.join("a/b/c/d/e/deep.txt");
    repo.ok([
        OsStr::new("restore"),
        OsStr::new("latest"),
        OsStr::new("--target"),
        one.as_os_str(),
        OsStr::new("--path"),
        deep.as_os_str(),
    ]);
    assert_eq!(fs::read(one.join("deep.txt")).unwrap(), b"deep down\n");
}
