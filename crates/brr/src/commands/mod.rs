//! One module per group of commands; `run` dispatches.

mod backup;
mod browse;
mod demo;
mod keys;
mod maintain;
mod restore;
mod server;

use brr_core::blob::Compression;
use brr_core::chunker::ChunkerParams;
use brr_core::keyslot::KdfParams;
use brr_engine::{InitOptions, Repository};

use crate::cli::{Cli, Command, InitArgs};
use crate::context::{CliError, Context};
use crate::output::print_json;
use crate::settings;

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    let file = settings::load(cli.global.config.as_deref())?;
    let ctx = Context {
        global: cli.global,
        file,
        remote: std::sync::OnceLock::new(),
    };
    let result = dispatch(&ctx, cli.command);
    explain_with_refusal(&ctx, result)
}

/// A command on a server repository that failed (or found damage) because the server refused or
/// could not be reached fails with the server's reason and exit code, not the storage error the
/// engine saw.
fn explain_with_refusal(ctx: &Context, result: Result<i32, CliError>) -> Result<i32, CliError> {
    let Some(refusal) = ctx.server_refusal() else {
        return result;
    };
    match result {
        Err(CliError::Engine(e)) if matches!(e.exit_code(), 1 | 14) => {
            tracing::debug!("engine error caused by the server: {e}");
            Err(CliError::Server(refusal))
        }
        Ok(14) => Err(CliError::Server(refusal)),
        other => other,
    }
}

fn dispatch(ctx: &Context, command: Command) -> Result<i32, CliError> {
    match command {
        Command::Init(a) => init(ctx, &a),
        Command::Backup(a) => backup::run(ctx, &a),
        Command::Snapshots(a) => browse::snapshots(ctx, &a),
        Command::Ls(a) => browse::ls(ctx, &a),
        Command::Diff(a) => browse::diff(ctx, &a),
        Command::Restore(a) => restore::run(ctx, &a),
        Command::Check(a) => maintain::check(ctx, &a),
        Command::Forget(a) => maintain::forget(ctx, &a),
        Command::Prune(a) => maintain::prune(ctx, &a),
        Command::Key(a) => keys::run(ctx, &a),
        Command::Stats(_) => maintain::stats(ctx),
        Command::Unlock(a) => keys::unlock(ctx, &a),
        Command::Demo(a) => demo::run(ctx, &a),
        Command::Login(a) => server::login(ctx, &a),
        Command::Logout => server::logout(ctx),
        Command::Agent(a) => server::agent(ctx, &a),
        Command::Repos => server::repos(ctx),
    }
}

fn init(ctx: &Context, a: &InitArgs) -> Result<i32, CliError> {
    if a.append_only && ctx.server()?.is_none() {
        return Err(CliError::usage("--append-only needs --server"));
    }
    let backend = ctx.backend()?;
    if ctx.server()?.is_some() {
        let remote = ctx.remote()?;
        let created =
            brr_client::Repos::new(remote.client()).create(remote.repo(), a.append_only)?;
        if !created {
            tracing::info!("repository {} exists on the server", remote.repo());
        }
    }
    let password = ctx.new_password(None, true)?;
    let avg = a
        .chunk_size_kib
        .checked_mul(1024)
        .ok_or_else(|| CliError::usage("--chunk-size-kib too large"))?;
    let opts = InitOptions {
        kdf: KdfParams {
            memory_kib: a.kdf_memory_mib.saturating_mul(1024),
            iterations: a.kdf_iterations,
            parallelism: a.kdf_parallelism,
        },
        chunker: ChunkerParams {
            min_size: avg / 2,
            avg_size: avg,
            max_size: avg.saturating_mul(8),
            normalization: 1,
        },
        pack_size: a.pack_size_mib.saturating_mul(1024 * 1024),
        compression: Compression::parse(&a.compression)?,
        label: "initial password".into(),
    };
    let repo = Repository::init(backend.clone(), password.as_bytes(), &opts)?;
    if ctx.global.json {
        print_json(
            &serde_json::json!({ "repository": backend.location(), "id": repo.config().body.id }),
        );
    } else if !ctx.global.quiet {
        outln!(
            "created repository {} at {}",
            repo.config().body.id,
            backend.location()
        );
        outln!(
            "keep the password safe: without it (or a recovery key, see `brr key recovery`) the backups cannot be read"
        );
    }
    Ok(0)
}

/// Parses a compression flag.
pub(crate) fn compression(s: Option<&str>) -> Result<Option<Compression>, CliError> {
    s.map(Compression::parse)
        .transpose()
        .map_err(CliError::from)
}
