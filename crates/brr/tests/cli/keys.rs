//! Key management: more passwords, recovery key, password change, removal rules, RSA escrow.

use std::path::Path;
use std::process::Command;

use crate::common::{PASSWORD, Repo, run, scratch, write};

fn slots(repo: &Repo, password: &str) -> Vec<serde_json::Value> {
    let r = run(repo
        .cmd(["--json", "key", "list"])
        .env("BRR_PASSWORD", password))
    .expect_code(0);
    r.json().as_array().unwrap().clone()
}

#[test]
fn passwords_recovery_key_passwd_and_remove() {
    let tmp = scratch();
    let repo = Repo::init(&tmp.path().join("repo"));
    write(&tmp.path().join("src/file"), b"data\n");
    repo.backup(&[&tmp.path().join("src")]);

    // A second password.
    run(repo
        .cmd(["key", "add", "--label", "second"])
        .env("BRR_NEW_PASSWORD", "second password"))
    .expect_code(0);
    run(repo
        .cmd(["snapshots"])
        .env("BRR_PASSWORD", "second password"))
    .expect_code(0);
    let pwfile = tmp.path().join("new-password");
    write(&pwfile, b"third password\n");
    repo.ok([
        Path::new("key").as_os_str(),
        "add".as_ref(),
        "--new-password-file".as_ref(),
        pwfile.as_os_str(),
    ]);
    run(repo
        .cmd(["ls", "latest"])
        .env("BRR_PASSWORD", "third password"))
    .expect_code(0);

    // key list --json: three slots, the one in use marked.
    let list = slots(&repo, "second password");
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(
        list.iter()
            .filter(|k| k["current"].as_bool() == Some(true))
            .count(),
        1,
        "{list:?}"
    );
    let second_id = list
        .iter()
        .find(|k| k["current"].as_bool() == Some(true))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        list.iter().any(|k| k["slot"]["label"] == "second"),
        "{list:?}"
    );

    // A recovery key opens the repository without a password.
    let rk = repo.json(["key", "recovery"]);
    let key = rk["recovery_key"].as_str().unwrap();
    let rkfile = tmp.path().join("recovery");
    write(&rkfile, format!("{key}\n").as_bytes());
    run(repo
        .cmd(["snapshots"])
        .env_remove("BRR_PASSWORD")
        .arg("--recovery-key-file")
        .arg(&rkfile))
    .expect_code(0);
    let bad = tmp.path().join("bad-recovery");
    let mut wrong = key.to_string().into_bytes();
    let i = wrong.iter().position(|c| c.is_ascii_hexdigit()).unwrap();
    // The key is hex, read case-insensitively: change the digit itself.
    wrong[i] = if wrong[i] == b'0' { b'1' } else { b'0' };
    write(&bad, &wrong);
    run(repo
        .cmd(["snapshots"])
        .env_remove("BRR_PASSWORD")
        .arg("--recovery-key-file")
        .arg(&bad))
    .expect_error(11);
    // Printed form: upper case works as well.
    write(&bad, key.to_uppercase().as_bytes());
    run(repo
        .cmd(["snapshots"])
        .env_remove("BRR_PASSWORD")
        .arg("--recovery-key-file")
        .arg(&bad))
    .expect_code(0);
    assert_eq!(slots(&repo, PASSWORD).len(), 4);

    // key passwd: the old password stops working, the new one works, others are untouched.
    run(repo
        .cmd(["key", "passwd"])
        .env("BRR_NEW_PASSWORD", "changed password"))
    .expect_code(0);
    repo.run(["snapshots"]).expect_error(11);
    run(repo
        .cmd(["snapshots"])
        .env("BRR_PASSWORD", "changed password"))
    .expect_code(0);
    run(repo
        .cmd(["snapshots"])
        .env("BRR_PASSWORD", "second password"))
    .expect_code(0);
    assert_eq!(slots(&repo, "changed password").len(), 4);

    // key remove: never the slot in use; others by ID prefix.
    let list = slots(&repo, "changed password");
    let current = list
        .iter()
        .find(|k| k["current"].as_bool() == Some(true))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = run(repo
        .cmd(["key", "remove", &current[..12]])
        .env("BRR_PASSWORD", "changed password"));
    assert_ne!(r.code, 0, "removing the slot in use must fail:\n{r}");
    crate::common::assert_one_line_error(&r);
    crate::common::assert_no_panic(&r);
    run(repo
        .cmd(["key", "remove", &second_id[..12]])
        .env("BRR_PASSWORD", "changed password"))
    .expect_code(0);
    run(repo
        .cmd(["snapshots"])
        .env("BRR_PASSWORD", "second password"))
    .expect_error(11);
    // Remove everything else, leaving only the slot in use; it can still not be removed (it is the last).
    for k in slots(&repo, "changed password") {
        let id = k["id"].as_str().unwrap();
        if id != current {
            run(repo
                .cmd(["key", "remove", id])
                .env("BRR_PASSWORD", "changed password"))
            .expect_code(0);
        }
    }
    assert_eq!(slots(&repo, "changed password").len(), 1);
    run(repo
        .cmd(["snapshots"])
        .env_remove("BRR_PASSWORD")
        .arg("--recovery-key-file")
        .arg(&rkfile))
    .expect_error(11);
    let r = run(repo
        .cmd(["key", "remove", &current])
        .env("BRR_PASSWORD", "changed password"));
    assert_ne!(r.code, 0, "removing the last slot must fail:\n{r}");
    crate::common::assert_one_line_error(&r);
    assert_eq!(slots(&repo, "changed password").len(), 1);
    // No such slot → error, not a panic.
    let r = run(repo
        .cmd(["key", "remove", "ffffffffffff"])
        .env("BRR_PASSWORD", "changed password"));
    assert_ne!(r.code, 0, "{r}");
    crate::common::assert_one_line_error(&r);
}

fn openssl(args: &[&str], dir: &Path) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn rsa_escrow_key_opens_the_repository() {
    let tmp = scratch();
    let d = tmp.path();
    if !openssl(&["version"], d) {
        eprintln!("note: openssl is not installed; skipping the RSA escrow test (CI installs it)");
        return;
    }
    assert!(openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "priv.pem"
        ],
        d
    ));
    assert!(openssl(
        &["pkey", "-in", "priv.pem", "-pubout", "-out", "pub.pem"],
        d
    ));
    let repo = Repo::init(&d.join("repo"));
    write(&d.join("src/file"), b"escrowed\n");
    repo.backup(&[&d.join("src")]);

    repo.ok([
        Path::new("key").as_os_str(),
        "escrow".as_ref(),
        d.join("pub.pem").as_os_str(),
    ]);
    let list = slots(&repo, PASSWORD);
    assert_eq!(list.len(), 2, "{list:?}");
    let open = |key: &Path| {
        run(repo
            .cmd(["ls", "latest"])
            .env_remove("BRR_PASSWORD")
            .arg("--rsa-private-key")
            .arg(key))
    };
    let r = open(&d.join("priv.pem")).expect_code(0);
    assert!(r.stdout.lines().any(|l| l.ends_with("/src/file")), "{r}");
    let t = d.join("restore");
    run(repo
        .cmd(["restore", "latest", "--verify", "--target"])
        .arg(&t)
        .env_remove("BRR_PASSWORD")
        .arg("--rsa-private-key")
        .arg(d.join("priv.pem")))
    .expect_code(0);
    assert_eq!(
        std::fs::read(crate::common::restored(&t, &d.join("src")).join("file")).unwrap(),
        b"escrowed\n"
    );

    // A public key is not a private key; a small key is refused for escrow.
    let r = open(&d.join("pub.pem"));
    assert!(r.code == 11 || r.code == 2, "{r}");
    crate::common::assert_one_line_error(&r);
    if openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "small.pem",
        ],
        d,
    ) && openssl(
        &[
            "pkey",
            "-in",
            "small.pem",
            "-pubout",
            "-out",
            "small-pub.pem",
        ],
        d,
    ) {
        repo.run([
            Path::new("key").as_os_str(),
            "escrow".as_ref(),
            d.join("small-pub.pem").as_os_str(),
        ])
        .expect_error(2);
    }
    // Another RSA key does not open it.
    if openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "other.pem",
        ],
        d,
    ) {
        open(&d.join("other.pem")).expect_error(11);
    }
}
