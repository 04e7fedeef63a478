//! Key slots: the repository master key, wrapped once per password, recovery key or RSA escrow key.
//!
//! A key slot is a JSON file `keys/<id>` (id = BLAKE3 of its bytes). It holds the master key sealed with
//! AES-256-GCM under a key-encryption key (KEK) that only the slot's secret yields:
//!
//! | kind | KEK |
//! |---|---|
//! | `password` | Argon2id(password, salt, m, t, p) → 32 bytes (default m = 64 MiB, t = 3, p = 4: RFC 9106's second recommendation) |
//! | `recovery` | BLAKE3-derive("brr 2026 recovery kek v1", salt ‖ recovery key), the recovery key being 256 random bits printed as hex |
//! | `rsa` | 256 random bits, stored RSA-OAEP-SHA-256-encrypted to an escrow public key (≥ 2048 bits) |
//!
//! The sealed master key's AAD is `"brr key slot v1" ‖ repository id ‖ 0x00 ‖ kind`, so a slot cannot be moved to
//! another repository or relabelled. Opening tries every slot; a wrong secret fails AEAD authentication,
//! which is how a wrong password is recognised.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, FixedOffset};
use rand::RngCore;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::{DataKey, KEY_LEN, MasterKey, SecretKey};
use crate::error::{CoreError, FormatError, Result};
use crate::id::{Id, KeySlotId};

/// Key slot format version.
pub const KEY_SLOT_VERSION: u32 = 1;
/// Smallest RSA modulus accepted for escrow.
pub const MIN_RSA_BITS: usize = 2048;

/// What secret opens a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySlotKind {
    /// A password through Argon2id.
    Password,
    /// A printable 256-bit recovery key.
    Recovery,
    /// An RSA escrow key pair.
    Rsa,
}

impl KeySlotKind {
    fn as_str(self) -> &'static str {
        match self {
            KeySlotKind::Password => "password",
            KeySlotKind::Recovery => "recovery",
            KeySlotKind::Rsa => "rsa",
        }
    }
}

impl std::fmt::Display for KeySlotKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 4,
        }
    }
}

impl KdfParams {
    /// Refuses parameters below OWASP's Argon2id minimum (19 MiB, 2 passes) or absurdly high ones (a
    /// hostile key file must not make opening a repository exhaust memory).
    pub fn validate(&self) -> Result<()> {
        if self.memory_kib < 19 * 1024 || self.iterations < 2 || self.parallelism == 0 {
            return Err(CoreError::invalid(
                "key derivation parameters",
                format!("{self:?} are weaker than the minimum (19 MiB, 2 iterations, 1 lane)"),
            ));
        }
        if self.memory_kib > 4 * 1024 * 1024 || self.iterations > 64 || self.parallelism > 64 {
            return Err(CoreError::invalid(
                "key derivation parameters",
                format!("{self:?} exceed the maximum (4 GiB, 64, 64)"),
            ));
        }
        Ok(())
    }

    fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        self.validate()?;
        let params = argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| CoreError::Crypto {
            what: "Argon2id parameters",
            detail: e.to_string(),
        })?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| CoreError::Crypto {
                what: "Argon2id",
                detail: e.to_string(),
            })?;
        Ok(out)
    }
}

/// RSA escrow details of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RsaWrap {
    /// SHA-256 of the public key's SubjectPublicKeyInfo DER (hex): which key to ask for.
    pub public_key_sha256: String,
    /// Modulus size in bits.
    pub bits: usize,
    /// The KEK, RSA-OAEP-SHA-256-encrypted (base64).
    pub wrapped_kek: String,
}

/// A key slot file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySlot {
    /// Format version.
    pub version: u32,
    /// What opens it.
    pub kind: KeySlotKind,
    /// Free text for people ("laptop", "escrow 2026").
    pub label: String,
    /// When it was added.
    pub created: DateTime<FixedOffset>,
    /// Host it was added on.
    pub hostname: String,
    /// User who added it.
    pub username: String,
    /// Repository ID (hex), bound into the AAD.
    pub repository: String,
    /// Salt for password and recovery slots (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Argon2id parameters of a password slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    /// RSA details of an escrow slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa: Option<RsaWrap>,
    /// The sealed master key (base64).
    pub wrapped_master_key: String,
}

/// Who and when, recorded in a new slot.
#[derive(Debug, Clone)]
pub struct SlotOrigin {
    /// Label.
    pub label: String,
    /// Time.
    pub created: DateTime<FixedOffset>,
    /// Host.
    pub hostname: String,
    /// User.
    pub username: String,
}

/// The secret offered to open a repository.
pub enum Unlock<'a> {
    /// A password.
    Password(&'a [u8]),
    /// A recovery key as printed (hex, dashes and spaces ignored).
    RecoveryKey(&'a str),
    /// An RSA private key (PKCS#8 or PKCS#1 PEM).
    RsaPrivateKeyPem(&'a str),
}

fn aad(repository: &str, kind: KeySlotKind) -> Vec<u8> {
    let mut a = b"brr key slot v1".to_vec();
    a.extend_from_slice(repository.as_bytes());
    a.push(0);
    a.extend_from_slice(kind.as_str().as_bytes());
    a
}

fn random_salt() -> [u8; 16] {
    let mut s = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

fn recovery_kek(key: &[u8; KEY_LEN], salt: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut h = blake3::Hasher::new_derive_key("brr 2026 recovery kek v1");
    h.update(salt);
    h.update(key);
    Zeroizing::new(*h.finalize().as_bytes())
}

/// A fresh recovery key and its printable form (64 hex digits in groups of 8).
pub fn generate_recovery_key() -> (Zeroizing<[u8; KEY_LEN]>, Zeroizing<String>) {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    let hexed = Zeroizing::new(hex::encode(k.as_ref()));
    let printable = hexed
        .as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    (k, Zeroizing::new(printable))
}

/// Parses a printed recovery key.
pub fn parse_recovery_key(s: &str) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let clean: Zeroizing<String> = Zeroizing::new(
        s.chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\n' | '\t'))
            .collect(),
    );
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(clean.as_bytes(), k.as_mut()).map_err(|_| {
        CoreError::invalid(
            "recovery key",
            "expected 64 hexadecimal digits (dashes and spaces are ignored)",
        )
    })?;
    Ok(k)
}

fn seal_master(
    kek: &[u8; KEY_LEN],
    repository: &str,
    kind: KeySlotKind,
    master: &MasterKey,
) -> Result<String> {
    let key = DataKey::new(SecretKey::from_bytes(*kek));
    let sealed = key.seal(&aad(repository, kind), &master.to_bytes())?;
    Ok(B64.encode(sealed))
}

fn base_slot(kind: KeySlotKind, repository: &str, origin: &SlotOrigin) -> KeySlot {
    KeySlot {
        version: KEY_SLOT_VERSION,
        kind,
        label: origin.label.clone(),
        created: origin.created,
        hostname: origin.hostname.clone(),
        username: origin.username.clone(),
        repository: repository.to_string(),
        salt: None,
        kdf: None,
        rsa: None,
        wrapped_master_key: String::new(),
    }
}

impl KeySlot {
    /// A slot opened by `password`.
    pub fn for_password(
        master: &MasterKey,
        repository: &str,
        password: &[u8],
        params: KdfParams,
        origin: &SlotOrigin,
    ) -> Result<Self> {
        if password.is_empty() {
            return Err(CoreError::invalid(
                "password",
                "an empty password is not allowed",
            ));
        }
        let salt = random_salt();
        let kek = params.derive(password, &salt)?;
        let mut slot = base_slot(KeySlotKind::Password, repository, origin);
        slot.salt = Some(B64.encode(salt));
        slot.kdf = Some(params);
        slot.wrapped_master_key = seal_master(&kek, repository, KeySlotKind::Password, master)?;
        Ok(slot)
    }

    /// A slot opened by a recovery key (see [`generate_recovery_key`]).
    pub fn for_recovery_key(
        master: &MasterKey,
        repository: &str,
        recovery_key: &[u8; KEY_LEN],
        origin: &SlotOrigin,
    ) -> Result<Self> {
        let salt = random_salt();
        let kek = recovery_kek(recovery_key, &salt);
        let mut slot = base_slot(KeySlotKind::Recovery, repository, origin);
        slot.salt = Some(B64.encode(salt));
        slot.wrapped_master_key = seal_master(&kek, repository, KeySlotKind::Recovery, master)?;
        Ok(slot)
    }

    /// A slot for an RSA escrow public key (PEM, SubjectPublicKeyInfo or PKCS#1), at least 2048 bits.
    pub fn for_rsa_public_key(
        master: &MasterKey,
        repository: &str,
        public_pem: &str,
        origin: &SlotOrigin,
    ) -> Result<Self> {
        let public = parse_public_pem(public_pem)?;
        let bits = public.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(CoreError::invalid(
                "RSA key",
                format!("{bits}-bit key; at least {MIN_RSA_BITS} bits are required"),
            ));
        }
        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(kek.as_mut());
        let wrapped = public
            .encrypt(&mut rand::rngs::OsRng, Oaep::new::<Sha256>(), kek.as_ref())
            .map_err(|e| CoreError::Crypto {
                what: "RSA-OAEP",
                detail: e.to_string(),
            })?;
        let mut slot = base_slot(KeySlotKind::Rsa, repository, origin);
        slot.rsa = Some(RsaWrap {
            public_key_sha256: fingerprint(&public)?,
            bits,
            wrapped_kek: B64.encode(wrapped),
        });
        slot.wrapped_master_key = seal_master(&kek, repository, KeySlotKind::Rsa, master)?;
        Ok(slot)
    }

    /// Serializes to the file's bytes and its name.
    pub fn encode(&self) -> Result<(KeySlotId, Vec<u8>)> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CoreError::invalid("key slot", e.to_string()))?;
        Ok((KeySlotId(Id::hash_of(&bytes)), bytes))
    }

    /// Parses a key slot file.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let slot: KeySlot = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::new("key slot", e.to_string()))?;
        if slot.version != KEY_SLOT_VERSION {
            return Err(CoreError::UnsupportedVersion {
                what: "key slot",
                version: slot.version,
                supported: KEY_SLOT_VERSION,
            });
        }
        Ok(slot)
    }

    /// Tries to open this slot with `secret`. `Ok(None)` means the secret is not for this slot (a wrong
    /// password, or a secret of another kind); errors are malformed slots.
    pub fn open(&self, secret: &Unlock<'_>) -> Result<Option<MasterKey>> {
        let kek: Zeroizing<[u8; KEY_LEN]> = match (self.kind, secret) {
            (KeySlotKind::Password, Unlock::Password(pw)) => {
                let params = self
                    .kdf
                    .ok_or_else(|| FormatError::new("key slot", "password slot without kdf"))?;
                params.derive(pw, &self.salt_bytes()?)?
            }
            (KeySlotKind::Recovery, Unlock::RecoveryKey(text)) => {
                recovery_kek(&*parse_recovery_key(text)?, &self.salt_bytes()?)
            }
            (KeySlotKind::Rsa, Unlock::RsaPrivateKeyPem(pem)) => {
                let private = parse_private_pem(pem)?;
                let rsa = self
                    .rsa
                    .as_ref()
                    .ok_or_else(|| FormatError::new("key slot", "rsa slot without rsa details"))?;
                if fingerprint(&private.to_public_key())? != rsa.public_key_sha256 {
                    return Ok(None);
                }
                let wrapped = B64
                    .decode(&rsa.wrapped_kek)
                    .map_err(|e| FormatError::new("key slot", format!("wrapped_kek: {e}")))?;
                let kek =
                    Zeroizing::new(private.decrypt(Oaep::new::<Sha256>(), &wrapped).map_err(
                        |_| CoreError::Authentication {
                            what: "RSA-wrapped key of the escrow slot".into(),
                        },
                    )?);
                let arr: [u8; KEY_LEN] = kek.as_slice().try_into().map_err(|_| {
                    FormatError::new("key slot", "unwrapped KEK has the wrong length")
                })?;
                Zeroizing::new(arr)
            }
            _ => return Ok(None),
        };
        let sealed = B64
            .decode(&self.wrapped_master_key)
            .map_err(|e| FormatError::new("key slot", format!("wrapped_master_key: {e}")))?;
        let key = DataKey::new(SecretKey::from_bytes(*kek));
        match key.open(&aad(&self.repository, self.kind), &sealed, &|| {
            "key slot".into()
        }) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                Ok(Some(MasterKey::from_bytes(&plain)?))
            }
            Err(CoreError::Authentication { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn salt_bytes(&self) -> Result<Vec<u8>> {
        let s = self
            .salt
            .as_ref()
            .ok_or_else(|| FormatError::new("key slot", "missing salt"))?;
        let b = B64
            .decode(s)
            .map_err(|e| FormatError::new("key slot", format!("salt: {e}")))?;
        if b.len() < 16 {
            return Err(FormatError::new("key slot", "salt shorter than 16 bytes").into());
        }
        Ok(b)
    }
}

fn parse_public_pem(pem: &str) -> Result<RsaPublicKey> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    RsaPublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| {
            CoreError::invalid(
                "RSA public key",
                format!("not a PEM public key (SubjectPublicKeyInfo or PKCS#1): {e}"),
            )
        })
}

fn parse_private_pem(pem: &str) -> Result<RsaPrivateKey> {
    RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| {
            CoreError::invalid(
                "RSA private key",
                format!("not a PEM private key (PKCS#8 or PKCS#1): {e}"),
            )
        })
}

fn fingerprint(public: &RsaPublicKey) -> Result<String> {
    let der = public.to_public_key_der().map_err(|e| CoreError::Crypto {
        what: "RSA public key encoding",
        detail: e.to_string(),
    })?;
    Ok(hex::encode(Sha256::digest(der.as_bytes())))
}

#[cfg(test)]
mod tests;
