//! The `brrd` binary end to end: serve, bootstrap, audit verify.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

fn brrd(data: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("brrd").unwrap();
    c.arg("--data").arg(data).env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("BRRD_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn serve_bootstrap_and_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // serve: comes up with no set-up, generates its certificate, answers health checks.
    let mut child = brrd(data)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut ops = None;
    for _ in 0..200 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.strip_prefix("brrd: https://") {
            ops = rest
                .split("ops http://")
                .nth(1)
                .map(|s| s.trim_end_matches([')', '\n']).to_string());
            break;
        }
    }
    let ops = ops.expect("brrd serve did not report its listeners");
    let mut s = std::net::TcpStream::connect(&ops).unwrap();
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
    assert!(data.join("tls/cert.pem").exists() && data.join("keys/jwt-ed25519.pk8").exists());
    child.kill().unwrap();
    child.wait().unwrap();

    // bootstrap: once.
    let out = brrd(data)
        .args(["admin", "bootstrap", "--email", "root@provider.example"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("setup code for root@provider.example: ")
    );
    let again = brrd(data)
        .args(["admin", "bootstrap", "--email", "other@provider.example"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("error[conflict]"));
    let staff = brrd(data)
        .args([
            "admin",
            "add-staff",
            "--email",
            "so@provider.example",
            "--role",
            "security_officer",
        ])
        .output()
        .unwrap();
    assert!(staff.status.success());

    // audit verify: clean, then tampered.
    let ok = brrd(data).args(["audit", "verify"]).output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("brrd.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'system' WHERE seq = 1")
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let bad = brrd(data).args(["audit", "verify"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("entry 1: content was altered"));
}

#[test]
fn bad_configuration_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = brrd(dir.path())
        .env("BRRD_PIN_TTL_SECS", "3600")
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[config]"));
}

#[test]
fn repo_reindex_reads_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // The first run creates the database; there is nothing to reindex yet.
    let out = brrd(data)
        .args(["repo", "reindex", "--all"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let (company, repo) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("brrd.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO companies (id, name, site, visibility, status, created_at) VALUES ($1, 'C', 'DE-FRA', 'private', 'active', 0)")
            .bind(company)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO repositories (id, company_id, name, append_only, append_only_ends_at, delete_delay_secs, created_at, created_by) VALUES ($1, $2, 'main', 0, NULL, 0, 0, 'user:x')")
            .bind(repo)
            .bind(company)
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let root = data.join("repos").join(company).join(repo);
    std::fs::create_dir_all(root.join("locks")).unwrap();
    std::fs::create_dir_all(root.join("snapshots")).unwrap();
    std::fs::write(
        root.join("locks/00aa"),
        br#"{"kind":"shared","purpose":"backup","hostname":"h","pid":1,"username":"u","created":"2026-11-23T10:00:00+01:00"}"#,
    )
    .unwrap();
    let garbage = "ab".repeat(32);
    std::fs::write(root.join("snapshots").join(&garbage), b"not a snapshot").unwrap();
    let out = brrd(data)
        .args(["repo", "reindex", "--repo", repo])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"], 1, "{report}");
    assert!(
        report["unreadable"][0].as_str().unwrap().contains(&garbage),
        "{report}"
    );
    std::fs::remove_file(root.join("snapshots").join(&garbage)).unwrap();
    let out = brrd(data)
        .args(["repo", "reindex", "--all"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // verify: a folder with a lock but no config is not a repository yet.
    let out = brrd(data)
        .args(["repo", "verify", "--repo", repo])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[conflict]"));
    let missing = brrd(data)
        .args(["repo", "reindex", "--repo", company])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("error[not_found]"));
}

/// `brrd serve` with its store on the test S3 server (`.ci/s3.sh`) and the given key: a refused
/// secret or a missing bucket stops it at start-up with exit status 3 and one line naming the store
/// and the problem, never the secret.
#[test]
fn serve_refuses_to_start_on_a_store_that_refuses_it() {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("BRR_TEST_S3_ENDPOINT") else {
        eprintln!("notice: BRR_TEST_S3_ENDPOINT unset, skipping the S3 start-up check");
        assert!(var("BRR_REQUIRE_S3").is_none(), "BRR_REQUIRE_S3 is set");
        return;
    };
    let bucket = var("BRR_TEST_S3_BUCKET").unwrap();
    let key = var("BRR_TEST_S3_ACCESS_KEY").unwrap();
    let secret = var("BRR_TEST_S3_SECRET_KEY").unwrap();
    let wrong = "f".repeat(64);
    for (bucket, secret, needle) in [
        (bucket.as_str(), wrong.as_str(), "access denied"),
        (
            "brr-no-such-bucket",
            secret.as_str(),
            "bucket does not exist",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("s3:{endpoint}/{bucket}/start-check");
        let out = brrd(dir.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--ops-listen",
                "127.0.0.1:0",
            ])
            .env("BRRD_STORE__URL", &url)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", var("BRR_TEST_S3_REGION").unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        let line = err
            .lines()
            .find(|l| l.starts_with("brrd: error[store_refused]"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(line.contains(&url), "{line}");
        assert!(line.contains(needle), "{line}");
        assert!(!err.contains(secret), "{err}");
    }
}
