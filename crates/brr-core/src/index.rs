//! Index files: the trailers of many packs in one file, so opening a repository does not read every pack.
//!
//! ```text
//! index = "BRRINDX1" ‖ supersedes_count (u32 LE) ‖ index_id (32)* ‖ pack_count (u32 LE) ‖ pack*
//! pack  = pack_id (32) ‖ pack_len (u64 LE) ‖ trailer_len (u32 LE) ‖ trailer (as in the pack itself)
//! ```
//!
//! An index file is named by the BLAKE3 of its bytes. `supersedes` lists index files whose content this
//! one replaces (consolidation, prune): readers ignore a superseded file even if it still exists, so a
//! crash between writing the new file and deleting the old ones leaves a consistent view. Like pack
//! trailers, index files are cleartext: they reveal nothing a pack trailer does not.

use crate::error::{FormatError, Result};
use crate::id::{Id, IndexId, PackId};
use crate::pack::{FOOTER_LEN, PackTrailer, Reader};

/// Magic at the start of every index file.
pub const INDEX_MAGIC: &[u8; 8] = b"BRRINDX1";

/// One pack described by an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    /// The pack's name.
    pub id: PackId,
    /// The pack's total size in bytes.
    pub pack_len: u64,
    /// The pack's trailer.
    pub trailer: PackTrailer,
}

impl IndexedPack {
    /// Bytes of blob data (the pack minus trailer and footer).
    pub fn data_len(&self) -> u64 {
        self.trailer
            .entries
            .iter()
            .map(|e| u64::from(e.length))
            .sum()
    }
}

/// The content of one index file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexFile {
    /// Index files this one replaces.
    pub supersedes: Vec<IndexId>,
    /// Packs it describes.
    pub packs: Vec<IndexedPack>,
}

impl IndexFile {
    /// Encodes the file; returns its name and bytes.
    pub fn encode(&self) -> (IndexId, Vec<u8>) {
        let mut out = Vec::new();
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&(self.supersedes.len() as u32).to_le_bytes());
        for s in &self.supersedes {
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for p in &self.packs {
            let t = p.trailer.encode();
            out.extend_from_slice(p.id.as_bytes());
            out.extend_from_slice(&p.pack_len.to_le_bytes());
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(&t);
        }
        (IndexId(Id::hash_of(&out)), out)
    }

    /// Decodes and validates an index file.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "index file");
        if r.take(8)? != INDEX_MAGIC {
            return Err(FormatError::new("index file", "missing BRRINDX1 magic").into());
        }
        let n = r.u32()? as usize;
        if n.saturating_mul(32) > r.remaining() {
            return Err(
                FormatError::new("index file", format!("{n} superseded IDs do not fit")).into(),
            );
        }
        let mut supersedes = Vec::with_capacity(n);
        for _ in 0..n {
            supersedes.push(IndexId(Id::from_slice(r.take(32)?).unwrap_or_default()));
        }
        let count = r.u32()? as usize;
        let mut packs = Vec::with_capacity(count.min(r.remaining() / 44));
        for i in 0..count {
            let id = PackId(Id::from_slice(r.take(32)?).unwrap_or_default());
            let pack_len = r.u64()?;
            let tlen = r.u32()? as usize;
            let at = r.position();
            let tbytes = r.take(tlen)?;
            let data_len = pack_len
                .checked_sub((tlen + FOOTER_LEN) as u64)
                .ok_or_else(|| {
                    FormatError::new(
                        "index file",
                        format!(
                            "pack {i} at offset {at}: length {pack_len} smaller than its trailer"
                        ),
                    )
                })?;
            let trailer = PackTrailer::decode(tbytes, data_len).map_err(|e| {
                FormatError::new(
                    "index file",
                    format!("pack {} (entry {i} at offset {at}): {e}", id.short()),
                )
            })?;
            packs.push(IndexedPack {
                id,
                pack_len,
                trailer,
            });
        }
        if r.remaining() != 0 {
            return Err(FormatError::new(
                "index file",
                format!("{} trailing bytes", r.remaining()),
            )
            .into());
        }
        Ok(IndexFile { supersedes, packs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;
    use crate::crypto::KeyId;
    use crate::id::BlobId;
    use crate::pack::PackWriter;
    use proptest::prelude::*;

    fn file(npacks: usize) -> IndexFile {
        let mut packs = Vec::new();
        for p in 0..npacks {
            let mut w = PackWriter::with_capacity(0);
            for i in 0..p + 1 {
                w.add(
                    BlobType::Data,
                    BlobId(Id::hash_of(&[p as u8, i as u8])),
                    KeyId([3; 16]),
                    &[0u8; 50],
                );
            }
            let f = w.finish();
            packs.push(IndexedPack {
                id: f.id,
                pack_len: f.bytes.len() as u64,
                trailer: f.trailer,
            });
        }
        IndexFile {
            supersedes: vec![IndexId(Id::hash_of(b"old"))],
            packs,
        }
    }

    #[test]
    fn round_trip() {
        let f = file(4);
        let (id, bytes) = f.encode();
        assert_eq!(id, IndexId(Id::hash_of(&bytes)));
        assert_eq!(IndexFile::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn truncated_or_extended_is_rejected() {
        let (_, bytes) = file(3).encode();
        for cut in 1..bytes.len() {
            assert!(IndexFile::decode(&bytes[..bytes.len() - cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(IndexFile::decode(&longer).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = IndexFile::decode(&bytes);
            let mut with_magic = INDEX_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = IndexFile::decode(&with_magic);
        }
    }
}
