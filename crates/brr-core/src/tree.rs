//! Directory trees: the metadata of a snapshot, stored as tree blobs.
//!
//! A tree is one directory's entries, sorted by name bytes, encoded with postcard (a compact, specified,
//! deterministic serde format): equal directories encode to equal bytes and so deduplicate, and an
//! unchanged subtree costs nothing in the next snapshot. Subdirectories point to their own tree blob.
//! Names and symlink targets are raw bytes, so non-UTF-8 names survive. Field and variant order below is
//! frozen: new fields only ever go into a new tree version.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, FormatError, Result};
use crate::id::BlobId;

/// Current tree encoding version.
pub const TREE_VERSION: u32 = 1;

/// A point in time with nanosecond precision (seconds since the Unix epoch).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before).
    pub secs: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
}

/// A reference from a file to one of its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The data blob.
    pub id: BlobId,
    /// Its plaintext length.
    pub len: u32,
}

/// An extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name (raw bytes).
    #[serde(with = "serde_bytes_vec")]
    pub name: Vec<u8>,
    /// Attribute value.
    #[serde(with = "serde_bytes_vec")]
    pub value: Vec<u8>,
}

/// What kind of file system object a node is, with its kind-specific content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeKind {
    /// A regular file and its chunks in order.
    File {
        /// Size in bytes (the sum of the chunk lengths).
        size: u64,
        /// The content.
        chunks: Vec<ChunkRef>,
        /// The file had holes (fewer blocks allocated than its size); restore recreates holes for zero runs.
        sparse: bool,
    },
    /// A directory and the tree blob of its entries.
    Dir {
        /// The subtree.
        subtree: BlobId,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, raw bytes.
        #[serde(with = "serde_bytes_vec")]
        target: Vec<u8>,
    },
    /// A named pipe.
    Fifo,
    /// A Unix domain socket (recorded; not recreated on restore).
    Socket,
    /// A character device.
    CharDevice {
        /// Device number.
        rdev: u64,
    },
    /// A block device.
    BlockDevice {
        /// Device number.
        rdev: u64,
    },
}

/// One directory entry with its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    /// File name (one path component, raw bytes).
    #[serde(with = "serde_bytes_vec")]
    pub name: Vec<u8>,
    /// Kind and content.
    pub kind: NodeKind,
    /// Permission bits, set-id and sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user ID.
    pub uid: u32,
    /// Owner group ID.
    pub gid: u32,
    /// Owner user name, when it could be resolved.
    pub user: Option<String>,
    /// Owner group name, when it could be resolved.
    pub group: Option<String>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time.
    pub atime: Timestamp,
    /// Status change time (not restorable; used to detect changes).
    pub ctime: Timestamp,
    /// Device of the file system holding the file.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Hard link count.
    pub links: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

impl Node {
    /// Name as a lossy UTF-8 string (for display only).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// File size for files, 0 otherwise.
    pub fn size(&self) -> u64 {
        match &self.kind {
            NodeKind::File { size, .. } => *size,
            _ => 0,
        }
    }

    /// A one-letter type code as in `ls -l` (`-`, `d`, `l`, `p`, `s`, `c`, `b`).
    pub fn type_char(&self) -> char {
        match self.kind {
            NodeKind::File { .. } => '-',
            NodeKind::Dir { .. } => 'd',
            NodeKind::Symlink { .. } => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::Socket => 's',
            NodeKind::CharDevice { .. } => 'c',
            NodeKind::BlockDevice { .. } => 'b',
        }
    }
}

/// One directory's entries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tree {
    /// Encoding version ([`TREE_VERSION`]).
    pub version: u32,
    /// Entries sorted by name bytes, names unique.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// A tree of the given nodes (sorted here).
    pub fn new(mut nodes: Vec<Node>) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Tree {
            version: TREE_VERSION,
            nodes,
        }
    }

    /// Encodes to the blob plaintext.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| CoreError::invalid("tree", e.to_string()))
    }

    /// Decodes and validates a tree blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (tree, rest): (Tree, &[u8]) = postcard::take_from_bytes(bytes)
            .map_err(|e| FormatError::new("tree", e.to_string()))?;
        if !rest.is_empty() {
            return Err(FormatError::new("tree", format!("{} trailing bytes", rest.len())).into());
        }
        if tree.version != TREE_VERSION {
            return Err(CoreError::UnsupportedVersion {
                what: "tree",
                version: tree.version,
                supported: TREE_VERSION,
            });
        }
        for pair in tree.nodes.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(
                    FormatError::new("tree", "entries not sorted or names repeated").into(),
                );
            }
        }
        for n in &tree.nodes {
            validate_name(&n.name)?;
            for (what, t) in [("mtime", n.mtime), ("atime", n.atime), ("ctime", n.ctime)] {
                if t.nanos >= 1_000_000_000 {
                    return Err(FormatError::new(
                        "tree",
                        format!("{:?}: {what} has {} nanoseconds", n.display_name(), t.nanos),
                    )
                    .into());
                }
            }
            if let NodeKind::File { size, chunks, .. } = &n.kind {
                let sum: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
                if sum != *size {
                    return Err(FormatError::new(
                        "tree",
                        format!(
                            "file {:?}: chunks hold {sum} bytes but size is {size}",
                            n.display_name()
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(tree)
    }
}

/// Refuses names that could escape the restore target: empty, `.`, `..`, or containing `/` or NUL.
pub fn validate_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(FormatError::new(
            "tree",
            format!("unsafe entry name {:?}", String::from_utf8_lossy(name)),
        )
        .into());
    }
    Ok(())
}

/// Serde adapter that encodes `Vec<u8>` as a byte string (compact in postcard) rather than a sequence.
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use proptest::prelude::*;

    fn file(name: &[u8], sizes: &[u32]) -> Node {
        Node {
            name: name.to_vec(),
            kind: NodeKind::File {
                size: sizes.iter().map(|s| u64::from(*s)).sum(),
                chunks: sizes
                    .iter()
                    .map(|s| ChunkRef {
                        id: BlobId(Id::hash_of(&s.to_le_bytes())),
                        len: *s,
                    })
                    .collect(),
                sparse: false,
            },
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            user: Some("u".into()),
            group: None,
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 5,
            },
            atime: Timestamp::default(),
            ctime: Timestamp {
                secs: -5,
                nanos: 999_999_999,
            },
            device: 1,
            inode: 2,
            links: 1,
            xattrs: vec![Xattr {
                name: b"user.a".to_vec(),
                value: vec![0, 255],
            }],
        }
    }

    #[test]
    fn round_trip_and_determinism() {
        let t = Tree::new(vec![
            file(b"b", &[1, 2]),
            file(&[0xff, 0xfe], &[]),
            file(b"a", &[7]),
        ]);
        let bytes = t.encode().unwrap();
        assert_eq!(Tree::decode(&bytes).unwrap(), t);
        let again = Tree::new(vec![
            file(b"a", &[7]),
            file(&[0xff, 0xfe], &[]),
            file(b"b", &[1, 2]),
        ]);
        assert_eq!(again.encode().unwrap(), bytes);
    }

    #[test]
    fn unsafe_names_and_bad_sizes_rejected() {
        for bad in [&b".."[..], b".", b"a/b", b"", b"a\0"] {
            let t = Tree {
                version: TREE_VERSION,
                nodes: vec![file(bad, &[])],
            };
            assert!(Tree::decode(&t.encode().unwrap()).is_err(), "{bad:?}");
        }
        let mut n = file(b"x", &[5]);
        if let NodeKind::File { size, .. } = &mut n.kind {
            *size = 6;
        }
        let t = Tree {
            version: TREE_VERSION,
            nodes: vec![n],
        };
        assert!(Tree::decode(&t.encode().unwrap()).is_err());
        let dup = Tree {
            version: TREE_VERSION,
            nodes: vec![file(b"x", &[]), file(b"x", &[])],
        };
        assert!(Tree::decode(&dup.encode().unwrap()).is_err());
        let mut late = file(b"t", &[]);
        late.atime.nanos = 1_000_000_000;
        let t = Tree {
            version: TREE_VERSION,
            nodes: vec![late],
        };
        let err = Tree::decode(&t.encode().unwrap()).unwrap_err().to_string();
        assert!(err.contains("atime has 1000000000 nanoseconds"), "{err}");
    }

    #[test]
    fn newer_version_rejected() {
        let t = Tree {
            version: 2,
            nodes: vec![],
        };
        assert!(matches!(
            Tree::decode(&t.encode().unwrap()),
            Err(CoreError::UnsupportedVersion { .. })
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Tree::decode(&bytes);
        }

        #[test]
        fn round_trip_arbitrary_names(names in proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..20), 0..20)) {
            let nodes: Vec<Node> = names.iter().filter(|n| validate_name(n).is_ok()).map(|n| file(n, &[3])).collect();
            let t = Tree::new(nodes);
            prop_assert_eq!(Tree::decode(&t.encode().unwrap()).unwrap(), t);
        }
    }
}
