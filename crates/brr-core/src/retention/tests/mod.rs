//! Tests of the retention math: the shared helpers here; validation and display, hand-made calendars,
//! and properties checked against a deliberately naive reference model in the submodules.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use proptest::prelude::*;

use super::*;

mod calendars;
mod properties;
mod validation;

/// Wall-clock time `y-m-d h:mi:00`.
fn t(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(h, mi, 0))
        .expect("valid test time")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// Items with ids 0, 1, 2, … in the given order.
fn items(times: &[NaiveDateTime]) -> Vec<RetentionItem<usize>> {
    times
        .iter()
        .enumerate()
        .map(|(id, &time)| RetentionItem::new(id, time))
        .collect()
}

fn plan_times(policy: RetentionPolicy, times: &[NaiveDateTime]) -> RetentionPlan<usize> {
    policy.plan(&items(times)).expect("valid test policy")
}

fn kept_ids<Id: Clone>(plan: &RetentionPlan<Id>) -> Vec<Id> {
    plan.keep.iter().map(|(id, _)| id.clone()).collect()
}

/// Each kept id with its reasons as displayed.
fn kept_reasons(plan: &RetentionPlan<usize>) -> Vec<(usize, Vec<String>)> {
    plan.keep
        .iter()
        .map(|(id, why)| (*id, why.iter().map(ToString::to_string).collect()))
        .collect()
}
