//! `kill -9` of `brrd` while a large backup uploads: after a restart the next backup completes,
//! reuses what was uploaded, and the repository checks clean.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Compare, assert_same_tree, num, restored, scratch, write_random};
use crate::harness::{Brrd, Machine};

const MIB: usize = 1 << 20;

/// Pack files stored by the server for every repository.
fn stored_packs(brrd: &Brrd) -> usize {
    fn walk(dir: &std::path::Path, n: &mut usize, in_data: bool) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            if p.is_dir() {
                walk(&p, n, in_data || name == "data");
            } else if in_data && !name.starts_with('.') {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&brrd.data.join("repos"), &mut n, false);
    n
}

#[test]
fn brrd_killed_mid_upload_then_backup_resumes() {
    let tmp = scratch();
    let mut brrd = Brrd::start(&tmp.path().join("brrd"));
    let alpha = brrd.company("admin@alpha.example", "Alpha");
    let admin = Machine::new(&brrd, &tmp.path().join("admin"), "big");
    admin.login(&alpha.admin_email);
    admin.init().expect_code(0);
    let agent = Machine::new(&brrd, &tmp.path().join("agent"), "big");
    agent.enroll(&alpha.api_key, "host");

    // 96 MiB of pseudo-random data: about 96 packs of 1 MiB.
    let src = tmp.path().join("src");
    for i in 0..12u64 {
        write_random(
            &src.join(format!("d{}/file{i:02}", i % 3)),
            8 * MIB,
            300 + i,
        );
    }
    let mut c = agent.cmd(["backup"]);
    c.arg(&src).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while stored_packs(&brrd) < 20 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before brrd was killed"
        );
        assert!(Instant::now() < deadline, "no 20 packs after 10 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    brrd.kill();
    let packs_at_kill = stored_packs(&brrd);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(25), "{stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");

    brrd.restart();
    assert!(
        admin.json(["snapshots"]).as_array().unwrap().is_empty(),
        "a snapshot of the interrupted backup is visible"
    );
    let mut c = agent.cmd(["--json", "backup"]);
    c.arg(&src);
    let done = crate::common::run(&mut c).expect_code(0).json();
    let added = num(&done["summary"], "bytes_added");
    assert!(
        added + (packs_at_kill as u64 - 4) * MIB as u64 <= 96 * MIB as u64 + MIB as u64,
        "the resumed backup did not reuse the {packs_at_kill} uploaded packs: {added} bytes added\n{done:#}"
    );
    let check = agent.run(["check", "--read-data"]).expect_code(0);
    assert!(check.stdout.contains(": 0 errors"), "{check}");
    let snap = done["snapshot"].as_str().unwrap().to_owned();
    let target = tmp.path().join("restore");
    let mut c = agent.cmd(["restore", &snap, "--target"]);
    c.arg(&target);
    crate::common::run(&mut c).expect_code(0);
    assert_same_tree(&src, &restored(&target, &src), Compare::CONTENT);
}

/// A restart of `brrd` shorter than the client's retry window (0.5 s doubling to 8 s, 15.5 s in all)
/// does not even fail the running backup.
#[test]
fn backup_rides_out_a_quick_brrd_restart() {
    let tmp = scratch();
    let mut brrd = Brrd::start(&tmp.path().join("brrd"));
    let alpha = brrd.company("admin@alpha.example", "Alpha");
    let admin = Machine::new(&brrd, &tmp.path().join("admin"), "big");
    admin.login(&alpha.admin_email);
    admin.init().expect_code(0);
    let src = tmp.path().join("src");
    for i in 0..6u64 {
        write_random(&src.join(format!("file{i:02}")), 8 * MIB, 700 + i);
    }
    let mut c = admin.cmd(["--json", "backup"]);
    c.arg(&src).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while stored_packs(&brrd) < 10 {
        assert!(Instant::now() < deadline, "no 10 packs after 10 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    brrd.restart();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("retrying"), "no retry was needed: {stderr}");
    let check = admin.run(["check", "--read-data"]).expect_code(0);
    assert!(check.stdout.contains(": 0 errors"), "{check}");
    let target = tmp.path().join("restore");
    let mut c = admin.cmd(["restore", "latest", "--target"]);
    c.arg(&target);
    crate::common::run(&mut c).expect_code(0);
    assert_same_tree(&src, &restored(&target, &src), Compare::CONTENT);
}
