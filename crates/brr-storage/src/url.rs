//! [`open_url`]: a backend from a repository location string.

use std::sync::Arc;

use crate::{Backend, LocalBackend, OpendalBackend, S3Config, StorageError};

/// Region used for S3 when neither `AWS_REGION` nor `AWS_DEFAULT_REGION` is set.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// Open the repository location `s`:
///
/// | `s` | Backend |
/// |---|---|
/// | `/srv/repo`, `repo`, `./a:b` (a plain path) | [`LocalBackend`] |
/// | `local:PATH` | [`LocalBackend`] at `PATH` (for paths that look like a scheme, e.g. `local:c:d`) |
/// | `s3:https://ENDPOINT/BUCKET` or `s3:https://ENDPOINT/BUCKET/PREFIX/…` (or `http://`) | [`OpendalBackend::s3`], path-style |
/// | `memory:` | [`OpendalBackend::memory`]: a new, empty in-memory repository |
///
/// For S3, credentials come from the environment: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
/// (both required), and the region from `AWS_REGION`, else `AWS_DEFAULT_REGION`, else
/// [`DEFAULT_S3_REGION`] (a default Garage needs `AWS_REGION=garage`). Nothing is contacted here.
///
/// Any other `scheme:` prefix is [`StorageError::InvalidLocation`].
pub fn open_url(s: &str) -> Result<Arc<dyn Backend>, StorageError> {
    open_url_with_env(s, |var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

fn open_url_with_env(
    s: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Backend>, StorageError> {
    let invalid = |reason: &str| StorageError::InvalidLocation {
        location: s.to_owned(),
        reason: reason.to_owned(),
    };
    if s.is_empty() {
        return Err(invalid(
            "the location is empty; give a folder path or an s3: URL",
        ));
    }
    let Some((scheme, rest)) = split_scheme(s) else {
        return Ok(Arc::new(LocalBackend::new(s)));
    };
    match scheme {
        "local" if rest.is_empty() => {
            Err(invalid("local: needs a folder path, e.g. local:/srv/repo"))
        }
        "local" => Ok(Arc::new(LocalBackend::new(rest))),
        "memory" if rest.is_empty() => Ok(Arc::new(OpendalBackend::memory()?)),
        "memory" => Err(invalid("memory: takes nothing after the colon")),
        "s3" => {
            let mut config = parse_s3(rest).map_err(|reason| invalid(&reason))?;
            config.access_key_id = env("AWS_ACCESS_KEY_ID").ok_or_else(|| {
                invalid("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3 access")
            })?;
            config.secret_access_key = env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| {
                invalid("set AWS_SECRET_ACCESS_KEY (and AWS_ACCESS_KEY_ID) for S3 access")
            })?;
            config.region = env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_S3_REGION.to_owned());
            Ok(Arc::new(OpendalBackend::s3(config)?))
        }
        other => Err(invalid(&format!(
            "unknown storage scheme {other:?}: use a folder path, local:PATH, s3:https://host/bucket/prefix or memory:"
        ))),
    }
}

/// Open the location `sub` (folders of `[0-9a-z-]` separated by `/`, e.g. `"<company>/<repo>"`) inside
/// the location `base`, with the same backend as [`open_url`]: a sub-folder of a folder, a longer key
/// prefix of an S3 location. For `memory:` the result is a new, empty in-memory repository (callers that
/// need to reopen one keep the returned backend). A `sub` that could escape `base` (empty segments, `..`,
/// upper case, dots) is [`StorageError::InvalidLocation`], before anything is opened.
pub fn open_url_at(base: &str, sub: &str) -> Result<Arc<dyn Backend>, StorageError> {
    let bad_sub = sub.is_empty()
        || sub
            .split('/')
            .any(|seg| crate::validate_name(crate::FileKind::Index, seg).is_err());
    if bad_sub {
        return Err(StorageError::InvalidLocation {
            location: base.to_owned(),
            reason: format!("sub-location {sub:?} must be folders of [0-9a-z-] separated by /"),
        });
    }
    open_url(&join_location(base, sub))
}

/// The location of `sub` inside `base` (`sub` already checked); `memory:` and unknown schemes stay as
/// they are (`open_url` then opens a fresh memory repository or reports the scheme).
fn join_location(base: &str, sub: &str) -> String {
    match split_scheme(base) {
        None => format!("local:{}/{sub}", base.trim_end_matches('/')),
        Some(("local", rest)) => format!("local:{}/{sub}", rest.trim_end_matches('/')),
        Some(("s3", _)) => format!("{}/{sub}", base.trim_end_matches('/')),
        Some(_) => base.to_owned(),
    }
}

/// `Some((scheme, rest))` if `s` starts with a URL scheme of at least two characters (a single letter is
/// a Windows drive, a `/` before the colon means a path).
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let looks_like_scheme = scheme.len() >= 2
        && first_is_letter
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    looks_like_scheme.then_some((scheme, rest))
}

/// Parse `https://endpoint[:port]/bucket[/prefix…]` into a config without credentials.
fn parse_s3(rest: &str) -> Result<S3Config, String> {
    let (proto, after) = rest
        .split_once("://")
        .filter(|(p, _)| *p == "http" || *p == "https")
        .ok_or("expected s3:https://HOST/BUCKET/PREFIX (or http://)")?;
    let (host, path) = after.split_once('/').unwrap_or((after, ""));
    if host.is_empty() {
        return Err("the S3 URL has no host".into());
    }
    let path = path.trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err("the S3 URL has no bucket: s3:https://HOST/BUCKET/PREFIX".into());
    }
    Ok(S3Config {
        endpoint: format!("{proto}://{host}"),
        bucket: bucket.to_owned(),
        region: String::new(),
        prefix: prefix.to_owned(),
        access_key_id: String::new(),
        secret_access_key: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "AWS_ACCESS_KEY_ID" => Some("GKtest".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "AWS_REGION" => Some("garage".into()),
            _ => None,
        }
    }

    fn open(s: &str) -> Result<Arc<dyn Backend>, StorageError> {
        open_url_with_env(s, env)
    }

    #[test]
    fn local_paths() {
        assert_eq!(open("/srv/repo").unwrap().location(), "/srv/repo");
        assert_eq!(open("local:/srv/repo").unwrap().location(), "/srv/repo");
        assert_eq!(open("relative/repo").unwrap().location(), "relative/repo");
        assert_eq!(open("./a:b").unwrap().location(), "./a:b");
        assert_eq!(open("c:/repo").unwrap().location(), "c:/repo");
        assert_eq!(open("local:c:d").unwrap().location(), "c:d");
    }

    #[test]
    fn s3_urls() {
        let b = open("s3:https://s3.example.net/bucket/a/b/").unwrap();
        assert_eq!(b.location(), "s3:https://s3.example.net/bucket/a/b");
        let b = open("s3:http://127.0.0.1:3900/bucket").unwrap();
        assert_eq!(b.location(), "s3:http://127.0.0.1:3900/bucket");
        let cfg = parse_s3("http://h:1/b/p/q").unwrap();
        assert_eq!(
            (
                cfg.endpoint.as_str(),
                cfg.bucket.as_str(),
                cfg.prefix.as_str()
            ),
            ("http://h:1", "b", "p/q")
        );
    }

    #[test]
    fn memory_works() {
        let b = open("memory:").unwrap();
        b.create().unwrap();
        assert_eq!(b.location(), "memory:");
    }

    #[test]
    fn bad_locations() {
        for bad in [
            "",
            "local:",
            "memory:x",
            "ftp://host/x",
            "s3:",
            "s3:ftp://h/b",
            "s3:https://",
            "s3:https://host",
            "s3:https://host/",
        ] {
            let err = open(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert!(
                matches!(err, StorageError::InvalidLocation { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn sub_locations() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap();
        let b = open_url_at(base, "c1/r1").unwrap();
        b.create().unwrap();
        b.write(crate::FileKind::Snapshot, "s", b"x").unwrap();
        assert!(dir.path().join("c1/r1/snapshots/s").is_file());
        let b = open_url_at(&format!("local:{base}/"), "c1/r1").unwrap();
        assert_eq!(b.read(crate::FileKind::Snapshot, "s").unwrap(), b"x");
        assert!(open_url_at("memory:", "a/b").is_ok());
        assert_eq!(
            join_location("s3:https://h:9/bucket/pre/", "c/r"),
            "s3:https://h:9/bucket/pre/c/r"
        );
        assert_eq!(
            join_location("s3:https://h/bucket", "c/r"),
            "s3:https://h/bucket/c/r"
        );
        let cfg = parse_s3("https://h/bucket/c/r").unwrap();
        assert_eq!(
            (cfg.bucket.as_str(), cfg.prefix.as_str()),
            ("bucket", "c/r")
        );
        assert_eq!(join_location("/srv/repos/", "c/r"), "local:/srv/repos/c/r");
        for bad in ["", "..", "a/../b", "a//b", "/a", "A", "a/.x"] {
            assert!(open_url_at(base, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn s3_needs_credentials() {
        let err = open_url_with_env("s3:https://h/b", |_| None).err().unwrap();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
        let b = open_url_with_env("s3:https://h/b", |v| {
            (v != "AWS_REGION").then(|| "x".to_owned())
        });
        assert!(b.is_ok());
    }
}
