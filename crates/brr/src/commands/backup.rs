//! `brr backup`.

use brr_core::id::SnapshotId;
use brr_engine::backup::{BackupOptions, ParentChoice, backup};

use crate::cli::BackupArgs;
use crate::context::{CliError, Context};
use crate::output::{human_bytes, print_json};
use crate::progress::Bar;

/// Exit code of a backup that completed but skipped unreadable files.
const EXIT_PARTIAL: i32 = 3;

pub fn run(ctx: &Context, a: &BackupArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let mut excludes = ctx.file.exclude.clone();
    excludes.extend(a.excludes.iter().cloned());
    for f in &a.exclude_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::usage(format!("exclude file {}: {e}", f.display())))?;
        excludes.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    let parent = if a.force {
        ParentChoice::None
    } else if let Some(p) = &a.parent {
        ParentChoice::Snapshot(repo.find_snapshot(p)?.id)
    } else {
        ParentChoice::Auto
    };
    let compression =
        super::compression(a.compression.as_deref().or(ctx.file.compression.as_deref()))?;
    let opts = BackupOptions {
        paths: a.sources.clone(),
        tags: a.tags.clone(),
        excludes,
        one_file_system: a.one_file_system,
        parent,
        hostname: a.host.clone(),
        compression,
        threads: ctx.threads(),
        time: None,
    };
    let bar = Bar::new(ctx.global.quiet, ctx.global.json);
    let outcome = backup(&repo, &opts, &bar)?;
    let s = &outcome.snapshot;
    let sum = &s.meta.summary;
    if ctx.global.json {
        print_json(&serde_json::json!({
            "snapshot": s.id.to_hex(),
            "short_id": s.id.short(),
            "time": s.meta.time,
            "parent": s.meta.parent.map(|p: SnapshotId| p.to_hex()),
            "summary": sum,
            // Blobs a server already held (null for repositories that do not answer look-ups).
            "lookup": outcome.lookup,
        }));
    } else if !ctx.global.quiet {
        outln!(
            "files: {} new, {} changed, {} unmodified; {} dirs, {} other",
            sum.files_new,
            sum.files_changed,
            sum.files_unmodified,
            sum.dirs,
            sum.others
        );
        outln!(
            "data: {} read of {} total; {} added ({} stored) in {} new blobs",
            human_bytes(sum.bytes_read),
            human_bytes(sum.total_bytes),
            human_bytes(sum.bytes_added),
            human_bytes(sum.bytes_stored),
            sum.data_blobs_added + sum.tree_blobs_added
        );
        if let Some(l) = &outcome.lookup {
            outln!(
                "server: {} of {} new chunks already stored ({}), not uploaded; {} look-ups",
                l.blobs_present,
                l.blobs_asked + l.blobs_not_asked,
                human_bytes(l.bytes_present),
                l.requests
            );
        }
        let rate = if sum.duration_secs > 0.0 {
            sum.bytes_read as f64 / sum.duration_secs
        } else {
            0.0
        };
        outln!(
            "snapshot {} saved in {:.2}s ({}/s read)",
            s.id.short(),
            sum.duration_secs,
            human_bytes(rate as u64)
        );
        if !sum.errors.is_empty() {
            outln!(
                "{} entries could not be read and were skipped:",
                sum.errors.len()
            );
            for e in &sum.errors {
                outln!("  {e}");
            }
        }
    }
    Ok(if sum.errors.is_empty() {
        0
    } else {
        EXIT_PARTIAL
    })
}
