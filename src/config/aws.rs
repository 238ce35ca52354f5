//! AWS (`aws_region`, the static key pair, `aws_endpoint_url`, and the two
//! resources whose sizes are prerequisites: `rds_cluster_name`,
//! `redis_oss_name`).

use super::document::{Document, non_empty};
use super::error::ConfigError;
use super::raw::RawConfig;
use super::{Secret, http_url};

#[derive(Clone, Debug)]
pub struct AwsSettings {
    pub region: String,
    /// `(access key id, secret)`; `None`: the default credential chain.
    pub static_keys: Option<(String, Secret)>,
    /// From `aws_endpoint_url`; `AWS_ENDPOINT_URL` is read by the adapter.
    pub endpoint_url: Option<String>,
    pub rds_cluster: Option<String>,
    pub redis: Option<String>,
}

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<AwsSettings, ConfigError> {
    let access_key = doc.expand("aws_access_key_id", &raw.aws_access_key_id)?;
    let secret_key = doc.expand("aws_secret_access_key", &raw.aws_secret_access_key)?;
    let static_keys = match (access_key.is_empty(), secret_key.is_empty()) {
        (true, true) => None,
        (false, false) => Some((access_key, Secret::new(secret_key))),
        (missing_id, _) => {
            return Err(doc.err(
                if missing_id {
                    "aws_access_key_id"
                } else {
                    "aws_secret_access_key"
                },
                "aws_access_key_id and aws_secret_access_key go together; set both, or neither to use the default credential chain",
            ));
        }
    };
    let endpoint_url = non_empty(doc.expand("aws_endpoint_url", &raw.aws_endpoint_url)?);
    if let Some(u) = &endpoint_url {
        http_url("aws_endpoint_url", u)?;
    }
    let rds_cluster = non_empty(doc.expand("rds_cluster_name", &raw.rds_cluster_name)?);
    let redis = non_empty(doc.expand("redis_oss_name", &raw.redis_oss_name)?);
    let region = doc.expand("aws_region", &raw.aws_region)?;
    if region.is_empty() && (rds_cluster.is_some() || redis.is_some()) {
        return Err(doc.err(
            "aws_region",
            "missing; needed to check rds_cluster_name / redis_oss_name",
        ));
    }
    Ok(AwsSettings {
        region,
        static_keys,
        endpoint_url,
        rds_cluster,
        redis,
    })
}
