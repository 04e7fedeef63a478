//! The audit trail: recorded actions, queries, export, and tamper detection by direct database edits.

use brr_api::identity::Role;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::common::{TestServer, backends, start_server};

async fn sql(t: &TestServer, statement: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
}

async fn verify(t: &TestServer, so: &str) -> serde_json::Value {
    let (s, r) = t.get("/api/v1/audit/verify", so).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

#[tokio::test]
async fn audit_records_queries_and_detects_tampering() {
    for backend in backends() {
        let t = start_server(&backend, |c| c.audit_checkpoint_every = 5).await;
        let so = t.staff("so@provider.example", Role::SecurityOfficer).await;
        let cid = t.register_company("ada@a.example", "A", "GB-LND").await;
        t.post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@a.example", "password": "Wrong-Passw0rd!"}),
        )
        .await;
        let r = verify(&t, &so).await;
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["checkpoints"].as_i64().unwrap() >= 1, "{r}");

        // Query by action and company, with pagination.
        let (_, page) = t.get("/api/v1/audit?action=auth.login&limit=1", &so).await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 1);
        let next = page["next_after"].as_i64().unwrap();
        let (_, page2) = t
            .get(
                &format!("/api/v1/audit?action=auth.login&limit=50&after={next}"),
                &so,
            )
            .await;
        let outcomes: Vec<_> = page2["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert!(outcomes.contains(&"failure"), "{page2}");
        let (_, mine) = t.get(&format!("/api/v1/audit?company_id={cid}"), &so).await;
        assert!(
            mine["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["company_id"] == cid.as_str())
        );
        let (_, ranged) = t.get("/api/v1/audit?from=0&to=1", &so).await;
        assert!(ranged["entries"].as_array().unwrap().is_empty());
        // A company admin sees only the own company, whatever the query says.
        let ada = t.login("ada@a.example").await;
        let (s, own) = t.get("/api/v1/audit?company_id=someone-else", &ada).await;
        assert_eq!(s, StatusCode::OK);
        assert!(own["entries"].as_array().unwrap().is_empty());
        let (_, own) = t.get("/api/v1/audit", &ada).await;
        assert!(
            own["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["company_id"] == cid.as_str())
        );
        // No secrets in the trail.
        let (_, export) = t
            .call(
                reqwest::Method::GET,
                "/api/v1/audit/export",
                Some(&so),
                None,
            )
            .await;
        let text = export.as_str().unwrap().to_string();
        assert!(text.lines().count() >= 5);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
        assert!(!text.contains("Corr3ct-Horse-Battery") && !text.contains("Wrong-Passw0rd!"));
        assert!(!text.contains(&ada));

        // Edit a row.
        sql(
            &t,
            "UPDATE audit_log SET outcome = 'tampered' WHERE seq = 3",
        )
        .await;
        let r = verify(&t, &so).await;
        assert_eq!(r["ok"], false);
        assert!(
            r["problems"]
                .to_string()
                .contains("entry 3: content was altered"),
            "{r}"
        );
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn deleted_and_reordered_entries_are_detected() {
    for backend in backends() {
        for attack in ["DELETE FROM audit_log WHERE seq = 4", "swap", "truncate"] {
            let t = start_server(&backend, |c| c.audit_checkpoint_every = 3).await;
            let so = t.staff("so@provider.example", Role::SecurityOfficer).await;
            t.register_company("ada@a.example", "A", "GB-LND").await;
            assert_eq!(verify(&t, &so).await["ok"], true);
            match attack {
                "swap" => {
                    sql(&t, "UPDATE audit_log SET seq = 1000 WHERE seq = 4").await;
                    sql(&t, "UPDATE audit_log SET seq = 4 WHERE seq = 5").await;
                    sql(&t, "UPDATE audit_log SET seq = 5 WHERE seq = 1000").await;
                }
                "truncate" => sql(&t, "DELETE FROM audit_log WHERE seq > 2").await,
                s => sql(&t, s).await,
            }
            let r = verify(&t, &so).await;
            assert_eq!(r["ok"], false, "{attack}: {r}");
            t.running.shutdown().await;
        }
    }
}

/// Two appenders over one database (as two brrd nodes would be) keep a single valid chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_keep_one_chain() {
    use std::sync::Arc;

    use brrd_server::audit::{AuditEvent, AuditLog};
    use brrd_server::clock::OsRandom;
    use brrd_server::db::Db;
    use brrd_server::keys::Keys;

    for backend in backends() {
        let t = start_server(&backend, |c| c.audit_checkpoint_every = 7).await;
        let keys = Arc::new(Keys::load_or_create(&t._data.path().join("keys"), &OsRandom).unwrap());
        let second_node = Arc::new(AuditLog::new(
            Db::connect(&t.database_url).await.unwrap(),
            keys,
            7,
        ));
        let svc = t.running.service.clone();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (svc, other) = (svc.clone(), second_node.clone());
            tasks.push(tokio::spawn(async move {
                for j in 0..10 {
                    let ev = AuditEvent {
                        actor: format!("system:{i}"),
                        company_id: None,
                        source: "test".into(),
                        action: "test.concurrent".into(),
                        target: format!("{i}/{j}"),
                        outcome: "success".into(),
                        details: String::new(),
                    };
                    let log = if i % 2 == 0 {
                        &svc.audit
                    } else {
                        other.as_ref()
                    };
                    log.append(svc.clock.now_ms(), ev).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let r = svc.audit.verify().await.unwrap();
        assert!(r.ok, "{backend:?}: {r:?}");
        assert!(r.entries >= 80 && r.checkpoints >= 11, "{r:?}");
        t.running.shutdown().await;
    }
}
