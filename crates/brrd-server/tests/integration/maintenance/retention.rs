//! Retention run by the server: after each snapshot upload, per source tag, as `brr_core::retention`
//! plans it; in append-only repositories, marks first and deletion by the scheduler after the delay.

use super::*;

#[tokio::test]
async fn retention_after_upload_keeps_what_the_policy_says_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [
        ("h1", day(1, 10)),
        ("h2", day(1, 11)),
        ("h1", day(2, 10)),
        ("h2", day(2, 11)),
        ("h2", day(2, 15)),
        ("h1", day(3, 10)),
        ("h2", day(3, 11)),
        ("h1", day(4, 10)),
        ("h1", day(4, 12)),
    ];
    let (local, snaps) = build(dir.path(), &plan);
    let h2 = snaps[1].source.clone();
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let b = tenant(&t, "b", json!({"name": "main"})).await;

        // Validation: one-line 422s; roles; other companies see nothing.
        for (body, needle) in [
            (json!({}), "keeps nothing"),
            (json!({"keep_last": 0}), "keeps nothing"),
            (json!({"keep_last": 2, "grouping": "host"}), "grouping"),
            (json!({"keep_last": 2, "source": "H2"}), "source"),
            (json!({"keep_daily": 100_001}), "at most"),
        ] {
            let (s, v) = put_retention(&t, &a.admin, &a.repo, body.clone()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
            assert_eq!(v["error"]["code"], "bad_policy");
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains(needle) && !m.contains('\n'), "{m}");
        }
        let (s, _) = put_retention(&t, &a.agent, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "agents do not set retention");
        let (s, _) = put_retention(&t, &b.admin, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "company B cannot set A's retention"
        );
        let (s, _) = t
            .get(&format!("/api/v1/repos/{}/retention", a.repo), &b.admin)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&b.admin),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "company B cannot trigger A's GC");
        let (s, _) = t
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/repos/{}/retention", a.repo),
                Some(&b.admin),
                None,
            )
            .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "company B cannot remove A's retention"
        );
        let (s, _) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&a.agent),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // The repository keeps the last 2 per source; source h2 keeps one per day for 2 days.
        let (s, v) = put_retention(&t, &a.admin, "main", json!({"keep_last": 2})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) =
            put_retention(&t, &a.admin, "main", json!({"keep_daily": 2, "source": h2})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["policies"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["policies"][1]["source"], h2.as_str());
        upload_in_order(&t, &a, &local, &snaps).await;

        let mut expected = BTreeSet::new();
        let by_source: BTreeMap<&str, Vec<&Snap>> =
            snaps.iter().fold(BTreeMap::new(), |mut m, s| {
                m.entry(s.source.as_str()).or_default().push(s);
                m
            });
        for (source, group) in &by_source {
            let policy = if *source == h2 {
                RetentionPolicy {
                    keep_daily: Some(2),
                    ..Default::default()
                }
            } else {
                RetentionPolicy {
                    keep_last: Some(2),
                    ..Default::default()
                }
            };
            expected.extend(expected_keep(group, &policy));
        }
        assert_eq!(expected.len(), 4);
        assert_eq!(stored_snapshots(&t, &a).await, expected);
        // The database record follows the files; every deletion is audited as `system`.
        let (_, r) = t.get(&format!("/api/v1/repos/{}", a.repo), &a.agent).await;
        assert_eq!(r["usage"]["snapshots"], 4, "{r}");
        assert_eq!(
            audit_count(&t, "repo.retention_delete", "success").await,
            (snaps.len() - 4) as i64
        );
        // Company B's repository of the same name is untouched by A's policy.
        let (_, v) = t
            .get(&format!("/api/v1/repos/{}/retention", b.repo), &b.admin)
            .await;
        assert_eq!(v["policies"], json!([]));
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn append_only_retention_marks_and_deletes_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [("h1", day(1, 10)), ("h1", day(2, 10)), ("h1", day(3, 10))];
    let (local, snaps) = build(dir.path(), &plan);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let a = tenant(
            &t,
            "a",
            json!({"name": "locked", "append_only": true, "delete_delay_secs": 3600}),
        )
        .await;
        let (s, v) = put_retention(&t, &a.admin, &a.repo, json!({"keep_last": 1})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        upload_in_order(&t, &a, &local, &snaps).await;
        // Selected, marked, nothing deleted yet.
        assert_eq!(stored_snapshots(&t, &a).await.len(), 3);
        assert_eq!(audit_count(&t, "repo.retention_mark", "success").await, 2);
        // Clients still cannot delete, nor collect garbage.
        for who in [&a.admin, &a.agent] {
            let (s, _) = t
                .delete_file(who, &a.repo, FileKind::Snapshot, &snaps[0].id)
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        }
        let (s, v) = t
            .post(
                &format!("/api/v1/repos/{}/gc", a.repo),
                Some(&a.admin),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["error"]["code"], "append_only");

        // The scheduler, driven by the manual clock: before the delay nothing goes, after it the
        // marked snapshots are deleted and the garbage collected.
        let svc = t.running.service.clone();
        let stop = AtomicBool::new(false);
        t.clock.advance_secs(3000);
        let pass = run_due(&svc, &stop).await.unwrap();
        assert!(pass.failed.is_empty(), "{pass:?}");
        assert!(pass.ran.contains(&(a.repo.clone(), "gc")), "{pass:?}");
        assert_eq!(stored_snapshots(&t, &a).await.len(), 3);
        // Retention is due again after retention_every_secs (1 h); the marks are then past the delay.
        t.clock.advance_secs(3600);
        let pass = run_due(&svc, &stop).await.unwrap();
        assert!(pass.failed.is_empty(), "{pass:?}");
        assert!(
            pass.ran.contains(&(a.repo.clone(), "retention")),
            "{pass:?}"
        );
        assert_eq!(
            stored_snapshots(&t, &a).await,
            BTreeSet::from([snaps[2].id.clone()])
        );
        assert_eq!(audit_count(&t, "repo.retention_delete", "success").await, 2);
        // Nothing is due right after a pass.
        let pass = run_due(&svc, &stop).await.unwrap();
        assert!(pass.ran.is_empty(), "{pass:?}");
        // The server's GC (run by the operator) reclaims the deleted snapshots' data.
        let r = svc.collect_garbage(&row(&t, &a.repo).await).await.unwrap();
        assert!(r.bytes_freed > 0, "{r:?}");
        let server_copy = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        let repo = Repository::open(server_copy, &Unlock::Password(PASSWORD)).unwrap();
        let report = check(
            &repo,
            &CheckOptions {
                read_data: true,
                threads: Some(2),
            },
            &NoProgress,
        )
        .unwrap();
        assert!(report.is_ok(), "{:?}", report.errors);
        t.running.shutdown().await;
    }
}
