//! Starting brrd: open the database and keys, then serve the HTTPS API, the operations listener and
//! the optional redirect listener.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::clock::{OsRandom, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::http::{self, Metrics};
use crate::keys::{Keys, TlsFiles, self_signed};
use crate::mail::{Mailer, Outbox, Smtp};
use crate::service::{Deps, Service};

/// Production dependencies: the system clock, the OS random generator, and SMTP when configured or
/// the outbox directory otherwise.
pub fn default_deps(config: &Config) -> Result<Deps> {
    let mailer: Arc<dyn Mailer> = match &config.smtp {
        Some(smtp) => Arc::new(Smtp::new(smtp, &config.mail_from)?),
        None => Arc::new(Outbox::new(
            config.data_dir.join("outbox"),
            config.mail_from.clone(),
        )?),
    };
    Ok(Deps {
        clock: Arc::new(SystemClock),
        rng: Arc::new(OsRandom),
        mailer,
    })
}

/// Opens database (running migrations), keys and the service.
pub async fn open_service(config: Arc<Config>, deps: Deps) -> Result<Arc<Service>> {
    std::fs::create_dir_all(&config.data_dir)?;
    let db = Db::connect(&config.database_url()).await?;
    let keys = Arc::new(Keys::load_or_create(&config.keys_dir(), deps.rng.as_ref())?);
    Ok(Arc::new(Service::new(db, config, keys, deps)?))
}

/// A running server.
pub struct Running {
    /// Bound address of the HTTPS API.
    pub https_addr: SocketAddr,
    /// Bound address of the operations listener.
    pub ops_addr: SocketAddr,
    /// Bound address of the redirect listener, if any.
    pub redirect_addr: Option<SocketAddr>,
    /// Certificate and key in use.
    pub tls: TlsFiles,
    /// The service (tests use it to create staff accounts).
    pub service: Arc<Service>,
    handle: axum_server::Handle<SocketAddr>,
    stop: Arc<tokio::sync::Notify>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("https_addr", &self.https_addr)
            .finish()
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Starts every listener; returns once they are bound.
pub async fn start(config: Config, deps: Deps) -> Result<Running> {
    crate::tls::install_default_provider();
    config.validate()?;
    let config = Arc::new(config);
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => self_signed(&config.data_dir.join("tls"), &config.tls_names)?,
    };
    let tls_config = crate::tls::server_config(&tls)?;
    let svc = open_service(config.clone(), deps).await?;
    let metrics = Arc::new(Metrics::default());

    let https = bind(config.listen)?;
    let https_addr = https.local_addr()?;
    let ops = bind(config.ops_listen)?;
    let ops_addr = ops.local_addr()?;
    let redirect = config.http_redirect_listen.map(bind).transpose()?;
    let redirect_addr = redirect.as_ref().map(|l| l.local_addr()).transpose()?;

    let handle = axum_server::Handle::new();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();

    let app = http::app(svc.clone(), metrics.clone());
    let mut server = axum_server::from_tcp_rustls(
        https,
        axum_server::tls_rustls::RustlsConfig::from_config(tls_config),
    )?
    .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .header_read_timeout(std::time::Duration::from_secs(10));
    tasks.push(tokio::spawn(
        server.serve(app.into_make_service_with_connect_info::<SocketAddr>()),
    ));

    let plain = |listener: std::net::TcpListener,
                 app: axum::Router|
     -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let stop = stop.clone();
        Ok(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.notified().await })
                .await
        }))
    };
    tasks.push(plain(ops, http::ops::ops_app(svc.clone(), metrics))?);
    if config.maintenance.enabled {
        tasks.push(crate::service::scheduler::spawn(svc.clone(), stop.clone()));
    }
    if let Some(l) = redirect {
        tasks.push(plain(l, http::ops::redirect_app(https_addr.port()))?);
    }
    tracing::info!(%https_addr, %ops_addr, ?redirect_addr, database = ?svc.db.engine, "brrd listening");
    Ok(Running {
        https_addr,
        ops_addr,
        redirect_addr,
        tls,
        service: svc,
        handle,
        stop,
        tasks,
    })
}

impl Running {
    /// Waits until the listeners end (they end on [`Running::shutdown`] or an I/O error).
    pub async fn wait(self) -> Result<()> {
        for t in self.tasks {
            t.await.map_err(Error::internal)??;
        }
        Ok(())
    }

    /// Stops accepting connections and ends the listeners.
    pub async fn shutdown(self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        self.stop.notify_waiters();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
