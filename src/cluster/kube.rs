//! The `Cluster` port over the Kubernetes API (kube-rs): finds the
//! kubeconfig the way the Python tool and kubectl do, reads the managed
//! HorizontalPodAutoscalers and patches them, one HPA at a time but all of
//! them concurrently.
//!
//! Round trips matter (the API server is far away, the run is on a clock):
//! `connect` makes no request at all (no discovery), `read` is one GET per
//! HPA, and `apply` is one PATCH per HPA — it reuses the resourceVersion
//! `read` saw as the optimistic lock instead of reading again. Only a 409
//! costs a re-read. kube-rs's own retry layer is off: every call is bounded
//! by the configured timeout, and the only retry is the conflict loop here.

use crate::quote::chain;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use super::{Cluster, ClusterError};
use crate::config::KubeSettings;
use hpa_tier_core::hpa::{CAPACITY_ANNOTATION, Condition, Hpa, HpaPatch, HpaRef};
#[cfg(test)]
use hpa_tier_core::{hpa::Intent, tiers::Replicas};

/// Requests in flight at once. The largest deployment (ten namespaces × six
/// services) fits in one wave; an API server takes this without throttling.
const CONCURRENCY: usize = 64;
/// Patches tried per HPA before a persistent 409 is reported.
const ATTEMPTS: u32 = 5;

/// A connection to one cluster (one kubeconfig context).
pub struct KubeCluster {
    client: Client,
    timeout: Duration,
    /// The API server URL, for messages.
    server: String,
    /// resourceVersion of every HPA last seen, keyed by (namespace, name):
    /// the optimistic lock of the next patch, so `apply` needs no GET.
    seen: Mutex<HashMap<(String, String), String>>,
    /// What every run on this connection must report (an unverified API
    /// server certificate).
    warnings: Vec<String>,
}

impl KubeCluster {
    /// Loads the kubeconfig (or the in-cluster service account) and builds
    /// the client. Runs the kubeconfig's exec credential plugin, if any (EKS:
    /// `aws eks get-token`), bounded by `timeout`. Sends no request.
    pub async fn connect(settings: &KubeSettings, timeout: Duration) -> Result<Self, ClusterError> {
        let env = |k: &str| std::env::var(k).ok();
        let source = kubeconfig_source(settings, &env, &|p| p.is_file());
        if let Some(p) = &settings.kubeconfig
            && source != Source::Files(vec![p.clone()])
        {
            tracing::info!(path = %p.display(), using = %source, "kube_file_path does not exist; using the standard inference");
        }
        let mut warnings = vec![];
        let mut config = client_config(settings, &source, &mut warnings).await?;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        // Our own timeout and conflict retry are the policy; kube's retry
        // layer would stretch a call past timeout_seconds on 503s.
        config.default_retry = false;
        config.connect_timeout = Some(timeout);
        tracing::debug!(%server, %source, context = ?settings.context, "Kubernetes client");
        for w in &warnings {
            tracing::warn!(%server, "{w}");
        }
        Ok(KubeCluster {
            client: build_client(config, timeout).await?,
            timeout,
            server,
            seen: Mutex::new(HashMap::new()),
            warnings,
        })
    }

    /// The connection, for other adapters on the same API server (the
    /// spool ConfigMap): same credentials, same client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API server URL, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The per-call timeout this connection was made with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn api(&self, id: &HpaRef) -> Api<HorizontalPodAutoscaler> {
        Api::namespaced(self.client.clone(), &id.namespace)
    }

    /// One API call under the timeout.
    async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(Failure::Timeout),
            Ok(r) => r.map_err(Failure::Kube),
        }
    }

    fn describe(&self, id: &HpaRef, verb: &str, f: Failure) -> ClusterError {
        describe(id, verb, &f, self.timeout, &self.server)
    }

    fn remember(&self, id: &HpaRef, k: &HorizontalPodAutoscaler) {
        if let Some(rv) = &k.metadata.resource_version {
            self.seen
                .lock()
                .unwrap()
                .insert((id.namespace.clone(), id.name.clone()), rv.clone());
        }
    }

    fn last_seen(&self, id: &HpaRef) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .get(&(id.namespace.clone(), id.name.clone()))
            .cloned()
    }

    /// GET, refusing a KEDA-owned HPA; remembers the resourceVersion.
    async fn get(&self, id: &HpaRef) -> Result<(Hpa, String), ClusterError> {
        let api = self.api(id);
        let k = self
            .call(api.get(&id.name))
            .await
            .map_err(|f| self.describe(id, "get", f))?;
        let hpa = hpa_from_k8s(id, &k)?;
        self.remember(id, &k);
        Ok((hpa, k.metadata.resource_version.unwrap_or_default()))
    }

    async fn read_one(&self, id: &HpaRef) -> Result<Hpa, ClusterError> {
        self.get(id).await.map(|(hpa, _)| hpa)
    }

    async fn patch_one(&self, planned: &HpaPatch) -> Result<Hpa, ClusterError> {
        let id = &planned.id;
        let mut rv = match self.last_seen(id) {
            Some(rv) => rv,
            None => self.get(id).await?.1,
        };
        let mut p = planned.clone();
        let api = self.api(id);
        let mut attempt = 1;
        loop {
            let body = merge_patch(&p, &rv, p.max);
            let answer = self
                .call(api.patch(&id.name, &PatchParams::default(), &Patch::Merge(&body)))
                .await;
            match answer {
                Ok(k) => {
                    self.remember(id, &k);
                    return hpa_from_k8s(id, &k);
                }
                Err(Failure::Kube(kube::Error::Api(s))) if s.code == 409 => {
                    if attempt == ATTEMPTS {
                        return Err(ClusterError::Conflict {
                            hpa: id.to_string(),
                            attempts: ATTEMPTS,
                        });
                    }
                    tracing::info!(hpa = %id, attempt, "conflict: someone else changed the HPA; reading it again");
                    let (fresh, fresh_rv) = self.get(id).await?;
                    rv = fresh_rv;
                    // Planned again from what the other writer left: a value
                    // raised meanwhile is kept between tier changes, and a
                    // max lowered below our min is raised with it.
                    match planned.replan(&fresh) {
                        Some(again) => p = again,
                        None => return Ok(fresh),
                    }
                    attempt += 1;
                }
                Err(f) => return Err(self.describe(id, "patch", f)),
            }
        }
    }
}

impl Cluster for KubeCluster {
    async fn read(&self, hpas: &[HpaRef]) -> Vec<Result<Hpa, ClusterError>> {
        in_waves(hpas.iter().map(|id| self.read_one(id)).collect()).await
    }

    async fn apply_one(&self, patch: &HpaPatch) -> Result<Hpa, ClusterError> {
        self.patch_one(patch).await
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

impl KubeCluster {
    /// Applies every patch concurrently; one result per input, same order.
    pub async fn apply(&self, patches: &[HpaPatch]) -> Vec<Result<Hpa, ClusterError>> {
        in_waves(patches.iter().map(|p| self.patch_one(p)).collect()).await
    }
}

/// The cluster a run talks to, connected on first use: the connection
/// (kubeconfig, an exec credential plugin) then runs alongside the other
/// reads of the gather phase instead of before them, and `apply` reuses it.
/// Clones share the one connection (the store's spool ConfigMap uses it).
#[derive(Clone)]
pub struct Kube {
    settings: KubeSettings,
    timeout: Duration,
    connected: Arc<tokio::sync::OnceCell<Result<KubeCluster, ClusterError>>>,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("settings", &self.settings)
            .field("connected", &self.connected.initialized())
            .finish()
    }
}

impl Kube {
    pub fn new(settings: &KubeSettings, timeout: Duration) -> Self {
        Kube {
            settings: settings.clone(),
            timeout,
            connected: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// The connection, made now if no one has made it yet.
    pub async fn connection(&self) -> Result<&KubeCluster, ClusterError> {
        self.cluster().await.as_ref().map_err(Clone::clone)
    }

    async fn cluster(&self) -> &Result<KubeCluster, ClusterError> {
        self.connected
            .get_or_init(|| async {
                KubeCluster::connect(&self.settings, self.timeout)
                    .await
                    .map_err(|e| ClusterError::Api(format!("cannot connect to Kubernetes: {e}")))
            })
            .await
    }
}

impl Cluster for Kube {
    async fn read(&self, hpas: &[HpaRef]) -> Vec<Result<Hpa, ClusterError>> {
        match self.cluster().await {
            Ok(c) => c.read(hpas).await,
            Err(e) => hpas.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn apply_one(&self, patch: &HpaPatch) -> Result<Hpa, ClusterError> {
        match self.cluster().await {
            Ok(c) => c.patch_one(patch).await,
            Err(e) => Err(e.clone()),
        }
    }

    fn warnings(&self) -> Vec<String> {
        match self.connected.get() {
            Some(Ok(c)) => c.warnings.clone(),
            _ => vec![],
        }
    }
}

/// The client configuration from the kubeconfig files or the pod's
/// service account; what the kubeconfig makes worth a warning goes to
/// `warnings`.
async fn client_config(
    settings: &KubeSettings,
    source: &Source,
    warnings: &mut Vec<String>,
) -> Result<Config, ClusterError> {
    match source {
        Source::Files(paths) => {
            let paths = paths.clone();
            let kubeconfig = tokio::task::spawn_blocking(move || load_kubeconfig(&paths))
                .await
                .map_err(|e| ClusterError::Api(format!("loading the kubeconfig: {e}")))??;
            check_context(&kubeconfig, settings.context.as_deref(), source)?;
            warnings.extend(
                skips_tls_verify(&kubeconfig, settings.context.as_deref())
                    .map(|cluster| insecure_warning(&cluster, source)),
            );
            let options = KubeConfigOptions {
                context: settings.context.clone(),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| ClusterError::Api(format!("kubeconfig {}: {}", source, chain(&e))))
        }
        Source::InCluster => {
            if let Some(c) = &settings.context {
                tracing::info!(context = %c, "no kubeconfig: using the pod's service account, cluster_context does not apply");
            }
            Config::incluster().map_err(|e| {
                ClusterError::Api(format!(
                    "no kubeconfig found ({}) and not running in a pod with a service account ({}): \
                     set kube_file_path to a kubeconfig",
                    tried(settings),
                    chain(&e)
                ))
            })
        }
    }
}

/// Builds the client, which runs the kubeconfig's exec credential plugin
/// synchronously: off the async threads, bounded by `timeout`.
async fn build_client(config: Config, timeout: Duration) -> Result<Client, ClusterError> {
    let exec = config.auth_info.exec.clone();
    let build = tokio::task::spawn_blocking(move || Client::try_from(config));
    match tokio::time::timeout(timeout, build).await {
        Err(_) => {
            let what = match exec.and_then(|e| e.command) {
                Some(cmd) => format!("the kubeconfig's exec credential plugin `{cmd}`"),
                None => "building the Kubernetes client".into(),
            };
            Err(ClusterError::Timeout(format!(
                "{what} did not finish within {}s (timeout_seconds)",
                timeout.as_secs_f64()
            )))
        }
        Ok(Err(e)) => Err(ClusterError::Api(format!(
            "building the Kubernetes client: {e}"
        ))),
        Ok(Ok(Err(e))) => Err(ClusterError::Api(client_error(&e, exec.as_ref()))),
        Ok(Ok(Ok(c))) => Ok(c),
    }
}

/// Runs `calls` at most `CONCURRENCY` at a time, results in input order. The
/// futures are built before the stream so that no closure over a borrowed
/// lifetime ends up in it (which would defeat the Send proof).
async fn in_waves<F: std::future::Future>(calls: Vec<F>) -> Vec<F::Output> {
    futures::stream::iter(calls)
        .buffered(CONCURRENCY)
        .collect()
        .await
}

// ---------------------------------------------------------------------------
// Pure pieces.

/// KEDA creates (and keeps reconciling) the HPA of a ScaledObject.
fn keda_owner(k: &HorizontalPodAutoscaler) -> Option<&str> {
    k.metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.kind == "ScaledObject" && o.api_version.starts_with("keda.sh/"))
        .map(|o| o.name.as_str())
}

/// The domain view of an HPA; refuses one that KEDA owns.
pub fn hpa_from_k8s(id: &HpaRef, k: &HorizontalPodAutoscaler) -> Result<Hpa, ClusterError> {
    if let Some(so) = keda_owner(k) {
        return Err(ClusterError::ForeignOwner(format!(
            "HPA {id} belongs to the KEDA ScaledObject `{so}` (ownerReference): KEDA would revert any change made to it. \
             Size it through the ScaledObject's minReplicaCount/maxReplicaCount, or remove service `{}` from `services`",
            id.service
        )));
    }
    // The API server validates replicas, but a server that does not (or
    // an object restored from elsewhere) may hold a negative one: that is
    // no reading of the HPA, not a zero.
    let replicas = |field: &str, n: i32| {
        u32::try_from(n).map_err(|_| {
            ClusterError::Invalid(format!(
                "HPA {id}: {field} is {n}; a replica count cannot be negative, so this HPA is \
                 left alone (fix the object: kubectl edit hpa -n {} {})",
                id.namespace, id.name
            ))
        })
    };
    let spec = k.spec.as_ref();
    let status = k.status.as_ref();
    let optional = |field: &str, n: Option<i32>| n.map(|n| replicas(field, n)).transpose();
    Ok(Hpa {
        id: id.clone(),
        // The API server defaults an absent minReplicas to 1.
        min: optional("spec.minReplicas", spec.and_then(|s| s.min_replicas))?.unwrap_or(1),
        max: optional("spec.maxReplicas", spec.map(|s| s.max_replicas))?.unwrap_or(0),
        current_replicas: optional(
            "status.currentReplicas",
            status.and_then(|s| s.current_replicas),
        )?,
        desired_replicas: optional("status.desiredReplicas", status.map(|s| s.desired_replicas))?,
        capacity_annotation: k
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CAPACITY_ANNOTATION))
            .cloned(),
        conditions: status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|c| Condition {
                kind: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        target: spec.map(|s| format!("{}/{}", s.scale_target_ref.kind, s.scale_target_ref.name)),
        managed_by: super::gitops::managed_by(id, &k.metadata),
    })
}

/// The JSON merge patch for one HPA: the annotation, the resourceVersion the
/// change is based on (a concurrent edit then answers 409), minReplicas and,
/// when it must change, maxReplicas. Nothing else: metrics and behavior stay.
fn merge_patch(p: &HpaPatch, resource_version: &str, max: Option<u32>) -> Value {
    let mut spec = json!({ "minReplicas": p.min });
    if let Some(max) = max {
        spec["maxReplicas"] = json!(max);
    }
    json!({
        "metadata": {
            "annotations": { CAPACITY_ANNOTATION: p.capacity.to_string() },
            "resourceVersion": resource_version,
        },
        "spec": spec,
    })
}

/// Where the client configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// Kubeconfig files, merged in order (KUBECONFIG may list several).
    Files(Vec<PathBuf>),
    /// The pod's service account.
    InCluster,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Files(p) => {
                let names: Vec<String> = p.iter().map(|p| p.display().to_string()).collect();
                f.write_str(&names.join(":"))
            }
            Source::InCluster => f.write_str("in-cluster service account"),
        }
    }
}

/// `kube_file_path` when that file exists; otherwise the standard inference:
/// the existing files of `KUBECONFIG`, else `~/.kube/config`, else in-cluster.
fn kubeconfig_source(
    settings: &KubeSettings,
    env: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&Path) -> bool,
) -> Source {
    if let Some(p) = settings.kubeconfig.as_ref().filter(|p| exists(p)) {
        return Source::Files(vec![p.clone()]);
    }
    if let Some(list) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
        let files: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && exists(p))
            .collect();
        if !files.is_empty() {
            return Source::Files(files);
        }
    }
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        let p = Path::new(&home).join(".kube").join("config");
        if exists(&p) {
            return Source::Files(vec![p]);
        }
    }
    Source::InCluster
}

/// What `kubeconfig_source` looked at, for the error when nothing was there.
fn tried(settings: &KubeSettings) -> String {
    let mut places = vec![];
    if let Some(p) = &settings.kubeconfig {
        places.push(format!("kube_file_path {} does not exist", p.display()));
    }
    places.push(match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => format!("none of KUBECONFIG={v} exists"),
        _ => "KUBECONFIG is unset".into(),
    });
    places.push("no ~/.kube/config".into());
    places.join(", ")
}

/// Reads and merges kubeconfig files (blocking file I/O).
fn load_kubeconfig(paths: &[PathBuf]) -> Result<Kubeconfig, ClusterError> {
    let mut merged: Option<Kubeconfig> = None;
    for p in paths {
        let k = Kubeconfig::read_from(p).map_err(|e| {
            ClusterError::Api(format!(
                "cannot read kubeconfig {}: {}",
                p.display(),
                chain(&e)
            ))
        })?;
        merged = Some(match merged {
            None => k,
            Some(m) => m.merge(k).map_err(|e| {
                ClusterError::Api(format!(
                    "cannot merge kubeconfig {}: {}",
                    p.display(),
                    chain(&e)
                ))
            })?,
        });
    }
    merged.ok_or_else(|| ClusterError::Api("no kubeconfig file to read".into()))
}

/// kube's own "failed to load current context" does not say which contexts
/// there are; the operator needs that to fix cluster_context.
fn check_context(
    k: &Kubeconfig,
    context: Option<&str>,
    source: &Source,
) -> Result<(), ClusterError> {
    let names = || {
        let n: Vec<&str> = k.contexts.iter().map(|c| c.name.as_str()).collect();
        if n.is_empty() {
            "none".to_string()
        } else {
            n.join(", ")
        }
    };
    match context.or(k.current_context.as_deref()) {
        Some(c) if k.contexts.iter().any(|n| n.name == c) => Ok(()),
        Some(c) => Err(ClusterError::Api(format!(
            "kubeconfig {source} has no context `{c}` (it has: {}); check cluster_context and eks_cluster_name",
            names()
        ))),
        None => Err(ClusterError::Api(format!(
            "kubeconfig {source} sets no current-context: set cluster_context to one of: {}",
            names()
        ))),
    }
}

/// The cluster entry of the context in use, when it sets
/// `insecure-skip-tls-verify: true`: the API server's certificate is then
/// not checked at all.
fn skips_tls_verify(k: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let context = context.or(k.current_context.as_deref())?;
    let cluster = k
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .as_str();
    let entry = k.clusters.iter().find(|c| c.name == cluster)?;
    let insecure = entry.cluster.as_ref()?.insecure_skip_tls_verify == Some(true);
    insecure.then(|| cluster.to_string())
}

/// What `check` and `status` say about a kubeconfig that skips TLS verification.
fn insecure_warning(cluster: &str, source: &Source) -> String {
    format!(
        "the kubeconfig ({source}) sets insecure-skip-tls-verify: true for cluster `{cluster}`: \
         the API server's certificate is not checked, so anything on the network path can \
         impersonate it and take the credentials sent to it; set certificate-authority-data \
         (for EKS: `aws eks update-kubeconfig` writes it) and remove the flag"
    )
}

/// Why a call did not produce an answer.
#[derive(Debug)]
enum Failure {
    Timeout,
    Kube(kube::Error),
}

/// The per-HPA error for a failed call, naming the HPA, the cause and what
/// to do about it.
fn describe(id: &HpaRef, verb: &str, f: &Failure, timeout: Duration, server: &str) -> ClusterError {
    let ns = &id.namespace;
    let e = match f {
        Failure::Timeout => {
            return ClusterError::Timeout(format!(
                "HPA {id}: the API server at {server} did not answer the {verb} within {}s (timeout_seconds)",
                timeout.as_secs_f64()
            ));
        }
        Failure::Kube(e) => e,
    };
    match e {
        kube::Error::Api(s) => {
            let msg = s.message.trim();
            match s.code {
                404 if s.details.as_ref().is_none_or(|d| d.name.is_empty()) => {
                    ClusterError::Api(format!(
                        "HPA {id}: the API server at {server} does not serve autoscaling/v2 HorizontalPodAutoscalers \
                     (404 on {verb}: {msg}); Kubernetes 1.23 or later is needed"
                    ))
                }
                404 => ClusterError::NotFound(id.to_string()),
                403 => ClusterError::Forbidden(format!(
                    "HPA {id}: RBAC forbids `{verb}` on horizontalpodautoscalers (API group autoscaling) in namespace {ns}: \
                     grant that verb to the identity of this kubeconfig in a Role bound in {ns} \
                     (hpa-tier needs get and patch). API server: {msg}"
                )),
                401 => ClusterError::Api(format!(
                    "HPA {id}: the API server at {server} rejected the credentials (401 Unauthorized): the kubeconfig's \
                     token, or the one its exec plugin (e.g. `aws eks get-token`) produced, is missing, expired or for \
                     another cluster"
                )),
                422 => ClusterError::Rejected(format!(
                    "HPA {id}: the API server rejected the {verb}: {msg}"
                )),
                409 => ClusterError::Conflict {
                    hpa: id.to_string(),
                    attempts: 1,
                },
                429 => ClusterError::Api(format!(
                    "HPA {id}: the API server at {server} is throttling requests (429 on {verb}): {msg}"
                )),
                code => ClusterError::Api(format!(
                    "HPA {id}: the API server at {server} answered the {verb} with {code} {}: {msg}",
                    s.reason
                )),
            }
        }
        kube::Error::SerdeError(e) => ClusterError::Api(format!(
            "HPA {id}: the answer to the {verb} is not an autoscaling/v2 HorizontalPodAutoscaler: {e}"
        )),
        kube::Error::Auth(e) => ClusterError::Api(format!(
            "HPA {id}: getting credentials for the API server failed: {}",
            chain(e)
        )),
        e => ClusterError::Api(format!(
            "HPA {id}: cannot {verb} it at the API server {server}: {}",
            chain(e)
        )),
    }
}

/// Why the client could not be built; exec plugin failures name the plugin
/// and show its stderr (never its stdout, which would carry a token).
fn client_error(e: &kube::Error, exec: Option<&kube::config::ExecConfig>) -> String {
    use kube::client::AuthError;
    let cmd = exec
        .and_then(|x| x.command.clone())
        .unwrap_or_else(|| "?".into());
    let hint = exec
        .and_then(|x| x.install_hint.as_deref())
        .map(|h| format!(" ({})", h.trim()))
        .unwrap_or_default();
    match e {
        kube::Error::Auth(AuthError::AuthExecStart(io)) => {
            format!("cannot start the kubeconfig's exec credential plugin `{cmd}`: {io}{hint}")
        }
        kube::Error::Auth(AuthError::AuthExecRun { out, .. }) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr.trim();
            format!(
                "the kubeconfig's exec credential plugin `{cmd}` failed ({}){}",
                out.status,
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            )
        }
        kube::Error::Auth(a) => format!(
            "the kubeconfig's credentials are unusable (exec plugin `{cmd}`): {}",
            chain(a)
        ),
        e => format!("building the Kubernetes client: {}", chain(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(service: &str, namespace: &str, name: &str) -> HpaRef {
        HpaRef {
            service: service.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn k8s(v: Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(v).expect("a valid HPA")
    }

    fn web_json() -> Value {
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "web", "namespace": "prod", "resourceVersion": "7",
                          "annotations": { "hpa-tier/capacity": "1000", "other": "x" } },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web-app" },
                "minReplicas": 3, "maxReplicas": 12,
            },
            "status": {
                "currentReplicas": 4, "desiredReplicas": 5,
                "conditions": [
                    { "type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "ok" },
                    { "type": "ScalingActive", "status": "True", "reason": "ValidMetricFound" },
                    { "type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "in range" },
                ],
            },
        })
    }

    #[test]
    fn an_hpa_converts_to_the_domain_view() {
        let web = id("web", "prod", "web");
        let bare = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "web", "namespace": "prod" },
            "spec": { "scaleTargetRef": { "kind": "StatefulSet", "name": "db" }, "maxReplicas": 4 },
        });
        let mut other_owner = web_json();
        other_owner["metadata"]["ownerReferences"] =
            json!([{ "apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "u" }]);
        let cond = |kind: &str, status: &str, reason: &str, message: Option<&str>| Condition {
            kind: kind.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: message.map(str::to_string),
        };
        let full = Hpa {
            id: web.clone(),
            min: 3,
            max: 12,
            current_replicas: Some(4),
            desired_replicas: Some(5),
            capacity_annotation: Some("1000".into()),
            conditions: vec![
                cond("AbleToScale", "True", "ReadyForNewScale", Some("ok")),
                cond("ScalingActive", "True", "ValidMetricFound", None),
                cond(
                    "ScalingLimited",
                    "False",
                    "DesiredWithinRange",
                    Some("in range"),
                ),
            ],
            target: Some("Deployment/web-app".into()),
            managed_by: None,
        };
        let cases = [
            ("everything set", web_json(), full.clone()),
            ("an unrelated owner is fine", other_owner, full),
            (
                "absent minReplicas is 1, no status yet",
                bare,
                Hpa {
                    id: web.clone(),
                    min: 1,
                    max: 4,
                    current_replicas: None,
                    desired_replicas: None,
                    capacity_annotation: None,
                    conditions: vec![],
                    target: Some("StatefulSet/db".into()),
                    managed_by: None,
                },
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(hpa_from_k8s(&web, &k8s(input)).unwrap(), want, "{what}");
        }
    }

    #[test]
    fn a_negative_replica_count_is_an_invalid_hpa_not_zero() {
        let web = id("web", "prod", "web");
        for (path, field) in [
            ("/spec/minReplicas", "spec.minReplicas"),
            ("/spec/maxReplicas", "spec.maxReplicas"),
            ("/status/currentReplicas", "status.currentReplicas"),
            ("/status/desiredReplicas", "status.desiredReplicas"),
        ] {
            let mut v = web_json();
            *v.pointer_mut(path).unwrap() = json!(-3);
            let err = hpa_from_k8s(&web, &k8s(v)).unwrap_err();
            assert_eq!(
                err,
                ClusterError::Invalid(format!(
                    "HPA prod/web: {field} is -3; a replica count cannot be negative, so this HPA \
                     is left alone (fix the object: kubectl edit hpa -n prod web)"
                ))
            );
        }
        let mut v = web_json();
        v["spec"]["minReplicas"] = json!(i32::MIN);
        assert!(hpa_from_k8s(&web, &k8s(v)).is_err());
        // int32's top is a count like any other.
        let mut v = web_json();
        v["spec"]["maxReplicas"] = json!(i32::MAX);
        assert_eq!(hpa_from_k8s(&web, &k8s(v)).unwrap().max, i32::MAX as u32);
    }

    #[test]
    fn an_hpa_owned_by_a_keda_scaled_object_is_refused() {
        let mut v = web_json();
        v["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web-so",
            "uid": "u", "controller": true,
        }]);
        let err = hpa_from_k8s(&id("web", "prod", "web"), &k8s(v)).unwrap_err();
        let ClusterError::ForeignOwner(msg) = err else {
            panic!("expected ForeignOwner, got {err:?}")
        };
        assert!(
            msg.starts_with("HPA prod/web belongs to the KEDA ScaledObject `web-so`"),
            "{msg}"
        );
        assert!(msg.contains("KEDA would revert"), "{msg}");
    }

    #[test]
    fn the_merge_patch_names_only_min_max_when_needed_annotation_and_version() {
        let p = HpaPatch {
            id: id("web", "prod", "web"),
            min: 6,
            max: None,
            capacity: 2000,
            intent: Intent::Exact,
            tier: Replicas { min: 6, max: None },
        };
        assert_eq!(
            merge_patch(&p, "41", None),
            json!({ "metadata": { "annotations": { "hpa-tier/capacity": "2000" }, "resourceVersion": "41" },
                    "spec": { "minReplicas": 6 } })
        );
        assert_eq!(
            merge_patch(&p, "42", Some(15)),
            json!({ "metadata": { "annotations": { "hpa-tier/capacity": "2000" }, "resourceVersion": "42" },
                    "spec": { "minReplicas": 6, "maxReplicas": 15 } })
        );
    }

    #[test]
    fn the_kubeconfig_comes_from_the_setting_then_kubeconfig_then_home_then_the_pod() {
        let settings = |p: Option<&str>| KubeSettings {
            kubeconfig: p.map(PathBuf::from),
            context: None,
        };
        let files = |ps: &[&str]| Source::Files(ps.iter().map(PathBuf::from).collect());
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [&'a str],
            Source,
        );
        let cases: Vec<Case> = vec![
            (
                "setting exists",
                Some("/k/c"),
                Some("/e/1"),
                &["/k/c", "/e/1"],
                files(&["/k/c"]),
            ),
            (
                "setting missing: KUBECONFIG",
                Some("/k/c"),
                Some("/e/1:/e/2:/e/3"),
                &["/e/1", "/e/3"],
                files(&["/e/1", "/e/3"]),
            ),
            (
                "no setting: KUBECONFIG",
                None,
                Some("/e/1"),
                &["/e/1"],
                files(&["/e/1"]),
            ),
            (
                "KUBECONFIG files all missing: home",
                None,
                Some("/e/1"),
                &["/h/.kube/config"],
                files(&["/h/.kube/config"]),
            ),
            (
                "empty KUBECONFIG: home",
                None,
                Some(""),
                &["/h/.kube/config"],
                files(&["/h/.kube/config"]),
            ),
            (
                "nothing: in cluster",
                Some("/k/c"),
                None,
                &[],
                Source::InCluster,
            ),
        ];
        for (what, setting, kubeconfig_env, existing, want) in cases {
            let env = |k: &str| match k {
                "KUBECONFIG" => kubeconfig_env.map(str::to_string),
                "HOME" => Some("/h".to_string()),
                _ => None,
            };
            let exists = |p: &Path| existing.iter().any(|e| Path::new(e) == p);
            assert_eq!(
                kubeconfig_source(&settings(setting), &env, &exists),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn insecure_skip_tls_verify_is_found_on_the_cluster_of_the_context_in_use() {
        let k = Kubeconfig::from_yaml(
            r#"
apiVersion: v1
kind: Config
current-context: safe
clusters:
  - name: eks-safe
    cluster: { server: "https://a.example", certificate-authority-data: "AAAA" }
  - name: lab
    cluster: { server: "https://b.example", insecure-skip-tls-verify: true }
  - name: explicit-false
    cluster: { server: "https://c.example", insecure-skip-tls-verify: false }
contexts:
  - name: safe
    context: { cluster: eks-safe, user: u }
  - name: lab
    context: { cluster: lab, user: u }
  - name: off
    context: { cluster: explicit-false, user: u }
  - name: dangling
    context: { cluster: nowhere, user: u }
users:
  - name: u
    user: { token: t }
"#,
        )
        .unwrap();
        assert_eq!(skips_tls_verify(&k, None), None, "the current context");
        assert_eq!(skips_tls_verify(&k, Some("lab")), Some("lab".into()));
        assert_eq!(skips_tls_verify(&k, Some("off")), None);
        assert_eq!(skips_tls_verify(&k, Some("dangling")), None);
        assert_eq!(skips_tls_verify(&k, Some("missing")), None);
        let w = insecure_warning("lab", &Source::Files(vec![PathBuf::from("/k/c")]));
        assert!(
            w.starts_with(
                "the kubeconfig (/k/c) sets insecure-skip-tls-verify: true for cluster `lab`"
            ) && w.contains("certificate-authority-data"),
            "{w}"
        );
    }

    /// A `Status` as the API server sends it, parsed as kube does.
    fn api_error(code: u16, reason: &str, message: &str, name: Option<&str>) -> Failure {
        let mut v = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": code, "reason": reason, "message": message });
        if let Some(n) = name {
            v["details"] =
                json!({ "name": n, "group": "autoscaling", "kind": "horizontalpodautoscalers" });
        }
        Failure::Kube(kube::Error::Api(Box::new(
            serde_json::from_value(v).unwrap(),
        )))
    }

    #[test]
    fn failures_become_per_hpa_errors_that_say_what_to_do() {
        let web = id("web", "prod", "web");
        let t = Duration::from_secs(10);
        let server = "https://eks.example";
        let d = |verb: &str, f: Failure| describe(&web, verb, &f, t, server);

        assert_eq!(
            d(
                "patch",
                api_error(
                    404,
                    "NotFound",
                    "horizontalpodautoscalers.autoscaling \"web\" not found",
                    Some("web")
                )
            ),
            ClusterError::NotFound("prod/web".into())
        );
        assert_eq!(
            d(
                "patch",
                api_error(
                    404,
                    "NotFound",
                    "horizontalpodautoscalers.autoscaling \"web\" not found",
                    Some("web")
                )
            )
            .to_string(),
            "HPA prod/web not found"
        );
        let ClusterError::Api(msg) = d(
            "get",
            api_error(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
        ) else {
            panic!()
        };
        assert!(msg.contains("does not serve autoscaling/v2"), "{msg}");

        let ClusterError::Forbidden(msg) = d(
            "patch",
            api_error(403, "Forbidden", "User \"x\" cannot patch", Some("web")),
        ) else {
            panic!()
        };
        assert!(msg.starts_with("HPA prod/web: RBAC forbids `patch` on horizontalpodautoscalers (API group autoscaling) in namespace prod"), "{msg}");
        assert!(msg.contains("User \"x\" cannot patch"), "{msg}");

        let invalid = "HorizontalPodAutoscaler.autoscaling \"web\" is invalid: spec.maxReplicas: Invalid value: 10: must be greater than or equal to `minReplicas`";
        assert_eq!(
            d("patch", api_error(422, "Invalid", invalid, Some("web"))),
            ClusterError::Rejected(format!(
                "HPA prod/web: the API server rejected the patch: {invalid}"
            ))
        );
        let ClusterError::Api(msg) = d(
            "get",
            api_error(500, "InternalError", "etcdserver: request timed out", None),
        ) else {
            panic!()
        };
        assert_eq!(
            msg,
            "HPA prod/web: the API server at https://eks.example answered the get with 500 InternalError: etcdserver: request timed out"
        );
        let ClusterError::Api(msg) = d("get", api_error(401, "Unauthorized", "Unauthorized", None))
        else {
            panic!()
        };
        assert!(
            msg.contains("rejected the credentials") && msg.contains("aws eks get-token"),
            "{msg}"
        );
        assert_eq!(
            d("get", Failure::Timeout),
            ClusterError::Timeout(
                "HPA prod/web: the API server at https://eks.example did not answer the get within 10s (timeout_seconds)".into()
            )
        );
    }
}
