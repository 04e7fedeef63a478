//! The repository store under stress and misconfiguration: quotas exact under concurrent requests,
//! a store that refuses the server's credentials or has no bucket, failed backups counted and
//! audited, retention planned from the database's record.

use std::sync::atomic::AtomicBool;

use brr_core::retention::RetentionPolicy;
use brr_storage::FileKind;
use brrd_server::service::scheduler::run_due;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::access::lock_json;
use crate::common::{Setup, Store, TestServer, backends, start_server, store_setups};
use crate::maintenance::{
    build, day, expected_keep, no_scheduler, put_retention, row, stored_snapshots, upload_in_order,
};
use crate::repos::{Tenant, local_files, tenant, upload_all};

async fn provider_admin(t: &TestServer) -> String {
    t.staff(
        "root@provider.example",
        brr_api::identity::Role::ProviderAdmin,
    )
    .await
}

async fn set_quota(t: &TestServer, pa: &str, company: &str, body: Value) {
    let (s, q) = t
        .call(
            Method::PUT,
            &format!("/api/v1/companies/{company}/quota"),
            Some(pa),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
}

async fn metrics(t: &TestServer) -> String {
    reqwest::get(format!("http://{}/metrics", t.running.ops_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn usage(t: &TestServer, who: &Tenant) -> Value {
    let (s, u) = t
        .get(
            &format!("/api/v1/companies/{}/usage", who.company),
            &who.admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    u
}

#[tokio::test]
async fn concurrent_enrolments_never_pass_the_agent_quota() {
    for backend in backends() {
        let t = start_server(&backend, |_| {}).await;
        // The tenant has one agent already: a limit of 4 leaves 3 places for 8 machines at once.
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let pa = provider_admin(&t).await;
        set_quota(&t, &pa, &a.company, json!({"max_agents": 4})).await;
        let (s, k) = t
            .post(
                &format!("/api/v1/companies/{}/api-keys", a.company),
                Some(&a.admin),
                json!({"name": "fleet"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let key = k["secret"].as_str().unwrap().to_string();
        let calls = (0..8).map(|i| {
            t.post(
                "/api/v1/agents/enroll",
                Some(&key),
                json!({"name": format!("machine-{i}")}),
            )
        });
        let answers = join_all(calls).await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 3, "{answers:?}");
        for (s, b) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!(*s, StatusCode::FORBIDDEN, "{b}");
            assert_eq!(b["error"]["code"], "quota_exceeded", "{b}");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("4 of 4 agents"),
                "{b}"
            );
        }
        assert_eq!(usage(&t, &a).await["agents"], 4);
        // Another company is not limited by A's quota.
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        assert_eq!(usage(&t, &b).await["agents"], 1);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn concurrent_snapshots_never_pass_the_snapshot_quota() {
    let dir = tempfile::tempdir().unwrap();
    let plan: Vec<(&str, _)> = (0..8).map(|i| ("h1", day(1, i))).collect();
    let (local, snaps) = build(dir.path(), &plan);
    let mut files = local_files(&local);
    files.insert(FileKind::Snapshot, Vec::new());
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(&t, "a", json!({"name": "r0"})).await;
        // Four repositories of the company, each holding every pack: snapshot uploads into different
        // repositories share no per-repository exclusion, only the company's quota.
        let mut repos = vec![a.repo.clone()];
        for i in 1..4 {
            let (s, r) = t
                .post(
                    "/api/v1/repos",
                    Some(&a.admin),
                    json!({"name": format!("r{i}")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
            repos.push(r["id"].as_str().unwrap().to_string());
        }
        for repo in &repos {
            let who = Tenant {
                company: a.company.clone(),
                admin: a.admin.clone(),
                agent: a.agent.clone(),
                repo: repo.clone(),
            };
            upload_all(&t, &who, &files, 0).await;
        }
        let pa = provider_admin(&t).await;
        set_quota(&t, &pa, &a.company, json!({"max_snapshots": 3})).await;
        let uploads = snaps.iter().enumerate().map(|(i, s)| {
            t.put_file(
                &a.agent,
                &repos[i % repos.len()],
                FileKind::Snapshot,
                &s.id,
                &s.bytes,
            )
        });
        let answers = join_all(uploads).await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 3, "{answers:?}");
        for (s, e) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!(*s, StatusCode::FORBIDDEN, "{e}");
            assert!(
                e.starts_with("quota_exceeded snapshot quota exceeded"),
                "{e}"
            );
        }
        assert_eq!(usage(&t, &a).await["snapshots"], 3);
        // Refused uploads left nothing that counts: lifting the limit by one admits exactly one more.
        t.running.service.maintenance.background_idle().await;
        set_quota(&t, &pa, &a.company, json!({"max_snapshots": 4})).await;
        let refused: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, (s, _))| *s != StatusCode::CREATED)
            .map(|(i, _)| i)
            .collect();
        let mut admitted = 0;
        for i in refused {
            let (s, _) = t
                .put_file(
                    &a.agent,
                    &repos[i % repos.len()],
                    FileKind::Snapshot,
                    &snaps[i].id,
                    &snaps[i].bytes,
                )
                .await;
            admitted += usize::from(s == StatusCode::CREATED);
        }
        assert_eq!(admitted, 1);
        assert_eq!(usage(&t, &a).await["snapshots"], 4);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn a_store_without_its_bucket_answers_503_saying_so() {
    let Some(Store::S3(location)) = crate::common::s3_store() else {
        return;
    };
    let (endpoint, _bucket) = location.trim_start_matches("s3:").rsplit_once('/').unwrap();
    let missing = format!("s3:{endpoint}/brr-no-such-bucket");
    for db in backends() {
        let t = start_server(
            Setup {
                db,
                store: Store::S3(missing.clone()),
            },
            |_| {},
        )
        .await;
        // Creating the repository only looks for a config file (a HEAD, which cannot tell a missing
        // bucket from a missing file); its first upload and listing say what is wrong.
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let (s, e) = t
            .put_file(&a.admin, &a.repo, FileKind::Lock, "0a", &lock_json())
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
        assert!(
            e.starts_with("store_unavailable the repository store refuses"),
            "{e}"
        );
        assert!(e.contains("bucket does not exist"), "{e}");
        for secret in [endpoint, "brr-no-such-bucket", "NoSuchBucket"] {
            assert!(!e.contains(secret), "{e}");
        }
        let (s, v) = t
            .get(&format!("/api/v1/repos/{}/files/locks", a.repo), &a.agent)
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["error"]["code"], "store_unavailable");
        t.running.shutdown().await;
    }
}

/// Set in the child process of [`a_store_that_refuses_the_secret_answers_503_saying_so`]: the S3
/// location whose credentials (`AWS_SECRET_ACCESS_KEY`, changed for the child only) are wrong.
const WRONG_SECRET_CHILD: &str = "BRR_TEST_WRONG_SECRET_STORE";

/// brrd reads S3 credentials from its environment, which a test cannot change for itself: the test
/// runs itself again as a child process with a wrong `AWS_SECRET_ACCESS_KEY`, where an in-process
/// server on the real S3 service meets the refusal at run time.
#[tokio::test]
async fn a_store_that_refuses_the_secret_answers_503_saying_so() {
    const NAME: &str = "robustness::a_store_that_refuses_the_secret_answers_503_saying_so";
    if let Some(location) = std::env::var_os(WRONG_SECRET_CHILD) {
        refused_secret_at_run_time(&location.to_string_lossy()).await;
        return;
    }
    let Some(Store::S3(location)) = crate::common::s3_store() else {
        return;
    };
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRONG_SECRET_CHILD, &location)
        .env("AWS_SECRET_ACCESS_KEY", "0".repeat(64))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
}

async fn refused_secret_at_run_time(location: &str) {
    let endpoint = location
        .trim_start_matches("s3:")
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string();
    for db in backends() {
        let t = start_server(
            Setup {
                db,
                store: Store::S3(location.to_string()),
            },
            |_| {},
        )
        .await;
        t.register_company("admin@a.example", "Company a", "DE-FRA")
            .await;
        let admin = t.login("admin@a.example").await;
        // Creating a repository looks for its config in the store: refused, so nothing is recorded.
        let (s, v) = t
            .post("/api/v1/repos", Some(&admin), json!({"name": "main"}))
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["error"]["code"], "store_unavailable");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("refuses the server's requests (access denied"),
            "{m}"
        );
        for secret in [endpoint.as_str(), "PermissionDenied", &"0".repeat(64)] {
            assert!(!m.contains(secret), "{m}");
        }
        let (s, list) = t.get("/api/v1/repos", &admin).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list, json!([]));
        let m = metrics(&t).await;
        assert!(
            m.contains("brrd_http_responses_total{class=\"5xx\"} 1\n"),
            "{m}"
        );
        t.running.shutdown().await;
    }
}

fn failures(m: &str, reason: &str) -> u64 {
    let prefix = format!("brrd_backups_failed_total{{reason=\"{reason}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {reason} in {m}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_backups_are_counted_audited_and_shown_in_usage() {
    let dir = tempfile::tempdir().unwrap();
    let (local, snaps) = build(dir.path(), &[("h1", day(1, 10))]);
    let mut files = local_files(&local);
    files.insert(FileKind::Snapshot, Vec::new());
    let snap = &snaps[0];
    // A snapshot of another repository: its blobs are in no pack of the server's.
    let other = tempfile::tempdir().unwrap();
    let (_, foreign) = build(other.path(), &[("h9", day(2, 10))]);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        upload_all(&t, &a, &files, 0).await;
        let lock = |host: &str| {
            String::from_utf8(lock_json())
                .unwrap()
                .replace("\"hostname\":\"h\"", &format!("\"hostname\":\"{host}\""))
                .into_bytes()
        };
        let put_lock = |name: &'static str, host: &str| {
            let body = lock(host);
            let t = &t;
            let a = &a;
            async move {
                let (s, e) = t
                    .put_file(&a.agent, &a.repo, FileKind::Lock, name, &body)
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{e}");
            }
        };
        let delete_lock = |name: &'static str| {
            let t = &t;
            let a = &a;
            async move {
                let (s, v) = t.delete_file(&a.agent, &a.repo, FileKind::Lock, name).await;
                assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
            }
        };
        // 1. A backup that commits its snapshot, then releases its lock: no failure. Refreshing the
        //    lock does not start another session.
        put_lock("01", "web-1").await;
        t.clock.advance_secs(1);
        put_lock("01", "web-1").await;
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, &snap.id, &snap.bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        delete_lock("01").await;
        t.clock.advance_secs(1);
        // A lock that is not a backup's (prune) is no session.
        let prune = String::from_utf8(lock_json())
            .unwrap()
            .replace("shared", "exclusive")
            .replace("\"backup\"", "\"prune\"");
        let (s, e) = t
            .put_file(&a.admin, &a.repo, FileKind::Lock, "0f", prune.as_bytes())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, _) = t.delete_file(&a.admin, &a.repo, FileKind::Lock, "0f").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        // 2. A backup that releases its lock without a snapshot.
        put_lock("02", "web-2").await;
        t.clock.advance_secs(1);
        delete_lock("02").await;
        t.clock.advance_secs(1);
        // 3. A backup whose snapshot is refused (its blobs are in no pack of this repository), then
        //    releases its lock: one failure, not two.
        put_lock("03", "web-3").await;
        t.clock.advance_secs(1);
        let (s, e) = t
            .put_file(
                &a.agent,
                &a.repo,
                FileKind::Snapshot,
                &foreign[0].id,
                &foreign[0].bytes,
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        put_lock("04", "web-4").await;
        delete_lock("03").await;
        let m = metrics(&t).await;
        assert_eq!(failures(&m, "ended_without_snapshot"), 1, "{m}");
        assert_eq!(failures(&m, "missing_blobs"), 1, "{m}");
        assert_eq!(failures(&m, "expired"), 0, "{m}");
        assert_eq!(failures(&m, "quota_exceeded"), 0, "{m}");
        // 4. A backup whose lock is no longer refreshed: the scheduler's pass ends it once
        //    session_timeout_secs have passed (and not before).
        let svc = t.running.service.clone();
        let stop = AtomicBool::new(false);
        t.clock.advance_secs(299);
        assert_eq!(run_due(&svc, &stop).await.unwrap().sessions_expired, 0);
        t.clock.advance_secs(900);
        assert_eq!(run_due(&svc, &stop).await.unwrap().sessions_expired, 1);
        assert_eq!(run_due(&svc, &stop).await.unwrap().sessions_expired, 0);
        let m = metrics(&t).await;
        assert_eq!(failures(&m, "expired"), 1, "{m}");
        assert_eq!(failures(&m, "ended_without_snapshot"), 1, "{m}");
        // Audited as system, with reason, principal and host.
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'repo.backup_failed' AND actor = 'system' AND company_id = $1",
        )
        .bind(&a.company)
        .fetch_one(&svc.db.pool)
        .await
        .unwrap();
        assert_eq!(n, 3);
        // The company's usage names the last one; company B has none and cannot read A's.
        let u = usage(&t, &a).await;
        let last = &u["last_failed_backup"];
        assert_eq!(last["reason"], "expired", "{u}");
        assert_eq!(last["hostname"], "web-4", "{u}");
        assert_eq!(last["repo_id"], a.repo.as_str(), "{u}");
        assert!(last["principal"].as_str().unwrap().starts_with("agent:"));
        assert_eq!(usage(&t, &b).await["last_failed_backup"], Value::Null);
        let (s, _) = t
            .get(&format!("/api/v1/companies/{}/usage", a.company), &b.admin)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn retention_plans_from_the_record_without_reading_snapshot_files() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [
        ("h1", day(1, 10)),
        ("h1", day(2, 10)),
        ("h1", day(3, 10)),
        ("h1", day(3, 12)),
    ];
    let (local, snaps) = build(dir.path(), &plan);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        upload_in_order(&t, &a, &local, &snaps).await;
        // Every snapshot file in the store is overwritten with bytes that do not decode: a plan
        // read from the files would see nothing to keep or delete.
        let svc = t.running.service.clone();
        let store = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        for s in &snaps {
            store
                .write(FileKind::Snapshot, &s.id, b"not a snapshot")
                .unwrap();
        }
        let (s, v) = put_retention(&t, &a.admin, &a.repo, json!({"keep_daily": 2})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let report = svc.apply_retention(&row(&t, &a.repo).await).await.unwrap();
        let policy = RetentionPolicy {
            keep_daily: Some(2),
            ..Default::default()
        };
        let expected = expected_keep(&snaps.iter().collect::<Vec<_>>(), &policy);
        assert_eq!(expected.len(), 2);
        assert_eq!(report.deleted.len(), 2, "{report:?}");
        assert_eq!(report.kept, 2, "{report:?}");
        assert!(report.unreadable.is_empty(), "{report:?}");
        assert_eq!(stored_snapshots(&t, &a).await, expected);
        let (_, r) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(r["usage"]["snapshots"], 2, "{r}");
        t.running.shutdown().await;
    }
}
