//! TOTP second factor: enrolment, login with a code, and throttling of changes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, backends, start_server};

#[tokio::test]
async fn totp_second_factor() {
    use brrd_server::clock::Clock;
    use brrd_server::totp::{base32_decode, code_at_step, step};
    for backend in backends() {
        let t = start_server(&backend, |_| {}).await;
        let email = "tia@tau.example";
        t.register_company(email, "Tau", "EE-TTLSOL").await;
        let tok = t.login(email).await;
        let (s, enr) = t
            .call(Method::POST, "/api/v1/me/totp", Some(&tok), None)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{enr}");
        assert!(
            enr["otpauth_uri"]
                .as_str()
                .unwrap()
                .starts_with("otpauth://totp/")
        );
        let secret = base32_decode(enr["secret"].as_str().unwrap()).unwrap();
        let code = |offset: i64| code_at_step(&secret, step(t.clock.now_ms()) + offset);
        // Not enabled until confirmed: login still works without a code.
        t.login(email).await;
        let (s, _) = t
            .post(
                "/api/v1/me/totp/confirm",
                Some(&tok),
                json!({"code": code(5)}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "a code far from now is refused");
        let (s, _) = t
            .post(
                "/api/v1/me/totp/confirm",
                Some(&tok),
                json!({"code": code(0)}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        // Now the password alone is not enough.
        let (s, b) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("auth.totp_required"))
        );
        // The code used for confirmation cannot be replayed; the next step's code works once.
        let with = |c: String| json!({"email": email, "password": PASSWORD, "totp": c});
        let (s, _) = t.post("/api/v1/auth/login", None, with(code(0))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        t.clock.advance_secs(30);
        let (s, _) = t.post("/api/v1/auth/login", None, with(code(0))).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = t.post("/api/v1/auth/login", None, with(code(0))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "replay");
        // HTTP Basic carries the code in a header.
        t.clock.advance_secs(30);
        let resp = t
            .client
            .post(format!("{}/api/v1/auth/login", t.base))
            .basic_auth(email, Some(PASSWORD))
            .header("x-brr-totp", code(0))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        t.running.shutdown().await;
    }
}

#[tokio::test]
async fn totp_changes_are_throttled() {
    use brrd_server::clock::Clock;
    use brrd_server::totp::{base32_decode, code_at_step, step};
    for backend in backends() {
        let t = start_server(&backend, |c| {
            c.account_max_failures = 3;
            c.lockout_secs = 60;
        })
        .await;
        let email = "una@upsilon.example";
        t.register_company(email, "Upsilon", "EE-TTLSOL").await;
        let tok = t.login(email).await;
        let (_, enr) = t
            .call(Method::POST, "/api/v1/me/totp", Some(&tok), None)
            .await;
        let secret = base32_decode(enr["secret"].as_str().unwrap()).unwrap();
        let code = |offset: i64| code_at_step(&secret, step(t.clock.now_ms()) + offset);
        let confirm = json!({"code": code(0)});
        let (s, _) = t.post("/api/v1/me/totp/confirm", Some(&tok), confirm).await;
        assert_eq!(s, StatusCode::OK);
        t.clock.advance_secs(30);
        // Wrong codes to switch the second factor off: refused, then the account's TOTP changes lock.
        let wrong = json!({"code": code(7)});
        for _ in 0..2 {
            let (s, _) = t
                .post("/api/v1/me/totp/disable", Some(&tok), wrong.clone())
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
        }
        let (s, b) = t
            .post("/api/v1/me/totp/disable", Some(&tok), wrong.clone())
            .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
        // While locked even the right code is refused, and TOTP stays on.
        let right = json!({"code": code(0)});
        let (s, _) = t.post("/api/v1/me/totp/disable", Some(&tok), right).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        let (s, b) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("auth.totp_required"))
        );
        // After the lockout window the right code works.
        t.clock.advance_secs(61);
        let (s, b) = t
            .post(
                "/api/v1/me/totp/disable",
                Some(&tok),
                json!({"code": code(0)}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        t.running.shutdown().await;
    }
}
