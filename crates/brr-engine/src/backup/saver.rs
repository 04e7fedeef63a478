//! The saving half of a backup: seal new blobs on worker threads, fill packs, upload them, index them.
//!
//! ```text
//! file readers ──(new chunk)──▶ sealers (compress + encrypt, N threads) ──▶ packer ──▶ uploaders ──▶ storage
//!        └─▶ look-up (only on a server) ─┘                                     └── index checkpoints
//! ```
//! When the backend answers blob look-ups (a `brrd` server), new data chunks first pass a [`lookup`]
//! stage that drops those the server already holds; on other backends that stage does not exist.
//! Channels are bounded, so memory stays bounded however fast the readers are. The packer hands a full
//! pack straight to the background uploader when it is idle (no queue between them) and otherwise
//! uploads it itself, so two uploads overlap but at most two data packs are ever in memory. Chunk copies,
//! sealed blobs and pack buffers are recycled through [`BufferPool`]s instead of being allocated afresh. Every few packs an index checkpoint is written, so a backup
//! killed at any moment leaves packs that the next backup reuses.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use brr_core::blob::{BlobSealer, BlobType, Compression};
use brr_core::id::{BlobId, IndexId};
use brr_core::index::IndexedPack;
use brr_core::pack::{FinishedPack, PackWriter};
use brr_storage::{Backend, FileKind};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use parking_lot::Mutex;

pub mod lookup;
mod pool;

use crate::error::{EngineError, Result};
use crate::index::{Index, write_index_file};
use crate::repo::Repository;
pub use lookup::LookupCounters;
pub use pool::BufferPool;

/// Blobs per pack at most: a pack is also finished when it holds this many, whatever its size. A backup
/// of many small directories then stores its tree packs as it goes instead of one large tree pack at
/// the end, and a server records every pack (one database row per blob) in bounded time.
pub const MAX_PACK_BLOBS: usize = 4096;
/// Initial buffer of a tree pack (tree packs rarely grow past [`MAX_PACK_BLOBS`] small trees).
const TREE_PACK_CAPACITY: usize = 1 << 20;
/// Packs uploaded between index checkpoints.
const CHECKPOINT_EVERY: usize = 8;
/// Pack uploads running at once: the background uploader's and the packer's own (each write ends with
/// an fsync; two overlap one's wait with the other's work).
pub const UPLOADERS: usize = 2;
/// Chunks waiting for a sealer, per sealer thread.
const SEAL_QUEUE_PER_SEALER: usize = 1;
/// Sealed blobs waiting for the packer, per sealer thread.
const PACK_QUEUE_PER_SEALER: usize = 1;

/// The buffers the pipeline recycles.
struct Pools {
    /// Copies of new chunks on their way to a sealer.
    chunks: BufferPool,
    /// Sealed blobs on their way into a pack.
    sealed: BufferPool,
    /// Pack buffers: filled by the packer, written by an uploader.
    packs: BufferPool,
}

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
    /// The look-up stage data chunks pass first, when the backend answers look-ups.
    lookup: Option<lookup::Lookup>,
    threads: Vec<JoinHandle<Result<()>>>,
    uploaded: Arc<Mutex<Uploaded>>,
    pools: Arc<Pools>,
    /// What was saved.
    pub counters: Arc<SaveCounters>,
    /// What the look-up stage found, when there is one.
    pub lookup_counters: Option<Arc<LookupCounters>>,
}

impl Saver {
    /// Starts the sealer, packer and uploader threads, and the look-up thread if the backend answers
    /// blob look-ups.
    pub fn start(
        repo: &Arc<Repository>,
        index: Arc<Index>,
        compression: Compression,
        sealers: usize,
    ) -> Result<Saver> {
        let sealers = sealers.max(1);
        let (seal_tx, seal_rx) = bounded::<SealJob>(sealers * SEAL_QUEUE_PER_SEALER);
        let (pack_tx, pack_rx) = bounded::<SealedBlob>(sealers * PACK_QUEUE_PER_SEALER);
        // A rendezvous: a full pack goes to the background uploader only if it is waiting for one.
        let (upload_tx, upload_rx) = bounded::<FinishedPack>(0);
        // Chunk-sized buffers are kept up to twice the average chunk; larger ones (rare) are dropped.
        let keep_chunk = 2 * repo.config().body.chunker.avg_size as usize;
        let pack_size = repo.config().body.pack_size as usize;
        let pools = Arc::new(Pools {
            chunks: BufferPool::new(sealers * (SEAL_QUEUE_PER_SEALER + 2), keep_chunk),
            sealed: BufferPool::new(sealers * (PACK_QUEUE_PER_SEALER + 1) + 1, keep_chunk),
            packs: BufferPool::new(UPLOADERS, pack_capacity(pack_size)),
        });
        let counters = Arc::new(SaveCounters::default());
        let uploaded = Arc::new(Mutex::new(Uploaded::default()));
        let uploader = Arc::new(Uploader {
            backend: repo.backend_arc(),
            pools: pools.clone(),
            uploaded: uploaded.clone(),
        });
        let mut threads = Vec::new();
        for _ in 0..sealers {
            let rx = seal_rx.clone();
            let tx = pack_tx.clone();
            let repo = repo.clone();
            let pools = pools.clone();
            let mut sealer = BlobSealer::new(compression)?;
            threads.push(std::thread::spawn(move || {
                seal_loop(&repo, &mut sealer, &pools, rx, tx)
            }));
        }
        drop(pack_tx);
        {
            let repo = repo.clone();
            let counters = counters.clone();
            let pools = pools.clone();
            let uploader = uploader.clone();
            threads.push(std::thread::spawn(move || {
                let hand_over = |pack: FinishedPack| match upload_tx.try_send(pack) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(pack)) => uploader.upload(pack),
                    Err(TrySendError::Disconnected(_)) => {
                        Err(EngineError::Damaged("pack upload stopped".into()))
                    }
                };
                pack_loop(&repo, pack_size, &pools, pack_rx, hand_over, &counters)
            }));
        }
        for _ in 1..UPLOADERS {
            let rx = upload_rx.clone();
            let uploader = uploader.clone();
            threads.push(std::thread::spawn(move || {
                for pack in rx {
                    uploader.upload(pack)?;
                }
                Ok(())
            }));
        }
        let (lookup, lookup_counters) = if repo.backend().lookup_blobs(&[])?.is_some() {
            let c = Arc::new(LookupCounters::default());
            let (stage, handle) = lookup::start(
                repo.backend_arc(),
                seal_tx.clone(),
                pools.clone(),
                c.clone(),
            );
            threads.push(handle);
            (Some(stage), Some(c))
        } else {
            (None, None)
        };
        Ok(Saver {
            index,
            seen: Mutex::new(HashSet::new()),
            seal_tx: Some(seal_tx),
            lookup,
            threads,
            uploaded,
            pools,
            counters,
            lookup_counters,
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
        let mut copy = self.pools.chunks.take();
        copy.extend_from_slice(data);
        let job = SealJob {
            blob_type,
            id,
            data: copy,
        };
        if let (Some(lookup), BlobType::Data) = (&self.lookup, blob_type) {
            return lookup.send(job);
        }
        if tx.send(job).is_err() {
            // A worker stopped on an error; Saver::finish returns that error, and backup() prefers it.
            return Err(EngineError::Damaged("backup pipeline stopped".into()));
        }
        Ok(())
    }

    /// Flushes everything, waits for the uploads and writes the final index file (superseding this
    /// backup's checkpoints). Returns the packs written.
    pub fn finish(mut self, backend: &dyn Backend) -> Result<Vec<IndexedPack>> {
        drop(self.seal_tx.take());
        drop(self.lookup.take());
        let mut first_error = None;
        for t in self.threads.drain(..) {
            let r = t.join().unwrap_or_else(|_| {
                Err(EngineError::Damaged(
                    "a backup worker thread panicked".into(),
                ))
            });
            if let Err(e) = r {
                // A thread that stopped because another one did reports `Damaged("… stopped")`; the
                // other thread's error (storage full, write refused) is the cause to report.
                match &first_error {
                    None | Some(EngineError::Damaged(_)) => first_error = Some(e),
                    Some(_) => {}
                }
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
    pools: &Pools,
    rx: Receiver<SealJob>,
    tx: Sender<SealedBlob>,
) -> Result<()> {
    for job in rx {
        let mut stored = pools.sealed.take();
        sealer.seal_into(
            repo.key().data_key(),
            job.blob_type,
            &job.id,
            &job.data,
            &mut stored,
        )?;
        let plain_len = job.data.len();
        pools.chunks.give(job.data);
        if tx
            .send(SealedBlob {
                blob_type: job.blob_type,
                id: job.id,
                stored,
                plain_len,
            })
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Room for a full pack: it is closed once its blobs reach `pack_size`, so it may exceed that by one blob.
fn pack_capacity(pack_size: usize) -> usize {
    pack_size + pack_size / 8
}

/// An empty pack writer over a recycled buffer with room for a full pack.
fn new_pack(pools: &Pools, pack_size: usize) -> PackWriter {
    let mut buf = pools.packs.take();
    buf.reserve(pack_capacity(pack_size));
    PackWriter::with_buffer(buf)
}

fn pack_loop(
    repo: &Repository,
    pack_size: usize,
    pools: &Pools,
    rx: Receiver<SealedBlob>,
    hand_over: impl Fn(FinishedPack) -> Result<()>,
    counters: &SaveCounters,
) -> Result<()> {
    let key_id = repo.key().data_key().id();
    let mut data = new_pack(pools, pack_size);
    let mut trees = PackWriter::with_capacity(TREE_PACK_CAPACITY);
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
        pools.sealed.give(blob.stored);
        if w.data_len() >= pack_size || w.count() >= MAX_PACK_BLOBS {
            // Hand the full pack over before taking a new buffer: the packer never holds two.
            let full = std::mem::take(w);
            hand_over(full.finish())?;
            *w = match blob.blob_type {
                BlobType::Data => new_pack(pools, pack_size),
                BlobType::Tree => PackWriter::with_capacity(TREE_PACK_CAPACITY),
            };
        }
    }
    for w in [data, trees] {
        if !w.is_empty() {
            hand_over(w.finish())?;
        }
    }
    Ok(())
}

/// Stores finished packs and writes the index checkpoints; shared by the packer and the uploader thread.
struct Uploader {
    backend: Arc<dyn Backend>,
    pools: Arc<Pools>,
    uploaded: Arc<Mutex<Uploaded>>,
}

impl Uploader {
    /// Writes one pack (atomic and durable when `write` returns), records it, recycles its buffer, and
    /// writes a checkpoint index file every [`CHECKPOINT_EVERY`] packs. A pack is named by an index file
    /// only after its own write has returned.
    fn upload(&self, pack: FinishedPack) -> Result<()> {
        let backend = self.backend.as_ref();
        backend.write(FileKind::Pack, &pack.id.to_hex(), &pack.bytes)?;
        let indexed = IndexedPack {
            id: pack.id,
            pack_len: pack.bytes.len() as u64,
            trailer: pack.trailer,
        };
        self.pools.packs.give(pack.bytes);
        let checkpoint = {
            let mut up = self.uploaded.lock();
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
            self.uploaded.lock().checkpoints.push(id);
        }
        Ok(())
    }
}
