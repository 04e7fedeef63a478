//! Properties checked against a deliberately naive reference model, on generated policies and clustered
//! times.

use super::*;

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
