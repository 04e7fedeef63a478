//! Writing file content, pack by pack.
//!
//! Every needed data blob is assigned to one pack location; each pack's needed blobs are read with as few
//! range reads as possible (neighbours coalesced, a long span cut into near-equal reads of at most
//! [`MAX_RANGE`]), then every blob is decrypted and verified once and written with positional writes to
//! every file and offset that uses it. Workers take ranges in plan order from a shared queue, so memory
//! stays at about one range per worker.
//! A blob that cannot be read, decrypted or verified from any of its locations is never written: its
//! ranges stay zero (or holes) and are recorded as damage.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

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
/// Largest coalesced read; a single larger blob is read alone. A longer span is cut into near-equal
/// reads (a 17 MiB pack: two reads of about 8.5 MiB, not 16 MiB and a sliver).
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

/// The bytes of a range read, or why they could not be read.
type ReadResult = std::result::Result<Vec<u8>, String>;

/// One coalesced read of a pack and the blobs it covers.
#[derive(Debug)]
struct RangeJob<'j> {
    pack: u32,
    start: u64,
    end: u64,
    blobs: &'j [BlobJob],
}

/// Cuts the blobs of one pack (sorted by offset) into reads, as `[first, last)` positions: blobs less than
/// [`MAX_GAP`] apart share a read; a run longer than [`MAX_RANGE`] is cut into near-equal reads.
fn coalesce(blobs: &[BlobJob]) -> Vec<(usize, usize)> {
    let span = |a: &BlobJob, b: &BlobJob| {
        u64::from(b.entry.offset) + u64::from(b.entry.length) - u64::from(a.entry.offset)
    };
    let mut out = Vec::new();
    let mut run_start = 0;
    while run_start < blobs.len() {
        // A run: neighbours less than MAX_GAP apart.
        let mut run_end = run_start + 1;
        let mut reach =
            u64::from(blobs[run_start].entry.offset) + u64::from(blobs[run_start].entry.length);
        while run_end < blobs.len() && u64::from(blobs[run_end].entry.offset) <= reach + MAX_GAP {
            let e = &blobs[run_end].entry;
            reach = reach.max(u64::from(e.offset) + u64::from(e.length));
            run_end += 1;
        }
        let total = reach - u64::from(blobs[run_start].entry.offset);
        let pieces = total.div_ceil(MAX_RANGE).max(1);
        let target = total.div_ceil(pieces);
        let mut first = run_start;
        for k in run_start + 1..run_end {
            // The piece so far reached its share, or this blob would take it past a whole read.
            if span(&blobs[first], &blobs[k - 1]) >= target
                || span(&blobs[first], &blobs[k]) > MAX_RANGE
            {
                out.push((first, k));
                first = k;
            }
        }
        out.push((first, run_end));
        run_start = run_end;
    }
    out
}

/// Writes the content of `files` (file-state index, chunks) with `threads` workers. Returns the
/// damage found; an error only for failures writing the target (disk full, permissions), which stop the
/// restore.
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
    let ranges: Vec<RangeJob<'_>> = jobs
        .iter()
        .flat_map(|job| {
            coalesce(&job.blobs)
                .into_iter()
                .map(move |(a, b)| RangeJob {
                    pack: job.pack,
                    start: u64::from(job.blobs[a].entry.offset),
                    end: job.blobs[a..b]
                        .iter()
                        .map(|x| u64::from(x.entry.offset) + u64::from(x.entry.length))
                        .max()
                        .unwrap_or(0),
                    blobs: &job.blobs[a..b],
                })
        })
        .collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(ranges.len()) {
            let (w, ranges, next) = (&w, &ranges, &next);
            s.spawn(move || {
                let mut open: HashMap<u32, File> = HashMap::new();
                while !w.abort.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = ranges.get(i) else { break };
                    let pack = &w.index.packs()[r.pack as usize];
                    let bytes = w
                        .repo
                        .backend()
                        .read_range(FileKind::Pack, &pack.id.to_hex(), r.start, r.end - r.start)
                        .map_err(|e| format!("reading pack {}: {e}", pack.id.short()));
                    if let Err(e) = w.range(r, bytes, &mut open) {
                        w.abort.store(true, Ordering::Relaxed);
                        w.fatal.lock().get_or_insert(e);
                        break;
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

    /// Decrypts, verifies and writes the blobs of one range read (`bytes`, or the error reading it).
    fn range(
        &self,
        r: &RangeJob<'_>,
        bytes: ReadResult,
        open: &mut HashMap<u32, File>,
    ) -> Result<()> {
        let pack = &self.index.packs()[r.pack as usize];
        for blob in r.blobs {
            let e = &blob.entry;
            let opened = match &bytes {
                Ok(b) => {
                    let at = (u64::from(e.offset) - r.start) as usize;
                    match b.get(at..at + e.length as usize) {
                        Some(stored) => self.repo.open_stored_blob(
                            pack.key_ids.get(e.key_index as usize).copied(),
                            BlobType::Data,
                            &e.id,
                            stored,
                        ),
                        None => Err(EngineError::Damaged(format!(
                            "reading pack {}: short read",
                            pack.id.short()
                        ))),
                    }
                }
                Err(why) => Err(EngineError::Damaged(why.clone())),
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
                Ok(data) => self.write_blob(&data, &blob.targets, open)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use brr_core::id::Id;

    const MIB: u32 = 1024 * 1024;

    fn blob(offset: u32, length: u32) -> BlobJob {
        BlobJob {
            entry: IndexEntry {
                id: BlobId(Id::hash_of(&offset.to_le_bytes())),
                pack: 0,
                offset,
                length,
                blob_type: BlobType::Data,
                key_index: 0,
            },
            targets: Vec::new(),
        }
    }

    /// Byte spans of the reads `coalesce` plans.
    fn spans(blobs: &[BlobJob]) -> Vec<(u64, u64)> {
        coalesce(blobs)
            .into_iter()
            .map(|(a, b)| {
                let start = u64::from(blobs[a].entry.offset);
                let end = blobs[a..b]
                    .iter()
                    .map(|x| u64::from(x.entry.offset) + u64::from(x.entry.length))
                    .max()
                    .unwrap();
                (start, end - start)
            })
            .collect()
    }

    #[test]
    fn a_whole_pack_is_cut_into_near_equal_reads() {
        // A 17 MiB pack of 1 MiB blobs: two reads of 9 and 8 MiB, not 16 + 1.
        let blobs: Vec<BlobJob> = (0..17).map(|i| blob(i * MIB, MIB)).collect();
        let got = spans(&blobs);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|&(_, len)| len <= MAX_RANGE));
        assert!(
            got.iter().all(|&(_, len)| len >= 8 * u64::from(MIB)),
            "{got:?}"
        );
        assert_eq!(got.iter().map(|s| s.1).sum::<u64>(), 17 * u64::from(MIB));
    }

    #[test]
    fn neighbours_share_a_read_and_far_blobs_do_not() {
        // Small blobs with small gaps: one read; a blob 2 MiB further: a read of its own.
        let blobs = vec![
            blob(0, 1000),
            blob(5000, 1000),
            blob(MIB, 1000),
            blob(3 * MIB + 2000, 500),
        ];
        assert_eq!(
            spans(&blobs),
            vec![(0, u64::from(MIB) + 1000), (3 * u64::from(MIB) + 2000, 500)]
        );
        // One blob larger than a read is read alone, whole.
        let blobs = vec![blob(0, 100), blob(200, 20 * MIB), blob(20 * MIB + 300, 100)];
        assert_eq!(
            spans(&blobs),
            vec![
                (0, 100),
                (200, 20 * u64::from(MIB)),
                (20 * u64::from(MIB) + 300, 100)
            ]
        );
        assert_eq!(coalesce(&[]), Vec::<(usize, usize)>::new());
    }
}
