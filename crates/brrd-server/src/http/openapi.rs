//! The OpenAPI document, served at `/api/v1/openapi.json` and committed as docs/api/openapi.json.

use axum::http::Method;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::Json;
use super::{Endpoint, agents, audit, auth, identity, maintenance, repos};
use crate::service::access::Access;

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(
        Method::GET,
        "/api/v1/openapi.json",
        Access::Public,
        get(openapi_json),
    )]
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "brrd API", description = "Tenants, identity, access control, audit, repositories, agents and quotas of the brr service."),
    modifiers(&BearerAuth),
    paths(
        auth::login, auth::refresh, auth::logout, auth::logout_all, auth::register, auth::register_verify,
        auth::password_reset, auth::password_reset_confirm, auth::setup, auth::sites,
        identity::me, identity::export_me, identity::change_password, identity::totp_enroll, identity::totp_confirm, identity::totp_disable, identity::list_companies, identity::create_company,
        identity::get_company, identity::update_company, identity::list_users, identity::update_user,
        identity::delete_user, identity::list_invitations, identity::create_invitation,
        identity::revoke_invitation, identity::list_api_keys, identity::create_api_key,
        identity::revoke_api_key, identity::directory, identity::directory_entry,
        audit::query, audit::verify, audit::export,
        repos::list_repos, repos::create_repo, repos::get_repo, repos::update_repo, repos::list_files,
        repos::get_file, repos::head_file, repos::put_file, repos::delete_file, repos::lookup_blobs,
        repos::verify_repo,
        maintenance::get_retention, maintenance::set_retention, maintenance::delete_retention, maintenance::gc_repo,
        agents::enroll, agents::list_agents, agents::revoke_agent, agents::get_quota, agents::set_quota,
        agents::usage,
    ),
    components(schemas(brr_api::ErrorBody, brr_api::ApiError))
)]
pub struct ApiDoc;

/// The document as pretty JSON (what docs/api/openapi.json holds).
pub fn openapi_json_string() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// Serves the document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api/openapi.json")
    }

    /// docs/api/openapi.json must equal the generated document. Regenerate with
    /// `BRR_UPDATE_OPENAPI=1 cargo nextest run -p brrd-server openapi`.
    #[test]
    fn openapi_committed_copy_is_current() {
        let generated = openapi_json_string() + "\n";
        if std::env::var_os("BRR_UPDATE_OPENAPI").is_some() {
            std::fs::write(committed_path(), &generated).unwrap();
        }
        let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/api/openapi.json is stale: set BRR_UPDATE_OPENAPI=1 and rerun"
        );
    }

    #[test]
    fn openapi_documents_every_endpoint() {
        let doc = ApiDoc::openapi();
        for e in crate::http::endpoints() {
            if e.path.ends_with("/openapi.json") {
                continue;
            }
            let item = doc
                .paths
                .paths
                .get(e.path)
                .unwrap_or_else(|| panic!("{} undocumented", e.path));
            let json = serde_json::to_value(item).unwrap();
            assert!(
                json.get(e.method.as_str().to_lowercase()).is_some(),
                "{} {} undocumented",
                e.method,
                e.path
            );
        }
    }
}
