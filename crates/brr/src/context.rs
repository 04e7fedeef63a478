//! What every command needs: errors with exit codes, the repository location, the secret, opening.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use brr_client::{
    Client, ClientError, ClientOptions, Credential, CredentialStore, RemoteBackend, ServerUrl,
};
use brr_core::keyslot::Unlock;
use brr_engine::{EngineError, Repository};
use zeroize::Zeroizing;

use crate::cli::GlobalArgs;
use crate::settings::FileSettings;

/// An error of the CLI: an engine error, or a usage problem found by the CLI itself.
#[derive(Debug)]
pub enum CliError {
    /// From the engine.
    Engine(EngineError),
    /// From the brrd server or the way to it (exit codes 20–25, docs/cli.md).
    Server(ClientError),
    /// Bad usage (exit 2).
    Usage(String),
    /// Anything else (exit 1).
    Other(String),
}

impl CliError {
    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }

    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Engine(e) => e.code(),
            CliError::Server(e) => e.code(),
            CliError::Usage(_) => "BRR-U001",
            CliError::Other(_) => "BRR-U002",
        }
    }

    /// Process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Engine(e) => e.exit_code(),
            CliError::Server(e) => e.exit_code(),
            CliError::Usage(_) => 2,
            CliError::Other(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Engine(e) => write!(f, "{e}"),
            CliError::Server(e) => write!(f, "{e}"),
            CliError::Usage(m) | CliError::Other(m) => f.write_str(m),
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        CliError::Engine(e)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Server(e)
    }
}

impl From<brr_core::CoreError> for CliError {
    fn from(e: brr_core::CoreError) -> Self {
        CliError::Engine(e.into())
    }
}

impl From<brr_storage::StorageError> for CliError {
    fn from(e: brr_storage::StorageError) -> Self {
        CliError::Engine(e.into())
    }
}

/// Resolved global settings.
pub struct Context {
    /// Flags.
    pub global: GlobalArgs,
    /// Config file.
    pub file: FileSettings,
    /// The server repository, once opened (its refusals explain storage errors).
    pub remote: OnceLock<Arc<RemoteBackend>>,
}

/// The secret that opens a repository.
pub enum Secret {
    /// A password.
    Password(Zeroizing<String>),
    /// A recovery key.
    Recovery(Zeroizing<String>),
    /// An RSA private key PEM.
    Rsa(Zeroizing<String>),
}

impl Secret {
    /// As the core's unlock value.
    pub fn unlock(&self) -> Unlock<'_> {
        match self {
            Secret::Password(p) => Unlock::Password(p.as_bytes()),
            Secret::Recovery(k) => Unlock::RecoveryKey(k),
            Secret::Rsa(pem) => Unlock::RsaPrivateKeyPem(pem),
        }
    }
}

fn read_secret_file(path: &Path, first_line: bool) -> Result<Zeroizing<String>, CliError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?,
    );
    let value = if first_line {
        text.lines().next().unwrap_or("").to_string()
    } else {
        text.to_string()
    };
    if value.is_empty() {
        return Err(CliError::usage(format!("{} is empty", path.display())));
    }
    Ok(Zeroizing::new(value))
}

impl Context {
    /// The repository location, or a usage error explaining how to give one.
    pub fn repo_location(&self) -> Result<String, CliError> {
        self.global
            .repo
            .clone()
            .or_else(|| self.file.repo.clone())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| CliError::usage("no repository given: use --repo DIR or set BRR_REPO"))
    }

    /// The storage backend: the named repository on the server with --server, else the location.
    pub fn backend(&self) -> Result<Arc<dyn brr_storage::Backend>, CliError> {
        if self.server()?.is_some() {
            return Ok(self.remote()?);
        }
        Ok(brr_storage::open_url(&self.repo_location()?)?)
    }

    /// The server given by --server, BRR_SERVER or the config file, if any.
    pub fn server(&self) -> Result<Option<ServerUrl>, CliError> {
        match self
            .global
            .server
            .as_deref()
            .or(self.file.server.as_deref())
            .filter(|s| !s.is_empty())
        {
            Some(s) => Ok(Some(ServerUrl::parse(s)?)),
            None => Ok(None),
        }
    }

    /// The server, or a usage error naming the command that needs one.
    pub fn require_server(&self, command: &str) -> Result<ServerUrl, CliError> {
        self.server()?.ok_or_else(|| {
            CliError::usage(format!(
                "{command} needs a server: use --server https://HOST or set BRR_SERVER"
            ))
        })
    }

    /// The credentials store.
    pub fn credential_store(&self) -> Result<CredentialStore, CliError> {
        CredentialStore::default_path()
            .map(CredentialStore::new)
            .ok_or_else(|| {
                CliError::usage("no place for the credentials file: set HOME or XDG_CONFIG_HOME")
            })
    }

    /// Client options: --ca-cert / BRR_CA_CERT, the config file's `ca_cert`, else `stored` (the CA
    /// remembered at login or enrolment).
    pub fn client_options(&self, stored: Option<PathBuf>) -> ClientOptions {
        ClientOptions {
            // Absolute, so the path remembered at login or enrolment works from any folder.
            ca_cert: self
                .global
                .ca_cert
                .clone()
                .or_else(|| self.file.ca_cert.clone())
                .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
                .or(stored),
            ..ClientOptions::default()
        }
    }

    /// A client of the server with the stored credential (or BRR_SERVER_TOKEN).
    pub fn client(&self, server: &ServerUrl) -> Result<Client, CliError> {
        let store = self.credential_store()?;
        let entry = store.get(server.as_str())?.unwrap_or_default();
        let credential = match std::env::var("BRR_SERVER_TOKEN") {
            Ok(t) if !t.is_empty() => Credential::Token(Zeroizing::new(t)),
            _ => Client::credential_for(&store, server, &entry)?,
        };
        let options = self.client_options(entry.ca_cert.clone());
        Ok(Client::new(server, credential, &options)?)
    }

    /// The repository named by --repo on the server (opened once per process).
    pub fn remote(&self) -> Result<Arc<RemoteBackend>, CliError> {
        if let Some(r) = self.remote.get() {
            return Ok(r.clone());
        }
        let server = self.require_server("this command")?;
        let name = self
            .global
            .repo
            .clone()
            .or_else(|| self.file.repo.clone())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                CliError::usage("no repository given: with --server, --repo NAME names the repository on the server")
            })?;
        brr_client::validate_repo_name(&name)?;
        let client = Arc::new(self.client(&server)?);
        let remote = Arc::new(RemoteBackend::new(client, &name)?);
        Ok(self.remote.get_or_init(|| remote).clone())
    }

    /// The refusal the server gave, if a server repository was used and refused something.
    pub fn server_refusal(&self) -> Option<ClientError> {
        self.remote.get().and_then(|r| r.refusal())
    }

    /// Worker threads.
    pub fn threads(&self) -> Option<usize> {
        self.global.threads.or(self.file.threads)
    }

    /// The secret for opening: recovery key file, RSA key file, password file, BRR_PASSWORD, or a prompt.
    pub fn secret(&self) -> Result<Secret, CliError> {
        if let Some(p) = &self.global.recovery_key_file {
            return Ok(Secret::Recovery(read_secret_file(p, false)?));
        }
        if let Some(p) = &self.global.rsa_private_key {
            return Ok(Secret::Rsa(read_secret_file(p, false)?));
        }
        Ok(Secret::Password(self.password("repository password: ")?))
    }

    /// The password: --password-file / BRR_PASSWORD_FILE, config password_file, BRR_PASSWORD, or a prompt.
    pub fn password(&self, prompt: &str) -> Result<Zeroizing<String>, CliError> {
        if let Some(p) = self
            .global
            .password_file
            .as_ref()
            .or(self.file.password_file.as_ref())
        {
            return read_secret_file(p, true);
        }
        if let Ok(pw) = std::env::var("BRR_PASSWORD") {
            if pw.is_empty() {
                return Err(CliError::usage("BRR_PASSWORD is set but empty"));
            }
            return Ok(Zeroizing::new(pw));
        }
        prompt_password(prompt)
    }

    /// A new password (init, key add, key passwd): from `file`, BRR_NEW_PASSWORD, or prompted twice.
    /// For `init`, the usual password sources are used when no new-password source is given.
    pub fn new_password(
        &self,
        file: Option<&Path>,
        for_init: bool,
    ) -> Result<Zeroizing<String>, CliError> {
        if let Some(p) = file {
            return read_secret_file(p, true);
        }
        if let Ok(pw) = std::env::var("BRR_NEW_PASSWORD")
            && !pw.is_empty()
        {
            return Ok(Zeroizing::new(pw));
        }
        if for_init
            && (self.global.password_file.is_some()
                || self.file.password_file.is_some()
                || std::env::var("BRR_PASSWORD").is_ok())
        {
            return self.password("");
        }
        let first = prompt_password("new password: ")?;
        let second = prompt_password("repeat new password: ")?;
        if first.as_str() != second.as_str() {
            return Err(CliError::usage("the passwords do not match"));
        }
        Ok(first)
    }

    /// Opens the repository.
    pub fn open(&self) -> Result<Arc<Repository>, CliError> {
        let backend = self.backend()?;
        let secret = self.secret()?;
        Ok(Arc::new(Repository::open(backend, &secret.unlock())?))
    }
}

fn prompt_password(prompt: &str) -> Result<Zeroizing<String>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no password given: set BRR_PASSWORD or BRR_PASSWORD_FILE, or use --password-file (no terminal to prompt on)",
        ));
    }
    let pw = Zeroizing::new(
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::Other(format!("reading password: {e}")))?,
    );
    if pw.is_empty() {
        return Err(CliError::usage("empty password"));
    }
    Ok(pw)
}
