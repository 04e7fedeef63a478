use std::sync::Arc;

use brr_core::blob::BlobType;
use brr_core::chunker::ChunkerParams;
use brr_core::keyslot::KdfParams;
use brr_storage::{Backend, FaultInjectingBackend, FileKind, LocalBackend};

use super::*;
use crate::{InitOptions, NoProgress};

fn options() -> InitOptions {
    InitOptions {
        kdf: KdfParams {
            memory_kib: 19 * 1024,
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

fn tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
    for i in 0..40u32 {
        let data: Vec<u8> = (0..(i * 4099 % 200_000))
            .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(dir.join(format!("a/b/c/f{i}")), &data).unwrap();
        std::fs::write(dir.join(format!("a/g{i}")), format!("small {i}")).unwrap();
    }
}

#[test]
fn second_backup_reads_nothing_and_a_change_reads_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(tmp.path().join("repo")));
    let repo = Arc::new(Repository::init(backend, b"pw", &options()).unwrap());
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let first = backup(&repo, &opts, &NoProgress).unwrap().snapshot;
    assert_eq!(first.meta.summary.files_new, 80);
    let second = backup(&repo, &opts, &NoProgress).unwrap().snapshot;
    assert_eq!(second.meta.summary.files_unmodified, 80);
    assert_eq!(second.meta.summary.bytes_read, 0);
    assert_eq!(second.meta.parent, Some(first.id));
    std::fs::write(src.join("a/g3"), "changed").unwrap();
    let third = backup(&repo, &opts, &NoProgress).unwrap().snapshot;
    assert_eq!(third.meta.summary.files_changed, 1);
    assert_eq!(third.meta.summary.files_unmodified, 79);
    assert_eq!(third.meta.summary.bytes_read, 7);
    // The refs list of every snapshot covers its trees and chunks.
    assert!(third.refs.contains(&third.meta.tree));
}

#[test]
fn a_failing_pack_write_is_reported_as_the_storage_error_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    let faulty = Arc::new(FaultInjectingBackend::new(LocalBackend::new(
        tmp.path().join("repo"),
    )));
    let backend: Arc<dyn Backend> = faulty.clone();
    let repo = Arc::new(Repository::init(backend.clone(), b"pw", &options()).unwrap());
    faulty.fail_writes_of(FileKind::Pack);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let err = backup(&repo, &opts, &NoProgress).unwrap_err();
    assert!(matches!(err, EngineError::Storage(_)), "{err:?}");
    assert!(backend.list(FileKind::Snapshot).unwrap().is_empty());
    faulty.heal();
    let ok = backup(&repo, &opts, &NoProgress).unwrap().snapshot;
    assert_eq!(ok.meta.summary.files_new, 80);
    let report = crate::check::check(
        &repo,
        &crate::check::CheckOptions {
            read_data: true,
            threads: None,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn excludes_and_unreadable_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    std::fs::write(src.join("skip.tmp"), "x").unwrap();
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(tmp.path().join("repo")));
    let repo = Arc::new(Repository::init(backend, b"pw", &options()).unwrap());
    let opts = BackupOptions {
        paths: vec![src.clone()],
        excludes: vec!["*.tmp".into()],
        ..Default::default()
    };
    let snap = backup(&repo, &opts, &NoProgress).unwrap().snapshot;
    let index = repo.load_index().unwrap();
    let mut names = Vec::new();
    crate::browse::walk(&repo, &index, &snap.meta.tree, None, &mut |p, _| {
        names.push(p.to_string());
        Ok(())
    })
    .unwrap();
    assert!(!names.iter().any(|n| n.ends_with("skip.tmp")));
    assert!(names.iter().any(|n| n.ends_with("a/g0")));
    assert!(
        backup(
            &repo,
            &BackupOptions {
                paths: vec![tmp.path().join("missing")],
                ..Default::default()
            },
            &NoProgress
        )
        .is_err()
    );
}

#[test]
fn a_pack_holds_at_most_max_pack_blobs_and_trees_are_packed_as_they_come() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // More distinct small files than one pack may hold, spread over more directories than that.
    let files = saver::MAX_PACK_BLOBS + 200;
    for i in 0..files {
        let dir = src.join(format!("d{}", i / 2));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), format!("small file {i}")).unwrap();
    }
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(tmp.path().join("repo")));
    let repo = Arc::new(Repository::init(backend.clone(), b"pw", &options()).unwrap());
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let snap = backup(&repo, &opts, &NoProgress).unwrap().snapshot;
    assert_eq!(snap.meta.summary.files_new, files as u64);
    let index = crate::index::Index::load(backend.as_ref()).unwrap();
    let mut per_type = std::collections::HashMap::<(u32, bool), usize>::new();
    for e in index.entries() {
        *per_type
            .entry((e.pack, e.blob_type == BlobType::Tree))
            .or_default() += 1;
    }
    assert!(
        index
            .packs()
            .iter()
            .all(|p| p.blobs as usize <= saver::MAX_PACK_BLOBS)
    );
    let data_packs = per_type.keys().filter(|(_, tree)| !tree).count();
    let tree_packs = per_type.keys().filter(|(_, tree)| *tree).count();
    // 4 296 data blobs in far less than one pack size: split by count alone; ~2 150 trees fit one.
    assert_eq!(data_packs, 2, "{per_type:?}");
    assert_eq!(tree_packs, 1, "{per_type:?}");
    assert!(
        per_type
            .iter()
            .all(|(&(pack, _), &n)| n == index.packs()[pack as usize].blobs as usize),
        "a pack mixes data and tree blobs"
    );
}

#[test]
fn the_parent_is_the_newest_snapshot_of_the_same_source_and_only_its_file_is_read_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    tree(&a);
    tree(&b);
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(tmp.path().join("repo")));
    let repo = Arc::new(Repository::init(backend.clone(), b"pw", &options()).unwrap());
    let of = |p: &Path| BackupOptions {
        paths: vec![p.to_path_buf()],
        ..Default::default()
    };
    let first_a = backup(&repo, &of(&a), &NoProgress).unwrap().snapshot;
    let last_a = backup(&repo, &of(&a), &NoProgress).unwrap().snapshot;
    assert_eq!(last_a.meta.parent, Some(first_a.id));
    let newest_b = backup(&repo, &of(&b), &NoProgress).unwrap().snapshot;
    assert_eq!(newest_b.meta.parent, None, "another path set is no parent");
    // Every snapshot file but the parent's is damaged after its header: a backup of `a` still finds
    // its parent, because it reads only headers and then the one file it chose.
    for s in [&first_a, &newest_b] {
        let name = s.id.to_hex();
        let mut bytes = backend.read(FileKind::Snapshot, &name).unwrap();
        let n = bytes.len();
        bytes[n - 40..].fill(0xee);
        backend.remove(FileKind::Snapshot, &name).unwrap();
        backend.write(FileKind::Snapshot, &name, &bytes).unwrap();
    }
    let next_a = backup(&repo, &of(&a), &NoProgress).unwrap().snapshot;
    assert_eq!(next_a.meta.parent, Some(last_a.id));
    assert_eq!(next_a.meta.summary.bytes_read, 0);
    // `latest` is the newest by header, loaded and verified alone.
    assert_eq!(repo.find_snapshot("latest").unwrap().id, next_a.id);
    // A snapshot whose header does not parse is reported, not taken as a parent.
    backend
        .remove(FileKind::Snapshot, &first_a.id.to_hex())
        .unwrap();
    backend
        .write(FileKind::Snapshot, &first_a.id.to_hex(), b"not a snapshot")
        .unwrap();
    let warned = backup(&repo, &of(&a), &NoProgress).unwrap().snapshot;
    assert_eq!(warned.meta.parent, Some(next_a.id));
    assert!(
        repo.find_snapshot("latest").is_err(),
        "a damaged header is an error for `latest`"
    );
}
