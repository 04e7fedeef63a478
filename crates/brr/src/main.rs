//! `brr`: the command-line client.

#[macro_use]
mod output;
mod cli;
mod commands;
mod context;
mod progress;
mod settings;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    let matches = match cli::Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => usage_error(e),
    };
    let mut cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    cli.global.password_file_on_command_line = given_on_command_line(&matches, "password_file");
    output::init_logging(cli.global.verbose, cli.global.quiet);
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("brr: error: {e} [{}]", e.code());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// Whether the (global) argument `id` was given on the command line, at the top or after a subcommand,
/// rather than taken from its environment variable.
fn given_on_command_line(matches: &clap::ArgMatches, id: &str) -> bool {
    use clap::parser::ValueSource;
    let here = matches!(
        matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .and(matches.value_source(id)),
        Some(ValueSource::CommandLine)
    );
    here || matches
        .subcommand()
        .is_some_and(|(_, sub)| given_on_command_line(sub, id))
}

/// Bad flags or arguments: one line, exit 2 (help and version are printed by clap as usual).
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    let text = e.to_string();
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let msg = first.join(" ");
    eprintln!(
        "brr: {} (see `brr --help`) [BRR-U001]",
        if msg.is_empty() {
            "error: invalid arguments"
        } else {
            &msg
        }
    );
    std::process::exit(2)
}
