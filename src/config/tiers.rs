//! `tiers`: the capacity table, as written or (omitted) the original tool's
//! built-in table restricted to the managed services. The core validates
//! the table; this turns its [`TierError`] into a [`ConfigError`] at the
//! tier's line.

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawRange, RawReplicas, RawTier};
use hpa_tier_core::hpa::HpaRef;
use hpa_tier_core::tiers::{self, Replicas, TierError, TierSpec, TierTable};

pub(super) fn validate(
    raw: Option<Vec<RawTier>>,
    services: &[HpaRef],
    reference: &str,
    doc: &Document,
) -> Result<TierTable, ConfigError> {
    let explicit = raw.is_some();
    let specs = match raw {
        Some(raw) => raw.into_iter().map(spec).collect(),
        None => built_in(services)?,
    };
    let capacities: Vec<u32> = specs.iter().map(|s| s.capacity).collect();
    let names: Vec<String> = services.iter().map(|s| s.service.clone()).collect();
    TierTable::new(specs, &names, reference).map_err(|e| {
        let line = match &e {
            TierError::Tier {
                index, capacity, ..
            } if explicit => {
                // Earlier tiers with the same capacity: the nth `capacity:` line.
                let nth = capacities[..*index]
                    .iter()
                    .filter(|c| *c == capacity)
                    .count();
                doc.tier_line(*capacity, nth)
            }
            _ => None,
        };
        ConfigError::new(e.key(), e.reason()).with_line(line)
    })
}

fn spec(t: RawTier) -> TierSpec {
    TierSpec {
        capacity: t.capacity,
        replicas: t
            .replicas
            .0
            .into_iter()
            .map(|(s, r)| {
                let r = match r {
                    RawReplicas::Min(min) => Replicas { min, max: None },
                    RawReplicas::Range(RawRange { min, max }) => Replicas { min, max },
                };
                (s, r)
            })
            .collect(),
        rds_instance_class: t.rds_instance_class,
        redis_node_type: t.redis_node_type,
    }
}

/// The built-in table's column for a service (the original tool's name for
/// the reference column is accepted too).
fn column(service: &str) -> &str {
    tiers::BUILT_IN_ALIASES
        .iter()
        .find(|(alias, _)| *alias == service)
        .map(|(_, col)| *col)
        .unwrap_or(service)
}

/// The built-in table, one column per managed service; a service it has no
/// column for needs an explicit `tiers`.
fn built_in(services: &[HpaRef]) -> Result<Vec<TierSpec>, ConfigError> {
    if let Some(s) = services
        .iter()
        .find(|s| !tiers::BUILT_IN_SERVICES.contains(&column(&s.service)))
    {
        return Err(ConfigError::new(
            format!("services.{}", s.service),
            format!(
                "the built-in tier table has no column `{}` (it has {}); add a `tiers` table",
                s.service,
                tiers::BUILT_IN_SERVICES.join(", ")
            ),
        ));
    }
    Ok(tiers::built_in()
        .into_iter()
        .map(|mut t| {
            t.replicas = services
                .iter()
                .filter_map(|s| {
                    t.replicas
                        .iter()
                        .find(|(col, _)| col == column(&s.service))
                        .map(|(_, r)| (s.service.clone(), *r))
                })
                .collect();
            t
        })
        .collect())
}
