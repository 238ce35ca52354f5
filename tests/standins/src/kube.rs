//! A Kubernetes API server stand-in: just enough of the real one for hpa-tier
//! (kube-rs) and `kubectl` to work against it over plain HTTP on 127.0.0.1.
//!
//! It serves discovery (`/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/autoscaling`, `/apis/autoscaling/v2`), namespaces (read only),
//! autoscaling/v2 HorizontalPodAutoscalers and core/v1 ConfigMaps (the
//! `configmaps` submodule: every verb but watch, as the real server answers
//! them). HPAs: get, list (one namespace or all of them; as a server-side
//! `Table` when the client asks, as kubectl does) and patch (JSON merge,
//! strategic merge, JSON patch, server-side apply). Writes carry
//! `metadata.resourceVersion` and honour it as an optimistic lock; failures
//! are `Status` objects with the real reasons and messages; `minReplicas >
//! maxReplicas` is a 422 with the real validation text. After a write the
//! stand-in plays the HPA controller: `status` follows the new bounds. Write
//! bodies over the API server's 3 MiB limit are a 413.
//!
//! Approximations, on purpose: strategic merge treats lists as atomic (true
//! for the HPA's own lists) except `ownerReferences`, merged by `uid`;
//! server-side apply merges the applied fields into the object without
//! tracking field ownership; `watch`, and HPA create, update and delete, are
//! refused with 405.
//!
//! kubectl works against it (`get`, `create`, `replace`, `delete`, `patch`
//! of every type, `apply --server-side --validate=false`: there is no
//! OpenAPI document for client-side validation). kubectl sends credentials
//! only over TLS, so a stand-in that requires a token admits kube-rs clients
//! only.
//!
//! Tests steer it through [`KubeStandin`]: seed HPAs ([`HpaSeed`]),
//! namespaces and ConfigMaps, read them back, inject [`Fault`]s per object
//! and latency, narrow ConfigMap access to [`RbacRule`]s, require a bearer
//! token, and inspect the request log. The `kube` subcommand runs it for the
//! demo.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::server::{self, Latency, Running};

mod configmaps;
mod protobuf;
pub use configmaps::{ETCD_MAX_REQUEST_BYTES, MAX_DATA_BYTES, MAX_REQUEST_BODY_BYTES, RbacRule};

const GROUP: &str = "autoscaling";
const VERSION: &str = "v2";
const API_VERSION: &str = "autoscaling/v2";
const KIND: &str = "HorizontalPodAutoscaler";
const RESOURCE: &str = "horizontalpodautoscalers";
/// Who the stand-in says the caller is in 403 messages.
const USER: &str = "system:serviceaccount:hpa-tier:hpa-tier";

/// The six services of the tier table and the HPA each one is sized through,
/// laid out as in `config/example.yaml` (namespace, HPA name, scale target).
pub const EXAMPLE_SERVICES: [(&str, &str, &str, &str); 6] = [
    (
        "istio-ingress",
        "istio-system",
        "ingressgateway-hpa",
        "istio-ingressgateway",
    ),
    ("gateway", "prod", "gateway", "gateway"),
    ("web", "prod", "web", "web"),
    ("hermes", "prod", "hermes", "hermes"),
    ("passport", "prod", "passport", "passport"),
    ("project", "prod", "project", "project"),
];

// ---------------------------------------------------------------------------
// Fixtures.

/// A realistic autoscaling/v2 HPA to seed: CPU utilization metric, scale-up
/// and scale-down behaviour, a Deployment target, and a status as the HPA
/// controller would write it. Defaults: min 2, max 10, the metrics asking for
/// `min` replicas.
#[derive(Clone, Debug)]
pub struct HpaSeed {
    namespace: String,
    name: String,
    target: (String, String),
    min: u32,
    max: u32,
    recommended: Option<u32>,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    /// managedFields entries: (manager, operation).
    managers: Vec<(String, String)>,
    keda_owner: Option<String>,
}

impl HpaSeed {
    pub fn new(namespace: &str, name: &str) -> Self {
        HpaSeed {
            namespace: namespace.into(),
            name: name.into(),
            target: ("Deployment".into(), name.into()),
            min: 2,
            max: 10,
            recommended: None,
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
            managers: vec![],
            keda_owner: None,
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
    /// The replica count the metrics ask for; status shows it clamped to min..max.
    pub fn recommending(mut self, replicas: u32) -> Self {
        self.recommended = Some(replicas);
        self
    }
    pub fn target(mut self, kind: &str, name: &str) -> Self {
        self.target = (kind.into(), name.into());
        self
    }
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    /// A `metadata.managedFields` entry for `manager` owning min/max
    /// replicas, `operation` `Apply` (server-side apply) or `Update`.
    pub fn field_manager(mut self, manager: &str, operation: &str) -> Self {
        self.managers.push((manager.into(), operation.into()));
        self
    }
    /// Applied by Argo CD application `app` with its default tracking
    /// (since v3): the tracking-id annotation naming this HPA, and its
    /// server-side apply manager.
    pub fn tracked_by_argo_cd(self, app: &str) -> Self {
        let id = format!("{app}:{GROUP}/{KIND}:{}/{}", self.namespace, self.name);
        self.annotation("argocd.argoproj.io/tracking-id", &id)
            .field_manager("argocd-controller", "Apply")
    }
    /// Applied by the Flux Kustomization `namespace/name` (the labels
    /// kustomize-controller sets, and its manager).
    pub fn applied_by_flux(self, namespace: &str, name: &str) -> Self {
        self.label("kustomize.toolkit.fluxcd.io/name", name)
            .label("kustomize.toolkit.fluxcd.io/namespace", namespace)
            .field_manager("kustomize-controller", "Apply")
    }
    /// Released by the Flux HelmRelease `namespace/name` (the labels
    /// helm-controller's post-renderer sets).
    pub fn released_by_flux_helm(self, namespace: &str, name: &str) -> Self {
        self.label("helm.toolkit.fluxcd.io/name", name)
            .label("helm.toolkit.fluxcd.io/namespace", namespace)
            .field_manager("helm-controller", "Update")
    }
    /// Owned by a KEDA ScaledObject of this name (as KEDA creates its HPAs).
    pub fn owned_by_keda(mut self, scaled_object: &str) -> Self {
        self.keda_owner = Some(scaled_object.into());
        self
    }

    /// The HPA as a manifest (no status: the stand-in computes it).
    pub fn manifest(&self) -> Value {
        let mut metadata = json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": { "app.kubernetes.io/name": self.target.1 },
        });
        if !self.annotations.is_empty() {
            metadata["annotations"] = json!(self.annotations);
        }
        for (k, v) in &self.labels {
            metadata["labels"][k] = json!(v);
        }
        if !self.managers.is_empty() {
            let entries: Vec<Value> = self
                .managers
                .iter()
                .map(|(manager, operation)| {
                    json!({
                        "manager": manager, "operation": operation,
                        "apiVersion": API_VERSION, "time": now(),
                        "fieldsType": "FieldsV1",
                        "fieldsV1": { "f:spec": { "f:minReplicas": {}, "f:maxReplicas": {} } },
                    })
                })
                .collect();
            metadata["managedFields"] = json!(entries);
        }
        if let Some(so) = &self.keda_owner {
            metadata["labels"]["scaledobject.keda.sh/name"] = json!(so);
            metadata["ownerReferences"] = json!([{
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": so,
                "uid": pseudo_uid(&format!("scaledobject/{}/{so}", self.namespace)),
                "controller": true,
                "blockOwnerDeletion": true,
            }]);
        }
        json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": self.target.0, "name": self.target.1 },
                "minReplicas": self.min,
                "maxReplicas": self.max,
                "metrics": [{
                    "type": "Resource",
                    "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } },
                }],
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "selectPolicy": "Max",
                        "policies": [
                            { "type": "Pods", "value": 4, "periodSeconds": 15 },
                            { "type": "Percent", "value": 100, "periodSeconds": 15 },
                        ],
                    },
                    "scaleDown": {
                        "stabilizationWindowSeconds": 300,
                        "selectPolicy": "Max",
                        "policies": [{ "type": "Percent", "value": 50, "periodSeconds": 60 }],
                    },
                },
            },
        })
    }
}

/// The six HPAs of `config/example.yaml`, at the 600 tier (min 2 each).
pub fn example_hpas() -> Vec<HpaSeed> {
    EXAMPLE_SERVICES
        .iter()
        .map(|(_, ns, name, target)| {
            HpaSeed::new(ns, name).target("Deployment", target).max(
                if *name == "ingressgateway-hpa" {
                    20
                } else {
                    10
                },
            )
        })
        .collect()
}

/// `n` copies of the six services: copy 1 is [`example_hpas`]; copy k (2..=n)
/// puts all six in namespace `prod-k` (istio-ingress's HPA keeps its name
/// `ingressgateway-hpa`, the others are named after their service).
pub fn replicated_hpas(n: u32) -> Vec<HpaSeed> {
    let mut out = if n >= 1 { example_hpas() } else { vec![] };
    for k in 2..=n {
        let ns = format!("prod-{k}");
        out.extend(EXAMPLE_SERVICES.iter().map(|(_, _, name, target)| {
            HpaSeed::new(&ns, name).target("Deployment", target).max(
                if *name == "ingressgateway-hpa" {
                    20
                } else {
                    10
                },
            )
        }));
    }
    out
}

// ---------------------------------------------------------------------------
// Faults and the request log.

/// A failure injected for one HPA ([`KubeStandin::fail`]) or ConfigMap
/// ([`KubeStandin::fail_configmap`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next `n` patches (of a ConfigMap: updates and patches) answer 409
    /// Conflict, as if someone else wrote first.
    Conflicts(u32),
    /// Every request for the object answers 500 (etcd trouble, a broken webhook).
    ServerError,
    /// Requests with this RBAC verb (`get`, `patch`; for a ConfigMap also
    /// `create`, `update`, `delete`) answer 403.
    Forbidden(&'static str),
    /// The object answers 404 and is left out of lists, as if deleted meanwhile.
    NotFound,
    /// Writes answer 422 with this message (what an admission webhook does).
    Invalid(String),
    /// Requests for the object never answer (until the stand-in stops).
    Hang,
    /// Writes to the object never answer; reads do (a slow admission
    /// webhook, an apply that outlives its budget).
    HangWrites,
}

/// One request as the stand-in received it (a protobuf body is logged as
/// the JSON it decodes to; `content_type` is the one sent).
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
}

impl LoggedRequest {
    /// The RBAC verb this request needs (`get`, `list`, `watch`, `patch`, ...).
    pub fn verb(&self) -> &'static str {
        let named = matches!(
            parse_path(&self.path),
            Route::Hpa { name: Some(_), .. } | Route::ConfigMap { name: Some(_), .. }
        );
        let watch = self.query.contains("watch=true") || self.query.contains("watch=1");
        rbac_verb(self.method.as_str(), named, watch)
    }
    /// `(namespace, name)` when the request is for one HPA.
    pub fn hpa(&self) -> Option<(String, String)> {
        match parse_path(&self.path) {
            Route::Hpa {
                namespace: Some(ns),
                name: Some(name),
            } => Some((ns, name)),
            _ => None,
        }
    }
    /// Whether the request went to the HPA API (not discovery).
    pub fn is_hpa_api(&self) -> bool {
        matches!(parse_path(&self.path), Route::Hpa { .. })
    }
    /// `(namespace, name)` when the request is for one ConfigMap; a create
    /// names it in its body.
    pub fn configmap(&self) -> Option<(String, String)> {
        match parse_path(&self.path) {
            Route::ConfigMap {
                namespace: Some(ns),
                name: Some(name),
            } => Some((ns, name)),
            Route::ConfigMap {
                namespace: Some(ns),
                name: None,
            } if self.method == "POST" => configmaps::body_name(&self.body).map(|n| (ns, n)),
            _ => None,
        }
    }
    /// Whether the request went to the ConfigMap API (not discovery).
    pub fn is_configmap_api(&self) -> bool {
        matches!(parse_path(&self.path), Route::ConfigMap { .. })
    }
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The RBAC verb of a request: `named` when the path names one object.
fn rbac_verb(method: &str, named: bool, watch: bool) -> &'static str {
    match method {
        "GET" if named => "get",
        "GET" if watch => "watch",
        "GET" => "list",
        "PATCH" => "patch",
        "PUT" => "update",
        "POST" => "create",
        "DELETE" => "delete",
        _ => "unknown",
    }
}

// ---------------------------------------------------------------------------
// The handle.

type Key = (String, String);

struct Shared {
    state: Mutex<Store>,
    latency: Latency,
    /// Flipped when the handle drops, so handlers parked in `Fault::Hang`
    /// return and the server can shut down.
    release: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Store {
    objects: BTreeMap<Key, Value>,
    /// What the (imaginary) metrics ask for; status shows it clamped.
    recommended: HashMap<Key, i64>,
    faults: HashMap<Key, Fault>,
    configmaps: BTreeMap<Key, Value>,
    configmap_faults: HashMap<Key, Fault>,
    /// `Some`: ConfigMap requests are authorized against these rules only.
    configmap_rbac: Option<Vec<RbacRule>>,
    /// Namespaces created explicitly (name -> creationTimestamp); those of
    /// HPAs and ConfigMaps, `default` and `kube-system` exist as well.
    namespaces: BTreeMap<String, String>,
    last_rv: u64,
    token: Option<String>,
    log: Vec<LoggedRequest>,
}

impl Store {
    fn next_rv(&mut self) -> String {
        self.last_rv += 1;
        self.last_rv.to_string()
    }
}

impl Shared {
    fn new(latency: Duration) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(Store {
                // Real clusters are well past resourceVersion 1.
                last_rv: 40_000,
                ..Store::default()
            }),
            latency: Latency::new(latency),
            release: tokio::sync::watch::channel(false).0,
        })
    }

    fn router(self: &Arc<Self>) -> Router {
        // The API server's own body limit (3 MiB, answered with a Status)
        // must be reachable, not axum's 2 MB default with a plain-text 413.
        let router = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(self.clone());
        self.latency.layer(router)
    }

    fn insert(&self, manifest: Value, recommended: Option<i64>) -> Result<(), String> {
        let mut st = self.state.lock().unwrap();
        admit(&mut st, manifest, recommended)
    }

    /// A seed document by its kind: a Namespace, a ConfigMap or an HPA.
    fn insert_any(&self, manifest: Value) -> Result<(), String> {
        match manifest["kind"].as_str() {
            Some("Namespace") => {
                let name = manifest["metadata"]["name"]
                    .as_str()
                    .ok_or("a Namespace needs metadata.name")?;
                let mut st = self.state.lock().unwrap();
                st.namespaces.insert(name.to_string(), now());
                Ok(())
            }
            Some("ConfigMap") => configmaps::seed(&mut self.state.lock().unwrap(), manifest),
            _ => self.insert(manifest, None),
        }
    }
}

/// The stand-in running in-process. Dropping it stops the server.
pub struct KubeStandin {
    shared: Arc<Shared>,
    running: Running,
}

impl Drop for KubeStandin {
    fn drop(&mut self) {
        let _ = self.shared.release.send(true);
    }
}

impl KubeStandin {
    /// Starts an empty API server on a free loopback port.
    pub fn start() -> Self {
        let shared = Shared::new(Duration::ZERO);
        let running = server::spawn(shared.router(), 0).expect("start the Kubernetes stand-in");
        KubeStandin { shared, running }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.running.url()
    }

    pub fn seed(&self, hpa: HpaSeed) -> &Self {
        self.shared
            .insert(hpa.manifest(), hpa.recommended.map(i64::from))
            .expect("a valid seed");
        self
    }

    pub fn seed_all(&self, hpas: impl IntoIterator<Item = HpaSeed>) -> &Self {
        for h in hpas {
            self.seed(h);
        }
        self
    }

    /// Adds an HPA manifest as given (missing metadata and status are filled in).
    pub fn insert(&self, manifest: Value) -> Result<(), String> {
        self.shared.insert(manifest, None)
    }

    /// The HPA as the server holds it now.
    pub fn hpa(&self, namespace: &str, name: &str) -> Option<Value> {
        let st = self.shared.state.lock().unwrap();
        st.objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Changes an HPA behind the client's back (another writer): the
    /// resourceVersion moves, so a patch based on an earlier read conflicts.
    pub fn edit(&self, namespace: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut st = self.shared.state.lock().unwrap();
        let rv = st.next_rv();
        let key = (namespace.to_string(), name.to_string());
        let recommended = st.recommended[&key];
        let obj = st.objects.get_mut(&key).expect("edit: no such HPA");
        let old = obj.clone();
        f(obj);
        obj["metadata"]["resourceVersion"] = json!(rv);
        settle(obj, recommended, Some(&old));
    }

    pub fn fail(&self, namespace: &str, name: &str, fault: Fault) {
        let mut st = self.shared.state.lock().unwrap();
        st.faults
            .insert((namespace.to_string(), name.to_string()), fault);
    }

    /// Clears the faults of HPAs and ConfigMaps alike.
    pub fn clear_faults(&self) {
        let mut st = self.shared.state.lock().unwrap();
        st.faults.clear();
        st.configmap_faults.clear();
    }

    /// Creates a namespace (ConfigMaps can only be created in one that exists).
    pub fn add_namespace(&self, namespace: &str) -> &Self {
        let mut st = self.shared.state.lock().unwrap();
        st.namespaces
            .entry(namespace.to_string())
            .or_insert_with(now);
        self
    }

    /// Adds a ConfigMap with these `data` entries (its namespace is created
    /// if need be), as `kubectl create configmap --from-literal` would.
    pub fn seed_configmap<K, V>(
        &self,
        namespace: &str,
        name: &str,
        data: impl IntoIterator<Item = (K, V)>,
    ) -> &Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let data: Map<String, Value> = data
            .into_iter()
            .map(|(k, v)| (k.into(), Value::String(v.into())))
            .collect();
        let manifest = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": namespace },
            "data": data,
        });
        self.insert_configmap(manifest)
            .expect("a valid ConfigMap seed");
        self
    }

    /// Adds a ConfigMap manifest as the API server would create it (same
    /// validation and size limit; the namespace is created if need be).
    pub fn insert_configmap(&self, manifest: Value) -> Result<(), String> {
        let mut st = self.shared.state.lock().unwrap();
        configmaps::seed(&mut st, manifest)
    }

    /// The ConfigMap as the server holds it now.
    pub fn configmap(&self, namespace: &str, name: &str) -> Option<Value> {
        let st = self.shared.state.lock().unwrap();
        st.configmaps
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Its `data`, or `None` when there is no such ConfigMap (an empty map
    /// when it has no data).
    pub fn configmap_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let cm = self.configmap(namespace, name)?;
        Some(
            cm["data"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// Every ConfigMap of a namespace, by name.
    pub fn configmaps(&self, namespace: &str) -> Vec<Value> {
        let st = self.shared.state.lock().unwrap();
        st.configmaps
            .iter()
            .filter(|(k, _)| k.0 == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Changes a ConfigMap behind the client's back (another writer): the
    /// resourceVersion moves, so an update based on an earlier read conflicts.
    pub fn edit_configmap(&self, namespace: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut st = self.shared.state.lock().unwrap();
        let rv = st.next_rv();
        let obj = st
            .configmaps
            .get_mut(&(namespace.to_string(), name.to_string()))
            .expect("edit_configmap: no such ConfigMap");
        f(obj);
        obj["metadata"]["resourceVersion"] = json!(rv);
    }

    /// Deletes a ConfigMap behind the client's back; whether it was there.
    pub fn delete_configmap(&self, namespace: &str, name: &str) -> bool {
        let mut st = self.shared.state.lock().unwrap();
        st.configmaps
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some()
    }

    /// A failure for one ConfigMap. `Conflicts` counts down updates and
    /// patches; `Forbidden(verb)` refuses that verb (`create` included, the
    /// name taken from the body); `NotFound` hides it from get, update,
    /// patch, delete and lists; `Invalid` refuses writes; `Hang` everything.
    pub fn fail_configmap(&self, namespace: &str, name: &str, fault: Fault) {
        let mut st = self.shared.state.lock().unwrap();
        st.configmap_faults
            .insert((namespace.to_string(), name.to_string()), fault);
    }

    /// From now on ConfigMap requests are allowed only as these rules (the
    /// rules of the caller's Roles) allow, like the RBAC authorizer; an
    /// empty list forbids everything. HPAs are not affected.
    pub fn restrict_configmaps(&self, rules: impl IntoIterator<Item = RbacRule>) {
        self.shared.state.lock().unwrap().configmap_rbac = Some(rules.into_iter().collect());
    }

    /// Every response waits this long first.
    pub fn set_latency(&self, d: Duration) {
        self.shared.latency.set(d);
    }

    /// From now on every request needs `Authorization: Bearer <token>` (else 401).
    pub fn require_token(&self, token: &str) {
        self.shared.state.lock().unwrap().token = Some(token.to_string());
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.state.lock().unwrap().log.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.state.lock().unwrap().log.clear();
    }

    /// A kubeconfig whose context `context` points at this stand-in.
    pub fn kubeconfig(&self, context: &str, auth: &KubeAuth) -> String {
        kubeconfig(&self.url(), context, auth)
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str, auth: &KubeAuth) {
        std::fs::write(path, self.kubeconfig(context, auth)).expect("write kubeconfig");
    }

    /// Writes [`insecure_kubeconfig`] for this stand-in to `path`.
    pub fn write_insecure_kubeconfig(&self, path: &Path, context: &str, auth: &KubeAuth) {
        std::fs::write(path, insecure_kubeconfig(&self.url(), context, auth))
            .expect("write kubeconfig");
    }
}

// ---------------------------------------------------------------------------
// Kubeconfigs and the exec credential plugin.

/// How the kubeconfig's user authenticates.
#[derive(Clone, Debug)]
pub enum KubeAuth {
    None,
    Token(String),
    /// An exec credential plugin, as EKS kubeconfigs use `aws eks get-token`.
    Exec {
        command: PathBuf,
        args: Vec<String>,
    },
}

/// A kubeconfig with one cluster, user and context (`context`, also the
/// current context), pointing at `server`.
pub fn kubeconfig(server: &str, context: &str, auth: &KubeAuth) -> String {
    let user = match auth {
        KubeAuth::None => json!({}),
        KubeAuth::Token(t) => json!({ "token": t }),
        KubeAuth::Exec { command, args } => json!({
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": command,
                "args": args,
                "env": [{ "name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional" }],
                "interactiveMode": "Never",
                "provideClusterInfo": false,
            }
        }),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{ "name": context, "cluster": { "server": server } }],
        "users": [{ "name": context, "user": user }],
        "contexts": [{ "name": context, "context": { "cluster": context, "user": context } }],
        "current-context": context,
    });
    serde_yaml::to_string(&doc).expect("kubeconfig as YAML")
}

/// [`kubeconfig`] with `insecure-skip-tls-verify: true` on its cluster, as
/// people write to get past a self-signed API server certificate. (The
/// stand-in serves plain HTTP, so the flag changes nothing on the wire; the
/// client still sees it in the file.)
pub fn insecure_kubeconfig(server: &str, context: &str, auth: &KubeAuth) -> String {
    let mut doc: Value =
        serde_yaml::from_str(&kubeconfig(server, context, auth)).expect("our own kubeconfig");
    doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = json!(true);
    serde_yaml::to_string(&doc).expect("kubeconfig as YAML")
}

/// Writes an executable exec credential plugin to `dir/name` that prints an
/// ExecCredential carrying `token` (valid 15 minutes, like `aws eks
/// get-token`) and appends one line to `dir/name.calls` per run.
pub fn write_exec_plugin(dir: &Path, name: &str, token: &str) -> PathBuf {
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(15);
    let credential = json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {
            "expirationTimestamp": expires.round(jiff::Unit::Second).expect("round").to_string(),
            "token": token,
        },
    });
    let path = dir.join(name);
    let calls = dir.join(format!("{name}.calls"));
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\ncat <<'EOF'\n{}\nEOF\n",
        calls.display(),
        serde_json::to_string_pretty(&credential).unwrap()
    );
    std::fs::write(&path, script).expect("write exec plugin");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

// ---------------------------------------------------------------------------
// Objects: admission, status, validation.

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .expect("round")
        .to_string()
}

/// A stable UUID-shaped id derived from `seed`.
fn pseudo_uid(seed: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let h: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// Stores a new HPA, filling in what the API server and the HPA controller
/// would (uid, resourceVersion, timestamps, status). `recommended`: what the
/// metrics ask for; default the status' desiredReplicas, else minReplicas.
fn admit(st: &mut Store, mut obj: Value, recommended: Option<i64>) -> Result<(), String> {
    if !obj.is_object() {
        return Err("an HPA manifest must be a mapping".into());
    }
    obj["apiVersion"] = json!(API_VERSION);
    obj["kind"] = json!(KIND);
    let name = obj["metadata"]["name"]
        .as_str()
        .ok_or("metadata.name is required")?
        .to_string();
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let rv = st.next_rv();
    let meta = obj["metadata"]
        .as_object_mut()
        .ok_or("metadata must be a mapping")?;
    meta.insert("namespace".into(), json!(ns));
    meta.entry("uid")
        .or_insert_with(|| json!(pseudo_uid(&format!("hpa/{ns}/{name}"))));
    meta.entry("creationTimestamp")
        .or_insert_with(|| json!(now()));
    meta.insert("generation".into(), json!(1));
    meta.insert("resourceVersion".into(), json!(rv));
    if obj["spec"]["minReplicas"].is_null() {
        obj["spec"]["minReplicas"] = json!(1);
    }
    if let Some(e) = validate(&obj).first() {
        return Err(format!("{ns}/{name}: {}: {}", e.0, e.1));
    }
    let key = (ns, name);
    let min = int(&obj["spec"]["minReplicas"]).unwrap_or(1);
    let given = int(&obj["status"]["desiredReplicas"]);
    let recommended = recommended.or(given).unwrap_or(min);
    if given.is_none() || obj["status"]["conditions"].is_null() {
        settle(&mut obj, recommended, None);
    }
    st.recommended.insert(key.clone(), recommended);
    st.objects.insert(key, obj);
    Ok(())
}

/// Plays the HPA controller: desired and current replicas follow the
/// recommendation clamped to min..max; the three conditions say why.
/// `before` keeps transition times of conditions that did not change.
fn settle(obj: &mut Value, recommended: i64, before: Option<&Value>) {
    let min = int(&obj["spec"]["minReplicas"]).unwrap_or(1);
    let max = int(&obj["spec"]["maxReplicas"]).unwrap_or(min).max(min);
    let desired = recommended.clamp(min, max);
    let ts = now();
    let previous_desired = before.and_then(|b| int(&b["status"]["desiredReplicas"]));

    let (limited, limited_reason, limited_msg) = if recommended < min {
        (
            "True",
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    } else if recommended > max {
        (
            "True",
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    } else {
        (
            "False",
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
    };
    let wanted = [
        (
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size",
        ),
        (
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
        ),
        ("ScalingLimited", limited, limited_reason, limited_msg),
    ];
    let old_conditions = before
        .and_then(|b| b["status"]["conditions"].as_array().cloned())
        .unwrap_or_default();
    let conditions: Vec<Value> = wanted
        .iter()
        .map(|(kind, status, reason, message)| {
            let since = old_conditions
                .iter()
                .find(|c| c["type"] == *kind && c["status"] == *status)
                .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
                .unwrap_or_else(|| ts.clone());
            json!({
                "type": kind, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": since,
            })
        })
        .collect();

    // Utilization falls as replicas rise for the same load.
    let current_metrics: Vec<Value> = obj["spec"]["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| {
                    let target = int(&m["resource"]["target"]["averageUtilization"])?;
                    let used = target * recommended.max(1) / desired.max(1);
                    Some(json!({
                        "type": "Resource",
                        "resource": {
                            "name": m["resource"]["name"],
                            "current": { "averageUtilization": used, "averageValue": format!("{}m", used * 5) },
                        },
                    }))
                })
                .collect()
        })
        .unwrap_or_default();

    let last_scale = match (previous_desired, before) {
        (Some(p), Some(b)) if p == desired => b["status"]["lastScaleTime"].clone(),
        _ => json!(ts),
    };
    obj["status"] = json!({
        "observedGeneration": obj["metadata"]["generation"],
        "lastScaleTime": last_scale,
        "currentReplicas": desired,
        "desiredReplicas": desired,
        "currentMetrics": current_metrics,
        "conditions": conditions,
    });
}

/// The API server's HPA validation: `(field, message)` per problem.
fn validate(obj: &Value) -> Vec<(String, String)> {
    let mut errs = vec![];
    let spec = &obj["spec"];
    let min = &spec["minReplicas"];
    let max = &spec["maxReplicas"];
    for (field, v) in [("spec.minReplicas", min), ("spec.maxReplicas", max)] {
        match v {
            Value::Null if field == "spec.maxReplicas" => {
                errs.push((field.into(), "Required value".into()))
            }
            Value::Null => {}
            v if v.as_i64().is_none() => errs.push((
                field.into(),
                format!("Invalid value: {v}: must be an integer"),
            )),
            v if v.as_i64() < Some(1) => errs.push((
                field.into(),
                format!("Invalid value: {v}: must be greater than or equal to 1"),
            )),
            _ => {}
        }
    }
    if let (Some(lo), Some(hi)) = (min.as_i64(), max.as_i64())
        && hi < lo
    {
        errs.push((
            "spec.maxReplicas".into(),
            format!("Invalid value: {hi}: must be greater than or equal to `minReplicas`"),
        ));
    }
    for f in ["kind", "name"] {
        if spec["scaleTargetRef"][f].as_str().is_none_or(str::is_empty) {
            errs.push((format!("spec.scaleTargetRef.{f}"), "Required value".into()));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Patches.

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Strategic merge patch as far as an HPA needs it: a merge patch whose
/// `$patch: delete|replace` directives are honoured, other `$` directives
/// dropped, and `ownerReferences` merged by `uid` (the HPA's own lists are
/// atomic, so they are replaced).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, path: &str) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        Some("replace") => {
            let mut clean = p.clone();
            clean.retain(|k, _| !k.starts_with('$'));
            *target = Value::Object(clean);
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        let child = format!("{path}/{k}");
        if v.is_null() {
            t.remove(k);
        } else if child == "/metadata/ownerReferences" {
            merge_list_by_key(t.entry(k.clone()).or_insert(json!([])), v, "uid");
        } else {
            let slot = t.entry(k.clone()).or_insert(Value::Null);
            strategic_merge_patch(slot, v, &child);
            if slot.is_null() {
                t.remove(k);
            }
        }
    }
}

fn merge_list_by_key(target: &mut Value, patch: &Value, key: &str) {
    let (Some(items), Some(old)) = (patch.as_array(), target.as_array_mut()) else {
        *target = patch.clone();
        return;
    };
    for item in items {
        let delete = item["$patch"] == "delete";
        match old.iter().position(|o| o[key] == item[key]) {
            Some(i) if delete => {
                old.remove(i);
            }
            Some(i) => merge_patch(&mut old[i], item),
            None if !delete => old.push(item.clone()),
            None => {}
        }
    }
}

/// RFC 6902 JSON patch. `Err` carries the reason a real server gives.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("missing path in operation")?;
        match op["op"].as_str().unwrap_or("") {
            "add" => pointer_add(target, path, op["value"].clone())?,
            "remove" => {
                pointer_remove(target, path)?;
            }
            "replace" => {
                let slot = target.pointer_mut(path).ok_or_else(|| {
                    format!("replace operation does not apply: doc is missing path: {path}")
                })?;
                *slot = op["value"].clone();
            }
            "move" | "copy" => {
                let from = op["from"].as_str().ok_or("missing from in operation")?;
                let v = if op["op"] == "move" {
                    pointer_remove(target, from)?
                } else {
                    target.pointer(from).cloned().ok_or_else(|| {
                        format!("copy operation does not apply: doc is missing from path: {from}")
                    })?
                };
                pointer_add(target, path, v)?;
            }
            "test" => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let i = path
        .rfind('/')
        .ok_or_else(|| format!("invalid JSON pointer: {path}"))?;
    let last = path[i + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..i].to_string(), last))
}

fn pointer_add(target: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = v;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("add operation does not apply: doc is missing path: {path}");
    match target.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last, v);
        }
        Value::Array(a) if last == "-" => a.push(v),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i > a.len() {
                return Err(missing());
            }
            a.insert(i, v);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path}");
    match target.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

// ---------------------------------------------------------------------------
// HTTP.

enum Route {
    Version,
    Api,
    ApiV1,
    /// Namespaces exist where HPAs are (plus default and kube-system);
    /// kubectl asks for one when an HPA is not found.
    Namespace(Option<String>),
    Apis,
    Group,
    GroupVersion,
    Hpa {
        namespace: Option<String>,
        name: Option<String>,
    },
    /// core/v1 ConfigMaps: all namespaces, one namespace, or one by name.
    ConfigMap {
        namespace: Option<String>,
        name: Option<String>,
    },
    Unknown,
}

fn parse_path(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::ApiV1,
        ["api", "v1", "namespaces"] => Route::Namespace(None),
        ["api", "v1", "namespaces", ns] => Route::Namespace(Some(ns.to_string())),
        ["api", "v1", "configmaps"] => Route::ConfigMap {
            namespace: None,
            name: None,
        },
        ["api", "v1", "namespaces", ns, "configmaps"] => Route::ConfigMap {
            namespace: Some(ns.to_string()),
            name: None,
        },
        ["api", "v1", "namespaces", ns, "configmaps", name] => Route::ConfigMap {
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
        },
        ["apis"] => Route::Apis,
        ["apis", GROUP] => Route::Group,
        ["apis", GROUP, VERSION] => Route::GroupVersion,
        ["apis", GROUP, VERSION, RESOURCE] => Route::Hpa {
            namespace: None,
            name: None,
        },
        ["apis", GROUP, VERSION, "namespaces", ns, RESOURCE] => Route::Hpa {
            namespace: Some(ns.to_string()),
            name: None,
        },
        ["apis", GROUP, VERSION, "namespaces", ns, RESOURCE, name] => Route::Hpa {
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
        },
        _ => Route::Unknown,
    }
}

struct Reply(StatusCode, Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&self.1).expect("JSON"),
        )
            .into_response()
    }
}

fn ok(v: Value) -> Reply {
    Reply(StatusCode::OK, v)
}

/// A `Status` failure object as the API server sends it.
fn failure(code: u16, reason: &str, message: String, details: Option<Value>) -> Reply {
    let mut s = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    Reply(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        s,
    )
}

fn hpa_details(name: &str) -> Value {
    json!({ "name": name, "group": GROUP, "kind": RESOURCE })
}

fn not_found(name: &str) -> Reply {
    failure(
        404,
        "NotFound",
        format!("{RESOURCE}.{GROUP} \"{name}\" not found"),
        Some(hpa_details(name)),
    )
}

fn forbidden(verb: &str, ns: Option<&str>, name: Option<&str>) -> Reply {
    let what = match name {
        Some(n) => format!("{RESOURCE}.{GROUP} \"{n}\" is forbidden"),
        None => format!("{RESOURCE}.{GROUP} is forbidden"),
    };
    let scope = match ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    failure(
        403,
        "Forbidden",
        format!(
            "{what}: User \"{USER}\" cannot {verb} resource \"{RESOURCE}\" in API group \"{GROUP}\" {scope}"
        ),
        Some(json!({ "name": name.unwrap_or(""), "group": GROUP, "kind": RESOURCE })),
    )
}

fn invalid(name: &str, errs: &[(String, String)]) -> Reply {
    invalid_as(
        &format!("{KIND}.{GROUP}"),
        json!({ "name": name, "group": GROUP, "kind": KIND }),
        name,
        errs,
    )
}

/// A 422 `Invalid` as apimachinery's `NewInvalid` builds it: `qualified` is
/// `Kind.group` (just `Kind` in the core group), `errs` are `(field, body)`
/// pairs whose body starts with the error type ("Invalid value", "Too long").
fn invalid_as(qualified: &str, mut details: Value, name: &str, errs: &[(String, String)]) -> Reply {
    let summary = if errs.len() == 1 {
        format!("{}: {}", errs[0].0, errs[0].1)
    } else {
        format!(
            "[{}]",
            errs.iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let causes: Vec<Value> = errs
        .iter()
        .map(|(f, m)| {
            let reason = match m.split(':').next().unwrap_or("") {
                "Required value" => "FieldValueRequired",
                "Too long" => "FieldValueTooLong",
                "Forbidden" => "FieldValueForbidden",
                _ => "FieldValueInvalid",
            };
            json!({ "reason": reason, "message": m, "field": f })
        })
        .collect();
    details["causes"] = json!(causes);
    failure(
        422,
        "Invalid",
        format!("{qualified} \"{name}\" is invalid: {summary}"),
        Some(details),
    )
}

fn bad_request(message: String) -> Reply {
    failure(400, "BadRequest", message, None)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let too_large = body.len() > configmaps::MAX_REQUEST_BODY_BYTES;
    // client-go sends built-in kinds as protobuf; the rest of the stand-in
    // (and the request log) sees the JSON they stand for.
    let sent_type = content_type.clone();
    let mut content_type = content_type;
    let mut undecodable = None;
    let protobuf = sent_type
        .as_deref()
        .is_some_and(|c| c.starts_with(protobuf::MEDIA_TYPE))
        && matches!(parse_path(&path), Route::ConfigMap { .. });
    let body = match protobuf.then(|| protobuf::to_json(&body)) {
        Some(Ok(v)) => {
            content_type = Some("application/json".into());
            v.to_string()
        }
        Some(Err(e)) => {
            undecodable = Some(e);
            String::new()
        }
        None => String::from_utf8_lossy(&body).into_owned(),
    };

    let hang = {
        let mut st = shared.state.lock().unwrap();
        st.log.push(LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            content_type: sent_type,
            body: body.clone(),
        });
        if let Some(t) = &st.token
            && bearer.as_deref() != Some(t.as_str())
        {
            return failure(401, "Unauthorized", "Unauthorized".into(), None).into_response();
        }
        if let Some(e) = undecodable {
            return failure(
                400,
                "BadRequest",
                format!("the body of the request could not be decoded as protobuf: {e}"),
                None,
            )
            .into_response();
        }
        if too_large {
            // k8s.io/apiserver's MaxRequestBodyBytes, before any decoding.
            return failure(
                413,
                "RequestEntityTooLarge",
                format!(
                    "Request entity too large: limit is {}",
                    configmaps::MAX_REQUEST_BODY_BYTES
                ),
                None,
            )
            .into_response();
        }
        let last = st.log.last().expect("just logged");
        let write = method != Method::GET;
        let hung = |faults: &HashMap<Key, Fault>, key: Option<Key>| {
            key.is_some_and(|k| match faults.get(&k) {
                Some(Fault::Hang) => true,
                Some(Fault::HangWrites) => write,
                _ => false,
            })
        };
        match parse_path(&path) {
            Route::Hpa { .. } => hung(&st.faults, last.hpa()),
            Route::ConfigMap { .. } => hung(&st.configmap_faults, last.configmap()),
            _ => false,
        }
    };
    if hang {
        let mut rx = shared.release.subscribe();
        let _ = rx.wait_for(|released| *released).await;
        return failure(
            503,
            "ServiceUnavailable",
            "the stand-in is shutting down".into(),
            None,
        )
        .into_response();
    }

    let req = Req {
        method,
        query,
        content_type,
        table: accept.contains("as=Table"),
        body,
    };
    let mut st = shared.state.lock().unwrap();
    route(&mut st, &path, &req).into_response()
}

struct Req {
    method: Method,
    query: String,
    content_type: Option<String>,
    /// kubectl asks for server-side printed tables.
    table: bool,
    body: String,
}

impl Req {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
    /// A query parameter percent-decoded (selectors arrive encoded).
    fn decoded(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
    fn is_watch(&self) -> bool {
        self.param("watch").is_some_and(|w| w == "true" || w == "1")
    }
}

fn route(st: &mut Store, path: &str, req: &Req) -> Reply {
    let is_get = req.method == Method::GET;
    match parse_path(path) {
        Route::Version if is_get => ok(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-hpa-tier-standin",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
            "platform": "linux/amd64",
        })),
        Route::Api if is_get => ok(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }],
        })),
        Route::ApiV1 if is_get => ok(json!({
            "kind": "APIResourceList", "groupVersion": "v1",
            "resources": [{
                "name": "namespaces", "singularName": "namespace", "namespaced": false,
                "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"],
            }, configmaps::discovery()],
        })),
        Route::Namespace(name) if is_get => namespaces(st, name.as_deref(), req),
        Route::Apis if is_get => ok(json!({
            "kind": "APIGroupList", "apiVersion": "v1", "groups": [group_json()],
        })),
        Route::Group if is_get => {
            let mut g = group_json();
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            ok(g)
        }
        Route::GroupVersion if is_get => ok(json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
            "resources": [{
                "name": RESOURCE, "singularName": "horizontalpodautoscaler", "namespaced": true,
                "kind": KIND, "verbs": ["get", "list", "patch"],
                "shortNames": ["hpa"], "categories": ["all"],
            }],
        })),
        Route::Hpa {
            namespace,
            name: None,
        } if is_get => {
            if req.param("watch").is_some_and(|w| w == "true" || w == "1") {
                return failure(
                    405,
                    "MethodNotAllowed",
                    "the stand-in does not support watch".into(),
                    None,
                );
            }
            list(st, namespace.as_deref(), req)
        }
        Route::Hpa {
            namespace: Some(ns),
            name: Some(name),
        } => {
            let key = (ns.clone(), name.clone());
            let verb = match req.method {
                Method::GET => "get",
                Method::PATCH => "patch",
                _ => {
                    return failure(
                        405,
                        "MethodNotAllowed",
                        "the server does not allow this method on the requested resource".into(),
                        None,
                    );
                }
            };
            if let Some(reply) = injected(st, &key, verb) {
                return reply;
            }
            if verb == "get" {
                match st.objects.get(&key) {
                    Some(o) if req.table => ok(table(&[o], true)),
                    Some(o) => ok(o.clone()),
                    None => not_found(&name),
                }
            } else {
                patch(st, &key, req)
            }
        }
        Route::ConfigMap { namespace, name } => {
            configmaps::route(st, namespace.as_deref(), name.as_deref(), req)
        }
        Route::Unknown => failure(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        ),
        _ => failure(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            None,
        ),
    }
}

/// The namespaces that exist, each with its creation time ("" when unknown):
/// `default`, `kube-system`, those created explicitly and those holding an
/// HPA or a ConfigMap.
fn known_namespaces(st: &Store) -> BTreeMap<&str, &str> {
    let mut names: BTreeMap<&str, &str> = [("default", ""), ("kube-system", "")].into();
    for (n, created) in &st.namespaces {
        names.insert(n.as_str(), created.as_str());
    }
    for (k, o) in st.objects.iter().chain(&st.configmaps) {
        let created = o["metadata"]["creationTimestamp"].as_str().unwrap_or("");
        let e = names.entry(k.0.as_str()).or_insert(created);
        if e.is_empty() || created < *e {
            *e = created;
        }
    }
    names
}

fn namespaces(st: &Store, name: Option<&str>, req: &Req) -> Reply {
    let names = known_namespaces(st);
    let boot = st
        .objects
        .values()
        .filter_map(|o| o["metadata"]["creationTimestamp"].as_str())
        .min()
        .unwrap_or("2025-01-01T00:00:00Z")
        .to_string();
    let ns_json = |n: &str, created: &str| {
        let created = if created.is_empty() {
            boot.as_str()
        } else {
            created
        };
        json!({
            "metadata": {
                "name": n, "uid": pseudo_uid(&format!("ns/{n}")), "resourceVersion": "1",
                "creationTimestamp": created,
                "labels": { "kubernetes.io/metadata.name": n },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        })
    };
    if let Some(n) = name {
        return match names.get(n) {
            Some(created) => {
                let mut v = ns_json(n, created);
                v["kind"] = json!("Namespace");
                v["apiVersion"] = json!("v1");
                ok(v)
            }
            None => failure(
                404,
                "NotFound",
                format!("namespaces \"{n}\" not found"),
                Some(json!({ "name": n, "kind": "namespaces" })),
            ),
        };
    }
    let items: Vec<Value> = names.iter().map(|(n, c)| ns_json(n, c)).collect();
    if req.table {
        let rows: Vec<Value> = items
            .iter()
            .map(|o| {
                json!({
                    "cells": [o["metadata"]["name"], "Active",
                              age(o["metadata"]["creationTimestamp"].as_str().unwrap_or(""))],
                    "object": { "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": o["metadata"] },
                })
            })
            .collect();
        return ok(json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [
                { "name": "Name", "type": "string", "format": "name", "description": "", "priority": 0 },
                { "name": "Status", "type": "string", "format": "", "description": "", "priority": 0 },
                { "name": "Age", "type": "string", "format": "", "description": "", "priority": 0 },
            ],
            "rows": rows,
        }));
    }
    ok(json!({ "kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": items }))
}

fn group_json() -> Value {
    json!({
        "name": GROUP,
        "versions": [{ "groupVersion": API_VERSION, "version": VERSION }],
        "preferredVersion": { "groupVersion": API_VERSION, "version": VERSION },
    })
}

/// The injected failure for this request, if any (409s are counted down).
fn injected(st: &mut Store, key: &Key, verb: &str) -> Option<Reply> {
    let name = key.1.as_str();
    match st.faults.get_mut(key)? {
        Fault::ServerError => Some(failure(
            500,
            "InternalError",
            format!(
                "Internal error occurred: etcdserver: request timed out while trying to {verb} {RESOURCE}.{GROUP} \"{name}\""
            ),
            Some(json!({ "causes": [{ "message": "etcdserver: request timed out" }] })),
        )),
        Fault::Forbidden(v) if *v == verb => Some(forbidden(verb, Some(&key.0), Some(name))),
        Fault::NotFound => Some(not_found(name)),
        Fault::Invalid(msg) if verb == "patch" => {
            let msg = msg.clone();
            Some(failure(
                422,
                "Invalid",
                format!("{KIND}.{GROUP} \"{name}\" is invalid: {msg}"),
                Some(json!({ "name": name, "group": GROUP, "kind": KIND,
                             "causes": [{ "reason": "FieldValueInvalid", "message": msg }] })),
            ))
        }
        Fault::Conflicts(n) if verb == "patch" && *n > 0 => {
            *n -= 1;
            Some(conflict(name))
        }
        _ => None,
    }
}

fn conflict(name: &str) -> Reply {
    failure(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {RESOURCE}.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        Some(hpa_details(name)),
    )
}

fn list(st: &Store, namespace: Option<&str>, req: &Req) -> Reply {
    let items: Vec<&Value> = st
        .objects
        .iter()
        .filter(|(k, _)| namespace.is_none_or(|ns| k.0 == ns))
        .filter(|(k, _)| st.faults.get(k) != Some(&Fault::NotFound))
        .map(|(_, v)| v)
        .collect();
    if req.table {
        let mut t = table(&items, req.param("includeObject") == Some("Object"));
        t["metadata"]["resourceVersion"] = json!(st.last_rv.to_string());
        return ok(t);
    }
    // Items in a list carry no kind/apiVersion, as from a real server.
    let items: Vec<Value> = items
        .into_iter()
        .map(|v| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            v
        })
        .collect();
    ok(json!({
        "kind": "HorizontalPodAutoscalerList", "apiVersion": API_VERSION,
        "metadata": { "resourceVersion": st.last_rv.to_string() },
        "items": items,
    }))
}

/// The server-side printed table kubectl shows (`kubectl get hpa`).
fn table(items: &[&Value], full_object: bool) -> Value {
    let col = |name: &str, ty: &str, fmt: &str, desc: &str| json!({ "name": name, "type": ty, "format": fmt, "description": desc, "priority": 0 });
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let spec = &o["spec"];
            let target = format!(
                "{}/{}",
                spec["scaleTargetRef"]["kind"].as_str().unwrap_or(""),
                spec["scaleTargetRef"]["name"].as_str().unwrap_or("")
            );
            let object = if full_object {
                (*o).clone()
            } else {
                json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"] })
            };
            json!({
                "cells": [
                    o["metadata"]["name"], target, targets_cell(o),
                    spec["minReplicas"], spec["maxReplicas"],
                    o["status"]["currentReplicas"].as_i64().unwrap_or(0),
                    age(o["metadata"]["creationTimestamp"].as_str().unwrap_or("")),
                ],
                "object": object,
            })
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
        "columnDefinitions": [
            col("Name", "string", "name", "Name must be unique within a namespace."),
            col("Reference", "string", "", "reference to the target scale resource"),
            col("Targets", "string", "", "current and target metric values"),
            col("MinPods", "string", "", "minimum replicas"),
            col("MaxPods", "integer", "", "maximum replicas"),
            col("Replicas", "integer", "", "current replicas"),
            col("Age", "string", "", "time since creation"),
        ],
        "rows": rows,
    })
}

fn targets_cell(o: &Value) -> String {
    let current = o["status"]["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = o["spec"]["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let name = m["resource"]["name"].as_str().unwrap_or("?");
                    let target = &m["resource"]["target"]["averageUtilization"];
                    let now = current
                        .iter()
                        .find(|c| c["resource"]["name"] == name)
                        .map(|c| format!("{}%", c["resource"]["current"]["averageUtilization"]))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{name}: {now}/{target}%")
                })
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(", ")
    }
}

/// kubectl's short ages: 45s, 12m, 5h, 3d.
fn age(created: &str) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn patch(st: &mut Store, key: &Key, req: &Req) -> Reply {
    let name = key.1.as_str();
    let media = req
        .content_type
        .as_deref()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let is_apply = media == "application/apply-patch+yaml";
    if is_apply && req.param("fieldManager").is_none_or(str::is_empty) {
        return bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
        );
    }
    let body: Value = if is_apply {
        match serde_yaml::from_str(&req.body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("error decoding YAML: {e}")),
        }
    } else {
        match serde_json::from_str(&req.body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("error decoding patch: {e}")),
        }
    };

    let old = match st.objects.get(key) {
        Some(o) => o.clone(),
        None if is_apply => return apply_create(st, key, body, req),
        None => return not_found(name),
    };
    let mut new = old.clone();
    match media.as_str() {
        "application/merge-patch+json" => merge_patch(&mut new, &body),
        "application/strategic-merge-patch+json" => strategic_merge_patch(&mut new, &body, ""),
        "application/json-patch+json" => {
            if let Err(e) = json_patch(&mut new, &body) {
                return failure(422, "Invalid", e, None);
            }
        }
        "application/apply-patch+yaml" => {
            if body["apiVersion"] != API_VERSION || body["kind"] != KIND {
                return bad_request(format!(
                    "apply patch must be a {KIND} of {API_VERSION}, got kind {} apiVersion {}",
                    body["kind"], body["apiVersion"]
                ));
            }
            strategic_merge_patch(&mut new, &body, "");
        }
        _ => {
            return failure(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got \"{media}\")"
                ),
                None,
            );
        }
    }

    if !new["metadata"].is_object() || !new["spec"].is_object() {
        return bad_request("metadata and spec must be objects".into());
    }
    // The optimistic lock: a resourceVersion in the patch must be the current one.
    let current_rv = old["metadata"]["resourceVersion"].clone();
    let sent_rv = new["metadata"]["resourceVersion"].clone();
    if !sent_rv.is_null() && sent_rv != current_rv {
        return conflict(name);
    }
    if new["metadata"]["name"] != old["metadata"]["name"]
        || new["metadata"]["namespace"] != old["metadata"]["namespace"]
    {
        return bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new["metadata"]["name"]
        ));
    }
    // Server-managed fields and status are not writable through the resource.
    for f in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
        new["metadata"][f] = old["metadata"][f].clone();
    }
    new["status"] = old["status"].clone();
    new["apiVersion"] = json!(API_VERSION);
    new["kind"] = json!(KIND);
    let errs = validate(&new);
    if !errs.is_empty() {
        return invalid(name, &errs);
    }
    if new == old {
        return ok(new);
    }
    if new["spec"] != old["spec"] {
        let g = int(&old["metadata"]["generation"]).unwrap_or(1) + 1;
        new["metadata"]["generation"] = json!(g);
    }
    let rec = st
        .recommended
        .get(key)
        .copied()
        .unwrap_or_else(|| int(&new["spec"]["minReplicas"]).unwrap_or(1));
    settle(&mut new, rec, Some(&old));
    if is_dry_run(req) {
        return ok(new);
    }
    new["metadata"]["resourceVersion"] = json!(st.next_rv());
    st.objects.insert(key.clone(), new.clone());
    ok(new)
}

fn is_dry_run(req: &Req) -> bool {
    req.param("dryRun") == Some("All")
}

/// Server-side apply of an HPA that does not exist yet creates it.
fn apply_create(st: &mut Store, key: &Key, mut body: Value, req: &Req) -> Reply {
    if body["metadata"]["name"] != key.1.as_str() {
        return bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            body["metadata"]["name"], key.1
        ));
    }
    body["metadata"]["namespace"] = json!(key.0);
    if body["spec"]["minReplicas"].is_null() {
        body["spec"]["minReplicas"] = json!(1);
    }
    let errs = validate(&body);
    if !errs.is_empty() {
        return invalid(&key.1, &errs);
    }
    if is_dry_run(req) {
        return Reply(StatusCode::CREATED, body);
    }
    match admit(st, body, None) {
        Ok(()) => Reply(StatusCode::CREATED, st.objects[key].clone()),
        Err(e) => bad_request(e),
    }
}

// ---------------------------------------------------------------------------
// The `kube` subcommand.

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Latency added before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// YAML file of manifests to load (several documents, or a List):
    /// HPAs, ConfigMaps and Namespaces.
    #[arg(long)]
    pub seed: Vec<PathBuf>,
    /// A namespace to create (ConfigMaps can only be created in one that
    /// exists; default, kube-system and those of the HPAs always do).
    #[arg(long = "create-namespace", value_name = "NAME")]
    pub extra_namespaces: Vec<String>,
    /// Seed N copies of the six services at the 600 tier (min 2). Copy 1 is
    /// config/example.yaml's layout (ingressgateway-hpa in istio-system, the
    /// other five in prod); copy k puts all six in namespace prod-k.
    /// Default: 1 without --seed, 0 with it.
    #[arg(long)]
    pub namespaces: Option<u32>,
    /// Write a kubeconfig pointing at this stand-in here.
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// The kubeconfig's context (and cluster and user) name.
    #[arg(long, default_value = "hpa-tier-standin")]
    pub context: String,
    /// Require this bearer token (the kubeconfig carries it). kubectl sends
    /// credentials only over TLS, so then only kube-rs clients get through.
    #[arg(long)]
    pub token: Option<String>,
}

/// Reads manifests from a YAML file: several documents, or `kind: List`.
pub fn load_seed(path: &Path) -> anyhow::Result<Vec<Value>> {
    use anyhow::Context;
    use serde::Deserialize;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = vec![];
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).with_context(|| format!("parsing {}", path.display()))?;
        match v["kind"].as_str() {
            _ if v.is_null() => {}
            Some("List") | Some("HorizontalPodAutoscalerList") | Some("ConfigMapList") => {
                out.extend(v["items"].as_array().cloned().unwrap_or_default())
            }
            _ => out.push(v),
        }
    }
    Ok(out)
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let Args {
        port,
        latency_ms,
        seed,
        namespaces,
        kubeconfig_out,
        context,
        token,
        extra_namespaces,
    } = args;
    let shared = Shared::new(Duration::from_millis(latency_ms));
    let copies = namespaces.unwrap_or(if seed.is_empty() { 1 } else { 0 });
    for h in replicated_hpas(copies) {
        shared
            .insert(h.manifest(), None)
            .map_err(anyhow::Error::msg)?;
    }
    for ns in extra_namespaces {
        shared.state.lock().unwrap().namespaces.insert(ns, now());
    }
    for path in &seed {
        for manifest in load_seed(path)? {
            shared
                .insert_any(manifest)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
    }
    let (count, cms) = {
        let mut st = shared.state.lock().unwrap();
        st.token = token.clone();
        (st.objects.len(), st.configmaps.len())
    };

    // The kubeconfig must name the port before the "listening" line tells
    // scripts to go on, so a free port is picked here rather than by the server.
    let port = if port == 0 {
        std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port()
    } else {
        port
    };
    if let Some(out) = &kubeconfig_out {
        let auth = token.map_or(KubeAuth::None, KubeAuth::Token);
        std::fs::write(
            out,
            kubeconfig(&format!("http://127.0.0.1:{port}"), &context, &auth),
        )?;
        eprintln!("kube: kubeconfig written to {}", out.display());
    }
    eprintln!("kube: serving {count} HPAs and {cms} ConfigMaps");
    server::serve_forever(shared.router(), port, "kube").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let cases = [
            (
                json!({"a": 1, "b": {"c": 2}}),
                json!({"b": {"c": null, "d": 3}}),
                json!({"a": 1, "b": {"d": 3}}),
            ),
            (json!({"a": [1, 2]}), json!({"a": [3]}), json!({"a": [3]})),
            (
                json!({"a": 1}),
                json!({"a": {"x": 1}}),
                json!({"a": {"x": 1}}),
            ),
            (json!({"a": 1}), json!(null), json!(null)),
        ];
        for (mut doc, patch, want) in cases {
            merge_patch(&mut doc, &patch);
            assert_eq!(doc, want, "patch {patch}");
        }
    }

    #[test]
    fn strategic_merge_honours_directives_and_merges_owner_references_by_uid() {
        let mut doc = json!({
            "metadata": { "ownerReferences": [{ "uid": "a", "kind": "X" }], "labels": { "x": "1" } },
            "spec": { "metrics": [1, 2], "behavior": { "scaleUp": { "a": 1 } } },
        });
        let patch = json!({
            "metadata": { "ownerReferences": [{ "uid": "b", "kind": "Y" }] },
            "spec": { "metrics": [3], "behavior": { "$patch": "replace", "scaleDown": { "b": 2 } },
                      "$setElementOrder/metrics": [] },
        });
        strategic_merge_patch(&mut doc, &patch, "");
        assert_eq!(
            doc,
            json!({
                "metadata": { "ownerReferences": [{ "uid": "a", "kind": "X" }, { "uid": "b", "kind": "Y" }],
                              "labels": { "x": "1" } },
                "spec": { "metrics": [3], "behavior": { "scaleDown": { "b": 2 } } },
            })
        );
        strategic_merge_patch(
            &mut doc,
            &json!({"metadata": {"labels": {"$patch": "delete"}}}),
            "",
        );
        assert!(doc["metadata"].get("labels").is_none());
    }

    #[test]
    fn json_patch_applies_rfc_6902_operations_and_reports_failures() {
        let mut doc = json!({ "spec": { "minReplicas": 2, "metrics": [1] } });
        json_patch(
            &mut doc,
            &json!([
                { "op": "test", "path": "/spec/minReplicas", "value": 2 },
                { "op": "replace", "path": "/spec/minReplicas", "value": 4 },
                { "op": "add", "path": "/spec/metrics/-", "value": 2 },
                { "op": "copy", "from": "/spec/minReplicas", "path": "/spec/maxReplicas" },
                { "op": "remove", "path": "/spec/metrics/0" },
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({ "spec": { "minReplicas": 4, "maxReplicas": 4, "metrics": [2] } })
        );
        let err = json_patch(
            &mut doc,
            &json!([{ "op": "test", "path": "/spec/minReplicas", "value": 9 }]),
        );
        assert_eq!(err.unwrap_err(), "testing value /spec/minReplicas failed");
        let err = json_patch(
            &mut doc,
            &json!([{ "op": "replace", "path": "/nope/x", "value": 1 }]),
        );
        assert!(err.unwrap_err().contains("missing path: /nope/x"));
    }

    #[test]
    fn validation_rejects_min_above_max_with_the_real_message() {
        let mut hpa = HpaSeed::new("prod", "web").manifest();
        hpa["spec"]["minReplicas"] = json!(12);
        assert_eq!(
            validate(&hpa),
            vec![(
                "spec.maxReplicas".to_string(),
                "Invalid value: 10: must be greater than or equal to `minReplicas`".to_string()
            )]
        );
        hpa["spec"]["minReplicas"] = json!(0);
        assert_eq!(
            validate(&hpa)[0].1,
            "Invalid value: 0: must be greater than or equal to 1"
        );
    }

    #[test]
    fn the_controller_clamps_the_recommendation_and_says_why() {
        let mut hpa = HpaSeed::new("prod", "web").min(2).max(10).manifest();
        hpa["metadata"]["generation"] = json!(1);
        let cases = [
            (1, 2, "TooFewReplicas"),
            (5, 5, "DesiredWithinRange"),
            (30, 10, "TooManyReplicas"),
        ];
        for (recommended, desired, reason) in cases {
            settle(&mut hpa, recommended, None);
            assert_eq!(
                hpa["status"]["desiredReplicas"], desired,
                "recommended {recommended}"
            );
            assert_eq!(hpa["status"]["currentReplicas"], desired);
            let limited = &hpa["status"]["conditions"][2];
            assert_eq!(
                (limited["type"].as_str(), limited["reason"].as_str()),
                (Some("ScalingLimited"), Some(reason))
            );
        }
    }

    #[test]
    fn ages_read_like_kubectls() {
        let ago =
            |s: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s)).to_string();
        assert_eq!(age(&ago(30)), "30s");
        assert_eq!(age(&ago(600)), "10m");
        assert_eq!(age(&ago(5 * 3600)), "5h");
        assert_eq!(age(&ago(3 * 86400)), "3d");
        assert_eq!(age("garbage"), "<unknown>");
    }

    #[test]
    fn seed_files_take_several_documents_and_lists() {
        let path = std::env::temp_dir().join(format!("kube-seed-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: a, namespace: x}\n\
             spec: {scaleTargetRef: {kind: Deployment, name: a}, maxReplicas: 3}\n---\n\
             apiVersion: v1\nkind: List\nitems:\n\
             - {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, metadata: {name: b},\n\
             \x20  spec: {scaleTargetRef: {kind: Deployment, name: b}, minReplicas: 2, maxReplicas: 4}}\n",
        )
        .unwrap();
        let docs = load_seed(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(docs.len(), 2);
        let mut st = Store::default();
        for d in docs {
            admit(&mut st, d, None).unwrap();
        }
        let b = &st.objects[&("default".to_string(), "b".to_string())];
        assert_eq!(b["status"]["desiredReplicas"], 2);
        assert_eq!(
            st.objects[&("x".to_string(), "a".to_string())]["spec"]["minReplicas"],
            1
        );
    }

    #[test]
    fn seed_documents_go_where_their_kind_says() {
        let shared = Shared::new(Duration::ZERO);
        let docs = [
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "empty" } }),
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "spool", "namespace": "hpa-tier" }, "data": { "a": "1" } }),
            HpaSeed::new("prod", "web").manifest(),
        ];
        for d in docs {
            shared.insert_any(d).unwrap();
        }
        let bad =
            json!({ "kind": "ConfigMap", "metadata": { "name": "x" }, "data": { "a b": "1" } });
        assert!(
            shared
                .insert_any(bad)
                .unwrap_err()
                .starts_with("ConfigMap default/x: data[a b]")
        );
        let st = shared.state.lock().unwrap();
        let names: Vec<&str> = known_namespaces(&st).into_keys().collect();
        assert_eq!(
            names,
            ["default", "empty", "hpa-tier", "kube-system", "prod"]
        );
        let cm = &st.configmaps[&("hpa-tier".to_string(), "spool".to_string())];
        assert_eq!(
            (
                cm["data"]["a"].as_str(),
                cm["metadata"]["resourceVersion"].is_string()
            ),
            (Some("1"), true)
        );
        assert_eq!(st.objects.len(), 1);
    }

    #[test]
    fn requests_map_to_rbac_verbs() {
        let r = |method: &str, path: &str, query: &str| LoggedRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            content_type: None,
            body: String::new(),
        };
        let one = "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web";
        assert_eq!(r("GET", one, "").verb(), "get");
        assert_eq!(r("PATCH", one, "").verb(), "patch");
        assert_eq!(
            r(
                "GET",
                "/apis/autoscaling/v2/horizontalpodautoscalers",
                "limit=500"
            )
            .verb(),
            "list"
        );
        assert_eq!(
            r(
                "GET",
                "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers",
                "watch=true"
            )
            .verb(),
            "watch"
        );
        assert_eq!(r("GET", one, "").hpa(), Some(("prod".into(), "web".into())));

        let cm = "/api/v1/namespaces/hpa-tier/configmaps/spool";
        let all = "/api/v1/namespaces/hpa-tier/configmaps";
        let spool = Some(("hpa-tier".to_string(), "spool".to_string()));
        assert_eq!(
            (r("GET", cm, "").verb(), r("GET", cm, "").configmap()),
            ("get", spool.clone())
        );
        assert_eq!(r("PUT", cm, "").verb(), "update");
        assert_eq!(r("DELETE", cm, "").verb(), "delete");
        assert_eq!(r("GET", all, "").verb(), "list");
        let mut create = r("POST", all, "");
        create.body = r#"{"metadata":{"name":"spool"}}"#.into();
        assert_eq!((create.verb(), create.configmap()), ("create", spool));
        assert!(create.is_configmap_api() && !create.is_hpa_api());
        assert_eq!(r("GET", one, "").configmap(), None);
    }
}
