//! The one mapping from domain errors to HTTP status and the JSON envelope, plus extractors whose
//! rejections use the same envelope (malformed JSON, unknown fields, oversized bodies and bad UUIDs are
//! all `4xx` with `{ "error": { "code", "message" } }`).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brr_api::{ApiError, ErrorBody};

use crate::error::Error;

/// A response-ready error.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<i64>,
    range_size: Option<u64>,
}

impl HttpError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn request(status: StatusCode, message: String) -> Self {
        HttpError {
            status,
            code: "request.invalid",
            message,
            retry_after_secs: None,
            range_size: None,
        }
    }
}

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Invalid(_) | Error::BadCode | Error::WeakPassword(_) => StatusCode::BAD_REQUEST,
            Error::InvalidCredentials | Error::Unauthenticated | Error::TotpRequired => {
                StatusCode::UNAUTHORIZED
            }
            Error::Locked { .. } | Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Forbidden
            | Error::RegistrationClosed
            | Error::QuotaExceeded(_)
            | Error::AppendOnly(_) => StatusCode::FORBIDDEN,
            Error::NameMismatch(_)
            | Error::BadPack(_)
            | Error::BadFile(_)
            | Error::BadPolicy(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::MissingBlobs(_) | Error::Exists(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::StoreUnavailable(detail) => {
                tracing::warn!(error = %detail, "repository store unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::StoreRefused { detail, .. } => {
                tracing::error!(error = %detail, "repository store refuses the server's requests");
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Config(_)
            | Error::Database(_)
            | Error::Migrate(_)
            | Error::Io(_)
            | Error::Internal(_)
            | Error::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after_secs = match &e {
            Error::Locked { minutes } | Error::Throttled { minutes } => Some(minutes * 60),
            Error::StoreUnavailable(_) | Error::StoreRefused { .. } => Some(30),
            _ => None,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
            "internal error".to_string()
        } else {
            e.to_string()
        };
        HttpError {
            status,
            code: e.code(),
            message,
            retry_after_secs,
            range_size: match &e {
                Error::RangeNotSatisfiable { size } => Some(*size),
                _ => None,
            },
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ApiError {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Some(size) = self.range_size
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"brrd\""),
            );
        }
        resp
    }
}

impl From<JsonRejection> for HttpError {
    fn from(r: JsonRejection) -> Self {
        HttpError::request(r.status(), r.body_text())
    }
}

impl From<PathRejection> for HttpError {
    fn from(r: PathRejection) -> Self {
        // Bad UUIDs and other unparseable path segments are client errors.
        HttpError::request(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl From<QueryRejection> for HttpError {
    fn from(r: QueryRejection) -> Self {
        HttpError::request(StatusCode::BAD_REQUEST, r.body_text())
    }
}

/// `axum::Json` with JSON errors.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(HttpError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with JSON errors.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(HttpError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with JSON errors.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(HttpError))]
pub struct Query<T>(pub T);

/// Result type of handlers.
pub type ApiResult<T> = Result<T, HttpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_store_is_a_retryable_503_without_its_detail() {
        let e = Error::storage(brr_storage::StorageError::Unavailable {
            op: "read",
            detail: "no answer from s3:http://10.0.0.9:3900/bucket within 900s".into(),
        });
        assert!(matches!(e, Error::StoreUnavailable(_)), "{e:?}");
        let h = HttpError::from(e);
        assert_eq!(h.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(h.code(), "store_unavailable");
        assert!(!h.message.contains("10.0.0.9"), "{}", h.message);
        let resp = h.into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "30");
    }

    #[test]
    fn a_refusing_store_is_a_503_that_says_what_is_wrong_without_the_answer() {
        for (detail, needle) in [
            (
                "access denied: PermissionDenied at write, uri: http://10.0.0.9:3900/b/k => Forbidden",
                "access denied",
            ),
            (
                "no such bucket: NotFound at write, uri: http://10.0.0.9:3900/b/k => NoSuchBucket",
                "bucket does not exist",
            ),
        ] {
            let e = Error::storage(brr_storage::StorageError::Backend {
                op: "write",
                detail: detail.into(),
            });
            assert!(matches!(e, Error::StoreRefused { .. }), "{e:?}");
            let h = HttpError::from(e);
            assert_eq!(h.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(h.code(), "store_unavailable");
            assert!(h.message.contains(needle), "{}", h.message);
            assert!(!h.message.contains("10.0.0.9"), "{}", h.message);
            assert!(!h.message.contains('\n'));
            let resp = h.into_response();
            assert_eq!(resp.headers()[header::RETRY_AFTER], "30");
        }
    }

    #[test]
    fn other_store_failures_stay_internal_and_missing_files_are_404() {
        let broken = Error::storage(brr_storage::StorageError::Backend {
            op: "write",
            detail: "unexpected response: 501 Not Implemented".into(),
        });
        assert_eq!(
            HttpError::from(broken).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let missing = Error::storage(brr_storage::StorageError::NotFound {
            kind: brr_storage::FileKind::Pack,
            name: "ab".into(),
        });
        assert_eq!(HttpError::from(missing).status(), StatusCode::NOT_FOUND);
    }
}
