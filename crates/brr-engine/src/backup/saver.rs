//! The saving half of a backup: seal new blobs on worker threads, fill packs, upload them, index them.
//!
//! ```text
//! file readers ──(new chunk)──▶ sealers (compress + encrypt, N threads) ──▶ packer ──▶ uploaders ──▶ storage
//!                                                                              └── index checkpoints
//! ```
//! Channels are bounded, so memory stays bounded however fast the readers are. Every few packs an index
//! checkpoint is written, so a backup killed at any moment leaves packs that the next backup reuses.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use brr_core::blob::{BlobSealer, BlobType, Compression};
use brr_core::id::{BlobId, IndexId};
use brr_core::index::IndexedPack;
use brr_core::pack::PackWriter;
use brr_storage::{Backend, FileKind};
use crossbeam_channel::{Receiver, Sender, bounded};
use parking_lot::Mutex;

use crate::error::{EngineError, Result};
use crate::index::{Index, write_index_file};
use crate::repo::Repository;

/// Packs uploaded between index checkpoints.
const CHECKPOINT_EVERY: usize = 8;

struct SealJob {
    blob_type: BlobType,
    id: BlobId,
    data: Vec<u8>,
}

struct SealedBlob {
    blob_type: BlobType,
    id: BlobId,
    stored: Vec<u8>,
    plain_len: usize,
}

/// Counters of what was saved.
#[derive(Debug, Default)]
pub struct SaveCounters {
    /// New data blobs.
    pub data_blobs: AtomicU64,
    /// New tree blobs.
    pub tree_blobs: AtomicU64,
    /// Plaintext bytes of new blobs.
    pub bytes_added: AtomicU64,
    /// Stored bytes of new blobs.
    pub bytes_stored: AtomicU64,
}

#[derive(Default)]
struct Uploaded {
    packs: Vec<IndexedPack>,
    checkpointed: usize,
    checkpoints: Vec<IndexId>,
}

/// Deduplicates and saves blobs. Shared by reference between the backup's threads.
pub struct Saver {
    index: Arc<Index>,
    seen: Mutex<HashSet<BlobId>>,
    seal_tx: Option<Sender<SealJob>>,
    threads: Vec<JoinHandle<Result<()>>>,
    uploaded: Arc<Mutex<Uploaded>>,
    /// What was saved.
    pub counters: Arc<SaveCounters>,
}

impl Saver {
    /// Starts the sealer, packer and uploader threads.
    pub fn start(
        repo: &Arc<Repository>,
        index: Arc<Index>,
        compression: Compression,
        sealers: usize,
    ) -> Result<Saver> {
        let (seal_tx, seal_rx) = bounded::<SealJob>(sealers * 2);
        let (pack_tx, pack_rx) = bounded::<SealedBlob>(sealers * 4);
        let (upload_tx, upload_rx) = bounded::<brr_core::pack::FinishedPack>(2);
        let counters = Arc::new(SaveCounters::default());
        let uploaded = Arc::new(Mutex::new(Uploaded::default()));
        let mut threads = Vec::new();
        for _ in 0..sealers.max(1) {
            let rx = seal_rx.clone();
            let tx = pack_tx.clone();
            let repo = repo.clone();
            let mut sealer = BlobSealer::new(compression)?;
            threads.push(std::thread::spawn(move || {
                seal_loop(&repo, &mut sealer, rx, tx)
            }));
        }
        drop(pack_tx);
        {
            let repo = repo.clone();
            let counters = counters.clone();
            let pack_size = repo.config().body.pack_size as usize;
            threads.push(std::thread::spawn(move || {
                pack_loop(&repo, pack_size, pack_rx, upload_tx, &counters)
            }));
        }
        for _ in 0..2 {
            let rx = upload_rx.clone();
            let backend = repo.backend_arc();
            let uploaded = uploaded.clone();
            threads.push(std::thread::spawn(move || {
                upload_loop(backend.as_ref(), rx, &uploaded)
            }));
        }
        Ok(Saver {
            index,
            seen: Mutex::new(HashSet::new()),
            seal_tx: Some(seal_tx),
            threads,
            uploaded,
            counters,
        })
    }

    /// Whether a blob is already stored or queued.
    pub fn is_known(&self, id: &BlobId) -> bool {
        self.index.contains(id) || self.seen.lock().contains(id)
    }

    /// Saves a blob unless it is already stored or queued. Blocks when the pipeline is full.
    pub fn save(&self, blob_type: BlobType, id: BlobId, data: &[u8]) -> Result<()> {
        if self.index.contains(&id) || !self.seen.lock().insert(id) {
            return Ok(());
        }
        let tx = self.seal_tx.as_ref().ok_or(EngineError::Interrupted)?;
        if tx
            .send(SealJob {
                blob_type,
                id,
                data: data.to_vec(),
            })
            .is_err()
        {
            // A worker stopped on an error; Saver::finish returns that error, and backup() prefers it.
            return Err(EngineError::Damaged("backup pipeline stopped".into()));
        }
        Ok(())
    }

    /// Flushes everything, waits for the uploads and writes the final index file (superseding this
    /// backup's checkpoints). Returns the packs written.
    pub fn finish(mut self, backend: &dyn Backend) -> Result<Vec<IndexedPack>> {
        drop(self.seal_tx.take());
        let mut first_error = None;
        for t in self.threads.drain(..) {
            let r = t.join().unwrap_or_else(|_| {
                Err(EngineError::Damaged(
                    "a backup worker thread panicked".into(),
                ))
            });
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut up = self.uploaded.lock();
        let packs = std::mem::take(&mut up.packs);
        if !packs.is_empty() {
            let checkpoints = std::mem::take(&mut up.checkpoints);
            write_index_file(backend, packs.clone(), checkpoints.clone())?;
            for c in checkpoints {
                let _ = backend.remove(FileKind::Index, &c.to_hex());
            }
        }
        Ok(packs)
    }
}

fn seal_loop(
    repo: &Repository,
    sealer: &mut BlobSealer,
    rx: Receiver<SealJob>,
    tx: Sender<SealedBlob>,
) -> Result<()> {
    for job in rx {
        let mut stored = Vec::with_capacity(job.data.len() / 2 + 64);
        sealer.seal_into(
            repo.key().data_key(),
            job.blob_type,
            &job.id,
            &job.data,
            &mut stored,
        )?;
        if tx
            .send(SealedBlob {
                blob_type: job.blob_type,
                id: job.id,
                stored,
                plain_len: job.data.len(),
            })
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

fn pack_loop(
    repo: &Repository,
    pack_size: usize,
    rx: Receiver<SealedBlob>,
    upload_tx: Sender<brr_core::pack::FinishedPack>,
    counters: &SaveCounters,
) -> Result<()> {
    let key_id = repo.key().data_key().id();
    let mut data = PackWriter::with_capacity(pack_size + pack_size / 8);
    let mut trees = PackWriter::with_capacity(1 << 20);
    for blob in rx {
        match blob.blob_type {
            BlobType::Data => counters.data_blobs.fetch_add(1, Ordering::Relaxed),
            BlobType::Tree => counters.tree_blobs.fetch_add(1, Ordering::Relaxed),
        };
        counters
            .bytes_added
            .fetch_add(blob.plain_len as u64, Ordering::Relaxed);
        counters
            .bytes_stored
            .fetch_add(blob.stored.len() as u64, Ordering::Relaxed);
        let w = match blob.blob_type {
            BlobType::Data => &mut data,
            BlobType::Tree => &mut trees,
        };
        w.add(blob.blob_type, blob.id, key_id, &blob.stored);
        if w.data_len() >= pack_size {
            let full = std::mem::replace(w, PackWriter::with_capacity(pack_size + pack_size / 8));
            if upload_tx.send(full.finish()).is_err() {
                return Err(EngineError::Damaged("pack upload stopped".into()));
            }
        }
    }
    for w in [data, trees] {
        if !w.is_empty() && upload_tx.send(w.finish()).is_err() {
            return Err(EngineError::Damaged("pack upload stopped".into()));
        }
    }
    Ok(())
}

fn upload_loop(
    backend: &dyn Backend,
    rx: Receiver<brr_core::pack::FinishedPack>,
    uploaded: &Mutex<Uploaded>,
) -> Result<()> {
    for pack in rx {
        backend.write(FileKind::Pack, &pack.id.to_hex(), &pack.bytes)?;
        let indexed = IndexedPack {
            id: pack.id,
            pack_len: pack.bytes.len() as u64,
            trailer: pack.trailer,
        };
        let checkpoint = {
            let mut up = uploaded.lock();
            up.packs.push(indexed);
            if up.packs.len() - up.checkpointed >= CHECKPOINT_EVERY {
                let batch = up.packs[up.checkpointed..].to_vec();
                up.checkpointed = up.packs.len();
                Some(batch)
            } else {
                None
            }
        };
        if let Some(batch) = checkpoint {
            let id = write_index_file(backend, batch, Vec::new())?;
            uploaded.lock().checkpoints.push(id);
        }
    }
    Ok(())
}
