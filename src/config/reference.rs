//! The reference service (`hpa_service_name`, `hpa_name`, `hpa_namespace`):
//! the one whose HPA's minReplicas tells the current tier. Named, or found
//! from the HPA the original tool's config names; either way it must be one
//! of `services` and the two must agree.

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;
use hpa_tier_core::hpa::HpaRef;

/// The reference service's name (its tier-table column).
pub(super) fn validate(
    raw: &RawConfig,
    services: &[HpaRef],
    doc: &Document,
) -> Result<String, ConfigError> {
    if !raw.hpa_service_name.is_empty() {
        return named(raw, services, doc);
    }
    if raw.hpa_name.is_empty() {
        return Err(ConfigError::new(
            "hpa_service_name",
            "missing; name the service (tier-table column) whose HPA tells the current tier",
        ));
    }
    let found: Vec<&HpaRef> = services
        .iter()
        .filter(|s| {
            s.name == raw.hpa_name
                && (raw.hpa_namespace.is_empty() || s.namespace == raw.hpa_namespace)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.service.clone()),
        _ => Err(doc.err(
            "hpa_service_name",
            format!(
                "set hpa_service_name to the service (tier-table column) whose HPA is `{}`",
                raw.hpa_name
            ),
        )),
    }
}

/// `hpa_service_name` is given: it must be a service, and `hpa_name` /
/// `hpa_namespace`, when also given, must be that service's HPA.
fn named(raw: &RawConfig, services: &[HpaRef], doc: &Document) -> Result<String, ConfigError> {
    let Some(r) = services.iter().find(|s| s.service == raw.hpa_service_name) else {
        let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
        return Err(doc.err(
            "hpa_service_name",
            format!(
                "`{}` is not in `services` ({})",
                raw.hpa_service_name,
                names.join(", ")
            ),
        ));
    };
    for (key, field, given, actual) in [
        ("hpa_name", "hpa", &raw.hpa_name, &r.name),
        (
            "hpa_namespace",
            "namespace",
            &raw.hpa_namespace,
            &r.namespace,
        ),
    ] {
        if !given.is_empty() && given != actual {
            return Err(doc.err(
                key,
                format!(
                    "`{given}`, but services.{}.{field} is `{actual}`; the reference HPA must be the HPA of hpa_service_name",
                    r.service
                ),
            ));
        }
    }
    Ok(r.service.clone())
}
