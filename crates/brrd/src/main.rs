//! `brrd`: the service a provider runs in each site.
//!
//! ```text
//! brrd serve --data DIR                 # HTTPS API on 127.0.0.1:8443, ops on 127.0.0.1:9443
//! brrd admin bootstrap --email E        # first provider administrator; prints a one-time setup code
//! brrd admin add-staff --email E --role operator
//! brrd audit verify                     # exit status 1 when the audit chain was tampered with
//! brrd repo reindex --all               # rebuild the database's record of repositories from the store
//! brrd repo gc --all                    # garbage collection without the key
//! brrd repo verify --all                # scrub repositories without the key; exit status 1 on damage
//! brrd openapi                          # the OpenAPI document
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use brrd_server::Config;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "brrd",
    version,
    about = "brr service: tenants, identity, access control and audit over TLS"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options shared by every command; they override the config file and `BRRD_*` variables.
#[derive(Args)]
struct Common {
    /// TOML configuration file.
    #[arg(long, global = true, env = "BRRD_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, keys, generated certificate, mail outbox).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Database URL (`sqlite://…` or `postgres://…`); default SQLite in the data directory.
    #[arg(long, global = true)]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service.
    Serve(ServeArgs),
    /// Administration.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Repositories in the store.
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Args)]
struct ServeArgs {
    /// HTTPS listen address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Operations listener (/healthz, /readyz, /metrics; plain HTTP).
    #[arg(long)]
    ops_listen: Option<SocketAddr>,
    /// Plain-HTTP listener that redirects to HTTPS.
    #[arg(long)]
    http_redirect: Option<SocketAddr>,
    /// PEM certificate chain (default: self-signed, generated into DATA/tls).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create the first provider administrator (once) and print a one-time setup code.
    Bootstrap {
        /// The administrator's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Create a provider staff account and print its one-time setup code.
    AddStaff {
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// provider_admin, operator or security_officer.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum RepoCmd {
    /// Rebuild the database's record (packs, blobs, snapshots, sizes) of repositories from their
    /// files; run it while they are idle. Exit status 1 if a file did not decode.
    Reindex {
        /// The repository id.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        repo: Option<String>,
        /// Every repository.
        #[arg(long)]
        all: bool,
    },
    /// Collect garbage in repositories without the key (two-phase, safe against running backups;
    /// packs are deleted once no session that could use them runs). Prints one JSON report per line.
    /// Run it while `brrd serve` is stopped: the exclusion between GC sweeps and snapshot uploads is
    /// held inside one process (a running server collects on its schedule and on
    /// `POST /repos/{repo}/gc`).
    Gc {
        /// The repository id.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        repo: Option<String>,
        /// Every repository.
        #[arg(long)]
        all: bool,
    },
    /// Scrub repositories without the key: rehash every file against its name, parse every
    /// structure, name the snapshots a damaged or missing pack affects. Exit status 1 on damage.
    Verify {
        /// The repository id.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        repo: Option<String>,
        /// Every repository.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the hash chain and check the signed checkpoints.
    Verify,
}

fn load_config(common: &Common) -> brrd_server::Result<Config> {
    let mut config = Config::load(common.config.as_deref(), std::env::vars())?;
    if let Some(d) = &common.data {
        config.data_dir = d.clone();
    }
    if let Some(db) = &common.database {
        config.database = Some(db.clone());
    }
    Ok(config)
}

/// Opens the service for a `brrd repo …` command and lists the repositories it names: `--repo ID`, or
/// every repository with `--all`.
async fn service_and_repos(
    config: Config,
    repo: Option<String>,
    all: bool,
) -> brrd_server::Result<(Arc<brrd_server::service::Service>, Vec<String>)> {
    let deps = brrd_server::server::default_deps(&config)?;
    let svc = brrd_server::server::open_service(Arc::new(config), deps).await?;
    let ids = match repo {
        Some(id) if !all => vec![id],
        _ => svc.all_repo_ids().await?,
    };
    Ok((svc, ids))
}

async fn run(cli: Cli) -> brrd_server::Result<ExitCode> {
    let mut config = load_config(&cli.common)?;
    match cli.cmd {
        Cmd::Serve(a) => {
            if let Some(v) = a.listen {
                config.listen = v;
            }
            if let Some(v) = a.ops_listen {
                config.ops_listen = v;
            }
            if a.http_redirect.is_some() {
                config.http_redirect_listen = a.http_redirect;
            }
            if a.tls_cert.is_some() {
                config.tls_cert = a.tls_cert;
                config.tls_key = a.tls_key;
            }
            // Refused credentials or a missing bucket stop the start (exit status 3); a store that
            // does not answer yet is only a warning (requests answer 503 until it does).
            match brrd_server::service::repos::store::check_store(&config.store_url()).await {
                Err(brrd_server::Error::StoreUnavailable(detail)) => {
                    tracing::warn!(error = %detail, "the repository store does not answer at start-up");
                }
                other => other?,
            }
            let deps = brrd_server::server::default_deps(&config)?;
            let running = brrd_server::server::start(config, deps).await?;
            eprintln!(
                "brrd: https://{} (ops http://{})",
                running.https_addr, running.ops_addr
            );
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("brrd: shutting down");
            running.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Admin(cmd) => {
            let deps = brrd_server::server::default_deps(&config)?;
            let svc = brrd_server::server::open_service(Arc::new(config), deps).await?;
            let (email, code) = match cmd {
                AdminCmd::Bootstrap { email } => {
                    let code = svc.bootstrap(&email).await?;
                    (email, code)
                }
                AdminCmd::AddStaff { email, role } => {
                    let role = brr_api_role(&role)?;
                    let code = svc.create_staff(&email, role).await?;
                    (email, code)
                }
            };
            println!("setup code for {email}: {code}");
            println!(
                "valid 24 hours, once: POST /api/v1/auth/setup {{\"email\",\"code\",\"password\"}}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit(AuditCmd::Verify) => {
            let deps = brrd_server::server::default_deps(&config)?;
            let svc = brrd_server::server::open_service(Arc::new(config), deps).await?;
            let report = svc.audit.verify().await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(brrd_server::Error::internal)?
            );
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Repo(RepoCmd::Reindex { repo, all }) => {
            let (svc, ids) = service_and_repos(config, repo, all).await?;
            let mut damaged = false;
            for id in ids {
                let report = svc.reindex_repo(&id).await?;
                damaged |= !report.unreadable.is_empty();
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(brrd_server::Error::internal)?
                );
            }
            Ok(if damaged {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Repo(RepoCmd::Verify { repo, all }) => {
            let (svc, ids) = service_and_repos(config, repo, all).await?;
            let mut damaged = false;
            for id in ids {
                let report = svc.verify_repo_by_id(&id).await?;
                damaged |= !report.ok;
                println!(
                    "{}",
                    serde_json::to_string(&serde_json::json!({"repo_id": id, "report": report}))
                        .map_err(brrd_server::Error::internal)?
                );
            }
            Ok(if damaged {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Repo(RepoCmd::Gc { repo, all }) => {
            let (svc, ids) = service_and_repos(config, repo, all).await?;
            let mut failed = false;
            for id in ids {
                match svc.collect_garbage_by_id(&id).await {
                    Ok(report) => println!(
                        "{}",
                        serde_json::to_string(
                            &serde_json::json!({"repo_id": id, "report": report})
                        )
                        .map_err(brrd_server::Error::internal)?
                    ),
                    Err(brrd_server::Error::Conflict(m)) => eprintln!("brrd: repository {id}: {m}"),
                    Err(e) => {
                        failed = true;
                        eprintln!("brrd: repository {id}: {e}");
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Openapi => {
            println!("{}", brrd_server::http::openapi::openapi_json_string());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn brr_api_role(s: &str) -> brrd_server::Result<brrd_server::service::RoleName> {
    brrd_server::service::RoleName::parse(s).ok_or_else(|| {
        brrd_server::Error::invalid("role must be provider_admin, operator or security_officer")
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brrd: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(brrd_server::Error::StoreRefused {
            refusal, location, ..
        }) => {
            let at = if location.is_empty() {
                String::new()
            } else {
                format!("store.url {location}: ")
            };
            eprintln!("brrd: error[store_refused]: {at}{}", refusal.describe());
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("brrd: error[{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}
