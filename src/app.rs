//! The imperative shell: load the config, gather from the adapters, call the
//! planning core, apply, record, notify. `main` calls `run` and nothing else.

use anyhow::Context;

use crate::cli::{Cli, Command, Output};
use crate::config;
use crate::error::Completion;
use crate::output;

pub fn run(cli: Cli) -> anyhow::Result<Completion> {
    let path = cli.config_path();
    let config = config::load(&path)?;
    match cli.command {
        Command::Tiers => {
            match cli.output {
                Output::Table => print!("{}", output::tiers_table(&config.tiers)),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&output::tiers_json(&config.tiers))?
                ),
            }
            Ok(Completion::Success)
        }
        Command::Check { .. } | Command::Upgrade { .. } | Command::Status => {
            Err(anyhow::anyhow!("not wired yet"))
                .context("this command lands with the end-to-end issue")
        }
    }
}
