//! Whether Argo CD or Flux applies an HPA from Git, told from its metadata
//! alone (no call to either tool): their tracking labels and annotations,
//! else the field managers their controllers write as. Such an HPA is still
//! patched; the decision warns that the tool will revert it (SPEC §11).
//!
//! What each tool leaves on the objects it applies:
//! - Argo CD: the annotation `argocd.argoproj.io/tracking-id`
//!   (`<app>:<group>/<kind>:<namespace>/<name>`; tracking method
//!   `annotation`, the default since v3, or `annotation+label`), or the
//!   instance label, `app.kubernetes.io/instance` by default (method
//!   `label`) or the custom key its docs suggest, `argocd.argoproj.io/instance`.
//!   The default label is also set by Helm charts and operators, so on its
//!   own it says nothing: it only names the application when a manager
//!   shows Argo CD applied the object.
//! - Flux: `kustomize.toolkit.fluxcd.io/name` + `/namespace` (the
//!   Kustomization), `helm.toolkit.fluxcd.io/name` + `/namespace` (the
//!   HelmRelease).
//! - managedFields: `argocd-controller` (Argo CD's server-side apply),
//!   `argocd-application-controller`, `kustomize-controller`, `helm-controller`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use hpa_tier_core::hpa::{GitOps, GitOpsTool, HpaRef};

const ARGO_TRACKING: &str = "argocd.argoproj.io/tracking-id";
const ARGO_LABEL: &str = "argocd.argoproj.io/instance";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const ARGO_MANAGERS: [&str; 2] = ["argocd-controller", "argocd-application-controller"];

/// The GitOps tool that manages the HPA `id` with this metadata, if any.
pub(crate) fn managed_by(id: &HpaRef, meta: &ObjectMeta) -> Option<GitOps> {
    let label = |k: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(k))
            .filter(|v| !v.is_empty())
    };
    let found = |tool, owner: Option<String>, evidence: String| GitOps {
        tool,
        owner,
        evidence,
    };
    let tracking = meta.annotations.as_ref().and_then(|a| a.get(ARGO_TRACKING));
    if let Some(app) = tracking.and_then(|t| argo_tracked_app(t, id)) {
        return Some(found(
            GitOpsTool::ArgoCd,
            Some(argo_app(&app)),
            format!("annotation {ARGO_TRACKING}"),
        ));
    }
    if let Some(app) = label(ARGO_LABEL) {
        let evidence = format!("label {ARGO_LABEL}");
        return Some(found(GitOpsTool::ArgoCd, Some(argo_app(app)), evidence));
    }
    for (tool, group) in [
        (GitOpsTool::FluxKustomize, "kustomize.toolkit.fluxcd.io"),
        (GitOpsTool::FluxHelm, "helm.toolkit.fluxcd.io"),
    ] {
        if let Some(name) = label(&format!("{group}/name")) {
            let owner = match label(&format!("{group}/namespace")) {
                Some(ns) => format!("{ns}/{name}"),
                None => name.clone(),
            };
            return Some(found(tool, Some(owner), format!("label {group}/name")));
        }
    }
    let manager = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.manager.as_deref())
        .find_map(|m| {
            let tool = match m {
                m if ARGO_MANAGERS.contains(&m) => GitOpsTool::ArgoCd,
                "kustomize-controller" => GitOpsTool::FluxKustomize,
                "helm-controller" => GitOpsTool::FluxHelm,
                _ => return None,
            };
            Some((tool, m))
        });
    let (tool, m) = manager?;
    // Argo CD's label tracking writes the application into the standard
    // label; trusted here because Argo CD's own manager wrote the object.
    let owner = (tool == GitOpsTool::ArgoCd)
        .then(|| label(INSTANCE_LABEL).map(|a| argo_app(a)))
        .flatten();
    Some(found(tool, owner, format!("managedFields manager {m}")))
}

/// The application of a tracking id, when it tracks this very HPA: Argo CD
/// ignores an annotation copied onto another object (its "non
/// self-referencing annotations"), so such an HPA is not its to revert.
fn argo_tracked_app(tracking: &str, id: &HpaRef) -> Option<String> {
    let mut parts = tracking.splitn(3, ':');
    let (app, gk, nsn) = (parts.next()?, parts.next()?, parts.next()?);
    let (group, kind) = gk.split_once('/')?;
    let (ns, name) = nsn.split_once('/')?;
    let this = group == "autoscaling"
        && kind == "HorizontalPodAutoscaler"
        && ns == id.namespace
        && name == id.name;
    (this && !app.is_empty()).then(|| app.to_string())
}

/// Argo CD names an application outside its own namespace `ns_name`.
fn argo_app(app: &str) -> String {
    match app.split_once('_') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => format!("{ns}/{name}"),
        _ => app.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn web() -> HpaRef {
        HpaRef {
            service: "web".into(),
            namespace: "prod".into(),
            name: "web".into(),
        }
    }

    fn meta(v: Value) -> ObjectMeta {
        let mut base = json!({ "name": "web", "namespace": "prod" });
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).expect("valid metadata")
    }

    fn managers(names: &[&str]) -> Value {
        json!(
            names
                .iter()
                .map(
                    |m| json!({ "manager": m, "operation": "Apply", "apiVersion": "autoscaling/v2",
                                 "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": {} } })
                )
                .collect::<Vec<_>>()
        )
    }

    #[test]
    fn argo_cd_and_flux_are_told_from_their_tracking_metadata() {
        let tracking = |v: &str| json!({ "annotations": { "argocd.argoproj.io/tracking-id": v } });
        let labels = |pairs: &[(&str, &str)]| {
            let m: serde_json::Map<String, Value> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            json!({ "labels": m })
        };
        let argo = |owner: Option<&str>, evidence: &str| {
            Some(GitOps {
                tool: GitOpsTool::ArgoCd,
                owner: owner.map(str::to_string),
                evidence: evidence.into(),
            })
        };
        let flux = |tool, owner: &str, evidence: &str| {
            Some(GitOps {
                tool,
                owner: Some(owner.into()),
                evidence: evidence.into(),
            })
        };
        let by_annotation = "annotation argocd.argoproj.io/tracking-id";
        let cases: Vec<(&str, Value, Option<GitOps>)> = vec![
            ("nothing", json!({}), None),
            (
                "tracking annotation",
                tracking("prod-web:autoscaling/HorizontalPodAutoscaler:prod/web"),
                argo(Some("prod-web"), by_annotation),
            ),
            (
                "an application outside Argo CD's namespace",
                tracking("apps_prod-web:autoscaling/HorizontalPodAutoscaler:prod/web"),
                argo(Some("apps/prod-web"), by_annotation),
            ),
            (
                "an annotation copied from another object does not count",
                tracking("prod-web:autoscaling/HorizontalPodAutoscaler:staging/web"),
                None,
            ),
            (
                "a malformed annotation does not count",
                tracking("prod-web"),
                None,
            ),
            (
                "custom instance label",
                labels(&[("argocd.argoproj.io/instance", "prod-web")]),
                argo(Some("prod-web"), "label argocd.argoproj.io/instance"),
            ),
            (
                "the standard instance label alone is Helm's too",
                labels(&[("app.kubernetes.io/instance", "web")]),
                None,
            ),
            (
                "the standard label with Argo CD's manager",
                json!({ "labels": { "app.kubernetes.io/instance": "prod-web" },
                        "managedFields": managers(&["kubectl", "argocd-controller"]) }),
                argo(Some("prod-web"), "managedFields manager argocd-controller"),
            ),
            (
                "Argo CD's client-side manager without a label",
                json!({ "managedFields": managers(&["argocd-application-controller"]) }),
                argo(None, "managedFields manager argocd-application-controller"),
            ),
            (
                "Flux Kustomization",
                labels(&[
                    ("kustomize.toolkit.fluxcd.io/name", "apps"),
                    ("kustomize.toolkit.fluxcd.io/namespace", "flux-system"),
                ]),
                flux(
                    GitOpsTool::FluxKustomize,
                    "flux-system/apps",
                    "label kustomize.toolkit.fluxcd.io/name",
                ),
            ),
            (
                "Flux HelmRelease",
                labels(&[
                    ("helm.toolkit.fluxcd.io/name", "web"),
                    ("helm.toolkit.fluxcd.io/namespace", "prod"),
                ]),
                flux(
                    GitOpsTool::FluxHelm,
                    "prod/web",
                    "label helm.toolkit.fluxcd.io/name",
                ),
            ),
            (
                "Flux's managers",
                json!({ "managedFields": managers(&["kustomize-controller"]) }),
                Some(GitOps {
                    tool: GitOpsTool::FluxKustomize,
                    owner: None,
                    evidence: "managedFields manager kustomize-controller".into(),
                }),
            ),
            (
                "other managers",
                json!({ "managedFields": managers(&["kubectl-client-side-apply", "hpa-tier"]) }),
                None,
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(managed_by(&web(), &meta(input)), want, "{what}");
        }
    }
}
