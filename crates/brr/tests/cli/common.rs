//! Shared helpers: running `brr`, test repositories, generated data, comparing restored trees.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The password of every test repository.
pub const PASSWORD: &str = "correct horse battery staple";

/// A `brr` command with a clean environment: none of the caller's `BRR_*` settings, no user config file,
/// no backtraces requested, standard input closed (no prompts), and the test password in `BRR_PASSWORD`.
pub fn brr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_brr"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BRR_") {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", "/nonexistent/brr-cli-tests")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("BRR_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    c
}

/// What a finished `brr` process left behind.
pub struct Run {
    /// The command line, for messages.
    pub what: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Asserts the exit code, and that nothing panicked.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        assert_no_panic(&self);
        self
    }

    /// Asserts a failure with `code` and a single-line `brr: error:` message on standard error.
    pub fn expect_error(self, code: i32) -> Self {
        let run = self.expect_code(code);
        assert_one_line_error(&run);
        run
    }
}

/// Runs a command to completion.
pub fn run(cmd: &mut Command) -> Run {
    let what = format!(
        "brr {}",
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().expect("spawn brr");
    Run {
        what,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts that the process neither panicked nor offered a backtrace.
pub fn assert_no_panic(run: &Run) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !run.stderr.contains(bad) && !run.stdout.contains(bad),
            "output mentions {bad:?}:\n{run}"
        );
    }
}

/// Asserts that standard error holds exactly one error, on one line starting with `brr: error:`, as its last
/// line. Lines before it may only be log records (`<timestamp>  WARN …`) or `brr: warning:` lines.
pub fn assert_one_line_error(run: &Run) {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let errors = lines
        .iter()
        .filter(|l| l.starts_with("brr: error:"))
        .count();
    assert_eq!(
        errors, 1,
        "expected exactly one `brr: error:` line on stderr:\n{run}"
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("brr: error:")),
        "the error is not the last line:\n{run}"
    );
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.starts_with("brr: warning:") || is_log_record(l),
            "unexpected line on stderr {l:?}:\n{run}"
        );
    }
}

/// `2026-11-23T11:51:26.407044Z  WARN message…` (tracing's default format).
fn is_log_record(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let stamp = words.next().unwrap_or("");
    let level = words.next().unwrap_or("");
    stamp.len() > 20
        && stamp.as_bytes()[4] == b'-'
        && stamp.contains('T')
        && ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level)
}

/// A test repository in a local directory.
pub struct Repo {
    /// Its directory.
    pub dir: PathBuf,
}

/// Cheap key derivation for tests.
pub const CHEAP_KDF: [&str; 6] = [
    "--kdf-memory-mib",
    "19",
    "--kdf-iterations",
    "2",
    "--kdf-parallelism",
    "1",
];
/// Small chunks and packs: multi-chunk files and many packs from little data.
pub const SMALL: [&str; 4] = ["--chunk-size-kib", "64", "--pack-size-mib", "1"];

impl Repo {
    /// Initialises a repository with cheap KDF settings, 64 KiB chunks and 1 MiB packs.
    pub fn init(dir: &Path) -> Repo {
        let repo = Repo {
            dir: dir.to_path_buf(),
        };
        let mut args: Vec<&str> = vec!["init"];
        args.extend(CHEAP_KDF);
        args.extend(SMALL);
        repo.ok(args);
        repo
    }

    /// An existing repository (no init).
    pub fn at(dir: &Path) -> Repo {
        Repo {
            dir: dir.to_path_buf(),
        }
    }

    /// `brr --repo DIR ARGS…`, not started.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = brr();
        c.arg("--repo").arg(&self.dir).args(args);
        c
    }

    /// Runs `brr --repo DIR ARGS…`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.cmd(args))
    }

    /// Runs and asserts success.
    pub fn ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(args).expect_code(0)
    }

    /// Runs with `--json`, asserts success, parses standard output.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self.ok(all).json()
    }

    /// Backs up `sources` and returns the JSON summary of the run (`{snapshot, summary, …}`).
    pub fn backup(&self, sources: &[&Path]) -> Value {
        let mut args: Vec<OsString> = vec!["backup".into()];
        args.extend(sources.iter().map(|p| p.as_os_str().to_os_string()));
        self.json(args)
    }

    /// Restores `snapshot` into `target` with `--verify`; asserts success, a complete report and no damage.
    pub fn restore_verified(&self, snapshot: &str, target: &Path) -> Value {
        let v = self.json([
            OsStr::new("restore"),
            OsStr::new(snapshot),
            OsStr::new("--target"),
            target.as_os_str(),
            OsStr::new("--verify"),
        ]);
        let report = &v["report"];
        assert_eq!(
            report["damaged"].as_array().map(Vec::len),
            Some(0),
            "restore found damage: {v:#}"
        );
        assert_eq!(
            report["errors"].as_array().map(Vec::len),
            Some(0),
            "restore reported errors: {v:#}"
        );
        v
    }

    /// The snapshots (`brr snapshots --json`).
    pub fn snapshots(&self) -> Vec<Value> {
        self.json(["snapshots"])
            .as_array()
            .expect("snapshots --json gives an array")
            .clone()
    }

    /// Every repository file of one folder (`data`, `index`, …), recursively, without temporary files.
    pub fn files(&self, folder: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&self.dir.join(folder), &mut out);
        out.sort();
        out
    }

    /// Total size of the files of a folder.
    pub fn size_of(&self, folder: &str) -> u64 {
        self.files(folder)
            .iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// The path of a repository file relative to the repository (`data/ab/ab…`).
    pub fn rel(&self, file: &Path) -> String {
        file.strip_prefix(&self.dir)
            .expect("file inside the repository")
            .to_string_lossy()
            .into_owned()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Where `restore` puts `source` under `target` (it recreates the absolute path).
pub fn restored(target: &Path, source: &Path) -> PathBuf {
    target.join(source.strip_prefix("/").expect("absolute source path"))
}

/// A temporary directory for one test.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("brr-cli-")
        .tempdir()
        .expect("temporary directory")
}

/// Whether the tests run as root (permission checks do not apply then).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` pseudo-random (incompressible) bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        for c in v.chunks_mut(8) {
            let x = self.next_u64().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
        v
    }

    /// `n` bytes of compressible text.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 8] = [
            "backup ",
            "restore ",
            "chunk ",
            "pack ",
            "index\n",
            "snapshot ",
            "tree ",
            "key ",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(WORDS[(self.next_u64() % 8) as usize].as_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Writes a file, creating its parent directories.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("create parent directories");
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes `size` pseudo-random bytes in 1 MiB pieces.
pub fn write_random(path: &Path, size: usize, seed: u64) {
    use std::io::Write;
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("create parent directories");
    }
    let mut rng = Rng::new(seed);
    let mut f = std::io::BufWriter::new(fs::File::create(path).expect("create file"));
    let mut left = size;
    while left > 0 {
        let n = left.min(1 << 20);
        f.write_all(&rng.bytes(n)).expect("write");
        left -= n;
    }
    f.flush().expect("flush");
}

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

/// A value of a JSON summary as u64.
pub fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key:?} in {v:#}"))
}
