//! `/api/v1/audit`: query, verify and export the audit trail.

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use brr_api::audit::{AuditPage, AuditQuery, VerifyReport};
use brr_api::identity::Role;

use super::error::{ApiResult, Json, Query};
use super::{AppState, Endpoint};
use crate::error::Error;
use crate::service::access::Access;
use crate::service::{Ctx, Principal};

const READERS: &[Role] = &[
    Role::ProviderAdmin,
    Role::SecurityOfficer,
    Role::CompanyAdmin,
];
const VERIFIERS: &[Role] = &[Role::ProviderAdmin, Role::SecurityOfficer];

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    vec![
        Endpoint::new(Method::GET, "/api/v1/audit", Roles(READERS), get(query)),
        Endpoint::new(
            Method::GET,
            "/api/v1/audit/verify",
            Roles(VERIFIERS),
            get(verify),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/audit/export",
            Roles(READERS),
            get(export),
        ),
    ]
}

/// Company admins see only their own company's entries; provider admins and security officers all.
fn forced_company(ctx: &Ctx) -> Result<Option<String>, Error> {
    match ctx.principal()? {
        Principal::User {
            role: Role::ProviderAdmin | Role::SecurityOfficer,
            ..
        } => Ok(None),
        Principal::User {
            role: Role::CompanyAdmin,
            company_id: Some(c),
            ..
        } => Ok(Some(c.clone())),
        _ => Err(Error::Forbidden),
    }
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = brr_api::ErrorBody)))]
/// Query entries by time range, actor, company and action, with cursor pagination.
pub async fn query(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let forced = forced_company(&ctx)?;
    Ok(Json(st.svc.audit.query(&q, forced.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = VerifyReport), (status = 403, body = brr_api::ErrorBody)))]
/// Recompute the hash chain and check every signed checkpoint.
pub async fn verify(State(st): State<AppState>, ctx: Ctx) -> ApiResult<Json<VerifyReport>> {
    let report = st.svc.audit.verify().await?;
    let outcome = if report.ok { "ok" } else { "tampered" };
    // A tampered log may refuse further appends (e.g. a truncated chain collides with a checkpoint);
    // the report matters more than recording its own reading.
    if let Err(e) = st
        .svc
        .record(
            &ctx,
            None,
            "audit.verify",
            "audit_log",
            outcome,
            &format!("entries={}", report.entries),
        )
        .await
    {
        tracing::error!(error = %e, "cannot record audit verification");
    }
    Ok(Json(report))
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "JSON lines, one AuditEntry per line", content_type = "application/x-ndjson")))]
/// Export matching entries as JSON lines (all pages).
pub async fn export(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(mut q): Query<AuditQuery>,
) -> ApiResult<impl IntoResponse> {
    let forced = forced_company(&ctx)?;
    q.limit = Some(500);
    let mut out = String::new();
    loop {
        let page = st.svc.audit.query(&q, forced.as_deref()).await?;
        for e in &page.entries {
            out.push_str(&serde_json::to_string(e).map_err(Error::internal)?);
            out.push('\n');
        }
        match page.next_after {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    st.svc
        .record(
            &ctx,
            forced.as_deref(),
            "audit.export",
            "audit_log",
            "success",
            "",
        )
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out))
}
