//! Server-side maintenance without the key, end to end over TLS: retention after each snapshot (per
//! source tag, compared with `brr_core::retention`), append-only marks deleted only after the delay by
//! the scheduler, GC after retention with a concurrent backup session (nothing referenced lost, the
//! repository checks clean with the key), stale sessions, and company scope.
//!
//! The repository builders and helpers (shared with other test modules) live here, the tests in the
//! submodules.

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

mod gc;
mod jobs;
mod retention;

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
