//! Shared test plumbing: where the binary and the services are, fresh
//! databases, temporary directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `hpa-tier` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hpa-tier"))
}

/// Runs the binary with `args`, no stdin, a clean environment apart from
/// PATH/HOME and `env`, and returns its output.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hpa-tier")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The project root (for `config/example.yaml` and the sources).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// moto in server mode, started by scripts/test.sh.
pub fn moto_url() -> String {
    std::env::var("HPA_TIER_TEST_MOTO_URL").expect(
        "HPA_TIER_TEST_MOTO_URL is not set: run the tests with scripts/test.sh, which starts moto",
    )
}

/// MariaDB root URL, e.g. `mysql://root@127.0.0.1:3306`, set by scripts/test.sh.
pub fn mysql_root_url() -> String {
    std::env::var("HPA_TIER_TEST_MYSQL_URL")
        .expect("HPA_TIER_TEST_MYSQL_URL is not set: run the tests with scripts/test.sh, which starts MariaDB")
}

/// A unique suffix for names (databases, AWS resources) in this process.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// A database created for one test and dropped when this guard drops.
pub struct FreshDb {
    pub name: String,
}

impl FreshDb {
    pub fn new() -> Self {
        let name = unique("hpa_tier_test_");
        mysql_exec(&format!("CREATE DATABASE `{name}`"));
        FreshDb { name }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        mysql_exec(&format!("DROP DATABASE IF EXISTS `{}`", self.name));
    }
}

/// Runs one statement as root (blocking; for fixtures).
pub fn mysql_exec(sql: &str) {
    let url = mysql_root_url();
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use mysql_async::prelude::Queryable;
            let pool = mysql_async::Pool::new(url.as_str());
            let mut conn = pool.get_conn().await.expect("connect to MariaDB");
            conn.query_drop(sql).await.expect("statement");
            drop(conn);
            pool.disconnect().await.unwrap();
        })
    })
    .join()
    .unwrap();
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hpa-tier-test")
        .tempdir()
        .unwrap()
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Fixtures created in moto directly through the SDK, under unique names
/// (moto is shared by tests running in parallel and never reset).
pub mod moto {
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    use super::{moto_url, unique};

    pub const REGION: &str = "us-east-2";

    pub async fn fixture_config() -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "fixtures",
            ))
            .endpoint_url(moto_url())
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .load()
            .await
    }

    /// Creates an Aurora cluster whose first member (the writer) and readers
    /// have the given classes; returns the cluster id and the member ids.
    pub async fn aurora(classes: &[&str]) -> (String, Vec<String>) {
        let rds = aws_sdk_rds::Client::new(&fixture_config().await);
        let cluster = unique("hpa-aurora-");
        rds.create_db_cluster()
            .db_cluster_identifier(&cluster)
            .engine("aurora-mysql")
            .master_username("admin")
            .master_user_password("not-a-real-password-1")
            .send()
            .await
            .expect("create_db_cluster in moto");
        let mut ids = vec![];
        for (i, class) in classes.iter().enumerate() {
            let id = format!("{cluster}-{}", i + 1);
            rds.create_db_instance()
                .db_instance_identifier(&id)
                .db_cluster_identifier(&cluster)
                .db_instance_class(*class)
                .engine("aurora-mysql")
                .send()
                .await
                .expect("create_db_instance in moto");
            ids.push(id);
        }
        (cluster, ids)
    }

    pub async fn resize_instance(id: &str, class: &str) {
        let rds = aws_sdk_rds::Client::new(&fixture_config().await);
        rds.modify_db_instance()
            .db_instance_identifier(id)
            .db_instance_class(class)
            .apply_immediately(true)
            .send()
            .await
            .expect("modify_db_instance in moto");
    }

    pub async fn replication_group(node_type: &str) -> String {
        let ec = aws_sdk_elasticache::Client::new(&fixture_config().await);
        let id = unique("hpa-rg-");
        ec.create_replication_group()
            .replication_group_id(&id)
            .replication_group_description("hpa-tier test")
            .engine("redis")
            .cache_node_type(node_type)
            .num_cache_clusters(2)
            .send()
            .await
            .expect("create_replication_group in moto");
        id
    }

    pub async fn cache_cluster(node_type: &str) -> String {
        let ec = aws_sdk_elasticache::Client::new(&fixture_config().await);
        let id = unique("hpa-cc-");
        ec.create_cache_cluster()
            .cache_cluster_id(&id)
            .engine("redis")
            .cache_node_type(node_type)
            .num_cache_nodes(1)
            .send()
            .await
            .expect("create_cache_cluster in moto");
        id
    }
}
