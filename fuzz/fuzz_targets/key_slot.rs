//! Key slot files: `KeySlot::decode`, then `open` with secrets that are wrong for the slot.
//!
//! Argon2id parameters come from the input, so a password is tried only when they are the cheapest that
//! `KdfParams::validate` allows (19 MiB, 2 passes, 1 lane); a recovery key (BLAKE3, cheap) is always tried.
#![no_main]

use brr_core::keyslot::{KdfParams, KeySlot, Unlock};
use brr_fuzz::show;
use libfuzzer_sys::fuzz_target;

const CHEAPEST: KdfParams = KdfParams {
    memory_kib: 19 * 1024,
    iterations: 2,
    parallelism: 1,
};

fuzz_target!(|data: &[u8]| {
    let r = KeySlot::decode(data);
    show("KeySlot::decode", &r);
    let Ok(slot) = r else {
        return;
    };
    let (_, bytes) = slot.encode().expect("an accepted slot encodes");
    assert_eq!(
        KeySlot::decode(&bytes).expect("a re-encoded slot decodes"),
        slot
    );
    let rec = slot.open(&Unlock::RecoveryKey(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ));
    show("open(recovery key)", &rec.as_ref().map(|k| k.is_some()));
    if slot.kdf == Some(CHEAPEST) {
        let pw = slot.open(&Unlock::Password(b"not the password"));
        show("open(password)", &pw.as_ref().map(|k| k.is_some()));
    }
    // Not a PEM key: refused before any RSA work.
    let _ = slot.open(&Unlock::RsaPrivateKeyPem("-----BEGIN PRIVATE KEY-----"));
});
