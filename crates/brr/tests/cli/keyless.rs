//! Keyless maintenance (`brr_engine::keyless`, what a server runs without the key) on repositories
//! written by the real `brr` binary, checked against what `brr` itself finds with the key.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;

use brr_core::retention::RetentionPolicy;
use brr_engine::keyless::KeylessRepo;
use brr_engine::keyless::gc::{
    GcOptions, SessionJudge, collect_garbage, folder_lock_times, stale_after,
};
use brr_engine::keyless::retention::{
    Grouping, KeylessRetentionOptions, WallClock, plan_retention, remove_snapshots,
};
use brr_engine::keyless::scrub::{ScrubOptions, scrub};
use brr_engine::progress::NoProgress;
use brr_storage::LocalBackend;
use serde_json::Value;

use crate::common::{
    Compare, Repo, assert_same_tree, flip_byte, restored, scratch, write, write_random,
};

const MIB: usize = 1 << 20;

fn view(repo: &Repo) -> KeylessRepo {
    KeylessRepo::open(Arc::new(LocalBackend::new(repo.dir.clone()))).unwrap()
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn keyless_retention_decides_like_brr_forget() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for n in 0..3u64 {
        write_random(&a.join("f"), 50_000, 10 + n);
        write_random(&b.join("g"), 50_000, 20 + n);
        repo.backup(&[&a]);
        repo.backup(&[&b]);
    }
    let forget = repo.json(["forget", "--keep-last", "2", "--dry-run"]);
    let with_key: BTreeSet<(String, BTreeSet<String>)> = forget["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let keep = g["keep"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k[0].clone())
                .collect();
            (
                serde_json::to_string(&g["keep"]).unwrap(),
                ids(&Value::Array(keep)),
            )
        })
        .collect();

    let v = view(&repo);
    let plan = plan_retention(
        &v,
        &KeylessRetentionOptions {
            policy: RetentionPolicy::default().with_last(2),
            grouping: Grouping::SourceTag,
            clock: WallClock::Local,
            source: None,
        },
    )
    .unwrap();
    let without_key: BTreeSet<(String, BTreeSet<String>)> = plan
        .groups
        .iter()
        .map(|g| {
            let keep = serde_json::to_value(&g.keep).unwrap();
            let ids = g.keep.iter().map(|(id, _)| id.to_hex()).collect();
            (serde_json::to_string(&keep).unwrap(), ids)
        })
        .collect();
    assert_eq!(
        without_key, with_key,
        "same groups, same snapshots kept for the same reasons"
    );

    let doomed: Vec<_> = plan.to_remove().copied().collect();
    assert_eq!(doomed.len(), 2);
    assert_eq!(remove_snapshots(&v, &doomed).unwrap(), 2);
    let left: BTreeSet<String> = repo
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let kept: BTreeSet<String> = with_key.into_iter().flat_map(|(_, k)| k).collect();
    assert_eq!(left, kept);
    repo.ok(["check"]);
}

#[test]
fn keyless_gc_is_safe_against_concurrent_brr_backups() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    write(&src.join("stable.txt"), b"in every snapshot\n");
    let repo = Repo::init(&tmp.path().join("repo"));
    write_random(&src.join("round.bin"), 4 * MIB, 900);
    repo.backup(&[&src]);
    let v = view(&repo);
    let times = folder_lock_times(repo.dir.clone());
    let opts = GcOptions {
        dry_run: false,
        max_unused_fraction: 0.0,
        threads: Some(2),
    };
    for round in 0..4u64 {
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
        // The server's rule: a lock not written for 15 minutes has ended.
        let stale = stale_after(chrono::Utc::now(), chrono::TimeDelta::minutes(15));
        let judge = SessionJudge {
            last_written: &times,
            is_stale: &stale,
        };
        let gc = collect_garbage(&v, &opts, &judge, &NoProgress);
        let b = backup.wait_with_output().expect("backup");
        assert!(
            b.status.success(),
            "round {round}: backup failed: {}\n{}",
            String::from_utf8_lossy(&b.stdout),
            String::from_utf8_lossy(&b.stderr)
        );
        gc.unwrap();
        let check = repo.ok(["check", "--read-data"]);
        assert!(!check.stdout.contains("error:"), "round {round}:\n{check}");
    }
    // Once the backups are over, the pending records are swept; still clean.
    let never = SessionJudge {
        last_written: &|_| None,
        is_stale: &|_, _, _| false,
    };
    collect_garbage(&v, &opts, &never, &NoProgress).unwrap();
    assert!(repo.files("gc").is_empty());
    assert!(repo.files("locks").is_empty());
    repo.ok(["check", "--read-data"]);
    let snaps = repo.snapshots();
    for (n, s) in snaps.iter().enumerate() {
        let target = tmp.path().join(format!("restore-{n}"));
        repo.restore_verified(s["id"].as_str().unwrap(), &target);
        if n == snaps.len() - 1 {
            assert_same_tree(&src, &restored(&target, &src), Compare::CONTENT);
        }
    }
}

/// For a flipped byte in any pack: scrub names the pack, `brr check --read-data` names the same file,
/// and every snapshot `brr restore` cannot restore completely is among the snapshots scrub named.
#[test]
fn scrub_names_every_snapshot_brr_cannot_restore() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_random(&a.join("shared"), 300_000, 1);
    write_random(&b.join("other"), 300_000, 2);
    repo.backup(&[&a]);
    repo.backup(&[&b]);
    write_random(&a.join("more"), 200_000, 3);
    repo.backup(&[&a]);
    let snapshots: Vec<String> = repo
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let v = view(&repo);
    assert!(
        scrub(&v, &ScrubOptions::default(), &NoProgress)
            .unwrap()
            .is_ok()
    );

    let mut failed_restores = 0;
    for (n, pack) in repo.files("data").iter().enumerate() {
        let clean = std::fs::read(pack).unwrap();
        flip_byte(pack, clean.len() as u64 / 2);
        let report = scrub(&v, &ScrubOptions::default(), &NoProgress).unwrap();
        assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
        let finding = &report.findings[0];
        assert_eq!(finding.file, repo.rel(pack));
        let named: BTreeSet<String> = finding.snapshots.iter().map(|s| s.to_hex()).collect();

        let check = repo.run(["check", "--read-data"]).expect_error(14);
        assert!(
            check.stdout.contains(&finding.file) || check.stderr.contains(&finding.file),
            "{check}"
        );
        for id in &snapshots {
            let target = tmp.path().join(format!("r-{n}-{}", &id[..8]));
            let r = repo.run(["restore", id.as_str(), "--target", target.to_str().unwrap()]);
            if r.code != 0 {
                failed_restores += 1;
                assert!(
                    named.contains(id),
                    "pack {n}: restore of {id} failed, scrub did not name it"
                );
            }
        }
        std::fs::write(pack, clean).unwrap();
    }
    assert!(failed_restores > 0, "some damage reached a restore");
}
