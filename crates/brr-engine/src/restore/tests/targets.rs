//! Where restore writes: a full restore mirrors absolute paths, a subpath or include patterns select part
//! of a snapshot, a non-empty target is refused unless overwriting, which never follows planted links.

use super::*;

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
