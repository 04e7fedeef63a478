//! The look-up stage of a backup to a server that answers blob look-ups
//! ([`brr_storage::Backend::lookup_blobs`]).
//!
//! ```text
//! file readers ──(chunk new to the loaded index)──▶ look-up ──(absent)──▶ sealers
//!                                                      └──(present: counted, buffer recycled)
//! ```
//! The loaded index misses what other machines stored after it was read (their backups ran at the same
//! time). Before such a chunk is sealed, one thread asks the server about what is waiting — at most
//! [`BATCH_CHUNKS`] chunks or [`BATCH_BYTES`] per request, one request in flight — and drops the blobs
//! it already holds in a pack one of its stored index files lists: they are neither sealed nor
//! uploaded, and the snapshot references them like any deduplicated blob. The chunk data waiting here
//! (queued and in flight) never exceeds [`BUDGET_BYTES`] plus one chunk: readers wait for room. A
//! repository whose backend does not answer look-ups (local, S3) has no such stage, thread or copy.
//!
//! Asking costs a round trip per batch while the chunks wait, and most backups find nothing (what was
//! committed before they started is in the loaded index already). So the stage backs off: after a
//! batch with no blob present, the next [`BATCH_BYTES`] of chunks go straight to the sealers without
//! asking, and each further miss doubles that span up to [`MAX_SKIP_BYTES`]; any hit resets it. A
//! chunk not asked about is only stored again, never lost: skipping trades a little duplicate upload
//! during concurrent backups for a first backup that does not wait on hundreds of look-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brr_storage::Backend;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::{Pools, SealJob};
use crate::error::{EngineError, Result};

/// Most chunks asked about in one request.
pub const BATCH_CHUNKS: usize = 64;
/// A batch is closed once its chunks hold this many bytes.
pub const BATCH_BYTES: usize = 4 << 20;
/// The longest run of chunk data sent on without asking, after consecutive batches found nothing.
pub const MAX_SKIP_BYTES: usize = 64 << 20;
/// Chunk data the stage holds at most (queued and in flight), beyond one oversized chunk: one batch
/// being looked up while the next one gathers.
pub const BUDGET_BYTES: usize = 2 * BATCH_BYTES;

/// What the look-up stage did.
#[derive(Debug, Default)]
pub struct LookupCounters {
    /// Look-up requests made (each covers one batch).
    pub requests: AtomicU64,
    /// Blobs asked about.
    pub blobs_asked: AtomicU64,
    /// Blobs the server already held: not sealed, not uploaded.
    pub blobs_present: AtomicU64,
    /// Plaintext bytes of those blobs.
    pub bytes_present: AtomicU64,
    /// Chunks sent on to the sealers without asking, while backing off after misses.
    pub blobs_not_asked: AtomicU64,
}

#[derive(Default)]
struct BudgetState {
    used: usize,
    closed: bool,
}

/// Bytes of chunk data held by the stage; senders wait while it is spent.
#[derive(Default)]
struct Budget {
    state: Mutex<BudgetState>,
    room: Condvar,
}

impl Budget {
    /// Waits until `n` more bytes fit (always, when nothing is held); false once the stage stopped.
    fn acquire(&self, n: usize) -> bool {
        let mut s = self.state.lock();
        while !s.closed && s.used > 0 && s.used + n > BUDGET_BYTES {
            self.room.wait(&mut s);
        }
        if s.closed {
            return false;
        }
        s.used += n;
        true
    }

    fn release(&self, n: usize) {
        let mut s = self.state.lock();
        s.used = s.used.saturating_sub(n);
        self.room.notify_all();
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.room.notify_all();
    }
}

/// The readers' end of the stage.
pub(super) struct Lookup {
    tx: Sender<SealJob>,
    budget: Arc<Budget>,
}

impl Lookup {
    /// Queues a chunk for the look-up; waits while the stage holds its budget. Fails once the stage
    /// stopped on an error (which `Saver::finish` reports).
    pub(super) fn send(&self, job: SealJob) -> Result<()> {
        let stopped = || EngineError::Damaged("backup pipeline stopped".into());
        if !self.budget.acquire(job.data.len()) {
            return Err(stopped());
        }
        let n = job.data.len();
        self.tx.send(job).map_err(|_| {
            self.budget.release(n);
            stopped()
        })
    }
}

/// Starts the stage's thread: chunks from the returned [`Lookup`] go to `seal_tx` unless the server
/// holds them.
pub(super) fn start(
    backend: Arc<dyn Backend>,
    seal_tx: Sender<SealJob>,
    pools: Arc<Pools>,
    counters: Arc<LookupCounters>,
) -> (Lookup, std::thread::JoinHandle<Result<()>>) {
    // The budget bounds the bytes; the channel only needs room for a budget's worth of small chunks.
    let (tx, rx) = crossbeam_channel::bounded::<SealJob>(BATCH_CHUNKS * 2);
    let budget = Arc::new(Budget::default());
    let b = budget.clone();
    let handle = std::thread::spawn(move || {
        let r = lookup_loop(backend.as_ref(), &rx, &seal_tx, &pools, &b, &counters);
        // Readers waiting for room must not wait for a stage that is gone.
        b.close();
        r
    });
    (Lookup { tx, budget }, handle)
}

fn lookup_loop(
    backend: &dyn Backend,
    rx: &Receiver<SealJob>,
    seal_tx: &Sender<SealJob>,
    pools: &Pools,
    budget: &Budget,
    counters: &LookupCounters,
) -> Result<()> {
    let mut batch: Vec<SealJob> = Vec::with_capacity(BATCH_CHUNKS);
    let mut ids: Vec<String> = Vec::with_capacity(BATCH_CHUNKS);
    // Bytes still to send on without asking, and the span the next miss sets (doubling).
    let mut skip_left = 0usize;
    let mut skip_span = 0usize;
    while let Ok(first) = rx.recv() {
        if skip_left > 0 {
            let n = first.data.len();
            skip_left = skip_left.saturating_sub(n.max(1));
            counters.blobs_not_asked.fetch_add(1, Ordering::Relaxed);
            if seal_tx.send(first).is_err() {
                return Err(EngineError::Damaged("backup pipeline stopped".into()));
            }
            budget.release(n);
            continue;
        }
        let mut bytes = first.data.len();
        batch.push(first);
        while batch.len() < BATCH_CHUNKS && bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.data.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        ids.clear();
        ids.extend(batch.iter().map(|j| j.id.to_hex()));
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters
            .blobs_asked
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        let present = match backend.lookup_blobs(&ids)? {
            Some(p) if p.len() == ids.len() => p,
            Some(p) => {
                return Err(EngineError::Damaged(format!(
                    "the storage answered {} look-ups for {} blobs",
                    p.len(),
                    ids.len()
                )));
            }
            // The backend stopped answering look-ups: everything is stored again.
            None => vec![false; ids.len()],
        };
        if present.iter().any(|&here| here) {
            skip_span = 0;
        } else {
            skip_span = (skip_span * 2).clamp(BATCH_BYTES, MAX_SKIP_BYTES);
            skip_left = skip_span;
        }
        for (job, here) in batch.drain(..).zip(present) {
            let n = job.data.len();
            if here {
                counters.blobs_present.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes_present
                    .fetch_add(n as u64, Ordering::Relaxed);
                pools.chunks.give(job.data);
            } else if seal_tx.send(job).is_err() {
                return Err(EngineError::Damaged("backup pipeline stopped".into()));
            }
            budget.release(n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_one_chunk_always_and_waits_for_room_otherwise() {
        let b = Arc::new(Budget::default());
        assert!(b.acquire(BUDGET_BYTES * 3), "an oversized chunk alone");
        b.release(BUDGET_BYTES * 3);
        assert!(b.acquire(BUDGET_BYTES - 10));
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(100))
        };
        // The waiter gets room only once the first bytes are released.
        b.release(BUDGET_BYTES - 10);
        assert!(waiter.join().unwrap());
        assert_eq!(b.state.lock().used, 100);
        // A closed stage admits nothing and wakes its waiters.
        assert!(b.acquire(BUDGET_BYTES - 100));
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(1000))
        };
        b.close();
        assert!(!waiter.join().unwrap());
        assert!(!b.acquire(1));
    }
}
