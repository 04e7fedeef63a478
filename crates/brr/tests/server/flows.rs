//! Two companies on one `brrd`: agents back up shared content into one repository, restore it byte
//! for byte, see deduplication across machines, and are refused what their role or company forbids.

use std::path::Path;

use serde_json::Value;

use crate::common::{Compare, assert_same_tree, is_root, num, restored, scratch, write_random};
use crate::harness::{Brrd, Machine};

const MIB: usize = 1 << 20;

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

#[test]
fn two_companies_agents_dedup_restore_and_refusals() {
    let tmp = scratch();
    let brrd = Brrd::start(&tmp.path().join("brrd"));
    let alpha = brrd.company("admin@alpha.example", "Alpha");
    let beta = brrd.company("admin@beta.example", "Beta");

    // The company admin logs in with brr and creates the repository; the session file is private.
    let admin = Machine::new(&brrd, &tmp.path().join("admin-a"), "laptops");
    admin.login(&alpha.admin_email);
    let creds = std::fs::read_to_string(admin.credentials().path()).unwrap();
    assert!(!creds.contains(crate::harness::ACCOUNT_PASSWORD));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(admin.credentials().path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    admin.init().expect_code(0);
    admin.init().expect_error(10);

    // Two agents of Alpha, one of Beta, each with its own credentials file.
    let a1 = Machine::new(&brrd, &tmp.path().join("agent-a1"), "laptops");
    let a2 = Machine::new(&brrd, &tmp.path().join("agent-a2"), "laptops");
    let b1 = Machine::new(&brrd, &tmp.path().join("agent-b1"), "laptops");
    a1.enroll(&alpha.api_key, "host-a1");
    a2.enroll(&alpha.api_key, "host-a2");
    b1.enroll(&beta.api_key, "host-b1");
    // An agent cannot create repositories.
    let other = Machine::new(&brrd, &tmp.path().join("agent-a1"), "other");
    other.init().expect_error(21);

    // Two machines with mostly the same files: the second uploads little.
    let src1 = tmp.path().join("m1");
    let src2 = tmp.path().join("m2");
    tree(&src1, 100, 12);
    tree(&src2, 100, 10);
    write_random(&src2.join("own/unique.bin"), 2 * MIB, 999);
    let first = backup(&a1, &src1);
    let second = backup(&a2, &src2);
    let added1 = num(&first["summary"], "bytes_added");
    let added2 = num(&second["summary"], "bytes_added");
    assert!(added1 >= 12 * MIB as u64, "{first:#}");
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

    // Machine 2 restores machine 1's snapshot: byte-identical, with metadata.
    let s1 = first["snapshot"].as_str().unwrap().to_owned();
    let target = tmp.path().join("restore");
    let mut c = a2.cmd(["--json", "restore", &s1, "--verify", "--target"]);
    c.arg(&target);
    let r = crate::common::run(&mut c).expect_code(0).json();
    assert_eq!(
        r["report"]["damaged"].as_array().map(Vec::len),
        Some(0),
        "{r:#}"
    );
    let cmp = Compare {
        owner: is_root(),
        xattrs: false,
        ..Compare::ALL
    };
    assert!(assert_same_tree(&src1, &restored(&target, &src1), cmp) > 12);

    // Incremental: only the changed file is read.
    write_random(&src1.join("d0/f00.bin"), MIB, 5000);
    let third = backup(&a1, &src1);
    let sum = &third["summary"];
    assert_eq!(
        (num(sum, "files_changed"), num(sum, "files_unmodified")),
        (1, 11),
        "{third:#}"
    );
    assert_eq!(num(sum, "bytes_read"), MIB as u64, "{third:#}");

    // Keys: anyone of the company lists them, only the admin adds one.
    let keys = a1.json(["key", "list"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys:#}");
    let newpw = tmp.path().join("new-password");
    std::fs::write(&newpw, "another password\n").unwrap();
    let mut c = a1.cmd(["key", "add", "--new-password-file"]);
    c.arg(&newpw);
    crate::common::run(&mut c).expect_error(21);

    // An expired access token is refreshed with the refresh token, and the rotated pair is saved.
    let store = admin.credentials();
    let url = brr_client::ServerUrl::parse(&brrd.url).unwrap();
    let mut entry = store.get(url.as_str()).unwrap().unwrap();
    let old_refresh = entry.refresh_token.clone();
    entry.access_token = Some("expired.or.forged".into());
    store.put(url.as_str(), entry).unwrap();
    admin.json(["snapshots"]);
    let entry = store.get(url.as_str()).unwrap().unwrap();
    assert_ne!(entry.access_token.as_deref(), Some("expired.or.forged"));
    assert_ne!(entry.refresh_token, old_refresh);

    // Company B sees nothing of A's repository: 404, exit 22, for its agent and its admin.
    b1.run(["snapshots"]).expect_error(22);
    let badmin = Machine::new(&brrd, &tmp.path().join("admin-b"), "laptops");
    badmin.login(&beta.admin_email);
    badmin.run(["stats"]).expect_error(22);
    let mut c = b1.cmd(["restore", &s1, "--target"]);
    c.arg(tmp.path().join("stolen"));
    crate::common::run(&mut c).expect_error(22);
    // B's own repository of the same name is another repository: empty, and A's stays A's.
    badmin.init().expect_code(0);
    assert!(b1.json(["snapshots"]).as_array().unwrap().is_empty());
    let repos = badmin.json(["repos"]);
    assert_eq!(repos.as_array().map(Vec::len), Some(1), "{repos:#}");
    assert_eq!(num(&repos[0]["usage"], "snapshots"), 0, "{repos:#}");

    // Agents cannot forget or prune (403, exit 21); the admin can.
    a1.run(["forget", &s1]).expect_error(21);
    let snaps = admin.json(["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 3);
    admin.run(["forget", &s1]).expect_code(0);
    a1.run(["prune"]).expect_error(21);
    admin.run(["prune"]).expect_code(0);
    let check = a2.run(["check", "--read-data"]).expect_code(0);
    assert!(check.stdout.contains(": 0 errors"), "{check}");
    let listed = a1.json(["snapshots"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");

    // A revoked agent is refused with 20.
    let agent_id = a2
        .credentials()
        .get(url.as_str())
        .unwrap()
        .unwrap()
        .agent_id
        .clone()
        .unwrap();
    let admin_token = store
        .get(url.as_str())
        .unwrap()
        .unwrap()
        .access_token
        .clone()
        .unwrap();
    let del = brr_client::Request::new(
        brr_client::Method::DELETE,
        format!("/api/v1/agents/{agent_id}"),
        false,
    );
    brrd.client(Some(&admin_token)).send(&del, &[]).unwrap();
    a2.run(["snapshots"]).expect_error(20);
}

#[test]
fn server_errors_have_their_own_exit_codes() {
    let tmp = scratch();
    let brrd = Brrd::start(&tmp.path().join("brrd"));
    let alpha = brrd.company("admin@alpha.example", "Alpha");

    // Not logged in: 20, with the command to run.
    let nobody = Machine::new(&brrd, &tmp.path().join("nobody"), "laptops");
    let run = nobody.run(["snapshots"]).expect_error(20);
    assert!(run.stderr.contains("brr login --server"), "{run}");
    // A rejected token: 20.
    let mut c = nobody.cmd(["snapshots"]);
    c.env("BRR_SERVER_TOKEN", "brra_nope_nope");
    crate::common::run(&mut c).expect_error(20);
    // Wrong account password: 20, and nothing is stored.
    let pw = tmp.path().join("wrong");
    std::fs::write(&pw, "not the password\n").unwrap();
    let mut c = nobody.cmd(["login", "--email", &alpha.admin_email, "--password-file"]);
    c.arg(&pw);
    crate::common::run(&mut c).expect_error(20);
    assert!(!nobody.credentials().path().exists());

    // BRR_PASSWORD_FILE holds the repository password: login never takes the account password from
    // it, only from --password-file on its command line.
    let mut c = nobody.cmd(["login", "--email", &alpha.admin_email]);
    c.env("BRR_PASSWORD_FILE", &pw);
    let run = crate::common::run(&mut c).expect_error(2);
    assert!(run.stderr.contains("no account password given"), "{run}");

    // The server's certificate without --ca-cert: a TLS failure, 25.
    let admin = Machine::new(&brrd, &tmp.path().join("admin"), "laptops");
    let mut c = admin.cmd(["login", "--email", &alpha.admin_email]);
    c.env_remove("BRR_CA_CERT").env("BRR_SERVER_PASSWORD", "x");
    let run = crate::common::run(&mut c).expect_error(25);
    assert!(run.stderr.contains("TLS"), "{run}");
    // Nobody listening: 25.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = admin.cmd(["snapshots"]);
    c.env("BRR_SERVER", format!("https://127.0.0.1:{port}"))
        .env("BRR_SERVER_TOKEN", "brra_x_y");
    crate::common::run(&mut c).expect_error(25);
    // Bad server URL and bad repository name: usage errors.
    let mut c = admin.cmd(["snapshots"]);
    c.env("BRR_SERVER", "http://backup.example.net");
    crate::common::run(&mut c).expect_error(2);
    let mut c = admin.cmd(["snapshots"]);
    c.env("BRR_REPO", "Not_A_Name");
    crate::common::run(&mut c).expect_error(2);

    // Append-only repository: backups work, forgetting is refused with 24.
    admin.login(&alpha.admin_email);
    let mut args: Vec<&str> = vec!["init", "--append-only"];
    args.extend(crate::common::CHEAP_KDF);
    admin.run(args).expect_code(0);
    let src = tmp.path().join("src");
    write_random(&src.join("a.bin"), 100_000, 1);
    let snap = backup(&admin, &src)["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.run(["forget", &snap]).expect_error(24);
    assert_eq!(admin.json(["snapshots"]).as_array().unwrap().len(), 1);

    // The provider limits Alpha to one snapshot: the next backup is refused with 23.
    let root = brrd.provider_admin("root@provider.example");
    brrd.call(
        Some(&root),
        brr_client::Method::PUT,
        &format!("/api/v1/companies/{}/quota", alpha.id),
        serde_json::json!({"max_snapshots": 1}),
    );
    write_random(&src.join("b.bin"), 100_000, 2);
    let mut c = admin.cmd(["backup"]);
    c.arg(&src);
    let run = crate::common::run(&mut c).expect_error(23);
    assert!(run.stderr.contains("quota exceeded"), "{run}");
    assert_eq!(admin.json(["snapshots"]).as_array().unwrap().len(), 1);

    // Logout removes the session; the next command says "not logged in".
    admin.run(["logout"]).expect_code(0);
    admin.run(["snapshots"]).expect_error(20);
}
