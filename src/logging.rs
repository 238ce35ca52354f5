//! Logs go to stderr (stdout is for results). `-v` raises the level;
//! `HPA_TIER_LOG_FORMAT=json` gives one JSON object per line for log collectors.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

pub fn init(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // Our own crate at the chosen level; the libraries never below INFO:
    // their debug output carries request headers (bearer tokens) and
    // connection strings, and secrets must not reach logs at any verbosity.
    let deps = match verbose {
        0..=2 => LevelFilter::WARN,
        _ => LevelFilter::INFO,
    };
    let filter = Targets::new()
        .with_default(deps)
        .with_target("hpa_tier", level);
    let json = std::env::var("HPA_TIER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init();
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .init();
    }
}
