//! The real `brrd` on PostgreSQL with its repository store on S3 (`.ci/s3.sh`, `.ci/postgres.sh`): two
//! agents of one company back up with deduplication across them, restore byte for byte, another company
//! sees nothing, a scrub finds a byte flipped in an S3 object, and a backup interrupted by `kill -9` of
//! `brrd` resumes.
//!
//! Without `BRR_TEST_S3_ENDPOINT` and `BRR_TEST_POSTGRES_URL` the test prints a notice and passes, unless
//! `BRR_REQUIRE_S3` or `CI` is set.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brr_storage::{Backend, FileKind, OpendalBackend, S3Config};
use serde_json::Value;

use crate::common::{Compare, assert_same_tree, num, restored, scratch, write_random};
use crate::harness::{Brrd, BrrdOptions, Machine};

const MIB: usize = 1 << 20;

/// The test services: an S3 bucket with its credentials and a PostgreSQL server.
struct Services {
    endpoint: String,
    bucket: String,
    region: String,
    access_key: String,
    secret_key: String,
    postgres: String,
}

fn services() -> Option<Services> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let required = var("BRR_REQUIRE_S3").is_some() || std::env::var_os("CI").is_some();
    let (Some(endpoint), Some(postgres)) =
        (var("BRR_TEST_S3_ENDPOINT"), var("BRR_TEST_POSTGRES_URL"))
    else {
        assert!(
            !required,
            "BRR_REQUIRE_S3 or CI is set but BRR_TEST_S3_ENDPOINT or BRR_TEST_POSTGRES_URL is not: run `eval \"$(bash .ci/s3.sh)\"` and `eval \"$(bash .ci/postgres.sh)\"` first"
        );
        eprintln!(
            "notice: BRR_TEST_S3_ENDPOINT or BRR_TEST_POSTGRES_URL unset, skipping brrd on S3 and PostgreSQL"
        );
        return None;
    };
    let need = |name: &str| {
        var(name).unwrap_or_else(|| panic!("BRR_TEST_S3_ENDPOINT is set but {name} is not"))
    };
    Some(Services {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        bucket: need("BRR_TEST_S3_BUCKET"),
        region: var("BRR_TEST_S3_REGION").unwrap_or_else(|| "garage".to_owned()),
        access_key: need("BRR_TEST_S3_ACCESS_KEY"),
        secret_key: need("BRR_TEST_S3_SECRET_KEY"),
        postgres,
    })
}

/// A name unique to this run.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}{nanos}", std::process::id())
}

/// A fresh database on the test PostgreSQL server (with `psql`, installed with the server).
fn fresh_database(base_url: &str) -> String {
    let name = unique("brr_e2e_");
    let out = Command::new("psql")
        .args([base_url, "-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql (installed with PostgreSQL by .ci/postgres.sh)");
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (prefix, _) = base_url.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

impl Services {
    /// The repository `company/repo` under `prefix`, opened directly on S3 with the test credentials.
    fn repo(&self, prefix: &str, company: &str, repo: &str) -> OpendalBackend {
        OpendalBackend::s3(S3Config {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            prefix: format!("{prefix}/{company}/{repo}"),
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
        })
        .unwrap()
    }

    /// `brrd` on a fresh database with its store under `prefix` in the test bucket.
    fn options(&self, prefix: &str) -> BrrdOptions {
        BrrdOptions {
            args: vec!["--database".into(), fresh_database(&self.postgres)],
            env: vec![
                (
                    "BRRD_STORE__URL".into(),
                    format!("s3:{}/{}/{prefix}", self.endpoint, self.bucket),
                ),
                ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
                ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
                ("AWS_REGION".into(), self.region.clone()),
            ],
        }
    }
}

/// `n` files of 1 MiB, file `i` with the pseudo-random content of seed `seed0 + i`.
fn tree(root: &Path, seed0: u64, n: u64) {
    for i in 0..n {
        write_random(
            &root.join(format!("d{}/f{i:02}.bin", i % 3)),
            MIB,
            seed0 + i,
        );
    }
}

fn backup(m: &Machine, src: &Path) -> Value {
    let mut c = m.cmd(["--json", "backup"]);
    c.arg(src);
    crate::common::run(&mut c).expect_code(0).json()
}

/// The id of the repository `name` as its company's admin sees it.
fn repo_id(admin: &Machine, name: &str) -> String {
    let list = admin.json(["repos"]);
    let repo = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no repository {name}: {list:#}"));
    repo["id"].as_str().unwrap().to_owned()
}

#[test]
fn brrd_on_postgres_and_s3_backs_up_dedups_isolates_scrubs_and_survives_kill() {
    let Some(svc) = services() else {
        return;
    };
    let tmp = scratch();
    let prefix = unique("brrd-e2e/");
    let mut brrd = Brrd::start_with(&tmp.path().join("brrd"), svc.options(&prefix));
    let alpha = brrd.company("admin@alpha.example", "Alpha");
    let beta = brrd.company("admin@beta.example", "Beta");
    let admin = Machine::new(&brrd, &tmp.path().join("admin-a"), "laptops");
    admin.login(&alpha.admin_email);
    admin.init().expect_code(0);
    let a1 = Machine::new(&brrd, &tmp.path().join("agent-a1"), "laptops");
    let a2 = Machine::new(&brrd, &tmp.path().join("agent-a2"), "laptops");
    let b1 = Machine::new(&brrd, &tmp.path().join("agent-b1"), "laptops");
    a1.enroll(&alpha.api_key, "host-a1");
    a2.enroll(&alpha.api_key, "host-a2");
    b1.enroll(&beta.api_key, "host-b1");

    // Two machines with mostly the same files: the second uploads little, and usage shows it.
    let src1 = tmp.path().join("m1");
    let src2 = tmp.path().join("m2");
    tree(&src1, 100, 12);
    tree(&src2, 100, 10);
    write_random(&src2.join("own/unique.bin"), 2 * MIB, 999);
    let first = backup(&a1, &src1);
    let second = backup(&a2, &src2);
    assert!(
        num(&first["summary"], "bytes_added") >= 12 * MIB as u64,
        "{first:#}"
    );
    let added2 = num(&second["summary"], "bytes_added");
    assert!(
        added2 <= 3 * MIB as u64,
        "the second machine re-uploaded shared data: {added2} bytes added\n{second:#}"
    );
    let stats = admin.json(["stats"]);
    let usage = &stats["server"]["usage"];
    assert_eq!(num(usage, "snapshots"), 2, "{stats:#}");
    assert!(
        usage["dedup_ratio"].as_f64().unwrap() > 1.5,
        "no cross-machine dedup visible: {stats:#}"
    );

    // The store really is the bucket: the repository's packs are S3 objects under the prefix.
    let repo = repo_id(&admin, "laptops");
    let s3 = svc.repo(&prefix, &alpha.id, &repo);
    let packs = s3.list(FileKind::Pack).unwrap();
    assert_eq!(packs.len() as u64, num(usage, "packs"), "{stats:#}");

    // Machine 2 restores machine 1's snapshot byte for byte.
    let s1 = first["snapshot"].as_str().unwrap().to_owned();
    let target = tmp.path().join("restore");
    let mut c = a2.cmd(["--json", "restore", &s1, "--verify", "--target"]);
    c.arg(&target);
    crate::common::run(&mut c).expect_code(0);
    assert!(assert_same_tree(&src1, &restored(&target, &src1), Compare::CONTENT) > 12);

    // Company B sees nothing of A's repository (404, exit 22) and cannot restore its snapshot.
    b1.run(["snapshots"]).expect_error(22);
    let mut c = b1.cmd(["restore", &s1, "--target"]);
    c.arg(tmp.path().join("stolen"));
    crate::common::run(&mut c).expect_error(22);
    assert!(!tmp.path().join("stolen").join("m1").exists());

    // Scrub: clean, then a byte flipped directly in an S3 object is found.
    let verify = |brrd: &Brrd| {
        let out = brrd
            .command(["repo", "verify", "--repo", &repo])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.code(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, text, err) = verify(&brrd);
    assert_eq!(code, Some(0), "{text}{err}");
    let victim = packs[0].name.as_str();
    let mut bytes = s3.read(FileKind::Pack, victim).unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    s3.write(FileKind::Pack, victim, &bytes).unwrap();
    let (code, text, err) = verify(&brrd);
    assert_eq!(
        code,
        Some(1),
        "the flipped byte went unnoticed: {text}{err}"
    );
    assert!(text.contains(victim), "{text}");
    bytes[middle] ^= 0x40;
    s3.write(FileKind::Pack, victim, &bytes).unwrap();
    assert_eq!(verify(&brrd).0, Some(0));

    // kill -9 of brrd while a backup uploads: the next backup reuses what was stored.
    let big = tmp.path().join("big");
    for i in 0..6u64 {
        write_random(&big.join(format!("file{i:02}")), 8 * MIB, 300 + i);
    }
    let before = packs.len();
    let mut c = a1.cmd(["backup"]);
    c.arg(&big).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while s3.list(FileKind::Pack).unwrap().len() < before + 10 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before brrd was killed"
        );
        assert!(
            Instant::now() < deadline,
            "no 10 new packs after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    brrd.kill();
    let stored_at_kill = s3.list(FileKind::Pack).unwrap().len() - before;
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(25), "{stderr}");
    brrd.restart();
    let done = backup(&a1, &big);
    let added = num(&done["summary"], "bytes_added");
    assert!(
        added + (stored_at_kill as u64 - 4) * MIB as u64 <= 48 * MIB as u64 + MIB as u64,
        "the resumed backup did not reuse the {stored_at_kill} stored packs: {added} bytes added\n{done:#}"
    );
    let check = a1.run(["check", "--read-data"]).expect_code(0);
    assert!(check.stdout.contains(": 0 errors"), "{check}");
    let snap = done["snapshot"].as_str().unwrap().to_owned();
    let target = tmp.path().join("restore-big");
    let mut c = a1.cmd(["restore", &snap, "--target"]);
    c.arg(&target);
    crate::common::run(&mut c).expect_code(0);
    assert_same_tree(&big, &restored(&target, &big), Compare::CONTENT);
    let (code, text, err) = verify(&brrd);
    assert_eq!(code, Some(0), "{text}{err}");
}
