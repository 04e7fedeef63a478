//! `kill -9` during a backup: the repository stays valid and the next backup resumes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Compare, Repo, assert_same_tree, num, restored, scratch, write_random};

const MIB: usize = 1 << 20;

#[test]
fn killed_backup_leaves_a_valid_repository_and_the_next_one_resumes() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    // 200 MiB of pseudo-random data: about 200 packs of 1 MiB.
    for i in 0..25u64 {
        write_random(
            &src.join(format!("d{}/file{i:02}", i % 4)),
            8 * MIB,
            1000 + i,
        );
    }

    // Kill at three moments: right after the first packs, early, and late in the run.
    for (round, kill_at_packs) in [2usize, 40, 140].into_iter().enumerate() {
        let repo = Repo::init(&tmp.path().join(format!("repo{round}")));
        let mut child = repo
            .cmd(["backup"])
            .arg(&src)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn backup");
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "round {round}: the backup finished ({status}) before {kill_at_packs} packs were seen"
                );
            }
            if repo.files("data").len() >= kill_at_packs {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no {kill_at_packs} packs after 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let packs_at_kill = repo.files("data").len();

        // Nothing visible from the killed run; the repository checks clean (leftover packs are warnings).
        assert!(
            repo.snapshots().is_empty(),
            "round {round}: a snapshot of the killed backup is visible"
        );
        let check = repo.ok(["check", "--read-data"]);
        assert!(!check.stdout.contains("error:"), "{check}");
        assert_eq!(
            repo.files("locks").len(),
            1,
            "round {round}: the killed backup's lock should be left"
        );
        if round == 0 {
            // `brr unlock` removes the lock of the dead process (same host, PID gone).
            let u = repo.json(["unlock"]);
            assert_eq!(u["removed"].as_array().map(Vec::len), Some(1), "{u:#}");
            assert!(repo.files("locks").is_empty());
        }

        // The next backup completes and reuses what the killed one uploaded.
        let b = repo.backup(&[&src]);
        let s = &b["summary"];
        let total = num(s, "total_bytes");
        assert_eq!(total, 200 * MIB as u64, "{b:#}");
        let reused = total - num(s, "bytes_added");
        assert!(
            reused >= packs_at_kill as u64 / 2 * (MIB as u64 / 2),
            "round {round}: only {reused} bytes reused after {packs_at_kill} packs were written: {b:#}"
        );
        assert!(num(s, "bytes_stored") < total, "{b:#}");
        assert_eq!(repo.snapshots().len(), 1);
        if round > 0 {
            // The backup released its own lock; the dead one is detected as stale and removed by prune
            // (which would otherwise wait for that "running" backup).
            assert_eq!(
                repo.files("locks").len(),
                1,
                "round {round}: {:?}",
                repo.files("locks")
            );
            repo.ok(["prune"]);
        }
        assert!(
            repo.files("locks").is_empty(),
            "round {round}: locks left: {:?}",
            repo.files("locks")
        );
        if round == 2 {
            repo.ok(["check", "--read-data"]);
        }

        let target = tmp.path().join(format!("restore{round}"));
        repo.restore_verified("latest", &target);
        assert_same_tree(
            &src,
            &restored(&target, &src),
            Compare {
                xattrs: false,
                ..Compare::ALL
            },
        );
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::remove_dir_all(&repo.dir).unwrap();
    }
}
