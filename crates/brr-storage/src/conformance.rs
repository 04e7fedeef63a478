//! The conformance suite every [`Backend`] must pass: backends in this crate, wrappers, and backends in
//! other crates (a remote HTTP backend, caching layers).
//!
//! The checks panic with a message naming the backend and the broken expectation, so they are meant to
//! be called from tests:
//!
//! ```
//! let backend = brr_storage::OpendalBackend::memory()?;
//! brr_storage::conformance::run_all(&backend);
//! # Ok::<(), brr_storage::StorageError>(())
//! ```
//!
//! [`run_all`] needs an empty location. Each check in [`CHECKS`] can also run alone on an empty or
//! created location; each removes the files it wrote (the `config` file stays).

use std::collections::BTreeSet;

use crate::{Backend, CONFIG_NAME, FileInfo, FileKind, MAX_NAME_LEN, StorageError};

/// One conformance check: panics if `backend` breaks the contract.
pub type Check = fn(&dyn Backend);

/// Every check, by name, in the order [`run_all`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("create", check_create),
    ("write_read_overwrite", check_write_read_overwrite),
    ("read_range", check_read_range),
    ("size", check_size),
    ("list", check_list),
    ("remove", check_remove),
    ("not_found", check_not_found),
    ("invalid_names", check_invalid_names),
    ("empty_and_large_files", check_empty_and_large_files),
    ("concurrent_writes", check_concurrent_writes),
];

/// Size of the large file in [`check_empty_and_large_files`]: bigger than a pack (32 MiB).
pub const LARGE_FILE_SIZE: usize = 40 << 20;

/// Run every check of [`CHECKS`] on `backend`, whose location must be empty. Panics on the first failure.
pub fn run_all(backend: &dyn Backend) {
    for (name, check) in CHECKS {
        eprintln!("conformance check {name} on {}", backend.location());
        check(backend);
    }
}

/// Deterministic pseudo-random bytes (xorshift), distinct for distinct seeds.
pub fn test_data(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn ok<T>(b: &dyn Backend, what: &str, result: Result<T, StorageError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{}: {what} failed: {e} ({e:?})", b.location()),
    }
}

fn err<T: std::fmt::Debug>(
    b: &dyn Backend,
    what: &str,
    result: Result<T, StorageError>,
) -> StorageError {
    match result {
        Ok(v) => panic!(
            "{}: {what} succeeded ({v:?}) but should have failed",
            b.location()
        ),
        Err(e) => {
            assert!(
                !e.to_string().contains('\n'),
                "{}: {what}: error message not one line: {e}",
                b.location()
            );
            e
        }
    }
}

fn expect_not_found<T: std::fmt::Debug>(
    b: &dyn Backend,
    what: &str,
    result: Result<T, StorageError>,
) {
    let e = err(b, what, result);
    assert!(
        e.is_not_found(),
        "{}: {what}: expected NotFound, got {e:?}",
        b.location()
    );
}

fn names(files: &[FileInfo]) -> BTreeSet<String> {
    files.iter().map(|f| f.name.clone()).collect()
}

fn listed(b: &dyn Backend, kind: FileKind) -> BTreeSet<FileInfo> {
    let files = ok(b, &format!("list {kind}"), b.list(kind));
    let set: BTreeSet<FileInfo> = files.iter().cloned().collect();
    assert_eq!(
        set.len(),
        files.len(),
        "{}: list {kind} returned duplicates: {files:?}",
        b.location()
    );
    set
}

/// Create the repository location unless a `config` shows it already exists.
fn ensure_created(b: &dyn Backend) {
    match b.create() {
        Ok(()) | Err(StorageError::AlreadyExists { .. }) => {}
        Err(e) => panic!("{}: create failed: {e}", b.location()),
    }
}

/// A valid name of `kind` for test number `i`; packs get a hex prefix so they spread over fan-out folders.
fn name_for(kind: FileKind, tag: &str, i: usize) -> String {
    match kind {
        FileKind::Config => CONFIG_NAME.to_owned(),
        FileKind::Pack => format!("{:02x}{tag}-{i}", (i * 37 + tag.len() * 11) % 256),
        _ => format!("{tag}-{i}"),
    }
}

/// `create` prepares an empty location, may be repeated while there is no `config`, and refuses once there
/// is one.
pub fn check_create(b: &dyn Backend) {
    assert!(!b.location().is_empty(), "location is empty");
    ok(b, "create on an empty location", b.create());
    ok(b, "create again without a config", b.create());
    for kind in FileKind::ALL {
        assert!(
            listed(b, kind).is_empty(),
            "{}: a new repository lists {kind} files",
            b.location()
        );
    }
    ok(
        b,
        "write config",
        b.write(FileKind::Config, CONFIG_NAME, b"config v1"),
    );
    let e = err(b, "create over an existing repository", b.create());
    assert!(
        matches!(e, StorageError::AlreadyExists { .. }),
        "{}: create over an existing repository: expected AlreadyExists, got {e:?}",
        b.location()
    );
    assert_eq!(
        ok(b, "read config", b.read(FileKind::Config, CONFIG_NAME)),
        b"config v1"
    );
}

/// Files of every kind can be written, read back, and overwritten by longer and shorter contents.
pub fn check_write_read_overwrite(b: &dyn Backend) {
    ensure_created(b);
    let old_config = b.read(FileKind::Config, CONFIG_NAME).ok();
    for (i, kind) in FileKind::ALL.into_iter().enumerate() {
        let name = name_for(kind, "rw", i);
        for (round, len) in [(0u64, 1000), (1, 5000), (2, 10)] {
            let data = test_data(round * 100 + i as u64, len);
            ok(
                b,
                &format!("write {kind} {name}"),
                b.write(kind, &name, &data),
            );
            let back = ok(b, &format!("read {kind} {name}"), b.read(kind, &name));
            assert!(
                back == data,
                "{}: {kind} {name} read back different bytes (round {round})",
                b.location()
            );
            assert_eq!(
                ok(b, "size", b.size(kind, &name)),
                len as u64,
                "{}: size after overwrite",
                b.location()
            );
        }
        let files = listed(b, kind);
        assert_eq!(
            files.iter().filter(|f| f.name == name).count(),
            1,
            "{}: overwritten {kind} {name} not listed exactly once: {files:?}",
            b.location()
        );
        if kind != FileKind::Config {
            ok(b, "remove", b.remove(kind, &name));
        }
    }
    match old_config {
        Some(config) => ok(
            b,
            "restore config",
            b.write(FileKind::Config, CONFIG_NAME, &config),
        ),
        None => ok(b, "remove config", b.remove(FileKind::Config, CONFIG_NAME)),
    }
}

/// `read_range` returns exactly the asked bytes, and `ShortRead` for anything past the end.
pub fn check_read_range(b: &dyn Backend) {
    ensure_created(b);
    let data = test_data(7, 1000);
    for kind in [FileKind::Pack, FileKind::Index] {
        let name = name_for(kind, "range", 1);
        ok(b, "write", b.write(kind, &name, &data));
        for (offset, len) in [
            (0u64, 0u64),
            (0, 1),
            (0, 10),
            (0, 1000),
            (1, 999),
            (500, 1),
            (990, 10),
            (999, 1),
            (1000, 0),
        ] {
            let got = ok(
                b,
                &format!("read_range({offset}, {len})"),
                b.read_range(kind, &name, offset, len),
            );
            let want = &data[offset as usize..(offset + len) as usize];
            assert!(
                got == want,
                "{}: read_range({offset}, {len}) of {kind} returned wrong bytes",
                b.location()
            );
        }
        for (offset, len, available) in [
            (995u64, 10u64, 5u64),
            (0, 1001, 1000),
            (1000, 1, 0),
            (1001, 0, 0),
            (5000, 10, 0),
            (u64::MAX, 2, 0),
            (2, u64::MAX, 998),
        ] {
            let e = err(
                b,
                &format!("read_range({offset}, {len}) past the end"),
                b.read_range(kind, &name, offset, len),
            );
            match e {
                StorageError::ShortRead { expected, got, .. } => {
                    assert_eq!(
                        expected,
                        len,
                        "{}: ShortRead.expected for ({offset}, {len})",
                        b.location()
                    );
                    assert_eq!(
                        got,
                        available,
                        "{}: ShortRead.got for ({offset}, {len})",
                        b.location()
                    );
                }
                other => panic!(
                    "{}: read_range({offset}, {len}): expected ShortRead, got {other:?}",
                    b.location()
                ),
            }
        }
        ok(b, "remove", b.remove(kind, &name));
    }
}

/// `size` reports exact sizes and NotFound for missing files.
pub fn check_size(b: &dyn Backend) {
    ensure_created(b);
    for (i, len) in [0usize, 1, 4095, 4096, 4097, 100_000]
        .into_iter()
        .enumerate()
    {
        let name = name_for(FileKind::Snapshot, "size", i);
        ok(
            b,
            "write",
            b.write(FileKind::Snapshot, &name, &test_data(i as u64, len)),
        );
        assert_eq!(
            ok(b, "size", b.size(FileKind::Snapshot, &name)),
            len as u64,
            "{}: size of {name}",
            b.location()
        );
        ok(b, "remove", b.remove(FileKind::Snapshot, &name));
        expect_not_found(b, "size after remove", b.size(FileKind::Snapshot, &name));
    }
}

/// `list` returns exactly the files of one kind with their sizes; packs across all fan-out folders.
pub fn check_list(b: &dyn Backend) {
    ensure_created(b);
    for kind in FileKind::FOLDERS {
        assert!(
            listed(b, kind).is_empty(),
            "{}: {kind} files left over before the list check",
            b.location()
        );
    }
    let mut expected = Vec::new();
    for (k, kind) in FileKind::FOLDERS.into_iter().enumerate() {
        let mut files = BTreeSet::new();
        let count = if kind == FileKind::Pack { 40 } else { 3 + k };
        for i in 0..count {
            let name = name_for(kind, "list", i);
            let size = (i * 7 + k) % 50;
            ok(b, "write", b.write(kind, &name, &test_data(i as u64, size)));
            files.insert(FileInfo {
                name,
                size: size as u64,
            });
        }
        expected.push((kind, files));
    }
    // Pack names with the lowest and highest fan-out folders, and a name that is exactly two characters.
    let extra_packs = [
        "00",
        "00ff",
        "ff",
        "ffff-last",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ];
    for name in extra_packs {
        ok(
            b,
            "write pack",
            b.write(FileKind::Pack, name, name.as_bytes()),
        );
        expected[1].1.insert(FileInfo {
            name: name.to_owned(),
            size: name.len() as u64,
        });
    }
    assert_eq!(expected[1].0, FileKind::Pack);
    let folders: BTreeSet<&str> = expected[1].1.iter().map(|f| &f.name[..2]).collect();
    assert!(
        folders.len() > 20,
        "test packs should spread over many fan-out folders"
    );
    for (kind, files) in &expected {
        assert_eq!(&listed(b, *kind), files, "{}: list {kind}", b.location());
    }
    let config = listed(b, FileKind::Config);
    assert!(
        config.iter().all(|f| f.name == CONFIG_NAME),
        "{}: list config returned other names: {config:?}",
        b.location()
    );
    for (kind, files) in &expected {
        for f in files {
            ok(b, "remove", b.remove(*kind, &f.name));
        }
        assert!(
            listed(b, *kind).is_empty(),
            "{}: {kind} still listed after removing all",
            b.location()
        );
    }
}

/// `remove` deletes exactly one file and reports NotFound for a missing one.
pub fn check_remove(b: &dyn Backend) {
    ensure_created(b);
    ok(b, "write", b.write(FileKind::Lock, "remove-me", b"x"));
    ok(b, "write", b.write(FileKind::Lock, "keep-me", b"y"));
    ok(b, "write", b.write(FileKind::Gc, "remove-me", b"z"));
    ok(b, "remove", b.remove(FileKind::Lock, "remove-me"));
    expect_not_found(b, "read after remove", b.read(FileKind::Lock, "remove-me"));
    expect_not_found(b, "size after remove", b.size(FileKind::Lock, "remove-me"));
    expect_not_found(b, "second remove", b.remove(FileKind::Lock, "remove-me"));
    assert_eq!(
        names(&ok(b, "list", b.list(FileKind::Lock))),
        BTreeSet::from(["keep-me".to_owned()])
    );
    // Same name, other kind: untouched.
    assert_eq!(
        ok(b, "read other kind", b.read(FileKind::Gc, "remove-me")),
        b"z"
    );
    ok(b, "remove", b.remove(FileKind::Lock, "keep-me"));
    ok(b, "remove", b.remove(FileKind::Gc, "remove-me"));
}

/// Every method that names a file reports NotFound for a file that does not exist, for every kind.
pub fn check_not_found(b: &dyn Backend) {
    ensure_created(b);
    for kind in FileKind::FOLDERS {
        let name = name_for(kind, "absent", 3);
        expect_not_found(b, &format!("read missing {kind}"), b.read(kind, &name));
        expect_not_found(
            b,
            &format!("read_range missing {kind}"),
            b.read_range(kind, &name, 0, 1),
        );
        expect_not_found(
            b,
            &format!("read_range(0, 0) missing {kind}"),
            b.read_range(kind, &name, 0, 0),
        );
        expect_not_found(b, &format!("size missing {kind}"), b.size(kind, &name));
        expect_not_found(b, &format!("remove missing {kind}"), b.remove(kind, &name));
    }
}

/// Every method rejects names outside the layout with InvalidName, and stores nothing.
pub fn check_invalid_names(b: &dyn Backend) {
    ensure_created(b);
    let too_long = "a".repeat(MAX_NAME_LEN + 1);
    let common = [
        "",
        ".",
        "..",
        "../config",
        "a/b",
        "/",
        "/abs",
        "A",
        "Ab",
        "a.b",
        ".tmp",
        "a b",
        "a\\b",
        "a\0b",
        "ä",
        "config/",
        too_long.as_str(),
    ];
    for kind in FileKind::ALL {
        let mut bad: Vec<&str> = common.to_vec();
        match kind {
            FileKind::Pack => bad.push("a"),
            FileKind::Config => bad.extend(["other", "keys"]),
            _ => {}
        }
        for name in bad {
            let check = |what: &str, e: StorageError| {
                assert!(
                    matches!(e, StorageError::InvalidName { .. }),
                    "{}: {what} {kind} {name:?}: expected InvalidName, got {e:?}",
                    b.location()
                );
            };
            check("write", err(b, "write", b.write(kind, name, b"x")));
            check("read", err(b, "read", b.read(kind, name)));
            check(
                "read_range",
                err(b, "read_range", b.read_range(kind, name, 0, 1)),
            );
            check("size", err(b, "size", b.size(kind, name)));
            check("remove", err(b, "remove", b.remove(kind, name)));
        }
        if kind != FileKind::Config {
            assert!(
                listed(b, kind).is_empty(),
                "{}: invalid {kind} names stored something",
                b.location()
            );
        }
    }
}

/// Empty files and files larger than a pack round-trip exactly.
pub fn check_empty_and_large_files(b: &dyn Backend) {
    ensure_created(b);
    ok(b, "write empty", b.write(FileKind::Index, "empty", b""));
    assert_eq!(ok(b, "read empty", b.read(FileKind::Index, "empty")), b"");
    assert_eq!(ok(b, "size empty", b.size(FileKind::Index, "empty")), 0);
    assert_eq!(
        ok(
            b,
            "read_range(0, 0) of empty",
            b.read_range(FileKind::Index, "empty", 0, 0)
        ),
        b""
    );
    let e = err(
        b,
        "read_range(0, 1) of empty",
        b.read_range(FileKind::Index, "empty", 0, 1),
    );
    assert!(
        matches!(e, StorageError::ShortRead { got: 0, .. }),
        "{}: {e:?}",
        b.location()
    );
    assert_eq!(
        listed(b, FileKind::Index),
        BTreeSet::from([FileInfo {
            name: "empty".to_owned(),
            size: 0
        }])
    );
    ok(b, "remove empty", b.remove(FileKind::Index, "empty"));

    let large = test_data(40, LARGE_FILE_SIZE);
    let name = "4000000000000000000000000000000000000000000000000000000000000000";
    ok(b, "write large", b.write(FileKind::Pack, name, &large));
    assert_eq!(
        ok(b, "size large", b.size(FileKind::Pack, name)),
        LARGE_FILE_SIZE as u64
    );
    let back = ok(b, "read large", b.read(FileKind::Pack, name));
    assert!(
        back == large,
        "{}: large file read back different bytes",
        b.location()
    );
    drop(back);
    let tail = LARGE_FILE_SIZE as u64 - 1000;
    let got = ok(
        b,
        "read_range at the end of large",
        b.read_range(FileKind::Pack, name, tail, 1000),
    );
    assert!(
        got[..] == large[tail as usize..],
        "{}: tail of large file",
        b.location()
    );
    let mid = ok(
        b,
        "read_range in large",
        b.read_range(FileKind::Pack, name, 20 << 20, 5 << 20),
    );
    assert!(
        mid[..] == large[20 << 20..25 << 20],
        "{}: middle of large file",
        b.location()
    );
    assert_eq!(
        listed(b, FileKind::Pack),
        BTreeSet::from([FileInfo {
            name: name.to_owned(),
            size: LARGE_FILE_SIZE as u64
        }])
    );
    ok(b, "remove large", b.remove(FileKind::Pack, name));
}

/// Eight threads write distinct packs at once and overwrite one shared file while others read it: every
/// file arrives intact, and readers only ever see a complete version of the shared file.
pub fn check_concurrent_writes(b: &dyn Backend) {
    const THREADS: usize = 8;
    const PACKS_PER_THREAD: usize = 6;
    const SHARED_LEN: usize = 256 << 10;
    ensure_created(b);
    let versions: Vec<Vec<u8>> = (0..THREADS)
        .map(|t| test_data(1000 + t as u64, SHARED_LEN))
        .collect();
    ok(
        b,
        "write shared",
        b.write(FileKind::Index, "shared", &versions[0]),
    );
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let versions = &versions;
            s.spawn(move || {
                for i in 0..PACKS_PER_THREAD {
                    let name = format!("{:02x}{t}conc{i}", (t * 31 + i * 7) % 256);
                    let data = test_data((t * 100 + i) as u64, (64 << 10) + t * 13 + i);
                    ok(b, "concurrent write", b.write(FileKind::Pack, &name, &data));
                    ok(
                        b,
                        "concurrent overwrite",
                        b.write(FileKind::Index, "shared", &versions[t]),
                    );
                    let seen = ok(b, "concurrent read", b.read(FileKind::Index, "shared"));
                    assert!(
                        versions.contains(&seen),
                        "{}: a reader saw a partial or mixed version of a file being overwritten",
                        b.location()
                    );
                }
            });
        }
    });
    let packs = listed(b, FileKind::Pack);
    assert_eq!(
        packs.len(),
        THREADS * PACKS_PER_THREAD,
        "{}: packs written concurrently",
        b.location()
    );
    for t in 0..THREADS {
        for i in 0..PACKS_PER_THREAD {
            let name = format!("{:02x}{t}conc{i}", (t * 31 + i * 7) % 256);
            let data = test_data((t * 100 + i) as u64, (64 << 10) + t * 13 + i);
            assert!(
                ok(b, "read", b.read(FileKind::Pack, &name)) == data,
                "{}: pack {name} damaged",
                b.location()
            );
            ok(b, "remove", b.remove(FileKind::Pack, &name));
        }
    }
    let shared = ok(b, "read shared", b.read(FileKind::Index, "shared"));
    assert!(
        versions.contains(&shared),
        "{}: final shared file is not a complete version",
        b.location()
    );
    ok(b, "remove shared", b.remove(FileKind::Index, "shared"));
}
