//! Creating the restored tree: every directory, and every regular file empty and sized.
//!
//! Creating an inode waits on the file system (inode and block bitmaps, directory blocks), so the tree is
//! created by several threads at once. The plan (depth-first, parents before children) is cut into
//! *tasks*: runs of sibling entries with their whole subtrees, each at most about `budget` entries. The
//! directories above the tasks are created first, in plan order; then the tasks run in parallel, each
//! opening its parent directory once (component by component, never through a symlink) and creating its
//! entries relative to open directory descriptors, as [`fsops::ensure_dir`] and [`fsops::create_file`]
//! do. Open descriptors per task: the depth of its subtree.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::AtomicU32;

use brr_core::tree::NodeKind;

use super::RestoreReport;
use super::data::FileState;
use super::fsops::{self, Created, FileId};
use super::plan::{Plan, What};
use crate::error::{EngineError, Result};
use crate::parallel::parallel_map;
use crate::progress::Progress;

/// Directories and files as created.
pub(super) struct CreatedTree {
    /// Per file slot.
    pub states: Vec<FileState>,
    /// Per file slot: not created (a directory was in the way).
    pub skipped: Vec<bool>,
    /// Per entry: the directory's identity.
    pub dir_ids: Vec<Option<FileId>>,
}

/// Sibling entries `start..end` (with their subtrees) under the directory entry `parent` (`None`: the
/// restore target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Task {
    parent: Option<usize>,
    start: usize,
    end: usize,
}

/// What one task created.
#[derive(Default)]
struct TaskResult {
    files: Vec<(usize, FileState, bool)>,
    dirs: Vec<(usize, FileId)>,
    n_dirs: u64,
    n_files: u64,
    bytes: u64,
    errors: Vec<(usize, String)>,
}

/// For every entry, the index just past its subtree (the entry itself for non-directories).
fn subtree_ends(plan: &Plan) -> Vec<usize> {
    let n = plan.entries.len();
    let mut ends = vec![n; n];
    let mut open: Vec<usize> = Vec::new();
    for (i, e) in plan.entries.iter().enumerate() {
        while let Some(&top) = open.last() {
            if plan.entries[top].depth >= e.depth {
                ends[top] = i;
                open.pop();
            } else {
                break;
            }
        }
        if e.what == What::Dir {
            open.push(i);
        } else {
            ends[i] = i + 1;
        }
    }
    ends
}

/// Cuts the children of `parent` in `start..end` into tasks of about `budget` entries; directories with
/// a larger subtree are split further and listed in `upper`, to be created before any task runs.
fn split(
    plan: &Plan,
    ends: &[usize],
    parent: Option<usize>,
    (start, end): (usize, usize),
    budget: usize,
    upper: &mut Vec<usize>,
    tasks: &mut Vec<Task>,
) {
    let mut run: Option<usize> = None;
    let mut j = start;
    while j < end {
        let sub_end = ends[j].max(j + 1);
        if plan.entries[j].what == What::Dir && sub_end - j > budget {
            if let Some(s) = run.take() {
                tasks.push(Task {
                    parent,
                    start: s,
                    end: j,
                });
            }
            upper.push(j);
            split(plan, ends, Some(j), (j + 1, sub_end), budget, upper, tasks);
        } else {
            let s = *run.get_or_insert(j);
            if sub_end - s >= budget {
                tasks.push(Task {
                    parent,
                    start: s,
                    end: sub_end,
                });
                run = None;
            }
        }
        j = sub_end;
    }
    if let Some(s) = run {
        tasks.push(Task {
            parent,
            start: s,
            end,
        });
    }
}

/// Creates every directory and file of the plan under `root` with up to `threads` threads.
pub(super) fn create_tree(
    root: &OwnedFd,
    target: &Path,
    plan: &Plan,
    overwrite: bool,
    threads: usize,
    progress: &dyn Progress,
    report: &mut RestoreReport,
) -> Result<CreatedTree> {
    let ends = subtree_ends(plan);
    let n = plan.entries.len();
    let budget = (n / (threads.max(1) * 8)).max(64);
    let (mut upper, mut tasks) = (Vec::new(), Vec::new());
    split(plan, &ends, None, (0, n), budget, &mut upper, &mut tasks);

    let mut dir_ids: Vec<Option<FileId>> = vec![None; n];
    // The directories above the tasks, parents first.
    {
        let mut fds: HashMap<usize, OwnedFd> = HashMap::new();
        for &i in &upper {
            let e = &plan.entries[i];
            let parent = match parent_of(plan, i) {
                Some(p) => fds.get(&p),
                None => Some(root),
            };
            let Some(parent) = parent else {
                return Err(EngineError::Damaged(format!(
                    "{}: parent directory missing from the restore plan",
                    e.snap_path
                )));
            };
            let (fd, id) = fsops::ensure_dir(parent, name_of(e), overwrite)
                .map_err(|err| EngineError::io("create directory", &target.join(&e.rel), err))?;
            dir_ids[i] = Some(id);
            fds.insert(i, fd);
            report.dirs += 1;
        }
    }

    let results = parallel_map(tasks, threads, |t| {
        run_task(root, target, plan, t, overwrite, progress)
    });
    let mut states: Vec<Option<(FileState, bool)>> = (0..plan.files.len()).map(|_| None).collect();
    let mut errors = Vec::new();
    for r in results {
        let r = r?;
        for (k, state, skipped) in r.files {
            states[k] = Some((state, skipped));
        }
        for (i, id) in r.dirs {
            dir_ids[i] = Some(id);
        }
        report.dirs += r.n_dirs;
        report.files += r.n_files;
        report.bytes += r.bytes;
        errors.extend(r.errors);
    }
    errors.sort_by_key(|(i, _)| *i);
    report.errors.extend(errors.into_iter().map(|(_, m)| m));
    let (states, skipped) = states.into_iter().flatten().unzip();
    Ok(CreatedTree {
        states,
        skipped,
        dir_ids,
    })
}

/// The directory entry that holds entry `i` (`None`: the target itself).
fn parent_of(plan: &Plan, i: usize) -> Option<usize> {
    let depth = plan.entries[i].depth;
    (0..i).rev().find(|&j| plan.entries[j].depth < depth)
}

fn name_of(e: &super::plan::Entry) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(e.rel.file_name().unwrap_or_default())
}

/// Creates the entries of one task below its parent directory.
fn run_task(
    root: &OwnedFd,
    target: &Path,
    plan: &Plan,
    task: Task,
    overwrite: bool,
    progress: &dyn Progress,
) -> Result<TaskResult> {
    let io = |op: &'static str, rel: &Path| {
        let path = target.join(rel);
        move |e: std::io::Error| EngineError::io(op, &path, e)
    };
    let (base_depth, parent_fd) = match task.parent {
        None => (0, root.try_clone().map_err(io("open", Path::new("")))?),
        Some(p) => {
            let rel = &plan.entries[p].rel;
            (
                plan.entries[p].depth,
                fsops::open_dir_beneath(root, rel).map_err(io("open directory", rel))?,
            )
        }
    };
    let mut out = TaskResult::default();
    // stack[d] is the descriptor of the directory at depth base_depth + d.
    let mut stack: Vec<OwnedFd> = vec![parent_fd];
    for i in task.start..task.end {
        let e = &plan.entries[i];
        let level = e.depth.saturating_sub(base_depth);
        stack.truncate(level);
        let Some(parent) = stack.get(level.wrapping_sub(1)) else {
            return Err(EngineError::Damaged(format!(
                "{}: parent directory missing from the restore plan",
                e.snap_path
            )));
        };
        match e.what {
            What::Dir => {
                let (fd, id) = fsops::ensure_dir(parent, name_of(e), overwrite)
                    .map_err(io("create directory", &e.rel))?;
                out.dirs.push((i, id));
                stack.push(fd);
                out.n_dirs += 1;
            }
            What::File(k) => {
                let NodeKind::File {
                    size,
                    chunks,
                    sparse,
                } = &e.node.kind
                else {
                    continue;
                };
                let (id, skipped) = match fsops::create_file(parent, name_of(e), *size, overwrite)
                    .map_err(io("create file", &e.rel))?
                {
                    Created::File(id) => {
                        out.n_files += 1;
                        out.bytes += size;
                        (id, false)
                    }
                    Created::DirInTheWay => {
                        out.errors.push((
                            i,
                            format!(
                                "{}: not restored: a directory of that name is in the way",
                                e.snap_path
                            ),
                        ));
                        ((0, 0), true)
                    }
                };
                if skipped || chunks.is_empty() {
                    progress.items(1);
                }
                let state = FileState {
                    path: target.join(&e.rel),
                    id,
                    sparse: *sparse,
                    remaining: AtomicU32::new(if skipped { 0 } else { chunks.len() as u32 }),
                };
                out.files.push((k, state, skipped));
            }
            What::HardLink(_) | What::Special | What::Skipped => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::plan::Entry;
    use super::*;
    use brr_core::tree::Node;
    use std::path::PathBuf;

    fn node() -> Node {
        Node {
            name: b"x".to_vec(),
            kind: NodeKind::Fifo,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime: Default::default(),
            atime: Default::default(),
            ctime: Default::default(),
            device: 0,
            inode: 0,
            links: 1,
            xattrs: Vec::new(),
        }
    }

    /// A plan from (depth, is_dir) pairs in depth-first order.
    fn plan(shape: &[(usize, bool)]) -> Plan {
        let mut p = Plan::default();
        let mut names: Vec<PathBuf> = Vec::new();
        for (i, &(depth, dir)) in shape.iter().enumerate() {
            names.truncate(depth - 1);
            let rel = names
                .last()
                .cloned()
                .unwrap_or_default()
                .join(format!("e{i}"));
            let what = if dir {
                What::Dir
            } else {
                p.files.push(i);
                What::File(p.files.len() - 1)
            };
            if dir {
                names.push(rel.clone());
            }
            p.entries.push(Entry {
                rel,
                snap_path: format!("/e{i}"),
                depth,
                node: node(),
                what,
            });
        }
        p
    }

    #[test]
    fn tasks_cover_every_entry_once_below_created_parents() {
        // a/ (f f b/ (f f f) f) c/ (f) f
        let shape = [
            (1, true),
            (2, false),
            (2, false),
            (2, true),
            (3, false),
            (3, false),
            (3, false),
            (2, false),
            (1, true),
            (2, false),
            (1, false),
        ];
        let p = plan(&shape);
        let ends = subtree_ends(&p);
        assert_eq!(ends, vec![8, 2, 3, 7, 5, 6, 7, 8, 10, 10, 11]);
        for budget in 1..12 {
            let (mut upper, mut tasks) = (Vec::new(), Vec::new());
            split(
                &p,
                &ends,
                None,
                (0, shape.len()),
                budget,
                &mut upper,
                &mut tasks,
            );
            let mut covered: Vec<usize> = upper.clone();
            for t in &tasks {
                assert!(t.start < t.end);
                covered.extend(t.start..t.end);
                // Every task's entries lie below its parent, which is created before the tasks.
                let base = t.parent.map_or(0, |q| p.entries[q].depth);
                for i in t.start..t.end {
                    assert!(p.entries[i].depth > base);
                }
                if let Some(q) = t.parent {
                    assert!(upper.contains(&q), "budget {budget}: {t:?}");
                    assert_eq!(parent_of(&p, t.start), Some(q));
                }
            }
            covered.sort_unstable();
            assert_eq!(
                covered,
                (0..shape.len()).collect::<Vec<_>>(),
                "budget {budget}"
            );
        }
    }
}
