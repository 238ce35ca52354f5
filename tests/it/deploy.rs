//! The deploy files under `deploy/` agree with each other and with the
//! binary: each Kubernetes manifest is a well-formed object of its kind (no
//! field k8s-openapi does not know), the CronJob runs one bounded,
//! locked-down `check` with a config the binary accepts from where it is
//! mounted, RBAC and IAM grant exactly what the code uses, the pods may only
//! open the connections a run needs, the Docker, cron and systemd variants
//! run the same command every five minutes, and the alert rules and the
//! dashboard of `deploy/monitoring` are valid and name only the gauges
//! hpa-tier pushes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use hpa_tier::cli::{Cli, Command};
use hpa_tier::config::{Config, UsersSource};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Secret, ServiceAccount, Volume,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::support::{root, run, stderr};

const FIVE_MINUTES: Duration = Duration::from_secs(300);

fn deploy_dir() -> PathBuf {
    root().join("deploy")
}

fn kustomize_dir() -> PathBuf {
    deploy_dir().join("kubernetes")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// The objects of the kustomization.

/// Every object, by kind, each parsed into its k8s-openapi type.
#[derive(Default)]
pub(crate) struct Manifests {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    cron_jobs: Vec<CronJob>,
    network_policies: Vec<NetworkPolicy>,
    /// `(kind, namespace, name)` of each object, in order.
    ids: Vec<(String, String, String)>,
}

impl Manifests {
    /// The files the kustomization lists, as written.
    pub(crate) fn from_files() -> Self {
        let mut m = Manifests::default();
        for file in kustomization_resources() {
            let path = kustomize_dir().join(&file);
            m.add_stream(&file, &read(&path))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        m
    }

    /// What `kubectl kustomize` makes of them.
    fn from_kubectl() -> Self {
        let mut m = Manifests::default();
        m.add_stream("kubectl kustomize", &kubectl_kustomize())
            .unwrap_or_else(|e| panic!("{e}"));
        m
    }

    /// A multi-document YAML stream: documents are separated by `---` lines;
    /// one holding only comments is no object.
    fn add_stream(&mut self, origin: &str, text: &str) -> Result<(), String> {
        let mut doc = String::new();
        let mut n = 0;
        for line in text.lines().chain(std::iter::once("---")) {
            if line.trim_end() == "---" {
                n += 1;
                self.add(&format!("{origin} (document {n})"), &doc)?;
                doc.clear();
            } else {
                doc.push_str(line);
                doc.push('\n');
            }
        }
        Ok(())
    }

    fn add(&mut self, origin: &str, doc: &str) -> Result<(), String> {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(doc).map_err(|e| format!("{origin}: not YAML: {e}"))?;
        if yaml.is_null() {
            return Ok(());
        }
        let kind = yaml["kind"]
            .as_str()
            .ok_or_else(|| format!("{origin}: no `kind`"))?
            .to_string();
        let meta = &yaml["metadata"];
        let id = (
            kind.clone(),
            meta["namespace"].as_str().unwrap_or("").to_string(),
            meta["name"].as_str().unwrap_or("").to_string(),
        );
        match kind.as_str() {
            "Namespace" => self.namespaces.push(typed(origin, &yaml)?),
            "ServiceAccount" => self.service_accounts.push(typed(origin, &yaml)?),
            "Role" => self.roles.push(typed(origin, &yaml)?),
            "RoleBinding" => self.role_bindings.push(typed(origin, &yaml)?),
            "ConfigMap" => self.config_maps.push(typed(origin, &yaml)?),
            "Secret" => self.secrets.push(typed(origin, &yaml)?),
            "CronJob" => self.cron_jobs.push(typed(origin, &yaml)?),
            "NetworkPolicy" => self.network_policies.push(typed(origin, &yaml)?),
            other => {
                return Err(format!(
                    "{origin}: kind {other} is not checked by tests/it/deploy.rs; add it to Manifests"
                ));
            }
        }
        self.ids.push(id);
        Ok(())
    }

    fn only<'a, T>(items: &'a [T], what: &str) -> &'a T {
        match items {
            [one] => one,
            _ => panic!("expected exactly one {what}, found {}", items.len()),
        }
    }

    fn cron_job(&self) -> &CronJob {
        Self::only(&self.cron_jobs, "CronJob")
    }
    fn config_map(&self, name: &str) -> &ConfigMap {
        let found: Vec<&ConfigMap> = self
            .config_maps
            .iter()
            .filter(|c| c.metadata.name.as_deref() == Some(name))
            .collect();
        let [one] = found[..] else {
            panic!(
                "expected exactly one ConfigMap {name}, found {}",
                found.len()
            )
        };
        one
    }
    fn network_policy(&self) -> &NetworkPolicy {
        Self::only(&self.network_policies, "NetworkPolicy")
    }

    /// The Roles on HPAs, one per managed namespace (every Role but the spool's).
    pub(crate) fn hpa_roles(&self) -> Vec<&Role> {
        self.roles
            .iter()
            .filter(|r| {
                r.rules
                    .iter()
                    .flatten()
                    .any(|rule| names(&rule.resources).contains("horizontalpodautoscalers"))
            })
            .collect()
    }

    /// The Roles on ConfigMaps: the spool's.
    pub(crate) fn config_map_roles(&self) -> Vec<&Role> {
        self.roles
            .iter()
            .filter(|r| {
                r.rules
                    .iter()
                    .flatten()
                    .any(|rule| names(&rule.resources).contains("configmaps"))
            })
            .collect()
    }

    /// The RoleBinding that grants `role`, in its namespace.
    fn binding_of(&self, role: &Role) -> &RoleBinding {
        let found: Vec<&RoleBinding> = self
            .role_bindings
            .iter()
            .filter(|b| {
                b.metadata.namespace == role.metadata.namespace
                    && b.role_ref.kind == "Role"
                    && Some(&b.role_ref.name) == role.metadata.name.as_ref()
            })
            .collect();
        let [one] = found[..] else {
            panic!(
                "expected exactly one RoleBinding of a Role, found {}",
                found.len()
            )
        };
        one
    }
    fn secret(&self) -> &Secret {
        Self::only(&self.secrets, "Secret")
    }
    fn service_account(&self) -> &ServiceAccount {
        Self::only(&self.service_accounts, "ServiceAccount")
    }
}

/// Parses a document into its k8s-openapi type, strictly: k8s-openapi skips
/// fields it does not know (a typo such as `runAsNonroot` would vanish
/// silently), so the object is serialized back and must equal the document.
fn typed<T: DeserializeOwned + serde::Serialize>(
    origin: &str,
    yaml: &serde_yaml::Value,
) -> Result<T, String> {
    let what = std::any::type_name::<T>();
    let object: T = serde_yaml::from_value(yaml.clone())
        .map_err(|e| format!("{origin}: not a valid {what}: {e}"))?;
    let written = serde_json::to_value(yaml).unwrap();
    let understood = serde_json::to_value(&object).unwrap();
    match first_difference(&written, &understood, String::new()) {
        None => Ok(object),
        Some(path) => Err(format!(
            "{origin}: `{path}` is not part of {what} as k8s-openapi reads it (a misspelt or misplaced field?)"
        )),
    }
}

fn first_difference(written: &Json, understood: &Json, at: String) -> Option<String> {
    match (written, understood) {
        (Json::Object(w), Json::Object(u)) => w.iter().find_map(|(k, v)| match u.get(k) {
            Some(u) => first_difference(v, u, format!("{at}.{k}")),
            None => Some(format!("{at}.{k}")),
        }),
        (Json::Array(w), Json::Array(u)) if w.len() == u.len() => w
            .iter()
            .zip(u)
            .enumerate()
            .find_map(|(i, (w, u))| first_difference(w, u, format!("{at}[{i}]"))),
        (w, u) if w == u => None,
        _ => Some(at),
    }
}

/// A list field of a Kubernetes object (verbs, resources, ...) as a set.
fn names(list: &Option<Vec<String>>) -> BTreeSet<&str> {
    list.iter().flatten().map(String::as_str).collect()
}

fn kustomization() -> serde_yaml::Value {
    serde_yaml::from_str(&read(&kustomize_dir().join("kustomization.yaml"))).unwrap()
}

fn kustomization_resources() -> Vec<String> {
    kustomization()["resources"]
        .as_sequence()
        .expect("kustomization.yaml lists `resources`")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_string())
        .collect()
}

fn kubectl_kustomize() -> String {
    let out = match Process::new("kubectl")
        .arg("kustomize")
        .arg(kustomize_dir())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "kubectl is not installed, so deploy/kubernetes cannot be rendered: run the tests with scripts/test.sh, which installs it"
        ),
        Err(e) => panic!("running kubectl: {e}"),
    };
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/kubernetes failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------
// The CronJob's pod, and what it hands the binary.

fn pod(cj: &CronJob) -> &PodSpec {
    cj.spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|j| j.template.spec.as_ref())
        .expect("the CronJob has a pod template")
}

fn container(cj: &CronJob) -> &Container {
    Manifests::only(&pod(cj).containers, "container")
}

fn volume<'a>(pod: &'a PodSpec, name: &str) -> &'a Volume {
    pod.volumes
        .iter()
        .flatten()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no volume `{name}`"))
}

/// The volume a path of the container lies on, and where that volume is
/// mounted (the deepest mount holding `path`).
fn mount_of<'a>(pod: &'a PodSpec, path: &Path) -> (&'a Volume, &'a Path) {
    let c = Manifests::only(&pod.containers, "container");
    let m = c
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| path.starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len())
        .unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()));
    (volume(pod, &m.name), Path::new(&m.mount_path))
}

/// The argv the container runs (`command` + `args`).
fn argv(c: &Container) -> Vec<String> {
    c.command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect()
}

/// The container's environment with each secretKeyRef resolved from the
/// Secret of the kustomization; nothing else (no HOME: Kubernetes sets none).
fn pod_env(m: &Manifests) -> BTreeMap<String, String> {
    let c = container(m.cron_job());
    let secret = m.secret();
    let secret_name = secret.metadata.name.as_deref().unwrap();
    let mut env = BTreeMap::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), None) => v.clone(),
            (None, Some(from)) => {
                let r = from
                    .secret_key_ref
                    .as_ref()
                    .unwrap_or_else(|| panic!("env {}: only secretKeyRef is expected", e.name));
                assert_eq!(r.name, secret_name, "env {} names another Secret", e.name);
                secret_value(secret, &r.key)
            }
            _ => panic!("env {}: neither a value nor a secretKeyRef", e.name),
        };
        env.insert(e.name.clone(), value);
    }
    env
}

fn secret_value(secret: &Secret, key: &str) -> String {
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
        .unwrap_or_else(|| panic!("the Secret has no key `{key}`"))
}

/// The config path the binary settles on for this argv and environment:
/// `--config`, else HPA_TIER_CONFIG, else the default (README, "Commands"). The test
/// process's own HPA_TIER_CONFIG is kept out of it.
fn parse_as_the_binary(argv: &[String], env: &BTreeMap<String, String>) -> (Cli, PathBuf) {
    let cmd = Cli::command().mut_arg("config", |a| a.env(None::<&'static str>));
    let matches = cmd
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| panic!("{argv:?} is not a valid hpa-tier command line: {e}"));
    let cli = Cli::from_arg_matches(&matches).unwrap();
    let path = cli
        .config
        .clone()
        .or_else(|| env.get("HPA_TIER_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(hpa_tier::config::DEFAULT_PATH));
    // The same argv through the derive entry point the binary uses.
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    (cli, path)
}

/// The config text the pod reads at `path`: the ConfigMap key projected there.
fn mounted_config(m: &Manifests, path: &Path) -> String {
    let pod = pod(m.cron_job());
    let (vol, mount) = mount_of(pod, path);
    let cm = vol
        .config_map
        .as_ref()
        .unwrap_or_else(|| panic!("{} is not on a ConfigMap volume", path.display()));
    let config_map = m.config_map(&cm.name);
    let file = path.strip_prefix(mount).unwrap().to_str().unwrap();
    let key = match &cm.items {
        Some(items) => {
            &items
                .iter()
                .find(|i| i.path == file)
                .unwrap_or_else(|| panic!("the ConfigMap volume projects no {file}"))
                .key
        }
        None => file,
    };
    config_map
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("the ConfigMap has no key `{key}`"))
        .clone()
}

/// The ConfigMap's config, validated by the library with the pod's environment.
fn deployed_config(m: &Manifests) -> (Config, PathBuf) {
    let env = pod_env(m);
    let (_, path) = parse_as_the_binary(&argv(container(m.cron_job())), &env);
    let text = mounted_config(m, &path);
    let config = hpa_tier::config::parse(&text, &path, &|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("the ConfigMap's config is rejected: {e}"));
    (config, path)
}

/// `*/N * * * *` -> N minutes; the only schedule shape used here.
fn every_n_minutes(schedule: &str) -> Duration {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let n = match fields.as_slice() {
        [minute, "*", "*", "*", "*"] => minute.strip_prefix("*/").and_then(|n| n.parse().ok()),
        _ => None,
    };
    let n: u64 = n.unwrap_or_else(|| panic!("`{schedule}` is not of the form */N * * * *"));
    Duration::from_secs(60 * n)
}

/// A Kubernetes quantity in base units (cores, bytes).
fn quantity(q: &str) -> f64 {
    let units: [(&str, f64); 6] = [
        ("m", 1e-3),
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap() * factor;
        }
    }
    q.parse().unwrap_or_else(|_| panic!("quantity `{q}`"))
}

// ---------------------------------------------------------------------------
// Kubernetes.

#[test]
fn every_manifest_is_a_well_formed_object_of_its_kind() {
    let m = Manifests::from_files();
    assert_eq!(m.namespaces.len(), 1);
    assert_eq!(m.service_accounts.len(), 1);
    assert_eq!(m.config_maps.len(), 2, "the config and the spool");
    assert_eq!(m.secrets.len(), 1);
    assert_eq!(m.cron_jobs.len(), 1);
    assert_eq!(m.network_policies.len(), 1);
    assert!(!m.roles.is_empty() && m.roles.len() == m.role_bindings.len());
    // Each Role is about HPAs or about the spool, never both.
    assert_eq!(
        m.hpa_roles().len() + m.config_map_roles().len(),
        m.roles.len(),
        "a Role that is neither on HPAs nor on the spool ConfigMap, or on both"
    );
    // Everything hpa-tier owns lives in its own namespace; only the RBAC
    // objects reach into the managed ones.
    let own = m.namespaces[0].metadata.name.clone().unwrap();
    for (kind, ns, name) in &m.ids {
        if !matches!(kind.as_str(), "Namespace" | "Role" | "RoleBinding") {
            assert_eq!(*ns, own, "{kind} {name} is not in namespace {own}");
        }
    }
    // A manifest in the directory that kustomize does not list is never applied.
    let listed: BTreeSet<String> = kustomization_resources().into_iter().collect();
    for entry in std::fs::read_dir(kustomize_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name),
                "{name} is not in kustomization.yaml"
            );
        }
    }
}

#[test]
fn a_misspelt_field_is_caught_by_the_strict_parse() {
    let doc = read(&kustomize_dir().join("cronjob.yaml"))
        .replace("runAsNonRoot: true", "runAsNonroot: true");
    let e = Manifests::default()
        .add_stream("cronjob.yaml", &doc)
        .expect_err("a misspelt field must not pass");
    assert!(e.contains("securityContext.runAsNonroot"), "{e}");
    // And a field in the wrong place, which is just as silently ignored.
    let doc = read(&kustomize_dir().join("cronjob.yaml"))
        .replace("      backoffLimit: 0", "      backofLimit: 0");
    let e = Manifests::default()
        .add_stream("cronjob.yaml", &doc)
        .expect_err("a misspelt field must not pass");
    assert!(e.contains("backofLimit"), "{e}");
}

#[test]
fn kubectl_kustomize_renders_the_same_objects_with_the_image_filled_in() {
    let files = Manifests::from_files();
    let rendered = Manifests::from_kubectl();
    let ids = |m: &Manifests| m.ids.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(ids(&rendered), ids(&files));

    let image = &kustomization()["images"][0];
    let expected = format!(
        "{}:{}",
        image["newName"].as_str().unwrap(),
        image["newTag"].as_str().unwrap()
    );
    assert_eq!(
        container(&files.cron_jobs[0]).image.as_deref(),
        image["name"].as_str()
    );
    assert_eq!(
        container(rendered.cron_job()).image.as_deref(),
        Some(expected.as_str())
    );
}

#[test]
fn the_cronjob_runs_one_bounded_pass_every_five_minutes() {
    let m = Manifests::from_files();
    let cj = m.cron_job();
    let spec = cj.spec.as_ref().unwrap();
    let period = every_n_minutes(&spec.schedule);
    assert_eq!(period, FIVE_MINUTES);
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    // A late start is pointless once the next slot is near.
    let starting = spec
        .starting_deadline_seconds
        .expect("startingDeadlineSeconds");
    assert!(
        starting > 0 && (starting as u64) < period.as_secs(),
        "{starting}"
    );
    for (what, limit) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        let limit = limit.unwrap_or_else(|| panic!("{what} is not set"));
        assert!((1..=10).contains(&limit), "{what}: {limit}");
    }
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job.backoff_limit, Some(0), "a failed run is not retried");
    // With Forbid, a hung run would block every later slot: it must end first.
    let active = job.active_deadline_seconds.expect("activeDeadlineSeconds");
    assert!(active > 0 && (active as u64) < period.as_secs(), "{active}");
    assert_eq!(pod(cj).restart_policy.as_deref(), Some("Never"));
}

#[test]
fn the_cronjob_pod_is_locked_down_and_small() {
    let m = Manifests::from_files();
    let pod = pod(m.cron_job());
    let c = container(m.cron_job());
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    let csc = c
        .security_context
        .as_ref()
        .expect("container securityContext");

    assert_eq!(psc.run_as_non_root, Some(true));
    let uid = csc
        .run_as_user
        .or(psc.run_as_user)
        .expect("a numeric runAsUser");
    assert!(uid > 0, "runAsUser {uid}");
    assert_eq!(csc.read_only_root_filesystem, Some(true));
    assert_eq!(csc.allow_privilege_escalation, Some(false));
    let dropped = csc.capabilities.as_ref().and_then(|c| c.drop.clone());
    assert_eq!(dropped, Some(vec!["ALL".to_string()]));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );

    // It needs the token for the API server.
    assert_eq!(pod.automount_service_account_token, Some(true));
    assert_eq!(
        pod.service_account_name.as_deref(),
        m.service_account().metadata.name.as_deref()
    );

    // The only writable paths are emptyDirs (the root filesystem is read-only).
    for mnt in c.volume_mounts.iter().flatten() {
        let v = volume(pod, &mnt.name);
        assert!(
            mnt.read_only == Some(true) || v.empty_dir.is_some(),
            "{} is writable but not an emptyDir",
            mnt.mount_path
        );
    }

    let res = c.resources.as_ref().expect("resources");
    let get = |map: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               what: &str,
               key: &str| {
        let q = map
            .as_ref()
            .and_then(|m| m.get(key))
            .unwrap_or_else(|| panic!("resources.{what}.{key} is not set"));
        quantity(&q.0)
    };
    for key in ["cpu", "memory"] {
        let (req, lim) = (
            get(&res.requests, "requests", key),
            get(&res.limits, "limits", key),
        );
        assert!(
            req > 0.0 && req <= lim,
            "{key}: request {req} > limit {lim}"
        );
    }
    // A run is a few HTTPS calls: small numbers, or the scheduler wastes a node slot.
    assert!(get(&res.requests, "requests", "memory") <= 64.0 * 1024.0 * 1024.0);
    assert!(get(&res.limits, "limits", "memory") <= 256.0 * 1024.0 * 1024.0);
    assert!(get(&res.requests, "requests", "cpu") <= 0.1);
    assert!(get(&res.limits, "limits", "cpu") <= 1.0);
}

#[test]
fn the_cronjob_command_line_is_a_check_that_reads_the_mounted_config() {
    let m = Manifests::from_files();
    let c = container(m.cron_job());
    let argv = argv(c);
    let env = pod_env(&m);
    let (cli, path) = parse_as_the_binary(&argv, &env);
    assert!(
        matches!(cli.command, Command::Check { users: None }),
        "{:?}",
        cli.command
    );
    assert!(!cli.dry_run, "a dry run would never change anything");
    assert!(path.is_absolute(), "{}", path.display());

    // The path is where the ConfigMap is mounted, read-only.
    let pod = pod(m.cron_job());
    let (vol, mount) = mount_of(pod, &path);
    assert!(
        vol.config_map.is_some(),
        "{} is not on the ConfigMap",
        path.display()
    );
    let mnt = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|v| Path::new(&v.mount_path) == mount)
        .unwrap();
    assert_eq!(mnt.read_only, Some(true));
    assert!(!mounted_config(&m, &path).is_empty());
}

#[test]
fn the_binary_given_the_cronjobs_argv_and_env_reads_the_config_from_the_mount() {
    let m = Manifests::from_files();
    let argv = argv(container(m.cron_job()));
    let env = pod_env(&m);
    let (_, path) = parse_as_the_binary(&argv, &env);
    // The real binary settles the path itself; the file is absent on this
    // machine, so it stops with a usage error before touching anything.
    assert!(
        !path.exists(),
        "{} exists on this machine; this test would run a real check",
        path.display()
    );
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = run(&args, &env);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot read config file {}", path.display())),
        "{err}"
    );
}

#[test]
fn the_configmap_config_is_valid_with_the_environment_the_cronjob_gives() {
    let m = Manifests::from_files();
    let (config, _) = deployed_config(&m);
    let cj = m.cron_job();
    let pod = pod(cj);
    let secret = m.secret();

    // The GA key: a file of the Secret, mounted read-only where the config says.
    let UsersSource::Ga(ga) = &config.users else {
        panic!("the deployed config reads GA: {:?}", config.users)
    };
    let (vol, mount) = mount_of(pod, &ga.key_file);
    let sv = vol
        .secret
        .as_ref()
        .unwrap_or_else(|| panic!("{} is not on a Secret volume", ga.key_file.display()));
    assert_eq!(sv.secret_name, secret.metadata.name);
    let file = ga.key_file.strip_prefix(mount).unwrap().to_str().unwrap();
    let item = sv
        .items
        .iter()
        .flatten()
        .find(|i| i.path == file)
        .unwrap_or_else(|| panic!("the Secret volume projects no {file}"));
    let key: Json = serde_json::from_str(&secret_value(secret, &item.key)).unwrap();
    assert_eq!(key["type"], "service_account");

    // The state_file is on an emptyDir, which dies with the Job: the
    // history, lock and spool must live in MySQL.
    let (vol, _) = mount_of(pod, &config.state_file);
    assert!(
        vol.empty_dir.is_some(),
        "state_file {} is not on the emptyDir",
        config.state_file.display()
    );
    let mysql = config
        .mysql
        .as_ref()
        .expect("the deployed config must use MySQL: an emptyDir state_file is lost between runs");
    assert_eq!(mysql.password.expose(), secret_value(secret, "MYSQL_PWD"));

    // In-cluster Kubernetes, IRSA for AWS: no kubeconfig, no static keys.
    assert!(config.kube.kubeconfig.is_none() && config.kube.context.is_none());
    assert!(config.aws.static_keys.is_none());

    let feishu = config.feishu.as_ref().expect("notifications configured");
    assert_eq!(
        feishu.webhook.expose(),
        secret_value(secret, "FEISHU_WEBHOOK_URL")
    );

    // `status` judges staleness by check_time: it must be the schedule.
    assert_eq!(
        config.policy.check_interval.unsigned_abs(),
        every_n_minutes(&cj.spec.as_ref().unwrap().schedule)
    );
}

#[test]
fn one_role_per_managed_namespace_grants_get_and_patch_on_exactly_its_hpas() {
    let m = Manifests::from_files();
    let (config, _) = deployed_config(&m);
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &config.policy.services {
        wanted
            .entry(s.namespace.as_str())
            .or_default()
            .insert(s.name.as_str());
    }
    assert_eq!(
        wanted.keys().copied().collect::<Vec<_>>(),
        ["istio-system", "prod"]
    );

    let hpa_roles = m.hpa_roles();
    let role_namespaces: BTreeSet<&str> = hpa_roles
        .iter()
        .map(|r| r.metadata.namespace.as_deref().unwrap())
        .collect();
    assert_eq!(
        role_namespaces,
        wanted.keys().copied().collect::<BTreeSet<_>>(),
        "one Role per namespace in `services`, and none elsewhere"
    );

    for (ns, hpas) in &wanted {
        let in_ns = |n: &Option<String>| n.as_deref() == Some(*ns);
        let roles: Vec<&Role> = hpa_roles
            .iter()
            .copied()
            .filter(|r| in_ns(&r.metadata.namespace))
            .collect();
        let role = Manifests::only(&roles, "Role per namespace");
        let rule = Manifests::only(role.rules.as_deref().unwrap_or_default(), "rule");
        assert_eq!(
            rule.api_groups.as_deref(),
            Some(&["autoscaling".to_string()][..])
        );
        assert_eq!(
            rule.resources.as_deref(),
            Some(&["horizontalpodautoscalers".to_string()][..])
        );
        let verbs: BTreeSet<&str> = rule.verbs.iter().map(String::as_str).collect();
        assert_eq!(verbs, BTreeSet::from(["get", "patch"]), "in {ns}");
        let names: BTreeSet<&str> = rule
            .resource_names
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names, *hpas,
            "the Role in {ns} must name exactly the HPAs of `services`"
        );

        assert_binds_the_service_account(&m, role);
    }
}

/// `role`'s RoleBinding names the CronJob's ServiceAccount and nothing else.
fn assert_binds_the_service_account(m: &Manifests, role: &Role) {
    let sa = m.service_account();
    let binding = m.binding_of(role);
    let subject = Manifests::only(binding.subjects.as_deref().unwrap_or_default(), "subject");
    assert_eq!(subject.kind, "ServiceAccount");
    assert_eq!(Some(&subject.name), sa.metadata.name.as_ref());
    assert_eq!(subject.namespace, sa.metadata.namespace);
}

#[test]
fn the_spool_configmap_exists_empty_and_its_role_grants_get_patch_on_it_alone() {
    let m = Manifests::from_files();
    let sa = m.service_account();
    let spool = m.config_map("hpa-tier-spool");
    assert_eq!(spool.metadata.namespace, sa.metadata.namespace);
    // The deployed config spools there.
    let (config, _) = deployed_config(&m);
    let named = config
        .spool_configmap
        .as_ref()
        .expect("configmap.yaml sets spool_configmap");
    assert_eq!(
        (Some(&named.namespace), Some(&named.name)),
        (
            spool.metadata.namespace.as_ref(),
            spool.metadata.name.as_ref()
        )
    );
    // Empty, so that `kubectl apply` never overwrites spooled records.
    assert!(
        spool.data.is_none() && spool.binary_data.is_none(),
        "the spool ConfigMap must ship without data"
    );

    let roles = m.config_map_roles();
    let role = Manifests::only(&roles, "Role on ConfigMaps");
    assert_eq!(role.metadata.namespace, sa.metadata.namespace);
    let rule = Manifests::only(role.rules.as_deref().unwrap_or_default(), "rule");
    assert_eq!(names(&rule.api_groups), BTreeSet::from([""]));
    assert_eq!(names(&rule.resources), BTreeSet::from(["configmaps"]));
    assert_eq!(
        names(&rule.resource_names),
        BTreeSet::from([spool.metadata.name.as_deref().unwrap()]),
        "the Role must name exactly the spool ConfigMap"
    );
    // No create: RBAC cannot limit it to one name, hence the pre-created
    // ConfigMap. No update: every write is a merge patch (e2e.rs checks the
    // binary sends exactly these verbs).
    assert_eq!(
        rule.verbs
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["get", "patch"])
    );
    assert_binds_the_service_account(&m, role);
}

/// The labels of the CronJob's pod template.
fn pod_labels(cj: &CronJob) -> BTreeMap<String, String> {
    cj.spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|j| j.template.metadata.as_ref())
        .and_then(|meta| meta.labels.clone())
        .unwrap_or_default()
}

/// Whether a label selector selects an object with `labels` (the semantics of
/// metav1.LabelSelector: every matchLabels pair and every expression holds).
fn selects(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let listed = |v: &String| e.values.iter().flatten().any(|w| w == v);
        match e.operator.as_str() {
            "In" => value.is_some_and(listed),
            "NotIn" => !value.is_some_and(listed),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("label selector operator {other}"),
        }
    });
    pairs && expressions
}

/// The port a URL is dialed on.
fn url_port(url: &str) -> u16 {
    let (scheme, rest) = url.split_once("://").unwrap_or_else(|| panic!("URL {url}"));
    let authority = rest.split(['/', '?']).next().unwrap();
    match authority.rsplit_once(':') {
        Some((_, port)) if !authority.ends_with(']') => port.parse().unwrap(),
        _ => match scheme {
            "https" => 443,
            "http" => 80,
            other => panic!("URL scheme {other}"),
        },
    }
}

#[test]
fn the_network_policy_selects_the_cronjob_pods_and_allows_only_the_connections_of_a_run() {
    // The selector must hold after kustomize too (its labels: pass must not
    // change either side).
    for m in [Manifests::from_files(), Manifests::from_kubectl()] {
        let np = m.network_policy();
        let cj = m.cron_job();
        assert_eq!(np.metadata.namespace, cj.metadata.namespace);
        let selector = np.spec.as_ref().unwrap().pod_selector.as_ref();
        let selector = selector.expect("a podSelector");
        assert!(
            selector
                .match_labels
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
            "an empty podSelector would select every pod of the namespace"
        );
        assert!(
            selects(selector, &pod_labels(cj)),
            "the NetworkPolicy does not select the CronJob's pods: {selector:?} vs {:?}",
            pod_labels(cj)
        );
    }

    let m = Manifests::from_files();
    let spec = m.network_policy().spec.as_ref().unwrap();
    assert_eq!(
        names(&spec.policy_types),
        BTreeSet::from(["Ingress", "Egress"])
    );
    assert!(
        spec.ingress.iter().flatten().next().is_none(),
        "no ingress rule: nothing connects to a run"
    );

    // Every (protocol, port) allowed out, and the rules they are in.
    let egress = spec.egress.as_deref().unwrap_or_default();
    let mut allowed: BTreeMap<(String, i32), Vec<usize>> = BTreeMap::new();
    for (i, rule) in egress.iter().enumerate() {
        let ports = rule.ports.as_deref().unwrap_or_default();
        assert!(!ports.is_empty(), "egress rule {i} allows every port");
        for p in ports {
            let number = match &p.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => *n,
                other => panic!("egress rule {i}: a numeric port, not {other:?}"),
            };
            assert!(p.end_port.is_none(), "egress rule {i}: a port range");
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            allowed.entry((protocol, number)).or_default().push(i);
        }
    }
    let ports: BTreeSet<(&str, i32)> = allowed.keys().map(|(p, n)| (p.as_str(), *n)).collect();
    assert_eq!(
        ports,
        BTreeSet::from([
            ("UDP", 53),
            ("TCP", 53),
            ("TCP", 443),
            ("TCP", 3306),
            ("TCP", 6443),
            ("TCP", 9091),
        ]),
        "DNS, the API server (443/6443), MySQL, HTTPS and the Pushgateway; nothing else"
    );

    // What the deployed config dials is among them.
    let (config, _) = deployed_config(&m);
    let UsersSource::Ga(ga) = &config.users else {
        panic!("the deployed config reads GA")
    };
    let feishu = config.feishu.as_ref().unwrap();
    let pushgateway = config.metrics.pushgateway.as_deref();
    let pushgateway = pushgateway.expect("the deployed config pushes its gauges");
    for (what, port) in [
        ("mysql_port", config.mysql.as_ref().unwrap().port),
        ("ga_api_url", url_port(&ga.api_url)),
        ("feishu_webhook_url", url_port(feishu.webhook.expose())),
        ("metrics_pushgateway", url_port(pushgateway)),
    ] {
        assert!(
            allowed.contains_key(&("TCP".to_string(), i32::from(port))),
            "{what} is dialed on port {port}, which the NetworkPolicy does not allow"
        );
    }

    // DNS only to the cluster's DNS pods.
    let dns_rules: BTreeSet<usize> = [("UDP", 53), ("TCP", 53)]
        .iter()
        .flat_map(|(p, n)| allowed[&(p.to_string(), *n)].clone())
        .collect();
    let dns = &egress[*Manifests::only(&dns_rules.into_iter().collect::<Vec<_>>(), "DNS rule")];
    let peer = Manifests::only(dns.to.as_deref().unwrap_or_default(), "DNS destination");
    let kube_system = BTreeMap::from([(
        "kubernetes.io/metadata.name".to_string(),
        "kube-system".to_string(),
    )]);
    let core_dns = BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())]);
    assert!(peer.ip_block.is_none());
    assert!(selects(
        peer.namespace_selector.as_ref().unwrap(),
        &kube_system
    ));
    assert!(selects(peer.pod_selector.as_ref().unwrap(), &core_dns));
}

// ---------------------------------------------------------------------------
// AWS.

fn json_file(rel: &str) -> Json {
    serde_json::from_str(&read(&deploy_dir().join(rel)))
        .unwrap_or_else(|e| panic!("deploy/{rel}: {e}"))
}

/// A policy element that is a string or a list of strings.
fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        other => panic!("expected a string or a list: {other}"),
    }
}

#[test]
fn the_iam_policy_allows_exactly_the_four_describe_calls() {
    let policy = json_file("aws/iam-policy.json");
    assert_eq!(policy["Version"], "2012-10-17");
    let mut actions = BTreeSet::new();
    for st in policy["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow", "{st}");
        assert!(
            st.get("NotAction").is_none() && st.get("NotResource").is_none(),
            "{st}"
        );
        actions.extend(strings(&st["Action"]));
    }
    assert_eq!(
        actions,
        BTreeSet::from(
            [
                "elasticache:DescribeCacheClusters",
                "elasticache:DescribeReplicationGroups",
                "rds:DescribeDBClusters",
                "rds:DescribeDBInstances",
            ]
            .map(String::from)
        )
    );
}

#[test]
fn the_service_account_is_annotated_for_irsa_and_the_role_trusts_exactly_it() {
    let m = Manifests::from_files();
    let sa = m.service_account();
    let arn = sa
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("eks.amazonaws.com/role-arn"))
        .expect("the IRSA annotation eks.amazonaws.com/role-arn");
    let parts: Vec<&str> = arn.split(':').collect();
    assert!(
        matches!(parts.as_slice(), ["arn", "aws", "iam", "", account, role]
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && role.starts_with("role/")),
        "{arn}"
    );

    let trust = json_file("aws/trust-policy.json");
    let st = &trust["Statement"][0];
    assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
    let conditions = st["Condition"]["StringEquals"].as_object().unwrap();
    let find = |suffix: &str| {
        conditions
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v.as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("the trust policy has no {suffix} condition"))
    };
    assert_eq!(
        find(":sub"),
        format!(
            "system:serviceaccount:{}:{}",
            sa.metadata.namespace.as_deref().unwrap(),
            sa.metadata.name.as_deref().unwrap()
        )
    );
    assert_eq!(find(":aud"), "sts.amazonaws.com");
    assert!(
        st["Principal"]["Federated"]
            .as_str()
            .unwrap()
            .starts_with(&format!("arn:aws:iam::{}:oidc-provider/", parts[4]))
    );
}

// ---------------------------------------------------------------------------
// Docker.

/// The instructions of a Dockerfile, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let text = read(&deploy_dir().join("Dockerfile"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn version_tuple(v: &str) -> (u64, u64, u64) {
    let mut it = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[test]
fn the_dockerfile_ships_the_binary_alone_as_the_cronjobs_non_root_user() {
    let instructions = dockerfile();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(
        stages.len() >= 2,
        "multi-stage: a builder and a runtime image"
    );
    let last = *stages.last().unwrap();
    let runtime = &instructions[last].1;
    assert!(
        runtime.starts_with("gcr.io/distroless/cc") || runtime.contains("-slim"),
        "small runtime image: {runtime}"
    );
    let final_stage = &instructions[last + 1..];
    let op = |name: &str| -> Vec<&String> {
        final_stage
            .iter()
            .filter(|(o, _)| o == name)
            .map(|(_, r)| r)
            .collect()
    };
    assert!(
        op("RUN").is_empty(),
        "the runtime image only receives the binary"
    );
    let copies = op("COPY");
    let copy = Manifests::only(&copies, "COPY into the runtime image");
    assert!(copy.starts_with("--from="), "{copy}");
    let target = copy.split_whitespace().last().unwrap();

    let m = Manifests::from_files();
    let pod = pod(m.cron_job());
    let psc = pod.security_context.as_ref().unwrap();
    let user = op("USER");
    let user = Manifests::only(&user, "USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let (uid, gid): (i64, i64) = (
        uid.parse()
            .expect("a numeric USER, so runAsNonRoot can be verified"),
        gid.parse().expect("a numeric group"),
    );
    assert!(uid > 0);
    assert_eq!(
        Some(uid),
        psc.run_as_user,
        "the CronJob runs as the image's user"
    );
    assert_eq!(Some(gid), psc.run_as_group);

    let entrypoint = op("ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(Manifests::only(&entrypoint, "ENTRYPOINT").as_str())
            .expect("exec form");
    assert_eq!(entrypoint, [target]);
    assert_eq!(
        container(m.cron_job()).command.as_deref(),
        Some(&entrypoint[..]),
        "the CronJob runs the image's binary"
    );

    // The builder's toolchain must build every locked dependency: the
    // highest rust-version among them, not the workspace's own.
    let builder = &instructions[stages[0]].1;
    let tag = builder
        .split_whitespace()
        .next()
        .and_then(|image| image.strip_prefix("rust:"))
        .unwrap_or_else(|| panic!("the builder is an official rust image: {builder}"));
    let builder_version = version_tuple(tag.split('-').next().unwrap());
    let out = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Json = serde_json::from_slice(&out.stdout).unwrap();
    let (needed, by) = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                version_tuple(p["rust_version"].as_str()?),
                p["name"].as_str()?,
            ))
        })
        .max()
        .unwrap();
    assert!(
        builder_version >= needed,
        "rust:{tag} is older than {needed:?}, which {by} needs"
    );
}

// ---------------------------------------------------------------------------
// systemd and cron.

/// `key=value` lines of an INI-style unit file, by section.
fn unit(name: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for line in read(&deploy_dir().join("systemd").join(name)).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
        } else {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: `{line}`"));
            out.entry(section.clone())
                .or_default()
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn setting<'a>(
    u: &'a BTreeMap<String, Vec<(String, String)>>,
    section: &str,
    key: &str,
) -> Option<&'a str> {
    u.get(section)?
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A systemd time span of one unit (`4min`, `90s`, `5m`).
fn timespan(s: &str) -> Duration {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("time span `{s}`"));
    match unit.trim() {
        "" | "s" | "sec" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(60 * n),
        "h" | "hr" => Duration::from_secs(3600 * n),
        other => panic!("time span `{s}`: unit {other}"),
    }
}

/// The interval of an OnCalendar expression, from systemd itself where it
/// is installed (the next elapses), else from the spellings of "every five
/// minutes" systemd accepts.
fn calendar_period(expr: &str) -> Duration {
    match Process::new("systemd-analyze")
        .args(["calendar", "--iterations=4", expr])
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "systemd rejects OnCalendar={expr}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // "Next elapse: Mon 2026-11-23 14:55:00 UTC", "Iter. #2: ..."
            let minutes: Vec<u64> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("elapse:") || l.contains("Iter."))
                .map(|l| {
                    let time = l.split_whitespace().rev().nth(1).unwrap();
                    let hm: Vec<u64> = time.split(':').map(|p| p.parse().unwrap()).collect();
                    hm[0] * 60 + hm[1]
                })
                .collect();
            assert_eq!(minutes.len(), 4, "systemd-analyze calendar output");
            let gaps: BTreeSet<u64> = minutes
                .windows(2)
                .map(|w| (w[1] + 24 * 60 - w[0]) % (24 * 60))
                .collect();
            assert_eq!(gaps.len(), 1, "uneven OnCalendar={expr}: {gaps:?}");
            Duration::from_secs(60 * gaps.into_iter().next().unwrap())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "systemd-analyze is not installed: checking OnCalendar={expr} by its spelling"
            );
            match expr {
                "*:0/5" | "*:00/5" | "*:0/5:00" | "*:00/5:00" | "*-*-* *:00/5:00" => FIVE_MINUTES,
                other => {
                    panic!("OnCalendar={other} is not a spelling of every five minutes known here")
                }
            }
        }
        Err(e) => panic!("systemd-analyze: {e}"),
    }
}

#[test]
fn the_systemd_timer_runs_the_oneshot_check_every_five_minutes() {
    let timer = unit("hpa-tier.timer");
    let period = match (
        setting(&timer, "Timer", "OnCalendar"),
        setting(&timer, "Timer", "OnUnitActiveSec"),
    ) {
        (Some(cal), None) => calendar_period(cal),
        (None, Some(span)) => timespan(span),
        other => panic!("the timer needs exactly one of OnCalendar/OnUnitActiveSec: {other:?}"),
    };
    assert_eq!(period, FIVE_MINUTES);
    assert_eq!(
        setting(&timer, "Install", "WantedBy"),
        Some("timers.target")
    );

    let service = unit("hpa-tier.service");
    let svc = |key: &str| setting(&service, "Service", key);
    assert_eq!(svc("Type"), Some("oneshot"));
    let user = svc("User").expect("a dedicated User");
    assert!(!user.is_empty() && user != "root", "User={user}");
    let limit = timespan(svc("TimeoutStartSec").expect("a TimeoutStartSec"));
    assert!(
        limit < period,
        "a run may last {limit:?}, longer than the period"
    );

    let exec: Vec<String> = svc("ExecStart")
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(
        exec[0].starts_with('/') && exec[0].ends_with("/hpa-tier"),
        "{exec:?}"
    );
    let env: BTreeMap<String, String> = service["Service"]
        .iter()
        .filter(|(k, _)| k == "Environment")
        .filter_map(|(_, v)| v.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (cli, path) = parse_as_the_binary(&exec, &env);
    assert!(matches!(cli.command, Command::Check { users: None }));
    assert!(!cli.dry_run);
    assert_eq!(path, Path::new("/etc/hpa-tier/config.yaml"));

    // StateDirectory=X is /var/lib/X, owned by User: the default state_file's home.
    let state = Path::new("/var/lib").join(svc("StateDirectory").expect("StateDirectory"));
    assert_eq!(
        Path::new(hpa_tier::config::DEFAULT_STATE_FILE).parent(),
        Some(state.as_path())
    );

    // What systemd itself says of the units, apart from what only an
    // installed system has (the binary, the man page).
    if let Ok(out) = Process::new("systemd-analyze")
        .arg("verify")
        .arg(deploy_dir().join("systemd/hpa-tier.service"))
        .arg(deploy_dir().join("systemd/hpa-tier.timer"))
        .output()
    {
        let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("is not executable") && !l.contains("man hpa-tier(1)"))
            .map(String::from)
            .collect();
        assert!(
            complaints.is_empty(),
            "systemd-analyze verify: {complaints:#?}"
        );
    }
}

/// The crontab: its `NAME=value` settings, the job line's schedule and user
/// fields, and its shell command as written.
fn crontab() -> (BTreeMap<String, String>, Vec<String>, String) {
    let text = read(&deploy_dir().join("cron/hpa-tier.cron"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // A job starts with its schedule; SHELL=, PATH= lines are settings.
    let is_job = |l: &&str| l.starts_with(|c: char| c.is_ascii_digit() || c == '*' || c == '@');
    let settings = lines
        .iter()
        .filter(|l| !is_job(l))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("crontab: `{l}`"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let jobs: Vec<&str> = lines.iter().copied().filter(is_job).collect();
    let mut rest = *Manifests::only(&jobs, "job line");
    let mut fields = vec![];
    for _ in 0..6 {
        let (field, tail) = rest.split_once(char::is_whitespace).unwrap();
        fields.push(field.to_string());
        rest = tail.trim_start();
    }
    (settings, fields, rest.to_string())
}

#[test]
fn the_crontab_line_runs_a_bounded_check_every_five_minutes_as_the_service_user() {
    let (settings, fields, command) = crontab();
    assert_eq!(every_n_minutes(&fields[..5].join(" ")), FIVE_MINUTES);
    let service = unit("hpa-tier.service");
    assert_eq!(
        Some(fields[5].as_str()),
        setting(&service, "Service", "User")
    );
    // pipefail is not POSIX sh.
    assert_eq!(settings.get("SHELL").map(String::as_str), Some("/bin/bash"));

    // The shell command: `set -o pipefail;`, then VAR=value prefixes,
    // `timeout N`, the binary and its arguments up to the redirection.
    let pipeline = command
        .strip_prefix("set -o pipefail;")
        .expect("the exit status of hpa-tier, not of logger, decides");
    let words: Vec<&str> = pipeline.split_whitespace().collect();
    let mut env = BTreeMap::new();
    let mut rest = &words[..];
    while let Some((k, v)) = rest.first().and_then(|w| w.split_once('=')) {
        env.insert(k.to_string(), v.to_string());
        rest = &rest[1..];
    }
    assert_eq!(
        rest[0], "timeout",
        "a hung run must end before the next slot"
    );
    let limit = Duration::from_secs(rest[1].parse().expect("timeout in seconds"));
    assert!(limit < FIVE_MINUTES, "{limit:?}");
    let argv: Vec<String> = rest[2..]
        .iter()
        .take_while(|w| !w.contains('>') && **w != "|")
        .map(|w| w.to_string())
        .collect();
    assert!(argv[0].ends_with("/hpa-tier"), "{argv:?}");
    let (cli, path) = parse_as_the_binary(&argv, &env);
    assert!(matches!(cli.command, Command::Check { users: None }));
    assert_eq!(path, Path::new("/etc/hpa-tier/config.yaml"));
}

/// The job's command run the way cron runs it (`$SHELL -c`, the crontab's
/// PATH), with `binary` in place of /usr/local/bin/hpa-tier and a `logger`
/// that keeps what it is given. Returns (stdout + stderr, which cron mails;
/// what reached syslog).
fn run_cron_command(binary: &Path) -> (String, String) {
    let (settings, _, command) = crontab();
    let dir = crate::support::tempdir();
    let syslog = dir.path().join("syslog");
    let logger = dir.path().join("logger");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\n{{ echo \"logger $*\"; cat; }} >> '{}'\n",
            syslog.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let installed = "/usr/local/bin/hpa-tier";
    assert!(command.contains(installed), "{command}");
    let command = command.replace(installed, binary.to_str().unwrap());
    let out = Process::new(&settings["SHELL"])
        .arg("-c")
        .arg(&command)
        .env_clear()
        .env(
            "PATH",
            format!("{}:{}", dir.path().display(), settings["PATH"]),
        )
        .env("HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the crontab's command");
    let mailed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (mailed, std::fs::read_to_string(&syslog).unwrap_or_default())
}

#[test]
fn the_crontab_line_mails_a_failure_with_its_exit_status_and_logs_every_run() {
    // The real binary: /etc/hpa-tier/config.yaml is absent here, so exit 2.
    assert!(!Path::new("/etc/hpa-tier/config.yaml").exists());
    let (mailed, syslog) = run_cron_command(&crate::support::bin());
    assert!(mailed.contains("exit status 2"), "mail: {mailed:?}");
    assert_eq!(mailed.lines().count(), 1, "mail: {mailed:?}");
    assert!(syslog.starts_with("logger -t hpa-tier\n"), "{syslog}");
    assert!(
        syslog.contains("cannot read config file /etc/hpa-tier/config.yaml"),
        "{syslog}"
    );

    // A run that succeeds is logged and mails nothing.
    let dir = crate::support::tempdir();
    let ok = Path::new(&crate::support::write(
        dir.path(),
        "hpa-tier",
        "#!/bin/sh\necho 'outcome: noop'\n",
    ))
    .to_path_buf();
    std::fs::set_permissions(&ok, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (mailed, syslog) = run_cron_command(&ok);
    assert_eq!(mailed, "", "a successful run must not mail");
    assert!(syslog.contains("outcome: noop"), "{syslog}");
}

// ---------------------------------------------------------------------------
// Monitoring: deploy/monitoring's alert rules and dashboard.

/// The gauges hpa-tier pushes (deploy/README.md, "Monitoring"): the
/// product's own list, so a renamed gauge fails here, not in production.
use hpa_tier_core::metrics::NAMES as METRICS;

/// The `outcome` a run that finds the lock taken pushes; the others are the
/// record's outcomes.
use hpa_tier_core::metrics::SKIPPED;

/// A PrometheusRule as the Prometheus Operator reads it, strictly: a
/// misspelt key (`annotation:`, `for_:`) is an error, not a silently
/// dropped field.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: RuleSpec,
}

#[derive(serde::Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    rules: Vec<AlertRule>,
}

#[derive(serde::Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

fn monitoring_file(name: &str) -> String {
    read(&deploy_dir().join("monitoring").join(name))
}

fn prometheus_rule() -> PrometheusRule {
    serde_yaml::from_str(&monitoring_file("prometheusrule.yaml"))
        .unwrap_or_else(|e| panic!("deploy/monitoring/prometheusrule.yaml: {e}"))
}

fn alert_rules() -> Vec<AlertRule> {
    prometheus_rule()
        .spec
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .collect()
}

fn dashboard() -> Json {
    serde_json::from_str(&monitoring_file("grafana-dashboard.json"))
        .unwrap_or_else(|e| panic!("deploy/monitoring/grafana-dashboard.json: {e}"))
}

/// Every PromQL expression of the dashboard, named by where it is, with the
/// dashboard's variables given a value (`label_values(EXPR, LABEL)` is
/// Grafana's, not PromQL: its EXPR stands for it).
fn dashboard_exprs() -> Vec<(String, String)> {
    let d = dashboard();
    let mut out = vec![];
    for panel in d["panels"].as_array().expect("panels") {
        let id = &panel["id"];
        let targets = panel["targets"].as_array();
        assert!(
            targets.is_some_and(|t| !t.is_empty()),
            "panel {id} has no query"
        );
        for t in targets.unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {id}: no expr"));
            out.push((
                format!("panel_{id}_{}", t["refId"].as_str().unwrap()),
                expr.to_string(),
            ));
        }
    }
    for var in d["templating"]["list"].as_array().expect("templating") {
        if var["type"] == "query" {
            let q = var["query"]["query"].as_str().expect("a variable's query");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(e, _)| e.trim().to_string())
                .unwrap_or_else(|| q.to_string());
            out.push((format!("variable_{}", var["name"].as_str().unwrap()), inner));
        }
    }
    out.into_iter()
        .map(|(name, e)| (name, e.replace("$cluster", "prod")))
        .collect()
}

/// Every `hpa_tier_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("hpa_tier_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The `outcome` values an expression matches (`outcome="x"`, `outcome=~"a|b"`).
fn outcome_values(expr: &str) -> Vec<String> {
    let mut out = vec![];
    for (i, _) in expr.match_indices("outcome") {
        let rest = &expr[i + "outcome".len()..];
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix("=~").or_else(|| rest.strip_prefix('=')) else {
            continue;
        };
        let value = rest
            .trim_start()
            .strip_prefix('"')
            .and_then(|r| r.split_once('"'));
        let (value, _) = value.unwrap_or_else(|| panic!("outcome matcher in {expr}"));
        out.extend(value.split('|').map(String::from));
    }
    out
}

/// The brackets of an expression pair up and its strings close.
fn assert_balanced(what: &str, expr: &str) {
    let mut stack = vec![];
    let mut in_string = false;
    for c in expr.chars() {
        match (in_string, c) {
            (true, '"') => in_string = false,
            (true, _) => {}
            (false, '"') => in_string = true,
            (false, '(' | '[' | '{') => stack.push(c),
            (false, ')' | ']' | '}') => {
                let open = stack.pop();
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                assert_eq!(open, Some(want), "{what}: unbalanced `{c}` in {expr}");
            }
            _ => {}
        }
    }
    assert!(!in_string, "{what}: unclosed string in {expr}");
    assert!(stack.is_empty(), "{what}: unclosed {stack:?} in {expr}");
}

fn promtool() -> PathBuf {
    match std::env::var_os("HPA_TIER_TEST_PROMTOOL") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "HPA_TIER_TEST_PROMTOOL is not set: run the tests with scripts/test.sh, which unpacks promtool"
        ),
    }
}

/// Runs promtool with `args` in `dir`; panics with its output unless it succeeds.
fn run_promtool(dir: &Path, args: &[&str]) -> String {
    let out = Process::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool().display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_parse_and_name_only_the_gauges_hpa_tier_pushes() {
    let rule = prometheus_rule();
    assert_eq!(rule.api_version, "monitoring.coreos.com/v1");
    assert_eq!(rule.kind, "PrometheusRule");
    assert!(rule.metadata.name.is_some());
    let rules = alert_rules();
    let names: BTreeSet<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(names.len(), rules.len(), "alert names are unique");
    let readme = read(&deploy_dir().join("README.md"));
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            // GitHub's heading anchors: lower case, spaces to dashes, no punctuation.
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect();
    for r in &rules {
        let what = &r.alert;
        assert_balanced(what, &r.expr);
        for name in metric_names(&r.expr) {
            assert!(
                METRICS.contains(&name.as_str()),
                "{what}: no such gauge {name}"
            );
        }
        for outcome in outcome_values(&r.expr) {
            assert!(
                hpa_tier_core::record::Outcome::parse(&outcome).is_some() || outcome == SKIPPED,
                "{what}: no run has outcome {outcome:?}"
            );
        }
        assert!(
            matches!(
                r.labels.get("severity").map(String::as_str),
                Some("warning" | "critical")
            ),
            "{what}: severity"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                r.annotations.get(key).is_some_and(|v| !v.trim().is_empty()),
                "{what}: no {key}"
            );
        }
        let url = &r.annotations["runbook_url"];
        let anchor = url.strip_prefix("deploy/README.md#").unwrap_or_else(|| {
            panic!("{what}: runbook_url {url} is not a section of deploy/README.md")
        });
        assert!(
            anchors.contains(anchor),
            "{what}: deploy/README.md has no section #{anchor}"
        );
    }
    // Every name anywhere in the file (comments and annotations included).
    for name in metric_names(&monitoring_file("prometheusrule.yaml")) {
        assert!(
            METRICS.contains(&name.as_str()),
            "prometheusrule.yaml: no such gauge {name}"
        );
    }

    // Prometheus's own parser: PromQL, durations, annotation templates.
    let dir = crate::support::tempdir();
    let spec = serde_yaml::to_string(&rule.spec).unwrap();
    crate::support::write(dir.path(), "rules.yaml", &spec);
    let out = run_promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{out}"
    );
}

#[test]
fn the_dashboard_parses_shows_every_gauge_and_its_queries_are_promql() {
    let d = dashboard();
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    let vars: BTreeSet<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, BTreeSet::from(["cluster", "datasource"]));
    let mut ids = BTreeSet::new();
    for panel in d["panels"].as_array().unwrap() {
        let id = panel["id"].as_u64().expect("a numeric panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "panel {id} is wider than the dashboard");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {id}");
    }

    let exprs = dashboard_exprs();
    let mut shown = BTreeSet::new();
    for (what, expr) in &exprs {
        assert_balanced(what, expr);
        shown.extend(metric_names(expr));
        for outcome in outcome_values(expr) {
            assert!(
                hpa_tier_core::record::Outcome::parse(&outcome).is_some() || outcome == SKIPPED
            );
        }
    }
    let everywhere = metric_names(&monitoring_file("grafana-dashboard.json"));
    for name in &everywhere {
        assert!(
            METRICS.contains(&name.as_str()),
            "dashboard: no such gauge {name}"
        );
    }
    assert_eq!(
        shown,
        METRICS
            .iter()
            .map(|m| m.to_string())
            .collect::<BTreeSet<_>>(),
        "the dashboard shows every gauge"
    );

    // Prometheus's parser, through recording rules made of the queries.
    let rules = serde_json::json!({ "groups": [{
        "name": "dashboard",
        "rules": exprs.iter().map(|(what, expr)| serde_json::json!({
            "record": format!("dashboard:{what}"),
            "expr": expr,
        })).collect::<Vec<_>>(),
    }]});
    let dir = crate::support::tempdir();
    crate::support::write(
        dir.path(),
        "dashboard.yaml",
        &serde_yaml::to_string(&rules).unwrap(),
    );
    run_promtool(dir.path(), &["check", "rules", "dashboard.yaml"]);
}

/// One cluster's runs for `promtool test rules`: at each minute listed, a run
/// with that outcome pushes, as hpa-tier does, every outcome series (1 for
/// its own, 0 for the others), the run's start and the latest success
/// (noop, applied, held or blocked: the run did its pass). Between pushes
/// the Pushgateway keeps serving the last values.
struct Scenario {
    cluster: &'static str,
    runs: Vec<(u32, &'static str)>,
    /// Minutes of series.
    until: u32,
    /// (minute, the alerts firing then); every other alert must not be.
    expect: Vec<(u32, Vec<&'static str>)>,
}

fn every_five_minutes(from: u32, to: u32, outcome: &'static str) -> Vec<(u32, &'static str)> {
    (from..=to).step_by(5).map(|m| (m, outcome)).collect()
}

impl Scenario {
    /// The `tests:` entry of this scenario.
    fn promtool_test(&self, rules: &[AlertRule]) -> Json {
        let success = |o: &str| matches!(o, "noop" | "applied" | "held" | "blocked");
        let latest = |m: u32, only_success: bool| {
            self.runs
                .iter()
                .rfind(|(at, o)| *at <= m && (!only_success || success(o)))
                .copied()
        };
        let values = |f: &dyn Fn(u32) -> String| -> String {
            (0..=self.until).map(f).collect::<Vec<_>>().join(" ")
        };
        let labels = format!("job=\"hpa-tier\", cluster=\"{}\"", self.cluster);
        let mut series = vec![
            serde_json::json!({
                "series": format!("hpa_tier_last_run_timestamp_seconds{{{labels}}}"),
                "values": values(&|m| latest(m, false).map_or("_".into(), |(at, _)| (at * 60).to_string())),
            }),
            serde_json::json!({
                "series": format!("hpa_tier_last_success_timestamp_seconds{{{labels}}}"),
                "values": values(&|m| latest(m, true).map_or("_".into(), |(at, _)| (at * 60).to_string())),
            }),
        ];
        for outcome in hpa_tier_core::metrics::OUTCOMES {
            series.push(serde_json::json!({
                "series": format!("hpa_tier_run_outcome{{{labels}, outcome=\"{outcome}\"}}"),
                "values": values(&|m| match latest(m, false) {
                    None => "_".into(),
                    Some((_, o)) if o == outcome => "1".into(),
                    Some(_) => "0".into(),
                }),
            }));
        }
        if self.runs.is_empty() {
            // Nothing pushed at all: only some other job's series exist.
            series = vec![
                serde_json::json!({"series": "up{job=\"other\"}", "values": values(&|_| "1".into())}),
            ];
        }
        let mut checks = vec![];
        for (minute, firing) in &self.expect {
            for r in rules {
                let fires = firing.contains(&r.alert.as_str());
                let mut labels = serde_json::json!({ "severity": r.labels["severity"] });
                if r.expr.contains("absent(") {
                    labels["job"] = "hpa-tier".into();
                } else {
                    labels["cluster"] = self.cluster.into();
                }
                checks.push(serde_json::json!({
                    "eval_time": format!("{minute}m"),
                    "alertname": r.alert,
                    "exp_alerts": if fires { vec![serde_json::json!({"exp_labels": labels})] } else { vec![] },
                }));
            }
        }
        serde_json::json!({
            "name": self.cluster,
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": checks,
        })
    }
}

#[test]
fn each_alert_fires_in_its_situation_and_no_other() {
    let rules = alert_rules();
    let all: BTreeSet<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(
        all,
        BTreeSet::from([
            "HpaTierNotRunning",
            "HpaTierNeverPushed",
            "HpaTierBlocked",
            "HpaTierFailing",
            "HpaTierLockStuck",
        ])
    );
    let then = |first: Vec<(u32, &'static str)>, rest: Vec<(u32, &'static str)>| {
        first.into_iter().chain(rest).collect::<Vec<_>>()
    };
    let scenarios = [
        Scenario {
            cluster: "healthy",
            runs: then(
                every_five_minutes(0, 30, "noop"),
                every_five_minutes(35, 90, "applied"),
            ),
            until: 90,
            expect: vec![(30, vec![]), (60, vec![]), (90, vec![])],
        },
        // The last run at 30m: 15 minutes later the alert fires, not before.
        Scenario {
            cluster: "stopped",
            runs: every_five_minutes(0, 30, "noop"),
            until: 60,
            expect: vec![(44, vec![]), (46, vec!["HpaTierNotRunning"])],
        },
        // Blocked from 5m on: 30 minutes of it fire; blocked is no failure.
        Scenario {
            cluster: "blocked",
            runs: then(vec![(0, "noop")], every_five_minutes(5, 60, "blocked")),
            until: 60,
            expect: vec![
                (34, vec![]),
                (36, vec!["HpaTierBlocked"]),
                (60, vec!["HpaTierBlocked"]),
            ],
        },
        Scenario {
            cluster: "unblocked",
            runs: then(
                then(vec![(0, "noop")], every_five_minutes(5, 30, "blocked")),
                every_five_minutes(35, 60, "applied"),
            ),
            until: 60,
            expect: vec![(34, vec![]), (40, vec![]), (60, vec![])],
        },
        // The last success at 10m, then errors and partial runs: three
        // slots without a success (past 25m) fire.
        Scenario {
            cluster: "failing",
            runs: then(
                every_five_minutes(0, 10, "noop"),
                vec![
                    (15, "error"),
                    (20, "partial"),
                    (25, "error"),
                    (30, "error"),
                    (35, "error"),
                ],
            ),
            until: 40,
            expect: vec![
                (24, vec![]),
                (26, vec!["HpaTierFailing"]),
                (40, vec!["HpaTierFailing"]),
            ],
        },
        // Failures between successes never add up.
        Scenario {
            cluster: "flapping",
            runs: (0..=60)
                .step_by(5)
                .map(|m| (m, if m % 10 == 0 { "error" } else { "noop" }))
                .collect(),
            until: 60,
            expect: vec![(30, vec![]), (45, vec![]), (60, vec![])],
        },
        // Runs from 15m on find the lock taken: past 25m no success for three
        // slots, held for five minutes more.
        Scenario {
            cluster: "locked",
            runs: then(
                every_five_minutes(0, 10, "noop"),
                every_five_minutes(15, 50, SKIPPED),
            ),
            until: 50,
            expect: vec![
                (29, vec![]),
                (31, vec!["HpaTierLockStuck"]),
                (50, vec!["HpaTierLockStuck"]),
            ],
        },
        // A run or two skipped now and then is normal (a slow run overran).
        Scenario {
            cluster: "overran",
            runs: then(
                then(
                    every_five_minutes(0, 10, "noop"),
                    vec![(15, SKIPPED), (20, SKIPPED)],
                ),
                every_five_minutes(25, 50, "noop"),
            ),
            until: 50,
            expect: vec![(24, vec![]), (31, vec![]), (50, vec![])],
        },
        Scenario {
            cluster: "nothing-pushed",
            runs: vec![],
            until: 30,
            expect: vec![(14, vec![]), (16, vec!["HpaTierNeverPushed"])],
        },
    ];

    // The rules without their annotations: promtool compares those too, and
    // they hold rendered values; `check rules` has parsed them already.
    let mut spec = prometheus_rule().spec;
    for g in &mut spec.groups {
        for r in &mut g.rules {
            r.annotations.clear();
        }
    }
    let dir = crate::support::tempdir();
    crate::support::write(
        dir.path(),
        "rules.yaml",
        &serde_yaml::to_string(&spec).unwrap(),
    );
    let tests = serde_json::json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": scenarios.iter().map(|s| s.promtool_test(&rules)).collect::<Vec<_>>(),
    });
    crate::support::write(
        dir.path(),
        "tests.yaml",
        &serde_yaml::to_string(&tests).unwrap(),
    );
    let out = run_promtool(dir.path(), &["test", "rules", "tests.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}
