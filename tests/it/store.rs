//! The run store against a real MariaDB (a fresh database per test) and on
//! disk: schema, records with every column, history, holds, the run lock,
//! the spool when MySQL is down, and `--dry-run` writing nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hpa_tier::config::{CaBundle, MysqlSettings, MysqlTls, Secret, SslMode};
use hpa_tier::store::{self, Recorded, RunStore, Store, StoreError};
use hpa_tier_core::record::{CommandKind, Outcome, RunRecord, active_hold};
use jiff::{SignedDuration, Timestamp};
use mysql_async::prelude::{FromRow, Queryable};

use crate::support::tls_mariadb::{self, OTHER_NAME, TlsAccount};
use crate::support::{FreshDb, mysql_exec, mysql_root_url, tempdir, unique};

const TIMEOUT: Duration = Duration::from_secs(5);
const CLUSTER: &str = "prod";

fn settings(db: &FreshDb) -> MysqlSettings {
    MysqlSettings {
        host: "127.0.0.1".into(),
        port: 3306,
        user: "root".into(),
        password: Secret::new(""),
        database: db.name.clone(),
        tls: MysqlTls::default(),
    }
}

/// Settings naming a loopback port nothing listens on.
fn dead(db: &str, password: &str) -> MysqlSettings {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    MysqlSettings {
        host: "127.0.0.1".into(),
        port,
        user: "hpa_tier".into(),
        password: Secret::new(password),
        database: db.into(),
        tls: MysqlTls::default(),
    }
}

/// Now, to the millisecond (what MySQL keeps).
fn now_ms() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// A `check` that found the tier at `tier`, needed `needed`, and kept it.
fn check(at: Timestamp, needed: u32, tier: u32) -> RunRecord {
    RunRecord {
        run_id: unique("run-"),
        started_at: at,
        finished_at: at + SignedDuration::from_millis(1_250),
        command: CommandKind::Check,
        users: Some(needed / 2),
        needed_capacity: Some(needed),
        from_capacity: Some(tier),
        to_capacity: Some(tier),
        outcome: Outcome::Noop,
        message: format!("{} users fit tier {tier}", needed / 2),
        detail: serde_json::json!({"hpas": []}),
        hold_until: None,
        notified: vec![],
        forecast_capacity: None,
    }
}

/// An `upgrade` to `to` that ended with `outcome`, holding until `hold`.
fn upgrade(at: Timestamp, to: u32, outcome: Outcome, hold: Option<Timestamp>) -> RunRecord {
    let took_effect = matches!(outcome, Outcome::Applied | Outcome::Noop);
    RunRecord {
        command: CommandKind::Upgrade,
        users: None,
        needed_capacity: Some(to),
        from_capacity: Some(600),
        to_capacity: Some(if took_effect { to } else { 600 }),
        outcome,
        hold_until: hold,
        message: format!("upgrade to {to}: {}", outcome.as_str()),
        ..check(at, to, 600)
    }
}

/// A record with every field set to something distinctive.
fn everything(at: Timestamp) -> RunRecord {
    RunRecord {
        run_id: unique("full-"),
        started_at: at,
        finished_at: at + SignedDuration::from_millis(4_321),
        command: CommandKind::Upgrade,
        users: Some(1_234),
        needed_capacity: Some(2_000),
        from_capacity: Some(1_000),
        to_capacity: Some(2_000),
        outcome: Outcome::Partial,
        message: "tier 1000 → 2000: web patched, passport failed (409)".into(),
        detail: serde_json::json!({
            "changes": [{"hpa": "prod/web", "from_min": 3, "to_min": 6}],
            "errors": ["prod/passport: conflict"],
            "prereqs": {"rds": ["db.r5.8xlarge"], "redis": "cache.c7gn.xlarge"},
            "hold": {"capacity": 2000, "minutes": 120},
        }),
        hold_until: Some(at + SignedDuration::from_hours(2)),
        notified: vec!["partial:2000".into(), "blocked:3000".into()],
        forecast_capacity: Some(3_000),
    }
}

async fn query<T: FromRow + Send + 'static>(db: &str, sql: &str) -> Vec<T> {
    let pool = mysql_async::Pool::new(format!("{}/{db}", mysql_root_url()).as_str());
    let mut conn = pool.get_conn().await.expect("connect to MariaDB");
    let rows = conn.query(sql).await.expect(sql);
    drop(conn);
    pool.disconnect().await.unwrap();
    rows
}

async fn count_runs(db: &str) -> u64 {
    query::<u64>(db, "SELECT COUNT(*) FROM hpa_tier_runs")
        .await
        .pop()
        .unwrap()
}

async fn tables(db: &str) -> Vec<String> {
    query(
        db,
        &format!(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = '{db}' ORDER BY table_name"
        ),
    )
    .await
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn ids(records: &[RunRecord]) -> Vec<&str> {
    records.iter().map(|r| r.run_id.as_str()).collect()
}

async fn mysql_store(db: &FreshDb, state_file: &Path, scope: &str) -> Store {
    let s = store::open(Some(&settings(db)), state_file, scope, TIMEOUT).await;
    assert_eq!(s.unreachable(), None, "{}", s.describe());
    s
}

// ---------------------------------------------------------------------------
// MySQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_schema_is_created_from_nothing_and_reopening_is_harmless() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    assert!(tables(&db.name).await.is_empty());

    // Two first runs racing on an empty database.
    let cfg = settings(&db);
    let (a, b) = tokio::join!(
        store::open(Some(&cfg), &state, CLUSTER, TIMEOUT),
        store::open(Some(&cfg), &state, CLUSTER, TIMEOUT),
    );
    assert_eq!(a.unreachable(), None, "{}", a.describe());
    assert_eq!(b.unreachable(), None, "{}", b.describe());
    assert_eq!(
        a.describe(),
        format!("MySQL root@127.0.0.1:3306/{} (not encrypted)", db.name),
        "the machine's MariaDB offers no TLS: `preferred` connected in plain"
    );
    a.close().await;
    b.close().await;
    mysql_store(&db, &state, CLUSTER).await.close().await;

    assert_eq!(tables(&db.name).await, ["hpa_tier_runs", "hpa_tier_schema"]);
    let versions: Vec<(u32, String)> = query(
        &db.name,
        "SELECT version, description FROM hpa_tier_schema ORDER BY version",
    )
    .await;
    let numbers: Vec<u32> = versions.iter().map(|v| v.0).collect();
    assert_eq!(numbers, [1, 2], "{versions:?}");

    let columns: Vec<(String, String, String)> = query(
        &db.name,
        &format!(
            "SELECT column_name, column_type, is_nullable FROM information_schema.columns \
             WHERE table_schema = '{}' AND table_name = 'hpa_tier_runs'",
            db.name
        ),
    )
    .await;
    let column = |name: &str| {
        columns
            .iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
    };
    assert!(column("id").1.starts_with("bigint"));
    for name in ["started_at", "finished_at"] {
        assert_eq!(column(name).1, "datetime(3)");
        assert_eq!(column(name).2, "NO");
    }
    assert_eq!(column("hold_until").1, "datetime(3)");
    for name in [
        "users",
        "needed_capacity",
        "from_capacity",
        "to_capacity",
        "forecast_capacity",
    ] {
        assert!(column(name).1.starts_with("int"), "{:?}", column(name));
        assert_eq!(column(name).2, "YES", "{name} is nullable");
    }
    for name in [
        "run_id", "cluster", "command", "outcome", "message", "detail", "notified",
    ] {
        column(name);
    }
    let unique_run_id: Vec<String> = query(
        &db.name,
        &format!(
            "SELECT index_name FROM information_schema.statistics WHERE table_schema = '{}' \
             AND table_name = 'hpa_tier_runs' AND column_name = 'run_id' AND non_unique = 0",
            db.name
        ),
    )
    .await;
    assert_eq!(unique_run_id.len(), 1, "run_id is unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_2_is_applied_to_a_version_1_table_and_again_after_a_crash_between_its_steps() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    // The table as version 1 made it, with a row, and no migration 2 yet.
    mysql_store(&db, &state, CLUSTER).await.close().await;
    mysql_exec(&format!(
        "USE `{}`; ALTER TABLE hpa_tier_runs DROP KEY hpa_tier_runs_samples, DROP COLUMN forecast_capacity; \
         DELETE FROM hpa_tier_schema WHERE version = 2",
        db.name
    ));
    let s = mysql_store(&db, &state, CLUSTER).await;
    assert_eq!(
        s.record(&check(
            Timestamp::now() - SignedDuration::from_mins(5),
            600,
            600
        ))
        .await,
        Ok(Recorded::Stored)
    );
    s.close().await;
    // Died after the ALTER, before its version row: the next run carries on.
    mysql_exec(&format!(
        "USE `{}`; DELETE FROM hpa_tier_schema WHERE version = 2",
        db.name
    ));
    let s = mysql_store(&db, &state, CLUSTER).await;
    assert_eq!(s.unreachable(), None, "{}", s.describe());
    assert_eq!(
        s.samples(Timestamp::now() - SignedDuration::from_hours(1))
            .await
            .map(|v| v.len()),
        Ok(1)
    );
    s.close().await;
    let versions: Vec<(u32, String)> = query(
        &db.name,
        "SELECT version, description FROM hpa_tier_schema ORDER BY version",
    )
    .await;
    assert_eq!(versions.iter().map(|v| v.0).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn mysql_records_round_trip_with_every_column() {
    let db = FreshDb::new();
    let dir = tempdir();
    let s = mysql_store(&db, &dir.path().join("runs.jsonl"), CLUSTER).await;
    let at: Timestamp = "2025-06-01T14:00:00.123+02:00".parse().unwrap();
    let full = everything(at);
    assert_eq!(s.record(&full).await, Ok(Recorded::Stored));
    // Idempotent on run_id.
    assert_eq!(s.record(&full).await, Ok(Recorded::Stored));
    let mut sparse = check(at + mins(5), 600, 600);
    sparse.users = None;
    sparse.needed_capacity = None;
    sparse.from_capacity = None;
    sparse.to_capacity = None;
    sparse.outcome = Outcome::Error;
    sparse.detail = serde_json::Value::Null;
    assert_eq!(s.record(&sparse).await, Ok(Recorded::Stored));

    assert_eq!(s.latest(10).await.unwrap(), [sparse.clone(), full.clone()]);
    s.close().await;
    assert_eq!(count_runs(&db.name).await, 2);

    // What a person querying the table sees: UTC, milliseconds, JSON.
    type Raw = (String, String, String, String, Option<u32>, String, String);
    let raw: Vec<Raw> = query(
        &db.name,
        &format!(
            "SELECT cluster, CAST(started_at AS CHAR), CAST(finished_at AS CHAR), \
             CAST(hold_until AS CHAR), needed_capacity, outcome, \
             JSON_UNQUOTE(JSON_EXTRACT(detail, '$.errors[0]')) \
             FROM hpa_tier_runs WHERE run_id = '{}'",
            full.run_id
        ),
    )
    .await;
    assert_eq!(
        raw,
        [(
            CLUSTER.to_string(),
            "2025-06-01 12:00:00.123".to_string(),
            "2025-06-01 12:00:04.444".to_string(),
            "2025-06-01 14:00:00.123".to_string(),
            Some(2000),
            "partial".to_string(),
            "prod/passport: conflict".to_string(),
        )]
    );
    let notified: Vec<String> = query(
        &db.name,
        "SELECT JSON_UNQUOTE(JSON_EXTRACT(notified, '$[1]')) FROM hpa_tier_runs \
         WHERE outcome = 'partial'",
    )
    .await;
    assert_eq!(notified, ["blocked:3000"]);
}

#[tokio::test]
async fn mysql_keeps_milliseconds_and_drops_finer_digits() {
    let db = FreshDb::new();
    let dir = tempdir();
    let s = mysql_store(&db, &dir.path().join("runs.jsonl"), CLUSTER).await;
    let fine: Timestamp = "2025-06-01T12:00:00.987654321Z".parse().unwrap();
    let r = check(fine, 600, 600);
    s.record(&r).await.unwrap();
    let back = s.latest(1).await.unwrap().pop().unwrap();
    assert_eq!(
        back.started_at,
        "2025-06-01T12:00:00.987Z".parse::<Timestamp>().unwrap()
    );
    s.close().await;
}

#[tokio::test]
async fn mysql_history_answers_the_scale_down_window_per_cluster() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let prod = mysql_store(&db, &state, CLUSTER).await;
    let staging = mysql_store(&db, &state, "staging").await;
    let now = now_ms();
    let r50 = check(now - mins(50), 600, 2000);
    let r40 = check(now - mins(40), 1000, 2000);
    let r20 = check(now - mins(20), 600, 2000);
    let r10 = check(now - mins(10), 600, 2000);
    let r5 = check(now - mins(5), 1000, 2000);
    // Written out of order: the store orders by time, not by arrival.
    for r in [&r20, &r50, &r5, &r40, &r10] {
        prod.record(r).await.unwrap();
    }
    let other = check(now - mins(15), 5000, 5000);
    staging.record(&other).await.unwrap();

    let h = prod.history(now - mins(30)).await.unwrap();
    assert_eq!(
        ids(&h),
        ids(&[r40.clone(), r20.clone(), r10.clone(), r5.clone()])
    );
    // A window older than every record: nothing before it.
    let h = prod.history(now - mins(60)).await.unwrap();
    assert_eq!(ids(&h), ids(&[r50, r40, r20, r10.clone(), r5.clone()]));
    assert_eq!(prod.history(now).await.unwrap(), std::slice::from_ref(&r5));
    assert_eq!(ids(&prod.latest(2).await.unwrap()), ids(&[r5, r10]));

    assert_eq!(staging.history(now - mins(30)).await.unwrap(), [other]);
    prod.close().await;
    staging.close().await;
}

#[tokio::test]
async fn mysql_holds_come_from_the_newest_upgrade_that_took_effect() {
    let db = FreshDb::new();
    let dir = tempdir();
    let s = mysql_store(&db, &dir.path().join("runs.jsonl"), CLUSTER).await;
    let now = now_ms();
    assert_eq!(s.last_upgrade().await.unwrap(), None);

    let held = upgrade(now - mins(60), 3000, Outcome::Applied, Some(now + mins(60)));
    let refused = upgrade(now - mins(30), 5000, Outcome::Blocked, None);
    let failed = upgrade(now - mins(20), 4000, Outcome::Error, Some(now + mins(600)));
    s.record(&held).await.unwrap();
    s.record(&refused).await.unwrap();
    s.record(&failed).await.unwrap();
    s.record(&check(now - mins(10), 600, 3000)).await.unwrap();

    let last = s.last_upgrade().await.unwrap();
    assert_eq!(last.as_ref(), Some(&held));
    let hold = active_hold(last.as_ref(), now).expect("the hold is active");
    assert_eq!((hold.capacity, hold.until), (3000, now + mins(60)));
    assert_eq!(active_hold(last.as_ref(), now + mins(61)), None);

    // A later upgrade without --hold is the operator's new intent: no hold.
    let plain = upgrade(now - mins(5), 2000, Outcome::Applied, None);
    s.record(&plain).await.unwrap();
    let last = s.last_upgrade().await.unwrap();
    assert_eq!(last.as_ref(), Some(&plain));
    assert_eq!(active_hold(last.as_ref(), now), None);
    s.close().await;
}

#[tokio::test]
async fn mysql_second_run_cannot_take_the_lock_until_the_first_closes() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let first = mysql_store(&db, &state, CLUSTER).await;
    let second = mysql_store(&db, &state, CLUSTER).await;
    let elsewhere = mysql_store(&db, &state, "staging").await;

    assert_eq!(first.try_lock(CLUSTER).await, Ok(true));
    assert_eq!(first.try_lock(CLUSTER).await, Ok(true), "taking it again");
    assert_eq!(second.try_lock(CLUSTER).await, Ok(false));
    assert_eq!(elsewhere.try_lock("staging").await, Ok(true));
    assert_eq!(second.try_lock(CLUSTER).await, Ok(false), "still held");

    first.close().await;
    assert_eq!(second.try_lock(CLUSTER).await, Ok(true));
    second.close().await;
    elsewhere.close().await;
}

#[tokio::test]
async fn mysql_lock_is_freed_when_the_holder_dies() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let second = mysql_store(&db, &state, CLUSTER).await;
    {
        // A run that dies without reaching close(): its connection just goes.
        let (settings, state) = (settings(&db), state.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let s = store::open(Some(&settings), &state, CLUSTER, TIMEOUT).await;
                assert_eq!(s.try_lock(CLUSTER).await, Ok(true));
                drop(s);
            });
        })
        .join()
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if second.try_lock(CLUSTER).await == Ok(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead run's lock was never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.close().await;
}

#[tokio::test]
async fn mysql_down_spools_the_record_and_the_next_run_writes_it_exactly_once() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("spool").join("runs.jsonl");
    let down = dead(&db.name, "");
    let now = now_ms();
    let first = check(now - mins(10), 600, 1000);
    let second = upgrade(now - mins(5), 2000, Outcome::Applied, Some(now + mins(90)));

    let s = store::open(Some(&down), &state, CLUSTER, TIMEOUT).await;
    let reason = s.unreachable().expect("MySQL is down").to_string();
    assert!(reason.contains("Connection refused"), "{reason}");
    assert_eq!(
        s.describe(),
        format!(
            "spool {} (MySQL hpa_tier@127.0.0.1:{}/{} unreachable: {reason})",
            state.display(),
            down.port,
            db.name
        )
    );
    let err = s.history(now).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::Unreachable(format!(
            "MySQL hpa_tier@127.0.0.1:{}/{} is unreachable: {reason}",
            down.port, db.name
        ))
    );
    assert!(matches!(
        s.history(now - mins(30)).await,
        Err(StoreError::Unreachable(_))
    ));
    assert!(matches!(
        s.last_upgrade().await,
        Err(StoreError::Unreachable(_))
    ));
    assert!(matches!(s.latest(5).await, Err(StoreError::Unreachable(_))));
    // The lock falls back to the lock file.
    assert_eq!(s.try_lock(CLUSTER).await, Ok(true));
    let rival = store::open(Some(&down), &state, CLUSTER, TIMEOUT).await;
    assert_eq!(rival.try_lock(CLUSTER).await, Ok(false));
    rival.close().await;

    assert_eq!(s.record(&first).await, Ok(Recorded::Spooled));
    assert_eq!(s.record(&second).await, Ok(Recorded::Spooled));
    assert_eq!(s.record(&second).await, Ok(Recorded::Spooled), "not twice");
    s.close().await;
    // Another cluster's spooled record sharing the file is not ours to flush.
    let staging = store::open(Some(&down), &state, "staging", TIMEOUT).await;
    let theirs = check(now - mins(3), 600, 600);
    staging.record(&theirs).await.unwrap();
    staging.close().await;
    let spooled = lines(&state);
    assert_eq!(spooled.len(), 3);
    assert_eq!(spooled[0]["run_id"], first.run_id.as_str());
    assert_eq!(spooled[0]["cluster"], CLUSTER);

    // MySQL is back: the next run writes the spool, then empties it.
    let back = mysql_store(&db, &state, CLUSTER).await;
    assert_eq!(
        back.history(now - mins(30)).await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(back.last_upgrade().await.unwrap(), Some(second.clone()));
    back.close().await;
    assert_eq!(count_runs(&db.name).await, 2);
    let left = lines(&state);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["run_id"], theirs.run_id.as_str());

    // A run that died after the commit but before emptying the spool: the
    // record is in both places, and is still written only once.
    let again = store::open(Some(&down), &state, CLUSTER, TIMEOUT).await;
    assert_eq!(again.record(&second).await, Ok(Recorded::Spooled));
    again.close().await;
    mysql_store(&db, &state, CLUSTER).await.close().await;
    assert_eq!(count_runs(&db.name).await, 2);
    assert_eq!(lines(&state).len(), 1);
}

#[tokio::test]
async fn spooled_record_mysql_refuses_keeps_the_run_on_the_spool_and_says_why() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let mut bad = check(now_ms(), 600, 600);
    bad.run_id = "r".repeat(300);
    let down = store::open(Some(&dead(&db.name, "")), &state, CLUSTER, TIMEOUT).await;
    assert_eq!(down.record(&bad).await, Ok(Recorded::Spooled));
    down.close().await;

    let s = store::open(Some(&settings(&db)), &state, CLUSTER, TIMEOUT).await;
    let reason = s.unreachable().expect("the flush failed").to_string();
    assert!(
        reason.starts_with(&format!(
            "writing the records spooled in {} failed",
            state.display()
        )),
        "{reason}"
    );
    assert!(reason.contains("run_id"), "names the column: {reason}");
    assert!(matches!(
        s.history(now_ms()).await,
        Err(StoreError::Unreachable(_))
    ));
    s.close().await;
    assert_eq!(lines(&state).len(), 1, "the record is kept");
    assert_eq!(count_runs(&db.name).await, 0);
}

#[tokio::test]
async fn mysql_that_never_answers_is_given_up_on_within_the_timeout() {
    // Accepts connections and says nothing, like a blackholed firewall.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = MysqlSettings {
        port,
        ..dead("hpa_tier", "")
    };
    let dir = tempdir();
    let started = Instant::now();
    let s = store::open(
        Some(&silent),
        &dir.path().join("runs.jsonl"),
        CLUSTER,
        Duration::from_secs(1),
    )
    .await;
    let took = started.elapsed();
    let reason = s.unreachable().expect("silent server").to_string();
    assert_eq!(reason, "no answer within 1s (timeout_seconds)");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    s.close().await;
    drop(listener);
}

#[tokio::test]
async fn mysql_errors_never_show_the_password() {
    let password = "hunter2-must-not-leak";
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");

    let down = store::open(Some(&dead("hpa_tier", password)), &state, CLUSTER, TIMEOUT).await;
    let denied_settings = MysqlSettings {
        host: "127.0.0.1".into(),
        port: 3306,
        user: "root".into(),
        password: Secret::new(password),
        database: "mysql".into(),
        tls: MysqlTls::default(),
    };
    let denied = store::open(Some(&denied_settings), &state, CLUSTER, TIMEOUT).await;
    let reason = denied.unreachable().expect("wrong password").to_string();
    assert!(reason.contains("1045"), "{reason}");
    assert!(
        reason.contains("mysql_pwd"),
        "names the key to fix: {reason}"
    );

    for s in [down, denied] {
        let err = s.history(Timestamp::now()).await.unwrap_err().to_string();
        for text in [s.describe(), err, format!("{:?}", s.unreachable())] {
            assert!(!text.contains(password), "password leaked: {text}");
        }
        s.close().await;
    }
}

#[tokio::test]
async fn dry_run_store_writes_nothing_not_even_the_schema() {
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    // A record spooled earlier must stay in the spool.
    let spooled = check(now_ms() - mins(5), 600, 600);
    let down = store::open(Some(&dead(&db.name, "")), &state, CLUSTER, TIMEOUT).await;
    down.record(&spooled).await.unwrap();
    down.close().await;
    let before = std::fs::read(&state).unwrap();

    let s = store::open_read_only(Some(&settings(&db)), &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.unreachable(), None, "{}", s.describe());
    assert!(s.describe().ends_with("(read-only)"), "{}", s.describe());
    assert_eq!(s.history(now_ms() - mins(30)).await, Ok(vec![]));
    assert_eq!(s.last_upgrade().await, Ok(None));
    assert_eq!(s.latest(5).await, Ok(vec![]));
    assert!(s.record(&spooled).await.is_err());
    s.close().await;

    assert!(tables(&db.name).await.is_empty(), "no schema in a dry run");
    assert_eq!(std::fs::read(&state).unwrap(), before, "spool untouched");

    // Against a migrated database it reads, and takes no lock.
    let writer = mysql_store(&db, &state, CLUSTER).await;
    assert_eq!(writer.try_lock(CLUSTER).await, Ok(true));
    let s = store::open_read_only(Some(&settings(&db)), &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.try_lock(CLUSTER).await, Ok(true));
    assert_eq!(s.latest(5).await.unwrap(), [spooled]);
    s.close().await;
    writer.close().await;
}

// ---------------------------------------------------------------------------
// MySQL over TLS: MariaDB instances of the tests' own (support::tls_mariadb)

const TLS_PASSWORD: &str = "tls-store-password";

fn tls_settings(
    account: &TlsAccount,
    host: &str,
    mode: SslMode,
    ca: Option<&Path>,
) -> MysqlSettings {
    MysqlSettings {
        host: host.into(),
        port: account.server.port,
        user: account.user.clone(),
        password: Secret::new(TLS_PASSWORD),
        database: account.db.clone(),
        tls: MysqlTls {
            mode,
            ca: ca.map(|p| CaBundle::read(p).unwrap()),
        },
    }
}

/// Opens the store and returns why MySQL could not be used, if it could not.
async fn tls_open(settings: &MysqlSettings, state: &Path) -> (Store, Option<String>) {
    let s = store::open(Some(settings), state, CLUSTER, TIMEOUT).await;
    let reason = s.unreachable().map(str::to_string);
    (s, reason)
}

#[tokio::test]
async fn mysql_tls_every_mode_but_disabled_works_with_a_server_that_requires_it() {
    let server = tls_mariadb::for_loopback();
    let account = server.account(TLS_PASSWORD);
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let cases = [
        (SslMode::Preferred, None, "TLS, certificate not verified"),
        (SslMode::Required, None, "TLS, certificate not verified"),
        (SslMode::VerifyCa, Some(&server.ca), "TLS, verify_ca"),
        (
            SslMode::VerifyIdentity,
            Some(&server.ca),
            "TLS, verify_identity",
        ),
    ];
    let mut written = vec![];
    for (mode, ca, transport) in cases {
        let settings = tls_settings(&account, "127.0.0.1", mode, ca.map(|p| p.as_path()));
        let (s, reason) = tls_open(&settings, &state).await;
        assert_eq!(reason, None, "{mode}");
        assert_eq!(
            s.describe(),
            format!(
                "MySQL {}@127.0.0.1:{}/{} ({transport})",
                account.user, server.port, account.db
            )
        );
        assert_eq!(
            s.try_lock(CLUSTER).await,
            Ok(true),
            "{mode}: the lock connection"
        );
        let r = check(now_ms() - mins(10 - written.len() as i64), 600, 600);
        assert_eq!(s.record(&r).await, Ok(Recorded::Stored), "{mode}");
        written.insert(0, r);
        assert_eq!(s.latest(10).await.unwrap(), written, "{mode}");
        s.close().await;
    }
    assert_eq!(server.count_runs(&account.db), 4);
    assert!(lines(&state).is_empty(), "nothing spooled");

    // The account may not log in without TLS, nor may anyone on this server.
    let plain = tls_settings(&account, "127.0.0.1", SslMode::Disabled, None);
    let (s, reason) = tls_open(&plain, &state).await;
    let reason = reason.expect("a plain connection is refused");
    assert!(reason.contains("ERROR 1045"), "{reason}");
    assert!(reason.contains("require_secure_transport=ON"), "{reason}");
    assert!(
        reason.contains("set mysql_ssl_mode to preferred or stricter"),
        "{reason}"
    );
    assert!(!reason.contains(TLS_PASSWORD), "{reason}");
    assert_eq!(
        s.record(&check(now_ms(), 600, 600)).await,
        Ok(Recorded::Spooled)
    );
    s.close().await;
    assert_eq!(server.count_runs(&account.db), 4);
    assert_eq!(lines(&state).len(), 1);
}

#[tokio::test]
async fn mysql_tls_verify_with_another_ca_is_refused_saying_so_and_the_record_is_spooled() {
    let server = tls_mariadb::for_loopback();
    let account = server.account(TLS_PASSWORD);
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let other = server.other_ca.display().to_string();
    let cases = [
        (
            SslMode::VerifyCa,
            Some(server.other_ca.as_path()),
            format!(
                "TLS: the server certificate is not signed by mysql_ssl_ca ({other}) \
                 (mysql_ssl_mode `verify_ca`)"
            ),
        ),
        (
            SslMode::VerifyIdentity,
            Some(server.other_ca.as_path()),
            format!(
                "TLS: the server certificate is not signed by mysql_ssl_ca ({other}) \
                 (mysql_ssl_mode `verify_identity`)"
            ),
        ),
        // No mysql_ssl_ca: the bundled public roots, which never signed it.
        (
            SslMode::VerifyIdentity,
            None,
            "TLS: the server certificate is not signed by any of the bundled public root CAs \
             (set mysql_ssl_ca to the bundle of the CA that signed it, e.g. the RDS one) \
             (mysql_ssl_mode `verify_identity`)"
                .to_string(),
        ),
    ];
    for (i, (mode, ca, want)) in cases.into_iter().enumerate() {
        let (s, reason) = tls_open(&tls_settings(&account, "127.0.0.1", mode, ca), &state).await;
        assert_eq!(reason.as_deref(), Some(want.as_str()), "{mode}");
        assert!(matches!(
            s.history(now_ms()).await,
            Err(StoreError::Unreachable(_))
        ));
        let r = check(now_ms(), 600, 600);
        assert_eq!(s.record(&r).await, Ok(Recorded::Spooled), "{mode}");
        s.close().await;
        let spooled = lines(&state);
        assert_eq!(spooled.len(), i + 1, "{mode}");
        assert_eq!(spooled[i]["run_id"], r.run_id.as_str());
    }
    assert_eq!(
        server.count_runs(&account.db),
        0,
        "nothing reached the server"
    );

    // With the right CA the next run writes what was spooled.
    let right = tls_settings(&account, "127.0.0.1", SslMode::VerifyCa, Some(&server.ca));
    let (s, reason) = tls_open(&right, &state).await;
    assert_eq!(reason, None);
    s.close().await;
    assert_eq!(server.count_runs(&account.db), 3);
    assert!(lines(&state).is_empty());
}

#[tokio::test]
async fn mysql_tls_verify_identity_checks_the_name_and_verify_ca_does_not() {
    let server = tls_mariadb::for_another_name();
    // This server also takes plain connections from this account: a client
    // that fell back to plain after the name check failed would get in.
    let account = server.account_allowing_plain(TLS_PASSWORD);
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let ca = Some(server.ca.as_path());

    let identity = tls_settings(&account, "127.0.0.1", SslMode::VerifyIdentity, ca);
    let (s, reason) = tls_open(&identity, &state).await;
    assert_eq!(
        reason.as_deref(),
        Some(
            format!(
                "TLS: the server certificate is for `{OTHER_NAME}`, not `127.0.0.1` \
                 (mysql_ssl_mode verify_identity checks the name: set mysql_host to a name \
                 the certificate carries, or use verify_ca)"
            )
            .as_str()
        )
    );
    assert_eq!(
        s.record(&check(now_ms(), 600, 600)).await,
        Ok(Recorded::Spooled)
    );
    s.close().await;
    assert_eq!(server.count_runs(&account.db), 0, "no downgrade to plain");

    let ca_only = tls_settings(&account, "127.0.0.1", SslMode::VerifyCa, ca);
    let (s, reason) = tls_open(&ca_only, &state).await;
    assert_eq!(reason, None, "verify_ca takes any name the CA signed");
    assert!(
        s.describe().ends_with("(TLS, verify_ca)"),
        "{}",
        s.describe()
    );
    s.record(&check(now_ms(), 600, 600)).await.unwrap();
    s.close().await;
    assert_eq!(
        server.count_runs(&account.db),
        2,
        "the spooled record, then this one"
    );

    // The server takes plain connections, and `disabled` makes one.
    let plain = tls_settings(&account, "127.0.0.1", SslMode::Disabled, None);
    let (s, reason) = tls_open(&plain, &state).await;
    assert_eq!(reason, None);
    assert!(
        s.describe().ends_with("(not encrypted)"),
        "{}",
        s.describe()
    );
    s.close().await;
}

#[tokio::test]
async fn mysql_tls_verify_identity_accepts_a_dns_name_on_the_certificate() {
    let server = tls_mariadb::for_loopback();
    let account = server.account(TLS_PASSWORD);
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let by_name = tls_settings(
        &account,
        "localhost",
        SslMode::VerifyIdentity,
        Some(&server.ca),
    );
    let (s, reason) = tls_open(&by_name, &state).await;
    assert_eq!(reason, None);
    s.record(&check(now_ms(), 600, 600)).await.unwrap();
    s.close().await;
    assert_eq!(server.count_runs(&account.db), 1);
}

#[tokio::test]
async fn mysql_preferred_goes_plain_only_when_the_server_offers_no_tls() {
    // The machine's MariaDB has no TLS at all.
    let db = FreshDb::new();
    let dir = tempdir();
    let state = dir.path().join("runs.jsonl");
    let with = |mode| MysqlSettings {
        tls: MysqlTls { mode, ca: None },
        ..settings(&db)
    };
    let s = store::open(Some(&with(SslMode::Preferred)), &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.unreachable(), None, "{}", s.describe());
    assert!(
        s.describe().ends_with("(not encrypted)"),
        "{}",
        s.describe()
    );
    assert_eq!(
        s.try_lock(CLUSTER).await,
        Ok(true),
        "the lock connection is plain too"
    );
    assert_eq!(
        s.record(&check(now_ms(), 600, 600)).await,
        Ok(Recorded::Stored)
    );
    s.close().await;
    assert_eq!(count_runs(&db.name).await, 1);

    for mode in [
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ] {
        let s = store::open(Some(&with(mode)), &state, CLUSTER, TIMEOUT).await;
        let reason = s.unreachable().map(str::to_string);
        assert_eq!(
            reason,
            Some(format!(
                "the server does not offer TLS, and mysql_ssl_mode `{mode}` requires it \
                 (enable TLS on the server, or set mysql_ssl_mode: preferred to allow a \
                 connection without it)"
            ))
        );
        s.close().await;
    }
}

// ---------------------------------------------------------------------------
// File store

fn state_in(dir: &tempfile::TempDir) -> PathBuf {
    // The parent does not exist yet: the store creates it.
    dir.path().join("var").join("hpa-tier").join("runs.jsonl")
}

#[tokio::test]
async fn file_store_keeps_records_history_holds_and_lock_like_mysql() {
    let dir = tempdir();
    let state = state_in(&dir);
    let s = store::open(None, &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.describe(), format!("file {}", state.display()));
    assert_eq!(s.unreachable(), None);
    assert_eq!(s.history(now_ms()).await, Ok(vec![]), "no file yet");

    let now = now_ms();
    let full = everything(now - mins(45));
    let held = upgrade(now - mins(35), 3000, Outcome::Applied, Some(now + mins(60)));
    let r20 = check(now - mins(20), 600, 3000);
    let refused = upgrade(now - mins(10), 5000, Outcome::Blocked, None);
    for r in [&r20, &full, &held, &refused, &r20] {
        assert_eq!(s.record(r).await, Ok(Recorded::Stored));
    }
    assert_eq!(lines(&state).len(), 4, "a run id is written once");
    assert_eq!(
        s.history(now - mins(30)).await.unwrap(),
        [held.clone(), r20.clone(), refused.clone()]
    );
    assert_eq!(s.latest(2).await.unwrap(), [refused.clone(), r20.clone()]);
    // `full` is a partial upgrade that took effect, but `held` is newer.
    assert_eq!(s.last_upgrade().await.unwrap(), Some(held.clone()));
    assert_eq!(
        active_hold(Some(&held), now).map(|h| h.capacity),
        Some(3000)
    );

    // Lines are the record's JSON, readable with jq.
    let first = &lines(&state)[0];
    assert_eq!(first["cluster"], CLUSTER);
    assert_eq!(first["run_id"], r20.run_id.as_str());
    assert_eq!(first["outcome"], "noop");

    let rival = store::open(None, &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.try_lock(CLUSTER).await, Ok(true));
    assert_eq!(rival.try_lock(CLUSTER).await, Ok(false));
    // The lock holder can still write while holding it.
    let late = check(now - mins(1), 600, 3000);
    assert_eq!(s.record(&late).await, Ok(Recorded::Stored));
    s.close().await;
    assert_eq!(rival.try_lock(CLUSTER).await, Ok(true));
    // The rival, now holding the lock, reads what the first run wrote.
    assert_eq!(rival.latest(1).await.unwrap(), [late]);
    rival.close().await;
}

#[tokio::test]
async fn file_store_steps_over_a_line_cut_short_by_a_crash() {
    let dir = tempdir();
    let state = state_in(&dir);
    let s = store::open(None, &state, CLUSTER, TIMEOUT).await;
    let now = now_ms();
    let before = check(now - mins(10), 600, 600);
    s.record(&before).await.unwrap();
    // A run died halfway through its write.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&state)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"cluster":"prod","run_id":"half"#).unwrap();
    drop(f);
    assert_eq!(s.latest(5).await.unwrap(), std::slice::from_ref(&before));

    let after = check(now - mins(5), 600, 600);
    s.record(&after).await.unwrap();
    assert_eq!(s.latest(5).await.unwrap(), [after.clone(), before.clone()]);
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 3, "{text}");
    s.close().await;
}

#[tokio::test]
async fn file_store_compacts_a_big_file_but_keeps_the_hold() {
    let dir = tempdir();
    let state = state_in(&dir);
    let s = store::open(None, &state, CLUSTER, TIMEOUT).await;
    let now = now_ms();
    let days = |n: i64| SignedDuration::from_hours(24 * n);
    let hold = upgrade(now - days(20), 3000, Outcome::Applied, Some(now + days(30)));
    s.record(&hold).await.unwrap();
    // Ten days of old, bulky records, as a long-lived file would hold.
    let filler = "x".repeat(64 * 1024);
    let mut text = String::new();
    for i in 0..70 {
        let mut r = check(now - days(10) + mins(i), 600, 3000);
        r.message = filler.clone();
        let mut line = serde_json::to_value(&r).unwrap();
        line["cluster"] = CLUSTER.into();
        text.push_str(&format!("{line}\n"));
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&state)
        .unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    drop(f);
    assert_eq!(s.latest(100).await.unwrap().len(), 71);

    let recent = check(now - mins(5), 600, 3000);
    s.record(&recent).await.unwrap();

    let size = std::fs::metadata(&state).unwrap().len();
    assert!(size < 1024 * 1024, "compacted to {size} bytes");
    assert_eq!(mode(&state), 0o600, "the rewritten file is the store's own");
    assert_eq!(
        files_in(state.parent().unwrap()),
        ["runs.jsonl", "runs.jsonl.lock", "runs.jsonl.samples"],
        "no temporary file left behind"
    );
    assert_eq!(
        ids(&s.latest(100).await.unwrap()),
        ids(&[recent, hold.clone()])
    );
    assert_eq!(s.last_upgrade().await.unwrap(), Some(hold));
    s.close().await;
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn file_store_files_are_0600_whatever_the_umask_allows() {
    // The process's umask (022 under scripts/test.sh) would leave 0644;
    // tests/it/e2e.rs runs the binary under umask 000 and 022.
    let dir = tempdir();
    let state = state_in(&dir);
    let s = store::open(None, &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.try_lock(CLUSTER).await, Ok(true));
    s.record(&check(now_ms(), 600, 600)).await.unwrap();
    s.close().await;
    let lock = state.with_file_name("runs.jsonl.lock");
    assert_eq!((mode(&state), mode(&lock)), (0o600, 0o600));
}

#[tokio::test]
async fn file_store_refuses_a_symlinked_state_file_and_leaves_its_target_alone() {
    let dir = tempdir();
    let target = dir.path().join("precious");
    std::fs::write(&target, "not a run record\n").unwrap();
    let state = dir.path().join("runs.jsonl");
    std::os::unix::fs::symlink(&target, &state).unwrap();
    let refused = format!(
        "refusing {}: it is a symbolic link, and hpa-tier never follows one to a file it \
         writes (set state_file to the real path)",
        state.display()
    );

    let s = store::open(None, &state, CLUSTER, TIMEOUT).await;
    let r = check(now_ms(), 600, 600);
    assert_eq!(s.record(&r).await, Err(StoreError::Io(refused.clone())));
    assert_eq!(
        s.history(now_ms()).await,
        Err(StoreError::Io(refused.clone()))
    );
    s.close().await;
    // As the spool of an unreachable MySQL, too.
    let db = FreshDb::new();
    let down = store::open(Some(&dead(&db.name, "")), &state, CLUSTER, TIMEOUT).await;
    let e = down.record(&r).await.unwrap_err().to_string();
    assert!(e.contains(&refused), "{e}");
    down.close().await;
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "not a run record\n"
    );

    // A symlinked lock file is refused the same way.
    let real = dir.path().join("real.jsonl");
    let lock = dir.path().join("real.jsonl.lock");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let s = store::open(None, &real, CLUSTER, TIMEOUT).await;
    let e = s.try_lock(CLUSTER).await.unwrap_err().to_string();
    assert!(e.contains(&format!("refusing {}", lock.display())), "{e}");
    s.close().await;
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "not a run record\n"
    );
}

#[tokio::test]
async fn file_store_dry_run_creates_nothing() {
    let dir = tempdir();
    let state = state_in(&dir);
    let s = store::open_read_only(None, &state, CLUSTER, TIMEOUT).await;
    assert_eq!(s.try_lock(CLUSTER).await, Ok(true));
    assert_eq!(s.history(now_ms()).await, Ok(vec![]));
    assert!(s.record(&check(now_ms(), 600, 600)).await.is_err());
    s.close().await;
    assert!(
        !state.parent().unwrap().exists(),
        "no directory, no lock file"
    );
}
