//! Incremental backups, `diff`, `ls`, `snapshots --json` and snapshot selection.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;

use crate::common::{Repo, Rng, num, scratch, write};

#[test]
fn incremental_backups_read_only_what_changed() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    let mut rng = Rng::new(11);
    for i in 0..10 {
        write(&src.join(format!("f{i}")), &rng.bytes(10_000 + i * 1000));
    }
    write(&src.join("sub/large"), &rng.bytes(300_000));
    let repo = Repo::init(&tmp.path().join("repo"));

    let first = repo.backup(&[&src]);
    let s = &first["summary"];
    assert_eq!(num(s, "files_new"), 11, "{first:#}");
    assert_eq!(num(s, "bytes_read"), num(s, "total_bytes"), "{first:#}");

    // Unchanged: nothing read, everything unmodified, the first snapshot is the parent.
    let second = repo.backup(&[&src]);
    let s = &second["summary"];
    assert_eq!(num(s, "files_unmodified"), 11, "{second:#}");
    assert_eq!(
        num(s, "files_new") + num(s, "files_changed"),
        0,
        "{second:#}"
    );
    assert_eq!(num(s, "bytes_read"), 0, "{second:#}");
    assert_eq!(num(s, "data_blobs_added"), 0, "{second:#}");
    assert_eq!(second["parent"], first["snapshot"], "{second:#}");

    // One file grows: only it is read.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(src.join("f3"))
        .unwrap();
    f.write_all(b"appended").unwrap();
    drop(f);
    let third = repo.backup(&[&src]);
    let s = &third["summary"];
    assert_eq!(num(s, "files_changed"), 1, "{third:#}");
    assert_eq!(num(s, "files_unmodified"), 10, "{third:#}");
    assert_eq!(
        num(s, "bytes_read"),
        fs::metadata(src.join("f3")).unwrap().len(),
        "{third:#}"
    );

    // Add one, remove one: diff from the first snapshot shows +, - and M.
    write(&src.join("sub/new.txt"), b"new\n");
    fs::remove_file(src.join("f7")).unwrap();
    let fourth = repo.backup(&[&src]);
    assert_eq!(num(&fourth["summary"], "files_new"), 1, "{fourth:#}");
    let (id1, id4) = (
        first["snapshot"].as_str().unwrap(),
        fourth["snapshot"].as_str().unwrap(),
    );
    let d = repo.ok(["diff", id1, id4]);
    let base = src.to_str().unwrap();
    let lines: BTreeSet<&str> = d
        .stdout
        .lines()
        .filter(|l| !l.contains(" added, "))
        .collect();
    let expected: BTreeSet<String> = [
        format!("+ {base}/sub/new.txt"),
        format!("- {base}/f7"),
        format!("M {base}/f3"),
    ]
    .into();
    assert_eq!(lines, expected.iter().map(String::as_str).collect(), "{d}");
    assert!(d.stdout.contains("1 added, 1 removed, 1 modified"), "{d}");
    let dj = repo.json(["diff", id1, id4]);
    assert_eq!(dj["changes"].as_array().unwrap().len(), 3, "{dj:#}");

    // ls lists every path of the snapshot, and a sub path.
    let ls = repo.ok(["ls", "latest"]);
    let listed: BTreeSet<&str> = ls.stdout.lines().collect();
    for name in ["f0", "f3", "f9", "sub", "sub/large", "sub/new.txt"] {
        assert!(
            listed.contains(format!("{base}/{name}").as_str()),
            "{name} not listed:\n{ls}"
        );
    }
    assert!(!listed.contains(format!("{base}/f7").as_str()), "{ls}");
    let sub = repo.ok(["ls", "latest", &format!("{base}/sub")]);
    assert!(
        sub.stdout.lines().any(|l| l.ends_with("/sub/new.txt")),
        "{sub}"
    );
    assert!(!sub.stdout.lines().any(|l| l.ends_with("/f0")), "{sub}");
    let old = repo.ok(["ls", id1]);
    assert!(
        old.stdout.lines().any(|l| l == format!("{base}/f7")),
        "{old}"
    );
    let long = repo.ok(["ls", "--long", "latest"]);
    assert!(
        long.stdout
            .lines()
            .any(|l| l.starts_with("-rw") && l.ends_with("/f0")),
        "{long}"
    );

    // snapshots --json parses and lists the four in order.
    let snaps = repo.snapshots();
    let ids: Vec<&str> = snaps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let made: Vec<&str> = [&first, &second, &third, &fourth]
        .iter()
        .map(|v| v["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(ids, made);
    for s in &snaps {
        assert_eq!(s["paths"][0].as_str(), Some(base));
        assert!(s["summary"]["total_bytes"].as_u64().is_some());
    }
    let text = repo.ok(["snapshots"]);
    assert!(text.stdout.contains("4 snapshots"), "{text}");
}

#[test]
fn snapshot_selection_by_prefix_latest_and_errors() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    let repo = Repo::init(&tmp.path().join("repo"));
    // Back up until two snapshot IDs share their first hex digit (at most 17 by pigeonhole).
    let mut ids: Vec<String> = Vec::new();
    let shared = loop {
        write(
            &src.join("file"),
            format!("version {}\n", ids.len()).as_bytes(),
        );
        let b = repo.backup(&[&src]);
        let id = b["snapshot"].as_str().unwrap().to_string();
        if let Some(other) = ids.iter().find(|o| o[..1] == id[..1]) {
            let common = other
                .chars()
                .zip(id.chars())
                .take_while(|(a, b)| a == b)
                .count();
            ids.push(id.clone());
            break id[..common].to_string();
        }
        ids.push(id);
        assert!(ids.len() <= 17, "pigeonhole");
    };

    // Unique prefixes and full IDs select a snapshot; `latest` the newest.
    for (n, id) in ids.iter().enumerate() {
        let unique = (1..=64)
            .map(|k| &id[..k])
            .find(|p| ids.iter().filter(|o| o.starts_with(p)).count() == 1)
            .unwrap();
        let out = tmp.path().join(format!("r{n}"));
        repo.ok(["restore", unique, "--target", out.to_str().unwrap()]);
        let restored = crate::common::restored(&out, &src).join("file");
        assert_eq!(
            fs::read_to_string(restored).unwrap(),
            format!("version {n}\n")
        );
        repo.ok(["ls", id.as_str()]);
        repo.ok(["ls", &id.to_uppercase()[..12]]);
    }
    let latest = repo.ok(["ls", "latest"]);
    assert!(
        latest.stdout.lines().any(|l| l.ends_with("/file")),
        "{latest}"
    );

    // Ambiguous prefix → 12, naming the candidates.
    let amb = repo.run(["ls", shared.as_str()]).expect_error(12);
    assert!(amb.stderr.contains("BRR-E005"), "{amb}");
    repo.run([
        "restore",
        shared.as_str(),
        "--target",
        tmp.path().join("x").to_str().unwrap(),
    ])
    .expect_error(12);
    repo.run(["diff", shared.as_str(), "latest"])
        .expect_error(12);

    // A well-formed ID that matches nothing → 12.
    let missing = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
    ]
    .iter()
    .map(|c| c.repeat(8))
    .find(|p| !ids.iter().any(|i| i.starts_with(p.as_str())))
    .unwrap();
    let nf = repo.run(["ls", missing.as_str()]).expect_error(12);
    assert!(nf.stderr.contains("BRR-E004"), "{nf}");
    repo.run([
        "restore",
        missing.as_str(),
        "--target",
        tmp.path().join("y").to_str().unwrap(),
    ])
    .expect_error(12);
    repo.run(["forget", missing.as_str()]).expect_error(12);
    // A path that is not in the snapshot → 12.
    repo.run(["ls", "latest", "/no/such/path"]).expect_error(12);
    // Malformed IDs → 12 as well.
    repo.run(["ls", "not-a-snapshot"]).expect_error(12);
    repo.run([
        "restore",
        "",
        "--target",
        tmp.path().join("z").to_str().unwrap(),
    ])
    .expect_error(12);

    // `latest` in an empty repository → 12.
    let empty = Repo::init(&tmp.path().join("empty-repo"));
    empty.run(["ls", "latest"]).expect_error(12);
}

#[test]
fn excludes_tags_includes_and_restore_target_rules() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    write(&src.join("keep.txt"), b"keep\n");
    write(&src.join("skip.tmp"), b"excluded by name\n");
    write(&src.join("cache/big"), b"excluded by path\n");
    write(&src.join("docs/a.md"), b"a\n");
    write(&src.join("docs/b.txt"), b"b\n");
    let excludes = tmp.path().join("excludes");
    write(
        &excludes,
        format!("# comment\n\n{}/cache\n", src.display()).as_bytes(),
    );
    let repo = Repo::init(&tmp.path().join("repo"));
    let b = repo.json([
        "backup",
        "--tag",
        "daily",
        "--tag",
        "test",
        "--exclude",
        "*.tmp",
        "--exclude-file",
        excludes.to_str().unwrap(),
        "--host",
        "elsewhere",
        src.to_str().unwrap(),
    ]);
    assert_eq!(num(&b["summary"], "files_new"), 3, "{b:#}");
    let ls = repo.ok(["ls", "latest"]);
    assert!(
        !ls.stdout.contains("skip.tmp") && !ls.stdout.contains("/cache"),
        "{ls}"
    );
    repo.backup(&[&src]);

    // Filters of `snapshots`.
    let tagged = repo.json(["snapshots", "--tag", "daily"]);
    assert_eq!(tagged.as_array().unwrap().len(), 1, "{tagged:#}");
    assert_eq!(tagged[0]["hostname"], "elsewhere");
    assert_eq!(
        repo.json(["snapshots", "--tag", "daily", "--tag", "nope"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        repo.json(["snapshots", "--host", "elsewhere"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Restore with include globs: only matching entries (and the directories leading to them).
    let target = tmp.path().join("only-md");
    repo.ok([
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        "*.md",
    ]);
    let got = crate::common::list_files(&target);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ends_with("docs/a.md"), "{got:?}");

    // A non-empty target is refused without --overwrite; with it, files are replaced.
    let target = tmp.path().join("full");
    repo.ok(["restore", "latest", "--target", target.to_str().unwrap()]);
    let keep = crate::common::restored(&target, &src).join("keep.txt");
    fs::write(&keep, b"changed locally\n").unwrap();
    let r = repo.run(["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r}");
    crate::common::assert_one_line_error(&r);
    crate::common::assert_no_panic(&r);
    assert_eq!(fs::read(&keep).unwrap(), b"changed locally\n");
    repo.ok([
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--overwrite",
        "--verify",
    ]);
    assert_eq!(fs::read(&keep).unwrap(), b"keep\n");
}
