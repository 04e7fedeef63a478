//! `brr forget`: apply a retention policy (B1) — plan which snapshots go, then delete their files.
//!
//! Snapshots are grouped (by default by host and paths), and [`RetentionPolicy::plan`] runs on each
//! group with the snapshots' times converted to this machine's local wall-clock time, so "daily" means
//! local calendar days. [`plan_forget`] changes nothing; [`apply_forget`] deletes exactly the snapshot
//! files the plan lists. Forgetting frees no space by itself: `prune` does, later.
//!
//! No lock is needed: removing a snapshot only shrinks what a running prune must keep, and a backup
//! that uses a forgotten snapshot as its parent reuses only blobs it finds in the index.

use std::collections::BTreeMap;

use brr_core::CoreError;
use brr_core::id::SnapshotId;
use brr_core::retention::{RetentionItem, RetentionPolicy};
use brr_core::snapshot::Snapshot;
use brr_storage::FileKind;
use chrono::Local;

use crate::error::{EngineError, Result};
use crate::repo::Repository;

/// What to forget.
#[derive(Debug, Clone, Default)]
pub struct ForgetOptions {
    /// Which snapshots of each group to keep.
    pub policy: RetentionPolicy,
    /// How snapshots are grouped before the policy applies.
    pub group_by: GroupBy,
    /// Only snapshots of this host.
    pub host: Option<String>,
    /// Only snapshots carrying all these tags.
    pub tags: Vec<String>,
    /// Plan only (the CLI shows the plan and stops).
    pub dry_run: bool,
}

/// Grouping keys. The CLI's default is host and paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the set of source paths.
    pub paths: bool,
    /// Group by the set of tags.
    pub tags: bool,
}

impl GroupBy {
    /// Host and paths: the CLI default.
    pub const HOST_PATHS: GroupBy = GroupBy {
        host: true,
        paths: true,
        tags: false,
    };
}

/// The plan for one group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForgetGroup {
    /// The group's host, when grouping by host.
    pub host: Option<String>,
    /// The group's paths, when grouping by paths.
    pub paths: Option<Vec<String>>,
    /// The group's tags (sorted), when grouping by tags.
    pub tags: Option<Vec<String>>,
    /// Snapshots kept, newest first, with the rules that keep them ("last #1", "daily 2026-11-23", …).
    pub keep: Vec<(SnapshotId, Vec<String>)>,
    /// Snapshots to remove, newest first.
    pub remove: Vec<SnapshotId>,
}

/// The plan for all groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForgetPlan {
    /// Groups in a stable order (by host, paths, tags).
    pub groups: Vec<ForgetGroup>,
}

impl ForgetPlan {
    /// Every snapshot the plan removes.
    pub fn to_remove(&self) -> impl Iterator<Item = &SnapshotId> {
        self.groups.iter().flat_map(|g| g.remove.iter())
    }
}

type GroupKey = (Option<String>, Option<Vec<String>>, Option<Vec<String>>);

fn group_key(s: &Snapshot, by: GroupBy) -> GroupKey {
    let mut tags = s.meta.tags.clone();
    tags.sort();
    tags.dedup();
    (
        by.host.then(|| s.meta.hostname.clone()),
        by.paths.then(|| s.meta.paths.clone()),
        by.tags.then_some(tags),
    )
}

/// Plans which snapshots to remove. Changes nothing.
pub fn plan_forget(repo: &Repository, opts: &ForgetOptions) -> Result<ForgetPlan> {
    opts.policy.validate().map_err(CoreError::from)?;
    let snapshots = repo.list_snapshots()?;
    plan_for(&snapshots, opts)
}

/// The planning step on already loaded snapshots (pure).
pub(crate) fn plan_for(snapshots: &[Snapshot], opts: &ForgetOptions) -> Result<ForgetPlan> {
    let mut groups: BTreeMap<GroupKey, Vec<&Snapshot>> = BTreeMap::new();
    for s in snapshots {
        if opts.host.as_ref().is_some_and(|h| *h != s.meta.hostname) {
            continue;
        }
        if !opts.tags.iter().all(|t| s.meta.tags.contains(t)) {
            continue;
        }
        groups
            .entry(group_key(s, opts.group_by))
            .or_default()
            .push(s);
    }
    let mut plan = ForgetPlan::default();
    for ((host, paths, tags), mut members) in groups {
        // Stable input order for equal times: by ID.
        members.sort_by(|a, b| a.meta.time.cmp(&b.meta.time).then(a.id.cmp(&b.id)));
        let items: Vec<RetentionItem<SnapshotId>> = members
            .iter()
            .map(|s| RetentionItem::new(s.id, s.meta.time.with_timezone(&Local).naive_local()))
            .collect();
        let r = opts.policy.plan(&items).map_err(CoreError::from)?;
        plan.groups.push(ForgetGroup {
            host,
            paths,
            tags,
            keep: r
                .keep
                .into_iter()
                .map(|(id, reasons)| (id, reasons.iter().map(|k| k.to_string()).collect()))
                .collect(),
            remove: r.remove,
        });
    }
    Ok(plan)
}

/// Deletes the snapshot files the plan removes; returns how many were deleted (a file already gone is
/// not counted and not an error).
pub fn apply_forget(repo: &Repository, plan: &ForgetPlan) -> Result<usize> {
    let ids: Vec<SnapshotId> = plan.to_remove().copied().collect();
    remove_snapshots(repo, &ids)
}

/// Deletes the given snapshots; returns how many were deleted. Every ID must exist: if one does not,
/// nothing is deleted.
pub fn forget_ids(repo: &Repository, ids: &[SnapshotId]) -> Result<usize> {
    for id in ids {
        match repo.backend().size(FileKind::Snapshot, &id.to_hex()) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                return Err(EngineError::SnapshotNotFound { query: id.to_hex() });
            }
            Err(e) => return Err(e.into()),
        }
    }
    remove_snapshots(repo, ids)
}

fn remove_snapshots(repo: &Repository, ids: &[SnapshotId]) -> Result<usize> {
    let mut removed = 0;
    let mut seen = std::collections::HashSet::new();
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        match repo.backend().remove(FileKind::Snapshot, &id.to_hex()) {
            Ok(()) => removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use brr_core::id::{BlobId, Id};
    use brr_core::snapshot::{BackupSummary, SnapshotHeader, SnapshotMeta};
    use chrono::{DateTime, FixedOffset, TimeZone};

    fn snap(
        n: u8,
        host: &str,
        paths: &[&str],
        tags: &[&str],
        time: DateTime<FixedOffset>,
    ) -> Snapshot {
        Snapshot {
            id: SnapshotId(Id::hash_of(&[n])),
            header: SnapshotHeader {
                version: 1,
                time,
                source: String::new(),
                key_id: String::new(),
            },
            meta: SnapshotMeta {
                time,
                hostname: host.into(),
                username: "u".into(),
                paths: paths.iter().map(|p| p.to_string()).collect(),
                tags: tags.iter().map(|p| p.to_string()).collect(),
                tree: BlobId::default(),
                parent: None,
                excludes: vec![],
                program_version: "t".into(),
                summary: BackupSummary::default(),
            },
            refs: vec![],
        }
    }

    fn at(day: u32, hour: u32) -> DateTime<FixedOffset> {
        Local
            .with_ymd_and_hms(2026, 11, day, hour, 0, 0)
            .single()
            .unwrap()
            .fixed_offset()
    }

    #[test]
    fn groups_filters_and_keeps_per_group() {
        let snaps = vec![
            snap(1, "a", &["/x"], &[], at(20, 10)),
            snap(2, "a", &["/x"], &[], at(21, 10)),
            snap(3, "a", &["/x"], &["t"], at(21, 12)),
            snap(4, "a", &["/y"], &[], at(19, 10)),
            snap(5, "b", &["/x"], &[], at(18, 10)),
        ];
        let opts = ForgetOptions {
            policy: RetentionPolicy::default().with_last(1),
            group_by: GroupBy::HOST_PATHS,
            ..Default::default()
        };
        let plan = plan_for(&snaps, &opts).unwrap();
        assert_eq!(plan.groups.len(), 3);
        let g = &plan.groups[0];
        assert_eq!(g.host.as_deref(), Some("a"));
        assert_eq!(g.paths, Some(vec!["/x".to_string()]));
        assert_eq!(g.keep, vec![(snaps[2].id, vec!["last #1".to_string()])]);
        assert_eq!(g.remove, vec![snaps[1].id, snaps[0].id]);
        assert_eq!(plan.to_remove().count(), 2);

        // Daily buckets on local time: 21st keeps its newest, the 20th its only one.
        let opts = ForgetOptions {
            policy: RetentionPolicy::default().with_daily(7),
            host: Some("a".into()),
            tags: vec![],
            group_by: GroupBy::default(),
            dry_run: false,
        };
        let plan = plan_for(&snaps, &opts).unwrap();
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].remove, vec![snaps[1].id]);

        // Tag filter.
        let opts = ForgetOptions {
            policy: RetentionPolicy::default().with_last(5),
            tags: vec!["t".into()],
            group_by: GroupBy {
                tags: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let plan = plan_for(&snaps, &opts).unwrap();
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].tags, Some(vec!["t".to_string()]));
        assert_eq!(plan.groups[0].keep.len(), 1);

        // An empty policy is refused.
        let opts = ForgetOptions::default();
        assert!(plan_for(&snaps, &opts).is_err());
    }

    #[test]
    fn plan_then_apply_on_a_repository() {
        use crate::backup::{BackupOptions, backup};
        use crate::check::test_support::{new_repo, write_file};
        use crate::progress::NoProgress;

        let (_dir, src, repo) = new_repo();
        write_file(&src.join("f"), 1, 10_000);
        let mut ids = Vec::new();
        for day in [20, 21, 22] {
            let opts = BackupOptions {
                paths: vec![src.clone()],
                time: Some(at(day, 10)),
                ..Default::default()
            };
            ids.push(backup(&repo, &opts, &NoProgress).unwrap().snapshot.id);
        }
        let opts = ForgetOptions {
            policy: RetentionPolicy::default().with_last(2),
            group_by: GroupBy::HOST_PATHS,
            dry_run: true,
            ..Default::default()
        };
        let plan = plan_forget(&repo, &opts).unwrap();
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].remove, vec![ids[0]]);
        assert_eq!(
            repo.list_snapshots().unwrap().len(),
            3,
            "planning changes nothing"
        );
        assert_eq!(apply_forget(&repo, &plan).unwrap(), 1);
        assert_eq!(apply_forget(&repo, &plan).unwrap(), 0, "already gone");
        let left: Vec<SnapshotId> = repo
            .list_snapshots()
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(left, vec![ids[1], ids[2]]);

        // Unknown IDs delete nothing.
        assert!(matches!(
            forget_ids(&repo, &[ids[1], ids[0]]),
            Err(EngineError::SnapshotNotFound { .. })
        ));
        assert_eq!(repo.list_snapshots().unwrap().len(), 2);
        assert_eq!(forget_ids(&repo, &[ids[1], ids[1]]).unwrap(), 1);
    }
}
