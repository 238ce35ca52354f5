//! The built binary, run the way cron runs it, against everything at once:
//! the Google, Kubernetes and Feishu stand-ins, moto for RDS/ElastiCache and
//! a fresh MariaDB database (or the file store). Each test builds its own
//! `Rig`, so tests run in parallel without sharing state. Time passing (the
//! scale-down window, a hold expiring) is simulated by moving recorded times
//! back in the database, which is what the tool reads.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Duration;

use hpa_tier_standins::feishu::Feishu;
use hpa_tier_standins::google::{self, Google, ServiceAccount};
use hpa_tier_standins::kube::{self, KubeAuth, KubeStandin};
use mysql_async::prelude::Queryable;

use crate::support::{self, FreshDb, moto, mysql_exec, stderr, stdout, tls_mariadb, unique};

const AWS_SECRET: &str = "e2e-aws-secret-never-printed";
const FEISHU_TOKEN: &str = "e2e-bot-token-never-printed";
const FEISHU_SECRET: &str = "e2e-feishu-signing-secret";
const MYSQL_PASSWORD: &str = "e2e-mysql-password-never-printed";

/// The six services of config/example.yaml: (service, namespace, HPA).
pub(crate) const SERVICES: [(&str, &str, &str); 6] = [
    ("istio-ingress", "istio-system", "ingressgateway-hpa"),
    ("gateway", "prod", "gateway"),
    ("web", "prod", "web"),
    ("hermes", "prod", "hermes"),
    ("passport", "prod", "passport"),
    ("project", "prod", "project"),
];

/// The spool ConfigMap of deploy/kubernetes/spool.yaml: (namespace, name).
const SPOOL: (&str, &str) = ("hpa-tier", "hpa-tier-spool");

/// minReplicas per service of each tier of the built-in table.
pub(crate) fn tier(capacity: u32) -> [u32; 6] {
    match capacity {
        600 => [2, 2, 2, 2, 2, 2],
        1000 => [4, 2, 3, 4, 8, 2],
        2000 => [6, 3, 6, 8, 12, 3],
        3000 => [8, 4, 9, 12, 16, 4],
        4000 => [10, 5, 12, 16, 20, 5],
        5000 => [12, 6, 15, 20, 24, 6],
        _ => panic!("no tier {capacity}"),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum StoreKind {
    Mysql,
    File,
}

/// What a rig starts with.
pub(crate) struct Setup {
    pub(crate) store: StoreKind,
    /// Aurora writer, then readers.
    pub(crate) rds: Vec<&'static str>,
    pub(crate) redis: &'static str,
    pub(crate) scale_down_minutes: u32,
    pub(crate) timeout_seconds: u32,
}

impl Default for Setup {
    fn default() -> Self {
        // Big enough for every tier: the prerequisites never block.
        Setup {
            store: StoreKind::Mysql,
            rds: vec!["db.r5.12xlarge", "db.r5.12xlarge"],
            redis: "cache.c7gn.xlarge",
            scale_down_minutes: 30,
            timeout_seconds: 3,
        }
    }
}

pub(crate) struct Rig {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) google: Google,
    pub(crate) kube: KubeStandin,
    pub(crate) feishu: Feishu,
    pub(crate) db: Option<FreshDb>,
    pub(crate) mysql_user: String,
    pub(crate) rds_members: Vec<String>,
    pub(crate) config: String,
    pub(crate) config_text: String,
}

impl Rig {
    pub(crate) fn new() -> Rig {
        Rig::with(Setup::default())
    }

    pub(crate) fn with(setup: Setup) -> Rig {
        let dir = support::tempdir();
        let account = ServiceAccount::for_tests();
        let google = Google::spawn(&account).unwrap();
        let key_file = account.write_key_file(dir.path(), &google.token_uri());
        let kube = KubeStandin::start();
        kube.seed_all(kube::example_hpas());
        let kubeconfig = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig, "e2e", &KubeAuth::None);
        let feishu = Feishu::spawn(FEISHU_TOKEN, Some(FEISHU_SECRET));
        let ((rds, members), redis) = block_on(async {
            (
                moto::aurora(&setup.rds).await,
                moto::replication_group(setup.redis).await,
            )
        });
        let (db, mysql_user, mysql) = match setup.store {
            StoreKind::Mysql => {
                let db = FreshDb::new();
                let user = unique("e2e_");
                mysql_exec(&format!(
                    "CREATE USER '{user}'@'%' IDENTIFIED BY '{MYSQL_PASSWORD}'"
                ));
                mysql_exec(&format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", db.name));
                let cfg = format!(
                    "mysql_host: 127.0.0.1\nmysql_port: 3306\nmysql_user: {user}\nmysql_pwd: \"${{MYSQL_PWD}}\"\nmysql_db: {}\n",
                    db.name
                );
                (Some(db), user, cfg)
            }
            StoreKind::File => (None, String::new(), "mysql_host: \"\"\n".to_string()),
        };
        let services: String = SERVICES
            .iter()
            .map(|(s, ns, hpa)| format!("  {s}: {{ hpa: {hpa}, namespace: {ns} }}\n"))
            .collect();
        let config_text = format!(
            r#"property_id: "{property}"
key_file_location: "{key_file}"
ga_api_url: "{ga}"
users: {{ source: ga, ga_minutes: 30 }}
aws_region: "{region}"
aws_access_key_id: "AKIAE2ETEST"
aws_secret_access_key: "${{AWS_SECRET}}"
aws_endpoint_url: "{moto}"
rds_cluster_name: "{rds}"
redis_oss_name: "{redis}"
eks_cluster_name: "{cluster}"
cluster_context: "e2e"
kube_file_path: "{kubeconfig}"
feishu_webhook_url: "{webhook}"
feishu_secret: "${{FEISHU_SECRET}}"
hpa_name: ingressgateway-hpa
hpa_namespace: istio-system
hpa_service_name: istio-ingress
check_time: 5
scale_down_minutes: {scale_down}
notify_repeat_minutes: 60
timeout_seconds: {timeout}
state_file: "{state}"
{mysql}services:
{services}"#,
            property = google::PROPERTY,
            key_file = key_file.display(),
            ga = google.url(),
            region = moto::REGION,
            moto = support::moto_url(),
            kubeconfig = kubeconfig.display(),
            webhook = feishu.webhook_url(),
            scale_down = setup.scale_down_minutes,
            timeout = setup.timeout_seconds,
            state = dir.path().join("runs.jsonl").display(),
            cluster = unique("e2e-"),
        );
        let config = support::write(dir.path(), "config.yaml", &config_text);
        Rig {
            dir,
            google,
            kube,
            feishu,
            db,
            mysql_user,
            rds_members: members,
            config,
            config_text,
        }
    }

    pub(crate) fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_SECRET", AWS_SECRET),
            ("FEISHU_SECRET", FEISHU_SECRET),
            ("MYSQL_PWD", MYSQL_PASSWORD),
        ]
    }

    /// Runs `hpa-tier -c <config> ARGS` with the rig's environment.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["-c", self.config.as_str()];
        all.extend_from_slice(args);
        support::run(&all, &self.env())
    }

    /// As [`Rig::run`], under `umask`.
    fn run_under_umask(&self, umask: &str, args: &[&str]) -> Output {
        let mut all = vec!["-c", self.config.as_str()];
        all.extend_from_slice(args);
        support::run_under_umask(umask, &all, &self.env())
    }

    /// Rewrites the config (e.g. to point MySQL at a dead port).
    pub(crate) fn set_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    /// minReplicas of the six HPAs, in `SERVICES` order.
    pub(crate) fn mins(&self) -> [u32; 6] {
        SERVICES.map(|(_, ns, name)| {
            self.kube.hpa(ns, name).unwrap()["spec"]["minReplicas"]
                .as_u64()
                .unwrap() as u32
        })
    }

    pub(crate) fn annotation(&self, ns: &str, name: &str) -> Option<String> {
        self.kube.hpa(ns, name).unwrap()["metadata"]["annotations"]["hpa-tier/capacity"]
            .as_str()
            .map(str::to_string)
    }

    /// Puts every HPA at `capacity`'s values (as if a past run had).
    pub(crate) fn seed_tier(&self, capacity: u32) {
        for ((_, ns, name), min) in SERVICES.iter().zip(tier(capacity)) {
            self.kube.edit(ns, name, |h| {
                h["spec"]["minReplicas"] = min.into();
                h["spec"]["maxReplicas"] = (min.max(10) + 10).into();
                h["metadata"]["annotations"]["hpa-tier/capacity"] = capacity.to_string().into();
            });
        }
    }

    pub(crate) fn patches(&self) -> usize {
        self.kube
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    }

    pub(crate) fn db_name(&self) -> &str {
        &self.db.as_ref().expect("a MySQL rig").name
    }

    /// Rows of `hpa_tier_runs`, oldest first.
    pub(crate) fn rows(&self) -> Vec<Row> {
        rows_of(self.db_name())
    }

    /// Points the config at another MySQL account and database (same password).
    pub(crate) fn use_mysql_account(&self, user: &str, db: &str) {
        let text = self
            .config_text
            .replace(
                &format!("mysql_user: {}\n", self.mysql_user),
                &format!("mysql_user: {user}\n"),
            )
            .replace(
                &format!("mysql_db: {}\n", self.db_name()),
                &format!("mysql_db: {db}\n"),
            );
        assert!(
            text.contains(&format!("mysql_user: {user}\n"))
                && text.contains(&format!("mysql_db: {db}\n")),
            "the rig's config names its MySQL account"
        );
        self.set_config(&text);
    }

    /// The cluster the rig's records belong to (`eks_cluster_name`).
    pub(crate) fn cluster(&self) -> String {
        self.config_text
            .lines()
            .find_map(|l| l.strip_prefix("eks_cluster_name: "))
            .map(|v| v.trim_matches('"').to_string())
            .expect("the rig's config names its cluster")
    }

    pub(crate) fn sql_u32(&self, sql: &str) -> Option<u32> {
        query_u32(self.db_name(), sql)
    }

    pub(crate) fn sql(&self, sql: &str) {
        mysql_exec(&format!("USE `{}`; {sql}", self.db_name()));
    }

    /// Moves every recorded time `minutes` into the past.
    pub(crate) fn age_records(&self, minutes: u32) {
        self.sql(&format!(
            "UPDATE hpa_tier_runs SET started_at = started_at - INTERVAL {minutes} MINUTE, \
             finished_at = finished_at - INTERVAL {minutes} MINUTE, \
             hold_until = hold_until - INTERVAL {minutes} MINUTE"
        ));
    }

    /// Five minutes pass, then cron runs `check`: `runs` times. The
    /// outcome of each run, in order.
    pub(crate) fn check_every_five_minutes(&self, runs: usize) -> Vec<String> {
        (0..runs)
            .map(|_| {
                self.age_records(5);
                let o = self.run(&["check"]);
                assert_eq!(code(&o), 0, "{}", show(&o));
                self.rows().last().unwrap().outcome.clone()
            })
            .collect()
    }

    pub(crate) fn feishu_lines(&self) -> Vec<String> {
        self.feishu.messages().iter().map(|m| m.line()).collect()
    }

    pub(crate) fn resize_reader(&self, class: &str) {
        block_on(moto::resize_instance(&self.rds_members[1], class));
    }

    /// The stand-in gets what deploy/kubernetes/spool.yaml creates: the
    /// empty spool ConfigMap, and its Role as the only ConfigMap access.
    fn seed_spool(&self) {
        let path = support::root().join("deploy/kubernetes/spool.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let cm = serde_yaml::Deserializer::from_str(&text)
            .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
            .find(|v| v["kind"] == "ConfigMap")
            .expect("spool.yaml ships the ConfigMap");
        self.kube.insert_configmap(cm).unwrap();
        self.kube
            .restrict_configmaps(kube::RbacRule::from_roles_yaml(&text).unwrap());
    }

    /// The rig's config, spooling to that ConfigMap.
    fn with_spool(&self) -> String {
        format!(
            "{}spool_configmap: \"{}/{}\"\n",
            self.config_text, SPOOL.0, SPOOL.1
        )
    }

    /// `text` with MySQL on a port nothing listens on.
    fn mysql_down(&self, text: &str) -> String {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        let down = text.replace("mysql_port: 3306", &format!("mysql_port: {port}"));
        assert_ne!(down, text);
        down
    }

    /// The spool ConfigMap's data.
    fn spooled(&self) -> BTreeMap<String, String> {
        self.kube
            .configmap_data(SPOOL.0, SPOOL.1)
            .expect("the spool ConfigMap")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if self.db.is_some() {
            mysql_exec(&format!("DROP USER IF EXISTS '{}'@'%'", self.mysql_user));
        }
    }
}

/// Rows of `hpa_tier_runs` in database `db`, oldest first (none without the table).
pub(crate) fn rows_of(db: &str) -> Vec<Row> {
    let db = db.to_string();
    block_on(async move {
        let pool = mysql_async::Pool::new(format!("{}/{db}", support::mysql_root_url()).as_str());
        let mut c = pool.get_conn().await.unwrap();
        let rows: Vec<RawRow> = c
            .query(
                "SELECT command, users, needed_capacity, from_capacity, to_capacity, outcome, message, \
                 CAST(detail AS CHAR) FROM hpa_tier_runs ORDER BY id",
            )
            .await
            .unwrap_or_default();
        drop(c);
        pool.disconnect().await.unwrap();
        rows.into_iter()
            .map(
                |(command, users, needed, from, to, outcome, message, detail)| Row {
                    command,
                    users,
                    needed,
                    from,
                    to,
                    outcome,
                    message,
                    detail: serde_json::from_str(&detail).unwrap(),
                },
            )
            .collect()
    })
}

/// command, users, needed, from, to, outcome, message, detail.
type RawRow = (
    String,
    Option<u32>,
    Option<u32>,
    Option<u32>,
    Option<u32>,
    String,
    String,
    String,
);

#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) command: String,
    pub(crate) users: Option<u32>,
    pub(crate) needed: Option<u32>,
    pub(crate) from: Option<u32>,
    pub(crate) to: Option<u32>,
    pub(crate) outcome: String,
    pub(crate) message: String,
    pub(crate) detail: serde_json::Value,
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

pub(crate) fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

// ---------------------------------------------------------------------------
// check

#[test]
fn check_scales_up_one_tier() {
    let rig = Rig::new();
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(1000));
    for (_, ns, name) in SERVICES {
        assert_eq!(
            rig.annotation(ns, name).as_deref(),
            Some("1000"),
            "{ns}/{name}"
        );
    }
    let out = stdout(&o);
    assert!(out.contains("scaled up 600 → 1000"), "{out}");
    assert!(
        out.contains("prod/passport") && out.contains("min 2 → 8"),
        "{out}"
    );
    assert!(out.contains("outcome: applied"), "{out}");
    let rows = rig.rows();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (
            r.command.as_str(),
            r.users,
            r.needed,
            r.from,
            r.to,
            r.outcome.as_str()
        ),
        (
            "check",
            Some(700),
            Some(1000),
            Some(600),
            Some(1000),
            "applied"
        )
    );
    let lines = rig.feishu_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("600 → 1000"), "{lines:?}");
    assert!(matches!(
        rig.feishu.messages()[0].signature,
        hpa_tier_standins::feishu::Signature::Verified
    ));
}

#[test]
fn check_jumps_several_tiers_at_once() {
    let rig = Rig::new();
    rig.google.set_users(3500);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(4000));
    let r = &rig.rows()[0];
    assert_eq!(
        (r.from, r.to, r.outcome.as_str()),
        (Some(600), Some(4000), "applied")
    );
    // passport's max was 10: raised to its new min of 20, metrics untouched.
    let p = rig.kube.hpa("prod", "passport").unwrap();
    assert_eq!(p["spec"]["maxReplicas"], 20);
    assert_eq!(p["spec"]["metrics"][0]["resource"]["name"], "cpu");
    assert_eq!(
        p["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        300
    );
}

#[test]
fn check_with_nothing_to_do_sends_no_patch() {
    let rig = Rig::new();
    rig.seed_tier(2000);
    rig.google.set_users(1500);
    rig.kube.clear_requests();
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.patches(), 0);
    assert_eq!(rig.mins(), tier(2000));
    let r = &rig.rows()[0];
    assert_eq!(
        (r.from, r.to, r.outcome.as_str()),
        (Some(2000), Some(2000), "noop")
    );
    assert!(rig.feishu.messages().is_empty());
}

#[test]
fn check_blocked_by_a_small_rds_reader_then_allowed_after_it_grows() {
    let rig = Rig::with(Setup {
        rds: vec!["db.r5.8xlarge", "db.r7g.large"],
        ..Setup::default()
    });
    rig.google.set_users(1500);
    rig.kube.clear_requests();
    let o = rig.run(&["check"]);
    assert_eq!(
        code(&o),
        0,
        "blocked and announced is a success:\n{}",
        show(&o)
    );
    assert_eq!(rig.patches(), 0, "HPAs untouched");
    assert_eq!(rig.mins(), tier(600));
    let reader = &rig.rds_members[1];
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "needs RDS db.r5.8xlarge; reader {reader} is db.r7g.large"
        )),
        "{out}"
    );
    assert!(
        out.contains("aws rds modify-db-instance") && out.contains(reader),
        "{out}"
    );
    let r = &rig.rows()[0];
    assert_eq!(
        (r.from, r.to, r.outcome.as_str()),
        (Some(600), Some(600), "blocked")
    );
    let lines = rig.feishu_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(reader) && lines[0].contains("db.r5.8xlarge"),
        "{lines:?}"
    );

    // Still blocked five minutes later: the same notice is not repeated.
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.feishu.messages().len(), 1, "repeat suppressed");
    assert!(stdout(&o).contains("blocked suppressed"), "{}", stdout(&o));

    // The DBA resizes the reader; a bigger class than required passes.
    rig.resize_reader("db.r6i.16xlarge");
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(2000));
    let rows = rig.rows();
    let last = rows.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.outcome.as_str()),
        (Some(600), Some(2000), "applied")
    );
}

#[test]
fn check_steps_as_far_as_the_prerequisites_allow() {
    // db.r5.8xlarge everywhere: enough up to 3000, not for 4000 (db.r5.12xlarge).
    let rig = Rig::with(Setup {
        rds: vec!["db.r5.8xlarge", "db.r5.8xlarge"],
        ..Setup::default()
    });
    rig.google.set_users(3900);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(3000));
    let r = &rig.rows()[0];
    assert_eq!((r.to, r.outcome.as_str()), (Some(3000), "applied"));
    assert_eq!(r.detail["blocked"]["wanted"], 4000);
    let lines = rig.feishu_lines();
    assert_eq!(lines.len(), 2, "tier change and blocked notice: {lines:?}");
}

#[test]
fn dry_run_changes_nothing_anywhere() {
    let rig = Rig::new();
    rig.google.set_users(2500);
    rig.kube.clear_requests();
    let o = rig.run(&["--dry-run", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout(&o);
    assert!(out.starts_with("DRY RUN check"), "{out}");
    assert!(
        out.contains("scaled up 600 → 3000") && out.contains("min 2 → 16"),
        "{out}"
    );
    assert_eq!(rig.patches(), 0);
    assert_eq!(rig.mins(), tier(600));
    assert!(rig.feishu.messages().is_empty());
    // Not even the schema.
    let db = rig.db_name().to_string();
    let tables: Vec<String> = block_on(async move {
        let pool = mysql_async::Pool::new(support::mysql_root_url().as_str());
        let mut c = pool.get_conn().await.unwrap();
        let t = c
            .exec(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                (db,),
            )
            .await
            .unwrap();
        drop(c);
        pool.disconnect().await.unwrap();
        t
    });
    assert!(tables.is_empty(), "{tables:?}");
    assert!(!rig.dir.path().join("runs.jsonl").exists());
}

#[test]
fn dry_run_json_is_one_document_with_the_plan() {
    let rig = Rig::new();
    rig.google.set_users(700);
    let o = rig.run(&["--dry-run", "-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["users"], 700);
    assert_eq!(v["current"]["capacity"], 600);
    assert_eq!(v["to_capacity"], 1000);
    assert_eq!(v["changes"].as_array().unwrap().len(), 6);
    assert_eq!(v["exit_code"], 0);
}

#[test]
fn ga_failures_change_nothing_record_an_error_and_exit_1() {
    let rig = Rig::new();
    rig.google.set_users(2500);
    let faults = [
        (
            "503",
            google::Fault::rpc(503, "UNAVAILABLE", "The service is currently unavailable."),
        ),
        (
            "garbage",
            google::Fault::garbage("<html>proxy error</html>"),
        ),
        ("hang", google::Fault::Hang),
    ];
    for (i, (what, fault)) in faults.into_iter().enumerate() {
        rig.google.fail_next_report(fault);
        let started = std::time::Instant::now();
        let o = rig.run(&["check"]);
        assert_eq!(code(&o), 1, "{what}: {}", show(&o));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert_eq!(rig.mins(), tier(600), "{what}: nothing changed");
        let rows = rig.rows();
        assert_eq!(rows.len(), i + 1);
        let r = rows.last().unwrap();
        assert_eq!(
            (r.users, r.outcome.as_str(), r.to),
            (None, "error", Some(600)),
            "{what}"
        );
    }
    // The error notice went out once, not three times.
    let errors: Vec<String> = rig
        .feishu_lines()
        .into_iter()
        .filter(|l| l.contains("metric"))
        .collect();
    assert!(!errors.is_empty());
}

// ---------------------------------------------------------------------------
// upgrade

#[test]
fn upgrade_moves_to_the_exact_tier_and_is_recorded() {
    let rig = Rig::new();
    let o = rig.run(&["upgrade", "2000"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(2000));
    let r = &rig.rows()[0];
    assert_eq!(
        (
            r.command.as_str(),
            r.users,
            r.needed,
            r.to,
            r.outcome.as_str()
        ),
        ("upgrade", None, Some(2000), Some(2000), "applied")
    );
    // Down needs no prerequisites either.
    let o = rig.run(&["upgrade", "600"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(600));
}

#[test]
fn upgrade_refused_without_prerequisites_exits_3_and_force_overrides() {
    let rig = Rig::with(Setup {
        rds: vec!["db.r7g.large"],
        ..Setup::default()
    });
    let o = rig.run(&["upgrade", "2000"]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert_eq!(rig.mins(), tier(600));
    assert!(stdout(&o).contains("refused"), "{}", show(&o));
    let r = &rig.rows()[0];
    assert_eq!(
        (r.command.as_str(), r.outcome.as_str(), r.to),
        ("upgrade", "blocked", Some(600))
    );

    let o = rig.run(&["upgrade", "2000", "--force"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(2000));
}

#[test]
fn upgrade_to_an_unknown_capacity_exits_2_listing_the_valid_ones() {
    let rig = Rig::new();
    let o = rig.run(&["upgrade", "1500"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(
        stderr(&o).contains("600, 1000, 2000, 3000, 4000, 5000"),
        "{}",
        show(&o)
    );
    let o = rig.run(&["upgrade", "2000", "--hold", "soon"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("--hold"), "{}", show(&o));
    assert_eq!(rig.mins(), tier(600));
    assert!(rig.rows().is_empty());
}

#[test]
fn a_hold_blocks_scale_down_until_it_expires() {
    let rig = Rig::new();
    let o = rig.run(&["upgrade", "3000", "--hold", "2h"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    rig.google.set_users(100);
    // Well past the 30-minute window, but inside the hold.
    rig.age_records(60);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(3000));
    assert!(stdout(&o).contains("hold at 3000"), "{}", show(&o));
    assert_eq!(rig.rows().last().unwrap().outcome, "held");

    // Two hours later the hold has expired. Its runs needed its tier, and
    // the last reading is two hours old: the ordinary window starts now,
    // and takes 30 minutes of good readings.
    rig.age_records(120);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout(&o).contains("coverage"), "{}", show(&o));
    assert_eq!(rig.mins(), tier(3000));
    let outcomes = rig.check_every_five_minutes(6);
    assert_eq!(
        outcomes,
        ["held", "held", "held", "held", "held", "applied"]
    );
    assert_eq!(rig.mins(), tier(600));
}

#[test]
fn scale_down_only_after_the_window() {
    let rig = Rig::new();
    rig.google.set_users(1800);
    assert_eq!(code(&rig.run(&["check"])), 0);
    assert_eq!(rig.mins(), tier(2000));
    rig.google.set_users(300);
    // A run every five minutes: the run that needed 2000 leaves the
    // 30-minute window with the sixth (aged by exactly 30 minutes, plus
    // the seconds the runs took).
    let outcomes = rig.check_every_five_minutes(6);
    assert_eq!(
        outcomes,
        ["held", "held", "held", "held", "held", "applied"]
    );
    assert_eq!(rig.mins(), tier(600));
    let r = rig.rows().pop().unwrap();
    assert_eq!(
        (r.from, r.to, r.outcome.as_str()),
        (Some(2000), Some(600), "applied")
    );
}

#[test]
fn one_low_reading_after_a_metric_outage_holds_the_tier_until_the_window_is_covered() {
    let rig = Rig::new();
    rig.google.set_users(2500);
    assert_eq!(code(&rig.run(&["check"])), 0);
    assert_eq!(rig.mins(), tier(3000));
    // GA fails at every run for 40 minutes, then reads 10 users.
    for _ in 0..8 {
        rig.google
            .fail_next_report(google::Fault::rpc(503, "UNAVAILABLE", "quota exhausted"));
        rig.age_records(5);
        assert_eq!(code(&rig.run(&["check"])), 1);
    }
    rig.google.set_users(10);
    rig.age_records(5);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        rig.mins(),
        tier(3000),
        "one low reading must not drop tiers"
    );
    let r = rig.rows().pop().unwrap();
    assert_eq!(r.outcome, "held");
    assert_eq!(r.detail["held_by"]["by"], "coverage", "{}", r.detail);
    // Thirty minutes of good readings later it steps down.
    let outcomes = rig.check_every_five_minutes(6);
    assert_eq!(
        outcomes,
        ["held", "held", "held", "held", "held", "applied"]
    );
    assert_eq!(rig.mins(), tier(600));
}

// ---------------------------------------------------------------------------
// Kubernetes failures

#[test]
fn a_409_conflict_is_retried() {
    let rig = Rig::new();
    rig.kube.fail("prod", "web", kube::Fault::Conflicts(2));
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(1000));
    assert_eq!(rig.rows()[0].outcome, "applied");
}

#[test]
fn a_permanent_500_on_one_hpa_is_partial_then_converged_by_the_next_run() {
    let rig = Rig::new();
    rig.kube.fail("prod", "hermes", kube::Fault::ServerError);
    rig.google.set_users(1500);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let mins = rig.mins();
    assert_eq!(mins[3], 2, "hermes unchanged");
    assert_eq!(mins[4], 12, "passport applied");
    let r = &rig.rows()[0];
    assert_eq!((r.outcome.as_str(), r.to), ("partial", Some(2000)));
    assert!(r.message.contains("prod/hermes"), "{}", r.message);
    assert!(stdout(&o).contains("errors: prod/hermes"), "{}", show(&o));
    assert!(
        rig.feishu_lines().iter().any(|l| l.contains("hermes")),
        "{:?}",
        rig.feishu_lines()
    );

    rig.kube.clear_faults();
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(2000));
    assert_eq!(rig.rows().last().unwrap().outcome, "applied");
}

#[test]
fn an_hpa_argo_cd_manages_is_patched_and_check_and_status_name_the_fix() {
    let rig = Rig::new();
    rig.kube.seed(
        kube::HpaSeed::new("prod", "web")
            .target("Deployment", "web")
            .tracked_by_argo_cd("prod-web"),
    );
    rig.google.set_users(700);
    let says_it = |w: &str| {
        w.starts_with("prod/web is managed by Argo CD application prod-web")
            && w.contains("ignoreDifferences")
            && w.contains("jsonPointers: [/spec/minReplicas, /spec/maxReplicas]")
            && w.contains("RespectIgnoreDifferences=true")
    };

    let o = rig.run(&["--dry-run", "-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(says_it(warnings[0]), "{warnings:?}");

    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(1000), "patched all the same");
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains("WARNING: prod/web is managed by Argo CD"))
        .unwrap_or_else(|| panic!("no GitOps warning:\n{out}"));
    assert!(
        says_it(line.trim().trim_start_matches("WARNING: ")),
        "{line}"
    );
    assert_eq!(out.matches("is managed by").count(), 1, "only web: {out}");
    let detail = &rig.rows()[0].detail;
    assert!(
        detail["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| says_it(w.as_str().unwrap())),
        "the record keeps it: {detail}"
    );

    let out = stdout(&rig.run(&["status"]));
    assert!(
        out.contains("prod/web is managed by Argo CD application prod-web (annotation argocd.argoproj.io/tracking-id)")
            && out.contains("fix: add to the Application's spec.ignoreDifferences"),
        "{out}"
    );
    let o = rig.run(&["-o", "json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let web = v["hpas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "web")
        .unwrap();
    assert_eq!(web["managed_by"]["tool"], "argo_cd", "{web}");
    assert_eq!(web["managed_by"]["owner"], "prod-web", "{web}");
    assert!(
        web["managed_by"]["fix"]
            .as_str()
            .unwrap()
            .contains("RespectIgnoreDifferences=true"),
        "{web}"
    );
    let others = v["hpas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["name"] != "web");
    assert!(others.clone().all(|h| h["managed_by"].is_null()));
}

#[test]
fn a_kubeconfig_that_skips_tls_verification_works_but_every_check_and_status_warns() {
    let rig = Rig::new();
    let kubeconfig = rig.dir.path().join("kubeconfig");
    rig.kube
        .write_insecure_kubeconfig(&kubeconfig, "e2e", &KubeAuth::None);
    rig.google.set_users(700);
    let warned = |v: &serde_json::Value| {
        v["warnings"].as_array().unwrap().iter().any(|w| {
            w.as_str().unwrap().contains(
                "sets insecure-skip-tls-verify: true for cluster `e2e`: the API server's certificate is not checked",
            )
        })
    };
    for args in [
        &["-o", "json", "check"][..],
        &["-o", "json", "check"],
        &["-o", "json", "status"],
    ] {
        let o = rig.run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(warned(&v), "{args:?}: {v}");
        assert!(
            stderr(&o).contains("insecure-skip-tls-verify: true"),
            "{args:?}: the log says it too: {}",
            show(&o)
        );
    }
    assert_eq!(rig.mins(), tier(1000), "the connection works");
    let o = rig.run(&["status"]);
    assert!(
        stdout(&o).contains("insecure-skip-tls-verify"),
        "{}",
        show(&o)
    );
    // With the CA-checked kubeconfig again, no warning.
    rig.kube
        .write_kubeconfig(&kubeconfig, "e2e", &KubeAuth::None);
    let o = rig.run(&["-o", "json", "check"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!warned(&v), "{v}");
}

// ---------------------------------------------------------------------------
// Store

#[test]
fn mysql_down_still_applies_spools_the_record_and_the_next_run_flushes_it() {
    let rig = Rig::new();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    rig.set_config(
        &rig.config_text
            .replace("mysql_port: 3306", &format!("mysql_port: {port}")),
    );
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(
        code(&o),
        1,
        "the record is not where it belongs yet:\n{}",
        show(&o)
    );
    assert_eq!(rig.mins(), tier(1000), "the scale-up happened anyway");
    assert!(stdout(&o).contains("spooled"), "{}", show(&o));
    let spool = std::fs::read_to_string(rig.dir.path().join("runs.jsonl")).unwrap();
    assert_eq!(spool.lines().count(), 1);

    rig.set_config(&rig.config_text);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let rows = rig.rows();
    assert_eq!(
        rows.len(),
        2,
        "spooled record flushed once, plus this run: {rows:?}"
    );
    assert_eq!(
        (rows[0].users, rows[0].outcome.as_str()),
        (Some(700), "applied")
    );
    assert_eq!(rows[1].outcome, "noop");
    let spool = std::fs::read_to_string(rig.dir.path().join("runs.jsonl")).unwrap_or_default();
    assert_eq!(spool.trim(), "", "spool emptied");
}

#[test]
fn mysql_tls_with_the_wrong_ca_still_applies_exits_1_and_spools_then_the_right_ca_flushes() {
    let rig = Rig::new();
    let server = tls_mariadb::for_loopback();
    let account = server.account(MYSQL_PASSWORD);
    let with_ca = |ca: &std::path::Path| {
        let text = rig
            .config_text
            .replace(
                "mysql_port: 3306\n",
                &format!(
                    "mysql_port: {}\nmysql_ssl_mode: verify_ca\nmysql_ssl_ca: \"{}\"\n",
                    server.port,
                    ca.display()
                ),
            )
            .replace(
                &format!("mysql_user: {}\n", rig.mysql_user),
                &format!("mysql_user: {}\n", account.user),
            )
            .replace(
                &format!("mysql_db: {}\n", rig.db_name()),
                &format!("mysql_db: {}\n", account.db),
            );
        assert!(text.contains(&account.user) && text.contains(&account.db));
        text
    };
    let spool = rig.dir.path().join("runs.jsonl");

    rig.set_config(&with_ca(&server.other_ca));
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 1, "the record is only spooled:\n{}", show(&o));
    assert_eq!(rig.mins(), tier(1000), "the scale-up happened anyway");
    let not_signed = format!(
        "TLS: the server certificate is not signed by mysql_ssl_ca ({})",
        server.other_ca.display()
    );
    assert!(stderr(&o).contains(&not_signed), "{}", show(&o));
    assert!(stdout(&o).contains("spooled"), "{}", show(&o));
    assert_eq!(std::fs::read_to_string(&spool).unwrap().lines().count(), 1);
    assert_eq!(server.count_runs(&account.db), 0);

    rig.set_config(&with_ca(&server.ca));
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        stdout(&o).contains(&format!(
            "recorded in MySQL {}@127.0.0.1:{}/{} (TLS, verify_ca)",
            account.user, server.port, account.db
        )),
        "{}",
        show(&o)
    );
    assert_eq!(
        server.count_runs(&account.db),
        2,
        "the spooled record and this one"
    );
    let left = std::fs::read_to_string(&spool).unwrap_or_default();
    assert_eq!(left.trim(), "", "spool emptied");
    assert!(rig.rows().is_empty(), "the machine's MariaDB was not used");
}

#[test]
fn the_files_a_run_creates_are_0600_under_umask_022_and_000() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::with(Setup {
        store: StoreKind::File,
        ..Setup::default()
    });
    let files =
        ["runs.jsonl", "runs.jsonl.lock", "runs.jsonl.samples"].map(|f| rig.dir.path().join(f));
    for umask in ["022", "000"] {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        let o = rig.run_under_umask(umask, &["check", "--users", "700"]);
        assert_eq!(code(&o), 0, "umask {umask}: {}", show(&o));
        for f in &files {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "umask {umask}: {}", f.display());
        }
    }
}

#[test]
fn mysql_down_spools_to_the_configmap_exit_1_and_the_next_run_writes_it_once() {
    let rig = Rig::new();
    rig.seed_spool();
    rig.set_config(&rig.mysql_down(&rig.with_spool()));
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(
        code(&o),
        1,
        "the record is not where it belongs yet:\n{}",
        show(&o)
    );
    assert_eq!(rig.mins(), tier(1000), "the scale-up happened anyway");
    assert!(
        stdout(&o).contains("record spooled to ConfigMap hpa-tier/hpa-tier-spool for the next run"),
        "{}",
        show(&o)
    );
    let spooled = rig.spooled();
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    let (key, value) = spooled.iter().next().unwrap();
    let record: serde_json::Value = serde_json::from_str(value).unwrap();
    assert_eq!(record["run_id"], key.as_str());
    assert_eq!(
        (record["users"].as_u64(), record["outcome"].as_str()),
        (Some(700), Some("applied"))
    );
    assert!(
        !rig.dir.path().join("runs.jsonl").exists(),
        "not in state_file"
    );

    rig.set_config(&rig.with_spool());
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let rows = rig.rows();
    assert_eq!(
        rows.len(),
        2,
        "the spooled record once, plus this run: {rows:?}"
    );
    assert_eq!(
        (rows[0].users, rows[0].outcome.as_str()),
        (Some(700), "applied")
    );
    assert_eq!(rows[1].outcome, "noop");
    assert!(rig.spooled().is_empty(), "{:?}", rig.spooled());
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.rows().len(), 3, "not written twice");
}

#[test]
fn a_missing_spool_configmap_falls_back_to_state_file_and_the_log_names_it() {
    let rig = Rig::new();
    rig.set_config(&rig.mysql_down(&rig.with_spool()));
    rig.google.set_users(700);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let state = rig.dir.path().join("runs.jsonl");
    assert!(
        stdout(&o).contains(&format!("record spooled to {} (the ConfigMap hpa-tier/hpa-tier-spool could not take it: the spool ConfigMap hpa-tier/hpa-tier-spool does not exist", state.display())),
        "{}",
        show(&o)
    );
    assert!(
        stderr(&o).contains("the spool ConfigMap hpa-tier/hpa-tier-spool does not exist: create it, empty (deploy/kubernetes/spool.yaml ships it"),
        "{}",
        show(&o)
    );
    let text = std::fs::read_to_string(&state).unwrap();
    assert_eq!(text.lines().count(), 1);

    rig.set_config(&rig.with_spool());
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        rig.rows().len(),
        2,
        "flushed from state_file, plus this run"
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "");
}

#[test]
fn the_file_store_keeps_history_without_mysql() {
    let rig = Rig::with(Setup {
        store: StoreKind::File,
        scale_down_minutes: 0,
        ..Setup::default()
    });
    rig.google.set_users(1800);
    assert_eq!(code(&rig.run(&["check"])), 0);
    assert_eq!(rig.mins(), tier(2000));
    rig.google.set_users(100);
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        rig.mins(),
        tier(600),
        "a zero window steps down once there is a record"
    );
    let text = std::fs::read_to_string(rig.dir.path().join("runs.jsonl")).unwrap();
    let outcomes: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(outcomes, ["applied", "applied"]);
}

/// `hpa-tier -c <config> ARGS` started in the background.
fn spawn(rig: &Rig, args: &[&str]) -> std::process::Child {
    let mut cmd = std::process::Command::new(support::bin());
    cmd.args(["-c", &rig.config])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in rig.env() {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_during_a_slow_ga_read_is_recorded_and_the_process_exits_within_5s() {
    let rig = Rig::new();
    rig.google.set_users(700);
    rig.google.set_latency(Duration::from_secs(30));
    let child = spawn(&rig, &["check"]);
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    let rows = rig.rows();
    let [r] = &rows[..] else {
        panic!("{rows:?}\n{}", show(&o))
    };
    assert_eq!(
        (r.outcome.as_str(), r.users),
        ("error", None),
        "{}",
        show(&o)
    );
    assert!(r.message.contains("SIGTERM"), "{}", r.message);
    assert_eq!(rig.patches(), 0);
}

#[test]
fn a_patch_that_never_answers_is_recorded_and_the_run_is_partial_within_its_budget() {
    let rig = Rig::with(Setup {
        timeout_seconds: 1,
        ..Setup::default()
    });
    rig.google.set_users(700);
    rig.kube.fail("prod", "web", kube::Fault::HangWrites);
    let started = std::time::Instant::now();
    let o = rig.run(&["-o", "json", "check"]);
    let took = started.elapsed();
    assert_eq!(code(&o), 1, "{}", show(&o));
    // The patch's own timeout (1 s) ends it, well inside the apply phase.
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    let r = rig.rows().pop().unwrap();
    assert_eq!(
        (r.outcome.as_str(), r.to),
        ("partial", Some(1000)),
        "{}",
        r.message
    );
    let changes = r.detail["changes"].as_array().unwrap();
    let result = |name: &str| {
        changes.iter().find(|c| c["name"] == name).unwrap()["result"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let web = result("web");
    assert!(
        web.starts_with("failed: HPA prod/web: ")
            && web.contains("did not answer the patch within 1s"),
        "{web}"
    );
    for name in [
        "ingressgateway-hpa",
        "gateway",
        "hermes",
        "passport",
        "project",
    ] {
        assert_eq!(result(name), "applied", "{name}");
    }
    assert!(
        r.message.contains("1 of 6 HPA patches failed"),
        "{}",
        r.message
    );
}

#[test]
fn two_concurrent_checks_one_acts_the_other_exits_0() {
    let rig = Rig::new();
    rig.google.set_users(700);
    // Slow Kubernetes keeps the first run inside its lock while the second starts.
    rig.kube.set_latency(Duration::from_millis(700));
    let a = spawn(&rig, &["-o", "json", "check"]);
    let b = spawn(&rig, &["-o", "json", "check"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!((code(&a), code(&b)), (0, 0), "{}\n{}", show(&a), show(&b));
    let lost = [&a, &b]
        .into_iter()
        .filter(|o| stderr(o).contains("another hpa-tier run holds the lock"))
        .count();
    assert_eq!(lost, 1, "{}\n{}", show(&a), show(&b));
    assert_eq!(rig.rows().len(), 1);
    assert_eq!(rig.mins(), tier(1000));
    // Both print one JSON document; the loser says it skipped.
    let docs: Vec<serde_json::Value> = [&a, &b]
        .iter()
        .map(|o| serde_json::from_slice(&o.stdout).unwrap())
        .collect();
    assert_eq!(
        docs.iter().filter(|d| d["skipped"] == true).count(),
        1,
        "{docs:?}"
    );
    assert_eq!(
        docs.iter().filter(|d| d["outcome"] == "applied").count(),
        1,
        "{docs:?}"
    );
}

#[test]
fn an_upgrade_that_loses_the_lock_exits_1() {
    let rig = Rig::new();
    rig.google.set_users(700);
    rig.kube.set_latency(Duration::from_millis(1200));
    let mut check = std::process::Command::new(support::bin());
    check
        .args(["-c", &rig.config, "check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in rig.env() {
        check.env(k, v);
    }
    let check = check
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let o = rig.run(&["upgrade", "2000"]);
    let check = check.wait_with_output().unwrap();
    assert_eq!(code(&check), 0);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        stderr(&o).contains("another hpa-tier run holds the lock"),
        "{}",
        show(&o)
    );
    assert_eq!(rig.mins(), tier(1000), "only the check acted");
}

// ---------------------------------------------------------------------------
// status, secrets

#[test]
fn status_before_and_after_a_change() {
    let rig = Rig::with(Setup {
        rds: vec!["db.r5.8xlarge", "db.r7g.large"],
        ..Setup::default()
    });
    rig.google.set_users(450);
    let o = rig.run(&["status"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout(&o);
    assert!(
        out.contains("tier 600 (from the reference HPA's minReplicas)"),
        "{out}"
    );
    assert!(out.contains("users: 450 now"), "{out}");
    assert!(
        out.contains(&format!("reader {}: db.r7g.large", rig.rds_members[1])),
        "{out}"
    );
    assert!(out.contains("they allow up to tier 600"), "{out}");
    assert!(out.contains("no runs recorded yet"), "{out}");
    assert!(out.contains("AbleToScale=True"), "{out}");

    rig.resize_reader("db.r5.8xlarge");
    let o = rig.run(&["upgrade", "2000", "--hold", "90m"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = rig.run(&["-o", "json", "status"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["current"]["capacity"], 2000);
    assert_eq!(v["current"]["by"], "annotation");
    assert_eq!(v["hold"]["capacity"], 2000);
    assert_eq!(v["prerequisites"]["highest_allowed"], 3000);
    assert_eq!(v["runs"][0]["outcome"], "applied");
    assert_eq!(v["runs"][0]["to_capacity"], 2000);
    let hpas = v["hpas"].as_array().unwrap();
    assert_eq!(hpas.len(), 6);
    assert!(hpas.iter().all(|h| h["drift"].is_null()), "{hpas:?}");

    // Someone bumps web by hand: status shows the drift.
    rig.kube
        .edit("prod", "web", |h| h["spec"]["minReplicas"] = 9.into());
    let out = stdout(&rig.run(&["status"]));
    assert!(out.contains("above tier (9 > 6)"), "{out}");
}

#[test]
fn status_shows_the_rest_when_one_source_fails() {
    let rig = Rig::new();
    rig.google
        .fail_next_report(google::Fault::rpc(503, "UNAVAILABLE", "try later"));
    let o = rig.run(&["status"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let out = stdout(&o);
    assert!(out.contains("users: ERROR"), "{out}");
    assert!(
        out.contains("tier 600") && out.contains("prod/passport"),
        "{out}"
    );
}

#[test]
fn secrets_never_reach_the_output_even_at_trace_verbosity() {
    let rig = Rig::new();
    rig.google.set_users(1500);
    // Make things fail so error paths print too.
    rig.feishu
        .reply_next(hpa_tier_standins::feishu::Reply::rate_limited());
    rig.kube
        .fail("prod", "gateway", kube::Fault::Forbidden("patch"));
    let mut all = String::new();
    for args in [
        &["-vvv", "check"][..],
        &["-vvv", "status"],
        &["-vvv", "upgrade", "600"],
        &["-vvv", "-o", "json", "check"],
    ] {
        let o = rig.run(args);
        all.push_str(&show(&o));
    }
    // And with MySQL refusing the password.
    rig.set_config(&rig.config_text.replace(&rig.mysql_user, "nobody_here"));
    let o = rig.run(&["-vvv", "check"]);
    all.push_str(&show(&o));
    assert!(
        all.contains("DEBUG") || all.contains("TRACE") || all.contains("INFO"),
        "logs were produced:\n{all}"
    );
    let key_pem = ServiceAccount::for_tests().private_key_pem();
    let key_line = key_pem.lines().nth(3).unwrap();
    for secret in [
        AWS_SECRET,
        FEISHU_TOKEN,
        FEISHU_SECRET,
        MYSQL_PASSWORD,
        key_line,
    ] {
        assert!(!all.contains(secret), "a secret leaked ({secret}):\n{all}");
    }
    for token in rig.google.issued_tokens() {
        assert!(!all.contains(&token), "the GA access token leaked:\n{all}");
    }
}

#[test]
fn the_hpa_counts_are_tallied_per_tier_in_the_table() {
    // Guards the test fixture itself: the `tier()` table above is the
    // built-in table the binary prints.
    let o = support::run(
        &[
            "-c",
            support::root()
                .join("config/example.yaml")
                .to_str()
                .unwrap(),
            "-o",
            "json",
            "tiers",
        ],
        &[("MYSQL_PWD", "x")],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut from_binary = BTreeMap::new();
    for t in v["tiers"].as_array().unwrap() {
        let mins: Vec<u32> = SERVICES
            .iter()
            .map(|(s, _, _)| t["replicas"][s]["min"].as_u64().unwrap() as u32)
            .collect();
        from_binary.insert(t["capacity"].as_u64().unwrap() as u32, mins);
    }
    for (cap, mins) in from_binary {
        assert_eq!(tier(cap).to_vec(), mins, "tier {cap}");
    }
}

// ---------------------------------------------------------------------------
// Deploy: RBAC derived from what the binary does

/// The verbs the deployed Roles grant on HPAs, and on the spool ConfigMap
/// (the kustomization's objects, parsed as `tests/it/deploy.rs` parses them).
fn role_verbs() -> (BTreeSet<String>, BTreeSet<String>) {
    let manifests = crate::deploy::Manifests::from_files();
    let of = |roles: Vec<&k8s_openapi::api::rbac::v1::Role>, group: &str, resource: &str| {
        let mut verbs = BTreeSet::new();
        for role in roles {
            for rule in role.rules.iter().flatten() {
                assert_eq!(rule.api_groups.as_deref(), Some(&[group.to_string()][..]));
                assert_eq!(rule.resources.as_deref(), Some(&[resource.to_string()][..]));
                verbs.extend(rule.verbs.iter().cloned());
            }
        }
        verbs
    };
    (
        of(
            manifests.hpa_roles(),
            "autoscaling",
            "horizontalpodautoscalers",
        ),
        of(manifests.config_map_roles(), "", "configmaps"),
    )
}

/// Every command is run through its paths that touch Kubernetes (scale up,
/// nothing to do, a 409 retry, upgrade, status, a record spooled to the
/// ConfigMap and flushed from it); the verbs the stand-in saw must be
/// exactly the verbs the Roles grant — no more (the run would hit a 403 in
/// production), no fewer (the Role would grant more than needed).
#[test]
fn the_role_grants_exactly_the_verbs_the_binary_uses() {
    let rig = Rig::new();
    rig.seed_spool();
    rig.kube.fail("prod", "web", kube::Fault::Conflicts(1));
    rig.google.set_users(1500);
    for args in [
        &["check"][..],
        &["check"],
        &["upgrade", "3000"],
        &["upgrade", "600"],
        &["status"],
        &["--dry-run", "check"],
    ] {
        let o = rig.run(args);
        assert!(matches!(code(&o), 0), "{args:?}: {}", show(&o));
    }
    rig.set_config(&rig.mysql_down(&rig.with_spool()));
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 1, "spooled: {}", show(&o));
    rig.set_config(&rig.with_spool());
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "flushed: {}", show(&o));
    assert!(rig.spooled().is_empty(), "{:?}", rig.spooled());

    let requests = rig.kube.requests();
    let used = |api: fn(&kube::LoggedRequest) -> bool| -> BTreeSet<String> {
        requests
            .iter()
            .filter(|r| api(r))
            .map(|r| r.verb().to_string())
            .collect()
    };
    let (hpa_verbs, spool_verbs) = role_verbs();
    assert_eq!(
        used(kube::LoggedRequest::is_hpa_api),
        hpa_verbs,
        "verbs the binary used vs. verbs deploy/kubernetes/rbac.yaml grants"
    );
    assert_eq!(
        used(kube::LoggedRequest::is_configmap_api),
        spool_verbs,
        "verbs the binary used vs. verbs deploy/kubernetes/spool.yaml grants"
    );
    // And nothing but those (no discovery the Roles would not cover), on
    // the spool ConfigMap by name only.
    let other: Vec<String> = requests
        .iter()
        .filter(|r| {
            !r.is_hpa_api() && r.configmap() != Some((SPOOL.0.to_string(), SPOOL.1.to_string()))
        })
        .map(|r| r.path.clone())
        .collect();
    assert!(other.is_empty(), "{other:?}");
}

// ---------------------------------------------------------------------------
// Deploy: the MySQL account of deploy/mysql/grants.sql

/// The statements of deploy/mysql/grants.sql, comments dropped.
fn grants_sql() -> Vec<String> {
    let path = support::root().join("deploy/mysql/grants.sql");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let code: String = text
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The privileges the file's GRANT names, in its order.
fn granted_privileges() -> Vec<String> {
    let grants: Vec<String> = grants_sql()
        .into_iter()
        .filter(|s| s.starts_with("GRANT "))
        .collect();
    let [grant] = grants.as_slice() else {
        panic!("grants.sql must hold exactly one GRANT: {grants:?}")
    };
    let (list, _) = grant["GRANT ".len()..]
        .split_once(" ON ")
        .unwrap_or_else(|| panic!("GRANT <privileges> ON ...: {grant}"));
    list.split(',').map(|p| p.trim().to_uppercase()).collect()
}

/// A user made by running grants.sql for a fresh database, `without` one
/// privilege of its GRANT; dropped with the guard.
struct GrantedAccount {
    db: FreshDb,
    user: String,
}

impl GrantedAccount {
    fn new(without: Option<&str>) -> GrantedAccount {
        let db = FreshDb::new();
        let user = unique("grants_");
        let kept: Vec<String> = granted_privileges()
            .into_iter()
            .filter(|p| Some(p.as_str()) != without)
            .collect();
        for statement in grants_sql() {
            let sql = statement
                .replace("'hpa_tier'@'%'", &format!("'{user}'@'%'"))
                .replace("'REPLACE-ME'", &format!("'{MYSQL_PASSWORD}'"))
                .replace(" hpa_tier.* ", &format!(" `{}`.* ", db.name))
                .replace("EXISTS hpa_tier ", &format!("EXISTS `{}` ", db.name));
            // The machine's MariaDB offers no TLS: the clause is checked
            // here; the TLS tests of tests/it/store.rs run an account made
            // from this file, clause included, against a TLS-only server.
            let sql = if sql.starts_with("CREATE USER ") {
                assert!(sql.ends_with(" REQUIRE SSL"), "{statement}");
                sql.trim_end_matches(" REQUIRE SSL").to_string()
            } else if sql.starts_with("GRANT ") {
                let (_, on) = sql.split_once(" ON ").unwrap();
                format!("GRANT {} ON {on}", kept.join(", "))
            } else {
                sql
            };
            // The fresh database's name starts with hpa_tier too: look for
            // the placeholders as the file spells them.
            for placeholder in ["'hpa_tier'", " hpa_tier.", " hpa_tier ", "REPLACE-ME"] {
                assert!(
                    !format!("{sql} ").contains(placeholder),
                    "grants.sql changed shape; this test no longer substitutes {placeholder} in: {statement}"
                );
            }
            mysql_exec(&sql);
        }
        GrantedAccount { db, user }
    }
}

impl Drop for GrantedAccount {
    fn drop(&mut self) {
        mysql_exec(&format!("DROP USER IF EXISTS '{}'@'%'", self.user));
    }
}

/// `SELECT MAX(version) FROM hpa_tier_schema` in `db`, as root.
fn schema_version(db: &str) -> Option<u32> {
    query_u32(db, "SELECT MAX(version) FROM hpa_tier_schema")
}

/// The first column of the first row of `sql` in `db`, as root.
pub(crate) fn query_u32(db: &str, sql: &str) -> Option<u32> {
    let url = format!("{}/{db}", support::mysql_root_url());
    let sql = sql.to_string();
    block_on(async move {
        let pool = mysql_async::Pool::new(url.as_str());
        let mut c = pool.get_conn().await.unwrap();
        let v: Option<Option<u32>> = c.query_first(sql).await.unwrap();
        drop(c);
        pool.disconnect().await.unwrap();
        v.flatten()
    })
}

#[test]
fn the_documented_mysql_grants_are_all_check_needs() {
    assert_eq!(
        granted_privileges(),
        ["CREATE", "SELECT", "INSERT", "UPDATE", "ALTER"]
    );
    let rig = Rig::new();
    let account = GrantedAccount::new(None);
    rig.use_mysql_account(&account.user, &account.db.name);

    // The first run creates the schema, then records; the second finds the
    // schema in place and reads the history of the first.
    let o = rig.run(&["check", "--users", "700"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(schema_version(&account.db.name), Some(2));
    let o = rig.run(&["check", "--users", "700"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let rows = rows_of(&account.db.name);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.users, r.from, r.to, r.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(700), Some(600), Some(1000), "applied"),
            (Some(700), Some(1000), Some(1000), "noop")
        ]
    );
    assert!(rig.rows().is_empty(), "the rig's own database was not used");
    let o = rig.run(&["status"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
}

#[test]
fn each_documented_mysql_grant_is_needed_and_a_missing_one_is_named() {
    let rig = Rig::new();
    let privileges = granted_privileges();
    let listed = match privileges.as_slice() {
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => panic!("grants.sql grants nothing"),
    };
    for missing in &privileges {
        let account = GrantedAccount::new(Some(missing));
        rig.use_mysql_account(&account.user, &account.db.name);
        let o = rig.run(&["check", "--users", "700"]);
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "without {missing}: {}", show(&o));
        assert!(
            err.contains(&format!("{missing} command denied")),
            "without {missing}: {err}"
        );
        // The hint lists the same privileges as the file.
        assert!(
            err.contains(&format!("grant the mysql_user {listed} on mysql_db")),
            "without {missing}: {err}"
        );
        assert!(rows_of(&account.db.name).is_empty(), "without {missing}");
    }
}

// ---------------------------------------------------------------------------
// GA's calls: each within its own timeout, the token cached between runs

/// Runs `hpa-tier -c <config> ARGS` as `Rig::run` does, under `umask`.
fn run_with_umask(rig: &Rig, umask: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", r#"umask "$1" && shift && exec "$@""#, "sh", umask])
        .arg(support::bin())
        .args(["-c", rig.config.as_str()])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .envs(rig.env())
        .stdin(std::process::Stdio::null());
    cmd.output().expect("run hpa-tier under sh")
}

#[test]
fn a_slow_google_answering_each_call_within_timeout_seconds_is_read() {
    // 2 s per answer with `timeout_seconds: 3`: the token and the report
    // take 4 s together, each within its own 3 s.
    let rig = Rig::new();
    rig.google.set_users(700);
    rig.google.set_latency(Duration::from_secs(2));
    let o = rig.run(&["--dry-run", "-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["users"], 700, "{v:#}");
    assert_eq!(v["to_capacity"], 1000);
}

#[test]
fn the_ga_token_is_cached_between_runs_privately_and_dry_run_leaves_it_alone() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::new();
    rig.google.set_users(450);
    let cache = rig.dir.path().join("ga-token.json");
    let calls = || {
        (
            rig.google.token_request_count(),
            rig.google.report_request_count(),
        )
    };
    let mode = || std::fs::metadata(&cache).unwrap().permissions().mode() & 0o7777;

    let o = rig.run(&["--dry-run", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(!cache.exists(), "--dry-run wrote the token cache");
    assert_eq!(calls(), (1, 1));

    // The most permissive umask: the file is still the owner's alone.
    let mut all = String::new();
    let o = run_with_umask(&rig, "000", &["-vvv", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    all.push_str(&show(&o));
    assert_eq!(calls(), (2, 2));
    assert_eq!(mode(), 0o600);

    // Later runs — dry or not — send the cached token: one call to Google.
    for args in [
        &["-vvv", "check"][..],
        &["--dry-run", "-vvv", "check"],
        &["-vvv", "status"],
    ] {
        let o = rig.run(args);
        all.push_str(&show(&o));
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
    }
    assert_eq!(calls(), (2, 5), "no token request after the first real run");

    // Revoked: one new token, written even under a umask that would leave
    // the owner without write access to it.
    rig.google.revoke_tokens();
    let o = run_with_umask(&rig, "0277", &["-vvv", "check"]);
    all.push_str(&show(&o));
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(calls(), (3, 7));
    assert_eq!(mode(), 0o600);
    let issued = rig.google.issued_tokens();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(file["access_token"], issued[2].as_str());

    assert!(all.contains("DEBUG"), "debug logs were on:\n{all}");
    for token in &issued {
        assert!(
            !all.contains(token.as_str()),
            "an access token leaked:\n{all}"
        );
    }
}
