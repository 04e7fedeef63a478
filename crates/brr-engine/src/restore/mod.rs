//! Restore: turn a snapshot (or part of it) back into files.
//!
//! Plan, then apply:
//!
//! | step | what |
//! |---|---|
//! | plan | walk the snapshot's trees once: every entry to create, depth-first, with include patterns and hard links resolved ([`plan`]) |
//! | create | directories (mode 0700 for now) and empty files sized with `set_len`, relative to open directory descriptors, never through a symlink |
//! | content | needed blobs grouped by pack; each pack's needed ranges read once, each blob decrypted and verified once (AEAD tag and keyed hash) and written with positional writes to every file and offset using it; packs in parallel, one read range per worker in memory ([`data`]) |
//! | verify | with [`RestoreOptions::verify`], every file read back and every chunk's keyed hash compared to the snapshot |
//! | damage | files with unreadable blobs renamed to `<name>.brr-damaged`, their damaged ranges left zero and reported |
//! | links | hard links, symlinks, FIFOs and devices (devices only as root); sockets are not recreated |
//! | metadata | owner (as root; the group of one's own files otherwise), xattrs, mode including set-id and sticky bits, then atime/mtime with nanoseconds; directories last, deepest first |
//!
//! Safety: entry names were validated by `Tree::decode` (no `/`, `..`, NUL). On top of that, nothing the
//! restore creates is reached through a symlink: directories and files are created with `mkdirat` /
//! `openat(O_NOFOLLOW | O_EXCL)` under descriptors of directories created (or, with `overwrite`, checked to
//! be real directories) by the restore itself; symlinks from the snapshot are created only after all
//! content is written; files reopened later are opened with `O_NOFOLLOW` and checked to be the inode
//! created. With `overwrite`, an existing file is unlinked and created anew, never written through (it may
//! be a hard link to a file outside the target).
//!
//! Damage never turns into wrong bytes: a blob that fails any check is not written. Its ranges in every
//! file using it are reported in [`RestoreReport::damaged`], and the rest of the restore completes.

mod create;
mod data;
mod fsops;
mod plan;
mod verify;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use brr_core::snapshot::Snapshot;
use brr_core::tree::NodeKind;

use crate::error::{EngineError, Result};
use crate::index::Index;
use crate::parallel::{cpu_threads, parallel_map};
use crate::progress::Progress;
use crate::repo::Repository;
use create::{CreatedTree, create_tree};
use fsops::{Privileges, Special};
use plan::{Includes, Plan, What};

/// Damaged ranges and their reasons, per file slot.
type FileDamage = (Vec<(u64, u64)>, Vec<String>);

/// Suffix given to files restored with damaged ranges.
pub const DAMAGED_SUFFIX: &str = ".brr-damaged";

/// What to restore and where.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Target directory: created if missing; must be empty or not exist unless `overwrite`.
    pub target: PathBuf,
    /// Glob patterns on the path inside the snapshot, without the leading `/`: with a `/` they match the
    /// whole path (`home/me/docs/**`), without one any name (`*.txt`). An entry is restored when it or an
    /// ancestor matches, with the directories leading to it. Empty: everything.
    pub include: Vec<String>,
    /// After writing, read every restored file back and check each chunk's keyed hash.
    pub verify: bool,
    /// Allow a non-empty target: existing files are replaced, existing directories reused.
    pub overwrite: bool,
    /// Worker threads (default: number of CPUs).
    pub threads: Option<usize>,
}

/// Outcome of a restore.
#[derive(Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    /// Regular files restored (hard links included).
    pub files: u64,
    /// Directories created or reused.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// FIFOs and device nodes created, and sockets (recorded in snapshots, never recreated).
    pub others: u64,
    /// Bytes of file content restored (sizes of the files written).
    pub bytes: u64,
    /// Files with unreadable chunks, and directories whose listing was unreadable (restored empty, no
    /// ranges). Non-empty means the restore is incomplete: the CLI exits with code 14.
    pub damaged: Vec<DamagedFile>,
    /// Entries or metadata that could not be restored (xattrs, devices as non-root, verification
    /// mismatches, …). Ownership that an unprivileged user cannot set is skipped silently.
    pub errors: Vec<String>,
    /// Files read back and found exact (with [`RestoreOptions::verify`]).
    pub verified_files: u64,
}

/// A file restored with damaged ranges.
#[derive(Debug, serde::Serialize)]
pub struct DamagedFile {
    /// Path inside the snapshot.
    pub path: String,
    /// `(offset, length)` ranges left as zeros, merged and sorted.
    pub damaged_ranges: Vec<(u64, u64)>,
    /// Why the data could not be restored.
    pub reason: String,
    /// Where the file was written (with the [`DAMAGED_SUFFIX`]).
    pub saved_as: String,
}

/// Restores `snapshot` (or only `subpath` inside it, e.g. `/home/me/docs`; None = everything) into
/// `opts.target`. A directory `subpath` has its entries restored directly into the target; a file
/// `subpath` is restored as `target/<its name>`. Without a subpath, the target mirrors the snapshot's
/// absolute paths (`target/home/me/…`).
///
/// Damaged data and metadata that cannot be applied are reported, not errors; errors are reserved for an
/// unusable target, a missing subpath, an unreadable root tree and failures writing the target.
pub fn restore(
    repo: &Repository,
    index: &Index,
    snapshot: &Snapshot,
    subpath: Option<&str>,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let includes = Includes::new(&opts.include)?;
    let threads = opts.threads.unwrap_or_else(cpu_threads).max(1);
    prepare_target(&opts.target, opts.overwrite)?;
    let mut plan = plan::build(repo, index, snapshot, subpath, &includes, progress)?;
    let root = fsops::open_root(&opts.target)
        .map_err(|e| EngineError::io("open restore target", &opts.target, e))?;
    let privileges = Privileges::current();
    let mut report = RestoreReport::default();

    progress.start(
        "restore",
        Some(plan.files.len() as u64),
        Some(plan.total_bytes),
    );
    let created = create_tree(
        &root,
        &opts.target,
        &plan,
        opts.overwrite,
        io_threads(threads),
        progress,
        &mut report,
    )?;
    let states = &created.states;

    // Content.
    let work: Vec<(u32, &[brr_core::tree::ChunkRef])> = plan
        .files
        .iter()
        .enumerate()
        .filter(|(k, _)| !created.skipped[*k])
        .filter_map(|(k, &e)| match &plan.entries[e].node.kind {
            NodeKind::File { chunks, .. } if !chunks.is_empty() => Some((k as u32, &chunks[..])),
            _ => None,
        })
        .collect();
    let damage = data::write_content(repo, index, states, &work, threads, progress)?;
    progress.finish();
    let mut damaged_files: BTreeMap<usize, FileDamage> = BTreeMap::new();
    for d in damage {
        let entry = damaged_files.entry(d.file as usize).or_default();
        entry.0.push((d.offset, d.len));
        if !entry.1.contains(&d.reason) {
            entry.1.push(d.reason);
        }
    }

    if opts.verify {
        let to_check: Vec<_> = plan
            .files
            .iter()
            .enumerate()
            .filter(|(k, _)| !created.skipped[*k] && !damaged_files.contains_key(k))
            .filter_map(|(k, &e)| match &plan.entries[e].node.kind {
                NodeKind::File { chunks, .. } => {
                    Some((&states[k], plan.entries[e].snap_path.as_str(), &chunks[..]))
                }
                _ => None,
            })
            .collect();
        let bytes = to_check
            .iter()
            .map(|(_, _, c)| c.iter().map(|c| u64::from(c.len)).sum::<u64>())
            .sum();
        progress.start("verify", Some(to_check.len() as u64), Some(bytes));
        let (ok, errors) = verify::verify(repo, to_check, threads, progress);
        progress.finish();
        report.verified_files = ok;
        report.errors.extend(errors);
    }

    // Damaged files are kept under another name.
    let mut damaged_entries: BTreeMap<usize, usize> = BTreeMap::new();
    for (k, (mut ranges, reasons)) in damaged_files {
        let e = plan.files[k];
        let entry = &plan.entries[e];
        let saved = match fsops::rename_with_suffix(&root, &entry.rel, DAMAGED_SUFFIX) {
            Ok(new_rel) => new_rel,
            Err(err) => {
                report.errors.push(format!(
                    "{}: renaming the damaged file: {err}",
                    entry.snap_path
                ));
                entry.rel.clone()
            }
        };
        ranges.sort_unstable();
        let ranges = merge(ranges);
        let msg = format!(
            "{}: {} damaged range(s), {} bytes left as zeros; saved as {}: {}",
            entry.snap_path,
            ranges.len(),
            ranges.iter().map(|r| r.1).sum::<u64>(),
            opts.target.join(&saved).display(),
            reasons.join("; ")
        );
        progress.warn(&msg);
        report.damaged.push(DamagedFile {
            path: entry.snap_path.clone(),
            damaged_ranges: ranges,
            reason: reasons.join("; "),
            saved_as: opts.target.join(&saved).display().to_string(),
        });
        plan.entries[e].rel = saved;
        damaged_entries.insert(e, report.damaged.len() - 1);
    }

    link_and_create_specials(
        &root,
        opts,
        &mut plan,
        &created.skipped,
        &damaged_entries,
        privileges,
        &mut report,
    );
    apply_metadata(
        &root,
        &opts.target,
        &plan,
        &created,
        privileges,
        threads,
        &mut report,
    );

    for lost in &plan.lost_dirs {
        let entry = &plan.entries[lost.entry];
        report.damaged.push(DamagedFile {
            path: entry.snap_path.clone(),
            damaged_ranges: Vec::new(),
            reason: format!(
                "directory listing unreadable, restored empty: {}",
                lost.reason
            ),
            saved_as: opts.target.join(&entry.rel).display().to_string(),
        });
    }
    Ok(report)
}

/// Checks (or creates) the target directory.
fn prepare_target(target: &Path, overwrite: bool) -> Result<()> {
    match std::fs::metadata(target) {
        Ok(md) if md.is_dir() => {
            if !overwrite {
                let mut rd =
                    std::fs::read_dir(target).map_err(|e| EngineError::io("list", target, e))?;
                if rd.next().is_some() {
                    return Err(EngineError::invalid(
                        "restore target",
                        format!(
                            "{} is not empty (choose an empty or new directory, or allow overwriting)",
                            target.display()
                        ),
                    ));
                }
            }
            Ok(())
        }
        Ok(_) => Err(EngineError::invalid(
            "restore target",
            format!("{} exists and is not a directory", target.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(target)
            .map_err(|e| EngineError::io("create restore target", target, e)),
        Err(e) => Err(EngineError::io("restore target", target, e)),
    }
}

fn link_and_create_specials(
    root: &OwnedFd,
    opts: &RestoreOptions,
    plan: &mut Plan,
    skipped: &[bool],
    damaged_entries: &BTreeMap<usize, usize>,
    privileges: Privileges,
    report: &mut RestoreReport,
) {
    for i in 0..plan.entries.len() {
        match plan.entries[i].what {
            What::HardLink(first) => {
                let What::File(k) = plan.entries[first].what else {
                    continue;
                };
                let snap_path = plan.entries[i].snap_path.clone();
                if skipped[k] {
                    report.errors.push(format!(
                        "{snap_path}: hard link not created: {} was not restored",
                        plan.entries[first].snap_path
                    ));
                    continue;
                }
                let rel = plan.entries[i].rel.clone();
                let damaged = damaged_entries.get(&first).map(|&d| &report.damaged[d]);
                let to = plan.entries[first].rel.clone();
                let linked = match damaged {
                    // A damaged name never replaces an existing entry.
                    Some(_) => fsops::hard_link_with_suffix(root, &to, &rel, DAMAGED_SUFFIX),
                    None => fsops::hard_link(root, &to, &rel, opts.overwrite).map(|()| rel),
                };
                match linked {
                    Ok(rel) => {
                        report.files += 1;
                        if let Some(d) = damaged {
                            let copy = DamagedFile {
                                path: snap_path,
                                damaged_ranges: d.damaged_ranges.clone(),
                                reason: d.reason.clone(),
                                saved_as: opts.target.join(&rel).display().to_string(),
                            };
                            report.damaged.push(copy);
                        }
                        plan.entries[i].rel = rel;
                    }
                    Err(e) => report
                        .errors
                        .push(format!("{snap_path}: creating the hard link: {e}")),
                }
            }
            What::Special => {
                let e = &plan.entries[i];
                let is_link = matches!(e.node.kind, NodeKind::Symlink { .. });
                match fsops::create_special(root, &e.rel, &e.node, privileges, opts.overwrite) {
                    Ok(Special::Created) if is_link => report.symlinks += 1,
                    Ok(Special::Created) | Ok(Special::Socket) => report.others += 1,
                    Ok(Special::Skipped(why)) => {
                        report.errors.push(format!("{}: {why}", e.snap_path));
                        // Not created: no metadata to apply.
                        plan.entries[i].what = What::Skipped;
                    }
                    Err(err) => {
                        report
                            .errors
                            .push(format!("{}: not created: {err}", e.snap_path));
                        plan.entries[i].what = What::Skipped;
                    }
                }
            }
            _ => {}
        }
    }
}

fn apply_metadata(
    root: &OwnedFd,
    target: &Path,
    plan: &Plan,
    created: &CreatedTree,
    privileges: Privileges,
    threads: usize,
    report: &mut RestoreReport,
) {
    // Files (once per inode: hard links share it) and special entries, in parallel.
    let items: Vec<usize> = (0..plan.entries.len())
        .filter(|&i| match plan.entries[i].what {
            What::File(k) => !created.skipped[k],
            What::Special => !matches!(plan.entries[i].node.kind, NodeKind::Socket),
            _ => false,
        })
        .collect();
    let errors = parallel_map(items, threads, |i| {
        let e = &plan.entries[i];
        let mut errors = Vec::new();
        match (&e.what, &e.node.kind) {
            (What::File(k), _) => {
                let path = target.join(&e.rel);
                match fsops::reopen(&path, false, created.states[*k].id) {
                    Ok(f) => {
                        fsops::apply_meta_fd(&f, &e.node, &e.snap_path, privileges, &mut errors)
                    }
                    Err(err) => {
                        errors.push(format!("{}: metadata not applied: {err}", e.snap_path))
                    }
                }
            }
            (_, NodeKind::Fifo) => match fsops::open_for_meta(root, &e.rel, None) {
                Ok(f) => fsops::apply_meta_fd(&f, &e.node, &e.snap_path, privileges, &mut errors),
                Err(err) => errors.push(format!("{}: metadata not applied: {err}", e.snap_path)),
            },
            _ => fsops::apply_meta_at(
                root,
                target,
                &e.rel,
                &e.node,
                &e.snap_path,
                privileges,
                &mut errors,
            ),
        }
        errors
    });
    report.errors.extend(errors.into_iter().flatten());

    // Directories last, deepest first, so creating their children changes nothing afterwards. In plan
    // order with a stack of open directories (one descriptor per level): a directory's metadata is
    // applied when the walk leaves its subtree, through the descriptor its children were opened from.
    let mut stack: Vec<(usize, Option<std::fs::File>)> = Vec::new();
    let leave = |(i, f): (usize, Option<std::fs::File>), errors: &mut Vec<String>| {
        if let Some(f) = f {
            let e = &plan.entries[i];
            fsops::apply_meta_fd(&f, &e.node, &e.snap_path, privileges, errors);
        }
    };
    for (i, e) in plan.entries.iter().enumerate() {
        while stack.len() >= e.depth {
            let Some(top) = stack.pop() else { break };
            leave(top, &mut report.errors);
        }
        if e.what != What::Dir {
            continue;
        }
        let opened = match stack.last() {
            Some((_, Some(parent))) if stack.len() + 1 == e.depth => {
                fsops::open_child_for_meta(parent, &e.rel, created.dir_ids[i])
            }
            Some((_, None)) if stack.len() + 1 == e.depth => Err(std::io::Error::other(
                "its parent directory could not be opened",
            )),
            _ => fsops::open_for_meta(root, &e.rel, created.dir_ids[i]),
        };
        match opened {
            Ok(f) => stack.push((i, Some(f))),
            Err(err) => {
                report
                    .errors
                    .push(format!("{}: metadata not applied: {err}", e.snap_path));
                stack.push((i, None));
            }
        }
    }
    while let Some(top) = stack.pop() {
        leave(top, &mut report.errors);
    }
}

/// Threads for work that mostly waits on the file system (creating inodes): twice the CPU threads.
fn io_threads(threads: usize) -> usize {
    threads.saturating_mul(2).max(2)
}

/// Merges sorted, possibly adjacent `(offset, len)` ranges.
fn merge(ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (o, l) in ranges {
        if let Some(last) = out.last_mut()
            && o <= last.0 + last.1
        {
            last.1 = last.1.max(o + l - last.0);
            continue;
        }
        out.push((o, l));
    }
    out
}
