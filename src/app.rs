//! The imperative shell: load the config, connect the adapters, gather
//! everything the decision needs concurrently, call the pure planning core,
//! apply unless `--dry-run`, notify, record, and say how it went. `main`
//! calls [`run`] and nothing else.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use futures::future::join_all;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tracing::{info, warn};

use crate::cli::{Cli, Command, Output};
use crate::cluster::kube::KubeCluster;
use crate::cluster::{Cluster, ClusterError};
use crate::config::{self, Config, UsersSource};
use crate::error::{Completion, UsageError};
use crate::notify::feishu::Feishu;
use crate::notify::{self, Notice, Notifier};
use crate::output::{self, NoticeReport, RunReport, StatusReport};
use crate::prereq::aws::Aws;
use crate::prereq::{self, Allowance, Observed, Prerequisites};
use crate::source::ga::Ga;
use crate::source::http::HttpSource;
use crate::source::prometheus::Prometheus;
use crate::source::{Fixed, MetricError, MetricSource};
use crate::store::{self, Recorded, RunStore, Store};
use hpa_tier_core::hpa::{Hpa, HpaRef};
use hpa_tier_core::plan::{self, Applied, Demand, Inputs, Plan};
use hpa_tier_core::record::{self, CommandKind, Outcome, RunRecord};

pub fn run(cli: Cli) -> anyhow::Result<Completion> {
    let path = cli.config_path();
    let Cli {
        dry_run,
        output,
        command,
        ..
    } = cli;
    let config = config::load(&path)?;
    match command {
        Command::Tiers => {
            match output {
                Output::Table => print!("{}", output::tiers_table(&config.policy.tiers)),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&output::tiers_json(&config.policy.tiers))?
                ),
            }
            Ok(Completion::Success)
        }
        Command::Check { users } => {
            if users.is_none() {
                config.check_key_file()?;
            }
            let request = Request::Check { users };
            block_on(&config, control(&config, request, dry_run, output))
        }
        Command::Upgrade {
            capacity,
            force,
            hold,
        } => {
            let capacity = config.tier_capacity(capacity)?;
            let request = Request::Upgrade {
                capacity,
                force,
                hold,
            };
            block_on(&config, control(&config, request, dry_run, output))
        }
        Command::Status => {
            if matches!(config.users, UsersSource::Ga(_)) {
                config.check_key_file()?;
            }
            block_on(&config, status(&config, output))
        }
    }
}

/// The deadline of a whole run: every call has `timeout` on its own; this is
/// the net under them, so a hung dependency cannot keep a cron job alive.
fn deadline(config: &Config) -> Duration {
    config.timeout * 6 + Duration::from_secs(5)
}

fn block_on(
    config: &Config,
    fut: impl Future<Output = anyhow::Result<Completion>>,
) -> anyhow::Result<Completion> {
    // One thread is plenty for a run that mostly waits on the network, and
    // keeps the footprint small; blocking HTTP goes to the blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let limit = deadline(config);
    rt.block_on(async {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "the run did not finish within its deadline of {}s (timeout_seconds × 6 + 5s); \
                 whatever was in flight was abandoned",
                limit.as_secs()
            )),
        }
    })
}

enum Request {
    Check {
        users: Option<u32>,
    },
    Upgrade {
        capacity: u32,
        force: bool,
        hold: Option<SignedDuration>,
    },
}

impl Request {
    fn kind(&self) -> CommandKind {
        match self {
            Request::Check { .. } => CommandKind::Check,
            Request::Upgrade { .. } => CommandKind::Upgrade,
        }
    }
}

/// The configured metric source (or the `--users` override).
enum Users {
    Ga(Ga),
    Http(HttpSource),
    Prometheus(Prometheus),
    Fixed(Fixed),
}

impl Users {
    fn new(config: &Config, fixed: Option<u32>) -> Result<Users, UsageError> {
        if let Some(n) = fixed {
            return Ok(Users::Fixed(Fixed(n)));
        }
        Ok(match &config.users {
            UsersSource::Ga(ga) => {
                Users::Ga(Ga::new(ga, config.timeout).map_err(|e| UsageError::new(e.to_string()))?)
            }
            UsersSource::Http { url, json_pointer } => {
                Users::Http(HttpSource::new(url, json_pointer, config.timeout))
            }
            UsersSource::Prometheus { url, query } => {
                Users::Prometheus(Prometheus::new(url, query, config.timeout))
            }
        })
    }

    async fn read(&self) -> Result<u32, MetricError> {
        match self {
            Users::Ga(s) => s.online_users().await,
            Users::Http(s) => s.online_users().await,
            Users::Prometheus(s) => s.online_users().await,
            Users::Fixed(s) => s.online_users().await,
        }
    }

    /// The read under the per-chain safety net, errors as the planner takes them.
    async fn read_within(&self, limit: Duration) -> Result<u32, String> {
        bounded(limit, "the metric source", self.read())
            .await
            .and_then(|r| r.map_err(|e| e.to_string()))
    }

    fn describe(&self) -> String {
        match self {
            Users::Ga(s) => s.describe(),
            Users::Http(s) => s.describe(),
            Users::Prometheus(s) => s.describe(),
            Users::Fixed(s) => s.describe(),
        }
    }
}

/// A per-chain safety net on top of each adapter's own timeout.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| format!("{what} did not answer within {}s", limit.as_secs()))
}

/// The HPAs that could be read, and those that could not (with why).
fn split_reads(
    refs: &[HpaRef],
    reads: Vec<Result<Hpa, ClusterError>>,
) -> (Vec<Hpa>, Vec<(HpaRef, String)>) {
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

async fn read_hpas(config: &Config) -> (Option<KubeCluster>, Vec<Result<Hpa, ClusterError>>) {
    let all_failed = |e: String| {
        config
            .policy
            .services
            .iter()
            .map(|_| Err(ClusterError::Api(e.clone())))
            .collect()
    };
    let limit = config.timeout * 2;
    match bounded(
        limit,
        "Kubernetes",
        KubeCluster::connect(&config.kube, config.timeout),
    )
    .await
    {
        Ok(Ok(cluster)) => {
            match bounded(limit, "Kubernetes", cluster.read(&config.policy.services)).await {
                Ok(reads) => (Some(cluster), reads),
                Err(e) => (Some(cluster), all_failed(e)),
            }
        }
        Ok(Err(e)) => (
            None,
            all_failed(format!("cannot connect to Kubernetes: {e}")),
        ),
        Err(e) => (None, all_failed(e)),
    }
}

async fn read_prereqs(config: &Config) -> Result<Observed, String> {
    let aws = Aws::new(&config.aws, config.timeout).await;
    bounded(config.timeout * 2, "AWS", aws.observe())
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
}

fn lock_name(config: &Config) -> String {
    format!("hpa-tier:{}", config.policy.cluster)
}

/// History far enough back for the scale-down window and notice dedupe.
fn history_since(config: &Config, now: Timestamp) -> Timestamp {
    now - config.policy.scale_down.max(config.policy.notify_repeat)
}

struct StoreSide {
    store: Store,
    locked: Result<bool, String>,
    history: Result<Vec<RunRecord>, String>,
    last_upgrade: Result<Option<RunRecord>, String>,
}

/// Opens the store and, unless this is a dry run (which writes nothing and
/// so needs no lock), takes the run lock; then reads history and holds.
async fn open_store(config: &Config, now: Timestamp, dry_run: bool) -> StoreSide {
    let store = if dry_run {
        store::open_read_only(
            config.mysql.as_ref(),
            &config.state_file,
            &config.policy.cluster,
            config.timeout,
        )
        .await
    } else {
        store::open(
            config.mysql.as_ref(),
            &config.state_file,
            &config.policy.cluster,
            config.timeout,
        )
        .await
    };
    let locked = if !dry_run {
        store
            .try_lock(&lock_name(config))
            .await
            .map_err(|e| e.to_string())
    } else {
        Ok(true)
    };
    let (history, last_upgrade) = tokio::join!(
        store.history(history_since(config, now)),
        store.last_upgrade()
    );
    StoreSide {
        store,
        locked,
        history: history.map_err(|e| e.to_string()),
        last_upgrade: last_upgrade.map_err(|e| e.to_string()),
    }
}

/// `check` and `upgrade`: one control pass.
async fn control(
    config: &Config,
    request: Request,
    dry_run: bool,
    output: Output,
) -> anyhow::Result<Completion> {
    let started = Timestamp::now();
    let kind = request.kind();
    let users_source = match &request {
        Request::Check { users } => Some(Users::new(config, *users)?),
        Request::Upgrade { .. } => None,
    };

    // Everything independent at once: users ∥ HPAs ∥ AWS ∥ store (lock, history).
    let limit = config.timeout * 2;
    let (users, (cluster, reads), observed, side) = tokio::join!(
        async {
            match &users_source {
                Some(s) => Some(s.read_within(limit).await),
                None => None,
            }
        },
        read_hpas(config),
        read_prereqs(config),
        open_store(config, started, dry_run),
    );
    info!(
        elapsed_ms = Timestamp::now().duration_since(started).as_millis(),
        "gathered"
    );

    let StoreSide {
        store,
        locked,
        history,
        last_upgrade,
    } = side;
    match locked {
        Ok(true) => {}
        Ok(false) => {
            let msg = format!(
                "another hpa-tier run holds the lock for cluster {}; this {} did nothing",
                config.policy.cluster,
                kind.as_str()
            );
            store.close().await;
            return match kind {
                CommandKind::Check => {
                    // Scripts reading `-o json` still get their one document.
                    if output == Output::Json {
                        let doc = json!({
                            "command": kind.as_str(),
                            "cluster": config.policy.cluster,
                            "skipped": true,
                            "message": msg,
                            "exit_code": crate::error::exit_code(&Ok(Completion::Success)),
                        });
                        println!("{}", serde_json::to_string_pretty(&doc)?);
                    }
                    eprintln!("{msg}");
                    Ok(Completion::Success)
                }
                CommandKind::Upgrade => Err(anyhow::anyhow!(msg)),
            };
        }
        Err(e) => {
            store.close().await;
            return Err(anyhow::anyhow!(
                "cannot take the run lock: {e}; nothing was done"
            ));
        }
    }

    let (hpas, unreadable) = split_reads(&config.policy.services, reads);
    let prereqs: Result<Allowance, String> = observed
        .as_ref()
        .map(|o| prereq::evaluate(o, &config.policy.tiers))
        .map_err(Clone::clone);
    if let Err(e) = &history {
        warn!("run history unavailable ({e}): no scale-down this run");
    }
    if let Err(e) = &last_upgrade {
        warn!("cannot read holds ({e})");
    }
    let hold = record::active_hold(last_upgrade.as_ref().ok().and_then(Option::as_ref), started);
    let demand = match &request {
        Request::Check { .. } => Demand::Users(users.expect("check reads users")),
        Request::Upgrade {
            capacity, force, ..
        } => Demand::Upgrade {
            capacity: *capacity,
            force: *force,
        },
    };
    let plan = plan::plan(&Inputs {
        now: started,
        demand,
        tiers: &config.policy.tiers,
        reference: config.policy.reference(),
        hpas: &hpas,
        unreadable: &unreadable,
        prereqs: &prereqs,
        history: history.as_deref().ok(),
        hold,
        headroom_percent: config.policy.headroom_percent,
        scale_down: config.policy.scale_down,
    });
    info!(outcome = plan.outcome.as_str(), "{}", plan.message);

    if dry_run {
        let done = completion(kind, &plan, plan.outcome, Recorded::Stored);
        let mut report = RunReport::from_plan(kind, &plan, &config.policy.cluster, true);
        report.exit_code = crate::error::exit_code(&Ok(done));
        print_report(&report, output)?;
        store.close().await;
        return Ok(done);
    }

    // Apply.
    let applied: Applied = match (&cluster, plan.changes.is_empty() || plan.refused) {
        (Some(cluster), false) => {
            let patches: Vec<_> = plan.changes.iter().map(|c| c.patch()).collect();
            let results =
                match bounded(config.timeout * 3, "Kubernetes", cluster.apply(&patches)).await {
                    Ok(r) => r
                        .into_iter()
                        .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
                        .collect(),
                    Err(e) => patches.iter().map(|_| Err(e.clone())).collect::<Vec<_>>(),
                };
            patches.into_iter().map(|p| p.id).zip(results).collect()
        }
        _ => vec![],
    };
    let (outcome, notices) = plan::settle(&plan, &applied, &config.policy.tiers, kind.as_str());

    // Notify (deduped against history), then record what was delivered.
    let notice_reports = send_notices(config, &notices, history.as_deref().ok(), started).await;
    let notified: Vec<String> = notice_reports
        .iter()
        .filter(|n| n.status == "sent")
        .filter_map(|n| n.key.clone())
        .collect();

    let finished = Timestamp::now();
    let applied_any = applied.iter().any(|(_, r)| r.is_ok());
    let current = plan.current.map(|c| c.capacity);
    let to = if applied_any { plan.target } else { current };
    let hold_until = match (&request, outcome) {
        (
            Request::Upgrade { hold: Some(h), .. },
            Outcome::Applied | Outcome::Noop | Outcome::Partial,
        ) => Some(started + *h),
        _ => None,
    };
    let mut report = RunReport::from_plan(kind, &plan, &config.policy.cluster, false);
    report.settle(outcome, &applied, to, notice_reports);
    report.hold_until = hold_until;
    let rec = RunRecord {
        run_id: new_run_id(),
        started_at: started,
        finished_at: finished,
        command: kind,
        users: plan.users,
        needed_capacity: plan.needed.map(|n| n.capacity),
        from_capacity: current,
        to_capacity: to,
        outcome,
        message: report.message.clone(),
        detail: detail(&plan, &report, &observed),
        hold_until,
        notified,
    };
    let recorded = match store.record(&rec).await {
        Ok(r) => {
            report.record = match r {
                Recorded::Stored => format!("recorded in {}", store.describe()),
                Recorded::Spooled => format!(
                    "MySQL unreachable: record spooled to {} for the next run",
                    config.state_file.display()
                ),
            };
            r
        }
        Err(e) => {
            warn!("the run record was lost: {e}");
            report.record = format!("NOT recorded: {e}");
            Recorded::Spooled
        }
    };
    store.close().await;
    let done = completion(kind, &plan, outcome, recorded);
    report.exit_code = crate::error::exit_code(&Ok(done));
    print_report(&report, output)?;
    Ok(done)
}

fn completion(kind: CommandKind, plan: &Plan, outcome: Outcome, recorded: Recorded) -> Completion {
    if kind == CommandKind::Upgrade && plan.refused {
        Completion::Refused
    } else if matches!(outcome, Outcome::Error | Outcome::Partial) || recorded == Recorded::Spooled
    {
        Completion::Failed
    } else {
        Completion::Success
    }
}

fn print_report(report: &RunReport, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Table => print!("{}", output::run_table(report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(())
}

/// Sends every notice not already sent within `notify_repeat` (concurrently).
/// A failed notification is logged and reported, never fails the run.
async fn send_notices(
    config: &Config,
    notices: &[Notice],
    history: Option<&[RunRecord]>,
    now: Timestamp,
) -> Vec<NoticeReport> {
    let feishu = config
        .feishu
        .as_ref()
        .map(|f| Feishu::new(f, &config.policy.cluster, config.timeout));
    let sends = notices.iter().map(|n| {
        let key = n.dedupe_key();
        let suppressed = match (&key, history) {
            (Some(k), Some(h)) => notify::suppressed(k, h, now, config.policy.notify_repeat),
            _ => false,
        };
        let feishu = feishu.as_ref();
        async move {
            let status = if suppressed {
                "suppressed".to_string()
            } else if let Some(f) = feishu {
                match f.send(n).await {
                    Ok(()) => "sent".to_string(),
                    Err(e) => {
                        warn!("notification failed: {e}");
                        format!("failed: {e}")
                    }
                }
            } else {
                "not configured".to_string()
            };
            NoticeReport {
                kind: output::notice_kind(n).into(),
                key,
                status,
            }
        }
    });
    join_all(sends).await
}

/// The record's `detail` column: what was seen and done, for the audit.
fn detail(
    plan: &Plan,
    report: &RunReport,
    observed: &Result<Observed, String>,
) -> serde_json::Value {
    json!({
        "current": plan.current,
        "prerequisites": match observed {
            Ok(o) => json!(o),
            Err(e) => json!({ "error": e }),
        },
        "changes": report.changes,
        "above_tier": plan.above,
        "blocked": plan.blocked,
        "held_by": plan.held_by,
        "hold_until": report.hold_until,
        "errors": report.errors,
        "notices": report.notices,
    })
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

/// `status`: everything at once; a failing source is shown in place.
async fn status(config: &Config, output: Output) -> anyhow::Result<Completion> {
    let now = Timestamp::now();
    let users_source = Users::new(config, None)?;
    let limit = config.timeout * 2;
    let (users, (_, reads), observed, (store, runs, last_upgrade)) = tokio::join!(
        users_source.read_within(limit),
        read_hpas(config),
        read_prereqs(config),
        async {
            let store = store::open_read_only(
                config.mysql.as_ref(),
                &config.state_file,
                &config.policy.cluster,
                config.timeout,
            )
            .await;
            let (runs, last) = tokio::join!(store.latest(10), store.last_upgrade());
            (
                store,
                runs.map_err(|e| e.to_string()),
                last.map_err(|e| e.to_string()),
            )
        },
    );
    let (hpas, unreadable) = split_reads(&config.policy.services, reads);
    let allowance = observed
        .as_ref()
        .ok()
        .map(|o| prereq::evaluate(o, &config.policy.tiers));
    let report = StatusReport::build(output::StatusInputs {
        now,
        config,
        source: users_source.describe(),
        users,
        hpas: &hpas,
        unreadable: &unreadable,
        observed: &observed,
        highest_allowed: allowance.as_ref().and_then(prereq::highest_allowed),
        runs,
        last_upgrade,
        store: store.describe(),
    });
    store.close().await;
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
