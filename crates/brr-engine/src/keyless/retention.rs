//! Retention without the key: [`brr_core::retention`] over the times in the snapshot headers.
//!
//! Snapshots are grouped per repository (one group) or per source tag (the opaque keyed hash of host
//! and paths, so the groups are exactly the host-and-paths groups of `brr forget`), their header times
//! are converted to a wall clock ([`WallClock`]), and the policy decides. [`plan_retention`] changes
//! nothing; [`remove_snapshots`] deletes the chosen files — the caller (the server) decides when, e.g.
//! after a delay for append-only repositories. A snapshot file that does not match its name or does not
//! parse is never planned for removal: it is listed in [`KeylessRetentionPlan::unreadable`].

use std::collections::BTreeMap;

use brr_core::CoreError;
use brr_core::id::SnapshotId;
use brr_core::retention::{RetentionItem, RetentionPolicy};
use brr_storage::FileKind;
use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, Utc};

use super::{KeylessRepo, PublicSnapshot};
use crate::error::{EngineError, Result};

/// How snapshots are grouped before the policy applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One group: the whole repository.
    Repository,
    /// One group per source tag (host and paths, without naming them).
    #[default]
    SourceTag,
}

/// The wall clock periods (days, weeks, …) are counted in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WallClock {
    /// UTC (a server's default).
    #[default]
    Utc,
    /// This process's local time zone (what `brr forget` uses).
    Local,
    /// A fixed offset from UTC.
    Offset(FixedOffset),
}

impl WallClock {
    /// `time` on this wall clock.
    pub fn wall_time(self, time: DateTime<FixedOffset>) -> NaiveDateTime {
        match self {
            WallClock::Utc => time.with_timezone(&Utc).naive_utc(),
            WallClock::Local => time.with_timezone(&Local).naive_local(),
            WallClock::Offset(o) => time.with_timezone(&o).naive_local(),
        }
    }
}

/// What to keep.
#[derive(Debug, Clone, Default)]
pub struct KeylessRetentionOptions {
    /// The policy (validated: a policy that keeps nothing is refused).
    pub policy: RetentionPolicy,
    /// Per repository or per source tag.
    pub grouping: Grouping,
    /// Only snapshots of this source tag (hex), if set.
    pub source: Option<String>,
    /// The wall clock of the periods.
    pub clock: WallClock,
}

/// The plan of one group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionGroup {
    /// The group's source tag (hex), when grouping by source tag.
    pub source: Option<String>,
    /// Snapshots kept, newest first, with every rule that keeps each ("last #1", "daily 2026-11-23", …).
    pub keep: Vec<(SnapshotId, Vec<String>)>,
    /// Snapshots to remove, newest first.
    pub remove: Vec<SnapshotId>,
}

/// The plan for the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeylessRetentionPlan {
    /// Groups, ordered by source tag.
    pub groups: Vec<RetentionGroup>,
    /// Snapshot files that could not be read or parsed (name, reason): neither kept nor removed.
    pub unreadable: Vec<(String, String)>,
}

impl KeylessRetentionPlan {
    /// Every snapshot the plan removes.
    pub fn to_remove(&self) -> impl Iterator<Item = &SnapshotId> {
        self.groups.iter().flat_map(|g| g.remove.iter())
    }
}

/// Plans retention on the stored snapshots. Changes nothing.
pub fn plan_retention(
    view: &KeylessRepo,
    opts: &KeylessRetentionOptions,
) -> Result<KeylessRetentionPlan> {
    opts.policy.validate().map_err(CoreError::from)?;
    let (snapshots, unreadable) = view.collect_snapshots(false)?;
    let mut plan = plan_for(&snapshots, opts)?;
    plan.unreadable = unreadable;
    Ok(plan)
}

/// The planning step on already read snapshots (pure).
pub fn plan_for(
    snapshots: &[PublicSnapshot],
    opts: &KeylessRetentionOptions,
) -> Result<KeylessRetentionPlan> {
    opts.policy.validate().map_err(CoreError::from)?;
    if let Some(tag) = &opts.source
        && (tag.len() != 32
            || !tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(EngineError::invalid(
            "source tag",
            format!("{tag:?} is not 32 lower-case hex characters"),
        ));
    }
    let mut groups: BTreeMap<Option<String>, Vec<&PublicSnapshot>> = BTreeMap::new();
    for s in snapshots {
        if opts.source.as_ref().is_some_and(|t| *t != s.source) {
            continue;
        }
        let key = match opts.grouping {
            Grouping::Repository => None,
            Grouping::SourceTag => Some(s.source.clone()),
        };
        groups.entry(key).or_default().push(s);
    }
    let mut plan = KeylessRetentionPlan::default();
    for (source, mut members) in groups {
        // Oldest first, ties by ID: the same input order as `brr forget`.
        members.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        let items: Vec<RetentionItem<SnapshotId>> = members
            .iter()
            .map(|s| RetentionItem::new(s.id, opts.clock.wall_time(s.time)))
            .collect();
        let r = opts.policy.plan(&items).map_err(CoreError::from)?;
        plan.groups.push(RetentionGroup {
            source,
            keep: r
                .keep
                .into_iter()
                .map(|(id, why)| (id, why.iter().map(|k| k.to_string()).collect()))
                .collect(),
            remove: r.remove,
        });
    }
    Ok(plan)
}

/// Deletes the given snapshot files; returns how many were deleted (a file already gone is not counted
/// and not an error). Frees no pack space by itself: garbage collection does, later.
pub fn remove_snapshots(view: &KeylessRepo, ids: &[SnapshotId]) -> Result<usize> {
    let mut removed = 0;
    let mut seen = std::collections::HashSet::new();
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        match view.backend().remove(FileKind::Snapshot, &id.to_hex()) {
            Ok(()) => removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}
