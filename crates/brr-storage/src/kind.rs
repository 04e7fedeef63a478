//! File kinds, file names and the frozen folder layout of a repository.
//!
//! Every backend maps `(FileKind, name)` to the same relative path, so a repository copied byte for byte
//! between a local folder and an object store (`aws s3 sync`, `rclone`, `cp -r`) stays readable.

use std::fmt;

use crate::StorageError;

/// The kind of a repository file; decides its folder (see the layout table in the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// The repository's `config` file at the root; its only valid name is `"config"`.
    Config,
    /// A key file in `keys/`.
    Key,
    /// A pack file in `data/<first two characters of the name>/`.
    Pack,
    /// An index file in `index/`.
    Index,
    /// A snapshot file in `snapshots/`.
    Snapshot,
    /// A lock file in `locks/`.
    Lock,
    /// A garbage-collection file in `gc/`.
    Gc,
}

/// The only valid name of a [`FileKind::Config`] file.
pub const CONFIG_NAME: &str = "config";

/// The longest valid file name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

impl FileKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FileKind; 7] = [
        FileKind::Config,
        FileKind::Key,
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
        FileKind::Gc,
    ];

    /// The kinds that live in a folder of their own (all but [`FileKind::Config`]).
    pub const FOLDERS: [FileKind; 6] = [
        FileKind::Key,
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
        FileKind::Gc,
    ];

    /// A short lower-case noun for messages: `"config"`, `"key"`, `"pack"`, `"index"`, `"snapshot"`,
    /// `"lock"`, `"gc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Key => "key",
            FileKind::Pack => "pack",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshot",
            FileKind::Lock => "lock",
            FileKind::Gc => "gc",
        }
    }

    /// The top-level folder of this kind, or `None` for [`FileKind::Config`] (which sits at the root).
    pub fn folder(self) -> Option<&'static str> {
        match self {
            FileKind::Config => None,
            FileKind::Key => Some("keys"),
            FileKind::Pack => Some("data"),
            FileKind::Index => Some("index"),
            FileKind::Snapshot => Some("snapshots"),
            FileKind::Lock => Some("locks"),
            FileKind::Gc => Some("gc"),
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Check that `name` is a valid name for a file of `kind`.
///
/// [`FileKind::Config`] accepts only `"config"`. Every other kind accepts 1 to [`MAX_NAME_LEN`] characters
/// of `[0-9a-z-]`, and [`FileKind::Pack`] needs at least 2 (its first two characters name its folder).
/// Anything else, including `""`, `".."`, `"a/b"`, upper case and dots, is [`StorageError::InvalidName`].
pub fn validate_name(kind: FileKind, name: &str) -> Result<(), StorageError> {
    let ok = match kind {
        FileKind::Config => name == CONFIG_NAME,
        FileKind::Pack => name.len() >= 2 && is_plain_name(name),
        _ => is_plain_name(name),
    };
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidName {
            name: printable(name),
        })
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-')
}

/// A name as it may appear in a one-line message: control characters escaped, length capped.
fn printable(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_NAME_LEN + 8)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().count() > MAX_NAME_LEN + 8 {
        out.push('…');
    }
    out
}

/// The path of a file relative to the repository root, with `/` separators: `config`, `keys/<name>`,
/// `data/<first two chars>/<name>`, `index/<name>`, …. Validates the name first.
pub fn relative_path(kind: FileKind, name: &str) -> Result<String, StorageError> {
    validate_name(kind, name)?;
    Ok(match kind {
        FileKind::Config => CONFIG_NAME.to_owned(),
        FileKind::Pack => format!("data/{}/{name}", &name[..2]),
        other => format!("{}/{name}", other.folder().unwrap_or_default()),
    })
}

/// The 256 pack fan-out folder names `00`, `01`, … `ff`, in order.
pub fn pack_fanout_folders() -> impl Iterator<Item = String> {
    (0..=255u8).map(|i| format!("{i:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_frozen() {
        assert_eq!(relative_path(FileKind::Config, "config").unwrap(), "config");
        assert_eq!(relative_path(FileKind::Key, "k1").unwrap(), "keys/k1");
        assert_eq!(
            relative_path(FileKind::Pack, "ab12").unwrap(),
            "data/ab/ab12"
        );
        assert_eq!(relative_path(FileKind::Index, "i").unwrap(), "index/i");
        assert_eq!(
            relative_path(FileKind::Snapshot, "s").unwrap(),
            "snapshots/s"
        );
        assert_eq!(relative_path(FileKind::Lock, "l").unwrap(), "locks/l");
        assert_eq!(relative_path(FileKind::Gc, "g").unwrap(), "gc/g");
    }

    #[test]
    fn names_are_checked() {
        let long = "a".repeat(MAX_NAME_LEN);
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        for good in ["a", "0", "abc-def", long.as_str()] {
            assert!(validate_name(FileKind::Index, good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/",
            "A",
            "a.b",
            ".hidden",
            "a b",
            "ä",
            "a\n",
            too_long.as_str(),
        ] {
            let err = validate_name(FileKind::Snapshot, bad).unwrap_err();
            assert!(matches!(err, StorageError::InvalidName { .. }), "{bad:?}");
        }
        assert!(validate_name(FileKind::Pack, "a").is_err());
        assert!(validate_name(FileKind::Pack, "ab").is_ok());
        assert!(validate_name(FileKind::Config, "config").is_ok());
        assert!(validate_name(FileKind::Config, "other").is_err());
    }

    #[test]
    fn invalid_name_message_is_one_line() {
        let err = validate_name(FileKind::Key, "bad\nname").unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn fanout_has_256_folders() {
        let all: Vec<String> = pack_fanout_folders().collect();
        assert_eq!(all.len(), 256);
        assert_eq!(all[0], "00");
        assert_eq!(all[255], "ff");
    }
}
