//! `brr restore`.

use brr_engine::restore::{RestoreOptions, restore};

use crate::cli::RestoreArgs;
use crate::context::{CliError, Context};
use crate::output::{human_bytes, print_json};
use crate::progress::Bar;

/// Exit code when some files could not be restored intact.
const EXIT_DAMAGED: i32 = 14;

pub fn run(ctx: &Context, a: &RestoreArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: a.include.clone(),
        verify: a.verify,
        overwrite: a.overwrite,
        threads: ctx.threads(),
    };
    let bar = Bar::new(ctx.global.quiet, ctx.global.json);
    let started = std::time::Instant::now();
    let report = restore(&repo, &index, &snap, a.path.as_deref(), &opts, &bar)?;
    let secs = started.elapsed().as_secs_f64();
    if ctx.global.json {
        print_json(
            &serde_json::json!({ "snapshot": snap.id.to_hex(), "target": a.target, "seconds": secs, "report": report }),
        );
    } else if !ctx.global.quiet {
        outln!(
            "restored {} files, {} dirs, {} symlinks, {} other ({}) from {} to {} in {:.2}s",
            report.files,
            report.dirs,
            report.symlinks,
            report.others,
            human_bytes(report.bytes),
            snap.id.short(),
            a.target.display(),
            secs
        );
        if a.verify {
            outln!(
                "verified {} files against the snapshot",
                report.verified_files
            );
        }
        for e in &report.errors {
            outln!("warning: {e}");
        }
        for d in &report.damaged {
            outln!(
                "DAMAGED: {} ({}), saved as {} with unreadable ranges {:?} left as zeros",
                d.path,
                d.reason,
                d.saved_as,
                d.damaged_ranges
            );
        }
    }
    if !report.damaged.is_empty() {
        eprintln!(
            "brr: error: {} files could not be restored intact (see above)",
            report.damaged.len()
        );
        return Ok(EXIT_DAMAGED);
    }
    Ok(0)
}
