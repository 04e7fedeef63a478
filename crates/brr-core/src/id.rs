//! Typed 256-bit identifiers.
//!
//! Every object in a repository is named by 32 bytes: chunks and trees by a keyed BLAKE3 hash of their
//! plaintext (so equal content deduplicates, yet nobody without the key can compute or test an ID), and
//! repository files (packs, index files, snapshots, key slots) by the plain BLAKE3 hash of their stored
//! bytes (so anyone, including a server without the key, can detect bit rot by rehashing a file).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FormatError;

/// Length in bytes of every identifier.
pub const ID_LEN: usize = 32;

/// A raw 32-byte identifier; the typed IDs below wrap it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

impl Id {
    /// The ID as 64 lower-case hex characters (the form used in file names).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, as shown to people.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Parses exactly 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, FormatError> {
        let mut out = [0u8; ID_LEN];
        if s.len() != ID_LEN * 2 {
            return Err(FormatError::new(
                "id",
                format!("expected 64 hex characters, got {:?}", s),
            ));
        }
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| FormatError::new("id", format!("not a hexadecimal ID: {:?}", s)))?;
        Ok(Id(out))
    }

    /// Plain (unkeyed) BLAKE3 hash of `data`: the name of a content-addressed repository file.
    pub fn hash_of(data: &[u8]) -> Self {
        Id(*blake3::hash(data).as_bytes())
    }

    /// Reads an ID from the first 32 bytes of `b`.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        let arr: [u8; ID_LEN] = b.get(..ID_LEN)?.try_into().ok()?;
        Some(Id(arr))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Id {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Id::from_hex(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Id::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Id;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("32 bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Id, E> {
                    let arr: [u8; ID_LEN] = v
                        .try_into()
                        .map_err(|_| E::invalid_length(v.len(), &self))?;
                    Ok(Id(arr))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Id);

        impl $name {
            /// The ID as 64 lower-case hex characters.
            pub fn to_hex(&self) -> String { self.0.to_hex() }
            /// The first 8 hex characters, as shown to people.
            pub fn short(&self) -> String { self.0.short() }
            /// Parses exactly 64 hex characters.
            pub fn from_hex(s: &str) -> Result<Self, FormatError> { Id::from_hex(s).map($name) }
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; ID_LEN] { self.0.as_bytes() }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.short())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Display::fmt(&self.0, f) }
        }
        impl FromStr for $name {
            type Err = FormatError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::from_hex(s) }
        }
    };
}

typed_id!(
    /// Keyed BLAKE3 hash of a blob's plaintext (a file chunk or an encoded tree).
    BlobId
);
typed_id!(
    /// BLAKE3 hash of a pack file's stored bytes; the pack's file name.
    PackId
);
typed_id!(
    /// BLAKE3 hash of a snapshot file's stored bytes; the snapshot's file name.
    SnapshotId
);
typed_id!(
    /// BLAKE3 hash of an index file's stored bytes; the index file's name.
    IndexId
);
typed_id!(
    /// BLAKE3 hash of a key slot file's stored bytes; the key slot's file name.
    KeySlotId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = Id::hash_of(b"abc");
        assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.short().len(), 8);
        assert!(Id::from_hex("abc").is_err());
        assert!(Id::from_hex(&"zz".repeat(32)).is_err());
        let typed = BlobId(id);
        assert_eq!(typed.to_string(), id.to_hex());
        assert_eq!(BlobId::from_hex(&typed.to_hex()).unwrap(), typed);
    }

    #[test]
    fn serde_forms() {
        let id = PackId(Id::hash_of(b"x"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        let back: PackId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        let bin = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bin.len(), 33);
        let back: PackId = postcard::from_bytes(&bin).unwrap();
        assert_eq!(back, id);
    }
}
