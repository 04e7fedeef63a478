//! Checks of names: listing, removal, NotFound for missing files, InvalidName for names outside the
//! layout.

use super::*;

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
