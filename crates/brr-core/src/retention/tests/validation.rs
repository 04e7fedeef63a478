//! Policy validation (what keeps nothing is refused), display of policies and reasons, serde strictness.

use super::*;

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
