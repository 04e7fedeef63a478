//! `parse_recovery_key`: a recovery key as a person types it.
#![no_main]

use brr_core::keyslot::parse_recovery_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(k) = parse_recovery_key(&s) {
        let hexed: String = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            *parse_recovery_key(&hexed).expect("canonical form parses"),
            *k
        );
    }
});
