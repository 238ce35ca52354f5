//! The YAML configuration: parse (serde, unknown keys rejected, with line
//! numbers) into the raw file, then validate it section by section into a
//! [`Config`] that cannot be invalid: the decision's [`Policy`] plus the
//! adapters' settings. `load` is the only function here that reads a file,
//! apart from the `mysql_ssl_ca` bundle (read while validating, so a
//! bad one is exit 2 before anything runs) and [`Config::check_key_file`],
//! which only some commands need.
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
mod metrics;
mod notify;
mod overrides;
mod raw;
mod reference;
mod schedules;
mod services;
mod spool;
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
pub use metrics::MetricsSettings;
pub use notify::FeishuSettings;
pub use overrides::Override;
pub use spool::ConfigMapRef;
pub use store::{CaBundle, DEFAULT_STATE_FILE, MysqlSettings, MysqlTls, SslMode};
pub use users::{DEFAULT_GA_API_URL, GaSettings, TOKEN_CACHE_FILE, TokenCache, UsersSource};

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
    /// `spool_configmap`: where records MySQL could not take wait, instead
    /// of `state_file` (only with MySQL).
    pub spool_configmap: Option<ConfigMapRef>,
    pub feishu: Option<FeishuSettings>,
    /// Where each run's gauges go (none of them by default).
    pub metrics: MetricsSettings,
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
    raw::check_size(text).map_err(at)?;
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
        let said = document.redact(&e.to_string());
        match overrides.iter().rev().find(|o| o.touches(&e.key)) {
            Some(o) => UsageError::new(format!("{o}: {said}")),
            None => at(format!("{said} (with {})", all.join(" "))),
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
    raw::check_size(text).map_err(at)?;
    let raw: RawConfig = match serde_yaml::from_str::<Option<RawConfig>>(text) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err(at("the file is empty; `services` is required".into())),
        Err(e) => return Err(at(raw::describe_yaml_error(&e))),
    };
    let doc = Document::new(text, env);
    validate(raw, &doc).map_err(|e| at(doc.redact(&e.to_string())))
}

/// Each section in turn; the first error wins.
fn validate(mut raw: RawConfig, doc: &Document) -> Result<Config, ConfigError> {
    let services = services::validate(raw.services.take(), doc)?;
    let reference = reference::validate(&raw, &services, doc)?;
    let tiers = tiers::validate(raw.tiers.take(), &services, &reference, doc)?;
    let mut users = users::validate(&raw, doc)?;
    let aws = aws::validate(&raw, doc)?;
    let kube = kube::validate(&raw, doc)?;
    let store = store::validate(&raw, doc)?;
    let spool_configmap = spool::validate(&raw, store.mysql.is_some(), doc)?;
    users.keep_token_beside(&store.state_file);
    let feishu = notify::validate(&raw, doc)?;
    let limits = limits::validate(&raw, doc)?;
    let schedules = schedules::validate(&mut raw, &tiers, doc)?;
    let forecast = forecast::validate(&raw, doc)?;
    let metrics = metrics::validate(&raw, doc)?;
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
        spool_configmap,
        feishu,
        metrics,
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
        // A query may carry a key: never repeated.
        let shown = match url.split_once('?') {
            Some((before, _)) => format!("{before}?…"),
            None => url.to_string(),
        };
        Err(ConfigError::new(
            key,
            format!("`{shown}` is not an http(s) URL"),
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
                assert_eq!(
                    ga.token_cache,
                    TokenCache::ReadWrite("/var/lib/hpa-tier/ga-token.json".into())
                );
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
    fn the_ga_token_cache_sits_beside_state_file_and_dry_run_only_reads_it() {
        let token_cache = |c: &Config| match &c.users {
            UsersSource::Ga(ga) => ga.token_cache.clone(),
            other => panic!("{other:?}"),
        };
        let mut c = ok(&format!("{MINIMAL}state_file: /srv/hpa/runs.jsonl\n"));
        assert_eq!(
            token_cache(&c),
            TokenCache::ReadWrite("/srv/hpa/ga-token.json".into())
        );
        c.users.read_only();
        assert_eq!(
            token_cache(&c),
            TokenCache::ReadOnly("/srv/hpa/ga-token.json".into())
        );
        let c = ok(&format!("{MINIMAL}state_file: runs.jsonl\n"));
        assert_eq!(
            token_cache(&c),
            TokenCache::ReadWrite("ga-token.json".into())
        );
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

    const MYSQL: &str = "mysql_host: db\nmysql_user: u\nmysql_db: hpa\n";

    #[test]
    fn mysql_ssl_mode_defaults_to_preferred_and_takes_the_mysql_clients_spellings() {
        let c = ok(&format!("{MINIMAL}{MYSQL}"));
        assert_eq!(c.mysql.unwrap().tls, MysqlTls::default());
        assert_eq!(MysqlTls::default().mode, SslMode::Preferred);
        for (text, want) in [
            ("disabled", SslMode::Disabled),
            ("PREFERRED", SslMode::Preferred),
            ("required", SslMode::Required),
            ("VERIFY_CA", SslMode::VerifyCa),
            ("verify-identity", SslMode::VerifyIdentity),
            ("\"\"", SslMode::Preferred),
        ] {
            let c = ok(&format!("{MINIMAL}{MYSQL}mysql_ssl_mode: {text}\n"));
            assert_eq!(c.mysql.unwrap().tls.mode, want, "{text}");
        }
        let e = err(&format!("{MINIMAL}{MYSQL}mysql_ssl_mode: verify\n"));
        assert!(
            e.contains("mysql_ssl_mode (line ")
                && e.contains("`verify` is not one of disabled, preferred, required, verify_ca, verify_identity"),
            "{e}"
        );
    }

    #[test]
    fn mysql_ssl_ca_is_read_and_checked_when_validating() {
        let dir = tempfile::tempdir().unwrap();
        let ca = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.self_signed(&key).unwrap().pem()
        };
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, format!("{}{}", ca("one"), ca("two"))).unwrap();
        let text = |path: &Path, mode: &str| {
            format!(
                "{MINIMAL}{MYSQL}mysql_ssl_mode: {mode}\nmysql_ssl_ca: \"{}\"\n",
                path.display()
            )
        };
        let tls = ok(&text(&bundle, "verify_identity")).mysql.unwrap().tls;
        let got = tls.ca.expect("the bundle");
        assert_eq!((got.path.as_path(), got.certs.len()), (bundle.as_path(), 2));

        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for (path, mode, want) in [
            (&missing, "verify_ca", "cannot read"),
            (&garbage, "verify_ca", "certificate 1 of"),
            (&empty, "verify_identity", "holds no PEM certificate"),
            (
                &bundle,
                "required",
                "is only used by mysql_ssl_mode verify_ca or verify_identity",
            ),
            (
                &bundle,
                "preferred",
                "the server certificate is not checked",
            ),
        ] {
            let e = err(&text(path, mode));
            assert!(
                e.contains("mysql_ssl_ca (line ") && e.contains(want),
                "{mode} {path:?}: {e}"
            );
        }
    }

    #[test]
    fn spool_configmap_is_namespace_slash_name_and_needs_mysql() {
        let mysql = "mysql_host: db\nmysql_user: u\nmysql_db: hpa\n";
        let c = ok(&format!(
            "{MINIMAL}{mysql}spool_configmap: \"hpa-tier/hpa-tier-spool\"\n"
        ));
        assert_eq!(
            c.spool_configmap.map(|c| c.to_string()).as_deref(),
            Some("hpa-tier/hpa-tier-spool")
        );
        assert!(
            ok(&format!("{MINIMAL}{mysql}spool_configmap: \"\"\n"))
                .spool_configmap
                .is_none()
        );
        assert!(ok(MINIMAL).spool_configmap.is_none());
        let e = err(&format!("{MINIMAL}{mysql}spool_configmap: hpa-tier\n"));
        assert_eq!(
            e,
            "c.yaml: spool_configmap (line 11): `hpa-tier` is not NAMESPACE/NAME (e.g. \"hpa-tier/hpa-tier-spool\")"
        );
        let e = err(&format!(
            "{MINIMAL}{mysql}spool_configmap: hpa-tier/Spool\n"
        ));
        assert!(
            e.contains("spool_configmap (line 11): the ConfigMap name `Spool`"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}spool_configmap: hpa-tier/spool\n"));
        assert!(
            e.starts_with("c.yaml: spool_configmap (line 8): is only used with mysql_host"),
            "{e}"
        );
    }

    #[test]
    fn errors_never_echo_an_expanded_variable_or_a_urls_query() {
        let env = |name: &str| match name {
            "HOME" => Some("/home/ops".to_string()),
            "DB" => Some("pr0d-s3cret-db!".to_string()),
            "TOKEN" => Some("tok-8f2a91c".to_string()),
            _ => None,
        };
        let parse = |text: &str| parse(text, Path::new("c.yaml"), &env).unwrap_err().0;
        let e = parse(&format!(
            "{MINIMAL}mysql_host: db\nmysql_user: u\nmysql_db: \"${{DB}}\"\n"
        ));
        assert!(e.contains("`${DB}` is not a plain database name"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = parse(&format!(
            "{MINIMAL}users: {{ source: http, http: {{ url: 'localhost:5000/users?token=${{TOKEN}}' }} }}\n"
        ));
        assert!(e.contains("users.http.url") && e.contains("?…"), "{e}");
        assert!(!e.contains("tok-8f2a91c") && !e.contains("token="), "{e}");
        let e = parse(&format!(
            "{MINIMAL}ga_api_url: 'ftp://ga.example/?key=k-77e1'\n"
        ));
        assert!(!e.contains("k-77e1"), "{e}");
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
    fn metrics_go_nowhere_unless_a_key_says_where() {
        assert_eq!(ok(MINIMAL).metrics, MetricsSettings::default());
        let c = ok(&format!(
            "{MINIMAL}metrics_pushgateway: 'http://pushgateway:9091/'\nmetrics_textfile: ~/tf/hpa-tier.prom\n"
        ));
        assert_eq!(
            c.metrics.pushgateway.as_deref(),
            Some("http://pushgateway:9091")
        );
        assert_eq!(
            c.metrics.textfile.as_deref(),
            Some(Path::new("/home/ops/tf/hpa-tier.prom"))
        );
        let c = ok(&format!(
            "{MINIMAL}metrics_pushgateway: ''\nmetrics_textfile: ''\n"
        ));
        assert_eq!(c.metrics, MetricsSettings::default());
        let e = err(&format!("{MINIMAL}metrics_pushgateway: pushgateway:9091\n"));
        assert_eq!(
            e,
            "c.yaml: metrics_pushgateway (line 8): `pushgateway:9091` is not an http(s) URL"
        );
        let e = err(&format!("{MINIMAL}metrics_textfile: /tmp/hpa-tier.txt\n"));
        assert!(
            e.starts_with("c.yaml: metrics_textfile (line 8): ") && e.contains(".prom"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}metrics_pushgatway: x\n"));
        assert!(e.contains("did you mean `metrics_pushgateway`"), "{e}");
    }

    #[test]
    fn a_cluster_name_over_64_characters_is_refused_naming_its_key() {
        let long = "c".repeat(65);
        let e = err(&format!("{MINIMAL}eks_cluster_name: {long}\n"));
        assert_eq!(
            e,
            "c.yaml: eks_cluster_name (line 8): the cluster name (the run lock's and the \
             records' scope) is 65 characters, more than 64"
        );
        // Without eks_cluster_name the context is the name, and the fix is said.
        let arn = format!(
            "arn:aws:eks:us-east-2:123456789012:cluster/{}",
            "p".repeat(30)
        );
        let e = err(&format!("{MINIMAL}cluster_context: '{arn}'\n"));
        assert!(
            e.starts_with("c.yaml: cluster_context (line 8): ")
                && e.contains("73 characters, more than 64; set eks_cluster_name"),
            "{e}"
        );
        // A context that appends eks_cluster_name is judged by the name alone.
        let c = ok(&format!(
            "{MINIMAL}cluster_context: '{arn}/'\neks_cluster_name: prod\n"
        ));
        assert_eq!(c.policy.cluster, "prod");
        // 64 characters, counted as characters, not bytes.
        let c = ok(&format!("{MINIMAL}eks_cluster_name: {}\n", "é".repeat(64)));
        assert_eq!(c.policy.cluster.chars().count(), 64);
        let e = err(&format!("{MINIMAL}eks_cluster_name: \"a\\nb\"\n"));
        assert!(
            e.contains("eks_cluster_name") && e.contains("control character"),
            "{e}"
        );
    }

    #[test]
    fn mysql_port_zero_or_out_of_range_is_refused() {
        let base = format!("{MINIMAL}mysql_host: db\nmysql_user: u\nmysql_db: d\n");
        let e = err(&format!("{base}mysql_port: 0\n"));
        assert_eq!(
            e,
            "c.yaml: mysql_port (line 11): must be a TCP port, 1..=65535, got 0"
        );
        for bad in ["65536", "-1", "3306.5", "99999999999999999999"] {
            let e = err(&format!("{base}mysql_port: {bad}\n"));
            assert!(
                e.contains("mysql_port") && e.contains("line 11"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            ok(&format!("{base}mysql_port: 65535\n"))
                .mysql
                .unwrap()
                .port,
            65535
        );
    }

    #[test]
    fn replicas_that_are_not_a_count_say_what_a_replica_count_is() {
        let cases = [
            (
                "web: 4",
                "web: -1",
                "invalid value: integer `-1`, expected a whole number of replicas",
            ),
            (
                "web: 4",
                "web: [4]",
                "invalid type: sequence, expected a whole number of replicas, or { min: N, max: M }",
            ),
            ("web: 4", "web: 2.5", "invalid type: floating point `2.5`"),
            ("web: 4", "web: '4'", "invalid type: string \"4\""),
            (
                "web: 4",
                "web: 5000000000",
                "invalid value: integer `5000000000`",
            ),
            (
                "max: 20",
                "max: -20",
                "invalid type: integer `-20`, expected u32",
            ),
            ("max: 20", "mx: 20", "unknown field `mx`"),
            // Within u32 but beyond Kubernetes' int32: the tier says so.
            (
                "web: 4",
                "web: 3000000000",
                "tiers[1] (line 13): `web` min is 3000000000, more than 2147483647",
            ),
            (
                "max: 20",
                "max: 2147483648",
                "`web` max is 2147483648, more than 2147483647",
            ),
            (
                "capacity: 200",
                "capacity: 2147483648",
                "capacity 2147483648 is more than 2147483647",
            ),
        ];
        for (from, to, says) in cases {
            let e = err(&format!("{MINIMAL}{}", TIERS.replace(from, to)));
            assert!(e.contains(says), "{to}: {e}");
            assert!(e.contains("line"), "{to}: {e}");
        }
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_is_expanded() {
        // One 100 kB string used 2000 times would be 200 MB of config.
        let big = "x".repeat(100_000);
        let uses = vec!["*s"; 2000].join(", ");
        let e = err(&format!(
            "{MINIMAL}aws_region: &s {big}\nskip_dates: [{uses}]\n"
        ));
        assert!(
            e.starts_with("c.yaml: skip_dates[")
                && e.contains(": the config holds more than 20000 values or 1048576 bytes")
                && e.contains("aliases"),
            "{e}"
        );
        // Nested lists ("billion laughs") inside replicas.
        let mut text = format!("{MINIMAL}{}", TIERS.replace("web: 4", "web: *l9"));
        let mut levels = String::from("&l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]");
        for i in 1..10 {
            levels = format!(
                "{levels}\nx{i}: &l{i} [{}]",
                vec![format!("*l{}", i - 1); 10].join(", ")
            );
        }
        text = text.replace("tiers:\n", &format!("skip_dates: {levels}\ntiers:\n"));
        let e = err(&text);
        assert!(
            e.contains("aliases") || e.contains("repetition limit"),
            "{e}"
        );
        // Aliases within bounds are fine.
        let c = ok(&format!(
            "{MINIMAL}tiers:\n  - capacity: 100\n    replicas: {{ istio-ingress: 2, web: &w 2 }}\n  \
             - capacity: 200\n    replicas: {{ istio-ingress: 3, web: *w }}\n"
        ));
        assert_eq!(c.policy.tiers.capacities(), vec![100, 200]);
    }

    #[test]
    fn a_config_over_a_mebibyte_is_refused() {
        let text = format!("{MINIMAL}# {}\n", "x".repeat(1024 * 1024));
        assert_eq!(
            err(&text),
            format!(
                "c.yaml: the file has {} bytes, more than the 1048576 a config may have",
                text.len()
            )
        );
    }

    #[test]
    fn a_long_unknown_key_is_named_without_a_quadratic_suggestion() {
        let key = "k".repeat(300_000);
        let e = err(&format!("{MINIMAL}? {key}\n: 1\n"));
        assert!(
            e.contains("unknown field `kkk") && !e.contains("did you mean"),
            "{}",
            &e[..80]
        );
        // An explicit key (`? `) may be this long; the edit distance to
        // every key took seconds here, so long keys get no suggestion.
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
