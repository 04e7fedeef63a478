//! `/api/v1/repos/…`: repositories and their file API (docs/server-repositories.md §3).
//!
//! Route rules here are the first gate; company scope, roles per file kind and append-only are
//! decided by `service::repos::rules`, called by every service operation.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, get, head, patch, post, put};
use brr_api::identity::Role;
use brr_api::repos::{
    BlobLookup, BlobPresence, CreateRepository, FileEntry, Repository, UpdateRepository,
    VerifyReport,
};

use super::error::{ApiResult, HttpError, Json, Path};
use super::{AppState, Endpoint};
use crate::error::Error;
use crate::service::Ctx;
use crate::service::access::Access;
use crate::service::repos::checks::kind_from_url;
use crate::service::repos::files::ByteRange;

const ADMINS: &[Role] = &[Role::CompanyAdmin];
const VERIFIERS: &[Role] = &[Role::ProviderAdmin, Role::Operator, Role::CompanyAdmin];
const FILE: &str = "/api/v1/repos/{repo}/files/{kind}/{name}";

/// The endpoints of this module with their access rules.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    vec![
        Endpoint::new(Method::GET, "/api/v1/repos", Members, get(list_repos)),
        Endpoint::new(
            Method::POST,
            "/api/v1/repos",
            Roles(ADMINS),
            post(create_repo),
        ),
        Endpoint::new(Method::GET, "/api/v1/repos/{repo}", Members, get(get_repo)),
        Endpoint::new(
            Method::PATCH,
            "/api/v1/repos/{repo}",
            Roles(ADMINS),
            patch(update_repo),
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/repos/{repo}/files/{kind}",
            Members,
            get(list_files),
        ),
        Endpoint::new(Method::GET, FILE, Members, get(get_file)).long(),
        Endpoint::new(Method::HEAD, FILE, Members, head(head_file)),
        Endpoint::new(Method::PUT, FILE, Members, put(put_file)).long(),
        Endpoint::new(Method::DELETE, FILE, Members, delete(delete_file)),
        Endpoint::new(
            Method::POST,
            "/api/v1/repos/{repo}/verify",
            Roles(VERIFIERS),
            post(verify_repo),
        )
        .long(),
        Endpoint::new(
            Method::POST,
            "/api/v1/repos/{repo}/blobs/lookup",
            Members,
            post(lookup_blobs).layer(axum::extract::DefaultBodyLimit::max(1 << 20)),
        ),
    ]
}

#[utoipa::path(get, path = "/api/v1/repos", tag = "repositories", security(("bearer" = [])),
    responses((status = 200, body = [Repository])))]
/// The caller's company's repositories with usage (every repository for provider staff).
pub async fn list_repos(State(st): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<Repository>>> {
    Ok(Json(st.svc.list_repos(&ctx).await?))
}

#[utoipa::path(post, path = "/api/v1/repos", tag = "repositories", security(("bearer" = [])),
    request_body = CreateRepository,
    responses((status = 201, body = Repository), (status = 409, body = brr_api::ErrorBody)))]
/// Create a repository in the caller's company (company admins).
pub async fn create_repo(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<CreateRepository>,
) -> ApiResult<(StatusCode, Json<Repository>)> {
    Ok((
        StatusCode::CREATED,
        Json(st.svc.create_repo(&ctx, &req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/repos/{repo}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path, description = "repository id, or its name in the caller's company")),
    responses((status = 200, body = Repository), (status = 404, body = brr_api::ErrorBody)))]
/// One repository: settings, usage, last snapshot per source tag.
pub async fn get_repo(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
) -> ApiResult<Json<Repository>> {
    Ok(Json(st.svc.get_repo(&ctx, &repo).await?))
}

#[utoipa::path(patch, path = "/api/v1/repos/{repo}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path)), request_body = UpdateRepository,
    responses((status = 200, body = Repository), (status = 403, body = brr_api::ErrorBody), (status = 404, body = brr_api::ErrorBody)))]
/// Change append-only (off only after `delete_delay_secs`) or the delay (company admins).
pub async fn update_repo(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
    Json(req): Json<UpdateRepository>,
) -> ApiResult<Json<Repository>> {
    Ok(Json(st.svc.update_repo(&ctx, &repo, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/repos/{repo}/files/{kind}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path), ("kind" = String, Path, description = "config, keys, data, index, snapshots, locks or gc")),
    responses((status = 200, body = [FileEntry]), (status = 404, body = brr_api::ErrorBody)))]
/// Every file of a kind, with sizes.
pub async fn list_files(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((repo, kind)): Path<(String, String)>,
) -> ApiResult<Json<Vec<FileEntry>>> {
    let kind = kind_from_url(&kind)?;
    Ok(Json(st.svc.list_files(&ctx, &repo, kind).await?))
}

fn octets(status: StatusCode, len: u64) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
}

#[utoipa::path(get, path = "/api/v1/repos/{repo}/files/{kind}/{name}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path), ("kind" = String, Path), ("name" = String, Path),
        ("Range" = Option<String>, Header, description = "bytes=A-B, bytes=A- or bytes=-N")),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206, content_type = "application/octet-stream"),
        (status = 404, body = brr_api::ErrorBody), (status = 416, body = brr_api::ErrorBody)))]
/// A file, or one byte range of it (206).
pub async fn get_file(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((repo, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let kind = kind_from_url(&kind)?;
    let range = headers
        .get(header::RANGE)
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::invalid("Range is not ASCII"))
                .and_then(ByteRange::parse)
        })
        .transpose()?;
    let f = st
        .svc
        .read_file(&ctx, &repo, kind, &name, range, true)
        .await?;
    let len = f.bytes.len() as u64;
    let builder = match f.range_start {
        Some(start) => octets(StatusCode::PARTIAL_CONTENT, len).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", start + len - 1, f.size),
        ),
        None => octets(StatusCode::OK, len),
    };
    builder
        .body(Body::from(f.bytes))
        .map_err(|e| HttpError::from(Error::internal(e)))
}

#[utoipa::path(head, path = "/api/v1/repos/{repo}/files/{kind}/{name}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Content-Length is the file's size"), (status = 404)))]
/// The size of a file, as `Content-Length`.
pub async fn head_file(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((repo, kind, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let kind = kind_from_url(&kind)?;
    let f = st
        .svc
        .read_file(&ctx, &repo, kind, &name, None, false)
        .await?;
    octets(StatusCode::OK, f.size)
        .body(Body::empty())
        .map_err(|e| HttpError::from(Error::internal(e)))
}

#[utoipa::path(put, path = "/api/v1/repos/{repo}/files/{kind}/{name}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "stored"), (status = 200, description = "an identical file was already stored"),
        (status = 403, body = brr_api::ErrorBody, description = "forbidden, append_only or quota_exceeded"),
        (status = 409, body = brr_api::ErrorBody, description = "missing_blobs or exists"),
        (status = 413, body = brr_api::ErrorBody), (status = 422, body = brr_api::ErrorBody, description = "name_mismatch, bad_pack or bad_file")))]
/// Upload a file; checked without the key before it is stored.
pub async fn put_file(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((repo, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let kind = kind_from_url(&kind)?;
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let r = st
        .svc
        .put_file(&ctx, &repo, kind, &name, len, body.into_data_stream())
        .await;
    match &r {
        Ok(s) if s.created => {
            st.metrics
                .record_upload(s.size, kind == brr_storage::FileKind::Snapshot);
            if kind == brr_storage::FileKind::Snapshot {
                st.svc.retention_after_snapshot(&ctx, &repo).await;
            }
        }
        Ok(_) => {}
        Err(e) => {
            if let Some(reason) = e.refusal_reason() {
                st.metrics.record_refusal(reason);
            }
        }
    }
    // Backup sessions and failed backups (service::backups); never fail the upload.
    match (&r, kind) {
        (Ok(_), brr_storage::FileKind::Lock) => st.svc.backup_lock_stored(&ctx, &repo, &name).await,
        (Err(e), brr_storage::FileKind::Snapshot) => {
            st.svc.backup_snapshot_refused(&ctx, &repo, e).await;
        }
        _ => {}
    }
    Ok(if r?.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

#[utoipa::path(delete, path = "/api/v1/repos/{repo}/files/{kind}/{name}", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = brr_api::ErrorBody, description = "forbidden or append_only"), (status = 404, body = brr_api::ErrorBody)))]
/// Delete a file (per kind and role; never in append-only repositories, except locks and superseded
/// index files).
pub async fn delete_file(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((repo, kind, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = kind_from_url(&kind)?;
    let r = st.svc.delete_file(&ctx, &repo, kind, &name).await;
    if let Err(e) = &r
        && let Some(reason) = e.refusal_reason()
    {
        st.metrics.record_refusal(reason);
    }
    r?;
    if kind == brr_storage::FileKind::Lock {
        st.svc.backup_lock_deleted(&ctx, &repo, &name).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/repos/{repo}/blobs/lookup", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path)), request_body = BlobLookup,
    responses((status = 200, body = BlobPresence), (status = 400, body = brr_api::ErrorBody)))]
/// Which of up to 10 000 blobs the repository holds in indexed packs no GC record condemns.
///
/// A pack counts once a stored index file lists it (docs/server-repositories.md §5).
pub async fn lookup_blobs(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
    Json(req): Json<BlobLookup>,
) -> ApiResult<Json<BlobPresence>> {
    Ok(Json(BlobPresence {
        present: st.svc.lookup_blobs(&ctx, &repo, &req.ids).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/repos/{repo}/verify", tag = "repositories", security(("bearer" = [])),
    params(("repo" = String, Path)),
    responses((status = 200, body = VerifyReport), (status = 404, body = brr_api::ErrorBody)))]
/// Scrub without the key: rehash every file against its name, parse every structure, name the
/// snapshots each damaged or missing pack affects (company admins, provider admins, operators).
pub async fn verify_repo(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(repo): Path<String>,
) -> ApiResult<Json<VerifyReport>> {
    let report = st.svc.verify_repo(&ctx, &repo).await?;
    st.metrics.record_verify(report.findings.len() as u64);
    Ok(Json(report))
}
