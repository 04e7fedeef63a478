//! A test repository in a local directory, driven through the `brr` binary.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::process::{Run, brr, run};

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
