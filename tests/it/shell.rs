//! The shell's own policies (`app::control`) over in-memory fakes of its
//! five ports: what a run does when it loses the lock, in a dry run, when a
//! patch fails or hangs, when its record is spooled, when the metric source
//! fails, and how an `upgrade --hold` carries into later checks. No network:
//! the adapters keep their wire tests against the stand-ins. The fakes keep
//! the ports' contracts — the store's history window, holds and idempotent
//! records (checked against the real file store below), read-only opens; the
//! cluster's merge patch — so the shell meets what the real adapters do.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hpa_tier::app::{self, Adapters, Mode, Request};
use hpa_tier::budget::{Budget, Stopped};
use hpa_tier::cli::Output;
use hpa_tier::cluster::{Cluster, ClusterError};
use hpa_tier::error::exit_code;
use hpa_tier::metrics::Publisher;
use hpa_tier::notify::{Notifier, NotifyError};
use hpa_tier::prereq::{PrereqError, Prerequisites};
use hpa_tier::source::{MetricError, MetricSource};
use hpa_tier::store::file::{FileStore, Role};
use hpa_tier::store::{OpenStore, Recorded, RunStore, StoreError};
use hpa_tier_core::conclude::Completion;
use hpa_tier_core::hpa::{Hpa, HpaPatch, HpaRef};
use hpa_tier_core::notice::Notice;
use hpa_tier_core::policy::Policy;
use hpa_tier_core::prereq::{Observed, RdsMember, RdsObserved, RedisKind, RedisObserved};
use hpa_tier_core::record::{CommandKind, Outcome, RunRecord};
use hpa_tier_core::tiers::fixtures::table;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::support::tempdir;

const CLUSTER: &str = "prod-eks";
/// `timeout_seconds`: with it the run's deadline is 7 calls + 5 s = 75 s.
const PER_CALL: Duration = Duration::from_secs(10);
const SPOOL: &str = "/var/lib/hpa-tier/runs.jsonl";

/// The built-in table over the six services of `Hpa::test`, a 30-minute
/// scale-down window, notices repeated at most hourly.
fn policy() -> Policy {
    Policy {
        cluster: CLUSTER.into(),
        ..Policy::test()
    }
}

/// `service`'s minReplicas in tier `capacity` of the built-in table.
fn tier_min(service: &str, capacity: u32) -> u32 {
    table()
        .get(capacity)
        .and_then(|t| t.replicas_of(service))
        .map(|r| r.min)
        .unwrap()
}

// ---------------------------------------------------------------------------
// the fakes

/// The metric source: a number of users, or a failure, as set; `None`
/// never answers.
struct FakeUsers(Mutex<Option<Result<u32, MetricError>>>);

impl FakeUsers {
    fn online(n: u32) -> Self {
        FakeUsers(Mutex::new(Some(Ok(n))))
    }
    fn failing(e: MetricError) -> Self {
        FakeUsers(Mutex::new(Some(Err(e))))
    }
    fn hanging() -> Self {
        FakeUsers(Mutex::new(None))
    }
    fn set(&self, users: Result<u32, MetricError>) {
        *self.0.lock().unwrap() = Some(users);
    }
}

impl MetricSource for FakeUsers {
    async fn online_users(&self) -> Result<u32, MetricError> {
        let answer = self.0.lock().unwrap().clone();
        match answer {
            Some(a) => a,
            None => std::future::pending().await,
        }
    }
    fn describe(&self) -> String {
        "fake users".into()
    }
}

/// The managed HPAs. A patch does what the API server's merge patch does
/// (minReplicas, maxReplicas when named, the capacity annotation), unless
/// its HPA is set to fail or to hang.
struct FakeCluster(Mutex<ClusterState>);

struct ClusterState {
    hpas: Vec<Hpa>,
    failing: BTreeMap<String, ClusterError>,
    hanging: BTreeSet<String>,
    /// Every patch tried, in order.
    tried: Vec<HpaPatch>,
}

impl FakeCluster {
    /// Every service exactly at tier `capacity`, annotated, max 10 or min.
    fn at_tier(capacity: u32) -> Self {
        let hpas = table()
            .services()
            .iter()
            .map(|s| {
                let min = tier_min(s, capacity);
                Hpa::test(s).min(min).max(min.max(10)).annotated(capacity)
            })
            .collect();
        FakeCluster(Mutex::new(ClusterState {
            hpas,
            failing: BTreeMap::new(),
            hanging: BTreeSet::new(),
            tried: vec![],
        }))
    }

    /// Patches of `service`'s HPA are refused, as RBAC refuses them.
    fn failing(self, service: &str) -> Self {
        let error = ClusterError::Forbidden(format!(
            "horizontalpodautoscalers.autoscaling \"{service}\" is forbidden: User \
             \"system:serviceaccount:ops:hpa-tier\" cannot patch resource \
             \"horizontalpodautoscalers\" in API group \"autoscaling\" in the namespace \"prod\""
        ));
        self.0.lock().unwrap().failing.insert(service.into(), error);
        self
    }

    /// Patches of `service`'s HPA never answer.
    fn hanging(self, service: &str) -> Self {
        self.0.lock().unwrap().hanging.insert(service.into());
        self
    }

    /// `service`'s HPA takes patches again (the RBAC was fixed).
    fn recover(&self, service: &str) {
        let mut s = self.0.lock().unwrap();
        s.failing.remove(service);
        s.hanging.remove(service);
    }

    fn hpa(&self, service: &str) -> Hpa {
        let s = self.0.lock().unwrap();
        s.hpas
            .iter()
            .find(|h| h.id.service == service)
            .cloned()
            .unwrap()
    }

    /// (min, max, annotation) of `service`'s HPA.
    fn values(&self, service: &str) -> (u32, u32, Option<String>) {
        let h = self.hpa(service);
        (h.min, h.max, h.capacity_annotation)
    }

    fn tried(&self) -> Vec<HpaPatch> {
        self.0.lock().unwrap().tried.clone()
    }
}

impl Cluster for FakeCluster {
    async fn read(&self, refs: &[HpaRef]) -> Vec<Result<Hpa, ClusterError>> {
        let s = self.0.lock().unwrap();
        refs.iter()
            .map(|r| {
                s.hpas
                    .iter()
                    .find(|h| h.id == *r)
                    .cloned()
                    .ok_or_else(|| ClusterError::NotFound(r.to_string()))
            })
            .collect()
    }

    async fn apply_one(&self, patch: &HpaPatch) -> Result<Hpa, ClusterError> {
        let answer = {
            let mut s = self.0.lock().unwrap();
            s.tried.push(patch.clone());
            let service = &patch.id.service;
            if s.hanging.contains(service) {
                None
            } else if let Some(e) = s.failing.get(service) {
                Some(Err(e.clone()))
            } else {
                Some(match s.hpas.iter_mut().find(|h| h.id == patch.id) {
                    None => Err(ClusterError::NotFound(patch.id.to_string())),
                    Some(h) => {
                        h.min = patch.min;
                        h.max = patch.max.unwrap_or(h.max);
                        h.capacity_annotation = Some(patch.capacity.to_string());
                        Ok(h.clone())
                    }
                })
            }
        };
        match answer {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }
}

/// What AWS reports.
struct FakeAws(Result<Observed, PrereqError>);

impl FakeAws {
    /// Aurora and Redis big enough for the top tier.
    fn sized_for_every_tier() -> Self {
        FakeAws(Ok(Observed {
            region: "us-east-2".into(),
            rds: Some(RdsObserved {
                cluster: "prod-aurora".into(),
                members: ["prod-aurora-1", "prod-aurora-2"]
                    .iter()
                    .enumerate()
                    .map(|(i, id)| RdsMember {
                        id: id.to_string(),
                        writer: i == 0,
                        class: "db.r5.12xlarge".into(),
                    })
                    .collect(),
            }),
            redis: Some(RedisObserved {
                name: "prod-redis".into(),
                kind: RedisKind::ReplicationGroup,
                node_type: "cache.c7gn.xlarge".into(),
            }),
        }))
    }
}

impl Prerequisites for FakeAws {
    async fn observe(&self) -> Result<Observed, PrereqError> {
        self.0.clone()
    }
}

/// The run store, in memory. Opened like the real one: `open(false)` reads
/// and refuses to write; records are idempotent on `run_id`; history, holds
/// and the latest runs are answered the way the real stores answer them
/// (see `the_fake_store_answers_like_the_file_store`). "Unreachable" is the
/// real store's spool backend: reads fail, records go to the spool.
#[derive(Clone)]
struct FakeStore(Arc<Mutex<StoreState>>);

#[derive(Default)]
struct StoreState {
    records: Vec<RunRecord>,
    spooled: Vec<RunRecord>,
    unreachable: bool,
    /// Locks another run holds.
    others: BTreeSet<String>,
    /// The lock this run holds, from `try_lock` to `close`.
    held: Option<String>,
    /// Every lock this run took.
    taken: Vec<String>,
    /// The `writes` argument of every open.
    opens: Vec<bool>,
}

impl FakeStore {
    fn new() -> Self {
        FakeStore(Arc::default())
    }

    /// Another run holds this cluster's lock.
    fn locked_by_another(self) -> Self {
        let lock = format!("hpa-tier:{CLUSTER}");
        self.0.lock().unwrap().others.insert(lock);
        self
    }

    /// A record of a past run, as if the store already held it.
    fn holding(self, record: RunRecord) -> Self {
        self.0.lock().unwrap().records.push(record);
        self
    }

    /// MySQL is configured but unreachable: records are spooled.
    fn unreachable() -> Self {
        let s = FakeStore::new();
        s.0.lock().unwrap().unreachable = true;
        s
    }

    fn records(&self) -> Vec<RunRecord> {
        self.0.lock().unwrap().records.clone()
    }
    fn spooled(&self) -> Vec<RunRecord> {
        self.0.lock().unwrap().spooled.clone()
    }
    fn opens(&self) -> Vec<bool> {
        self.0.lock().unwrap().opens.clone()
    }
    fn taken(&self) -> Vec<String> {
        self.0.lock().unwrap().taken.clone()
    }
    fn held(&self) -> Option<String> {
        self.0.lock().unwrap().held.clone()
    }
}

/// One run's use of the [`FakeStore`].
struct FakeSession {
    state: Arc<Mutex<StoreState>>,
    writes: bool,
}

impl OpenStore for FakeStore {
    type Store = FakeSession;
    async fn open(&self, writes: bool) -> FakeSession {
        self.0.lock().unwrap().opens.push(writes);
        FakeSession {
            state: self.0.clone(),
            writes,
        }
    }
}

impl FakeSession {
    fn readable(&self) -> Result<std::sync::MutexGuard<'_, StoreState>, StoreError> {
        let s = self.state.lock().unwrap();
        if s.unreachable {
            return Err(StoreError::Unreachable(
                "MySQL db.internal:3306/hpa_tier is unreachable: connection refused".into(),
            ));
        }
        Ok(s)
    }
}

impl RunStore for FakeSession {
    async fn try_lock(&self, name: &str) -> Result<bool, StoreError> {
        if !self.writes {
            return Ok(true);
        }
        let mut s = self.state.lock().unwrap();
        if s.others.contains(name) {
            return Ok(false);
        }
        s.held = Some(name.into());
        s.taken.push(name.into());
        Ok(true)
    }

    async fn history(&self, since: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        let mut records = self.readable()?.records.clone();
        records.sort_by_key(|r| r.started_at);
        let first_in = records.partition_point(|r| r.started_at < since);
        Ok(records.split_off(first_in.saturating_sub(1)))
    }

    async fn samples(&self, since: Timestamp) -> Result<Vec<(Timestamp, u32)>, StoreError> {
        let mut records = self.readable()?.records.clone();
        records.sort_by_key(|r| r.started_at);
        Ok(records
            .into_iter()
            .filter(|r| r.command == CommandKind::Check && r.started_at >= since)
            .filter_map(|r| Some((r.started_at, r.users?)))
            .collect())
    }

    async fn last_upgrade(&self) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .readable()?
            .records
            .iter()
            .filter(|r| r.is_effective_upgrade())
            .cloned()
            .reduce(|a, b| if b.started_at >= a.started_at { b } else { a }))
    }

    async fn latest(&self, n: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut records = self.readable()?.records.clone();
        records.sort_by_key(|r| r.started_at);
        records.reverse();
        records.truncate(n);
        Ok(records)
    }

    async fn record(&self, record: &RunRecord) -> Result<Recorded, StoreError> {
        if !self.writes {
            return Err(StoreError::Io(
                "the store is open read-only (--dry-run): nothing is recorded".into(),
            ));
        }
        let mut s = self.state.lock().unwrap();
        let (into, answer) = if s.unreachable {
            (&mut s.spooled, Recorded::Spooled)
        } else {
            (&mut s.records, Recorded::Stored)
        };
        if !into.iter().any(|r| r.run_id == record.run_id) {
            into.push(record.clone());
        }
        Ok(answer)
    }

    async fn close(self) {
        self.state.lock().unwrap().held = None;
    }

    fn describe(&self) -> String {
        if self.state.lock().unwrap().unreachable {
            format!(
                "spool {SPOOL} (MySQL db.internal:3306/hpa_tier unreachable: connection refused)"
            )
        } else {
            "MySQL db.internal:3306/hpa_tier".into()
        }
    }

    fn spool_location(&self) -> String {
        SPOOL.into()
    }
}

/// Feishu: takes every notice, or rejects every one; keeps what it was sent.
struct FakeFeishu {
    rejects: bool,
    tried: Mutex<Vec<Notice>>,
}

impl FakeFeishu {
    fn accepting() -> Self {
        FakeFeishu {
            rejects: false,
            tried: Mutex::default(),
        }
    }
    fn rejecting() -> Self {
        FakeFeishu {
            rejects: true,
            ..FakeFeishu::accepting()
        }
    }
    /// Every notice it was asked to send (delivered unless it rejects).
    fn tried(&self) -> Vec<Notice> {
        self.tried.lock().unwrap().clone()
    }
}

impl Notifier for FakeFeishu {
    async fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.tried.lock().unwrap().push(notice.clone());
        if self.rejects {
            return Err(NotifyError::Rejected(
                "open.feishu.cn answered code 19021: sign match fail".into(),
            ));
        }
        Ok(())
    }
}

type Fakes = Adapters<FakeUsers, FakeCluster, FakeAws, FakeStore, FakeFeishu>;

fn fakes(users: FakeUsers, cluster: FakeCluster, store: FakeStore) -> Fakes {
    Adapters {
        users,
        cluster,
        prereqs: FakeAws::sized_for_every_tier(),
        store,
        notifier: Some(FakeFeishu::accepting()),
        metrics: Publisher::default(),
    }
}

/// What Feishu was asked to send.
fn sent(a: &Fakes) -> Vec<Notice> {
    a.notifier
        .as_ref()
        .map(FakeFeishu::tried)
        .unwrap_or_default()
}

const LIVE: Mode = Mode {
    dry_run: false,
    output: Output::Table,
};
const DRY_RUN: Mode = Mode {
    dry_run: true,
    output: Output::Table,
};

fn upgrade(capacity: u32, hold: Option<SignedDuration>) -> Request {
    Request::Upgrade {
        capacity,
        force: false,
        hold,
    }
}

/// One pass of `check` or `upgrade`, with the limit `app::run` puts
/// around it: a run that outlives it fails the test instead of hanging.
async fn control(a: &Fakes, request: Request, mode: Mode) -> anyhow::Result<Completion> {
    let budget = Budget::start(PER_CALL);
    let limit = budget.total(tokio::time::Instant::now());
    tokio::time::timeout(limit, app::control(a, &policy(), request, mode, budget))
        .await
        .expect("the run outlived its deadline")
}

/// `service`'s entry in a record's `detail.changes`.
fn change<'a>(r: &'a RunRecord, service: &str) -> &'a Value {
    r.detail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == service)
        .unwrap_or_else(|| panic!("no change of {service} in {:#}", r.detail))
}

// ---------------------------------------------------------------------------
// stdout

const CHILD: &str = "HPA_TIER_TEST_SHELL_CHILD";
const BEGIN: &str = "\n<<<<< control prints\n";
const END: &str = "\n>>>>> control printed\n";

/// What a scenario printed. `control` prints its report with `print!`,
/// which libtest captures out of a test's reach, so a test that reads
/// stdout runs again as a child process of this test binary (`--exact
/// shell::TEST --nocapture`), whose stdout is a pipe; the child fences the
/// scenario's output with markers, away from libtest's own lines.
///
/// In the child: runs `scenario` (its assertions too) and returns `None`.
/// In the parent: returns what the child's scenario printed, and fails if
/// the child failed.
fn stdout_of(test: &str, scenario: impl FnOnce()) -> Option<String> {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        print!("{BEGIN}");
        scenario();
        print!("{END}");
        std::io::stdout().flush().unwrap();
        return None;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("shell::{test}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the scenario failed in its child process:\n{stdout}\n{stderr}"
    );
    let printed = stdout
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(printed, _)| printed.to_string());
    Some(printed.unwrap_or_else(|| panic!("the child did not run shell::{test}:\n{stdout}")))
}

/// Runs `fut` on the one-thread runtime `app::run` uses, its clock paused
/// (it jumps ahead whenever every task waits on a timer).
fn paused<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(fut)
}

// ---------------------------------------------------------------------------
// the lock

#[test]
fn a_check_that_loses_the_lock_does_nothing_and_succeeds() {
    let Some(stdout) = stdout_of(
        "a_check_that_loses_the_lock_does_nothing_and_succeeds",
        || {
            paused(async {
                // 1500 users at tier 600: the run would scale up if it could.
                let a = fakes(
                    FakeUsers::online(1500),
                    FakeCluster::at_tier(600),
                    FakeStore::new().locked_by_another(),
                );
                let mode = Mode {
                    output: Output::Json,
                    ..LIVE
                };
                let done = control(&a, Request::Check, mode).await;
                assert_eq!(exit_code(&done), 0, "{done:?}");
                assert_eq!(a.cluster.tried(), vec![], "nothing may be patched");
                assert_eq!(a.cluster.values("passport"), (2, 10, Some("600".into())));
                assert_eq!(a.store.records(), vec![], "nothing may be recorded");
                assert_eq!(sent(&a), vec![], "nothing may be sent");
            })
        },
    ) else {
        return;
    };
    // Scripts reading `-o json` still get their one document.
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["skipped"], true, "{doc:#}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(
        doc["message"],
        "another hpa-tier run holds the lock for cluster prod-eks; this check did nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_held_while_nothing_is_recorded_for_15_minutes_is_an_alarm() {
    // The last run recorded was 20 minutes ago (3 × check_time is 15).
    let last = RunRecord::check_needing(600, 600, Timestamp::now(), 20);
    let a = fakes(
        FakeUsers::online(100),
        FakeCluster::at_tier(600),
        FakeStore::new().locked_by_another().holding(last),
    );
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert_eq!(a.cluster.tried(), vec![], "nothing may be patched");
    let notices = sent(&a);
    let [Notice::Error { what, message }] = &notices[..] else {
        panic!("{notices:?}")
    };
    assert_eq!(what, "run lock");
    assert!(message.contains("nobody is acting"), "{message}");
    let records = a.store.records();
    let alarm = records.last().unwrap();
    assert_eq!(alarm.outcome, Outcome::Error);
    assert_eq!(alarm.detail["lock_stuck"], true, "{:#}", alarm.detail);

    // The next run finds it still stuck: exit 1 again, the notice not repeated.
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert_eq!(sent(&a).len(), 1, "rate-limited by notify_repeat");
    assert_eq!(a.store.records().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_that_loses_the_lock_fails_and_does_nothing() {
    let a = fakes(
        FakeUsers::online(100),
        FakeCluster::at_tier(600),
        FakeStore::new().locked_by_another(),
    );
    let done = control(&a, upgrade(2000, None), LIVE).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    let e = format!("{:#}", done.unwrap_err());
    assert!(e.contains("holds the lock for cluster prod-eks"), "{e}");
    assert!(e.contains("this upgrade did nothing"), "{e}");
    assert_eq!(a.cluster.tried(), vec![]);
    assert_eq!(a.store.records(), vec![]);
    assert_eq!(sent(&a), vec![]);
}

// ---------------------------------------------------------------------------
// dry run

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let Some(stdout) = stdout_of("a_dry_run_prints_the_plan_and_writes_nothing", || {
        paused(async {
            // Another run holding the lock does not stop a read-only pass.
            let a = fakes(
                FakeUsers::online(1500),
                FakeCluster::at_tier(600),
                FakeStore::new().locked_by_another(),
            );
            let done = control(&a, Request::Check, DRY_RUN).await;
            assert_eq!(exit_code(&done), 0, "the planned scale-up succeeds");
            assert_eq!(a.store.opens(), vec![false], "opened read-only");
            assert_eq!(a.store.taken(), Vec::<String>::new(), "no lock taken");
            assert_eq!(a.cluster.tried(), vec![]);
            assert_eq!(a.cluster.values("passport"), (2, 10, Some("600".into())));
            assert_eq!(a.store.records(), vec![]);
            assert_eq!(sent(&a), vec![]);
        })
    }) else {
        return;
    };
    assert!(
        stdout.starts_with(
            "DRY RUN check (cluster prod-eks): 1500 users need tier 2000: scaled up 600 → 2000\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("prod/passport"), "{stdout}");
    assert!(stdout.contains("min 2 → 12, max 10 → 12"), "{stdout}");
    assert_eq!(stdout.matches("planned").count(), 6, "{stdout}");
    assert!(
        stdout.contains("outcome: applied — dry run: nothing was changed, recorded or sent"),
        "{stdout}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_that_cannot_read_the_users_exits_1_and_sends_nothing() {
    let a = fakes(
        FakeUsers::failing(MetricError::Server("GA answered 503 UNAVAILABLE".into())),
        FakeCluster::at_tier(600),
        FakeStore::new(),
    );
    let done = control(&a, Request::Check, DRY_RUN).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert_eq!(a.store.opens(), vec![false]);
    assert_eq!(a.store.records(), vec![]);
    assert_eq!(sent(&a), vec![], "the error notice is not sent");
}

// ---------------------------------------------------------------------------
// applying

#[test]
fn one_failed_patch_is_a_partial_run_the_next_run_converges() {
    let Some(stdout) = stdout_of(
        "one_failed_patch_is_a_partial_run_the_next_run_converges",
        || paused(partial_then_converged()),
    ) else {
        return;
    };
    // The first run's report names the failed HPA and the outcome.
    assert!(stdout.contains("; 1 of 6 HPA patches failed\n"), "{stdout}");
    let web = stdout.lines().find(|l| l.contains("prod/web")).unwrap();
    assert!(
        web.contains("failed: horizontalpodautoscalers.autoscaling \"web\" is forbidden"),
        "{web}"
    );
    assert!(
        stdout.contains("outcome: partial — recorded in MySQL db.internal:3306/hpa_tier"),
        "{stdout}"
    );
}

async fn partial_then_converged() {
    let a = fakes(
        FakeUsers::online(1500),
        FakeCluster::at_tier(600).failing("web"),
        FakeStore::new(),
    );
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    let records = a.store.records();
    let [r] = &records[..] else {
        panic!("{records:?}")
    };
    assert_eq!(r.outcome, Outcome::Partial);
    assert_eq!((r.from_capacity, r.to_capacity), (Some(600), Some(2000)));
    assert!(
        change(r, "web")["result"]
            .as_str()
            .unwrap()
            .starts_with("failed: horizontalpodautoscalers.autoscaling \"web\" is forbidden"),
        "{:#}",
        r.detail
    );
    assert_eq!(change(r, "hermes")["result"], "applied");
    assert_eq!(a.cluster.values("hermes"), (8, 10, Some("2000".into())));
    assert_eq!(a.cluster.values("web"), (2, 10, Some("600".into())));
    let notices = sent(&a);
    let [
        Notice::TierChanged {
            from: 600,
            to: 2000,
            failed,
            ..
        },
    ] = &notices[..]
    else {
        panic!("{notices:?}")
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].starts_with("prod/web: "), "{failed:?}");
    assert_eq!(a.store.taken(), vec!["hpa-tier:prod-eks".to_string()]);
    assert_eq!(a.store.held(), None, "the lock is released");

    // The RBAC is fixed; the next run brings web up to the tier, alone.
    a.cluster.recover("web");
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 0, "{done:?}");
    let records = a.store.records();
    let r = records.last().unwrap();
    assert_eq!(r.outcome, Outcome::Applied);
    assert_eq!((r.from_capacity, r.to_capacity), (Some(2000), Some(2000)));
    assert_eq!(a.cluster.values("web"), (6, 10, Some("2000".into())));
    let second: Vec<_> = a.cluster.tried().into_iter().skip(6).collect();
    assert_eq!(second.len(), 1, "only web is patched again: {second:?}");
    assert_eq!(sent(&a).len(), 1, "no second tier change announced");
}

#[test]
fn a_spooled_record_fails_the_run_though_everything_applied() {
    let Some(stdout) = stdout_of(
        "a_spooled_record_fails_the_run_though_everything_applied",
        || {
            paused(async {
                let a = fakes(
                    FakeUsers::online(1500),
                    FakeCluster::at_tier(600),
                    FakeStore::unreachable(),
                );
                let mode = Mode {
                    output: Output::Json,
                    ..LIVE
                };
                let done = control(&a, Request::Check, mode).await;
                assert_eq!(exit_code(&done), 1, "{done:?}");
                for s in table().services() {
                    let min = tier_min(s, 2000);
                    assert_eq!(a.cluster.values(s).0, min, "{s}");
                }
                let spooled = a.store.spooled();
                let [r] = &spooled[..] else {
                    panic!("{spooled:?}")
                };
                assert_eq!((r.outcome, r.to_capacity), (Outcome::Applied, Some(2000)));
                assert_eq!(a.store.records(), vec![]);
            })
        },
    ) else {
        return;
    };
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outcome"], "applied", "{report:#}");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(
        report["record"],
        "MySQL unreachable: record spooled to /var/lib/hpa-tier/runs.jsonl for the next run"
    );
}

/// 1500 users at tier 600, hermes' patch never answers: what the run knows
/// when the apply phase's budget (3 calls) runs out.
async fn hanging_patch() -> (Fakes, anyhow::Result<Completion>, Duration) {
    let a = fakes(
        FakeUsers::online(1500),
        FakeCluster::at_tier(600).hanging("hermes"),
        FakeStore::new(),
    );
    let start = tokio::time::Instant::now();
    let done = control(&a, Request::Check, LIVE).await;
    (a, done, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_patch_that_hangs_ends_the_apply_phase_and_the_run_records_what_it_confirmed() {
    let (a, _, took) = hanging_patch().await;
    // The apply phase may take 3 calls (30 s); the run's deadline is 75 s.
    assert!(
        took >= 3 * PER_CALL && took < Duration::from_secs(75),
        "the run took {took:?}"
    );
    let records = a.store.records();
    let [r] = &records[..] else {
        panic!("no record of the run: {records:?}")
    };
    assert_eq!(
        change(r, "hermes")["result"],
        "not confirmed: no answer before the run had to stop",
        "{:#}",
        r.detail
    );
    for s in ["istio-ingress", "gateway", "web", "passport", "project"] {
        assert_eq!(change(r, s)["result"], "applied", "{s}");
        assert_eq!(a.cluster.values(s).0, tier_min(s, 2000), "{s}");
    }
    assert_eq!(r.to_capacity, Some(2000));
    assert_eq!(a.store.held(), None, "the lock is released");
}

/// SPEC §12: a run stopped by its deadline records `partial` with what it
/// patched. A patch with no answer is not confirmed — it may or may not have
/// landed — so the HPA is not known to be at its tier, exactly as when its
/// patch failed.
#[tokio::test(start_paused = true)]
async fn a_patch_that_hangs_makes_the_run_partial_and_exit_1() {
    let (a, done, _) = hanging_patch().await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    let records = a.store.records();
    let [r] = &records[..] else {
        panic!("{records:?}")
    };
    assert_eq!(r.outcome, Outcome::Partial, "{}", r.message);
    assert!(r.message.contains("1 of 6"), "{}", r.message);
    let notices = sent(&a);
    let [Notice::TierChanged { failed, .. }] = &notices[..] else {
        panic!("{notices:?}")
    };
    assert!(
        failed.len() == 1 && failed[0].starts_with("prod/hermes: "),
        "{failed:?}"
    );
}

/// A run of `a` that gets SIGTERM one second in: what it recorded, how it
/// ended and how long it took after the signal.
async fn terminated(a: &Fakes) -> (anyhow::Result<Completion>, Duration) {
    let budget = Budget::start(PER_CALL);
    let signal = budget.clone();
    let at = tokio::time::Instant::now() + Duration::from_secs(1);
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        signal.stop(Stopped::Signal("SIGTERM"));
    });
    let done = app::control(a, &policy(), Request::Check, LIVE, budget).await;
    (done, tokio::time::Instant::now() - at)
}

#[tokio::test(start_paused = true)]
async fn sigterm_while_the_users_are_read_records_that_nothing_was_done_and_exits_1() {
    let a = fakes(
        FakeUsers::hanging(),
        FakeCluster::at_tier(600),
        FakeStore::new(),
    );
    let (done, after) = terminated(&a).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert!(
        after < Duration::from_secs(5),
        "exited {after:?} after the signal"
    );
    assert_eq!(a.cluster.tried(), vec![]);
    let records = a.store.records();
    let [r] = &records[..] else {
        panic!("{records:?}")
    };
    assert_eq!((r.outcome, r.users), (Outcome::Error, None));
    assert!(
        r.message
            .contains("stopped before it could decide: SIGTERM arrived"),
        "{}",
        r.message
    );
}

#[tokio::test(start_paused = true)]
async fn sigterm_while_patching_records_what_was_confirmed_as_partial() {
    let a = fakes(
        FakeUsers::online(1500),
        FakeCluster::at_tier(600).hanging("hermes"),
        FakeStore::new(),
    );
    let (done, after) = terminated(&a).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert!(
        after < Duration::from_secs(5),
        "exited {after:?} after the signal"
    );
    let records = a.store.records();
    let [r] = &records[..] else {
        panic!("{records:?}")
    };
    assert_eq!((r.outcome, r.to_capacity), (Outcome::Partial, Some(2000)));
    assert!(
        r.message.contains("stopped: SIGTERM arrived"),
        "{}",
        r.message
    );
    assert_eq!(
        change(r, "hermes")["result"],
        "not confirmed: no answer before the run had to stop"
    );
    assert_eq!(change(r, "web")["result"], "applied");
    assert_eq!(a.store.held(), None, "the lock is released");
}

// ---------------------------------------------------------------------------
// notices

#[tokio::test(start_paused = true)]
async fn a_metric_failure_changes_nothing_and_its_notice_is_not_repeated_within_the_hour() {
    let error = MetricError::Server("GA answered 503 UNAVAILABLE: the service is down".into());
    let a = fakes(
        FakeUsers::failing(error.clone()),
        FakeCluster::at_tier(600),
        FakeStore::new(),
    );
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert_eq!(a.cluster.tried(), vec![]);
    let records = a.store.records();
    let [r] = &records[..] else {
        panic!("{records:?}")
    };
    assert_eq!(r.outcome, Outcome::Error);
    assert_eq!(
        (r.users, r.from_capacity, r.to_capacity),
        (None, Some(600), Some(600))
    );
    assert!(r.message.contains("GA answered 503"), "{}", r.message);
    let notices = sent(&a);
    let [notice @ Notice::Error { what, message }] = &notices[..] else {
        panic!("{notices:?}")
    };
    assert_eq!(what, "metric source");
    assert!(message.contains("GA answered 503"), "{message}");
    assert_eq!(r.notified, vec![notice.dedupe_key().unwrap()]);

    // The next run, well within notify_repeat: the source still fails.
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 1, "{done:?}");
    assert_eq!(sent(&a).len(), 1, "the repeat is suppressed");
    let records = a.store.records();
    let again = records.last().unwrap();
    assert_eq!(again.outcome, Outcome::Error);
    assert_eq!(again.detail["notices"][0]["status"], "suppressed");
    assert_eq!(again.notified, Vec::<String>::new());

    // A different failure is news.
    a.users.set(Err(MetricError::Denied(
        "403 PERMISSION_DENIED: the account may not read properties/123".into(),
    )));
    control(&a, Request::Check, LIVE).await.unwrap();
    assert_eq!(sent(&a).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_notice_feishu_rejected_never_fails_the_run_and_is_tried_again() {
    let mut a = fakes(
        FakeUsers::online(1500),
        FakeCluster::at_tier(600),
        FakeStore::new(),
    );
    a.notifier = Some(FakeFeishu::rejecting());
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(
        exit_code(&done),
        0,
        "the scale-up itself succeeded: {done:?}"
    );
    let r = &a.store.records()[0];
    assert_eq!(r.outcome, Outcome::Applied);
    assert_eq!(
        r.detail["notices"][0]["status"],
        "failed: open.feishu.cn answered code 19021: sign match fail"
    );

    // An error notice Feishu did not take is not marked delivered, so the
    // next run sends it again instead of suppressing it.
    a.users.set(Err(MetricError::Timeout(
        "GA did not answer within 10s".into(),
    )));
    control(&a, Request::Check, LIVE).await.unwrap();
    control(&a, Request::Check, LIVE).await.unwrap();
    let errors = sent(&a)
        .into_iter()
        .filter(|n| matches!(n, Notice::Error { .. }))
        .count();
    assert_eq!(errors, 2);
}

// ---------------------------------------------------------------------------
// holds

#[tokio::test(start_paused = true)]
async fn an_upgrade_hold_keeps_later_checks_at_its_tier() {
    let a = fakes(
        FakeUsers::online(100),
        FakeCluster::at_tier(600),
        FakeStore::new(),
    );
    let two_hours = SignedDuration::from_hours(2);
    let done = control(&a, upgrade(2000, Some(two_hours)), LIVE).await;
    assert_eq!(exit_code(&done), 0, "{done:?}");
    let records = a.store.records();
    let [up] = &records[..] else {
        panic!("{records:?}")
    };
    assert_eq!(
        (up.command, up.outcome, up.users, up.to_capacity),
        (CommandKind::Upgrade, Outcome::Applied, None, Some(2000))
    );
    assert_eq!(up.hold_until, Some(up.started_at + two_hours));

    // 100 users would need tier 600, but the hold keeps 2000.
    let done = control(&a, Request::Check, LIVE).await;
    assert_eq!(exit_code(&done), 0, "{done:?}");
    let records = a.store.records();
    let check = records.last().unwrap();
    assert_eq!(
        (check.outcome, check.needed_capacity, check.to_capacity),
        (Outcome::Held, Some(2000), Some(2000))
    );
    assert_eq!(check.detail["held_by"]["by"], "hold", "{:#}", check.detail);
    assert_eq!(check.detail["held_by"]["capacity"], 2000);
    assert!(
        check.message.contains("held at 2000: hold at 2000 until"),
        "{}",
        check.message
    );
    assert_eq!(a.cluster.tried().len(), 6, "the check patched nothing");
    assert_eq!(a.cluster.values("passport").0, 12);
}

// ---------------------------------------------------------------------------
// the fakes themselves

/// The fake store is only worth testing the shell against if it answers
/// like a real one: the same records, written to the file store, read back
/// the same.
#[tokio::test]
async fn the_fake_store_answers_like_the_file_store() {
    let now = Timestamp::now();
    let mut records: Vec<RunRecord> = [50, 40, 35, 30, 25, 5]
        .iter()
        .map(|m| RunRecord::check_needing(600, 2000, now, *m))
        .collect();
    let mut held = RunRecord::check_needing(2000, 2000, now, 45);
    (held.run_id, held.command, held.outcome) =
        ("upgrade-45".into(), CommandKind::Upgrade, Outcome::Applied);
    held.hold_until = Some(now + SignedDuration::from_hours(1));
    let mut refused = RunRecord::check_needing(3000, 2000, now, 20);
    (refused.run_id, refused.command, refused.outcome) =
        ("upgrade-20".into(), CommandKind::Upgrade, Outcome::Blocked);
    records.insert(2, held);
    records.push(refused);

    let dir = tempdir();
    let file = FileStore::new(
        &dir.path().join("runs.jsonl"),
        CLUSTER,
        PER_CALL,
        Role::Store,
    );
    let fake = FakeStore::new().open(true).await;
    for r in records.iter().chain(&records[..2]) {
        assert_eq!(file.record(r).await.unwrap(), Recorded::Stored);
        assert_eq!(fake.record(r).await.unwrap(), Recorded::Stored);
    }
    let ids = |rs: Vec<RunRecord>| rs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    for mins in [0, 10, 30, 60] {
        let since = now - SignedDuration::from_mins(mins);
        assert_eq!(
            ids(fake.history(since).await.unwrap()),
            ids(file.history(since).await.unwrap()),
            "history since {mins} minutes ago"
        );
    }
    assert_eq!(
        ids(fake
            .history(now - SignedDuration::from_mins(30))
            .await
            .unwrap()),
        [
            "test-35-600",
            "test-30-600",
            "test-25-600",
            "upgrade-20",
            "test-5-600"
        ]
    );
    assert_eq!(
        fake.last_upgrade().await.unwrap().map(|r| r.run_id),
        Some("upgrade-45".into())
    );
    assert_eq!(
        fake.last_upgrade().await.unwrap(),
        file.last_upgrade().await.unwrap()
    );
    assert_eq!(
        ids(fake.latest(3).await.unwrap()),
        ids(file.latest(3).await.unwrap())
    );
    assert_eq!(
        fake.latest(100).await.unwrap().len(),
        records.len(),
        "idempotent on run_id"
    );
}
