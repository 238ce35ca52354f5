//! Where a record MySQL could not take waits for the next run that reaches
//! MySQL: `state_file` (the file spool), or the ConfigMap of
//! `spool_configmap`, which outlives the pod. Either way the run lock is
//! the lock file next to `state_file` while MySQL is down, and `state_file`
//! is the spool of last resort.

use std::collections::HashSet;

use hpa_tier_core::record::RunRecord;

use super::configmap::ConfigMapSpool;
use super::file::{FileStore, Role};
use super::{Recorded, RunStore, StoreError};

#[derive(Clone)]
pub enum Spool {
    File(FileStore),
    ConfigMap(ConfigMapSpool),
}

impl Spool {
    /// This scope's records waiting for MySQL.
    pub async fn pending(&self) -> Result<Vec<RunRecord>, StoreError> {
        match self {
            Spool::File(f) => f.pending().await,
            Spool::ConfigMap(c) => c.pending().await,
        }
    }

    /// Removes the records with these run ids (MySQL has them now), and
    /// nothing else: not what another run spooled meanwhile.
    pub async fn remove(&self, run_ids: HashSet<String>) -> Result<(), StoreError> {
        match self {
            Spool::File(f) => f.remove(run_ids).await,
            Spool::ConfigMap(c) => c.remove(run_ids).await,
        }
    }

    /// Keeps one record for the next run (`Recorded::Spooled`).
    pub async fn record(&self, record: &RunRecord) -> Result<Recorded, StoreError> {
        match self {
            Spool::File(f) => f.record(record).await,
            Spool::ConfigMap(c) => c.record(record).await,
        }
    }

    /// The run lock while MySQL is down: the lock file of `state_file`.
    pub async fn try_lock(&self, name: &str) -> Result<bool, StoreError> {
        self.file().try_lock(name).await
    }

    pub async fn close(self) {
        match self {
            Spool::File(f) => f.close().await,
            Spool::ConfigMap(c) => c.close().await,
        }
    }

    /// Where the spooled records are (after a `record`: where that one went).
    pub fn location(&self) -> String {
        match self {
            Spool::File(f) => f.path().display().to_string(),
            Spool::ConfigMap(c) => c.location(),
        }
    }

    /// `--dry-run` and `status`: nothing is written.
    pub fn read_only(&self) -> bool {
        self.file().role() == Role::ReadOnly
    }

    fn file(&self) -> &FileStore {
        match self {
            Spool::File(f) => f,
            Spool::ConfigMap(c) => c.file(),
        }
    }
}
