//! Every endpoint of the router tried as outsiders and lower roles: each is refused, or answers only
//! within the caller's own company.

use super::probes::probes;
use super::*;

fn denied(s: StatusCode) -> bool {
    matches!(
        s,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    )
}

#[tokio::test]
async fn every_endpoint_refuses_outsiders_and_lower_roles() {
    for backend in backends() {
        let t = start_server(&backend, |_| {}).await;
        let (w, callers) = world(&t).await;
        let probes = probes();
        let list = endpoints();
        assert_eq!(list.len(), probes.len(), "probe list and router differ");
        let secrets = [
            w.a.as_str(),
            w.a_admin_email,
            w.a_user_email,
            w.a_admin.as_str(),
            w.a_user.as_str(),
        ];
        for e in &list {
            let key = (e.method.as_str(), e.path);
            let body = probes
                .get(&key)
                .unwrap_or_else(|| {
                    panic!(
                        "no access probe for {} {}: add one to tests/integration/access/probes.rs",
                        e.method, e.path
                    )
                })
                .clone();
            if e.access == Access::Public {
                continue;
            }
            let method = Method::from_bytes(e.method.as_str().as_bytes()).unwrap();
            let targets_a = e.path.contains('{');
            let mut denials = 0;
            for c in &callers {
                let route_ok = e.access.allows(c.principal.as_ref()).is_ok();
                let path = fill(e.path, &w, &w.a);
                let expect_denied = !route_ok || (targets_a && !c.insider);
                if expect_denied {
                    let (s, b) = t
                        .call(method.clone(), &path, c.token.as_deref(), body.clone())
                        .await;
                    assert!(
                        denied(s),
                        "{backend:?}: {} {} as {} gave {s}: {b}",
                        e.method,
                        e.path,
                        c.name
                    );
                    assert!(
                        e.method == axum::http::Method::HEAD || b["error"]["code"].is_string(),
                        "JSON error for {} {}",
                        e.method,
                        e.path
                    );
                    denials += 1;
                } else if !targets_a && !c.insider && e.method == axum::http::Method::GET {
                    // Allowed, self-scoped reads: must not leak company A.
                    let (s, b) = t
                        .call(method.clone(), &path, c.token.as_deref(), None)
                        .await;
                    assert!(
                        s.is_success(),
                        "{} {} as {} gave {s}: {b}",
                        e.method,
                        e.path,
                        c.name
                    );
                    for secret in secrets {
                        assert!(
                            !b.to_string().contains(secret),
                            "{} {} as {} leaks {secret}: {b}",
                            e.method,
                            e.path,
                            c.name
                        );
                    }
                }
                // Endpoints with a second id: the caller's own company with A's object id.
                if targets_a
                    && e.path.matches('{').count() >= 2
                    && route_ok
                    && !c.insider
                    && let Some(own) = c.principal.as_ref().and_then(|p| p.company_id())
                {
                    let path = fill(e.path, &w, own);
                    let (s, b) = t
                        .call(method.clone(), &path, c.token.as_deref(), body.clone())
                        .await;
                    assert_eq!(
                        s,
                        StatusCode::NOT_FOUND,
                        "{} {} (own company, A's object) as {}: {b}",
                        e.method,
                        e.path,
                        c.name
                    );
                }
            }
            assert!(
                denials > 0,
                "{} {} was never tried as an unauthorised caller",
                e.method,
                e.path
            );
        }
        // Repository files are for the company alone: provider staff (who may read repository
        // metadata) and a bare API key get 403 on every file route, without reading any body.
        for e in list.iter().filter(|e| {
            e.path.starts_with("/api/v1/repos/{repo}/files/") || e.path.ends_with("/blobs/lookup")
        }) {
            let method = Method::from_bytes(e.method.as_str().as_bytes()).unwrap();
            let body = probes[&(e.method.as_str(), e.path)].clone();
            for c in callers
                .iter()
                .filter(|c| matches!(c.name, "operator" | "security officer" | "agent of A"))
            {
                let (s, b) = t
                    .call(
                        method.clone(),
                        &fill(e.path, &w, &w.a),
                        c.token.as_deref(),
                        body.clone(),
                    )
                    .await;
                assert_eq!(
                    s,
                    StatusCode::FORBIDDEN,
                    "{} {} as {}: {b}",
                    e.method,
                    e.path,
                    c.name
                );
            }
        }
        // Nothing of company A was changed by the attempts.
        let aa = t.login(w.a_admin_email).await;
        let (s, users) = t
            .get(&format!("/api/v1/companies/{}/users", w.a), &aa)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(users.to_string().contains(w.a_user_email));
        assert!(!users.to_string().contains("disabled"));
        let (_, invs) = t
            .get(&format!("/api/v1/companies/{}/invitations", w.a), &aa)
            .await;
        assert!(!invs.to_string().contains("revoked"));
        assert!(!invs.to_string().contains("m@evil.example"));
        let (s, _) = t.get("/api/v1/me", &w.a_key_secret).await;
        assert_eq!(s, StatusCode::OK, "A's agent key still works");
        let (_, c) = t.get(&format!("/api/v1/companies/{}", w.a), &aa).await;
        assert_eq!(c["visibility"], "private");
        // A's repository, its lock and its agent survived every attempt.
        let (s, r) = t.get(&format!("/api/v1/repos/{}", w.a_repo), &aa).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["append_only"], false);
        let (_, locks) = t
            .get(&format!("/api/v1/repos/{}/files/locks", w.a_repo), &aa)
            .await;
        assert!(locks.to_string().contains(&w.a_lock), "{locks}");
        let (_, agents) = t.get("/api/v1/agents", &aa).await;
        assert!(agents[0]["revoked_at"].is_null(), "{agents}");
        let (_, q) = t
            .get(&format!("/api/v1/companies/{}/quota", w.a), &aa)
            .await;
        assert!(q["max_stored_bytes"].is_null(), "{q}");
        let _ = (&w.b_user, &w.b_invitation, &w.b);
        t.running.shutdown().await;
    }
}
