//! Kubernetes (`kube_file_path`, `cluster_context`, `eks_cluster_name`):
//! which cluster's HPAs, and the name of that cluster for the run lock and
//! the records.

use std::path::PathBuf;

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

#[derive(Clone, Debug)]
pub struct KubeSettings {
    /// `None`: standard inference (KUBECONFIG, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the kubeconfig's current context.
    pub context: Option<String>,
}

pub(super) struct Kube {
    pub settings: KubeSettings,
    /// The EKS cluster name, else the context, else `default`.
    pub cluster: String,
}

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<Kube, ConfigError> {
    let eks = doc.expand("eks_cluster_name", &raw.eks_cluster_name)?;
    let ctx = doc.expand("cluster_context", &raw.cluster_context)?;
    let context = if ctx.is_empty() {
        None
    } else if ctx.ends_with('/') {
        if eks.is_empty() {
            return Err(doc.err(
                "cluster_context",
                "ends in '/', so eks_cluster_name is appended to it, but eks_cluster_name is empty",
            ));
        }
        Some(format!("{ctx}{eks}"))
    } else {
        Some(ctx)
    };
    let kube_file = doc.expand("kube_file_path", &raw.kube_file_path)?;
    let kubeconfig = if kube_file.is_empty() {
        None
    } else {
        Some(PathBuf::from(doc.home("kube_file_path", kube_file)?))
    };
    let cluster = if !eks.is_empty() {
        eks
    } else {
        context.clone().unwrap_or_else(|| "default".into())
    };
    Ok(Kube {
        settings: KubeSettings {
            kubeconfig,
            context,
        },
        cluster,
    })
}
