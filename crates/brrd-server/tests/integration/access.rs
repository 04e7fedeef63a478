//! Every endpoint, derived from the router's own list, tried as outsiders and lower roles.
//!
//! A route without a probe here fails the test, so no endpoint can escape it.

use std::collections::HashMap;

use brr_api::identity::Role;
use brrd_server::http::endpoints;
use brrd_server::service::Principal;
use brrd_server::service::access::Access;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, backends, start_server};

/// A valid body for each endpoint (so that a denial cannot be a mere parse error). `None`: no body.
/// Every endpoint the router has must be listed.
fn probes() -> HashMap<(&'static str, &'static str), Option<Value>> {
    let pw = json!({"current_password": "x", "new_password": "Y"});
    HashMap::from([
        (("POST", "/api/v1/auth/login"), None),
        (("POST", "/api/v1/auth/refresh"), None),
        (("POST", "/api/v1/auth/logout"), None),
        (("POST", "/api/v1/auth/logout-all"), None),
        (("POST", "/api/v1/auth/register"), None),
        (("POST", "/api/v1/auth/register/verify"), None),
        (("POST", "/api/v1/auth/password-reset"), None),
        (("POST", "/api/v1/auth/password-reset/confirm"), None),
        (("POST", "/api/v1/auth/setup"), None),
        (("GET", "/api/v1/sites"), None),
        (("GET", "/api/v1/openapi.json"), None),
        (("GET", "/api/v1/me"), None),
        (("PUT", "/api/v1/me/password"), Some(pw)),
        (("GET", "/api/v1/me/export"), None),
        (("POST", "/api/v1/me/totp"), None),
        (
            ("POST", "/api/v1/me/totp/confirm"),
            Some(json!({"code": "000000"})),
        ),
        (
            ("POST", "/api/v1/me/totp/disable"),
            Some(json!({"code": "000000"})),
        ),
        (("GET", "/api/v1/companies"), None),
        (
            ("POST", "/api/v1/companies"),
            Some(json!({"name": "Evil", "site": "DE-FRA", "admin_email": "e@evil.example"})),
        ),
        (("GET", "/api/v1/companies/{company_id}"), None),
        (
            ("PATCH", "/api/v1/companies/{company_id}"),
            Some(json!({"visibility": "public"})),
        ),
        (("GET", "/api/v1/companies/{company_id}/users"), None),
        (
            ("PATCH", "/api/v1/companies/{company_id}/users/{user_id}"),
            Some(json!({"status": "disabled"})),
        ),
        (
            ("DELETE", "/api/v1/companies/{company_id}/users/{user_id}"),
            None,
        ),
        (("GET", "/api/v1/companies/{company_id}/invitations"), None),
        (
            ("POST", "/api/v1/companies/{company_id}/invitations"),
            Some(json!({"email": "m@evil.example", "role": "company_admin"})),
        ),
        (
            (
                "DELETE",
                "/api/v1/companies/{company_id}/invitations/{invitation_id}",
            ),
            None,
        ),
        (("GET", "/api/v1/companies/{company_id}/api-keys"), None),
        (
            ("POST", "/api/v1/companies/{company_id}/api-keys"),
            Some(json!({"name": "evil"})),
        ),
        (
            ("DELETE", "/api/v1/companies/{company_id}/api-keys/{key_id}"),
            None,
        ),
        (("GET", "/api/v1/directory"), None),
        (("GET", "/api/v1/directory/{user_id}"), None),
        (("GET", "/api/v1/repos"), None),
        (("POST", "/api/v1/repos"), Some(json!({"name": "evil"}))),
        (("GET", "/api/v1/repos/{repo}"), None),
        (
            ("PATCH", "/api/v1/repos/{repo}"),
            Some(json!({"append_only": false})),
        ),
        (("GET", "/api/v1/repos/{repo}/files/{kind}"), None),
        (("GET", "/api/v1/repos/{repo}/files/{kind}/{name}"), None),
        (("HEAD", "/api/v1/repos/{repo}/files/{kind}/{name}"), None),
        (
            ("PUT", "/api/v1/repos/{repo}/files/{kind}/{name}"),
            Some(json!({"kind": "shared"})),
        ),
        (("DELETE", "/api/v1/repos/{repo}/files/{kind}/{name}"), None),
        (
            ("POST", "/api/v1/repos/{repo}/blobs/lookup"),
            Some(json!({"ids": ["00".repeat(32)]})),
        ),
        (
            ("POST", "/api/v1/agents/enroll"),
            Some(json!({"name": "evil"})),
        ),
        (("POST", "/api/v1/repos/{repo}/verify"), None),
        (("GET", "/api/v1/repos/{repo}/retention"), None),
        (
            ("PUT", "/api/v1/repos/{repo}/retention"),
            Some(json!({"keep_last": 1})),
        ),
        (("DELETE", "/api/v1/repos/{repo}/retention"), None),
        (("POST", "/api/v1/repos/{repo}/gc"), None),
        (("GET", "/api/v1/agents"), None),
        (("DELETE", "/api/v1/agents/{agent_id}"), None),
        (("GET", "/api/v1/companies/{company_id}/quota"), None),
        (
            ("PUT", "/api/v1/companies/{company_id}/quota"),
            Some(json!({"max_stored_bytes": 1})),
        ),
        (("GET", "/api/v1/companies/{company_id}/usage"), None),
        (("GET", "/api/v1/audit"), None),
        (("GET", "/api/v1/audit/verify"), None),
        (("GET", "/api/v1/audit/export"), None),
    ])
}

struct Caller {
    name: &'static str,
    token: Option<String>,
    principal: Option<Principal>,
    /// Member of company A (the target) or provider staff: may legitimately reach A's records.
    insider: bool,
}

struct World {
    a: String,
    b: String,
    a_admin_email: &'static str,
    a_user_email: &'static str,
    a_user: String,
    a_admin: String,
    a_invitation: String,
    a_key: String,
    a_key_secret: String,
    b_user: String,
    b_invitation: String,
    /// A's repository, A's enrolled agent and the lock it uploaded.
    a_repo: String,
    a_agent: String,
    a_lock: String,
}

/// A lock file as the engine writes it.
pub fn lock_json() -> Vec<u8> {
    br#"{"kind":"shared","purpose":"backup","hostname":"h","pid":1,"username":"u","created":"2026-11-23T10:00:00+01:00"}"#.to_vec()
}

/// Enrols an agent with an API key; returns (agent id, token).
pub async fn enroll(t: &TestServer, api_key: &str, name: &str) -> (String, String) {
    let (s, b) = t
        .post(
            "/api/v1/agents/enroll",
            Some(api_key),
            json!({"name": name}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (
        b["agent_id"].as_str().unwrap().to_string(),
        b["token"].as_str().unwrap().to_string(),
    )
}

async fn me_id(t: &TestServer, tok: &str) -> String {
    t.get("/api/v1/me", tok).await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn user(role: Role, company: Option<&str>) -> Option<Principal> {
    Some(Principal::User {
        id: String::new(),
        company_id: company.map(str::to_string),
        role,
        session_id: String::new(),
    })
}

async fn world(t: &TestServer) -> (World, Vec<Caller>) {
    let pa = t.staff("root@provider.example", Role::ProviderAdmin).await;
    let op = t.staff("op@provider.example", Role::Operator).await;
    let so = t.staff("so@provider.example", Role::SecurityOfficer).await;
    let a = t
        .register_company("admin@a.example", "Company A", "HK-ALC")
        .await;
    let b = t
        .register_company("admin@b.example", "Company B", "DE-FRA")
        .await;
    let aa = t.login("admin@a.example").await;
    let ba = t.login("admin@b.example").await;
    for (cid, tok, email) in [(&a, &aa, "user@a.example"), (&b, &ba, "user@b.example")] {
        let (s, _) = t
            .post(
                &format!("/api/v1/companies/{cid}/invitations"),
                Some(tok),
                json!({"email": email, "role": "company_user"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        t.accept_invitation(email).await;
    }
    let au = t.login("user@a.example").await;
    let bu = t.login("user@b.example").await;
    let inv = |cid: String, tok: String| async move {
        let (_, b) = t
            .post(
                &format!("/api/v1/companies/{cid}/invitations"),
                Some(&tok),
                json!({"email": format!("later@{cid}.example"), "role": "company_user"}),
            )
            .await;
        b["id"].as_str().unwrap().to_string()
    };
    let a_invitation = inv(a.clone(), aa.clone()).await;
    let b_invitation = inv(b.clone(), ba.clone()).await;
    let key = |cid: String, tok: String| async move {
        let (s, k) = t
            .post(
                &format!("/api/v1/companies/{cid}/api-keys"),
                Some(&tok),
                json!({"name": "agent"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        (
            k["key"]["id"].as_str().unwrap().to_string(),
            k["secret"].as_str().unwrap().to_string(),
        )
    };
    let (a_key, a_key_secret) = key(a.clone(), aa.clone()).await;
    let (_, kb) = key(b.clone(), ba.clone()).await;
    let (a_agent, a_agent_token) = enroll(t, &a_key_secret, "host-a").await;
    let (_, b_agent_token) = enroll(t, &kb, "host-b").await;
    let (s, r) = t
        .post("/api/v1/repos", Some(&aa), json!({"name": "main"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let a_repo = r["id"].as_str().unwrap().to_string();
    let a_lock = "0123456789abcdef0123456789abcdef".to_string();
    let resp = t
        .client
        .put(format!(
            "{}/api/v1/repos/{a_repo}/files/locks/{a_lock}",
            t.base
        ))
        .bearer_auth(&a_agent_token)
        .body(lock_json())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let w = World {
        a_user: me_id(t, &au).await,
        a_admin: me_id(t, &aa).await,
        b_user: me_id(t, &bu).await,
        a_admin_email: "admin@a.example",
        a_user_email: "user@a.example",
        a_invitation,
        a_key,
        a_key_secret: a_key_secret.clone(),
        b_invitation,
        a_repo,
        a_agent,
        a_lock,
        a: a.clone(),
        b: b.clone(),
    };
    let callers = vec![
        Caller {
            name: "anonymous",
            token: None,
            principal: None,
            insider: false,
        },
        Caller {
            name: "admin of B",
            token: Some(ba),
            principal: user(Role::CompanyAdmin, Some(&b)),
            insider: false,
        },
        Caller {
            name: "user of B",
            token: Some(bu),
            principal: user(Role::CompanyUser, Some(&b)),
            insider: false,
        },
        Caller {
            name: "agent of B",
            token: Some(kb),
            principal: Some(Principal::Agent {
                key_id: String::new(),
                company_id: b.clone(),
                agent_id: None,
            }),
            insider: false,
        },
        Caller {
            name: "enrolled agent of B",
            token: Some(b_agent_token),
            principal: Some(Principal::Agent {
                key_id: String::new(),
                company_id: b.clone(),
                agent_id: Some(String::new()),
            }),
            insider: false,
        },
        Caller {
            name: "enrolled agent of A",
            token: Some(a_agent_token),
            principal: Some(Principal::Agent {
                key_id: String::new(),
                company_id: a.clone(),
                agent_id: Some(String::new()),
            }),
            insider: true,
        },
        Caller {
            name: "user of A",
            token: Some(au),
            principal: user(Role::CompanyUser, Some(&a)),
            insider: true,
        },
        Caller {
            name: "agent of A",
            token: Some(a_key_secret),
            principal: Some(Principal::Agent {
                key_id: String::new(),
                company_id: a.clone(),
                agent_id: None,
            }),
            insider: true,
        },
        Caller {
            name: "operator",
            token: Some(op),
            principal: user(Role::Operator, None),
            insider: true,
        },
        Caller {
            name: "security officer",
            token: Some(so),
            principal: user(Role::SecurityOfficer, None),
            insider: true,
        },
    ];
    let _ = pa;
    (w, callers)
}

fn fill(path: &str, w: &World, company: &str) -> String {
    path.replace("{company_id}", company)
        .replace("{user_id}", &w.a_user)
        .replace("{invitation_id}", &w.a_invitation)
        .replace("{key_id}", &w.a_key)
        .replace("{repo}", &w.a_repo)
        .replace("{kind}", "locks")
        .replace("{name}", &w.a_lock)
        .replace("{agent_id}", &w.a_agent)
}

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
                        "no access probe for {} {}: add one to tests/integration/access.rs",
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

#[tokio::test]
async fn directory_follows_visibility() {
    for backend in backends() {
        let t = start_server(&backend, |_| {}).await;
        let (w, _callers) = world(&t).await;
        let aa = t.login(w.a_admin_email).await;
        let bu = t.login("user@b.example").await;
        let au = t.login(w.a_user_email).await;
        // Private by default: invisible outside; colleagues see each other with e-mail.
        let (_, d) = t.get("/api/v1/directory", &bu).await;
        assert!(!d.to_string().contains("Company A"), "{d}");
        let (s, _) = t.get(&format!("/api/v1/directory/{}", w.a_user), &bu).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, d) = t.get("/api/v1/directory", &au).await;
        assert!(d.to_string().contains(w.a_admin_email));
        // Company A goes public: B sees A's people, but only name and company.
        let (s, _) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/companies/{}", w.a),
                Some(&aa),
                Some(json!({"visibility": "public"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, entry) = t.get(&format!("/api/v1/directory/{}", w.a_user), &bu).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(entry["company"], "Company A");
        assert!(
            entry.get("email").is_none() && entry.get("role").is_none(),
            "{entry}"
        );
        // Outsiders can search by name but not by (invisible) e-mail address.
        let (s, _) = t
            .post(
                &format!("/api/v1/companies/{}/invitations", w.a),
                Some(&aa),
                json!({"email": "quinn@a.example", "role": "company_user"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = t
            .post("/api/v1/auth/register", None, json!({"email": "quinn@a.example", "password": crate::common::PASSWORD, "display_name": "Quinn Q"}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        t.verify("quinn@a.example").await;
        let (_, by_name) = t.get("/api/v1/directory?q=quinn%20q", &bu).await;
        assert_eq!(by_name.as_array().unwrap().len(), 1, "{by_name}");
        let (_, by_mail) = t.get("/api/v1/directory?q=quinn@", &bu).await;
        assert_eq!(by_mail.as_array().unwrap().len(), 0, "{by_mail}");
        let (_, colleague) = t.get("/api/v1/directory?q=quinn@", &au).await;
        assert_eq!(
            colleague.as_array().unwrap().len(),
            1,
            "colleagues may search by e-mail"
        );
        // A per-user override hides one person again.
        let (s, _) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/companies/{}/users/{}", w.a, w.a_user),
                Some(&aa),
                Some(json!({"visibility": "hidden"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = t.get(&format!("/api/v1/directory/{}", w.a_user), &bu).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Isolated: nobody outside, whatever the overrides.
        let (s, _) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/companies/{}/users/{}", w.a, w.a_user),
                Some(&aa),
                Some(json!({"visibility": "public"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        t.call(
            Method::PATCH,
            &format!("/api/v1/companies/{}", w.a),
            Some(&aa),
            Some(json!({"visibility": "isolated"})),
        )
        .await;
        let (s, _) = t.get(&format!("/api/v1/directory/{}", w.a_user), &bu).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        t.running.shutdown().await;
    }
}
