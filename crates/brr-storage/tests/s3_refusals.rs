//! An S3 service that refuses for good (wrong secret, unknown access key, missing bucket) is reported
//! as a [`Refusal`], not as a missing file, an outage or an empty listing. Runs against the test S3
//! server (`.ci/s3.sh`); without one it passes with a notice, unless `BRR_REQUIRE_S3` is set.

#![allow(clippy::unwrap_used)]

use brr_storage::{Backend, FileKind, OpendalBackend, Refusal, S3Config, StorageError};

fn s3_config_from_env() -> Option<S3Config> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("BRR_TEST_S3_ENDPOINT") else {
        eprintln!("NOTICE: S3 refusal test skipped: BRR_TEST_S3_ENDPOINT is not set");
        assert!(
            std::env::var_os("BRR_REQUIRE_S3").is_none(),
            "BRR_REQUIRE_S3 is set but BRR_TEST_S3_ENDPOINT is not"
        );
        return None;
    };
    Some(S3Config {
        endpoint,
        bucket: var("BRR_TEST_S3_BUCKET").unwrap(),
        region: var("BRR_TEST_S3_REGION").unwrap_or_else(|| "garage".to_owned()),
        prefix: format!("brr-test/refusals-{}", std::process::id()),
        access_key_id: var("BRR_TEST_S3_ACCESS_KEY").unwrap(),
        secret_access_key: var("BRR_TEST_S3_SECRET_KEY").unwrap(),
    })
}

fn refusal<T: std::fmt::Debug>(r: Result<T, StorageError>) -> Option<Refusal> {
    let e = r.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
    assert!(!e.to_string().contains('\n'), "{e}");
    Refusal::of(&e)
}

#[test]
fn refusals_are_told_apart_from_missing_files_and_outages() {
    let Some(good) = s3_config_from_env() else {
        return;
    };
    let wrong_secret = S3Config {
        secret_access_key: "0".repeat(64),
        ..good.clone()
    };
    let unknown_key = S3Config {
        access_key_id: format!("GK{}", "0".repeat(24)),
        ..good.clone()
    };
    for (what, config) in [("wrong secret", wrong_secret), ("unknown key", unknown_key)] {
        let secret = config.secret_access_key.clone();
        let b = OpendalBackend::s3(config).unwrap();
        for r in [
            refusal(b.size(FileKind::Config, "config")),
            refusal(b.read(FileKind::Config, "config")),
            refusal(b.write(FileKind::Lock, "ab", b"x")),
            refusal(b.list(FileKind::Lock)),
            refusal(b.create()),
        ] {
            assert_eq!(r, Some(Refusal::AccessDenied), "{what}");
        }
        let e = b.read(FileKind::Config, "config").unwrap_err();
        assert!(!e.to_string().contains(&secret), "{what}: {e}");
    }
    let b = OpendalBackend::s3(S3Config {
        bucket: "brr-no-such-bucket".into(),
        ..good.clone()
    })
    .unwrap();
    for r in [
        refusal(b.read(FileKind::Config, "config")),
        refusal(b.write(FileKind::Lock, "ab", b"x")),
        refusal(b.list(FileKind::Lock)),
    ] {
        assert_eq!(r, Some(Refusal::NoSuchBucket));
    }
    // A HEAD answer has no body: a stat cannot tell a missing bucket from a missing file.
    assert!(
        b.size(FileKind::Config, "config")
            .unwrap_err()
            .is_not_found()
    );
    // The right key: a missing file is still just missing, an empty folder still empty.
    let b = OpendalBackend::s3(good).unwrap();
    assert!(
        b.read(FileKind::Config, "config")
            .unwrap_err()
            .is_not_found()
    );
    assert!(b.list(FileKind::Lock).unwrap().is_empty());
    for d in ["access denied: x", "no such bucket: y", "other"] {
        let e = StorageError::Backend {
            op: "read",
            detail: d.into(),
        };
        assert_eq!(Refusal::of(&e).is_some(), d != "other");
    }
    assert!(
        Refusal::AccessDenied
            .describe()
            .contains("AWS_SECRET_ACCESS_KEY")
    );
}
