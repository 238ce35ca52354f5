//! Where each run's gauges go (SPEC §13): `metrics_pushgateway`, a
//! Prometheus Pushgateway's base URL, and `metrics_textfile`, a file for
//! node_exporter's textfile collector. Either, both or neither; empty means
//! not set.

use std::path::PathBuf;

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The Pushgateway's base URL, without a trailing `/`.
    pub pushgateway: Option<String>,
    /// An absolute path ending in `.prom`.
    pub textfile: Option<PathBuf>,
}

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<MetricsSettings, ConfigError> {
    let url = doc.expand("metrics_pushgateway", &raw.metrics_pushgateway)?;
    let pushgateway = match url.trim() {
        "" => None,
        url => Some(pushgateway(url).map_err(|e| doc.err("metrics_pushgateway", e))?),
    };
    let path = doc.expand("metrics_textfile", &raw.metrics_textfile)?;
    let textfile = match path.trim() {
        "" => None,
        path => {
            let path = doc.home("metrics_textfile", path.to_string())?;
            Some(textfile(path).map_err(|e| doc.err("metrics_textfile", e))?)
        }
    };
    Ok(MetricsSettings {
        pushgateway,
        textfile,
    })
}

/// The base URL the push path is appended to: http(s), a host, maybe a
/// path prefix (`--web.route-prefix`), nothing the push path cannot follow.
fn pushgateway(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("`{url}` is not an http(s) URL"))?;
    if !super::is_http_url(url) {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("credentials in the URL are not supported; \
                    put the Pushgateway behind a network rule instead"
            .into());
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "`{url}` has a query or fragment; give the Pushgateway's base URL"
        ));
    }
    if uri.path().contains("/metrics/job") {
        return Err(format!(
            "`{url}` already names a push path; give the Pushgateway's base URL \
             (hpa-tier adds /metrics/job/hpa-tier/cluster/<cluster>)"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// node_exporter reads only `*.prom` files of its directory, so anything
/// else would be written and never seen.
fn textfile(path: String) -> Result<PathBuf, String> {
    let p = PathBuf::from(&path);
    if !p.is_absolute() {
        return Err(format!(
            "`{path}` is not an absolute path (cron and systemd start runs in another directory)"
        ));
    }
    if path.ends_with('/') || p.extension().is_none_or(|e| e != "prom") {
        return Err(format!(
            "`{path}` does not end in `.prom`; node_exporter's textfile collector reads only *.prom files"
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushgateway_url_is_a_base_url() {
        assert_eq!(
            pushgateway("http://pushgateway.monitoring:9091/"),
            Ok("http://pushgateway.monitoring:9091".into())
        );
        assert_eq!(
            pushgateway("https://pg.example/prefix"),
            Ok("https://pg.example/prefix".into())
        );
        for (url, says) in [
            ("pushgateway:9091", "not an http(s) URL"),
            ("ftp://pg:9091", "not an http(s) URL"),
            ("http://user:pw@pg:9091", "credentials"),
            ("http://pg:9091/?x=1", "query or fragment"),
            ("http://pg:9091/#top", "query or fragment"),
            (
                "http://pg:9091/metrics/job/hpa-tier",
                "already names a push path",
            ),
        ] {
            let e = pushgateway(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn a_textfile_is_an_absolute_prom_file() {
        assert_eq!(
            textfile("/var/lib/node_exporter/textfile/hpa-tier.prom".into()),
            Ok(PathBuf::from(
                "/var/lib/node_exporter/textfile/hpa-tier.prom"
            ))
        );
        for (path, says) in [
            ("hpa-tier.prom", "not an absolute path"),
            (
                "/var/lib/node_exporter/textfile/",
                "does not end in `.prom`",
            ),
            (
                "/var/lib/node_exporter/hpa-tier.txt",
                "does not end in `.prom`",
            ),
            ("/var/lib/node_exporter/prom", "does not end in `.prom`"),
        ] {
            let e = textfile(path.into()).unwrap_err();
            assert!(e.contains(says), "{path}: {e}");
        }
    }
}
