//! core/v1 ConfigMaps as kube-apiserver v1.33 serves them: get, list (one
//! namespace or all; label and field selectors; `limit`/`continue`;
//! kubectl's server-side `Table`), create (`generateName` too), update,
//! patch (JSON merge, strategic merge, JSON patch, server-side apply) and
//! delete (with preconditions), each with `dryRun=All`.
//!
//! `metadata.resourceVersion` is the optimistic lock: an update or patch
//! carrying a stale one is a 409 `Conflict`, and every write that changes the
//! object moves it (a no-op write does not, as etcd is not written then).
//! Bodies are decoded as the API server decodes them (wrong types are a 400,
//! unknown fields dropped or, with `fieldValidation=Strict`, refused) and
//! validated with its rules and messages: names, data keys, `immutable`, and
//! the 1 MiB limit on the data. Failures are the real `Status` objects.
//! [`RbacRule`]s narrow what the caller may do, `resourceNames` included,
//! the way the RBAC authorizer does.
//!
//! Approximations, on purpose: no watch or deletecollection, no
//! managedFields (server-side apply merges without tracking field owners),
//! and etcd's request limit is checked against an estimate of the stored
//! (protobuf) size.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::{
    Fault, Key, Reply, Req, Store, USER, age, failure, invalid_as, is_dry_run, json_patch,
    known_namespaces, merge_patch, now, ok, pseudo_uid, rbac_verb, strategic_merge_patch,
};
use axum::http::StatusCode;

/// `core.MaxSecretSize`: what a ConfigMap's `data` and `binaryData` values
/// may hold together, in bytes (pkg/apis/core/validation `ValidateConfigMap`).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;
/// k8s.io/apiserver's `MaxRequestBodyBytes` default: larger write bodies are
/// refused with 413 before they are decoded.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;
/// etcd's default `--max-request-bytes`; a larger object fails in storage.
pub const ETCD_MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// `metadata.annotations` may hold this many bytes (keys and values).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const RESOURCE: &str = "configmaps";
const KIND: &str = "ConfigMap";
const TOP_FIELDS: [&str; 6] = [
    "apiVersion",
    "kind",
    "metadata",
    "data",
    "binaryData",
    "immutable",
];
const META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const IMMUTABLE_MSG: &str = "Forbidden: field is immutable when `immutable` is set";

/// The `/api/v1` discovery entry.
pub(super) fn discovery() -> Value {
    json!({
        "name": RESOURCE, "singularName": "configmap", "namespaced": true, "kind": KIND,
        "verbs": ["create", "delete", "get", "list", "patch", "update"],
        "shortNames": ["cm"],
    })
}

// ---------------------------------------------------------------------------
// RBAC.

/// One rule of a Role about ConfigMaps: these verbs in this namespace, on
/// these names only (`resource_names`; empty: any). As in real RBAC, a rule
/// with names cannot allow `create` or a plain `list`: the authorizer does
/// not know the name of an object not yet created, nor of a list (unless
/// its field selector is `metadata.name=NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RbacRule {
    pub namespace: String,
    pub verbs: Vec<String>,
    pub resource_names: Vec<String>,
}

impl RbacRule {
    pub fn new(namespace: &str, verbs: &[&str]) -> Self {
        RbacRule {
            namespace: namespace.into(),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            resource_names: vec![],
        }
    }

    pub fn names(mut self, names: &[&str]) -> Self {
        self.resource_names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// The ConfigMap rules of every `Role` in a YAML stream (such as
    /// `deploy/kubernetes/rbac.yaml`): rules whose `apiGroups` hold `""` or
    /// `"*"` and whose `resources` hold `configmaps` or `"*"`. Other kinds
    /// are skipped.
    pub fn from_roles_yaml(yaml: &str) -> Result<Vec<RbacRule>, String> {
        use serde::Deserialize;
        let mut out = vec![];
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let v = Value::deserialize(doc).map_err(|e| format!("parsing the Roles: {e}"))?;
            if v["kind"] != "Role" {
                continue;
            }
            let namespace = v["metadata"]["namespace"].as_str().unwrap_or("default");
            let strings = |x: &Value| -> Vec<String> {
                x.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for rule in v["rules"].as_array().into_iter().flatten() {
                let groups = strings(&rule["apiGroups"]);
                let resources = strings(&rule["resources"]);
                if groups.iter().any(|g| g.is_empty() || g == "*")
                    && resources.iter().any(|r| r == RESOURCE || r == "*")
                {
                    out.push(RbacRule {
                        namespace: namespace.into(),
                        verbs: strings(&rule["verbs"]),
                        resource_names: strings(&rule["resourceNames"]),
                    });
                }
            }
        }
        Ok(out)
    }

    fn allows(&self, verb: &str, namespace: Option<&str>, name: Option<&str>) -> bool {
        namespace == Some(self.namespace.as_str())
            && self.verbs.iter().any(|v| v == verb || v == "*")
            && (self.resource_names.is_empty()
                || name.is_some_and(|n| self.resource_names.iter().any(|r| r == n)))
    }
}

fn authorize(st: &Store, verb: &str, ns: Option<&str>, name: Option<&str>) -> Option<Reply> {
    let rules = st.configmap_rbac.as_ref()?;
    if rules.iter().any(|r| r.allows(verb, ns, name)) {
        None
    } else {
        Some(forbidden(verb, ns, name))
    }
}

// ---------------------------------------------------------------------------
// Routing.

/// The name a create request gives its object (`None` when the body names none).
pub(super) fn body_name(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body)
        .or_else(|_| serde_yaml::from_str(body))
        .ok()?;
    v["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

pub(super) fn route(st: &mut Store, ns: Option<&str>, name: Option<&str>, req: &Req) -> Reply {
    let verb = rbac_verb(req.method.as_str(), name.is_some(), req.is_watch());
    // What the authorizer is told the object's name is.
    let authz_name = match (verb, name) {
        ("list" | "watch", None) => field_selector_name(req),
        (_, n) => n.map(str::to_string),
    };
    if let Some(denied) = authorize(st, verb, ns, authz_name.as_deref()) {
        return denied;
    }
    let target = if verb == "create" {
        body_name(&req.body)
    } else {
        name.map(str::to_string)
    };
    if let (Some(ns), Some(n)) = (ns, &target)
        && let Some(reply) = injected(st, &(ns.to_string(), n.clone()), verb)
    {
        return reply;
    }
    match (verb, ns, name) {
        ("watch", _, _) => failure(
            405,
            "MethodNotAllowed",
            "the stand-in does not support watch".into(),
            None,
        ),
        ("list", ns, None) => list(st, ns, req),
        ("create", Some(ns), None) => create(st, ns, req),
        ("get", Some(ns), Some(n)) => get(st, ns, n, req),
        ("update", Some(ns), Some(n)) => update(st, ns, n, req),
        ("patch", Some(ns), Some(n)) => patch(st, ns, n, req),
        ("delete", Some(ns), Some(n)) => delete(st, ns, n, req),
        _ => failure(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            None,
        ),
    }
}

/// The injected failure for this request, if any (409s are counted down).
fn injected(st: &mut Store, key: &Key, verb: &str) -> Option<Reply> {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let write = matches!(verb, "create" | "update" | "patch");
    match st.configmap_faults.get_mut(key)? {
        Fault::ServerError => Some(failure(
            500,
            "InternalError",
            "Internal error occurred: etcdserver: request timed out".into(),
            Some(json!({ "causes": [{ "message": "etcdserver: request timed out" }] })),
        )),
        Fault::Forbidden(v) if *v == verb => Some(forbidden(
            verb,
            Some(ns),
            (verb != "create").then_some(name),
        )),
        Fault::NotFound if verb != "create" => Some(not_found(name)),
        Fault::Invalid(msg) if write => {
            let err = [(String::new(), msg.clone())];
            Some(invalid(name, &err))
        }
        Fault::Conflicts(n) if matches!(verb, "update" | "patch") && *n > 0 => {
            *n -= 1;
            Some(conflict(
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Failures.

fn details(name: &str) -> Value {
    if name.is_empty() {
        json!({ "kind": RESOURCE })
    } else {
        json!({ "name": name, "kind": RESOURCE })
    }
}

fn not_found(name: &str) -> Reply {
    failure(
        404,
        "NotFound",
        format!("{RESOURCE} \"{name}\" not found"),
        Some(details(name)),
    )
}

fn conflict(name: &str, why: &str) -> Reply {
    failure(
        409,
        "Conflict",
        format!("Operation cannot be fulfilled on {RESOURCE} \"{name}\": {why}"),
        Some(details(name)),
    )
}

fn forbidden(verb: &str, ns: Option<&str>, name: Option<&str>) -> Reply {
    let what = match name {
        Some(n) => format!("{RESOURCE} \"{n}\" is forbidden"),
        None => format!("{RESOURCE} is forbidden"),
    };
    let scope = match ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    failure(
        403,
        "Forbidden",
        format!(
            "{what}: User \"{USER}\" cannot {verb} resource \"{RESOURCE}\" in API group \"\" {scope}"
        ),
        Some(details(name.unwrap_or(""))),
    )
}

/// `(field, body)` errors, e.g. `("data[a b]", "Invalid value: ...")`; a
/// field-less message (an injected one) is shown as is.
fn invalid(name: &str, errs: &[(String, String)]) -> Reply {
    if let [(field, msg)] = errs
        && field.is_empty()
    {
        return failure(
            422,
            "Invalid",
            format!("{KIND} \"{name}\" is invalid: {msg}"),
            Some(json!({ "name": name, "kind": KIND,
                         "causes": [{ "reason": "FieldValueInvalid", "message": msg }] })),
        );
    }
    invalid_as(KIND, json!({ "name": name, "kind": KIND }), name, errs)
}

fn bad_request(message: String) -> Reply {
    failure(400, "BadRequest", message, None)
}

/// A 500 the storage layer produces: a plain error, so no `reason`.
fn storage_error(message: &str) -> Reply {
    Reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "code": 500,
        }),
    )
}

// ---------------------------------------------------------------------------
// Decoding.

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A map of strings, or the decoder's complaint (`field` as Go names it).
fn string_map(v: &Value, field: &str) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) => match m.values().find(|x| !x.is_string()) {
            Some(bad) => Err(format!(
                "json: cannot unmarshal {} into Go struct field {field} of type string",
                go_type(bad)
            )),
            None => Ok(()),
        },
        other => Err(format!(
            "json: cannot unmarshal {} into Go struct field {field} of type map[string]string",
            go_type(other)
        )),
    }
}

/// What the API server's decoder makes of a ConfigMap: unknown fields
/// dropped (or, `strict`, refused), types checked, empty maps gone, kind and
/// apiVersion set. `Err` is the decoder's message.
fn normalize(mut v: Value, strict: bool) -> Result<Value, String> {
    let Some(top) = v.as_object_mut() else {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type v1.ConfigMap",
            go_type(&v)
        ));
    };
    let mut unknown: Vec<String> = top
        .keys()
        .filter(|k| !TOP_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    top.retain(|k, _| TOP_FIELDS.contains(&k.as_str()));
    let meta = top.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    let Some(meta) = meta.as_object_mut() else {
        return Err(format!(
            "json: cannot unmarshal {} into Go struct field ConfigMap.metadata of type v1.ObjectMeta",
            go_type(&top["metadata"])
        ));
    };
    unknown.extend(
        meta.keys()
            .filter(|k| !META_FIELDS.contains(&k.as_str()))
            .map(|k| format!("metadata.{k}")),
    );
    meta.retain(|k, _| META_FIELDS.contains(&k.as_str()));
    if strict && !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|k| format!("unknown field \"{k}\""))
            .collect();
        return Err(format!("strict decoding error: {}", list.join(", ")));
    }
    for f in [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
    ] {
        if let Some(x) = meta.get(f)
            && !x.is_string()
            && !x.is_null()
        {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{f} of type string",
                go_type(x)
            ));
        }
    }
    for f in ["labels", "annotations"] {
        string_map(
            meta.get(f).unwrap_or(&Value::Null),
            &format!("ObjectMeta.metadata.{f}"),
        )?;
    }
    string_map(
        &top.get("data").cloned().unwrap_or_default(),
        "ConfigMap.data",
    )?;
    string_map(
        &top.get("binaryData").cloned().unwrap_or_default(),
        "ConfigMap.binaryData",
    )?;
    if let Some(bin) = top.get("binaryData").and_then(Value::as_object) {
        for v in bin.values() {
            if let Err(e) = STANDARD.decode(v.as_str().unwrap_or_default()) {
                return Err(match e {
                    base64::DecodeError::InvalidByte(at, _) => {
                        format!("illegal base64 data at input byte {at}")
                    }
                    other => format!("illegal base64 data: {other}"),
                });
            }
        }
    }
    match top.get("immutable") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(x) => {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field ConfigMap.immutable of type bool",
                go_type(x)
            ));
        }
    }
    drop_empty(&mut v);
    v["apiVersion"] = json!("v1");
    v["kind"] = json!(KIND);
    Ok(v)
}

/// Empty maps and nulls are not stored (Go's `omitempty`).
fn drop_empty(v: &mut Value) {
    let gone = |x: &Value| x.is_null() || x.as_object().is_some_and(Map::is_empty);
    if let Some(meta) = v["metadata"].as_object_mut() {
        meta.retain(|_, x| !gone(x) && x.as_str() != Some(""));
    }
    if let Some(top) = v.as_object_mut() {
        top.retain(|k, x| k == "metadata" || !gone(x));
    }
}

/// Decodes a create or update body (JSON, or YAML when so declared), or
/// the 400 the server answers.
fn decode(req: &Req) -> Result<Value, Reply> {
    let yaml = req
        .content_type
        .as_deref()
        .is_some_and(|c| c.contains("yaml"));
    let raw: Result<Value, String> = if yaml {
        serde_yaml::from_str(&req.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&req.body).map_err(|e| e.to_string())
    };
    let raw = raw.map_err(|e| {
        bad_request(format!(
            "the object provided is unrecognized (must be of type {KIND}): couldn't get version/kind; json parse error: {e}"
        ))
    })?;
    if let Some(av) = raw["apiVersion"].as_str()
        && av != "v1"
    {
        return Err(bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version (v1)"
        )));
    }
    if let Some(kind) = raw["kind"].as_str()
        && kind != KIND
    {
        return Err(bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {KIND}: converting (v1.{kind}) to (core.{KIND}): unknown conversion"
        )));
    }
    let strict = req.param("fieldValidation") == Some("Strict");
    normalize(raw, strict).map_err(|e| {
        bad_request(format!(
            "{KIND} in version \"v1\" cannot be handled as a {KIND}: {e}"
        ))
    })
}

// ---------------------------------------------------------------------------
// Validation.

fn subdomain_errors(name: &str) -> Vec<String> {
    let mut errs = vec![];
    if name.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    };
    if !name.split('.').all(label_ok) {
        errs.push(SUBDOMAIN_MSG.to_string());
    }
    errs
}

fn config_key_errors(key: &str) -> Vec<String> {
    let mut errs = vec![];
    if key.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        errs.push(CONFIG_KEY_MSG.to_string());
    }
    match key {
        "." => errs.push("must not be '.'".into()),
        ".." => errs.push("must not be '..'".into()),
        k if k.starts_with("..") => errs.push("must not start with '..'".into()),
        _ => {}
    }
    errs
}

/// `ValidateConfigMap` (and `ValidateConfigMapUpdate` given the old object):
/// `(field, body)` per problem, in the API server's words.
fn validate(cm: &Value, old: Option<&Value>) -> Vec<(String, String)> {
    let mut errs = vec![];
    let meta = &cm["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    if name.is_empty() {
        errs.push((
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
    } else {
        for m in subdomain_errors(name) {
            errs.push((
                "metadata.name".into(),
                format!("Invalid value: {name:?}: {m}"),
            ));
        }
    }
    let annotations: usize = meta["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0);
    if annotations > MAX_ANNOTATIONS_BYTES {
        errs.push((
            "metadata.annotations".into(),
            format!("Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes"),
        ));
    }
    if let Some(old) = old {
        let (uid, old_uid) = (&meta["uid"], &old["metadata"]["uid"]);
        if uid != old_uid {
            errs.push((
                "metadata.uid".into(),
                format!("Invalid value: {uid}: field is immutable"),
            ));
        }
        if old["immutable"] == true {
            for f in ["immutable", "data", "binaryData"] {
                let changed = if f == "immutable" {
                    cm[f] != true
                } else {
                    cm[f] != old[f]
                };
                if changed {
                    errs.push((f.into(), IMMUTABLE_MSG.into()));
                }
            }
        }
    }
    let empty = Map::new();
    let data = cm["data"].as_object().unwrap_or(&empty);
    let binary = cm["binaryData"].as_object().unwrap_or(&empty);
    let mut total = 0;
    for (k, v) in data {
        for m in config_key_errors(k) {
            errs.push((format!("data[{k}]"), format!("Invalid value: {k:?}: {m}")));
        }
        if binary.contains_key(k) {
            errs.push((
                format!("data[{k}]"),
                format!("Invalid value: {k:?}: duplicate of key present in binaryData"),
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary {
        for m in config_key_errors(k) {
            errs.push((
                format!("binaryData[{k}]"),
                format!("Invalid value: {k:?}: {m}"),
            ));
        }
        total += STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_or(0, |b| b.len());
    }
    // The path is `field.NewPath("")`: it prints as "[]". Since v1.32 the
    // detail reads "may not be more than" (before: "must have at most").
    if total > MAX_DATA_BYTES {
        errs.push((
            "[]".into(),
            format!("Too long: may not be more than {MAX_DATA_BYTES} bytes"),
        ));
    }
    errs
}

/// About what etcd is asked to store (the protobuf encoding: keys and values
/// with a few bytes of framing each, plus the metadata).
fn stored_size(cm: &Value) -> usize {
    let entries = |m: &Value| -> usize {
        m.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len) + 8)
                    .sum()
            })
            .unwrap_or(0)
    };
    entries(&cm["data"])
        + entries(&cm["binaryData"])
        + serde_json::to_string(&cm["metadata"]).map_or(0, |s| s.len())
        + 32
}

// ---------------------------------------------------------------------------
// Verbs.

fn get(st: &Store, ns: &str, name: &str, req: &Req) -> Reply {
    match st.configmaps.get(&(ns.to_string(), name.to_string())) {
        Some(o) if req.table => ok(table(&[o], true)),
        Some(o) => ok(o.clone()),
        None => not_found(name),
    }
}

/// Object-level metadata the server owns, fresh for a new object.
fn stamp_new(st: &mut Store, cm: &mut Value, ns: &str) {
    let name = cm["metadata"]["name"].as_str().unwrap_or("").to_string();
    let rv = st.next_rv();
    let meta = &mut cm["metadata"];
    meta["namespace"] = json!(ns);
    meta["uid"] = json!(pseudo_uid(&format!("configmap/{ns}/{name}/{rv}")));
    meta["creationTimestamp"] = json!(now());
    meta["resourceVersion"] = json!(rv);
    if let Some(m) = meta.as_object_mut() {
        for f in [
            "generation",
            "selfLink",
            "deletionTimestamp",
            "managedFields",
        ] {
            m.remove(f);
        }
    }
}

fn create(st: &mut Store, ns: &str, req: &Req) -> Reply {
    let cm = match decode(req) {
        Ok(cm) => cm,
        Err(reply) => return reply,
    };
    insert_new(st, ns, cm, req)
}

/// Creates `cm` in `ns` (a POST, or server-side apply of a new object).
fn insert_new(st: &mut Store, ns: &str, mut cm: Value, req: &Req) -> Reply {
    let meta = &mut cm["metadata"];
    if meta["namespace"].as_str().is_some_and(|n| n != ns) {
        return bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        );
    }
    if meta["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = meta["generateName"].as_str()
    {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let suffix: String = (0..5)
            .map(|_| ALPHABET[rand::random::<usize>() % ALPHABET.len()] as char)
            .collect();
        meta["name"] = json!(format!("{prefix}{suffix}"));
    }
    let name = meta["name"].as_str().unwrap_or("").to_string();
    if !known_namespaces(st).contains_key(ns) {
        return failure(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            Some(json!({ "name": ns, "kind": "namespaces" })),
        );
    }
    let errs = validate(&cm, None);
    if !errs.is_empty() {
        return invalid(&name, &errs);
    }
    if cm["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| rv.parse::<u64>().is_ok_and(|n| n != 0))
    {
        return storage_error("resourceVersion should not be set on objects to be created");
    }
    if stored_size(&cm) > ETCD_MAX_REQUEST_BYTES {
        return storage_error("etcdserver: request is too large");
    }
    let key = (ns.to_string(), name.clone());
    if st.configmaps.contains_key(&key) {
        return failure(
            409,
            "AlreadyExists",
            format!("{RESOURCE} \"{name}\" already exists"),
            Some(details(&name)),
        );
    }
    if is_dry_run(req) {
        cm["metadata"]["namespace"] = json!(ns);
        return Reply(StatusCode::CREATED, cm);
    }
    stamp_new(st, &mut cm, ns);
    st.configmaps.insert(key, cm.clone());
    Reply(StatusCode::CREATED, cm)
}

fn update(st: &mut Store, ns: &str, name: &str, req: &Req) -> Reply {
    let cm = match decode(req) {
        Ok(cm) => cm,
        Err(reply) => return reply,
    };
    let sent = cm["metadata"]["name"].as_str().unwrap_or("");
    if sent != name {
        return bad_request(format!(
            "the name of the object ({sent}) does not match the name on the URL ({name})"
        ));
    }
    if cm["metadata"]["namespace"]
        .as_str()
        .is_some_and(|n| n != ns)
    {
        return bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        );
    }
    replace(st, ns, name, cm, req, StatusCode::OK)
}

/// Stores `cm` over the existing object: the optimistic lock, server-owned
/// fields, validation, the no-op short cut, the storage limit.
fn replace(
    st: &mut Store,
    ns: &str,
    name: &str,
    mut cm: Value,
    req: &Req,
    status: StatusCode,
) -> Reply {
    let key = (ns.to_string(), name.to_string());
    let Some(old) = st.configmaps.get(&key).cloned() else {
        return not_found(name);
    };
    let sent_rv = cm["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if !sent_rv.is_empty() && old["metadata"]["resourceVersion"] != sent_rv {
        return conflict(
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        );
    }
    let meta = &mut cm["metadata"];
    meta["namespace"] = json!(ns);
    if meta["uid"].as_str().is_none_or(str::is_empty) {
        meta["uid"] = old["metadata"]["uid"].clone();
    }
    meta["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
    meta["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if let Some(m) = meta.as_object_mut() {
        for f in [
            "generation",
            "selfLink",
            "deletionTimestamp",
            "managedFields",
        ] {
            m.remove(f);
        }
    }
    let errs = validate(&cm, Some(&old));
    if !errs.is_empty() {
        return invalid(name, &errs);
    }
    if cm == old {
        return Reply(status, old);
    }
    if stored_size(&cm) > ETCD_MAX_REQUEST_BYTES {
        return storage_error("etcdserver: request is too large");
    }
    if is_dry_run(req) {
        return Reply(status, cm);
    }
    cm["metadata"]["resourceVersion"] = json!(st.next_rv());
    st.configmaps.insert(key, cm.clone());
    Reply(status, cm)
}

fn patch(st: &mut Store, ns: &str, name: &str, req: &Req) -> Reply {
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
    let body: Result<Value, String> = if is_apply {
        serde_yaml::from_str(&req.body).map_err(|e| format!("error decoding YAML: {e}"))
    } else {
        serde_json::from_str(&req.body).map_err(|e| format!("error decoding patch: {e}"))
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    if is_apply && (body["apiVersion"] != "v1" || body["kind"] != KIND) {
        return bad_request(format!(
            "apply patch must be a {KIND} of v1, got kind {} apiVersion {}",
            body["kind"], body["apiVersion"]
        ));
    }
    let key = (ns.to_string(), name.to_string());
    let Some(old) = st.configmaps.get(&key).cloned() else {
        if !is_apply {
            return not_found(name);
        }
        if body["metadata"]["name"] != name {
            return bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body["metadata"]["name"]
            ));
        }
        return match normalize(body, false) {
            Ok(cm) => insert_new(st, ns, cm, req),
            Err(e) => invalid(name, &[(String::new(), e)]),
        };
    };
    let mut new = old.clone();
    match media.as_str() {
        "application/merge-patch+json" => merge_patch(&mut new, &body),
        "application/strategic-merge-patch+json" | "application/apply-patch+yaml" => {
            strategic_merge_patch(&mut new, &body, "")
        }
        "application/json-patch+json" => {
            if let Err(e) = json_patch(&mut new, &body) {
                return failure(422, "Invalid", e, None);
            }
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
    let new = match normalize(new, false) {
        Ok(cm) => cm,
        Err(e) => return invalid(name, &[(String::new(), e)]),
    };
    if new["metadata"]["name"] != old["metadata"]["name"]
        || new["metadata"]["namespace"] != old["metadata"]["namespace"]
    {
        return bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new["metadata"]["name"]
        ));
    }
    let status = StatusCode::OK;
    replace(st, ns, name, new, req, status)
}

fn delete(st: &mut Store, ns: &str, name: &str, req: &Req) -> Reply {
    let key = (ns.to_string(), name.to_string());
    let Some(old) = st.configmaps.get(&key) else {
        return not_found(name);
    };
    let options: Value = if req.body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&req.body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("error decoding DeleteOptions: {e}")),
        }
    };
    let pre = &options["preconditions"];
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(want) = pre[field].as_str() {
            let have = old["metadata"][field].as_str().unwrap_or("");
            if want != have {
                return conflict(
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"
                    ),
                );
            }
        }
    }
    let uid = old["metadata"]["uid"].clone();
    if !is_dry_run(req) {
        st.configmaps.remove(&key);
        st.next_rv();
    }
    ok(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": { "name": name, "kind": RESOURCE, "uid": uid },
    }))
}

// ---------------------------------------------------------------------------
// Lists and selectors.

/// One requirement of a label selector.
#[derive(Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels[k].as_str();
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        }
    }
}

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (vec![], 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// apimachinery's label selector syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
/// `k notin (a,b)`, `k`, `!k`, joined by commas.
fn parse_label_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.len() <= 317
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b))
    };
    let bad =
        |part: &str| format!("unable to parse requirement: found '{part}', expected: identifier");
    let mut out = vec![];
    if s.trim().is_empty() {
        return Ok(out);
    }
    for part in split_top(s) {
        let p = part.trim();
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let req = if let Some(k) = p.strip_prefix('!') {
            Requirement::DoesNotExist(k.trim().to_string())
        } else if let Some((k, v)) = p.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            Requirement::NotIn(k.trim().into(), set(rest).ok_or_else(|| bad(p))?)
        } else if let Some((k, rest)) = p.split_once(" in ") {
            Requirement::In(k.trim().into(), set(rest).ok_or_else(|| bad(p))?)
        } else {
            Requirement::Exists(p.to_string())
        };
        let key = match &req {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::DoesNotExist(k) => k,
        };
        if !key_ok(key) {
            return Err(bad(p));
        }
        out.push(req);
    }
    Ok(out)
}

/// `metadata.name` and `metadata.namespace` with `=`, `==` or `!=`:
/// `(field, value, equal)`.
fn parse_field_selector(s: &str) -> Result<Vec<(String, String, bool)>, String> {
    let mut out = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (f, v, true)
        } else {
            return Err(format!(
                "invalid selector: '{part}'; can't understand '{part}'"
            ));
        };
        let field = field.trim();
        if field != "metadata.name" && field != "metadata.namespace" {
            return Err(format!("field label not supported: {field}"));
        }
        out.push((field.to_string(), value.trim().to_string(), equal));
    }
    Ok(out)
}

fn field_selector_name(req: &Req) -> Option<String> {
    let fields = parse_field_selector(&req.decoded("fieldSelector")?).ok()?;
    fields
        .into_iter()
        .find(|(f, _, eq)| f == "metadata.name" && *eq)
        .map(|(_, v, _)| v)
}

fn list(st: &Store, ns: Option<&str>, req: &Req) -> Reply {
    let labels = match parse_label_selector(&req.decoded("labelSelector").unwrap_or_default()) {
        Ok(l) => l,
        Err(e) => return bad_request(e),
    };
    let fields = match parse_field_selector(&req.decoded("fieldSelector").unwrap_or_default()) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let after = match req.decoded("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => match URL_SAFE_NO_PAD
            .decode(&token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once('/')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            }) {
            Some(k) => Some(k),
            None => {
                return bad_request(format!(
                    "continue key is not valid: {token:?} is not a continue token"
                ));
            }
        },
    };
    let limit = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let matching = st
        .configmaps
        .iter()
        .filter(|(k, _)| ns.is_none_or(|n| k.0 == n))
        .filter(|(k, _)| st.configmap_faults.get(*k) != Some(&Fault::NotFound))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
        .filter(|(_, o)| labels.iter().all(|r| r.matches(&o["metadata"]["labels"])))
        .filter(|(k, _)| {
            fields.iter().all(|(f, v, eq)| {
                let actual = if f == "metadata.name" { &k.1 } else { &k.0 };
                (actual == v) == *eq
            })
        });
    let mut items: Vec<&Value> = vec![];
    let (mut last, mut more): (Option<&Key>, bool) = (None, false);
    for (k, o) in matching {
        if limit.is_some_and(|l| items.len() == l) {
            more = true;
            break;
        }
        items.push(o);
        last = Some(k);
    }
    let mut list_meta = json!({ "resourceVersion": st.last_rv.to_string() });
    if more && let Some((a, b)) = last {
        list_meta["continue"] = json!(URL_SAFE_NO_PAD.encode(format!("{a}/{b}")));
        list_meta["remainingItemCount"] = json!(0);
    }
    if req.table {
        let mut t = table(&items, req.param("includeObject") == Some("Object"));
        t["metadata"] = list_meta;
        return ok(t);
    }
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
        "kind": "ConfigMapList", "apiVersion": "v1", "metadata": list_meta, "items": items,
    }))
}

/// The server-side printed table (`kubectl get configmaps`): NAME, DATA, AGE.
fn table(items: &[&Value], full_object: bool) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let count = |f: &str| o[f].as_object().map_or(0, Map::len);
            let object = if full_object {
                (*o).clone()
            } else {
                json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"] })
            };
            json!({
                "cells": [o["metadata"]["name"], count("data") + count("binaryData"),
                          age(o["metadata"]["creationTimestamp"].as_str().unwrap_or(""))],
                "object": object,
            })
        })
        .collect();
    let col = |name: &str, ty: &str, fmt: &str, desc: &str| json!({ "name": name, "type": ty, "format": fmt, "description": desc, "priority": 0 });
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
        "columnDefinitions": [
            col("Name", "string", "name", "Name must be unique within a namespace."),
            col("Data", "string", "", "Data contains the configuration data."),
            col("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created."),
        ],
        "rows": rows,
    })
}

// ---------------------------------------------------------------------------
// Seeding.

/// Stores a ConfigMap as a create would (its namespace is made to exist).
pub(super) fn seed(st: &mut Store, manifest: Value) -> Result<(), String> {
    let mut cm = normalize(manifest, false)?;
    let ns = cm["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = cm["metadata"]["name"].as_str().unwrap_or("").to_string();
    let errs = validate(&cm, None);
    if let Some((field, msg)) = errs.first() {
        return Err(format!("ConfigMap {ns}/{name}: {field}: {msg}"));
    }
    st.namespaces.entry(ns.clone()).or_insert_with(now);
    stamp_new(st, &mut cm, &ns);
    st.configmaps.insert((ns, name), cm);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_names_and_the_data_limit_are_validated_in_the_servers_words() {
        let cm = |data: Value| {
            normalize(
                json!({ "metadata": { "name": "spool" }, "data": data }),
                false,
            )
            .unwrap()
        };
        assert!(validate(&cm(json!({ "0123abcd": "{}", "a.b-c_D": "x" })), None).is_empty());
        assert_eq!(
            validate(&cm(json!({ "2025-01-01T00:00:00Z": "x" })), None),
            vec![(
                "data[2025-01-01T00:00:00Z]".to_string(),
                format!("Invalid value: \"2025-01-01T00:00:00Z\": {CONFIG_KEY_MSG}")
            )]
        );
        assert_eq!(
            validate(&cm(json!({ "..x": "" })), None)[0].1,
            "Invalid value: \"..x\": must not start with '..'"
        );
        let at_limit = "x".repeat(MAX_DATA_BYTES - 1);
        assert!(validate(&cm(json!({ "a": at_limit, "b": "y" })), None).is_empty());
        assert_eq!(
            validate(&cm(json!({ "a": at_limit, "b": "yz" })), None),
            vec![(
                "[]".to_string(),
                "Too long: may not be more than 1048576 bytes".to_string()
            )]
        );
        let mut bad_name = cm(json!({}));
        bad_name["metadata"]["name"] = json!("Spool_1");
        assert_eq!(
            validate(&bad_name, None)[0],
            (
                "metadata.name".to_string(),
                format!("Invalid value: \"Spool_1\": {SUBDOMAIN_MSG}")
            )
        );
        assert!(subdomain_errors("hpa-tier.spool-1").is_empty());
        assert!(!subdomain_errors("-spool").is_empty() && !subdomain_errors("a..b").is_empty());
    }

    #[test]
    fn an_immutable_configmap_keeps_its_data() {
        let old = normalize(
            json!({ "metadata": { "name": "c", "uid": "u1" }, "data": { "a": "1" }, "immutable": true }),
            false,
        )
        .unwrap();
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        new["metadata"]["labels"] = json!({ "x": "y" });
        assert_eq!(
            validate(&new, Some(&old)),
            vec![("data".to_string(), IMMUTABLE_MSG.to_string())]
        );
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({ "x": "y" });
        assert!(validate(&relabelled, Some(&old)).is_empty());
    }

    #[test]
    fn decoding_checks_types_and_strict_fields_like_the_api_server() {
        assert_eq!(
            normalize(
                json!({ "metadata": { "name": "c" }, "data": { "a": 1 } }),
                false
            )
            .unwrap_err(),
            "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
        );
        assert_eq!(
            normalize(
                json!({ "metadata": { "name": "c", "nme": "x" }, "extra": 1 }),
                true
            )
            .unwrap_err(),
            "strict decoding error: unknown field \"extra\", unknown field \"metadata.nme\""
        );
        let lax = normalize(
            json!({ "metadata": { "name": "c", "labels": {} }, "extra": 1, "data": {} }),
            false,
        )
        .unwrap();
        assert_eq!(
            lax,
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } })
        );
        assert!(
            normalize(
                json!({ "metadata": {}, "binaryData": { "b": "not base64!" } }),
                false
            )
            .unwrap_err()
            .starts_with("illegal base64 data at input byte")
        );
    }

    #[test]
    fn label_and_field_selectors_parse_like_apimachinery() {
        let labels = json!({ "app": "hpa-tier", "tier": "spool" });
        let sel = |s: &str| parse_label_selector(s).unwrap();
        let all = |s: &str| sel(s).iter().all(|r| r.matches(&labels));
        assert!(all("app=hpa-tier,tier"));
        assert!(all("app==hpa-tier, tier in (spool, cache), !missing"));
        assert!(!all("app!=hpa-tier"));
        assert!(!all("tier notin (spool)"));
        assert!(all(""));
        assert!(parse_label_selector("a b=c").is_err());
        assert_eq!(
            parse_field_selector("metadata.name=spool").unwrap(),
            vec![("metadata.name".into(), "spool".into(), true)]
        );
        assert_eq!(
            parse_field_selector("data.x=1").unwrap_err(),
            "field label not supported: data.x"
        );
    }

    #[test]
    fn rules_with_resource_names_cannot_allow_create_or_a_plain_list() {
        let rules = RbacRule::from_roles_yaml(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: hpa-tier}\n\
             rules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  resourceNames: [spool]\n  verbs: [get, create, update, patch]\n\
             - apiGroups: [autoscaling]\n  resources: [horizontalpodautoscalers]\n  verbs: [get]\n---\n\
             kind: RoleBinding\nmetadata: {name: r}\n",
        )
        .unwrap();
        assert_eq!(
            rules,
            vec![
                RbacRule::new("hpa-tier", &["get", "create", "update", "patch"]).names(&["spool"])
            ]
        );
        let r = &rules[0];
        assert!(r.allows("get", Some("hpa-tier"), Some("spool")));
        assert!(r.allows("update", Some("hpa-tier"), Some("spool")));
        assert!(!r.allows("get", Some("hpa-tier"), Some("other")));
        assert!(!r.allows("get", Some("prod"), Some("spool")));
        assert!(!r.allows("create", Some("hpa-tier"), None));
        assert!(!r.allows("delete", Some("hpa-tier"), Some("spool")));
        assert!(RbacRule::new("hpa-tier", &["create"]).allows("create", Some("hpa-tier"), None));
    }

    // --- Over HTTP, against the running stand-in. ---

    use crate::kube::{Fault, KubeStandin};
    use crate::test_client::{Response, call, send};
    use std::time::{Duration, Instant};

    const JSON: &str = "application/json";
    const MERGE: &str = "application/merge-patch+json";
    const ONE: &str = "/api/v1/namespaces/hpa-tier/configmaps/spool";
    const ALL: &str = "/api/v1/namespaces/hpa-tier/configmaps";

    fn spool(data: Value) -> String {
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "spool", "labels": { "app": "hpa-tier" } }, "data": data })
        .to_string()
    }

    fn rv(r: &Response) -> u64 {
        r.json()["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no resourceVersion: {}", r.body))
    }

    fn status(r: &Response) -> (u16, String, String) {
        let v = r.json();
        (
            r.status,
            v["reason"].as_str().unwrap_or("").to_string(),
            v["message"].as_str().unwrap_or("").to_string(),
        )
    }

    #[test]
    fn configmaps_go_through_every_verb_with_the_resource_version_as_the_lock() {
        let k = KubeStandin::start();
        k.add_namespace("hpa-tier");
        let url = k.url();

        let v1 = call(&url, "GET", "/api/v1", JSON, "").json();
        let cm = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "configmaps")
            .expect("configmaps in discovery")
            .clone();
        assert_eq!(
            cm["verbs"],
            json!(["create", "delete", "get", "list", "patch", "update"])
        );

        let created = call(
            &url,
            "POST",
            ALL,
            JSON,
            &spool(json!({ "r1": "{\"a\":1}" })),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        let rv1 = rv(&created);
        assert_eq!(created.json()["metadata"]["namespace"], "hpa-tier");
        assert!(created.json()["metadata"]["uid"].is_string());
        assert_eq!(k.configmap("hpa-tier", "spool"), Some(created.json()));
        assert_eq!(call(&url, "GET", ONE, JSON, "").json(), created.json());

        let again = call(&url, "POST", ALL, JSON, &spool(json!({})));
        assert_eq!(
            status(&again),
            (
                409,
                "AlreadyExists".into(),
                "configmaps \"spool\" already exists".into()
            )
        );

        // Someone else writes: an update based on the earlier read conflicts.
        k.edit_configmap("hpa-tier", "spool", |o| o["data"]["r0"] = json!("{}"));
        let mut stale = created.json();
        stale["data"]["r2"] = json!("{}");
        let r = call(&url, "PUT", ONE, JSON, &stale.to_string());
        assert_eq!(
            status(&r),
            (409, "Conflict".into(), "Operation cannot be fulfilled on configmaps \"spool\": the object has been modified; please apply your changes to the latest version and try again".into())
        );
        let current = call(&url, "GET", ONE, JSON, "").json();
        let mut fresh = current.clone();
        fresh["data"]["r2"] = json!("{}");
        let r = call(&url, "PUT", ONE, JSON, &fresh.to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        let rv2 = rv(&r);
        assert!(rv2 > rv1);
        assert_eq!(
            k.configmap_data("hpa-tier", "spool")
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["r0", "r1", "r2"]
        );
        // The same object again is no write at all.
        let r = call(&url, "PUT", ONE, JSON, &r.body);
        assert_eq!(rv(&r), rv2);

        // Merge patch: null removes a key; a stale resourceVersion conflicts.
        let r = call(&url, "PATCH", ONE, MERGE, r#"{"data":{"r0":null}}"#);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(rv(&r) > rv2);
        assert!(r.json()["data"].get("r0").is_none());
        let r = call(
            &url,
            "PATCH",
            ONE,
            MERGE,
            &format!(r#"{{"metadata":{{"resourceVersion":"{rv1}"}},"data":{{"x":"1"}}}}"#),
        );
        assert_eq!(r.status, 409, "{}", r.body);
        let r = call(
            &url,
            "PATCH",
            ONE,
            "application/strategic-merge-patch+json",
            r#"{"data":{"r3":"{}"}}"#,
        );
        assert_eq!(r.json()["data"]["r3"], "{}");
        let r = call(
            &url,
            "PATCH",
            ONE,
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/data/r3"}]"#,
        );
        assert!(r.json()["data"].get("r3").is_none(), "{}", r.body);

        // Lists: selectors, limit and continue.
        k.seed_configmap("hpa-tier", "other", [("k", "v")]);
        let names = |r: &Response| -> Vec<String> {
            r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let all = call(&url, "GET", ALL, JSON, "");
        assert_eq!(all.json()["kind"], "ConfigMapList");
        assert_eq!(names(&all), ["other", "spool"]);
        let sel = call(
            &url,
            "GET",
            &format!("{ALL}?labelSelector=app%3Dhpa-tier"),
            JSON,
            "",
        );
        assert_eq!(names(&sel), ["spool"]);
        let page = call(&url, "GET", &format!("{ALL}?limit=1"), JSON, "");
        assert_eq!(names(&page), ["other"]);
        let token = page.json()["metadata"]["continue"]
            .as_str()
            .unwrap()
            .to_string();
        let next = call(
            &url,
            "GET",
            &format!("{ALL}?limit=1&continue={token}"),
            JSON,
            "",
        );
        assert_eq!(names(&next), ["spool"]);
        assert!(next.json()["metadata"].get("continue").is_none());

        // Delete, with a precondition first.
        let r = call(
            &url,
            "DELETE",
            ONE,
            JSON,
            r#"{"preconditions":{"resourceVersion":"1"}}"#,
        );
        assert_eq!(r.status, 409);
        assert!(
            status(&r)
                .2
                .contains("Precondition failed: ResourceVersion in precondition: 1")
        );
        let r = call(&url, "DELETE", ONE, JSON, "");
        assert_eq!(
            (r.json()["status"].as_str(), r.status),
            (Some("Success"), 200)
        );
        assert_eq!(
            status(&call(&url, "GET", ONE, JSON, "")),
            (
                404,
                "NotFound".into(),
                "configmaps \"spool\" not found".into()
            )
        );
        assert_eq!(call(&url, "PUT", ONE, JSON, &spool(json!({}))).status, 404);
        assert_eq!(k.configmap("hpa-tier", "spool"), None);
    }

    #[test]
    fn the_api_servers_limits_and_validation_hold_over_http() {
        let k = KubeStandin::start();
        k.add_namespace("hpa-tier");
        let url = k.url();

        // The 1 MiB limit is on the values; one byte over is a 422.
        let half = "x".repeat(MAX_DATA_BYTES / 2);
        let at_limit = spool(json!({ "a": half, "b": half }));
        let over = spool(json!({ "a": half, "b": format!("{half}y") }));
        let r = call(&url, "POST", ALL, JSON, &over);
        assert_eq!(
            status(&r),
            (
                422,
                "Invalid".into(),
                "ConfigMap \"spool\" is invalid: []: Too long: may not be more than 1048576 bytes"
                    .into()
            )
        );
        assert_eq!(
            r.json()["details"]["causes"][0]["reason"],
            "FieldValueTooLong"
        );
        assert_eq!(call(&url, "POST", ALL, JSON, &at_limit).status, 201);
        let r = call(&url, "PUT", ONE, JSON, &over);
        assert_eq!(r.status, 422, "an update is held to the same limit");

        // Bodies over 3 MiB never reach the decoder.
        let huge = spool(json!({ "a": "x".repeat(MAX_REQUEST_BODY_BYTES) }));
        assert_eq!(
            status(&call(&url, "POST", ALL, JSON, &huge)),
            (
                413,
                "RequestEntityTooLarge".into(),
                "Request entity too large: limit is 3145728".into()
            )
        );

        // Many keys: under the data limit, over etcd's request limit.
        let many: Map<String, Value> = (0..20_000)
            .map(|i| (format!("{i:040}"), json!("v".repeat(50))))
            .collect();
        let mut doc: Value = serde_json::from_str(&spool(json!(many))).unwrap();
        doc["metadata"]["name"] = json!("many");
        let r = call(&url, "POST", ALL, JSON, &doc.to_string());
        assert_eq!(
            (r.status, status(&r).2),
            (500, "etcdserver: request is too large".into())
        );

        let r = call(
            &url,
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            JSON,
            &spool(json!({})),
        );
        assert_eq!(
            status(&r),
            (
                404,
                "NotFound".into(),
                "namespaces \"nope\" not found".into()
            )
        );
        let r = call(
            &url,
            "POST",
            ALL,
            JSON,
            &spool(json!({ "bad key": "x" })).replace("spool", "k"),
        );
        assert!(
            status(&r).2.starts_with("ConfigMap \"k\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key"),
            "{}", r.body
        );
        let strict = format!("{ALL}?fieldValidation=Strict");
        let r = call(
            &url,
            "POST",
            &strict,
            JSON,
            r#"{"metadata":{"name":"s"},"dta":{}}"#,
        );
        assert_eq!(
            status(&r),
            (400, "BadRequest".into(), "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\"".into())
        );
        let r = call(
            &url,
            "POST",
            ALL,
            JSON,
            r#"{"metadata":{"name":"s"},"data":{"a":1}}"#,
        );
        assert_eq!(r.status, 400);
        let r = call(
            &url,
            "POST",
            ALL,
            JSON,
            r#"{"metadata":{"name":"s","resourceVersion":"7"}}"#,
        );
        assert_eq!(
            (r.status, status(&r).2),
            (
                500,
                "resourceVersion should not be set on objects to be created".into()
            )
        );
        let generated = call(
            &url,
            "POST",
            ALL,
            JSON,
            r#"{"metadata":{"generateName":"spool-"}}"#,
        );
        assert!(
            generated.json()["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("spool-")
        );

        let frozen = r#"{"metadata":{"name":"frozen"},"data":{"a":"1"},"immutable":true}"#;
        assert_eq!(call(&url, "POST", ALL, JSON, frozen).status, 201);
        let r = call(
            &url,
            "PATCH",
            &format!("{ALL}/frozen"),
            MERGE,
            r#"{"data":{"a":"2"}}"#,
        );
        assert_eq!(
            status(&r).2,
            "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        );
    }

    #[test]
    fn faults_rbac_latency_and_the_request_log_cover_configmaps() {
        let k = KubeStandin::start();
        k.seed_configmap("hpa-tier", "spool", [("r1", "{}")]);
        let url = k.url();

        k.fail_configmap("hpa-tier", "spool", Fault::Conflicts(1));
        let patch = r#"{"data":{"r2":"{}"}}"#;
        assert_eq!(call(&url, "PATCH", ONE, MERGE, patch).status, 409);
        assert_eq!(call(&url, "PATCH", ONE, MERGE, patch).status, 200);

        k.fail_configmap("hpa-tier", "spool", Fault::Forbidden("update"));
        let current = call(&url, "GET", ONE, JSON, "").body;
        assert_eq!(
            status(&call(&url, "PUT", ONE, JSON, &current)),
            (403, "Forbidden".into(), "configmaps \"spool\" is forbidden: User \"system:serviceaccount:hpa-tier:hpa-tier\" cannot update resource \"configmaps\" in API group \"\" in the namespace \"hpa-tier\"".into())
        );
        k.fail_configmap("hpa-tier", "spool", Fault::Forbidden("create"));
        assert_eq!(
            status(&call(&url, "POST", ALL, JSON, &spool(json!({})))).2,
            "configmaps is forbidden: User \"system:serviceaccount:hpa-tier:hpa-tier\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"hpa-tier\""
        );
        k.fail_configmap("hpa-tier", "spool", Fault::ServerError);
        assert_eq!(call(&url, "GET", ONE, JSON, "").status, 500);
        k.fail_configmap("hpa-tier", "spool", Fault::NotFound);
        assert_eq!(call(&url, "GET", ONE, JSON, "").status, 404);
        assert_eq!(call(&url, "GET", ALL, JSON, "").json()["items"], json!([]));
        k.fail_configmap("hpa-tier", "spool", Fault::Hang);
        let hung = send(&url, "GET", ONE, &[], b"", Duration::from_millis(300));
        assert!(hung.is_err(), "{hung:?}");
        k.clear_faults();

        // RBAC as deploy would grant it: named rules cannot create or list.
        k.restrict_configmaps([RbacRule::new(
            "hpa-tier",
            &["get", "create", "update", "patch", "list"],
        )
        .names(&["spool"])]);
        assert_eq!(call(&url, "GET", ONE, JSON, "").status, 200);
        assert_eq!(call(&url, "PATCH", ONE, MERGE, patch).status, 200);
        assert_eq!(call(&url, "DELETE", ONE, JSON, "").status, 403);
        assert_eq!(call(&url, "POST", ALL, JSON, &spool(json!({}))).status, 403);
        assert_eq!(call(&url, "GET", ALL, JSON, "").status, 403);
        let by_name = call(
            &url,
            "GET",
            &format!("{ALL}?fieldSelector=metadata.name%3Dspool"),
            JSON,
            "",
        );
        assert_eq!(by_name.status, 200, "{}", by_name.body);
        assert_eq!(
            status(&call(&url, "GET", "/api/v1/configmaps", JSON, "")).2,
            "configmaps is forbidden: User \"system:serviceaccount:hpa-tier:hpa-tier\" cannot list resource \"configmaps\" in API group \"\" at the cluster scope"
        );
        k.restrict_configmaps([RbacRule::new("hpa-tier", &["*"])]);

        k.set_latency(Duration::from_millis(250));
        let t = Instant::now();
        assert_eq!(call(&url, "GET", ONE, JSON, "").status, 200);
        assert!(t.elapsed() >= Duration::from_millis(250));
        k.set_latency(Duration::ZERO);

        k.clear_requests();
        call(
            &url,
            "POST",
            ALL,
            JSON,
            &spool(json!({})).replace("spool", "two"),
        );
        call(
            &url,
            "PUT",
            ONE,
            JSON,
            &call(&url, "GET", ONE, JSON, "").body,
        );
        let log = k.requests();
        let seen: Vec<(&str, Option<(String, String)>)> =
            log.iter().map(|r| (r.verb(), r.configmap())).collect();
        let cm = |n: &str| Some(("hpa-tier".to_string(), n.to_string()));
        assert_eq!(
            seen,
            [
                ("create", cm("two")),
                ("get", cm("spool")),
                ("update", cm("spool"))
            ]
        );
        assert!(log.iter().all(|r| r.is_configmap_api() && !r.is_hpa_api()));
    }
}
