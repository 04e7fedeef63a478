//! `MasterKey::from_bytes`: the plaintext sealed inside a key slot.
#![no_main]

use brr_core::crypto::MasterKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = MasterKey::from_bytes(data) {
        assert_eq!(&k.to_bytes()[..], data);
    }
});
