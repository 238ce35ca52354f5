//! The AWS prerequisite adapter against moto (RDS Aurora, ElastiCache), and —
//! for what moto cannot produce (access denied, throttling, 5xx, slowness) —
//! through the delay proxy stand-in, which answers with AWS's own error
//! documents. Fixtures are created in moto through the SDK under unique
//! names; moto is shared by tests running in parallel and never reset.

use std::time::{Duration, Instant};

use hpa_tier::config::{AwsSettings, Secret};
use hpa_tier::prereq::aws::{Aws, AwsAccount};
use hpa_tier::prereq::{
    self, Observed, PrereqError, Prerequisites, RdsMember, RedisKind, RedisObserved,
};
use hpa_tier_core::tiers::{self, TierTable};
use hpa_tier_standins::delay_proxy::{Fault, Proxy};

use crate::support::moto::{aurora, cache_cluster, replication_group, resize_instance};
use crate::support::{moto_url, unique};

const REGION: &str = "us-east-2";
const KEY_ID: &str = "AKIAHPATIERTEST";
/// Must never show up in an error message or a Debug print.
const SECRET: &str = "hpa-tier-test-secret-never-printed";
const TIMEOUT: Duration = Duration::from_secs(10);

fn settings(endpoint: Option<&str>, rds: Option<&str>, redis: Option<&str>) -> AwsSettings {
    AwsSettings {
        region: REGION.into(),
        static_keys: Some((KEY_ID.into(), Secret::new(SECRET))),
        endpoint_url: endpoint.map(str::to_string),
        rds_cluster: rds.map(str::to_string),
        redis: redis.map(str::to_string),
    }
}

/// The adapter reading moto directly.
async fn on_moto(rds: Option<&str>, redis: Option<&str>) -> Aws {
    Aws::new(&settings(Some(&moto_url()), rds, redis), TIMEOUT).await
}

/// A delay proxy in front of moto, and the adapter reading through it.
async fn through_proxy(
    rds: Option<&str>,
    redis: Option<&str>,
    latency: Duration,
    timeout: Duration,
) -> (Proxy, hpa_tier_standins::server::Running, Aws) {
    let proxy = Proxy::new(&moto_url(), latency).unwrap();
    let running = proxy.spawn().unwrap();
    let aws = Aws::new(&settings(Some(&running.url()), rds, redis), timeout).await;
    (proxy, running, aws)
}

fn table() -> TierTable {
    let services: Vec<String> = tiers::BUILT_IN_SERVICES
        .iter()
        .map(|s| s.to_string())
        .collect();
    TierTable::new(tiers::built_in(), &services, "istio-ingress").unwrap()
}

fn member(id: &str, writer: bool, class: &str) -> RdsMember {
    RdsMember {
        id: id.into(),
        writer,
        class: class.into(),
    }
}

/// The actions the proxy saw, sorted: calls made together arrive in any order.
fn sorted_actions(proxy: &Proxy) -> Vec<String> {
    let mut a = proxy.actions();
    a.sort();
    a
}

fn assert_secret_hidden(text: &str) {
    assert!(!text.contains(SECRET), "the secret key leaked: {text}");
}

// ---------------------------------------------------------------------------
// Reading moto.

#[tokio::test]
async fn with_nothing_to_check_the_account_asks_aws_nothing() {
    // No region either: the SDK would look it up (IMDS) before any call.
    let proxy = Proxy::new(&moto_url(), Duration::ZERO).unwrap();
    let running = proxy.spawn().unwrap();
    let mut s = settings(Some(&running.url()), None, None);
    s.region = String::new();
    let observed = AwsAccount::new(&s, TIMEOUT).observe().await.unwrap();
    assert_eq!((observed.rds, observed.redis), (None, None));
    assert!(proxy.seen().is_empty(), "no request reached AWS");
}

#[tokio::test]
async fn a_writer_and_reader_aurora_cluster_is_read() {
    let (cluster, ids) = aurora(&["db.r5.8xlarge", "db.r7g.large"]).await;
    let o = on_moto(Some(&cluster), None).await.observe().await.unwrap();
    assert_eq!(o.region, REGION);
    assert_eq!(o.redis, None, "no redis_oss_name: not read");
    let rds = o.rds.unwrap();
    assert_eq!(rds.cluster, cluster);
    assert_eq!(
        rds.members,
        vec![
            member(&ids[0], true, "db.r5.8xlarge"),
            member(&ids[1], false, "db.r7g.large"),
        ]
    );
}

#[tokio::test]
async fn a_reader_smaller_than_required_blocks_and_is_named_until_it_is_resized() {
    let (cluster, ids) = aurora(&["db.r5.8xlarge", "db.r7g.large"]).await;
    let aws = on_moto(Some(&cluster), None).await;
    let a = prereq::evaluate(&aws.observe().await.unwrap(), &table());
    assert!(a[&600].is_empty(), "{:?}", a[&600]);
    for tier in [1000, 2000, 3000] {
        let missing = &a[&tier];
        assert_eq!(missing.len(), 1, "tier {tier}: {missing:?}");
        assert_eq!(
            format!("tier {tier} {}", missing[0]),
            format!(
                "tier {tier} needs RDS db.r5.8xlarge; reader {} is db.r7g.large",
                ids[1]
            )
        );
        assert_eq!(
            missing[0].fix,
            format!(
                "aws rds modify-db-instance --db-instance-identifier {} \
                 --db-instance-class db.r5.8xlarge --apply-immediately --region us-east-2",
                ids[1]
            )
        );
        assert_eq!(
            missing[0].why,
            "db.r7g.large has 2 vCPU / 16 GiB, db.r5.8xlarge needs 32 vCPU / 256 GiB"
        );
    }
    assert_eq!(prereq::highest_allowed(&a), Some(600));

    // The fix, applied: a bigger class of another family passes up to what
    // it holds; the 4000 tier still needs db.r5.12xlarge from both members.
    resize_instance(&ids[1], "db.r6i.8xlarge").await;
    let a = prereq::evaluate(&aws.observe().await.unwrap(), &table());
    assert!(
        [600, 1000, 2000, 3000].iter().all(|t| a[t].is_empty()),
        "{a:?}"
    );
    let blocked: Vec<(&str, &str)> = a[&4000]
        .iter()
        .map(|s| (s.role.as_str(), s.member.as_str()))
        .collect();
    assert_eq!(
        blocked,
        [("writer", ids[0].as_str()), ("reader", ids[1].as_str())]
    );
    assert_eq!(prereq::highest_allowed(&a), Some(3000));
}

#[tokio::test]
async fn bigger_classes_than_required_allow_every_tier() {
    let (cluster, _) = aurora(&["db.r6i.16xlarge", "db.r7g.12xlarge", "db.x2g.16xlarge"]).await;
    let group = replication_group("cache.r7g.xlarge").await;
    let o = on_moto(Some(&cluster), Some(&group))
        .await
        .observe()
        .await
        .unwrap();
    assert_eq!(o.rds.as_ref().unwrap().members.len(), 3);
    let a = prereq::evaluate(&o, &table());
    assert!(a.values().all(Vec::is_empty), "{a:#?}");
    assert_eq!(prereq::highest_allowed(&a), Some(5000));
}

#[tokio::test]
async fn a_replication_group_resolves_and_a_small_one_blocks_with_its_fix() {
    let group = replication_group("cache.m6g.large").await;
    let o = on_moto(None, Some(&group)).await.observe().await.unwrap();
    assert_eq!(o.rds, None);
    assert_eq!(
        o.redis,
        Some(RedisObserved {
            name: group.clone(),
            kind: RedisKind::ReplicationGroup,
            node_type: "cache.m6g.large".into(),
        })
    );
    let a = prereq::evaluate(&o, &table());
    assert!(a[&600].is_empty());
    let s = &a[&1000][0];
    assert_eq!(
        s.to_string(),
        format!("needs Redis cache.c7gn.xlarge; replication group {group} is cache.m6g.large")
    );
    assert_eq!(
        s.fix,
        format!(
            "aws elasticache modify-replication-group --replication-group-id {group} \
             --cache-node-type cache.c7gn.xlarge --apply-immediately --region us-east-2"
        )
    );
}

#[tokio::test]
async fn a_plain_cache_cluster_resolves_when_no_replication_group_has_the_name() {
    let cc = cache_cluster("cache.c7gn.xlarge").await;
    let o = on_moto(None, Some(&cc)).await.observe().await.unwrap();
    assert_eq!(
        o.redis,
        Some(RedisObserved {
            name: cc.clone(),
            kind: RedisKind::CacheCluster,
            node_type: "cache.c7gn.xlarge".into(),
        })
    );
    assert!(prereq::evaluate(&o, &table()).values().all(Vec::is_empty));

    let small = cache_cluster("cache.t3.medium").await;
    let o = on_moto(None, Some(&small)).await.observe().await.unwrap();
    let a = prereq::evaluate(&o, &table());
    assert!(
        a[&600][0]
            .fix
            .starts_with(&format!("aws elasticache modify-cache-cluster --cache-cluster-id {small} --cache-node-type cache.m6g.large")),
        "{}",
        a[&600][0].fix
    );
}

#[tokio::test]
async fn unknown_names_say_which_name_region_and_endpoint() {
    let missing = unique("hpa-missing-");
    let e = on_moto(Some(&missing), None)
        .await
        .observe()
        .await
        .unwrap_err();
    let PrereqError::NotFound(msg) = &e else {
        panic!("want NotFound, got {e:?}")
    };
    assert!(
        msg.contains(&format!("RDS cluster `{missing}` not found"))
            && msg.contains("region us-east-2")
            && msg.contains(&moto_url())
            && msg.contains("rds_cluster_name"),
        "{msg}"
    );
    assert_secret_hidden(msg);

    let e = on_moto(None, Some(&missing))
        .await
        .observe()
        .await
        .unwrap_err();
    let PrereqError::NotFound(msg) = &e else {
        panic!("want NotFound, got {e:?}")
    };
    assert!(
        msg.contains(&format!(
            "no ElastiCache replication group or cache cluster named `{missing}`"
        )) && msg.contains("region us-east-2")
            && msg.contains(&moto_url())
            && msg.contains("redis_oss_name"),
        "{msg}"
    );

    // Both missing: one error that names both.
    let e = on_moto(Some(&missing), Some(&missing))
        .await
        .observe()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PrereqError::NotFound(m) if m.contains("RDS cluster") && m.contains("ElastiCache")),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// What goes over the wire (through the delay proxy).

#[tokio::test]
async fn the_delay_proxy_reaches_moto_and_the_two_rds_calls_share_one_latency() {
    let (cluster, ids) = aurora(&["db.r6g.large"]).await;
    let latency = Duration::from_millis(400);
    let (proxy, _running, aws) = through_proxy(Some(&cluster), None, latency, TIMEOUT).await;
    let started = Instant::now();
    let o = aws.observe().await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        o.rds.unwrap().members,
        [member(&ids[0], true, "db.r6g.large")]
    );
    // DescribeDBClusters and DescribeDBInstances were in flight together:
    // one latency, not two.
    assert_eq!(proxy.max_in_flight(), 2, "{:?}", proxy.actions());
    assert!(took >= latency && took < 2 * latency, "took {took:?}");
}

#[tokio::test]
async fn aws_is_one_round_trip_for_the_cluster_its_instances_and_redis() {
    let (cluster, _) = aurora(&["db.r5.large", "db.r5.large"]).await;
    let group = replication_group("cache.r6g.large").await;
    let latency = Duration::from_millis(300);
    let (proxy, _running, aws) =
        through_proxy(Some(&cluster), Some(&group), latency, TIMEOUT).await;
    let started = Instant::now();
    let o = aws.observe().await.unwrap();
    let took = started.elapsed();
    assert!(o.rds.is_some() && o.redis.is_some());
    assert_eq!(
        sorted_actions(&proxy),
        [
            "DescribeDBClusters",
            "DescribeDBInstances",
            "DescribeReplicationGroups"
        ]
    );
    assert_eq!(proxy.max_in_flight(), 3, "all three at once");
    assert!(took < 2 * latency, "took {took:?}");

    // The count tells one call after another from calls together: Redis
    // alone, looked up as a cache cluster after no group was found, is two
    // calls that never overlap.
    let cc = cache_cluster("cache.m6g.large").await;
    let (proxy, _running, aws) = through_proxy(None, Some(&cc), latency, TIMEOUT).await;
    aws.observe().await.unwrap();
    assert_eq!(
        proxy.actions(),
        ["DescribeReplicationGroups", "DescribeCacheClusters"]
    );
    assert_eq!(proxy.max_in_flight(), 1);
}

#[tokio::test]
async fn empty_names_skip_the_checks_without_calling_aws() {
    let (proxy, _running, aws) = through_proxy(None, None, Duration::ZERO, TIMEOUT).await;
    let o = aws.observe().await.unwrap();
    assert_eq!(
        o,
        Observed {
            region: REGION.into(),
            rds: None,
            redis: None
        }
    );
    assert!(proxy.seen().is_empty(), "{:?}", proxy.actions());
}

#[tokio::test]
async fn members_are_read_with_one_filtered_describe_db_instances() {
    let (cluster, _) = aurora(&["db.r5.large", "db.r5.large", "db.r5.large"]).await;
    // Another cluster's instances must not be mixed in.
    let _other = aurora(&["db.t3.medium"]).await;
    let (proxy, _running, aws) = through_proxy(Some(&cluster), None, Duration::ZERO, TIMEOUT).await;
    let o = aws.observe().await.unwrap();
    assert_eq!(o.rds.unwrap().members.len(), 3);
    assert_eq!(
        sorted_actions(&proxy),
        ["DescribeDBClusters", "DescribeDBInstances"]
    );
    let seen = proxy.seen();
    let body = &seen
        .iter()
        .find(|s| s.action.as_deref() == Some("DescribeDBInstances"))
        .unwrap()
        .body;
    assert!(
        body.contains("Filters.Filter.1.Name=db-cluster-id")
            && body.contains(&format!("Filters.Filter.1.Values.Value.1={cluster}")),
        "{body}"
    );
}

#[tokio::test]
async fn rds_and_redis_are_read_concurrently() {
    let (cluster, _) = aurora(&["db.r5.large"]).await;
    let group = replication_group("cache.r6g.large").await;
    let latency = Duration::from_millis(800);
    let (proxy, _running, aws) =
        through_proxy(Some(&cluster), Some(&group), latency, TIMEOUT).await;
    let o = aws.observe().await.unwrap();
    assert!(o.rds.is_some() && o.redis.is_some());
    let seen = proxy.seen();
    let first = |action: &str| {
        seen.iter()
            .find(|s| s.action.as_deref() == Some(action))
            .unwrap_or_else(|| panic!("no {action} in {:?}", proxy.actions()))
            .at
    };
    let (rds, redis) = (
        first("DescribeDBClusters"),
        first("DescribeReplicationGroups"),
    );
    let gap = if rds > redis {
        rds - redis
    } else {
        redis - rds
    };
    // One after the other, the second would wait for the first's latency.
    assert!(gap < latency, "RDS and ElastiCache were read {gap:?} apart");
}

#[tokio::test]
async fn access_denied_names_the_iam_action_and_hides_the_secret() {
    let (cluster, _) = aurora(&["db.r5.large"]).await;
    let group = replication_group("cache.r6g.large").await;
    let denied = |action: &str| {
        Fault::aws(
            403,
            "AccessDenied",
            &format!(
                "User: arn:aws:sts::123456789012:assumed-role/hpa-tier/x is not authorized to perform: {action}"
            ),
        )
    };
    let (proxy, _running, aws) = through_proxy(Some(&cluster), None, Duration::ZERO, TIMEOUT).await;
    proxy.fail(denied("rds:DescribeDBInstances").on("DescribeDBInstances"));
    let e = aws.observe().await.unwrap_err();
    let PrereqError::AccessDenied(msg) = &e else {
        panic!("want AccessDenied, got {e:?}")
    };
    assert!(
        msg.contains("AWS denied rds:DescribeDBInstances")
            && msg.contains(&format!("RDS cluster `{cluster}`"))
            && msg.contains("allow rds:DescribeDBInstances"),
        "{msg}"
    );
    assert_secret_hidden(msg);
    assert_secret_hidden(&format!("{e:?} {aws:?}"));
    assert_eq!(
        sorted_actions(&proxy),
        ["DescribeDBClusters", "DescribeDBInstances"],
        "not retried"
    );

    let (proxy, _running, aws) = through_proxy(None, Some(&group), Duration::ZERO, TIMEOUT).await;
    proxy.fail(denied("elasticache:DescribeReplicationGroups").on("DescribeReplicationGroups"));
    let e = aws.observe().await.unwrap_err();
    assert!(
        matches!(&e, PrereqError::AccessDenied(m) if m.contains("elasticache:DescribeReplicationGroups")),
        "{e:?}"
    );
    // Denied on the group is not taken for "no such group".
    assert_eq!(proxy.actions(), ["DescribeReplicationGroups"]);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_reported_as_unavailable() {
    let (cluster, _) = aurora(&["db.r5.large"]).await;
    let (proxy, _running, aws) = through_proxy(Some(&cluster), None, Duration::ZERO, TIMEOUT).await;
    proxy.fail(Fault::aws(400, "Throttling", "Rate exceeded"));
    let e = aws.observe().await.unwrap_err();
    let PrereqError::Unavailable(msg) = &e else {
        panic!("want Unavailable, got {e:?}")
    };
    assert!(
        msg.contains("rds:DescribeDBClusters")
            && msg.contains("Throttling")
            && msg.contains("Rate exceeded"),
        "{msg}"
    );
    assert_eq!(
        sorted_actions(&proxy),
        [["DescribeDBClusters"; 3], ["DescribeDBInstances"; 3]].concat(),
        "the SDK's standard retry mode makes 3 attempts of each"
    );
}

#[tokio::test]
async fn throttling_that_clears_within_the_retries_goes_unnoticed() {
    let (cluster, ids) = aurora(&["db.r5.large"]).await;
    let (proxy, _running, aws) = through_proxy(Some(&cluster), None, Duration::ZERO, TIMEOUT).await;
    proxy.fail(Fault::aws(400, "Throttling", "Rate exceeded").times(2));
    let o = aws.observe().await.unwrap();
    assert_eq!(
        o.rds.unwrap().members,
        [member(&ids[0], true, "db.r5.large")]
    );
    assert_eq!(proxy.seen().iter().filter(|s| s.faulted).count(), 2);
}

#[tokio::test]
async fn a_5xx_after_the_retries_is_unavailable() {
    let group = replication_group("cache.r6g.large").await;
    let (proxy, _running, aws) = through_proxy(None, Some(&group), Duration::ZERO, TIMEOUT).await;
    proxy.fail(Fault::aws(
        500,
        "InternalFailure",
        "We encountered an internal error",
    ));
    let e = aws.observe().await.unwrap_err();
    assert!(
        matches!(&e, PrereqError::Unavailable(m)
            if m.contains("elasticache:DescribeReplicationGroups") && m.contains("HTTP 500")),
        "{e:?}"
    );
    assert_eq!(proxy.seen().len(), 3, "{:?}", proxy.actions());
}

#[tokio::test]
async fn a_slow_aws_is_a_timeout_bounded_by_timeout_seconds() {
    let (cluster, _) = aurora(&["db.r5.large"]).await;
    let (_proxy, _running, aws) = through_proxy(
        Some(&cluster),
        None,
        Duration::from_secs(5),
        Duration::from_secs(1),
    )
    .await;
    let started = Instant::now();
    let e = aws.observe().await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&e, PrereqError::Timeout(m) if m.contains("rds:DescribeDBClusters") && m.contains("within 1s")),
        "{e:?}"
    );
    assert!(took < Duration::from_millis(3000), "took {took:?}");
}

#[tokio::test]
async fn a_dead_endpoint_is_reported_with_its_address() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let aws = Aws::new(&settings(Some(&dead), Some("prod-aurora"), None), TIMEOUT).await;
    let e = aws.observe().await.unwrap_err();
    assert!(
        matches!(&e, PrereqError::Api(m) if m.contains("cannot reach AWS") && m.contains(&dead)),
        "{e:?}"
    );
    assert_secret_hidden(&e.to_string());
}

// ---------------------------------------------------------------------------
// The environment (`AWS_ENDPOINT_URL`, the default credential chain) is read
// in a child process — this binary running one ignored test — because
// changing this process's environment would race the other tests.

const CHILD: &str = "prereq::child_observes_with_the_environment_it_was_given";
const CHILD_CLUSTER: &str = "HPA_TIER_TEST_CHILD_CLUSTER";

/// Runs the child with exactly `env` (plus the cluster to read) and returns
/// what its `observe` gave, as Debug text.
fn observe_in_child(cluster: &str, env: &[(&str, &str)]) -> String {
    let home = crate::support::tempdir();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        // No profile, no instance metadata: only what `env` provides.
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(CHILD_CLUSTER, cluster)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    text.lines()
        .find_map(|l| l.split_once("CHILD OBSERVED: ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result in {text}"))
        .to_string()
}

#[test]
fn aws_endpoint_url_and_env_credentials_are_used_when_the_config_has_none() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (cluster, _) = rt.block_on(aurora(&["db.r7g.large"]));
    let proxy = Proxy::new(&moto_url(), Duration::ZERO).unwrap();
    let running = proxy.spawn().unwrap();
    let env_secret = "env-secret-never-printed";
    let got = observe_in_child(
        &cluster,
        &[
            ("AWS_ENDPOINT_URL", &running.url()),
            ("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT"),
            ("AWS_SECRET_ACCESS_KEY", env_secret),
        ],
    );
    assert!(
        got.starts_with("Ok(") && got.contains("db.r7g.large"),
        "{got}"
    );
    assert_eq!(
        sorted_actions(&proxy),
        ["DescribeDBClusters", "DescribeDBInstances"],
        "the child reached AWS through AWS_ENDPOINT_URL"
    );
    assert!(proxy.seen().iter().all(|s| !s.body.contains(env_secret)));
}

#[test]
fn no_credentials_anywhere_is_an_error_that_says_where_they_may_come_from() {
    let proxy = Proxy::new(&moto_url(), Duration::ZERO).unwrap();
    let running = proxy.spawn().unwrap();
    let got = observe_in_child("prod-aurora", &[("AWS_ENDPOINT_URL", &running.url())]);
    assert!(
        got.starts_with("Err(Api(")
            && got.contains("no usable AWS credentials")
            && got.contains("aws_access_key_id")
            && got.contains("IRSA"),
        "{got}"
    );
    assert!(proxy.seen().is_empty(), "nothing unsigned was sent");
}

#[tokio::test]
#[ignore = "a helper: run in a child process by the tests above"]
async fn child_observes_with_the_environment_it_was_given() {
    let Ok(cluster) = std::env::var(CHILD_CLUSTER) else {
        eprintln!("only meaningful when started by another test");
        return;
    };
    let mut settings = settings(None, Some(&cluster), None);
    settings.static_keys = None;
    let aws = Aws::new(&settings, TIMEOUT).await;
    println!("CHILD OBSERVED: {:?}", aws.observe().await);
}
