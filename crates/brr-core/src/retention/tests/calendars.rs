//! Hand-made calendars: year and ISO-week boundaries, ties, empty periods, combined rules, extreme dates.

use super::*;

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
