//! Reading one file into chunks: the work of the file-reader threads.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use brr_core::blob::BlobType;
use brr_core::tree::ChunkRef;

use crate::backup::saver::Saver;
use crate::error::{EngineError, Result};
use crate::progress::Progress;
use crate::repo::Repository;

/// What reading a file produced.
#[derive(Debug)]
pub struct FileChunks {
    /// The chunks in order.
    pub chunks: Vec<ChunkRef>,
    /// Bytes read (the file's size at the time it was read).
    pub size: u64,
}

/// Opens for reading without updating the access time where the OS allows it.
pub fn open_noatime(path: &Path) -> std::io::Result<File> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        Err(e) => Err(e),
    }
}

/// Reads `path`, chunks it with the keyed chunker, and hands new chunks to the saver. `size_hint` is the
/// size `lstat` reported (the file may change while it is read: what is read is what is stored). `buf` is
/// the calling worker's reusable read buffer.
pub fn chunk_file(
    repo: &Repository,
    saver: &Saver,
    path: &Path,
    size_hint: u64,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
) -> Result<FileChunks> {
    let mut file = open_noatime(path).map_err(|e| EngineError::io("open", path, e))?;
    let chunker = repo.chunker();
    let min = chunker.params().min_size as usize;
    let mut chunks = Vec::new();
    if size_hint < min as u64 {
        // Small files (most files): one read into a buffer of the right size, one chunk.
        let mut small = Vec::with_capacity(size_hint as usize + 1);
        file.by_ref()
            .take(min as u64)
            .read_to_end(&mut small)
            .map_err(|e| EngineError::io("read", path, e))?;
        if small.len() < min {
            if !small.is_empty() {
                chunks.push(save_chunk(repo, saver, &small)?);
            }
            progress.bytes(small.len() as u64);
            return Ok(FileChunks {
                chunks,
                size: small.len() as u64,
            });
        }
        // It grew past the small-file limit since lstat: chunk it as a large file.
        return chunk_stream(
            repo,
            saver,
            path,
            std::io::Cursor::new(small).chain(file),
            buf,
            progress,
        );
    }
    chunk_stream(repo, saver, path, file, buf, progress)
}

/// Chunks a stream through a window of two maximum chunks. `buf` stays at the window's size and is
/// reused by the worker, so it is zeroed only once: `buf[pos..end]` holds unread data, reads go to
/// `buf[end..]`.
fn chunk_stream(
    repo: &Repository,
    saver: &Saver,
    path: &Path,
    mut input: impl Read,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
) -> Result<FileChunks> {
    let chunker = repo.chunker();
    let max = chunker.params().max_size as usize;
    let window = 2 * max;
    if buf.len() != window {
        buf.resize(window, 0);
    }
    let mut chunks = Vec::new();
    let (mut pos, mut end, mut eof, mut size) = (0usize, 0usize, false, 0u64);
    loop {
        if !eof && end - pos < max {
            buf.copy_within(pos..end, 0);
            end -= pos;
            pos = 0;
            while end < window && !eof {
                match input.read(&mut buf[end..window]) {
                    Ok(0) => eof = true,
                    Ok(n) => end += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(EngineError::io("read", path, e)),
                }
            }
        }
        if pos >= end {
            break;
        }
        let cut = chunker.next_cut(&buf[pos..end], eof);
        chunks.push(save_chunk(repo, saver, &buf[pos..pos + cut])?);
        progress.bytes(cut as u64);
        size += cut as u64;
        pos += cut;
    }
    Ok(FileChunks { chunks, size })
}

fn save_chunk(repo: &Repository, saver: &Saver, data: &[u8]) -> Result<ChunkRef> {
    let id = repo.key().blob_id(data);
    saver.save(BlobType::Data, id, data)?;
    Ok(ChunkRef {
        id,
        len: data.len() as u32,
    })
}
