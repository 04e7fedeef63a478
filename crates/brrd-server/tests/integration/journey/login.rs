//! Sign-up, PIN confirmation, login, refresh and logout; lockout, throttling and no account enumeration.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, backends, start_server};

#[tokio::test]
async fn signup_pin_login_refresh_logout() {
    for backend in backends() {
        let t = start_server(&backend, |_| {}).await;
        let email = "ana@alpha.example";
        // Register: PIN mailed; the pending account cannot log in yet.
        let (s, b) = t
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "display_name": "Ana", "company_name": "Alpha", "site": "HK-ALC"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{backend:?} {b}");
        let (s, _) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // A wrong PIN is refused; the right one works once.
        let pin = t.pin_for(email);
        let wrong = if pin == "000000" { "111111" } else { "000000" };
        let (s, b) = t
            .post(
                "/api/v1/auth/register/verify",
                None,
                json!({"email": email, "pin": wrong}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("auth.bad_code"))
        );
        let (s, _) = t
            .post(
                "/api/v1/auth/register/verify",
                None,
                json!({"email": email, "pin": pin}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = t
            .post(
                "/api/v1/auth/register/verify",
                None,
                json!({"email": email, "pin": pin}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "single use");

        // Login (JSON), /me, refresh rotation, reuse detection.
        let tokens = t.login_full(email).await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh1 = tokens["refresh_token"].as_str().unwrap();
        let (s, me) = t.get("/api/v1/me", access).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["user"]["role"], "company_admin");
        let (s, rotated) = t
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": refresh1}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let refresh2 = rotated["refresh_token"].as_str().unwrap();
        let access2 = rotated["access_token"].as_str().unwrap();
        assert_ne!(refresh1, refresh2);
        let (s, _) = t.get("/api/v1/me", access2).await;
        assert_eq!(s, StatusCode::OK);
        // Reusing the rotated token revokes the whole family: even the newest tokens die.
        let (s, _) = t
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": refresh1}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = t
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": refresh2}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = t.get("/api/v1/me", access2).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // HTTP Basic login, then logout ends that session at once.
        let resp = t
            .client
            .post(format!("{}/api/v1/auth/login", t.base))
            .basic_auth(email, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let basic: serde_json::Value = resp.json().await.unwrap();
        let a = basic["access_token"].as_str().unwrap();
        let second = t.login(email).await;
        let (s, _) = t
            .call(Method::POST, "/api/v1/auth/logout", Some(a), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = t.get("/api/v1/me", a).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = t.get("/api/v1/me", &second).await;
        assert_eq!(s, StatusCode::OK, "other sessions live on");
        let (s, _) = t
            .call(Method::POST, "/api/v1/auth/logout-all", Some(&second), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = t.get("/api/v1/me", &second).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Personal data export: the account and the caller's own audit entries, no secrets.
        let tok = t.login(email).await;
        let (s, export) = t.get("/api/v1/me/export", &tok).await;
        assert_eq!(s, StatusCode::OK, "{export}");
        assert_eq!(export["user"]["email"], email);
        let actions: Vec<_> = export["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"auth.login") && actions.contains(&"auth.logout"),
            "{actions:?}"
        );
        assert!(!export.to_string().contains(PASSWORD) && !export.to_string().contains("argon2"));

        // Access tokens expire by the server's clock.
        let tok = t.login(email).await;
        t.clock.advance_secs(601);
        let (s, _) = t.get("/api/v1/me", &tok).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn lockout_throttle_and_no_enumeration() {
    for backend in backends() {
        let t = start_server(&backend, |c| c.ip_max_failures = 12).await;
        let email = "bo@beta.example";
        t.register_company(email, "Beta", "SG-DRT").await;
        let bad = json!({"email": email, "password": "Wrong-Password-1"});
        for _ in 0..4 {
            let (s, b) = t.post("/api/v1/auth/login", None, bad.clone()).await;
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("auth.invalid_credentials"))
            );
        }
        let (s, b) = t.post("/api/v1/auth/login", None, bad.clone()).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("auth.locked")),
            "{b}"
        );
        assert!(b["error"]["message"].as_str().unwrap().contains("locked"));
        // Even the right password is refused while locked.
        let (s, _) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        // An unknown address behaves identically (no enumeration).
        let ghost = json!({"email": "ghost@beta.example", "password": "Wrong-Password-1"});
        let mut codes = Vec::new();
        for _ in 0..5 {
            let (s, _) = t.post("/api/v1/auth/login", None, ghost.clone()).await;
            codes.push(s);
        }
        assert_eq!(&codes[..4], &[StatusCode::UNAUTHORIZED; 4]);
        assert_eq!(codes[4], StatusCode::TOO_MANY_REQUESTS);
        // The lock ends with time.
        t.clock.advance_secs(901);
        t.login(email).await;
        // Per-address throttle: a spoofed X-Forwarded-For does not help (no trusted proxy configured).
        let mut last = StatusCode::OK;
        for i in 0..14 {
            let resp = t
                .client
                .post(format!("{}/api/v1/auth/login", t.base))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .json(&json!({"email": format!("user{i}@nowhere.example"), "password": "Wrong-Password-1"}))
                .send()
                .await
                .unwrap();
            last = resp.status();
            if last == StatusCode::TOO_MANY_REQUESTS {
                let b: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(b["error"]["code"], "auth.throttled");
                break;
            }
        }
        assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn pin_guessing_is_throttled_per_address() {
    for backend in backends() {
        let t = start_server(&backend, |c| c.ip_max_failures = 7).await;
        let email = "pat@pi.example";
        t.register_company(email, "Pi", "ZA-CPT").await;
        let confirm = |pin: String| {
            let t = &t;
            async move {
                t.post(
                    "/api/v1/auth/password-reset/confirm",
                    None,
                    json!({"email": email, "pin": pin, "new_password": "Fresh-Phrase-42!"}),
                )
                .await
            }
        };
        let mut statuses = Vec::new();
        // Fresh PINs do not give fresh guesses: the failures add up per client address.
        for _ in 0..2 {
            let (s, _) = t
                .post("/api/v1/auth/password-reset", None, json!({"email": email}))
                .await;
            assert_eq!(s, StatusCode::ACCEPTED);
            let pin = t.pin_for(email);
            let wrong = if pin == "000000" { "111111" } else { "000000" };
            for _ in 0..4 {
                statuses.push(confirm(wrong.to_string()).await.0);
            }
        }
        assert!(
            statuses[..6].iter().all(|s| *s == StatusCode::BAD_REQUEST),
            "{statuses:?}"
        );
        assert_eq!(statuses[7], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
        let (s, b) = confirm(t.pin_for(email)).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("auth.throttled"))
        );
        t.running.shutdown().await;
    }
}
