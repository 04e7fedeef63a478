//! Backups over a backend that answers blob look-ups: blobs another machine stored after this backup
//! loaded its index are neither sealed nor uploaded; local repositories have no look-up stage.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brr_core::id::BlobId;
use brr_storage::{Backend, FileInfo, FileKind, LocalBackend, StorageError};

use super::saver::lookup::{BATCH_CHUNKS, BUDGET_BYTES};
use super::*;
use crate::index::Index;
use crate::{InitOptions, NoProgress};

/// A folder repository that answers look-ups as a server does: present = in a pack that a stored
/// index file lists (and no GC record condemns), read from the stored files at each request.
#[derive(Debug)]
struct Answering {
    inner: LocalBackend,
    requests: AtomicUsize,
    largest: AtomicUsize,
    /// Look-ups fail as an unreachable server's do.
    failing: std::sync::atomic::AtomicBool,
}

impl Answering {
    fn new(root: &Path) -> Answering {
        Answering {
            inner: LocalBackend::new(root),
            requests: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Backend for Answering {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> std::result::Result<(), StorageError> {
        self.inner.create()
    }
    fn read(&self, kind: FileKind, name: &str) -> std::result::Result<Vec<u8>, StorageError> {
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> std::result::Result<Vec<u8>, StorageError> {
        self.inner.read_range(kind, name, offset, len)
    }
    fn size(&self, kind: FileKind, name: &str) -> std::result::Result<u64, StorageError> {
        self.inner.size(kind, name)
    }
    fn write(
        &self,
        kind: FileKind,
        name: &str,
        data: &[u8],
    ) -> std::result::Result<(), StorageError> {
        self.inner.write(kind, name, data)
    }
    fn list(&self, kind: FileKind) -> std::result::Result<Vec<FileInfo>, StorageError> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> std::result::Result<(), StorageError> {
        self.inner.remove(kind, name)
    }
    fn lookup_blobs(&self, ids: &[String]) -> std::result::Result<Option<Vec<bool>>, StorageError> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if self.failing.load(Ordering::Relaxed) {
            return Err(StorageError::Unavailable {
                op: "lookup_blobs",
                detail: "server unreachable".into(),
            });
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(ids.len(), Ordering::Relaxed);
        let index = Index::load(&self.inner).map_err(|e| StorageError::Backend {
            op: "lookup_blobs",
            detail: e.to_string(),
        })?;
        Ok(Some(
            ids.iter()
                .map(|i| BlobId::from_hex(i).is_ok_and(|id| index.contains(&id)))
                .collect(),
        ))
    }
}

fn options() -> InitOptions {
    InitOptions {
        kdf: brr_core::keyslot::KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        },
        chunker: brr_core::chunker::ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            normalization: 1,
        },
        pack_size: 1 << 20,
        ..Default::default()
    }
}

/// About 3 MiB in a few hundred chunks.
fn data(dir: &Path, seed: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..6u32 {
        let bytes: Vec<u8> = (0..500_000u32)
            .map(|j| ((j ^ (i * 7919 + seed)).wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        std::fs::write(dir.join(format!("f{i}")), bytes).unwrap();
    }
}

fn pack_count(b: &dyn Backend) -> usize {
    b.list(FileKind::Pack).unwrap().len()
}

#[test]
fn chunks_stored_by_another_machine_since_the_index_was_loaded_are_not_uploaded() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
    let repo_a = Arc::new(Repository::init(local.clone(), b"pw", &options()).unwrap());
    let answering = Arc::new(Answering::new(&root));
    let remote: Arc<dyn Backend> = answering.clone();
    let repo_b =
        Arc::new(Repository::open(remote, &brr_core::keyslot::Unlock::Password(b"pw")).unwrap());
    let src_a = tmp.path().join("a");
    let src_b = tmp.path().join("b");
    data(&src_a, 1);
    data(&src_b, 1);

    // B loads its index, then A stores the same data: B's index does not know it.
    let stale = Arc::new(Index::load(repo_b.backend()).unwrap());
    let a = backup(
        &repo_a,
        &BackupOptions {
            paths: vec![src_a],
            threads: Some(2),
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(a.lookup, None, "a local repository has no look-up stage");
    let packs_after_a = pack_count(local.as_ref());

    let saver = Saver::start(&repo_b, stale, repo_b.compression(), 2).unwrap();
    let counters = saver.lookup_counters.clone().expect("a look-up stage");
    let mut refs = Vec::new();
    let mut buf = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&src_b)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let fc = files::chunk_file(&repo_b, &saver, &p, 0, &mut buf, &NoProgress).unwrap();
        refs.extend(fc.chunks.iter().map(|c| c.id));
    }
    let written = saver.finish(repo_b.backend()).unwrap();
    assert!(written.is_empty(), "nothing sealed, nothing uploaded");
    assert_eq!(pack_count(local.as_ref()), packs_after_a);
    refs.sort();
    refs.dedup();
    assert!(refs.len() > BATCH_CHUNKS, "{} chunks", refs.len());
    assert_eq!(
        counters.blobs_present.load(Ordering::Relaxed),
        refs.len() as u64
    );
    assert_eq!(
        counters.blobs_asked.load(Ordering::Relaxed),
        refs.len() as u64
    );
    assert_eq!(
        counters.bytes_present.load(Ordering::Relaxed),
        6 * 500_000,
        "every byte read was found on the server"
    );
    let requests = answering.requests.load(Ordering::Relaxed);
    assert_eq!(counters.requests.load(Ordering::Relaxed), requests as u64);
    assert!(answering.largest.load(Ordering::Relaxed) <= BATCH_CHUNKS);
    const { assert!(BUDGET_BYTES <= 8 << 20, "a few MiB at most") };
    // Every blob B referenced is located by the stored index files, so a snapshot of them restores.
    let index = Index::load(local.as_ref()).unwrap();
    assert!(refs.iter().all(|r| index.contains(r)));
}

#[test]
fn a_backup_over_a_looking_up_backend_stores_new_data_and_reports_the_look_ups() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
    Repository::init(local.clone(), b"pw", &options()).unwrap();
    let remote: Arc<dyn Backend> = Arc::new(Answering::new(&root));
    let repo =
        Arc::new(Repository::open(remote, &brr_core::keyslot::Unlock::Password(b"pw")).unwrap());
    let src = tmp.path().join("src");
    data(&src, 2);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        threads: Some(2),
        ..Default::default()
    };
    let first = backup(&repo, &opts, &NoProgress).unwrap();
    let l = first.lookup.expect("look-ups reported");
    assert!(
        l.requests >= 1 && l.blobs_asked + l.blobs_not_asked > BATCH_CHUNKS as u64,
        "{l:?}"
    );
    assert_eq!((l.blobs_present, l.bytes_present), (0, 0), "all new");
    assert!(
        l.blobs_not_asked > 0 && l.requests < l.blobs_asked + l.blobs_not_asked,
        "after a batch that found nothing the stage backs off: {l:?}"
    );
    assert_eq!(
        first.snapshot.meta.summary.data_blobs_added,
        l.blobs_asked + l.blobs_not_asked,
        "every new chunk, asked about or not, was stored"
    );
    // Known to the loaded index: not asked about again.
    std::fs::write(src.join("f0"), b"changed").unwrap();
    let second = backup(&repo, &opts, &NoProgress).unwrap();
    let l = second.lookup.unwrap();
    assert_eq!((l.blobs_asked, l.blobs_present), (1, 0), "{l:?}");
    let report = crate::check::check(
        &repo,
        &crate::check::CheckOptions {
            read_data: true,
            threads: Some(2),
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn a_failing_look_up_fails_the_backup_with_its_storage_error_and_stores_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
    Repository::init(local.clone(), b"pw", &options()).unwrap();
    let answering = Arc::new(Answering::new(&root));
    answering.failing.store(true, Ordering::Relaxed);
    let remote: Arc<dyn Backend> = answering.clone();
    let repo =
        Arc::new(Repository::open(remote, &brr_core::keyslot::Unlock::Password(b"pw")).unwrap());
    let src = tmp.path().join("src");
    data(&src, 3);
    let opts = BackupOptions {
        paths: vec![src],
        threads: Some(2),
        ..Default::default()
    };
    // Readers waiting for room in the stage are released when it stops: an error, not a hang.
    let err = backup(&repo, &opts, &NoProgress).unwrap_err();
    assert!(
        matches!(err, EngineError::Storage(StorageError::Unavailable { .. })),
        "{err:?}"
    );
    assert!(local.list(FileKind::Snapshot).unwrap().is_empty());
    answering.failing.store(false, Ordering::Relaxed);
    let ok = backup(&repo, &opts, &NoProgress).unwrap();
    assert_eq!(ok.snapshot.meta.summary.files_new, 6);
}
