//! Agents: enrolment with an API key, and revocation.

use super::*;

#[tokio::test]
async fn agents_enrol_with_a_key_and_are_revoked() {
    for backend in store_setups() {
        let t = start_server(&backend, |_| {}).await;
        let a = tenant(&t, "a", json!({"name": "main"})).await;
        let (s, k) = t
            .post(
                &format!("/api/v1/companies/{}/api-keys", a.company),
                Some(&a.admin),
                json!({"name": "enrol-2"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let key = k["secret"].as_str().unwrap().to_string();
        // The API key only enrols: no repository access of its own.
        let (s, _) = t.get("/api/v1/repos", &key).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .put_file(&key, &a.repo, FileKind::Lock, "0a", &lock_json())
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // An agent cannot enrol further agents; a person cannot either.
        let (s, _) = t
            .post(
                "/api/v1/agents/enroll",
                Some(&a.agent),
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .post(
                "/api/v1/agents/enroll",
                Some(&a.admin),
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .post("/api/v1/agents/enroll", Some(&key), json!({"name": " "}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (id, token) = enroll(&t, &key, "laptop").await;
        assert!(token.starts_with(&format!("brra_{id}_")));
        let (s, me) = t.get("/api/v1/me", &token).await;
        assert_eq!(s, StatusCode::OK, "{me}");
        assert_eq!(me["company_id"], a.company.as_str());
        assert_eq!(me["agent_id"], id.as_str());
        // A wrong secret for a real agent id is refused.
        let forged = format!("brra_{id}_{}", "A".repeat(43));
        let (s, _) = t.get("/api/v1/repos", &forged).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Quota on agents: the company has two; a limit of two refuses a third.
        let pa = provider_admin(&t).await;
        let (s, q) = t
            .call(
                Method::PUT,
                &format!("/api/v1/companies/{}/quota", a.company),
                Some(&pa),
                Some(json!({"max_agents": 2})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{q}");
        let (s, b) = t
            .post(
                "/api/v1/agents/enroll",
                Some(&key),
                json!({"name": "third"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(b["error"]["code"], "quota_exceeded");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("2 of 2 agents"),
            "{b}"
        );
        // The admin lists and revokes; the revoked agent is refused at once. When an agent was last
        // seen is written in the background: wait for it.
        let mut list = serde_json::Value::Null;
        for _ in 0..200 {
            let (s, l) = t.get("/api/v1/agents", &a.admin).await;
            assert_eq!(s, StatusCode::OK);
            list = l;
            if list
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["id"] == id.as_str() && g["last_seen_at"].is_i64())
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
        assert!(!list.to_string().contains("secret"), "{list}");
        let laptop = list
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id.as_str())
            .unwrap();
        assert!(laptop["last_seen_at"].is_i64(), "{laptop}");
        let user_tok = {
            let (s, _) = t
                .post(
                    &format!("/api/v1/companies/{}/invitations", a.company),
                    Some(&a.admin),
                    json!({"email": "u@a.example", "role": "company_user"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
            t.accept_invitation("u@a.example").await;
            t.login("u@a.example").await
        };
        let (s, _) = t.get("/api/v1/agents", &user_tok).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{id}"),
                Some(&user_tok),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{id}"),
                Some(&a.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = t.get("/api/v1/repos", &token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{id}"),
                Some(&a.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // With one agent revoked, enrolment works again.
        enroll(&t, &key, "replacement").await;
        t.running.shutdown().await;
    }
}
