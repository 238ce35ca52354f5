//! The YAML configuration: parse (serde, unknown keys rejected, with line
//! numbers) into `RawConfig`, then `validate` into a `Config` that cannot be
//! invalid. `load` is the only function here that does I/O.
//!
//! Every key of the Python tool's `config.yaml` is accepted with its meaning;
//! the keys it did not have are optional, except `services`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::UsageError;
use hpa_tier_core::hpa::HpaRef;
use hpa_tier_core::tiers::{self, Replicas, TierSpec, TierTable};

pub const DEFAULT_PATH: &str = "config/config.yaml";
pub const DEFAULT_GA_API_URL: &str = "https://analyticsdata.googleapis.com";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/hpa-tier/runs.jsonl";

/// A value that must never reach output or logs. `Debug` and `Display` redact.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

// ---------------------------------------------------------------------------
// Raw: what the file says.

/// The file as written. Field docs are the config reference.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// GA4 property, `properties/123456789` or just `123456789`.
    #[serde(default)]
    pub property_id: String,
    /// Path of the Google service-account JSON key (`~` expanded).
    #[serde(default)]
    pub key_file_location: String,
    /// AWS region of the RDS cluster and the Redis cache.
    #[serde(default)]
    pub aws_region: String,
    /// Static AWS keys; empty: the default credential chain (IRSA, env, profile).
    #[serde(default)]
    pub aws_access_key_id: String,
    #[serde(default)]
    pub aws_secret_access_key: String,
    /// Aurora cluster id; empty: no RDS prerequisite check.
    #[serde(default)]
    pub rds_cluster_name: String,
    /// ElastiCache replication group or cache cluster id; empty: no check.
    #[serde(default)]
    pub redis_oss_name: String,
    /// EKS cluster name; appended to `cluster_context` when that ends in `/`.
    #[serde(default)]
    pub eks_cluster_name: String,
    /// kubeconfig context; empty: the kubeconfig's current context.
    #[serde(default)]
    pub cluster_context: String,
    /// kubeconfig path (`~` expanded); empty: KUBECONFIG or in-cluster.
    #[serde(default)]
    pub kube_file_path: String,
    /// Feishu bot webhook; empty: no notifications.
    #[serde(default)]
    pub feishu_webhook_url: String,
    /// MySQL host; empty: records go to `state_file`.
    #[serde(default)]
    pub mysql_host: String,
    #[serde(default = "default_mysql_port")]
    pub mysql_port: u16,
    #[serde(default)]
    pub mysql_user: String,
    #[serde(default)]
    pub mysql_pwd: String,
    #[serde(default)]
    pub mysql_db: String,
    /// The reference HPA (the one that tells the current tier).
    #[serde(default)]
    pub hpa_name: String,
    #[serde(default)]
    pub hpa_namespace: String,
    /// The reference service: its column in the tier table.
    #[serde(default)]
    pub hpa_service_name: String,
    /// Minutes between scheduled runs (staleness warnings in `status`).
    #[serde(default = "default_check_time")]
    pub check_time: u32,

    /// Tier-table column -> HPA.
    #[serde(default)]
    pub services: Option<Ordered<RawService>>,
    /// The tier table; omitted: the built-in table of the original tool.
    #[serde(default)]
    pub tiers: Option<Vec<RawTier>>,
    /// Where the number of online users comes from.
    #[serde(default)]
    pub users: Option<RawUsers>,
    #[serde(default)]
    pub ga_api_url: Option<String>,
    #[serde(default)]
    pub aws_endpoint_url: String,
    #[serde(default)]
    pub feishu_secret: String,
    #[serde(default)]
    pub headroom_percent: u32,
    #[serde(default = "default_scale_down")]
    pub scale_down_minutes: u32,
    #[serde(default = "default_notify_repeat")]
    pub notify_repeat_minutes: u32,
    #[serde(default)]
    pub state_file: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

fn default_mysql_port() -> u16 {
    3306
}
fn default_check_time() -> u32 {
    5
}
fn default_scale_down() -> u32 {
    30
}
fn default_notify_repeat() -> u32 {
    60
}
fn default_timeout() -> u32 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub hpa: String,
    pub namespace: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub capacity: u32,
    pub replicas: Ordered<RawReplicas>,
    #[serde(default)]
    pub redis_node_type: Option<String>,
    #[serde(default)]
    pub rds_instance_class: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawReplicas {
    Min(u32),
    Range(RawRange),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    pub min: u32,
    #[serde(default)]
    pub max: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUsers {
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub ga_minutes: Option<u32>,
    #[serde(default)]
    pub http: Option<RawHttpSource>,
    #[serde(default)]
    pub prometheus: Option<RawPrometheusSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpSource {
    pub url: String,
    #[serde(default)]
    pub json_pointer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheusSource {
    pub url: String,
    pub query: String,
}

/// A YAML mapping that keeps the file's order (the tier table's columns are
/// shown in the order the operator wrote them) and rejects duplicate keys.
#[derive(Debug)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if out.iter().any(|(e, _)| *e == k) {
                        return Err(serde::de::Error::custom(format!("`{k}` appears twice")));
                    }
                    let v = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------------------
// Validated.

#[derive(Clone, Debug)]
pub enum UsersSource {
    Ga(GaSettings),
    Http { url: String, json_pointer: String },
    Prometheus { url: String, query: String },
}

#[derive(Clone, Debug)]
pub struct GaSettings {
    /// Always `properties/<digits>`.
    pub property: String,
    pub key_file: PathBuf,
    pub minutes: Option<u32>,
    pub api_url: String,
}

#[derive(Clone, Debug)]
pub struct AwsSettings {
    pub region: String,
    /// `(access key id, secret)`; `None`: the default credential chain.
    pub static_keys: Option<(String, Secret)>,
    /// From `aws_endpoint_url`; `AWS_ENDPOINT_URL` is read by the adapter.
    pub endpoint_url: Option<String>,
    pub rds_cluster: Option<String>,
    pub redis: Option<String>,
}

#[derive(Clone, Debug)]
pub struct KubeSettings {
    /// `None`: standard inference (KUBECONFIG, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the kubeconfig's current context.
    pub context: Option<String>,
}

#[derive(Clone, Debug)]
pub struct MysqlSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
}

#[derive(Clone, Debug)]
pub struct FeishuSettings {
    /// The webhook URL carries the bot's token: a secret.
    pub webhook: Secret,
    pub secret: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    pub tiers: TierTable,
    /// Managed HPAs in the table's column order.
    pub services: Vec<HpaRef>,
    pub users: UsersSource,
    pub aws: AwsSettings,
    pub kube: KubeSettings,
    pub mysql: Option<MysqlSettings>,
    pub state_file: PathBuf,
    pub feishu: Option<FeishuSettings>,
    pub headroom_percent: u32,
    pub scale_down: Duration,
    pub notify_repeat: Duration,
    pub check_interval: Duration,
    pub timeout: Duration,
    /// The EKS cluster name, or the context, naming the run lock.
    pub cluster_id: String,
    /// What the decision reads (interim: duplicated from the fields above
    /// until the per-section validation lands).
    pub policy: hpa_tier_core::policy::Policy,
}

impl Config {
    pub fn reference(&self) -> &HpaRef {
        let r = self.tiers.reference();
        self.services
            .iter()
            .find(|s| s.service == r)
            .expect("validated")
    }

    /// The GA key file must be readable before a run that reads GA starts.
    /// (`tiers` does not need it, so this is not part of `validate`.)
    pub fn check_key_file(&self) -> Result<(), UsageError> {
        if let UsersSource::Ga(ga) = &self.users {
            std::fs::File::open(&ga.key_file).map_err(|e| {
                UsageError::new(format!(
                    "key_file_location: cannot read the Google service-account key {}: {e}",
                    ga.key_file.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// Reads and validates the config at `path`. A missing file says which path
/// was tried and where the example lives.
pub fn load(path: &Path) -> Result<Config, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (pass --config PATH or set HPA_TIER_CONFIG; config/example.yaml is a commented starting point)"
        } else {
            ""
        };
        UsageError::new(format!("cannot read config file {}: {e}{hint}", path.display()))
    })?;
    let env = |name: &str| std::env::var(name).ok();
    parse(&text, path, &env)
}

/// Parses and validates config text. `env` looks up `${VAR}` references and
/// `HOME` for `~`, so tests need not touch the process environment.
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, UsageError> {
    let at = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
    let raw: RawConfig = match serde_yaml::from_str::<Option<RawConfig>>(text) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err(at("the file is empty; `services` is required".into())),
        Err(e) => return Err(at(describe_yaml_error(&e))),
    };
    validate(raw, text, path, env).map_err(at)
}

fn describe_yaml_error(e: &serde_yaml::Error) -> String {
    let mut msg = e.to_string();
    // serde_yaml appends " at line L column C"; keep it, and suggest the
    // key that was probably meant for a typo.
    if let Some(start) = msg.find("unknown field `") {
        let rest = &msg[start + 15..];
        if let Some(end) = rest.find('`') {
            let typo = rest[..end].to_string();
            if let Some(expected) = msg.find("expected one of ").map(|i| &msg[i..]) {
                let candidates: Vec<String> = expected
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect();
                if let Some(best) = candidates
                    .iter()
                    .min_by_key(|c| edit_distance(c, &typo))
                    .filter(|c| edit_distance(c, &typo) <= 3)
                {
                    msg = format!("{msg} (did you mean `{best}`?)");
                }
            }
        }
    }
    msg
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Line of a top-level key in the text, for errors the YAML parser cannot place.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with(':'))
        .map(|i| i + 1)
}

fn validate(
    raw: RawConfig,
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, String> {
    let key_at = |key: &str| match line_of(text, key) {
        Some(l) => format!("{key} (line {l})"),
        None => key.to_string(),
    };
    let expand = |key: &str, value: &str| {
        expand_vars(value, env).map_err(|e| format!("{}: {e}", key_at(key)))
    };
    let home = |key: &str, value: String| {
        expand_home(&value, env).map_err(|e| format!("{}: {e}", key_at(key)))
    };

    // services, in file order.
    let raw_services = match raw.services {
        Some(s) if !s.0.is_empty() => s.0,
        Some(_) => {
            return Err(format!(
                "{}: is empty; name at least the reference service's HPA",
                key_at("services")
            ));
        }
        None => {
            return Err(
                "services: missing. List each tier-table column and its HPA, e.g.\n  services:\n    istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }"
                    .into(),
            );
        }
    };
    let mut services = Vec::with_capacity(raw_services.len());
    for (service, s) in raw_services {
        for (what, v) in [("hpa", &s.hpa), ("namespace", &s.namespace)] {
            if !is_dns_name(v) {
                return Err(format!(
                    "services.{service}.{what}: `{v}` is not a valid Kubernetes name (lowercase letters, digits, '-', '.')"
                ));
            }
        }
        services.push(HpaRef {
            service,
            namespace: s.namespace,
            name: s.hpa,
        });
    }

    // tiers: explicit, or the built-in table restricted to the managed services.
    let specs = match raw.tiers {
        Some(tiers) => tiers
            .into_iter()
            .map(|t| TierSpec {
                capacity: t.capacity,
                replicas: t
                    .replicas
                    .0
                    .into_iter()
                    .map(|(s, r)| {
                        let r = match r {
                            RawReplicas::Min(min) => Replicas { min, max: None },
                            RawReplicas::Range(RawRange { min, max }) => Replicas { min, max },
                        };
                        (s, r)
                    })
                    .collect(),
                rds_instance_class: t.rds_instance_class,
                redis_node_type: t.redis_node_type,
            })
            .collect(),
        None => {
            fn column(service: &str) -> &str {
                tiers::BUILT_IN_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == service)
                    .map(|(_, col)| *col)
                    .unwrap_or(service)
            }
            for s in &services {
                if !tiers::BUILT_IN_SERVICES.contains(&column(&s.service)) {
                    return Err(format!(
                        "services.{}: the built-in tier table has no column `{}` (it has {}); add a `tiers` table",
                        s.service,
                        s.service,
                        tiers::BUILT_IN_SERVICES.join(", ")
                    ));
                }
            }
            tiers::built_in()
                .into_iter()
                .map(|mut t| {
                    t.replicas = services
                        .iter()
                        .filter_map(|s| {
                            t.replicas
                                .iter()
                                .find(|(col, _)| col == column(&s.service))
                                .map(|(_, r)| (s.service.clone(), *r))
                        })
                        .collect();
                    t
                })
                .collect()
        }
    };

    // The reference service: named, or found from hpa_name/hpa_namespace.
    let reference = if !raw.hpa_service_name.is_empty() {
        let Some(r) = services.iter().find(|s| s.service == raw.hpa_service_name) else {
            return Err(format!(
                "{}: `{}` is not in `services` ({})",
                key_at("hpa_service_name"),
                raw.hpa_service_name,
                services
                    .iter()
                    .map(|s| s.service.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        for (key, given, actual) in [
            ("hpa_name", &raw.hpa_name, &r.name),
            ("hpa_namespace", &raw.hpa_namespace, &r.namespace),
        ] {
            if !given.is_empty() && given != actual {
                return Err(format!(
                    "{}: `{given}`, but services.{}.{} is `{actual}`; the reference HPA must be the HPA of hpa_service_name",
                    key_at(key),
                    r.service,
                    if key == "hpa_name" {
                        "hpa"
                    } else {
                        "namespace"
                    },
                ));
            }
        }
        r.service.clone()
    } else if !raw.hpa_name.is_empty() {
        let found: Vec<&HpaRef> = services
            .iter()
            .filter(|s| {
                s.name == raw.hpa_name
                    && (raw.hpa_namespace.is_empty() || s.namespace == raw.hpa_namespace)
            })
            .collect();
        match found.as_slice() {
            [one] => one.service.clone(),
            _ => {
                return Err(format!(
                    "{}: set hpa_service_name to the service (tier-table column) whose HPA is `{}`",
                    key_at("hpa_service_name"),
                    raw.hpa_name
                ));
            }
        }
    } else {
        return Err("hpa_service_name: missing; name the service (tier-table column) whose HPA tells the current tier".into());
    };

    let service_names: Vec<String> = services.iter().map(|s| s.service.clone()).collect();
    let tiers = TierTable::new(specs, &service_names, &reference).map_err(|e| {
        // Point at the tier's line when the message names a capacity.
        match e
            .split_once("(capacity ")
            .and_then(|(_, r)| r.split_once(')'))
        {
            Some((cap, _)) => match text.lines().position(|l| {
                let l = l.trim_start().trim_start_matches("- ").trim_start();
                l.strip_prefix("capacity:").map(str::trim) == Some(cap)
            }) {
                Some(i) => format!("{e} (line {})", i + 1),
                None => e,
            },
            None => e,
        }
    })?;

    // Metric source.
    let raw_users = raw.users.unwrap_or_default();
    let source = raw_users.source.as_deref().unwrap_or("ga");
    let users = match source {
        "ga" => {
            let property = expand("property_id", &raw.property_id)?;
            let digits = property.trim().trim_start_matches("properties/");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{}: `{property}` is not a GA4 property id (`properties/123456789` or `123456789`)",
                    key_at("property_id")
                ));
            }
            let key_file = expand("key_file_location", &raw.key_file_location)?;
            if key_file.is_empty() {
                return Err(format!(
                    "{}: missing; the GA source needs the service-account JSON key",
                    key_at("key_file_location")
                ));
            }
            if let Some(m) = raw_users.ga_minutes
                && !(1..=60).contains(&m)
            {
                return Err(format!(
                    "users.ga_minutes: {m} is out of range (GA allows 1..30, 60 on GA4 360)"
                ));
            }
            let api_url = expand(
                "ga_api_url",
                raw.ga_api_url.as_deref().unwrap_or(DEFAULT_GA_API_URL),
            )?;
            check_url("ga_api_url", &api_url)?;
            UsersSource::Ga(GaSettings {
                property: format!("properties/{digits}"),
                key_file: PathBuf::from(home("key_file_location", key_file)?),
                minutes: raw_users.ga_minutes,
                api_url: api_url.trim_end_matches('/').to_string(),
            })
        }
        "http" => {
            let Some(h) = raw_users.http else {
                return Err("users.http: missing; `source: http` needs `http: { url: ..., json_pointer: ... }`".into());
            };
            let url = expand("users.http.url", &h.url)?;
            check_url("users.http.url", &url)?;
            let json_pointer = h.json_pointer.unwrap_or_else(|| "/online_users".into());
            if !(json_pointer.is_empty() || json_pointer.starts_with('/')) {
                return Err(format!(
                    "users.http.json_pointer: `{json_pointer}` must be empty or start with '/' (RFC 6901)"
                ));
            }
            UsersSource::Http { url, json_pointer }
        }
        "prometheus" => {
            let Some(p) = raw_users.prometheus else {
                return Err("users.prometheus: missing; `source: prometheus` needs `prometheus: { url: ..., query: ... }`".into());
            };
            let url = expand("users.prometheus.url", &p.url)?;
            check_url("users.prometheus.url", &url)?;
            if p.query.trim().is_empty() {
                return Err("users.prometheus.query: empty".into());
            }
            UsersSource::Prometheus {
                url: url.trim_end_matches('/').to_string(),
                query: p.query,
            }
        }
        other => {
            return Err(format!(
                "users.source: `{other}` is not one of ga, http, prometheus"
            ));
        }
    };

    // AWS.
    let access_key = expand("aws_access_key_id", &raw.aws_access_key_id)?;
    let secret_key = expand("aws_secret_access_key", &raw.aws_secret_access_key)?;
    let static_keys = match (access_key.is_empty(), secret_key.is_empty()) {
        (true, true) => None,
        (false, false) => Some((access_key, Secret::new(secret_key))),
        _ => {
            return Err(format!(
                "{}: aws_access_key_id and aws_secret_access_key go together; set both, or neither to use the default credential chain",
                key_at(if access_key.is_empty() {
                    "aws_access_key_id"
                } else {
                    "aws_secret_access_key"
                })
            ));
        }
    };
    let endpoint_url = non_empty(expand("aws_endpoint_url", &raw.aws_endpoint_url)?);
    if let Some(u) = &endpoint_url {
        check_url("aws_endpoint_url", u)?;
    }
    let rds_cluster = non_empty(expand("rds_cluster_name", &raw.rds_cluster_name)?);
    let redis = non_empty(expand("redis_oss_name", &raw.redis_oss_name)?);
    let region = expand("aws_region", &raw.aws_region)?;
    if region.is_empty() && (rds_cluster.is_some() || redis.is_some()) {
        return Err(format!(
            "{}: missing; needed to check rds_cluster_name / redis_oss_name",
            key_at("aws_region")
        ));
    }

    // Kubernetes.
    let eks = expand("eks_cluster_name", &raw.eks_cluster_name)?;
    let ctx = expand("cluster_context", &raw.cluster_context)?;
    let context = if ctx.is_empty() {
        None
    } else if ctx.ends_with('/') {
        if eks.is_empty() {
            return Err(format!(
                "{}: ends in '/', so eks_cluster_name is appended to it, but eks_cluster_name is empty",
                key_at("cluster_context")
            ));
        }
        Some(format!("{ctx}{eks}"))
    } else {
        Some(ctx)
    };
    let kube_file = expand("kube_file_path", &raw.kube_file_path)?;
    let kubeconfig = if kube_file.is_empty() {
        None
    } else {
        Some(PathBuf::from(home("kube_file_path", kube_file)?))
    };
    let cluster_id = if !eks.is_empty() {
        eks
    } else {
        context.clone().unwrap_or_else(|| "default".into())
    };

    // Store.
    let mysql_host = expand("mysql_host", &raw.mysql_host)?;
    let mysql = if mysql_host.is_empty() {
        None
    } else {
        let user = expand("mysql_user", &raw.mysql_user)?;
        let database = expand("mysql_db", &raw.mysql_db)?;
        if user.is_empty() {
            return Err(format!(
                "{}: missing while mysql_host is set",
                key_at("mysql_user")
            ));
        }
        if database.is_empty() {
            return Err(format!(
                "{}: missing while mysql_host is set",
                key_at("mysql_db")
            ));
        }
        if !database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            return Err(format!(
                "{}: `{database}` is not a plain database name",
                key_at("mysql_db")
            ));
        }
        Some(MysqlSettings {
            host: mysql_host,
            port: raw.mysql_port,
            user,
            password: Secret::new(expand("mysql_pwd", &raw.mysql_pwd)?),
            database,
        })
    };
    let state_file = PathBuf::from(home(
        "state_file",
        expand(
            "state_file",
            raw.state_file.as_deref().unwrap_or(DEFAULT_STATE_FILE),
        )?,
    )?);

    // Feishu.
    let webhook = expand("feishu_webhook_url", &raw.feishu_webhook_url)?;
    let feishu = if webhook.is_empty() {
        None
    } else {
        // Name the key, not the URL: its path is the bot's token.
        check_url("feishu_webhook_url", &webhook)
            .map_err(|_| format!("{}: not an http(s) URL", key_at("feishu_webhook_url")))?;
        let secret = expand("feishu_secret", &raw.feishu_secret)?;
        Some(FeishuSettings {
            webhook: Secret::new(webhook),
            secret: (!secret.is_empty()).then(|| Secret::new(secret)),
        })
    };

    for (key, v, lo) in [
        ("check_time", raw.check_time, 1),
        ("timeout_seconds", raw.timeout_seconds, 1),
    ] {
        if v < lo {
            return Err(format!(
                "{}: must be at least {lo} (minutes/seconds), got {v}",
                key_at(key)
            ));
        }
    }
    if raw.headroom_percent > 1000 {
        return Err(format!(
            "{}: {}% is not a sane headroom",
            key_at("headroom_percent"),
            raw.headroom_percent
        ));
    }

    Ok(Config {
        path: path.to_path_buf(),
        tiers: tiers.clone(),
        services: services.clone(),
        users,
        aws: AwsSettings {
            region,
            static_keys,
            endpoint_url,
            rds_cluster,
            redis,
        },
        kube: KubeSettings {
            kubeconfig,
            context,
        },
        mysql,
        state_file,
        feishu,
        headroom_percent: raw.headroom_percent,
        scale_down: Duration::from_secs(u64::from(raw.scale_down_minutes) * 60),
        notify_repeat: Duration::from_secs(u64::from(raw.notify_repeat_minutes) * 60),
        check_interval: Duration::from_secs(u64::from(raw.check_time) * 60),
        timeout: Duration::from_secs(u64::from(raw.timeout_seconds)),
        policy: hpa_tier_core::policy::Policy {
            tiers,
            services,
            headroom_percent: raw.headroom_percent,
            scale_down: jiff::SignedDuration::from_mins(i64::from(raw.scale_down_minutes)),
            notify_repeat: jiff::SignedDuration::from_mins(i64::from(raw.notify_repeat_minutes)),
            check_interval: jiff::SignedDuration::from_mins(i64::from(raw.check_time)),
            cluster: cluster_id.clone(),
        },
        cluster_id,
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_string())
}

/// `${VAR}` from the environment. An unset variable is an error that names it.
fn expand_vars(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated `${` (write `${NAME}`)".into());
        };
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`${{{name}}}` is not a valid variable reference"));
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_home(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    match value.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match env("HOME") {
            Some(home) => Ok(format!("{home}{rest}")),
            None => Err("starts with `~` but HOME is not set".into()),
        },
        _ => Ok(value.to_string()),
    }
}

/// An absolute http(s) URL with a host.
pub fn check_url(key: &str, url: &str) -> Result<(), String> {
    let ok = url.parse::<http::Uri>().ok().filter(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    });
    match ok {
        Some(_) => Ok(()),
        None => Err(format!("{key}: `{url}` is not an http(s) URL")),
    }
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

/// Parses a hold duration: a number followed by `m`, `h` or `d` (`90m`, `2h`, `1d`).
pub fn parse_duration(s: &str) -> Result<Duration, UsageError> {
    let bad = || UsageError::new(format!("`{s}` is not a duration; write e.g. 90m, 2h or 1d"));
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
property_id: "properties/123456789"
key_file_location: "/secrets/ga-key.json"
hpa_service_name: istio-ingress
services:
  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }
  web: { hpa: web, namespace: prod }
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/ops".into()),
            "MYSQL_PWD" => Some("s3cret".into()),
            _ => None,
        }
    }

    fn ok(text: &str) -> Config {
        parse(text, Path::new("c.yaml"), &env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        parse(text, Path::new("c.yaml"), &env).unwrap_err().0
    }

    #[test]
    fn the_original_tools_keys_are_accepted_once_services_is_added() {
        let original = r#"
property_id: "properties/xxx1"
key_file_location: "/project/analytics-read-user.json"
aws_region: "us-east-2"
aws_access_key_id: ""
aws_secret_access_key: ""
rds_cluster_name: ""
redis_oss_name: ""
eks_cluster_name: "prod"
cluster_context: "arn:aws:eks:us-east-2:111:cluster/"
kube_file_path: "~/.kube/config"
feishu_webhook_url: "https://open.feishu.cn/open-apis/bot/v2/hook/xxxxx"
mysql_host: ""
mysql_port: 3306
mysql_user: ""
mysql_pwd: ""
mysql_db: ""
hpa_name: "ingressgateway-hpa"
hpa_namespace: "istio-system"
hpa_service_name: "istio-ingressgateway"
check_time: 5
services:
  istio-ingressgateway: { hpa: ingressgateway-hpa, namespace: istio-system }
"#
        .replace("xxx1", "1234");
        let c = ok(&original);
        assert_eq!(
            c.kube.context.as_deref(),
            Some("arn:aws:eks:us-east-2:111:cluster/prod")
        );
        assert_eq!(
            c.kube.kubeconfig.as_deref(),
            Some(Path::new("/home/ops/.kube/config"))
        );
        assert!(c.mysql.is_none());
        assert_eq!(c.check_interval, Duration::from_secs(300));
        // The old name of the reference column maps onto the built-in table.
        assert_eq!(c.tiers.reference(), "istio-ingressgateway");
        let mins: Vec<u32> = c
            .tiers
            .tiers()
            .iter()
            .map(|t| c.tiers.reference_min(t))
            .collect();
        assert_eq!(mins, vec![2, 4, 6, 8, 10, 12]);
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let c = ok(MINIMAL);
        assert_eq!(c.headroom_percent, 0);
        assert_eq!(c.scale_down, Duration::from_secs(30 * 60));
        assert_eq!(c.notify_repeat, Duration::from_secs(60 * 60));
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.state_file, PathBuf::from(DEFAULT_STATE_FILE));
        assert!(c.feishu.is_none() && c.kube.kubeconfig.is_none() && c.kube.context.is_none());
        match &c.users {
            UsersSource::Ga(ga) => {
                assert_eq!(ga.property, "properties/123456789");
                assert_eq!(ga.api_url, DEFAULT_GA_API_URL);
                assert_eq!(ga.minutes, None);
            }
            other => panic!("{other:?}"),
        }
        // Built-in table restricted to the two managed services.
        assert_eq!(c.tiers.services(), ["istio-ingress", "web"]);
        assert_eq!(
            c.tiers.get(3000).unwrap().replicas_of("web").unwrap().min,
            9
        );
    }

    #[test]
    fn a_bare_property_number_is_accepted() {
        let c = ok(&MINIMAL.replace("properties/123456789", "987"));
        let UsersSource::Ga(ga) = c.users else {
            panic!()
        };
        assert_eq!(ga.property, "properties/987");
    }

    #[test]
    fn env_vars_are_expanded_and_secrets_redacted() {
        let c = ok(&format!(
            "{MINIMAL}mysql_host: db\nmysql_user: u\nmysql_db: hpa\nmysql_pwd: \"${{MYSQL_PWD}}\"\n"
        ));
        let m = c.mysql.unwrap();
        assert_eq!(m.password.expose(), "s3cret");
        assert!(!format!("{m:?}").contains("s3cret"));
    }

    #[test]
    fn an_unset_env_var_is_named() {
        let e = err(&format!(
            "{MINIMAL}mysql_host: db\nmysql_user: u\nmysql_db: x\nmysql_pwd: \"${{NOPE}}\"\n"
        ));
        assert!(
            e.contains("mysql_pwd") && e.contains("NOPE is not set"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line_and_a_suggestion() {
        let e = err(&format!("{MINIMAL}scale_down_minuets: 10\n"));
        assert!(e.contains("unknown field `scale_down_minuets`"), "{e}");
        assert!(e.contains("line 8"), "{e}");
        assert!(e.contains("did you mean `scale_down_minutes`"), "{e}");
    }

    #[test]
    fn a_nested_unknown_key_is_named() {
        let e = err(&MINIMAL.replace(
            "{ hpa: web, namespace: prod }",
            "{ hpa: web, namspace: prod }",
        ));
        assert!(e.contains("namspace"), "{e}");
    }

    #[test]
    fn empty_services_is_rejected() {
        let e =
            err("hpa_service_name: web\nproperty_id: '1'\nkey_file_location: k\nservices: {}\n");
        assert!(e.contains("services") && e.contains("empty"), "{e}");
    }

    #[test]
    fn missing_services_is_rejected() {
        let e = err("hpa_service_name: web\n");
        assert!(e.contains("services: missing"), "{e}");
    }

    #[test]
    fn reference_hpa_must_be_the_hpa_of_the_reference_service() {
        let e = err(&format!("{MINIMAL}hpa_name: web\n"));
        assert!(
            e.contains("hpa_name") && e.contains("services.istio-ingress.hpa"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}hpa_namespace: prod\n"));
        assert!(e.contains("hpa_namespace"), "{e}");
        let e = err(&MINIMAL.replace("hpa_service_name: istio-ingress", "hpa_service_name: nginx"));
        assert!(e.contains("`nginx` is not in `services`"), "{e}");
    }

    #[test]
    fn the_reference_service_can_be_found_from_hpa_name() {
        let c = ok(&MINIMAL.replace(
            "hpa_service_name: istio-ingress",
            "hpa_name: ingressgateway-hpa",
        ));
        assert_eq!(c.reference().service, "istio-ingress");
    }

    const TIERS: &str = r#"
tiers:
  - capacity: 100
    replicas: { istio-ingress: 2, web: { min: 2, max: 20 } }
    rds_instance_class: db.r7g.large
  - capacity: 200
    replicas: { istio-ingress: 3, web: 4 }
"#;

    #[test]
    fn explicit_tiers_with_ranges_and_inheritance() {
        let c = ok(&format!("{MINIMAL}{TIERS}"));
        let t = c.tiers.get(100).unwrap();
        assert_eq!(
            t.replicas_of("web").unwrap(),
            Replicas {
                min: 2,
                max: Some(20)
            }
        );
        let t2 = c.tiers.get(200).unwrap();
        assert_eq!(
            t2.rds_instance_class.as_ref().unwrap().inherited_from,
            Some(100)
        );
        assert!(t2.redis_node_type.is_none());
    }

    #[test]
    fn duplicate_capacity_names_the_tier_and_line() {
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("capacity: 200", "capacity: 100")
        ));
        assert!(
            e.contains("capacity 100 appears twice") && e.contains("line"),
            "{e}"
        );
    }

    #[test]
    fn unsorted_capacities_are_rejected() {
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("capacity: 200", "capacity: 50")
        ));
        assert!(e.contains("increasing order"), "{e}");
    }

    #[test]
    fn a_tier_missing_a_service_is_rejected() {
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("{ istio-ingress: 3, web: 4 }", "{ istio-ingress: 3 }")
        ));
        assert!(e.contains("no replicas for service `web`"), "{e}");
    }

    #[test]
    fn a_tier_naming_an_unknown_service_is_rejected() {
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("web: 4 }", "web: 4, api: 2 }")
        ));
        assert!(e.contains("`api`"), "{e}");
    }

    #[test]
    fn zero_replicas_are_rejected() {
        let e = err(&format!("{MINIMAL}{}", TIERS.replace("web: 4", "web: 0")));
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn min_above_max_is_rejected() {
        let e = err(&format!("{MINIMAL}{}", TIERS.replace("max: 20", "max: 1")));
        assert!(e.contains("min 2 greater than max 1"), "{e}");
    }

    #[test]
    fn reference_not_strictly_increasing_is_rejected() {
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("istio-ingress: 3", "istio-ingress: 2")
        ));
        assert!(e.contains("strictly increasing"), "{e}");
    }

    #[test]
    fn a_duplicate_service_key_is_rejected() {
        let e = err(&MINIMAL.replace(
            "  web: { hpa: web, namespace: prod }\n",
            "  web: { hpa: web, namespace: prod }\n  web: { hpa: w2, namespace: prod }\n",
        ));
        assert!(e.contains("`web` appears twice"), "{e}");
    }

    #[test]
    fn a_service_missing_from_the_built_in_table_needs_tiers() {
        let e = err(&format!(
            "{MINIMAL}  nginx: {{ hpa: nginx, namespace: prod }}\n"
        ));
        assert!(
            e.contains("no column `nginx`") && e.contains("tiers"),
            "{e}"
        );
    }

    #[test]
    fn malformed_urls_are_rejected() {
        let e = err(&format!("{MINIMAL}ga_api_url: 'not a url'\n"));
        assert!(
            e.contains("ga_api_url") && e.contains("not an http(s) URL"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}aws_endpoint_url: 'ftp://x'\n"));
        assert!(e.contains("aws_endpoint_url"), "{e}");
        let e = err(&format!(
            "{MINIMAL}feishu_webhook_url: 'hook/secret-token'\n"
        ));
        assert!(
            e.contains("feishu_webhook_url") && !e.contains("secret-token"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}users: {{ source: http, http: {{ url: 'localhost:5000' }} }}\n"
        ));
        assert!(e.contains("users.http.url"), "{e}");
    }

    #[test]
    fn the_http_and_prometheus_sources_are_configured() {
        let c = ok(&format!(
            "{MINIMAL}users: {{ source: http, http: {{ url: 'http://127.0.0.1:5000/api/online-users' }} }}\n"
        ));
        assert!(
            matches!(c.users, UsersSource::Http { ref json_pointer, .. } if json_pointer == "/online_users")
        );
        let c = ok(&format!(
            "{MINIMAL}users: {{ source: prometheus, prometheus: {{ url: 'http://p:9090/', query: 'sum(up)' }} }}\n"
        ));
        assert!(
            matches!(c.users, UsersSource::Prometheus { ref url, .. } if url == "http://p:9090")
        );
        let e = err(&format!("{MINIMAL}users: {{ source: datadog }}\n"));
        assert!(e.contains("users.source") && e.contains("datadog"), "{e}");
    }

    #[test]
    fn half_a_pair_of_aws_keys_is_rejected() {
        let e = err(&format!("{MINIMAL}aws_access_key_id: AKIA\n"));
        assert!(e.contains("go together"), "{e}");
    }

    #[test]
    fn a_context_ending_in_slash_needs_the_cluster_name() {
        let e = err(&format!(
            "{MINIMAL}cluster_context: 'arn:aws:eks:x:1:cluster/'\n"
        ));
        assert!(e.contains("eks_cluster_name is empty"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let e = err(&format!("{MINIMAL}mysql_port: lots\n"));
        assert!(
            e.contains("mysql_port") || e.contains("invalid type"),
            "{e}"
        );
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn unreadable_key_file_is_a_usage_error() {
        let c = ok(MINIMAL);
        let e = c.check_key_file().unwrap_err().0;
        assert!(
            e.contains("key_file_location") && e.contains("/secrets/ga-key.json"),
            "{e}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        for bad in ["", "2", "h", "2x", "0h", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_example_config_is_valid_and_has_the_full_table() {
        let text = include_str!("../config/example.yaml");
        let c = parse(text, Path::new("config/example.yaml"), &|k| match k {
            "HOME" => Some("/root".into()),
            _ => Some("x".into()),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tiers.services().len(), 6);
        assert_eq!(
            c.tiers.capacities(),
            vec![600, 1000, 2000, 3000, 4000, 5000]
        );
    }
}
