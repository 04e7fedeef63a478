//! Snapshot files: `parse_snapshot_public` (what a server reads without the key), `parse_snapshot_header`
//! (what a client reads from the start of each file to choose a backup's parent) and `decode_snapshot`
//! (MAC, decryption and metadata JSON) with a fixed key.
//!
//! Input: one mode byte, then
//! - mode even: a whole snapshot file as stored;
//! - mode odd: `header_len (u16 LE) ‖ header JSON ‖ metadata JSON`. The target builds a correctly sealed
//!   and MACed file around them (written here from the format spec, independently of the encoder), so the
//!   fuzzer reaches the header and metadata parsers behind the MAC. Every `@KEY@` in the header is
//!   replaced with the fixed key's data key ID in hex, so the key ID check can pass too.
#![no_main]

use brr_core::id::{Id, SnapshotId};
use brr_core::snapshot::{decode_snapshot, parse_snapshot_header, parse_snapshot_public};
use brr_fuzz::{fixed_key, show};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static brr_core::crypto::MasterKey {
    static K: OnceLock<brr_core::crypto::MasterKey> = OnceLock::new();
    K.get_or_init(fixed_key)
}

fn build(header: &[u8], meta: &[u8]) -> Vec<u8> {
    let mut aad = b"brr snapshot v1".to_vec();
    aad.extend_from_slice(header);
    let sealed = key().data_key().seal(&aad, meta).expect("sealing works");
    let mut out = b"BRRSNAP1".to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&0u32.to_le_bytes());
    let mac = key().mac(b"brr snapshot mac v1", &[&out]);
    out.extend_from_slice(&mac);
    out
}

fn replace(hay: &[u8], pat: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(pat) {
            out.extend_from_slice(with);
            i += pat.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        if rest.len() < 2 {
            return;
        }
        let hlen = (u16::from_le_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let (header, meta) = rest[2..].split_at(hlen);
        let header = replace(header, b"@KEY@", key().data_key().id().to_hex().as_bytes());
        build(&header, meta)
    };
    let public = parse_snapshot_public(&file);
    show("parse_snapshot_public", &public);
    if let Ok(p) = &public {
        assert!(p.refs.windows(2).all(|w| w[0] < w[1]));
    }
    let header = parse_snapshot_header(&file);
    show("parse_snapshot_header", &header);
    if let Ok(p) = &public {
        // Whatever parses whole has the same header when read from its start alone.
        assert_eq!(header.as_ref().ok(), Some(&p.header));
    }
    let id = SnapshotId(Id::hash_of(&file));
    let r = decode_snapshot(key(), id, &file);
    show("decode_snapshot", &r);
    if r.is_ok() {
        assert!(public.is_ok());
    }
});
