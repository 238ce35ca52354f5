//! The MySQL store (mysql_async): the `hpa_tier_runs` table, its versioned
//! schema, history and hold queries, the per-cluster `GET_LOCK`, and writing
//! the spool once MySQL answers again.
//!
//! The connection is TLS as `mysql_ssl_mode` says (see `tls`); with
//! `preferred`, a server that offers no TLS is connected to in plain.
//!
//! Written for the SQL MariaDB 10.x and MySQL 8 (Aurora) share. Times are
//! `DATETIME(3)` in UTC: a record's instants come back to the millisecond
//! (finer digits are dropped when written). Every call — connecting
//! included — is bounded by the configured timeout. The password is only
//! ever handed to the driver; no message or log built here can contain it.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use mysql_async::prelude::Queryable;
use mysql_async::{
    Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Row, SslOpts, TxOpts, Value,
};

use super::spool::Spool;
use super::{Recorded, RunStore, StoreError, tls};
use crate::config::{MysqlSettings, MysqlTls, SslMode};
use hpa_tier_core::record::{CommandKind, Outcome, RunRecord};
use hpa_tier_core::tiers::MAX_COUNT;

/// The runs table.
pub const RUNS_TABLE: &str = "hpa_tier_runs";
/// Which schema migrations have been applied.
pub const SCHEMA_TABLE: &str = "hpa_tier_schema";

/// One schema step. MySQL commits DDL as it goes, so a run that dies
/// halfway leaves a step the next run must be able to apply again: each
/// statement is idempotent on its own (`IF NOT EXISTS`), or the step has a
/// `done` query telling whether it is already there (MySQL 8 has no
/// `ADD COLUMN IF NOT EXISTS`; information_schema needs no privilege).
pub struct Migration {
    pub version: u32,
    pub description: &'static str,
    pub statements: &'static [&'static str],
    /// Counts what the statements create; above zero: skip them.
    pub done: Option<&'static str>,
}

/// Every migration, in order. Append; never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "hpa_tier_runs: one row per check/upgrade run",
        statements: &["CREATE TABLE IF NOT EXISTS hpa_tier_runs (
        id BIGINT NOT NULL AUTO_INCREMENT,
        run_id VARCHAR(255) NOT NULL,
        cluster VARCHAR(255) NOT NULL,
        started_at DATETIME(3) NOT NULL,
        finished_at DATETIME(3) NOT NULL,
        command VARCHAR(16) NOT NULL,
        users INT UNSIGNED NULL,
        needed_capacity INT UNSIGNED NULL,
        from_capacity INT UNSIGNED NULL,
        to_capacity INT UNSIGNED NULL,
        outcome VARCHAR(16) NOT NULL,
        message MEDIUMTEXT NOT NULL,
        detail JSON NULL,
        hold_until DATETIME(3) NULL,
        notified JSON NULL,
        PRIMARY KEY (id),
        UNIQUE KEY hpa_tier_runs_run_id (run_id),
        KEY hpa_tier_runs_cluster_started (cluster, started_at),
        KEY hpa_tier_runs_cluster_command_started (cluster, command, started_at)
    ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4"],
        done: None,
    },
    Migration {
        version: 2,
        description: "forecast_capacity; an index the forecast's history read is served from alone",
        statements: &["ALTER TABLE hpa_tier_runs \
        ADD COLUMN forecast_capacity INT UNSIGNED NULL, \
        ADD KEY hpa_tier_runs_samples (cluster, command, started_at, users)"],
        // One ALTER adds both, so the column tells whether it ran.
        done: Some(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'hpa_tier_runs' AND COLUMN_NAME = 'forecast_capacity'",
        ),
    },
];

const COLUMNS: &str = "run_id, started_at, finished_at, command, users, needed_capacity, \
     from_capacity, to_capacity, outcome, message, detail, hold_until, notified, forecast_capacity";

/// Idempotent on `run_id`; unlike `INSERT IGNORE` it still fails on bad data
/// instead of quietly truncating it.
const INSERT: &str = "INSERT INTO hpa_tier_runs (cluster, run_id, started_at, finished_at, \
     command, users, needed_capacity, from_capacity, to_capacity, outcome, message, detail, \
     hold_until, notified, forecast_capacity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE run_id = run_id";

/// `ER_NO_SUCH_TABLE`: a read-only run against a database never migrated.
const ER_NO_SUCH_TABLE: u16 = 1146;

/// `user@host:port/database`, for messages: never the password.
pub fn target(s: &MysqlSettings) -> String {
    format!("{}@{}:{}/{}", s.user, s.host, s.port, s.database)
}

/// A `GET_LOCK` name: server-wide, so it names the database too; at most 64
/// characters, so long ones are hashed.
pub fn lock_name(kind: &str, database: &str, name: &str) -> String {
    let plain = format!("hpa-tier:{kind}:{database}:{name}");
    if plain.chars().count() <= 64 {
        return plain;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, plain.as_bytes());
    let hex: String = digest.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("hpa-tier:{kind}:{hex}")
}

/// A record instant as a `DATETIME(3)` value in UTC (milliseconds kept).
pub fn datetime_value(ts: Timestamp) -> Result<Value, StoreError> {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    if !(1000..=9999).contains(&dt.year()) {
        return Err(StoreError::Query(format!(
            "{ts} is outside the years MySQL DATETIME can hold (1000-9999)"
        )));
    }
    Ok(Value::Date(
        dt.year() as u16,
        dt.month() as u8,
        dt.day() as u8,
        dt.hour() as u8,
        dt.minute() as u8,
        dt.second() as u8,
        (dt.subsec_nanosecond() / 1_000_000 * 1_000) as u32,
    ))
}

/// A `DATETIME` read back (binary protocol, or text as some servers send it)
/// as the UTC instant it was written as.
pub fn timestamp_of(v: &Value) -> Result<Timestamp, String> {
    let dt = match v {
        Value::Date(y, mo, d, h, mi, s, us) => {
            // Fields as the wire gave them: out of range is an error, not a
            // wrapped cast (a microsecond count past 2^31/1000 overflowed).
            let field = |v: u32, what: &str| {
                i8::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
            };
            DateTime::new(
                i16::try_from(*y).map_err(|_| format!("year {y} is out of range"))?,
                field(u32::from(*mo), "month")?,
                field(u32::from(*d), "day")?,
                field(u32::from(*h), "hour")?,
                field(u32::from(*mi), "minute")?,
                field(u32::from(*s), "second")?,
                i32::try_from(u64::from(*us) * 1_000)
                    .map_err(|_| format!("microsecond {us} is out of range"))?,
            )
            .map_err(|e| e.to_string())?
        }
        Value::Bytes(b) => std::str::from_utf8(b)
            .map_err(|e| e.to_string())?
            .parse::<DateTime>()
            .map_err(|e| e.to_string())?,
        other => return Err(format!("not a DATETIME: {other:?}")),
    };
    dt.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

/// The values of [`INSERT`] for one record.
pub fn insert_params(cluster: &str, r: &RunRecord) -> Result<Vec<Value>, StoreError> {
    let json = |v: &serde_json::Value| -> Value {
        if v.is_null() {
            Value::NULL
        } else {
            Value::from(v.to_string())
        }
    };
    Ok(vec![
        Value::from(cluster),
        Value::from(r.run_id.as_str()),
        datetime_value(r.started_at)?,
        datetime_value(r.finished_at)?,
        Value::from(r.command.as_str()),
        Value::from(r.users),
        Value::from(r.needed_capacity),
        Value::from(r.from_capacity),
        Value::from(r.to_capacity),
        Value::from(r.outcome.as_str()),
        Value::from(r.message.as_str()),
        json(&r.detail),
        match r.hold_until {
            Some(t) => datetime_value(t)?,
            None => Value::NULL,
        },
        Value::from(serde_json::Value::from(r.notified.clone()).to_string()),
        Value::from(r.forecast_capacity),
    ])
}

/// A row of [`COLUMNS`] as a record.
pub fn record_of(row: Row) -> Result<RunRecord, String> {
    let mut values = row.unwrap();
    if values.len() != 14 {
        return Err(format!("expected 14 columns, got {}", values.len()));
    }
    let mut take = {
        let mut i = 0;
        move || {
            let v = std::mem::replace(&mut values[i], Value::NULL);
            i += 1;
            v
        }
    };
    fn text(v: Value, col: &str) -> Result<String, String> {
        mysql_async::from_value_opt::<String>(v).map_err(|e| format!("{col}: {e}"))
    }
    fn opt_u32(v: Value, col: &str) -> Result<Option<u32>, String> {
        mysql_async::from_value_opt::<Option<u32>>(v).map_err(|e| format!("{col}: {e}"))
    }
    fn json(v: Value, col: &str) -> Result<serde_json::Value, String> {
        match mysql_async::from_value_opt::<Option<String>>(v).map_err(|e| format!("{col}: {e}"))? {
            None => Ok(serde_json::Value::Null),
            Some(s) => serde_json::from_str(&s).map_err(|e| format!("{col}: {e}")),
        }
    }
    let ts = |v: Value, col: &str| timestamp_of(&v).map_err(|e| format!("{col}: {e}"));

    let run_id = text(take(), "run_id")?;
    let started_at = ts(take(), "started_at")?;
    let finished_at = ts(take(), "finished_at")?;
    let command = match text(take(), "command")?.as_str() {
        "check" => CommandKind::Check,
        "upgrade" => CommandKind::Upgrade,
        other => return Err(format!("command: unknown value {other:?}")),
    };
    let users = opt_u32(take(), "users")?;
    let needed_capacity = opt_u32(take(), "needed_capacity")?;
    let from_capacity = opt_u32(take(), "from_capacity")?;
    let to_capacity = opt_u32(take(), "to_capacity")?;
    let outcome = text(take(), "outcome")?;
    let outcome =
        Outcome::parse(&outcome).ok_or_else(|| format!("outcome: unknown value {outcome:?}"))?;
    let message = text(take(), "message")?;
    let detail = json(take(), "detail")?;
    let hold_until = match take() {
        Value::NULL => None,
        v => Some(ts(v, "hold_until")?),
    };
    let notified = match json(take(), "notified")? {
        serde_json::Value::Null => vec![],
        v => serde_json::from_value(v).map_err(|e| format!("notified: {e}"))?,
    };
    let forecast_capacity = opt_u32(take(), "forecast_capacity")?;
    let record = RunRecord {
        run_id,
        started_at,
        finished_at,
        command,
        users,
        needed_capacity,
        from_capacity,
        to_capacity,
        outcome,
        message,
        detail,
        hold_until,
        notified,
        forecast_capacity,
    };
    // Named by run_id, so the operator can find the row to fix.
    record
        .validate()
        .map_err(|e| format!("run_id {:?}: {e}", record.run_id))?;
    Ok(record)
}

/// `ER_SECURE_TRANSPORT_REQUIRED` (MySQL 8; MariaDB answers 1045 instead).
const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;

/// What an SRE can do about a server error, by code; `encrypted`: whether
/// the connection that got it was TLS.
fn hint(code: u16, encrypted: bool) -> &'static str {
    match code {
        // MariaDB refuses a plain connection to a server with
        // require_secure_transport=ON, or to a REQUIRE SSL account, with
        // the same error as a wrong password.
        1045 if !encrypted => {
            " (check mysql_user and mysql_pwd; and this connection is not encrypted: a server \
             with require_secure_transport=ON, or an account created REQUIRE SSL, refuses it \
             with just this error: set mysql_ssl_mode to preferred or stricter, with TLS \
             enabled on the server)"
        }
        1045 => " (check mysql_user and mysql_pwd)",
        ER_SECURE_TRANSPORT_REQUIRED => {
            " (the server accepts only secure transport, require_secure_transport=ON: set \
             mysql_ssl_mode to preferred or stricter)"
        }
        // The privileges of deploy/mysql/grants.sql (tests/it/e2e.rs holds
        // the two to the same list).
        1044 | 1142 | 1143 => {
            " (grant the mysql_user CREATE, SELECT, INSERT, UPDATE and ALTER on mysql_db, as \
             deploy/mysql/grants.sql does)"
        }
        1049 => " (create the database named by mysql_db, or fix mysql_db)",
        _ => "",
    }
}

/// The dedicated connection that holds the run lock until `close`: a pooled
/// connection would be reset (and lose the lock) when returned.
#[derive(Default)]
struct LockConn {
    conn: Option<Conn>,
    names: Vec<String>,
}

pub struct MysqlStore {
    pool: Pool,
    opts: Opts,
    tls: MysqlTls,
    host: String,
    /// Whether the connections are TLS (`preferred` may have found none).
    encrypted: bool,
    target: String,
    database: String,
    scope: String,
    timeout: Duration,
    read_only: bool,
    /// Where a record goes when MySQL fails mid-run.
    spool: Spool,
    lock: tokio::sync::Mutex<LockConn>,
}

impl MysqlStore {
    /// Connects and, unless `read_only`, creates or migrates the schema.
    pub async fn connect(
        settings: &MysqlSettings,
        scope: &str,
        timeout: Duration,
        spool: Spool,
        read_only: bool,
    ) -> Result<MysqlStore, StoreError> {
        let ssl = tls::ssl_opts(&settings.tls, &settings.host);
        let encrypted = ssl.is_some();
        let opts = options(settings, ssl);
        let mut store = MysqlStore {
            pool: Pool::new(opts.clone()),
            opts,
            tls: settings.tls.clone(),
            host: settings.host.clone(),
            encrypted,
            target: target(settings),
            database: settings.database.clone(),
            scope: scope.to_string(),
            timeout,
            read_only,
            spool,
            lock: tokio::sync::Mutex::new(LockConn::default()),
        };
        let ready = async {
            store.first_contact(settings).await?;
            if !read_only {
                store.migrate().await?;
            }
            Ok(())
        };
        match ready.await {
            Ok(()) => Ok(store),
            Err(e) => {
                store.close().await;
                Err(e)
            }
        }
    }

    /// Where a record MySQL cannot take goes.
    pub fn spool_location(&self) -> String {
        self.spool.location()
    }

    pub fn describe(&self) -> String {
        let transport = match (self.encrypted, self.tls.mode) {
            (false, _) => "not encrypted".to_string(),
            (true, mode) if mode.verifies() => format!("TLS, {mode}"),
            (true, _) => "TLS, certificate not verified".to_string(),
        };
        format!(
            "MySQL {} ({transport}){}",
            self.target,
            if self.read_only { " (read-only)" } else { "" }
        )
    }

    fn error(&self, e: mysql_async::Error) -> StoreError {
        match e {
            mysql_async::Error::Server(s) => StoreError::Query(format!(
                "MySQL {}: ERROR {} ({}): {}{}",
                self.target,
                s.code,
                s.state,
                s.message,
                hint(s.code, self.encrypted)
            )),
            other => {
                let text = tls::explain(&other, &self.tls, &self.host)
                    .unwrap_or_else(|| other.to_string());
                StoreError::Unreachable(format!("MySQL {}: {text}", self.target))
            }
        }
    }

    /// The first connection, which tells whether the server offers TLS.
    /// With `preferred` and a server that offers none, the store switches
    /// to plain connections; any other failure stands.
    async fn first_contact(&mut self, settings: &MysqlSettings) -> Result<(), StoreError> {
        let deadline = Instant::now() + self.timeout;
        let ping = |pool: Pool| async move {
            let mut conn = pool.get_conn().await?;
            conn.ping().await
        };
        match self.within(self.timeout, ping(self.pool.clone())).await? {
            Ok(()) => return Ok(()),
            Err(e) if tls::not_offered(&e) && self.tls.mode == SslMode::Preferred => {}
            Err(e) => return Err(self.error(e)),
        }
        tracing::warn!(
            mysql = %self.target,
            "the MySQL server offers no TLS: connecting without encryption (mysql_ssl_mode: \
             preferred; `required` or stricter refuses such a server)"
        );
        self.opts = options(settings, None);
        self.encrypted = false;
        let tls_pool = std::mem::replace(&mut self.pool, Pool::new(self.opts.clone()));
        let _ = tls_pool.disconnect().await;
        let left = deadline.saturating_duration_since(Instant::now());
        self.bounded(left, ping(self.pool.clone())).await
    }

    /// Runs one exchange with the server under `limit`.
    async fn bounded<T>(
        &self,
        limit: Duration,
        f: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, StoreError> {
        self.within(limit, f).await?.map_err(|e| self.error(e))
    }

    /// As `bounded`, leaving the driver's error for the caller to inspect.
    async fn within<T>(
        &self,
        limit: Duration,
        f: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<Result<T, mysql_async::Error>, StoreError> {
        tokio::time::timeout(limit, f).await.map_err(|_| {
            StoreError::Unreachable(format!(
                "MySQL {}: no answer within {}s (timeout_seconds)",
                self.target,
                limit.as_secs_f32()
            ))
        })
    }

    /// Brings the schema to the newest version. Two runs starting together
    /// on a new database take turns through `GET_LOCK`.
    async fn migrate(&self) -> Result<(), StoreError> {
        let wait = self.timeout.as_secs().max(1);
        let name = lock_name("schema", &self.database, "");
        let mut conn = self.bounded(self.timeout, self.pool.get_conn()).await?;
        // The wait for the lock is the timeout; the migration itself gets another.
        let got: Option<Option<i64>> = self
            .bounded(
                self.timeout + Duration::from_secs(wait),
                conn.exec_first("SELECT GET_LOCK(?, ?)", (name.as_str(), wait)),
            )
            .await?;
        if got.flatten() != Some(1) {
            return Err(StoreError::Unreachable(format!(
                "MySQL {}: another hpa-tier run held the schema lock for more than {wait}s",
                self.target
            )));
        }
        let migrated = self
            .bounded(self.timeout * 2, migrate_locked(&mut conn))
            .await;
        let released = self
            .bounded(
                self.timeout,
                conn.exec_drop("SELECT RELEASE_LOCK(?)", (name.as_str(),)),
            )
            .await;
        let applied = migrated?;
        released?;
        for m in applied {
            tracing::info!(
                mysql = %self.target,
                version = m.version,
                "applied schema migration: {}",
                m.description
            );
        }
        Ok(())
    }

    /// Writes the records spooled for this scope, then removes them from the
    /// spool. Returns how many there were. A failed insert leaves the spool
    /// as it was; a crash after the commit leaves records MySQL already has,
    /// which the next flush skips by their run id.
    pub async fn flush_spool(&self) -> Result<usize, StoreError> {
        let pending = self.spool.pending().await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let rows = pending
            .iter()
            .map(|r| insert_params(&self.scope, r))
            .collect::<Result<Vec<_>, _>>()?;
        self.bounded(self.timeout * 2, async {
            let mut conn = self.pool.get_conn().await?;
            let mut tx = conn.start_transaction(TxOpts::default()).await?;
            tx.exec_batch(INSERT, rows).await?;
            tx.commit().await
        })
        .await?;
        let ids: HashSet<String> = pending.iter().map(|r| r.run_id.clone()).collect();
        if let Err(e) = self.spool.remove(ids).await {
            // They are in MySQL now; the next flush finds them there.
            tracing::error!(
                spool = %self.spool.location(),
                error = %e,
                "spooled records were written to MySQL but could not be removed from the spool"
            );
        }
        Ok(pending.len())
    }

    async fn rows(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        match self
            .within(self.timeout, async {
                let mut conn = self.pool.get_conn().await?;
                conn.exec(sql, params).await
            })
            .await?
        {
            Ok(rows) => Ok(rows),
            // Only a read-only run can find no table: nothing recorded yet.
            Err(mysql_async::Error::Server(e)) if self.read_only && e.code == ER_NO_SUCH_TABLE => {
                Ok(vec![])
            }
            Err(e) => Err(self.error(e)),
        }
    }

    async fn select(&self, sql: &str, params: Vec<Value>) -> Result<Vec<RunRecord>, StoreError> {
        self.rows(sql, params)
            .await?
            .into_iter()
            .map(|row| record_of(row).map_err(|e| self.not_a_record(e)))
            .collect()
    }

    fn not_a_record(&self, e: String) -> StoreError {
        StoreError::Query(format!(
            "MySQL {}: a row of {RUNS_TABLE} is not a run record: {e}",
            self.target
        ))
    }
}

/// The driver's options: the pool, and TLS as `ssl` says (`None`: plain).
fn options(settings: &MysqlSettings, ssl: Option<SslOpts>) -> Opts {
    let constraints = PoolConstraints::new(0, 4).expect("0 <= 4");
    OptsBuilder::default()
        .ip_or_hostname(settings.host.clone())
        .tcp_port(settings.port)
        .user(Some(settings.user.clone()))
        .pass(Some(settings.password.expose().to_string()))
        .db_name(Some(settings.database.clone()))
        // A loopback host would otherwise switch to the unix socket,
        // which a container may not have.
        .prefer_socket(false)
        .ssl_opts(ssl)
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                // Keep returned connections for the rest of the run.
                // Without a TTL the pool closes each one as it comes
                // back, and every query paid for a new connection:
                // seven per `check`, three or four with this.
                .with_inactive_connection_ttl(Duration::from_secs(60))
                // Sessions carry no state worth resetting; the lock has
                // its own connection.
                .with_reset_connection(false),
        )
        .into()
}

/// Applies the migrations the database lacks; returns them.
async fn migrate_locked(conn: &mut Conn) -> Result<Vec<&'static Migration>, mysql_async::Error> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS hpa_tier_schema (
            version INT NOT NULL,
            description VARCHAR(255) NOT NULL,
            applied_at DATETIME(3) NOT NULL,
            PRIMARY KEY (version)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await?;
    let current: Option<u32> = conn
        .query_first::<Option<u32>, _>("SELECT MAX(version) FROM hpa_tier_schema")
        .await?
        .flatten();
    let current = current.unwrap_or(0);
    let newest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > newest {
        tracing::warn!(
            schema = current,
            known = newest,
            "the database schema is newer than this hpa-tier knows; carrying on, as \
             migrations only ever add"
        );
    }
    let mut applied = vec![];
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let done = match m.done {
            Some(q) => conn.query_first::<u64, _>(q).await?.unwrap_or(0) > 0,
            None => false,
        };
        if !done {
            for s in m.statements {
                conn.query_drop(*s).await?;
            }
        }
        conn.exec_drop(
            "INSERT INTO hpa_tier_schema (version, description, applied_at) \
             VALUES (?, ?, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE version = version",
            (m.version, m.description),
        )
        .await?;
        applied.push(m);
    }
    Ok(applied)
}

impl RunStore for MysqlStore {
    async fn try_lock(&self, name: &str) -> Result<bool, StoreError> {
        if self.read_only {
            return Ok(true);
        }
        let name = lock_name("run", &self.database, name);
        let mut held = self.lock.lock().await;
        if held.names.contains(&name) {
            return Ok(true);
        }
        if held.conn.is_none() {
            let conn = self
                .bounded(self.timeout, Conn::new(self.opts.clone()))
                .await?;
            held.conn = Some(conn);
        }
        let conn = held.conn.as_mut().expect("set above");
        let got: Option<Option<i64>> = self
            .bounded(
                self.timeout,
                conn.exec_first("SELECT GET_LOCK(?, 0)", (name.as_str(),)),
            )
            .await?;
        match got.flatten() {
            Some(1) => {
                held.names.push(name);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(StoreError::Query(format!(
                "MySQL {}: GET_LOCK({name}) returned NULL (the server could not take the lock)",
                self.target
            ))),
        }
    }

    async fn history(&self, since: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        let cluster = Value::from(self.scope.as_str());
        let since = datetime_value(since)?;
        let mut before = self
            .select(
                &format!(
                    "SELECT {COLUMNS} FROM hpa_tier_runs WHERE cluster = ? AND started_at < ? \
                     ORDER BY started_at DESC, id DESC LIMIT 1"
                ),
                vec![cluster.clone(), since.clone()],
            )
            .await?;
        let within = self
            .select(
                &format!(
                    "SELECT {COLUMNS} FROM hpa_tier_runs WHERE cluster = ? AND started_at >= ? \
                     ORDER BY started_at, id"
                ),
                vec![cluster, since],
            )
            .await?;
        before.extend(within);
        Ok(before)
    }

    async fn samples(&self, since: Timestamp) -> Result<Vec<(Timestamp, u32)>, StoreError> {
        // Two columns, served from the hpa_tier_runs_samples index alone.
        let rows = self
            .rows(
                "SELECT started_at, users FROM hpa_tier_runs WHERE cluster = ? AND command = ? \
                 AND started_at >= ? AND users IS NOT NULL ORDER BY started_at",
                vec![
                    Value::from(self.scope.as_str()),
                    Value::from(CommandKind::Check.as_str()),
                    datetime_value(since)?,
                ],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let (at, users): (Value, Value) =
                    mysql_async::from_row_opt(row).map_err(|e| self.not_a_record(e.to_string()))?;
                let at =
                    timestamp_of(&at).map_err(|e| self.not_a_record(format!("started_at: {e}")))?;
                let users = mysql_async::from_value_opt::<u32>(users)
                    .map_err(|e| e.to_string())
                    .and_then(|u| match u {
                        u if u > MAX_COUNT => Err(format!("{u}, more than {MAX_COUNT} (2^31-1)")),
                        u => Ok(u),
                    })
                    .map_err(|e| self.not_a_record(format!("users: {e}")))?;
                Ok((at, users))
            })
            .collect()
    }

    async fn last_upgrade(&self) -> Result<Option<RunRecord>, StoreError> {
        let took_effect = Outcome::TOOK_EFFECT;
        let placeholders = vec!["?"; took_effect.len()].join(", ");
        let mut params = vec![
            Value::from(self.scope.as_str()),
            Value::from(CommandKind::Upgrade.as_str()),
        ];
        params.extend(took_effect.iter().map(|o| Value::from(o.as_str())));
        Ok(self
            .select(
                &format!(
                    "SELECT {COLUMNS} FROM hpa_tier_runs WHERE cluster = ? AND command = ? \
                     AND outcome IN ({placeholders}) ORDER BY started_at DESC, id DESC LIMIT 1"
                ),
                params,
            )
            .await?
            .pop())
    }

    async fn latest(&self, n: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.select(
            &format!(
                "SELECT {COLUMNS} FROM hpa_tier_runs WHERE cluster = ? \
                 ORDER BY started_at DESC, id DESC LIMIT ?"
            ),
            vec![Value::from(self.scope.as_str()), Value::from(n as u64)],
        )
        .await
    }

    async fn record(&self, record: &RunRecord) -> Result<Recorded, StoreError> {
        if self.read_only {
            return Err(StoreError::Query(
                "the store is open read-only (--dry-run): nothing is recorded".into(),
            ));
        }
        let params = insert_params(&self.scope, record)?;
        let written = self
            .bounded(self.timeout, async {
                let mut conn = self.pool.get_conn().await?;
                conn.exec_drop(INSERT, params).await
            })
            .await;
        let Err(e) = written else {
            return Ok(Recorded::Stored);
        };
        tracing::warn!(
            error = %e,
            spool = %self.spool.location(),
            "the run record could not be written to MySQL; spooling it for the next run"
        );
        match self.spool.record(record).await {
            Ok(_) => Ok(Recorded::Spooled),
            Err(spool_err) => Err(StoreError::Io(format!(
                "{e}; and spooling the record failed too: {spool_err}"
            ))),
        }
    }

    async fn close(self) {
        let held = self.lock.into_inner();
        if let Some(mut conn) = held.conn {
            let released = tokio::time::timeout(self.timeout, async {
                for name in &held.names {
                    conn.exec_drop("SELECT RELEASE_LOCK(?)", (name.as_str(),))
                        .await?;
                }
                conn.disconnect().await
            })
            .await;
            // The server frees the lock with the connection anyway.
            if !matches!(released, Ok(Ok(()))) {
                tracing::debug!(mysql = %self.target, "the lock connection did not close cleanly");
            }
        }
        match tokio::time::timeout(self.timeout, self.pool.disconnect()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(mysql = %self.target, error = %e, "closing the MySQL pool")
            }
            Err(_) => tracing::debug!(mysql = %self.target, "closing the MySQL pool timed out"),
        }
    }

    fn describe(&self) -> String {
        MysqlStore::describe(self)
    }

    fn spool_location(&self) -> String {
        self.spool_location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_values_round_trip_to_the_millisecond() {
        let cases = [
            ("2025-06-01T12:00:00Z", "2025-06-01T12:00:00Z"),
            ("2025-06-01T12:00:00.123Z", "2025-06-01T12:00:00.123Z"),
            ("2025-06-01T12:00:00.123456789Z", "2025-06-01T12:00:00.123Z"),
            ("2025-06-01T14:00:00.999+02:00", "2025-06-01T12:00:00.999Z"),
            ("1999-12-31T23:59:59.999Z", "1999-12-31T23:59:59.999Z"),
        ];
        for (input, want) in cases {
            let ts: Timestamp = input.parse().unwrap();
            let v = datetime_value(ts).unwrap();
            let back = timestamp_of(&v).unwrap();
            assert_eq!(back, want.parse::<Timestamp>().unwrap(), "{input}");
        }
    }

    #[test]
    fn datetime_values_are_utc_fields() {
        let ts: Timestamp = "2025-06-01T14:30:05.042+02:00".parse().unwrap();
        assert_eq!(
            datetime_value(ts).unwrap(),
            Value::Date(2025, 6, 1, 12, 30, 5, 42_000)
        );
        let text = Value::Bytes(b"2025-06-01 12:30:05.042".to_vec());
        assert_eq!(timestamp_of(&text).unwrap(), ts);
        assert!(timestamp_of(&Value::Int(3)).is_err());
    }

    #[test]
    fn a_datetime_with_fields_out_of_range_is_an_error_not_an_overflow() {
        let cases = [
            (
                Value::Date(2026, 3, 2, 12, 0, 0, u32::MAX),
                "microsecond 4294967295",
            ),
            (Value::Date(2026, 3, 2, 12, 0, 0, 1_000_000), "subsecond"),
            (
                Value::Date(u16::MAX, 3, 2, 12, 0, 0, 0),
                "year 65535 is out of range",
            ),
            (
                Value::Date(2026, 200, 2, 12, 0, 0, 0),
                "month 200 is out of range",
            ),
            (Value::Date(2026, 2, 30, 12, 0, 0, 0), "day"),
            (Value::Bytes(b"2026-13-01 00:00:00".to_vec()), "month"),
            (Value::Bytes(vec![0xff]), "utf-8"),
            (Value::Int(7), "not a DATETIME"),
        ];
        for (v, says) in cases {
            let e = timestamp_of(&v).unwrap_err();
            assert!(
                e.to_lowercase().contains(&says.to_lowercase()),
                "{v:?}: {e}"
            );
        }
        assert_eq!(
            timestamp_of(&Value::Date(2026, 3, 2, 12, 0, 0, 999_999)).unwrap(),
            "2026-03-02T12:00:00.999999Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn instants_outside_datetime_are_refused() {
        let ts: Timestamp = "0999-12-31T23:59:59Z".parse().unwrap();
        let e = datetime_value(ts).unwrap_err().to_string();
        assert!(e.contains("1000-9999"), "{e}");
    }

    #[test]
    fn lock_names_fit_mysql_and_stay_distinct() {
        let cases = [
            ("run", "hpa_tier", "prod", "hpa-tier:run:hpa_tier:prod"),
            ("schema", "hpa_tier", "", "hpa-tier:schema:hpa_tier:"),
        ];
        for (kind, db, name, want) in cases {
            assert_eq!(lock_name(kind, db, name), want);
        }
        let arn = "arn:aws:eks:us-east-2:123456789012:cluster/a-very-long-cluster-name";
        let long = lock_name("run", "hpa_tier", arn);
        assert!(long.len() <= 64, "{long}");
        assert!(long.starts_with("hpa-tier:run:"), "{long}");
        assert_eq!(long, lock_name("run", "hpa_tier", arn), "stable");
        assert_ne!(long, lock_name("run", "hpa_tier", &format!("{arn}2")));
        assert_ne!(long, lock_name("run", "other_db", arn));
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.description);
            assert!(!m.statements.is_empty());
            for s in m.statements {
                assert!(
                    s.contains("IF NOT EXISTS") || m.done.is_some(),
                    "not idempotent: {s}"
                );
            }
        }
    }

    #[test]
    fn insert_params_map_every_field() {
        let now: Timestamp = "2025-06-01T12:00:00.5Z".parse().unwrap();
        let mut r = RunRecord::check_needing(2000, 1000, now, 0);
        r.detail = serde_json::json!({"k": [1, 2]});
        r.notified = vec!["blocked:2000".into()];
        let p = insert_params("prod", &r).unwrap();
        assert_eq!(p.len(), INSERT.matches('?').count());
        assert_eq!(p[0], Value::from("prod"));
        assert_eq!(p[1], Value::from(r.run_id.as_str()));
        assert_eq!(p[2], Value::Date(2025, 6, 1, 12, 0, 0, 500_000));
        assert_eq!(p[4], Value::from("check"));
        assert_eq!(p[6], Value::from(2000u32));
        assert_eq!(p[8], Value::from(1000u32));
        assert_eq!(p[11], Value::from(r#"{"k":[1,2]}"#));
        assert_eq!(p[12], Value::NULL);
        assert_eq!(p[13], Value::from(r#"["blocked:2000"]"#));
    }

    #[test]
    fn server_error_hints_name_the_key_to_fix() {
        assert!(hint(1045, true).contains("mysql_pwd"));
        assert!(hint(1045, false).contains("mysql_pwd"));
        assert!(hint(1045, false).contains("require_secure_transport"));
        assert!(!hint(1045, true).contains("require_secure_transport"));
        assert!(hint(ER_SECURE_TRANSPORT_REQUIRED, false).contains("mysql_ssl_mode"));
        assert!(hint(1049, true).contains("mysql_db"));
        assert!(hint(1142, true).contains("grant"));
        assert_eq!(hint(1064, true), "");
    }
}
