//! `/api/v1/agents/…` (enrolment and management of backup agents) and the company quota and usage
//! routes `/api/v1/companies/{company_id}/quota|usage`.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, post, put};
use brr_api::identity::Role;
use brr_api::repos::{Agent, CompanyUsage, EnrollAgent, EnrolledAgent, Quota};
use uuid::Uuid;

use super::error::{ApiResult, Json, Path};
use super::{AppState, Endpoint};
use crate::service::Ctx;
use crate::service::access::Access;

const ADMINS: &[Role] = &[Role::CompanyAdmin];
const USAGE_READERS: &[Role] = &[Role::ProviderAdmin, Role::Operator, Role::CompanyAdmin];

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    vec![
        Endpoint::new(Method::POST, "/api/v1/agents/enroll", ApiKeys, post(enroll)),
        Endpoint::new(
            Method::GET,
            "/api/v1/agents",
            Roles(ADMINS),
            get(list_agents),
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/agents/{agent_id}",
            Roles(ADMINS),
            delete(revoke_agent),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies/{company_id}/quota",
            Roles(USAGE_READERS),
            get(get_quota),
        ),
        Endpoint::new(
            Method::PUT,
            "/api/v1/companies/{company_id}/quota",
            Roles(&[Role::ProviderAdmin]),
            put(set_quota),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/companies/{company_id}/usage",
            Roles(USAGE_READERS),
            get(usage),
        ),
    ]
}

#[utoipa::path(post, path = "/api/v1/agents/enroll", tag = "agents", security(("bearer" = [])),
    request_body = EnrollAgent,
    responses((status = 201, body = EnrolledAgent), (status = 403, body = brr_api::ErrorBody, description = "not an API key, or quota_exceeded")))]
/// Enrol a machine with a company API key (`brr_…`); the agent's token is shown only here.
pub async fn enroll(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<EnrollAgent>,
) -> ApiResult<(StatusCode, Json<EnrolledAgent>)> {
    let r = st.svc.enroll_agent(&ctx, &req.name).await;
    if let Err(e) = &r
        && let Some(reason) = e.refusal_reason()
    {
        st.metrics.record_refusal(reason);
    }
    Ok((StatusCode::CREATED, Json(r?)))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = [Agent])))]
/// The company's agents (company admins).
pub async fn list_agents(State(st): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<Agent>>> {
    Ok(Json(st.svc.list_agents(&ctx).await?))
}

#[utoipa::path(delete, path = "/api/v1/agents/{agent_id}", tag = "agents", security(("bearer" = [])),
    params(("agent_id" = Uuid, Path)), responses((status = 204), (status = 404, body = brr_api::ErrorBody)))]
/// Revoke an agent; it is refused from its next request on (company admins).
pub async fn revoke_agent(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.svc.revoke_agent(&ctx, &id.simple().to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/companies/{company_id}/quota", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), responses((status = 200, body = Quota), (status = 404, body = brr_api::ErrorBody)))]
/// A company's limits (`null`: unlimited).
pub async fn get_quota(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
) -> ApiResult<Json<Quota>> {
    Ok(Json(
        st.svc
            .get_quota(&ctx, &cid.hyphenated().to_string())
            .await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/companies/{company_id}/quota", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), request_body = Quota,
    responses((status = 200, body = Quota), (status = 404, body = brr_api::ErrorBody)))]
/// Set a company's limits (provider admins).
pub async fn set_quota(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
    Json(q): Json<Quota>,
) -> ApiResult<Json<Quota>> {
    Ok(Json(
        st.svc
            .set_quota(&ctx, &cid.hyphenated().to_string(), &q)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/companies/{company_id}/usage", tag = "companies", security(("bearer" = [])),
    params(("company_id" = Uuid, Path)), responses((status = 200, body = CompanyUsage), (status = 404, body = brr_api::ErrorBody)))]
/// Stored and logical bytes, snapshots, agents and each repository's usage, against the quota.
pub async fn usage(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(cid): Path<Uuid>,
) -> ApiResult<Json<CompanyUsage>> {
    Ok(Json(
        st.svc
            .company_usage(&ctx, &cid.hyphenated().to_string())
            .await?,
    ))
}
