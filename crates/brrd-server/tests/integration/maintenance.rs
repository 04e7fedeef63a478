//! Server-side maintenance without the key, end to end over TLS: retention after each snapshot (per
//! source tag, compared with `brr_core::retention`), append-only marks deleted only after the delay by
//! the scheduler, GC after retention with a concurrent backup session (nothing referenced lost, the
//! repository checks clean with the key), stale sessions, and company scope.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use brr_core::keyslot::{KdfParams, Unlock};
use brr_core::retention::{RetentionItem, RetentionPolicy};
use brr_core::snapshot::parse_snapshot_public;
use brr_engine::backup::{BackupOptions, backup};
use brr_engine::check::{CheckOptions, check};
use brr_engine::{InitOptions, NoProgress, Repository};
use brr_storage::{FileKind, LocalBackend};
use brrd_server::service::repos::RepoRow;
use brrd_server::service::scheduler::run_due;
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use rand::RngCore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::access::lock_json;
use crate::common::{TestServer, start_server, store_setups};
use crate::repos::{Tenant, local_files, tenant, upload_all};

const PASSWORD: &[u8] = b"repository password";

/// One stored snapshot of the local repository.
#[derive(Debug, Clone)]
pub(crate) struct Snap {
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) time: DateTime<FixedOffset>,
    pub(crate) bytes: Vec<u8>,
}

/// A repository with one backup per `(host, time)`, each adding 300 kB of new random data and
/// dropping the previous backup's, so deleted snapshots leave packs nothing else references.
pub(crate) fn build(
    dir: &Path,
    plan: &[(&str, DateTime<FixedOffset>)],
) -> (Arc<LocalBackend>, Vec<Snap>) {
    build_sharing(dir, plan, 0)
}

/// [`build`], with a file of `shared` random bytes that every backup holds unchanged.
fn build_sharing(
    dir: &Path,
    plan: &[(&str, DateTime<FixedOffset>)],
    shared: usize,
) -> (Arc<LocalBackend>, Vec<Snap>) {
    let backend = Arc::new(LocalBackend::new(dir.join("repo")));
    let opts = InitOptions {
        kdf: KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        },
        pack_size: 1 << 20,
        ..InitOptions::default()
    };
    let repo = Arc::new(Repository::init(backend.clone(), PASSWORD, &opts).unwrap());
    let mut rng = rand::thread_rng();
    let mut common = vec![0u8; shared];
    rng.fill_bytes(&mut common);
    for (i, (host, time)) in plan.iter().enumerate() {
        let src = dir.join(format!("src-{host}"));
        if src.exists() {
            std::fs::remove_dir_all(&src).unwrap();
        }
        std::fs::create_dir_all(&src).unwrap();
        let mut data = vec![0u8; 300_000];
        rng.fill_bytes(&mut data);
        std::fs::write(src.join(format!("f{i}")), &data).unwrap();
        if shared > 0 {
            std::fs::write(src.join("shared"), &common).unwrap();
        }
        let b = BackupOptions {
            paths: vec![src],
            hostname: Some(host.to_string()),
            time: Some(*time),
            threads: Some(2),
            ..Default::default()
        };
        backup(&repo, &b, &NoProgress).unwrap();
    }
    let mut snaps: Vec<Snap> = local_files(&backend)[&FileKind::Snapshot]
        .iter()
        .map(|(id, bytes)| {
            let p = parse_snapshot_public(bytes).unwrap();
            Snap {
                id: id.clone(),
                source: p.header.source.clone(),
                time: p.header.time,
                bytes: bytes.clone(),
            }
        })
        .collect();
    snaps.sort_by_key(|s| s.time);
    (backend, snaps)
}

pub(crate) fn day(d: u32, h: u32) -> DateTime<FixedOffset> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0)
        .unwrap()
        .fixed_offset()
}

/// Uploads everything but the snapshots, then the snapshots in time order, waiting for the
/// retention each one starts.
pub(crate) async fn upload_in_order(
    t: &TestServer,
    who: &Tenant,
    backend: &LocalBackend,
    snaps: &[Snap],
) {
    let mut files = local_files(backend);
    files.insert(FileKind::Snapshot, Vec::new());
    upload_all(t, who, &files, 0).await;
    for s in snaps {
        let (st, e) = t
            .put_file(&who.agent, &who.repo, FileKind::Snapshot, &s.id, &s.bytes)
            .await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
        t.running.service.maintenance.background_idle().await;
    }
}

pub(crate) async fn stored_snapshots(t: &TestServer, who: &Tenant) -> BTreeSet<String> {
    let (s, v) = t
        .get(
            &format!("/api/v1/repos/{}/files/snapshots", who.repo),
            &who.agent,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// What `brr_core::retention` keeps of `snaps` (UTC periods).
pub(crate) fn expected_keep(snaps: &[&Snap], policy: &RetentionPolicy) -> BTreeSet<String> {
    let items: Vec<RetentionItem<String>> = snaps
        .iter()
        .map(|s| RetentionItem::new(s.id.clone(), s.time.with_timezone(&Utc).naive_utc()))
        .collect();
    policy
        .plan(&items)
        .unwrap()
        .keep
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

pub(crate) async fn put_retention(
    t: &TestServer,
    token: &str,
    repo: &str,
    body: Value,
) -> (StatusCode, Value) {
    t.call(
        reqwest::Method::PUT,
        &format!("/api/v1/repos/{repo}/retention"),
        Some(token),
        Some(body),
    )
    .await
}

async fn audit_count(t: &TestServer, action: &str, outcome: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND outcome = $2 AND actor = 'system'",
    )
    .bind(action)
    .bind(outcome)
    .fetch_one(&t.running.service.db.pool)
    .await
    .unwrap();
    n
}

pub(crate) async fn row(t: &TestServer, repo: &str) -> RepoRow {
    sqlx::query_as(
        "SELECT id, company_id, name, append_only, append_only_ends_at, delete_delay_secs, created_at, created_by FROM repositories WHERE id = $1",
    )
    .bind(repo)
    .fetch_one(&t.running.service.db.pool)
    .await
    .unwrap()
}

/// The scheduler is driven by the tests; tokens outlive the clock moves of a test.
pub(crate) fn no_scheduler(c: &mut brrd_server::Config) {
    c.maintenance.enabled = false;
    c.access_token_ttl_secs = 3600;
    // These tests collect right after uploading; the grace period has its own test.
    c.maintenance.pack_grace_secs = 0;
}

#[tokio::test]
async fn retention_after_upload_keeps_what_the_policy_says_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [
        ("h1", day(1, 10)),
        ("h2", day(1, 11)),
        ("h1", day(2, 10)),
        ("h2", day(2, 11)),
        ("h2", day(2, 15)),
        ("h1", day(3, 10)),
        ("h2", day(3, 11)),
        ("h1", day(4, 10)),
        ("h1", day(4, 12)),
    ];
    let (local, snaps) = build(dir.path(), &plan);
    let h2 = snaps[1].source.clone();
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let b = tenant(&t, "b", json!({"name": "main"})).await;

        // Validation: one-line 422s; roles; other companies see nothing.
        for (body, needle) in [
            (json!({}), "keeps nothing"),
            (json!({"keep_last": 0}), "keeps nothing"),
            (json!({"keep_last": 2, "grouping": "host"}), "grouping"),
            (json!({"keep_last": 2, "source": "H2"}), "source"),
            (json!({"keep_daily": 100_001}), "at most"),
        ] {
            let (s, v) = put_retention(&t, &a.admin, &a.repo, body.clone()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
            assert_eq!(v["error"]["code"], "bad_policy");
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains(needle) && !m.contains('\n'), "{m}");
        }
        let (s, _) = put_retention(&t, &a.agent, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "agents do not set retention");
        let (s, _) = put_retention(&t, &b.admin, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "company B cannot set A's retention"
        );
        let (s, _) = t
            .get(&format!("/api/v1/repos/{}/retention", a.repo), &b.admin)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&b.admin),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "company B cannot trigger A's GC");
        let (s, _) = t
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/repos/{}/retention", a.repo),
                Some(&b.admin),
                None,
            )
            .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "company B cannot remove A's retention"
        );
        let (s, _) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&a.agent),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // The repository keeps the last 2 per source; source h2 keeps one per day for 2 days.
        let (s, v) = put_retention(&t, &a.admin, "main", json!({"keep_last": 2})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) =
            put_retention(&t, &a.admin, "main", json!({"keep_daily": 2, "source": h2})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["policies"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["policies"][1]["source"], h2.as_str());
        upload_in_order(&t, &a, &local, &snaps).await;

        let mut expected = BTreeSet::new();
        let by_source: BTreeMap<&str, Vec<&Snap>> =
            snaps.iter().fold(BTreeMap::new(), |mut m, s| {
                m.entry(s.source.as_str()).or_default().push(s);
                m
            });
        for (source, group) in &by_source {
            let policy = if *source == h2 {
                RetentionPolicy {
                    keep_daily: Some(2),
                    ..Default::default()
                }
            } else {
                RetentionPolicy {
                    keep_last: Some(2),
                    ..Default::default()
                }
            };
            expected.extend(expected_keep(group, &policy));
        }
        assert_eq!(expected.len(), 4);
        assert_eq!(stored_snapshots(&t, &a).await, expected);
        // The database record follows the files; every deletion is audited as `system`.
        let (_, r) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(r["usage"]["snapshots"], 4, "{r}");
        assert_eq!(
            audit_count(&t, "repo.retention_delete", "success").await,
            (snaps.len() - 4) as i64
        );
        // Company B's repository of the same name is untouched by A's policy.
        let (_, v) = t
            .get(&format!("/api/v1/repos/{}/retention", b.repo), &b.admin)
            .await;
        assert_eq!(v["policies"], json!([]));
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn append_only_retention_marks_and_deletes_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [("h1", day(1, 10)), ("h1", day(2, 10)), ("h1", day(3, 10))];
    let (local, snaps) = build(dir.path(), &plan);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(
            &t,
            "a",
            json!({"name": "locked", "append_only": true, "delete_delay_secs": 3600}),
        )
        .await;
        let (s, v) = put_retention(&t, &a.admin, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        upload_in_order(&t, &a, &local, &snaps).await;
        // Selected, marked, nothing deleted yet.
        assert_eq!(stored_snapshots(&t, &a).await.len(), 3);
        assert_eq!(audit_count(&t, "repo.retention_mark", "success").await, 2);
        // Clients still cannot delete, nor collect garbage.
        for who in [&a.admin, &a.agent] {
            let (s, _) = t
                .delete_file(who, &a.repo, FileKind::Snapshot, &snaps[0].id)
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        }
        let (s, v) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&a.admin),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["error"]["code"], "append_only");

        // The scheduler, driven by the manual clock: before the delay nothing goes, after it the
        // marked snapshots are deleted and the garbage collected.
        let svc = t.running.service.clone();
        let stop = AtomicBool::new(false);
        t.clock.advance_secs(3000);
        let pass = run_due(&svc, &stop).await.unwrap();
        assert!(pass.failed.is_empty(), "{pass:?}");
        assert!(pass.ran.contains(&(a.repo.clone(), "gc")), "{pass:?}");
        assert_eq!(stored_snapshots(&t, &a).await.len(), 3);
        // Retention is due again after retention_every_secs (1 h); the marks are then past the delay.
        t.clock.advance_secs(3600);
        let pass = run_due(&svc, &stop).await.unwrap();
        assert!(pass.failed.is_empty(), "{pass:?}");
        assert!(
            pass.ran.contains(&(a.repo.clone(), "retention")),
            "{pass:?}"
        );
        assert_eq!(
            stored_snapshots(&t, &a).await,
            BTreeSet::from([snaps[2].id.clone()])
        );
        assert_eq!(audit_count(&t, "repo.retention_delete", "success").await, 2);
        // Nothing is due right after a pass.
        let pass = run_due(&svc, &stop).await.unwrap();
        assert!(pass.ran.is_empty(), "{pass:?}");
        // The server's GC (run by the operator) reclaims the deleted snapshots' data.
        let r = svc.collect_garbage(&row(&t, &a.repo).await).await.unwrap();
        assert!(r.bytes_freed > 0, "{r:?}");
        let server_copy = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        let repo = Repository::open(server_copy, &Unlock::Password(PASSWORD)).unwrap();
        let report = check(
            &repo,
            &CheckOptions {
                read_data: true,
                threads: Some(2),
            },
            &NoProgress,
        )
        .unwrap();
        assert!(report.is_ok(), "{:?}", report.errors);
        t.running.shutdown().await;
    }
}

/// Packs uploaded within the grace period are neither condemned nor repacked (an interrupted backup
/// may resume and reuse them); once the period is over, the same collection frees them.
#[tokio::test]
async fn gc_leaves_recent_uploads_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [("h1", day(1, 10)), ("h1", day(2, 10)), ("h1", day(3, 10))];
    let (local, snaps) = build(dir.path(), &plan);
    for backend in store_setups() {
        let t = start_server(&backend, |c| {
            no_scheduler(c);
            c.maintenance.pack_grace_secs = 600;
        })
        .await;
        let who = tenant(&t, "g", json!({"name": "main"})).await;
        let (s, v) = put_retention(&t, &who.admin, &who.repo, json!({"keep_last": 1})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        upload_in_order(&t, &who, &local, &snaps).await;
        let gc = format!("/api/v1/repos/{}/gc", who.repo);
        let (s, early) = t.post(&gc, Some(&who.admin), json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{early}");
        assert_eq!(early["packs_condemned"], 0, "{early}");
        assert_eq!(early["packs_repacked"], 0, "{early}");
        assert_eq!(early["bytes_freed"], 0, "{early}");
        t.clock.advance_secs(601);
        let (s, later) = t.post(&gc, Some(&who.admin), json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{later}");
        assert!(later["packs_condemned"].as_u64().unwrap() > 0, "{later}");
        assert!(later["bytes_freed"].as_u64().unwrap() > 0, "{later}");
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn gc_with_a_concurrent_session_loses_nothing_and_stale_sessions_do_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [("h1", day(1, 10)), ("h1", day(2, 10)), ("h1", day(3, 10))];
    let (local, snaps) = build(dir.path(), &plan);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let svc = t.running.service.clone();
        let session = "0123456789abcdef0123456789abcdef";
        for tag in ["a", "b"] {
            let who = tenant(&t, tag, json!({"name": "main"})).await;
            let (s, v) = put_retention(&t, &who.admin, &who.repo, json!({"keep_last": 1})).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            upload_in_order(&t, &who, &local, &snaps).await;
            assert_eq!(
                stored_snapshots(&t, &who).await,
                BTreeSet::from([snaps[2].id.clone()])
            );
            // A backup session is running: its lock is uploaded.
            let (s, e) = t
                .put_file(&who.agent, &who.repo, FileKind::Lock, session, &lock_json())
                .await;
            assert_eq!(s, StatusCode::CREATED, "{e}");
            let gc = format!("/api/v1/repos/{}/gc", who.repo);
            let (s, first) = t.post(&gc, Some(&who.admin), json!(null)).await;
            assert_eq!(s, StatusCode::OK, "{first}");
            assert!(first["packs_condemned"].as_u64().unwrap() > 0, "{first}");
            assert_eq!(
                first["packs_deleted"], 0,
                "the session may still use them: {first}"
            );
            assert_eq!(first["gc_records_waiting"], 1, "{first}");
            // Without a policy, retention leaves the next snapshot alone.
            let (s, v) = t
                .call(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/repos/{}/retention", who.repo),
                    Some(&who.admin),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
            // Condemned blobs are gone for look-ups, yet the running session may commit a snapshot
            // that references them (here: the first backup, committed after the GC started).
            let (s, e) = t
                .put_file(
                    &who.agent,
                    &who.repo,
                    FileKind::Snapshot,
                    &snaps[0].id,
                    &snaps[0].bytes,
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{e}");
            if tag == "a" {
                // The session ends normally.
                let (s, _) = t
                    .delete_file(&who.agent, &who.repo, FileKind::Lock, session)
                    .await;
                assert_eq!(s, StatusCode::NO_CONTENT);
            } else {
                // The session's machine died: its lock is not refreshed past the timeout.
                t.clock.advance_secs(
                    i64::try_from(svc.config.maintenance.session_timeout_secs).unwrap() + 1,
                );
            }
            let (s, second) = t.post(&gc, Some(&who.admin), json!(null)).await;
            assert_eq!(s, StatusCode::OK, "{second}");
            assert!(second["bytes_freed"].as_u64().unwrap() > 0, "{second}");
            assert!(
                second["packs_kept_referenced"].as_u64().unwrap() > 0,
                "{second}"
            );
            assert_eq!(second["gc_records_waiting"], 0, "{second}");
            assert!(
                second["stored_bytes_after"].as_u64() < second["stored_bytes_before"].as_u64(),
                "{second}"
            );
            // The second backup's data is gone, and the store knows it: its snapshot is refused.
            let (s, e) = t
                .put_file(
                    &who.agent,
                    &who.repo,
                    FileKind::Snapshot,
                    &snaps[1].id,
                    &snaps[1].bytes,
                )
                .await;
            assert_eq!(s, StatusCode::CONFLICT, "{e}");
            assert!(e.starts_with("missing_blobs "), "{e}");
            // The database follows the store: usage equals what the store holds.
            let (_, r) = t
                .get(&format!("/api/v1/repos/{}", who.repo), &who.agent)
                .await;
            let store = brr_storage::open_url_at(
                &svc.config.store_url(),
                &format!("{}/{}", who.company, who.repo),
            )
            .unwrap();
            let packs = store.list(FileKind::Pack).unwrap();
            assert_eq!(r["usage"]["packs"], packs.len(), "{r}");
            assert_eq!(
                r["usage"]["pack_bytes"],
                packs.iter().map(|p| p.size).sum::<u64>(),
                "{r}"
            );
            assert!(store.list(FileKind::Lock).unwrap().is_empty());
            assert!(store.list(FileKind::Gc).unwrap().is_empty());
            // Nothing referenced is lost: the key holder's full check reads every blob of both
            // snapshots.
            let repo = Repository::open(store, &Unlock::Password(PASSWORD)).unwrap();
            assert_eq!(repo.list_snapshots().unwrap().len(), 2);
            let report = check(
                &repo,
                &CheckOptions {
                    read_data: true,
                    threads: Some(2),
                },
                &NoProgress,
            )
            .unwrap();
            assert!(report.is_ok(), "{:?}", report.errors);
        }
        assert_eq!(audit_count(&t, "repo.gc", "success").await, 4);
        let (asked,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'repo.gc_request' AND actor LIKE 'user:%'",
        )
        .fetch_one(&svc.db.pool)
        .await
        .unwrap();
        assert_eq!(asked, 4, "who asked for each collection is audited");
        let metrics = t
            .client
            .get(format!("http://{}/metrics", t.running.ops_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let reclaimed: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("brrd_repo_gc_reclaimed_bytes_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(reclaimed > 0, "{metrics}");
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn a_failing_job_is_counted_audited_and_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (local, snaps) = build(dir.path(), &[("h1", day(1, 10))]);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let svc = t.running.service.clone();
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        upload_in_order(&t, &a, &local, &snaps).await;
        upload_in_order(&t, &b, &local, &snaps).await;
        // A's snapshot rots in the store: its references cannot be trusted, so A's GC refuses to run.
        let store = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        let mut rotten = snaps[0].bytes.clone();
        rotten[40] ^= 1;
        store
            .write(FileKind::Snapshot, &snaps[0].id, &rotten)
            .unwrap();
        let pass = run_due(&svc, &AtomicBool::new(false)).await.unwrap();
        assert_eq!(pass.failed.len(), 1, "{pass:?}");
        assert_eq!(
            (pass.failed[0].0.as_str(), pass.failed[0].1),
            (a.repo.as_str(), "gc")
        );
        assert!(!pass.failed[0].2.contains('\n'), "{pass:?}");
        for job in ["retention", "gc", "verify"] {
            assert!(pass.ran.contains(&(b.repo.clone(), job)), "{pass:?}");
        }
        assert!(pass.ran.contains(&(a.repo.clone(), "verify")), "{pass:?}");
        assert_eq!(audit_count(&t, "repo.maintenance", "failure").await, 1);
        // The scrub of A found the damage and said so in the audit trail.
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'repo.verify' AND outcome = 'damaged' AND target = $1",
        )
        .bind(format!("repo:{}", a.repo))
        .fetch_one(&svc.db.pool)
        .await
        .unwrap();
        assert_eq!(n, 1);
        let metrics = svc.maintenance.render_metrics();
        assert!(
            metrics.contains("brrd_repo_maintenance_failures_total 1\n"),
            "{metrics}"
        );
        // A stop request ends a pass before the next repository.
        t.clock.advance_secs(8 * 24 * 3600);
        let pass = run_due(&svc, &AtomicBool::new(true)).await.unwrap();
        assert!(pass.ran.is_empty() && pass.failed.is_empty(), "{pass:?}");
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn gc_repacks_partly_used_packs_by_copying_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    // Both backups hold the same 200 kB; the first pack also holds the first backup's own 300 kB.
    let (local, snaps) = build_sharing(
        dir.path(),
        &[("h1", day(1, 10)), ("h1", day(2, 10))],
        200_000,
    );
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let (s, v) = put_retention(&t, &a.admin, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        upload_in_order(&t, &a, &local, &snaps).await;
        let (s, r) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&a.admin),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert!(r["packs_repacked"].as_u64().unwrap() >= 1, "{r}");
        assert!(r["packs_written"].as_u64().unwrap() >= 1, "{r}");
        assert!(r["bytes_freed"].as_u64().unwrap() > 250_000, "{r}");
        // The repacked pack is recorded: its blobs answer look-ups, the usage matches the store.
        let svc = &t.running.service;
        let store = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        let packs = store.list(FileKind::Pack).unwrap();
        let (_, u) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(u["usage"]["packs"], packs.len(), "{u}");
        let refs: Vec<String> = parse_snapshot_public(&snaps[1].bytes)
            .unwrap()
            .refs
            .iter()
            .map(|b| b.to_hex())
            .collect();
        let (s, p) = t
            .post(
                &format!("/api/v1/repos/{}/blobs/lookup", a.repo),
                Some(&a.agent),
                json!({ "ids": refs }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert!(
            p["present"].as_array().unwrap().iter().all(|b| b == true),
            "{p}"
        );
        let repo = Repository::open(store, &Unlock::Password(PASSWORD)).unwrap();
        let report = check(
            &repo,
            &CheckOptions {
                read_data: true,
                threads: Some(2),
            },
            &NoProgress,
        )
        .unwrap();
        assert!(report.is_ok(), "{:?}", report.errors);
        t.running.shutdown().await;
    }
}
