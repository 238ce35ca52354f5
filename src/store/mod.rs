//! The run store: records, history, holds and the run lock (SPEC §5).
//!
//! MySQL when `mysql_host` is set, else JSON lines in `state_file`. When MySQL
//! is configured but unreachable, records are spooled to `state_file` and
//! written by the next run that reaches it.

pub mod file;
pub mod mysql;

use std::future::Future;

use jiff::Timestamp;

use crate::record::RunRecord;

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
