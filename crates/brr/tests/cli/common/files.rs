//! Comparing files and restored trees, listing, copying and damaging files.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Whether two files have the same bytes (streamed).
pub fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let (mut ra, mut rb) = (
        std::io::BufReader::with_capacity(1 << 20, fa),
        std::io::BufReader::with_capacity(1 << 20, fb),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut ra, &mut ba);
        let nb = read_full(&mut rb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).expect("read") {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// User extended attributes of a path (not following symlinks); None if the file system has none.
pub fn user_xattrs(path: &Path) -> Option<BTreeMap<OsString, Vec<u8>>> {
    let names = xattr::list(path).ok()?;
    let mut out = BTreeMap::new();
    for n in names {
        if n.as_encoded_bytes().starts_with(b"user.") {
            let v = xattr::get(path, &n).ok().flatten().unwrap_or_default();
            out.insert(n, v);
        }
    }
    Some(out)
}

fn kind(md: &fs::Metadata) -> &'static str {
    let t = md.file_type();
    if t.is_dir() {
        "dir"
    } else if t.is_file() {
        "file"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else {
        "char device"
    }
}

/// What [`assert_same_tree`] compares beyond types, names, contents and link targets.
#[derive(Clone, Copy)]
pub struct Compare {
    /// Permission bits including set-id and sticky.
    pub mode: bool,
    /// Modification times, to the nanosecond.
    pub mtime: bool,
    /// Owner and group.
    pub owner: bool,
    /// Hard-link identity (same inode after restore exactly when same inode before).
    pub hard_links: bool,
    /// Sparse files stay sparse.
    pub sparse: bool,
    /// User extended attributes.
    pub xattrs: bool,
}

impl Compare {
    /// Everything.
    pub const ALL: Compare = Compare {
        mode: true,
        mtime: true,
        owner: true,
        hard_links: true,
        sparse: true,
        xattrs: true,
    };
    /// Types, names, contents and symlink targets only.
    pub const CONTENT: Compare = Compare {
        mode: false,
        mtime: false,
        owner: false,
        hard_links: false,
        sparse: false,
        xattrs: false,
    };
}

/// Asserts that `b` reproduces `a` recursively (including `a` itself); returns the number of entries compared.
pub fn assert_same_tree(a: &Path, b: &Path, cmp: Compare) -> usize {
    let mut links = (HashMap::new(), HashMap::new());
    let n = compare_entry(a, b, Path::new("."), cmp, &mut links);
    if cmp.hard_links {
        // Same inode in `b` exactly when same inode in `a`.
        let (a_to_b, _) = &links;
        let mut seen: HashMap<(u64, u64), (u64, u64)> = HashMap::new();
        for (ia, ib) in a_to_b.values() {
            if let Some(prev) = seen.insert(*ib, *ia) {
                assert_eq!(
                    prev, *ia,
                    "two different source files were restored as one inode"
                );
            }
        }
    }
    n
}

type LinkMaps = (
    HashMap<PathBuf, ((u64, u64), (u64, u64))>,
    HashMap<(u64, u64), (u64, u64)>,
);

fn compare_entry(a: &Path, b: &Path, rel: &Path, cmp: Compare, links: &mut LinkMaps) -> usize {
    let ma = fs::symlink_metadata(a).unwrap_or_else(|e| panic!("stat {}: {e}", a.display()));
    let mb = fs::symlink_metadata(b)
        .unwrap_or_else(|e| panic!("{} missing after restore: {e}", rel.display()));
    let what = rel.display();
    assert_eq!(kind(&ma), kind(&mb), "{what}: type differs");
    if cmp.mode {
        assert_eq!(
            ma.mode() & 0o7777,
            mb.mode() & 0o7777,
            "{what}: mode differs ({:o} vs {:o})",
            ma.mode() & 0o7777,
            mb.mode() & 0o7777
        );
    }
    if cmp.owner {
        assert_eq!(
            (ma.uid(), ma.gid()),
            (mb.uid(), mb.gid()),
            "{what}: owner differs"
        );
    }
    if cmp.xattrs
        && !ma.file_type().is_symlink()
        && let Some(xa) = user_xattrs(a)
    {
        assert_eq!(Some(xa), user_xattrs(b), "{what}: user xattrs differ");
    }
    let mut n = 1;
    let t = ma.file_type();
    if t.is_dir() {
        let names = |p: &Path| {
            let mut v: Vec<OsString> = fs::read_dir(p)
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect();
            v.sort();
            v
        };
        let (na, nb) = (names(a), names(b));
        assert_eq!(na, nb, "{what}: entries differ");
        for name in &na {
            n += compare_entry(&a.join(name), &b.join(name), &rel.join(name), cmp, links);
        }
    } else if t.is_file() {
        assert_eq!(ma.len(), mb.len(), "{what}: size differs");
        assert!(same_content(a, b), "{what}: content differs");
        if cmp.sparse && ma.blocks() * 512 < ma.len() / 2 {
            assert!(
                mb.blocks() * 512 < mb.len() / 2,
                "{what}: no longer sparse ({} blocks for {} bytes)",
                mb.blocks(),
                mb.len()
            );
        }
        if cmp.hard_links && ma.nlink() > 1 {
            let (ia, ib) = ((ma.dev(), ma.ino()), (mb.dev(), mb.ino()));
            if let Some(prev) = links.1.insert(ia, ib) {
                assert_eq!(prev, ib, "{what}: hard link not restored as the same inode");
            }
            links.0.insert(rel.to_path_buf(), (ia, ib));
            assert_eq!(ma.nlink(), mb.nlink(), "{what}: link count differs");
        }
    } else if t.is_symlink() {
        assert_eq!(
            fs::read_link(a).expect("readlink"),
            fs::read_link(b).expect("readlink"),
            "{what}: symlink target differs"
        );
    }
    // Times last: directories are compared after their entries were read (reading does not change mtime).
    if cmp.mtime {
        assert_eq!(
            (ma.mtime(), ma.mtime_nsec()),
            (mb.mtime(), mb.mtime_nsec()),
            "{what}: mtime differs"
        );
    }
    n
}

/// The regular files below `root`, as sorted relative paths.
pub fn list_files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).expect("list").flatten() {
            let p = e.path();
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                walk(root, &p, out);
            } else if t.is_file() {
                out.push(p.strip_prefix(root).expect("inside").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Copies a directory tree of regular files and directories (a repository).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create copy");
    for e in fs::read_dir(from).expect("list").flatten() {
        let (p, q) = (e.path(), to.join(e.file_name()));
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&p, &q);
        } else {
            fs::copy(&p, &q).unwrap_or_else(|err| panic!("copy {}: {err}", p.display()));
        }
    }
}

/// Flips the bits of one byte of a file.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut data = fs::read(path).expect("read");
    let i = usize::try_from(offset).expect("offset");
    data[i] ^= 0x5a;
    fs::write(path, data).expect("write");
}
