//! Retention without the key decides exactly what `brr forget` decides with it.

use std::collections::BTreeSet;
use std::sync::Arc;

use brr_core::id::SnapshotId;
use brr_core::retention::RetentionPolicy;
use brr_core::snapshot::{Snapshot, encode_snapshot};
use brr_storage::{FileKind, OpendalBackend};
use chrono::{DateTime, FixedOffset, TimeZone};
use proptest::prelude::*;

use super::{flip, path_of, snap, view};
use crate::check::test_support::{init_on, new_repo, write_file};
use crate::forget::{ForgetOptions, GroupBy, plan_forget};
use crate::keyless::retention::{
    Grouping, KeylessRetentionOptions, WallClock, plan_for, plan_retention, remove_snapshots,
};
use crate::keyless::{KeylessRepo, PublicSnapshot};
use crate::repo::Repository;

/// Writes a copy of `like` taken at `time` (same source, same references); returns its ID.
fn at(repo: &Repository, like: &Snapshot, time: DateTime<FixedOffset>) -> SnapshotId {
    let mut meta = like.meta.clone();
    meta.time = time;
    let source: [u8; 16] = hex::decode(&like.header.source)
        .unwrap()
        .try_into()
        .unwrap();
    let (id, bytes) = encode_snapshot(repo.key(), &meta, source, like.refs.clone()).unwrap();
    repo.backend()
        .write(FileKind::Snapshot, &id.to_hex(), &bytes)
        .unwrap();
    id
}

/// Each group as (kept with reasons, removed), in a canonical order.
type Groups = BTreeSet<(Vec<(SnapshotId, Vec<String>)>, Vec<SnapshotId>)>;

fn keyed(repo: &Repository, policy: RetentionPolicy) -> Groups {
    let plan = plan_forget(
        repo,
        &ForgetOptions {
            policy,
            group_by: GroupBy::HOST_PATHS,
            ..Default::default()
        },
    )
    .unwrap();
    plan.groups
        .into_iter()
        .map(|g| (g.keep, g.remove))
        .collect()
}

fn keyless(v: &KeylessRepo, policy: RetentionPolicy) -> Groups {
    let plan = plan_retention(
        v,
        &KeylessRetentionOptions {
            policy,
            grouping: Grouping::SourceTag,
            clock: WallClock::Local,
            source: None,
        },
    )
    .unwrap();
    assert!(plan.unreadable.is_empty());
    plan.groups
        .into_iter()
        .map(|g| (g.keep, g.remove))
        .collect()
}

fn time(secs: i64, offset_hours: i32) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(offset_hours * 3600)
        .unwrap()
        .timestamp_opt(1_790_000_000 + secs, 0)
        .unwrap()
}

/// Two sources, each backed up once for real, plus copies at chosen times.
fn two_sources() -> (tempfile::TempDir, Arc<Repository>, Snapshot, Snapshot) {
    let (dir, src, repo) = new_repo();
    write_file(&src.join("x/a"), 1, 10_000);
    write_file(&src.join("y/b"), 2, 10_000);
    let x = snap(&repo, &src.join("x"));
    let y = snap(&repo, &src.join("y"));
    (dir, repo, x, y)
}

#[test]
fn keyless_plan_equals_keyed_plan_and_removal_applies_it() {
    let (_dir, repo, x, y) = two_sources();
    let hour = 3600;
    for (i, h) in [0, 1, 2, 25, 26, 24 * 8, 24 * 40, 24 * 400]
        .iter()
        .enumerate()
    {
        at(&repo, &x, time(h * hour, 1));
        at(&repo, &y, time(h * hour + 600 * i as i64, -5));
    }
    let v = view(&repo);
    let policy = RetentionPolicy::default()
        .with_last(2)
        .with_daily(2)
        .with_weekly(2)
        .with_monthly(1);
    let with_key = keyed(&repo, policy);
    assert_eq!(with_key.len(), 2);
    assert!(
        with_key
            .iter()
            .all(|(keep, remove)| !keep.is_empty() && !remove.is_empty())
    );
    assert_eq!(keyless(&v, policy), with_key);

    let plan = plan_retention(
        &v,
        &KeylessRetentionOptions {
            policy,
            ..Default::default()
        },
    )
    .unwrap();
    let doomed: Vec<SnapshotId> = plan.to_remove().copied().collect();
    assert_eq!(remove_snapshots(&v, &doomed).unwrap(), doomed.len());
    assert_eq!(remove_snapshots(&v, &doomed).unwrap(), 0, "already gone");
    let left: BTreeSet<SnapshotId> = v.snapshots().unwrap().iter().map(|s| s.id).collect();
    let kept: BTreeSet<SnapshotId> = plan
        .groups
        .iter()
        .flat_map(|g| g.keep.iter().map(|(id, _)| *id))
        .collect();
    assert_eq!(left, kept);
    // Applying the policy again removes nothing.
    let again = plan_retention(
        &v,
        &KeylessRetentionOptions {
            policy,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(again.to_remove().count(), 0);
}

#[test]
fn grouping_source_filter_and_wall_clock() {
    let snap = |n: u8, source: &str, t: DateTime<FixedOffset>| PublicSnapshot {
        id: SnapshotId(brr_core::id::Id::hash_of(&[n])),
        size: 0,
        time: t,
        source: source.into(),
        key_id: String::new(),
        refs: Vec::new(),
    };
    // 23:30 and 00:30 UTC: two days in UTC, one day at UTC+2.
    let utc = |h: u32, m: u32| {
        let day = if h >= 12 { 22 } else { 23 };
        chrono::Utc
            .with_ymd_and_hms(2026, 11, day, h, m, 0)
            .unwrap()
            .fixed_offset()
    };
    let (aa, bb) = ("aa".repeat(16), "bb".repeat(16));
    let late = snap(1, &aa, utc(23, 30));
    let early = snap(2, &aa, utc(0, 30));
    let other = snap(3, &bb, utc(1, 30));
    let all = [late.clone(), early.clone(), other.clone()];
    let daily = |grouping, clock, source: Option<&str>| {
        plan_for(
            &all,
            &KeylessRetentionOptions {
                policy: RetentionPolicy::default().with_daily(5),
                grouping,
                clock,
                source: source.map(String::from),
            },
        )
        .unwrap()
    };
    let by_tag = daily(Grouping::SourceTag, WallClock::Utc, None);
    assert_eq!(by_tag.groups.len(), 2);
    assert_eq!(by_tag.groups[0].source.as_deref(), Some(aa.as_str()));
    let whole = daily(Grouping::Repository, WallClock::Utc, None);
    assert_eq!(whole.groups.len(), 1);
    assert_eq!(whole.groups[0].source, None);
    // The offset decides the days: at +02:00 all three fall on one day.
    let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
    let utc_days = daily(Grouping::Repository, WallClock::Utc, None);
    let local_days = daily(Grouping::Repository, WallClock::Offset(plus2), None);
    let days_kept = |p: &crate::keyless::retention::KeylessRetentionPlan| p.groups[0].keep.len();
    assert_eq!(days_kept(&utc_days), 2);
    assert_eq!(days_kept(&local_days), 1);
    let only = daily(Grouping::SourceTag, WallClock::Utc, Some(&bb));
    assert_eq!(only.groups.len(), 1);
    assert_eq!(only.groups[0].keep[0].0, other.id);
    // A source that is not a tag is refused.
    for bad in ["AA".repeat(16), "a".repeat(31), "g".repeat(32)] {
        let e = plan_for(
            &all,
            &KeylessRetentionOptions {
                policy: RetentionPolicy::default().with_last(1),
                source: Some(bad),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "BRR-E009", "{e}");
    }
    // An empty policy is refused.
    let e = plan_for(&all, &KeylessRetentionOptions::default()).unwrap_err();
    assert!(e.to_string().contains("retention policy is empty"), "{e}");
}

#[test]
fn a_damaged_snapshot_is_neither_kept_nor_removed() {
    let (dir, repo, x, _y) = two_sources();
    let copy = at(&repo, &x, time(0, 0));
    let path = path_of(&dir.path().join("repo"), FileKind::Snapshot, &copy.to_hex());
    flip(&path, 30);
    let plan = plan_retention(
        &view(&repo),
        &KeylessRetentionOptions {
            policy: RetentionPolicy::default().with_last(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(plan.unreadable.len(), 1);
    assert_eq!(plan.unreadable[0].0, copy.to_hex());
    assert!(plan.to_remove().all(|id| *id != copy));
    assert!(
        view(&repo).snapshots().is_err(),
        "strict listing refuses it"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For any times (with any UTC offsets) of two sources and any policy, keyless == keyed.
    #[test]
    fn keyless_equals_keyed(
        xs in prop::collection::vec((0i64..86_400 * 800, -12i32..=14), 0..10),
        ys in prop::collection::vec((0i64..86_400 * 800, -12i32..=14), 1..10),
        last in 0u32..4, hourly in 0u32..3, daily in 0u32..4, weekly in 0u32..3,
        monthly in 0u32..3, yearly in 0u32..2, within in prop::option::of(0u64..86_400 * 30),
    ) {
        let policy = RetentionPolicy {
            keep_last: Some(last),
            keep_hourly: Some(hourly),
            keep_daily: Some(daily),
            keep_weekly: Some(weekly),
            keep_monthly: Some(monthly),
            keep_yearly: Some(yearly.max(u32::from(last + hourly + daily + weekly + monthly == 0))),
            keep_within_secs: within,
        };
        let (repo, x, y) = shared_repo();
        for f in repo.backend().list(FileKind::Snapshot).unwrap() {
            repo.backend().remove(FileKind::Snapshot, &f.name).unwrap();
        }
        for (s, o) in &xs {
            at(repo, x, time(*s, *o));
        }
        for (s, o) in &ys {
            at(repo, y, time(*s, *o));
        }
        let v = KeylessRepo::open(repo.backend_arc()).unwrap();
        prop_assert_eq!(keyless(&v, policy), keyed(repo, policy));
    }
}

/// One repository in memory for every proptest case (creating it costs a key derivation).
fn shared_repo() -> &'static (Arc<Repository>, Snapshot, Snapshot) {
    static REPO: std::sync::OnceLock<(Arc<Repository>, Snapshot, Snapshot)> =
        std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let repo = init_on(Arc::new(OpendalBackend::memory().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        write_file(&dir.path().join("x/a"), 1, 5_000);
        write_file(&dir.path().join("y/b"), 2, 5_000);
        let x = snap(&repo, &dir.path().join("x"));
        let y = snap(&repo, &dir.path().join("y"));
        (repo, x, y)
    })
}
