//! GC records (`gc/<id>`): `GcRecord::decode`.
#![no_main]

use brr_core::gcrecord::GcRecord;
use brr_fuzz::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = GcRecord::decode(data);
    show("GcRecord::decode", &r);
    if let Ok(g) = r {
        let bytes = g.encode().expect("an accepted record encodes");
        assert_eq!(
            GcRecord::decode(&bytes).expect("a re-encoded record decodes"),
            g
        );
    }
});
