//! A tiny in-process HTTP server that speaks the repository file API over a real [`LocalBackend`],
//! with the login, refresh and enrolment calls, and knobs to inject failures. Unit tests only: the
//! end-to-end tests of the `brr` crate run the real `brrd`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use brr_storage::{Backend, FileKind, LocalBackend};

/// Shared state of the test server.
#[derive(Default)]
pub struct Knobs {
    /// Answer this many file requests with 503 before serving.
    pub fail_next: AtomicU32,
    /// Access tokens accepted as bearer.
    pub access: Mutex<Vec<String>>,
    /// Refresh token → next (access, refresh) pair.
    pub refresh: Mutex<HashMap<String, (String, String)>>,
    /// Refresh tokens spent.
    pub refreshed: AtomicU32,
    /// Deletions answer 403 append_only.
    pub append_only: std::sync::atomic::AtomicBool,
    /// Uploads answer 403 quota_exceeded.
    pub over_quota: std::sync::atomic::AtomicBool,
    /// Ignore Range headers (answer 200 with the whole file).
    pub ignore_range: std::sync::atomic::AtomicBool,
    /// Every request: method and path.
    pub log: Mutex<Vec<String>>,
    /// Refuse a second config upload (409 exists), as brrd does.
    pub config_once: std::sync::atomic::AtomicBool,
    /// Repositories that exist.
    pub repos: Mutex<Vec<String>>,
    /// Blob IDs the look-up answers as present.
    pub present_blobs: Mutex<std::collections::HashSet<String>>,
    /// The number of IDs of every look-up request served.
    pub lookup_sizes: Mutex<Vec<usize>>,
}

#[derive(Clone)]
struct St {
    knobs: Arc<Knobs>,
    root: std::path::PathBuf,
}

/// A running test server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its knobs.
    pub knobs: Arc<Knobs>,
    /// Where repositories are stored.
    pub _dir: tempfile::TempDir,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn kind_of(seg: &str) -> Option<FileKind> {
    FileKind::ALL
        .into_iter()
        .find(|k| k.folder().unwrap_or("config") == seg)
}

impl St {
    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(token) = v.strip_prefix("Bearer ") else {
            return false;
        };
        token.starts_with("brra_") || self.knobs.access.lock().unwrap().iter().any(|t| t == token)
    }

    fn repo(&self, name: &str) -> Option<LocalBackend> {
        self.knobs
            .repos
            .lock()
            .unwrap()
            .iter()
            .any(|r| r == name)
            .then(|| LocalBackend::new(self.root.join(name)))
    }
}

async fn log(st: &St, method: &Method, path: &str) {
    st.knobs
        .log
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));
}

fn repository(name: &str) -> String {
    serde_json::to_string(&brr_api::repos::Repository {
        id: format!("id-{name}"),
        company_id: "c1".into(),
        name: name.into(),
        append_only: false,
        append_only_ends_at: None,
        delete_delay_secs: 0,
        created_at: 0,
        created_by: "user:u1".into(),
        usage: brr_api::repos::RepoUsage::default(),
    })
    .unwrap()
}

async fn repo_info(State(st): State<St>, headers: HeaderMap, Path(repo): Path<String>) -> Response {
    log(&st, &Method::GET, &format!("/repos/{repo}")).await;
    if !st.authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    }
    match st.repo(&repo) {
        Some(_) => (StatusCode::OK, repository(&repo)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "not found"),
    }
}

async fn create_repo(State(st): State<St>, headers: HeaderMap, body: Bytes) -> Response {
    if !st.authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let name = v["name"].as_str().unwrap().to_owned();
    let mut repos = st.knobs.repos.lock().unwrap();
    if repos.contains(&name) {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            "a repository of that name exists",
        );
    }
    repos.push(name.clone());
    (StatusCode::CREATED, repository(&name)).into_response()
}

async fn list(
    State(st): State<St>,
    headers: HeaderMap,
    Path((repo, kind)): Path<(String, String)>,
) -> Response {
    log(&st, &Method::GET, &format!("/repos/{repo}/files/{kind}")).await;
    if !st.authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    }
    let (Some(b), Some(kind)) = (st.repo(&repo), kind_of(&kind)) else {
        return error(StatusCode::NOT_FOUND, "not_found", "not found");
    };
    if st.knobs.fail_next.load(Ordering::SeqCst) > 0 {
        st.knobs.fail_next.fetch_sub(1, Ordering::SeqCst);
        return error(StatusCode::SERVICE_UNAVAILABLE, "internal", "try later");
    }
    let files = match b.list(kind) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(_) => Vec::new(),
    };
    let out: Vec<_> = files
        .into_iter()
        .map(|f| serde_json::json!({"name": f.name, "size": f.size}))
        .collect();
    (StatusCode::OK, serde_json::Value::Array(out).to_string()).into_response()
}

async fn file(
    State(st): State<St>,
    method: Method,
    headers: HeaderMap,
    Path((repo, kind, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    log(&st, &method, &format!("/repos/{repo}/files/{kind}/{name}")).await;
    if !st.authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    }
    let (Some(b), Some(kind)) = (st.repo(&repo), kind_of(&kind)) else {
        return error(StatusCode::NOT_FOUND, "not_found", "not found");
    };
    if st.knobs.fail_next.load(Ordering::SeqCst) > 0 {
        st.knobs.fail_next.fetch_sub(1, Ordering::SeqCst);
        return error(StatusCode::SERVICE_UNAVAILABLE, "internal", "try later");
    }
    let _ = b.create();
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "not found");
    match method {
        Method::HEAD => match b.size(kind, &name) {
            Ok(n) => (StatusCode::OK, [(header::CONTENT_LENGTH, n.to_string())]).into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        },
        Method::GET => {
            let Ok(data) = b.read(kind, &name) else {
                return not_found();
            };
            let range = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.split_once('-'))
                .map(|(a, z)| (a.parse::<usize>().unwrap(), z.parse::<usize>().unwrap()));
            match range {
                Some((a, z)) if !st.knobs.ignore_range.load(Ordering::SeqCst) => {
                    if a >= data.len() {
                        return error(
                            StatusCode::RANGE_NOT_SATISFIABLE,
                            "range",
                            "outside the file",
                        );
                    }
                    let z = z.min(data.len() - 1);
                    (StatusCode::PARTIAL_CONTENT, data[a..=z].to_vec()).into_response()
                }
                _ => (StatusCode::OK, data).into_response(),
            }
        }
        Method::PUT => {
            if st.knobs.over_quota.load(Ordering::SeqCst) {
                return error(
                    StatusCode::FORBIDDEN,
                    "quota_exceeded",
                    "stored bytes quota of 1 GiB reached",
                );
            }
            if st.knobs.config_once.load(Ordering::SeqCst)
                && kind == FileKind::Config
                && b.size(kind, &name).is_ok()
            {
                return error(
                    StatusCode::CONFLICT,
                    "exists",
                    "the repository has a config",
                );
            }
            let existed = b.read(kind, &name).is_ok_and(|d| d == body);
            b.write(kind, &name, &body).unwrap();
            if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            }
            .into_response()
        }
        Method::DELETE => {
            if st.knobs.append_only.load(Ordering::SeqCst) && kind != FileKind::Lock {
                return error(
                    StatusCode::FORBIDDEN,
                    "append_only",
                    "the repository is append-only",
                );
            }
            match b.remove(kind, &name) {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(_) => not_found(),
            }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "request.invalid", "method"),
    }
}

async fn login(State(st): State<St>, body: Bytes) -> Response {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    if v["password"] != "pw" {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.invalid_credentials",
            "invalid e-mail or password",
        );
    }
    if v["email"] == "totp@example.com" && v["totp"] != "123456" {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.totp_required",
            "a TOTP code is required",
        );
    }
    st.knobs.access.lock().unwrap().push("access-1".into());
    st.knobs
        .refresh
        .lock()
        .unwrap()
        .insert("refresh-1".into(), ("access-2".into(), "refresh-2".into()));
    tokens("access-1", "refresh-1")
}

fn tokens(access: &str, refresh: &str) -> Response {
    let body = serde_json::json!({"access_token": access, "token_type": "Bearer", "expires_in": 900, "refresh_token": refresh});
    (StatusCode::OK, body.to_string()).into_response()
}

async fn refresh(State(st): State<St>, body: Bytes) -> Response {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = v["refresh_token"].as_str().unwrap_or_default().to_owned();
    let Some((access, next)) = st.knobs.refresh.lock().unwrap().remove(&token) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    };
    st.knobs.refreshed.fetch_add(1, Ordering::SeqCst);
    st.knobs.access.lock().unwrap().push(access.clone());
    tokens(&access, &next)
}

async fn enroll(headers: HeaderMap, body: Bytes) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if key != Some("Bearer brr_key1_secret") {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    if v["name"] == "one-too-many" {
        return error(
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            "agent quota of 2 reached",
        );
    }
    let body = serde_json::json!({"agent_id": "ag7", "token": "brra_ag7_s3cret"});
    (StatusCode::CREATED, body.to_string()).into_response()
}

/// `POST /repos/{repo}/blobs/lookup`: present = in [`Knobs::present_blobs`].
async fn lookup(
    State(st): State<St>,
    headers: HeaderMap,
    Path(repo): Path<String>,
    body: Bytes,
) -> Response {
    log(&st, &Method::POST, &format!("/repos/{repo}/blobs/lookup")).await;
    if !st.authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "authentication required",
        );
    }
    if st.repo(&repo).is_none() {
        return error(StatusCode::NOT_FOUND, "not_found", "not found");
    }
    if st.knobs.fail_next.load(Ordering::SeqCst) > 0 {
        st.knobs.fail_next.fetch_sub(1, Ordering::SeqCst);
        return error(StatusCode::SERVICE_UNAVAILABLE, "internal", "try later");
    }
    let Ok(req) = serde_json::from_slice::<brr_api::repos::BlobLookup>(&body) else {
        return error(StatusCode::BAD_REQUEST, "request.invalid", "bad body");
    };
    if req.ids.len() > brr_api::repos::MAX_LOOKUP_IDS {
        return error(StatusCode::BAD_REQUEST, "request.invalid", "too many IDs");
    }
    st.knobs.lookup_sizes.lock().unwrap().push(req.ids.len());
    let known = st.knobs.present_blobs.lock().unwrap();
    let present: Vec<bool> = req.ids.iter().map(|i| known.contains(i)).collect();
    let body = serde_json::to_string(&brr_api::repos::BlobPresence { present }).unwrap();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Starts a server in a thread of its own; it lives as long as the test process.
pub fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let knobs = Arc::new(Knobs::default());
    knobs.repos.lock().unwrap().push("r1".into());
    knobs.access.lock().unwrap().push("good".into());
    let st = St {
        knobs: knobs.clone(),
        root: dir.path().to_path_buf(),
    };
    let app = Router::new()
        .route("/api/v1/repos", post(create_repo))
        .route("/api/v1/repos/{repo}", get(repo_info))
        .route("/api/v1/repos/{repo}/files/{kind}", get(list))
        .route("/api/v1/repos/{repo}/files/{kind}/{name}", any(file))
        .route("/api/v1/repos/{repo}/blobs/lookup", post(lookup))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route(
            "/api/v1/auth/logout",
            post(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/api/v1/agents/enroll", post(enroll))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(st);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    TestServer {
        url: format!("http://{addr}"),
        knobs,
        _dir: dir,
    }
}
