//! Checks of file contents: creating the location, writing, reading (whole and by range), sizes, empty
//! and large files.

use super::*;

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
