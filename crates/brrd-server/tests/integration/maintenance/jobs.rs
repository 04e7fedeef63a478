//! Scheduled maintenance jobs: a failing job is counted and audited and does not stop the others.

use super::*;

#[tokio::test]
async fn a_failing_job_is_counted_audited_and_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (local, snaps) = build(dir.path(), &[("h1", day(1, 10))]);
    for backend in store_setups() {
        let t = start_server(&backend, no_scheduler).await;
        let svc = t.running.service.clone();
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let b = tenant(&t, "b", json!({"name": "main"})).await;
        upload_in_order(&t, &a, &local, &snaps).await;
        upload_in_order(&t, &b, &local, &snaps).await;
        // A's snapshot rots in the store: its references cannot be trusted, so A's GC refuses to run.
        let store = brr_storage::open_url_at(
            &svc.config.store_url(),
            &format!("{}/{}", a.company, a.repo),
        )
        .unwrap();
        let mut rotten = snaps[0].bytes.clone();
        rotten[40] ^= 1;
        store
            .write(FileKind::Snapshot, &snaps[0].id, &rotten)
            .unwrap();
        let pass = run_due(&svc, &AtomicBool::new(false)).await.unwrap();
        assert_eq!(pass.failed.len(), 1, "{pass:?}");
        assert_eq!(
            (pass.failed[0].0.as_str(), pass.failed[0].1),
            (a.repo.as_str(), "gc")
        );
        assert!(!pass.failed[0].2.contains('\n'), "{pass:?}");
        for job in ["retention", "gc", "verify"] {
            assert!(pass.ran.contains(&(b.repo.clone(), job)), "{pass:?}");
        }
        assert!(pass.ran.contains(&(a.repo.clone(), "verify")), "{pass:?}");
        assert_eq!(audit_count(&t, "repo.maintenance", "failure").await, 1);
        // The scrub of A found the damage and said so in the audit trail.
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'repo.verify' AND outcome = 'damaged' AND target = $1",
        )
        .bind(format!("repo:{}", a.repo))
        .fetch_one(&svc.db.pool)
        .await
        .unwrap();
        assert_eq!(n, 1);
        let metrics = svc.maintenance.render_metrics();
        assert!(
            metrics.contains("brrd_repo_maintenance_failures_total 1\n"),
            "{metrics}"
        );
        // A stop request ends a pass before the next repository.
        t.clock.advance_secs(8 * 24 * 3600);
        let pass = run_due(&svc, &AtomicBool::new(true)).await.unwrap();
        assert!(pass.ran.is_empty() && pass.failed.is_empty(), "{pass:?}");
        t.running.shutdown().await;
    }
}
