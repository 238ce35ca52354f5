//! The binary's contract before it talks to anything: config errors exit 2
//! and name the problem, `tiers` prints the validated table.

use hpa_tier_standins::kube::{self, KubeAuth, KubeStandin};

use crate::support::{root, run, stderr, stdout, tempdir, write};

const SERVICES: &str = r#"
property_id: "123"
key_file_location: "/nonexistent/key.json"
hpa_service_name: istio-ingress
services:
  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }
  gateway: { hpa: gateway, namespace: prod }
  web: { hpa: web, namespace: prod }
  hermes: { hpa: hermes, namespace: prod }
  passport: { hpa: passport, namespace: prod }
  project: { hpa: project, namespace: prod }
"#;

fn example() -> String {
    root()
        .join("config/example.yaml")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn tiers_prints_the_built_in_table_from_the_example_config() {
    let o = run(&["-c", &example(), "tiers"], &[("MYSQL_PWD", "x")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0][..7],
        [
            "CAPACITY",
            "istio-ingress*",
            "gateway",
            "web",
            "hermes",
            "passport",
            "project"
        ]
    );
    assert_eq!(rows[2][..7], ["1000", "4", "2", "3", "4", "8", "2"]);
    assert_eq!(
        rows[5][..9],
        [
            "4000",
            "10",
            "5",
            "12",
            "16",
            "20",
            "5",
            "db.r5.12xlarge",
            "(cache.c7gn.xlarge)"
        ]
    );
    assert_eq!(rows[6][..7], ["5000", "12", "6", "15", "20", "24", "6"]);
}

#[test]
fn tiers_json_is_one_valid_document_with_every_tier_and_service() {
    let o = run(
        &["-c", &example(), "-o", "json", "tiers"],
        &[("MYSQL_PWD", "x")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let tiers = v["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 6);
    for t in tiers {
        assert_eq!(t["replicas"].as_object().unwrap().len(), 6, "{t}");
    }
    assert_eq!(tiers[2]["rds_instance_class"]["value"], "db.r5.8xlarge");
    assert_eq!(tiers[2]["rds_instance_class"]["inherited_from"], 1000);
}

#[test]
fn the_config_path_comes_from_hpa_tier_config_when_not_given() {
    let o = run(
        &["tiers"],
        &[("HPA_TIER_CONFIG", &example()), ("MYSQL_PWD", "x")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_missing_config_file_exits_2_naming_the_path_and_the_example() {
    let o = run(&["-c", "/nowhere/hpa.yaml", "tiers"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("/nowhere/hpa.yaml") && e.contains("config/example.yaml"),
        "{e}"
    );
}

#[test]
fn the_default_config_path_is_config_config_yaml() {
    let dir = tempdir();
    let o = std::process::Command::new(crate::support::bin())
        .arg("tiers")
        .current_dir(dir.path())
        .env_remove("HPA_TIER_CONFIG")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config/config.yaml"), "{}", stderr(&o));
}

/// Each broken config exits 2 and the message names the problem.
#[test]
fn broken_configs_exit_2_with_a_message_naming_the_problem() {
    let tiers = |body: &str| format!("{SERVICES}tiers:\n{body}");
    let row = |cap: u32, ing: u32| {
        format!(
            "  - capacity: {cap}\n    replicas: {{ istio-ingress: {ing}, gateway: 1, web: 1, hermes: 1, passport: 1, project: 1 }}\n"
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            format!("{SERVICES}check_tme: 5\n"),
            "unknown field `check_tme`",
        ),
        (
            "unknown key line",
            format!("{SERVICES}check_tme: 5\n"),
            "line 12",
        ),
        (
            "duplicate capacity",
            tiers(&(row(100, 1) + &row(100, 2))),
            "appears twice",
        ),
        (
            "unsorted capacities",
            tiers(&(row(200, 1) + &row(100, 2))),
            "increasing order",
        ),
        (
            "tier missing a service",
            tiers("  - capacity: 100\n    replicas: { istio-ingress: 1 }\n"),
            "no replicas for service `gateway`",
        ),
        (
            "tier naming an unknown service",
            tiers(&row(100, 1).replace("project: 1", "project: 1, nginx: 2")),
            "`nginx`",
        ),
        ("replicas below 1", tiers(&row(100, 0)), "at least 1"),
        (
            "min above max",
            tiers(&row(100, 1).replace("web: 1", "web: { min: 3, max: 2 }")),
            "min 3 greater than max 2",
        ),
        (
            "reference not increasing",
            tiers(&(row(100, 2) + &row(200, 2))),
            "strictly increasing",
        ),
        (
            "reference hpa mismatch",
            format!("{SERVICES}hpa_name: web\n"),
            "the reference HPA must be the HPA of hpa_service_name",
        ),
        (
            "empty services",
            "hpa_service_name: web\nservices: {}\n".to_string(),
            "services",
        ),
        (
            "bad url",
            format!("{SERVICES}ga_api_url: 'analyticsdata'\n"),
            "ga_api_url",
        ),
        (
            "bad property",
            SERVICES.replace("\"123\"", "\"abc\""),
            "property_id",
        ),
        ("not yaml", "services: [unclosed\n".to_string(), "line"),
    ];
    let dir = tempdir();
    for (what, text, expect) in cases {
        let path = write(dir.path(), "c.yaml", &text);
        let o = run(&["-c", &path, "tiers"], &[]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(expect),
            "{what}: expected {expect:?} in {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{what}: nothing on stdout");
    }
}

#[test]
fn a_bad_mysql_tls_setting_exits_2_naming_the_key_before_anything_runs() {
    let dir = tempdir();
    let not_pem = write(dir.path(), "not.pem", "just text\n");
    let missing = dir.path().join("missing.pem").display().to_string();
    let mysql = "mysql_host: 127.0.0.1\nmysql_user: hpa_tier\nmysql_db: hpa_tier\n";
    let cases = [
        (
            "mysql_ssl_mode: verify\n".to_string(),
            "mysql_ssl_mode (line 15): `verify` is not one of",
        ),
        (
            format!("mysql_ssl_mode: verify_ca\nmysql_ssl_ca: {missing}\n"),
            "mysql_ssl_ca (line 16): cannot read",
        ),
        (
            format!("mysql_ssl_mode: verify_identity\nmysql_ssl_ca: {not_pem}\n"),
            "holds no PEM certificate",
        ),
        (
            format!("mysql_ssl_mode: required\nmysql_ssl_ca: {not_pem}\n"),
            "mysql_ssl_ca (line 16): is only used by mysql_ssl_mode verify_ca or verify_identity",
        ),
    ];
    for (tls, expect) in cases {
        let path = write(dir.path(), "c.yaml", &format!("{SERVICES}{mysql}{tls}"));
        let o = run(&["-c", &path, "check", "--users", "700"], &[]);
        assert_eq!(o.status.code(), Some(2), "{tls}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(expect),
            "{tls}: expected {expect:?} in {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{tls}");
    }
}

#[test]
fn a_usage_error_exits_2() {
    let o = run(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["upgrade", "lots"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_explains_the_commands_and_exit_codes() {
    let o = run(&["--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    for word in [
        "check",
        "upgrade",
        "status",
        "tiers",
        "--dry-run",
        "Exit status",
        "HPA_TIER_CONFIG",
    ] {
        assert!(h.contains(word), "--help lacks {word}:\n{h}");
    }
}

#[test]
fn an_unreadable_ga_key_file_exits_2_before_anything_is_touched() {
    let dir = tempdir();
    // No Kubernetes, AWS or MySQL is configured at reachable places: the run
    // must stop at the key file, naming it, before trying any of them.
    let path = write(dir.path(), "c.yaml", SERVICES);
    let o = run(&["-c", &path, "check"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("key_file_location") && e.contains("/nonexistent/key.json"),
        "{e}"
    );
    assert!(stdout(&o).is_empty());
    // `tiers` does not need the key file.
    assert_eq!(run(&["-c", &path, "tiers"], &[]).status.code(), Some(0));
    // `check --users N` does not read GA, so it does not need it either: it
    // gets past the key file (and fails later: there is no cluster). HOME is
    // the temporary directory so no real ~/.kube/config can be found.
    let state = dir.path().join("runs.jsonl");
    let text = format!(
        "{SERVICES}state_file: \"{}\"\ntimeout_seconds: 1\n",
        state.display()
    );
    let path = write(dir.path(), "c2.yaml", &text);
    let home = dir.path().to_string_lossy().into_owned();
    let o = run(&["-c", &path, "check", "--users", "10"], &[("HOME", &home)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !out.contains("key_file_location") && out.contains("Kubernetes"),
        "{out}"
    );
}

/// A hold beyond 30 days (or one that is not a duration) is refused by the
/// command line itself: exit 2 before the config is acted on, so no HPA is
/// read or patched and nothing is recorded. (`--hold 3000000d` used to patch
/// every HPA and then panic computing the hold's end.)
#[test]
fn an_overlong_or_malformed_hold_exits_2_before_the_cluster_is_contacted() {
    let cluster = KubeStandin::start();
    cluster.seed_all(kube::example_hpas());
    let dir = tempdir();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig, "standin", &KubeAuth::None);
    let state = dir.path().join("runs.jsonl");
    let text = format!(
        "{SERVICES}kube_file_path: \"{}\"\ncluster_context: standin\nstate_file: \"{}\"\ntimeout_seconds: 5\n",
        kubeconfig.display(),
        state.display()
    );
    let path = write(dir.path(), "c.yaml", &text);
    let cases = [
        ("3000000d", "30-day limit"),
        ("31d", "30-day limit"),
        ("721h", "30-day limit"),
        ("18446744073709551615d", "30-day limit"),
        ("0h", "positive duration"),
        ("2 hours", "not a duration"),
        ("1.5h", "not a duration"),
    ];
    for (hold, says) in cases {
        let o = run(&["-c", &path, "upgrade", "2000", "--hold", hold], &[]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "--hold {hold}: {e}");
        assert!(
            e.contains("--hold") && e.contains(says),
            "--hold {hold}: {e}"
        );
        assert!(stdout(&o).is_empty(), "--hold {hold}");
    }
    assert_eq!(cluster.requests().len(), 0, "the cluster was contacted");
    assert!(!state.exists(), "a run was recorded");

    // The same upgrade with the longest allowed hold does reach the cluster,
    // and records a hold that ends 30 days after the run started.
    let o = run(&["-c", &path, "upgrade", "2000", "--hold", "30d"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(cluster.requests().iter().any(|r| r.method == "PATCH"));
    let records = std::fs::read_to_string(&state).unwrap();
    let record: serde_json::Value = serde_json::from_str(records.lines().last().unwrap()).unwrap();
    let at = |k: &str| {
        record[k]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert_eq!(
        at("hold_until").duration_since(at("started_at")),
        jiff::SignedDuration::from_hours(30 * 24)
    );
}
