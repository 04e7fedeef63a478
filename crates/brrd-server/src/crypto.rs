//! Hashing helpers: Argon2id for passwords, SHA-256 for high-entropy tokens, HMAC for PINs.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::clock::{Random, random_bytes};
use crate::error::{Error, Result};

/// Argon2id with the OWASP-recommended parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(Error::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with a fresh per-user salt (PHC string).
pub fn hash_password(rng: &dyn Random, password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes(rng, 16)).map_err(Error::internal)?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(Error::internal)?;
    Ok(hash.to_string())
}

/// Verifies a password against a PHC string; malformed hashes count as a mismatch.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(a) = argon2() else { return false };
    a.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Hex SHA-256 of a high-entropy secret (refresh tokens, API keys).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Hex HMAC-SHA-256 of `parts` under `key`, each part length-prefixed (PINs, setup codes).
pub fn hmac_hex(key: &[u8], parts: &[&str]) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(Error::internal)?;
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p.as_bytes());
    }
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    #[test]
    fn password_round_trip_and_salted() {
        let a = hash_password(&OsRandom, "Correct-Horse-9").unwrap();
        let b = hash_password(&OsRandom, "Correct-Horse-9").unwrap();
        assert_ne!(a, b, "per-user salt");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(&a, "Correct-Horse-9"));
        assert!(!verify_password(&a, "correct-horse-9"));
        assert!(!verify_password("garbage", "x"));
    }

    #[test]
    fn hmac_parts_are_unambiguous() {
        let k = b"k";
        assert_ne!(
            hmac_hex(k, &["ab", "c"]).unwrap(),
            hmac_hex(k, &["a", "bc"]).unwrap()
        );
    }
}
