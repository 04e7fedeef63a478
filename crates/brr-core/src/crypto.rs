//! Keys and symmetric cryptography.
//!
//! The repository master key is a bundle of independent 256-bit secrets, each with one job:
//!
//! | secret | used for | who needs it |
//! |---|---|---|
//! | `data_key` | AES-256-GCM encryption of blobs and snapshot metadata | readers and (today) writers |
//! | `blob_id_key` | keyed BLAKE3 naming of blobs: deduplication | writers |
//! | `chunker_key` | the keyed gear table of the content-defined chunker | writers |
//! | `mac_key` | HMAC-SHA-256 of snapshots and the repository config | writers and verifiers |
//!
//! The keys that *name* and *cut* chunks are separate from the key that *decrypts* them, and every
//! encrypted object records which data key sealed it (a 16-byte key ID). A later write-only agent can
//! therefore deduplicate and seal with a fresh data key wrapped to the repository's public key, without
//! ever holding a key that reads older backups — without a format change.
//!
//! AES-256-GCM with a random 192-bit extended nonce: the first 12 bytes of the nonce select a per-message
//! subkey (`BLAKE3-keyed(data_key, "brr blob subkey v1" ‖ nonce[0..12])`), the last 12 bytes are the GCM
//! nonce. Random 96-bit GCM nonces under one key would be limited to about 2³² messages; the extended nonce
//! removes that limit without any state.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CoreError, FormatError, Result};
use crate::id::{BlobId, Id};

/// Length of every symmetric key.
pub const KEY_LEN: usize = 32;
/// Length of the extended nonce stored in front of every sealed message.
pub const NONCE_LEN: usize = 24;
/// Length of the GCM authentication tag stored after every sealed message.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of a data key ID.
pub const KEY_ID_LEN: usize = 16;

/// Version byte of the serialized master key.
const MASTER_KEY_VERSION: u8 = 1;
/// Serialized master key length: version + four keys.
const MASTER_KEY_BYTES: usize = 1 + 4 * KEY_LEN;

/// A 256-bit secret, wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        SecretKey(k)
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Self {
        SecretKey(b)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Identifies a data key without revealing it: `BLAKE3-derive("brr 2026 data key id v1", key)[..16]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// Hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut out = [0u8; KEY_ID_LEN];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| FormatError::new("key id", format!("not 32 hex characters: {s:?}")))?;
        Ok(KeyId(out))
    }
}

/// An AES-256-GCM key that seals and opens messages with the extended-nonce construction.
#[derive(Clone)]
pub struct DataKey {
    key: SecretKey,
    id: KeyId,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id.to_hex())
    }
}

impl DataKey {
    /// Wraps a secret as a data key.
    pub fn new(key: SecretKey) -> Self {
        let mut id = [0u8; KEY_ID_LEN];
        let full = blake3::derive_key("brr 2026 data key id v1", key.expose());
        id.copy_from_slice(&full[..KEY_ID_LEN]);
        DataKey { key, id: KeyId(id) }
    }

    /// The key's public identifier.
    pub fn id(&self) -> KeyId {
        self.id
    }

    fn message_key(&self, nonce_head: &[u8]) -> Result<LessSafeKey> {
        let mut h = blake3::Hasher::new_keyed(self.key.expose());
        h.update(b"brr blob subkey v1");
        h.update(nonce_head);
        let sub = Zeroizing::new(*h.finalize().as_bytes());
        let unbound =
            UnboundKey::new(&AES_256_GCM, sub.as_slice()).map_err(|_| CoreError::Crypto {
                what: "AES-256-GCM key",
                detail: "key setup failed".into(),
            })?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Seals `plaintext` and appends `nonce ‖ ciphertext ‖ tag` to `out`.
    pub fn seal_into(&self, out: &mut Vec<u8>, aad: &[u8], plaintext: &[u8]) -> Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let key = self.message_key(&nonce[..12])?;
        let start = out.len();
        out.reserve(SEAL_OVERHEAD + plaintext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let gcm_nonce =
            Nonce::try_assume_unique_for_key(&nonce[12..]).map_err(|_| CoreError::Crypto {
                what: "AES-256-GCM nonce",
                detail: "bad length".into(),
            })?;
        let tag = key
            .seal_in_place_separate_tag(gcm_nonce, Aad::from(aad), &mut out[start + NONCE_LEN..])
            .map_err(|_| CoreError::Crypto {
                what: "AES-256-GCM seal",
                detail: "encryption failed".into(),
            })?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Seals `plaintext` into a new buffer.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        self.seal_into(&mut out, aad, plaintext)?;
        Ok(out)
    }

    /// Opens a sealed message; `what` names the object in the error if authentication fails.
    pub fn open(&self, aad: &[u8], sealed: &[u8], what: &dyn Fn() -> String) -> Result<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(CoreError::Authentication {
                what: format!("{} (only {} bytes)", what(), sealed.len()),
            });
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let key = self.message_key(&nonce[..12])?;
        let gcm_nonce =
            Nonce::try_assume_unique_for_key(&nonce[12..]).map_err(|_| CoreError::Crypto {
                what: "AES-256-GCM nonce",
                detail: "bad length".into(),
            })?;
        let mut buf = body.to_vec();
        let plain_len = key
            .open_in_place(gcm_nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CoreError::Authentication { what: what() })?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

/// The repository master key: every secret a full client holds. Wiped from memory when dropped.
#[derive(Clone)]
pub struct MasterKey {
    data: DataKey,
    blob_id_key: SecretKey,
    chunker_key: SecretKey,
    mac_key: SecretKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Four fresh independent secrets.
    pub fn generate() -> Self {
        MasterKey {
            data: DataKey::new(SecretKey::generate()),
            blob_id_key: SecretKey::generate(),
            chunker_key: SecretKey::generate(),
            mac_key: SecretKey::generate(),
        }
    }

    /// Serialized form, only ever stored sealed inside a key slot:
    /// `version (1) ‖ data_key ‖ blob_id_key ‖ chunker_key ‖ mac_key`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(MASTER_KEY_BYTES));
        v.push(MASTER_KEY_VERSION);
        v.extend_from_slice(self.data.key.expose());
        v.extend_from_slice(self.blob_id_key.expose());
        v.extend_from_slice(self.chunker_key.expose());
        v.extend_from_slice(self.mac_key.expose());
        v
    }

    /// Parses [`MasterKey::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.first() != Some(&MASTER_KEY_VERSION) {
            return Err(CoreError::UnsupportedVersion {
                what: "master key",
                version: b.first().copied().unwrap_or(0).into(),
                supported: MASTER_KEY_VERSION.into(),
            });
        }
        if b.len() != MASTER_KEY_BYTES {
            return Err(FormatError::new(
                "master key",
                format!("{} bytes, expected {MASTER_KEY_BYTES}", b.len()),
            )
            .into());
        }
        let take = |i: usize| {
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(&b[1 + i * KEY_LEN..1 + (i + 1) * KEY_LEN]);
            SecretKey::from_bytes(k)
        };
        Ok(MasterKey {
            data: DataKey::new(take(0)),
            blob_id_key: take(1),
            chunker_key: take(2),
            mac_key: take(3),
        })
    }

    /// The key that encrypts blobs and snapshot metadata.
    pub fn data_key(&self) -> &DataKey {
        &self.data
    }

    /// The secret of the keyed chunker.
    pub fn chunker_key(&self) -> &SecretKey {
        &self.chunker_key
    }

    /// The ID of a blob: keyed BLAKE3 of its plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(Id(*blake3::keyed_hash(
            self.blob_id_key.expose(),
            plaintext,
        )
        .as_bytes()))
    }

    /// An opaque, stable identifier for a backup source (host and paths) that reveals neither.
    pub fn source_tag(&self, source: &[u8]) -> [u8; 16] {
        let mut h = blake3::Hasher::new_keyed(self.blob_id_key.expose());
        h.update(b"brr source tag v1");
        h.update(source);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }

    /// HMAC-SHA-256 of `parts` under the MAC key, with a domain-separating `context`.
    pub fn mac(&self, context: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC zero-pads keys shorter than the 64-byte block, so padding here gives the standard
        // HMAC-SHA-256 of the 32-byte key through the infallible fixed-size constructor.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..KEY_LEN].copy_from_slice(self.mac_key.expose());
        let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&(*block).into());
        m.update(&(context.len() as u64).to_le_bytes());
        m.update(context);
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Verifies a MAC in constant time.
    pub fn verify_mac(&self, context: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        let expected = self.mac(context, parts);
        tag.len() == expected.len() && bool::from(expected.ct_eq(tag))
    }
}

/// Compares two byte strings in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = DataKey::new(SecretKey::generate());
        let sealed = k.seal(b"aad", b"hello world").unwrap();
        assert_eq!(sealed.len(), 11 + SEAL_OVERHEAD);
        assert_eq!(
            k.open(b"aad", &sealed, &|| "x".into()).unwrap(),
            b"hello world"
        );
        assert!(k.open(b"other", &sealed, &|| "x".into()).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(matches!(
                k.open(b"aad", &bad, &|| "x".into()),
                Err(CoreError::Authentication { .. })
            ));
        }
        let other = DataKey::new(SecretKey::generate());
        assert!(other.open(b"aad", &sealed, &|| "x".into()).is_err());
        assert!(k.open(b"aad", &sealed[..10], &|| "x".into()).is_err());
    }

    #[test]
    fn nonces_differ() {
        let k = DataKey::new(SecretKey::generate());
        let a = k.seal(b"", b"same").unwrap();
        let b = k.seal(b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn master_key_round_trip() {
        let mk = MasterKey::generate();
        let bytes = mk.to_bytes();
        let back = MasterKey::from_bytes(&bytes).unwrap();
        assert_eq!(back.blob_id(b"x"), mk.blob_id(b"x"));
        assert_eq!(back.data_key().id(), mk.data_key().id());
        assert!(MasterKey::from_bytes(&bytes[..10]).is_err());
        let mut v2 = bytes.to_vec();
        v2[0] = 9;
        assert!(matches!(
            MasterKey::from_bytes(&v2),
            Err(CoreError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn blob_ids_are_keyed() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.blob_id(b"data"), a.blob_id(b"data"));
        assert_ne!(a.blob_id(b"data"), b.blob_id(b"data"));
        assert_ne!(a.blob_id(b"data").0, Id::hash_of(b"data"));
    }

    #[test]
    fn mac_is_standard_hmac_sha256() {
        let mk = MasterKey::generate();
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(mk.mac_key.expose()).unwrap();
        reference.update(&3u64.to_le_bytes());
        reference.update(b"ctx");
        reference.update(b"ab");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(mk.mac(b"ctx", &[b"a", b"b"]), expected);
    }

    #[test]
    fn mac_verifies() {
        let mk = MasterKey::generate();
        let tag = mk.mac(b"ctx", &[b"a", b"b"]);
        assert!(mk.verify_mac(b"ctx", &[b"a", b"b"], &tag));
        assert!(!mk.verify_mac(b"ctx2", &[b"a", b"b"], &tag));
        assert!(!mk.verify_mac(b"ctx", &[b"a", b"c"], &tag));
        assert!(!mk.verify_mac(b"ctx", &[b"a", b"b"], &tag[..31]));
    }
}
