//! The operations listener (`/healthz`, `/readyz`, `/metrics`, plain HTTP on a private address) and
//! the plain-HTTP listener that only redirects to HTTPS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::service::Service;

/// Request and login counters, exposed in the Prometheus text format.
#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 6],
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
}

impl Metrics {
    /// Counts a response by status class.
    pub fn record_status(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a login attempt.
    pub fn record_login(&self, ok: bool) {
        let c = if ok {
            &self.logins_ok
        } else {
            &self.logins_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP brrd_http_responses_total HTTPS API responses by status class.\n\
             # TYPE brrd_http_responses_total counter\n",
        );
        for (class, n) in self.by_class.iter().enumerate().skip(1) {
            out.push_str(&format!(
                "brrd_http_responses_total{{class=\"{class}xx\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP brrd_logins_total Login attempts by outcome.\n# TYPE brrd_logins_total counter\n",
        );
        out.push_str(&format!(
            "brrd_logins_total{{outcome=\"success\"}} {}\nbrrd_logins_total{{outcome=\"failure\"}} {}\n",
            self.logins_ok.load(Ordering::Relaxed),
            self.logins_failed.load(Ordering::Relaxed)
        ));
        out
    }
}

#[derive(Clone)]
struct OpsState {
    svc: Arc<Service>,
    metrics: Arc<Metrics>,
}

/// The operations application.
pub fn ops_app(svc: Arc<Service>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(OpsState { svc, metrics })
}

async fn readyz(State(st): State<OpsState>) -> Response {
    match st.svc.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics_text(State(st): State<OpsState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

/// The redirect application: every request gets `308` to the same path on `https://host:https_port`.
pub fn redirect_app(https_port: u16) -> Router {
    Router::new().fallback(move |headers: HeaderMap, uri: Uri| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(strip_port)
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
            })
            .unwrap_or("localhost")
            .to_string();
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        Redirect::permanent(&format!("https://{host}{port}{path}"))
    })
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_port_handles_ipv6() {
        assert_eq!(super::strip_port("example.com:80"), "example.com");
        assert_eq!(super::strip_port("[::1]:80"), "[::1]");
        assert_eq!(super::strip_port("example.com"), "example.com");
    }
}
