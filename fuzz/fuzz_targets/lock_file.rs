//! Lock files (`locks/<id>`): `LockFile::decode`.
#![no_main]

use brr_core::lockfile::LockFile;
use brr_fuzz::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = LockFile::decode(data);
    show("LockFile::decode", &r);
    if let Ok(l) = r {
        let bytes = l.encode().expect("an accepted lock encodes");
        assert_eq!(
            LockFile::decode(&bytes).expect("a re-encoded lock decodes"),
            l
        );
    }
});
