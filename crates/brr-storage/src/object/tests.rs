//! Tests of the object-store backend: S3 configuration checks, the shared I/O runtime, calls from
//! other runtimes.

use super::*;

fn config() -> S3Config {
    S3Config {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "bucket".into(),
        region: "garage".into(),
        prefix: "/some/prefix/".into(),
        access_key_id: "GKid".into(),
        secret_access_key: "very-secret".into(),
    }
}

#[test]
fn s3_debug_hides_secret_and_location_round_trips() {
    let c = config();
    assert!(!format!("{c:?}").contains("very-secret"));
    let b = OpendalBackend::s3(c).unwrap();
    assert_eq!(b.location(), "s3:http://127.0.0.1:9/bucket/some/prefix");
    assert!(!format!("{b:?}").contains("very-secret"));
}

#[test]
fn s3_config_is_checked() {
    let mut c = config();
    c.endpoint = "127.0.0.1:9".into();
    assert!(matches!(
        OpendalBackend::s3(c).unwrap_err(),
        StorageError::InvalidLocation { .. }
    ));
    let mut c = config();
    c.secret_access_key.clear();
    assert!(matches!(
        OpendalBackend::s3(c).unwrap_err(),
        StorageError::InvalidLocation { .. }
    ));
}

#[test]
fn unreachable_s3_is_retryable() {
    // Nothing listens on the discard port of loopback: the connection is refused. The https case also
    // builds the TLS client configuration (rustls with aws-lc-rs), which must not panic.
    for endpoint in ["http://127.0.0.1:9", "https://127.0.0.1:9"] {
        let b = OpendalBackend::s3(S3Config {
            endpoint: endpoint.into(),
            ..config()
        })
        .unwrap()
        .with_timeout(Duration::from_secs(20));
        let err = b.read(FileKind::Config, "config").unwrap_err();
        assert!(err.is_retryable(), "{endpoint}: {err:?}");
        assert!(!err.to_string().contains('\n'));
    }
}

/// Threads of this process (Linux).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn backends_share_one_io_runtime() {
    let first = OpendalBackend::memory().unwrap();
    first.write(FileKind::Key, "k", b"x").unwrap();
    let before = threads();
    let many: Vec<_> = (0..64).map(|_| OpendalBackend::memory().unwrap()).collect();
    for b in &many {
        b.write(FileKind::Key, "k", b"y").unwrap();
    }
    // One runtime per backend would have started 128 more threads.
    assert!(threads() < before + 32, "{before} -> {}", threads());
    drop(many);
    assert_eq!(first.read(FileKind::Key, "k").unwrap(), b"x");
}

#[test]
fn works_from_spawn_blocking_and_inside_other_runtimes() {
    let b = std::sync::Arc::new(OpendalBackend::memory().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let b2 = b.clone();
    rt.block_on(async move {
        tokio::task::spawn_blocking(move || b2.write(FileKind::Key, "k", b"x"))
            .await
            .unwrap()
            .unwrap();
    });
    // Discouraged (it blocks the executor thread), but it must neither panic nor deadlock.
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(
        current
            .block_on(async { b.read(FileKind::Key, "k") })
            .unwrap(),
        b"x"
    );
    // Dropping the last handle inside an async context does not panic either.
    current.block_on(async move { drop(b) });
}
