//! The spool in a ConfigMap (`spool_configmap`) against the Kubernetes
//! stand-in and a real MariaDB: a record MySQL cannot take goes into the
//! ConfigMap, the next run that reaches MySQL writes it once and removes
//! it; conflicts, the 1 MiB cap, RBAC as deploy/kubernetes/spool.yaml
//! grants it, and the fallback to `state_file` when the ConfigMap is gone.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use hpa_tier::cluster::kube::Kube;
use hpa_tier::config::{ConfigMapRef, KubeSettings, MysqlSettings, MysqlTls, Secret};
use hpa_tier::store::configmap::{ConfigMapSpool, DATA_LIMIT};
use hpa_tier::store::file::{FileStore, Role};
use hpa_tier::store::{self, OpenStore, Recorded, RunStore, SpoolConfigMap};
use hpa_tier_core::record::{CommandKind, Outcome, RunRecord};
use hpa_tier_standins::kube::{Fault, KubeAuth, KubeStandin, RbacRule};
use jiff::{SignedDuration, Timestamp};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use crate::support::{self, FreshDb, mysql_root_url, tempdir, unique};

const TIMEOUT: Duration = Duration::from_secs(5);
const CLUSTER: &str = "prod";
const NS: &str = "hpa-tier";
const NAME: &str = "hpa-tier-spool";

/// deploy/kubernetes/spool.yaml: the ConfigMap it ships and its Role.
fn spool_yaml() -> String {
    let path = support::root().join("deploy/kubernetes/spool.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ConfigMap document of spool.yaml, as `kubectl apply` creates it.
fn shipped_configmap() -> Value {
    let text = spool_yaml();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|v| v["kind"] == "ConfigMap")
        .expect("spool.yaml ships a ConfigMap")
}

fn mysql(db: &FreshDb) -> MysqlSettings {
    MysqlSettings {
        host: "127.0.0.1".into(),
        port: 3306,
        user: "root".into(),
        password: Secret::new(""),
        database: db.name.clone(),
        tls: MysqlTls::default(),
    }
}

/// MySQL on a loopback port nothing listens on.
fn mysql_down(db: &FreshDb) -> MysqlSettings {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    MysqlSettings {
        port: l.local_addr().unwrap().port(),
        ..mysql(db)
    }
}

/// A stand-in with the shipped spool ConfigMap, reached through a kubeconfig.
struct Rig {
    kube: KubeStandin,
    dir: tempfile::TempDir,
    settings: KubeSettings,
    db: FreshDb,
}

impl Rig {
    fn new() -> Rig {
        let kube = KubeStandin::start();
        kube.insert_configmap(shipped_configmap()).unwrap();
        let dir = tempdir();
        let path = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&path, "spool", &KubeAuth::None);
        Rig {
            kube,
            dir,
            settings: KubeSettings {
                kubeconfig: Some(path),
                context: Some("spool".into()),
            },
            db: FreshDb::new(),
        }
    }

    fn state_file(&self) -> std::path::PathBuf {
        self.dir.path().join("runs.jsonl")
    }

    fn at(&self) -> SpoolConfigMap {
        SpoolConfigMap {
            at: ConfigMapRef {
                namespace: NS.into(),
                name: NAME.into(),
            },
            kube: Kube::new(&self.settings, TIMEOUT),
        }
    }

    /// What a run opens: MySQL (up or down) spooling to the ConfigMap.
    fn settings(&self, mysql: MysqlSettings) -> store::Settings {
        store::Settings {
            mysql: Some(mysql),
            state_file: self.state_file(),
            spool_configmap: Some(self.at()),
            scope: CLUSTER.into(),
            timeout: TIMEOUT,
        }
    }

    fn spool(&self) -> ConfigMapSpool {
        let file = FileStore::new(&self.state_file(), CLUSTER, TIMEOUT, Role::Spool);
        ConfigMapSpool::new(&self.at(), CLUSTER, TIMEOUT, file)
    }

    fn data(&self) -> BTreeMap<String, String> {
        self.kube
            .configmap_data(NS, NAME)
            .expect("the spool ConfigMap")
    }

    /// The RBAC verbs of the ConfigMap requests, in order.
    fn verbs(&self) -> Vec<&'static str> {
        self.kube
            .requests()
            .iter()
            .filter(|r| r.is_configmap_api())
            .map(|r| r.verb())
            .collect()
    }

    fn state_lines(&self) -> Vec<Value> {
        lines(&self.state_file())
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn run_ids(db: &str) -> Vec<String> {
    let pool = mysql_async::Pool::new(format!("{}/{db}", mysql_root_url()).as_str());
    let mut c = pool.get_conn().await.unwrap();
    let ids: Vec<String> = c
        .query("SELECT run_id FROM hpa_tier_runs ORDER BY id")
        .await
        .unwrap_or_default();
    drop(c);
    pool.disconnect().await.unwrap();
    ids
}

fn check(minutes_ago: i64, message: &str) -> RunRecord {
    let at = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
        - SignedDuration::from_mins(minutes_ago);
    RunRecord {
        run_id: unique("run").replace(['-', '_'], ""),
        started_at: at,
        finished_at: at + SignedDuration::from_millis(900),
        command: CommandKind::Check,
        users: Some(700),
        needed_capacity: Some(1000),
        from_capacity: Some(600),
        to_capacity: Some(1000),
        outcome: Outcome::Applied,
        message: message.into(),
        detail: json!({ "changes": [] }),
        hold_until: None,
        notified: vec![],
        forecast_capacity: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_mysql_cannot_take_waits_in_the_configmap_and_is_written_once_when_it_is_back() {
    let rig = Rig::new();
    // The whole cycle with no more than deploy/kubernetes/spool.yaml grants.
    rig.kube
        .restrict_configmaps(RbacRule::from_roles_yaml(&spool_yaml()).unwrap());
    let first = check(10, "scaled up 600 → 1000");

    let down = rig.settings(mysql_down(&rig.db)).open(true).await;
    assert!(down.unreachable().is_some(), "{}", down.describe());
    assert!(
        down.describe()
            .starts_with("spool ConfigMap hpa-tier/hpa-tier-spool (MySQL root@127.0.0.1:"),
        "{}",
        down.describe()
    );
    assert_eq!(down.try_lock(CLUSTER).await, Ok(true), "the lock file");
    assert_eq!(down.record(&first).await, Ok(Recorded::Spooled));
    assert_eq!(down.spool_location(), "ConfigMap hpa-tier/hpa-tier-spool");
    down.close().await;

    let data = rig.data();
    assert_eq!(data.keys().collect::<Vec<_>>(), [&first.run_id]);
    let value: Value = serde_json::from_str(&data[&first.run_id]).unwrap();
    assert_eq!(value["cluster"], CLUSTER);
    let back: RunRecord = serde_json::from_value(value).unwrap();
    assert_eq!(back, first, "the value is the record's JSON");
    assert!(rig.state_lines().is_empty(), "not in state_file");

    // MySQL is back: written, then the key removed.
    rig.kube.clear_requests();
    let up = rig.settings(mysql(&rig.db)).open(true).await;
    assert_eq!(up.unreachable(), None, "{}", up.describe());
    assert_eq!(
        up.history(first.started_at - SignedDuration::from_mins(1))
            .await
            .unwrap(),
        std::slice::from_ref(&first)
    );
    up.close().await;
    assert_eq!(
        run_ids(&rig.db.name).await,
        std::slice::from_ref(&first.run_id)
    );
    assert!(rig.data().is_empty(), "emptied: {:?}", rig.data());
    assert_eq!(rig.verbs(), ["get", "patch"], "one read, one removal");

    // A run that died after the commit but before the removal left the key:
    // the next one writes it again without a second row, and removes it.
    rig.kube.edit_configmap(NS, NAME, |cm| {
        cm["data"] = json!({ first.run_id.clone(): data[&first.run_id] });
    });
    rig.settings(mysql(&rig.db)).open(true).await.close().await;
    assert_eq!(
        run_ids(&rig.db.name).await,
        std::slice::from_ref(&first.run_id)
    );
    assert!(rig.data().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_while_removing_flushed_records_keeps_the_key_someone_else_added() {
    let rig = Rig::new();
    let ours = check(5, "ours");
    let spool = rig.spool();
    assert_eq!(spool.record(&ours).await, Ok(Recorded::Spooled));
    let pending = spool.pending().await.unwrap();
    assert_eq!(pending, std::slice::from_ref(&ours));

    // Another run spools its record after our read, before our removal.
    let theirs = check(1, "theirs");
    rig.spool().record(&theirs).await.unwrap();
    rig.kube.clear_requests();
    spool
        .remove(HashSet::from([ours.run_id.clone()]))
        .await
        .unwrap();

    let left = rig.data();
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        [&theirs.run_id],
        "{left:?}"
    );
    let sent: Vec<(String, Value)> = rig
        .kube
        .requests()
        .iter()
        .filter(|r| r.is_configmap_api())
        .map(|r| (r.method.clone(), r.json()))
        .collect();
    let methods: Vec<&str> = sent.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["PATCH", "GET", "PATCH"], "409, read again, retry");
    assert_eq!(
        sent[2].1["data"],
        json!({ ours.run_id.clone(): null }),
        "the retry removes our key only"
    );

    // An injected 409 on the removal is retried the same way.
    rig.kube.fail_configmap(NS, NAME, Fault::Conflicts(1));
    let spool = rig.spool();
    let pending = spool.pending().await.unwrap();
    assert_eq!(pending, std::slice::from_ref(&theirs));
    spool
        .remove(HashSet::from([theirs.run_id.clone()]))
        .await
        .unwrap();
    assert!(rig.data().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_configmap_drops_its_oldest_records_and_the_new_record_says_so() {
    let rig = Rig::new();
    // Four records of a quarter of the limit each, oldest first by start.
    let quarter = DATA_LIMIT / 4 - 2_000;
    let old: Vec<RunRecord> = (0..4)
        .map(|i| check(60 - i * 10, &"x".repeat(quarter)))
        .collect();
    let spool = rig.spool();
    for r in old.iter().rev() {
        assert_eq!(spool.record(r).await, Ok(Recorded::Spooled));
    }
    let before: usize = rig.data().values().map(String::len).sum();
    assert!(before <= DATA_LIMIT, "{before}");

    let new = check(0, &"n".repeat(10_000));
    let down = rig.settings(mysql_down(&rig.db)).open(true).await;
    assert_eq!(down.record(&new).await, Ok(Recorded::Spooled));
    let said = down.spool_location();
    down.close().await;
    assert_eq!(
        said,
        "ConfigMap hpa-tier/hpa-tier-spool (1 older spooled records dropped to stay under its 1 MiB limit)"
    );

    let data = rig.data();
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    let mut want = vec![&old[1].run_id, &old[2].run_id, &old[3].run_id, &new.run_id];
    want.sort();
    assert_eq!(keys, want, "the oldest went");
    let total: usize = data.values().map(String::len).sum();
    assert!(total <= DATA_LIMIT, "{total}");
    let kept: Value = serde_json::from_str(&data[&new.run_id]).unwrap();
    assert_eq!(kept["detail"]["spool_dropped"], json!([old[0].run_id]));
    assert!(
        kept["message"].as_str().unwrap().ends_with(
            "; 1 older spooled records were dropped from the full spool ConfigMap to keep this one"
        ),
        "{}",
        kept["message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_forbidden_spool_configmap_falls_back_to_state_file_naming_what_is_missing() {
    let rig = Rig::new();
    assert!(rig.kube.delete_configmap(NS, NAME));
    let first = check(3, "first");
    let down = rig.settings(mysql_down(&rig.db)).open(true).await;
    assert_eq!(down.record(&first).await, Ok(Recorded::Spooled));
    let said = down.spool_location();
    down.close().await;
    assert_eq!(
        said,
        format!(
            "{} (the ConfigMap hpa-tier/hpa-tier-spool could not take it: the spool ConfigMap \
             hpa-tier/hpa-tier-spool does not exist: create it, empty (deploy/kubernetes/spool.yaml \
             ships it; hpa-tier does not create it, as RBAC cannot limit `create` to one name))",
            rig.state_file().display()
        )
    );
    let spooled = rig.state_lines();
    assert_eq!(spooled.len(), 1);
    assert_eq!(spooled[0]["run_id"], first.run_id.as_str());

    // Present again, but the Role lacks patch: still state_file, saying so.
    rig.kube.insert_configmap(shipped_configmap()).unwrap();
    rig.kube
        .restrict_configmaps([RbacRule::new(NS, &["get"]).names(&[NAME])]);
    let second = check(2, "second");
    let down = rig.settings(mysql_down(&rig.db)).open(true).await;
    assert_eq!(down.record(&second).await, Ok(Recorded::Spooled));
    let said = down.spool_location();
    down.close().await;
    assert!(
        said.contains("RBAC forbids `patch` on the spool ConfigMap hpa-tier/hpa-tier-spool")
            && said.contains("configmaps named `hpa-tier-spool` in namespace hpa-tier"),
        "{said}"
    );
    assert_eq!(rig.state_lines().len(), 2);

    // MySQL back: what fell back to state_file is written too, once.
    let up = rig.settings(mysql(&rig.db)).open(true).await;
    assert_eq!(up.unreachable(), None, "{}", up.describe());
    up.close().await;
    assert_eq!(
        run_ids(&rig.db.name).await,
        [first.run_id.clone(), second.run_id.clone()]
    );
    assert!(rig.state_lines().is_empty());
}
