//! `spool_configmap: "NAMESPACE/NAME"`: the ConfigMap that keeps the
//! records MySQL could not take, so that they outlive the pod (a CronJob's
//! `state_file` is an emptyDir). Only meaningful with MySQL.

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

/// A ConfigMap by namespace and name, both valid Kubernetes names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ConfigMapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

const KEY: &str = "spool_configmap";

pub(super) fn validate(
    raw: &RawConfig,
    mysql: bool,
    doc: &Document,
) -> Result<Option<ConfigMapRef>, ConfigError> {
    let text = doc.expand(KEY, raw.spool_configmap.as_deref().unwrap_or(""))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let at = parse(text).map_err(|e| doc.err(KEY, e))?;
    if !mysql {
        return Err(doc.err(
            KEY,
            "is only used with mysql_host: it keeps the records MySQL could not take, and \
             without MySQL every record goes to state_file",
        ));
    }
    Ok(Some(at))
}

fn parse(text: &str) -> Result<ConfigMapRef, String> {
    let Some((namespace, name)) = text.split_once('/') else {
        return Err(format!(
            "`{text}` is not NAMESPACE/NAME (e.g. \"hpa-tier/hpa-tier-spool\")"
        ));
    };
    if !is_label(namespace) {
        return Err(format!(
            "the namespace `{namespace}` is not a DNS-1123 label (at most 63 lowercase \
             letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    let subdomain = name.len() <= 253 && name.split('.').all(is_label);
    if !subdomain {
        return Err(format!(
            "the ConfigMap name `{name}` is not a DNS-1123 subdomain (at most 253 \
             characters: lowercase letters, digits, '-' and '.', each dot-separated part \
             starting and ending with a letter or digit)"
        ));
    }
    Ok(ConfigMapRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

fn is_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|c| alnum(*c) || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_and_name_must_be_kubernetes_names() {
        let ok = |t: &str| parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(
            ok("hpa-tier/hpa-tier-spool"),
            ConfigMapRef {
                namespace: "hpa-tier".into(),
                name: "hpa-tier-spool".into()
            }
        );
        assert_eq!(ok("a/b.c-d.e").to_string(), "a/b.c-d.e");
        let cases = [
            ("hpa-tier-spool", "is not NAMESPACE/NAME"),
            ("/spool", "the namespace `` is not a DNS-1123 label"),
            ("Hpa/spool", "the namespace `Hpa`"),
            ("hpa.tier/spool", "the namespace `hpa.tier`"),
            (
                "hpa-tier/",
                "the ConfigMap name `` is not a DNS-1123 subdomain",
            ),
            ("hpa-tier/a/b", "the ConfigMap name `a/b`"),
            ("hpa-tier/-spool", "the ConfigMap name `-spool`"),
            ("hpa-tier/spool..x", "the ConfigMap name `spool..x`"),
            ("hpa-tier/spool_1", "the ConfigMap name `spool_1`"),
        ];
        for (text, says) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(parse(&format!("{}/x", "n".repeat(64))).is_err());
        assert!(parse(&format!("{}/x", "n".repeat(63))).is_ok());
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(long.len(), 253);
        assert!(parse(&format!("ns/{long}")).is_ok());
        assert!(parse(&format!("ns/{long}x")).is_err());
    }
}
