//! The imperative shell. A run is a sequence of phases — gather
//! (everything the decision needs, concurrently) → decide (the core) →
//! apply → conclude (the core) → notify → record → print — over a struct of
//! adapters, one per outside system. The shell is generic over them, so
//! its own policies (lock lost, dry run, partial apply, spooled record,
//! deadline) are tested with in-memory fakes; [`run`] wires the real ones.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tracing::{info, warn};

use hpa_tier_core::conclude::{
    self, Applied, Completion, NoticeReport, NoticeStatus, Recorded, RunFacts,
};
use hpa_tier_core::hpa::{Hpa, HpaRef};
use hpa_tier_core::metrics::{Gauges, Seen};
use hpa_tier_core::notice::{self, Notice};
use hpa_tier_core::plan::{self, Decision, Demand, Inputs};
use hpa_tier_core::policy::Policy;
use hpa_tier_core::prereq::{self, Observed};
use hpa_tier_core::record::{CommandKind, RunRecord, active_hold};
use hpa_tier_core::schedule;
use hpa_tier_core::status::{StatusInputs, StatusReport};

use crate::budget::{self, Budget, Stopped, bounded, within};
use crate::cli::{Cli, Command, Output};
use crate::cluster::kube::Kube;
use crate::cluster::{Cluster, ClusterError};
use crate::config::{self, Config, UsersSource};
use crate::error::UsageError;
use crate::metrics::Publisher;
use crate::notify::Notifier;
use crate::notify::feishu::Feishu;
use crate::output;
use crate::prereq::Prerequisites;
use crate::prereq::aws::AwsAccount;
use crate::source::{MetricSource, Users};
use crate::store::{self, OpenStore, RunStore};

/// Patches in flight at once: the largest deployment (ten namespaces × six
/// services) goes out in one wave.
const CONCURRENCY: usize = 64;

/// One adapter per outside system.
pub struct Adapters<U, C, P, O, N> {
    pub users: U,
    pub cluster: C,
    pub prereqs: P,
    pub store: O,
    /// `None`: no webhook configured.
    pub notifier: Option<N>,
    /// Where the run's gauges go (`Publisher::default()`: nowhere).
    pub metrics: Publisher,
}

/// How a run prints and whether it may write.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    pub dry_run: bool,
    pub output: Output,
}

/// What `check` or `upgrade` was asked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Request {
    Check,
    Upgrade {
        capacity: u32,
        force: bool,
        hold: Option<SignedDuration>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<Completion> {
    let path = cli.config_path();
    let Cli {
        dry_run,
        output,
        command,
        ..
    } = cli;
    let mut config = config::load(&path)?;
    if dry_run {
        // "Changes nothing": not even the GA token cache is written.
        config.users.read_only();
    }
    let mode = Mode { dry_run, output };
    match command {
        Command::Tiers => {
            print_tiers(&config, output)?;
            Ok(Completion::Success)
        }
        Command::Schedules { days } => {
            print_schedules(&config.policy, days, output)?;
            Ok(Completion::Success)
        }
        // Reads the config again with its --set overrides applied.
        Command::Simulate(args) => crate::simulate::run(&path, output, args),
        Command::Check { users } => {
            if users.is_none() {
                config.check_key_file()?;
            }
            let adapters = adapters(&config, users)?;
            block_on(&config, |budget| {
                control(&adapters, &config.policy, Request::Check, mode, budget)
            })
        }
        Command::Upgrade {
            capacity,
            force,
            hold,
        } => {
            let request = Request::Upgrade {
                capacity: config.tier_capacity(capacity)?,
                force,
                hold,
            };
            // An upgrade reads no users: the source is never asked, and the
            // GA key file need not be there.
            let adapters = adapters(&config, Some(0))?;
            block_on(&config, |budget| {
                control(&adapters, &config.policy, request, mode, budget)
            })
        }
        Command::Status => {
            if matches!(config.users, UsersSource::Ga(_)) {
                config.check_key_file()?;
            }
            let adapters = adapters(&config, None)?;
            let checks = (config.aws.rds_cluster.is_some(), config.aws.redis.is_some());
            block_on(&config, |budget| {
                status(&adapters, &config.policy, checks, output, budget)
            })
        }
    }
}

type RealAdapters = Adapters<Users, Kube, AwsAccount, store::Settings, Feishu>;

/// The real adapters of `config` (nothing connects yet).
fn adapters(config: &Config, fixed_users: Option<u32>) -> Result<RealAdapters, UsageError> {
    let kube = Kube::new(&config.kube, config.timeout);
    Ok(Adapters {
        users: Users::new(config, fixed_users)?,
        cluster: kube.clone(),
        prereqs: AwsAccount::new(&config.aws, config.timeout),
        store: store::Settings {
            mysql: config.mysql.clone(),
            state_file: config.state_file.clone(),
            spool_configmap: (config.spool_configmap.clone())
                .map(|at| store::SpoolConfigMap { at, kube }),
            scope: config.policy.cluster.clone(),
            timeout: config.timeout,
        },
        notifier: config
            .feishu
            .as_ref()
            .map(|f| Feishu::new(f, &config.policy.cluster, config.timeout)),
        metrics: Publisher::new(&config.metrics, &config.policy.cluster),
    })
}

fn print_tiers(config: &Config, output: Output) -> anyhow::Result<()> {
    let tiers = &config.policy.tiers;
    match output {
        Output::Table => print!("{}", output::tiers_table(tiers)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::tiers_json(tiers))?
        ),
    }
    Ok(())
}

/// `schedules`: the windows of the next `days`, from the config alone.
fn print_schedules(policy: &Policy, days: u32, output: Output) -> anyhow::Result<()> {
    let ahead = SignedDuration::from_hours(24 * i64::from(days));
    let rows = schedule::upcoming(&policy.schedules, Timestamp::now(), ahead, None);
    let zone = policy.schedules.zone().iana_name().unwrap_or("UTC");
    match output {
        Output::Table => print!("{}", output::schedules_table(&rows, zone, days)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "timezone": zone, "days": days, "windows": rows })
            )?
        ),
    }
    Ok(())
}

fn block_on<F: Future<Output = anyhow::Result<Completion>>>(
    config: &Config,
    run: impl FnOnce(Budget) -> F,
) -> anyhow::Result<Completion> {
    // One thread is plenty for a run that mostly waits on the network, and
    // keeps the footprint small; blocking HTTP goes to the blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async {
        let budget = Budget::start(config.timeout);
        budget.stop_on_signals();
        // The phases stop themselves at the deadline and still record; this
        // is the net under that, should the record or a close hang.
        let limit = budget.total(tokio::time::Instant::now());
        match tokio::time::timeout(limit, run(budget)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "the run did not end within {}s, its deadline with the time to record; \
                 whatever was in flight was abandoned",
                limit.as_secs()
            )),
        }
    });
    // A blocking helper that hangs (an exec credential plugin) must not keep
    // the process alive after the run has ended.
    rt.shutdown_background();
    result
}

// ---------------------------------------------------------------------------
// check / upgrade

/// What the gather phase read.
struct Gathered<S> {
    /// `None` for `upgrade`, which reads no users.
    users: Option<Result<u32, String>>,
    hpas: Vec<Hpa>,
    unreadable: Vec<(HpaRef, String)>,
    observed: Result<Observed, String>,
    store: S,
    locked: Result<bool, String>,
    history: Result<Vec<RunRecord>, String>,
    last_upgrade: Result<Option<RunRecord>, String>,
    /// The forecast's history; empty when it is off or could not be read.
    samples: Vec<(Timestamp, u32)>,
}

/// `check` and `upgrade`: one control pass.
pub async fn control<U, C, P, O, N>(
    a: &Adapters<U, C, P, O, N>,
    policy: &Policy,
    request: Request,
    mode: Mode,
    budget: Budget,
) -> anyhow::Result<Completion>
where
    U: MetricSource,
    C: Cluster,
    P: Prerequisites,
    O: OpenStore,
    N: Notifier,
{
    let started = Timestamp::now();
    let g = tokio::select! {
        g = gather(a, policy, request, mode.dry_run, started, &budget) => g,
        why = budget.until_stopped() => {
            return stopped_early(a, policy, request, mode, &budget, started, why).await;
        }
    };
    info!(
        elapsed_ms = Timestamp::now().duration_since(started).as_millis(),
        "gathered"
    );
    match &g.locked {
        Ok(true) => {}
        Ok(false) => return lock_taken(a, g, policy, request, mode, &budget, started).await,
        Err(e) => {
            let e = anyhow::anyhow!("cannot take the run lock: {e}; nothing was done");
            close(g.store).await;
            return Err(e);
        }
    }
    let mut decision = decide(&g, policy, request, started);
    decision.warnings.extend(a.cluster.warnings());
    info!(
        outcome = decision.outcome().as_str(),
        "{}",
        decision.message()
    );
    let applied = if mode.dry_run {
        Applied::DryRun
    } else {
        apply(&a.cluster, &decision, &budget).await
    };
    let mut conclusion = conclude::conclude(decision, applied, &policy.tiers, started);
    let history = g.history.as_deref().ok();
    let notices = if mode.dry_run {
        let dry = |n: &Notice| NoticeReport::new(n, NoticeStatus::DryRun);
        conclusion.notices.iter().map(dry).collect()
    } else {
        let (notifier, notices) = (a.notifier.as_ref(), &conclusion.notices);
        notify(notifier, notices, history, started, policy, &budget).await
    };
    if let Some(why) = budget.stopped() {
        conclusion = conclusion.stopped(why);
    }
    let seen = g.seen(policy, started);
    publish(&a.metrics, mode, &budget, &mut conclusion, &seen).await;
    let (store, observed) = (&g.store, &g.observed);
    let done = finish(
        store, conclusion, notices, observed, policy, mode, &budget, started,
    )
    .await;
    close(g.store).await;
    done
}

/// Another run holds the lock: someone at work (see [`lock_lost`]), or a
/// stuck holder, which is an alarm with a record of its own.
async fn lock_taken<U, C, P, O, N>(
    a: &Adapters<U, C, P, O, N>,
    g: Gathered<O::Store>,
    policy: &Policy,
    request: Request,
    mode: Mode,
    budget: &Budget,
    started: Timestamp,
) -> anyhow::Result<Completion>
where
    O: OpenStore,
    N: Notifier,
{
    let history = g.history.as_deref().ok();
    let stuck = plan::lock_stuck(history, started, policy.check_interval)
        .filter(|_| request == Request::Check);
    let Some(message) = stuck else {
        publish_skipped(&a.metrics, mode, budget, &g.seen(policy, started)).await;
        close(g.store).await;
        return lock_lost(policy, request, mode.output);
    };
    let decision = Decision::locked_out(message, policy);
    let mut alarm = conclude::conclude(decision, Applied::Results(vec![]), &policy.tiers, started);
    let notifier = a.notifier.as_ref();
    let notices = notify(notifier, &alarm.notices, history, started, policy, budget).await;
    publish(
        &a.metrics,
        mode,
        budget,
        &mut alarm,
        &g.seen(policy, started),
    )
    .await;
    let done = finish(
        &g.store,
        alarm,
        notices,
        &g.observed,
        policy,
        mode,
        budget,
        started,
    )
    .await;
    close(g.store).await;
    done
}

/// Record, close, print: the end of every run that decided, however it
/// was stopped.
#[allow(clippy::too_many_arguments)]
async fn finish<S: RunStore>(
    store: &S,
    conclusion: conclude::Conclusion,
    notices: Vec<NoticeReport>,
    observed: &Result<Observed, String>,
    policy: &Policy,
    mode: Mode,
    budget: &Budget,
    started: Timestamp,
) -> anyhow::Result<Completion> {
    let recorded = if mode.dry_run {
        Recorded::DryRun
    } else {
        let facts = RunFacts {
            run_id: new_run_id(),
            started,
            finished: Timestamp::now(),
        };
        let rec = conclusion.record(&facts, &notices, observed);
        record(store, &rec, budget.record()).await
    };
    let (report, done) = conclusion.report(&policy.cluster, notices, &recorded);
    print_run(&report, mode.output)?;
    Ok(done)
}

/// Stopped before the gather phase ended: nothing was decided or changed,
/// and that is recorded — into a store opened afresh, since the gather's
/// own may be what hung.
async fn stopped_early<U, C, P, O, N>(
    a: &Adapters<U, C, P, O, N>,
    policy: &Policy,
    request: Request,
    mode: Mode,
    budget: &Budget,
    started: Timestamp,
    why: Stopped,
) -> anyhow::Result<Completion>
where
    O: OpenStore,
{
    warn!("{why} before the run could decide: recording that nothing was done");
    let decision = Decision::stopped(request_kind(request), &why.to_string(), policy);
    let mut conclusion =
        conclude::conclude(decision, Applied::Results(vec![]), &policy.tiers, started)
            .stopped(&why);
    let unknown = Err("not read: the run was stopped".to_string());
    let opened = tokio::time::timeout(budget.record(), a.store.open(!mode.dry_run)).await;
    let history = stopped_history(
        &a.metrics,
        mode,
        budget,
        policy,
        started,
        opened.as_ref().ok(),
    )
    .await;
    let seen = Seen {
        policy,
        users: None,
        hpas: &[],
        prerequisites: None,
        history: history.as_deref(),
        started,
        finished: Timestamp::now(),
    };
    publish(&a.metrics, mode, budget, &mut conclusion, &seen).await;
    let Ok(store) = opened else {
        let (report, done) = conclusion.report(
            &policy.cluster,
            vec![],
            &Recorded::Lost("the store did not open in time".into()),
        );
        print_run(&report, mode.output)?;
        return Ok(done);
    };
    let done = finish(
        &store,
        conclusion,
        vec![],
        &unknown,
        policy,
        mode,
        budget,
        started,
    )
    .await;
    close(store).await;
    done
}

fn request_kind(request: Request) -> CommandKind {
    match request {
        Request::Check => CommandKind::Check,
        Request::Upgrade { .. } => CommandKind::Upgrade,
    }
}

fn print_run(report: &conclude::RunReport, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Table => print!("{}", output::run_table(report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(())
}

/// Releases the lock and the connections; a store that hangs on it does
/// not keep the run alive (the server drops the lock with the connection).
async fn close<S: RunStore>(store: S) {
    if tokio::time::timeout(budget::CLOSE, store.close())
        .await
        .is_err()
    {
        warn!(
            "closing the run store took longer than {}s; left to the server",
            budget::CLOSE.as_secs()
        );
    }
}

/// Everything independent at once: users ∥ HPAs ∥ AWS ∥ store (open, lock,
/// history, holds), each bounded by the gather phase's share of the budget.
async fn gather<U, C, P, O, N>(
    a: &Adapters<U, C, P, O, N>,
    policy: &Policy,
    request: Request,
    dry_run: bool,
    now: Timestamp,
    budget: &Budget,
) -> Gathered<O::Store>
where
    U: MetricSource,
    C: Cluster,
    P: Prerequisites,
    O: OpenStore,
{
    let limit = budget.gather();
    let users = async {
        match request {
            Request::Check => Some(read_users(&a.users, limit).await),
            Request::Upgrade { .. } => None,
        }
    };
    let (users, (hpas, unreadable), observed, side) = tokio::join!(
        users,
        read_hpas(&a.cluster, &policy.services, limit),
        read_prereqs(&a.prereqs, limit),
        open_store(&a.store, policy, now, dry_run, limit),
    );
    let StoreSide {
        store,
        locked,
        history,
        last_upgrade,
        samples,
    } = side;
    if let Err(e) = &history {
        warn!("run history unavailable ({e}): no scale-down this run");
    }
    if let Err(e) = &last_upgrade {
        warn!("cannot read holds ({e})");
    }
    Gathered {
        users,
        hpas,
        unreadable,
        observed,
        store,
        locked,
        history,
        last_upgrade,
        samples: samples.unwrap_or_else(|e| {
            warn!("the forecast's history is unavailable ({e}): no forecast this run");
            vec![]
        }),
    }
}

/// The core's inputs from what was gathered.
fn decide<S>(g: &Gathered<S>, policy: &Policy, request: Request, now: Timestamp) -> Decision {
    let hold = active_hold(g.last_upgrade.as_ref().ok().and_then(Option::as_ref), now);
    let demand = match (request, &g.users) {
        (
            Request::Upgrade {
                capacity,
                force,
                hold,
            },
            _,
        ) => Demand::Upgrade {
            capacity,
            force,
            hold,
        },
        (Request::Check, users) => Demand::Users(
            users
                .clone()
                .unwrap_or_else(|| Err("the metric source was not read".into())),
        ),
    };
    let prereqs = g
        .observed
        .as_ref()
        .map(|o| prereq::evaluate(o, &policy.tiers))
        .map_err(Clone::clone);
    plan::decide(&Inputs {
        now,
        demand,
        hold,
        samples: &g.samples,
        policy,
        hpas: &g.hpas,
        unreadable: &g.unreadable,
        prereqs: &prereqs,
        history: g.history.as_deref().ok(),
    })
}

async fn read_users(users: &impl MetricSource, limit: Duration) -> Result<u32, String> {
    within(limit, "the metric source", users.online_users()).await
}

/// The HPAs that could be read, and those that could not (with why).
async fn read_hpas(
    cluster: &impl Cluster,
    refs: &[HpaRef],
    limit: Duration,
) -> (Vec<Hpa>, Vec<(HpaRef, String)>) {
    let reads = match bounded(limit, "Kubernetes", cluster.read(refs)).await {
        Ok(reads) => reads,
        Err(e) => refs
            .iter()
            .map(|_| Err(ClusterError::Api(e.clone())))
            .collect(),
    };
    let mut ok = vec![];
    let mut failed = vec![];
    for (r, res) in refs.iter().zip(reads) {
        match res {
            Ok(h) => ok.push(h),
            Err(e) => failed.push((r.clone(), e.to_string())),
        }
    }
    (ok, failed)
}

async fn read_prereqs(prereqs: &impl Prerequisites, limit: Duration) -> Result<Observed, String> {
    within(limit, "AWS", prereqs.observe()).await
}

// ---------------------------------------------------------------------------
// metrics (SPEC §13)
//
// Published before the record is written, not beside it: a push normally
// takes milliseconds and at worst its own short budget, and in exchange the
// record (and the report) can say that it failed.

impl<S> Gathered<S> {
    /// What the gauges need besides the conclusion.
    fn seen<'a>(&'a self, policy: &'a Policy, started: Timestamp) -> Seen<'a> {
        Seen {
            policy,
            users: self.users.as_ref().and_then(|u| u.as_ref().ok()).copied(),
            hpas: &self.hpas,
            prerequisites: self.observed.as_ref().ok(),
            history: self.history.as_deref().ok(),
            started,
            finished: Timestamp::now(),
        }
    }
}

/// Publishes the gauges of a run that decided (not in a dry run); what
/// failed becomes a warning of its record and report. Never fails the run.
async fn publish(
    metrics: &Publisher,
    mode: Mode,
    budget: &Budget,
    conclusion: &mut conclude::Conclusion,
    seen: &Seen<'_>,
) {
    if mode.dry_run || metrics.is_off() {
        return;
    }
    let gauges = Gauges::of_run(conclusion, seen);
    let warnings = metrics.publish(&gauges, budget.metrics()).await;
    conclusion.decision.warnings.extend(warnings);
}

/// Publishes the gauges of a run that found the lock taken (it has no
/// record: a failure is only logged).
async fn publish_skipped(metrics: &Publisher, mode: Mode, budget: &Budget, seen: &Seen<'_>) {
    if !mode.dry_run && !metrics.is_off() {
        metrics
            .publish(&Gauges::of_skipped(seen), budget.metrics())
            .await;
    }
}

/// A run stopped before its history was read still publishes the time of
/// the last success, so one slow run does not look like many failed ones.
async fn stopped_history<S: RunStore>(
    metrics: &Publisher,
    mode: Mode,
    budget: &Budget,
    policy: &Policy,
    started: Timestamp,
    store: Option<&S>,
) -> Option<Vec<RunRecord>> {
    let store = store.filter(|_| !mode.dry_run && !metrics.is_off())?;
    let since = started - policy.history_span();
    within(budget.metrics(), "the run store", store.history(since))
        .await
        .ok()
}

struct StoreSide<S> {
    store: S,
    locked: Result<bool, String>,
    history: Result<Vec<RunRecord>, String>,
    last_upgrade: Result<Option<RunRecord>, String>,
    samples: Result<Vec<(Timestamp, u32)>, String>,
}

/// Opens the store and, unless this is a dry run (which writes nothing and
/// so needs no lock), takes the run lock; then reads history and holds.
async fn open_store<O: OpenStore>(
    opener: &O,
    policy: &Policy,
    now: Timestamp,
    dry_run: bool,
    limit: Duration,
) -> StoreSide<O::Store> {
    let store = opener.open(!dry_run).await;
    let locked = if dry_run {
        Ok(true)
    } else {
        let lock = format!("hpa-tier:{}", policy.cluster);
        within(limit, "the run store", store.try_lock(&lock)).await
    };
    let since = now - policy.history_span();
    let samples = read_samples(&store, policy, now, limit);
    let (history, last_upgrade, samples) = tokio::join!(
        within(limit, "the run store", store.history(since)),
        within(limit, "the run store", store.last_upgrade()),
        samples,
    );
    StoreSide {
        store,
        locked,
        history,
        last_upgrade,
        samples,
    }
}

/// The forecast's history, when the forecast is on (nothing is read otherwise).
async fn read_samples(
    store: &impl RunStore,
    policy: &Policy,
    now: Timestamp,
    limit: Duration,
) -> Result<Vec<(Timestamp, u32)>, String> {
    match policy.samples_span() {
        Some(span) => within(limit, "the run store", store.samples(now - span)).await,
        None => Ok(vec![]),
    }
}

/// Another run holds the lock: a `check` says so and succeeds, an `upgrade`
/// fails (the operator must know it did not happen).
fn lock_lost(policy: &Policy, request: Request, output: Output) -> anyhow::Result<Completion> {
    let kind = match request {
        Request::Check => CommandKind::Check,
        Request::Upgrade { .. } => CommandKind::Upgrade,
    };
    let msg = format!(
        "another hpa-tier run holds the lock for cluster {}; this {} did nothing",
        policy.cluster,
        kind.as_str()
    );
    if kind == CommandKind::Upgrade {
        return Err(anyhow::anyhow!(msg));
    }
    // Scripts reading `-o json` still get their one document.
    if output == Output::Json {
        let doc = json!({
            "command": kind.as_str(),
            "cluster": policy.cluster,
            "skipped": true,
            "message": msg,
            "exit_code": Completion::Success.exit_code(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    eprintln!("{msg}");
    Ok(Completion::Success)
}

/// Every patch concurrently, each result kept as it arrives: when the phase
/// runs out of time, what was confirmed is still known (the rest is
/// reported as not confirmed).
async fn apply(cluster: &impl Cluster, decision: &Decision, budget: &Budget) -> Applied {
    let patches: Vec<_> = decision.changes.iter().map(|c| c.patch()).collect();
    let mut done = Vec::with_capacity(patches.len());
    let calls = patches.iter().map(|p| async move {
        let result = cluster.apply_one(p).await;
        (p.id.clone(), result.map(|_| ()).map_err(|e| e.to_string()))
    });
    let mut results = futures::stream::iter(calls).buffer_unordered(CONCURRENCY);
    let limit = budget.apply();
    let collect = async {
        while let Some(r) = results.next().await {
            done.push(r);
        }
    };
    tokio::select! {
        r = tokio::time::timeout(limit, collect) => if r.is_err() {
            warn!(
                limit_s = limit.as_secs(),
                "the HPA patches did not all answer in time; the rest are not confirmed"
            );
        },
        why = budget.until_stopped() => {
            warn!("{why} while patching; the patches without an answer are not confirmed");
        }
    }
    Applied::Results(done)
}

/// Sends every notice not already sent within `notify_repeat`, concurrently.
/// A failed notification is logged and reported, never fails the run.
async fn notify<N: Notifier>(
    notifier: Option<&N>,
    notices: &[Notice],
    history: Option<&[RunRecord]>,
    now: Timestamp,
    policy: &Policy,
    budget: &Budget,
) -> Vec<NoticeReport> {
    let limit = budget.notify();
    let sends = notices.iter().map(|n| async move {
        let repeat = n
            .dedupe_key()
            .zip(history)
            .is_some_and(|(k, h)| notice::suppressed(&k, h, now, policy.notify_repeat));
        let status = match notifier {
            _ if repeat => NoticeStatus::Suppressed,
            None => NoticeStatus::NotConfigured,
            Some(f) => match within(limit, "Feishu", f.send(n)).await {
                Ok(()) => NoticeStatus::Sent,
                Err(e) => NoticeStatus::Failed(e),
            },
        };
        if let NoticeStatus::Failed(e) = &status {
            warn!("notification failed: {e}");
        }
        NoticeReport::new(n, status)
    });
    let all = futures::future::join_all(sends);
    tokio::select! {
        sent = all => sent,
        why = budget.until_stopped() => {
            // Some may have gone out; marked failed, they are tried again by
            // the next run rather than lost.
            let failed = NoticeStatus::Failed(format!("not confirmed: {why}"));
            notices.iter().map(|n| NoticeReport::new(n, failed.clone())).collect()
        }
    }
}

async fn record(store: &impl RunStore, rec: &RunRecord, limit: Duration) -> Recorded {
    match within(limit, "the run store", store.record(rec)).await {
        Ok(store::Recorded::Stored) => Recorded::Stored(store.describe()),
        Ok(store::Recorded::Spooled) => Recorded::Spooled(store.spool_location()),
        Err(e) => {
            warn!("the run record was lost: {e}");
            Recorded::Lost(e)
        }
    }
}

/// 128 random bits, hex: unique across hosts, so a spooled record is never
/// written twice.
fn new_run_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// status

/// `status`: everything at once; a failing source is shown in place.
pub async fn status<U, C, P, O, N>(
    a: &Adapters<U, C, P, O, N>,
    policy: &Policy,
    (checks_rds, checks_redis): (bool, bool),
    output: Output,
    budget: Budget,
) -> anyhow::Result<Completion>
where
    U: MetricSource,
    C: Cluster,
    P: Prerequisites,
    O: OpenStore,
{
    let now = Timestamp::now();
    let limit = budget.gather();
    let (users, (hpas, unreadable), observed, (store, runs, last_upgrade, samples)) = tokio::join!(
        read_users(&a.users, limit),
        read_hpas(&a.cluster, &policy.services, limit),
        read_prereqs(&a.prereqs, limit),
        async {
            let store = a.store.open(false).await;
            let samples = read_samples(&store, policy, now, limit);
            let (runs, last, samples) = tokio::join!(
                within(limit, "the run store", store.latest(10)),
                within(limit, "the run store", store.last_upgrade()),
                samples,
            );
            (store, runs, last, samples.unwrap_or_default())
        },
    );
    let mut report = StatusReport::assess(StatusInputs {
        now,
        policy,
        checks_rds,
        checks_redis,
        source: a.users.describe(),
        users,
        hpas: &hpas,
        unreadable: &unreadable,
        observed: &observed,
        runs,
        last_upgrade,
        samples: &samples,
        store: store.describe(),
    });
    report.warnings.extend(a.cluster.warnings());
    close(store).await;
    match output {
        Output::Table => print!("{}", output::status_table(&report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.healthy() {
        Completion::Success
    } else {
        Completion::Failed
    })
}
