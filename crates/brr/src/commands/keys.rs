//! `brr key …` and `brr unlock`.

use brr_core::keyslot::KdfParams;
use brr_engine::lock;

use crate::cli::{KeyArgs, KeyOp, UnlockArgs};
use crate::context::{CliError, Context};
use crate::output::print_json;

pub fn run(ctx: &Context, a: &KeyArgs) -> Result<i32, CliError> {
    let repo = ctx.open()?;
    match &a.op {
        KeyOp::List => {
            let keys = repo.list_keys()?;
            if ctx.global.json {
                print_json(&keys);
            } else {
                outln!(
                    "{:<1} {:<8}  {:<9}  {:<20}  {:<25}  host",
                    "",
                    "ID",
                    "kind",
                    "label",
                    "created"
                );
                for k in &keys {
                    outln!(
                        "{:<1} {:<8}  {:<9}  {:<20}  {:<25}  {}@{}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        k.slot.kind.to_string(),
                        k.slot.label,
                        k.slot.created.format("%Y-%m-%d %H:%M:%S %:z"),
                        k.slot.username,
                        k.slot.hostname
                    );
                }
            }
        }
        KeyOp::Add {
            label,
            new_password_file,
        } => {
            let pw = ctx.new_password(new_password_file.as_deref(), false)?;
            let id = repo.add_password(pw.as_bytes(), KdfParams::default(), label)?;
            report(ctx, "added password key", &id.to_hex());
        }
        KeyOp::Recovery { label } => {
            let (id, printable) = repo.add_recovery_key(label)?;
            if ctx.global.json {
                print_json(
                    &serde_json::json!({ "id": id.to_hex(), "recovery_key": printable.as_str() }),
                );
            } else {
                outln!("added recovery key slot {}", id.short());
                outln!();
                outln!("    {}", printable.as_str());
                outln!();
                outln!(
                    "write this key down and keep it offline: it opens the repository without a password."
                );
                outln!("it is shown only now; open with `brr --recovery-key-file FILE …`.");
            }
        }
        KeyOp::Escrow { public_key, label } => {
            let pem = std::fs::read_to_string(public_key)
                .map_err(|e| CliError::usage(format!("{}: {e}", public_key.display())))?;
            let id = repo.add_rsa_key(&pem, label)?;
            report(ctx, "added RSA escrow key", &id.to_hex());
        }
        KeyOp::Remove { id } => {
            let removed = repo.remove_key(id)?;
            report(ctx, "removed key", &removed.to_hex());
        }
        KeyOp::Passwd { new_password_file } => {
            let pw = ctx.new_password(new_password_file.as_deref(), false)?;
            let mut repo = std::sync::Arc::try_unwrap(repo)
                .map_err(|_| CliError::Other("repository in use".into()))?;
            let id = repo.change_password(pw.as_bytes(), KdfParams::default())?;
            report(ctx, "changed password; new key", &id.to_hex());
        }
    }
    Ok(0)
}

fn report(ctx: &Context, what: &str, id: &str) {
    if ctx.global.json {
        print_json(&serde_json::json!({ "result": what, "id": id }));
    } else if !ctx.global.quiet {
        outln!("{what} {}", &id[..8.min(id.len())]);
    }
}

pub fn unlock(ctx: &Context, a: &UnlockArgs) -> Result<i32, CliError> {
    let backend = ctx.backend()?;
    let before = lock::list_locks(backend.as_ref())?;
    let removed = lock::unlock(backend.as_ref(), a.all)?;
    if ctx.global.json {
        print_json(&serde_json::json!({ "locks": before, "removed": removed }));
    } else if !ctx.global.quiet {
        for l in &before {
            let state = if removed.contains(&l.name) {
                "removed"
            } else {
                "kept"
            };
            let who = l
                .lock
                .as_ref()
                .map(|f| {
                    format!(
                        "{:?} {} by {}@{} pid {}",
                        f.kind, f.purpose, f.username, f.hostname, f.pid
                    )
                })
                .unwrap_or_default();
            outln!("{state}: {} {who}", &l.name);
        }
        outln!("{} of {} locks removed", removed.len(), before.len());
    }
    Ok(0)
}
