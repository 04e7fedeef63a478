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

/// A repository with eight snapshots of which `forget --keep-last 3` left three: lots of garbage, and
/// packs that are partly used (for repacking).
fn repository_with_garbage(root: &std::path::Path) -> (Repo, std::path::PathBuf) {
    let src = root.join("src");
    let repo = Repo::init(&root.join("base"));
    write_random(&src.join("shared.bin"), 2 * MIB, 7);
    for n in 0..8u64 {
        write_random(&src.join("unique.bin"), 2 * MIB, 300 + n);
        write_random(&src.join(format!("small-{n}.bin")), 100_000, 400 + n);
        repo.backup(&[&src]);
    }
    repo.ok(["forget", "--keep-last", "3"]);
    (repo, src)
}

#[test]
fn killed_prune_leaves_a_valid_repository() {
    let tmp = scratch();
    let (base, src) = repository_with_garbage(tmp.path());
    let base_size = base.size_of("data");
    let kept: Vec<String> = base
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept.len(), 3);
    let files = |repo: &Repo, folder: &str| repo.files(folder).len();

    // Kill at different moments: at once, when the GC record appears, when repacked packs appear, when
    // the index changes, when packs start to disappear.
    type Trigger = fn(&Repo, (usize, usize, usize)) -> bool;
    let triggers: [(&str, Trigger); 5] = [
        ("at once", |_, _| true),
        ("gc record", |r, _| !r.files("gc").is_empty()),
        ("new pack", |r, (packs, _, _)| r.files("data").len() > packs),
        ("index changed", |r, (_, _, index)| {
            r.files("index").len() != index
        }),
        ("pack deleted", |r, (packs, _, _)| {
            r.files("data").len() < packs
        }),
    ];
    for (round, (what, trigger)) in triggers.iter().enumerate() {
        let repo = Repo::at(&tmp.path().join(format!("repo{round}")));
        crate::common::copy_dir(&base.dir, &repo.dir);
        let before = (
            files(&repo, "data"),
            files(&repo, "gc"),
            files(&repo, "index"),
        );
        let mut child = repo
            .cmd(["prune", "--max-unused-percent", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prune");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let finished = loop {
            if child.try_wait().expect("wait").is_some() {
                break true;
            }
            if trigger(&repo, before) {
                break false;
            }
            assert!(std::time::Instant::now() < deadline, "prune hangs");
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        if finished {
            eprintln!("note: prune finished before the trigger \"{what}\"");
        } else {
            child.kill().expect("kill -9");
        }
        child.wait().expect("reap");

        // Valid whatever the moment: check is clean, the kept snapshots are there and restore exactly.
        let check = repo.ok(["check", "--read-data"]);
        assert!(!check.stdout.contains("error:"), "killed {what}:\n{check}");
        let ids: Vec<String> = repo
            .snapshots()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, kept, "killed {what}");
        for (n, id) in ids.iter().enumerate() {
            let target = tmp.path().join(format!("restore-{round}-{n}"));
            repo.restore_verified(id, &target);
            if n == ids.len() - 1 {
                assert_same_tree(&src, &restored(&target, &src), Compare::CONTENT);
            }
            std::fs::remove_dir_all(&target).unwrap();
        }
        // The next prunes finish the job (the dead prune's exclusive lock is stale and removed).
        repo.ok(["prune", "--max-unused-percent", "0"]);
        repo.ok(["prune", "--max-unused-percent", "0"]);
        assert!(
            repo.files("locks").is_empty(),
            "killed {what}: {:?}",
            repo.files("locks")
        );
        let after = repo.size_of("data");
        assert!(
            after < base_size * 3 / 4,
            "killed {what}: data/ {base_size} → {after}"
        );
        repo.ok(["check", "--read-data"]);
        std::fs::remove_dir_all(&repo.dir).unwrap();
    }
}

#[test]
fn concurrent_backups_do_not_corrupt_each_other() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));
    let trees: Vec<std::path::PathBuf> = (0..3u64)
        .map(|n| {
            let src = tmp.path().join(format!("src{n}"));
            // Half of the data is common to all trees, so the backups race to store the same blobs.
            write_random(&src.join("common.bin"), 3 * MIB, 77);
            write_random(&src.join("own.bin"), 3 * MIB, 500 + n);
            src
        })
        .collect();
    let children: Vec<_> = trees
        .iter()
        .map(|src| {
            repo.cmd(["backup"])
                .arg(src)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn backup")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("backup");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 3);
    repo.ok(["check", "--read-data"]);
    for (n, src) in trees.iter().enumerate() {
        let snap = snaps
            .iter()
            .find(|s| s["paths"][0].as_str() == src.to_str())
            .expect("a snapshot of each tree");
        let target = tmp.path().join(format!("restore{n}"));
        repo.ok([
            "restore",
            snap["id"].as_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
            "--path",
            src.to_str().unwrap(),
        ]);
        assert_same_tree(src, &target, Compare::CONTENT);
    }
    // Racing writers may store common blobs twice (prune does not drop such duplicates today); a prune
    // after them leaves every snapshot intact.
    repo.ok(["prune", "--max-unused-percent", "0"]);
    repo.ok(["check", "--read-data"]);
    for (n, snap) in snaps.iter().enumerate() {
        repo.restore_verified(
            snap["id"].as_str().unwrap(),
            &tmp.path().join(format!("after-prune-{n}")),
        );
    }
}
