//! The YAML configuration: parse (serde, unknown keys rejected, with line
//! numbers) into the raw file, then validate it section by section into a
//! [`Config`] that cannot be invalid: the decision's [`Policy`] plus the
//! adapters' settings. `load` is the only function here that reads a file
//! (and [`Config::check_key_file`], which only some commands need).
//!
//! Every key of the Python tool's `config.yaml` is accepted with its meaning;
//! the keys it did not have are optional, except `services`. Each section
//! validator returns its part or the first [`ConfigError`] it finds; the
//! first error wins and becomes the `UsageError` (exit 2) at [`parse`].

mod aws;
mod document;
mod error;
mod forecast;
mod kube;
mod limits;
mod notify;
mod overrides;
mod raw;
mod reference;
mod schedules;
mod services;
mod store;
mod tiers;
mod users;

use std::path::Path;
use std::time::Duration;

use crate::error::UsageError;
use document::Document;
use hpa_tier_core::policy::Policy;
use raw::RawConfig;

pub use aws::AwsSettings;
pub use error::ConfigError;
pub use kube::KubeSettings;
pub use notify::FeishuSettings;
pub use overrides::Override;
pub use store::{DEFAULT_STATE_FILE, MysqlSettings};
pub use users::{DEFAULT_GA_API_URL, GaSettings, UsersSource};

pub const DEFAULT_PATH: &str = "config/config.yaml";

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

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// What the decision reads: tiers, services, headroom, the windows, the
    /// cluster's name.
    pub policy: Policy,
    pub users: UsersSource,
    pub aws: AwsSettings,
    pub kube: KubeSettings,
    pub mysql: Option<MysqlSettings>,
    pub state_file: std::path::PathBuf,
    pub feishu: Option<FeishuSettings>,
    /// Per external call (`timeout_seconds`, 1..=600).
    pub timeout: Duration,
}

impl Config {
    /// `upgrade CAPACITY`: `capacity` must be one of the tier table's.
    pub fn tier_capacity(&self, capacity: u32) -> Result<u32, UsageError> {
        let tiers = &self.policy.tiers;
        if tiers.get(capacity).is_some() {
            return Ok(capacity);
        }
        let valid: Vec<String> = tiers.capacities().iter().map(u32::to_string).collect();
        Err(UsageError::new(format!(
            "{capacity} is not a tier capacity; valid capacities: {}",
            valid.join(", ")
        )))
    }

    /// The GA key file must be readable before a run that reads GA starts.
    /// (`tiers` does not need it, so this is not part of validation.)
    pub fn check_key_file(&self) -> Result<(), UsageError> {
        users::check_key_file(&self.users)
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

/// [`load`], with `simulate --set` overrides applied (see [`parse_with`]).
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Config, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read config file {}: {e}", path.display())))?;
    let env = |name: &str| std::env::var(name).ok();
    parse_with(&text, path, &env, overrides)
}

/// [`parse`], with each override written into the parsed YAML document
/// first. The file's own problems are reported as `parse` reports them;
/// an override that is not a key of the config, or whose value is the
/// wrong type, names the `--set`; a value the validation rejects is
/// reported on its key, without the file's line (the file does not say
/// it), and every validation error says which overrides were in force.
pub fn parse_with(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: &[Override],
) -> Result<Config, UsageError> {
    if overrides.is_empty() {
        return parse(text, path, env);
    }
    let at = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
    if let Err(e) = serde_yaml::from_str::<Option<RawConfig>>(text) {
        return Err(at(raw::describe_yaml_error(&e)));
    }
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| at(raw::describe_yaml_error(&e)))?;
    for o in overrides {
        o.apply(&mut doc).map_err(UsageError::new)?;
        // Each override alone, so a misspelt key is pinned on its --set.
        if let Err(e) = serde_yaml::from_value::<RawConfig>(doc.clone()) {
            return Err(UsageError::new(format!(
                "{o}: {} is not accepted: {}",
                o.key,
                raw::describe_yaml_error(&e)
            )));
        }
    }
    let raw: RawConfig =
        serde_yaml::from_value(doc).map_err(|e| at(raw::describe_yaml_error(&e)))?;
    let tops: Vec<String> = overrides.iter().map(|o| o.top().to_string()).collect();
    let document = Document::new(text, env).overridden(tops);
    validate(raw, &document).map_err(|e| {
        let all: Vec<String> = overrides.iter().map(Override::to_string).collect();
        match overrides.iter().rev().find(|o| o.touches(&e.key)) {
            Some(o) => UsageError::new(format!("{o}: {e}")),
            None => at(format!("{e} (with {})", all.join(" "))),
        }
    })
}

/// Parses and validates config text. `env` looks up `${VAR}` references and
/// `HOME` for `~`, so tests need not touch the process environment. Errors
/// read `<path>: <key> (line N): <what is wrong>`.
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, UsageError> {
    let at = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
    let raw: RawConfig = match serde_yaml::from_str::<Option<RawConfig>>(text) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err(at("the file is empty; `services` is required".into())),
        Err(e) => return Err(at(raw::describe_yaml_error(&e))),
    };
    validate(raw, &Document::new(text, env)).map_err(|e| at(e.to_string()))
}

/// Each section in turn; the first error wins.
fn validate(mut raw: RawConfig, doc: &Document) -> Result<Config, ConfigError> {
    let services = services::validate(raw.services.take(), doc)?;
    let reference = reference::validate(&raw, &services, doc)?;
    let tiers = tiers::validate(raw.tiers.take(), &services, &reference, doc)?;
    let users = users::validate(&raw, doc)?;
    let aws = aws::validate(&raw, doc)?;
    let kube = kube::validate(&raw, doc)?;
    let store = store::validate(&raw, doc)?;
    let feishu = notify::validate(&raw, doc)?;
    let limits = limits::validate(&raw, doc)?;
    let schedules = schedules::validate(&mut raw, &tiers, doc)?;
    let forecast = forecast::validate(&raw, doc)?;
    Ok(Config {
        policy: Policy {
            tiers,
            services,
            headroom_percent: limits.headroom_percent,
            scale_down: limits.scale_down,
            notify_repeat: limits.notify_repeat,
            check_interval: limits.check_interval,
            cluster: kube.cluster,
            schedules,
            forecast,
        },
        users,
        aws,
        kube: kube.settings,
        mysql: store.mysql,
        state_file: store.state_file,
        feishu,
        timeout: limits.timeout,
    })
}

/// An absolute http(s) URL with a host.
fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>().ok().is_some_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}

/// [`is_http_url`], as the error of `key` (named by its dotted path, no line).
fn http_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if is_http_url(url) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("`{url}` is not an http(s) URL"),
        ))
    }
}

/// An absolute http(s) URL with a host; the error names `key` (for URLs the
/// adapters read from elsewhere, such as a key file's `token_uri`).
pub fn check_url(key: &str, url: &str) -> Result<(), String> {
    http_url(key, url).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hpa_tier_core::tiers::Replicas;
    use jiff::SignedDuration;

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
        assert_eq!(c.policy.check_interval, SignedDuration::from_mins(5));
        // The old name of the reference column maps onto the built-in table.
        assert_eq!(c.policy.tiers.reference(), "istio-ingressgateway");
        let mins: Vec<u32> = c
            .policy
            .tiers
            .tiers()
            .iter()
            .map(|t| c.policy.tiers.reference_min(t))
            .collect();
        assert_eq!(mins, vec![2, 4, 6, 8, 10, 12]);
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let c = ok(MINIMAL);
        assert_eq!(c.policy.headroom_percent, 0);
        assert_eq!(c.policy.scale_down, SignedDuration::from_mins(30));
        assert_eq!(c.policy.notify_repeat, SignedDuration::from_mins(60));
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
        assert_eq!(c.policy.tiers.services(), ["istio-ingress", "web"]);
        assert_eq!(
            c.policy
                .tiers
                .get(3000)
                .unwrap()
                .replicas_of("web")
                .unwrap()
                .min,
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
        assert_eq!(c.policy.reference().service, "istio-ingress");
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
        let t = c.policy.tiers.get(100).unwrap();
        assert_eq!(
            t.replicas_of("web").unwrap(),
            Replicas {
                min: 2,
                max: Some(20)
            }
        );
        let t2 = c.policy.tiers.get(200).unwrap();
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
    fn the_example_config_is_valid_and_has_the_full_table() {
        let text = include_str!("../../config/example.yaml");
        let c = parse(text, Path::new("config/example.yaml"), &|k| match k {
            "HOME" => Some("/root".into()),
            _ => Some("x".into()),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.policy.tiers.services().len(), 6);
        assert_eq!(
            c.policy.tiers.capacities(),
            vec![600, 1000, 2000, 3000, 4000, 5000]
        );
    }

    #[test]
    fn a_tier_error_points_at_that_tiers_line_even_for_a_repeated_capacity() {
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("capacity: 200", "capacity: 100")
        ));
        assert_eq!(e, "c.yaml: tiers[1] (line 13): capacity 100 appears twice");
        let e = err(&format!(
            "{MINIMAL}{}",
            TIERS.replace("{ istio-ingress: 3, web: 4 }", "{ istio-ingress: 3 }")
        ));
        assert_eq!(
            e,
            "c.yaml: tiers[1] (line 13): no replicas for service `web`"
        );
    }

    #[test]
    fn a_top_level_key_is_named_with_its_line() {
        let e = err(&format!(
            "{MINIMAL}check_time: 0
"
        ));
        assert_eq!(
            e,
            "c.yaml: check_time (line 8): must be at least 1 (minutes/seconds), got 0"
        );
    }

    #[test]
    fn limits_have_caps_that_the_error_names() {
        let cases = [
            (
                "check_time: 1441",
                "check_time",
                "at most 1440 minutes (a day)",
            ),
            (
                "timeout_seconds: 601",
                "timeout_seconds",
                "at most 600 seconds",
            ),
            (
                "scale_down_minutes: 10081",
                "scale_down_minutes",
                "at most 10080 minutes (a week)",
            ),
            (
                "notify_repeat_minutes: 4294967295",
                "notify_repeat_minutes",
                "at most 10080 minutes",
            ),
            (
                "headroom_percent: 1001",
                "headroom_percent",
                "not a sane headroom",
            ),
        ];
        for (line, key, says) in cases {
            let e = err(&format!("{MINIMAL}{line}\n"));
            assert!(
                e.starts_with(&format!("c.yaml: {key} (line 8): ")) && e.contains(says),
                "{line}: {e}"
            );
        }
        let c = ok(&format!(
            "{MINIMAL}check_time: 1440\ntimeout_seconds: 600\nscale_down_minutes: 0\nnotify_repeat_minutes: 10080\n"
        ));
        assert_eq!(c.policy.check_interval, SignedDuration::from_hours(24));
        assert_eq!(c.timeout, Duration::from_secs(600));
        assert_eq!(c.policy.scale_down, SignedDuration::ZERO);
        assert_eq!(c.policy.notify_repeat, SignedDuration::from_hours(24 * 7));
    }

    #[test]
    fn the_first_error_in_section_order_wins() {
        // Both `services` and `ga_api_url` are wrong: services comes first.
        let e = err(&format!(
            "{}ga_api_url: nope\n",
            MINIMAL.replace("hpa: web,", "hpa: Web,")
        ));
        assert_eq!(
            e,
            "c.yaml: services.web.hpa: `Web` is not a valid Kubernetes name (lowercase letters, digits, '-', '.')"
        );
    }

    #[test]
    fn the_built_in_table_needs_an_increasing_reference_column() {
        // gateway's column is 2, 2, 3, ...: it cannot tell 600 from 1000.
        let e = err(&format!(
            "{}  gateway: {{ hpa: gateway, namespace: prod }}\n",
            MINIMAL.replace(
                "hpa_service_name: istio-ingress",
                "hpa_service_name: gateway"
            )
        ));
        assert!(
            e.starts_with("c.yaml: tiers: the reference service `gateway`")
                && e.contains("tier 600 has 2 and tier 1000 has 2"),
            "{e}"
        );
    }

    #[test]
    fn the_cluster_is_the_eks_name_else_the_context() {
        let c = ok(&format!(
            "{MINIMAL}eks_cluster_name: prod\ncluster_context: ctx\n"
        ));
        assert_eq!(c.policy.cluster, "prod");
        let c = ok(&format!("{MINIMAL}cluster_context: ctx\n"));
        assert_eq!(c.policy.cluster, "ctx");
        assert_eq!(ok(MINIMAL).policy.cluster, "default");
    }

    #[test]
    fn an_upgrade_capacity_must_be_a_tier() {
        let c = ok(MINIMAL);
        assert_eq!(c.tier_capacity(2000), Ok(2000));
        let e = c.tier_capacity(2500).unwrap_err().0;
        assert_eq!(
            e,
            "2500 is not a tier capacity; valid capacities: 600, 1000, 2000, 3000, 4000, 5000"
        );
    }
}
