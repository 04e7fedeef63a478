//! The blob look-up answers true only for blobs a client may deduplicate against: in a stored pack
//! that a stored index file lists and no GC record condemns (docs/server-repositories.md §3).

use brr_storage::FileKind;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, start_server, store_setups};
use crate::repos::{Tenant, engine_repo, local_files, tenant};

async fn lookup(t: &TestServer, a: &Tenant, ids: &[String]) -> Value {
    let (s, p) = t
        .post(
            &format!("/api/v1/repos/{}/blobs/lookup", a.repo),
            Some(&a.agent),
            json!({ "ids": ids }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    p["present"].clone()
}

#[tokio::test]
async fn only_packs_listed_by_a_stored_index_answer_look_ups() {
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(&engine_repo(dir.path()));
    let (pack, pack_bytes) = files[&FileKind::Pack]
        .iter()
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let trailer = brr_core::pack::parse_pack_tail(pack_bytes, pack_bytes.len() as u64).unwrap();
    let ids: Vec<String> = trailer.entries.iter().map(|e| e.id.to_hex()).collect();
    let all_true = json!(vec![true; ids.len()]);
    let all_false = json!(vec![false; ids.len()]);
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        for kind in [FileKind::Key, FileKind::Config] {
            for (name, bytes) in &files[&kind] {
                let (s, e) = t.put_file(&a.admin, &a.repo, kind, name, bytes).await;
                assert_eq!(s, StatusCode::CREATED, "{kind} {name}: {e}");
            }
        }
        for (name, bytes) in &files[&FileKind::Pack] {
            let (s, e) = t
                .put_file(&a.agent, &a.repo, FileKind::Pack, name, bytes)
                .await;
            assert_eq!(s, StatusCode::CREATED, "pack {name}: {e}");
        }
        // Stored and recorded, but no index lists it (a backup still running, or one that died).
        assert_eq!(
            lookup(&t, &a, &ids).await,
            all_false,
            "a pack without an index"
        );

        let indexes = &files[&FileKind::Index];
        for (name, bytes) in indexes {
            let (s, e) = t
                .put_file(&a.agent, &a.repo, FileKind::Index, name, bytes)
                .await;
            assert_eq!(s, StatusCode::CREATED, "index {name}: {e}");
        }
        assert_eq!(lookup(&t, &a, &ids).await, all_true, "after its index");

        // Reindex rebuilds which packs each index lists.
        let svc = &t.running.service;
        sqlx::query("DELETE FROM repo_index_packs")
            .execute(&svc.db.pool)
            .await
            .unwrap();
        assert_eq!(lookup(&t, &a, &ids).await, all_false);
        let report = svc.reindex_repo(&a.repo).await.unwrap();
        assert!(report.unreadable.is_empty(), "{report:?}");
        assert_eq!(lookup(&t, &a, &ids).await, all_true, "after a reindex");

        // A GC record condemning the pack hides it until the record is deleted.
        let record = json!({"version": 1, "created": "2026-11-23T10:00:00Z", "sealed": true,
            "sessions": [], "packs": [{"id": pack, "size": pack_bytes.len(), "blobs": [ids[0]]}]})
        .to_string();
        let gc = "00112233445566778899aabbccddeeff";
        let (s, e) = t
            .put_file(&a.admin, &a.repo, FileKind::Gc, gc, record.as_bytes())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        assert_eq!(lookup(&t, &a, &ids).await, all_false, "condemned");
        let (s, _) = t.delete_file(&a.admin, &a.repo, FileKind::Gc, gc).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(lookup(&t, &a, &ids).await, all_true);

        // Deleting the index that lists the pack takes its blobs out of the look-up again.
        for (name, _) in indexes {
            let (s, e) = t
                .delete_file(&a.admin, &a.repo, FileKind::Index, name)
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
        }
        assert_eq!(lookup(&t, &a, &ids).await, all_false, "index deleted");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM repo_index_packs")
            .fetch_one(&svc.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "rows of deleted index files are removed");

        // Company B never sees A's blobs, whatever A's index lists.
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        for (name, bytes) in indexes {
            let (s, _) = t
                .put_file(&a.agent, &a.repo, FileKind::Index, name, bytes)
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
        assert_eq!(lookup(&t, &a, &ids).await, all_true);
        assert_eq!(
            lookup(&t, &b, &ids).await,
            all_false,
            "no cross-company look-up"
        );
        let (s, _) = t
            .post(
                &format!("/api/v1/repos/{}/blobs/lookup", a.repo),
                Some(&b.agent),
                json!({ "ids": ids }),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "another company's repository");
        t.running.shutdown().await;
    }
}
