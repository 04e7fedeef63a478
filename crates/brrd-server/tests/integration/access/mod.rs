//! Every endpoint, derived from the router's own list, tried as outsiders and lower roles.
//!
//! A route without a probe in `probes.rs` fails the test, so no endpoint can escape it.
//!
//! The fixture (two companies, their people, invitations, keys, and a repository with an agent and a
//! lock) lives here; the probe list and the tests in the submodules.

use brr_api::identity::Role;
use brrd_server::http::endpoints;
use brrd_server::service::Principal;
use brrd_server::service::access::Access;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestServer, backends, start_server};

mod directory;
mod probes;
mod refusals;

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
