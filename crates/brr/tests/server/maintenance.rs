//! Server-side maintenance with the real binaries: an agent backs up three times into a repository
//! whose retention keeps the last snapshot; `brrd` deletes the others after each upload, its garbage
//! collection reclaims their data, and the agent restores the kept snapshot byte for byte.

use std::path::Path;
use std::time::{Duration, Instant};

use brr_client::Method;
use serde_json::{Value, json};

use crate::common::{Compare, assert_same_tree, is_root, num, restored, scratch, write_random};
use crate::harness::{ACCOUNT_PASSWORD, Brrd, BrrdOptions, Machine};

const MIB: usize = 1 << 20;

fn backup(m: &Machine, src: &Path) -> Value {
    let mut c = m.cmd(["--json", "backup"]);
    c.arg(src);
    crate::common::run(&mut c).expect_code(0).json()
}

#[test]
fn retention_after_backups_then_gc_and_restore() {
    let tmp = scratch();
    // The collection below runs right after the uploads: no grace period for recent packs.
    let options = BrrdOptions {
        env: vec![("BRRD_MAINTENANCE__PACK_GRACE_SECS".into(), "0".into())],
        ..BrrdOptions::default()
    };
    let mut brrd = Brrd::start_with(&tmp.path().join("brrd"), options);
    let alpha = brrd.company("admin@alpha.example", "Alpha");
    let admin = Machine::new(&brrd, &tmp.path().join("admin"), "servers");
    admin.login(&alpha.admin_email);
    admin.init().expect_code(0);
    let tokens = brrd.call(
        None,
        Method::POST,
        "/api/v1/auth/login",
        json!({"email": alpha.admin_email, "password": ACCOUNT_PASSWORD}),
    );
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let policies = brrd.call(
        Some(&token),
        Method::PUT,
        "/api/v1/repos/servers/retention",
        json!({"keep_last": 1}),
    );
    assert_eq!(policies["policies"][0]["keep_last"], 1, "{policies:#}");

    let agent = Machine::new(&brrd, &tmp.path().join("agent"), "servers");
    agent.enroll(&alpha.api_key, "host-1");
    let src = tmp.path().join("src");
    write_random(&src.join("shared.bin"), MIB, 1);
    let mut last = Value::Null;
    for i in 0..3u64 {
        let own = src.join("own.bin");
        write_random(&own, 2 * MIB, 100 + i);
        last = backup(&agent, &src);
    }
    let kept = last["snapshot"].as_str().unwrap().to_owned();

    // Retention runs in the background after each snapshot; wait until it has caught up.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let repo = brrd.call(
            Some(&token),
            Method::GET,
            "/api/v1/repos/servers",
            Value::Null,
        );
        if num(&repo["usage"], "snapshots") == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "retention did not run: {repo:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let snaps = agent.json(["snapshots"]);
    let ids: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{snaps:#}");
    assert!(
        kept.starts_with(ids[0]) || ids[0].starts_with(&kept),
        "{snaps:#} vs {kept}"
    );

    // The server's GC reclaims the deleted snapshots' data.
    let gc = brrd.call(
        Some(&token),
        Method::POST,
        "/api/v1/repos/servers/gc",
        Value::Null,
    );
    assert!(num(&gc, "bytes_freed") >= 4 * MIB as u64 - 4096, "{gc:#}");
    assert!(
        num(&gc, "stored_bytes_after") < num(&gc, "stored_bytes_before"),
        "{gc:#}"
    );

    // Nothing the kept snapshot needs is gone: a full check and a byte-for-byte restore.
    agent.run(["check", "--read-data"]).expect_code(0);
    let target = tmp.path().join("restore");
    let mut c = agent.cmd(["--json", "restore", &kept, "--verify", "--target"]);
    c.arg(&target);
    crate::common::run(&mut c).expect_code(0);
    let cmp = Compare {
        owner: is_root(),
        xattrs: false,
        ..Compare::ALL
    };
    assert!(assert_same_tree(&src, &restored(&target, &src), cmp) >= 2);

    // The operator's command on the stopped server: nothing left to reclaim, one report per
    // repository.
    brrd.kill();
    let out = brrd.command(["repo", "gc", "--all"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(num(&line["report"], "bytes_freed"), 0, "{line:#}");
    assert!(line["repo_id"].is_string(), "{line:#}");
}
