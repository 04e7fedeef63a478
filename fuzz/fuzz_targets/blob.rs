//! Stored blobs: `open_blob` with a fixed key.
//!
//! Input: one mode byte, one blob type byte (even: data, odd: tree), then
//! - mode % 3 == 0: blob ID (32 bytes) ‖ stored blob — ciphertext as found in a pack;
//! - mode % 3 == 1: the decrypted plaintext (`flag ‖ payload`), sealed here with the right key and AAD so
//!   that the compression flag and the zstd decoder are reached; the ID is that of the payload;
//! - mode % 3 == 2: `position (u16 LE) ‖ xor (u8) ‖ content`: the content is zstd-compressed, one byte of
//!   the frame is flipped, and the damaged frame is sealed as a compressed blob.
#![no_main]

use brr_core::blob::{BlobType, open_blob};
use brr_core::crypto::MasterKey;
use brr_core::id::{BlobId, Id};
use brr_fuzz::{fixed_key, show};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static MasterKey {
    static K: OnceLock<MasterKey> = OnceLock::new();
    K.get_or_init(fixed_key)
}

fn aad(t: BlobType, id: &BlobId) -> Vec<u8> {
    let mut a = b"brr blob v1".to_vec();
    a.push(t.to_byte());
    a.extend_from_slice(id.as_bytes());
    a
}

fn open(t: BlobType, id: &BlobId, stored: &[u8]) -> Result<Vec<u8>, brr_core::CoreError> {
    let r = open_blob(key().data_key(), t, id, stored, &|d| key().blob_id(d));
    show("open_blob", &r.as_ref().map(|v| v.len()));
    if let Ok(content) = &r {
        assert_eq!(key().blob_id(content), *id);
    }
    r
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let t = if data[1] % 2 == 0 {
        BlobType::Data
    } else {
        BlobType::Tree
    };
    let rest = &data[2..];
    match data[0] % 3 {
        0 => {
            let id = BlobId(Id::from_slice(rest).unwrap_or_default());
            let _ = open(t, &id, rest.get(32..).unwrap_or_default());
        }
        1 => {
            let id = key().blob_id(rest.get(1..).unwrap_or_default());
            let stored = key().data_key().seal(&aad(t, &id), rest).expect("seal");
            let r = open(t, &id, &stored);
            if rest.first() == Some(&0) {
                assert_eq!(r.expect("a raw blob opens"), &rest[1..]);
            }
        }
        _ => {
            if rest.len() < 3 {
                return;
            }
            let pos = u16::from_le_bytes([rest[0], rest[1]]) as usize;
            let content = &rest[3..];
            let mut frame = vec![1u8];
            frame.extend_from_slice(&zstd::bulk::compress(content, 1).expect("zstd"));
            if rest[2] != 0 {
                let i = 1 + pos % (frame.len() - 1);
                frame[i] ^= rest[2];
            }
            let id = key().blob_id(content);
            let stored = key().data_key().seal(&aad(t, &id), &frame).expect("seal");
            let r = open(t, &id, &stored);
            if rest[2] == 0 {
                assert_eq!(r.expect("an intact compressed blob opens"), content);
            }
        }
    }
});
