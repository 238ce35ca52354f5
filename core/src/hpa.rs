//! The HorizontalPodAutoscaler as this tool sees it: plain values, no
//! Kubernetes types. The cluster adapter converts to and from these; the
//! planning core only ever sees them.

use serde::Serialize;

/// Annotation written on every managed HPA on a tier change; it lets the next
/// run tell the tier even when two tiers share the reference service's value.
pub const CAPACITY_ANNOTATION: &str = "hpa-tier/capacity";

/// Which HPA a tier-table column (service) is bound to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HpaRef {
    /// The tier-table column, e.g. `web`.
    pub service: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for HpaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One `status.conditions` entry (AbleToScale, ScalingActive, ScalingLimited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// An HPA as read from the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hpa {
    pub id: HpaRef,
    pub min: u32,
    pub max: u32,
    pub current_replicas: Option<u32>,
    pub desired_replicas: Option<u32>,
    /// The raw `hpa-tier/capacity` annotation; the core decides whether to trust it.
    pub capacity_annotation: Option<String>,
    pub conditions: Vec<Condition>,
    /// `Kind/name` of the scale target, e.g. `Deployment/web`.
    pub target: Option<String>,
}

/// What one HPA must become. `max` is `Some` only when it has to change:
/// the patch touches nothing it does not name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HpaPatch {
    pub id: HpaRef,
    pub min: u32,
    pub max: Option<u32>,
    /// Written to the `hpa-tier/capacity` annotation.
    pub capacity: u32,
}

#[cfg(any(test, feature = "fixtures"))]
impl Hpa {
    /// Fixture: an HPA for `service` in namespace `prod`, min 2 / max 10, no annotation.
    pub fn test(service: &str) -> Self {
        Hpa {
            id: HpaRef {
                service: service.into(),
                namespace: "prod".into(),
                name: service.into(),
            },
            min: 2,
            max: 10,
            current_replicas: Some(2),
            desired_replicas: Some(2),
            capacity_annotation: None,
            conditions: vec![],
            target: Some(format!("Deployment/{service}")),
        }
    }
    pub fn min(mut self, min: u32) -> Self {
        self.min = min;
        self
    }
    pub fn max(mut self, max: u32) -> Self {
        self.max = max;
        self
    }
    pub fn annotated(mut self, capacity: u32) -> Self {
        self.capacity_annotation = Some(capacity.to_string());
        self
    }
}
