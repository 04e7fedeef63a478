//! The conformance suite against every backend: local folder, memory, and a real S3 server when
//! `BRR_TEST_S3_ENDPOINT` is set (see `.ci/s3.sh`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use brr_storage::{
    Backend, CountingBackend, FaultInjectingBackend, FileKind, LocalBackend, OpendalBackend,
    S3Config, conformance,
};

#[test]
fn local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("repo"));
    conformance::run_all(&backend);
}

#[test]
fn local_backend_in_existing_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&LocalBackend::new(dir.path()));
}

#[test]
fn memory_backend() {
    conformance::run_all(&OpendalBackend::memory().unwrap());
}

#[test]
fn wrappers_pass_through() {
    let inner: Arc<dyn Backend> = Arc::new(OpendalBackend::memory().unwrap());
    let backend = CountingBackend::new(FaultInjectingBackend::new(inner));
    conformance::run_all(&backend);
    assert!(backend.counts().writes > 100);
}

#[test]
fn open_url_backends() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("local:{}", dir.path().join("repo").display());
    conformance::run_all(&*brr_storage::open_url(&url).unwrap());
    conformance::run_all(&*brr_storage::open_url("memory:").unwrap());
}

/// A unique prefix per test run, so runs against one bucket do not see each other's files.
fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("brr-test/{}-{nanos}", std::process::id())
}

fn s3_config_from_env() -> Option<S3Config> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let endpoint = var("BRR_TEST_S3_ENDPOINT")?;
    let missing = |name: &str| format!("BRR_TEST_S3_ENDPOINT is set but {name} is not");
    Some(S3Config {
        endpoint,
        bucket: var("BRR_TEST_S3_BUCKET")
            .unwrap_or_else(|| panic!("{}", missing("BRR_TEST_S3_BUCKET"))),
        region: var("BRR_TEST_S3_REGION").unwrap_or_else(|| "garage".to_owned()),
        prefix: unique_prefix(),
        access_key_id: var("BRR_TEST_S3_ACCESS_KEY")
            .unwrap_or_else(|| panic!("{}", missing("BRR_TEST_S3_ACCESS_KEY"))),
        secret_access_key: var("BRR_TEST_S3_SECRET_KEY")
            .unwrap_or_else(|| panic!("{}", missing("BRR_TEST_S3_SECRET_KEY"))),
    })
}

/// Runs only with a real S3 server; without one it passes with a notice, unless `BRR_REQUIRE_S3` is set.
#[test]
fn s3_backend() {
    let Some(config) = s3_config_from_env() else {
        let required = std::env::var_os("BRR_REQUIRE_S3").is_some();
        eprintln!(
            "NOTICE: S3 conformance test skipped: BRR_TEST_S3_ENDPOINT is not set (start a server with: eval \"$(bash .ci/s3.sh)\")"
        );
        assert!(
            !required,
            "BRR_REQUIRE_S3 is set but BRR_TEST_S3_ENDPOINT is not: no S3 server to test against"
        );
        return;
    };
    let backend = OpendalBackend::s3(config.clone()).unwrap();
    conformance::run_all(&backend);
    // A second repository in the same bucket under another prefix does not see the first one's files.
    let other = OpendalBackend::s3(S3Config {
        prefix: format!("{}-other", config.prefix),
        ..config
    })
    .unwrap();
    assert!(other.list(FileKind::Config).unwrap().is_empty());
    other.create().unwrap();
    // Leave nothing behind but the config files of the two test repositories.
    backend.remove(FileKind::Config, "config").unwrap();
    for kind in FileKind::ALL {
        assert!(
            backend.list(kind).unwrap().is_empty(),
            "{kind} files left in the test bucket"
        );
    }
}
