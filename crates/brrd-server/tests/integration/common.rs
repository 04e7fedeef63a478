//! The test harness: start a server on free ports with a manual clock, a client trusting its
//! certificate, and helpers to sign up and log in through the API.

use std::path::PathBuf;
use std::sync::Arc;

use brrd_server::clock::{ManualClock, OsRandom};
use brrd_server::config::Config;
use brrd_server::mail::Outbox;
use brrd_server::server::{Running, start};
use brrd_server::service::Deps;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "Corr3ct-Horse-Battery";

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// SQLite always; PostgreSQL when `BRR_TEST_POSTGRES_URL` is set. In CI a missing URL is a failure.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    match std::env::var("BRR_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => v.push(Backend::Postgres(url)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but BRR_TEST_POSTGRES_URL is not: run `eval \"$(bash .ci/postgres.sh)\"` first"
            )
        }
        _ => eprintln!("notice: BRR_TEST_POSTGRES_URL unset, skipping the PostgreSQL run"),
    }
    v
}

/// Where a test server keeps its repositories.
#[derive(Debug, Clone)]
pub enum Store {
    /// `<data_dir>/repos`, the default.
    Folder,
    /// A fresh key prefix per server in the bucket of this `s3:` location (`.ci/s3.sh`).
    S3(String),
}

/// A database crossed with a repository store.
#[derive(Debug, Clone)]
pub struct Setup {
    pub db: Backend,
    pub store: Store,
}

impl From<&Backend> for Setup {
    fn from(db: &Backend) -> Self {
        Setup {
            db: db.clone(),
            store: Store::Folder,
        }
    }
}

impl From<&Setup> for Setup {
    fn from(s: &Setup) -> Self {
        s.clone()
    }
}

/// The `s3:` bucket location of the test S3 server, when `BRR_TEST_S3_ENDPOINT` is set. brrd reads S3
/// credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION`, which must then be
/// the test server's (`scripts/test.sh` exports them). Without a server the S3 runs are skipped with a
/// notice, unless `BRR_REQUIRE_S3` or `CI` is set.
pub fn s3_store() -> Option<Store> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let required = var("BRR_REQUIRE_S3").is_some() || std::env::var_os("CI").is_some();
    let Some(endpoint) = var("BRR_TEST_S3_ENDPOINT") else {
        assert!(
            !required,
            "BRR_REQUIRE_S3 or CI is set but BRR_TEST_S3_ENDPOINT is not: run `eval \"$(bash .ci/s3.sh)\"` first"
        );
        eprintln!("notice: BRR_TEST_S3_ENDPOINT unset, skipping the S3 store runs");
        return None;
    };
    let bucket = var("BRR_TEST_S3_BUCKET")
        .expect("BRR_TEST_S3_ENDPOINT is set but BRR_TEST_S3_BUCKET is not");
    let key = var("BRR_TEST_S3_ACCESS_KEY");
    if key.is_none()
        || var("AWS_ACCESS_KEY_ID") != key
        || var("AWS_SECRET_ACCESS_KEY") != var("BRR_TEST_S3_SECRET_KEY")
    {
        let msg = "the S3 store runs need AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION set to BRR_TEST_S3_ACCESS_KEY, BRR_TEST_S3_SECRET_KEY and BRR_TEST_S3_REGION (scripts/test.sh exports them)";
        assert!(!required, "{msg}");
        eprintln!("notice: {msg}; skipping the S3 store runs");
        return None;
    }
    Some(Store::S3(format!(
        "s3:{}/{bucket}",
        endpoint.trim_end_matches('/')
    )))
}

/// Every database crossed with every store: SQLite and (when configured) PostgreSQL, each on a folder
/// store and (when configured) on S3.
pub fn store_setups() -> Vec<Setup> {
    let dbs = backends();
    let mut stores = vec![Store::Folder];
    stores.extend(s3_store());
    stores
        .iter()
        .flat_map(|store| {
            dbs.iter().map(|db| Setup {
                db: db.clone(),
                store: store.clone(),
            })
        })
        .collect()
}

/// A fresh database on the PostgreSQL server of `base_url`.
async fn fresh_postgres(base_url: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(base_url).await.unwrap();
    let name = format!("brr_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (prefix, _) = base_url.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

pub struct TestServer {
    pub running: Running,
    pub client: reqwest::Client,
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub outbox: PathBuf,
    pub database_url: String,
    /// Keeps the data directory alive as long as the server.
    pub _data: tempfile::TempDir,
}

/// A server on `setup` (a [`Backend`] with a folder store, or a [`Setup`]); `tweak` adjusts its config.
pub async fn start_server(setup: impl Into<Setup>, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let setup: Setup = setup.into();
    let db = match setup.db {
        Backend::Sqlite => "SQLite",
        Backend::Postgres(_) => "PostgreSQL",
    };
    let store = match setup.store {
        Store::Folder => "folder",
        Store::S3(_) => "S3",
    };
    eprintln!("test server: {db} database, {store} store");
    let backend = &setup.db;
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: data.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ops_listen: "127.0.0.1:0".parse().unwrap(),
        http_redirect_listen: Some("127.0.0.1:0".parse().unwrap()),
        open_registration: true,
        ..Config::default()
    };
    if let Backend::Postgres(url) = backend {
        config.database = Some(fresh_postgres(url).await);
    }
    if let Store::S3(bucket) = &setup.store {
        config.store.url = Some(format!(
            "{bucket}/brrd-test/{}",
            uuid::Uuid::new_v4().simple()
        ));
    }
    tweak(&mut config);
    let database_url = config.database_url();
    let clock = Arc::new(ManualClock::starting_now());
    let outbox = data.path().join("outbox");
    let deps = Deps {
        clock: clock.clone(),
        rng: Arc::new(OsRandom),
        mailer: Arc::new(Outbox::new(outbox.clone(), "brrd@test.invalid".into()).unwrap()),
    };
    let running = start(config, deps).await.unwrap();
    let client = client_trusting(&running.tls.cert);
    let base = format!("https://localhost:{}", running.https_addr.port());
    TestServer {
        running,
        client,
        base,
        clock,
        outbox,
        database_url,
        _data: data,
    }
}

/// A reqwest client whose only trust anchor is the server's certificate.
pub fn client_trusting(cert: &std::path::Path) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap()
}

impl TestServer {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// The PIN of the newest mail to `email` in the outbox.
    pub fn pin_for(&self, email: &str) -> String {
        let mut files: Vec<_> = std::fs::read_dir(&self.outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().rev() {
            let text = std::fs::read_to_string(f).unwrap();
            if text.contains(&format!("To: {email}\r\n"))
                && let Some(rest) = text.split("PIN: ").nth(1)
            {
                return rest[..6].to_string();
            }
        }
        panic!("no PIN mailed to {email}");
    }

    /// Open registration of a new company with `email` as its administrator; returns its id.
    pub async fn register_company(&self, email: &str, company: &str, site: &str) -> String {
        let (s, b) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "display_name": email, "company_name": company, "site": site}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        self.verify(email).await;
        let tok = self.login(email).await;
        let (_, me) = self.get("/api/v1/me", &tok).await;
        me["company_id"].as_str().unwrap().to_string()
    }

    /// Accepts an invitation already sent to `email`.
    pub async fn accept_invitation(&self, email: &str) {
        let (s, b) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "display_name": email}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        self.verify(email).await;
    }

    pub async fn verify(&self, email: &str) {
        let pin = self.pin_for(email);
        let (s, b) = self
            .post(
                "/api/v1/auth/register/verify",
                None,
                json!({"email": email, "pin": pin}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    pub async fn login_full(&self, email: &str) -> Value {
        let (s, b) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    pub async fn login(&self, email: &str) -> String {
        self.login_full(email).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates provider staff through the service and sets their password via `/auth/setup`.
    pub async fn staff(&self, email: &str, role: brr_api::identity::Role) -> String {
        let code = if role == brr_api::identity::Role::ProviderAdmin {
            self.running.service.bootstrap(email).await.unwrap()
        } else {
            self.running
                .service
                .create_staff(email, role)
                .await
                .unwrap()
        };
        let (s, b) = self
            .post(
                "/api/v1/auth/setup",
                None,
                json!({"email": email, "code": code, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        self.login(email).await
    }
}
