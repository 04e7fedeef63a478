//! The rustls server configuration: TLS 1.2 and 1.3 only, ECDHE key exchange, AEAD suites only.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::keys::TlsFiles;

/// The cipher suites offered: AEAD only, and for TLS 1.2 only ECDHE suites (forward secrecy).
pub fn cipher_suites() -> Vec<rustls::SupportedCipherSuite> {
    use provider::cipher_suite::*;
    vec![
        TLS13_AES_256_GCM_SHA384,
        TLS13_AES_128_GCM_SHA256,
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

/// The crypto provider restricted to [`cipher_suites`] and elliptic-curve (EC)DHE groups.
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    let mut p = provider::default_provider();
    p.cipher_suites = cipher_suites();
    p.kx_groups = vec![
        provider::kx_group::X25519MLKEM768,
        provider::kx_group::X25519,
        provider::kx_group::SECP256R1,
        provider::kx_group::SECP384R1,
    ];
    p
}

/// Builds the server configuration from PEM files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| Error::Config(format!("{}: {e}", files.cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Config(format!("{}: {e}", files.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| Error::Config(format!("{}: {e}", files.key.display())))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(Error::internal)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("TLS certificate/key: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Installs the aws-lc-rs provider as the process default (for clients such as SMTP and sqlx).
/// Harmless if one is installed already.
pub fn install_default_provider() {
    let _ = provider::default_provider().install_default();
}
