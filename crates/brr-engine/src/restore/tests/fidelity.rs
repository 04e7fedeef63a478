//! A restored tree is an exact copy of its source: content, kinds, modes, owners, times, links, holes,
//! xattrs and device nodes.

use super::*;

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
