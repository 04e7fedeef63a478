//! The repository config: the one file with a fixed name (`config`).
//!
//! JSON, readable without the key (a server needs the version and ID), and authenticated by an HMAC over
//! its body once a key holder has opened the repository, so a tampered chunker or pack setting is detected.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::crypto::MasterKey;
use crate::error::{CoreError, FormatError, Result};

/// Repository format version written by this build.
pub const REPOSITORY_VERSION: u32 = 1;
const MAC_CONTEXT: &[u8] = b"brr config mac v1";

/// Settings fixed at `init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    /// Repository format version.
    pub version: u32,
    /// Random repository ID (32 hex characters).
    pub id: String,
    /// When the repository was created.
    pub created: DateTime<FixedOffset>,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Default compression for new blobs (e.g. "zstd:3").
    pub compression: String,
}

/// The config file: body plus its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// The settings.
    pub body: ConfigBody,
    /// HMAC-SHA-256 of the body's JSON (hex).
    pub mac: String,
}

impl RepoConfig {
    /// Builds and MACs a config.
    pub fn new(key: &MasterKey, body: ConfigBody) -> Result<Self> {
        body.chunker.validate()?;
        let mac = hex::encode(key.mac(MAC_CONTEXT, &[&body_bytes(&body)?]));
        Ok(RepoConfig { body, mac })
    }

    /// Serializes for storage.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| CoreError::invalid("config", e.to_string()))
    }

    /// Parses without verifying the MAC (before the key is known); checks the version.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let c: RepoConfig =
            serde_json::from_slice(bytes).map_err(|e| FormatError::new("config", e.to_string()))?;
        if c.body.version != REPOSITORY_VERSION {
            return Err(CoreError::UnsupportedVersion {
                what: "repository",
                version: c.body.version,
                supported: REPOSITORY_VERSION,
            });
        }
        Ok(c)
    }

    /// Verifies the MAC with the opened master key.
    pub fn verify(&self, key: &MasterKey) -> Result<()> {
        let tag =
            hex::decode(&self.mac).map_err(|_| FormatError::new("config", "mac is not hex"))?;
        if key.verify_mac(MAC_CONTEXT, &[&body_bytes(&self.body)?], &tag) {
            Ok(())
        } else {
            Err(CoreError::Authentication {
                what: "repository config (MAC)".into(),
            })
        }
    }
}

fn body_bytes(body: &ConfigBody) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| CoreError::invalid("config", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> ConfigBody {
        ConfigBody {
            version: REPOSITORY_VERSION,
            id: "00112233445566778899aabbccddeeff".into(),
            created: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap(),
            chunker: ChunkerParams::default(),
            pack_size: 32 << 20,
            compression: "zstd:3".into(),
        }
    }

    #[test]
    fn mac_round_trip_and_tamper() {
        let k = MasterKey::generate();
        let c = RepoConfig::new(&k, body()).unwrap();
        let d = RepoConfig::decode(&c.encode().unwrap()).unwrap();
        d.verify(&k).unwrap();
        let mut t = d.clone();
        t.body.pack_size = 1;
        assert!(t.verify(&k).is_err());
        assert!(d.verify(&MasterKey::generate()).is_err());
        let mut v = body();
        v.version = 99;
        let c = RepoConfig {
            body: v,
            mac: String::new(),
        };
        assert!(matches!(
            RepoConfig::decode(&c.encode().unwrap()),
            Err(CoreError::UnsupportedVersion { .. })
        ));
    }
}
