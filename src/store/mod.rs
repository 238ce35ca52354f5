//! The run store: records, history, holds and the run lock (README, "Run records").
//!
//! MySQL when `mysql_host` is set, else JSON lines in `state_file`. When MySQL
//! is configured but unreachable, records are spooled — to `state_file`, or
//! to the ConfigMap of `spool_configmap` ([`spool`]) — and written by the
//! next run that reaches it, so no record is ever lost; the unique `run_id`
//! makes that write idempotent.
//!
//! Everything is per *scope* (the cluster id): one database or one state file
//! can serve several clusters, each with its own history and lock.
//!
//! [`open`] never fails: it picks the backend the configuration and the
//! network allow, and [`Store::describe`] / [`Store::unreachable`] say which.
//! [`open_read_only`] is what `--dry-run` uses: it reads, and writes nothing.

pub mod configmap;
pub mod file;
pub mod mysql;
mod private;
pub mod spool;
pub mod tls;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

use crate::config::MysqlSettings;
use hpa_tier_core::record::RunRecord;

use self::configmap::ConfigMapSpool;
pub use self::configmap::SpoolConfigMap;
use self::file::{FileStore, Role};
use self::mysql::MysqlStore;
use self::spool::Spool;

pub trait RunStore: Send + Sync {
    /// Takes the run lock named `name` (one per cluster) without waiting.
    /// `Ok(false)`: another run holds it.
    fn try_lock(&self, name: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records started at or after `since`, oldest first, preceded by the
    /// newest record before `since` if there is one (so the caller can tell
    /// whether the history reaches back that far).
    fn history(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<RunRecord>, StoreError>> + Send;
    /// The users of the successful `check` readings started at or after
    /// `since`, oldest first: the forecast's history, two columns only.
    fn samples(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<(Timestamp, u32)>, StoreError>> + Send;
    /// The newest `upgrade` record that took effect (the source of holds).
    fn last_upgrade(&self) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;
    /// The newest `n` records, newest first (for `status`).
    fn latest(&self, n: usize) -> impl Future<Output = Result<Vec<RunRecord>, StoreError>> + Send;
    /// Writes one record. Idempotent on `run_id`. A record MySQL could not
    /// take is spooled to `state_file` (`Recorded::Spooled`): it is kept, but
    /// not where it belongs yet, so the run must still exit 1.
    fn record(
        &self,
        record: &RunRecord,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;
    /// Releases the lock and closes connections.
    fn close(self) -> impl Future<Output = ()> + Send;
    /// Where records go, for reports and `status`; never the password.
    fn describe(&self) -> String;
    /// Where a record MySQL cannot take is kept until the next run.
    fn spool_location(&self) -> String;
}

/// Opens the store of a run: the shell's seam for the store.
pub trait OpenStore: Send + Sync {
    type Store: RunStore;
    /// `writes: false` (`--dry-run`, `status`) reads and writes nothing at
    /// all: no schema, no spool flush, no lock.
    fn open(&self, writes: bool) -> impl Future<Output = Self::Store> + Send;
}

/// The configured store: MySQL (spooling to `state_file` or the spool
/// ConfigMap) or the file store.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mysql: Option<MysqlSettings>,
    pub state_file: std::path::PathBuf,
    /// `spool_configmap`, with the run's Kubernetes connection.
    pub spool_configmap: Option<SpoolConfigMap>,
    /// The records' scope: the cluster id.
    pub scope: String,
    pub timeout: Duration,
}

impl OpenStore for Settings {
    type Store = Store;
    async fn open(&self, writes: bool) -> Store {
        let role = if writes { Role::Spool } else { Role::ReadOnly };
        let file = FileStore::new(&self.state_file, &self.scope, self.timeout, role);
        let spool = match &self.spool_configmap {
            Some(cm) => Spool::ConfigMap(ConfigMapSpool::new(cm, &self.scope, self.timeout, file)),
            None => Spool::File(file),
        };
        let (mysql, state_file) = (self.mysql.as_ref(), self.state_file.as_path());
        match (mysql, writes) {
            (Some(m), true) => open_mysql(m, spool, &self.scope, self.timeout).await,
            (Some(m), false) => open_mysql_read_only(m, spool, &self.scope, self.timeout).await,
            (None, true) => open(None, state_file, &self.scope, self.timeout).await,
            (None, false) => open_read_only(None, state_file, &self.scope, self.timeout).await,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// In the configured store.
    Stored,
    /// MySQL was unreachable; written to the spool for the next run.
    Spooled,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Query(String),
    #[error("{0}")]
    Io(String),
}

/// The store a run uses, chosen by [`open`] / [`open_read_only`].
pub struct Store {
    backend: Backend,
}

enum Backend {
    /// Boxed: the connection pool and its options dwarf the other variants.
    Mysql(Box<MysqlStore>),
    File(FileStore),
    /// MySQL is configured but could not be used: records go to the spool,
    /// reads fail (no history means no scale-down), the lock is the lock file.
    Spool {
        spool: Spool,
        target: String,
        reason: String,
    },
}

/// Opens the store for a run that may write: MySQL when configured and
/// reachable (schema created or migrated, then the spool flushed), the file
/// store when MySQL is not configured, the spool when MySQL is configured but
/// cannot be used. Never fails; logs why it fell back.
pub async fn open(
    mysql: Option<&MysqlSettings>,
    state_file: &Path,
    scope: &str,
    timeout: Duration,
) -> Store {
    let Some(settings) = mysql else {
        return Store {
            backend: Backend::File(FileStore::new(state_file, scope, timeout, Role::Store)),
        };
    };
    let spool = Spool::File(FileStore::new(state_file, scope, timeout, Role::Spool));
    open_mysql(settings, spool, scope, timeout).await
}

/// [`open`] with MySQL configured, spooling to `spool`.
async fn open_mysql(
    settings: &MysqlSettings,
    spool: Spool,
    scope: &str,
    timeout: Duration,
) -> Store {
    let target = mysql::target(settings);
    let location = spool.location();
    let error = match MysqlStore::connect(settings, scope, timeout, spool.clone(), false).await {
        Ok(store) => match store.flush_spool().await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(
                        records = n,
                        spool = %location,
                        "wrote the records spooled while MySQL was unreachable"
                    );
                }
                return Store {
                    backend: Backend::Mysql(Box::new(store)),
                };
            }
            Err(e @ StoreError::Io(_)) => {
                // The spool cannot be read; MySQL itself is fine.
                tracing::error!(
                    spool = %location,
                    error = %e,
                    "cannot read the spool: records spooled earlier stay there until it can be read"
                );
                return Store {
                    backend: Backend::Mysql(Box::new(store)),
                };
            }
            Err(e) => {
                store.close().await;
                StoreError::Query(format!(
                    "writing the records spooled in {location} failed: {e}"
                ))
            }
        },
        Err(e) => e,
    };
    let reason = reason(&target, &error);
    tracing::warn!(
        mysql = %target,
        spool = %location,
        error = %reason,
        "MySQL cannot be used: this run's record is spooled and written by the next run \
         that reaches MySQL; without history there is no scale-down"
    );
    Store {
        backend: Backend::Spool {
            spool,
            target,
            reason,
        },
    }
}

/// Why MySQL cannot be used, without repeating which MySQL.
fn reason(target: &str, e: &StoreError) -> String {
    let text = e.to_string();
    match text.strip_prefix(&format!("MySQL {target}: ")) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Opens the store for `--dry-run`: reads history, holds and the latest runs,
/// and writes nothing at all — no schema (a missing table reads as empty
/// history), no spool flush, no lock (`try_lock` answers `true` without
/// taking anything), and `record` refuses.
pub async fn open_read_only(
    mysql: Option<&MysqlSettings>,
    state_file: &Path,
    scope: &str,
    timeout: Duration,
) -> Store {
    let Some(settings) = mysql else {
        return Store {
            backend: Backend::File(FileStore::new(state_file, scope, timeout, Role::ReadOnly)),
        };
    };
    let spool = Spool::File(FileStore::new(state_file, scope, timeout, Role::ReadOnly));
    open_mysql_read_only(settings, spool, scope, timeout).await
}

/// [`open_read_only`] with MySQL configured.
async fn open_mysql_read_only(
    settings: &MysqlSettings,
    spool: Spool,
    scope: &str,
    timeout: Duration,
) -> Store {
    match MysqlStore::connect(settings, scope, timeout, spool.clone(), true).await {
        Ok(store) => Store {
            backend: Backend::Mysql(Box::new(store)),
        },
        Err(e) => {
            let target = mysql::target(settings);
            let reason = reason(&target, &e);
            tracing::warn!(mysql = %target, error = %reason, "MySQL cannot be read: no history");
            Store {
                backend: Backend::Spool {
                    spool,
                    target,
                    reason,
                },
            }
        }
    }
}

impl Store {
    fn describe_backend(&self) -> String {
        match &self.backend {
            Backend::Mysql(m) => m.describe(),
            Backend::File(f) => f.describe(),
            Backend::Spool {
                spool,
                target,
                reason,
            } if spool.read_only() => {
                format!("MySQL {target} (read-only; unreachable: {reason})")
            }
            Backend::Spool {
                spool,
                target,
                reason,
            } => format!(
                "spool {} (MySQL {target} unreachable: {reason})",
                spool.location()
            ),
        }
    }

    /// Why MySQL could not be used, when records are being spooled.
    pub fn unreachable(&self) -> Option<&str> {
        match &self.backend {
            Backend::Spool { reason, .. } => Some(reason),
            _ => None,
        }
    }

    fn unreachable_error(target: &str, reason: &str) -> StoreError {
        StoreError::Unreachable(format!("MySQL {target} is unreachable: {reason}"))
    }
}

impl RunStore for Store {
    async fn try_lock(&self, name: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Mysql(m) => m.try_lock(name).await,
            Backend::File(f) => f.try_lock(name).await,
            Backend::Spool { spool, .. } => spool.try_lock(name).await,
        }
    }

    async fn history(&self, since: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        match &self.backend {
            Backend::Mysql(m) => m.history(since).await,
            Backend::File(f) => f.history(since).await,
            Backend::Spool { target, reason, .. } => Err(Self::unreachable_error(target, reason)),
        }
    }

    async fn samples(&self, since: Timestamp) -> Result<Vec<(Timestamp, u32)>, StoreError> {
        match &self.backend {
            Backend::Mysql(m) => m.samples(since).await,
            Backend::File(f) => f.samples(since).await,
            Backend::Spool { target, reason, .. } => Err(Self::unreachable_error(target, reason)),
        }
    }

    async fn last_upgrade(&self) -> Result<Option<RunRecord>, StoreError> {
        match &self.backend {
            Backend::Mysql(m) => m.last_upgrade().await,
            Backend::File(f) => f.last_upgrade().await,
            Backend::Spool { target, reason, .. } => Err(Self::unreachable_error(target, reason)),
        }
    }

    async fn latest(&self, n: usize) -> Result<Vec<RunRecord>, StoreError> {
        match &self.backend {
            Backend::Mysql(m) => m.latest(n).await,
            Backend::File(f) => f.latest(n).await,
            Backend::Spool { target, reason, .. } => Err(Self::unreachable_error(target, reason)),
        }
    }

    async fn record(&self, record: &RunRecord) -> Result<Recorded, StoreError> {
        match &self.backend {
            Backend::Mysql(m) => m.record(record).await,
            Backend::File(f) => f.record(record).await,
            Backend::Spool { spool, .. } => spool.record(record).await,
        }
    }

    async fn close(self) {
        match self.backend {
            Backend::Mysql(m) => (*m).close().await,
            Backend::File(f) => f.close().await,
            Backend::Spool { spool, .. } => spool.close().await,
        }
    }

    fn describe(&self) -> String {
        self.describe_backend()
    }

    fn spool_location(&self) -> String {
        match &self.backend {
            Backend::Mysql(m) => m.spool_location(),
            Backend::File(f) => f.path().display().to_string(),
            Backend::Spool { spool, .. } => spool.location(),
        }
    }
}

/// The history answer from records in any order: those started at or after
/// `since`, oldest first, preceded by the newest one before `since`.
pub(crate) fn window(mut records: Vec<RunRecord>, since: Timestamp) -> Vec<RunRecord> {
    records.sort_by_key(|r| r.started_at);
    let first_in = records.partition_point(|r| r.started_at < since);
    let from = first_in.saturating_sub(1);
    records.split_off(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpa_tier_core::record::RunRecord;

    #[test]
    fn window_keeps_the_newest_record_before_since_and_everything_after() {
        let now: Timestamp = "2025-06-01T12:00:00Z".parse().unwrap();
        let at = |mins: i64| RunRecord::check_needing(600, 600, now, mins);
        let since = now - jiff::SignedDuration::from_mins(30);
        let cases: &[(&[i64], &[i64])] = &[
            // minutes ago, in store order -> minutes ago returned, oldest first
            (&[], &[]),
            (&[5, 10], &[10, 5]),
            (&[40, 35, 25, 5], &[35, 25, 5]),
            (&[5, 35, 40, 25], &[35, 25, 5]),
            (&[30, 31], &[31, 30]),
            (&[45, 50], &[45]),
        ];
        for (input, want) in cases {
            let got: Vec<i64> = window(input.iter().map(|m| at(*m)).collect(), since)
                .iter()
                .map(|r| now.duration_since(r.started_at).as_mins())
                .collect();
            assert_eq!(&got, want, "input {input:?}");
        }
    }
}
