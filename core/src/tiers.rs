//! The capacity tier table: for each number of online users it can hold, the
//! replicas of every service and the database / cache sizes it needs.
//!
//! Pure: no I/O, no Kubernetes or AWS types.

use serde::Serialize;

/// The largest count of replicas, users or capacity the tool takes from
/// anywhere (config, command line, wire, records): 2^31−1. Kubernetes keeps
/// replicas as int32, so a larger one cannot be patched; users and
/// capacities share the bound so every number of a run record is a valid
/// INT and no sum or product of them (headroom, margins) nears overflow.
pub const MAX_COUNT: u32 = i32::MAX as u32;

/// Replicas of one service in one tier. `max: None` means "leave maxReplicas
/// alone unless it is below min".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Replicas {
    pub min: u32,
    pub max: Option<u32>,
}

/// A prerequisite value and where it came from: a tier that leaves it blank
/// inherits the value of the tier below.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub value: String,
    /// `Some(capacity)` when inherited from that lower tier.
    pub inherited_from: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tier {
    /// Online users this tier holds.
    pub capacity: u32,
    /// One entry per service, in the table's column order.
    pub replicas: Vec<(String, Replicas)>,
    pub rds_instance_class: Option<Requirement>,
    pub redis_node_type: Option<Requirement>,
}

impl Tier {
    pub fn replicas_of(&self, service: &str) -> Option<Replicas> {
        self.replicas
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, r)| *r)
    }
}

/// A validated tier table: capacities strictly increasing, every tier names
/// every service, the reference service strictly increasing, prerequisites
/// filled in from below. Built only by `TierTable::new`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TierTable {
    tiers: Vec<Tier>,
    services: Vec<String>,
    reference: String,
}

/// The tier demand calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Needed {
    pub capacity: u32,
    /// Demand exceeds the top tier; `capacity` is the top tier.
    pub above_top: bool,
}

/// A raw tier before validation (what the config or the built-in table gives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierSpec {
    pub capacity: u32,
    pub replicas: Vec<(String, Replicas)>,
    pub rds_instance_class: Option<String>,
    pub redis_node_type: Option<String>,
}

/// Why a tier table is invalid. The message says it in the words of the
/// config file; the fields say where, so the config can point at the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TierError {
    Empty,
    UnknownReference {
        reference: String,
        services: Vec<String>,
    },
    /// One tier is wrong: `tiers[index]`, whose capacity is `capacity`.
    Tier {
        index: usize,
        capacity: u32,
        problem: TierProblem,
    },
    ReferenceNotIncreasing {
        reference: String,
        lower: u32,
        lower_min: u32,
        upper: u32,
        upper_min: u32,
    },
}

impl std::error::Error for TierError {}

/// `<key> (capacity N): <reason>` for one tier, `<key>: <reason>` otherwise.
impl std::fmt::Display for TierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TierError::Tier {
                capacity, problem, ..
            } => write!(f, "{} (capacity {capacity}): {problem}", self.key()),
            _ => write!(f, "{}: {}", self.key(), self.reason()),
        }
    }
}

/// What is wrong with one tier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TierProblem {
    #[error("capacity must be at least 1")]
    ZeroCapacity,
    #[error("capacity {0} is more than {MAX_COUNT} (2^31-1)")]
    CapacityTooLarge(u32),
    #[error("capacity {0} appears twice")]
    DuplicateCapacity(u32),
    #[error("capacities must be in increasing order, but {capacity} comes after {previous}")]
    Unsorted { capacity: u32, previous: u32 },
    #[error("replicas name `{service}`, which is not in `services` ({})", .services.join(", "))]
    UnknownService {
        service: String,
        services: Vec<String>,
    },
    #[error("no replicas for service `{0}`")]
    MissingService(String),
    #[error("service `{0}` appears twice")]
    DuplicateService(String),
    #[error("`{service}` replicas must be at least 1, got {min}")]
    ZeroReplicas { service: String, min: u32 },
    #[error("`{service}` has min {min} greater than max {max}")]
    MinAboveMax { service: String, min: u32, max: u32 },
    #[error(
        "`{service}` {field} is {value}, more than {MAX_COUNT} (2^31-1), the most a \
         Kubernetes HPA's replicas can be"
    )]
    ReplicasTooLarge {
        service: String,
        field: &'static str,
        value: u32,
    },
}

impl TierError {
    /// What is wrong, without the key.
    pub fn reason(&self) -> String {
        match self {
            TierError::Empty => "the table is empty; give at least one tier".into(),
            TierError::UnknownReference {
                reference,
                services,
            } => format!(
                "`{reference}` is not one of the services ({})",
                services.join(", ")
            ),
            TierError::Tier { problem, .. } => problem.to_string(),
            TierError::ReferenceNotIncreasing {
                reference,
                lower,
                lower_min,
                upper,
                upper_min,
            } => format!(
                "the reference service `{reference}` (hpa_service_name) must have strictly \
                 increasing replicas so its HPA tells the tier apart, but tier {lower} has \
                 {lower_min} and tier {upper} has {upper_min}"
            ),
        }
    }

    /// The config key it is about: `tiers`, `tiers[1]` or `hpa_service_name`.
    pub fn key(&self) -> String {
        match self {
            TierError::Empty | TierError::ReferenceNotIncreasing { .. } => "tiers".into(),
            TierError::UnknownReference { .. } => "hpa_service_name".into(),
            TierError::Tier { index, .. } => format!("tiers[{index}]"),
        }
    }

    /// The service the error names, if it names one.
    pub fn service(&self) -> Option<&str> {
        match self {
            TierError::UnknownReference { reference, .. }
            | TierError::ReferenceNotIncreasing { reference, .. } => Some(reference),
            TierError::Tier { problem, .. } => problem.service(),
            TierError::Empty => None,
        }
    }
}

impl TierProblem {
    pub fn service(&self) -> Option<&str> {
        match self {
            TierProblem::UnknownService { service, .. }
            | TierProblem::ZeroReplicas { service, .. }
            | TierProblem::MinAboveMax { service, .. }
            | TierProblem::ReplicasTooLarge { service, .. }
            | TierProblem::MissingService(service)
            | TierProblem::DuplicateService(service) => Some(service),
            TierProblem::ZeroCapacity
            | TierProblem::CapacityTooLarge(_)
            | TierProblem::DuplicateCapacity(_)
            | TierProblem::Unsorted { .. } => None,
        }
    }
}

impl TierTable {
    /// Validates `specs` against the managed `services` (column order) and the
    /// `reference` service. The first problem found is the error.
    pub fn new(
        specs: Vec<TierSpec>,
        services: &[String],
        reference: &str,
    ) -> Result<Self, TierError> {
        if specs.is_empty() {
            return Err(TierError::Empty);
        }
        if !services.iter().any(|s| s == reference) {
            return Err(TierError::UnknownReference {
                reference: reference.to_string(),
                services: services.to_vec(),
            });
        }
        let mut tiers: Vec<Tier> = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let capacity = spec.capacity;
            let tier =
                build_tier(spec, tiers.last(), services).map_err(|problem| TierError::Tier {
                    index,
                    capacity,
                    problem,
                })?;
            tiers.push(tier);
        }
        check_reference_increases(&tiers, reference)?;
        Ok(TierTable {
            tiers,
            services: services.to_vec(),
            reference: reference.to_string(),
        })
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The service whose HPA tells the current tier.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    pub fn get(&self, capacity: u32) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.capacity == capacity)
    }

    pub fn capacities(&self) -> Vec<u32> {
        self.tiers.iter().map(|t| t.capacity).collect()
    }

    pub fn floor(&self) -> &Tier {
        &self.tiers[0]
    }

    pub fn top(&self) -> &Tier {
        self.tiers.last().expect("a TierTable is never empty")
    }

    /// The smallest tier whose capacity holds `users` plus the headroom;
    /// above the top tier, the top tier (flagged).
    pub fn needed(&self, users: u32, headroom_percent: u32) -> Needed {
        // Integer arithmetic: demand = ceil(users * (100 + headroom) / 100),
        // in u128 so that no u32 inputs can overflow it (u64 can: u32::MAX²).
        let demand = (u128::from(users) * (100 + u128::from(headroom_percent))).div_ceil(100);
        match self.tiers.iter().find(|t| u128::from(t.capacity) >= demand) {
            Some(t) => Needed {
                capacity: t.capacity,
                above_top: false,
            },
            None => Needed {
                capacity: self.top().capacity,
                above_top: true,
            },
        }
    }

    /// Reference-service min replicas of a tier.
    pub fn reference_min(&self, tier: &Tier) -> u32 {
        tier.replicas_of(&self.reference)
            .map(|r| r.min)
            .unwrap_or_default()
    }
}

/// One tier, checked against the tier `below` it and the managed services,
/// its blank prerequisites filled in from below.
fn build_tier(
    spec: TierSpec,
    below: Option<&Tier>,
    services: &[String],
) -> Result<Tier, TierProblem> {
    if spec.capacity == 0 {
        return Err(TierProblem::ZeroCapacity);
    }
    if spec.capacity > MAX_COUNT {
        return Err(TierProblem::CapacityTooLarge(spec.capacity));
    }
    if let Some(prev) = below {
        if spec.capacity == prev.capacity {
            return Err(TierProblem::DuplicateCapacity(spec.capacity));
        }
        if spec.capacity < prev.capacity {
            return Err(TierProblem::Unsorted {
                capacity: spec.capacity,
                previous: prev.capacity,
            });
        }
    }
    let replicas = column_replicas(&spec.replicas, services)?;
    let inherit = |own: Option<String>, below_req: Option<&Requirement>| match own {
        Some(v) if !v.trim().is_empty() => Some(Requirement {
            value: v.trim().to_string(),
            inherited_from: None,
        }),
        _ => below_req.map(|b| Requirement {
            value: b.value.clone(),
            // The tier that stated it is the one below, or the one it
            // inherited from.
            inherited_from: Some(
                b.inherited_from
                    .unwrap_or_else(|| below.map(|t| t.capacity).unwrap_or_default()),
            ),
        }),
    };
    Ok(Tier {
        capacity: spec.capacity,
        replicas,
        rds_instance_class: inherit(
            spec.rds_instance_class,
            below.and_then(|t| t.rds_instance_class.as_ref()),
        ),
        redis_node_type: inherit(
            spec.redis_node_type,
            below.and_then(|t| t.redis_node_type.as_ref()),
        ),
    })
}

/// A tier's replicas in the table's column order: every service exactly
/// once, no other, min at least 1 and not above max.
fn column_replicas(
    given: &[(String, Replicas)],
    services: &[String],
) -> Result<Vec<(String, Replicas)>, TierProblem> {
    if let Some((service, _)) = given.iter().find(|(s, _)| !services.contains(s)) {
        return Err(TierProblem::UnknownService {
            service: service.clone(),
            services: services.to_vec(),
        });
    }
    let mut replicas = Vec::with_capacity(services.len());
    for service in services {
        let mut found = given.iter().filter(|(s, _)| s == service);
        let Some((_, r)) = found.next() else {
            return Err(TierProblem::MissingService(service.clone()));
        };
        if found.next().is_some() {
            return Err(TierProblem::DuplicateService(service.clone()));
        }
        if r.min < 1 {
            return Err(TierProblem::ZeroReplicas {
                service: service.clone(),
                min: r.min,
            });
        }
        let too_large = [("min", Some(r.min)), ("max", r.max)]
            .into_iter()
            .find_map(|(field, v)| v.filter(|v| *v > MAX_COUNT).map(|v| (field, v)));
        if let Some((field, value)) = too_large {
            return Err(TierProblem::ReplicasTooLarge {
                service: service.clone(),
                field,
                value,
            });
        }
        if let Some(max) = r.max
            && max < r.min
        {
            return Err(TierProblem::MinAboveMax {
                service: service.clone(),
                min: r.min,
                max,
            });
        }
        replicas.push((service.clone(), *r));
    }
    Ok(replicas)
}

/// The reference HPA's minReplicas tells the current tier, so it must differ
/// (and grow) from each tier to the next.
fn check_reference_increases(tiers: &[Tier], reference: &str) -> Result<(), TierError> {
    let min = |t: &Tier| t.replicas_of(reference).map(|r| r.min).unwrap_or_default();
    for pair in tiers.windows(2) {
        let (lower_min, upper_min) = (min(&pair[0]), min(&pair[1]));
        if upper_min <= lower_min {
            return Err(TierError::ReferenceNotIncreasing {
                reference: reference.to_string(),
                lower: pair[0].capacity,
                lower_min,
                upper: pair[1].capacity,
                upper_min,
            });
        }
    }
    Ok(())
}

/// The tier table of the Python tool this replaces (its README), used when the
/// config has no `tiers`. Columns: istio-ingress, gateway, web, hermes,
/// passport, project.
pub const BUILT_IN_SERVICES: [&str; 6] = [
    "istio-ingress",
    "gateway",
    "web",
    "hermes",
    "passport",
    "project",
];

/// The original tool called the reference service `istio-ingressgateway`; a
/// config carried over from it may use either name for that column.
pub const BUILT_IN_ALIASES: [(&str, &str); 1] = [("istio-ingressgateway", "istio-ingress")];

pub fn built_in() -> Vec<TierSpec> {
    type Row = (u32, [u32; 6], Option<&'static str>, Option<&'static str>);
    let rows: [Row; 6] = [
        (
            600,
            [2, 2, 2, 2, 2, 2],
            Some("cache.m6g.large"),
            Some("db.r7g.large"),
        ),
        (
            1000,
            [4, 2, 3, 4, 8, 2],
            Some("cache.c7gn.xlarge"),
            Some("db.r5.8xlarge"),
        ),
        (2000, [6, 3, 6, 8, 12, 3], None, None),
        (3000, [8, 4, 9, 12, 16, 4], None, None),
        (4000, [10, 5, 12, 16, 20, 5], None, Some("db.r5.12xlarge")),
        (5000, [12, 6, 15, 20, 24, 6], None, None),
    ];
    rows.iter()
        .map(|(capacity, mins, redis, rds)| TierSpec {
            capacity: *capacity,
            replicas: BUILT_IN_SERVICES
                .iter()
                .zip(mins)
                .map(|(s, m)| (s.to_string(), Replicas { min: *m, max: None }))
                .collect(),
            rds_instance_class: rds.map(str::to_string),
            redis_node_type: redis.map(str::to_string),
        })
        .collect()
}

/// Fixtures for tests here and in the crates that use the core.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    use super::*;

    pub fn services() -> Vec<String> {
        BUILT_IN_SERVICES.iter().map(|s| s.to_string()).collect()
    }

    /// The built-in table with every service, reference `istio-ingress`.
    pub fn table() -> TierTable {
        TierTable::new(built_in(), &services(), "istio-ingress").unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn built_in_table_matches_the_original_tool() {
        let t = table();
        assert_eq!(t.capacities(), vec![600, 1000, 2000, 3000, 4000, 5000]);
        let passport: Vec<u32> = t
            .tiers()
            .iter()
            .map(|t| t.replicas_of("passport").unwrap().min)
            .collect();
        assert_eq!(passport, vec![2, 8, 12, 16, 20, 24]);
    }

    #[test]
    fn blank_prerequisites_are_inherited_from_the_tier_below() {
        let t = table();
        let rds = |c| t.get(c).unwrap().rds_instance_class.clone().unwrap();
        let redis = |c| t.get(c).unwrap().redis_node_type.clone().unwrap();
        assert_eq!(rds(2000).value, "db.r5.8xlarge");
        assert_eq!(rds(2000).inherited_from, Some(1000));
        assert_eq!(rds(3000).inherited_from, Some(1000));
        assert_eq!(rds(4000).value, "db.r5.12xlarge");
        assert_eq!(rds(4000).inherited_from, None);
        assert_eq!(rds(5000).inherited_from, Some(4000));
        assert_eq!(redis(5000).value, "cache.c7gn.xlarge");
        assert_eq!(redis(5000).inherited_from, Some(1000));
    }

    #[test]
    fn needed_tier_is_the_smallest_that_holds_the_users() {
        let t = table();
        let cases = [
            (0, 0, 600, false),
            (1, 0, 600, false),
            (600, 0, 600, false),  // exactly at capacity
            (601, 0, 1000, false), // one above
            (1000, 0, 1000, false),
            (1001, 0, 2000, false),
            (4999, 0, 5000, false),
            (5000, 0, 5000, false),
            (5001, 0, 5000, true), // above the top tier
            (50_000, 0, 5000, true),
            (500, 20, 600, false),  // 500 * 1.2 = 600: fits exactly
            (501, 20, 1000, false), // 601.2 rounds up
            (900, 20, 2000, false),
        ];
        for (users, headroom, want, above) in cases {
            let n = t.needed(users, headroom);
            assert_eq!(
                (n.capacity, n.above_top),
                (want, above),
                "users {users} headroom {headroom}%"
            );
        }
    }

    fn spec(capacity: u32, reference: u32) -> TierSpec {
        TierSpec {
            capacity,
            replicas: vec![
                (
                    "a".into(),
                    Replicas {
                        min: reference,
                        max: None,
                    },
                ),
                (
                    "b".into(),
                    Replicas {
                        min: 1,
                        max: Some(3),
                    },
                ),
            ],
            rds_instance_class: None,
            redis_node_type: None,
        }
    }

    fn ab() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn duplicate_capacity_is_rejected() {
        let e = TierTable::new(vec![spec(100, 1), spec(100, 2)], &ab(), "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tiers[1]") && e.contains("appears twice"), "{e}");
    }

    #[test]
    fn unsorted_capacities_are_rejected() {
        let e = TierTable::new(vec![spec(200, 1), spec(100, 2)], &ab(), "a")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("increasing order") && e.contains("100 comes after 200"),
            "{e}"
        );
    }

    #[test]
    fn a_tier_missing_a_service_is_rejected() {
        let mut s = spec(100, 1);
        s.replicas.pop();
        let e = TierTable::new(vec![s], &ab(), "a").unwrap_err().to_string();
        assert!(e.contains("no replicas for service `b`"), "{e}");
    }

    #[test]
    fn a_tier_naming_an_unknown_service_is_rejected() {
        let mut s = spec(100, 1);
        s.replicas
            .push(("c".into(), Replicas { min: 1, max: None }));
        let e = TierTable::new(vec![s], &ab(), "a").unwrap_err().to_string();
        assert!(e.contains("`c`") && e.contains("not in `services`"), "{e}");
    }

    #[test]
    fn zero_replicas_are_rejected() {
        let e = TierTable::new(vec![spec(100, 0)], &ab(), "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn min_above_max_is_rejected() {
        let mut s = spec(100, 1);
        s.replicas[1].1 = Replicas {
            min: 5,
            max: Some(3),
        };
        let e = TierTable::new(vec![s], &ab(), "a").unwrap_err().to_string();
        assert!(e.contains("min 5 greater than max 3"), "{e}");
    }

    #[test]
    fn replicas_and_capacities_beyond_int32_are_rejected_not_wrapped() {
        let mut s = spec(100, 1);
        s.replicas[1].1 = Replicas {
            min: 1,
            max: Some(MAX_COUNT + 1),
        };
        let e = TierTable::new(vec![s], &ab(), "a").unwrap_err().to_string();
        assert_eq!(
            e,
            "tiers[0] (capacity 100): `b` max is 2147483648, more than 2147483647 (2^31-1), \
             the most a Kubernetes HPA's replicas can be"
        );
        let e = TierTable::new(vec![spec(100, u32::MAX)], &ab(), "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`a` min is 4294967295"), "{e}");
        let e = TierTable::new(vec![spec(MAX_COUNT + 1, 1)], &ab(), "a")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("capacity 2147483648 is more than 2147483647"),
            "{e}"
        );
        // The bound itself is accepted, and its demand does not overflow.
        let mut top = spec(MAX_COUNT, MAX_COUNT);
        top.replicas[1].1.max = Some(MAX_COUNT);
        let t = TierTable::new(vec![spec(100, 1), top], &ab(), "a").unwrap();
        assert_eq!(t.needed(MAX_COUNT, 1000).capacity, MAX_COUNT);
    }

    #[test]
    fn needed_does_not_overflow_at_u32_max_users_and_headroom() {
        let t = table();
        assert_eq!(
            t.needed(u32::MAX, u32::MAX),
            Needed {
                capacity: 5000,
                above_top: true
            }
        );
        assert_eq!(t.needed(0, u32::MAX).capacity, 600);
        assert_eq!(t.needed(1, u32::MAX).capacity, 5000);
    }

    #[test]
    fn reference_service_must_strictly_increase() {
        let e = TierTable::new(vec![spec(100, 2), spec(200, 2)], &ab(), "a")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("strictly") && e.contains("tier 100 has 2"),
            "{e}"
        );
        // The other service may stay flat.
        TierTable::new(vec![spec(100, 2), spec(200, 3)], &ab(), "a").unwrap();
    }

    #[test]
    fn errors_name_the_tier_and_service_in_fields_and_keep_their_words() {
        let mut s = spec(200, 2);
        s.replicas.pop();
        let e = TierTable::new(vec![spec(100, 1), s], &ab(), "a").unwrap_err();
        assert_eq!(
            e,
            TierError::Tier {
                index: 1,
                capacity: 200,
                problem: TierProblem::MissingService("b".into()),
            }
        );
        assert_eq!((e.key().as_str(), e.service()), ("tiers[1]", Some("b")));
        assert_eq!(
            e.to_string(),
            "tiers[1] (capacity 200): no replicas for service `b`"
        );

        let e = TierTable::new(vec![spec(100, 2), spec(200, 2)], &ab(), "a").unwrap_err();
        assert_eq!((e.key().as_str(), e.service()), ("tiers", Some("a")));
        assert_eq!(
            e.to_string(),
            "tiers: the reference service `a` (hpa_service_name) must have strictly increasing \
             replicas so its HPA tells the tier apart, but tier 100 has 2 and tier 200 has 2"
        );

        let e = TierTable::new(vec![], &ab(), "a").unwrap_err();
        assert_eq!(e, TierError::Empty);
        let e = TierTable::new(vec![spec(100, 1)], &ab(), "z").unwrap_err();
        assert_eq!(e.key(), "hpa_service_name");
        assert_eq!(
            e.to_string(),
            "hpa_service_name: `z` is not one of the services (a, b)"
        );
        let e = TierTable::new(vec![spec(0, 1)], &ab(), "a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tiers[0] (capacity 0): capacity must be at least 1"
        );
    }
}
