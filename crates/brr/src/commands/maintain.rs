//! `brr check`, `brr forget`, `brr prune`, `brr stats`.

use brr_core::retention::RetentionPolicy;
use brr_engine::check::{CheckOptions, check as run_check};
use brr_engine::forget::{ForgetOptions, GroupBy, apply_forget, forget_ids, plan_forget};
use brr_engine::prune::{PruneOptions, plan_prune, prune as run_prune};

use crate::cli::{CheckArgs, ForgetArgs, PruneArgs};
use crate::context::{CliError, Context};
use crate::output::{human_bytes, print_json};
use crate::progress::Bar;

/// Exit code when check finds damage.
const EXIT_DAMAGED: i32 = 14;

pub fn check(ctx: &Context, a: &CheckArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let bar = Bar::new(ctx.global.quiet, ctx.global.json);
    let report = run_check(
        &repo,
        &CheckOptions {
            read_data: a.read_data,
            threads: ctx.threads(),
        },
        &bar,
    )?;
    if ctx.global.json {
        print_json(&report);
    } else {
        for w in &report.warnings {
            outln!(
                "warning: {}{}: {}",
                w.file,
                w.offset.map(|o| format!(" @{o}")).unwrap_or_default(),
                w.message
            );
        }
        for e in &report.errors {
            outln!(
                "error: {}{}: {}",
                e.file,
                e.offset.map(|o| format!(" @{o}")).unwrap_or_default(),
                e.message
            );
        }
        if !ctx.global.quiet {
            outln!(
                "checked {} snapshots, {} trees, {} blobs, {} packs{}: {} errors, {} warnings",
                report.snapshots,
                report.trees,
                report.blobs,
                report.packs,
                if a.read_data {
                    format!(
                        " ({} read, {})",
                        report.packs_read,
                        human_bytes(report.bytes_read)
                    )
                } else {
                    String::new()
                },
                report.errors.len(),
                report.warnings.len()
            );
        }
    }
    if report.errors.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "brr: error: the repository has {} errors (see above)",
            report.errors.len()
        );
        Ok(EXIT_DAMAGED)
    }
}

fn group_by(s: &str) -> Result<GroupBy, CliError> {
    let mut g = GroupBy {
        host: false,
        paths: false,
        tags: false,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "host" => g.host = true,
            "paths" => g.paths = true,
            "tags" => g.tags = true,
            other => {
                return Err(CliError::usage(format!(
                    "--group-by: unknown field {other:?} (use host, paths, tags)"
                )));
            }
        }
    }
    Ok(g)
}

pub fn forget(ctx: &Context, a: &ForgetArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let policy = RetentionPolicy {
        keep_last: a.keep_last,
        keep_hourly: a.keep_hourly,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_yearly: a.keep_yearly,
        keep_within_secs: None,
    };
    let removed = if !a.snapshots.is_empty() {
        if !policy.is_empty() {
            return Err(CliError::usage(
                "give either snapshot IDs or a --keep-* policy, not both",
            ));
        }
        let mut ids = Vec::new();
        for q in &a.snapshots {
            ids.push(repo.find_snapshot(q)?.id);
        }
        if a.dry_run {
            for id in &ids {
                outln!("would remove {}", id.short());
            }
            0
        } else {
            forget_ids(&repo, &ids)?
        }
    } else {
        if policy.is_empty() {
            return Err(CliError::usage(
                "nothing to do: give snapshot IDs or at least one --keep-* option",
            ));
        }
        let opts = ForgetOptions {
            policy,
            group_by: group_by(&a.group_by)?,
            host: a.host.clone(),
            tags: a.tags.clone(),
            dry_run: a.dry_run,
        };
        let plan = plan_forget(&repo, &opts)?;
        if ctx.global.json {
            print_json(&plan);
        } else if !ctx.global.quiet {
            for g in &plan.groups {
                outln!(
                    "group host={} paths={} tags={}",
                    g.host.clone().unwrap_or_else(|| "*".into()),
                    g.paths
                        .as_ref()
                        .map(|p| p.join(" "))
                        .unwrap_or_else(|| "*".into()),
                    g.tags
                        .as_ref()
                        .map(|t| t.join(","))
                        .unwrap_or_else(|| "*".into())
                );
                for (id, reasons) in &g.keep {
                    outln!("  keep   {}  {}", id.short(), reasons.join(", "));
                }
                for id in &g.remove {
                    outln!(
                        "  {} {}",
                        if a.dry_run { "would remove" } else { "remove" },
                        id.short()
                    );
                }
            }
        }
        if a.dry_run {
            0
        } else {
            apply_forget(&repo, &plan)?
        }
    };
    if !ctx.global.quiet && !ctx.global.json {
        outln!("{removed} snapshots removed");
    }
    if a.prune && !a.dry_run {
        return prune(
            ctx,
            &PruneArgs {
                dry_run: false,
                max_unused_percent: 25.0,
            },
        );
    }
    Ok(0)
}

pub fn prune(ctx: &Context, a: &PruneArgs) -> Result<i32, CliError> {
    if !(0.0..=100.0).contains(&a.max_unused_percent) {
        return Err(CliError::usage(
            "--max-unused-percent must be between 0 and 100",
        ));
    }
    let repo = ctx.open()?;
    let opts = PruneOptions {
        dry_run: a.dry_run,
        max_unused_fraction: a.max_unused_percent / 100.0,
        threads: ctx.threads(),
    };
    if a.dry_run {
        let plan = plan_prune(&repo, &opts)?;
        if ctx.global.json {
            print_json(&plan);
        } else {
            outln!(
                "would condemn {} of {} packs, repack {} ({} blobs to copy), free about {}; {} GC records ready to sweep, {} waiting for running backups",
                plan.packs_to_condemn.len(),
                plan.packs_total,
                plan.packs_to_repack.len(),
                plan.blobs_to_copy,
                human_bytes(plan.bytes_to_free),
                plan.gc_records_to_sweep.len(),
                plan.gc_records_waiting.len()
            );
        }
        return Ok(0);
    }
    let bar = Bar::new(ctx.global.quiet, ctx.global.json);
    let report = run_prune(&repo, &opts, &bar)?;
    if ctx.global.json {
        print_json(&report);
    } else if !ctx.global.quiet {
        outln!(
            "deleted {} packs ({} freed), wrote {} packs, kept {} still-referenced packs; {} packs wait for running backups to finish",
            report.packs_deleted,
            human_bytes(report.bytes_freed),
            report.packs_written,
            report.packs_kept_referenced,
            report.plan.gc_records_waiting.len()
        );
    }
    Ok(0)
}

pub fn stats(ctx: &Context) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let index = repo.load_index()?;
    let bar = Bar::new(ctx.global.quiet, ctx.global.json);
    let s = brr_engine::stats::stats(&repo, &index, &bar)?;
    let server = super::server::usage(ctx)?;
    if ctx.global.json {
        match &server {
            Some(r) => {
                let mut v = serde_json::to_value(&s)
                    .map_err(|e| CliError::Other(format!("cannot encode JSON: {e}")))?;
                v["server"] = serde_json::json!({"repository": r.name, "usage": r.usage, "append_only": r.append_only});
                print_json(&v);
            }
            None => print_json(&s),
        }
    } else {
        outln!("snapshots:          {}", s.snapshots);
        outln!("files (all snaps):  {}", s.files);
        outln!("logical size:       {}", human_bytes(s.logical_bytes));
        outln!(
            "unique data:        {} in {} blobs",
            human_bytes(s.unique_plain_bytes),
            s.unique_blobs
        );
        outln!(
            "stored size:        {} in {} packs",
            human_bytes(s.stored_bytes),
            s.packs
        );
        outln!("deduplication:      {:.2}x", s.dedup_ratio);
        outln!("compression:        {:.2}x", s.compression_ratio);
        outln!("space saving:       {:.1}%", s.space_saving * 100.0);
        if let Some(r) = &server {
            let u = &r.usage;
            outln!("server usage of repository {} (all machines):", r.name);
            outln!(
                "  stored:           {} in {} packs",
                human_bytes(u.stored_bytes),
                u.packs
            );
            outln!(
                "  referenced:       {} by {} snapshots",
                human_bytes(u.logical_bytes),
                u.snapshots
            );
            outln!("  deduplication:    {:.2}x", u.dedup_ratio);
        }
    }
    Ok(0)
}
