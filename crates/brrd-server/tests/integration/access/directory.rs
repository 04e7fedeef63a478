//! The company directory follows each user's visibility setting.

use super::*;

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
