//! `parse_pack_tail`: the end of a pack as read from storage (footer, then trailer).
//!
//! Input: 4 bytes (u32 LE) saying how many bytes of the pack lie before the tail, then the tail itself.
#![no_main]

use brr_core::pack::{FOOTER_LEN, parse_pack_tail};
use brr_fuzz::{show, split_u32};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (before, tail) = split_u32(data);
    let pack_len = tail.len() as u64 + u64::from(before);
    let r = parse_pack_tail(tail, pack_len);
    show("parse_pack_tail", &r);
    if let Ok(t) = r {
        // What was accepted re-encodes to exactly the trailer bytes it came from.
        let enc = t.encode();
        let end = tail.len() - FOOTER_LEN;
        assert!(enc.len() <= end);
        assert_eq!(&tail[end - enc.len()..end], &enc[..]);
        // The blobs lie inside the data part of the pack, back to back from offset 0.
        let data_len = pack_len - (enc.len() + FOOTER_LEN) as u64;
        let mut at = 0u64;
        for e in &t.entries {
            assert_eq!(u64::from(e.offset), at);
            at += u64::from(e.length);
            assert!((e.key_index as usize) < t.key_ids.len());
        }
        assert_eq!(at, data_len);
    }
});
