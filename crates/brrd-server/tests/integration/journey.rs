//! Sign-up → PIN → login → refresh → logout, lockout, password reset, disabling, API keys.

use brr_api::identity::Role;
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
async fn invitation_reset_disable_and_agent_keys() {
    for backend in backends() {
        let t = start_server(&backend, |c| c.open_registration = false).await;
        let pa = t.staff("root@provider.example", Role::ProviderAdmin).await;
        // Open registration is off: sign-up without invitation is refused.
        let (s, b) = t
            .post("/api/v1/auth/register", None, json!({"email": "x@y.example", "password": PASSWORD, "display_name": "X", "company_name": "X", "site": "DE-FRA"}))
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("auth.registration_closed"))
        );
        // Provider admin creates a company and invites its admin.
        let (s, b) = t
            .post(
                "/api/v1/companies",
                Some(&pa),
                json!({"name": "Gamma", "site": "DE-FRA", "admin_email": "gil@gamma.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let cid = b["company"]["id"].as_str().unwrap().to_string();
        let (s, _) = t
            .post(
                "/api/v1/companies",
                Some(&pa),
                json!({"name": "Bad", "site": "XX-NOPE", "admin_email": "a@b.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "unknown site");
        t.accept_invitation("gil@gamma.example").await;
        let ca = t.login("gil@gamma.example").await;
        // Company admin invites a user.
        let (s, _) = t
            .post(
                &format!("/api/v1/companies/{cid}/invitations"),
                Some(&ca),
                json!({"email": "uma@gamma.example", "role": "company_user"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        t.accept_invitation("uma@gamma.example").await;
        let uma = t.login("uma@gamma.example").await;
        let (_, me) = t.get("/api/v1/me", &uma).await;
        assert_eq!(me["user"]["role"], "company_user");
        let uma_id = me["user"]["id"].as_str().unwrap().to_string();

        // Password reset by PIN; old sessions end; the new password works.
        let (s, _) = t
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "uma@gamma.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, _) = t
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "nobody@gamma.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "same answer for unknown addresses");
        let pin = t.pin_for("uma@gamma.example");
        let (s, b) = t
            .post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"email": "uma@gamma.example", "pin": pin, "new_password": "password123"}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("auth.weak_password"))
        );
        let (s, _) = t
            .post("/api/v1/auth/password-reset/confirm", None, json!({"email": "uma@gamma.example", "pin": pin, "new_password": "N3w-Secret-Phrase!"}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = t.get("/api/v1/me", &uma).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "reset ends sessions");
        let (s, b) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "uma@gamma.example", "password": "N3w-Secret-Phrase!"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let uma = b["access_token"].as_str().unwrap().to_string();

        // PIN attempts are limited: after 5 wrong tries even the right PIN fails.
        let (s, _) = t
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "uma@gamma.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let pin = t.pin_for("uma@gamma.example");
        let wrong = if pin == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            let (s, _) = t
                .post("/api/v1/auth/password-reset/confirm", None, json!({"email": "uma@gamma.example", "pin": wrong, "new_password": "An0ther-Phrase!!"}))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
        }
        let (s, _) = t
            .post("/api/v1/auth/password-reset/confirm", None, json!({"email": "uma@gamma.example", "pin": pin, "new_password": "An0ther-Phrase!!"}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // PINs expire after 10 minutes.
        let (s, _) = t
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "uma@gamma.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let pin = t.pin_for("uma@gamma.example");
        t.clock.advance_secs(601);
        let (s, _) = t
            .post("/api/v1/auth/password-reset/confirm", None, json!({"email": "uma@gamma.example", "pin": pin, "new_password": "An0ther-Phrase!!"}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let uma = {
            let (s, b) = t
                .post(
                    "/api/v1/auth/login",
                    None,
                    json!({"email": "uma@gamma.example", "password": "N3w-Secret-Phrase!"}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let _ = uma;
            b["access_token"].as_str().unwrap().to_string()
        };
        let ca = t.login("gil@gamma.example").await;

        // Disabling a user ends access immediately (B15).
        let (s, b) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/companies/{cid}/users/{uma_id}"),
                Some(&ca),
                Some(json!({"status": "disabled"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _) = t.get("/api/v1/me", &uma).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "uma@gamma.example", "password": "N3w-Secret-Phrase!"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Agent API keys: shown once, work as bearer, revocable.
        let (s, k) = t
            .post(
                &format!("/api/v1/companies/{cid}/api-keys"),
                Some(&ca),
                json!({"name": "host-1"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{k}");
        let secret = k["secret"].as_str().unwrap().to_string();
        let kid = k["key"]["id"].as_str().unwrap().to_string();
        let (s, me) = t.get("/api/v1/me", &secret).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["company_id"].as_str(), Some(cid.as_str()));
        let (s, list) = t
            .get(&format!("/api/v1/companies/{cid}/api-keys"), &ca)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !list.to_string().contains(&secret[secret.len() - 20..]),
            "secret never shown again"
        );
        let (s, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/companies/{cid}/api-keys/{kid}"),
                Some(&ca),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = t.get("/api/v1/me", &secret).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Suspending the company locks its people out (the provider admin's token from before the
        // clock jump has expired: log in again).
        let pa = t.login("root@provider.example").await;
        let (s, _) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/companies/{cid}"),
                Some(&pa),
                Some(json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = t.get("/api/v1/me", &ca).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
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
