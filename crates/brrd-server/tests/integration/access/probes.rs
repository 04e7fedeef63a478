//! A valid request body for every endpoint of the router.

use std::collections::HashMap;

use serde_json::{Value, json};

/// A valid body for each endpoint (so that a denial cannot be a mere parse error). `None`: no body.
/// Every endpoint the router has must be listed.
pub(super) fn probes() -> HashMap<(&'static str, &'static str), Option<Value>> {
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
