//! Agents, quotas and append-only repositories, through the API.

use brr_core::index::IndexFile;
use brr_storage::FileKind;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::access::{enroll, lock_json};
use crate::common::{Backend, TestServer, start_server, store_setups};
use crate::repos::{engine_repo, local_files, tenant, upload_all};

async fn provider_admin(t: &TestServer) -> String {
    t.staff(
        "root@provider.example",
        brr_api::identity::Role::ProviderAdmin,
    )
    .await
}

#[tokio::test]
async fn agents_enrol_with_a_key_and_are_revoked() {
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let (s, k) = t
            .post(
                &format!("/api/v1/companies/{}/api-keys", a.company),
                Some(&a.admin),
                json!({"name": "enrol-2"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let key = k["secret"].as_str().unwrap().to_string();
        // The API key only enrols: no repository access of its own.
        let (s, _) = t.get("/api/v1/repos", &key).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .put_file(&key, &a.repo, FileKind::Lock, "0a", &lock_json())
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // An agent cannot enrol further agents; a person cannot either.
        let (s, _) = t
            .post(
                "/api/v1/agents/enroll",
                Some(&a.agent),
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .post(
                "/api/v1/agents/enroll",
                Some(&a.admin),
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .post("/api/v1/agents/enroll", Some(&key), json!({"name": " "}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (id, token) = enroll(&t, &key, "laptop").await;
        assert!(token.starts_with(&format!("brra_{id}_")));
        let (s, me) = t.get("/api/v1/me", &token).await;
        assert_eq!(s, StatusCode::OK, "{me}");
        assert_eq!(me["company_id"], a.company.as_str());
        assert_eq!(me["agent_id"], id.as_str());
        // A wrong secret for a real agent id is refused.
        let forged = format!("brra_{id}_{}", "A".repeat(43));
        let (s, _) = t.get("/api/v1/repos", &forged).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Quota on agents: the company has two; a limit of two refuses a third.
        let pa = provider_admin(&t).await;
        let (s, q) = t
            .call(
                Method::PUT,
                &format!("/api/v1/companies/{}/quota", a.company),
                Some(&pa),
                Some(json!({"max_agents": 2})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{q}");
        let (s, b) = t
            .post(
                "/api/v1/agents/enroll",
                Some(&key),
                json!({"name": "third"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(b["error"]["code"], "quota_exceeded");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("2 of 2 agents"),
            "{b}"
        );
        // The admin lists and revokes; the revoked agent is refused at once.
        let (s, list) = t.get("/api/v1/agents", &a.admin).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
        assert!(!list.to_string().contains("secret"), "{list}");
        let laptop = list
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id.as_str())
            .unwrap();
        assert!(laptop["last_seen_at"].is_i64(), "{laptop}");
        let user_tok = {
            let (s, _) = t
                .post(
                    &format!("/api/v1/companies/{}/invitations", a.company),
                    Some(&a.admin),
                    json!({"email": "u@a.example", "role": "company_user"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
            t.accept_invitation("u@a.example").await;
            t.login("u@a.example").await
        };
        let (s, _) = t.get("/api/v1/agents", &user_tok).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{id}"),
                Some(&user_tok),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{id}"),
                Some(&a.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = t.get("/api/v1/repos", &token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{id}"),
                Some(&a.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // With one agent revoked, enrolment works again.
        enroll(&t, &key, "replacement").await;
        t.running.shutdown().await;
    }
}

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

/// Keys and config as the admin (small files).
async fn upload_all_small(
    t: &TestServer,
    who: &crate::repos::Tenant,
    files: &std::collections::BTreeMap<FileKind, Vec<(String, Vec<u8>)>>,
) {
    for kind in [FileKind::Key, FileKind::Config] {
        for (name, bytes) in &files[&kind] {
            let (s, e) = t.put_file(&who.admin, &who.repo, kind, name, bytes).await;
            assert_eq!(s, StatusCode::CREATED, "{kind} {name}: {e}");
        }
    }
}

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
