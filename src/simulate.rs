//! `hpa-tier simulate`: the shell around the core's replay. It reads the
//! config (with `--set` overrides, validated like the file), the users (a
//! trace file, stdin, or the store's own records, opened read-only), runs
//! the replay, prints the tier changes and the scores (or one JSON
//! document) and writes the chart. It needs no key file, AWS, Kubernetes
//! or Feishu, reaches no network but the store's, and writes nothing but
//! the `--svg` file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use hpa_tier_core::conclude::Completion;
use hpa_tier_core::forecast::Accuracy;
use hpa_tier_core::policy::{ForecastMode, Policy};
use hpa_tier_core::record::RunRecord;
use hpa_tier_core::simulate::replay::windows;
use hpa_tier_core::simulate::trace::parse_instant;
use hpa_tier_core::simulate::{
    Chart, Replay, Replayed, Setup, Span, Summary, TierChange, Trace, replay,
};

use crate::cli::{Output, SimulateArgs};
use crate::config::{self, Config, Override};
use crate::error::UsageError;
use crate::store::{self, RunStore};

/// `--from-store` without `--since`.
const DEFAULT_SINCE: SignedDuration = SignedDuration::from_hours(7 * 24);
/// simulate's own key among the `--set` overrides.
const PREREQ_CAPACITY: &str = "prereq_capacity";

/// Runs `simulate` with the config at `path`.
pub fn run(path: &Path, output: Output, args: SimulateArgs) -> anyhow::Result<Completion> {
    if args.since.is_some() && !args.from_store {
        return Err(UsageError::new("--since reads the store: give it with --from-store").into());
    }
    let (overrides, cap) = split_overrides(&args.set);
    let config = config::load_with(path, &overrides)?;
    let policy = &config.policy;
    let tz = policy.schedules.zone().clone();
    let prereq_capacity = cap.map(|v| prereq_capacity(&v, &config)).transpose()?;
    let users = read_users(&args, &config, &tz)?;
    let start = args
        .start
        .as_deref()
        .map(|s| parse_instant(s, &tz).map_err(|e| UsageError::new(format!("--start `{s}`: {e}"))))
        .transpose()?;
    let span = Span::of(&users.trace, start).map_err(|e| UsageError::new(e.to_string()))?;
    let tick = args.tick.unwrap_or(policy.check_interval);
    // Before the replay, so a chart that cannot be written costs nothing.
    let svg = args.svg.as_deref().map(SvgFile::create).transpose()?;
    let replayed = replay(&Setup {
        trace: &users.trace,
        span,
        tick,
        ready: args.ready,
        policy,
        prereq_capacity,
        store: &users.store,
        details: false,
    })
    .map_err(|e| UsageError::new(e.to_string()))?;
    // The oracle and static baselines size with no headroom: a yardstick
    // that stays put when --set headroom_percent moves the policy.
    let summary = Summary::of(&Replay {
        trace: &users.trace,
        span,
        tiers: &policy.tiers,
        applied: &replayed.applied,
        served: &replayed.served,
        baseline_headroom_percent: 0,
    });
    let report = Report::new(
        &users, path, &overrides, &tz, &args, tick, &replayed, &summary, policy,
    );
    match output {
        Output::Table => emit(&report.table(&tz))?,
        Output::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
    }
    if let Some(svg) = svg {
        let title = format!("hpa-tier simulate · {}", report.title());
        let windows = windows(&policy.schedules, span);
        let chart = Chart {
            title: &title,
            tz: &tz,
            trace: &users.trace,
            span,
            tiers: &policy.tiers,
            applied: &replayed.applied,
            served: &replayed.served,
            windows: &windows,
            summary: Some(&summary),
        };
        svg.write(&chart.svg())?;
    }
    Ok(Completion::Success)
}

/// Prints `text` on stdout. A reader that stopped reading (`| head`) is
/// not a failure: the rest was not wanted.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// The config's overrides, and simulate's own `prereq_capacity`.
fn split_overrides(set: &[(String, String)]) -> (Vec<Override>, Option<String>) {
    let mut cap = None;
    let mut overrides = vec![];
    for (key, value) in set {
        if key == PREREQ_CAPACITY {
            cap = Some(value.clone());
        } else {
            overrides.push(Override {
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    (overrides, cap)
}

/// `--set prereq_capacity=N`: a tier capacity of the (overridden) table.
fn prereq_capacity(value: &str, config: &Config) -> Result<u32, UsageError> {
    let n: u32 = value.parse().map_err(|_| {
        UsageError::new(format!(
            "--set {PREREQ_CAPACITY}={value}: not a tier capacity (a whole number)"
        ))
    })?;
    config
        .tier_capacity(n)
        .map_err(|e| UsageError::new(format!("--set {PREREQ_CAPACITY}={value}: {e}")))
}

/// The users to replay, where they came from, and (from the store) the
/// records whose upgrades the replay repeats.
struct Users {
    trace: Trace,
    source: String,
    /// `--from-store`: since when.
    since: Option<Timestamp>,
    store: Vec<RunRecord>,
}

fn read_users(args: &SimulateArgs, config: &Config, tz: &TimeZone) -> anyhow::Result<Users> {
    let Some(name) = args.trace.as_deref() else {
        let since = Timestamp::now() - args.since.unwrap_or(DEFAULT_SINCE);
        return from_store(config, since);
    };
    let text = if name == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| UsageError::new(format!("cannot read the trace from stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(name)
            .map_err(|e| UsageError::new(format!("cannot read trace {name}: {e}")))?
    };
    let source = if name == "-" { "stdin" } else { name };
    let trace = Trace::parse(&text, tz).map_err(|e| UsageError::new(format!("{source}: {e}")))?;
    Ok(Users {
        trace,
        source: source.to_string(),
        since: None,
        store: vec![],
    })
}

/// The users of the store's `check` runs since `since`, read without a
/// lock, a schema or a write; its newest upgrade too, for a hold still
/// running when the span starts.
fn from_store(config: &Config, since: Timestamp) -> anyhow::Result<Users> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (described, history, last_upgrade) = rt.block_on(async {
        let store = store::open_read_only(
            config.mysql.as_ref(),
            &config.state_file,
            &config.policy.cluster,
            config.timeout,
        )
        .await;
        let read = tokio::join!(store.history(since), store.last_upgrade());
        let described = store.describe();
        store.close().await;
        (described, read.0, read.1)
    });
    let mut records =
        history.with_context(|| format!("reading the run history from {described}"))?;
    let last =
        last_upgrade.with_context(|| format!("reading the last upgrade from {described}"))?;
    if let Some(u) = last.filter(|u| !records.iter().any(|r| r.run_id == u.run_id)) {
        records.push(u);
    }
    records.sort_by_key(|r| r.started_at);
    let in_span: Vec<RunRecord> = records
        .iter()
        .filter(|r| r.started_at >= since)
        .cloned()
        .collect();
    let source = format!(
        "the store ({described}) since {}",
        since.strftime("%Y-%m-%d %H:%M UTC")
    );
    let trace =
        Trace::from_records(&in_span).map_err(|e| UsageError::new(format!("{source}: {e}")))?;
    Ok(Users {
        trace,
        source,
        since: Some(since),
        store: records,
    })
}

/// The `--svg` target: a temporary file beside it, created before the
/// replay (so an unwritable target is a usage error, exit 2, before any
/// work), renamed over it once written. Mode 0600, an unpredictable name,
/// never through a symlink; removed if it is not completed.
struct SvgFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
}

impl SvgFile {
    fn create(target: &Path) -> Result<SvgFile, UsageError> {
        let bad = |e: std::io::Error| {
            UsageError::new(format!(
                "--svg {}: cannot write there: {e}",
                target.display()
            ))
        };
        if target.is_dir() {
            return Err(bad(std::io::Error::other("it is a directory")));
        }
        let name = target
            .file_name()
            .ok_or_else(|| bad(std::io::Error::other("no file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", random_suffix()));
        let tmp = target.with_file_name(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&tmp).map_err(bad)?;
        Ok(SvgFile {
            target: target.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    fn write(mut self, svg: &str) -> anyhow::Result<()> {
        let mut file = self.file.take().expect("written once");
        file.write_all(svg.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.target))
            .with_context(|| format!("writing the chart to {}", self.target.display()))
    }
}

impl Drop for SvgFile {
    fn drop(&mut self) {
        // Completed: renamed away. Otherwise nothing may be left behind.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn random_suffix() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `simulate -o json` prints; the table is drawn from it.
#[derive(Serialize)]
struct Report<'a> {
    /// The trace file, `stdin`, or the store and since when.
    source: String,
    #[serde(skip)]
    store_since: Option<String>,
    config: String,
    /// `--set` overrides, as given (`prereq_capacity` included).
    overrides: Vec<String>,
    timezone: String,
    span: SpanReport,
    /// The tier in place before the replay's first run (warm-up included).
    initial_capacity: u32,
    timeline: &'a [TierChange],
    scores: &'a Summary,
    /// How well the forecast did; `null` when `forecast.mode` is off.
    forecast: Option<ForecastReport>,
}

#[derive(Serialize)]
struct SpanReport {
    start: Timestamp,
    end: Timestamp,
    minutes: u64,
    /// Simulated `check` runs in the span.
    ticks: usize,
    /// Runs replayed before `--start` as their history.
    warm_up_ticks: usize,
    tick_seconds: i64,
    ready_seconds: i64,
}

#[derive(Serialize)]
struct ForecastReport {
    mode: ForecastMode,
    horizon_seconds: i64,
    margin_percent: u32,
    #[serde(flatten)]
    accuracy: Accuracy,
}

impl<'a> Report<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        users: &Users,
        config: &Path,
        overrides: &[Override],
        tz: &TimeZone,
        args: &SimulateArgs,
        tick: SignedDuration,
        replayed: &'a Replayed,
        summary: &'a Summary,
        policy: &Policy,
    ) -> Self {
        let mut set: Vec<String> = overrides.iter().map(Override::shown).collect();
        set.extend(
            args.set
                .iter()
                .filter(|(k, _)| k == PREREQ_CAPACITY)
                .map(|(k, v)| format!("{k}={v}")),
        );
        let settings = policy.forecast.settings;
        Report {
            source: users.source.clone(),
            store_since: users
                .since
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
            config: config.display().to_string(),
            overrides: set,
            timezone: tz.iana_name().unwrap_or("UTC").to_string(),
            span: SpanReport {
                start: summary.start,
                end: summary.end,
                minutes: summary.minutes,
                ticks: replayed.ticks,
                warm_up_ticks: replayed.warm_up_ticks,
                tick_seconds: tick.as_secs(),
                ready_seconds: args.ready.as_secs(),
            },
            initial_capacity: replayed.initial,
            timeline: &replayed.changes,
            scores: summary,
            forecast: replayed
                .accuracy(policy.forecast.mode)
                .map(|accuracy| ForecastReport {
                    mode: policy.forecast.mode,
                    horizon_seconds: settings.horizon.as_secs(),
                    margin_percent: settings.margin_percent,
                    accuracy,
                }),
        }
    }

    /// The source, config and overrides in one line.
    fn heading(&self) -> String {
        self.line(&self.source, &self.config)
    }

    /// The heading with file names for paths: the chart's title has one
    /// line of room.
    fn title(&self) -> String {
        let name = |p: &str| {
            Path::new(p)
                .file_name()
                .map_or(p.to_string(), |n| n.to_string_lossy().into_owned())
        };
        let source = match &self.store_since {
            Some(since) => format!("the store since {since}"),
            None => name(&self.source),
        };
        self.line(&source, &name(&self.config))
    }

    fn line(&self, source: &str, config: &str) -> String {
        let mut h = format!("{source} · config {config}");
        for o in &self.overrides {
            h.push_str(&format!(" · --set {o}"));
        }
        h
    }

    fn table(&self, tz: &TimeZone) -> String {
        let s = &self.span;
        // Ticks finer than a minute are told apart by their seconds.
        let format = if s.tick_seconds % 60 == 0 {
            "%Y-%m-%d %H:%M"
        } else {
            "%Y-%m-%d %H:%M:%S"
        };
        let local = |t: Timestamp| t.to_zoned(tz.clone()).strftime(format).to_string();
        let mut out = format!("simulate: {}\n", self.heading());
        out.push_str(&format!(
            "{} checks every {:#}{}, rises serving {:#} later; tier {} before the first run\n\n",
            s.ticks,
            SignedDuration::from_secs(s.tick_seconds),
            match s.warm_up_ticks {
                0 => String::new(),
                n => format!(" (after {n} replayed before the start as history)"),
            },
            SignedDuration::from_secs(s.ready_seconds),
            self.initial_capacity,
        ));
        out.push_str(&format!("tier changes ({})\n", self.timezone));
        if self.timeline.is_empty() {
            out.push_str("  none\n");
        }
        let rows: Vec<[String; 4]> = self
            .timeline
            .iter()
            .map(|c| {
                [
                    local(c.time),
                    format!("{:>5} → {}", c.from, c.to),
                    match &c.window {
                        Some(w) => format!("{} {w}", c.decided_by),
                        None => c.decided_by.to_string(),
                    },
                    c.users.map_or("-".to_string(), |u| u.to_string()),
                ]
            })
            .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1).max(10), width(2).max(10));
        if !rows.is_empty() {
            out.push_str(&format!(
                "  {:<w0$}  {:<w1$}  {:<w2$}  users\n",
                "time", "tier", "decided by"
            ));
        }
        for [time, tiers, by, users] in &rows {
            out.push_str(&format!(
                "  {time:<w0$}  {tiers:<w1$}  {by:<w2$}  {users:>5}\n"
            ));
        }
        out.push('\n');
        out.push_str(&self.scores.table(tz));
        if let Some(f) = &self.forecast {
            out.push('\n');
            out.push_str(&forecast_lines(f, s));
        }
        out
    }
}

/// The forecast's accuracy for a person, and a note when its horizon and
/// the replay's pod start disagree.
fn forecast_lines(f: &ForecastReport, s: &SpanReport) -> String {
    let a = &f.accuracy;
    let num = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let mut out = format!(
        "forecast ({}): over {} checks, the users of the next check predicted with MAE {} \
         (seasonal naive {}, MASE {}); the forecast tier held the users' need at {}% of them\n",
        match f.mode {
            ForecastMode::Scale => "scale",
            _ => "advise: computed, never acted on",
        },
        a.ticks,
        num(a.mae, 1),
        num(a.naive_mae, 1),
        num(a.mase, 2),
        num(a.tier_covered_percent, 1),
    );
    let pod_start = f.horizon_seconds - s.tick_seconds;
    if pod_start > 0 && pod_start != s.ready_seconds {
        out.push_str(&format!(
            "note: forecast.horizon {:#} looks ahead for pods taking {:#} to start (+ one check); \
             this replay's rises serve after {:#} (--ready)\n",
            SignedDuration::from_secs(f.horizon_seconds),
            SignedDuration::from_secs(pod_start),
            SignedDuration::from_secs(s.ready_seconds),
        ));
    }
    out
}
