//! The repository store end to end: a real repository written by the engine, uploaded through the file
//! API in backup order, read back byte for byte; refusals (name, pack, size, missing blobs, roles,
//! append-only, quotas) leave nothing stored; companies are separated.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use brr_core::keyslot::{KdfParams, Unlock};
use brr_engine::backup::{BackupOptions, backup};
use brr_engine::{InitOptions, NoProgress, Repository};
use brr_storage::{Backend, FileKind, LocalBackend};
use rand::RngCore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::access::{enroll, lock_json};
use crate::common::{TestServer, start_server, store_setups};

const PASSWORD: &[u8] = b"repository password";

/// URL folder of a kind.
pub fn folder(kind: FileKind) -> &'static str {
    kind.folder().unwrap_or("config")
}

/// Writes a repository with the engine: init, then one backup of a few MiB of random files.
pub fn engine_repo(dir: &Path) -> Arc<LocalBackend> {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let mut rng = rand::thread_rng();
    for (i, size) in [1_600_000usize, 900_000, 2_100_000].into_iter().enumerate() {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        std::fs::write(src.join(format!("sub/f{i}")), &data).unwrap();
    }
    std::fs::write(src.join("small.txt"), b"hello").unwrap();
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
    let b = BackupOptions {
        paths: vec![src],
        threads: Some(2),
        ..Default::default()
    };
    backup(&repo, &b, &NoProgress).unwrap();
    backend
}

/// Every file of the local repository, by kind.
pub fn local_files(b: &LocalBackend) -> BTreeMap<FileKind, Vec<(String, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    for kind in FileKind::ALL {
        let mut files: Vec<(String, Vec<u8>)> = b
            .list(kind)
            .unwrap()
            .into_iter()
            .map(|f| {
                let bytes = b.read(kind, &f.name).unwrap();
                (f.name, bytes)
            })
            .collect();
        files.sort();
        out.insert(kind, files);
    }
    out
}

impl TestServer {
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        range: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        if let Some(r) = range {
            rb = rb.header("range", r);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    /// Uploads a file; returns the status and the error code, if any.
    pub async fn put_file(
        &self,
        token: &str,
        repo: &str,
        kind: FileKind,
        name: &str,
        bytes: &[u8],
    ) -> (StatusCode, String) {
        let (s, _, body) = self
            .raw(
                Method::PUT,
                &format!("/api/v1/repos/{repo}/files/{}/{name}", folder(kind)),
                token,
                Some(bytes.to_vec()),
                None,
            )
            .await;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (
            s,
            format!(
                "{} {}",
                v["error"]["code"].as_str().unwrap_or(""),
                v["error"]["message"].as_str().unwrap_or("")
            ),
        )
    }

    pub async fn head_file(
        &self,
        token: &str,
        repo: &str,
        kind: FileKind,
        name: &str,
    ) -> StatusCode {
        self.raw(
            Method::HEAD,
            &format!("/api/v1/repos/{repo}/files/{}/{name}", folder(kind)),
            token,
            None,
            None,
        )
        .await
        .0
    }

    pub async fn delete_file(
        &self,
        token: &str,
        repo: &str,
        kind: FileKind,
        name: &str,
    ) -> (StatusCode, Value) {
        self.call(
            Method::DELETE,
            &format!("/api/v1/repos/{repo}/files/{}/{name}", folder(kind)),
            Some(token),
            None,
        )
        .await
    }
}

/// A company with its admin's token, an agent's token and one repository.
pub struct Tenant {
    pub company: String,
    pub admin: String,
    pub agent: String,
    pub repo: String,
}

pub async fn tenant(t: &TestServer, tag: &str, repo_body: Value) -> Tenant {
    let company = t
        .register_company(
            &format!("admin@{tag}.example"),
            &format!("Company {tag}"),
            "DE-FRA",
        )
        .await;
    let admin = t.login(&format!("admin@{tag}.example")).await;
    let (s, k) = t
        .post(
            &format!("/api/v1/companies/{company}/api-keys"),
            Some(&admin),
            json!({"name": "enrol"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, agent) = enroll(t, k["secret"].as_str().unwrap(), &format!("host-{tag}")).await;
    let (s, r) = t.post("/api/v1/repos", Some(&admin), repo_body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    Tenant {
        company,
        admin,
        agent,
        repo: r["id"].as_str().unwrap().to_string(),
    }
}

/// Uploads config and keys as the admin, then packs, index files and snapshots as the agent, in the
/// order a backup writes them. `hold_back` packs are not uploaded.
pub async fn upload_all(
    t: &TestServer,
    who: &Tenant,
    files: &BTreeMap<FileKind, Vec<(String, Vec<u8>)>>,
    hold_back: usize,
) {
    for kind in [FileKind::Key, FileKind::Config] {
        for (name, bytes) in &files[&kind] {
            let (s, e) = t.put_file(&who.admin, &who.repo, kind, name, bytes).await;
            assert!(
                s == StatusCode::CREATED || s == StatusCode::OK,
                "{kind} {name}: {s} {e}"
            );
        }
    }
    let packs = &files[&FileKind::Pack];
    for (name, bytes) in &packs[..packs.len() - hold_back] {
        let (s, e) = t
            .put_file(&who.agent, &who.repo, FileKind::Pack, name, bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "pack {name}: {e}");
    }
    for (name, bytes) in &files[&FileKind::Index] {
        let (s, e) = t
            .put_file(&who.agent, &who.repo, FileKind::Index, name, bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "index {name}: {e}");
    }
}

#[tokio::test]
async fn engine_repository_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let local = engine_repo(dir.path());
    let files = local_files(&local);
    let packs = files[&FileKind::Pack].clone();
    let snapshots = files[&FileKind::Snapshot].clone();
    assert!(packs.len() >= 3, "{} packs", packs.len());
    assert_eq!(snapshots.len(), 1);
    assert!(files[&FileKind::Lock].is_empty());
    let (snap_name, snap_bytes) = &snapshots[0];
    for backend in store_setups() {
        let t = start_server(&backend, |c| c.store.max_upload_bytes = 4 << 20).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;

        // A snapshot before its data is refused, and nothing is stored.
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap_name, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e.starts_with("missing_blobs "), "{e}");
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Snapshot, snap_name)
                .await,
            StatusCode::NOT_FOUND
        );

        // Everything but the last pack: still refused, naming what is missing.
        upload_all(&t, &a, &files, 1).await;
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap_name, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e.contains("referenced blobs are in no stored pack"), "{e}");

        // The last pack, then the snapshot is accepted.
        let (last, last_bytes) = packs.last().unwrap();
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, last, last_bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap_name, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");

        // Idempotent retries: 200, nothing rewritten.
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, last, last_bytes)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Snapshot, snap_name, snap_bytes)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (cname, cbytes) = &files[&FileKind::Config][0];
        let (s, _) = t
            .put_file(&a.admin, &a.repo, FileKind::Config, cname, cbytes)
            .await;
        assert_eq!(s, StatusCode::OK, "identical config");
        let (s, e) = t
            .put_file(&a.admin, &a.repo, FileKind::Config, cname, b"{}")
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e.starts_with("exists "), "{e}");

        // Read back: every listing and every file byte-identical, ranges exact.
        for (kind, list) in &files {
            let (s, listing) = t
                .get(
                    &format!("/api/v1/repos/{}/files/{}", a.repo, folder(*kind)),
                    &a.agent,
                )
                .await;
            assert_eq!(s, StatusCode::OK);
            let got: Vec<(String, u64)> = listing
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["name"].as_str().unwrap().to_string(),
                        f["size"].as_u64().unwrap(),
                    )
                })
                .collect();
            let want: Vec<(String, u64)> = list
                .iter()
                .map(|(n, b)| (n.clone(), b.len() as u64))
                .collect();
            assert_eq!(got, want, "{kind}");
            for (name, bytes) in list {
                let path = format!("/api/v1/repos/{}/files/{}/{name}", a.repo, folder(*kind));
                let (s, _, body) = t.raw(Method::GET, &path, &a.agent, None, None).await;
                assert_eq!(s, StatusCode::OK);
                assert!(body == *bytes, "{kind} {name} differs");
            }
        }
        // The largest pack (names are random, and a tree pack can be shorter than the range asked).
        let (pname, pbytes) = packs.iter().max_by_key(|(_, b)| b.len()).unwrap();
        let path = format!("/api/v1/repos/{}/files/data/{pname}", a.repo);
        let (s, h, body) = t
            .raw(Method::GET, &path, &a.agent, None, Some("bytes=10-1033"))
            .await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, pbytes[10..1034]);
        assert_eq!(
            h["content-range"].to_str().unwrap(),
            format!("bytes 10-1033/{}", pbytes.len())
        );
        let (s, _, body) = t
            .raw(Method::GET, &path, &a.agent, None, Some("bytes=-12"))
            .await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, pbytes[pbytes.len() - 12..]);
        let (s, h, _) = t
            .raw(
                Method::GET,
                &path,
                &a.agent,
                None,
                Some(&format!("bytes={}-", pbytes.len())),
            )
            .await;
        assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            h["content-range"].to_str().unwrap(),
            format!("bytes */{}", pbytes.len())
        );
        let (s, h, _) = t.raw(Method::HEAD, &path, &a.agent, None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            h["content-length"].to_str().unwrap(),
            pbytes.len().to_string()
        );

        // Blob look-up: the blobs of a stored pack, not an unknown one.
        let trailer = brr_core::pack::parse_pack_tail(pbytes, pbytes.len() as u64).unwrap();
        let known = trailer.entries[0].id.to_hex();
        let (s, p) = t
            .post(
                &format!("/api/v1/repos/{}/blobs/lookup", a.repo),
                Some(&a.agent),
                json!({"ids": [known, "ab".repeat(32)]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["present"], json!([true, false]));

        // The store holds the exact local layout: the engine opens it with the password.
        let store_dir = t.running.service.config.store_url();
        let server_copy =
            brr_storage::open_url_at(&store_dir, &format!("{}/{}", a.company, a.repo)).unwrap();
        let repo = Repository::open(server_copy, &Unlock::Password(PASSWORD)).unwrap();
        assert_eq!(repo.list_snapshots().unwrap().len(), 1);

        // Usage: one snapshot, logical and stored bytes, the last snapshot of its source.
        let (s, r) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(s, StatusCode::OK);
        let pack_bytes: u64 = packs.iter().map(|(_, b)| b.len() as u64).sum();
        let all_bytes: u64 = files.values().flatten().map(|(_, b)| b.len() as u64).sum();
        assert_eq!(r["usage"]["pack_bytes"], pack_bytes, "{r}");
        assert_eq!(r["usage"]["stored_bytes"], all_bytes, "{r}");
        assert_eq!(r["usage"]["snapshots"], 1);
        assert_eq!(r["usage"]["last_snapshots"][0]["id"], snap_name.as_str());
        assert!(
            r["usage"]["logical_bytes"].as_u64().unwrap() > 4_000_000,
            "{r}"
        );
        assert!(r["usage"]["dedup_ratio"].as_f64().unwrap() > 0.5, "{r}");

        // Refusals store nothing: a wrong name, a damaged pack, an oversized body.
        let wrong = "ab".repeat(32);
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, &wrong, pbytes)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.starts_with("name_mismatch "), "{e}");
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Pack, &wrong).await,
            StatusCode::NOT_FOUND
        );
        // Blobs no longer fill the space before the trailer.
        let damaged = pbytes[100..].to_vec();
        let dname = blake3::hash(&damaged).to_hex().to_string();
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, &dname, &damaged)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.starts_with("bad_pack "), "{e}");
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Pack, &dname).await,
            StatusCode::NOT_FOUND
        );
        let big = vec![7u8; (4 << 20) + 1];
        let bname = blake3::hash(&big).to_hex().to_string();
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, &bname, &big)
            .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Pack, &bname).await,
            StatusCode::NOT_FOUND
        );
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Lock, "00ff", b"not json")
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (s, _) = t
            .put_file(&a.agent, &a.repo, FileKind::Pack, "UPPER", pbytes)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // The agent uploads but does not delete snapshots, packs, keys or the config.
        for (kind, name) in [
            (FileKind::Snapshot, snap_name.as_str()),
            (FileKind::Pack, pname.as_str()),
            (FileKind::Key, files[&FileKind::Key][0].0.as_str()),
            (FileKind::Config, "config"),
        ] {
            let (s, b) = t.delete_file(&a.agent, &a.repo, kind, name).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{kind}: {b}");
            assert_eq!(
                t.head_file(&a.agent, &a.repo, kind, name).await,
                StatusCode::OK
            );
        }
        // Nor may it write keys; locks it may write and delete.
        let (s, _) = t
            .put_file(
                &a.agent,
                &a.repo,
                FileKind::Key,
                &blake3::hash(b"k").to_hex(),
                b"k",
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, e) = t
            .put_file(&a.agent, &a.repo, FileKind::Lock, "00aa", &lock_json())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, _) = t
            .delete_file(&a.agent, &a.repo, FileKind::Lock, "00aa")
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        // Company B: 404 on everything of A's; its upload of identical bytes is its own copy.
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        for tok in [&b.admin, &b.agent] {
            assert_eq!(
                t.head_file(tok, &a.repo, FileKind::Pack, pname).await,
                StatusCode::NOT_FOUND
            );
            let (s, _) = t.get(&format!("/api/v1/repos/{}", a.repo), tok).await;
            assert_eq!(s, StatusCode::NOT_FOUND);
            let (s, _) = t
                .put_file(tok, &a.repo, FileKind::Pack, pname, pbytes)
                .await;
            assert_eq!(s, StatusCode::NOT_FOUND);
            let (s, _) = t.delete_file(tok, &a.repo, FileKind::Lock, "00aa").await;
            assert_eq!(s, StatusCode::NOT_FOUND);
        }
        let (s, p) = t
            .post(
                &format!("/api/v1/repos/{}/blobs/lookup", b.repo),
                Some(&b.agent),
                json!({"ids": [known]}),
            )
            .await;
        assert_eq!(
            (s, p["present"].clone()),
            (StatusCode::OK, json!([false])),
            "no cross-company dedup"
        );
        // Referring to A's repository by name resolves to B's own.
        let (s, r) = t.get("/api/v1/repos/main", &b.agent).await;
        assert_eq!(
            (s, r["id"].as_str().unwrap()),
            (StatusCode::OK, b.repo.as_str())
        );
        let (s, e) = t
            .put_file(&b.agent, &b.repo, FileKind::Pack, pname, pbytes)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, _, body) = t
            .raw(
                Method::GET,
                &format!("/api/v1/repos/{}/files/data/{pname}", b.repo),
                &b.agent,
                None,
                None,
            )
            .await;
        assert_eq!((s, body == *pbytes), (StatusCode::OK, true));
        // A's admin deletes the pack from A's repository; B's copy stays.
        let (s, _) = t
            .delete_file(&a.admin, &a.repo, FileKind::Pack, pname)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            t.head_file(&b.agent, &b.repo, FileKind::Pack, pname).await,
            StatusCode::OK
        );
        assert_eq!(
            t.head_file(&a.agent, &a.repo, FileKind::Pack, pname).await,
            StatusCode::NOT_FOUND
        );
        let (s, _) = t
            .delete_file(&a.admin, &a.repo, FileKind::Pack, pname)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Audit and metrics saw the commit and the refusals.
        let pa = t
            .staff(
                "root@provider.example",
                brr_api::identity::Role::ProviderAdmin,
            )
            .await;
        let (_, audit) = t.get("/api/v1/audit?limit=500", &pa).await;
        let text = audit.to_string();
        for needle in [
            "repo.snapshot_commit",
            "missing_blobs",
            "name_mismatch",
            "bad_pack",
            "repo.file_delete",
            "agent.enroll",
            "repo.create",
        ] {
            assert!(text.contains(needle), "audit lacks {needle}");
        }
        let m = reqwest::get(format!("http://{}/metrics", t.running.ops_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("brrd_repo_snapshots_committed_total 1\n"), "{m}");
        assert!(
            m.contains("brrd_repo_refusals_total{reason=\"missing_blobs\"} 2\n"),
            "{m}"
        );
        assert!(
            m.contains(&format!(
                "brrd_company_stored_bytes{{company=\"{}\"}}",
                a.company
            )),
            "{m}"
        );
        t.running.shutdown().await;
    }
}
