//! Infrastructure prerequisites: the database and cache sizes a tier needs.
//!
//! The adapter (`aws`) only observes what AWS reports; deciding whether that is
//! enough (`evaluate`, with the instance-class `catalog`) is pure: this file
//! and `catalog` import nothing that does I/O.

pub mod aws;

use std::future::Future;

pub use hpa_tier_core::prereq::*;

/// Reads the database and cache sizes from AWS.
pub trait Prerequisites: Send + Sync {
    fn observe(&self) -> impl Future<Output = Result<Observed, PrereqError>> + Send;
}

/// Why the prerequisites could not be read. The planner then refuses to scale
/// up (it cannot verify) but may still scale down.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PrereqError {
    /// The cluster / replication group / cache cluster does not exist
    /// (message names it, the region and the endpoint).
    #[error("{0}")]
    NotFound(String),
    /// IAM: the message names the action, e.g. `rds:DescribeDBClusters`.
    #[error("{0}")]
    AccessDenied(String),
    /// Throttling or 5xx after the SDK's own retries.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    /// Anything else the SDK reports (credentials, connection, bad answer).
    #[error("{0}")]
    Api(String),
}
