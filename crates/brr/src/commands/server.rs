//! `brr login`, `brr logout`, `brr agent enroll`, `brr repos`: the account side of a brrd server.

use std::io::IsTerminal;

use brr_client::LoginPrompt;
use zeroize::Zeroizing;

use crate::cli::{AgentArgs, AgentOp, LoginArgs};
use crate::context::{CliError, Context};
use crate::output::{human_bytes, print_json};

/// Asks for a TOTP code: BRR_SERVER_TOTP, else a prompt on a terminal.
struct TerminalPrompt;

impl LoginPrompt for TerminalPrompt {
    fn totp(&mut self) -> Option<Zeroizing<String>> {
        if let Ok(code) = std::env::var("BRR_SERVER_TOTP")
            && !code.is_empty()
        {
            return Some(Zeroizing::new(code));
        }
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password("TOTP code: ")
            .ok()
            .map(|c| Zeroizing::new(c.trim().to_owned()))
            .filter(|c| !c.is_empty())
    }
}

/// The account password: --password-file given on the command line, BRR_SERVER_PASSWORD, or a prompt.
fn account_password(ctx: &Context) -> Result<Zeroizing<String>, CliError> {
    if ctx.global.password_file_on_command_line
        && let Some(path) = &ctx.global.password_file
    {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?,
        );
        let first = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
        if first.is_empty() {
            return Err(CliError::usage(format!("{} is empty", path.display())));
        }
        return Ok(first);
    }
    if let Ok(pw) = std::env::var("BRR_SERVER_PASSWORD") {
        if pw.is_empty() {
            return Err(CliError::usage("BRR_SERVER_PASSWORD is set but empty"));
        }
        return Ok(Zeroizing::new(pw));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no account password given: use --password-file or BRR_SERVER_PASSWORD (no terminal to prompt on)",
        ));
    }
    let pw = Zeroizing::new(
        rpassword::prompt_password("account password: ")
            .map_err(|e| CliError::Other(format!("reading password: {e}")))?,
    );
    if pw.is_empty() {
        return Err(CliError::usage("empty password"));
    }
    Ok(pw)
}

/// `brr login`.
pub fn login(ctx: &Context, a: &LoginArgs) -> Result<i32, CliError> {
    let server = ctx.require_server("brr login")?;
    if a.email.trim().is_empty() || !a.email.contains('@') {
        return Err(CliError::usage(format!(
            "--email {:?} is not an e-mail address",
            a.email
        )));
    }
    let store = ctx.credential_store()?;
    let stored_ca = store.get(server.as_str())?.and_then(|e| e.ca_cert.clone());
    let options = ctx.client_options(stored_ca);
    let password = account_password(ctx)?;
    brr_client::login(
        &server,
        &options,
        &store,
        a.email.trim(),
        &password,
        &mut TerminalPrompt,
    )?;
    if ctx.global.json {
        print_json(&serde_json::json!({"server": server.as_str(), "email": a.email.trim()}));
    } else if !ctx.global.quiet {
        outln!(
            "logged in to {server} as {}; session kept in {}",
            a.email.trim(),
            store.path().display()
        );
    }
    Ok(0)
}

/// `brr logout`.
pub fn logout(ctx: &Context) -> Result<i32, CliError> {
    let server = ctx.require_server("brr logout")?;
    let store = ctx.credential_store()?;
    let existed = brr_client::logout(&server, &ctx.client_options(None), &store)?;
    if ctx.global.json {
        print_json(&serde_json::json!({"server": server.as_str(), "removed": existed}));
    } else if !ctx.global.quiet {
        if existed {
            outln!("logged out of {server}");
        } else {
            outln!("no credentials were stored for {server}");
        }
    }
    Ok(0)
}

/// `brr agent …`.
pub fn agent(ctx: &Context, a: &AgentArgs) -> Result<i32, CliError> {
    match &a.op {
        AgentOp::Enroll { api_key, name } => {
            let server = ctx.require_server("brr agent enroll")?;
            let store = ctx.credential_store()?;
            let api_key = Zeroizing::new(api_key.trim().to_owned());
            if api_key.is_empty() {
                return Err(CliError::usage("--api-key is empty"));
            }
            let name = name
                .clone()
                .unwrap_or_else(|| brr_engine::repo::host_and_user().0);
            let id =
                brr_client::enroll(&server, &ctx.client_options(None), &store, &api_key, &name)?;
            if ctx.global.json {
                print_json(
                    &serde_json::json!({"server": server.as_str(), "agent_id": id, "name": name}),
                );
            } else if !ctx.global.quiet {
                outln!(
                    "enrolled {name:?} as agent {id} of {server}; its token is kept in {}",
                    store.path().display()
                );
            }
            Ok(0)
        }
    }
}

/// `brr repos`.
pub fn repos(ctx: &Context) -> Result<i32, CliError> {
    let server = ctx.require_server("brr repos")?;
    let client = ctx.client(&server)?;
    let list = brr_client::Repos::new(&client).list()?;
    if ctx.global.json {
        print_json(&list);
        return Ok(0);
    }
    for r in &list {
        outln!(
            "{:<24} {:>5} snapshots  {:>10} stored  {:>10} referenced  dedup {:.2}x{}",
            r.name,
            r.usage.snapshots,
            human_bytes(r.usage.stored_bytes),
            human_bytes(r.usage.logical_bytes),
            r.usage.dedup_ratio,
            if r.append_only { "  append-only" } else { "" }
        );
    }
    if list.is_empty() && !ctx.global.quiet {
        outln!(
            "no repositories on {server} yet (a company admin creates one with `brr init --server … --repo NAME`)"
        );
    }
    Ok(0)
}

/// The server's usage of the repository in use, for `brr stats`.
pub fn usage(ctx: &Context) -> Result<Option<brr_api::repos::Repository>, CliError> {
    let Some(remote) = ctx.remote.get() else {
        return Ok(None);
    };
    Ok(Some(
        brr_client::Repos::new(remote.client()).get(remote.repo())?,
    ))
}
