//! Telling the team (SPEC §6). What a notice says is pure (`Notice`, its
//! rendering and dedupe key); sending it is the `feishu` adapter's job.

pub mod feishu;

use std::future::Future;

use serde::Serialize;

use crate::prereq::Shortfall;

/// Per-service replicas after a tier change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceReplicas {
    pub service: String,
    pub min: u32,
    pub max: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    TierChanged {
        command: String,
        from: u32,
        to: u32,
        users: Option<u32>,
        replicas: Vec<ServiceReplicas>,
        /// HPAs that failed to patch (a partial apply).
        failed: Vec<String>,
    },
    Blocked {
        current: u32,
        wanted: u32,
        /// The tier actually reached (may be above `current` when a step fit).
        reached: u32,
        users: Option<u32>,
        shortfalls: Vec<(u32, Vec<Shortfall>)>,
    },
    Error {
        /// What failed: `metric source`, `AWS prerequisites`, `Kubernetes`, …
        what: String,
        message: String,
    },
    AboveTop {
        users: u32,
        top: u32,
    },
}

pub trait Notifier: Send + Sync {
    fn send(&self, notice: &Notice) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NotifyError {
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unreachable(String),
}
