//! Agents, quotas, append-only repositories and the server's pack record, through the API: the shared
//! helpers here, the tests in the submodules.

use brr_core::index::IndexFile;
use brr_storage::FileKind;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::access::{enroll, lock_json};
use crate::common::{Backend, TestServer, start_server, store_setups};
use crate::repos::{engine_repo, local_files, tenant, upload_all};

mod agents;
mod append_only;
mod index_records;
mod quotas;

async fn provider_admin(t: &TestServer) -> String {
    t.staff(
        "root@provider.example",
        brr_api::identity::Role::ProviderAdmin,
    )
    .await
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
