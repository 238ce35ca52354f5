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

/// The most characters a cluster name may have (SPEC §11). It names the run
/// lock and scopes the records: EKS allows 100, but a name this long would
/// be hashed out of recognition in MySQL's 64-character lock names.
pub const MAX_CLUSTER_NAME: usize = 64;

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
        cluster_name(eks, "eks_cluster_name", doc)?
    } else {
        match &context {
            Some(ctx) => cluster_name(ctx.clone(), "cluster_context", doc)?,
            None => "default".into(),
        }
    };
    Ok(Kube {
        settings: KubeSettings {
            kubeconfig,
            context,
        },
        cluster,
    })
}

/// The cluster's name, from `key`: at most [`MAX_CLUSTER_NAME`] characters,
/// none of them a control character (it is written into lock names, file
/// lines and messages).
fn cluster_name(name: String, key: &str, doc: &Document) -> Result<String, ConfigError> {
    let chars = name.chars().count();
    let why = if chars > MAX_CLUSTER_NAME {
        let fix = if key == "cluster_context" {
            "; set eks_cluster_name to a shorter name for it"
        } else {
            ""
        };
        format!(
            "the cluster name (the run lock's and the records' scope) is {chars} characters, \
             more than {MAX_CLUSTER_NAME}{fix}"
        )
    } else if name.chars().any(char::is_control) {
        format!("the cluster name {name:?} has a control character")
    } else {
        return Ok(name);
    };
    Err(doc.err(key, why))
}
