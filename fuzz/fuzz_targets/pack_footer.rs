//! `Footer::decode`: the last 12 bytes of a pack.
//!
//! Input: 8 bytes (u64 LE) of pack length, then the bytes given as the footer (any length).
#![no_main]

use brr_core::pack::{FOOTER_LEN, Footer};
use brr_fuzz::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut len = [0u8; 8];
    let n = data.len().min(8);
    len[..n].copy_from_slice(&data[..n]);
    let pack_len = u64::from_le_bytes(len);
    let footer = &data[n..];
    let r = Footer::decode(footer, pack_len);
    show("Footer::decode", &r);
    if let Ok(f) = r {
        assert_eq!(footer.len(), FOOTER_LEN);
        let off = f.trailer_offset(pack_len);
        assert_eq!(off + u64::from(f.trailer_len) + FOOTER_LEN as u64, pack_len);
    }
});
