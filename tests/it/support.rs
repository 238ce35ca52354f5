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
    run_from(Command::new(bin()), args, env)
}

/// As [`run`], with the process's umask set to `umask` (octal, e.g. `022`).
pub fn run_under_umask(umask: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin());
    run_from(sh, args, env)
}

fn run_from(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Output {
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

/// MariaDB instances of the tests' own with TLS (one also with
/// `--require-secure-transport=ON`), and certificates made here: one CA
/// signs the server certificate; another CA, with the same name and its own
/// key, signs nothing the server has. Each instance is started once per test
/// process, on first use, by `scripts/lib/mariadb-instance.sh`, which stops
/// it and removes its files when this process ends — however it ends.
pub mod tls_mariadb {
    use std::io::BufRead;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    use mysql_async::prelude::{FromRow, Queryable};

    use super::{root, unique};

    /// The name on the certificate of [`for_another_name`].
    pub const OTHER_NAME: &str = "mysql.elsewhere.test";

    pub struct TlsMariaDb {
        pub port: u16,
        /// PEM of the CA that signed the server certificate.
        pub ca: PathBuf,
        /// PEM of an unrelated CA with the same subject name.
        pub other_ca: PathBuf,
        socket: PathBuf,
        /// The script: it outlives every test, and stops the server when
        /// this process exits.
        _watchdog: std::process::Child,
    }

    /// A server whose certificate is for `127.0.0.1` and `localhost`, and
    /// that refuses every connection without TLS.
    pub fn for_loopback() -> &'static TlsMariaDb {
        static SERVER: OnceLock<TlsMariaDb> = OnceLock::new();
        SERVER.get_or_init(|| TlsMariaDb::start(&["127.0.0.1", "localhost"], true))
    }

    /// A server whose certificate (from the same CA) is for [`OTHER_NAME`]
    /// only. It offers TLS but also takes plain connections (from accounts
    /// made by [`TlsMariaDb::account_allowing_plain`]), so a client that fell
    /// back to plain after a certificate failure would get in: tests can
    /// show none does.
    pub fn for_another_name() -> &'static TlsMariaDb {
        static SERVER: OnceLock<TlsMariaDb> = OnceLock::new();
        SERVER.get_or_init(|| TlsMariaDb::start(&[OTHER_NAME], false))
    }

    fn ca() -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hpa-tier test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        (rcgen::Issuer::new(params, key), pem)
    }

    /// A server certificate for `names` signed by `ca`: (certificate, key) PEM.
    fn server_cert(ca: &rcgen::Issuer<'_, rcgen::KeyPair>, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hpa-tier test MariaDB");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    impl TlsMariaDb {
        fn start(names: &[&str], require_secure_transport: bool) -> TlsMariaDb {
            // The script removes the directory when it stops the server.
            let dir = tempfile::Builder::new()
                .prefix("hpa-tier-tls-mariadb")
                .tempdir()
                .unwrap()
                .keep();
            let (issuer, ca_pem) = ca();
            let (_, other_pem) = ca();
            let (cert, key) = server_cert(&issuer, names);
            let file = |name: &str, text: &str| {
                let p = dir.join(name);
                std::fs::write(&p, text).unwrap();
                p
            };
            let ca = file("ca.pem", &ca_pem);
            let other_ca = file("other-ca.pem", &other_pem);
            let cert = file("server.pem", &cert);
            let key = file("server-key.pem", &key);
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let mut child = Command::new("bash")
                .arg(root().join("scripts/lib/mariadb-instance.sh"))
                .arg(&dir)
                .arg(port.to_string())
                .arg(format!("--ssl-ca={}", ca.display()))
                .arg(format!("--ssl-cert={}", cert.display()))
                .arg(format!("--ssl-key={}", key.display()))
                .arg(format!(
                    "--require-secure-transport={}",
                    if require_secure_transport {
                        "ON"
                    } else {
                        "OFF"
                    }
                ))
                .arg("--skip-name-resolve")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("bash scripts/lib/mariadb-instance.sh");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(
                line.trim(),
                "ready",
                "the TLS MariaDB did not start (its error log is above; it needs \
                 mariadb-server, which scripts/test.sh installs)"
            );
            TlsMariaDb {
                port,
                ca,
                other_ca,
                socket: dir.join("mysqld.sock"),
                _watchdog: child,
            }
        }

        fn root_opts(&self, db: Option<&str>) -> mysql_async::Opts {
            mysql_async::OptsBuilder::default()
                .socket(Some(self.socket.to_string_lossy().into_owned()))
                .user(Some("root"))
                .db_name(db)
                .into()
        }

        /// Rows of `sql` in `db`, as root over the server's socket.
        pub fn query<T: FromRow + Send + 'static>(&self, db: &str, sql: &str) -> Vec<T> {
            let (opts, sql) = (self.root_opts(Some(db)), sql.to_string());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut conn = mysql_async::Conn::new(opts).await.expect("root socket");
                    let rows = conn.query(&sql).await.expect(&sql);
                    conn.disconnect().await.unwrap();
                    rows
                })
            })
            .join()
            .unwrap()
        }

        pub fn exec(&self, sql: &str) {
            let _: Vec<mysql_async::Row> = self.query("mysql", sql);
        }

        /// Rows of `hpa_tier_runs` in `db`; none when the table does not exist.
        pub fn count_runs(&self, db: &str) -> u64 {
            let found: Vec<String> = self.query(
                "information_schema",
                &format!(
                    "SELECT table_name FROM tables WHERE table_schema = '{db}' \
                     AND table_name = 'hpa_tier_runs'"
                ),
            );
            if found.is_empty() {
                return 0;
            }
            self.query::<u64>(db, "SELECT COUNT(*) FROM hpa_tier_runs")
                .pop()
                .unwrap()
        }

        /// A fresh database and an account on it as deploy/mysql/grants.sql
        /// makes one: `REQUIRE SSL`, and only the privileges its GRANT lists.
        pub fn account(&'static self, password: &str) -> TlsAccount {
            self.make_account(password, " REQUIRE SSL")
        }

        /// As [`TlsMariaDb::account`], without `REQUIRE SSL`.
        pub fn account_allowing_plain(&'static self, password: &str) -> TlsAccount {
            self.make_account(password, "")
        }

        fn make_account(&'static self, password: &str, require: &str) -> TlsAccount {
            let db = unique("hpa_tier_tls_");
            let user = unique("tls_");
            self.exec(&format!("CREATE DATABASE `{db}`"));
            self.exec(&format!(
                "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'{require}"
            ));
            self.exec(&format!(
                "GRANT {} ON `{db}`.* TO '{user}'@'%'",
                documented_privileges()
            ));
            TlsAccount {
                server: self,
                db,
                user,
            }
        }
    }

    /// The privilege list of deploy/mysql/grants.sql's GRANT, as written.
    fn documented_privileges() -> String {
        let path = root().join("deploy/mysql/grants.sql");
        let text = std::fs::read_to_string(&path).unwrap();
        let grant = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("GRANT "))
            .unwrap_or_else(|| panic!("{} has no GRANT line", path.display()));
        let (privileges, _) = grant
            .split_once(" ON ")
            .unwrap_or_else(|| panic!("GRANT <privileges> ON ...: {grant}"));
        privileges.to_string()
    }

    pub struct TlsAccount {
        pub server: &'static TlsMariaDb,
        pub db: String,
        pub user: String,
    }

    impl Drop for TlsAccount {
        fn drop(&mut self) {
            self.server
                .exec(&format!("DROP DATABASE IF EXISTS `{}`", self.db));
            self.server
                .exec(&format!("DROP USER IF EXISTS '{}'@'%'", self.user));
        }
    }
}
