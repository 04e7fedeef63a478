//! File system operations of a restore that never follow a symlink out of the target.
//!
//! Directories and files are created relative to open directory descriptors (`mkdirat`, `openat` with
//! `O_NOFOLLOW | O_EXCL`), so no path component is ever resolved through a symlink. Later steps reopen a
//! file by path with `O_NOFOLLOW` and check that it is still the inode created here ([`FileId`]), so a
//! path swapped underneath the restore is refused rather than written through.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use brr_core::tree::{Node, NodeKind, Timestamp};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstat, fstatat, futimens,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat,
};

/// Device and inode of something the restore created.
pub(super) type FileId = (u64, u64);

/// Who is restoring: decides which metadata can be applied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Privileges {
    /// Effective UID 0.
    pub root: bool,
    /// Effective UID.
    pub euid: u32,
}

impl Privileges {
    pub(super) fn current() -> Self {
        let euid = nix::unistd::geteuid();
        Privileges {
            root: euid.is_root(),
            euid: euid.as_raw(),
        }
    }
}

fn id_of(fd: impl AsFd) -> io::Result<FileId> {
    let st = fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Opens the directory `name` in `parent`, refusing symlinks.
pub(super) fn open_dir_at(parent: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the restore target itself (the user chose it: following a symlink here is fine).
pub(super) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// Removes whatever non-directory entry is at `name` (overwrite mode).
fn remove_non_dir(parent: impl AsFd, name: &OsStr) -> io::Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn is_dir_at(parent: impl AsFd, name: &OsStr) -> io::Result<bool> {
    let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR)
}

/// Creates directory `name` in `parent` (or, with `overwrite`, reuses a real directory there and replaces
/// anything else) and opens it. Created with mode 0700; the snapshot's mode is applied at the end.
pub(super) fn ensure_dir(
    parent: &OwnedFd,
    name: &OsStr,
    overwrite: bool,
) -> io::Result<(OwnedFd, FileId)> {
    match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) if overwrite => {
            if is_dir_at(parent, name)? {
                let fd = open_dir_at(parent, name)?;
                // An existing directory must accept the restored children until its final mode is set.
                let st = fstat(&fd)?;
                fchmod(&fd, Mode::from_bits_truncate((st.st_mode & 0o7777) | 0o700))?;
                let id = id_of(&fd)?;
                return Ok((fd, id));
            }
            remove_non_dir(parent, name)?;
            mkdirat(parent, name, Mode::from_bits_truncate(0o700))?;
        }
        Err(e) => return Err(e.into()),
    }
    let fd = open_dir_at(parent, name)?;
    let id = id_of(&fd)?;
    Ok((fd, id))
}

/// Outcome of creating a file.
pub(super) enum Created {
    /// Created (empty, mode 0600) and sized.
    File(FileId),
    /// A directory is in the way (overwrite mode): not replaced.
    DirInTheWay,
}

/// Creates a new regular file `name` in `parent` with `size` bytes (a hole until written). With
/// `overwrite`, an existing non-directory entry is unlinked first (never written through: it may be a
/// hard link to a file elsewhere).
pub(super) fn create_file(
    parent: &OwnedFd,
    name: &OsStr,
    size: u64,
    overwrite: bool,
) -> io::Result<Created> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o600);
    let fd = match openat(parent, name, flags, mode) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) if overwrite => {
            if is_dir_at(parent, name)? {
                return Ok(Created::DirInTheWay);
            }
            remove_non_dir(parent, name)?;
            openat(parent, name, flags, mode)?
        }
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    if size > 0 {
        file.set_len(size)?;
    }
    Ok(Created::File(id_of(&file)?))
}

/// Reopens a restored file by path without following a symlink, and checks it is the inode we created.
pub(super) fn reopen(path: &Path, write: bool, expect: FileId) -> io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    check_id(&f, expect, path)?;
    Ok(f)
}

fn check_id(f: &File, expect: FileId, path: &Path) -> io::Result<()> {
    let md = f.metadata()?;
    if (md.dev(), md.ino()) != expect {
        return Err(io::Error::other(format!(
            "{} was replaced during the restore; refusing to touch it",
            path.display()
        )));
    }
    Ok(())
}

/// Walks `rel` from the target's descriptor one component at a time, refusing symlinks, and opens the
/// directory.
pub(super) fn open_dir_beneath(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    let mut cur = root.try_clone()?;
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => cur = open_dir_at(&cur, n)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unexpected component in {}", rel.display()),
                ));
            }
        }
    }
    Ok(cur)
}

fn split(rel: &Path) -> (&Path, &OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or(OsStr::new("")),
    )
}

/// `name` + `suffix`, then `name` + `suffix` + `-1`, `-2`, …
fn suffixed(name: &OsStr, suffix: &str, n: u32) -> std::ffi::OsString {
    let mut new = name.as_bytes().to_vec();
    new.extend_from_slice(suffix.as_bytes());
    if n > 0 {
        new.extend_from_slice(format!("-{n}").as_bytes());
    }
    OsStr::from_bytes(&new).to_os_string()
}

/// Links `from` (in `from_dir`) as `name` + `suffix` in `dir`, choosing the first free variant of that
/// name: never replaces an existing entry (the snapshot may hold a file of that name too).
fn link_free_name(
    from_dir: &OwnedFd,
    from: &OsStr,
    dir: &OwnedFd,
    name: &OsStr,
    suffix: &str,
) -> io::Result<std::ffi::OsString> {
    for n in 0..1000u32 {
        let new = suffixed(name, suffix, n);
        match linkat(from_dir, from, dir, new.as_os_str(), AtFlags::empty()) {
            Ok(()) => return Ok(new),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name for {}{suffix}", name.to_string_lossy()),
    ))
}

/// Renames `rel` to `rel` + `suffix` (or the first free variant, see [`link_free_name`]) in its
/// directory; returns the new relative path.
pub(super) fn rename_with_suffix(root: &OwnedFd, rel: &Path, suffix: &str) -> io::Result<PathBuf> {
    let (parent, name) = split(rel);
    let dir = open_dir_beneath(root, parent)?;
    // link + unlink is an atomic "rename unless the new name exists"; without hard link support,
    // check and rename.
    match link_free_name(&dir, name, &dir, name, suffix) {
        Ok(new) => {
            unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir)?;
            Ok(parent.join(new))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            for n in 0..1000u32 {
                let new = suffixed(name, suffix, n);
                match fstatat(&dir, new.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(_) => continue,
                    Err(Errno::ENOENT) => {
                        nix::fcntl::renameat(&dir, name, &dir, new.as_os_str())?;
                        return Ok(parent.join(new));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("no free name for {}{suffix}", rel.display()),
            ))
        }
    }
}

/// Creates a hard link to the restored file `to` named `rel` + `suffix` (or the first free variant);
/// returns its relative path.
pub(super) fn hard_link_with_suffix(
    root: &OwnedFd,
    to: &Path,
    rel: &Path,
    suffix: &str,
) -> io::Result<PathBuf> {
    let (to_parent, to_name) = split(to);
    let (parent, name) = split(rel);
    let from_dir = open_dir_beneath(root, to_parent)?;
    let dir = open_dir_beneath(root, parent)?;
    Ok(parent.join(link_free_name(&from_dir, to_name, &dir, name, suffix)?))
}

/// Creates a hard link `rel` to the restored file `to` (both relative to the target).
pub(super) fn hard_link(root: &OwnedFd, to: &Path, rel: &Path, overwrite: bool) -> io::Result<()> {
    let (to_parent, to_name) = split(to);
    let (parent, name) = split(rel);
    let from_dir = open_dir_beneath(root, to_parent)?;
    let dir = open_dir_beneath(root, parent)?;
    match linkat(&from_dir, to_name, &dir, name, AtFlags::empty()) {
        Err(Errno::EEXIST) if overwrite && !is_dir_at(&dir, name)? => {
            remove_non_dir(&dir, name)?;
            linkat(&from_dir, to_name, &dir, name, AtFlags::empty())?;
        }
        r => r?,
    }
    Ok(())
}

/// Result of creating a special entry.
pub(super) enum Special {
    /// Created; metadata still to apply.
    Created,
    /// Not created, with the reason (for the report).
    Skipped(String),
    /// Sockets are not recreated; nothing to report.
    Socket,
}

/// Creates a symlink, FIFO or device node `rel`.
pub(super) fn create_special(
    root: &OwnedFd,
    rel: &Path,
    node: &Node,
    privileges: Privileges,
    overwrite: bool,
) -> io::Result<Special> {
    let (parent, name) = split(rel);
    let dir = open_dir_beneath(root, parent)?;
    let create = || -> nix::Result<()> {
        let perm = Mode::from_bits_truncate(node.mode & 0o777);
        match &node.kind {
            NodeKind::Symlink { target } => symlinkat(OsStr::from_bytes(target), &dir, name),
            NodeKind::Fifo => mkfifoat(&dir, name, perm),
            NodeKind::CharDevice { rdev } => mknodat(&dir, name, SFlag::S_IFCHR, perm, *rdev),
            NodeKind::BlockDevice { rdev } => mknodat(&dir, name, SFlag::S_IFBLK, perm, *rdev),
            _ => Ok(()),
        }
    };
    match &node.kind {
        NodeKind::Socket => return Ok(Special::Socket),
        NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } if !privileges.root => {
            return Ok(Special::Skipped(
                "device node not created: creating devices needs root".into(),
            ));
        }
        _ => {}
    }
    match create() {
        Ok(()) => {}
        Err(Errno::EEXIST) if overwrite => {
            if is_dir_at(&dir, name)? {
                return Ok(Special::Skipped(
                    "not created: a directory of that name is in the way".into(),
                ));
            }
            remove_non_dir(&dir, name)?;
            create()?;
        }
        Err(e) => return Ok(Special::Skipped(format!("not created: {e}"))),
    }
    Ok(Special::Created)
}

fn timespec(t: Timestamp) -> TimeSpec {
    TimeSpec::new(
        t.secs as libc::time_t,
        i64::from(t.nanos.min(999_999_999)) as _,
    )
}

pub(super) fn wants_owner(node: &Node, p: Privileges) -> Option<(Option<Uid>, Option<Gid>)> {
    if p.root {
        Some((Some(Uid::from_raw(node.uid)), Some(Gid::from_raw(node.gid))))
    } else if node.uid == p.euid {
        // Our own file: the group can be restored if we are a member; failure is not an error.
        Some((None, Some(Gid::from_raw(node.gid))))
    } else {
        None
    }
}

/// Extended attributes an unprivileged process cannot set are skipped silently, as ownership is.
pub(super) fn settable_xattr(name: &[u8], p: Privileges) -> bool {
    p.root || !(name.starts_with(b"trusted.") || name.starts_with(b"security."))
}

/// Applies ownership, xattrs, mode and times, in that order (chown clears set-id bits and file
/// capabilities, so it goes first; times last), through an open descriptor of a file, directory or FIFO.
/// Problems are appended to `errors`.
pub(super) fn apply_meta_fd(
    f: &File,
    node: &Node,
    what: &str,
    p: Privileges,
    errors: &mut Vec<String>,
) {
    if let Some((u, g)) = wants_owner(node, p)
        && let Err(e) = fchown(f, u, g)
        && p.root
    {
        errors.push(format!("{what}: chown {}:{}: {e}", node.uid, node.gid));
    }
    for x in &node.xattrs {
        if !settable_xattr(&x.name, p) {
            continue;
        }
        if let Err(e) = xattr::FileExt::set_xattr(f, OsStr::from_bytes(&x.name), &x.value) {
            errors.push(format!(
                "{what}: extended attribute {}: {e}",
                String::from_utf8_lossy(&x.name)
            ));
        }
    }
    if let Err(e) = fchmod(f, Mode::from_bits_truncate(node.mode & 0o7777)) {
        errors.push(format!("{what}: chmod {:o}: {e}", node.mode & 0o7777));
    }
    if let Err(e) = futimens(f, &timespec(node.atime), &timespec(node.mtime)) {
        errors.push(format!("{what}: setting times: {e}"));
    }
}

/// Applies metadata to a symlink or device node by name, never following the entry.
pub(super) fn apply_meta_at(
    root: &OwnedFd,
    target: &Path,
    rel: &Path,
    node: &Node,
    what: &str,
    p: Privileges,
    errors: &mut Vec<String>,
) {
    let (parent, name) = split(rel);
    let dir = match open_dir_beneath(root, parent) {
        Ok(d) => d,
        Err(e) => {
            errors.push(format!("{what}: metadata not applied: {e}"));
            return;
        }
    };
    if let Some((u, g)) = wants_owner(node, p)
        && let Err(e) = fchownat(&dir, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
        && p.root
    {
        errors.push(format!("{what}: chown {}:{}: {e}", node.uid, node.gid));
    }
    let is_link = matches!(node.kind, NodeKind::Symlink { .. });
    for x in &node.xattrs {
        if !settable_xattr(&x.name, p) || (is_link && x.name.starts_with(b"user.")) {
            // Linux allows no user.* attributes on symlinks; the backup cannot have read any.
            continue;
        }
        // The parent components are real directories created by this restore.
        if let Err(e) = xattr::set(target.join(rel), OsStr::from_bytes(&x.name), &x.value) {
            errors.push(format!(
                "{what}: extended attribute {}: {e}",
                String::from_utf8_lossy(&x.name)
            ));
        }
    }
    if !is_link
        && let Err(e) = fchmodat(
            &dir,
            name,
            Mode::from_bits_truncate(node.mode & 0o7777),
            FchmodatFlags::NoFollowSymlink,
        )
    {
        errors.push(format!("{what}: chmod {:o}: {e}", node.mode & 0o7777));
    }
    if let Err(e) = utimensat(
        &dir,
        name,
        &timespec(node.atime),
        &timespec(node.mtime),
        UtimensatFlags::NoFollowSymlink,
    ) {
        errors.push(format!("{what}: setting times: {e}"));
    }
}

/// Opens a directory or FIFO created by the restore for applying metadata, checking its identity.
pub(super) fn open_for_meta(
    root: &OwnedFd,
    rel: &Path,
    expect: Option<FileId>,
) -> io::Result<File> {
    let (parent, name) = split(rel);
    let dir = open_dir_beneath(root, parent)?;
    if name.is_empty() {
        let f = File::from(dir);
        if let Some(expect) = expect {
            check_id(&f, expect, rel)?;
        }
        return Ok(f);
    }
    open_child_for_meta(&dir, rel, expect)
}

/// Opens the last component of `rel` in its already open parent directory `parent`, never following a
/// symlink, for applying metadata; checks its identity.
pub(super) fn open_child_for_meta(
    parent: impl AsFd,
    rel: &Path,
    expect: Option<FileId>,
) -> io::Result<File> {
    let (_, name) = split(rel);
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let f = File::from(fd);
    if let Some(expect) = expect {
        check_id(&f, expect, rel)?;
    }
    Ok(f)
}
