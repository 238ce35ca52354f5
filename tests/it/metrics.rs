//! The gauges of SPEC §13, end to end: the built binary (the rigs of
//! `e2e`: Google, Kubernetes and Feishu stand-ins, moto, MariaDB) pushing
//! to the Pushgateway stand-in, which parses every body as strictly as the
//! real one and keeps what it was given per grouping key; the textfile
//! written beside it; and the core's body read back by that same parser.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hpa_tier::metrics::pushgateway::Pushgateway as PushAdapter;
use hpa_tier::store::RunStore;
use hpa_tier_core::metrics::{Gauges, HpaMin, NAMES, OUTCOMES, RunOutcome, SKIPPED};
use hpa_tier_core::record::Outcome;
use hpa_tier_standins::google;
use hpa_tier_standins::pushgateway::exposition;
use hpa_tier_standins::pushgateway::{Fault, Group, MetricType, Pushgateway};
use jiff::{SignedDuration, Timestamp};

use crate::e2e::{Rig, SERVICES, Setup, code, show, tier};
use crate::support::{self, stderr};

/// A rig whose config pushes to a fresh Pushgateway stand-in, plus `extra`.
fn pushing(setup: Setup, extra: &str) -> (Rig, Pushgateway) {
    let rig = Rig::with(setup);
    let pg = Pushgateway::spawn();
    configure(&rig, &pg, extra);
    (rig, pg)
}

fn configure(rig: &Rig, pg: &Pushgateway, extra: &str) {
    rig.set_config(&format!(
        "{}metrics_pushgateway: \"{}\"\n{extra}",
        rig.config_text,
        pg.url()
    ));
}

/// The rig's group: grouping labels `job` and `cluster`, nothing else.
fn group(rig: &Rig, pg: &Pushgateway) -> Group {
    let cluster = rig.cluster();
    pg.group(&[("job", "hpa-tier"), ("cluster", &cluster)])
        .unwrap_or_else(|| panic!("no group for cluster {cluster}: {:?}", pg.groups()))
}

fn value(g: &Group, name: &str) -> Option<f64> {
    g.value(name, &[])
}

/// Seconds since the epoch, now.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Runs `hpa-tier ARGS` against the rig; with the wall-clock window it ran in.
fn timed(rig: &Rig, args: &[&str]) -> (Output, f64, f64, Duration) {
    let (before, clock) = (unix_now(), Instant::now());
    let o = rig.run(args);
    (o, before, unix_now(), clock.elapsed())
}

/// What a run the stand-in holds must show in any case: every outcome
/// series, 1 only for `outcome`; a start inside the run's wall-clock window
/// and a duration no longer than it; the grouping labels on every series.
fn assert_run(g: &Group, outcome: &str, (before, after): (f64, f64)) {
    let ones: Vec<&str> = OUTCOMES
        .iter()
        .copied()
        .filter(|o| g.value("hpa_tier_run_outcome", &[("outcome", o)]) == Some(1.0))
        .collect();
    assert_eq!(ones, [outcome], "{}", g.text());
    for o in OUTCOMES {
        let v = g.value("hpa_tier_run_outcome", &[("outcome", o)]);
        assert!(v.is_some(), "no outcome={o} series:\n{}", g.text());
    }
    let started = value(g, "hpa_tier_last_run_timestamp_seconds").unwrap();
    assert!(
        before - 0.001 <= started && started <= after,
        "started {started} outside [{before}, {after}]"
    );
    let took = value(g, "hpa_tier_run_duration_seconds").unwrap();
    assert!(took > 0.0 && took <= after - before, "took {took}s");
    for f in &g.families {
        assert_eq!(f.kind, MetricType::Gauge, "{}", f.name);
        assert!(NAMES.contains(&f.name.as_str()), "{} is not ours", f.name);
        for m in &f.metrics {
            assert_eq!(m.label("job"), Some("hpa-tier"));
            assert!(m.label("cluster").is_some_and(|c| c.starts_with("e2e-")));
        }
    }
}

/// minReplicas per (namespace, hpa), in `SERVICES` order.
fn hpa_mins(g: &Group) -> Vec<Option<f64>> {
    SERVICES
        .iter()
        .map(|(_, ns, hpa)| {
            g.value(
                "hpa_tier_hpa_min_replicas",
                &[("namespace", ns), ("hpa", hpa)],
            )
        })
        .collect()
}

fn of_tier(capacity: u32) -> Vec<Option<f64>> {
    tier(capacity).iter().map(|m| Some(f64::from(*m))).collect()
}

/// Two days of check records every five minutes at 300 users: enough
/// history for a forecast (by days).
fn seed_two_days(rig: &Rig) {
    let values: Vec<String> = (1..=2 * 288)
        .map(|i| {
            let ago = 5 * i;
            format!(
                "('{}', 'seed-{i}', UTC_TIMESTAMP(3) - INTERVAL {ago} MINUTE, \
                 UTC_TIMESTAMP(3) - INTERVAL {ago} MINUTE, 'check', 300, 600, 600, 600, \
                 'noop', 'seeded', '{{}}', NULL, '[]')",
                rig.cluster()
            )
        })
        .collect();
    rig.sql(&format!(
        "INSERT INTO hpa_tier_runs (cluster, run_id, started_at, finished_at, command, users, \
         needed_capacity, from_capacity, to_capacity, outcome, message, detail, hold_until, \
         notified) VALUES {}",
        values.join(", ")
    ));
}

/// The RFC 3339 instant `minutes` from now, whole seconds.
fn in_minutes(minutes: i64) -> String {
    let t = Timestamp::now() + SignedDuration::from_mins(minutes);
    Timestamp::from_second(t.as_second()).unwrap().to_string()
}

fn warnings(detail: &serde_json::Value) -> Vec<String> {
    detail["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// the gauges of each kind of run

#[test]
fn every_gauge_reaches_the_pushgateway_after_an_applied_a_noop_and_an_error_run() {
    let (rig, pg) = pushing(Setup::default(), "");
    // A first run makes the schema, so there is a table to seed history into.
    rig.google.set_users(300);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    seed_two_days(&rig);
    configure(
        &rig,
        &pg,
        &format!(
            "forecast: {{ mode: advise }}\nschedules:\n  - {{ name: launch, at: \"{}\", duration: 1h, capacity: 2000 }}\n",
            in_minutes(-5)
        ),
    );

    // Applied: 700 users need 1000, the window 2000.
    rig.google.set_users(700);
    let (o, before, after, _) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let row = rig.rows().pop().unwrap();
    assert_eq!((row.outcome.as_str(), row.to), ("applied", Some(2000)));
    assert!(warnings(&row.detail).is_empty(), "{}", row.detail);
    assert_eq!(
        row.detail["forecast"]["status"], "predicted",
        "two days of history make a forecast: {}",
        row.detail["forecast"]
    );
    let forecast =
        rig.sql_u32("SELECT forecast_capacity FROM hpa_tier_runs ORDER BY id DESC LIMIT 1");
    let g = group(&rig, &pg);
    assert_run(&g, "applied", (before, after));
    let names: BTreeSet<&str> = g.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        NAMES.into_iter().collect(),
        "every gauge:\n{}",
        g.text()
    );
    assert_eq!(value(&g, "hpa_tier_users"), Some(700.0));
    assert_eq!(value(&g, "hpa_tier_needed_capacity"), Some(2000.0));
    assert_eq!(value(&g, "hpa_tier_capacity"), Some(2000.0));
    assert_eq!(
        value(&g, "hpa_tier_forecast_capacity"),
        forecast.map(f64::from)
    );
    assert_eq!(value(&g, "hpa_tier_allowed_capacity"), Some(5000.0));
    assert_eq!(value(&g, "hpa_tier_schedule_capacity"), Some(2000.0));
    let applied_at = value(&g, "hpa_tier_last_run_timestamp_seconds").unwrap();
    assert_eq!(
        value(&g, "hpa_tier_last_success_timestamp_seconds"),
        Some(applied_at)
    );
    assert_eq!(hpa_mins(&g), of_tier(2000));
    assert_eq!(rig.mins(), tier(2000));

    // Noop: 1500 users need the tier the HPAs are at (700 would be `held`
    // there by the window).
    rig.google.set_users(1500);
    let (o, before, after, _) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.rows().pop().unwrap().outcome, "noop");
    let g = group(&rig, &pg);
    assert_run(&g, "noop", (before, after));
    assert_eq!(value(&g, "hpa_tier_users"), Some(1500.0));
    assert_eq!(value(&g, "hpa_tier_needed_capacity"), Some(2000.0));
    assert_eq!(value(&g, "hpa_tier_capacity"), Some(2000.0));
    let noop_at = value(&g, "hpa_tier_last_run_timestamp_seconds").unwrap();
    assert!(noop_at > applied_at);
    assert_eq!(
        value(&g, "hpa_tier_last_success_timestamp_seconds"),
        Some(noop_at)
    );
    assert_eq!(hpa_mins(&g), of_tier(2000));

    // Error: GA fails. What the run did not learn is gone from the group;
    // the last success is the noop's start, as its record has it.
    rig.google.fail_next_report(google::Fault::rpc(
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
    ));
    let (o, before, after, _) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let row = rig.rows().pop().unwrap();
    assert_eq!((row.outcome.as_str(), row.users), ("error", None));
    let g = group(&rig, &pg);
    assert_run(&g, "error", (before, after));
    for gone in [
        "hpa_tier_users",
        "hpa_tier_needed_capacity",
        "hpa_tier_forecast_capacity",
    ] {
        assert_eq!(value(&g, gone), None, "{gone}:\n{}", g.text());
    }
    assert_eq!(value(&g, "hpa_tier_capacity"), Some(2000.0));
    assert_eq!(value(&g, "hpa_tier_allowed_capacity"), Some(5000.0));
    assert_eq!(value(&g, "hpa_tier_schedule_capacity"), Some(2000.0));
    let last_success = value(&g, "hpa_tier_last_success_timestamp_seconds").unwrap();
    assert!(
        (last_success - noop_at).abs() < 0.0015,
        "last success {last_success}, the noop started at {noop_at}"
    );
    assert_eq!(hpa_mins(&g), of_tier(2000));
    // One group for the cluster; every push was taken.
    assert_eq!(pg.groups().len(), 1);
    let statuses: Vec<Option<u16>> = pg.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200); 4]);
    assert!(pg.requests().iter().all(|r| r.method == "PUT"
        && r.content_type.as_deref() == Some("text/plain; version=0.0.4; charset=utf-8")));
}

/// Holds the rig's run lock as another run would, until dropped.
struct LockHolder {
    rt: tokio::runtime::Runtime,
    store: Option<hpa_tier::store::Store>,
}

impl LockHolder {
    fn take(rig: &Rig) -> LockHolder {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The rig's own MySQL account, as its config names it.
        let env = rig.env();
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let config = hpa_tier::config::parse(&rig.config_text, Path::new("rig.yaml"), &lookup)
            .expect("the rig's config");
        let spool = rig.dir.path().join("holder.jsonl");
        let cluster = rig.cluster();
        let store = rt.block_on(hpa_tier::store::open(
            config.mysql.as_ref(),
            &spool,
            &cluster,
            Duration::from_secs(5),
        ));
        let locked = rt.block_on(store.try_lock(&format!("hpa-tier:{cluster}")));
        assert_eq!(locked, Ok(true));
        LockHolder {
            rt,
            store: Some(store),
        }
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        if let Some(s) = self.store.take() {
            self.rt.block_on(s.close());
        }
    }
}

#[test]
fn a_check_that_loses_the_lock_pushes_skipped_and_so_does_the_stuck_lock_alarm() {
    let (rig, pg) = pushing(Setup::default(), "");
    rig.google.set_users(700);
    let (o, ..) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let applied_at = value(&group(&rig, &pg), "hpa_tier_last_run_timestamp_seconds").unwrap();

    let holder = LockHolder::take(&rig);
    let (o, before, after, _) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stderr(&o).contains("holds the lock"), "{}", show(&o));
    assert_eq!(rig.rows().len(), 1, "a skipped run has no record");
    let g = group(&rig, &pg);
    assert_run(&g, SKIPPED, (before, after));
    // What it read, nothing it would have decided.
    assert_eq!(value(&g, "hpa_tier_users"), Some(700.0));
    assert_eq!(value(&g, "hpa_tier_capacity"), Some(1000.0));
    assert_eq!(value(&g, "hpa_tier_allowed_capacity"), Some(5000.0));
    assert_eq!(value(&g, "hpa_tier_needed_capacity"), None);
    assert_eq!(hpa_mins(&g), of_tier(1000));
    let last_success = value(&g, "hpa_tier_last_success_timestamp_seconds").unwrap();
    assert!(
        (last_success - applied_at).abs() < 0.0015,
        "{last_success} vs {applied_at}"
    );

    // Twenty minutes without a record: the stuck-lock alarm (exit 1, an
    // error record) is still a run that skipped, for the lock alert.
    rig.age_records(20);
    let (o, before, after, _) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let row = rig.rows().pop().unwrap();
    assert_eq!(row.outcome, "error");
    assert_eq!(row.detail["lock_stuck"], true, "{}", row.detail);
    let g = group(&rig, &pg);
    assert_run(&g, SKIPPED, (before, after));
    let last_success = value(&g, "hpa_tier_last_success_timestamp_seconds").unwrap();
    assert!(
        (last_success - (applied_at - 1200.0)).abs() < 0.0015,
        "the history now says the success was 20 minutes earlier: {last_success} vs {applied_at}"
    );
    drop(holder);
}

#[test]
fn a_run_stopped_before_it_decided_pushes_an_error_and_the_last_success_from_history() {
    let (rig, pg) = pushing(Setup::default(), "");
    rig.google.set_users(700);
    let (o, ..) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let applied_at = value(&group(&rig, &pg), "hpa_tier_last_run_timestamp_seconds").unwrap();

    // GA hangs; SIGTERM stops the run in its gather phase.
    rig.google.set_latency(Duration::from_secs(30));
    let mut cmd = Command::new(support::bin());
    cmd.args(["-c", &rig.config, "check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in rig.env() {
        cmd.env(k, v);
    }
    let before = unix_now();
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let after = unix_now();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    let row = rig.rows().pop().unwrap();
    assert!(row.message.contains("SIGTERM"), "{}", row.message);
    let g = group(&rig, &pg);
    assert_run(&g, "error", (before, after));
    assert_eq!(value(&g, "hpa_tier_users"), None);
    assert_eq!(
        value(&g, "hpa_tier_capacity"),
        None,
        "the HPAs were not read"
    );
    let last_success = value(&g, "hpa_tier_last_success_timestamp_seconds");
    let last_success = last_success.expect("read from the history after the stop");
    assert!(
        (last_success - applied_at).abs() < 0.0015,
        "{last_success} vs {applied_at}"
    );
}

// ---------------------------------------------------------------------------
// a Pushgateway that fails

#[test]
fn a_failing_or_hanging_pushgateway_is_noted_but_changes_neither_the_run_nor_its_exit() {
    let (rig, pg) = pushing(Setup::default(), "");
    rig.google.set_users(700);

    pg.fail_next(Fault::Status(500));
    let (o, _, _, took) = timed(&rig, &["-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(rig.mins(), tier(1000), "the run did its work");
    let row = rig.rows().pop().unwrap();
    assert_eq!(row.outcome, "applied");
    let noted = warnings(&row.detail);
    assert!(
        noted
            .iter()
            .any(|w| w.contains("not pushed") && w.contains("HTTP 500")),
        "{noted:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(warnings(&doc), noted, "the report says it too");
    assert!(
        stderr(&o).contains("not pushed"),
        "and the log: {}",
        show(&o)
    );
    assert!(pg.groups().is_empty(), "nothing was stored");

    // A Pushgateway that never answers costs the run its push budget
    // (timeout_seconds: 3), not more, and the run still succeeds.
    pg.fail_next(Fault::Hang);
    let (o, _, _, took) = timed(&rig, &["-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        Duration::from_millis(2900) <= took && took < Duration::from_secs(13),
        "took {took:?}"
    );
    let row = rig.rows().pop().unwrap();
    assert_eq!(row.outcome, "noop");
    let noted = warnings(&row.detail);
    assert!(
        noted.iter().any(|w| w.contains("did not answer within 3s")),
        "{noted:?}"
    );
    let hung = pg
        .requests()
        .into_iter()
        .filter(|r| r.status.is_none())
        .count();
    assert_eq!(hung, 1);

    // Back to normal: the next push lands and says noop.
    let (o, before, after, _) = timed(&rig, &["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_run(&group(&rig, &pg), "noop", (before, after));
}

#[test]
fn an_unreachable_pushgateway_and_an_unwritable_textfile_are_warnings() {
    let rig = Rig::new();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let missing = rig.dir.path().join("no-such-dir/hpa-tier.prom");
    rig.set_config(&format!(
        "{}metrics_pushgateway: \"http://127.0.0.1:{dead}\"\nmetrics_textfile: \"{}\"\n",
        rig.config_text,
        missing.display()
    ));
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let noted = warnings(&rig.rows().pop().unwrap().detail);
    assert!(
        noted.iter().any(|w| w.contains("not pushed")
            && w.contains(&format!("cannot reach the Pushgateway at 127.0.0.1:{dead}"))),
        "{noted:?}"
    );
    assert!(
        noted
            .iter()
            .any(|w| w.contains("not written") && w.contains(&missing.display().to_string())),
        "{noted:?}"
    );
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------
// the textfile

/// `hpa-tier -c CONFIG ARGS` under `umask 077`, as a hardened host runs it.
fn run_with_umask(rig: &Rig, args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(support::bin())
        .args(["-c", &rig.config])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in rig.env() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_textfile_is_the_pushed_body_replaced_atomically_and_world_readable() {
    let rig = Rig::new();
    let pg = Pushgateway::spawn();
    let dir = rig.dir.path().join("textfile");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("hpa-tier.prom");
    // A link planted where the file goes is replaced, never written through.
    let victim = rig.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    configure(
        &rig,
        &pg,
        &format!("metrics_textfile: \"{}\"\n", file.display()),
    );

    // A reader polling the file while runs replace it never sees half a body.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let (file, stop) = (file.clone(), stop.clone());
        move || {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_file())
                    && let Ok(text) = std::fs::read_to_string(&file)
                {
                    assert!(text.ends_with('\n'), "a partial file: {text:?}");
                    let families = exposition::parse(text.as_bytes())
                        .unwrap_or_else(|e| panic!("{e}: {text:?}"));
                    assert!(
                        families
                            .iter()
                            .any(|f| f.name == "hpa_tier_hpa_min_replicas"),
                        "{text}"
                    );
                    seen += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        }
    });
    for users in [700, 700, 1500] {
        rig.google.set_users(users);
        let o = run_with_umask(&rig, &["check"]);
        assert_eq!(code(&o), 0, "{}", show(&o));
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("every read was a whole body");
    assert!(reads > 0, "the reader never saw the file");

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by the file"
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o644,
        "whatever the umask"
    );
    let listing: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listing, ["hpa-tier.prom"], "no temporary file is left");

    let text = std::fs::read_to_string(&file).unwrap();
    let pushed = pg.requests().pop().unwrap().body;
    assert_eq!(text, pushed, "the textfile is the pushed body");
    assert!(text.contains("hpa_tier_capacity 2000\n"), "{text}");
    assert!(
        text.contains("hpa_tier_run_outcome{outcome=\"applied\"} 1\n"),
        "{text}"
    );
    // node_exporter adds its own target labels; the file carries none of the push's.
    assert!(
        !text.contains("job=") && !text.contains("cluster="),
        "{text}"
    );
}

#[test]
fn a_dry_run_pushes_nothing_and_writes_nothing() {
    let rig = Rig::new();
    let pg = Pushgateway::spawn();
    let file = rig.dir.path().join("hpa-tier.prom");
    configure(
        &rig,
        &pg,
        &format!("metrics_textfile: \"{}\"\n", file.display()),
    );
    rig.google.set_users(1500);
    let o = rig.run(&["--dry-run", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(pg.requests().is_empty(), "{:?}", pg.requests());
    assert!(!file.exists());
}

// ---------------------------------------------------------------------------
// the adapter and the body, without the binary

#[test]
fn a_cluster_with_slashes_or_none_at_all_is_grouped_by_its_exact_name() {
    let pg = Pushgateway::spawn();
    let body = skipped(vec![]).render();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for cluster in [
        "arn:aws:eks:us-east-2:123456789012:cluster/prod",
        "",
        "prod",
        "a b%2F/c",
    ] {
        let push = PushAdapter::new(&pg.url(), cluster);
        let done = rt.block_on(push.push(body.clone(), Duration::from_secs(3)));
        assert!(done.is_ok(), "{cluster:?}: {done:?} ({})", push.url());
        let g = pg.group(&[("job", "hpa-tier"), ("cluster", cluster)]);
        assert!(g.is_some(), "{cluster:?}: {:?}", pg.groups());
    }
    assert_eq!(pg.groups().len(), 4);
}

/// The gauges of a skipped run with these HPAs.
fn skipped(hpa_min_replicas: Vec<HpaMin>) -> Gauges {
    let started = Timestamp::from_millisecond(1_800_000_000_250).unwrap();
    Gauges {
        users: Some(742),
        needed_capacity: None,
        capacity: Some(1000),
        forecast_capacity: None,
        allowed_capacity: Some(0),
        schedule_capacity: None,
        outcome: RunOutcome::Skipped,
        duration_ms: 1_234,
        started,
        last_success: Some(started - SignedDuration::from_mins(5)),
        hpa_min_replicas,
    }
}

fn hpa(namespace: &str, hpa: &str, min: u32) -> HpaMin {
    HpaMin {
        namespace: namespace.into(),
        hpa: hpa.into(),
        min,
    }
}

#[test]
fn the_core_body_parses_strictly_and_reads_back_as_written() {
    let odd = hpa("odd\"ns\\", "line\nbreak", 7);
    for outcome in [RunOutcome::Skipped, RunOutcome::Ran(Outcome::Partial)] {
        let g = Gauges {
            outcome,
            ..skipped(vec![hpa("prod", "web", 6), odd.clone()])
        };
        let text = g.render();
        let families = exposition::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        let expected: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| {
                !matches!(
                    *n,
                    "hpa_tier_needed_capacity"
                        | "hpa_tier_forecast_capacity"
                        | "hpa_tier_schedule_capacity"
                )
            })
            .collect();
        let mut sorted = expected.clone();
        sorted.sort();
        assert_eq!(names, sorted, "the parser orders families by name");
        for f in &families {
            assert_eq!(f.kind, MetricType::Gauge, "{}", f.name);
            assert!(
                f.help.as_deref().is_some_and(|h| !h.is_empty()),
                "{}",
                f.name
            );
            assert!(f.metrics.iter().all(|m| m.timestamp_ms.is_none()));
        }
        let fam = |name: &str| families.iter().find(|f| f.name == name).unwrap();
        let simple = |name: &str| match fam(name).metrics[0].value {
            exposition::Value::Simple(v) => v,
            ref other => panic!("{other:?}"),
        };
        assert_eq!(simple("hpa_tier_users"), 742.0);
        assert_eq!(simple("hpa_tier_allowed_capacity"), 0.0);
        assert_eq!(simple("hpa_tier_run_duration_seconds"), 1.234);
        assert_eq!(
            simple("hpa_tier_last_run_timestamp_seconds"),
            1_800_000_000.25
        );
        assert_eq!(
            simple("hpa_tier_last_success_timestamp_seconds"),
            1_799_999_700.25
        );
        let outcomes: Vec<(String, f64)> = fam("hpa_tier_run_outcome")
            .metrics
            .iter()
            .map(|m| match m.value {
                exposition::Value::Simple(v) => (m.label("outcome").unwrap().to_string(), v),
                ref other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(outcomes.len(), OUTCOMES.len());
        let ones: Vec<&str> = outcomes
            .iter()
            .filter(|(_, v)| *v == 1.0)
            .map(|(o, _)| o.as_str())
            .collect();
        assert_eq!(ones, [outcome.as_str()]);
        let strange = fam("hpa_tier_hpa_min_replicas")
            .metrics
            .iter()
            .find(|m| m.label("hpa") == Some("line\nbreak"))
            .expect("the escaped label reads back");
        assert_eq!(strange.label("namespace"), Some("odd\"ns\\"));
        // And the Pushgateway takes it, twice over (a PUT replaces the group).
        let pg = Pushgateway::spawn();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let push = PushAdapter::new(&pg.url(), "prod");
        for _ in 0..2 {
            let r = rt.block_on(push.push(text.clone(), Duration::from_secs(3)));
            assert!(r.is_ok(), "{r:?}");
        }
        let g = pg
            .group(&[("job", "hpa-tier"), ("cluster", "prod")])
            .unwrap();
        assert_eq!(g.families.len(), expected.len());
    }
}

#[test]
fn a_textfile_write_into_a_missing_directory_fails_and_leaves_nothing() {
    let dir = support::tempdir();
    let path = dir.path().join("gone/hpa-tier.prom");
    let e = hpa_tier::metrics::textfile::write_atomically(&path, b"x 1\n").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    // Over a directory: refused, the directory untouched.
    let sub = dir.path().join("sub.prom");
    std::fs::create_dir(&sub).unwrap();
    assert!(hpa_tier::metrics::textfile::write_atomically(&sub, b"x 1\n").is_err());
    assert!(sub.is_dir());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sub.prom"], "no temporary file is left");
}
