//! The Prometheus Pushgateway: one HTTP `PUT` of the text body to
//! `<base>/metrics/job/hpa-tier/cluster/<cluster>`, which replaces the
//! group's metrics (a gauge the run left out disappears with the old one).
//! Grouping by `job` and `cluster` lets one Pushgateway serve several
//! clusters. A cluster value that is not a plain path segment (an EKS
//! context ARN has slashes) goes base64url-encoded, as `cluster@base64`,
//! which is the Pushgateway's own convention for such values.

use crate::quote::seconds;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpa_tier_core::metrics::CONTENT_TYPE;

/// The `job` grouping label of every push.
pub const JOB: &str = "hpa-tier";

/// Bounds what is read of an error answer (a line of text).
const MAX_ANSWER: u64 = 4 * 1024;

/// Where one cluster's gauges go.
#[derive(Debug)]
pub struct Pushgateway {
    url: String,
    /// `host[:port]`: what messages name.
    host: String,
    agent: ureq::Agent,
}

impl Pushgateway {
    /// `base`: the validated `metrics_pushgateway`, no trailing `/`.
    pub fn new(base: &str, cluster: &str) -> Pushgateway {
        let agent = ureq::Agent::config_builder()
            // The status decides; a 4xx/5xx body is the Pushgateway's reason.
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("hpa-tier/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Pushgateway {
            url: push_url(base, cluster),
            host: host_of(base),
            agent,
        }
    }

    /// The URL pushed to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PUTs `body`; done within `limit` whatever the Pushgateway does (a
    /// hung one is left to its blocking thread, which the runtime does not
    /// wait for at exit). `Ok` says where it went.
    pub async fn push(&self, body: String, limit: Duration) -> Result<String, String> {
        let (agent, url, host) = (self.agent.clone(), self.url.clone(), self.host.clone());
        let call = tokio::task::spawn_blocking(move || put(&agent, &url, &host, body, limit));
        let timed_out = || {
            format!(
                "the Pushgateway at {} did not answer within {}",
                self.host,
                seconds(limit)
            )
        };
        match tokio::time::timeout(limit, call).await {
            Err(_) => Err(timed_out()),
            Ok(Err(join)) => Err(format!(
                "pushing to {} failed unexpectedly: {join}",
                self.host
            )),
            Ok(Ok(Err(Failure::Timeout))) => Err(timed_out()),
            Ok(Ok(Err(Failure::Other(e)))) => Err(e),
            Ok(Ok(Ok(()))) => Ok(format!("pushed to the Pushgateway at {}", self.host)),
        }
    }
}

enum Failure {
    Timeout,
    Other(String),
}

fn put(
    agent: &ureq::Agent,
    url: &str,
    host: &str,
    body: String,
    limit: Duration,
) -> Result<(), Failure> {
    let at = format!("the Pushgateway at {host}");
    let response = agent
        .put(url)
        .config()
        .timeout_global(Some(limit))
        .build()
        .header("Content-Type", CONTENT_TYPE)
        .send(body);
    let mut response = response.map_err(|e| match e {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Failure::Timeout,
        ureq::Error::HostNotFound => Failure::Other(format!(
            "cannot resolve the host of {at}; check metrics_pushgateway and DNS"
        )),
        other => Failure::Other(format!("cannot reach {at}: {other}")),
    })?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let answer = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .unwrap_or_default();
    Err(Failure::Other(format!(
        "{at} answered HTTP {status}: {}",
        first_line(&answer)
    )))
}

/// `<base>/metrics/job/hpa-tier/cluster/<cluster>`, the value base64url
/// encoded (`cluster@base64/…`) unless it is a plain path segment; an empty
/// value is `=`, as the Pushgateway spells it.
pub fn push_url(base: &str, cluster: &str) -> String {
    let plain = !matches!(cluster, "" | "." | "..")
        && cluster
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    let label = if plain {
        format!("cluster/{cluster}")
    } else if cluster.is_empty() {
        "cluster@base64/=".to_string()
    } else {
        format!("cluster@base64/{}", URL_SAFE_NO_PAD.encode(cluster))
    };
    format!("{base}/metrics/job/{JOB}/{label}")
}

fn first_line(s: &str) -> String {
    let line = s.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => "(empty body)".into(),
        Some(l) if l.chars().count() > 200 => {
            format!("{}…", l.chars().take(200).collect::<String>())
        }
        Some(l) => l.to_string(),
    }
}

/// `host[:port]` of the base URL.
fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_else(|| "(unparsable URL)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_cluster_is_a_path_segment_anything_else_base64url() {
        let base = "http://pg:9091";
        assert_eq!(
            push_url(base, "prod-eks_1.a"),
            "http://pg:9091/metrics/job/hpa-tier/cluster/prod-eks_1.a"
        );
        // An EKS context: arn:aws:eks:us-east-2:123456789012:cluster/prod
        let arn = "arn:aws:eks:us-east-2:123456789012:cluster/prod";
        let url = push_url(base, arn);
        let encoded = url
            .strip_prefix("http://pg:9091/metrics/job/hpa-tier/cluster@base64/")
            .unwrap();
        assert!(!encoded.contains(['/', '+', '=']), "{encoded}");
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap(), arn.as_bytes());
        assert_eq!(
            push_url(base, ""),
            "http://pg:9091/metrics/job/hpa-tier/cluster@base64/="
        );
        for odd in ["..", "a b", "a%2F", "é"] {
            assert!(push_url(base, odd).contains("cluster@base64/"), "{odd}");
        }
    }

    #[test]
    fn messages_name_the_host_and_the_first_line_of_the_answer() {
        assert_eq!(
            host_of("http://pushgateway.monitoring:9091/x"),
            "pushgateway.monitoring:9091"
        );
        assert_eq!(first_line("\n bad push \nmore"), "bad push");
        assert_eq!(first_line(""), "(empty body)");
        assert_eq!(first_line(&"x".repeat(300)).chars().count(), 201);
        assert_eq!(seconds(Duration::from_secs(3)), "3s");
        assert_eq!(seconds(Duration::from_millis(500)), "500ms");
    }
}
