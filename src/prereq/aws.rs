//! The AWS adapter: reads the instance classes of the Aurora cluster's members
//! (RDS) and the node type of the Redis replication group or cache cluster
//! (ElastiCache), and turns AWS failures into [`PrereqError`] kinds whose
//! messages name the resource, the region, the endpoint and — for access
//! problems — the IAM action to grant. The cluster, its instances and the
//! cache are asked at once: one round trip to AWS.
//!
//! One SDK config (rustls + ring HTTP client, operation timeouts from
//! `timeout_seconds`, retries by the SDK) is shared by both service clients.
//! Credentials: the static keys of the config, else the default chain (env,
//! profile, IRSA web identity, …). Endpoint: `aws_endpoint_url`, else what
//! the SDK reads itself (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_RDS`, …).

use crate::quote::chain;
use std::time::Duration;

use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_elasticache::types::{CacheCluster, ReplicationGroup};
use aws_sdk_rds::types::{DbCluster, DbInstance, Filter};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::timeout::TimeoutConfig;

use super::{
    Observed, PrereqError, Prerequisites, RdsMember, RdsObserved, RedisKind, RedisObserved,
};
use crate::config::AwsSettings;

/// Error codes AWS uses for a missing permission.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "NotAuthorized",
];

/// Error codes that mean the credentials themselves are wrong.
const BAD_CREDENTIALS: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "InvalidAccessKeyId",
];

/// Error codes of throttling (the SDK has already retried them).
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "ServiceUnavailable",
];

/// Pages of DescribeDBInstances followed for one cluster (100 instances each).
const MAX_INSTANCE_PAGES: usize = 10;

/// Reads RDS and ElastiCache. Cheap to share; the clients are `Arc`s inside.
#[derive(Clone, Debug)]
pub struct Aws {
    rds: aws_sdk_rds::Client,
    elasticache: aws_sdk_elasticache::Client,
    rds_cluster: Option<String>,
    redis: Option<String>,
    region: String,
    /// The endpoint override in effect, for messages; `None`: AWS's own.
    endpoint: Option<String>,
    timeout: Duration,
}

impl Aws {
    /// Loads the SDK configuration (region, credentials, endpoint) once.
    /// Nothing is sent to AWS until [`Prerequisites::observe`].
    pub async fn new(settings: &AwsSettings, timeout: Duration) -> Aws {
        let sdk = sdk_config(settings, timeout).await;
        Aws {
            rds: aws_sdk_rds::Client::new(&sdk),
            elasticache: aws_sdk_elasticache::Client::new(&sdk),
            rds_cluster: settings.rds_cluster.clone(),
            redis: settings.redis.clone(),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            endpoint: sdk.endpoint_url().map(str::to_string),
            timeout,
        }
    }

    /// `region us-east-2, endpoint http://…` for messages.
    fn place(&self) -> String {
        let region = if self.region.is_empty() {
            "no region configured".to_string()
        } else {
            format!("region {}", self.region)
        };
        match &self.endpoint {
            Some(e) => format!("{region}, endpoint {e}"),
            None => format!("{region}, the AWS endpoint"),
        }
    }

    /// The cluster (its members, and which is the writer) and its instances
    /// (their classes), asked at once: one round trip, not two.
    async fn read_rds(&self, cluster: &str) -> Result<RdsObserved, PrereqError> {
        let target = format!("RDS cluster `{cluster}`");
        let (found, instances) = tokio::join!(
            self.describe_cluster(cluster, &target),
            self.cluster_instances(cluster, &target)
        );
        // The cluster's failure wins: a missing cluster has no instances
        // either, and it is what the person must fix.
        let found = found?;
        let observed = rds_observed(&found, &instances?).map_err(PrereqError::Api)?;
        tracing::debug!(cluster = %observed.cluster, members = ?observed.members, "read RDS");
        Ok(observed)
    }

    async fn describe_cluster(
        &self,
        cluster: &str,
        target: &str,
    ) -> Result<DbCluster, PrereqError> {
        let not_found = || {
            PrereqError::NotFound(format!(
                "RDS cluster `{cluster}` not found ({}); check rds_cluster_name (the Aurora \
                 cluster identifier, not an instance's) and aws_region, or leave \
                 rds_cluster_name empty to skip the RDS check",
                self.place()
            ))
        };
        let out = self
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_cluster_not_found_fault())
                {
                    not_found()
                } else {
                    self.failure(e, "rds:DescribeDBClusters", target)
                }
            })?;
        out.db_clusters()
            .iter()
            .find(|c| {
                c.db_cluster_identifier()
                    .is_some_and(|id| id.eq_ignore_ascii_case(cluster))
            })
            .cloned()
            .ok_or_else(not_found)
    }

    /// The cluster's DB instances: one filtered call for all members, not one
    /// per member. Pages are followed, a bounded number of them, although an
    /// Aurora cluster has at most 16 instances.
    async fn cluster_instances(
        &self,
        cluster: &str,
        target: &str,
    ) -> Result<Vec<DbInstance>, PrereqError> {
        // RDS keeps identifiers in lower case; so the filter names it.
        let id = cluster.to_ascii_lowercase();
        let mut instances: Vec<DbInstance> = vec![];
        let mut marker: Option<String> = None;
        for _ in 0..MAX_INSTANCE_PAGES {
            let page = self
                .rds
                .describe_db_instances()
                .filters(Filter::builder().name("db-cluster-id").values(&id).build())
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| self.failure(e, "rds:DescribeDBInstances", target))?;
            instances.extend(page.db_instances().iter().cloned());
            match page.marker().filter(|m| !m.is_empty()) {
                None => return Ok(instances),
                Some(m) if marker.as_deref() == Some(m) => {
                    return Err(PrereqError::Api(format!(
                        "rds:DescribeDBInstances on {target} answered the same page marker \
                         twice ({}); the next run reads it again",
                        self.place()
                    )));
                }
                Some(m) => marker = Some(m.to_string()),
            }
        }
        Err(PrereqError::Api(format!(
            "rds:DescribeDBInstances on {target} had more than {MAX_INSTANCE_PAGES} pages of \
             instances ({}); an Aurora cluster has at most 16: is rds_cluster_name right?",
            self.place()
        )))
    }

    async fn read_redis(&self, name: &str) -> Result<RedisObserved, PrereqError> {
        let group = self
            .elasticache
            .describe_replication_groups()
            .replication_group_id(name)
            .send()
            .await;
        let observed = match group {
            Ok(out) => {
                let rg = out
                    .replication_groups()
                    .iter()
                    .find(|g| g.replication_group_id() == Some(name))
                    .or(out.replication_groups().first());
                match rg {
                    Some(rg) => Some(redis_from_group(rg).map_err(PrereqError::Api)?),
                    None => None,
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_replication_group_not_found_fault()) =>
            {
                None
            }
            Err(e) => {
                return Err(self.failure(
                    e,
                    "elasticache:DescribeReplicationGroups",
                    &format!("ElastiCache replication group `{name}`"),
                ));
            }
        };
        let observed = match observed {
            Some(o) => o,
            None => {
                let out = self
                    .elasticache
                    .describe_cache_clusters()
                    .cache_cluster_id(name)
                    .send()
                    .await
                    .map_err(|e| {
                        if e.as_service_error()
                            .is_some_and(|s| s.is_cache_cluster_not_found_fault())
                        {
                            PrereqError::NotFound(format!(
                                "no ElastiCache replication group or cache cluster named `{name}` \
                                 ({}); check redis_oss_name and aws_region, or leave \
                                 redis_oss_name empty to skip the Redis check (ElastiCache \
                                 Serverless caches have no node type to check)",
                                self.place()
                            ))
                        } else {
                            self.failure(
                                e,
                                "elasticache:DescribeCacheClusters",
                                &format!("ElastiCache cache cluster `{name}`"),
                            )
                        }
                    })?;
                let Some(cc) = out.cache_clusters().first() else {
                    return Err(PrereqError::Api(format!(
                        "ElastiCache answered DescribeCacheClusters for `{name}` with no cache \
                         cluster ({})",
                        self.place()
                    )));
                };
                redis_from_cluster(cc).map_err(PrereqError::Api)?
            }
        };
        tracing::debug!(name = %observed.name, kind = ?observed.kind, node_type = %observed.node_type, "read ElastiCache");
        Ok(observed)
    }

    /// Maps an SDK failure of `action` (the IAM action, e.g.
    /// `rds:DescribeDBClusters`) on `target` to the kind a caller acts on.
    fn failure<E>(&self, err: SdkError<E, HttpResponse>, action: &str, target: &str) -> PrereqError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let place = self.place();
        let timed_out = || {
            PrereqError::Timeout(format!(
                "{action} on {target} got no answer within {}s ({place}); \
                 AWS or the network is slow, the next run tries again",
                self.timeout.as_secs_f64()
            ))
        };
        match &err {
            SdkError::TimeoutError(_) => timed_out(),
            SdkError::DispatchFailure(d) if d.is_timeout() => timed_out(),
            SdkError::DispatchFailure(_) if has_credentials_error(&err) => {
                PrereqError::Api(format!(
                    "no usable AWS credentials for {action} on {target} ({place}): {}; set \
                     aws_access_key_id / aws_secret_access_key, or provide the default chain \
                     (AWS_* environment, a profile, or an IRSA web identity)",
                    chain(&err)
                ))
            }
            SdkError::DispatchFailure(_) => PrereqError::Api(format!(
                "cannot reach AWS for {action} on {target} ({place}): {}",
                chain(&err)
            )),
            SdkError::ServiceError(s) => {
                let code = s.err().code().unwrap_or_default();
                let message = s.err().message().unwrap_or_default();
                let status = s.raw().status().as_u16();
                if ACCESS_DENIED.contains(&code) {
                    PrereqError::AccessDenied(format!(
                        "AWS denied {action} on {target} ({place}): {message}; allow {action} \
                         for the identity hpa-tier runs as (its IAM policy or IRSA role)"
                    ))
                } else if BAD_CREDENTIALS.contains(&code) {
                    PrereqError::Api(format!(
                        "AWS rejected the credentials for {action} on {target} ({place}): \
                         {code}: {message}; check aws_access_key_id / aws_secret_access_key \
                         or the credential chain"
                    ))
                } else if THROTTLED.contains(&code) || status >= 500 {
                    let what = if code.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("{code} (HTTP {status})")
                    };
                    PrereqError::Unavailable(format!(
                        "{action} on {target} still failed with {what} after the SDK's retries \
                         ({place}): {message}; AWS is throttling or unavailable, the next run \
                         tries again"
                    ))
                } else {
                    let code = if code.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        code.to_string()
                    };
                    PrereqError::Api(format!(
                        "{action} on {target} failed ({place}): {code}: {message}"
                    ))
                }
            }
            SdkError::ResponseError(r) if r.raw().status().as_u16() >= 500 => {
                PrereqError::Unavailable(format!(
                    "{action} on {target} still failed with HTTP {} after the SDK's retries \
                     ({place}); AWS is unavailable, the next run tries again",
                    r.raw().status().as_u16()
                ))
            }
            _ => PrereqError::Api(format!(
                "{action} on {target} failed ({place}): {}",
                chain(&err)
            )),
        }
    }
}

/// The AWS account of a run, its SDK configuration (region, credentials,
/// endpoint) loaded when it is first read: alongside the other reads of the
/// gather phase, not before them.
pub struct AwsAccount {
    settings: AwsSettings,
    timeout: Duration,
}

impl AwsAccount {
    pub fn new(settings: &AwsSettings, timeout: Duration) -> Self {
        AwsAccount {
            settings: settings.clone(),
            timeout,
        }
    }
}

impl Prerequisites for AwsAccount {
    async fn observe(&self) -> Result<Observed, PrereqError> {
        // Nothing to check: no SDK either, whose region and credential
        // lookup would otherwise ask the instance metadata service.
        if self.settings.rds_cluster.is_none() && self.settings.redis.is_none() {
            return Ok(Observed {
                region: self.settings.region.clone(),
                ..Observed::default()
            });
        }
        Aws::new(&self.settings, self.timeout).await.observe().await
    }
}

impl Prerequisites for Aws {
    /// Reads RDS and ElastiCache concurrently; a part whose name is not
    /// configured is `None` and costs no call.
    async fn observe(&self) -> Result<Observed, PrereqError> {
        let rds = async {
            match &self.rds_cluster {
                // Boxed: the SDK's futures are deep, and two calls joined
                // inside this join would take the shell's future past the
                // compiler's layout depth limit.
                Some(c) => Box::pin(self.read_rds(c)).await.map(Some),
                None => Ok(None),
            }
        };
        let redis = async {
            match &self.redis {
                Some(r) => self.read_redis(r).await.map(Some),
                None => Ok(None),
            }
        };
        match tokio::join!(rds, redis) {
            (Ok(rds), Ok(redis)) => Ok(Observed {
                region: self.region.clone(),
                rds,
                redis,
            }),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
            (Err(rds), Err(redis)) => Err(also(rds, &redis)),
        }
    }
}

/// The shared SDK configuration: one rustls + ring HTTP client (no aws-lc),
/// every operation — retries included — bounded by `timeout`.
async fn sdk_config(settings: &AwsSettings, timeout: Duration) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        .app_name(AppName::new("hpa-tier").expect("a valid app name"));
    if !settings.region.is_empty() {
        loader = loader.region(Region::new(settings.region.clone()));
    }
    if let Some((id, secret)) = &settings.static_keys {
        // `Credentials`' Debug redacts the secret; it is never formatted here.
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret.expose(),
            None,
            None,
            "hpa-tier config",
        ));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Both reads failed: keep the first kind, say both.
fn also(first: PrereqError, second: &PrereqError) -> PrereqError {
    use PrereqError::*;
    let add = |m: String| format!("{m}; also: {second}");
    match first {
        NotFound(m) => NotFound(add(m)),
        AccessDenied(m) => AccessDenied(add(m)),
        Unavailable(m) => Unavailable(add(m)),
        Timeout(m) => Timeout(add(m)),
        Api(m) => Api(add(m)),
    }
}

fn has_credentials_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<CredentialsError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The cluster's members with their classes: writer first, then readers by
/// id. Which members there are and which is the writer comes from the
/// cluster; the classes from its instances, read at the same time. The two
/// may disagree for a moment while an instance is created or deleted:
/// - a member with no instance, or no class, cannot be checked: an error,
///   so the run scales up nothing rather than pass a member unseen;
/// - an instance of the cluster that is not (or no longer) a member is
///   checked as a reader: it serves reads once it joins, and a leaving one
///   holds a scale-up back for a run or two at most.
fn rds_observed(cluster: &DbCluster, instances: &[DbInstance]) -> Result<RdsObserved, String> {
    let name = cluster.db_cluster_identifier().unwrap_or_default();
    // The filter already asked for this cluster's; an instance that says
    // it belongs to another is not counted.
    let ours: Vec<&DbInstance> = instances
        .iter()
        .filter(|i| {
            i.db_cluster_identifier()
                .is_none_or(|c| c.eq_ignore_ascii_case(name))
        })
        .collect();
    let class_of = |id: &str| -> Result<String, String> {
        let class = ours
            .iter()
            .find(|i| {
                i.db_instance_identifier()
                    .is_some_and(|i| i.eq_ignore_ascii_case(id))
            })
            .and_then(|i| i.db_instance_class())
            .map(str::trim)
            .filter(|c| !c.is_empty());
        class.map(str::to_string).ok_or_else(|| {
            format!(
                "RDS lists `{id}` as a member of cluster `{name}` but reports no \
                 instance class for it (it may be being created or deleted); \
                 the next run reads it again"
            )
        })
    };
    let mut members: Vec<RdsMember> = vec![];
    for m in cluster.db_cluster_members() {
        let id = m.db_instance_identifier().unwrap_or_default();
        let writer = m.is_cluster_writer().unwrap_or(false);
        match members.iter_mut().find(|k| k.id.eq_ignore_ascii_case(id)) {
            Some(known) => known.writer |= writer,
            None => members.push(RdsMember {
                id: id.to_string(),
                writer,
                class: class_of(id)?,
            }),
        }
    }
    for i in &ours {
        let id = i.db_instance_identifier().unwrap_or_default();
        if id.is_empty() || members.iter().any(|m| m.id.eq_ignore_ascii_case(id)) {
            continue;
        }
        tracing::debug!(
            instance = id,
            cluster = name,
            "an instance of the cluster that is not listed as a member is checked as a reader"
        );
        members.push(RdsMember {
            id: id.to_string(),
            writer: false,
            class: class_of(id).map_err(|_| {
                format!(
                    "RDS reports instance `{id}` of cluster `{name}` without an instance class; \
                     the next run reads it again"
                )
            })?,
        });
    }
    members.sort_by(|a, b| b.writer.cmp(&a.writer).then_with(|| a.id.cmp(&b.id)));
    Ok(RdsObserved {
        cluster: name.to_string(),
        members,
    })
}

fn redis_from_group(rg: &ReplicationGroup) -> Result<RedisObserved, String> {
    let name = rg.replication_group_id().unwrap_or_default();
    let node_type = rg
        .cache_node_type()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            format!("ElastiCache reports no node type for replication group `{name}`")
        })?;
    Ok(RedisObserved {
        name: name.to_string(),
        kind: RedisKind::ReplicationGroup,
        node_type: node_type.to_string(),
    })
}

/// A cache cluster that belongs to a replication group is resized through
/// the group (`modify-cache-cluster` refuses it), so it is reported as that group.
fn redis_from_cluster(cc: &CacheCluster) -> Result<RedisObserved, String> {
    let name = cc.cache_cluster_id().unwrap_or_default();
    let node_type = cc
        .cache_node_type()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("ElastiCache reports no node type for cache cluster `{name}`"))?;
    Ok(match cc.replication_group_id().filter(|g| !g.is_empty()) {
        Some(group) => RedisObserved {
            name: group.to_string(),
            kind: RedisKind::ReplicationGroup,
            node_type: node_type.to_string(),
        },
        None => RedisObserved {
            name: name.to_string(),
            kind: RedisKind::CacheCluster,
            node_type: node_type.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::DbClusterMember;

    fn member(id: &str, writer: bool) -> DbClusterMember {
        DbClusterMember::builder()
            .db_instance_identifier(id)
            .is_cluster_writer(writer)
            .build()
    }

    fn instance(id: &str, class: &str) -> DbInstance {
        DbInstance::builder()
            .db_instance_identifier(id)
            .db_instance_class(class)
            .build()
    }

    #[test]
    fn members_get_their_classes_writer_first() {
        let cluster = DbCluster::builder()
            .db_cluster_identifier("prod-aurora")
            .db_cluster_members(member("prod-aurora-3", false))
            .db_cluster_members(member("prod-aurora-2", true))
            .db_cluster_members(member("prod-aurora-1", false))
            .build();
        let instances = [
            instance("prod-aurora-1", "db.r7g.large"),
            instance("prod-aurora-2", "db.r5.8xlarge"),
            instance("prod-aurora-3", "db.r6g.xlarge"),
        ];
        let o = rds_observed(&cluster, &instances).unwrap();
        assert_eq!(o.cluster, "prod-aurora");
        let got: Vec<(&str, bool, &str)> = o
            .members
            .iter()
            .map(|m| (m.id.as_str(), m.writer, m.class.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("prod-aurora-2", true, "db.r5.8xlarge"),
                ("prod-aurora-1", false, "db.r7g.large"),
                ("prod-aurora-3", false, "db.r6g.xlarge"),
            ]
        );
    }

    #[test]
    fn a_member_without_an_instance_is_an_error_naming_it() {
        let cluster = DbCluster::builder()
            .db_cluster_identifier("prod-aurora")
            .db_cluster_members(member("prod-aurora-1", true))
            .db_cluster_members(member("prod-aurora-9", false))
            .build();
        let e = rds_observed(&cluster, &[instance("prod-aurora-1", "db.r5.large")]).unwrap_err();
        assert!(
            e.contains("`prod-aurora-9`") && e.contains("`prod-aurora`"),
            "{e}"
        );
    }

    fn observed(cluster: &DbCluster, instances: &[DbInstance]) -> Vec<(String, bool, String)> {
        rds_observed(cluster, instances)
            .unwrap()
            .members
            .into_iter()
            .map(|m| (m.id, m.writer, m.class))
            .collect()
    }

    fn row(id: &str, writer: bool, class: &str) -> (String, bool, String) {
        (id.into(), writer, class.into())
    }

    #[test]
    fn an_instance_not_yet_listed_as_a_member_is_checked_as_a_reader() {
        // Created between the two calls: DescribeDBInstances saw it,
        // DescribeDBClusters did not yet.
        let cluster = DbCluster::builder()
            .db_cluster_identifier("prod-aurora")
            .db_cluster_members(member("prod-aurora-1", true))
            .build();
        let instances = [
            instance("prod-aurora-1", "db.r5.8xlarge"),
            instance("prod-aurora-new", "db.t4g.medium"),
        ];
        assert_eq!(
            observed(&cluster, &instances),
            [
                row("prod-aurora-1", true, "db.r5.8xlarge"),
                row("prod-aurora-new", false, "db.t4g.medium"),
            ]
        );
    }

    #[test]
    fn the_writer_flag_comes_from_the_cluster_and_ids_match_in_any_case() {
        let cluster = DbCluster::builder()
            .db_cluster_identifier("prod-aurora")
            .db_cluster_members(member("Prod-Aurora-2", true))
            .db_cluster_members(member("prod-aurora-1", false))
            // Listed twice (a failover in between): one member, the writer.
            .db_cluster_members(member("prod-aurora-1", true))
            .build();
        let instances = [
            instance("prod-aurora-1", "db.r7g.large"),
            instance("prod-aurora-2", "db.r5.8xlarge"),
        ];
        assert_eq!(
            observed(&cluster, &instances),
            [
                row("Prod-Aurora-2", true, "db.r5.8xlarge"),
                row("prod-aurora-1", true, "db.r7g.large"),
            ]
        );
    }

    #[test]
    fn another_clusters_instance_is_not_counted() {
        let cluster = DbCluster::builder()
            .db_cluster_identifier("prod-aurora")
            .db_cluster_members(member("prod-aurora-1", true))
            .build();
        let stray = DbInstance::builder()
            .db_instance_identifier("staging-1")
            .db_cluster_identifier("staging-aurora")
            .db_instance_class("db.t3.medium")
            .build();
        let mut ours = instance("prod-aurora-1", "db.r5.large");
        ours.db_cluster_identifier = Some("PROD-AURORA".into());
        assert_eq!(
            observed(&cluster, &[ours, stray]),
            [row("prod-aurora-1", true, "db.r5.large")]
        );
    }

    #[test]
    fn a_blank_class_is_no_class_and_names_the_instance() {
        let cluster = DbCluster::builder()
            .db_cluster_identifier("prod-aurora")
            .db_cluster_members(member("prod-aurora-1", true))
            .build();
        let e = rds_observed(&cluster, &[instance("prod-aurora-1", " ")]).unwrap_err();
        assert!(
            e.contains("`prod-aurora-1`") && e.contains("no instance class"),
            "{e}"
        );
        let e = rds_observed(
            &cluster,
            &[
                instance("prod-aurora-1", "db.r5.large"),
                DbInstance::builder()
                    .db_instance_identifier("prod-aurora-2")
                    .build(),
            ],
        )
        .unwrap_err();
        assert!(
            e.contains("instance `prod-aurora-2`") && e.contains("without an instance class"),
            "{e}"
        );
    }

    #[test]
    fn a_cache_cluster_inside_a_replication_group_is_reported_as_the_group() {
        let alone = CacheCluster::builder()
            .cache_cluster_id("sessions")
            .cache_node_type("cache.m6g.large")
            .build();
        assert_eq!(
            redis_from_cluster(&alone).unwrap(),
            RedisObserved {
                name: "sessions".into(),
                kind: RedisKind::CacheCluster,
                node_type: "cache.m6g.large".into()
            }
        );
        let member = CacheCluster::builder()
            .cache_cluster_id("prod-redis-002")
            .replication_group_id("prod-redis")
            .cache_node_type("cache.r7g.large")
            .build();
        let o = redis_from_cluster(&member).unwrap();
        assert_eq!(
            (o.name.as_str(), o.kind),
            ("prod-redis", RedisKind::ReplicationGroup)
        );
    }

    #[test]
    fn a_replication_group_without_a_node_type_is_an_error() {
        let rg = ReplicationGroup::builder()
            .replication_group_id("prod-redis")
            .build();
        assert!(redis_from_group(&rg).unwrap_err().contains("`prod-redis`"));
        let rg = ReplicationGroup::builder()
            .replication_group_id("prod-redis")
            .cache_node_type("cache.c7gn.xlarge")
            .build();
        assert_eq!(
            redis_from_group(&rg).unwrap().node_type,
            "cache.c7gn.xlarge"
        );
    }

    #[test]
    fn both_failures_are_reported_under_the_first_kind() {
        let e = also(
            PrereqError::AccessDenied("AWS denied rds:DescribeDBClusters".into()),
            &PrereqError::Timeout("elasticache slow".into()),
        );
        assert_eq!(
            e,
            PrereqError::AccessDenied(
                "AWS denied rds:DescribeDBClusters; also: elasticache slow".into()
            )
        );
    }

    #[test]
    fn a_credentials_failure_is_found_in_the_error_chain() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let err: SdkError<
            aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError,
            HttpResponse,
        > = SdkError::dispatch_failure(ConnectorError::other(
            Box::new(CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            )),
            None,
        ));
        assert!(has_credentials_error(&err));
        let io: SdkError<
            aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError,
            HttpResponse,
        > = SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert!(!has_credentials_error(&io));
    }
}
