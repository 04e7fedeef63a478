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
    let cli = cli::Cli::parse();
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
