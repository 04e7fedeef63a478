//! The credentials store: one TOML file, one entry per server URL, mode 0600.
//!
//! ```toml
//! [servers."https://backup.example.net"]
//! email = "ana@example.com"        # a user session (brr login)
//! access_token = "…"
//! refresh_token = "…"
//! ca_cert = "/etc/brr/provider-ca.pem"
//!
//! [servers."https://brrd.internal:8443"]
//! agent_id = "…"                    # an enrolled agent (brr agent enroll)
//! agent_token = "brra_…"
//! ```
//!
//! Writes go to a temporary file (created 0600) that is synced and renamed over the old one, so a
//! crash leaves the old or the new file. Changes that read, modify and write (login, refresh, logout)
//! hold an exclusive lock on `credentials.toml.lock`, so two `brr` processes refreshing one session
//! never both spend the same refresh token. A file readable by group or others is refused.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ClientError;

/// The credential stored for one server. Secrets are zeroized when the value is dropped and never
/// appear in its `Debug` output.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The account's e-mail (sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The session's access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The session's refresh token (rotates on every refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The agent's ID (enrolled machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The agent's own credential `brra_<id>_<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_token: Option<String>,
    /// A PEM file of extra trusted CA certificates for this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[zeroize(skip)]
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<hidden>");
        f.debug_struct("Entry")
            .field("email", &self.email)
            .field("access_token", &hidden(&self.access_token))
            .field("refresh_token", &hidden(&self.refresh_token))
            .field("agent_id", &self.agent_id)
            .field("agent_token", &hidden(&self.agent_token))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl Entry {
    /// Whether the entry holds a usable credential (a session or an agent token).
    pub fn has_credential(&self) -> bool {
        self.agent_token.is_some() || self.access_token.is_some()
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileData {
    #[serde(default)]
    servers: BTreeMap<String, Entry>,
}

/// The credentials file at a path.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

/// Holds the store's lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl CredentialStore {
    /// The store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CredentialStore { path: path.into() }
    }

    /// The default store: `$XDG_CONFIG_HOME/brr/credentials.toml`, else `~/.config/brr/credentials.toml`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
        Some(base.join("brr").join("credentials.toml"))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::Credentials {
            path: self.path.display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// Takes the exclusive lock that read-modify-write changes hold (blocks while another process
    /// holds it).
    pub fn lock(&self) -> Result<StoreLock, ClientError> {
        self.ensure_dir()?;
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| self.err(format!("cannot open its lock file: {e}")))?;
        file.lock()
            .map_err(|e| self.err(format!("cannot lock: {e}")))?;
        Ok(StoreLock { _file: file })
    }

    fn ensure_dir(&self) -> Result<(), ClientError> {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| self.err(format!("cannot create its folder: {e}")))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    fn load_all(&self) -> Result<FileData, ClientError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileData::default()),
            Err(e) => return Err(self.err(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(self.err(format!(
                "readable by other users (mode {mode:03o}): run `chmod 600 {}`",
                self.path.display()
            )));
        }
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(&self.path).map_err(|e| self.err(e))?);
        toml::from_str(&text).map_err(|e| self.err(format!("not valid: {}", e.message())))
    }

    fn save_all(&self, data: &FileData) -> Result<(), ClientError> {
        self.ensure_dir()?;
        let text = zeroize::Zeroizing::new(
            toml::to_string(data).map_err(|e| self.err(format!("cannot encode: {e}")))?,
        );
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err(format!("cannot write: {e}"))
        })
    }

    /// The entry for `server` (a normalised URL), if any.
    pub fn get(&self, server: &str) -> Result<Option<Entry>, ClientError> {
        Ok(self.load_all()?.servers.get(server).cloned())
    }

    /// Stores `entry` for `server`, replacing what was there. Callers that read first hold
    /// [`CredentialStore::lock`].
    pub fn put(&self, server: &str, entry: Entry) -> Result<(), ClientError> {
        let mut data = self.load_all()?;
        data.servers.insert(server.to_owned(), entry);
        self.save_all(&data)
    }

    /// Removes the entry of `server`; returns whether there was one.
    pub fn remove(&self, server: &str) -> Result<Option<Entry>, ClientError> {
        let mut data = self.load_all()?;
        let old = data.servers.remove(server);
        if old.is_some() {
            self.save_all(&data)?;
        }
        Ok(old)
    }

    /// The servers with an entry.
    pub fn servers(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.load_all()?.servers.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(token: &str) -> Entry {
        let mut e = Entry::default();
        e.email = Some("ana@example.com".into());
        e.access_token = Some(format!("access-{token}"));
        e.refresh_token = Some(format!("refresh-{token}"));
        e
    }

    #[test]
    fn round_trip_one_entry_per_server_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("brr/credentials.toml"));
        assert_eq!(store.get("https://a.test").unwrap(), None);
        store.put("https://a.test", session("1")).unwrap();
        let mut agent = Entry::default();
        agent.agent_id = Some("ag1".into());
        agent.agent_token = Some("brra_ag1_secret".into());
        agent.ca_cert = Some("/etc/ca.pem".into());
        store.put("https://b.test:8443", agent.clone()).unwrap();
        store.put("https://a.test", session("2")).unwrap();
        assert_eq!(store.get("https://a.test").unwrap(), Some(session("2")));
        assert_eq!(store.get("https://b.test:8443").unwrap(), Some(agent));
        assert_eq!(
            store.servers().unwrap(),
            ["https://a.test", "https://b.test:8443"]
        );
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = std::fs::metadata(dir.path().join("brr")).unwrap();
        assert_eq!(folder.permissions().mode() & 0o777, 0o700);
        assert!(store.remove("https://a.test").unwrap().is_some());
        assert!(store.remove("https://a.test").unwrap().is_none());
        assert_eq!(store.servers().unwrap(), ["https://b.test:8443"]);
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("brr"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["credentials.toml"]);
    }

    #[test]
    fn file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials.toml"));
        store.put("https://a.test", session("1")).unwrap();
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = store.get("https://a.test").unwrap_err();
        assert_eq!(err.code(), "BRR-N017");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn damaged_file_is_one_line_error_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(
            &path,
            "[servers.\"x\"]\nagent_token = \"brra_secret\"\nbogus = 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = CredentialStore::new(&path).get("x").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n') && !msg.contains("brra_secret"), "{msg}");
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", session("topsecret"));
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("ana@example.com"));
    }

    #[test]
    fn lock_is_exclusive_between_handles() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials.toml"));
        let held = store.lock().unwrap();
        let mut lock_path = store.path().to_path_buf().into_os_string();
        lock_path.push(".lock");
        let other = File::options().write(true).open(&lock_path).unwrap();
        assert!(other.try_lock().is_err(), "a second lock must wait");
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
