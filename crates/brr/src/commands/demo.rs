//! `brr demo`: the whole job on a generated sample tree, on embedded defaults.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use brr_engine::backup::{BackupOptions, backup};
use brr_engine::restore::{RestoreOptions, restore};
use brr_engine::{InitOptions, Repository};

use crate::cli::DemoArgs;
use crate::context::{CliError, Context};
use crate::output::human_bytes;
use crate::progress::Bar;

fn io(what: &str, p: &Path, e: std::io::Error) -> CliError {
    CliError::Other(format!("{what} {}: {e}", p.display()))
}

/// A small deterministic generator so the demo needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "backup", "restore", "snapshot", "chunk", "pack", "index", "fn", "let", "match",
            "error", "data", "key",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(WORDS[(self.next() % 12) as usize].as_bytes());
            v.push(if self.next().is_multiple_of(9) {
                b'\n'
            } else {
                b' '
            });
        }
        v.truncate(n);
        v
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    }
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| io("write", path, e))
}

fn make_tree(root: &Path, size: u64) -> Result<(), CliError> {
    let mut rng = Rng(0x5eed_b4b4);
    let budget = size as usize;
    let mut made = 0usize;
    let mut i = 0;
    while made < budget * 4 / 10 {
        let n = 1024 + (rng.next() % 60_000) as usize;
        write(
            &root.join(format!("src/d{:02}/file{i:05}.txt", i % 17)),
            &rng.text(n),
        )?;
        made += n;
        i += 1;
    }
    let media = rng.bytes(budget / 4);
    write(&root.join("media/video.bin"), &media)?;
    write(&root.join("media/copy-of-video.bin"), &media)?;
    let mut image = vec![0u8; budget / 10];
    let block = rng.bytes(1 << 16);
    for (k, chunk) in image.chunks_mut(1 << 16).enumerate() {
        if k % 3 == 1 {
            let n = chunk.len();
            chunk.copy_from_slice(&block[..n]);
        }
    }
    write(&root.join("vm/disk.img"), &image)?;
    write(&root.join("empty-file"), b"")?;
    std::fs::create_dir_all(root.join("empty-dir")).map_err(|e| io("create", root, e))?;
    let _ = std::os::unix::fs::symlink("src/d00", root.join("link-to-src"));
    Ok(())
}

fn same_tree(a: &Path, b: &Path) -> Result<u64, CliError> {
    let mut files = 0;
    for entry in std::fs::read_dir(a).map_err(|e| io("list", a, e))? {
        let entry = entry.map_err(|e| io("list", a, e))?;
        let (pa, pb) = (entry.path(), b.join(entry.file_name()));
        let md = std::fs::symlink_metadata(&pa).map_err(|e| io("stat", &pa, e))?;
        if md.is_dir() {
            files += same_tree(&pa, &pb)?;
        } else if md.file_type().is_symlink() {
            if std::fs::read_link(&pa).ok() != std::fs::read_link(&pb).ok() {
                return Err(CliError::Other(format!(
                    "symlink {} differs after restore",
                    pb.display()
                )));
            }
        } else {
            let x = std::fs::read(&pa).map_err(|e| io("read", &pa, e))?;
            let y = std::fs::read(&pb).map_err(|e| io("read", &pb, e))?;
            if x != y {
                return Err(CliError::Other(format!(
                    "{} differs after restore",
                    pb.display()
                )));
            }
            files += 1;
        }
    }
    Ok(files)
}

pub fn run(ctx: &Context, a: &DemoArgs) -> Result<i32, CliError> {
    let base: PathBuf = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("brr-demo-{}", std::process::id())),
    };
    if base.exists()
        && std::fs::read_dir(&base)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::usage(format!(
            "{} exists and is not empty; give an empty --dir",
            base.display()
        )));
    }
    let (source, repo_dir, target) = (base.join("data"), base.join("repo"), base.join("restored"));
    outln!("brr demo in {}", base.display());
    make_tree(&source, a.size_mib * 1024 * 1024)?;
    outln!(
        "1. made a sample tree of {} MiB in {}",
        a.size_mib,
        source.display()
    );

    let backend: Arc<dyn brr_storage::Backend> =
        Arc::new(brr_storage::LocalBackend::new(&repo_dir));
    let password = std::env::var("BRR_PASSWORD").unwrap_or_else(|_| "brr-demo-password".into());
    let repo = Arc::new(Repository::init(
        backend,
        password.as_bytes(),
        &InitOptions::default(),
    )?);
    outln!(
        "2. created an encrypted repository in {} (password from BRR_PASSWORD, or a demo one)",
        repo_dir.display()
    );

    let bar = Bar::new(ctx.global.quiet, ctx.global.json);
    let opts = BackupOptions {
        paths: vec![source.clone()],
        threads: ctx.threads(),
        ..Default::default()
    };
    let first = backup(&repo, &opts, &bar)?.snapshot;
    let s = &first.meta.summary;
    outln!(
        "3. first backup {}: {} files, {} read, {} stored after dedup and compression, {:.2}s",
        first.id.short(),
        s.files_new,
        human_bytes(s.bytes_read),
        human_bytes(s.bytes_stored),
        s.duration_secs
    );

    write(
        &source.join("src/d00/new-file.txt"),
        b"written after the first backup\n",
    )?;
    let second = backup(&repo, &opts, &bar)?.snapshot;
    let s = &second.meta.summary;
    outln!(
        "4. second backup {}: {} unmodified files skipped without reading, {} new, {} stored, {:.2}s",
        second.id.short(),
        s.files_unmodified,
        s.files_new,
        human_bytes(s.bytes_stored),
        s.duration_secs
    );

    let index = repo.load_index()?;
    let ropts = RestoreOptions {
        target: target.clone(),
        include: Vec::new(),
        verify: true,
        overwrite: false,
        threads: ctx.threads(),
    };
    let report = restore(&repo, &index, &second, None, &ropts, &bar)?;
    outln!(
        "5. restored {} files ({}) to {} and verified them against the snapshot",
        report.files,
        human_bytes(report.bytes),
        target.display()
    );
    let restored_source = target.join(source.strip_prefix("/").unwrap_or(&source));
    let compared = same_tree(&source, &restored_source)?;
    outln!("6. compared {compared} restored files with the originals: identical");
    if !report.damaged.is_empty() {
        return Err(CliError::Other(format!(
            "{} files were damaged",
            report.damaged.len()
        )));
    }
    outln!(
        "done. try: BRR_REPO={} BRR_PASSWORD=… brr snapshots",
        repo_dir.display()
    );
    Ok(0)
}
