//! Keyless garbage collection: the grace period for recent uploads, a concurrent backup session and
//! stale sessions, repacking partly used packs by copying ciphertext.

use super::*;

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
