//! Damage during restore: a damaged data blob or an unreadable directory is reported, never written as
//! if intact, and the rest of the tree is restored.

use super::*;

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
