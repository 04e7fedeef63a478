//! Writing file content, pack by pack.
//!
//! Every needed data blob is assigned to one pack location; each pack's needed blobs are read with as few
//! range reads as possible (nearby blobs coalesced), then every blob is decrypted and verified once and
//! written with positional writes to every file and offset that uses it. Workers take whole packs from a
//! shared queue, so memory stays at about one read range per worker. A blob that cannot be read,
//! decrypted or verified from any of its locations is never written: its ranges stay zero (or holes) and
//! are recorded as damage.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use brr_core::blob::BlobType;
use brr_core::id::BlobId;
use brr_core::tree::ChunkRef;
use brr_storage::FileKind;
use parking_lot::Mutex;

use super::fsops::{FileId, reopen};
use crate::error::{EngineError, Result};
use crate::index::{Index, IndexEntry};
use crate::progress::Progress;
use crate::repo::Repository;

/// Blobs closer than this in a pack are read with one request (the gap is read and dropped).
const MAX_GAP: u64 = 1024 * 1024;
/// Largest coalesced read; a single larger blob is read alone.
const MAX_RANGE: u64 = 16 * 1024 * 1024;
/// Files a worker keeps open at once (packs of small files touch thousands).
const MAX_OPEN: usize = 64;
/// Granularity of hole detection in sparse files.
const SPARSE_BLOCK: u64 = 4096;

/// A restored file the workers write into.
#[derive(Debug)]
pub(super) struct FileState {
    /// Absolute path.
    pub path: PathBuf,
    /// The inode created for it.
    pub id: FileId,
    /// Leave holes for zero blocks.
    pub sparse: bool,
    /// Chunk writes still to do; the file is complete at zero.
    pub remaining: AtomicU32,
}

/// Where one chunk goes.
#[derive(Debug, Clone, Copy)]
struct Target {
    file: u32,
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct BlobJob {
    entry: IndexEntry,
    targets: Vec<Target>,
}

#[derive(Debug)]
struct PackJob {
    pack: u32,
    blobs: Vec<BlobJob>,
}

/// A range of a file left unwritten.
#[derive(Debug)]
pub(super) struct Damage {
    /// Index into the file states.
    pub file: u32,
    /// Offset.
    pub offset: u64,
    /// Length.
    pub len: u64,
    /// Why.
    pub reason: String,
}

/// Groups the chunks of `files` by pack. Chunks of blobs missing from the index are returned as damage.
fn group(index: &Index, files: &[(u32, &[ChunkRef])]) -> (Vec<PackJob>, Vec<Damage>) {
    let mut by_blob: HashMap<BlobId, Vec<Target>> = HashMap::new();
    for (file, chunks) in files {
        let mut offset = 0u64;
        for c in *chunks {
            by_blob.entry(c.id).or_default().push(Target {
                file: *file,
                offset,
                len: c.len,
            });
            offset += u64::from(c.len);
        }
    }
    let mut damage = Vec::new();
    let mut by_pack: HashMap<u32, Vec<BlobJob>> = HashMap::new();
    for (id, targets) in by_blob {
        let entry = index
            .all_locations(&id)
            .iter()
            .find(|e| e.blob_type == BlobType::Data);
        match entry {
            Some(entry) => by_pack.entry(entry.pack).or_default().push(BlobJob {
                entry: *entry,
                targets,
            }),
            None => damage.extend(targets.into_iter().map(|t| Damage {
                file: t.file,
                offset: t.offset,
                len: u64::from(t.len),
                reason: format!("data blob {} is not in the index", id.short()),
            })),
        }
    }
    let mut jobs: Vec<PackJob> = by_pack
        .into_iter()
        .map(|(pack, mut blobs)| {
            blobs.sort_by_key(|b| b.entry.offset);
            PackJob { pack, blobs }
        })
        .collect();
    // Roughly in file order, as the backup wrote them: sequential-ish writes and reads.
    jobs.sort_by_key(|j| {
        j.blobs
            .iter()
            .flat_map(|b| b.targets.iter().map(|t| (t.file, t.offset)))
            .min()
    });
    (jobs, damage)
}

struct Writer<'a> {
    repo: &'a Repository,
    index: &'a Index,
    files: &'a [FileState],
    progress: &'a dyn Progress,
    damage: Mutex<Vec<Damage>>,
    abort: AtomicBool,
    fatal: Mutex<Option<EngineError>>,
}

/// Writes the content of `files` (file-state index, chunks) with `threads` workers. Returns the damage
/// found; an error only for failures writing the target (disk full, permissions), which stop the restore.
pub(super) fn write_content(
    repo: &Repository,
    index: &Index,
    states: &[FileState],
    files: &[(u32, &[ChunkRef])],
    threads: usize,
    progress: &dyn Progress,
) -> Result<Vec<Damage>> {
    let (jobs, missing) = group(index, files);
    let w = Writer {
        repo,
        index,
        files: states,
        progress,
        damage: Mutex::new(Vec::new()),
        abort: AtomicBool::new(false),
        fatal: Mutex::new(None),
    };
    for d in missing {
        w.damaged(d);
    }
    let queue = Mutex::new(jobs.into_iter());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    if w.abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let next = queue.lock().next();
                    let Some(job) = next else { break };
                    if let Err(e) = w.pack(&job) {
                        w.abort.store(true, Ordering::Relaxed);
                        w.fatal.lock().get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = w.fatal.into_inner() {
        return Err(e);
    }
    Ok(w.damage.into_inner())
}

impl Writer<'_> {
    fn damaged(&self, d: Damage) {
        self.done_one(d.file);
        self.damage.lock().push(d);
    }

    fn done_one(&self, file: u32) {
        if self.files[file as usize]
            .remaining
            .fetch_sub(1, Ordering::AcqRel)
            == 1
        {
            self.progress.items(1);
        }
    }

    fn pack(&self, job: &PackJob) -> Result<()> {
        let pack = &self.index.packs()[job.pack as usize];
        let name = pack.id.to_hex();
        let mut open: HashMap<u32, File> = HashMap::new();
        let mut start = 0;
        while start < job.blobs.len() {
            // Coalesce [start, end) into one read.
            let first = &job.blobs[start].entry;
            let range_start = u64::from(first.offset);
            let mut range_end = range_start + u64::from(first.length);
            let mut end = start + 1;
            while end < job.blobs.len() {
                let e = &job.blobs[end].entry;
                let (o, l) = (u64::from(e.offset), u64::from(e.length));
                if o > range_end + MAX_GAP || o + l - range_start > MAX_RANGE {
                    break;
                }
                range_end = range_end.max(o + l);
                end += 1;
            }
            let bytes = self.repo.backend().read_range(
                FileKind::Pack,
                &name,
                range_start,
                range_end - range_start,
            );
            for blob in &job.blobs[start..end] {
                let e = &blob.entry;
                let opened = match &bytes {
                    Ok(b) => {
                        let at = (u64::from(e.offset) - range_start) as usize;
                        self.repo.open_stored_blob(
                            pack.key_ids.get(e.key_index as usize).copied(),
                            BlobType::Data,
                            &e.id,
                            &b[at..at + e.length as usize],
                        )
                    }
                    Err(err) => Err(EngineError::Damaged(format!(
                        "reading pack {}: {err}",
                        pack.id.short()
                    ))),
                };
                let data = match opened {
                    Ok(d) => Ok(d),
                    // Another copy (or a second try of this one) may be intact.
                    Err(first_err) => self
                        .repo
                        .read_blob(self.index, BlobType::Data, &e.id)
                        .map_err(|_| first_err),
                };
                match data {
                    Ok(data) => self.write_blob(&data, &blob.targets, &mut open)?,
                    Err(err) => {
                        let reason = err.to_string();
                        for t in &blob.targets {
                            self.damaged(Damage {
                                file: t.file,
                                offset: t.offset,
                                len: u64::from(t.len),
                                reason: reason.clone(),
                            });
                        }
                    }
                }
            }
            start = end;
        }
        Ok(())
    }

    fn write_blob(
        &self,
        data: &[u8],
        targets: &[Target],
        open: &mut HashMap<u32, File>,
    ) -> Result<()> {
        for t in targets {
            if data.len() != t.len as usize {
                self.damaged(Damage {
                    file: t.file,
                    offset: t.offset,
                    len: u64::from(t.len),
                    reason: format!(
                        "the snapshot lists a {}-byte chunk but its blob holds {} bytes",
                        t.len,
                        data.len()
                    ),
                });
                continue;
            }
            let state = &self.files[t.file as usize];
            if open.len() >= MAX_OPEN && !open.contains_key(&t.file) {
                open.clear();
            }
            let f = match open.entry(t.file) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    reopen(&state.path, true, state.id)
                        .map_err(|e| EngineError::io("open", &state.path, e))?,
                ),
            };
            let r = if state.sparse {
                write_sparse(f, data, t.offset)
            } else {
                f.write_all_at(data, t.offset)
            };
            r.map_err(|e| EngineError::io("write", &state.path, e))?;
            self.progress.bytes(data.len() as u64);
            self.done_one(t.file);
        }
        Ok(())
    }
}

/// Writes `data` at `offset`, skipping whole zero blocks (aligned to the file) so they stay holes.
fn write_sparse(f: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
    let mut pos = 0usize;
    let mut run: Option<usize> = None;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let block_end = ((abs / SPARSE_BLOCK + 1) * SPARSE_BLOCK - offset).min(data.len() as u64);
        let block = &data[pos..block_end as usize];
        let zero = block.iter().all(|&b| b == 0);
        match (zero, run) {
            (false, None) => run = Some(pos),
            (true, Some(s)) => {
                f.write_all_at(&data[s..pos], offset + s as u64)?;
                run = None;
            }
            _ => {}
        }
        pos = block_end as usize;
    }
    if let Some(s) = run {
        f.write_all_at(&data[s..], offset + s as u64)?;
    }
    Ok(())
}
