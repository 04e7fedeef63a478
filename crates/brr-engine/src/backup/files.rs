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

/// Reads `path`, chunks it with the keyed chunker, and hands new chunks to the saver. What is read is what
/// is stored, whatever size `lstat` reported (`_size_hint`): the file may change while it is read. `buf`
/// is the calling worker's reusable read window.
///
/// The window holds a little more than one maximum chunk. Reads fill it; chunks are cut as soon as the
/// data in it decides them ([`brr_core::chunker::Chunker::find_cut`]); only the undecided rest (usually
/// part of one chunk) is moved to the front before the next read. A file smaller than the window, which
/// is most files, is read whole by the first read, and the second returns end of file.
pub fn chunk_file(
    repo: &Repository,
    saver: &Saver,
    path: &Path,
    _size_hint: u64,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
) -> Result<FileChunks> {
    let file = open_noatime(path).map_err(|e| EngineError::io("open", path, e))?;
    chunk_stream(repo, saver, path, file, buf, progress)
}

/// Size of a file reader's window for chunks of at most `max_size` bytes.
pub fn window_len(max_size: usize) -> usize {
    max_size + max_size / 4
}

/// Chunks a stream through the reusable window `buf` (zeroed only when first sized): `buf[pos..end]`
/// holds read but not yet chunked data, reads go to `buf[end..]`.
fn chunk_stream(
    repo: &Repository,
    saver: &Saver,
    path: &Path,
    mut input: impl Read,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
) -> Result<FileChunks> {
    let chunker = repo.chunker();
    let window = window_len(chunker.params().max_size as usize);
    if buf.len() != window {
        buf.resize(window, 0);
    }
    let mut chunks = Vec::new();
    let (mut pos, mut end, mut eof, mut size) = (0usize, 0usize, false, 0u64);
    loop {
        match chunker.find_cut(&buf[pos..end], eof) {
            Some(0) => break,
            Some(cut) => {
                chunks.push(save_chunk(repo, saver, &buf[pos..pos + cut])?);
                progress.bytes(cut as u64);
                size += cut as u64;
                pos += cut;
            }
            None => {
                if pos > 0 {
                    buf.copy_within(pos..end, 0);
                    end -= pos;
                    pos = 0;
                }
                loop {
                    match input.read(&mut buf[end..window]) {
                        Ok(0) => eof = true,
                        Ok(n) => end += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(EngineError::io("read", path, e)),
                    }
                    break;
                }
            }
        }
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
