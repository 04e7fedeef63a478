//! `IndexFile::decode`: a whole index file.
#![no_main]

use brr_core::index::IndexFile;
use brr_core::pack::FOOTER_LEN;
use brr_fuzz::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = IndexFile::decode(data);
    show("IndexFile::decode", &r);
    if let Ok(f) = r {
        // Index files are canonical: an accepted file re-encodes to the same bytes, hence the same name.
        let (_, bytes) = f.encode();
        assert_eq!(
            bytes, data,
            "accepted index file does not re-encode to its bytes"
        );
        for p in &f.packs {
            let trailer = p.trailer.encode().len() as u64 + FOOTER_LEN as u64;
            assert_eq!(p.data_len() + trailer, p.pack_len);
        }
    }
});
