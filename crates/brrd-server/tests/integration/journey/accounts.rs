//! Accounts after sign-up: invitations, password reset, disabling, and agent API keys.

use brr_api::identity::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, backends, start_server};

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
