//! Blobs: the unit of deduplication, compression and encryption.
//!
//! A blob is a file chunk ([`BlobType::Data`]) or an encoded directory tree ([`BlobType::Tree`]). Its ID is
//! the keyed BLAKE3 hash of its plaintext. Stored form:
//!
//! ```text
//! stored = nonce (24) ‖ AES-256-GCM(plaintext = flag (1) ‖ payload, aad = "brr blob v1" ‖ type (1) ‖ id (32)) ‖ tag (16)
//! flag   = 0: payload is the content as is; 1: payload is one zstd frame of the content
//! ```
//!
//! The AAD binds the ciphertext to its ID and type, so a blob cannot be swapped for another even by
//! someone who can rewrite the repository. Compression is skipped when zstd saves less than 1/32 of the
//! size (incompressible media, archives, encrypted data), so such data costs no decompression on restore.

use crate::crypto::{DataKey, SEAL_OVERHEAD};
use crate::error::{CoreError, Result};
use crate::id::BlobId;

/// Largest plaintext a blob may have (trees of huge directories included); bounds decompression.
pub const MAX_BLOB_PLAINTEXT: usize = 512 * 1024 * 1024;

const FLAG_RAW: u8 = 0;
const FLAG_ZSTD: u8 = 1;

/// What a blob holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum BlobType {
    /// A chunk of file content.
    Data,
    /// An encoded directory tree.
    Tree,
}

impl BlobType {
    /// The byte stored in pack trailers.
    pub fn to_byte(self) -> u8 {
        match self {
            BlobType::Data => 0,
            BlobType::Tree => 1,
        }
    }

    /// Parses the trailer byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(BlobType::Data),
            1 => Some(BlobType::Tree),
            _ => None,
        }
    }
}

impl std::fmt::Display for BlobType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        })
    }
}

fn aad(blob_type: BlobType, id: &BlobId) -> [u8; 44] {
    let mut a = [0u8; 44];
    a[..11].copy_from_slice(b"brr blob v1");
    a[11] = blob_type.to_byte();
    a[12..].copy_from_slice(id.as_bytes());
    a
}

/// Compression setting for new blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Store content as is.
    Off,
    /// zstd at this level (negative levels are faster, 1–19 smaller).
    Zstd(i32),
}

impl Compression {
    /// Parses `off`, `fastest` (zstd −1), `fast` (zstd 1), `default` / `auto` (zstd 3), `max` (zstd 19), or `zstd:N`.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "off" | "none" => Compression::Off,
            "fastest" => Compression::Zstd(-1),
            "fast" => Compression::Zstd(1),
            "default" | "auto" => Compression::Zstd(3),
            "max" => Compression::Zstd(19),
            other => {
                let level = other
                    .strip_prefix("zstd:")
                    .and_then(|n| n.parse::<i32>().ok())
                    .filter(|n| (-7..=22).contains(n) && *n != 0)
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "compression",
                            format!("{other:?}: use off, fastest, fast, default, max or zstd:N with N in -7..=22, N ≠ 0"),
                        )
                    })?;
                Compression::Zstd(level)
            }
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::Off => f.write_str("off"),
            Compression::Zstd(l) => write!(f, "zstd:{l}"),
        }
    }
}

/// Turns plaintext into stored blobs. Holds a reusable zstd context: keep one per worker thread.
pub struct BlobSealer {
    compression: Compression,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for BlobSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobSealer({})", self.compression)
    }
}

impl BlobSealer {
    /// A sealer with the given compression.
    pub fn new(compression: Compression) -> Result<Self> {
        let compressor = match compression {
            Compression::Off => None,
            Compression::Zstd(level) => Some(
                zstd::bulk::Compressor::new(level)
                    .map_err(|e| CoreError::Compression(e.to_string()))?,
            ),
        };
        Ok(BlobSealer {
            compression,
            compressor,
            scratch: Vec::new(),
        })
    }

    /// Compresses (when it pays) and encrypts `plaintext`, appending the stored blob to `out`.
    /// Returns the number of bytes appended.
    pub fn seal_into(
        &mut self,
        key: &DataKey,
        blob_type: BlobType,
        id: &BlobId,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let start = out.len();
        self.scratch.clear();
        let mut compressed = false;
        if let Some(c) = self.compressor.as_mut().filter(|_| plaintext.len() >= 64) {
            // Worth keeping only if it saves at least 1/32: give zstd no more room than that, so a frame
            // that would not pay fails fast and the content is stored as is.
            let limit = plaintext.len() - plaintext.len() / 32;
            self.scratch.reserve(limit + 1);
            self.scratch.push(FLAG_ZSTD);
            let mut cursor = std::io::Cursor::new(&mut self.scratch);
            cursor.set_position(1);
            compressed = match c.compress_to_buffer(plaintext, &mut cursor) {
                Ok(n) => n < limit,
                Err(_) => false,
            };
        }
        if compressed {
            key.seal_into(out, &aad(blob_type, id), &self.scratch)?;
        } else {
            self.scratch.clear();
            self.scratch.reserve(plaintext.len() + 1);
            self.scratch.push(FLAG_RAW);
            self.scratch.extend_from_slice(plaintext);
            key.seal_into(out, &aad(blob_type, id), &self.scratch)?;
        }
        Ok(out.len() - start)
    }
}

/// Decrypts and decompresses a stored blob, and checks that its plaintext hashes to `id` with `id_of`
/// (the keyed BLAKE3 of the master key). Any damage is an error that names the blob.
pub fn open_blob(
    key: &DataKey,
    blob_type: BlobType,
    id: &BlobId,
    stored: &[u8],
    id_of: &dyn Fn(&[u8]) -> BlobId,
) -> Result<Vec<u8>> {
    let what = || format!("{blob_type} blob {}", id.short());
    let mut plain = key.open(&aad(blob_type, id), stored, &what)?;
    let Some(&flag) = plain.first() else {
        return Err(CoreError::Authentication {
            what: format!("{} (empty plaintext)", what()),
        });
    };
    let content = match flag {
        // The content in place: no second buffer of its size.
        FLAG_RAW => {
            plain.copy_within(1.., 0);
            plain.truncate(plain.len() - 1);
            plain
        }
        FLAG_ZSTD => decompress(&plain[1..])
            .map_err(|e| CoreError::Compression(format!("{}: {e}", what())))?,
        other => {
            return Err(crate::error::FormatError::new(
                "blob",
                format!("{}: unknown compression flag {other}", what()),
            )
            .into());
        }
    };
    let actual = id_of(&content);
    if actual != *id {
        return Err(CoreError::HashMismatch {
            what: what(),
            expected: id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(content)
}

fn decompress(frame: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .map_err(|_| "not a zstd frame".to_string())?
        .ok_or_else(|| "zstd frame without content size".to_string())?;
    let size = usize::try_from(size).map_err(|_| "frame too large".to_string())?;
    if size > MAX_BLOB_PLAINTEXT {
        return Err(format!(
            "frame declares {size} bytes, more than the {MAX_BLOB_PLAINTEXT}-byte limit"
        ));
    }
    // One decompression context per thread, reused: creating one per blob was a visible cost.
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let out = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dec = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?),
        };
        dec.decompress(frame, size).map_err(|e| e.to_string())
    })?;
    if out.len() != size {
        return Err(format!(
            "frame declared {size} bytes but held {}",
            out.len()
        ));
    }
    Ok(out)
}

/// Upper bound of the stored size of a blob with `plaintext_len` bytes of content.
pub fn max_stored_len(plaintext_len: usize) -> usize {
    plaintext_len + 1 + SEAL_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn round_trip(compression: Compression, data: &[u8]) -> usize {
        let mk = MasterKey::generate();
        let id = mk.blob_id(data);
        let mut sealer = BlobSealer::new(compression).unwrap();
        let mut out = vec![7u8; 3];
        let n = sealer
            .seal_into(mk.data_key(), BlobType::Data, &id, data, &mut out)
            .unwrap();
        assert_eq!(n, out.len() - 3);
        let back = open_blob(mk.data_key(), BlobType::Data, &id, &out[3..], &|d| {
            mk.blob_id(d)
        })
        .unwrap();
        assert_eq!(back, data);
        // Wrong type or wrong id in the AAD is refused.
        assert!(
            open_blob(mk.data_key(), BlobType::Tree, &id, &out[3..], &|d| mk
                .blob_id(d))
            .is_err()
        );
        let other = mk.blob_id(b"other");
        assert!(
            open_blob(mk.data_key(), BlobType::Data, &other, &out[3..], &|d| mk
                .blob_id(d))
            .is_err()
        );
        n
    }

    #[test]
    fn compressible_data_shrinks() {
        let data = b"backup restore replica ".repeat(10_000);
        let n = round_trip(Compression::Zstd(3), &data);
        assert!(n < data.len() / 10, "{n}");
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut data = vec![0u8; 100_000];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
        let n = round_trip(Compression::Zstd(3), &data);
        assert_eq!(n, max_stored_len(data.len()));
    }

    #[test]
    fn off_and_tiny() {
        round_trip(Compression::Off, b"abc");
        round_trip(Compression::Zstd(3), b"");
        round_trip(Compression::Zstd(-1), &[1u8; 5000]);
    }

    #[test]
    fn wrong_content_for_id_is_detected() {
        let mk = MasterKey::generate();
        let claimed = mk.blob_id(b"good");
        let mut sealer = BlobSealer::new(Compression::Off).unwrap();
        let mut out = Vec::new();
        sealer
            .seal_into(mk.data_key(), BlobType::Data, &claimed, b"evil", &mut out)
            .unwrap();
        let err = open_blob(mk.data_key(), BlobType::Data, &claimed, &out, &|d| {
            mk.blob_id(d)
        })
        .unwrap_err();
        assert!(matches!(err, CoreError::HashMismatch { .. }));
    }

    #[test]
    fn compression_parse() {
        assert_eq!(Compression::parse("auto").unwrap(), Compression::Zstd(3));
        assert_eq!(
            Compression::parse("zstd:-3").unwrap(),
            Compression::Zstd(-3)
        );
        assert!(Compression::parse("zstd:0").is_err());
        assert!(Compression::parse("lz4").is_err());
    }
}
