//! The HorizontalPodAutoscaler as this tool sees it: plain values, no
//! Kubernetes types. The cluster adapter converts to and from these; the
//! planning core only ever sees them.

use serde::Serialize;

use crate::tiers::Replicas;

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
    /// The GitOps tool that applies this HPA from Git, if any: it will put
    /// back the minReplicas/maxReplicas this tool patches.
    pub managed_by: Option<GitOps>,
}

/// Which GitOps controller manages an HPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GitOpsTool {
    ArgoCd,
    /// Flux's kustomize-controller (a `Kustomization`).
    FluxKustomize,
    /// Flux's helm-controller (a `HelmRelease`).
    FluxHelm,
}

/// An HPA that a GitOps tool applies from Git, and how that was told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitOps {
    pub tool: GitOpsTool,
    /// The object of the tool that owns the HPA: the Argo CD Application
    /// (`name`, or `namespace/name` outside Argo CD's own namespace), the
    /// Flux Kustomization or HelmRelease (`namespace/name`). `None` when
    /// only the managedFields told.
    pub owner: Option<String>,
    /// What told it, e.g. `annotation argocd.argoproj.io/tracking-id`.
    pub evidence: String,
}

impl GitOps {
    /// `Argo CD application prod-web`, `Flux Kustomization flux-system/apps`.
    pub fn manager(&self) -> String {
        let kind = match self.tool {
            GitOpsTool::ArgoCd => "Argo CD application",
            GitOpsTool::FluxKustomize => "Flux Kustomization",
            GitOpsTool::FluxHelm => "Flux HelmRelease",
        };
        match &self.owner {
            Some(o) => format!("{kind} {o}"),
            None => format!("{kind} (unnamed)"),
        }
    }

    /// What to tell the tool so that it leaves the two fields to hpa-tier.
    pub fn fix(&self, id: &HpaRef) -> String {
        let pointers = "[/spec/minReplicas, /spec/maxReplicas]";
        match self.tool {
            GitOpsTool::ArgoCd => format!(
                "add to the Application's spec.ignoreDifferences {{group: autoscaling, kind: \
                 HorizontalPodAutoscaler, name: {}, namespace: {}, jsonPointers: {pointers}}} \
                 and the sync option RespectIgnoreDifferences=true (without it a sync still \
                 applies Git's values)",
                id.name, id.namespace
            ),
            GitOpsTool::FluxKustomize => format!(
                "annotate the HPA in Git (or through the Kustomization's spec.patches) with \
                 kustomize.toolkit.fluxcd.io/ssa: IfNotPresent, so that Flux creates {} but no \
                 longer re-applies it",
                id.name
            ),
            GitOpsTool::FluxHelm => format!(
                "add to the HelmRelease's spec.driftDetection.ignore {{paths: {pointers}, target: \
                 {{kind: HorizontalPodAutoscaler, name: {}}}}}; a chart upgrade still sets the \
                 chart's values, which the next run raises again",
                id.name
            ),
        }
    }

    /// The warning for a run that patches this HPA, or `status`.
    pub fn warning(&self, id: &HpaRef) -> String {
        format!(
            "{id} is managed by {} ({}), which will revert minReplicas/maxReplicas to the \
             values in Git: {}",
            self.manager(),
            self.evidence,
            self.fix(id)
        )
    }
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
    pub intent: Intent,
    /// The tier's replicas for this HPA's service, to plan again from.
    pub tier: Replicas,
}

/// How a patch treats the values it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// A tier change or an `upgrade`: exactly the tier's values.
    Exact,
    /// Between tier changes: raise what is below the tier, lower nothing.
    RaiseOnly,
}

/// What an HPA becomes under `intent` in a tier with `tier` replicas:
/// `(min, max, why max had to be raised)`. maxReplicas is never set below
/// minReplicas, nor below the replicas running now: a tier whose explicit
/// `max` is lower would make the HPA controller kill serving pods, so the
/// max is kept at the running count for this patch and the reason said.
pub fn target(tier: Replicas, hpa: &Hpa, intent: Intent) -> (u32, u32, Option<String>) {
    let (mut min, mut max) = match intent {
        Intent::Exact => (tier.min, tier.max.unwrap_or(hpa.max.max(tier.min))),
        Intent::RaiseOnly => (
            hpa.min.max(tier.min),
            hpa.max.max(tier.max.unwrap_or(tier.min)),
        ),
    };
    min = min.max(1);
    let mut why = None;
    // Only a max the tier states can be a slip of ours; otherwise the max
    // found stays or rises, and whatever runs above it is not our doing.
    let ours = intent == Intent::Exact && tier.max.is_some();
    if let Some(running) = hpa.current_replicas.filter(|r| ours && *r > max) {
        why = Some(format!(
            "{}: the tier's maxReplicas {max} is below the {running} replicas running; \
             kept maxReplicas at {running} for this change (raise the tier's max, or lower it \
             deliberately with kubectl)",
            hpa.id
        ));
        max = running;
    }
    (min, max.max(min), why)
}

impl HpaPatch {
    /// The patch again, planned from the HPA as re-read after a conflict:
    /// someone else wrote it in between. An exact patch still sets the
    /// tier's values; a raise-only patch keeps whatever was raised
    /// meanwhile. `None`: the HPA already is what the patch wanted.
    pub fn replan(&self, reread: &Hpa) -> Option<HpaPatch> {
        let (min, max, _) = target(self.tier, reread, self.intent);
        let annotated =
            reread.capacity_annotation.as_deref() == Some(self.capacity.to_string().as_str());
        if min == reread.min && max == reread.max && annotated {
            return None;
        }
        Some(HpaPatch {
            min,
            max: (max != reread.max).then_some(max),
            ..self.clone()
        })
    }
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
            managed_by: None,
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
    pub fn running(mut self, replicas: u32) -> Self {
        self.current_replicas = Some(replicas);
        self
    }
    /// Managed by Argo CD application `app` (its tracking annotation).
    pub fn argo_cd(mut self, app: &str) -> Self {
        self.managed_by = Some(GitOps {
            tool: GitOpsTool::ArgoCd,
            owner: Some(app.into()),
            evidence: "annotation argocd.argoproj.io/tracking-id".into(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(min: u32, max: Option<u32>) -> Replicas {
        Replicas { min, max }
    }

    fn patch(intent: Intent, t: Replicas) -> HpaPatch {
        HpaPatch {
            id: Hpa::test("web").id,
            min: t.min,
            max: t.max,
            capacity: 2000,
            intent,
            tier: t,
        }
    }

    #[test]
    fn targets_raise_max_to_min_and_never_below_the_running_replicas() {
        let h = Hpa::test("web").min(2).max(10).running(4);
        assert_eq!(target(tier(6, None), &h, Intent::Exact), (6, 10, None));
        assert_eq!(target(tier(12, None), &h, Intent::Exact), (12, 12, None));
        assert_eq!(target(tier(2, Some(20)), &h, Intent::Exact), (2, 20, None));
        let busy = Hpa::test("web").min(2).max(20).running(14);
        let (min, max, why) = target(tier(6, Some(10)), &busy, Intent::Exact);
        assert_eq!((min, max), (6, 14));
        let why = why.unwrap();
        assert!(
            why.contains("maxReplicas 10 is below the 14 replicas running"),
            "{why}"
        );
    }

    #[test]
    fn raise_only_lowers_nothing() {
        let h = Hpa::test("web").min(9).max(30);
        assert_eq!(
            target(tier(6, Some(20)), &h, Intent::RaiseOnly),
            (9, 30, None)
        );
        let low = Hpa::test("web").min(1).max(3);
        assert_eq!(target(tier(6, None), &low, Intent::RaiseOnly), (6, 6, None));
    }

    #[test]
    fn a_conflict_is_planned_again_from_what_was_reread() {
        let t = tier(6, None);
        // Between tier changes someone raised web to 9 meanwhile: kept.
        let raised = Hpa::test("web").min(9).max(10).annotated(2000);
        assert_eq!(patch(Intent::RaiseOnly, t).replan(&raised), None);
        // Someone lowered it to 3 meanwhile: raised again to the tier.
        let lowered = Hpa::test("web").min(3).max(10).annotated(2000);
        let p = patch(Intent::RaiseOnly, t).replan(&lowered).unwrap();
        assert_eq!((p.min, p.max), (6, None));
        // A tier change sets the tier's values whatever was found; a max
        // lowered meanwhile below min is raised with it.
        let other = Hpa::test("web").min(9).max(4).annotated(600);
        let p = patch(Intent::Exact, t).replan(&other).unwrap();
        assert_eq!((p.min, p.max, p.capacity), (6, Some(6), 2000));
    }

    #[test]
    fn a_gitops_warning_names_the_tool_its_object_and_the_fix() {
        let web = Hpa::test("web").id;
        let g = |tool, owner: Option<&str>| GitOps {
            tool,
            owner: owner.map(str::to_string),
            evidence: "label x".into(),
        };
        let argo = g(GitOpsTool::ArgoCd, Some("prod-web")).warning(&web);
        assert!(
            argo.starts_with("prod/web is managed by Argo CD application prod-web (label x)"),
            "{argo}"
        );
        assert!(
            argo.contains(
                "name: web, namespace: prod, jsonPointers: [/spec/minReplicas, /spec/maxReplicas]"
            ) && argo.contains("RespectIgnoreDifferences=true"),
            "{argo}"
        );
        let flux = g(GitOpsTool::FluxKustomize, Some("flux-system/apps")).warning(&web);
        assert!(
            flux.contains("Flux Kustomization flux-system/apps")
                && flux.contains("kustomize.toolkit.fluxcd.io/ssa: IfNotPresent"),
            "{flux}"
        );
        let helm = g(GitOpsTool::FluxHelm, None).warning(&web);
        assert!(
            helm.contains("Flux HelmRelease (unnamed)")
                && helm.contains("spec.driftDetection.ignore {paths: [/spec/minReplicas, /spec/maxReplicas], target: {kind: HorizontalPodAutoscaler, name: web}}"),
            "{helm}"
        );
    }
}
