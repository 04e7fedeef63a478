//! Errors: documented exit codes, one line on standard error, never a panic.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::common::{CHEAP_KDF, Repo, Run, brr, brr_at, is_root, run, scratch, write};

#[test]
fn wrong_password_missing_repository_init_twice() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));

    let wrong = run(repo
        .cmd(["snapshots"])
        .env("BRR_PASSWORD", "not the password"))
    .expect_error(11);
    assert!(wrong.stderr.contains("BRR-E003"), "{wrong}");
    let pwfile = tmp.path().join("pw");
    write(&pwfile, b"also wrong\n");
    run(repo
        .cmd(["check"])
        .env_remove("BRR_PASSWORD")
        .arg("--password-file")
        .arg(&pwfile))
    .expect_error(11);
    run(repo
        .cmd(["check"])
        .env_remove("BRR_PASSWORD")
        .env("BRR_PASSWORD_FILE", &pwfile))
    .expect_error(11);
    // The right password from a file (first line only) works.
    write(
        &pwfile,
        format!("{}\nsecond line ignored\n", crate::common::PASSWORD).as_bytes(),
    );
    run(repo
        .cmd(["snapshots"])
        .env_remove("BRR_PASSWORD")
        .arg("--password-file")
        .arg(&pwfile))
    .expect_code(0);

    // No repository at the location → 10, for every command that opens one.
    let missing = Repo::at(&tmp.path().join("nothing-here"));
    for args in [
        &["snapshots"][..],
        &["check"],
        &["ls", "latest"],
        &["stats"],
        &["key", "list"],
    ] {
        let r = missing.run(args).expect_error(10);
        assert!(r.stderr.contains("BRR-E001"), "{r}");
    }
    missing
        .run(["backup", tmp.path().to_str().unwrap()])
        .expect_error(10);

    // init twice → 10; the first repository still opens.
    let mut args = vec!["init"];
    args.extend(CHEAP_KDF);
    let again = repo.run(&args).expect_error(10);
    assert!(again.stderr.contains("BRR-E002"), "{again}");
    repo.ok(["snapshots"]);

    // No password at all and no terminal → usage error, not a hang.
    run(repo.cmd(["snapshots"]).env_remove("BRR_PASSWORD")).expect_error(2);
}

#[test]
fn usage_errors_exit_2() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));
    // Bad flags and arguments, caught by the parser.
    repo.run(["snapshots", "--no-such-flag"]).expect_error(2);
    repo.run(["no-such-command"]).expect_error(2);
    repo.run(["backup"]).expect_error(2);
    repo.run(["check", "--read-data=maybe"]).expect_error(2);
    repo.run(["forget", "--keep-last", "many"]).expect_error(2);
    // Missing --repo (and no BRR_REPO).
    let r = run(brr().args(["snapshots"])).expect_error(2);
    assert!(r.stderr.contains("--repo"), "{r}");
    run(brr().args(["backup", tmp.path().to_str().unwrap()])).expect_error(2);
    // Invalid values found after parsing.
    repo.run(["forget"]).expect_error(2);
    repo.run(["prune", "--max-unused-percent", "150"])
        .expect_error(2);
    repo.run([
        "backup",
        "--compression",
        "gzip",
        tmp.path().to_str().unwrap(),
    ])
    .expect_error(2);
    let mut init = vec!["init", "--kdf-memory-mib", "1"];
    init.extend(&CHEAP_KDF[2..]);
    Repo::at(&tmp.path().join("repo2"))
        .run(&init)
        .expect_error(2);
    // BRR_REPO works in place of --repo.
    run(brr().arg("snapshots").env("BRR_REPO", &repo.dir)).expect_code(0);
    // Help and version are not errors.
    let help = run(brr().arg("--help")).expect_code(0);
    assert!(help.stdout.contains("EXIT CODES"), "{help}");
    run(brr().arg("--version")).expect_code(0);
}

/// Makes `dir` and everything below it belong to `uid`.
fn chown_tree(dir: &Path, uid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(dir).unwrap().is_dir() {
        for e in fs::read_dir(dir).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

#[test]
fn unreadable_file_is_skipped_and_reported_with_exit_3() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    write(&src.join("readable"), b"fine\n");
    write(&src.join("sub/also-readable"), b"fine too\n");
    write(&src.join("sub/secret"), b"you cannot read me\n");
    fs::create_dir_all(src.join("closed-dir")).unwrap();
    write(&src.join("closed-dir/inside"), b"hidden\n");
    let repo_dir = tmp.path().join("repo");

    // Root reads everything; run brr as an unprivileged user instead, on files it owns except the secrets.
    // That user may not reach the build folder (a clone in a private temporary folder), so it runs a
    // copy of the binary inside the scratch folder.
    const NOBODY: u32 = 65_534;
    let program = if is_root() {
        let copy = tmp.path().join("bin/brr");
        fs::create_dir_all(tmp.path().join("bin")).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_brr"), &copy).unwrap();
        copy
    } else {
        Path::new(env!("CARGO_BIN_EXE_brr")).to_path_buf()
    };
    let user_cmd = |args: &[&str]| {
        let mut cmd = brr_at(&program);
        cmd.arg("--repo").arg(&repo_dir).args(args);
        if is_root() {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        cmd
    };
    if is_root() {
        chown_tree(tmp.path(), NOBODY);
        std::os::unix::fs::lchown(src.join("sub/secret"), Some(0), Some(0)).unwrap();
        std::os::unix::fs::lchown(src.join("closed-dir"), Some(0), Some(0)).unwrap();
    }
    fs::set_permissions(src.join("sub/secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(src.join("closed-dir"), fs::Permissions::from_mode(0o000)).unwrap();

    let mut init = user_cmd(&["init"]);
    init.args(CHEAP_KDF);
    run(&mut init).expect_code(0);

    let mut backup = user_cmd(&["--json", "backup"]);
    backup.arg(&src);
    let b: Run = run(&mut backup).expect_code(3);
    let v = b.json();
    let errors: Vec<&str> = v["summary"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("sub/secret")),
        "secret not named: {b}"
    );
    assert!(
        errors.iter().any(|e| e.contains("closed-dir")),
        "closed dir not named: {b}"
    );
    assert_eq!(errors.len(), 2, "{b}");
    assert_eq!(v["summary"]["files_new"].as_u64(), Some(2), "{b}");

    // The text summary names it too, and the snapshot exists with the readable files.
    let mut again = user_cmd(&["backup", "--force"]);
    again.arg(&src);
    let t = run(&mut again).expect_code(3);
    assert!(t.stdout.contains("sub/secret"), "{t}");
    let mut ls = user_cmd(&["ls", "latest"]);
    let l = run(&mut ls).expect_code(0);
    assert!(
        l.stdout.lines().any(|p| p.ends_with("/sub/also-readable")),
        "{l}"
    );
    assert!(!l.stdout.lines().any(|p| p.ends_with("/sub/secret")), "{l}");

    // Put permissions back so the temporary directory can be removed.
    fs::set_permissions(src.join("closed-dir"), fs::Permissions::from_mode(0o755)).unwrap();
}

fn lock_json(kind: &str, host: &str, pid: u32) -> String {
    format!(
        r#"{{"kind":"{kind}","purpose":"prune","hostname":"{host}","pid":{pid},"username":"alice","created":"2026-11-23T10:00:00Z"}}"#
    )
}

#[test]
fn locks_block_prune_with_exit_13_until_unlocked() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));
    write(&tmp.path().join("src/file"), b"data\n");
    repo.backup(&[&tmp.path().join("src")]);

    // An exclusive lock of another host: prune refuses (13) and names the holder; backups go on.
    let other = repo.dir.join("locks/0123456789abcdef0123456789abcdef");
    write(
        &other,
        lock_json("exclusive", "other-host.example", 4242).as_bytes(),
    );
    let r = repo.run(["prune"]).expect_error(13);
    assert!(
        r.stderr.contains("other-host.example") && r.stderr.contains("BRR-E007"),
        "{r}"
    );
    repo.backup(&[&tmp.path().join("src")]);
    repo.ok(["check"]);
    // `unlock` keeps it (another host's process cannot be proven gone), `unlock --all` removes it.
    let u = repo.json(["unlock"]);
    assert_eq!(u["removed"].as_array().map(Vec::len), Some(0), "{u:#}");
    assert!(other.exists());
    let u = repo.json(["unlock", "--all"]);
    assert_eq!(u["removed"].as_array().map(Vec::len), Some(1), "{u:#}");
    repo.ok(["prune"]);

    // A lock of this host whose process is gone is stale: prune removes it by itself.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let stale = repo.dir.join("locks/fedcba9876543210fedcba9876543210");
    write(&stale, lock_json("exclusive", &host, dead).as_bytes());
    repo.ok(["prune"]);
    assert!(!stale.exists());

    // An unreadable lock file is a warning for check, not damage.
    let garbage = repo.dir.join("locks/00000000000000000000000000000000");
    write(&garbage, b"not json");
    let c = repo.ok(["check"]);
    assert!(c.stdout.contains("warning:"), "{c}");
    repo.ok(["unlock", "--all"]);
}
