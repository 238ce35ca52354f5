//! Infrastructure prerequisites: the database and cache sizes a tier needs.
//!
//! The adapter (`aws`) only observes what AWS reports; deciding whether that is
//! enough (`evaluate`, with the instance-class `catalog`) is pure: this file
//! and `catalog` import nothing that does I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog;
use crate::tiers::{Tier, TierTable};

/// One Aurora cluster member as RDS reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RdsMember {
    pub id: String,
    pub writer: bool,
    pub class: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RdsObserved {
    pub cluster: String,
    pub members: Vec<RdsMember>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisKind {
    ReplicationGroup,
    CacheCluster,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RedisObserved {
    pub name: String,
    pub kind: RedisKind,
    pub node_type: String,
}

/// What the prerequisite adapter saw. `None` means that check is not
/// configured (empty `rds_cluster_name` / `redis_oss_name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The AWS region read (the fix commands name it); empty when unknown.
    pub region: String,
    pub rds: Option<RdsObserved>,
    pub redis: Option<RedisObserved>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Resource {
    #[serde(rename = "RDS")]
    Rds,
    #[serde(rename = "Redis")]
    Redis,
    /// `simulate --set prereq_capacity=N`: the prerequisites of the tiers
    /// above N are taken as not met, whatever AWS has.
    #[serde(rename = "simulated")]
    Simulated,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Rds => "RDS",
            Resource::Redis => "Redis",
            Resource::Simulated => "the prerequisites of",
        })
    }
}

/// One thing a tier needs that is not there, with the command that fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Shortfall {
    pub resource: Resource,
    /// The instance / replication group / cache cluster id.
    pub member: String,
    /// `writer`, `reader`, `replication group` or `cache cluster`.
    pub role: String,
    pub have: String,
    pub need: String,
    /// Why `have` does not satisfy `need` (smaller, or unknown to the catalog).
    pub why: String,
    /// The AWS CLI command that would fix it.
    pub fix: String,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "needs {} {}; {} {} is {}",
            self.resource, self.need, self.role, self.member, self.have
        )
    }
}

/// For every tier capacity, what is missing (empty: the tier is allowed).
pub type Allowance = BTreeMap<u32, Vec<Shortfall>>;

/// For every tier of `tiers`, what the observed sizes lack: every Aurora
/// member (writer and readers) must satisfy the tier's RDS class and the
/// Redis node type the tier's node type. A check that is not configured
/// (`None` in `observed`) or a tier without that requirement adds nothing.
pub fn evaluate(observed: &Observed, tiers: &TierTable) -> Allowance {
    tiers
        .tiers()
        .iter()
        .map(|tier| (tier.capacity, shortfalls(observed, tier)))
        .collect()
}

/// The highest tier the current sizes allow (`status`); `None` when not even
/// the lowest one is.
pub fn highest_allowed(allowance: &Allowance) -> Option<u32> {
    allowance
        .iter()
        .filter(|(_, missing)| missing.is_empty())
        .map(|(capacity, _)| *capacity)
        .max()
}

fn shortfalls(observed: &Observed, tier: &Tier) -> Vec<Shortfall> {
    let region = observed.region.as_str();
    let mut out = vec![];
    if let (Some(rds), Some(need)) = (&observed.rds, &tier.rds_instance_class) {
        out.extend(rds_shortfalls(rds, &need.value, region));
    }
    if let (Some(redis), Some(need)) = (&observed.redis, &tier.redis_node_type) {
        out.extend(redis_shortfall(redis, &need.value, region));
    }
    out
}

/// Every Aurora member must satisfy the class; an empty cluster never does.
fn rds_shortfalls(rds: &RdsObserved, need: &str, region: &str) -> Vec<Shortfall> {
    let need = &need.to_string();
    let mut out = vec![];
    if rds.members.is_empty() {
        // Vacuously "every member satisfies it", but nothing would serve
        // the queries: never let that through.
        out.push(Shortfall {
            resource: Resource::Rds,
            member: rds.cluster.clone(),
            role: "cluster".into(),
            have: "empty".into(),
            need: need.clone(),
            why: format!("cluster {} has no DB instances", rds.cluster),
            fix: command(
                &[
                    "aws rds create-db-instance --db-cluster-identifier",
                    &rds.cluster,
                    "--db-instance-identifier",
                    &format!("{}-1", rds.cluster),
                    "--db-instance-class",
                    need,
                    "--engine <the cluster's engine>",
                ],
                region,
            ),
        });
    }
    for m in &rds.members {
        if let Err(why) = catalog::satisfies(&m.class, need) {
            out.push(Shortfall {
                resource: Resource::Rds,
                member: m.id.clone(),
                role: if m.writer { "writer" } else { "reader" }.into(),
                have: m.class.clone(),
                need: need.clone(),
                why,
                fix: command(
                    &[
                        "aws rds modify-db-instance --db-instance-identifier",
                        &m.id,
                        "--db-instance-class",
                        need,
                        "--apply-immediately",
                    ],
                    region,
                ),
            });
        }
    }
    out
}

/// The Redis node type must satisfy the tier's.
fn redis_shortfall(redis: &RedisObserved, need: &str, region: &str) -> Option<Shortfall> {
    let why = catalog::satisfies(&redis.node_type, need).err()?;
    let (role, modify) = match redis.kind {
        RedisKind::ReplicationGroup => (
            "replication group",
            "aws elasticache modify-replication-group --replication-group-id",
        ),
        RedisKind::CacheCluster => (
            "cache cluster",
            "aws elasticache modify-cache-cluster --cache-cluster-id",
        ),
    };
    Some(Shortfall {
        resource: Resource::Redis,
        member: redis.name.clone(),
        role: role.into(),
        have: redis.node_type.clone(),
        need: need.to_string(),
        why,
        fix: command(
            &[
                modify,
                &redis.name,
                "--cache-node-type",
                need,
                "--apply-immediately",
            ],
            region,
        ),
    })
}

/// An AWS CLI command line. `parts` alternate between literal text and
/// values; values (ids from AWS, classes from the config) are quoted when
/// they are not plain words, so the line can be pasted into a shell.
fn command(parts: &[&str], region: &str) -> String {
    let mut out: Vec<Cow<str>> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                shell_word(p)
            } else {
                Cow::Borrowed(*p)
            }
        })
        .collect();
    if !region.is_empty() {
        out.push("--region".into());
        out.push(shell_word(region));
    }
    out.join(" ")
}

fn shell_word(s: &str) -> Cow<'_, str> {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c));
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiers::fixtures::table;

    /// An Aurora cluster `prod-aurora`; members as `(id, writer, class)`.
    fn aurora(members: &[(&str, bool, &str)]) -> Option<RdsObserved> {
        Some(RdsObserved {
            cluster: "prod-aurora".into(),
            members: members
                .iter()
                .map(|(id, writer, class)| RdsMember {
                    id: id.to_string(),
                    writer: *writer,
                    class: class.to_string(),
                })
                .collect(),
        })
    }

    fn redis(kind: RedisKind, node_type: &str) -> Option<RedisObserved> {
        Some(RedisObserved {
            name: "prod-redis".into(),
            kind,
            node_type: node_type.into(),
        })
    }

    fn observed(rds: Option<RdsObserved>, redis: Option<RedisObserved>) -> Observed {
        Observed {
            region: "us-east-2".into(),
            rds,
            redis,
        }
    }

    /// Per tier of the built-in table, `member:need` of each shortfall.
    fn summary(a: &Allowance) -> Vec<(u32, Vec<String>)> {
        a.iter()
            .map(|(c, s)| {
                (
                    *c,
                    s.iter()
                        .map(|s| format!("{}:{}", s.member, s.need))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_small_reader_blocks_every_tier_that_needs_more_and_is_named() {
        let o = observed(
            aurora(&[
                ("prod-aurora-1", true, "db.r5.8xlarge"),
                ("prod-aurora-2", false, "db.r7g.large"),
            ]),
            redis(RedisKind::ReplicationGroup, "cache.c7gn.xlarge"),
        );
        let a = evaluate(&o, &table());
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary(&a),
            vec![
                (600, r(&[])),
                (1000, r(&["prod-aurora-2:db.r5.8xlarge"])),
                (2000, r(&["prod-aurora-2:db.r5.8xlarge"])),
                (3000, r(&["prod-aurora-2:db.r5.8xlarge"])),
                (
                    4000,
                    r(&[
                        "prod-aurora-1:db.r5.12xlarge",
                        "prod-aurora-2:db.r5.12xlarge"
                    ])
                ),
                (
                    5000,
                    r(&[
                        "prod-aurora-1:db.r5.12xlarge",
                        "prod-aurora-2:db.r5.12xlarge"
                    ])
                ),
            ]
        );
        let s = &a[&2000][0];
        assert_eq!(
            format!("tier 2000 {s}"),
            "tier 2000 needs RDS db.r5.8xlarge; reader prod-aurora-2 is db.r7g.large"
        );
        assert_eq!(
            s.why,
            "db.r7g.large has 2 vCPU / 16 GiB, db.r5.8xlarge needs 32 vCPU / 256 GiB"
        );
        assert_eq!(
            s.fix,
            "aws rds modify-db-instance --db-instance-identifier prod-aurora-2 \
             --db-instance-class db.r5.8xlarge --apply-immediately --region us-east-2"
        );
        assert_eq!(a[&4000][0].role, "writer");
        assert_eq!(highest_allowed(&a), Some(600));
    }

    #[test]
    fn bigger_classes_of_other_families_pass() {
        let o = observed(
            aurora(&[
                ("w", true, "db.r6i.16xlarge"),
                ("r1", false, "db.r7g.12xlarge"),
                ("r2", false, "db.x2g.16xlarge"),
            ]),
            redis(RedisKind::CacheCluster, "cache.r7g.xlarge"),
        );
        let a = evaluate(&o, &table());
        assert!(a.values().all(Vec::is_empty), "{a:#?}");
        assert_eq!(a.len(), 6, "every tier has an entry");
        assert_eq!(highest_allowed(&a), Some(5000));
    }

    #[test]
    fn a_small_redis_blocks_with_the_command_for_its_kind() {
        for (kind, role, fix) in [
            (
                RedisKind::ReplicationGroup,
                "replication group",
                "aws elasticache modify-replication-group --replication-group-id prod-redis \
                 --cache-node-type cache.c7gn.xlarge --apply-immediately --region us-east-2",
            ),
            (
                RedisKind::CacheCluster,
                "cache cluster",
                "aws elasticache modify-cache-cluster --cache-cluster-id prod-redis \
                 --cache-node-type cache.c7gn.xlarge --apply-immediately --region us-east-2",
            ),
        ] {
            let o = observed(None, redis(kind, "cache.m6g.large"));
            let a = evaluate(&o, &table());
            assert!(a[&600].is_empty());
            let s = &a[&1000][..];
            assert_eq!(s.len(), 1);
            assert_eq!(
                s[0].to_string(),
                format!("needs Redis cache.c7gn.xlarge; {role} prod-redis is cache.m6g.large")
            );
            assert_eq!(s[0].fix, fix);
            assert_eq!(a[&5000], a[&1000], "inherited requirement");
        }
    }

    #[test]
    fn unconfigured_checks_block_nothing() {
        let a = evaluate(&Observed::default(), &table());
        assert!(a.values().all(Vec::is_empty));
        assert_eq!(highest_allowed(&a), Some(5000));
        // Only Redis configured: a tiny database is not looked at.
        let o = observed(None, redis(RedisKind::ReplicationGroup, "cache.r7g.xlarge"));
        assert!(evaluate(&o, &table()).values().all(Vec::is_empty));
    }

    #[test]
    fn an_unknown_class_blocks_and_says_why() {
        let o = observed(aurora(&[("w", true, "db.serverless")]), None);
        let a = evaluate(&o, &table());
        assert_eq!(a[&600].len(), 1);
        assert!(
            a[&600][0]
                .why
                .contains("db.serverless is not in the catalog"),
            "{}",
            a[&600][0].why
        );
        assert_eq!(highest_allowed(&a), None);
    }

    #[test]
    fn an_aurora_cluster_without_instances_allows_nothing() {
        let o = observed(aurora(&[]), None);
        let a = evaluate(&o, &table());
        let s = &a[&600][0];
        assert_eq!(
            s.to_string(),
            "needs RDS db.r7g.large; cluster prod-aurora is empty"
        );
        assert!(
            s.fix
                .starts_with("aws rds create-db-instance --db-cluster-identifier prod-aurora")
        );
        assert_eq!(highest_allowed(&a), None);
    }

    #[test]
    fn highest_allowed_is_the_highest_tier_with_nothing_missing() {
        let s = |n: &str| Shortfall {
            resource: Resource::Rds,
            member: n.into(),
            role: "reader".into(),
            have: "db.t3.micro".into(),
            need: "db.r5.large".into(),
            why: String::new(),
            fix: String::new(),
        };
        // (capacity, blocked) per tier -> the highest allowed.
        let cases = [
            (vec![], None),
            (vec![(600, true)], None),
            (vec![(600, false), (1000, true), (2000, true)], Some(600)),
            // A tier above a blocked one that needs less is still allowed.
            (vec![(600, false), (1000, true), (2000, false)], Some(2000)),
        ];
        for (tiers, want) in cases {
            let a: Allowance = tiers
                .into_iter()
                .map(|(c, blocked)| (c, if blocked { vec![s("a")] } else { vec![] }))
                .collect();
            assert_eq!(highest_allowed(&a), want, "{a:?}");
        }
    }

    #[test]
    fn odd_values_are_quoted_in_the_fix() {
        assert_eq!(
            command(&["aws x --id", "a b", "--class", "it's"], ""),
            "aws x --id 'a b' --class 'it'\\''s'"
        );
        assert_eq!(
            command(&["aws x --id", "db-1"], "eu-west-1"),
            "aws x --id db-1 --region eu-west-1"
        );
    }
}
