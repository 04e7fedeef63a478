//! `/api/v1/me`, `/companies/…` (users, invitations, API keys) and `/directory`.
//!
//! Route rules here are the first gate; company scope is enforced by the service operation each
//! handler calls (`service::access::company_scope`).

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, patch, post, put};
use brr_api::auth::{Accepted, ChangePasswordRequest, TotpCode, TotpEnrollment};
use brr_api::identity::{
    ApiKey, Company, CreateApiKey, CreateCompany, CreateInvitation, CreatedApiKey, DirectoryEntry,
    Invitation, Me, PersonalDataExport, Role, UpdateCompany, UpdateUser, User,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::{ApiResult, Json, Path, Query};
use super::{AppState, Endpoint};
use crate::service::Ctx;
use crate::service::access::Access;

const ALL_PEOPLE: &[Role] = &[
    Role::ProviderAdmin,
    Role::Operator,
    Role::SecurityOfficer,
    Role::CompanyAdmin,
    Role::CompanyUser,
];
const MANAGERS: &[Role] = &[Role::ProviderAdmin, Role::CompanyAdmin];
const DIRECTORY: &[Role] = &[
    Role::ProviderAdmin,
    Role::SecurityOfficer,
    Role::CompanyAdmin,
    Role::CompanyUser,
];

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    vec![
        Endpoint::new(Method::GET, "/api/v1/me", Authenticated, get(me)),
        Endpoint::new(
            Method::PUT,
            "/api/v1/me/password",
            Users,
            put(change_password),
        ),
        Endpoint::new(Method::GET, "/api/v1/me/export", Users, get(export_me)),
        Endpoint::new(Method::POST, "/api/v1/me/totp", Users, post(totp_enroll)),
        Endpoint::new(
            Method::POST,
            "/api/v1/me/totp/confirm",
            Users,
            post(totp_confirm),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/me/totp/disable",
            Users,
            post(totp_disable),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies",
            Roles(ALL_PEOPLE),
            get(list_companies),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/companies",
            Roles(&[Role::ProviderAdmin]),
            post(create_company),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies/{company_id}",
            Roles(ALL_PEOPLE),
            get(get_company),
        ),
        Endpoint::new(
            Method::PATCH,
            "/api/v1/companies/{company_id}",
            Roles(MANAGERS),
            patch(update_company),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies/{company_id}/users",
            Roles(MANAGERS),
            get(list_users),
        ),
        Endpoint::new(
            Method::PATCH,
            "/api/v1/companies/{company_id}/users/{user_id}",
            Roles(MANAGERS),
            patch(update_user),
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/companies/{company_id}/users/{user_id}",
            Roles(MANAGERS),
            delete(delete_user),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies/{company_id}/invitations",
            Roles(MANAGERS),
            get(list_invitations),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/companies/{company_id}/invitations",
            Roles(MANAGERS),
            post(create_invitation),
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/companies/{company_id}/invitations/{invitation_id}",
            Roles(MANAGERS),
            delete(revoke_invitation),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies/{company_id}/api-keys",
            Roles(MANAGERS),
            get(list_api_keys),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/companies/{company_id}/api-keys",
            Roles(&[Role::CompanyAdmin]),
            post(create_api_key),
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/companies/{company_id}/api-keys/{key_id}",
            Roles(MANAGERS),
            delete(revoke_api_key),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/directory",
            Roles(DIRECTORY),
            get(directory),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/directory/{user_id}",
            Roles(DIRECTORY),
            get(directory_entry),
        ),
    ]
}

fn id(u: Uuid) -> String {
    u.hyphenated().to_string()
}

#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = brr_api::ErrorBody)))]
/// The caller (user or agent).
pub async fn me(State(st): State<AppState>, ctx: Ctx) -> ApiResult<Json<Me>> {
    Ok(Json(st.svc.me(&ctx).await?))
}

#[utoipa::path(put, path = "/api/v1/me/password", tag = "identity", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 200, body = Accepted), (status = 400, body = brr_api::ErrorBody), (status = 401, body = brr_api::ErrorBody)))]
/// Change the caller's password; other sessions end.
pub async fn change_password(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<Json<Accepted>> {
    st.svc
        .change_password(&ctx, &req.current_password, &req.new_password)
        .await?;
    Ok(Json(Accepted {
        message: "password changed".into(),
    }))
}

#[utoipa::path(get, path = "/api/v1/me/export", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = PersonalDataExport), (status = 401, body = brr_api::ErrorBody)))]
/// Export the caller's personal data (account and own audit entries).
pub async fn export_me(
    State(st): State<AppState>,
    ctx: Ctx,
) -> ApiResult<Json<PersonalDataExport>> {
    Ok(Json(st.svc.export_me(&ctx).await?))
}

#[utoipa::path(post, path = "/api/v1/me/totp", tag = "identity", security(("bearer" = [])),
    responses((status = 201, body = TotpEnrollment), (status = 409, body = brr_api::ErrorBody)))]
/// Start TOTP enrolment: a new secret, enabled only after `/me/totp/confirm`.
pub async fn totp_enroll(
    State(st): State<AppState>,
    ctx: Ctx,
) -> ApiResult<(StatusCode, Json<TotpEnrollment>)> {
    Ok((StatusCode::CREATED, Json(st.svc.totp_enroll(&ctx).await?)))
}

#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "identity", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 200, body = Accepted), (status = 400, body = brr_api::ErrorBody)))]
/// Enable TOTP with a current code; logins then need `totp`.
pub async fn totp_confirm(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<TotpCode>,
) -> ApiResult<Json<Accepted>> {
    st.svc.totp_confirm(&ctx, &req.code).await?;
    Ok(Json(Accepted {
        message: "second factor enabled".into(),
    }))
}

#[utoipa::path(post, path = "/api/v1/me/totp/disable", tag = "identity", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 200, body = Accepted), (status = 400, body = brr_api::ErrorBody)))]
/// Disable TOTP with a current code.
pub async fn totp_disable(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<TotpCode>,
) -> ApiResult<Json<Accepted>> {
    st.svc.totp_disable(&ctx, &req.code).await?;
    Ok(Json(Accepted {
        message: "second factor disabled".into(),
    }))
}

#[utoipa::path(get, path = "/api/v1/companies", tag = "companies", security(("bearer" = [])),
    responses((status = 200, body = [Company])))]
/// Companies visible to the caller.
pub async fn list_companies(State(st): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<Company>>> {
    Ok(Json(st.svc.list_companies(&ctx).await?))
}

/// Response of company creation.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedCompany {
    /// The company.
    pub company: Company,
    /// The invitation sent to its administrator.
    pub invitation: Invitation,
}

#[utoipa::path(post, path = "/api/v1/companies", tag = "companies", security(("bearer" = [])), request_body = CreateCompany,
    responses((status = 201, body = CreatedCompany), (status = 403, body = brr_api::ErrorBody), (status = 409, body = brr_api::ErrorBody)))]
/// Create a company and invite its administrator (provider admins).
pub async fn create_company(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<CreateCompany>,
) -> ApiResult<(StatusCode, Json<CreatedCompany>)> {
    let (company, invitation) = st.svc.create_company(&ctx, &req).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedCompany {
            company,
            invitation,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/companies/{company_id}", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), responses((status = 200, body = Company), (status = 404, body = brr_api::ErrorBody)))]
/// One company.
pub async fn get_company(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
) -> ApiResult<Json<Company>> {
    Ok(Json(st.svc.get_company(&ctx, &id(cid)).await?))
}

#[utoipa::path(patch, path = "/api/v1/companies/{company_id}", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), request_body = UpdateCompany,
    responses((status = 200, body = Company), (status = 403, body = brr_api::ErrorBody), (status = 404, body = brr_api::ErrorBody)))]
/// Change visibility (company admin) or status (provider admin).
pub async fn update_company(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
    Json(req): Json<UpdateCompany>,
) -> ApiResult<Json<Company>> {
    Ok(Json(st.svc.update_company(&ctx, &id(cid), &req).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/{company_id}/users", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), responses((status = 200, body = [User]), (status = 404, body = brr_api::ErrorBody)))]
/// Users of a company.
pub async fn list_users(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(st.svc.list_users(&ctx, &id(cid)).await?))
}

#[utoipa::path(patch, path = "/api/v1/companies/{company_id}/users/{user_id}", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = brr_api::ErrorBody)))]
/// Change a user's role, status (disable ends all sessions at once) or visibility.
pub async fn update_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((cid, uid)): Path<(Uuid, Uuid)>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        st.svc.update_user(&ctx, &id(cid), &id(uid), &req).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/companies/{company_id}/users/{user_id}", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path), ("user_id" = Uuid, Path)), responses((status = 204), (status = 404, body = brr_api::ErrorBody)))]
/// Delete a user.
pub async fn delete_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((cid, uid)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    st.svc.delete_user(&ctx, &id(cid), &id(uid)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/companies/{company_id}/invitations", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), responses((status = 200, body = [Invitation])))]
/// Invitations of a company.
pub async fn list_invitations(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
) -> ApiResult<Json<Vec<Invitation>>> {
    Ok(Json(st.svc.list_invitations(&ctx, &id(cid)).await?))
}

#[utoipa::path(post, path = "/api/v1/companies/{company_id}/invitations", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), request_body = CreateInvitation, responses((status = 201, body = Invitation)))]
/// Invite someone into the company.
pub async fn create_invitation(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
    Json(req): Json<CreateInvitation>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            st.svc
                .create_invitation(&ctx, &id(cid), &req.email, req.role)
                .await?,
        ),
    ))
}

#[utoipa::path(delete, path = "/api/v1/companies/{company_id}/invitations/{invitation_id}", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path), ("invitation_id" = Uuid, Path)), responses((status = 204), (status = 404, body = brr_api::ErrorBody)))]
/// Revoke an open invitation.
pub async fn revoke_invitation(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((cid, iid)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    st.svc.revoke_invitation(&ctx, &id(cid), &id(iid)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/companies/{company_id}/api-keys", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), responses((status = 200, body = [ApiKey])))]
/// Agent API keys of a company (metadata only).
pub async fn list_api_keys(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(st.svc.list_api_keys(&ctx, &id(cid)).await?))
}

#[utoipa::path(post, path = "/api/v1/companies/{company_id}/api-keys", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), request_body = CreateApiKey, responses((status = 201, body = CreatedApiKey)))]
/// Create an agent API key; the secret is shown only in this response.
pub async fn create_api_key(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(st.svc.create_api_key(&ctx, &id(cid), &req.name).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/companies/{company_id}/api-keys/{key_id}", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path), ("key_id" = Uuid, Path)), responses((status = 204), (status = 404, body = brr_api::ErrorBody)))]
/// Revoke an agent API key.
pub async fn revoke_api_key(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((cid, kid)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    st.svc
        .revoke_api_key(&ctx, &id(cid), &kid.simple().to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /directory`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DirectoryQuery {
    /// Text to look for in names and e-mail addresses.
    #[serde(default)]
    pub q: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/directory", tag = "directory", security(("bearer" = [])),
    params(DirectoryQuery), responses((status = 200, body = [DirectoryEntry])))]
/// Colleagues and visible users of other companies.
pub async fn directory(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(q): Query<DirectoryQuery>,
) -> ApiResult<Json<Vec<DirectoryEntry>>> {
    Ok(Json(st.svc.directory(&ctx, q.q.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/directory/{user_id}", tag = "directory", security(("bearer" = [])),
    params(("user_id" = Uuid, Path)), responses((status = 200, body = DirectoryEntry), (status = 404, body = brr_api::ErrorBody)))]
/// One profile, as much as visibility allows.
pub async fn directory_entry(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(uid): Path<Uuid>,
) -> ApiResult<Json<DirectoryEntry>> {
    Ok(Json(st.svc.directory_entry(&ctx, &id(uid)).await?))
}
