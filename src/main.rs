//! `hpa-tier`: parse the command line, set up logging, run, exit with the
//! status the README documents. Everything else lives in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use hpa_tier::{app, cli, error, logging};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version exit 0; usage errors exit 2 with clap's message.
        Err(e) => e.exit(),
    };
    logging::init(cli.verbose);
    let result = app::run(cli);
    if let Err(e) = &result {
        // `{:#}` prints the whole context chain on one line.
        eprintln!("error: {e:#}");
    }
    ExitCode::from(error::exit_code(&result))
}
