//! Tests of keyless maintenance on real repositories written by the engine.

#![allow(clippy::unwrap_used)]

mod gc;
mod retention;
mod scrub;
mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use brr_core::snapshot::Snapshot;
use brr_storage::{Backend, FileKind, relative_path};

use super::KeylessRepo;
use crate::backup::{BackupOptions, ParentChoice, backup};
use crate::progress::NoProgress;
use crate::repo::Repository;

/// A backup of `path` (parent chosen automatically).
pub(super) fn snap(repo: &Arc<Repository>, path: &Path) -> Snapshot {
    backup(
        repo,
        &BackupOptions {
            paths: vec![path.to_path_buf()],
            parent: ParentChoice::Auto,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap()
    .snapshot
}

/// The keyless view of the same storage.
pub(super) fn view(repo: &Repository) -> KeylessRepo {
    KeylessRepo::open(repo.backend_arc()).unwrap()
}

/// The path of a repository file under the repository folder `root`.
pub(super) fn path_of(root: &Path, kind: FileKind, name: &str) -> PathBuf {
    root.join(relative_path(kind, name).unwrap())
}

/// Flips one bit of the byte at `offset` (from the end when negative); returns the original bytes.
pub(super) fn flip(path: &Path, offset: i64) -> Vec<u8> {
    let original = std::fs::read(path).unwrap();
    let mut b = original.clone();
    let i = if offset < 0 {
        b.len() - offset.unsigned_abs() as usize
    } else {
        offset as usize
    };
    b[i] ^= 0x01;
    std::fs::write(path, b).unwrap();
    original
}

/// The first file of a kind.
pub(super) fn first(backend: &dyn Backend, kind: FileKind) -> String {
    let mut names: Vec<String> = backend
        .list(kind)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort();
    names.remove(0)
}
