//! Configuration: embedded defaults, a TOML file, then `BRRD_*` environment overrides.
//!
//! Every top-level key `foo_bar` can be overridden with `BRRD_FOO_BAR`; nested keys use a double
//! underscore (`BRRD_SMTP__HOST`). Values are parsed as TOML (`true`, `42`, `["10.0.0.1"]`) and fall
//! back to a plain string.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole configuration of one brrd node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database, generated keys and certificate, and the mail outbox.
    pub data_dir: PathBuf,
    /// HTTPS listener of the API.
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener that only redirects to HTTPS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// Plain-HTTP listener for `/healthz`, `/readyz` and `/metrics` (keep it on a private address).
    pub ops_listen: SocketAddr,
    /// Database URL; default `sqlite://<data_dir>/brrd.db`. `postgres://…` selects PostgreSQL.
    pub database: Option<String>,
    /// PEM certificate chain; default: a self-signed certificate generated into `<data_dir>/tls`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Extra host names or IP addresses put into a generated certificate.
    pub tls_names: Vec<String>,
    /// Directory of the signing keys (JWT, audit checkpoints, PIN pepper); default `<data_dir>/keys`.
    /// Several nodes sharing one database must share these keys.
    pub keys_dir: Option<PathBuf>,
    /// JWT issuer (`iss`) and audience (`aud`).
    pub issuer: String,
    /// Whether anyone may register a new company without an invitation.
    pub open_registration: bool,
    /// Minimum password length (never below 8).
    pub password_min_length: usize,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: i64,
    /// Refresh-token lifetime in seconds.
    pub refresh_token_ttl_secs: i64,
    /// Lifetime of e-mailed PINs in seconds (at most 600).
    pub pin_ttl_secs: i64,
    /// Wrong PIN entries allowed per PIN (at most 5).
    pub pin_max_attempts: i64,
    /// Lifetime of invitations in seconds.
    pub invitation_ttl_secs: i64,
    /// Failed logins per account before it is locked.
    pub account_max_failures: i64,
    /// Failed attempts per client address before it is throttled.
    pub ip_max_failures: i64,
    /// Window and lock duration of both throttles, in seconds.
    pub lockout_secs: i64,
    /// Peers whose `X-Forwarded-For` is believed; the header is ignored from anyone else.
    pub trusted_proxies: Vec<IpAddr>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Per-request timeout in seconds.
    pub request_timeout_secs: u64,
    /// A signed audit checkpoint is written every this many entries.
    pub audit_checkpoint_every: i64,
    /// Sender address of mails.
    pub mail_from: String,
    /// SMTP relay; when absent, mails are written as `.eml` files to `<data_dir>/outbox`.
    pub smtp: Option<SmtpConfig>,
    /// The repository store (`[store]`).
    pub store: StoreConfig,
    /// Server-side retention, garbage collection and scrubs (`[maintenance]`).
    pub maintenance: crate::service::scheduler::MaintenanceConfig,
}

/// Where and how repositories are stored (`[store]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Any `brr_storage::open_url` location (a folder, `s3:https://HOST/BUCKET/PREFIX`); default
    /// `<data_dir>/repos`. A repository lives at `<company id>/<repository id>/` inside it.
    pub url: Option<String>,
    /// Largest accepted file upload in bytes (a body is held in memory while it is checked).
    pub max_upload_bytes: u64,
    /// Uploads processed at once; further uploads wait.
    pub max_concurrent_uploads: usize,
    /// Time allowed for one file upload or download, in seconds (other requests get
    /// `request_timeout_secs`).
    pub upload_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            max_upload_bytes: (1 << 30) + 64 * 1024,
            max_concurrent_uploads: 4,
            upload_timeout_secs: 3600,
        }
    }
}

/// An SMTP relay (implicit TLS or STARTTLS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name.
    pub host: String,
    /// Port (default 587 with STARTTLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Use implicit TLS (port 465) instead of STARTTLS.
    #[serde(default)]
    pub implicit_tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("brrd-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_redirect_listen: None,
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            database: None,
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            keys_dir: None,
            issuer: "brrd".into(),
            open_registration: false,
            password_min_length: 12,
            access_token_ttl_secs: 600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            pin_ttl_secs: 600,
            pin_max_attempts: 5,
            invitation_ttl_secs: 7 * 24 * 3600,
            account_max_failures: 5,
            ip_max_failures: 50,
            lockout_secs: 900,
            trusted_proxies: Vec::new(),
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            audit_checkpoint_every: 100,
            mail_from: "brrd@localhost".into(),
            smtp: None,
            store: StoreConfig::default(),
            maintenance: Default::default(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `BRRD_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env);
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks limits that keep the service secure.
    pub fn validate(&self) -> Result<()> {
        if self.password_min_length < 8 {
            return Err(Error::Config(
                "password_min_length must be at least 8".into(),
            ));
        }
        if !(1..=600).contains(&self.pin_ttl_secs) {
            return Err(Error::Config("pin_ttl_secs must be 1..=600".into()));
        }
        if !(1..=5).contains(&self.pin_max_attempts) {
            return Err(Error::Config("pin_max_attempts must be 1..=5".into()));
        }
        if self.access_token_ttl_secs < 1 || self.access_token_ttl_secs > 3600 {
            return Err(Error::Config(
                "access_token_ttl_secs must be 1..=3600".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config("tls_cert and tls_key go together".into()));
        }
        if self.audit_checkpoint_every < 1 {
            return Err(Error::Config(
                "audit_checkpoint_every must be positive".into(),
            ));
        }
        self.maintenance.validate()?;
        if self.store.max_upload_bytes < 1024 {
            return Err(Error::Config(
                "store.max_upload_bytes must be at least 1024".into(),
            ));
        }
        if self.store.upload_timeout_secs == 0 {
            return Err(Error::Config(
                "store.upload_timeout_secs must be positive".into(),
            ));
        }
        if self.store.max_concurrent_uploads == 0 {
            return Err(Error::Config(
                "store.max_concurrent_uploads must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The repository store location in effect.
    pub fn store_url(&self) -> String {
        self.store
            .url
            .clone()
            .unwrap_or_else(|| self.data_dir.join("repos").display().to_string())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("brrd.db").display()
            ),
        }
    }

    /// The key directory in effect.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }
}

fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("BRRD_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        set_path(table, &path, value);
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_parses_types() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("brrd.toml");
        std::fs::write(&f, "open_registration = false\npassword_min_length = 14\n").unwrap();
        let env = vec![
            ("BRRD_OPEN_REGISTRATION".to_string(), "true".to_string()),
            ("BRRD_LISTEN".to_string(), "0.0.0.0:9000".to_string()),
            ("BRRD_SMTP__HOST".to_string(), "mail.example".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::load(Some(&f), env).unwrap();
        assert!(c.open_registration);
        assert_eq!(c.password_min_length, 14);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.smtp.unwrap().host, "mail.example");
    }

    #[test]
    fn insecure_values_are_refused() {
        let env = vec![("BRRD_PIN_TTL_SECS".to_string(), "3600".to_string())];
        assert!(Config::load(None, env).is_err());
        let env = vec![("BRRD_UNKNOWN_KEY".to_string(), "1".to_string())];
        assert!(Config::load(None, env).is_err());
    }
}
