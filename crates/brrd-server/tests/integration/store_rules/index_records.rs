//! The server's record of packs: GC records hide condemned packs and reindex rebuilds the record; a pack
//! stored but not recorded is adopted by the index file describing it.

use super::*;

#[tokio::test]
async fn gc_records_hide_condemned_packs_and_reindex_rebuilds_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(&engine_repo(dir.path()));
    let (snap, snap_bytes) = &files[&FileKind::Snapshot][0];
    let (pack, pack_bytes) = files[&FileKind::Pack]
        .iter()
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let trailer = brr_core::pack::parse_pack_tail(pack_bytes, pack_bytes.len() as u64).unwrap();
    let blob = trailer.entries[0].id.to_hex();
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        upload_all(&t, &a, &files, 0).await;
        // A GC record condemning a pack: its blobs no longer count for look-ups; a snapshot may still
        // reference them while the pack is stored (a backup listed in the record may, §4).
        let record =
            json!({"version": 1, "created": "2026-11-23T10:00:00Z", "sealed": true, "sessions": [],
            "packs": [{"id": pack, "size": pack_bytes.len(), "blobs": [blob]}]})
            .to_string();
        let gc = "00112233445566778899aabbccddeeff";
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Gc, gc, record.as_bytes())
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "agents do not write GC records");
        let (s, e) = t
            .put_file(&a.admin, &a.repo, FileKind::Gc, gc, record.as_bytes())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let lookup = format!("/api/v1/repos/{}/blobs/lookup", a.repo);
        let (_, p) = t
            .post(&lookup, Some(&a.agent), json!({"ids": [blob]}))
            .await;
        assert_eq!(p["present"], json!([false]));
        // Malformed look-ups are refused with a one-line message, never a crash.
        for ids in [
            json!(["é".repeat(40)]),
            json!(["AB".repeat(32)]),
            json!(vec!["00".repeat(32); 10_001]),
        ] {
            let (s, b) = t.post(&lookup, Some(&a.agent), json!({ "ids": ids })).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
            assert!(!b["error"]["message"].as_str().unwrap().contains('\n'));
        }
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, _) = t.delete_file(&a.admin, &a.repo, FileKind::Gc, gc).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, p) = t
            .post(&lookup, Some(&a.agent), json!({"ids": [blob]}))
            .await;
        assert_eq!(p["present"], json!([true]));
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::OK, "{e}");
        // The database is a cache of the store: wipe the record, rebuild it, same answers.
        let repo_path = format!("/api/v1/repos/{}", a.repo);
        let (_, before) = t.get(&repo_path, &a.agent).await;
        let svc = &t.running.service;
        for table in ["repo_blobs", "repo_packs", "repo_snapshots", "repo_files"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&svc.db.pool)
                .await
                .unwrap();
        }
        let (_, wiped) = t.get(&repo_path, &a.agent).await;
        assert_eq!(wiped["usage"]["snapshots"], 0);
        let report = svc.reindex_repo(&a.repo).await.unwrap();
        assert!(report.unreadable.is_empty(), "{report:?}");
        assert_eq!(report.snapshots, 1);
        assert_eq!(report.packs as usize, files[&FileKind::Pack].len());
        let (_, after) = t.get(&repo_path, &a.agent).await;
        let mut b = before["usage"].clone();
        let mut c = after["usage"].clone();
        // Commit times are the reindex's own.
        b["last_snapshots"][0]["committed_at"] = json!(0);
        c["last_snapshots"][0]["committed_at"] = json!(0);
        assert_eq!(b, c);
        let (_, p) = t
            .post(&lookup, Some(&a.agent), json!({"ids": [blob]}))
            .await;
        assert_eq!(p["present"], json!([true]));
        // Scrub through the API: clean, then a damaged pack names the snapshot it affects.
        let verify = format!("/api/v1/repos/{}/verify", a.repo);
        let (s, v) = t.post(&verify, Some(&a.admin), json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["packs"], files[&FileKind::Pack].len());
        let (s, _) = t.post(&verify, Some(&a.agent), json!(null)).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let store = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        let mut rotten = pack_bytes.clone();
        rotten[7] ^= 1;
        store.write(FileKind::Pack, pack, &rotten).unwrap();
        let op = t
            .staff("op@provider.example", brr_api::identity::Role::Operator)
            .await;
        let (s, v) = t.post(&verify, Some(&op), json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["findings"][0]["problem"], "damaged", "{v}");
        assert!(
            v["findings"][0]["file"]
                .as_str()
                .unwrap()
                .ends_with(pack.as_str()),
            "{v}"
        );
        assert_eq!(v["findings"][0]["snapshots"], json!([snap]), "{v}");
        store.write(FileKind::Pack, pack, pack_bytes).unwrap();
        let m = reqwest::get(format!("http://{}/metrics", t.running.ops_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("brrd_repo_verifications_total 2\n"), "{m}");
        assert!(m.contains("brrd_repo_verify_findings_total 1\n"), "{m}");
        // A damaged file in the store is reported, not recorded.
        store
            .write(FileKind::Snapshot, &"cd".repeat(32), b"garbage")
            .unwrap();
        let report = svc.reindex_repo(&a.repo).await.unwrap();
        assert_eq!(report.unreadable.len(), 1, "{report:?}");
        assert_eq!(report.snapshots, 1);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn a_pack_stored_but_not_recorded_is_adopted_by_the_index_describing_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(&engine_repo(dir.path()));
    let (snap, snap_bytes) = &files[&FileKind::Snapshot][0];
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        // Keys, config and packs, but no index yet (as a backup killed before its index).
        for kind in [FileKind::Key, FileKind::Config] {
            for (name, bytes) in &files[&kind] {
                let (s, _) = t.put_file(&a.admin, &a.repo, kind, name, bytes).await;
                assert_eq!(s, StatusCode::CREATED);
            }
        }
        for (name, bytes) in &files[&FileKind::Pack] {
            let (s, _) = t
                .put_file(&a.agent, &a.repo, FileKind::Pack, name, bytes)
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
        // brrd died between storing one pack and recording it.
        let lost = &files[&FileKind::Pack][0].0;
        for table in ["repo_blobs", "repo_packs"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE pack_id = $1"))
                .bind(lost)
                .execute(&t.running.service.db.pool)
                .await
                .unwrap();
        }
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        // The resumed backup adopts the stored pack into its index file: brrd records it then.
        for (name, bytes) in &files[&FileKind::Index] {
            let (s, e) = t
                .put_file(&a.agent, &a.repo, FileKind::Index, name, bytes)
                .await;
            assert_eq!(s, StatusCode::CREATED, "{e}");
        }
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (_, r) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(r["usage"]["packs"], files[&FileKind::Pack].len(), "{r}");
        t.running.shutdown().await;
    }
}
