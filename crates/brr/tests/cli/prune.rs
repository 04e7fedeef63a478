//! `forget` and `prune`: space is freed, the repository stays clean, and prune is safe against a
//! concurrent backup.

use std::process::Stdio;

use crate::common::{Compare, Repo, assert_same_tree, restored, scratch, write, write_random};

const MIB: usize = 1 << 20;

#[test]
fn forget_keep_last_with_prune_frees_space() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    write(&src.join("stable.txt"), b"in every snapshot\n");
    let repo = Repo::init(&tmp.path().join("repo"));
    // Four snapshots, each with 3 MiB of data no other snapshot has.
    for n in 0..4u64 {
        write_random(&src.join("changing.bin"), 3 * MIB, 50 + n);
        repo.backup(&[&src]);
    }
    assert_eq!(repo.snapshots().len(), 4);
    let before = repo.size_of("data");

    // A dry run changes nothing.
    repo.ok(["forget", "--keep-last", "1", "--dry-run"]);
    assert_eq!(repo.snapshots().len(), 4);
    repo.ok(["prune", "--dry-run"]);
    assert_eq!(repo.size_of("data"), before);

    repo.ok(["forget", "--keep-last", "1", "--prune"]);
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1);
    let after = repo.size_of("data");
    assert!(
        after < before / 2,
        "data/ went from {before} to only {after} bytes"
    );
    assert!(
        after >= 3 * MIB as u64,
        "the kept snapshot's data is gone: {after} bytes"
    );

    let check = repo.ok(["check", "--read-data"]);
    assert!(!check.stdout.contains("error:"), "{check}");
    let target = tmp.path().join("restore");
    repo.restore_verified("latest", &target);
    assert_same_tree(
        &src,
        &restored(&target, &src),
        Compare {
            xattrs: false,
            ..Compare::ALL
        },
    );

    // Forget by ID, then prune again: nothing left to reference the data.
    let id = snaps[0]["id"].as_str().unwrap();
    repo.ok(["forget", &id[..12]]);
    assert!(repo.snapshots().is_empty());
    repo.ok(["prune", "--max-unused-percent", "0"]);
    assert!(
        repo.size_of("data") < MIB as u64,
        "{} bytes left",
        repo.size_of("data")
    );
    repo.ok(["check", "--read-data"]);
}

#[test]
fn prune_is_safe_against_a_concurrent_backup() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    write(&src.join("stable.txt"), b"in every snapshot\n");
    let repo = Repo::init(&tmp.path().join("repo"));
    write_random(&src.join("round.bin"), 4 * MIB, 900);
    repo.backup(&[&src]);
    for round in 0..4u64 {
        // New data for the backup, and garbage for the prune: forget all but the newest snapshot first.
        write_random(&src.join("round.bin"), 6 * MIB, 1000 + round);
        write_random(&src.join(format!("kept-{round}.bin")), MIB, 2000 + round);
        repo.ok(["forget", "--keep-last", "1"]);
        let backup = repo
            .cmd(["--json", "backup"])
            .arg(&src)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn backup");
        let prune = repo.run(["prune", "--max-unused-percent", "0"]);
        let b = backup.wait_with_output().expect("backup");
        assert!(
            b.status.success(),
            "round {round}: backup failed: {}\n{}",
            String::from_utf8_lossy(&b.stdout),
            String::from_utf8_lossy(&b.stderr)
        );
        prune.expect_code(0);
        let check = repo.ok(["check", "--read-data"]);
        assert!(!check.stdout.contains("error:"), "round {round}:\n{check}");
    }
    // A prune after the backups finished can complete its pending work; still clean.
    repo.ok(["prune"]);
    repo.ok(["check", "--read-data"]);
    // Every snapshot restores completely, the newest exactly as the source is now.
    let snaps = repo.snapshots();
    assert!(!snaps.is_empty());
    for (n, s) in snaps.iter().enumerate() {
        let target = tmp.path().join(format!("restore-{n}"));
        repo.restore_verified(s["id"].as_str().unwrap(), &target);
        if n == snaps.len() - 1 {
            assert_same_tree(&src, &restored(&target, &src), Compare::CONTENT);
        }
    }
}
