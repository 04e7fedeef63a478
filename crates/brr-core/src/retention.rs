//! Retention policy math: which recovery points to keep (B1).
//!
//! A [`RetentionPolicy`] says how many recovery points to keep; [`RetentionPolicy::plan`] turns it and a
//! list of snapshots into a [`RetentionPlan`] — which snapshots stay (and why) and which go. Nothing is
//! deleted here: the plan is shown by `brr forget --dry-run`, asserted in tests, and only then applied by
//! the caller. The math needs only each snapshot's time, so the server can apply retention without the
//! encryption key.
//!
//! # Semantics (those of `restic forget`)
//!
//! 1. The snapshots are sorted **newest first**. Snapshots with the same time keep their input order
//!    (the sort is stable), so the result is deterministic.
//! 2. `keep_last` = N keeps the N newest snapshots (all of them if there are fewer than N).
//! 3. Each periodic rule — `keep_hourly`, `keep_daily`, `keep_weekly`, `keep_monthly`, `keep_yearly` —
//!    walks the snapshots newest → oldest and keeps the first (that is, the newest) snapshot of each
//!    distinct period it meets, until it has kept N periods. Periods are calendar periods of the
//!    snapshot's wall-clock time: the hour, the day, the **ISO 8601 week** (weeks start on Monday; week 1
//!    is the week with the year's first Thursday, so 2021-01-03 belongs to 2020-W53), the month, the
//!    year. Periods without snapshots are skipped, not counted: "7 daily" means the newest snapshot of
//!    each of the 7 most recent days *that have snapshots*.
//! 4. `keep_within_secs` = d keeps every snapshot strictly newer than `latest - d`, where `latest` is
//!    the time of the newest snapshot (not the current time: a machine that stopped backing up does
//!    not lose its last recovery points). A duration too large to represent keeps everything.
//! 5. A snapshot is kept if **any** rule keeps it; it then lists every rule that did, in the order above.
//!    Every other snapshot is removed.
//!
//! Both [`RetentionPlan::keep`] and [`RetentionPlan::remove`] are newest first, and every input
//! snapshot appears in exactly one of them. A count of zero (or a zero duration) is the same as an
//! unset rule. A policy that keeps nothing is refused ([`RetentionPolicy::validate`]): an empty policy
//! must never delete every recovery point by accident.
//!
//! Times are [`NaiveDateTime`]s: local wall-clock time in the zone the periods are counted in. The
//! caller converts (a server counting days in UTC passes UTC; the CLI passes the user's local time).
//! Consequences of this choice: around a DST change two different instants can share a wall-clock hour,
//! and their order follows the wall clock.
//!
//! Planning is a pure function of its input: O(n log n) for n snapshots, no I/O, no clock.
//!
//! ```
//! use brr_core::retention::{KeepReason, RetentionItem, RetentionPolicy};
//! use chrono::NaiveDate;
//!
//! let at = |d: u32, h: u32| NaiveDate::from_ymd_opt(2026, 11, d).and_then(|d| d.and_hms_opt(h, 0, 0));
//! let items: Vec<RetentionItem<&str>> = [("a", at(23, 10)), ("b", at(23, 9)), ("c", at(22, 9))]
//!     .into_iter()
//!     .filter_map(|(id, time)| Some(RetentionItem::new(id, time?)))
//!     .collect();
//!
//! let policy = RetentionPolicy::default().with_daily(2);
//! assert_eq!(policy.to_string(), "keep 2 daily");
//! let plan = policy.plan(&items)?;
//! let kept: Vec<&str> = plan.keep.iter().map(|(id, _)| *id).collect();
//! assert_eq!(kept, ["a", "c"]);
//! assert_eq!(plan.remove, ["b"]);
//! let day = NaiveDate::from_ymd_opt(2026, 11, 23).ok_or("bad date")?;
//! assert_eq!(plan.keep[0].1, [KeepReason::Daily(day)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Reverse;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike};
use serde::{Deserialize, Serialize};

/// How many recovery points to keep (B1).
///
/// All rules are optional; a snapshot is kept if any rule keeps it (see the [module docs](self) for
/// the exact semantics). A policy with nothing set, or only zeros, is invalid: it would delete every
/// recovery point.
///
/// Serialized with serde as a map of the fields below; missing fields are unset, unknown fields are
/// refused (a misspelled `keep_dialy` must not silently weaken a policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep the N newest snapshots.
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent hours that have snapshots.
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent days that have snapshots.
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent ISO 8601 weeks that have snapshots.
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent months that have snapshots.
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent years that have snapshots.
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot strictly newer than (newest snapshot's time − this many seconds).
    pub keep_within_secs: Option<u64>,
}

/// One snapshot as the policy sees it: an opaque id and its time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RetentionItem<Id> {
    /// The snapshot's identifier, returned unchanged in the plan.
    pub id: Id,
    /// The snapshot's time as local wall-clock time in the zone the periods are counted in (the
    /// caller converts).
    pub time: NaiveDateTime,
}

impl<Id> RetentionItem<Id> {
    /// A snapshot `id` taken at wall-clock time `time`.
    pub fn new(id: Id, time: NaiveDateTime) -> Self {
        RetentionItem { id, time }
    }
}

/// Why a snapshot is kept: one rule of the policy and, for periodic rules, the period it stands for.
///
/// `Display` gives the form shown by `--dry-run` and written to the audit log, e.g. `last #1`,
/// `hourly 2026-11-23 10h`, `daily 2026-11-23`, `weekly 2026-W48`, `monthly 2026-11`, `yearly 2026`,
/// `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeepReason {
    /// Among the `keep_last` newest; the rank is 1 for the newest snapshot.
    Last(u32),
    /// The newest snapshot of this hour.
    Hourly {
        /// The day.
        date: NaiveDate,
        /// The hour of the day, 0–23.
        hour: u32,
    },
    /// The newest snapshot of this day.
    Daily(NaiveDate),
    /// The newest snapshot of this ISO 8601 week.
    Weekly {
        /// The ISO week-numbering year (which differs from the calendar year around 1 January).
        year: i32,
        /// The ISO week, 1–53.
        week: u32,
    },
    /// The newest snapshot of this month.
    Monthly {
        /// The year.
        year: i32,
        /// The month, 1–12.
        month: u32,
    },
    /// The newest snapshot of this year.
    Yearly(i32),
    /// Within `keep_within_secs` of the newest snapshot.
    Within,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Last(rank) => write!(f, "last #{rank}"),
            KeepReason::Hourly { date, hour } => write!(f, "hourly {date} {hour:02}h"),
            KeepReason::Daily(date) => write!(f, "daily {date}"),
            KeepReason::Weekly { year, week } => write!(f, "weekly {year:04}-W{week:02}"),
            KeepReason::Monthly { year, month } => write!(f, "monthly {year:04}-{month:02}"),
            KeepReason::Yearly(year) => write!(f, "yearly {year:04}"),
            KeepReason::Within => f.write_str("within"),
        }
    }
}

/// The result of [`RetentionPolicy::plan`]: what to keep and what to remove, decided before anything
/// is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPlan<Id> {
    /// The snapshots to keep, newest first, each with every rule that keeps it (never empty).
    pub keep: Vec<(Id, Vec<KeepReason>)>,
    /// The snapshots to remove, newest first.
    pub remove: Vec<Id>,
}

/// A retention policy that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// No rule is set at all.
    #[error(
        "the retention policy is empty: set at least one of keep-last, keep-hourly, keep-daily, \
         keep-weekly, keep-monthly, keep-yearly or keep-within (refusing to remove every snapshot)"
    )]
    Empty,
    /// Rules are set, but all of them are zero, so nothing would be kept.
    #[error(
        "the retention policy keeps nothing ({policy}): every rule is zero; set at least one \
         above zero (refusing to remove every snapshot)"
    )]
    KeepsNothing {
        /// The policy as written, for the message.
        policy: String,
    },
}

/// The periodic rules, in the order their reasons are listed.
#[derive(Debug, Clone, Copy)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The period `time` falls in, as the reason that names it. Reasons of one kind compare equal
    /// exactly when the times share the period.
    fn reason(self, time: NaiveDateTime) -> KeepReason {
        match self {
            Period::Hour => KeepReason::Hourly {
                date: time.date(),
                hour: time.hour(),
            },
            Period::Day => KeepReason::Daily(time.date()),
            Period::Week => {
                let week = time.iso_week();
                KeepReason::Weekly {
                    year: week.year(),
                    week: week.week(),
                }
            }
            Period::Month => KeepReason::Monthly {
                year: time.year(),
                month: time.month(),
            },
            Period::Year => KeepReason::Yearly(time.year()),
        }
    }
}

/// A count that keeps something: set and above zero.
fn positive(count: Option<u32>) -> Option<u32> {
    count.filter(|&n| n > 0)
}

impl RetentionPolicy {
    /// A policy with no rule set (invalid until a rule is added); the same as `Default`.
    #[must_use]
    pub const fn new() -> Self {
        RetentionPolicy {
            keep_last: None,
            keep_hourly: None,
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            keep_yearly: None,
            keep_within_secs: None,
        }
    }

    /// This policy with `keep_last` set to `n`.
    #[must_use]
    pub const fn with_last(mut self, n: u32) -> Self {
        self.keep_last = Some(n);
        self
    }

    /// This policy with `keep_hourly` set to `n`.
    #[must_use]
    pub const fn with_hourly(mut self, n: u32) -> Self {
        self.keep_hourly = Some(n);
        self
    }

    /// This policy with `keep_daily` set to `n`.
    #[must_use]
    pub const fn with_daily(mut self, n: u32) -> Self {
        self.keep_daily = Some(n);
        self
    }

    /// This policy with `keep_weekly` set to `n`.
    #[must_use]
    pub const fn with_weekly(mut self, n: u32) -> Self {
        self.keep_weekly = Some(n);
        self
    }

    /// This policy with `keep_monthly` set to `n`.
    #[must_use]
    pub const fn with_monthly(mut self, n: u32) -> Self {
        self.keep_monthly = Some(n);
        self
    }

    /// This policy with `keep_yearly` set to `n`.
    #[must_use]
    pub const fn with_yearly(mut self, n: u32) -> Self {
        self.keep_yearly = Some(n);
        self
    }

    /// This policy with `keep_within_secs` set to `secs` seconds.
    #[must_use]
    pub const fn with_within_secs(mut self, secs: u64) -> Self {
        self.keep_within_secs = Some(secs);
        self
    }

    /// True when no rule is set at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::new()
    }

    /// True when at least one rule would keep something: a count or duration above zero.
    #[must_use]
    pub fn keeps_anything(&self) -> bool {
        self.counts().iter().any(|&count| positive(count).is_some())
            || self.keep_within_secs.is_some_and(|secs| secs > 0)
    }

    /// Checks that the policy keeps something.
    ///
    /// # Errors
    ///
    /// [`RetentionError::Empty`] when no rule is set, [`RetentionError::KeepsNothing`] when every
    /// rule is zero.
    pub fn validate(&self) -> Result<(), RetentionError> {
        if self.is_empty() {
            Err(RetentionError::Empty)
        } else if !self.keeps_anything() {
            Err(RetentionError::KeepsNothing {
                policy: self.to_string(),
            })
        } else {
            Ok(())
        }
    }

    /// Decides which of `items` to keep and which to remove; see the [module docs](self) for the
    /// rules. `items` may be in any order; ids are cloned into the plan unchanged and need not be
    /// unique (each item is planned on its own). An empty input gives an empty plan.
    ///
    /// A valid policy always keeps the newest snapshot.
    ///
    /// # Errors
    ///
    /// Only those of [`RetentionPolicy::validate`]: an invalid policy is refused even for an empty
    /// input.
    pub fn plan<Id: Clone>(
        &self,
        items: &[RetentionItem<Id>],
    ) -> Result<RetentionPlan<Id>, RetentionError> {
        self.validate()?;

        // Newest first; `sort_by_key` is stable, so equal times keep their input order.
        let mut order: Vec<&RetentionItem<Id>> = items.iter().collect();
        order.sort_by_key(|item| Reverse(item.time));

        let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); order.len()];

        if let Some(n) = positive(self.keep_last) {
            for (rank, slot) in (1..=n).zip(reasons.iter_mut()) {
                slot.push(KeepReason::Last(rank));
            }
        }

        let periodic = [
            (self.keep_hourly, Period::Hour),
            (self.keep_daily, Period::Day),
            (self.keep_weekly, Period::Week),
            (self.keep_monthly, Period::Month),
            (self.keep_yearly, Period::Year),
        ];
        for (count, period) in periodic {
            let Some(n) = positive(count) else { continue };
            let mut kept = 0u32;
            let mut last: Option<KeepReason> = None;
            for (item, slot) in order.iter().zip(reasons.iter_mut()) {
                if kept == n {
                    break;
                }
                // Sorted by time, so the items of one period are adjacent: a period differing from
                // the previous item's is a new one, and this item is its newest.
                let bucket = period.reason(item.time);
                if last != Some(bucket) {
                    slot.push(bucket);
                    kept += 1;
                    last = Some(bucket);
                }
            }
        }

        if let (Some(secs), Some(newest)) =
            (self.keep_within_secs.filter(|&s| s > 0), order.first())
        {
            let cutoff = i64::try_from(secs)
                .ok()
                .and_then(TimeDelta::try_seconds)
                .and_then(|within| newest.time.checked_sub_signed(within));
            for (item, slot) in order.iter().zip(reasons.iter_mut()) {
                // No representable cutoff: the duration reaches past the earliest time, keep all.
                if cutoff.is_some_and(|cutoff| item.time <= cutoff) {
                    break;
                }
                slot.push(KeepReason::Within);
            }
        }

        let mut plan = RetentionPlan {
            keep: Vec::new(),
            remove: Vec::new(),
        };
        for (item, why) in order.into_iter().zip(reasons) {
            if why.is_empty() {
                plan.remove.push(item.id.clone());
            } else {
                plan.keep.push((item.id.clone(), why));
            }
        }
        Ok(plan)
    }

    /// The count rules in display order: last, hourly, daily, weekly, monthly, yearly.
    fn counts(&self) -> [Option<u32>; 6] {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
    }
}

/// Formats a duration in seconds as `1d2h3m4s`, leaving out zero parts (`0s` for zero).
fn fmt_secs(f: &mut fmt::Formatter<'_>, secs: u64) -> fmt::Result {
    if secs == 0 {
        return f.write_str("0s");
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ];
    for (value, unit) in parts {
        if value > 0 {
            write!(f, "{value}{unit}")?;
        }
    }
    Ok(())
}

/// `keep last 3, 24 hourly, 7 daily, 4 weekly, 12 monthly, 2 yearly, all within 7d`, listing the set
/// rules only (zeros included, as written); `keep nothing (no rules)` for an empty policy.
impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("keep nothing (no rules)");
        }
        f.write_str("keep")?;
        let mut sep = " ";
        let names = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];
        for (count, name) in self.counts().into_iter().zip(names) {
            if let Some(n) = count {
                if name == "last" {
                    write!(f, "{sep}last {n}")?;
                } else {
                    write!(f, "{sep}{n} {name}")?;
                }
                sep = ", ";
            }
        }
        if let Some(secs) = self.keep_within_secs {
            write!(f, "{sep}all within ")?;
            fmt_secs(f, secs)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
