//! `PackTrailer::decode`: a pack trailer without its footer.
//!
//! Input: 4 bytes (u32 LE) giving the length of the pack's data part, then the trailer bytes.
#![no_main]

use brr_core::pack::PackTrailer;
use brr_fuzz::{show, split_u32};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (data_len, bytes) = split_u32(data);
    let r = PackTrailer::decode(bytes, u64::from(data_len));
    show("PackTrailer::decode", &r);
    if let Ok(t) = r {
        assert_eq!(
            t.encode(),
            bytes,
            "accepted trailer does not re-encode to its bytes"
        );
        let sum: u64 = t.entries.iter().map(|e| u64::from(e.length)).sum();
        assert_eq!(sum, u64::from(data_len));
        for e in &t.entries {
            assert!(t.key_of(e).is_some());
        }
    }
    // Any pack length at all, including the largest ones.
    let _ = PackTrailer::decode(bytes, u64::MAX);
    let _ = PackTrailer::decode(bytes, u64::from(u32::MAX));
});
