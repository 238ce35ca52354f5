//! `services`: the tier table's columns and the HPA each one sizes, in the
//! file's order.

use super::document::Document;
use super::error::ConfigError;
use super::raw::{Ordered, RawService};
use hpa_tier_core::hpa::HpaRef;

pub(super) fn validate(
    raw: Option<Ordered<RawService>>,
    doc: &Document,
) -> Result<Vec<HpaRef>, ConfigError> {
    let raw = match raw {
        Some(s) if !s.0.is_empty() => s.0,
        Some(_) => {
            return Err(doc.err(
                "services",
                "is empty; name at least the reference service's HPA",
            ));
        }
        None => {
            return Err(ConfigError::new(
                "services",
                "missing. List each tier-table column and its HPA, e.g.\n  services:\n    istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }",
            ));
        }
    };
    raw.into_iter()
        .map(|(service, s)| {
            for (what, v) in [("hpa", &s.hpa), ("namespace", &s.namespace)] {
                if !is_dns_name(v) {
                    return Err(ConfigError::new(
                        format!("services.{service}.{what}"),
                        format!(
                            "`{v}` is not a valid Kubernetes name (lowercase letters, digits, '-', '.')"
                        ),
                    ));
                }
            }
            Ok(HpaRef {
                service,
                namespace: s.namespace,
                name: s.hpa,
            })
        })
        .collect()
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}
