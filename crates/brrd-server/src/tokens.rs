//! Access tokens: short-lived EdDSA-signed JWTs.
//!
//! Only `EdDSA` is accepted (no `none`, no HMAC: algorithm confusion is impossible because the
//! validation names exactly one asymmetric algorithm and the key family must match). `exp`, `nbf`,
//! `iat`, `aud`, `iss`, `sub` and `sid` are required; numeric claims must be numbers (a string `exp`
//! fails deserialisation). `exp` and `nbf` are checked against the injected
//! [`Clock`](crate::clock::Clock), with 5 seconds of leeway for `nbf` only.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::Keys;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session (refresh-token family) id: revoking the session kills the token at once.
    pub sid: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Not before (seconds).
    pub nbf: i64,
    /// Expiry (seconds).
    pub exp: i64,
}

/// Signs and checks access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl TokenKeys {
    /// Keys from the service key set.
    pub fn new(keys: &Keys, issuer: &str, ttl_secs: i64) -> Result<Self> {
        let public = keys.jwt_public()?;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
        Ok(TokenKeys {
            encoding: EncodingKey::from_ed_der(&keys.jwt_pkcs8),
            decoding: DecodingKey::from_ed_components(&x).map_err(Error::internal)?,
            issuer: issuer.to_string(),
            ttl_secs,
        })
    }

    /// Lifetime of issued tokens.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issues a token for `user_id` in session `sid` at `now_ms`.
    pub fn issue(&self, user_id: &str, sid: &str, now_ms: i64) -> Result<String> {
        let now = now_ms / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            sid: sid.to_string(),
            iss: self.issuer.clone(),
            aud: self.issuer.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(Error::internal)
    }

    /// Checks signature, algorithm, issuer, audience and time window; returns the claims.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        v.set_audience(&[&self.issuer]);
        v.set_issuer(&[&self.issuer]);
        // Time is checked below against the injected clock (the service's single notion of "now");
        // the claims must still be present and numeric.
        v.validate_exp = false;
        v.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|_| Error::Unauthenticated)?;
        let c = data.claims;
        let now = now_ms / 1000;
        if c.exp <= now || c.nbf > now + 5 {
            return Err(Error::Unauthenticated);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    fn keys() -> (tempfile::TempDir, TokenKeys) {
        let dir = tempfile::tempdir().unwrap();
        let k = Keys::load_or_create(dir.path(), &OsRandom).unwrap();
        let t = TokenKeys::new(&k, "brrd-test", 60).unwrap();
        (dir, t)
    }

    fn now() -> i64 {
        use crate::clock::Clock;
        crate::clock::SystemClock.now_ms()
    }

    #[test]
    fn round_trip_and_expiry() {
        let (_d, t) = keys();
        let tok = t.issue("u1", "s1", now()).unwrap();
        let c = t.verify(&tok, now()).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("u1", "s1"));
        assert!(
            t.verify(&tok, now() + 61_000).is_err(),
            "expired by the injected clock"
        );
    }

    #[test]
    fn alg_confusion_and_forgeries_are_rejected() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let (_d, t) = keys();
        let tok = t.issue("u1", "s1", now()).unwrap();
        let parts: Vec<&str> = tok.split('.').collect();
        // alg=none
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(t.verify(&none, now()).is_err());
        // HS256 signed with the public key as the HMAC secret
        let claims: Claims = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"anything"),
        )
        .unwrap();
        assert!(t.verify(&hs, now()).is_err());
        // exp as a string
        let mut v: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        v["exp"] = serde_json::Value::String("99999999999".into());
        let forged = format!("{}.{}.{}", parts[0], B64.encode(v.to_string()), parts[2]);
        assert!(t.verify(&forged, now()).is_err());
        // wrong audience from another key set
        let (_d2, other) = keys();
        assert!(
            t.verify(&other.issue("u1", "s1", now()).unwrap(), now())
                .is_err()
        );
        // tampered payload
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(r#"{"sub":"admin"}"#),
            parts[2]
        );
        assert!(t.verify(&tampered, now()).is_err());
    }
}
