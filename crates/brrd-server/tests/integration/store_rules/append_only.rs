//! Append-only repositories: deletions refused until the delay has passed.

use super::*;

#[tokio::test]
async fn append_only_refuses_deletions_until_the_delay_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(&engine_repo(dir.path()));
    let (snap, snap_bytes) = &files[&FileKind::Snapshot][0];
    let (index, index_bytes) = &files[&FileKind::Index][0];
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(
            &t,
            "a",
            json!({"name": "vault", "append_only": true, "delete_delay_secs": 3600}),
        )
        .await;
        upload_all(&t, &a, &files, 0).await;
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (pack, _) = &files[&FileKind::Pack][0];
        let key = &files[&FileKind::Key][0].0;
        for (kind, name) in [
            (FileKind::Snapshot, snap),
            (FileKind::Pack, pack),
            (FileKind::Key, key),
        ] {
            let (s, b) = t.delete_file(&a.admin, &a.repo, kind, name).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{kind}");
            assert_eq!(b["error"]["code"], "append_only", "{kind}: {b}");
        }
        // Locks may go.
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Lock, "0b", &lock_json())
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = t.delete_file(&a.agent, &a.repo, FileKind::Lock, "0b").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        // An index file goes only once another one supersedes it, and that one must keep its packs.
        let (s, b) = t
            .delete_file(&a.admin, &a.repo, FileKind::Index, index)
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("append_only"))
        );
        let old = IndexFile::decode(index_bytes).unwrap();
        let old_id = brr_core::id::IndexId::from_hex(index).unwrap();
        let dropping = IndexFile {
            supersedes: vec![old_id],
            packs: old.packs[1..].to_vec(),
        };
        let (drop_id, drop_bytes) = dropping.encode();
        let (s, e) = t
            .put_file(
                &a.agent,
                &a.repo,
                FileKind::Index,
                &drop_id.to_hex(),
                &drop_bytes,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert!(e.starts_with("append_only "), "{e}");
        let keeping = IndexFile {
            supersedes: vec![old_id],
            packs: old.packs.clone(),
        };
        let (keep_id, keep_bytes) = keeping.encode();
        let (s, e) = t
            .put_file(
                &a.agent,
                &a.repo,
                FileKind::Index,
                &keep_id.to_hex(),
                &keep_bytes,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, b) = t
            .delete_file(&a.agent, &a.repo, FileKind::Index, index)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        // Turning append-only off takes effect only after the delay.
        let repo_path = format!("/api/v1/repos/{}", a.repo);
        let (s, b) = t
            .call(
                Method::PATCH,
                &repo_path,
                Some(&a.admin),
                Some(json!({"delete_delay_secs": 10})),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("append_only"))
        );
        let (s, r) = t
            .call(
                Method::PATCH,
                &repo_path,
                Some(&a.admin),
                Some(json!({"append_only": false})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["append_only"], true, "{r}");
        assert!(r["append_only_ends_at"].is_i64(), "{r}");
        let (s, _) = t
            .delete_file(&a.admin, &a.repo, FileKind::Snapshot, snap)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        t.clock.advance_secs(3601);
        let admin = t.login("admin@a.example").await;
        let (_, r) = t.get(&repo_path, &admin).await;
        assert_eq!(r["append_only"], false, "{r}");
        let (s, b) = t
            .delete_file(&admin, &a.repo, FileKind::Snapshot, snap)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let (_, r) = t.get(&repo_path, &admin).await;
        assert_eq!(r["usage"]["snapshots"], 0, "{r}");
        // Back on: at once.
        let (_, r) = t
            .call(
                Method::PATCH,
                &repo_path,
                Some(&admin),
                Some(json!({"append_only": true})),
            )
            .await;
        assert_eq!(r["append_only"], true);
        let (s, _) = t.delete_file(&admin, &a.repo, FileKind::Pack, pack).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        t.running.shutdown().await;
    }
}
