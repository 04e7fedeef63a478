//! `brr`: the command-line client.

#[macro_use]
mod output;
mod cli;
mod commands;
mod context;
mod progress;
mod settings;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
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
