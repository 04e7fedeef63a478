//! Pack files: many stored blobs in one repository file, with a cleartext trailer.
//!
//! ```text
//! pack    = blob* ‖ trailer ‖ trailer_len (u32 LE) ‖ "BRRPACK1"
//! trailer = version (u8 = 1) ‖ key_count (u8) ‖ key_id (16)* ‖ entry_count (u32 LE) ‖ entry*
//! entry   = blob_type (u8) ‖ key_index (u8) ‖ stored_len (u32 LE) ‖ blob_id (32)        — 38 bytes
//! ```
//!
//! Blobs follow each other from offset 0 in entry order, so offsets are implicit. The trailer is in the
//! clear on purpose: a server without the key can list which blob IDs a pack holds and where, verify a
//! pack against its name (the BLAKE3 of all its bytes), and repack by copying ciphertext ranges. It reveals
//! stored (compressed, encrypted) blob sizes, not plaintext sizes, names or content.

use crate::blob::BlobType;
use crate::crypto::{KEY_ID_LEN, KeyId, SEAL_OVERHEAD};
use crate::error::{FormatError, Result};
use crate::id::{BlobId, Id, PackId};

/// Magic at the very end of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"BRRPACK1";
/// Trailer format version.
pub const TRAILER_VERSION: u8 = 1;
/// Bytes per trailer entry.
pub const ENTRY_LEN: usize = 38;
/// Bytes after the trailer: its length and the magic.
pub const FOOTER_LEN: usize = 12;
/// Smallest possible stored blob: the seal overhead plus the compression flag.
pub const MIN_STORED_BLOB: u32 = (SEAL_OVERHEAD + 1) as u32;
/// Largest pack this format allows (offsets are u32).
pub const MAX_PACK_SIZE: u64 = u32::MAX as u64;

/// One blob of a pack, as the trailer (and the index) describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub blob_type: BlobType,
    /// Which key of the pack's key table sealed it.
    pub key_index: u8,
    /// Offset of the stored blob in the pack.
    pub offset: u32,
    /// Stored length.
    pub length: u32,
    /// The blob's ID.
    pub id: BlobId,
}

/// A pack's trailer: its key table and entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackTrailer {
    /// Data keys that sealed the pack's blobs.
    pub key_ids: Vec<KeyId>,
    /// The blobs, in file order.
    pub entries: Vec<PackEntry>,
}

impl PackTrailer {
    /// Encodes the trailer (without the footer).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            6 + self.key_ids.len() * KEY_ID_LEN + self.entries.len() * ENTRY_LEN,
        );
        out.push(TRAILER_VERSION);
        out.push(self.key_ids.len() as u8);
        for k in &self.key_ids {
            out.extend_from_slice(&k.0);
        }
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.push(e.blob_type.to_byte());
            out.push(e.key_index);
            out.extend_from_slice(&e.length.to_le_bytes());
            out.extend_from_slice(e.id.as_bytes());
        }
        out
    }

    /// Decodes a trailer; checks every field, and that the blobs exactly fill `data_len` bytes.
    pub fn decode(bytes: &[u8], data_len: u64) -> Result<Self> {
        let err = |d: String| FormatError::new("pack trailer", d);
        let mut r = Reader::new(bytes, "pack trailer");
        let version = r.u8()?;
        if version != TRAILER_VERSION {
            return Err(crate::error::CoreError::UnsupportedVersion {
                what: "pack trailer",
                version: version.into(),
                supported: TRAILER_VERSION.into(),
            });
        }
        let key_count = r.u8()? as usize;
        let mut key_ids = Vec::with_capacity(key_count);
        for _ in 0..key_count {
            let mut k = [0u8; KEY_ID_LEN];
            k.copy_from_slice(r.take(KEY_ID_LEN)?);
            key_ids.push(KeyId(k));
        }
        let count = r.u32()? as usize;
        if r.remaining() != count.saturating_mul(ENTRY_LEN) {
            return Err(err(format!(
                "{count} entries need {} bytes, {} remain",
                count.saturating_mul(ENTRY_LEN),
                r.remaining()
            ))
            .into());
        }
        let mut entries = Vec::with_capacity(count);
        let mut offset: u64 = 0;
        for i in 0..count {
            let t = r.u8()?;
            let blob_type = BlobType::from_byte(t)
                .ok_or_else(|| err(format!("entry {i}: unknown blob type {t}")))?;
            let key_index = r.u8()?;
            if key_index as usize >= key_count {
                return Err(err(format!(
                    "entry {i}: key index {key_index} but only {key_count} keys"
                ))
                .into());
            }
            let length = r.u32()?;
            if length < MIN_STORED_BLOB {
                return Err(err(format!(
                    "entry {i}: stored length {length} is below the minimum {MIN_STORED_BLOB}"
                ))
                .into());
            }
            let id = BlobId(Id::from_slice(r.take(32)?).ok_or_else(|| err("short id".into()))?);
            entries.push(PackEntry {
                blob_type,
                key_index,
                offset: offset as u32,
                length,
                id,
            });
            offset += u64::from(length);
            if offset > MAX_PACK_SIZE {
                return Err(err("blobs extend past the largest pack size".into()).into());
            }
        }
        if offset != data_len {
            return Err(err(format!(
                "blobs cover {offset} bytes but the pack holds {data_len} bytes before its trailer"
            ))
            .into());
        }
        Ok(PackTrailer { key_ids, entries })
    }

    /// The data key that sealed `entry`.
    pub fn key_of(&self, entry: &PackEntry) -> Option<KeyId> {
        self.key_ids.get(entry.key_index as usize).copied()
    }
}

/// Where a pack's trailer lies, read from the pack's last [`FOOTER_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Length of the trailer.
    pub trailer_len: u32,
}

impl Footer {
    /// Parses the footer from the last 12 bytes of a pack of `pack_len` bytes.
    pub fn decode(last12: &[u8], pack_len: u64) -> Result<Self> {
        let err = |d: String| FormatError::new("pack footer", d);
        if last12.len() != FOOTER_LEN {
            return Err(err(format!("{} bytes, expected {FOOTER_LEN}", last12.len())).into());
        }
        if &last12[4..] != PACK_MAGIC {
            return Err(err("missing BRRPACK1 magic (not a pack, or truncated)".into()).into());
        }
        let trailer_len = u32::from_le_bytes([last12[0], last12[1], last12[2], last12[3]]);
        if u64::from(trailer_len) + FOOTER_LEN as u64 > pack_len {
            return Err(err(format!(
                "trailer of {trailer_len} bytes does not fit a {pack_len}-byte pack"
            ))
            .into());
        }
        Ok(Footer { trailer_len })
    }

    /// Offset of the trailer in a pack of `pack_len` bytes.
    pub fn trailer_offset(&self, pack_len: u64) -> u64 {
        pack_len - FOOTER_LEN as u64 - u64::from(self.trailer_len)
    }
}

/// Parses a whole pack's trailer from its bytes (or from any suffix that contains trailer and footer).
pub fn parse_pack_tail(tail: &[u8], pack_len: u64) -> Result<PackTrailer> {
    if tail.len() < FOOTER_LEN {
        return Err(FormatError::new("pack", format!("only {} bytes", tail.len())).into());
    }
    let footer = Footer::decode(&tail[tail.len() - FOOTER_LEN..], pack_len)?;
    let need = footer.trailer_len as usize + FOOTER_LEN;
    if tail.len() < need {
        return Err(FormatError::new(
            "pack",
            format!("need the last {need} bytes to read the trailer"),
        )
        .into());
    }
    let trailer = &tail[tail.len() - need..tail.len() - FOOTER_LEN];
    PackTrailer::decode(trailer, footer.trailer_offset(pack_len))
}

/// Builds a pack in memory. Not thread-safe: one packer thread owns each writer.
#[derive(Debug, Default)]
pub struct PackWriter {
    buf: Vec<u8>,
    trailer: PackTrailer,
}

impl PackWriter {
    /// An empty pack with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        PackWriter {
            buf: Vec::with_capacity(capacity),
            trailer: PackTrailer::default(),
        }
    }

    /// An empty pack that writes into `buf` (emptied first), reusing its allocation.
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        PackWriter {
            buf,
            trailer: PackTrailer::default(),
        }
    }

    /// Appends a stored blob sealed by `key`.
    pub fn add(&mut self, blob_type: BlobType, id: BlobId, key: KeyId, stored: &[u8]) {
        let key_index = match self.trailer.key_ids.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                self.trailer.key_ids.push(key);
                self.trailer.key_ids.len() - 1
            }
        } as u8;
        self.trailer.entries.push(PackEntry {
            blob_type,
            key_index,
            offset: self.buf.len() as u32,
            length: stored.len() as u32,
            id,
        });
        self.buf.extend_from_slice(stored);
    }

    /// Bytes of blob data so far.
    pub fn data_len(&self) -> usize {
        self.buf.len()
    }

    /// Number of blobs.
    pub fn count(&self) -> usize {
        self.trailer.entries.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.trailer.entries.is_empty()
    }

    /// Appends the trailer and footer and names the pack.
    pub fn finish(self) -> FinishedPack {
        let mut buf = self.buf;
        let trailer_bytes = self.trailer.encode();
        buf.extend_from_slice(&trailer_bytes);
        buf.extend_from_slice(&(trailer_bytes.len() as u32).to_le_bytes());
        buf.extend_from_slice(PACK_MAGIC);
        let id = PackId(Id::hash_of(&buf));
        FinishedPack {
            id,
            bytes: buf,
            trailer: self.trailer,
        }
    }
}

/// A complete pack ready to store.
#[derive(Debug)]
pub struct FinishedPack {
    /// Its name.
    pub id: PackId,
    /// All its bytes.
    pub bytes: Vec<u8>,
    /// Its trailer.
    pub trailer: PackTrailer,
}

/// A bounds-checked little-endian reader used by all binary decoders.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() - self.pos < n {
            return Err(FormatError::new(
                self.what,
                format!(
                    "truncated: needed {n} bytes at offset {}, {} remain",
                    self.pos,
                    self.bytes.len() - self.pos
                ),
            )
            .into());
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(n: usize) -> FinishedPack {
        let mut w = PackWriter::with_capacity(1024);
        for i in 0..n {
            let stored = vec![i as u8; 41 + i];
            let t = if i % 3 == 0 {
                BlobType::Tree
            } else {
                BlobType::Data
            };
            let key = KeyId([(i % 2) as u8; 16]);
            w.add(t, BlobId(Id::hash_of(&stored)), key, &stored);
        }
        w.finish()
    }

    #[test]
    fn reused_buffer_gives_the_same_pack() {
        let first = sample(4);
        let mut w = PackWriter::with_buffer(vec![0xAA; 4096]);
        assert!(w.is_empty());
        assert_eq!(w.data_len(), 0);
        for e in &first.trailer.entries {
            let stored = &first.bytes[e.offset as usize..(e.offset + e.length) as usize];
            w.add(
                e.blob_type,
                e.id,
                first.trailer.key_ids[e.key_index as usize],
                stored,
            );
        }
        let again = w.finish();
        assert_eq!(again.bytes, first.bytes);
        assert_eq!(again.id, first.id);
    }

    #[test]
    fn round_trip() {
        let p = sample(10);
        assert_eq!(p.id, PackId(Id::hash_of(&p.bytes)));
        let t = parse_pack_tail(&p.bytes, p.bytes.len() as u64).unwrap();
        assert_eq!(t, p.trailer);
        assert_eq!(t.key_ids.len(), 2);
        for e in &t.entries {
            let stored = &p.bytes[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(BlobId(Id::hash_of(stored)), e.id);
        }
    }

    #[test]
    fn empty_pack_round_trip() {
        let p = sample(0);
        assert_eq!(
            parse_pack_tail(&p.bytes, p.bytes.len() as u64)
                .unwrap()
                .entries
                .len(),
            0
        );
    }

    #[test]
    fn truncation_and_flips_in_trailer_are_rejected_or_detected() {
        let p = sample(5);
        for cut in 1..p.bytes.len() {
            let short = &p.bytes[..p.bytes.len() - cut];
            assert!(
                parse_pack_tail(short, short.len() as u64).is_err(),
                "cut {cut}"
            );
        }
        // Every flipped byte either breaks parsing or changes the pack's hash (its name).
        for i in 0..p.bytes.len() {
            let mut b = p.bytes.clone();
            b[i] ^= 0x40;
            assert_ne!(PackId(Id::hash_of(&b)), p.id);
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), len in 0u64..5000) {
            let _ = parse_pack_tail(&bytes, len);
            let _ = PackTrailer::decode(&bytes, len);
        }

        #[test]
        fn encode_decode(lens in proptest::collection::vec(41u32..5000, 0..50)) {
            let mut w = PackWriter::with_capacity(0);
            for (i, l) in lens.iter().enumerate() {
                w.add(BlobType::Data, BlobId(Id::hash_of(&i.to_le_bytes())), KeyId([1; 16]), &vec![0u8; *l as usize]);
            }
            let p = w.finish();
            let t = parse_pack_tail(&p.bytes, p.bytes.len() as u64).unwrap();
            prop_assert_eq!(t, p.trailer);
        }
    }
}
