//! The operations listener (`/healthz`, `/readyz`, `/metrics`, plain HTTP on a private address) and
//! the plain-HTTP listener that only redirects to HTTPS.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::service::Service;
use crate::service::quotas::QuotaGauge;

/// Request, login and repository counters, exposed in the Prometheus text format.
#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 6],
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    uploaded_bytes: AtomicU64,
    uploads: AtomicU64,
    snapshots: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    verifications: AtomicU64,
    verify_findings: AtomicU64,
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

    /// Counts a stored upload of `bytes` (and a committed snapshot).
    pub fn record_upload(&self, bytes: u64, snapshot: bool) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
        if snapshot {
            self.snapshots.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a scrub and the damaged or missing files it found.
    pub fn record_verify(&self, findings: u64) {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.verify_findings.fetch_add(findings, Ordering::Relaxed);
    }

    /// Counts a refused repository operation by its error code.
    pub fn record_refusal(&self, reason: &'static str) {
        if let Ok(mut m) = self.refusals.lock() {
            *m.entry(reason).or_default() += 1;
        }
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
        for (name, help, v) in [
            (
                "brrd_repo_uploaded_bytes_total",
                "Bytes of repository files stored.",
                &self.uploaded_bytes,
            ),
            (
                "brrd_repo_uploads_total",
                "Repository files stored.",
                &self.uploads,
            ),
            (
                "brrd_repo_snapshots_committed_total",
                "Snapshots committed.",
                &self.snapshots,
            ),
            (
                "brrd_repo_verifications_total",
                "Repository scrubs run through the API.",
                &self.verifications,
            ),
            (
                "brrd_repo_verify_findings_total",
                "Damaged or missing files found by scrubs.",
                &self.verify_findings,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP brrd_repo_refusals_total Refused repository operations by reason.\n# TYPE brrd_repo_refusals_total counter\n",
        );
        if let Ok(m) = self.refusals.lock() {
            for (reason, n) in m.iter() {
                out.push_str(&format!(
                    "brrd_repo_refusals_total{{reason=\"{reason}\"}} {n}\n"
                ));
            }
        }
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
    let mut text = st.metrics.render();
    text.push_str(&st.svc.maintenance.render_metrics());
    match st.svc.quota_gauges().await {
        Ok(gauges) => text.push_str(&render_quota(&gauges)),
        Err(e) => tracing::warn!(error = %e, "quota gauges unavailable"),
    }
    match st.svc.backup_failure_counts().await {
        Ok(counts) => text.push_str(&crate::service::backups::render_failures(&counts)),
        Err(e) => tracing::warn!(error = %e, "failed-backup counts unavailable"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Stored bytes and limits per company, as gauges.
fn render_quota(gauges: &[QuotaGauge]) -> String {
    let mut out = String::from(
        "# HELP brrd_company_stored_bytes Bytes stored in a company's repositories.\n\
         # TYPE brrd_company_stored_bytes gauge\n",
    );
    for g in gauges {
        out.push_str(&format!(
            "brrd_company_stored_bytes{{company=\"{}\"}} {}\n",
            g.company_id, g.stored_bytes
        ));
    }
    out.push_str(
        "# HELP brrd_company_quota_bytes A company's storage quota (absent: unlimited).\n\
         # TYPE brrd_company_quota_bytes gauge\n",
    );
    for g in gauges {
        if let Some(max) = g.max_stored_bytes {
            out.push_str(&format!(
                "brrd_company_quota_bytes{{company=\"{}\"}} {max}\n",
                g.company_id
            ));
        }
    }
    out
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
    fn repository_counters_render() {
        let m = super::Metrics::default();
        m.record_upload(100, false);
        m.record_upload(50, true);
        m.record_refusal("quota_exceeded");
        m.record_refusal("quota_exceeded");
        let t = m.render();
        assert!(t.contains("brrd_repo_uploaded_bytes_total 150\n"), "{t}");
        assert!(t.contains("brrd_repo_snapshots_committed_total 1\n"), "{t}");
        assert!(
            t.contains("brrd_repo_refusals_total{reason=\"quota_exceeded\"} 2\n"),
            "{t}"
        );
        let g = super::render_quota(&[super::QuotaGauge {
            company_id: "c".into(),
            stored_bytes: 5,
            max_stored_bytes: Some(9),
        }]);
        assert!(
            g.contains("brrd_company_quota_bytes{company=\"c\"} 9\n"),
            "{g}"
        );
    }

    #[test]
    fn strip_port_handles_ipv6() {
        assert_eq!(super::strip_port("example.com:80"), "example.com");
        assert_eq!(super::strip_port("[::1]:80"), "[::1]");
        assert_eq!(super::strip_port("example.com"), "example.com");
    }
}
