//! (in progress)

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {}

pub async fn main(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
