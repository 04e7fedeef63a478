//! Client tests against a tiny in-process server speaking the contract's file API.

mod lookup;
mod server;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brr_storage::{Backend, FileKind, StorageError};
use zeroize::Zeroizing;

use crate::*;

fn options() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        },
        ..ClientOptions::default()
    }
}

/// A client with a recorded (not slept) backoff.
fn client(url: &str, token: &str) -> (Arc<Client>, Arc<Mutex<Vec<Duration>>>) {
    let slept = Arc::new(Mutex::new(Vec::new()));
    let rec = slept.clone();
    let server = ServerUrl::parse(url).unwrap();
    let c = Client::new(
        &server,
        Credential::Token(Zeroizing::new(token.into())),
        &options(),
    )
    .unwrap()
    .with_sleep(move |d| rec.lock().unwrap().push(d));
    (Arc::new(c), slept)
}

fn backend(url: &str) -> RemoteBackend {
    RemoteBackend::new(client(url, "good").0, "r1").unwrap()
}

#[test]
fn conformance_suite_over_http() {
    let srv = server::start();
    brr_storage::conformance::run_all(&backend(&srv.url));
}

#[test]
fn ranges_are_exact_and_short_reads_reported() {
    let srv = server::start();
    let b = backend(&srv.url);
    let data: Vec<u8> = (0..=255).collect();
    b.write(FileKind::Pack, "ab01", &data).unwrap();
    assert_eq!(
        b.read_range(FileKind::Pack, "ab01", 10, 5).unwrap(),
        &data[10..15]
    );
    assert_eq!(b.read_range(FileKind::Pack, "ab01", 255, 1).unwrap(), [255]);
    assert_eq!(b.read_range(FileKind::Pack, "ab01", 256, 0).unwrap(), b"");
    let e = b.read_range(FileKind::Pack, "ab01", 250, 10).unwrap_err();
    assert!(
        matches!(
            e,
            StorageError::ShortRead {
                expected: 10,
                got: 6,
                ..
            }
        ),
        "{e:?}"
    );
    let e = b.read_range(FileKind::Pack, "ab01", 300, 4).unwrap_err();
    assert!(matches!(e, StorageError::ShortRead { got: 0, .. }), "{e:?}");
    let e = b.read_range(FileKind::Pack, "ab01", 257, 0).unwrap_err();
    assert!(matches!(e, StorageError::ShortRead { .. }), "{e:?}");
    // A server that ignores Range still yields exactly the asked bytes.
    srv.knobs.ignore_range.store(true, Ordering::SeqCst);
    assert_eq!(
        b.read_range(FileKind::Pack, "ab01", 100, 3).unwrap(),
        [100, 101, 102]
    );
    let e = b.read_range(FileKind::Pack, "ab01", 254, 4).unwrap_err();
    assert!(matches!(e, StorageError::ShortRead { got: 2, .. }), "{e:?}");
    let log = srv.knobs.log.lock().unwrap().join("\n");
    assert!(log.contains("GET /repos/r1/files/data/ab01"), "{log}");
}

#[test]
fn missing_file_versus_missing_repository() {
    let srv = server::start();
    let b = backend(&srv.url);
    let e = b.read(FileKind::Snapshot, "00ff").unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(b.refusal().is_none());
    let other = RemoteBackend::new(client(&srv.url, "good").0, "not-ours").unwrap();
    let e = other.read(FileKind::Config, "config").unwrap_err();
    assert!(
        !e.is_not_found(),
        "a missing repository is not a missing file: {e:?}"
    );
    let refusal = other.refusal().unwrap();
    assert_eq!(refusal.exit_code(), EXIT_NOT_FOUND);
    assert!(
        refusal
            .to_string()
            .contains("repository \"not-ours\" not found"),
        "{refusal}"
    );
    assert!(other.list(FileKind::Snapshot).is_err());
}

#[test]
fn idempotent_requests_are_retried_with_backoff() {
    let srv = server::start();
    let (c, slept) = client(&srv.url, "good");
    let b = RemoteBackend::new(c, "r1").unwrap();
    b.write(FileKind::Index, "aa", b"index").unwrap();
    srv.knobs.fail_next.store(2, Ordering::SeqCst);
    assert_eq!(b.read(FileKind::Index, "aa").unwrap(), b"index");
    assert_eq!(
        *slept.lock().unwrap(),
        [Duration::from_millis(100), Duration::from_millis(200)]
    );
    // Content-addressed uploads are retried too.
    srv.knobs.fail_next.store(1, Ordering::SeqCst);
    b.write(FileKind::Pack, "bb01", b"pack").unwrap();
    // Past the attempts: Unavailable for the engine, and the refusal says "server failed".
    srv.knobs.fail_next.store(10, Ordering::SeqCst);
    let e = b.read(FileKind::Index, "aa").unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(b.refusal().unwrap().exit_code(), EXIT_UNREACHABLE);
    srv.knobs.fail_next.store(0, Ordering::SeqCst);
}

#[test]
fn config_uploads_are_not_retried() {
    let srv = server::start();
    let (c, slept) = client(&srv.url, "good");
    let b = RemoteBackend::new(c, "r1").unwrap();
    srv.knobs.fail_next.store(1, Ordering::SeqCst);
    assert!(b.write(FileKind::Config, "config", b"c0").is_err());
    assert!(slept.lock().unwrap().is_empty());
    // Locks are rewritten with the same bytes: retried.
    srv.knobs.fail_next.store(1, Ordering::SeqCst);
    b.write(FileKind::Lock, "l1", b"{}").unwrap();
    assert_eq!(slept.lock().unwrap().len(), 1);
    // A second config is refused as the server does: 409, not retried, not a refusal of rights.
    srv.knobs.config_once.store(true, Ordering::SeqCst);
    b.write(FileKind::Config, "config", b"c1").unwrap();
    let e = b.write(FileKind::Config, "config", b"c2").unwrap_err();
    assert!(e.to_string().contains("[exists]"), "{e}");
    assert!(matches!(
        b.create(),
        Err(StorageError::AlreadyExists { .. })
    ));
}

#[test]
fn refusals_keep_their_meaning() {
    let srv = server::start();
    let b = backend(&srv.url);
    b.write(FileKind::Snapshot, "5a", b"s").unwrap();
    srv.knobs.append_only.store(true, Ordering::SeqCst);
    let e = b.remove(FileKind::Snapshot, "5a").unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(b.refusal().unwrap().exit_code(), EXIT_APPEND_ONLY);
    let b = backend(&srv.url);
    srv.knobs.over_quota.store(true, Ordering::SeqCst);
    assert!(b.write(FileKind::Pack, "cc01", b"p").is_err());
    let r = b.refusal().unwrap();
    assert_eq!(r.exit_code(), EXIT_QUOTA);
    assert!(r.to_string().contains("stored bytes quota"), "{r}");
    let nobody = RemoteBackend::new(client(&srv.url, "expired").0, "r1").unwrap();
    assert!(nobody.list(FileKind::Snapshot).is_err());
    assert_eq!(nobody.refusal().unwrap().exit_code(), EXIT_AUTH);
}

#[test]
fn removing_absent_file_is_not_found() {
    let srv = server::start();
    let b = backend(&srv.url);
    assert!(b.remove(FileKind::Lock, "nope").unwrap_err().is_not_found());
    b.write(FileKind::Lock, "l2", b"{}").unwrap();
    b.remove(FileKind::Lock, "l2").unwrap();
}

#[test]
fn unreachable_server_is_its_own_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (c, slept) = client(&format!("http://127.0.0.1:{port}"), "good");
    let b = RemoteBackend::new(c, "r1").unwrap();
    let e = b.list(FileKind::Snapshot).unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(slept.lock().unwrap().len(), 3, "4 attempts");
    let r = b.refusal().unwrap();
    assert_eq!((r.code(), r.exit_code()), ("BRR-N014", EXIT_UNREACHABLE));
}

struct Totp(Option<&'static str>, u32);

impl LoginPrompt for Totp {
    fn totp(&mut self) -> Option<Zeroizing<String>> {
        self.1 += 1;
        self.0.map(|c| Zeroizing::new(c.to_owned()))
    }
}

#[test]
fn login_refresh_and_logout() {
    let srv = server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(dir.path().join("credentials.toml"));
    let server = ServerUrl::parse(&srv.url).unwrap();
    let e = login(
        &server,
        &options(),
        &store,
        "ana@example.com",
        "wrong",
        &mut Totp(None, 0),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), EXIT_AUTH);
    assert!(store.get(server.as_str()).unwrap().is_none());
    login(
        &server,
        &options(),
        &store,
        "ana@example.com",
        "pw",
        &mut Totp(None, 0),
    )
    .unwrap();
    let entry = store.get(server.as_str()).unwrap().unwrap();
    assert_eq!(entry.access_token.as_deref(), Some("access-1"));
    assert_eq!(entry.email.as_deref(), Some("ana@example.com"));

    // The server forgets access-1 (expiry): the client refreshes once and saves the rotated pair.
    srv.knobs.access.lock().unwrap().retain(|t| t != "access-1");
    let credential = Client::credential_for(&store, &server, &entry).unwrap();
    let c = Arc::new(Client::new(&server, credential, &options()).unwrap());
    let b = RemoteBackend::new(c.clone(), "r1").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                RemoteBackend::new(c, "r1")
                    .unwrap()
                    .list(FileKind::Snapshot)
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    b.list(FileKind::Key).unwrap();
    assert_eq!(
        srv.knobs.refreshed.load(Ordering::SeqCst),
        1,
        "one refresh for all threads"
    );
    let entry = store.get(server.as_str()).unwrap().unwrap();
    assert_eq!(entry.access_token.as_deref(), Some("access-2"));
    assert_eq!(entry.refresh_token.as_deref(), Some("refresh-2"));

    // A session whose refresh fails too: the user must log in again.
    srv.knobs.access.lock().unwrap().clear();
    let e = RemoteBackend::new(c, "r1")
        .unwrap()
        .list(FileKind::Key)
        .unwrap_err();
    assert!(!e.is_retryable());
    assert!(logout(&server, &options(), &store).unwrap());
    assert!(!logout(&server, &options(), &store).unwrap());
    assert!(store.get(server.as_str()).unwrap().is_none());
}

#[test]
fn login_asks_for_totp_when_the_server_wants_one() {
    let srv = server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(dir.path().join("credentials.toml"));
    let server = ServerUrl::parse(&srv.url).unwrap();
    let mut none = Totp(None, 0);
    let e = login(
        &server,
        &options(),
        &store,
        "totp@example.com",
        "pw",
        &mut none,
    )
    .unwrap_err();
    assert_eq!((e.code(), none.1), ("BRR-N005", 1));
    let mut wrong = Totp(Some("000000"), 0);
    let e = login(
        &server,
        &options(),
        &store,
        "totp@example.com",
        "pw",
        &mut wrong,
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), EXIT_AUTH);
    let mut right = Totp(Some("123456"), 0);
    login(
        &server,
        &options(),
        &store,
        "totp@example.com",
        "pw",
        &mut right,
    )
    .unwrap();
    assert_eq!(right.1, 1);
}

#[test]
fn enrolment_stores_the_agent_token() {
    let srv = server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(dir.path().join("credentials.toml"));
    let server = ServerUrl::parse(&srv.url).unwrap();
    let e = enroll(&server, &options(), &store, "brr_key1_wrong", "host-a").unwrap_err();
    assert_eq!(e.exit_code(), EXIT_AUTH);
    let e = enroll(
        &server,
        &options(),
        &store,
        "brr_key1_secret",
        "one-too-many",
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), EXIT_QUOTA);
    assert!(enroll(&server, &options(), &store, "brr_key1_secret", "").is_err());
    let id = enroll(&server, &options(), &store, "brr_key1_secret", "host-a").unwrap();
    assert_eq!(id, "ag7");
    let entry = store.get(server.as_str()).unwrap().unwrap();
    assert_eq!(entry.agent_token.as_deref(), Some("brra_ag7_s3cret"));
    let credential = Client::credential_for(&store, &server, &entry).unwrap();
    assert!(matches!(credential, Credential::Token(_)));
    let c = Arc::new(Client::new(&server, credential, &options()).unwrap());
    RemoteBackend::new(c, "r1")
        .unwrap()
        .list(FileKind::Snapshot)
        .unwrap();
}

#[test]
fn repositories_are_created_once() {
    let srv = server::start();
    let (c, _) = client(&srv.url, "good");
    let repos = Repos::new(&c);
    assert!(repos.create("docs", false).unwrap());
    assert!(!repos.create("docs", false).unwrap());
    assert_eq!(repos.get("docs").unwrap().name, "docs");
    let e = repos.get("absent").unwrap_err();
    assert_eq!(e.exit_code(), EXIT_NOT_FOUND);
    assert!(repos.create("Bad_Name", false).is_err());
}

#[test]
fn not_logged_in_is_precise() {
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(dir.path().join("credentials.toml"));
    let server = ServerUrl::parse("https://backup.example.net").unwrap();
    let e = Client::credential_for(&store, &server, &Entry::default()).unwrap_err();
    assert_eq!((e.code(), e.exit_code()), ("BRR-N003", EXIT_AUTH));
    assert!(
        e.to_string()
            .contains("brr login --server https://backup.example.net"),
        "{e}"
    );
}

#[test]
fn every_attempt_is_counted_and_large_bodies_arrive_whole() {
    let srv = server::start();
    let (c, _) = client(&srv.url, "good");
    let b = RemoteBackend::new(c.clone(), "r1").unwrap();
    assert_eq!(c.requests(), 0);
    // A body of several streamed pieces, not a multiple of the piece size, arrives byte for byte.
    let big: Vec<u8> = (0..crate::transport::CHUNK * 5 + 123)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    b.write(FileKind::Pack, "cc01", &big).unwrap();
    assert_eq!(c.requests(), 1);
    assert_eq!(b.read(FileKind::Pack, "cc01").unwrap(), big);
    assert_eq!(c.requests(), 2);
    // Two failed attempts and the one that succeeds: three requests.
    srv.knobs.fail_next.store(2, Ordering::SeqCst);
    assert_eq!(
        b.read_range(FileKind::Pack, "cc01", 10, 5).unwrap(),
        &big[10..15]
    );
    assert_eq!(c.requests(), 5);
}
