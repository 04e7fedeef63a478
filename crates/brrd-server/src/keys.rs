//! Key material kept on disk: the Ed25519 keys that sign access tokens and audit checkpoints, the PIN
//! pepper, and the generated self-signed TLS certificate. Files are created once with mode 0600.

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

use crate::clock::{Random, random_bytes};
use crate::error::{Error, Result};

/// The service's secret keys.
pub struct Keys {
    /// Signs access tokens (PKCS#8 v2 DER).
    pub jwt_pkcs8: Vec<u8>,
    /// Signs audit checkpoints.
    pub audit: Ed25519KeyPair,
    /// Keys the HMAC of PINs and setup codes.
    pub pepper: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Loads the keys from `dir`, creating missing ones.
    pub fn load_or_create(dir: &Path, rng: &dyn Random) -> Result<Keys> {
        create_private_dir(dir)?;
        let jwt_pkcs8 = load_or_create_file(&dir.join("jwt-ed25519.pk8"), new_ed25519)?;
        let audit_pkcs8 = load_or_create_file(&dir.join("audit-ed25519.pk8"), new_ed25519)?;
        let pepper = load_or_create_file(&dir.join("pin-pepper"), || Ok(random_bytes(rng, 32)))?;
        let audit = Ed25519KeyPair::from_pkcs8(&audit_pkcs8).map_err(Error::internal)?;
        Ed25519KeyPair::from_pkcs8(&jwt_pkcs8).map_err(Error::internal)?;
        Ok(Keys {
            jwt_pkcs8,
            audit,
            pepper,
        })
    }

    /// The raw public key of the JWT signing key.
    pub fn jwt_public(&self) -> Result<Vec<u8>> {
        let kp = Ed25519KeyPair::from_pkcs8(&self.jwt_pkcs8).map_err(Error::internal)?;
        Ok(kp.public_key().as_ref().to_vec())
    }
}

fn new_ed25519() -> Result<Vec<u8>> {
    let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
        .map_err(Error::internal)?;
    Ok(doc.as_ref().to_vec())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn load_or_create_file(path: &Path, make: impl FnOnce() -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = make()?;
            write_private(path, &bytes)?;
            Ok(bytes)
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes a file readable only by the owner (created exclusively: never overwrites).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Paths of a TLS certificate chain and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Returns `<dir>/cert.pem` and `<dir>/key.pem`, generating a self-signed certificate for
/// `localhost`, `127.0.0.1`, `::1` and `extra_names` if they do not exist yet.
pub fn self_signed(dir: &Path, extra_names: &[String]) -> Result<TlsFiles> {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    create_private_dir(dir)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_names.iter().cloned());
    let ck = rcgen::generate_simple_self_signed(names).map_err(Error::internal)?;
    write_private(&files.key, ck.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, ck.cert.pem())?;
    Ok(files)
}
