//! The spool in a ConfigMap (`spool_configmap`, README "Run records"): a
//! record MySQL could not take is kept as one `data` key of that ConfigMap
//! — the key its `run_id`, the value its JSON (the record plus `cluster`,
//! as a `state_file` line) — so that it outlives the pod; the next run that
//! reaches MySQL writes it (idempotent on `run_id`) and removes the key.
//!
//! Requests: one GET and one JSON merge PATCH per operation, through the
//! connection the run's cluster adapter already has (same kubeconfig or
//! service account). Every PATCH carries the resourceVersion it was planned
//! from, so a concurrent writer makes it a 409; it is then planned again
//! from a fresh GET. A PATCH names only the keys it adds or removes, so a
//! record someone else added is never dropped. The tool needs `get` and
//! `patch` on that one ConfigMap and nothing else: it never creates it
//! (RBAC cannot narrow `create` to a name), so the deploy files ship it.
//!
//! The API server refuses a ConfigMap whose data values add up to more than
//! 1 MiB ([`DATA_LIMIT`]); to stay under it the oldest records are dropped
//! first, with a warning, and the record that caused it says how many.
//!
//! When the ConfigMap cannot be used (missing, forbidden, unreachable) the
//! record goes to `state_file` instead, with an error naming the ConfigMap
//! and what is missing. Records found in `state_file` are flushed too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::file::{FileStore, Line};
use super::{Recorded, RunStore, StoreError};
use crate::cluster::kube::Kube;
use crate::config::ConfigMapRef;
use hpa_tier_core::record::RunRecord;

/// What the API server lets a ConfigMap's `data` and `binaryData` values
/// hold together (`core.MaxSecretSize`, checked by ConfigMap validation);
/// keys and metadata do not count toward it. etcd's own limit (1.5 MiB per
/// object by default) leaves room for the keys and managedFields.
pub const DATA_LIMIT: usize = 1024 * 1024;
/// PATCHes tried before a persistent 409 is given up.
const ATTEMPTS: u32 = 5;

/// The ConfigMap of `spool_configmap` and the connection to reach it.
#[derive(Clone, Debug)]
pub struct SpoolConfigMap {
    pub at: ConfigMapRef,
    pub kube: Kube,
}

#[derive(Clone)]
pub struct ConfigMapSpool {
    inner: Arc<Inner>,
}

struct Inner {
    kube: Kube,
    at: ConfigMapRef,
    scope: String,
    timeout: Duration,
    /// `state_file`: the lock file, the fallback, and records spooled there.
    file: FileStore,
    /// What `pending` read: the resourceVersion and the key of each run id,
    /// so `remove` needs no GET and leaves `state_file`'s records alone.
    seen: Mutex<Option<Seen>>,
    /// Where the last record went, when that was not simply the ConfigMap.
    went: Mutex<Option<String>>,
}

struct Seen {
    version: String,
    keys: HashMap<String, String>,
}

/// Why a request about the ConfigMap failed.
enum Failed {
    /// 409: someone wrote it since our read.
    Conflict,
    /// Anything else, said for a person.
    Other(String),
}

impl ConfigMapSpool {
    pub fn new(cm: &SpoolConfigMap, scope: &str, timeout: Duration, file: FileStore) -> Self {
        ConfigMapSpool {
            inner: Arc::new(Inner {
                kube: cm.kube.clone(),
                at: cm.at.clone(),
                scope: scope.to_string(),
                timeout,
                file,
                seen: Mutex::new(None),
                went: Mutex::new(None),
            }),
        }
    }

    pub fn file(&self) -> &FileStore {
        &self.inner.file
    }

    /// `ConfigMap ns/name`, or where the last record went instead and why.
    pub fn location(&self) -> String {
        let went = self.inner.went.lock().unwrap_or_else(|p| p.into_inner());
        went.clone()
            .unwrap_or_else(|| format!("ConfigMap {}", self.inner.at))
    }

    /// This scope's records in the ConfigMap and in `state_file`. One of the
    /// two failing is logged and the other still flushed.
    pub async fn pending(&self) -> Result<Vec<RunRecord>, StoreError> {
        let (cm, file) = tokio::join!(self.read(), self.inner.file.pending());
        let cm = cm.map(|m| {
            let mine = self.mine(&m.data);
            let keys = mine
                .iter()
                .map(|(k, r)| (r.run_id.clone(), k.clone()))
                .collect();
            *self.inner.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(Seen {
                version: m.version,
                keys,
            });
            mine.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
        });
        match (cm, file) {
            (Ok(mut cm), Ok(file)) => {
                let ids: HashSet<String> = cm.iter().map(|r| r.run_id.clone()).collect();
                cm.extend(file.into_iter().filter(|r| !ids.contains(&r.run_id)));
                Ok(cm)
            }
            (Ok(cm), Err(e)) => {
                tracing::error!(error = %e, "cannot read the records spooled in state_file");
                Ok(cm)
            }
            (Err(e), Ok(file)) => {
                tracing::error!(
                    spool = %self.inner.at,
                    error = %e,
                    "cannot read the spool ConfigMap: records spooled there stay until it can be read"
                );
                Ok(file)
            }
            (Err(e), Err(f)) => Err(StoreError::Io(format!("{e}; and {f}"))),
        }
    }

    /// Removes these run ids from the ConfigMap and `state_file`.
    pub async fn remove(&self, run_ids: HashSet<String>) -> Result<(), StoreError> {
        let file = self.inner.file.remove(run_ids.clone());
        let (cm, file) = tokio::join!(self.remove_keys(&run_ids), file);
        let cm = cm.map_err(|e| StoreError::Io(format!("removing flushed records: {e}")));
        cm.and(file)
    }

    /// Keeps `record` in the ConfigMap, else in `state_file`.
    pub async fn record(&self, record: &RunRecord) -> Result<Recorded, StoreError> {
        if self.inner.file.role() == super::file::Role::ReadOnly {
            return Err(StoreError::Io(
                "the store is open read-only (--dry-run): nothing is recorded".into(),
            ));
        }
        let why = match self.add(record).await {
            Ok(dropped) => {
                self.note(dropped.as_ref());
                return Ok(Recorded::Spooled);
            }
            Err(why) => why,
        };
        let path = self.inner.file.path().display().to_string();
        tracing::error!(
            spool = %self.inner.at,
            fallback = %path,
            "{why}; spooling the record to state_file instead"
        );
        *self.inner.went.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
            "{path} (the ConfigMap {} could not take it: {why})",
            self.inner.at
        ));
        self.inner.file.record(record).await.map_err(|e| {
            StoreError::Io(format!(
                "the spool ConfigMap {}: {why}; and state_file: {e}",
                self.inner.at
            ))
        })
    }

    pub async fn close(&self) {
        self.inner.file.clone().close().await;
    }

    /// The records of this scope among `data`, with their keys (unreadable
    /// entries are left where they are, as are other clusters').
    fn mine(&self, data: &BTreeMap<String, String>) -> Vec<(String, RunRecord)> {
        let mut out = vec![];
        for (key, value) in data {
            match serde_json::from_str::<Line>(value) {
                Ok(line)
                    if line
                        .cluster
                        .as_deref()
                        .is_none_or(|c| c == self.inner.scope) =>
                {
                    out.push((key.clone(), line.record))
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    spool = %self.inner.at,
                    key,
                    error = %e,
                    "a key of the spool ConfigMap is not a run record; left alone"
                ),
            }
        }
        out
    }

    /// Tells how many older records the last add dropped.
    fn note(&self, dropped: Option<&Dropped>) {
        let mut went = self.inner.went.lock().unwrap_or_else(|p| p.into_inner());
        *went = dropped.map(|d| {
            format!(
                "ConfigMap {} ({} older spooled records dropped to stay under its {} MiB limit)",
                self.inner.at,
                d.run_ids.len(),
                DATA_LIMIT >> 20
            )
        });
    }
}

/// The ConfigMap's content that matters here.
struct Current {
    version: String,
    data: BTreeMap<String, String>,
    /// Bytes of `binaryData`: counted toward the limit, never touched.
    binary: usize,
}

/// Records an add dropped to make room (their keys).
#[derive(Debug, PartialEq)]
struct Dropped {
    run_ids: Vec<String>,
}

impl ConfigMapSpool {
    fn api(&self, client: kube::Client) -> Api<ConfigMap> {
        Api::namespaced(client, &self.inner.at.namespace)
    }

    async fn client(&self) -> Result<kube::Client, Failed> {
        match self.inner.kube.connection().await {
            Ok(c) => Ok(c.client().clone()),
            Err(e) => Err(Failed::Other(format!(
                "cannot reach the API server for the spool ConfigMap {}: {e}",
                self.inner.at
            ))),
        }
    }

    async fn read(&self) -> Result<Current, String> {
        self.get().await.map_err(|f| match f {
            Failed::Conflict => "unexpected 409 on a GET".to_string(),
            Failed::Other(s) => s,
        })
    }

    async fn get(&self) -> Result<Current, Failed> {
        let api = self.api(self.client().await?);
        let cm = self.call("get", api.get(&self.inner.at.name)).await?;
        Ok(Current {
            version: cm.metadata.resource_version.unwrap_or_default(),
            data: cm.data.unwrap_or_default(),
            binary: cm
                .binary_data
                .unwrap_or_default()
                .values()
                .map(|b| b.0.len())
                .sum(),
        })
    }

    /// One merge PATCH of `data` (a `null` value removes a key), based on
    /// `version`.
    async fn patch(&self, version: &str, data: Value) -> Result<(), Failed> {
        let api = self.api(self.client().await?);
        let body = json!({ "metadata": { "resourceVersion": version }, "data": data });
        let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
        let sent = api.patch(&self.inner.at.name, &params, &patch);
        self.call("patch", sent).await.map(|_| ())
    }

    async fn call<T>(
        &self,
        verb: &str,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Failed> {
        match tokio::time::timeout(self.inner.timeout, fut).await {
            Err(_) => Err(Failed::Other(format!(
                "the API server did not answer the {verb} of the spool ConfigMap {} within {}s \
                 (timeout_seconds)",
                self.inner.at,
                self.inner.timeout.as_secs_f64()
            ))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Err(Failed::Conflict),
            Ok(Err(e)) => Err(Failed::Other(describe(&self.inner.at, verb, &e))),
        }
    }

    /// Adds the record's key, dropping the oldest records when it would not
    /// fit otherwise; retried from a fresh read on a conflict.
    async fn add(&self, record: &RunRecord) -> Result<Option<Dropped>, String> {
        let key = record.run_id.clone();
        for _ in 0..ATTEMPTS {
            let now = self.read().await?;
            if now.data.contains_key(&key) {
                return Ok(None);
            }
            let (value, dropped) = self.planned(record, &now)?;
            let mut data = json!({ key.clone(): value });
            for id in dropped.iter().flat_map(|d| &d.run_ids) {
                data[id] = Value::Null;
            }
            match self.patch(&now.version, data).await {
                Ok(()) => {
                    if let Some(d) = &dropped {
                        tracing::warn!(
                            spool = %self.inner.at,
                            dropped = d.run_ids.len(),
                            run_ids = ?d.run_ids,
                            "the spool ConfigMap was full (1 MiB): dropped the oldest spooled \
                             records to keep this one; they are lost to MySQL"
                        );
                    }
                    return Ok(dropped);
                }
                Err(Failed::Conflict) => {
                    tracing::info!(spool = %self.inner.at, "conflict on the spool ConfigMap; reading it again");
                }
                Err(Failed::Other(s)) => return Err(s),
            }
        }
        Err(format!(
            "the spool ConfigMap {} kept changing under {ATTEMPTS} attempts",
            self.inner.at
        ))
    }

    /// The value to write for `record` and what must go to make room. A
    /// drop is noted in the record itself, which makes it longer: planned
    /// again until the note and the drops agree.
    fn planned(
        &self,
        record: &RunRecord,
        now: &Current,
    ) -> Result<(String, Option<Dropped>), String> {
        let mut noted = record.clone();
        let mut dropped: Option<Dropped> = None;
        for _ in 0..4 {
            let value = serde_json::to_string(&Line {
                cluster: Some(self.inner.scope.clone()),
                record: noted.clone(),
            })
            .map_err(|e| format!("cannot serialise the run record: {e}"))?;
            let need = to_drop(&now.data, now.binary, &value)?;
            let have = dropped.as_ref().map_or(&[][..], |d| &d.run_ids[..]);
            if need == have {
                return Ok((value, dropped));
            }
            noted = with_note(record, &need);
            dropped = Some(Dropped { run_ids: need });
        }
        Err("the record's note on dropped records does not settle".into())
    }

    /// Removes the keys of `run_ids` that are there; what was added
    /// meanwhile stays (a conflict is planned again from a fresh read).
    async fn remove_keys(&self, run_ids: &HashSet<String>) -> Result<(), String> {
        let keys_of = |keys: &HashMap<String, String>| -> Vec<String> {
            run_ids
                .iter()
                .filter_map(|id| keys.get(id).cloned())
                .collect()
        };
        // The first try trusts what `pending` read.
        let seen = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut plan = seen.map(|s| (s.version, keys_of(&s.keys)));
        for _ in 0..ATTEMPTS {
            let (version, keys) = match plan.take() {
                Some(p) => p,
                None => {
                    let now = self.read().await?;
                    let keys = self.mine(&now.data);
                    let keys = keys.into_iter().map(|(k, r)| (r.run_id, k)).collect();
                    (now.version, keys_of(&keys))
                }
            };
            if keys.is_empty() {
                return Ok(());
            }
            let data: serde_json::Map<String, Value> =
                keys.into_iter().map(|k| (k, Value::Null)).collect();
            match self.patch(&version, Value::Object(data)).await {
                Ok(()) => return Ok(()),
                Err(Failed::Conflict) => tracing::info!(
                    spool = %self.inner.at,
                    "conflict removing flushed records from the spool ConfigMap; reading it again"
                ),
                Err(Failed::Other(s)) => return Err(s),
            }
        }
        Err(format!(
            "the spool ConfigMap {} kept changing under {ATTEMPTS} attempts",
            self.inner.at
        ))
    }
}

/// Which records must go, oldest first, for `value` to fit next to `data`
/// (and `binary` bytes of binaryData) under [`DATA_LIMIT`]. Only keys that
/// are run records are candidates; a record that cannot fit even then is
/// an error.
fn to_drop(
    data: &BTreeMap<String, String>,
    binary: usize,
    value: &str,
) -> Result<Vec<String>, String> {
    let mut total: usize = binary + value.len() + data.values().map(String::len).sum::<usize>();
    if total <= DATA_LIMIT {
        return Ok(vec![]);
    }
    let mut records: Vec<(jiff::Timestamp, &String, usize)> = data
        .iter()
        .filter_map(|(k, v)| {
            let line = serde_json::from_str::<Line>(v).ok()?;
            Some((line.record.started_at, k, v.len()))
        })
        .collect();
    records.sort();
    let mut out = vec![];
    for (_, key, len) in records {
        if total <= DATA_LIMIT {
            break;
        }
        total -= len;
        out.push(key.clone());
    }
    if total > DATA_LIMIT {
        return Err(format!(
            "the record ({} bytes) does not fit in the ConfigMap's {DATA_LIMIT} bytes of data \
             even without any spooled record",
            value.len()
        ));
    }
    Ok(out)
}

/// `record` saying which spooled records were dropped to make room for it.
fn with_note(record: &RunRecord, dropped: &[String]) -> RunRecord {
    let mut r = record.clone();
    let note = format!(
        "{} older spooled records were dropped from the full spool ConfigMap to keep this one",
        dropped.len()
    );
    r.message = if r.message.is_empty() {
        note
    } else {
        format!("{}; {note}", r.message)
    };
    if !r.detail.is_object() {
        r.detail = json!({});
    }
    r.detail["spool_dropped"] = json!(dropped);
    r
}

/// A failed request about the ConfigMap, with what to do about it.
fn describe(at: &ConfigMapRef, verb: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => format!(
                "the spool ConfigMap {at} does not exist: create it, empty (deploy/kubernetes/\
                 spool.yaml ships it; hpa-tier does not create it, as RBAC cannot limit `create` \
                 to one name)"
            ),
            403 => format!(
                "RBAC forbids `{verb}` on the spool ConfigMap {at}: grant get and patch on \
                 configmaps named `{}` in namespace {} (the Role of deploy/kubernetes/spool.yaml). \
                 API server: {}",
                at.name,
                at.namespace,
                s.message.trim()
            ),
            code => format!(
                "the API server answered the {verb} of the spool ConfigMap {at} with {code} {}: {}",
                s.reason,
                s.message.trim()
            ),
        },
        other => format!("cannot {verb} the spool ConfigMap {at}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpa_tier_core::record::RunRecord;

    fn line(run_id: &str, minutes_ago: i64, pad: usize) -> String {
        let now: jiff::Timestamp = "2025-06-01T12:00:00Z".parse().unwrap();
        let mut r = RunRecord::check_needing(600, 600, now, minutes_ago);
        r.run_id = run_id.into();
        r.message = "x".repeat(pad);
        serde_json::to_string(&Line {
            cluster: Some("prod".into()),
            record: r,
        })
        .unwrap()
    }

    #[test]
    fn the_oldest_records_go_first_until_the_new_one_fits_under_the_limit() {
        let big = DATA_LIMIT / 4;
        let data: BTreeMap<String, String> = [
            ("b", line("b", 30, big)),
            ("a", line("a", 40, big)),
            ("c", line("c", 20, big)),
            ("not-a-record", "x".repeat(1000)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let used: usize = data.values().map(String::len).sum();
        // Exactly at the limit fits: the API server refuses only above it.
        let fits = "y".repeat(DATA_LIMIT - used);
        assert_eq!(to_drop(&data, 0, &fits), Ok(vec![]));
        assert_eq!(to_drop(&data, 0, &format!("{fits}y")), Ok(vec!["a".into()]));
        assert_eq!(
            to_drop(&data, 1, &fits),
            Ok(vec!["a".into()]),
            "binaryData counts"
        );
        let two = "y".repeat(DATA_LIMIT - used + data["a"].len() + 1);
        assert_eq!(to_drop(&data, 0, &two), Ok(vec!["a".into(), "b".into()]));
        let e = to_drop(&data, 0, &"y".repeat(DATA_LIMIT)).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn a_record_that_dropped_others_says_so() {
        let now: jiff::Timestamp = "2025-06-01T12:00:00Z".parse().unwrap();
        let mut r = RunRecord::check_needing(600, 600, now, 0);
        r.message = "noop at 600".into();
        let noted = with_note(&r, &["a".into(), "b".into()]);
        assert_eq!(
            noted.message,
            "noop at 600; 2 older spooled records were dropped from the full spool ConfigMap to keep this one"
        );
        assert_eq!(noted.detail["spool_dropped"], json!(["a", "b"]));
    }

    #[test]
    fn failures_name_the_configmap_and_what_is_missing() {
        let at = ConfigMapRef {
            namespace: "hpa-tier".into(),
            name: "hpa-tier-spool".into(),
        };
        let api = |code: u16, reason: &str, message: &str| {
            kube::Error::Api(Box::new(
                serde_json::from_value(json!({ "kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "code": code, "reason": reason, "message": message }))
                .unwrap(),
            ))
        };
        let missing = describe(
            &at,
            "get",
            &api(404, "NotFound", "configmaps \"hpa-tier-spool\" not found"),
        );
        assert!(
            missing.starts_with("the spool ConfigMap hpa-tier/hpa-tier-spool does not exist")
                && missing.contains("deploy/kubernetes/spool.yaml"),
            "{missing}"
        );
        let denied = describe(&at, "patch", &api(403, "Forbidden", "cannot patch"));
        assert!(
            denied
                .starts_with("RBAC forbids `patch` on the spool ConfigMap hpa-tier/hpa-tier-spool")
                && denied.contains("configmaps named `hpa-tier-spool` in namespace hpa-tier"),
            "{denied}"
        );
    }
}
