//! `brr snapshots`, `brr ls`, `brr diff`.

use brr_core::tree::{Node, NodeKind};
use brr_engine::browse;

use crate::cli::{DiffArgs, LsArgs, SnapshotsArgs};
use crate::context::{CliError, Context};
use crate::output::{human_bytes, print_json};

pub fn snapshots(ctx: &Context, a: &SnapshotsArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let list: Vec<_> = repo
        .list_snapshots()?
        .into_iter()
        .filter(|s| a.host.as_ref().is_none_or(|h| &s.meta.hostname == h))
        .filter(|s| a.tags.iter().all(|t| s.meta.tags.contains(t)))
        .collect();
    if ctx.global.json {
        let v: Vec<_> = list
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id.to_hex(), "short_id": s.id.short(), "time": s.meta.time, "hostname": s.meta.hostname,
                    "username": s.meta.username, "paths": s.meta.paths, "tags": s.meta.tags, "tree": s.meta.tree.to_hex(),
                    "parent": s.meta.parent.map(|p| p.to_hex()), "summary": s.meta.summary,
                })
            })
            .collect();
        print_json(&v);
        return Ok(0);
    }
    outln!(
        "{:<8}  {:<25}  {:<16}  {:<12}  {:>10}  paths",
        "ID",
        "time",
        "host",
        "tags",
        "size"
    );
    for s in &list {
        outln!(
            "{:<8}  {:<25}  {:<16}  {:<12}  {:>10}  {}",
            s.id.short(),
            s.meta.time.format("%Y-%m-%d %H:%M:%S %:z"),
            s.meta.hostname,
            s.meta.tags.join(","),
            human_bytes(s.meta.summary.total_bytes),
            s.meta.paths.join(" ")
        );
    }
    outln!("{} snapshots", list.len());
    Ok(0)
}

fn mode_string(n: &Node) -> String {
    let mut s = String::with_capacity(10);
    s.push(n.type_char());
    for (i, c) in ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x']
        .iter()
        .enumerate()
    {
        s.push(if n.mode & (1 << (8 - i)) != 0 {
            *c
        } else {
            '-'
        });
    }
    s
}

pub fn ls(ctx: &Context, a: &LsArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?;
    let json = ctx.global.json;
    let long = a.long;
    let mut emit = |path: &str, n: &Node| -> brr_engine::Result<()> {
        if json {
            let target = match &n.kind {
                NodeKind::Symlink { target } => Some(String::from_utf8_lossy(target).into_owned()),
                _ => None,
            };
            let line = serde_json::json!({
                "path": path, "type": n.type_char().to_string(), "mode": n.mode, "uid": n.uid, "gid": n.gid,
                "user": n.user, "group": n.group, "size": n.size(), "mtime": n.mtime.secs, "mtime_nanos": n.mtime.nanos,
                "link_target": target,
            });
            outln!("{line}");
        } else if long {
            let mtime = chrono::DateTime::from_timestamp(n.mtime.secs, n.mtime.nanos)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let owner = n.user.clone().unwrap_or_else(|| n.uid.to_string());
            let group = n.group.clone().unwrap_or_else(|| n.gid.to_string());
            let mut line = format!(
                "{} {:>8} {:>8} {:>12} {} {}",
                mode_string(n),
                owner,
                group,
                n.size(),
                mtime,
                path
            );
            if let NodeKind::Symlink { target } = &n.kind {
                line.push_str(&format!(" -> {}", String::from_utf8_lossy(target)));
            }
            outln!("{line}");
        } else {
            outln!("{path}");
        }
        Ok(())
    };
    browse::walk(&repo, &index, &snap.meta.tree, a.path.as_deref(), &mut emit).map_err(
        |e| match e {
            brr_engine::EngineError::PathNotFound { path, .. } => {
                brr_engine::EngineError::PathNotFound {
                    path,
                    snapshot: snap.id.short(),
                }
                .into()
            }
            other => CliError::from(other),
        },
    )?;
    Ok(0)
}

pub fn diff(ctx: &Context, a: &DiffArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    let from = repo.find_snapshot(&a.from)?;
    let to = repo.find_snapshot(&a.to)?;
    let index = repo.load_index()?;
    let changes: Vec<_> = browse::diff(&repo, &index, &from.meta.tree, &to.meta.tree)?
        .into_iter()
        .filter(|c| a.metadata || c.change != browse::Change::Metadata)
        .collect();
    if ctx.global.json {
        print_json(
            &serde_json::json!({ "from": from.id.to_hex(), "to": to.id.to_hex(), "changes": changes }),
        );
        return Ok(0);
    }
    for c in &changes {
        outln!("{} {}", c.change.marker(), c.path);
    }
    let count = |k| changes.iter().filter(|c| c.change == k).count();
    outln!(
        "{} added, {} removed, {} modified{}",
        count(browse::Change::Added),
        count(browse::Change::Removed),
        count(browse::Change::Modified),
        if a.metadata {
            format!(", {} metadata only", count(browse::Change::Metadata))
        } else {
            String::new()
        }
    );
    Ok(0)
}
