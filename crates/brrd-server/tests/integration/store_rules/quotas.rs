//! Quotas: refused before anything is stored; uploads beyond the concurrency limit wait their turn.

use super::*;

#[tokio::test]
async fn quotas_refuse_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(&engine_repo(dir.path()));
    let packs = &files[&FileKind::Pack];
    let (snap, snap_bytes) = &files[&FileKind::Snapshot][0];
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let pa = provider_admin(&t).await;
        let quota = format!("/api/v1/companies/{}/quota", a.company);
        // Nobody but a provider admin sets quotas.
        let (s, _) = t
            .call(
                Method::PUT,
                &quota,
                Some(&a.admin),
                Some(json!({"max_stored_bytes": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let big = packs.iter().max_by_key(|(_, b)| b.len()).unwrap();
        let (s, _) = t
            .call(
                Method::PUT,
                &quota,
                Some(&pa),
                Some(json!({"max_stored_bytes": 64 * 1024, "max_snapshots": 0})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, q) = t.get(&quota, &a.admin).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            q,
            json!({"max_stored_bytes": 65536, "max_snapshots": 0, "max_agents": null})
        );
        assert!(big.1.len() > 64 * 1024);
        // Small files fit; a pack does not, and is not stored.
        upload_all_small(&t, &a, &files).await;
        let (name, bytes) = big;
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, name, bytes)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert!(
            e.starts_with("quota_exceeded storage quota exceeded: "),
            "{e}"
        );
        assert!(e.contains("of 65536 bytes used"), "{e}");
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Pack, name).await,
            StatusCode::NOT_FOUND
        );
        // Lift the byte limit: packs go in, but a snapshot past the snapshot quota does not.
        let (s, _) = t
            .call(
                Method::PUT,
                &quota,
                Some(&pa),
                Some(json!({"max_snapshots": 0})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        upload_all(&t, &a, &files, 0).await;
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert!(e.contains("0 of 0 snapshots"), "{e}");
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Snapshot, snap)
                .await,
            StatusCode::NOT_FOUND
        );
        let (s, _) = t
            .call(Method::PUT, &quota, Some(&pa), Some(json!({})))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        // Usage per company, for its admin and the provider; not for its users or other companies.
        let usage = format!("/api/v1/companies/{}/usage", a.company);
        for tok in [&a.admin, &pa] {
            let (s, u) = t.get(&usage, tok).await;
            assert_eq!(s, StatusCode::OK, "{u}");
            let all: u64 = files.values().flatten().map(|(_, b)| b.len() as u64).sum();
            assert_eq!(u["stored_bytes"], all, "{u}");
            assert_eq!(u["snapshots"], 1);
            assert_eq!(u["agents"], 1);
            assert_eq!(u["repositories"][0]["name"], "main");
            assert!(u["logical_bytes"].as_u64().unwrap() > 0);
        }
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        let (s, _) = t.get(&usage, &b.admin).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = t.get(&usage, &a.agent).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // Refusals are audited and counted.
        let (_, audit) = t.get("/api/v1/audit?limit=500", &pa).await;
        assert!(audit.to_string().contains("quota_exceeded"), "{audit}");
        assert!(audit.to_string().contains("quota.set"));
        let m = reqwest::get(format!("http://{}/metrics", t.running.ops_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            m.contains("brrd_repo_refusals_total{reason=\"quota_exceeded\"} 2\n"),
            "{m}"
        );
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn uploads_beyond_the_limit_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(&engine_repo(dir.path()));
    // SQLite on each store.
    for backend in store_setups()
        .into_iter()
        .filter(|s| matches!(s.db, Backend::Sqlite))
    {
        let t = start_server(&backend, |c| c.store.max_concurrent_uploads = 1).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let uploads = files[&FileKind::Pack]
            .iter()
            .map(|(name, bytes)| t.put_file(&a.agent, &a.repo, FileKind::Pack, name, bytes));
        for (s, e) in futures_util::future::join_all(uploads).await {
            assert_eq!(s, StatusCode::CREATED, "{e}");
        }
        let (_, r) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(r["usage"]["packs"], files[&FileKind::Pack].len());
        t.running.shutdown().await;
    }
}
