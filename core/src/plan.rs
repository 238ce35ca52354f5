//! The decision (README, "How it decides"), as a pure function: users, the HPAs as found, the
//! tier table, what the prerequisites allow, the run history and any hold,
//! and `now` go in; a [`Plan`] comes out. No I/O happens here — this module
//! must not import kube, aws-*, mysql_async or ureq (checked by
//! `scripts/test.sh`), so every rule is unit-tested with plain values.
//!
//! `--dry-run` prints the same plan the real run would apply.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::hpa::{Hpa, HpaPatch, HpaRef};
use crate::notice::{Notice, ServiceReplicas};
use crate::prereq::{Allowance, Shortfall};
use crate::record::{Hold, Outcome, RunRecord};
use crate::tiers::{Needed, Tier, TierTable};

/// What the run was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Demand {
    /// `check`: the metric read, or why it failed.
    Users(Result<u32, String>),
    /// `upgrade CAPACITY [--force]` (the capacity is a tier of the table).
    Upgrade { capacity: u32, force: bool },
}

/// Everything the decision depends on.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub now: Timestamp,
    pub demand: Demand,
    pub tiers: &'a TierTable,
    /// The reference HPA (`hpa_name` / `hpa_namespace`).
    pub reference: &'a HpaRef,
    /// Managed HPAs that could be read.
    pub hpas: &'a [Hpa],
    /// Managed HPAs that could not be read, and why.
    pub unreadable: &'a [(HpaRef, String)],
    /// Per tier, what is missing; `Err` when AWS could not be read.
    pub prereqs: &'a Result<Allowance, String>,
    /// Past runs (see `RunStore::history`); `None` when the store is unreachable.
    pub history: Option<&'a [RunRecord]>,
    pub hold: Option<Hold>,
    pub headroom_percent: u32,
    pub scale_down: SignedDuration,
}

/// How the current tier was told from the reference HPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Determined {
    /// Its `hpa-tier/capacity` annotation, which agrees with its minReplicas.
    Annotation,
    /// The tier whose reference-service replicas equal its minReplicas.
    MinReplicas,
    /// No tier matches its minReplicas `min`: the highest tier below it.
    Drift { min: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Current {
    pub capacity: u32,
    #[serde(flatten)]
    pub determined: Determined,
}

/// One HPA patch with what it was before, for output and the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub hpa: HpaRef,
    pub from_min: u32,
    pub from_max: u32,
    pub to_min: u32,
    pub to_max: u32,
    pub capacity: u32,
}

impl Change {
    /// The merge patch: max only when it changes.
    pub fn patch(&self) -> HpaPatch {
        HpaPatch {
            id: self.hpa.clone(),
            min: self.to_min,
            max: (self.to_max != self.from_max).then_some(self.to_max),
            capacity: self.capacity,
        }
    }
}

/// An HPA above the current tier's value between tier changes: reported, not touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Above {
    pub hpa: HpaRef,
    pub min: u32,
    pub tier_min: u32,
}

/// A scale-up the prerequisites stopped short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocked {
    pub wanted: u32,
    /// The tier reached (the current one when no step up was allowed).
    pub reached: u32,
    /// What the wanted tier is missing.
    pub shortfalls: Vec<Shortfall>,
}

/// Why a lower demand did not lower the tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum HeldBy {
    /// An `upgrade --hold` floor.
    Hold { capacity: u32, until: Timestamp },
    /// The records do not reach back a whole window yet.
    ShortHistory { since: Option<Timestamp> },
    /// A run inside the window needed this tier or more.
    Window { needed: u32, at: Timestamp },
    /// The store is unreachable: never scale down blind.
    NoHistory,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub users: Option<u32>,
    pub needed: Option<Needed>,
    pub current: Option<Current>,
    /// The tier after this run (equals `current` unless the tier changes).
    pub target: Option<u32>,
    /// The outcome if every patch succeeds (see [`settle`]).
    pub outcome: Outcome,
    pub changes: Vec<Change>,
    pub above: Vec<Above>,
    pub blocked: Option<Blocked>,
    pub held_by: Option<HeldBy>,
    /// `upgrade` refused: prerequisites not met (exit 3).
    pub refused: bool,
    pub errors: Vec<String>,
    /// Managed HPAs that could not be read (`ns/name: why`): not moved this run.
    pub unreadable: Vec<String>,
    /// Notices decided before applying (blocked, errors, above the top tier).
    pub notices: Vec<Notice>,
    pub message: String,
}

impl Plan {
    pub fn tier_changes(&self) -> bool {
        matches!((self.current, self.target), (Some(c), Some(t)) if c.capacity != t)
    }
}

/// The current tier from the reference HPA (README, "How it decides": current tier).
pub fn current_tier(tiers: &TierTable, reference: &Hpa) -> Current {
    let by_min = |min: u32| tiers.tiers().iter().find(|t| tiers.reference_min(t) == min);
    if let Some(tier) = reference
        .capacity_annotation
        .as_deref()
        .and_then(|a| a.trim().parse::<u32>().ok())
        .and_then(|c| tiers.get(c))
        .filter(|t| tiers.reference_min(t) == reference.min)
    {
        return Current {
            capacity: tier.capacity,
            determined: Determined::Annotation,
        };
    }
    if let Some(tier) = by_min(reference.min) {
        return Current {
            capacity: tier.capacity,
            determined: Determined::MinReplicas,
        };
    }
    let below = tiers
        .tiers()
        .iter()
        .rev()
        .find(|t| tiers.reference_min(t) < reference.min)
        .unwrap_or(tiers.floor());
    Current {
        capacity: below.capacity,
        determined: Determined::Drift { min: reference.min },
    }
}

/// What an HPA must look like in `tier`: its min, and its max raised to the
/// tier's max, or at least to min.
fn wanted(tier: &Tier, hpa: &Hpa) -> (u32, u32) {
    let r = tier
        .replicas_of(&hpa.id.service)
        .expect("every tier names every managed service");
    let max = r.max.unwrap_or(hpa.max.max(r.min));
    (r.min, max)
}

fn change(hpa: &Hpa, min: u32, max: u32, capacity: u32) -> Change {
    Change {
        hpa: hpa.id.clone(),
        from_min: hpa.min,
        from_max: hpa.max,
        to_min: min,
        to_max: max,
        capacity,
    }
}

/// Patches that put every HPA exactly at `tier` (a tier change or an upgrade).
fn set_exactly(tier: &Tier, hpas: &[Hpa]) -> Vec<Change> {
    hpas.iter()
        .filter_map(|h| {
            let (min, max) = wanted(tier, h);
            let annotated =
                h.capacity_annotation.as_deref() == Some(tier.capacity.to_string().as_str());
            (h.min != min || h.max != max || !annotated).then(|| change(h, min, max, tier.capacity))
        })
        .collect()
}

/// Between tier changes: raise HPAs found below the tier, report those above.
fn converge(tier: &Tier, hpas: &[Hpa]) -> (Vec<Change>, Vec<Above>) {
    let mut changes = vec![];
    let mut above = vec![];
    for h in hpas {
        let (min, max) = wanted(tier, h);
        if h.min < min || h.max < max {
            changes.push(change(h, h.min.max(min), h.max.max(max), tier.capacity));
        } else if h.min > min {
            above.push(Above {
                hpa: h.id.clone(),
                min: h.min,
                tier_min: min,
            });
        }
    }
    (changes, above)
}

fn error_plan(users: Option<u32>, current: Option<Current>, what: &str, message: String) -> Plan {
    Plan {
        users,
        needed: None,
        current,
        target: current.map(|c| c.capacity),
        outcome: Outcome::Error,
        changes: vec![],
        above: vec![],
        blocked: None,
        held_by: None,
        refused: false,
        errors: vec![message.clone()],
        unreadable: vec![],
        notices: vec![Notice::Error {
            what: what.into(),
            message: message.clone(),
        }],
        message: format!("{what}: {message}; nothing changed"),
    }
}

/// Computes the plan. See the module docs.
pub fn plan(inp: &Inputs) -> Plan {
    let users = match &inp.demand {
        Demand::Users(Ok(u)) => Some(*u),
        _ => None,
    };
    let Some(reference) = inp.hpas.iter().find(|h| h.id == *inp.reference) else {
        let why = inp
            .unreadable
            .iter()
            .find(|(r, _)| r == inp.reference)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| "not among the HPAs read".into());
        return error_plan(
            users,
            None,
            "Kubernetes",
            format!(
                "cannot read the reference HPA {} to tell the current tier: {why}",
                inp.reference
            ),
        );
    };
    let current = current_tier(inp.tiers, reference);

    // Never scale on missing data.
    if let Demand::Users(Err(e)) = &inp.demand {
        return error_plan(None, Some(current), "metric source", e.clone());
    }

    let unreadable: Vec<String> = inp
        .unreadable
        .iter()
        .map(|(r, e)| format!("{r}: {e}"))
        .collect();
    let mut errors = unreadable.clone();
    let mut notices = vec![];
    let mut blocked = None;
    let mut held_by = None;
    let mut refused = false;
    let mut prereq_failed = false;
    let tier_of = |c: u32| inp.tiers.get(c).expect("capacity from the table");

    let (needed, target) = match inp.demand {
        Demand::Upgrade { capacity, force } => {
            let needed = Needed {
                capacity,
                above_top: false,
            };
            let mut target = capacity;
            if capacity > current.capacity && !force {
                match inp.prereqs {
                    Err(e) => {
                        let msg = format!(
                            "cannot verify the prerequisites of tier {capacity}: {e}; \
                             fix access or rerun with --force to upgrade without them"
                        );
                        let mut p = error_plan(None, Some(current), "AWS prerequisites", msg);
                        p.needed = Some(needed);
                        return p;
                    }
                    Ok(allow) => {
                        let missing = allow.get(&capacity).cloned().unwrap_or_default();
                        if !missing.is_empty() {
                            refused = true;
                            target = current.capacity;
                            blocked = Some(Blocked {
                                wanted: capacity,
                                reached: current.capacity,
                                shortfalls: missing,
                            });
                        }
                    }
                }
            }
            (needed, target)
        }
        Demand::Users(Ok(u)) => {
            let needed = inp.tiers.needed(u, inp.headroom_percent);
            if needed.above_top {
                notices.push(Notice::AboveTop {
                    users: u,
                    top: needed.capacity,
                });
            }
            let hold = inp.hold.filter(|h| h.until > inp.now);
            let floor = hold.map(|h| h.capacity).unwrap_or(0);
            let wants = needed.capacity.max(floor);
            let target = if wants > current.capacity {
                match inp.prereqs {
                    Err(e) => {
                        prereq_failed = true;
                        errors.push(format!(
                            "cannot verify the prerequisites of tier {wants}: {e}"
                        ));
                        notices.push(Notice::Error {
                            what: "AWS prerequisites".into(),
                            message: format!(
                                "{e}; not scaling up to tier {wants} until they can be verified"
                            ),
                        });
                        current.capacity
                    }
                    Ok(allow) => {
                        let ok = |c: &u32| allow.get(c).is_none_or(Vec::is_empty);
                        let reached = inp
                            .tiers
                            .capacities()
                            .into_iter()
                            .filter(|c| *c > current.capacity && *c <= wants)
                            .filter(ok)
                            .max()
                            .unwrap_or(current.capacity);
                        if reached < wants {
                            blocked = Some(Blocked {
                                wanted: wants,
                                reached,
                                shortfalls: allow.get(&wants).cloned().unwrap_or_default(),
                            });
                        }
                        reached
                    }
                }
            } else if needed.capacity < current.capacity {
                if let Some(h) = hold.filter(|h| h.capacity >= current.capacity) {
                    held_by = Some(HeldBy::Hold {
                        capacity: h.capacity,
                        until: h.until,
                    });
                    current.capacity
                } else {
                    match scale_down(inp, current.capacity, wants) {
                        Ok(to) => to,
                        Err(why) => {
                            held_by = Some(why);
                            current.capacity
                        }
                    }
                }
            } else {
                current.capacity
            };
            (needed, target)
        }
        Demand::Users(Err(_)) => unreachable!("handled above"),
    };

    let target_tier = tier_of(target);
    let upgrade = matches!(inp.demand, Demand::Upgrade { .. });
    let (changes, above) = if refused {
        (vec![], vec![])
    } else if target != current.capacity || upgrade {
        (set_exactly(target_tier, inp.hpas), vec![])
    } else {
        converge(target_tier, inp.hpas)
    };

    if let Some(b) = &blocked {
        notices.push(Notice::Blocked {
            current: current.capacity,
            wanted: b.wanted,
            reached: b.reached,
            users,
            shortfalls: vec![(b.wanted, b.shortfalls.clone())],
        });
    }

    let tier_changes = target != current.capacity;
    let outcome = if prereq_failed {
        Outcome::Error
    } else if tier_changes {
        Outcome::Applied
    } else if blocked.is_some() {
        Outcome::Blocked
    } else if held_by.is_some() {
        Outcome::Held
    } else if !changes.is_empty() {
        Outcome::Applied
    } else {
        Outcome::Noop
    };

    let message = summary(
        inp, users, needed, current, target, &blocked, &held_by, &changes, refused, &errors,
    );
    Plan {
        users,
        needed: Some(needed),
        current: Some(current),
        target: Some(target),
        outcome,
        changes,
        above,
        blocked,
        held_by,
        refused,
        errors,
        unreadable,
        notices,
        message,
    }
}

/// The HPA controller's stabilization-window rule, applied to tiers: step
/// down only when the records cover the whole window and every run in it
/// needed less than `current`; go to the highest tier needed in the window.
fn scale_down(inp: &Inputs, current: u32, wants: u32) -> Result<u32, HeldBy> {
    let history = inp.history.ok_or(HeldBy::NoHistory)?;
    let window_start = inp.now - inp.scale_down;
    if !history.iter().any(|r| r.started_at <= window_start) {
        return Err(HeldBy::ShortHistory {
            since: history.iter().map(|r| r.started_at).min(),
        });
    }
    let mut highest = wants;
    for r in history.iter().filter(|r| r.started_at >= window_start) {
        let Some(needed) = r.needed_capacity else {
            continue;
        };
        if needed >= current {
            return Err(HeldBy::Window {
                needed,
                at: r.started_at,
            });
        }
        highest = highest.max(needed);
    }
    // A record may name a capacity the table no longer has; step to the
    // smallest tier that holds it.
    Ok(inp
        .tiers
        .capacities()
        .into_iter()
        .find(|c| *c >= highest)
        .unwrap_or(current)
        .min(current))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    inp: &Inputs,
    users: Option<u32>,
    needed: Needed,
    current: Current,
    target: u32,
    blocked: &Option<Blocked>,
    held_by: &Option<HeldBy>,
    changes: &[Change],
    refused: bool,
    errors: &[String],
) -> String {
    let who = match (&inp.demand, users) {
        (Demand::Upgrade { capacity, force }, _) => {
            format!(
                "upgrade to {capacity}{}",
                if *force { " (--force)" } else { "" }
            )
        }
        (_, Some(u)) => format!("{u} users need tier {}", needed.capacity),
        _ => String::new(),
    };
    let cur = current.capacity;
    let mut msg = if refused {
        let b = blocked.as_ref().expect("refused implies blocked");
        format!(
            "{who} refused: {}",
            b.shortfalls
                .iter()
                .map(|s| format!("tier {} {s}", b.wanted))
                .collect::<Vec<_>>()
                .join("; ")
        )
    } else if let Some(b) = blocked {
        let what = b
            .shortfalls
            .iter()
            .map(|s| format!("tier {} {s}", b.wanted))
            .collect::<Vec<_>>()
            .join("; ");
        if b.reached > cur {
            format!(
                "{who}: scaled {cur} → {} (as far as prerequisites allow); blocked: {what}",
                b.reached
            )
        } else {
            format!("{who}: blocked at {cur}: {what}")
        }
    } else if target != cur {
        let dir = if target > cur { "up" } else { "down" };
        format!("{who}: scaled {dir} {cur} → {target}")
    } else if let Some(h) = held_by {
        let why = match h {
            HeldBy::Hold { capacity, until } => format!(
                "hold at {capacity} until {}",
                until.strftime("%Y-%m-%d %H:%M UTC")
            ),
            HeldBy::ShortHistory { .. } => format!(
                "the run history does not yet cover the {}-minute scale-down window",
                inp.scale_down.as_mins()
            ),
            HeldBy::Window { needed, at } => format!(
                "a run at {} needed {needed} within the {}-minute window",
                at.strftime("%H:%M UTC"),
                inp.scale_down.as_mins()
            ),
            HeldBy::NoHistory => {
                "the run store is unreachable, and scale-down needs history".into()
            }
        };
        format!("{who}: held at {cur}: {why}")
    } else if !changes.is_empty() {
        format!(
            "{who}: tier {cur} kept; {} HPA(s) brought up to it",
            changes.len()
        )
    } else {
        format!("{who}: tier {cur} holds them, nothing to do")
    };
    if !errors.is_empty() {
        msg.push_str("; errors: ");
        msg.push_str(&errors.join("; "));
    }
    msg
}

/// What applying a plan produced, per HPA.
pub type Applied = Vec<(HpaRef, Result<(), String>)>;

/// The run's final outcome once patches have been tried, and the notices to
/// send (the pre-apply ones plus a tier change). Pure.
pub fn settle(
    plan: &Plan,
    applied: &Applied,
    tiers: &TierTable,
    command: &str,
) -> (Outcome, Vec<Notice>) {
    let mut failed: Vec<String> = applied
        .iter()
        .filter_map(|(r, res)| res.as_ref().err().map(|e| format!("{r}: {e}")))
        .collect();
    let patch_failures = failed.len();
    failed.extend(plan.unreadable.iter().cloned());
    let succeeded = applied.iter().filter(|(_, r)| r.is_ok()).count();
    let mut notices = plan.notices.clone();
    let outcome = match plan.outcome {
        // A run that could not decide (or verify) stays an error.
        Outcome::Error => Outcome::Error,
        _ if failed.is_empty() => plan.outcome,
        _ if succeeded > 0 => Outcome::Partial,
        _ => Outcome::Error,
    };
    if plan.tier_changes() && succeeded > 0 {
        let (from, to) = (
            plan.current.expect("tier change").capacity,
            plan.target.expect("tier change"),
        );
        let tier = tiers.get(to).expect("target is a tier");
        let replicas = tier
            .replicas
            .iter()
            .map(|(service, r)| ServiceReplicas {
                service: service.clone(),
                min: r.min,
                max: plan
                    .changes
                    .iter()
                    .find(|c| c.hpa.service == *service)
                    .map(|c| c.to_max)
                    .or(r.max)
                    .unwrap_or(r.min),
            })
            .collect();
        notices.insert(
            0,
            Notice::TierChanged {
                command: command.into(),
                from,
                to,
                users: plan.users,
                replicas,
                failed: failed.clone(),
            },
        );
    } else if !failed.is_empty() {
        notices.push(Notice::Error {
            what: "Kubernetes".into(),
            message: format!(
                "{} HPA(s) not at their tier ({patch_failures} patch(es) failed): {}",
                failed.len(),
                failed.join("; ")
            ),
        });
    }
    (outcome, notices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prereq::Resource;
    use crate::record::CommandKind;
    use crate::tiers::fixtures::table;

    fn at(mins: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap() + SignedDuration::from_mins(mins)
    }

    fn now() -> Timestamp {
        at(0)
    }

    /// All six services at `capacity`'s values, annotated.
    fn hpas_at(capacity: u32) -> Vec<Hpa> {
        let t = table();
        let tier = t.get(capacity).unwrap();
        tier.replicas
            .iter()
            .map(|(s, r)| {
                Hpa::test(s)
                    .min(r.min)
                    .max(r.min.max(10))
                    .annotated(capacity)
            })
            .collect()
    }

    fn reference() -> HpaRef {
        Hpa::test("istio-ingress").id
    }

    fn all_allowed() -> Result<Allowance, String> {
        Ok(table()
            .capacities()
            .into_iter()
            .map(|c| (c, vec![]))
            .collect())
    }

    fn shortfall(need: &str) -> Shortfall {
        Shortfall {
            resource: Resource::Rds,
            member: "prod-aurora-2".into(),
            role: "reader".into(),
            have: "db.r7g.large".into(),
            need: need.into(),
            why: "2 vCPU / 16 GiB < 32 vCPU / 256 GiB".into(),
            fix: format!(
                "aws rds modify-db-instance --db-instance-identifier prod-aurora-2 --db-instance-class {need} --apply-immediately"
            ),
        }
    }

    /// Tiers from `from` upwards are missing an RDS class.
    fn blocked_from(from: u32) -> Result<Allowance, String> {
        Ok(table()
            .capacities()
            .into_iter()
            .map(|c| {
                (
                    c,
                    if c >= from {
                        vec![shortfall("db.r5.8xlarge")]
                    } else {
                        vec![]
                    },
                )
            })
            .collect())
    }

    struct Case {
        demand: Demand,
        hpas: Vec<Hpa>,
        unreadable: Vec<(HpaRef, String)>,
        prereqs: Result<Allowance, String>,
        history: Option<Vec<RunRecord>>,
        hold: Option<Hold>,
        headroom: u32,
    }

    impl Case {
        fn users(users: u32, at_tier: u32) -> Self {
            Case {
                demand: Demand::Users(Ok(users)),
                hpas: hpas_at(at_tier),
                unreadable: vec![],
                prereqs: all_allowed(),
                history: Some(vec![]),
                hold: None,
                headroom: 0,
            }
        }
        fn upgrade(capacity: u32, force: bool, at_tier: u32) -> Self {
            Case {
                demand: Demand::Upgrade { capacity, force },
                ..Case::users(0, at_tier)
            }
        }
        fn history(mut self, h: Vec<RunRecord>) -> Self {
            self.history = Some(h);
            self
        }
        fn run(&self) -> Plan {
            let t = table();
            let r = reference();
            plan(&Inputs {
                now: now(),
                demand: self.demand.clone(),
                tiers: &t,
                reference: &r,
                hpas: &self.hpas,
                unreadable: &self.unreadable,
                prereqs: &self.prereqs,
                history: self.history.as_deref(),
                hold: self.hold,
                headroom_percent: self.headroom,
                scale_down: SignedDuration::from_mins(30),
            })
        }
    }

    /// A run every 5 minutes over the last `span` minutes, each needing `needed`.
    fn steady(needed: u32, tier: u32, span: i64) -> Vec<RunRecord> {
        (0..=span / 5)
            .rev()
            .map(|i| RunRecord::check_needing(needed, tier, now(), i * 5 + 1))
            .collect()
    }

    fn mins(p: &Plan, service: &str) -> Option<(u32, u32)> {
        p.changes
            .iter()
            .find(|c| c.hpa.service == service)
            .map(|c| (c.from_min, c.to_min))
    }

    // --- current tier -------------------------------------------------------

    #[test]
    fn current_tier_from_an_annotation_that_agrees_with_min() {
        let h = Hpa::test("istio-ingress").min(6).annotated(2000);
        assert_eq!(
            current_tier(&table(), &h),
            Current {
                capacity: 2000,
                determined: Determined::Annotation
            }
        );
    }

    #[test]
    fn current_tier_ignores_an_annotation_that_disagrees_with_min() {
        let h = Hpa::test("istio-ingress").min(4).annotated(2000);
        assert_eq!(
            current_tier(&table(), &h),
            Current {
                capacity: 1000,
                determined: Determined::MinReplicas
            }
        );
        let h = Hpa::test("istio-ingress").min(4).annotated(1234);
        assert_eq!(current_tier(&table(), &h).capacity, 1000);
        let mut h = Hpa::test("istio-ingress").min(4);
        h.capacity_annotation = Some("garbage".into());
        assert_eq!(current_tier(&table(), &h).capacity, 1000);
    }

    #[test]
    fn current_tier_from_min_replicas_without_annotation() {
        for (min, cap) in [
            (2, 600),
            (4, 1000),
            (6, 2000),
            (8, 3000),
            (10, 4000),
            (12, 5000),
        ] {
            let h = Hpa::test("istio-ingress").min(min);
            assert_eq!(
                current_tier(&table(), &h),
                Current {
                    capacity: cap,
                    determined: Determined::MinReplicas
                }
            );
        }
    }

    #[test]
    fn current_tier_drift_is_the_highest_tier_below() {
        let h = Hpa::test("istio-ingress").min(7);
        assert_eq!(
            current_tier(&table(), &h),
            Current {
                capacity: 2000,
                determined: Determined::Drift { min: 7 }
            }
        );
        let h = Hpa::test("istio-ingress").min(40);
        assert_eq!(current_tier(&table(), &h).capacity, 5000);
        // Below the floor: the floor, still drift.
        let h = Hpa::test("istio-ingress").min(1);
        assert_eq!(
            current_tier(&table(), &h),
            Current {
                capacity: 600,
                determined: Determined::Drift { min: 1 }
            }
        );
    }

    // --- needed tier, no change --------------------------------------------------

    #[test]
    fn users_exactly_at_capacity_fit_the_tier() {
        let p = Case::users(1000, 1000).run();
        assert_eq!((p.outcome, p.target), (Outcome::Noop, Some(1000)));
        assert!(p.changes.is_empty() && p.notices.is_empty());
    }

    #[test]
    fn one_user_above_capacity_scales_up() {
        let p = Case::users(1001, 1000).run();
        assert_eq!((p.outcome, p.target), (Outcome::Applied, Some(2000)));
        assert_eq!(mins(&p, "passport"), Some((8, 12)));
    }

    #[test]
    fn zero_users_at_the_floor_is_a_noop() {
        let p = Case::users(0, 600).run();
        assert_eq!((p.outcome, p.target), (Outcome::Noop, Some(600)));
        assert_eq!(p.needed.unwrap().capacity, 600);
    }

    #[test]
    fn headroom_raises_the_needed_tier() {
        let mut c = Case::users(900, 1000);
        c.headroom = 20;
        let p = c.run();
        assert_eq!(p.needed.unwrap().capacity, 2000);
        assert_eq!(p.target, Some(2000));
    }

    // --- scale up --------------------------------------------------------------

    #[test]
    fn scale_up_jumps_several_tiers_at_once() {
        let p = Case::users(3500, 600).run();
        assert_eq!((p.outcome, p.target), (Outcome::Applied, Some(4000)));
        assert_eq!(p.changes.len(), 6);
        assert_eq!(mins(&p, "istio-ingress"), Some((2, 10)));
        assert!(p.changes.iter().all(|c| c.capacity == 4000));
        assert!(p.message.contains("scaled up 600 → 4000"), "{}", p.message);
    }

    #[test]
    fn scale_up_stops_at_the_highest_tier_the_prerequisites_allow() {
        let mut c = Case::users(3500, 600);
        c.prereqs = blocked_from(3000);
        let p = c.run();
        assert_eq!(p.target, Some(2000));
        assert_eq!(
            p.outcome,
            Outcome::Applied,
            "a step was taken, so the tier changed"
        );
        let b = p.blocked.as_ref().unwrap();
        assert_eq!((b.wanted, b.reached), (4000, 2000));
        assert!(matches!(
            &p.notices[..],
            [Notice::Blocked {
                wanted: 4000,
                reached: 2000,
                ..
            }]
        ));
        assert!(
            p.message.contains(
                "tier 4000 needs RDS db.r5.8xlarge; reader prod-aurora-2 is db.r7g.large"
            ),
            "{}",
            p.message
        );
    }

    #[test]
    fn scale_up_fully_blocked_touches_nothing_and_says_what_is_missing() {
        let mut c = Case::users(1500, 600);
        c.prereqs = blocked_from(1000);
        let p = c.run();
        assert_eq!((p.outcome, p.target), (Outcome::Blocked, Some(600)));
        assert!(p.changes.is_empty());
        let Notice::Blocked { shortfalls, .. } = &p.notices[0] else {
            panic!()
        };
        assert!(
            shortfalls[0].1[0]
                .fix
                .contains("--db-instance-class db.r5.8xlarge")
        );
    }

    #[test]
    fn blocked_still_raises_an_hpa_below_the_current_tier() {
        let mut c = Case::users(1500, 600);
        c.prereqs = blocked_from(1000);
        c.hpas[2] = Hpa::test("web").min(1).max(10).annotated(600);
        let p = c.run();
        assert_eq!(p.outcome, Outcome::Blocked);
        assert_eq!(mins(&p, "web"), Some((1, 2)));
    }

    #[test]
    fn prerequisite_read_failure_prevents_scale_up() {
        let mut c = Case::users(1500, 600);
        c.prereqs = Err("AccessDenied: rds:DescribeDBClusters".into());
        let p = c.run();
        assert_eq!((p.outcome, p.target), (Outcome::Error, Some(600)));
        assert!(p.changes.is_empty());
        assert!(
            matches!(&p.notices[..], [Notice::Error { what, .. }] if what == "AWS prerequisites")
        );
    }

    #[test]
    fn prerequisite_read_failure_still_allows_scale_down() {
        let mut c = Case::users(100, 2000).history(steady(600, 2000, 40));
        c.prereqs = Err("timeout".into());
        let p = c.run();
        assert_eq!(p.target, Some(600));
        assert_eq!(p.changes.len(), 6);
    }

    #[test]
    fn above_the_top_tier_uses_the_top_tier_and_warns() {
        let p = Case::users(9000, 5000).run();
        assert_eq!((p.outcome, p.target), (Outcome::Noop, Some(5000)));
        assert!(matches!(
            p.notices[..],
            [Notice::AboveTop {
                users: 9000,
                top: 5000
            }]
        ));
        assert!(p.needed.unwrap().above_top);
    }

    // --- metric failure ------------------------------------------------------

    #[test]
    fn metric_failure_changes_nothing() {
        let mut c = Case::users(0, 600);
        c.demand = Demand::Users(Err("GA answered 503".into()));
        c.hpas[2] = Hpa::test("web").min(1); // even a below-tier HPA is left alone
        let p = c.run();
        assert_eq!(
            (p.outcome, p.target, p.users),
            (Outcome::Error, Some(600), None)
        );
        assert!(p.changes.is_empty());
        assert!(matches!(&p.notices[..], [Notice::Error { what, .. }] if what == "metric source"));
    }

    #[test]
    fn unreadable_reference_hpa_is_an_error() {
        let mut c = Case::users(3000, 600);
        c.hpas.remove(0);
        c.unreadable = vec![(
            reference(),
            "HPA istio-system/ingressgateway-hpa not found".into(),
        )];
        let p = c.run();
        assert_eq!((p.outcome, p.current), (Outcome::Error, None));
        assert!(p.message.contains("not found"), "{}", p.message);
    }

    #[test]
    fn an_unreadable_other_hpa_is_reported_and_the_rest_applied() {
        let mut c = Case::users(1500, 600);
        let gone = c.hpas.remove(3).id;
        c.unreadable = vec![(gone, "forbidden".into())];
        let p = c.run();
        assert_eq!(p.changes.len(), 5);
        let applied: Applied = p.changes.iter().map(|c| (c.hpa.clone(), Ok(()))).collect();
        let (outcome, _) = settle(&p, &applied, &table(), "check");
        assert_eq!(outcome, Outcome::Partial);
    }

    // --- scale down ------------------------------------------------------------

    #[test]
    fn scale_down_after_a_full_window_of_lower_demand() {
        let p = Case::users(100, 2000).history(steady(600, 2000, 35)).run();
        assert_eq!((p.outcome, p.target), (Outcome::Applied, Some(600)));
        assert_eq!(mins(&p, "passport"), Some((12, 2)));
    }

    #[test]
    fn scale_down_goes_to_the_highest_tier_needed_in_the_window() {
        let mut h = steady(600, 3000, 35);
        h[3].needed_capacity = Some(2000);
        let p = Case::users(100, 3000).history(h).run();
        assert_eq!(p.target, Some(2000));
    }

    #[test]
    fn no_scale_down_when_the_window_is_not_covered() {
        let p = Case::users(100, 2000).history(steady(600, 2000, 20)).run();
        assert_eq!((p.outcome, p.target), (Outcome::Held, Some(2000)));
        assert!(matches!(p.held_by, Some(HeldBy::ShortHistory { .. })));
    }

    #[test]
    fn no_scale_down_with_empty_history() {
        let p = Case::users(100, 2000).history(vec![]).run();
        assert_eq!((p.outcome, p.target), (Outcome::Held, Some(2000)));
        assert!(matches!(
            p.held_by,
            Some(HeldBy::ShortHistory { since: None })
        ));
    }

    #[test]
    fn no_scale_down_without_history() {
        let mut c = Case::users(100, 2000);
        c.history = None;
        let p = c.run();
        assert_eq!(
            (p.outcome, p.held_by),
            (Outcome::Held, Some(HeldBy::NoHistory))
        );
    }

    #[test]
    fn no_scale_down_when_a_run_in_the_window_needed_the_tier() {
        let mut h = steady(600, 2000, 35);
        h[4].needed_capacity = Some(2000);
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome, Outcome::Held);
        assert!(matches!(
            p.held_by,
            Some(HeldBy::Window { needed: 2000, .. })
        ));
        assert!(
            p.message.contains("within the 30-minute window"),
            "{}",
            p.message
        );
    }

    #[test]
    fn an_upgrade_in_the_window_counts_as_needing_its_tier() {
        let mut h = steady(600, 2000, 35);
        let up = h.last_mut().unwrap();
        up.command = CommandKind::Upgrade;
        up.needed_capacity = Some(2000);
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome, Outcome::Held);
    }

    #[test]
    fn failed_runs_in_the_window_do_not_block_scale_down() {
        let mut h = steady(600, 2000, 35);
        h[2].needed_capacity = None;
        h[2].outcome = Outcome::Error;
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.target, Some(600));
    }

    #[test]
    fn a_run_exactly_at_the_window_start_counts() {
        // One record exactly 30 minutes ago needing the current tier: it is
        // inside the window, so the tier is kept.
        let mut h = vec![RunRecord::check_needing(2000, 2000, now(), 30)];
        h.extend(steady(600, 2000, 20));
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome, Outcome::Held);
    }

    // --- holds -------------------------------------------------------------------

    fn hold(capacity: u32, until_mins: i64) -> Option<Hold> {
        Some(Hold {
            capacity,
            until: at(until_mins),
            set_at: at(-60),
        })
    }

    #[test]
    fn an_active_hold_blocks_scale_down() {
        let mut c = Case::users(100, 2000).history(steady(600, 2000, 40));
        c.hold = hold(2000, 30);
        let p = c.run();
        assert_eq!((p.outcome, p.target), (Outcome::Held, Some(2000)));
        assert!(matches!(
            p.held_by,
            Some(HeldBy::Hold { capacity: 2000, .. })
        ));
    }

    #[test]
    fn a_hold_expiring_now_no_longer_holds() {
        let mut c = Case::users(100, 2000).history(steady(600, 2000, 40));
        c.hold = hold(2000, 0);
        let p = c.run();
        assert_eq!(p.target, Some(600));
    }

    #[test]
    fn scale_down_never_goes_below_a_lower_hold() {
        let mut c = Case::users(100, 3000).history(steady(600, 3000, 40));
        c.hold = hold(2000, 30);
        let p = c.run();
        assert_eq!(p.target, Some(2000));
    }

    #[test]
    fn a_hold_above_the_current_tier_raises_it() {
        let mut c = Case::users(100, 600);
        c.hold = hold(2000, 30);
        let p = c.run();
        assert_eq!(p.target, Some(2000));
    }

    // --- upgrade -----------------------------------------------------------------

    #[test]
    fn upgrade_up_with_prerequisites_met() {
        let p = Case::upgrade(2000, false, 600).run();
        assert_eq!(
            (p.outcome, p.target, p.refused),
            (Outcome::Applied, Some(2000), false)
        );
        assert_eq!(p.needed.unwrap().capacity, 2000);
    }

    #[test]
    fn upgrade_up_refused_when_prerequisites_are_missing() {
        let mut c = Case::upgrade(2000, false, 600);
        c.prereqs = blocked_from(1000);
        let p = c.run();
        assert_eq!(
            (p.outcome, p.target, p.refused),
            (Outcome::Blocked, Some(600), true)
        );
        assert!(p.changes.is_empty());
        assert!(p.message.contains("refused"), "{}", p.message);
    }

    #[test]
    fn upgrade_force_skips_prerequisites() {
        let mut c = Case::upgrade(2000, true, 600);
        c.prereqs = blocked_from(1000);
        let p = c.run();
        assert_eq!((p.outcome, p.target), (Outcome::Applied, Some(2000)));
        let mut c = Case::upgrade(2000, true, 600);
        c.prereqs = Err("down".into());
        assert_eq!(c.run().target, Some(2000));
    }

    #[test]
    fn upgrade_up_with_unreadable_prerequisites_is_an_error_not_a_refusal() {
        let mut c = Case::upgrade(2000, false, 600);
        c.prereqs = Err("throttled".into());
        let p = c.run();
        assert_eq!((p.outcome, p.refused), (Outcome::Error, false));
        assert!(p.message.contains("--force"), "{}", p.message);
    }

    #[test]
    fn upgrade_down_needs_no_prerequisites_and_no_window() {
        let mut c = Case::upgrade(600, false, 3000);
        c.prereqs = Err("down".into());
        c.history = None;
        let p = c.run();
        assert_eq!((p.outcome, p.target), (Outcome::Applied, Some(600)));
    }

    #[test]
    fn upgrade_to_the_current_tier_resets_drifted_hpas_exactly() {
        let mut c = Case::upgrade(2000, false, 2000);
        c.hpas[2] = Hpa::test("web").min(9).max(10).annotated(2000);
        let p = c.run();
        assert_eq!(p.outcome, Outcome::Applied);
        assert_eq!(mins(&p, "web"), Some((9, 6)));
        assert_eq!(p.changes.len(), 1);
    }

    // --- apply details -------------------------------------------------------------

    #[test]
    fn max_is_raised_to_at_least_min_and_otherwise_left_alone() {
        let mut c = Case::users(1500, 600);
        c.hpas[4] = Hpa::test("passport").min(2).max(5).annotated(600);
        let p = c.run();
        let passport = p
            .changes
            .iter()
            .find(|c| c.hpa.service == "passport")
            .unwrap();
        assert_eq!((passport.to_min, passport.to_max), (12, 12));
        assert_eq!(passport.patch().max, Some(12));
        let web = p.changes.iter().find(|c| c.hpa.service == "web").unwrap();
        assert_eq!(web.patch().max, None, "max 10 already holds min 6");
    }

    #[test]
    fn between_tier_changes_below_tier_hpas_are_raised_and_above_reported() {
        let mut c = Case::users(1500, 2000);
        c.hpas[2] = Hpa::test("web").min(3).max(10).annotated(2000);
        c.hpas[3] = Hpa::test("hermes").min(20).max(30).annotated(2000);
        let p = c.run();
        assert_eq!((p.outcome, p.target), (Outcome::Applied, Some(2000)));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(mins(&p, "web"), Some((3, 6)));
        assert_eq!(
            p.above,
            vec![Above {
                hpa: Hpa::test("hermes").id,
                min: 20,
                tier_min: 8
            }]
        );
    }

    #[test]
    fn a_tier_change_annotates_every_hpa_even_when_min_is_unchanged() {
        // gateway has 2 in both tiers 600 and 1000.
        let p = Case::users(900, 600).run();
        let gw = p
            .changes
            .iter()
            .find(|c| c.hpa.service == "gateway")
            .unwrap();
        assert_eq!((gw.from_min, gw.to_min, gw.capacity), (2, 2, 1000));
    }

    #[test]
    fn settle_partial_failure_is_partial_and_announced() {
        let p = Case::users(1500, 600).run();
        let applied: Applied = p
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.hpa.clone(),
                    if i == 1 { Err("500".into()) } else { Ok(()) },
                )
            })
            .collect();
        let (outcome, notices) = settle(&p, &applied, &table(), "check");
        assert_eq!(outcome, Outcome::Partial);
        let Notice::TierChanged {
            from,
            to,
            failed,
            replicas,
            ..
        } = &notices[0]
        else {
            panic!()
        };
        assert_eq!(
            (*from, *to, failed.len(), replicas.len()),
            (600, 2000, 1, 6)
        );
    }

    #[test]
    fn settle_all_failed_is_an_error() {
        let p = Case::users(1500, 600).run();
        let applied: Applied = p
            .changes
            .iter()
            .map(|c| (c.hpa.clone(), Err("403".into())))
            .collect();
        let (outcome, notices) = settle(&p, &applied, &table(), "check");
        assert_eq!(outcome, Outcome::Error);
        assert!(matches!(&notices[..], [Notice::Error { what, .. }] if what == "Kubernetes"));
    }

    #[test]
    fn settle_success_keeps_the_planned_outcome() {
        let p = Case::users(1500, 600).run();
        let applied: Applied = p.changes.iter().map(|c| (c.hpa.clone(), Ok(()))).collect();
        let (outcome, notices) = settle(&p, &applied, &table(), "check");
        assert_eq!(outcome, Outcome::Applied);
        assert!(matches!(
            notices[..],
            [Notice::TierChanged {
                from: 600,
                to: 2000,
                ..
            }]
        ));
    }
}
