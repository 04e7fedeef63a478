//! A free list of byte buffers shared by the backup's threads.
//!
//! Chunk copies, sealed blobs and packs move between threads as `Vec<u8>`s. Allocating each one afresh
//! costs a page fault per 4 KiB touched (the allocator hands large buffers back to the OS on free), which
//! on a 1 GiB backup was more system time than the file reads. Buffers are therefore handed back here
//! when their bytes have moved on, and taken from here again. The list is bounded: a buffer given back
//! to a full list, or grown past the pool's size limit (a rare oversized chunk), is dropped, so the pool
//! never holds more than `capacity × keep_max` bytes.

use crossbeam_channel::{Receiver, Sender, bounded};

/// A bounded free list of byte buffers.
pub struct BufferPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    keep_max: usize,
}

impl BufferPool {
    /// A pool that keeps at most `capacity` idle buffers of at most `keep_max` bytes of capacity each.
    pub fn new(capacity: usize, keep_max: usize) -> Self {
        let (tx, rx) = bounded(capacity.max(1));
        BufferPool { tx, rx, keep_max }
    }

    /// An empty buffer, with the capacity of an earlier one when the pool has one.
    pub fn take(&self) -> Vec<u8> {
        self.rx.try_recv().unwrap_or_default()
    }

    /// Gives a buffer back for reuse (emptied); dropped when the pool is full.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > self.keep_max {
            return;
        }
        buf.clear();
        let _ = self.tx.try_send(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_capacity_and_stays_bounded() {
        let pool = BufferPool::new(2, 4096);
        assert_eq!(pool.take().capacity(), 0);
        let mut a = pool.take();
        a.extend_from_slice(&[1u8; 1000]);
        pool.give(a);
        let b = pool.take();
        assert!(b.is_empty());
        assert!(b.capacity() >= 1000);
        pool.give(b);
        pool.give(Vec::with_capacity(10));
        pool.give(Vec::with_capacity(20));
        let kept: Vec<usize> = (0..3).map(|_| pool.take().capacity()).collect();
        assert_eq!(kept.iter().filter(|&&c| c > 0).count(), 2, "{kept:?}");
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        let pool = BufferPool::new(4, 4096);
        pool.give(Vec::with_capacity(8192));
        assert_eq!(pool.take().capacity(), 0);
    }
}
