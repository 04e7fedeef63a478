//! Tests of the retention math: hand-made calendars, then properties checked against a deliberately
//! naive reference model.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use proptest::prelude::*;

use super::*;

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

// ---------------------------------------------------------------------------------------------
// Validation and display
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_policy_is_refused() {
    let policy = RetentionPolicy::default();
    assert!(policy.is_empty());
    assert!(!policy.keeps_anything());
    assert_eq!(policy.validate(), Err(RetentionError::Empty));
    // Refused even when there is nothing to delete: the caller's mistake is in the policy.
    assert_eq!(policy.plan::<u8>(&[]), Err(RetentionError::Empty));
    let message = RetentionError::Empty.to_string();
    assert!(message.contains("empty"), "{message}");
    assert!(message.contains("keep-daily"), "{message}");
}

#[test]
fn zero_only_policy_is_refused() {
    let zeros = RetentionPolicy {
        keep_last: Some(0),
        keep_hourly: Some(0),
        keep_daily: Some(0),
        keep_weekly: Some(0),
        keep_monthly: Some(0),
        keep_yearly: Some(0),
        keep_within_secs: Some(0),
    };
    assert!(!zeros.is_empty());
    assert!(!zeros.keeps_anything());
    let err = zeros.validate().expect_err("zeros keep nothing");
    assert!(matches!(err, RetentionError::KeepsNothing { .. }));
    let message = err.to_string();
    assert!(message.contains("keeps nothing"), "{message}");
    assert!(message.contains("last 0, 0 hourly"), "{message}");
    assert!(zeros.plan(&items(&[t(2026, 1, 1, 0, 0)])).is_err());

    for single in [
        RetentionPolicy::new().with_last(0),
        RetentionPolicy::new().with_yearly(0),
        RetentionPolicy::new().with_within_secs(0),
    ] {
        assert!(
            matches!(single.validate(), Err(RetentionError::KeepsNothing { .. })),
            "{single}"
        );
    }
}

#[test]
fn any_positive_rule_is_valid() {
    for policy in [
        RetentionPolicy::new().with_last(1),
        RetentionPolicy::new().with_hourly(1),
        RetentionPolicy::new().with_daily(1),
        RetentionPolicy::new().with_weekly(1),
        RetentionPolicy::new().with_monthly(1),
        RetentionPolicy::new().with_yearly(1),
        RetentionPolicy::new().with_within_secs(1),
        RetentionPolicy::new().with_last(0).with_daily(3),
    ] {
        assert_eq!(policy.validate(), Ok(()), "{policy}");
        assert!(!policy.is_empty());
        assert!(policy.keeps_anything());
    }
}

#[test]
fn policy_display() {
    assert_eq!(
        RetentionPolicy::new().to_string(),
        "keep nothing (no rules)"
    );
    assert_eq!(
        RetentionPolicy::new()
            .with_daily(7)
            .with_weekly(4)
            .to_string(),
        "keep 7 daily, 4 weekly"
    );
    let full = RetentionPolicy::new()
        .with_within_secs(7 * 86_400)
        .with_yearly(2)
        .with_monthly(12)
        .with_weekly(4)
        .with_daily(7)
        .with_hourly(24)
        .with_last(3);
    assert_eq!(
        full.to_string(),
        "keep last 3, 24 hourly, 7 daily, 4 weekly, 12 monthly, 2 yearly, all within 7d"
    );
    let within = |secs| RetentionPolicy::new().with_within_secs(secs).to_string();
    assert_eq!(within(0), "keep all within 0s");
    assert_eq!(within(59), "keep all within 59s");
    assert_eq!(within(90_061), "keep all within 1d1h1m1s");
    assert_eq!(within(7_200), "keep all within 2h");
}

#[test]
fn reason_display() {
    let shown = [
        (KeepReason::Last(1), "last #1"),
        (
            KeepReason::Hourly {
                date: date(2026, 11, 23),
                hour: 9,
            },
            "hourly 2026-11-23 09h",
        ),
        (KeepReason::Daily(date(2026, 11, 23)), "daily 2026-11-23"),
        (
            KeepReason::Weekly {
                year: 2026,
                week: 48,
            },
            "weekly 2026-W48",
        ),
        (
            KeepReason::Monthly {
                year: 2026,
                month: 1,
            },
            "monthly 2026-01",
        ),
        (KeepReason::Yearly(2026), "yearly 2026"),
        (KeepReason::Within, "within"),
    ];
    for (reason, text) in shown {
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn policy_serde_round_trip_and_strictness() {
    let policy = RetentionPolicy::new()
        .with_last(3)
        .with_daily(7)
        .with_within_secs(3600);
    let json = serde_json::to_string(&policy).expect("serialize");
    let back: RetentionPolicy = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, policy);

    let sparse: RetentionPolicy =
        serde_json::from_str(r#"{"keep_weekly": 4}"#).expect("missing fields are unset");
    assert_eq!(sparse, RetentionPolicy::new().with_weekly(4));

    let typo = serde_json::from_str::<RetentionPolicy>(r#"{"keep_dialy": 7}"#);
    assert!(typo.is_err(), "a misspelled rule must not be ignored");
}

// ---------------------------------------------------------------------------------------------
// Hand-made calendars
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_input_gives_empty_plan() {
    let plan = plan_times(RetentionPolicy::new().with_daily(7), &[]);
    assert!(plan.keep.is_empty());
    assert!(plan.remove.is_empty());
}

#[test]
fn output_is_newest_first_whatever_the_input_order() {
    let times = [
        t(2026, 11, 20, 9, 0),
        t(2026, 11, 23, 9, 0),
        t(2026, 11, 21, 9, 0),
        t(2026, 11, 22, 9, 0),
    ];
    let plan = plan_times(RetentionPolicy::new().with_last(2), &times);
    assert_eq!(kept_ids(&plan), [1, 3]);
    assert_eq!(plan.remove, [2, 0]);
    assert_eq!(
        kept_reasons(&plan),
        [
            (1, vec!["last #1".to_owned()]),
            (3, vec!["last #2".to_owned()])
        ]
    );
}

#[test]
fn keep_last_larger_than_count_keeps_all() {
    let times = [
        t(2026, 1, 1, 0, 0),
        t(2026, 1, 2, 0, 0),
        t(2026, 1, 3, 0, 0),
    ];
    let plan = plan_times(RetentionPolicy::new().with_last(10), &times);
    assert!(plan.remove.is_empty());
    assert_eq!(
        kept_reasons(&plan),
        [
            (2, vec!["last #1".to_owned()]),
            (1, vec!["last #2".to_owned()]),
            (0, vec!["last #3".to_owned()]),
        ]
    );
    // u32::MAX is a count like any other.
    let plan = plan_times(RetentionPolicy::new().with_last(u32::MAX), &times);
    assert_eq!(plan.keep.len(), 3);
}

#[test]
fn many_snapshots_in_one_hour() {
    // Every five minutes from 10:00 to 10:55, plus 09:59 and 11:00.
    let mut times: Vec<NaiveDateTime> = (0..12).map(|i| t(2026, 11, 23, 10, i * 5)).collect();
    times.push(t(2026, 11, 23, 9, 59));
    times.push(t(2026, 11, 23, 11, 0));

    let hourly = plan_times(RetentionPolicy::new().with_hourly(2), &times);
    // 11:00 (id 13) is the 11h bucket, 10:55 (id 11) the newest of the 10h bucket.
    assert_eq!(
        kept_reasons(&hourly),
        [
            (13, vec!["hourly 2026-11-23 11h".to_owned()]),
            (11, vec!["hourly 2026-11-23 10h".to_owned()]),
        ]
    );
    assert_eq!(hourly.remove, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 12]);

    // All in one day: daily keeps only the newest, however large N is.
    let daily = plan_times(RetentionPolicy::new().with_daily(30), &times);
    assert_eq!(kept_ids(&daily), [13]);
    assert_eq!(daily.remove.len(), 13);
}

#[test]
fn equal_times_keep_input_order() {
    let same = t(2026, 11, 23, 10, 0);
    let times = [same, same, t(2026, 11, 22, 10, 0), same];
    let plan = plan_times(RetentionPolicy::new().with_daily(2).with_last(2), &times);
    assert_eq!(
        kept_reasons(&plan),
        [
            (0, vec!["last #1".to_owned(), "daily 2026-11-23".to_owned()]),
            (1, vec!["last #2".to_owned()]),
            (2, vec!["daily 2026-11-22".to_owned()]),
        ]
    );
    assert_eq!(plan.remove, [3]);
}

#[test]
fn daily_across_a_year_boundary() {
    let times = [
        t(2020, 12, 30, 23, 0),
        t(2020, 12, 31, 8, 0),
        t(2020, 12, 31, 23, 59),
        t(2021, 1, 1, 0, 0),
        t(2021, 1, 1, 0, 1),
        t(2021, 1, 2, 12, 0),
    ];
    let plan = plan_times(RetentionPolicy::new().with_daily(3).with_yearly(5), &times);
    assert_eq!(
        kept_reasons(&plan),
        [
            (
                5,
                vec!["daily 2021-01-02".to_owned(), "yearly 2021".to_owned()]
            ),
            (4, vec!["daily 2021-01-01".to_owned()]),
            (
                2,
                vec!["daily 2020-12-31".to_owned(), "yearly 2020".to_owned()]
            ),
        ]
    );
    assert_eq!(plan.remove, [3, 1, 0]);
}

#[test]
fn iso_week_53_spans_new_year() {
    let times = [
        t(2020, 12, 27, 12, 0), // Sunday: 2020-W52
        t(2020, 12, 28, 12, 0), // Monday: 2020-W53
        t(2020, 12, 31, 12, 0), // Thursday: 2020-W53
        t(2021, 1, 3, 12, 0),   // Sunday: still 2020-W53
        t(2021, 1, 4, 12, 0),   // Monday: 2021-W01
    ];
    let plan = plan_times(RetentionPolicy::new().with_weekly(3), &times);
    assert_eq!(
        kept_reasons(&plan),
        [
            (4, vec!["weekly 2021-W01".to_owned()]),
            (3, vec!["weekly 2020-W53".to_owned()]),
            (0, vec!["weekly 2020-W52".to_owned()]),
        ]
    );
    assert_eq!(plan.remove, [2, 1]);
    assert_eq!(
        Period::Week.reason(t(2020, 12, 31, 0, 0)),
        KeepReason::Weekly {
            year: 2020,
            week: 53
        }
    );
}

#[test]
fn iso_week_1_starts_in_december() {
    // 2019-12-30 is a Monday and the first day of 2020-W01; 2019-12-29 ends 2019-W52.
    let times = [
        t(2019, 12, 29, 12, 0),
        t(2019, 12, 30, 12, 0),
        t(2020, 1, 5, 12, 0),
        t(2020, 1, 6, 12, 0),
    ];
    let plan = plan_times(RetentionPolicy::new().with_weekly(10), &times);
    assert_eq!(
        kept_reasons(&plan),
        [
            (3, vec!["weekly 2020-W02".to_owned()]),
            (2, vec!["weekly 2020-W01".to_owned()]),
            (0, vec!["weekly 2019-W52".to_owned()]),
        ]
    );
    assert_eq!(plan.remove, [1]);
    // Monthly and yearly still use the calendar: 2019-12-30 is December 2019.
    let monthly = plan_times(RetentionPolicy::new().with_monthly(10), &times);
    assert_eq!(
        kept_reasons(&monthly),
        [
            (3, vec!["monthly 2020-01".to_owned()]),
            (1, vec!["monthly 2019-12".to_owned()]),
        ]
    );
}

#[test]
fn periods_without_snapshots_are_not_counted() {
    // Gaps of months: "3 daily" still keeps three days.
    let times = [
        t(2026, 1, 5, 1, 0),
        t(2026, 4, 9, 1, 0),
        t(2026, 11, 23, 1, 0),
        t(2026, 11, 23, 2, 0),
    ];
    let plan = plan_times(RetentionPolicy::new().with_daily(3), &times);
    assert_eq!(kept_ids(&plan), [3, 1, 0]);
    assert_eq!(plan.remove, [2]);
}

#[test]
fn combined_rules_list_every_reason_in_rule_order() {
    let times = [
        t(2025, 6, 1, 8, 0),
        t(2026, 10, 31, 8, 0),
        t(2026, 11, 22, 8, 0),
        t(2026, 11, 23, 8, 0),
        t(2026, 11, 23, 9, 0),
    ];
    let policy = RetentionPolicy::new()
        .with_last(1)
        .with_hourly(1)
        .with_daily(2)
        .with_weekly(2)
        .with_monthly(2)
        .with_yearly(2)
        .with_within_secs(3_600);
    let plan = plan_times(policy, &times);
    assert_eq!(
        kept_reasons(&plan),
        [
            (
                4,
                [
                    "last #1",
                    "hourly 2026-11-23 09h",
                    "daily 2026-11-23",
                    "weekly 2026-W48",
                    "monthly 2026-11",
                    "yearly 2026",
                    "within",
                ]
                .map(String::from)
                .to_vec()
            ),
            (
                2,
                ["daily 2026-11-22", "weekly 2026-W47"]
                    .map(String::from)
                    .to_vec()
            ),
            (1, vec!["monthly 2026-10".to_owned()]),
            (0, vec!["yearly 2025".to_owned()]),
        ]
    );
    // 08:00 on the 23rd is exactly one hour before the newest: not *strictly* within.
    assert_eq!(plan.remove, [3]);
}

#[test]
fn keep_within_is_relative_to_the_newest_snapshot() {
    let times = [
        t(2020, 1, 1, 0, 0),
        t(2026, 11, 20, 10, 0),
        t(2026, 11, 20, 10, 1),
        t(2026, 11, 23, 10, 0),
    ];
    // Three days before the newest is 2026-11-20 10:00, which is not strictly newer.
    let plan = plan_times(RetentionPolicy::new().with_within_secs(3 * 86_400), &times);
    assert_eq!(kept_ids(&plan), [3, 2]);
    assert_eq!(plan.remove, [1, 0]);
    assert!(
        plan.keep
            .iter()
            .all(|(_, why)| why == &[KeepReason::Within])
    );

    // A duration beyond what chrono can represent keeps everything, never panics.
    for secs in [u64::MAX, i64::MAX as u64, 1 << 62] {
        let all = plan_times(RetentionPolicy::new().with_within_secs(secs), &times);
        assert_eq!(all.keep.len(), 4, "{secs}");
    }
}

#[test]
fn extreme_dates_do_not_panic() {
    let times = [NaiveDateTime::MIN, NaiveDateTime::MAX, t(2026, 1, 1, 0, 0)];
    let policy = RetentionPolicy {
        keep_last: Some(1),
        keep_hourly: Some(5),
        keep_daily: Some(5),
        keep_weekly: Some(5),
        keep_monthly: Some(5),
        keep_yearly: Some(5),
        keep_within_secs: Some(u64::MAX),
    };
    let plan = plan_times(policy, &times);
    assert_eq!(kept_ids(&plan), [1, 2, 0]);
}

#[test]
fn policy_that_keeps_everything() {
    // Distinct hours and keep-hourly at least the count: nothing to remove.
    let times: Vec<NaiveDateTime> = (0..48)
        .map(|h| t(2026, 11, 1, 0, 0) + TimeDelta::hours(h))
        .collect();
    let plan = plan_times(RetentionPolicy::new().with_hourly(48), &times);
    assert!(plan.remove.is_empty());
    assert_eq!(plan.keep.len(), 48);
    // One fewer: exactly the oldest goes.
    let one_fewer = plan_times(RetentionPolicy::new().with_hourly(47), &times);
    assert_eq!(one_fewer.remove, [0]);
}

#[test]
fn ids_need_only_clone() {
    let items = vec![
        RetentionItem::new(String::from("old"), t(2026, 1, 1, 0, 0)),
        RetentionItem::new(String::from("new"), t(2026, 1, 2, 0, 0)),
    ];
    let plan = RetentionPolicy::new()
        .with_last(1)
        .plan(&items)
        .expect("valid");
    assert_eq!(kept_ids(&plan), ["new"]);
    assert_eq!(plan.remove, ["old"]);
}

// ---------------------------------------------------------------------------------------------
// Reference model and properties
// ---------------------------------------------------------------------------------------------

/// The naive model: every rule computed on its own from scratch, with `strftime` period keys, explicit
/// grouping and explicit (time, input index) ranking — no reliance on stable sorting or adjacency.
/// Returns each kept input index with its reasons as displayed, or `None` for a policy that keeps
/// nothing.
fn model(
    policy: &RetentionPolicy,
    times: &[NaiveDateTime],
) -> Option<BTreeMap<usize, Vec<String>>> {
    let count = |c: Option<u32>| c.map_or(0, |n| n as usize);
    let within = policy.keep_within_secs.unwrap_or(0);
    if policy.counts().iter().all(|&c| count(c) == 0) && within == 0 {
        return None;
    }
    // Rank: newer first, then lower input index first.
    let rank = |i: usize| (std::cmp::Reverse(times[i]), i);
    let mut by_rank: Vec<usize> = (0..times.len()).collect();
    by_rank.sort_by_key(|&i| rank(i));

    let mut kept: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (r, &i) in by_rank.iter().take(count(policy.keep_last)).enumerate() {
        kept.entry(i).or_default().push(format!("last #{}", r + 1));
    }

    let rules = [
        (policy.keep_hourly, "hourly", "%Y-%m-%d %Hh"),
        (policy.keep_daily, "daily", "%Y-%m-%d"),
        (policy.keep_weekly, "weekly", "%G-W%V"),
        (policy.keep_monthly, "monthly", "%Y-%m"),
        (policy.keep_yearly, "yearly", "%Y"),
    ];
    for (n, name, format) in rules {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, time) in times.iter().enumerate() {
            groups
                .entry(time.format(format).to_string())
                .or_default()
                .push(i);
        }
        // The newest of each group, then the groups newest first.
        let mut newest: Vec<(String, usize)> = groups
            .into_iter()
            .filter_map(|(key, members)| {
                members
                    .into_iter()
                    .min_by_key(|&i| rank(i))
                    .map(|i| (key, i))
            })
            .collect();
        newest.sort_by_key(|&(_, i)| rank(i));
        for (key, i) in newest.into_iter().take(count(n)) {
            kept.entry(i).or_default().push(format!("{name} {key}"));
        }
    }

    if within > 0
        && let Some(latest) = times.iter().max()
    {
        for (i, time) in times.iter().enumerate() {
            let age = latest.signed_duration_since(*time).num_seconds();
            if u64::try_from(age).is_ok_and(|age| age < within) {
                kept.entry(i).or_default().push("within".to_owned());
            }
        }
    }
    Some(kept)
}

/// Times clustered around interesting dates at a random scale, so that periods collide often: a few
/// hours (same-hour clashes and exact ties), days, weeks, months, years around ISO week 53.
fn times_strategy() -> impl Strategy<Value = Vec<NaiveDateTime>> {
    let bases = [
        t(2020, 12, 31, 22, 30),
        t(2015, 12, 31, 23, 0),
        t(2026, 11, 23, 10, 0),
        t(2024, 2, 29, 12, 0),
    ];
    let spans_minutes: [i64; 6] = [10, 180, 3 * 1_440, 40 * 1_440, 400 * 1_440, 3_000 * 1_440];
    (
        proptest::sample::select(bases.to_vec()),
        proptest::sample::select(spans_minutes.to_vec()),
        0usize..40,
    )
        .prop_flat_map(|(base, span, len)| {
            proptest::collection::vec(-span..=span, len).prop_map(move |offsets| {
                offsets
                    .into_iter()
                    .map(|minutes| base + TimeDelta::minutes(minutes))
                    .collect()
            })
        })
}

fn count_strategy() -> impl Strategy<Value = Option<u32>> {
    proptest::option::weighted(0.6, prop_oneof![4 => 0u32..6, 1 => 6u32..50])
}

fn policy_strategy() -> impl Strategy<Value = RetentionPolicy> {
    let within = proptest::option::weighted(
        0.3,
        prop_oneof![
            Just(0u64),
            1u64..7_200,
            1u64..(60 * 86_400),
            // Whole minutes and days, so that snapshots sit exactly on the cut-off.
            (1u64..600).prop_map(|minutes| minutes * 60),
            (1u64..60).prop_map(|days| days * 86_400),
            Just(u64::MAX),
        ],
    );
    (
        count_strategy(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        within,
    )
        .prop_map(
            |(
                keep_last,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
                within,
            )| {
                RetentionPolicy {
                    keep_last,
                    keep_hourly,
                    keep_daily,
                    keep_weekly,
                    keep_monthly,
                    keep_yearly,
                    keep_within_secs: within,
                }
            },
        )
}

/// A valid policy (keeps something).
fn valid_policy_strategy() -> impl Strategy<Value = RetentionPolicy> {
    policy_strategy().prop_filter("policy keeps nothing", RetentionPolicy::keeps_anything)
}

/// `policy` with one rule raised by `by` (an unset rule is raised from zero).
fn raise(mut policy: RetentionPolicy, rule: usize, by: u32) -> RetentionPolicy {
    let bump = |c: &mut Option<u32>| *c = Some(c.unwrap_or(0).saturating_add(by));
    match rule {
        0 => bump(&mut policy.keep_last),
        1 => bump(&mut policy.keep_hourly),
        2 => bump(&mut policy.keep_daily),
        3 => bump(&mut policy.keep_weekly),
        4 => bump(&mut policy.keep_monthly),
        5 => bump(&mut policy.keep_yearly),
        _ => {
            let secs = policy.keep_within_secs.unwrap_or(0);
            policy.keep_within_secs = Some(secs.saturating_add(u64::from(by) * 3_600));
        }
    }
    policy
}

fn kept_set(plan: &RetentionPlan<usize>) -> BTreeSet<usize> {
    plan.keep.iter().map(|(id, _)| *id).collect()
}

/// Both lists are newest first, equal times in input order.
fn assert_newest_first(ids: &[usize], times: &[NaiveDateTime]) {
    for pair in ids.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            times[a] > times[b] || (times[a] == times[b] && a < b),
            "{a} ({}) listed before {b} ({})",
            times[a],
            times[b]
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The plan keeps exactly what the naive model keeps, for exactly the same reasons; invalid
    /// policies are refused.
    #[test]
    fn plan_matches_reference_model(policy in policy_strategy(), times in times_strategy()) {
        let result = policy.plan(&items(&times));
        match model(&policy, &times) {
            None => prop_assert!(result.is_err(), "{policy} should be refused"),
            Some(expected) => {
                let plan = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let actual: BTreeMap<usize, Vec<String>> = kept_reasons(&plan).into_iter().collect();
                prop_assert_eq!(actual.len(), plan.keep.len(), "an id kept twice");
                prop_assert_eq!(actual, expected, "policy: {}", policy);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// keep ∪ remove is the input, disjoint, both newest first, every kept item has a reason, and the
    /// newest snapshot is always kept.
    #[test]
    fn plan_partitions_the_input(policy in valid_policy_strategy(), times in times_strategy()) {
        let plan = plan_times(policy, &times);
        let kept: Vec<usize> = kept_ids(&plan);
        let mut all: Vec<usize> = kept.iter().chain(&plan.remove).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..times.len()).collect::<Vec<_>>());
        prop_assert!(plan.keep.iter().all(|(_, why)| !why.is_empty()));
        assert_newest_first(&kept, &times);
        assert_newest_first(&plan.remove, &times);
        if let Some(newest) = times.iter().max() {
            prop_assert!(kept.first().is_some_and(|&i| times[i] == *newest));
        }
    }

    /// The N newest snapshots are always kept under keep-last N.
    #[test]
    fn keep_last_keeps_the_newest(policy in valid_policy_strategy(), times in times_strategy()) {
        let plan = plan_times(policy, &times);
        let n = policy.keep_last.unwrap_or(0) as usize;
        let mut by_rank: Vec<usize> = (0..times.len()).collect();
        by_rank.sort_by_key(|&i| (std::cmp::Reverse(times[i]), i));
        let kept = kept_set(&plan);
        for &i in by_rank.iter().take(n) {
            prop_assert!(kept.contains(&i), "{i} is among the {n} newest");
        }
    }

    /// Raising any rule never removes a snapshot that was kept.
    #[test]
    fn raising_a_rule_never_removes_more(
        policy in valid_policy_strategy(),
        times in times_strategy(),
        rule in 0usize..7,
        by in 1u32..10,
    ) {
        let before = kept_set(&plan_times(policy, &times));
        let raised = raise(policy, rule, by);
        let after = kept_set(&plan_times(raised, &times));
        prop_assert!(before.is_subset(&after), "{policy} → {raised}: lost {:?}", before.difference(&after));
    }

    /// Planning again on what was kept, with the same policy, removes nothing and gives the same
    /// reasons — in the plan's own order and in the original input order.
    #[test]
    fn planning_is_idempotent(policy in valid_policy_strategy(), times in times_strategy()) {
        let first = plan_times(policy, &times);
        let input = items(&times);

        let survivors: Vec<RetentionItem<usize>> =
            first.keep.iter().map(|(id, _)| input[*id].clone()).collect();
        let again = policy.plan(&survivors).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(again.remove.is_empty(), "removed {:?}", again.remove);
        prop_assert_eq!(&again.keep, &first.keep);

        let in_input_order: Vec<RetentionItem<usize>> =
            input.iter().filter(|item| kept_set(&first).contains(&item.id)).cloned().collect();
        let again = policy.plan(&in_input_order).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again.keep, &first.keep);
    }

    /// With distinct times, the input order does not matter.
    #[test]
    fn input_order_is_irrelevant_for_distinct_times(
        policy in valid_policy_strategy(),
        times in times_strategy(),
    ) {
        let distinct: Vec<NaiveDateTime> =
            times.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let forward = plan_times(policy, &distinct);
        let reversed: Vec<RetentionItem<usize>> = items(&distinct).into_iter().rev().collect();
        let backward = policy.plan(&reversed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(backward, forward);
    }
}
