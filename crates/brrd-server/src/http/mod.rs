//! The thin HTTP layer: routes laid out like URLs, each declared with its [`Access`] rule next to its
//! handler, one authorisation middleware, one error mapping ([`error`]), security headers on every
//! response.
//!
//! The router is built *from* the list returned by [`endpoints`], and the middleware denies any
//! matched route that has no rule, so a route cannot be added without an access rule. The
//! integration tests walk the same list to try every endpoint as outsiders and lower roles.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod error;
pub mod identity;
pub mod maintenance;
pub mod openapi;
pub mod ops;
pub mod repos;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::Error;
use crate::service::access::Access;
use crate::service::{Ctx, Service};
use error::HttpError;
pub use ops::Metrics;

/// Shared state of the HTTP layer.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub svc: Arc<Service>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    rules: Arc<HashMap<(Method, &'static str), Access>>,
}

/// One API endpoint: method, path (axum syntax, under `/api/v1`), access rule and handler.
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/api/v1/companies/{company_id}`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The handler.
    pub handler: MethodRouter<AppState>,
    /// Whether the request carries a repository file of any size: it gets
    /// `store.upload_timeout_secs` instead of `request_timeout_secs`.
    pub long: bool,
}

impl Endpoint {
    /// Declares an endpoint.
    pub fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Endpoint {
            method,
            path,
            access,
            handler,
            long: false,
        }
    }

    /// Marks a transfer of repository files (see [`Endpoint::long`]).
    pub fn long(mut self) -> Self {
        self.long = true;
        self
    }
}

/// Every API endpoint. The router, the authorisation rules and the access tests all derive from it.
pub fn endpoints() -> Vec<Endpoint> {
    let mut v = auth::endpoints();
    v.extend(identity::endpoints());
    v.extend(audit::endpoints());
    v.extend(repos::endpoints());
    v.extend(maintenance::endpoints());
    v.extend(agents::endpoints());
    v.extend(openapi::endpoints());
    v
}

/// Builds the HTTPS application.
pub fn app(svc: Arc<Service>, metrics: Arc<Metrics>) -> Router {
    let list = endpoints();
    let rules = Arc::new(
        list.iter()
            .map(|e| ((e.method.clone(), e.path), e.access))
            .collect(),
    );
    let state = AppState {
        svc: svc.clone(),
        metrics: metrics.clone(),
        rules,
    };
    let config = &svc.config;
    let timeout = Duration::from_secs(config.request_timeout_secs);
    let long = Duration::from_secs(config.store.upload_timeout_secs);
    let mut router: Router<AppState> = Router::new();
    for e in list {
        let t = if e.long { long } else { timeout };
        router = router.route(
            e.path,
            e.handler
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    t,
                )),
        );
    }
    router = router
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .fallback(|| async { HttpError::from(Error::NotFound) })
        .method_not_allowed_fallback(|| async { HttpError::from(Error::NotFound) })
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), count));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name.clone(),
            HeaderValue::from_static(value),
        ));
    }
    router.with_state(state)
}

/// Headers set on every response of the HTTPS listener.
pub const SECURITY_HEADERS: &[(HeaderName, &str)] = &[
    (
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    ),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

async fn count(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    st.metrics.record_status(resp.status().as_u16());
    resp
}

/// The request context the middleware attaches for handlers.
#[derive(Debug, Clone)]
struct RequestCtx(Ctx);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestCtx>()
            .map(|c| c.0.clone())
            .ok_or_else(|| HttpError::from(Error::internal("request context missing")))
    }
}

/// Default deny: finds the rule of the matched route, authenticates the caller, applies the rule.
async fn authorize(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return HttpError::from(Error::NotFound).into_response();
    };
    let Some(access) = st
        .rules
        .get(&(req.method().clone(), path.as_str()))
        .copied()
    else {
        return HttpError::from(Error::NotFound).into_response();
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(peer, req.headers(), &st.svc.config.trusted_proxies);
    let principal = if access == Access::Public {
        None
    } else {
        match bearer(req.headers()) {
            Some(token) => match st.svc.authenticate(token).await {
                Ok(p) => Some(p),
                Err(e) => return HttpError::from(e).into_response(),
            },
            None => None,
        }
    };
    if let Err(e) = access.allows(principal.as_ref()) {
        if matches!(e, Error::Forbidden) {
            let ctx = Ctx {
                principal: principal.clone(),
                ip,
            };
            let _ = st
                .svc
                .record(
                    &ctx,
                    principal.as_ref().and_then(|p| p.company_id()),
                    "access.denied",
                    &path,
                    "forbidden",
                    req.method().as_str(),
                )
                .await;
        }
        return HttpError::from(e).into_response();
    }
    req.extensions_mut()
        .insert(RequestCtx(Ctx { principal, ip }));
    next.run(req).await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The client address: the socket peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_ignored_unless_peer_is_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.9"),
        );
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(Some(peer), &h, &[]),
            peer,
            "untrusted peer: header ignored"
        );
        let trusted = ["10.0.0.1".parse().unwrap(), "10.0.0.9".parse().unwrap()];
        assert_eq!(
            client_ip(Some(peer), &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn every_endpoint_is_unique_and_versioned() {
        let mut seen = std::collections::HashSet::new();
        for e in endpoints() {
            assert!(e.path.starts_with(brr_api::API_PREFIX), "{}", e.path);
            assert!(
                seen.insert((e.method.clone(), e.path)),
                "duplicate {} {}",
                e.method,
                e.path
            );
        }
    }
}
