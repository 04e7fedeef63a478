//! [`UploadBody`]: the memory an upload is read into — page-aligned, so that the folder store's
//! `O_DIRECT` write goes straight from it (no bounce copy), and recycled, so that a busy server does not
//! fault in fresh pages for every pack.

use std::ops::Deref;

use std::sync::Mutex;

/// Alignment of the first byte of a body (what `O_DIRECT` writes need).
const ALIGN: usize = 4096;
/// Buffers kept for reuse.
const POOL_BUFFERS: usize = 4;
/// Buffers with more capacity than this are freed instead of kept.
const POOL_MAX_CAPACITY: usize = (64 << 20) + ALIGN;

/// Idle buffers (emptied).
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Bytes of an upload, starting at a page boundary while the buffer is not reallocated (a body longer
/// than its announced size may move; it stays correct, only unaligned).
pub struct UploadBody {
    buf: Vec<u8>,
    start: usize,
}

impl UploadBody {
    /// An empty body with room for `capacity` bytes, from the pool when it has a large enough buffer.
    pub fn with_capacity(capacity: usize) -> UploadBody {
        let want = capacity + ALIGN;
        let reused = {
            let mut pool = POOL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.iter()
                .position(|b| b.capacity() >= want)
                .map(|i| pool.swap_remove(i))
        };
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(want));
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        buf.resize(start, 0);
        UploadBody { buf, start }
    }

    /// Appends bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

impl Deref for UploadBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Drop for UploadBody {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() > POOL_MAX_CAPACITY || buf.capacity() < (1 << 20) {
            return;
        }
        buf.clear();
        let mut pool = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < POOL_BUFFERS {
            pool.push(buf);
        }
    }
}

impl std::fmt::Debug for UploadBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadBody")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_start_aligned_hold_what_was_appended_and_are_reused() {
        for round in 0..3 {
            let mut body = UploadBody::with_capacity(2 << 20);
            assert_eq!(body.as_ptr().align_offset(ALIGN), 0, "round {round}");
            assert!(body.is_empty());
            body.extend_from_slice(&[7u8; 1000]);
            body.extend_from_slice(&[round as u8; 24]);
            assert_eq!(body.len(), 1024);
            assert_eq!(body[999], 7);
            assert_eq!(body[1000], round as u8);
        }
        // Growing past the capacity keeps the bytes (alignment may be lost).
        let mut body = UploadBody::with_capacity(10);
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        body.extend_from_slice(&data);
        assert_eq!(&body[..], &data[..]);
    }
}
