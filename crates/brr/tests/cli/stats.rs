//! `brr stats` and `brr demo`.

use crate::common::{Repo, Rng, brr, copy_dir, run, scratch, write};

#[test]
fn stats_show_deduplication_of_two_identical_copies() {
    let tmp = scratch();
    let src = tmp.path().join("src");
    let mut rng = Rng::new(3);
    for i in 0..8 {
        write(
            &src.join(format!("one/f{i}")),
            &rng.bytes(150_000 + i * 10_000),
        );
    }
    write(&src.join("one/text"), &rng.text(400_000));
    copy_dir(&src.join("one"), &src.join("two"));
    let repo = Repo::init(&tmp.path().join("repo"));
    repo.backup(&[&src]);
    let s = repo.json(["stats"]);
    let dedup = s["dedup_ratio"].as_f64().unwrap();
    assert!((1.9..=2.1).contains(&dedup), "dedup_ratio {dedup}: {s:#}");
    assert_eq!(s["snapshots"].as_u64(), Some(1));
    assert_eq!(
        s["logical_bytes"].as_u64(),
        Some(2 * s["unique_plain_bytes"].as_u64().unwrap()),
        "{s:#}"
    );
    assert!(s["compression_ratio"].as_f64().unwrap() > 1.0, "{s:#}");
    let text = repo.ok(["stats"]);
    assert!(text.stdout.contains("deduplication:"), "{text}");

    // A second identical snapshot doubles the ratio again.
    repo.backup(&[&src]);
    let s = repo.json(["stats"]);
    let dedup = s["dedup_ratio"].as_f64().unwrap();
    assert!((3.8..=4.2).contains(&dedup), "dedup_ratio {dedup}: {s:#}");
}

#[test]
fn demo_runs_in_an_empty_directory() {
    let tmp = scratch();
    let dir = tmp.path().join("demo");
    std::fs::create_dir(&dir).unwrap();
    let r = run(brr()
        .args(["--quiet", "demo", "--size-mib", "8", "--dir"])
        .arg(&dir))
    .expect_code(0);
    assert!(r.stdout.contains("identical"), "{r}");
    // A non-empty directory is refused with a usage error.
    run(brr().args(["demo", "--size-mib", "8", "--dir"]).arg(&dir)).expect_error(2);
}
