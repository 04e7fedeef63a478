//! Key slot tests: creation and unlocking by password, recovery key and escrow, encoding and refusals.

use super::*;

fn origin() -> SlotOrigin {
    SlotOrigin {
        label: "test".into(),
        created: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap(),
        hostname: "h".into(),
        username: "u".into(),
    }
}

fn cheap() -> KdfParams {
    KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    }
}

#[test]
fn password_slot() {
    let mk = MasterKey::generate();
    let slot = KeySlot::for_password(&mk, "repo1", b"correct horse", cheap(), &origin()).unwrap();
    let (_, bytes) = slot.encode().unwrap();
    let slot = KeySlot::decode(&bytes).unwrap();
    let opened = slot
        .open(&Unlock::Password(b"correct horse"))
        .unwrap()
        .unwrap();
    assert_eq!(opened.blob_id(b"x"), mk.blob_id(b"x"));
    assert!(slot.open(&Unlock::Password(b"wrong")).unwrap().is_none());
    assert!(slot.open(&Unlock::RecoveryKey("00")).unwrap().is_none());
    // Moved to another repository: refused.
    let mut moved = slot.clone();
    moved.repository = "repo2".into();
    assert!(
        moved
            .open(&Unlock::Password(b"correct horse"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn weak_kdf_and_empty_password_refused() {
    let mk = MasterKey::generate();
    let weak = KdfParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    assert!(KeySlot::for_password(&mk, "r", b"pw", weak, &origin()).is_err());
    assert!(KeySlot::for_password(&mk, "r", b"", cheap(), &origin()).is_err());
}

#[test]
fn recovery_slot() {
    let mk = MasterKey::generate();
    let (key, printed) = generate_recovery_key();
    assert_eq!(parse_recovery_key(&printed).unwrap().as_ref(), key.as_ref());
    let slot = KeySlot::for_recovery_key(&mk, "r", &key, &origin()).unwrap();
    let upper = printed.to_uppercase().replace('-', " ");
    assert!(slot.open(&Unlock::RecoveryKey(&upper)).unwrap().is_some());
    let (_, other) = generate_recovery_key();
    assert!(slot.open(&Unlock::RecoveryKey(&other)).unwrap().is_none());
    assert!(slot.open(&Unlock::RecoveryKey("not hex")).is_err());
}

#[test]
fn rsa_slot() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let mk = MasterKey::generate();
    let slot = KeySlot::for_rsa_public_key(&mk, "r", &public_pem, &origin()).unwrap();
    let opened = slot
        .open(&Unlock::RsaPrivateKeyPem(&private_pem))
        .unwrap()
        .unwrap();
    assert_eq!(opened.blob_id(b"x"), mk.blob_id(b"x"));
    let small = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let small_pem = small
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    assert!(KeySlot::for_rsa_public_key(&mk, "r", &small_pem, &origin()).is_err());
    assert!(KeySlot::for_rsa_public_key(&mk, "r", "garbage", &origin()).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Any master key survives a recovery slot round trip through its file form; any flipped byte in
    /// the wrapped key is refused, never accepted as another key.
    #[test]
    fn recovery_slot_round_trip_and_tamper(seed in proptest::prelude::any::<[u8; 32]>(), repo in "[0-9a-f]{32}", flip in 0usize..200) {
        let mut raw = vec![1u8];
        for i in 0..4 {
            raw.extend(seed.iter().map(|b| b.wrapping_add(i)));
        }
        let mk = MasterKey::from_bytes(&raw).unwrap();
        let (key, printed) = generate_recovery_key();
        let slot = KeySlot::for_recovery_key(&mk, &repo, &key, &origin()).unwrap();
        let (_, bytes) = slot.encode().unwrap();
        let back = KeySlot::decode(&bytes).unwrap();
        let opened = back.open(&Unlock::RecoveryKey(&printed)).unwrap().unwrap();
        proptest::prop_assert_eq!(opened.to_bytes().to_vec(), mk.to_bytes().to_vec());
        let mut sealed = B64.decode(&back.wrapped_master_key).unwrap();
        let i = flip % sealed.len();
        sealed[i] ^= 0x20;
        let mut tampered = back.clone();
        tampered.wrapped_master_key = B64.encode(sealed);
        proptest::prop_assert!(tampered.open(&Unlock::RecoveryKey(&printed)).unwrap().is_none());
    }
}

#[test]
fn decode_rejects_garbage_and_unknown_fields() {
    assert!(KeySlot::decode(b"{}").is_err());
    assert!(KeySlot::decode(b"\xff").is_err());
    let mk = MasterKey::generate();
    let slot = KeySlot::for_password(&mk, "r", b"pw", cheap(), &origin()).unwrap();
    let mut v: serde_json::Value = serde_json::to_value(&slot).unwrap();
    v["extra"] = serde_json::json!(1);
    assert!(KeySlot::decode(v.to_string().as_bytes()).is_err());
}
