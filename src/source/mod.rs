//! Where the number of online users comes from (step 1 of a run).
//!
//! Every failure is a typed [`MetricError`]: the core never scales on missing
//! data, and the message must tell the person on call what to fix.

pub mod ga;
pub mod http;
pub mod prometheus;

use std::future::Future;

use hpa_tier_core::tiers::MAX_COUNT;

use crate::config::{Config, UsersSource};
use crate::error::UsageError;

/// Reads the number of people online right now.
pub trait MetricSource: Send + Sync {
    fn online_users(&self) -> impl Future<Output = Result<u32, MetricError>> + Send;
    /// Short description for logs and `status`, e.g. `GA4 properties/123 (30 min)`.
    fn describe(&self) -> String;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MetricError {
    /// The key file is missing, unreadable or not a service-account key.
    #[error("service-account key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    /// The token endpoint refused the JWT (wrong or rotated key, clock skew).
    #[error("{0}")]
    InvalidGrant(String),
    /// 401/403: the account may not read this property.
    #[error("{0}")]
    Denied(String),
    /// 429 RESOURCE_EXHAUSTED or similar quota errors.
    #[error("{0}")]
    RateLimited(String),
    /// 5xx from the source.
    #[error("{0}")]
    Server(String),
    #[error("{0}")]
    Timeout(String),
    /// Could not connect at all.
    #[error("{0}")]
    Unreachable(String),
    /// A body that is not the expected answer.
    #[error("{0}")]
    Garbage(String),
    /// Any other HTTP error status.
    #[error("{0}")]
    Http(String),
}

/// The one bound every source's reading is held to, whatever its own
/// parser accepts: no count past [`MAX_COUNT`] reaches the decision or a
/// record. The sources' parsers say it in their own words first.
fn within_bounds(users: u32, source: &str) -> Result<u32, MetricError> {
    if users > MAX_COUNT {
        return Err(MetricError::Garbage(format!(
            "{source} reported {users} users, more than {MAX_COUNT} (2^31-1): not a reading"
        )));
    }
    Ok(users)
}

/// `check --users N`: a what-if that replaces the configured source.
pub struct Fixed(pub u32);

impl MetricSource for Fixed {
    async fn online_users(&self) -> Result<u32, MetricError> {
        Ok(self.0)
    }
    fn describe(&self) -> String {
        format!("--users {}", self.0)
    }
}

/// The configured metric source, or the `--users` override.
pub enum Users {
    Ga(ga::Ga),
    Http(http::HttpSource),
    Prometheus(prometheus::Prometheus),
    Fixed(Fixed),
}

impl Users {
    pub fn new(config: &Config, fixed: Option<u32>) -> Result<Users, UsageError> {
        if let Some(n) = fixed {
            return Ok(Users::Fixed(Fixed(n)));
        }
        Ok(match &config.users {
            UsersSource::Ga(s) => Users::Ga(
                ga::Ga::new(s, config.timeout).map_err(|e| UsageError::new(e.to_string()))?,
            ),
            UsersSource::Http { url, json_pointer } => {
                Users::Http(http::HttpSource::new(url, json_pointer, config.timeout))
            }
            UsersSource::Prometheus { url, query } => {
                Users::Prometheus(prometheus::Prometheus::new(url, query, config.timeout))
            }
        })
    }
}

impl MetricSource for Users {
    async fn online_users(&self) -> Result<u32, MetricError> {
        let users = match self {
            Users::Ga(s) => s.online_users().await,
            Users::Http(s) => s.online_users().await,
            Users::Prometheus(s) => s.online_users().await,
            Users::Fixed(s) => s.online_users().await,
        }?;
        within_bounds(users, &self.describe())
    }

    fn describe(&self) -> String {
        match self {
            Users::Ga(s) => s.describe(),
            Users::Http(s) => s.describe(),
            Users::Prometheus(s) => s.describe(),
            Users::Fixed(s) => s.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_past_2_pow_31_is_garbage_whatever_the_source() {
        assert_eq!(within_bounds(MAX_COUNT, "GA4 x"), Ok(MAX_COUNT));
        let e = within_bounds(u32::MAX, "GA4 properties/1 (30 min)").unwrap_err();
        assert_eq!(
            e,
            MetricError::Garbage(
                "GA4 properties/1 (30 min) reported 4294967295 users, more than 2147483647 \
                 (2^31-1): not a reading"
                    .into()
            )
        );
    }
}
