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

/// Reads `path`, chunks it with the keyed chunker, and hands new chunks to the saver.
pub fn chunk_file(
    repo: &Repository,
    saver: &Saver,
    path: &Path,
    progress: &dyn Progress,
) -> Result<FileChunks> {
    let mut file = open_noatime(path).map_err(|e| EngineError::io("open", path, e))?;
    let chunker = repo.chunker();
    let max = chunker.params().max_size as usize;
    let min = chunker.params().min_size as usize;
    let mut chunks = Vec::new();
    let mut size = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(min.min(1 << 20));
    // Small files: one read, one chunk.
    let mut eof = false;
    fill(&mut file, &mut buf, min + 1, &mut eof, path)?;
    if eof {
        if !buf.is_empty() {
            chunks.push(save_chunk(repo, saver, &buf)?);
        }
        progress.bytes(buf.len() as u64);
        return Ok(FileChunks {
            chunks,
            size: buf.len() as u64,
        });
    }
    buf.reserve(2 * max);
    let mut pos = 0usize;
    loop {
        if !eof && buf.len() - pos < max {
            if pos > 0 {
                buf.drain(..pos);
                pos = 0;
            }
            fill(&mut file, &mut buf, max, &mut eof, path)?;
        }
        if pos >= buf.len() {
            break;
        }
        let cut = chunker.next_cut(&buf[pos..], eof);
        let chunk = &buf[pos..pos + cut];
        chunks.push(save_chunk(repo, saver, chunk)?);
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

/// Reads until `buf` holds at least `want` bytes or the file ends.
fn fill(
    file: &mut File,
    buf: &mut Vec<u8>,
    want: usize,
    eof: &mut bool,
    path: &Path,
) -> Result<()> {
    while buf.len() < want && !*eof {
        let start = buf.len();
        let room = (want - start).max(1 << 16);
        buf.resize(start + room, 0);
        match file.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                *eof = true;
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                return Err(EngineError::io("read", path, e));
            }
        }
    }
    Ok(())
}
