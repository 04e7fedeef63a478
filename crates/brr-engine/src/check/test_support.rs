//! Helpers shared by the tests of check, forget, prune and stats.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use brr_core::chunker::ChunkerParams;
use brr_core::keyslot::KdfParams;
use brr_storage::{Backend, LocalBackend};

use crate::repo::{InitOptions, Repository};

/// Fast test settings: cheap KDF, small chunks, 1 MiB packs.
pub(crate) fn init_options() -> InitOptions {
    InitOptions {
        kdf: KdfParams {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        },
        chunker: ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            normalization: 1,
        },
        pack_size: 1 << 20,
        ..Default::default()
    }
}

/// A repository on `backend`.
pub(crate) fn init_on(backend: Arc<dyn Backend>) -> Arc<Repository> {
    Arc::new(Repository::init(backend, b"test password", &init_options()).unwrap())
}

/// A temp dir with a local repository in `repo/` and an empty source folder `src/`.
pub(crate) fn new_repo() -> (tempfile::TempDir, PathBuf, Arc<Repository>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let repo = init_on(Arc::new(LocalBackend::new(dir.path().join("repo"))));
    (dir, src, repo)
}

/// Writes `len` pseudo-random (incompressible, distinct per seed) bytes.
pub(crate) fn write_file(path: &Path, seed: u64, len: usize) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut data = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut data);
    std::fs::write(path, data).unwrap();
}
