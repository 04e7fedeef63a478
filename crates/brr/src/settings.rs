//! Configuration file (TOML) with environment and flag overrides.
//!
//! Precedence: command-line flag > environment variable (BRR_*) > config file > built-in default.
//!
//! ```toml
//! repo = "/srv/backup"          # or, with `server`, the repository's name on the server
//! server = "https://backup.example.net"
//! ca_cert = "/etc/brr/provider-ca.pem"
//! password_file = "/etc/brr/password"
//! threads = 2
//! compression = "default"
//! exclude = ["*.tmp", "/home/*/.cache"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::context::CliError;

/// Settings from the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Repository location.
    pub repo: Option<String>,
    /// brrd server URL.
    pub server: Option<String>,
    /// Extra trusted CA certificates (PEM) for the server.
    pub ca_cert: Option<PathBuf>,
    /// Password file.
    pub password_file: Option<PathBuf>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// Default compression for backups.
    pub compression: Option<String>,
    /// Exclude patterns added to every backup.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
    let p = base.join("brr").join("config.toml");
    p.exists().then_some(p)
}

/// Loads the config file named on the command line / BRR_CONFIG, or the default one if present.
pub fn load(explicit: Option<&Path>) -> Result<FileSettings, CliError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) => p,
            None => return Ok(FileSettings::default()),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::usage(format!("config file {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| CliError::usage(format!("config file {}: {}", path.display(), e.message())))
}
