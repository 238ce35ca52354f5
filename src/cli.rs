//! The command line (README, "Commands").

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use hpa_tier_core::duration;
use hpa_tier_core::tiers::MAX_COUNT;
use jiff::SignedDuration;

/// Keeps the HorizontalPodAutoscalers of an EKS platform sized for the number
/// of people online, one capacity tier at a time.
///
/// Each run reads the online users (Google Analytics 4 realtime by default),
/// picks the tier that holds them, checks that the RDS Aurora cluster and the
/// ElastiCache Redis are big enough for it, patches every managed HPA to the
/// tier's replicas, records the run (MySQL or a local file) and tells the team
/// on Feishu. Cron or a Kubernetes CronJob runs `check` every few minutes.
///
/// Exit status: 0 success (also "blocked and announced"), 1 runtime failure,
/// 2 usage or configuration error (nothing touched), 3 `upgrade` refused
/// because the tier's prerequisites are not met.
#[derive(Debug, Parser)]
#[command(name = "hpa-tier", version, max_term_width = 100)]
pub struct Cli {
    /// Config file [default: $HPA_TIER_CONFIG, else config/config.yaml]
    #[arg(
        short,
        long,
        global = true,
        env = "HPA_TIER_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Read everything, change nothing: no HPA patch, no record, no notification.
    /// Prints the plan.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Output format on stdout; logs always go to stderr.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// More log detail on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Table,
    /// One JSON document, for CI and scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One control pass: read users, pick the tier, check prerequisites,
    /// patch the HPAs, record, notify. What cron runs.
    Check {
        /// Use N online users instead of the metric source (what-if, drills, CI).
        /// At most 2147483647 (2^31-1), like any source's reading.
        #[arg(long, value_name = "N", value_parser = count_parser(0))]
        users: Option<u32>,
    },
    /// Move to the tier of exactly CAPACITY (e.g. before a known event).
    ///
    /// Going up requires the tier's prerequisites unless --force; going down
    /// requires none.
    Upgrade {
        /// A capacity from the tier table (`hpa-tier tiers` lists them).
        #[arg(value_parser = count_parser(1))]
        capacity: u32,
        /// Skip the prerequisite check. The database or cache may then be too
        /// small for the pods you add.
        #[arg(long)]
        force: bool,
        /// Keep later `check` runs from stepping below this tier for this long
        /// (e.g. 90m, 2h, 1d; at most 30 days).
        #[arg(long, value_name = "DURATION", value_parser = parse_hold)]
        hold: Option<SignedDuration>,
    },
    /// Where things stand: current tier, each HPA, prerequisites, hold,
    /// schedule windows, the forecast, last runs.
    Status,
    /// The validated tier table, inherited prerequisites filled in.
    Tiers,
    /// The scheduled windows of the next days, from the config alone (no network).
    Schedules {
        /// How many days ahead.
        #[arg(long, value_name = "N", default_value_t = 7,
              value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
    },
    /// Replay users through the policy offline: the tiers `check` would have
    /// chosen, scored against the oracle and the static peak tier.
    ///
    /// The same decision as `check` (tiers, headroom, the scale-down window,
    /// coverage, schedules, the forecast learning from the replayed past),
    /// with no network and no writes. Prerequisites are taken as met.
    Simulate(SimulateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// The users: a CSV file with a `time,users` header or JSON lines
    /// (`{"time": ..., "users": N}`); `-` reads stdin. Times are RFC 3339 or
    /// `YYYY-MM-DD HH:MM[:SS]` in the config's `timezone`.
    #[arg(
        value_name = "TRACE",
        required_unless_present = "from_store",
        conflicts_with = "from_store"
    )]
    pub trace: Option<String>,
    /// Replay the users the store's own `check` runs read (read-only).
    #[arg(long)]
    pub from_store: bool,
    /// With --from-store: how far back to read [default: 7d]
    #[arg(long, value_name = "DURATION", requires = "from_store",
          value_parser = parse_since)]
    pub since: Option<SignedDuration>,
    /// Time between simulated checks [default: the config's check_time]
    #[arg(long, value_name = "DURATION", value_parser = parse_tick)]
    pub tick: Option<SignedDuration>,
    /// How long a rise takes to serve (pods must start); a fall is at once.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_ready)]
    pub ready: SignedDuration,
    /// Where the scored replay starts: RFC 3339, or local time in the
    /// config's timezone [default: the first sample]. Earlier samples are
    /// replayed too, as the history the first runs read.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Override a config key with a YAML value, validated like the file:
    /// `headroom_percent=10`, `forecast.mode=scale` (nested keys with dots);
    /// `prereq_capacity=N` takes the prerequisites as met up to tier N only.
    /// Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Write the chart (users, the serving tier, changes, schedule windows,
    /// under-provisioned minutes) as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// A whole number from `min` to [`MAX_COUNT`]; anything else (a sign, a
/// fraction, 20 digits) is a usage error (exit 2) that says the range.
fn count_parser(min: u32) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync {
    move |text| {
        let t = text.trim();
        t.parse::<u64>()
            .ok()
            .filter(|n| {
                t.bytes().all(|b| b.is_ascii_digit())
                    && (u64::from(min)..=u64::from(MAX_COUNT)).contains(n)
            })
            .map(|n| n as u32)
            .ok_or_else(|| {
                format!("`{text}` is not a whole number from {min} to {MAX_COUNT} (2^31-1)")
            })
    }
}

/// The longest `--hold`: a forgotten hold runs out by itself within a month.
pub const MAX_HOLD: SignedDuration = SignedDuration::from_hours(30 * 24);

/// `--hold`: a duration above zero and at most [`MAX_HOLD`]. A clap value
/// parser, so a bad one is a usage error (exit 2) before anything is read.
pub fn parse_hold(text: &str) -> Result<SignedDuration, String> {
    let too_long = || {
        format!(
            "`{text}` is longer than the 30-day limit of a hold (30d, 720h); \
             upgrade again with a new --hold before it runs out to keep it longer"
        )
    };
    let hold = duration::parse(text).map_err(|e| match e {
        duration::DurationError::TooLarge(_) => too_long(),
        other => other.to_string(),
    })?;
    if hold.is_zero() {
        return Err(format!(
            "a hold of `{text}` holds nothing; give a positive duration, e.g. 2h"
        ));
    }
    if hold > MAX_HOLD {
        return Err(too_long());
    }
    Ok(hold)
}

/// A duration from `min` to `max` for the flag `flag`.
fn parse_bounded(
    text: &str,
    flag: &str,
    min: SignedDuration,
    max: SignedDuration,
) -> Result<SignedDuration, String> {
    let d = duration::parse(text).map_err(|e| e.to_string())?;
    if d < min || d > max {
        return Err(format!(
            "{flag} `{text}` is out of range {:#}..{:#}",
            min, max
        ));
    }
    Ok(d)
}

/// `--tick`: at least a second, at most a day.
pub fn parse_tick(text: &str) -> Result<SignedDuration, String> {
    parse_bounded(
        text,
        "--tick",
        SignedDuration::from_secs(1),
        SignedDuration::from_hours(24),
    )
}

/// `--ready`: zero (pods serve at once) up to a day.
pub fn parse_ready(text: &str) -> Result<SignedDuration, String> {
    parse_bounded(
        text,
        "--ready",
        SignedDuration::ZERO,
        SignedDuration::from_hours(24),
    )
}

/// `--since`: a minute up to a year of records.
pub fn parse_since(text: &str) -> Result<SignedDuration, String> {
    parse_bounded(
        text,
        "--since",
        SignedDuration::from_mins(1),
        SignedDuration::from_hours(366 * 24),
    )
}

/// `--set KEY=VALUE`: a dotted key of the config (or `prereq_capacity`) and
/// its YAML value, which the config's validation judges.
pub fn parse_set(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not KEY=VALUE (e.g. headroom_percent=10, forecast.mode=scale)"
        ));
    };
    let key = key.trim();
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !key.split('.').all(word) {
        return Err(format!(
            "`{key}` is not a config key: words of letters, digits, `_` or `-` joined by dots"
        ));
    }
    Ok((key.to_string(), value.trim().to_string()))
}

impl Cli {
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "hpa-tier",
            "upgrade",
            "2000",
            "--hold",
            "2h",
            "--dry-run",
            "-o",
            "json",
            "-vv",
        ])
        .unwrap();
        assert!(cli.dry_run);
        assert_eq!(cli.output, Output::Json);
        assert_eq!(cli.verbose, 2);
        assert!(
            matches!(cli.command, Command::Upgrade { capacity: 2000, force: false, hold: Some(h) } if h == SignedDuration::from_hours(2))
        );
    }

    #[test]
    fn check_takes_a_users_override() {
        let cli =
            Cli::try_parse_from(["hpa-tier", "-c", "x.yaml", "check", "--users", "1500"]).unwrap();
        assert!(matches!(cli.command, Command::Check { users: Some(1500) }));
        assert_eq!(cli.config_path(), PathBuf::from("x.yaml"));
    }

    #[test]
    fn users_and_capacities_past_2_pow_31_are_usage_errors_that_say_the_range() {
        let cases: [&[&str]; 5] = [
            &["check", "--users", "2147483648"],
            &["check", "--users", "99999999999999999999"],
            &["check", "--users", "-1"],
            &["upgrade", "4294967295"],
            &["upgrade", "0"],
        ];
        for args in cases {
            let e = Cli::try_parse_from(["hpa-tier"].iter().chain(args)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let msg = e.to_string();
            assert!(
                msg.contains("is not a whole number from ")
                    && msg.contains(" to 2147483647 (2^31-1)")
                    || msg.contains("unexpected argument '-1'"),
                "{args:?}: {msg}"
            );
        }
        let cli = Cli::try_parse_from(["hpa-tier", "check", "--users", "2147483647"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Check {
                users: Some(2147483647)
            }
        ));
    }

    #[test]
    fn hold_takes_minutes_hours_and_days_up_to_30_days() {
        let ok = [
            ("90m", SignedDuration::from_mins(90)),
            ("2h", SignedDuration::from_hours(2)),
            ("1d", SignedDuration::from_hours(24)),
            ("45min", SignedDuration::from_mins(45)),
            ("30d", MAX_HOLD),
            ("720h", MAX_HOLD),
        ];
        for (text, want) in ok {
            assert_eq!(parse_hold(text), Ok(want), "{text}");
        }
        for bad in ["", "2", "h", "2x", "0h", "-1h", "1.5h"] {
            assert!(parse_hold(bad).is_err(), "{bad}");
        }
        for long in ["31d", "721h", "43201m", "3000000d", "18446744073709551615d"] {
            let e = parse_hold(long).unwrap_err();
            assert!(e.contains(long) && e.contains("30-day limit"), "{e}");
        }
    }

    #[test]
    fn simulate_takes_a_trace_or_the_store_and_its_flags() {
        let cli = Cli::try_parse_from([
            "hpa-tier",
            "simulate",
            "week.csv",
            "--tick",
            "10m",
            "--ready",
            "0s",
            "--set",
            "headroom_percent=10",
            "--set",
            "forecast.mode = scale",
            "--svg",
            "w.svg",
        ])
        .unwrap();
        let Command::Simulate(a) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(a.trace.as_deref(), Some("week.csv"));
        assert_eq!(a.tick, Some(SignedDuration::from_mins(10)));
        assert_eq!(a.ready, SignedDuration::ZERO);
        assert_eq!(
            a.set,
            [
                ("headroom_percent".to_string(), "10".to_string()),
                ("forecast.mode".to_string(), "scale".to_string())
            ]
        );
        let cli =
            Cli::try_parse_from(["hpa-tier", "simulate", "--from-store", "--since", "3d"]).unwrap();
        let Command::Simulate(a) = cli.command else {
            panic!()
        };
        assert!(a.from_store && a.trace.is_none());
        assert_eq!(a.since, Some(SignedDuration::from_hours(72)));
        assert_eq!(a.ready, SignedDuration::from_mins(2), "the default");
        for bad in [
            &["hpa-tier", "simulate"][..],
            &["hpa-tier", "simulate", "t.csv", "--from-store"],
            &["hpa-tier", "simulate", "t.csv", "--tick", "0s"],
            &["hpa-tier", "simulate", "t.csv", "--tick", "2d"],
            &["hpa-tier", "simulate", "t.csv", "--set", "x"],
            &["hpa-tier", "simulate", "t.csv", "--set", "=1"],
            &["hpa-tier", "simulate", "t.csv", "--set", "a..b=1"],
        ] {
            let e = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn a_bad_hold_is_a_usage_error_of_the_command_line() {
        for bad in ["3000000d", "31d", "soon"] {
            let e =
                Cli::try_parse_from(["hpa-tier", "upgrade", "2000", "--hold", bad]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("--hold"), "{e}");
        }
    }
}
