//! Infrastructure prerequisites: the database and cache sizes a tier needs.
//!
//! The adapter (`aws`) only observes what AWS reports; deciding whether that is
//! enough (`evaluate`, with the instance-class `catalog`) is pure.

pub mod aws;
pub mod catalog;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

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

/// One Aurora cluster member as RDS reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RdsMember {
    pub id: String,
    pub writer: bool,
    pub class: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RdsObserved {
    pub cluster: String,
    pub members: Vec<RdsMember>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisKind {
    ReplicationGroup,
    CacheCluster,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RedisObserved {
    pub name: String,
    pub kind: RedisKind,
    pub node_type: String,
}

/// What the prerequisite adapter saw. `None` means that check is not
/// configured (empty `rds_cluster_name` / `redis_oss_name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub rds: Option<RdsObserved>,
    pub redis: Option<RedisObserved>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Resource {
    #[serde(rename = "RDS")]
    Rds,
    #[serde(rename = "Redis")]
    Redis,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Rds => "RDS",
            Resource::Redis => "Redis",
        })
    }
}

/// One thing a tier needs that is not there, with the command that fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Shortfall {
    pub resource: Resource,
    /// The instance / replication group / cache cluster id.
    pub member: String,
    /// `writer`, `reader`, `replication group` or `cache cluster`.
    pub role: String,
    pub have: String,
    pub need: String,
    /// Why `have` does not satisfy `need` (smaller, or unknown to the catalog).
    pub why: String,
    /// The AWS CLI command that would fix it.
    pub fix: String,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "needs {} {}; {} {} is {}",
            self.resource, self.need, self.role, self.member, self.have
        )
    }
}

/// For every tier capacity, what is missing (empty: the tier is allowed).
pub type Allowance = BTreeMap<u32, Vec<Shortfall>>;
