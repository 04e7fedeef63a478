//! Snapshot files: one committed backup.
//!
//! ```text
//! snapshot = "BRRSNAP1"
//!          ‖ header_len (u32 LE) ‖ header         — cleartext JSON: version, time, source tag, key ID
//!          ‖ sealed_len (u32 LE) ‖ sealed         — AES-256-GCM of the metadata JSON, aad = "brr snapshot v1" ‖ header
//!          ‖ ref_count (u32 LE)  ‖ blob_id (32)*  — every blob reachable from the root tree, sorted, unique
//!          ‖ mac (32)                             — HMAC-SHA-256(mac_key, "brr snapshot mac v1", all bytes before)
//! ```
//!
//! A snapshot file is named by the BLAKE3 of its bytes and written only after every blob it references is
//! stored and indexed, so it is the atomic commit of a backup. The cleartext part is what a server needs to
//! work without the key: the time (retention), an opaque source tag (retention per source) and the
//! referenced blob IDs (garbage collection, integrity). Host names, paths, tags and the tree are sealed.
//! The MAC lets any key holder detect a tampered or forged snapshot.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::crypto::{DataKey, KeyId, MasterKey};
use crate::error::{CoreError, FormatError, Result};
use crate::id::{BlobId, Id, SnapshotId};
use crate::pack::Reader;

/// Magic at the start of every snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"BRRSNAP1";
/// Snapshot format version.
pub const SNAPSHOT_VERSION: u32 = 1;
const MAC_CONTEXT: &[u8] = b"brr snapshot mac v1";
const SEAL_CONTEXT: &[u8] = b"brr snapshot v1";

/// The cleartext header: what a server may know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotHeader {
    /// Format version.
    pub version: u32,
    /// When the backup started, with the client's UTC offset.
    pub time: DateTime<FixedOffset>,
    /// Keyed hash of host and paths (hex): groups snapshots of one source without naming it.
    pub source: String,
    /// The data key that sealed the metadata (hex).
    pub key_id: String,
}

/// Counters of one backup run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupSummary {
    /// Files never seen in the parent snapshot.
    pub files_new: u64,
    /// Files whose metadata changed since the parent, and so were read again.
    pub files_changed: u64,
    /// Files reused from the parent without reading them.
    pub files_unmodified: u64,
    /// Directories.
    pub dirs: u64,
    /// Other entries (symlinks, devices, …).
    pub others: u64,
    /// Bytes of all files in the snapshot.
    pub total_bytes: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// New data blobs stored.
    pub data_blobs_added: u64,
    /// New tree blobs stored.
    pub tree_blobs_added: u64,
    /// Plaintext bytes of new blobs.
    pub bytes_added: u64,
    /// Stored (compressed, encrypted) bytes of new blobs.
    pub bytes_stored: u64,
    /// Entries that could not be read and were skipped, with the reason.
    pub errors: Vec<String>,
    /// Wall time of the backup in seconds.
    pub duration_secs: f64,
}

/// The sealed metadata: only key holders see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// When the backup started.
    pub time: DateTime<FixedOffset>,
    /// Host name of the machine backed up.
    pub hostname: String,
    /// User that ran the backup.
    pub username: String,
    /// Absolute source paths, as given.
    pub paths: Vec<String>,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Root tree blob.
    pub tree: BlobId,
    /// The snapshot used to skip unchanged files, if any.
    pub parent: Option<SnapshotId>,
    /// Exclude patterns in force.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// The brr version that wrote it.
    pub program_version: String,
    /// Counters.
    pub summary: BackupSummary,
}

/// A decoded, verified snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Its file name.
    pub id: SnapshotId,
    /// Cleartext header.
    pub header: SnapshotHeader,
    /// Sealed metadata.
    pub meta: SnapshotMeta,
    /// Every referenced blob, sorted.
    pub refs: Vec<BlobId>,
}

/// The parts of a snapshot file readable without the key (what a server parses).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPublic {
    /// Cleartext header.
    pub header: SnapshotHeader,
    /// Sealed metadata, still encrypted.
    pub sealed: Vec<u8>,
    /// Referenced blobs, sorted.
    pub refs: Vec<BlobId>,
    /// The MAC.
    pub mac: [u8; 32],
    /// Length of the bytes the MAC covers.
    mac_covered: usize,
    /// The header exactly as stored (the AAD of the sealed part).
    header_bytes: Vec<u8>,
}

/// Encodes and seals a snapshot; returns its ID and bytes. `refs` is sorted and deduplicated here.
pub fn encode_snapshot(
    key: &MasterKey,
    meta: &SnapshotMeta,
    source: [u8; 16],
    mut refs: Vec<BlobId>,
) -> Result<(SnapshotId, Vec<u8>)> {
    refs.sort_unstable();
    refs.dedup();
    let header = SnapshotHeader {
        version: SNAPSHOT_VERSION,
        time: meta.time,
        source: hex::encode(source),
        key_id: key.data_key().id().to_hex(),
    };
    let header_bytes = serde_json::to_vec(&header)
        .map_err(|e| CoreError::invalid("snapshot header", e.to_string()))?;
    let meta_bytes = serde_json::to_vec(meta)
        .map_err(|e| CoreError::invalid("snapshot metadata", e.to_string()))?;
    let sealed = key.data_key().seal(&seal_aad(&header_bytes), &meta_bytes)?;
    let mut out = Vec::with_capacity(64 + header_bytes.len() + sealed.len() + refs.len() * 32);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&(refs.len() as u32).to_le_bytes());
    for r in &refs {
        out.extend_from_slice(r.as_bytes());
    }
    let mac = key.mac(MAC_CONTEXT, &[&out]);
    out.extend_from_slice(&mac);
    Ok((SnapshotId(Id::hash_of(&out)), out))
}

fn seal_aad(header: &[u8]) -> Vec<u8> {
    let mut a = SEAL_CONTEXT.to_vec();
    a.extend_from_slice(header);
    a
}

/// Bytes at the start of a snapshot file that hold its cleartext header in practice (magic, length and
/// a header of ~150 bytes); [`snapshot_header_len`] says how many are needed when a header is longer.
pub const SNAPSHOT_HEADER_PREFIX: usize = 512;

/// Headers longer than this are refused (a written header is ~150 bytes).
const MAX_HEADER_LEN: usize = 64 * 1024;

/// How many bytes from the start of a snapshot file hold its cleartext header, from at least its first
/// 12 bytes (magic and header length).
pub fn snapshot_header_len(prefix: &[u8]) -> Result<usize> {
    let what = "snapshot";
    let mut r = Reader::new(prefix, what);
    if r.take(8)? != SNAPSHOT_MAGIC {
        return Err(FormatError::new(what, "missing BRRSNAP1 magic").into());
    }
    let hlen = r.u32()? as usize;
    if hlen > MAX_HEADER_LEN {
        return Err(FormatError::new(what, format!("header of {hlen} bytes")).into());
    }
    Ok(12 + hlen)
}

/// Parses the cleartext header from the start of a snapshot file (nothing is verified: a header read
/// alone is only a hint until the whole file is decoded with the key).
pub fn parse_snapshot_header(prefix: &[u8]) -> Result<SnapshotHeader> {
    let what = "snapshot";
    let end = snapshot_header_len(prefix)?;
    let hbytes = prefix.get(12..end).ok_or_else(|| {
        FormatError::new(
            what,
            format!("header needs {end} bytes, {} given", prefix.len()),
        )
    })?;
    parse_header_bytes(hbytes)
}

fn parse_header_bytes(hbytes: &[u8]) -> Result<SnapshotHeader> {
    let what = "snapshot";
    let header: SnapshotHeader = serde_json::from_slice(hbytes)
        .map_err(|e| FormatError::new(what, format!("header: {e}")))?;
    if header.version != SNAPSHOT_VERSION {
        return Err(CoreError::UnsupportedVersion {
            what,
            version: header.version,
            supported: SNAPSHOT_VERSION,
        });
    }
    Ok(header)
}

/// Parses the cleartext structure of a snapshot file (no key needed, nothing verified but the layout).
pub fn parse_snapshot_public(bytes: &[u8]) -> Result<SnapshotPublic> {
    let what = "snapshot";
    let hlen = snapshot_header_len(bytes)? - 12;
    let mut r = Reader::new(bytes, what);
    r.take(12)?;
    let hbytes = r.take(hlen)?;
    let header = parse_header_bytes(hbytes)?;
    let slen = r.u32()? as usize;
    let sealed = r.take(slen)?.to_vec();
    let n = r.u32()? as usize;
    if r.remaining() != n.saturating_mul(32).saturating_add(32) {
        return Err(FormatError::new(
            what,
            format!(
                "{n} references need {} more bytes, {} remain",
                n.saturating_mul(32) + 32,
                r.remaining()
            ),
        )
        .into());
    }
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        refs.push(BlobId(Id::from_slice(r.take(32)?).unwrap_or_default()));
    }
    if refs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(FormatError::new(what, "references not sorted and unique").into());
    }
    let mac_covered = r.position();
    let mut mac = [0u8; 32];
    mac.copy_from_slice(r.take(32)?);
    Ok(SnapshotPublic {
        header,
        sealed,
        refs,
        mac,
        mac_covered,
        header_bytes: hbytes.to_vec(),
    })
}

/// Parses, authenticates and decrypts a snapshot file; `id` is the name it was read under.
pub fn decode_snapshot(key: &MasterKey, id: SnapshotId, bytes: &[u8]) -> Result<Snapshot> {
    let actual = SnapshotId(Id::hash_of(bytes));
    if actual != id {
        return Err(CoreError::HashMismatch {
            what: format!("snapshot {}", id.short()),
            expected: id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    let p = parse_snapshot_public(bytes)?;
    if !key.verify_mac(MAC_CONTEXT, &[&bytes[..p.mac_covered]], &p.mac) {
        return Err(CoreError::Authentication {
            what: format!("snapshot {} (MAC)", id.short()),
        });
    }
    let key_id = KeyId::from_hex(&p.header.key_id)?;
    let data_key: &DataKey = key.data_key();
    if key_id != data_key.id() {
        return Err(CoreError::Authentication {
            what: format!(
                "snapshot {} (sealed with unknown key {})",
                id.short(),
                p.header.key_id
            ),
        });
    }
    let plain = data_key.open(&seal_aad(&p.header_bytes), &p.sealed, &|| {
        format!("snapshot {}", id.short())
    })?;
    let meta: SnapshotMeta = serde_json::from_slice(&plain)
        .map_err(|e| FormatError::new("snapshot", format!("metadata: {e}")))?;
    Ok(Snapshot {
        id,
        header: p.header,
        meta,
        refs: p.refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            time: DateTime::parse_from_rfc3339("2026-11-23T10:00:00+01:00").unwrap(),
            hostname: "host".into(),
            username: "me".into(),
            paths: vec!["/home/me".into()],
            tags: vec!["daily".into()],
            tree: BlobId(Id::hash_of(b"tree")),
            parent: None,
            excludes: vec![],
            program_version: "test".into(),
            summary: BackupSummary::default(),
        }
    }

    #[test]
    fn round_trip() {
        let k = MasterKey::generate();
        let refs = vec![
            BlobId(Id::hash_of(b"b")),
            BlobId(Id::hash_of(b"a")),
            BlobId(Id::hash_of(b"a")),
        ];
        let (id, bytes) = encode_snapshot(&k, &meta(), [1; 16], refs).unwrap();
        let s = decode_snapshot(&k, id, &bytes).unwrap();
        assert_eq!(s.meta, meta());
        assert_eq!(s.refs.len(), 2);
        let p = parse_snapshot_public(&bytes).unwrap();
        assert_eq!(p.header.source, hex::encode([1u8; 16]));
    }

    #[test]
    fn the_header_parses_from_the_start_of_the_file_alone() {
        let k = MasterKey::generate();
        let refs: Vec<BlobId> = (0..1000u32)
            .map(|i| BlobId(Id::hash_of(&i.to_le_bytes())))
            .collect();
        let (_, bytes) = encode_snapshot(&k, &meta(), [7; 16], refs).unwrap();
        let whole = parse_snapshot_public(&bytes).unwrap().header;
        let needed = snapshot_header_len(&bytes[..12]).unwrap();
        assert!(needed <= SNAPSHOT_HEADER_PREFIX, "{needed}");
        assert_eq!(parse_snapshot_header(&bytes[..needed]).unwrap(), whole);
        assert_eq!(
            parse_snapshot_header(&bytes[..SNAPSHOT_HEADER_PREFIX]).unwrap(),
            whole
        );
        assert!(parse_snapshot_header(&bytes[..needed - 1]).is_err());
        assert!(parse_snapshot_header(&bytes[..11]).is_err());
        assert!(parse_snapshot_header(b"BRRSNAP2\x02\0\0\0{}").is_err());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let k = MasterKey::generate();
        let (id, bytes) =
            encode_snapshot(&k, &meta(), [1; 16], vec![BlobId(Id::hash_of(b"a"))]).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(decode_snapshot(&k, id, &b).is_err(), "byte {i}");
            // Even under its new hash name, a modified snapshot fails the MAC or the parser.
            assert!(
                decode_snapshot(&k, SnapshotId(Id::hash_of(&b)), &b).is_err(),
                "byte {i} renamed"
            );
        }
    }

    #[test]
    fn wrong_key_fails() {
        let (id, bytes) =
            encode_snapshot(&MasterKey::generate(), &meta(), [1; 16], vec![]).unwrap();
        assert!(matches!(
            decode_snapshot(&MasterKey::generate(), id, &bytes),
            Err(CoreError::Authentication { .. })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_snapshot_public(&bytes);
            let mut with_magic = SNAPSHOT_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = parse_snapshot_public(&with_magic);
            let _ = parse_snapshot_header(&bytes);
            let _ = parse_snapshot_header(&with_magic);
            let k = MasterKey::from_bytes(&[1u8; 129].iter().enumerate().map(|(i, b)| if i == 0 { 1 } else { *b }).collect::<Vec<_>>()).unwrap();
            let _ = decode_snapshot(&k, SnapshotId(Id::hash_of(&with_magic)), &with_magic);
        }
    }
}
