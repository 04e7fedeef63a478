//! `/api/v1/repos/{repo}/retention` and `/api/v1/repos/{repo}/gc`: server-side maintenance without the
//! key (docs/server-repositories.md §4). Company scope and roles are decided by the service
//! operations (`service::repos::retention`, `service::repos::gc`).

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use brr_api::identity::Role;
use brr_api::maintenance::{GcReport, RetentionPolicies, RetentionPolicy};

use super::error::{ApiResult, Json, Path, Query};
use super::{AppState, Endpoint};
use crate::service::Ctx;
use crate::service::access::Access;

const ADMINS: &[Role] = &[Role::CompanyAdmin];
const RETENTION: &str = "/api/v1/repos/{repo}/retention";

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    vec![
        Endpoint::new(Method::GET, RETENTION, Members, get(get_retention)),
        Endpoint::new(
            Method::PUT,
            RETENTION,
            Roles(ADMINS),
            axum::routing::put(set_retention),
        ),
        Endpoint::new(
            Method::DELETE,
            RETENTION,
            Roles(ADMINS),
            axum::routing::delete(delete_retention),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/repos/{repo}/gc",
            Roles(ADMINS),
            post(gc_repo),
        )
        .long(),
    ]
}

/// `?source=TAG` of `DELETE /repos/{repo}/retention`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SourceQuery {
    /// The source tag whose policy is removed; absent: the repository's own policy.
    pub source: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/repos/{repo}/retention", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path)),
    responses((status = 200, body = RetentionPolicies), (status = 404, body = brr_api::ErrorBody)))]
/// The repository's retention policies (its own, then per source tag).
pub async fn get_retention(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
) -> ApiResult<Json<RetentionPolicies>> {
    Ok(Json(st.svc.get_retention(&ctx, &repo).await?))
}

#[utoipa::path(put, path = "/api/v1/repos/{repo}/retention", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path)), request_body = RetentionPolicy,
    responses((status = 200, body = RetentionPolicies), (status = 403, body = brr_api::ErrorBody),
        (status = 404, body = brr_api::ErrorBody), (status = 422, body = brr_api::ErrorBody, description = "bad_policy")))]
/// Set the repository's retention policy, or one source tag's (company admins). Applied after each
/// snapshot and on the server's schedule.
pub async fn set_retention(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
    Json(req): Json<RetentionPolicy>,
) -> ApiResult<Json<RetentionPolicies>> {
    Ok(Json(st.svc.set_retention(&ctx, &repo, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/repos/{repo}/retention", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path), SourceQuery),
    responses((status = 204), (status = 404, body = brr_api::ErrorBody)))]
/// Remove a retention policy (company admins).
pub async fn delete_retention(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
    Query(q): Query<SourceQuery>,
) -> ApiResult<StatusCode> {
    st.svc
        .delete_retention(&ctx, &repo, q.source.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/repos/{repo}/gc", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path)),
    responses((status = 200, body = GcReport), (status = 403, body = brr_api::ErrorBody, description = "forbidden or append_only"),
        (status = 404, body = brr_api::ErrorBody), (status = 409, body = brr_api::ErrorBody)))]
/// Collect garbage now, without the key (company admins; refused in append-only repositories).
pub async fn gc_repo(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
) -> ApiResult<Json<GcReport>> {
    let r = st.svc.gc_repo(&ctx, &repo).await;
    if let Err(e) = &r
        && let Some(reason) = e.refusal_reason()
    {
        st.metrics.record_refusal(reason);
    }
    Ok(Json(r?))
}
