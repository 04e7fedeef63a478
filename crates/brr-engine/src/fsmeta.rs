//! Reading file system metadata into tree nodes, and applying it back on restore.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use brr_core::tree::{Node, NodeKind, Timestamp, Xattr};
use parking_lot::Mutex;

/// Caches uid/gid → name lookups (they are slow and repeat).
#[derive(Debug, Default)]
pub struct OwnerNames {
    users: Mutex<HashMap<u32, Option<String>>>,
    groups: Mutex<HashMap<u32, Option<String>>>,
}

impl OwnerNames {
    /// User name of `uid`.
    pub fn user(&self, uid: u32) -> Option<String> {
        self.users
            .lock()
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    /// Group name of `gid`.
    pub fn group(&self, gid: u32) -> Option<String> {
        self.groups
            .lock()
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// A timestamp from seconds and nanoseconds as `stat` gives them.
pub fn ts(secs: i64, nanos: i64) -> Timestamp {
    Timestamp {
        secs,
        nanos: nanos.clamp(0, 999_999_999) as u32,
    }
}

/// Reads extended attributes of `path` without following symlinks. Unsupported file systems give none.
pub fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|name| {
            let value = xattr::get(path, &name).ok().flatten()?;
            Some(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Builds a node from `lstat` metadata; `kind` carries the kind-specific part.
pub fn node_from_metadata(
    name: &[u8],
    md: &std::fs::Metadata,
    kind: NodeKind,
    xattrs: Vec<Xattr>,
    owners: &OwnerNames,
) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        user: owners.user(md.uid()),
        group: owners.group(md.gid()),
        mtime: ts(md.mtime(), md.mtime_nsec()),
        atime: ts(md.atime(), md.atime_nsec()),
        ctime: ts(md.ctime(), md.ctime_nsec()),
        device: md.dev(),
        inode: md.ino(),
        links: md.nlink(),
        xattrs,
    }
}

/// Whether `md` describes a file with holes.
pub fn is_sparse(md: &std::fs::Metadata) -> bool {
    md.blocks().saturating_mul(512) < md.size()
}

/// True if `node` (from the parent snapshot) still describes the file with metadata `md`: same size,
/// mtime, ctime, inode and device. Then its content need not be read again.
pub fn unchanged(node: &Node, md: &std::fs::Metadata) -> bool {
    matches!(node.kind, NodeKind::File { size, .. } if size == md.size())
        && node.mtime == ts(md.mtime(), md.mtime_nsec())
        && node.ctime == ts(md.ctime(), md.ctime_nsec())
        && node.inode == md.ino()
        && node.device == md.dev()
}
