//! The managed HPAs in the cluster: read them, patch them (the "Apply" rule of the README's "How it decides").
//!
//! Errors are per HPA: one broken HPA must not hide what happened to the others.

mod gitops;
pub mod kube;

use std::future::Future;

use hpa_tier_core::hpa::{Hpa, HpaPatch, HpaRef};

pub trait Cluster: Send + Sync {
    /// Reads every HPA concurrently; one result per input, same order.
    fn read(&self, hpas: &[HpaRef]) -> impl Future<Output = Vec<Result<Hpa, ClusterError>>> + Send;
    /// Applies one patch (retrying conflicts); the HPA as it is afterwards.
    /// The shell runs these concurrently and keeps each result as it
    /// arrives, so a run stopped midway still knows what it patched.
    fn apply_one(&self, patch: &HpaPatch)
    -> impl Future<Output = Result<Hpa, ClusterError>> + Send;
    /// What every run that used this cluster must report, whatever it did
    /// (a kubeconfig that skips TLS verification). Empty before connecting.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClusterError {
    #[error("HPA {0} not found")]
    NotFound(String),
    /// RBAC: names the verb, resource and namespace that are missing.
    #[error("{0}")]
    Forbidden(String),
    /// 422 and other rejections: the API server's own message.
    #[error("{0}")]
    Rejected(String),
    #[error("HPA {hpa}: still conflicting after {attempts} attempts")]
    Conflict { hpa: String, attempts: u32 },
    /// The HPA is owned by a KEDA ScaledObject, which would revert any change.
    #[error("{0}")]
    ForeignOwner(String),
    /// The object read is not a usable HPA (a negative replica count).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Timeout(String),
    /// Connection, TLS, credentials (exec plugin), 5xx.
    #[error("{0}")]
    Api(String),
}
