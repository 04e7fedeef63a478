//! Upload checks that need no key and no database: names against content, and what each kind of file
//! must decode to (docs/server-repositories.md §3). Pure functions over the received bytes.

use brr_core::blob::BlobType;
use brr_core::config::RepoConfig;
use brr_core::gcrecord::GcRecord;
use brr_core::index::IndexFile;
use brr_core::keyslot::KeySlot;
use brr_core::lockfile::LockFile;
use brr_core::pack::parse_pack_tail;
use brr_core::snapshot::parse_snapshot_public;
use brr_storage::FileKind;

use crate::error::{Error, Result};

/// Largest lock file, key slot or config accepted.
pub const MAX_SMALL_FILE: usize = 64 * 1024;

/// One blob of an uploaded pack, from its trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    /// Blob ID (hex).
    pub id: String,
    /// `data` or `tree`.
    pub blob_type: &'static str,
    /// Offset in the pack.
    pub offset: u64,
    /// Stored length.
    pub length: u64,
}

/// What the server learns from an accepted file.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A pack and the blobs its trailer lists.
    Pack(Vec<BlobRow>),
    /// An index file: the index files it supersedes, and per pack it describes, the pack's ID.
    Index {
        /// Superseded index files (hex).
        supersedes: Vec<String>,
        /// Packs described (hex).
        packs: Vec<String>,
    },
    /// A snapshot's cleartext part.
    Snapshot {
        /// Header time, Unix ms.
        time_ms: i64,
        /// Opaque source tag.
        source: String,
        /// Referenced blobs (hex, sorted, unique).
        refs: Vec<String>,
    },
    /// A GC record and the packs it condemns (hex).
    Gc(Vec<String>),
    /// Config, key slot or lock: nothing to record beyond its size.
    Other,
}

/// Kinds whose names are the hex BLAKE3 of their bytes.
pub fn content_addressed(kind: FileKind) -> bool {
    matches!(
        kind,
        FileKind::Pack | FileKind::Index | FileKind::Snapshot | FileKind::Key
    )
}

/// The name of a content-addressed file must be the hex BLAKE3 of its bytes.
pub fn check_name(kind: FileKind, name: &str, hash_hex: &str) -> Result<()> {
    if content_addressed(kind) && name != hash_hex {
        return Err(Error::NameMismatch(format!(
            "{kind} {name} does not match its content: the BLAKE3 of the body is {hash_hex}"
        )));
    }
    Ok(())
}

fn small(kind: FileKind, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_SMALL_FILE {
        return Err(Error::TooLarge(format!(
            "a {kind} file may hold at most {MAX_SMALL_FILE} bytes, this one has {}",
            bytes.len()
        )));
    }
    Ok(())
}

fn bad(kind: FileKind, e: impl std::fmt::Display) -> Error {
    Error::BadFile(format!("{kind} does not decode: {e}"))
}

/// Decodes the trailer of a pack of `pack_len` bytes from `tail`, any suffix of the pack that holds
/// trailer and footer.
pub fn parse_trailer(tail: &[u8], pack_len: u64) -> Result<Parsed> {
    let trailer = parse_pack_tail(tail, pack_len)
        .map_err(|e| Error::BadPack(format!("pack refused: {e}")))?;
    Ok(Parsed::Pack(
        trailer
            .entries
            .iter()
            .map(|e| BlobRow {
                id: e.id.to_hex(),
                blob_type: match e.blob_type {
                    BlobType::Data => "data",
                    BlobType::Tree => "tree",
                },
                offset: u64::from(e.offset),
                length: u64::from(e.length),
            })
            .collect(),
    ))
}

/// Decodes `bytes` as a file of `kind`; refusals are one-line messages.
pub fn parse(kind: FileKind, bytes: &[u8]) -> Result<Parsed> {
    match kind {
        FileKind::Pack => parse_trailer(bytes, bytes.len() as u64),
        FileKind::Index => {
            let f = IndexFile::decode(bytes).map_err(|e| bad(kind, e))?;
            Ok(Parsed::Index {
                supersedes: f.supersedes.iter().map(|s| s.to_hex()).collect(),
                packs: f.packs.iter().map(|p| p.id.to_hex()).collect(),
            })
        }
        FileKind::Snapshot => {
            let s = parse_snapshot_public(bytes).map_err(|e| bad(kind, e))?;
            Ok(Parsed::Snapshot {
                time_ms: s.header.time.timestamp_millis(),
                source: s.header.source.clone(),
                refs: s.refs.iter().map(|r| r.to_hex()).collect(),
            })
        }
        FileKind::Gc => {
            let r = GcRecord::decode(bytes).map_err(|e| bad(kind, e))?;
            Ok(Parsed::Gc(r.packs.iter().map(|p| p.id.to_hex()).collect()))
        }
        FileKind::Lock => {
            small(kind, bytes)?;
            LockFile::decode(bytes).map_err(|e| bad(kind, e))?;
            Ok(Parsed::Other)
        }
        FileKind::Key => {
            small(kind, bytes)?;
            KeySlot::decode(bytes).map_err(|e| bad(kind, e))?;
            Ok(Parsed::Other)
        }
        FileKind::Config => {
            small(kind, bytes)?;
            RepoConfig::decode(bytes).map_err(|e| bad(kind, e))?;
            Ok(Parsed::Other)
        }
    }
}

/// The folder name of a kind in URLs (`config`, `keys`, `data`, `index`, `snapshots`, `locks`, `gc`).
pub fn kind_from_url(s: &str) -> Result<FileKind> {
    match s {
        "config" => Ok(FileKind::Config),
        _ => FileKind::FOLDERS
            .into_iter()
            .find(|k| k.folder() == Some(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown file kind {s:?}: use config, keys, data, index, snapshots, locks or gc"
                ))
            }),
    }
}

/// The URL (and database) name of a kind.
pub fn kind_name(kind: FileKind) -> &'static str {
    kind.folder().unwrap_or("config")
}

#[cfg(test)]
mod tests {
    use super::*;
    use brr_core::crypto::KeyId;
    use brr_core::id::{BlobId, Id};
    use brr_core::pack::PackWriter;

    fn pack() -> Vec<u8> {
        let mut w = PackWriter::with_capacity(1024);
        w.add(
            BlobType::Data,
            BlobId(Id::hash_of(b"a")),
            KeyId([1; 16]),
            &[7u8; 100],
        );
        w.add(
            BlobType::Tree,
            BlobId(Id::hash_of(b"b")),
            KeyId([1; 16]),
            &[8u8; 60],
        );
        w.finish().bytes
    }

    #[test]
    fn packs_are_parsed_and_damage_refused() {
        let p = pack();
        let Parsed::Pack(rows) = parse(FileKind::Pack, &p).unwrap() else {
            panic!()
        };
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].offset, rows[1].length), (100, 60));
        assert_eq!(rows[1].blob_type, "tree");
        let mut cut = p.clone();
        cut.remove(0);
        assert!(matches!(
            parse(FileKind::Pack, &cut),
            Err(Error::BadPack(_))
        ));
        assert!(matches!(
            parse(FileKind::Pack, b"garbage"),
            Err(Error::BadPack(_))
        ));
    }

    #[test]
    fn names_must_match_content_addressed_kinds() {
        let h = blake3::hash(b"x").to_hex().to_string();
        assert!(check_name(FileKind::Pack, &h, &h).is_ok());
        assert!(matches!(
            check_name(FileKind::Snapshot, "00", &h),
            Err(Error::NameMismatch(_))
        ));
        assert!(check_name(FileKind::Lock, "00", &h).is_ok());
    }

    #[test]
    fn small_files_and_garbage() {
        assert!(matches!(
            parse(FileKind::Lock, &vec![b' '; MAX_SMALL_FILE + 1]),
            Err(Error::TooLarge(_))
        ));
        for k in FileKind::ALL {
            if k != FileKind::Pack {
                assert!(matches!(parse(k, b"{}"), Err(Error::BadFile(_))), "{k}");
            }
        }
    }

    #[test]
    fn url_kinds_round_trip() {
        for k in FileKind::ALL {
            assert_eq!(kind_from_url(kind_name(k)).unwrap(), k);
        }
        assert!(kind_from_url("pack").is_err());
    }
}
