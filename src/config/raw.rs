//! What the file says: the YAML as serde reads it (unknown keys rejected,
//! duplicate keys rejected, the file's order kept), and serde's errors
//! described with a suggestion for a misspelt key. Nothing here judges a
//! value; the section validators do.

use serde::Deserialize;

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
    /// TLS to MySQL, as the MySQL client's `--ssl-mode`: `disabled` (never),
    /// `preferred` (the default: TLS when the server offers it, else plain;
    /// the certificate is not checked), `required` (TLS or fail, certificate
    /// not checked), `verify_ca` (the certificate must chain to
    /// `mysql_ssl_ca`, any host name), `verify_identity` (as `verify_ca`, and
    /// it must be for `mysql_host`).
    #[serde(default)]
    pub mysql_ssl_mode: Option<String>,
    /// PEM bundle of the CAs that `verify_ca`/`verify_identity` trust (e.g.
    /// the RDS global bundle); empty: the bundled public (Mozilla) roots.
    #[serde(default)]
    pub mysql_ssl_ca: Option<String>,
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
    /// `NAMESPACE/NAME` of a ConfigMap that keeps the records MySQL could
    /// not take (instead of `state_file`), so that they outlive a pod.
    #[serde(default)]
    pub spool_configmap: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,

    /// IANA time zone of `schedules` (and of local times in `simulate`
    /// traces); default UTC. The zone database is built into the binary.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Windows of known demand: each a floor while active.
    #[serde(default)]
    pub schedules: Vec<hpa_tier_core::schedule::ScheduleSpec>,
    /// Local dates (`YYYY-MM-DD`) on which no cron window starts.
    #[serde(default)]
    pub skip_dates: Vec<String>,
    /// Warn this many hours ahead when a window's tier is not allowed.
    #[serde(default)]
    pub preflight_hours: Option<u32>,
    /// Learning the weekly pattern from the run history.
    #[serde(default)]
    pub forecast: Option<RawForecast>,

    /// A Prometheus Pushgateway's base URL (`http://pushgateway:9091`):
    /// every `check` and `upgrade` PUTs its gauges to
    /// `/metrics/job/hpa-tier/cluster/<cluster>`. Empty: no push.
    #[serde(default)]
    pub metrics_pushgateway: String,
    /// A file for node_exporter's textfile collector, absolute and ending in
    /// `.prom` (`/var/lib/node_exporter/textfile/hpa-tier.prom`): the same
    /// gauges, rewritten atomically after every run. Empty: none.
    #[serde(default)]
    pub metrics_textfile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForecast {
    /// `off` (default), `advise` (computed and recorded), `scale` (a floor).
    #[serde(default)]
    pub mode: Option<String>,
    /// Past weeks read at the same time of week, 1..=8 (default 3).
    #[serde(default)]
    pub lookback_weeks: Option<u32>,
    /// How far ahead the floor looks (default 20m: pod start + check_time).
    #[serde(default)]
    pub horizon: Option<String>,
    /// Added to the predicted users, percent (default 10).
    #[serde(default)]
    pub margin_percent: Option<u32>,
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

/// `web: 2` or `web: { min: 2, max: 20 }`. Not `#[serde(untagged)]`: that
/// buffers the value whole before trying each form (an alias could make it
/// huge) and says only "did not match any variant" when neither fits.
#[derive(Debug)]
pub enum RawReplicas {
    Min(u32),
    Range(RawRange),
}

impl<'de> Deserialize<'de> for RawReplicas {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Unexpected, Visitor, value::MapAccessDeserializer};
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = RawReplicas;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number of replicas, or { min: N, max: M }")
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<RawReplicas, E> {
                u32::try_from(v)
                    .map(RawReplicas::Min)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<RawReplicas, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawReplicas, A::Error> {
                RawRange::deserialize(MapAccessDeserializer::new(map)).map(RawReplicas::Range)
            }
        }
        d.deserialize_any(Visit)
    }
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

/// serde_yaml's message (it ends " at line L column C"), with the key that
/// was probably meant when a key is unknown.
pub(super) fn describe_yaml_error(e: &serde_yaml::Error) -> String {
    let mut msg = e.to_string();
    if let Some(start) = msg.find("unknown field `") {
        let rest = &msg[start + 15..];
        // No key is longer than this: a longer typo is not worth the
        // quadratic edit distance (a pasted blob would take seconds).
        if let Some(end) = rest.find('`').filter(|end| *end <= 64) {
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

/// The most text a config file may have: a real one is a few kilobytes.
pub const MAX_BYTES: usize = 1024 * 1024;
/// The most values (scalars, lists and mappings) a config may hold once its
/// YAML aliases are expanded: a large real one has a few hundred.
pub const MAX_VALUES: usize = 20_000;

/// Refuses a config too big to be one before serde builds anything from it:
/// more than [`MAX_BYTES`] of text, or aliases (`*name`) that expand it past
/// [`MAX_VALUES`] values or [`MAX_BYTES`] of scalars — the "billion laughs".
/// serde_yaml bounds nesting (128 levels) and alias jumps (100 per event),
/// but within those an alias of a big mapping reused in a list still
/// builds millions of values. Anchors and aliases within bounds are fine.
pub(super) fn check_size(text: &str) -> Result<(), String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "the file has {} bytes, more than the {MAX_BYTES} a config may have",
            text.len()
        ));
    }
    let budget = Budget::default();
    serde::de::DeserializeSeed::deserialize(
        Count(&budget),
        serde_yaml::Deserializer::from_str(text),
    )
    .map_err(|e| describe_yaml_error(&e))
}

#[derive(Default)]
struct Budget {
    values: std::cell::Cell<usize>,
    bytes: std::cell::Cell<usize>,
}

/// Walks any YAML value, aliases expanded, counting what it holds and
/// stopping at the first value past the budget. Builds nothing.
#[derive(Clone, Copy)]
struct Count<'a>(&'a Budget);

impl Count<'_> {
    fn take<E: serde::de::Error>(self, bytes: usize) -> Result<(), E> {
        let (values, total) = (self.0.values.get() + 1, self.0.bytes.get() + bytes);
        self.0.values.set(values);
        self.0.bytes.set(total);
        if values > MAX_VALUES || total > MAX_BYTES {
            return Err(E::custom(format!(
                "the config holds more than {MAX_VALUES} values or {MAX_BYTES} bytes of text once \
                 its YAML aliases (*name) are expanded; write it out without them"
            )));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Count<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.take(0)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.take(0)
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.take(0)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.take(0)
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.take(0)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.take(0)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.take(v.len())
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.take(v.len())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.take(0)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.take(0)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    /// A tagged value (`!name value`).
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
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
