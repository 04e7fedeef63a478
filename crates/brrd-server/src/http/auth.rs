//! `/api/v1/auth/*`: login, refresh, logout, registration, password reset and bootstrap set-up.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::routing::{get, post};
use base64::Engine;
use brr_api::auth::{
    Accepted, LoginRequest, PasswordResetConfirm, PasswordResetRequest, RefreshRequest,
    RegisterRequest, SetupRequest, TokenResponse, VerifyPinRequest,
};
use brr_api::identity::Site;

use super::error::{ApiResult, HttpError, Json};
use super::{AppState, Endpoint};
use crate::error::Error;
use crate::service::Ctx;
use crate::service::access::Access;
use crate::service::signup::CHECK_MAIL;

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    vec![
        Endpoint::new(Method::POST, "/api/v1/auth/login", Public, post(login)),
        Endpoint::new(Method::POST, "/api/v1/auth/refresh", Public, post(refresh)),
        Endpoint::new(Method::POST, "/api/v1/auth/logout", Users, post(logout)),
        Endpoint::new(
            Method::POST,
            "/api/v1/auth/logout-all",
            Users,
            post(logout_all),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/auth/register",
            Public,
            post(register),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/auth/register/verify",
            Public,
            post(register_verify),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/auth/password-reset",
            Public,
            post(password_reset),
        ),
        Endpoint::new(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            Public,
            post(password_reset_confirm),
        ),
        Endpoint::new(Method::POST, "/api/v1/auth/setup", Public, post(setup)),
        Endpoint::new(Method::GET, "/api/v1/sites", Public, get(sites)),
    ]
}

fn accepted(msg: &str) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: msg.to_string(),
        }),
    )
}

/// Credentials from `Authorization: Basic` or, failing that, the JSON body.
fn credentials(headers: &HeaderMap, body: &[u8]) -> Result<LoginRequest, HttpError> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, b64)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("basic")
    {
        let bad = || Error::invalid("malformed Basic credentials");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (email, password) = text.split_once(':').ok_or_else(bad)?;
        let totp = headers
            .get("x-brr-totp")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        return Ok(LoginRequest {
            email: email.into(),
            password: password.into(),
            totp,
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("invalid JSON body: {e}")).into())
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = brr_api::ErrorBody), (status = 429, body = brr_api::ErrorBody)))]
/// Log in with e-mail and password (JSON body or HTTP Basic).
pub async fn login(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TokenResponse>> {
    let creds = credentials(&headers, &body)?;
    let r = st
        .svc
        .login(&ctx, &creds.email, &creds.password, creds.totp.as_deref())
        .await;
    st.metrics.record_login(r.is_ok());
    Ok(Json(r?))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = brr_api::ErrorBody)))]
/// Rotate a refresh token.
pub async fn refresh(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(st.svc.refresh(&ctx, &req.refresh_token).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = brr_api::ErrorBody)))]
/// End the current session.
pub async fn logout(State(st): State<AppState>, ctx: Ctx) -> ApiResult<StatusCode> {
    st.svc.logout(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = brr_api::ErrorBody)))]
/// End every session of the caller.
pub async fn logout_all(State(st): State<AppState>, ctx: Ctx) -> ApiResult<StatusCode> {
    st.svc.logout_all(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = Accepted), (status = 400, body = brr_api::ErrorBody), (status = 403, body = brr_api::ErrorBody)))]
/// Sign up (by invitation, or open registration when enabled); a PIN is mailed.
pub async fn register(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    st.svc.register(&ctx, &req).await?;
    Ok(accepted(CHECK_MAIL))
}

#[utoipa::path(post, path = "/api/v1/auth/register/verify", tag = "auth", request_body = VerifyPinRequest,
    responses((status = 200, body = Accepted), (status = 400, body = brr_api::ErrorBody)))]
/// Confirm the address with the mailed PIN; the account becomes active.
pub async fn register_verify(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<VerifyPinRequest>,
) -> ApiResult<Json<Accepted>> {
    st.svc
        .verify_registration(&ctx, &req.email, &req.pin)
        .await?;
    Ok(Json(Accepted {
        message: "address confirmed; you can log in".into(),
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, body = Accepted)))]
/// Ask for a password-reset PIN (same answer whether or not the account exists).
pub async fn password_reset(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<PasswordResetRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    st.svc.request_password_reset(&ctx, &req.email).await?;
    Ok(accepted(CHECK_MAIL))
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses((status = 200, body = Accepted), (status = 400, body = brr_api::ErrorBody)))]
/// Set a new password with the PIN; all sessions end.
pub async fn password_reset_confirm(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<PasswordResetConfirm>,
) -> ApiResult<Json<Accepted>> {
    st.svc
        .confirm_password_reset(&ctx, &req.email, &req.pin, &req.new_password)
        .await?;
    Ok(Json(Accepted {
        message: "password changed; log in again".into(),
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/setup", tag = "auth", request_body = SetupRequest,
    responses((status = 200, body = Accepted), (status = 400, body = brr_api::ErrorBody)))]
/// Provider staff set their first password with the setup code from `brrd admin`.
pub async fn setup(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<SetupRequest>,
) -> ApiResult<Json<Accepted>> {
    st.svc
        .setup(&ctx, &req.email, &req.code, &req.password)
        .await?;
    Ok(Json(Accepted {
        message: "password set; you can log in".into(),
    }))
}

#[utoipa::path(get, path = "/api/v1/sites", tag = "identity", responses((status = 200, body = [Site])))]
/// The site catalogue (home sites a company can choose).
pub async fn sites() -> Json<Vec<Site>> {
    Json(
        brr_api::sites::CATALOGUE
            .iter()
            .map(|(c, n)| Site {
                code: (*c).into(),
                name: (*n).into(),
            })
            .collect(),
    )
}
