//! A Prometheus Pushgateway stand-in (its v1.x behaviour, consistency
//! check on, the default): `PUT`, `POST` and `DELETE` on
//! `/metrics/job/<job>{/<label>/<value>}`, with `@base64` after `job` or a
//! label name marking the value as base64url, as the real one reads them.
//!
//! A push body is parsed as the text format 0.0.4 ([`exposition`]); a
//! malformed one is a 400 with expfmt's message, as are timestamps and
//! pushes inconsistent with what is stored (a metric name of two types,
//! the same name and labels twice, `x_count` beside a summary `x`). Grouping
//! labels overwrite the same labels in the body and every metric gets an
//! `instance` label (empty if none), as the real one does. `PUT` replaces
//! the group, `POST` only the families it names, `DELETE` removes the group
//! (202). `GET /metrics` exposes every group with `push_time_seconds` and
//! `push_failure_time_seconds` — what Prometheus would scrape (the real
//! one's own go_/process_ metrics are left out).
//!
//! Tests steer it through [`Pushgateway`]: read the groups back, inject a
//! status or a hang for the next pushes, add latency, see every request.
//! The `pushgateway` subcommand runs it for the demo and prints each push.

pub mod exposition;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::server::{self, Latency, Running};
pub use exposition::{Metric, MetricFamily, MetricType, ParseError, Value};

const PUSH_TIME: &str = "push_time_seconds";
const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILED: &str = "push_failure_time_seconds";
const PUSH_FAILED_HELP: &str = "Last Unix time when changing this group in the Pushgateway failed.";
const INCONSISTENT: &str = "pushed metrics are invalid or inconsistent with existing metrics";

/// The labels that identify a group, `job` among them.
pub type Grouping = BTreeMap<String, String>;

/// One group of pushed metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub labels: Grouping,
    /// By name; every metric carries the grouping labels and `instance`.
    pub families: Vec<MetricFamily>,
    /// Unix seconds of the last successful push (0: none yet).
    pub push_time_seconds: f64,
    /// Unix seconds of the last refused push (0: none yet).
    pub push_failure_time_seconds: f64,
}

impl Group {
    pub fn family(&self, name: &str) -> Option<&MetricFamily> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The value of the counter, gauge or untyped metric `name` whose labels
    /// include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.family(name)?.metrics.iter().find_map(|m| {
            let all = labels.iter().all(|(k, v)| m.label(k) == Some(*v));
            match m.value {
                Value::Simple(v) if all => Some(v),
                _ => None,
            }
        })
    }

    /// The group in the text format, as `GET /metrics` shows it (without
    /// the push-time gauges).
    pub fn text(&self) -> String {
        exposition::write(&self.families)
    }
}

/// The next answer to a push or delete, instead of the real one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// This status with a plain-text body; nothing is stored.
    Status(u16),
    /// Never answer.
    Hang,
}

/// One push or delete as the stand-in received it (scrapes are not logged).
#[derive(Clone, Debug)]
pub struct PushRequest {
    pub method: String,
    /// Percent-decoded, as the real one routes it.
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
    /// The status answered; `None` while hanging.
    pub status: Option<u16>,
}

#[derive(Default)]
struct Store {
    groups: BTreeMap<Vec<(String, String)>, Group>,
    faults: VecDeque<Fault>,
    log: Vec<PushRequest>,
}

struct Shared {
    store: Mutex<Store>,
    /// The binary prints each push; tests read `groups()` instead.
    print: bool,
}

/// A running Pushgateway stand-in. Dropping it stops the server.
pub struct Pushgateway {
    running: Running,
    shared: Arc<Shared>,
    latency: Latency,
}

impl Pushgateway {
    /// Starts an empty Pushgateway on a free loopback port.
    pub fn spawn() -> Pushgateway {
        let (router, shared, latency) = build(Duration::ZERO, false);
        let running = server::spawn(router, 0).expect("start the Pushgateway stand-in");
        Pushgateway {
            running,
            shared,
            latency,
        }
    }

    /// `http://127.0.0.1:PORT`: what `metrics_pushgateway` is set to.
    pub fn url(&self) -> String {
        self.running.url()
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// Answers the next push or delete with `fault` (queued, one per request).
    pub fn fail_next(&self, fault: Fault) {
        self.shared.store.lock().unwrap().faults.push_back(fault);
    }

    /// Every group, ordered by grouping labels.
    pub fn groups(&self) -> Vec<Group> {
        let st = self.shared.store.lock().unwrap();
        st.groups.values().cloned().collect()
    }

    /// The group with exactly these grouping labels (`job` included).
    pub fn group(&self, grouping: &[(&str, &str)]) -> Option<Group> {
        let st = self.shared.store.lock().unwrap();
        st.groups.get(&key_of(grouping)).cloned()
    }

    /// That group's metrics in the text format (see [`Group::text`]).
    pub fn body(&self, grouping: &[(&str, &str)]) -> Option<String> {
        self.group(grouping).map(|g| g.text())
    }

    /// What `GET /metrics` answers.
    pub fn scrape(&self) -> String {
        exposition::write(&scrape(&self.shared.store.lock().unwrap()))
    }

    /// Every push and delete so far, oldest first.
    pub fn requests(&self) -> Vec<PushRequest> {
        self.shared.store.lock().unwrap().log.clone()
    }

    /// Deletes every group (the real one's `PUT /api/v1/admin/wipe`).
    pub fn wipe(&self) {
        self.shared.store.lock().unwrap().groups.clear();
    }
}

fn key_of(grouping: &[(&str, &str)]) -> Vec<(String, String)> {
    let map: Grouping = grouping
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.into_iter().collect()
}

fn build(latency: Duration, print: bool) -> (Router, Arc<Shared>, Latency) {
    let shared = Arc::new(Shared {
        store: Mutex::default(),
        print,
    });
    let latency = Latency::new(latency);
    let router = Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(shared.clone());
    (latency.layer(router), shared, latency)
}

// ---------------------------------------------------------------------------
// HTTP.

fn text(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `http.Error`: the message and a newline.
fn http_error(status: u16, msg: &str) -> Response {
    text(status, format!("{msg}\n"))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let push_api = path.starts_with("/metrics/job/") || path.starts_with("/metrics/job@base64/");
    if !push_api {
        return match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                exposition::write(&scrape(&shared.store.lock().unwrap())),
            )
                .into_response(),
            ("GET", "/-/healthy" | "/-/ready") => text(200, "OK".into()),
            _ => http_error(404, "404 page not found"),
        };
    }
    let index = {
        let mut st = shared.store.lock().unwrap();
        st.log.push(PushRequest {
            method: method.to_string(),
            path: path.clone(),
            content_type: content_type.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            status: None,
        });
        st.log.len() - 1
    };
    let fault = shared.store.lock().unwrap().faults.pop_front();
    let response = match fault {
        Some(Fault::Hang) => std::future::pending::<Response>().await,
        Some(Fault::Status(s)) => http_error(s, &format!("HTTP {s} from the stand-in")),
        None => {
            let mut st = shared.store.lock().unwrap();
            let (r, line) = push_or_delete(&mut st, &method, &path, content_type.as_deref(), &body);
            if shared.print {
                println!("pushgateway {method} {path}: {line}");
            }
            r
        }
    };
    let mut st = shared.store.lock().unwrap();
    st.log[index].status = Some(response.status().as_u16());
    response
}

/// Base64url without padding (trailing `=` ignored), as the real one decodes.
fn decode_base64(s: &str) -> Result<String, String> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _) => {
                format!("illegal base64 data at input byte {at}")
            }
            _ => format!("illegal base64 data at input byte {}", s.len()),
        })
}

/// Go's `%q`.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The grouping labels of a push path, or the 400 (or 404) it gets.
fn grouping_of(path: &str) -> Result<Grouping, (u16, String)> {
    let (rest, job_b64) = match path.strip_prefix("/metrics/job@base64/") {
        Some(r) => (r, true),
        None => (path.strip_prefix("/metrics/job/").unwrap_or(""), false),
    };
    let (job, labels) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if job.is_empty() {
        return Err((404, "404 page not found".into()));
    }
    let job = if job_b64 {
        decode_base64(job).map_err(|e| {
            (
                400,
                format!("invalid base64 encoding in job name {}: {e}", quoted(job)),
            )
        })?
    } else {
        job.to_string()
    };
    let mut out = Grouping::new();
    if labels.len() > 1 {
        let parts: Vec<&str> = labels[1..].split('/').collect();
        if !parts.len().is_multiple_of(2) {
            return Err((
                400,
                format!(
                    "odd number of components in label string {}",
                    quoted(labels)
                ),
            ));
        }
        for pair in parts.chunks(2) {
            let (name, value) = (pair[0], pair[1]);
            let trimmed = name.strip_suffix("@base64").unwrap_or(name);
            let legal = trimmed.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit())
            });
            if trimmed.is_empty() || !legal || trimmed.starts_with("__") {
                return Err((400, format!("improper label name {}", quoted(trimmed))));
            }
            let value = if trimmed == name {
                value.to_string()
            } else {
                decode_base64(value).map_err(|e| {
                    (
                        400,
                        format!(
                            "invalid base64 encoding for label {trimmed}={}: {e}",
                            quoted(value)
                        ),
                    )
                })?
            };
            out.insert(trimmed.to_string(), value);
        }
    }
    if job.is_empty() {
        return Err((400, "job name is required".into()));
    }
    out.insert("job".into(), job);
    Ok(out)
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Handles a push or delete; also the line the binary prints about it.
fn push_or_delete(
    st: &mut Store,
    method: &Method,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (Response, String) {
    let labels = match grouping_of(path) {
        Ok(l) => l,
        Err((status, msg)) => return (http_error(status, &msg), format!("{status} {msg}")),
    };
    let key: Vec<(String, String)> = labels.clone().into_iter().collect();
    let replace = match method.as_str() {
        "DELETE" => {
            st.groups.remove(&key);
            return (
                StatusCode::ACCEPTED.into_response(),
                "202 group deleted".into(),
            );
        }
        "PUT" => true,
        "POST" => false,
        _ => return (http_error(405, "Method Not Allowed"), "405".into()),
    };
    if content_type.is_some_and(|c| c.starts_with("application/vnd.google.protobuf")) {
        let msg = "the stand-in reads the text format only, not delimited protobuf";
        return (http_error(415, msg), format!("415 {msg}"));
    }
    let families = match exposition::parse(body) {
        Ok(f) => f,
        Err(e) => return (http_error(400, &e.to_string()), format!("400 {e}")),
    };
    match push(st, &key, labels, families, replace) {
        Ok(n) => (
            StatusCode::OK.into_response(),
            format!("200 {n} metric families"),
        ),
        Err(e) => {
            let msg = format!("{INCONSISTENT}: {e}");
            let group = st.groups.entry(key.clone()).or_insert_with(|| Group {
                labels: key.iter().cloned().collect(),
                families: vec![],
                push_time_seconds: 0.0,
                push_failure_time_seconds: 0.0,
            });
            group.push_failure_time_seconds = now_seconds();
            (http_error(400, &msg), format!("400 {msg}"))
        }
    }
}

/// Applies a parsed push if the result stays consistent; the number of
/// families pushed, or why it was refused.
fn push(
    st: &mut Store,
    key: &[(String, String)],
    labels: Grouping,
    mut families: Vec<MetricFamily>,
    replace: bool,
) -> Result<usize, String> {
    if families
        .iter()
        .any(|f| f.metrics.iter().any(|m| m.timestamp_ms.is_some()))
    {
        return Err("pushed metrics must not have timestamps".into());
    }
    // The push-time gauges are the Pushgateway's own: pushed ones are dropped.
    families.retain(|f| f.name != PUSH_TIME && f.name != PUSH_FAILED);
    for f in &mut families {
        for m in &mut f.metrics {
            sanitize(m, &labels);
        }
    }
    let mut group = st.groups.get(key).cloned().unwrap_or(Group {
        labels: labels.clone(),
        families: vec![],
        push_time_seconds: 0.0,
        push_failure_time_seconds: 0.0,
    });
    if replace {
        group.families.clear();
    }
    let pushed = families.len();
    for f in families {
        group.families.retain(|g| g.name != f.name);
        group.families.push(f);
    }
    group.families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut candidate: Vec<&Group> = st
        .groups
        .iter()
        .filter(|(k, _)| k.as_slice() != key)
        .map(|(_, g)| g)
        .collect();
    candidate.push(&group);
    check_consistency(&candidate)?;
    group.push_time_seconds = now_seconds();
    st.groups.insert(key.to_vec(), group);
    Ok(pushed)
}

/// Grouping labels win over the body's; `instance` is added (empty) where
/// missing; labels are sorted.
fn sanitize(m: &mut Metric, grouping: &Grouping) {
    m.labels.retain(|(k, _)| !grouping.contains_key(k));
    m.labels
        .extend(grouping.iter().map(|(k, v)| (k.clone(), v.clone())));
    if m.label("instance").is_none() {
        m.labels.push(("instance".into(), String::new()));
    }
    m.labels.sort();
}

/// What gathering all groups together would complain about (client_golang's
/// checks as the Pushgateway runs them before accepting a push).
fn check_consistency(groups: &[&Group]) -> Result<(), String> {
    let mut kinds: BTreeMap<&str, MetricType> = BTreeMap::new();
    let mut seen: std::collections::BTreeSet<(&str, &[(String, String)])> = Default::default();
    for g in groups {
        for f in &g.families {
            let kind = *kinds.entry(f.name.as_str()).or_insert(f.kind);
            for m in &f.metrics {
                if kind != f.kind {
                    return Err(format!(
                        "collected metric {:?} {{ {}}} is not a {}",
                        f.name,
                        exposition::proto_text(m, f.kind),
                        exposition::type_name(kind)
                    ));
                }
                if !seen.insert((f.name.as_str(), &m.labels)) {
                    return Err(format!(
                        "collected metric {:?} {{ {}}} was collected before with the same name and label values",
                        f.name,
                        exposition::proto_text(m, f.kind)
                    ));
                }
            }
        }
    }
    for name in kinds.keys() {
        for suffix in ["_count", "_sum", "_bucket"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            let clash = match kinds.get(base) {
                Some(MetricType::Summary) => suffix != "_bucket",
                Some(MetricType::Histogram | MetricType::GaugeHistogram) => true,
                _ => false,
            };
            if clash {
                let what = if kinds[base] == MetricType::Summary {
                    "summary"
                } else {
                    "histogram"
                };
                return Err(format!(
                    "collected metric named {name:?} collides with previously collected {what} named {base:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Every family across the groups, merged by name, with the push-time gauges.
fn scrape(st: &Store) -> Vec<MetricFamily> {
    let mut merged: BTreeMap<String, MetricFamily> = BTreeMap::new();
    let gauge = |name: &str, help: &str| MetricFamily {
        name: name.into(),
        help: Some(help.into()),
        kind: MetricType::Gauge,
        metrics: vec![],
    };
    for g in st.groups.values() {
        for f in &g.families {
            merged
                .entry(f.name.clone())
                .or_insert_with(|| MetricFamily {
                    metrics: vec![],
                    ..f.clone()
                })
                .metrics
                .extend(f.metrics.iter().cloned());
        }
        for (name, help, v) in [
            (PUSH_TIME, PUSH_TIME_HELP, g.push_time_seconds),
            (PUSH_FAILED, PUSH_FAILED_HELP, g.push_failure_time_seconds),
        ] {
            let mut m = Metric {
                labels: vec![],
                value: Value::Simple(v),
                timestamp_ms: None,
            };
            sanitize(&mut m, &g.labels);
            merged
                .entry(name.into())
                .or_insert_with(|| gauge(name, help))
                .metrics
                .push(m);
        }
    }
    let mut out: Vec<MetricFamily> = merged.into_values().collect();
    for f in &mut out {
        f.metrics.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
    out
}

// ---------------------------------------------------------------------------
// The `pushgateway` subcommand.

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Latency added before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let (router, _, _) = build(Duration::from_millis(args.latency_ms), true);
    server::serve_forever(router, args.port, "pushgateway").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_client::{call, send};

    const TEXT: &str = "text/plain; version=0.0.4";

    fn grouping(pairs: &[(&str, &str)]) -> Grouping {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn grouping_keys_come_from_the_path_with_base64_values() {
        assert_eq!(
            grouping_of("/metrics/job/hpa-tier/cluster/prod").unwrap(),
            grouping(&[("job", "hpa-tier"), ("cluster", "prod")])
        );
        // "arn:aws:eks:us-east-2:1:cluster/prod" has a slash: only base64 carries it.
        assert_eq!(
            grouping_of("/metrics/job/hpa-tier/cluster@base64/YXJuOmF3czpla3M6dXMtZWFzdC0yOjE6Y2x1c3Rlci9wcm9k").unwrap()["cluster"],
            "arn:aws:eks:us-east-2:1:cluster/prod"
        );
        assert_eq!(
            grouping_of("/metrics/job@base64/aHBhLXRpZXI=/empty@base64/=").unwrap(),
            grouping(&[("job", "hpa-tier"), ("empty", "")])
        );
        let refused = |p: &str| grouping_of(p).unwrap_err();
        assert_eq!(
            refused("/metrics/job/x/cluster"),
            (
                400,
                "odd number of components in label string \"/cluster\"".into()
            )
        );
        assert_eq!(
            refused("/metrics/job/x/__c/1"),
            (400, "improper label name \"__c\"".into())
        );
        assert_eq!(
            refused("/metrics/job/x/a-b/1"),
            (400, "improper label name \"a-b\"".into())
        );
        assert_eq!(
            refused("/metrics/job/x/c@base64/%%%"),
            (
                400,
                "invalid base64 encoding for label c=\"%%%\": illegal base64 data at input byte 0"
                    .into()
            )
        );
        assert_eq!(
            refused("/metrics/job@base64/="),
            (400, "job name is required".into())
        );
    }

    #[test]
    fn pushes_replace_merge_and_delete_groups_over_http() {
        let pg = Pushgateway::spawn();
        let url = pg.url();
        let path = "/metrics/job/hpa-tier/cluster/prod";
        let key = [("job", "hpa-tier"), ("cluster", "prod")];
        let body = "# HELP hpa_tier_users People online.\n# TYPE hpa_tier_users gauge\nhpa_tier_users 742\n\
                    # TYPE hpa_tier_hpa_min_replicas gauge\n\
                    hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"web\",job=\"ignored\"} 3\n";
        let r = call(&url, "PUT", path, TEXT, body);
        assert_eq!((r.status, r.body.as_str()), (200, ""));
        let g = pg.group(&key).expect("the group");
        assert_eq!(g.value("hpa_tier_users", &[]), Some(742.0));
        assert_eq!(
            g.value(
                "hpa_tier_hpa_min_replicas",
                &[("hpa", "web"), ("job", "hpa-tier"), ("instance", "")]
            ),
            Some(3.0),
            "grouping labels win; instance is added"
        );
        assert!(g.push_time_seconds > 1.0e9 && g.push_failure_time_seconds == 0.0);
        assert_eq!(
            pg.body(&key).unwrap(),
            "# TYPE hpa_tier_hpa_min_replicas gauge\n\
             hpa_tier_hpa_min_replicas{cluster=\"prod\",hpa=\"web\",instance=\"\",job=\"hpa-tier\",namespace=\"prod\"} 3\n\
             # HELP hpa_tier_users People online.\n# TYPE hpa_tier_users gauge\n\
             hpa_tier_users{cluster=\"prod\",instance=\"\",job=\"hpa-tier\"} 742\n"
        );

        // POST replaces only the families it names; PUT the whole group.
        let r = call(&url, "POST", path, TEXT, "hpa_tier_capacity 1000\n");
        assert_eq!(r.status, 200);
        let g = pg.group(&key).unwrap();
        assert_eq!(
            (
                g.value("hpa_tier_users", &[]),
                g.value("hpa_tier_capacity", &[])
            ),
            (Some(742.0), Some(1000.0))
        );
        call(&url, "PUT", path, TEXT, "hpa_tier_capacity 600\n");
        let g = pg.group(&key).unwrap();
        assert_eq!(
            (
                g.value("hpa_tier_users", &[]),
                g.value("hpa_tier_capacity", &[])
            ),
            (None, Some(600.0))
        );

        // What Prometheus scrapes: every group, with the push-time gauges.
        call(
            &url,
            "PUT",
            "/metrics/job/hpa-tier/cluster/staging",
            TEXT,
            "hpa_tier_capacity 400\n",
        );
        let scraped = call(&url, "GET", "/metrics", TEXT, "");
        assert_eq!(
            scraped.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let fams = exposition::parse(scraped.body.as_bytes()).unwrap();
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "hpa_tier_capacity",
                "push_failure_time_seconds",
                "push_time_seconds"
            ]
        );
        let clusters: Vec<_> = fams[0]
            .metrics
            .iter()
            .map(|m| m.label("cluster").unwrap())
            .collect();
        assert_eq!(clusters, ["prod", "staging"]);
        assert_eq!(pg.scrape(), scraped.body);

        let r = call(&url, "DELETE", path, TEXT, "");
        assert_eq!(r.status, 202);
        assert_eq!(pg.group(&key), None);
        assert_eq!(pg.groups().len(), 1);
        let log: Vec<(String, Option<u16>)> = pg
            .requests()
            .iter()
            .map(|r| (r.method.clone(), r.status))
            .collect();
        assert_eq!(log.len(), 5);
        assert_eq!(log[4], ("DELETE".to_string(), Some(202)));
    }

    #[test]
    fn bad_pushes_get_400_with_the_real_reasons() {
        let pg = Pushgateway::spawn();
        let url = pg.url();
        let path = "/metrics/job/hpa-tier";
        let r = call(&url, "PUT", path, TEXT, "hpa_tier_users 742");
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                400,
                "text format parsing error in line 1: unexpected end of input stream\n"
            )
        );
        assert_eq!(pg.groups(), vec![], "a malformed push stores nothing");

        let r = call(
            &url,
            "PUT",
            path,
            TEXT,
            "hpa_tier_users 742 1700000000000\n",
        );
        assert_eq!(
            r.body,
            "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps\n"
        );
        let g = pg
            .group(&[("job", "hpa-tier")])
            .expect("a failed push is recorded");
        assert!(g.push_failure_time_seconds > 0.0 && g.families.is_empty());

        call(
            &url,
            "PUT",
            "/metrics/job/other",
            TEXT,
            "# TYPE shared counter\nshared 1\n",
        );
        let r = call(&url, "PUT", path, TEXT, "# TYPE shared gauge\nshared 2\n");
        assert_eq!(r.status, 400);
        assert!(r.body.contains("is not a COUNTER"), "{}", r.body);
        let r = call(&url, "PUT", path, TEXT, "a{x=\"1\"} 1\na{x=\"1\"} 2\n");
        assert!(
            r.body
                .contains("was collected before with the same name and label values"),
            "{}",
            r.body
        );
        assert_eq!(
            call(&url, "PUT", "/metrics/job/x/odd", TEXT, "a 1\n").status,
            400
        );
        assert_eq!(call(&url, "GET", path, TEXT, "").status, 405);
    }

    #[test]
    fn faults_and_latency_delay_or_replace_the_answer() {
        let pg = Pushgateway::spawn();
        let url = pg.url();
        let path = "/metrics/job/hpa-tier";
        pg.fail_next(Fault::Status(503));
        let r = call(&url, "PUT", path, TEXT, "a 1\n");
        assert_eq!(r.status, 503);
        assert_eq!(pg.groups(), vec![], "a faulted push stores nothing");
        pg.fail_next(Fault::Hang);
        let hung = send(&url, "PUT", path, &[], b"a 1\n", Duration::from_millis(300));
        assert!(hung.is_err(), "{hung:?}");
        assert_eq!(pg.requests().last().unwrap().status, None);
        pg.set_latency(Duration::from_millis(250));
        let t = std::time::Instant::now();
        assert_eq!(call(&url, "PUT", path, TEXT, "a 1\n").status, 200);
        assert!(t.elapsed() >= Duration::from_millis(250));
        pg.wipe();
        assert!(pg.groups().is_empty());
    }
}
