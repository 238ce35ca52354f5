//! Properties of the decision (`plan::decide`) over generated worlds: the
//! users read (or the error), the HPAs as found (drifted, unannotated, some
//! unreadable), run histories with random outcomes, needs and gaps, holds,
//! an active or nearby schedule window, and what the prerequisites allow.
//! Each property names the rule of SPEC §4, §9 or §11 it pins. The coverage
//! rule is checked against a model written here from the SPEC's words, not
//! against the plan's own code.
//!
//! 256 cases per property keep `cargo test -p hpa-tier-core` fast.

use hpa_tier_core::hpa::{Hpa, HpaRef};
use hpa_tier_core::plan::{Decision, Demand, Inputs, Verdict, decide};
use hpa_tier_core::policy::Policy;
use hpa_tier_core::prereq::{Allowance, Resource, Shortfall};
use hpa_tier_core::record::{CommandKind, Hold, Outcome, RunRecord};
use hpa_tier_core::schedule::{ScheduleSpec, Schedules, SchedulesSpec};
use hpa_tier_core::tiers::fixtures::table;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const CAPACITIES: [u32; 6] = [600, 1000, 2000, 3000, 4000, 5000];
const OUTCOMES: [Outcome; 6] = [
    Outcome::Noop,
    Outcome::Applied,
    Outcome::Blocked,
    Outcome::Held,
    Outcome::Partial,
    Outcome::Error,
];
/// `Policy::test()`: a 30-minute scale-down window, 5-minute checks.
const SCALE_DOWN_MINS: i64 = 30;
const MAX_GAP: SignedDuration = SignedDuration::from_mins(10);
/// Schedule windows here are an hour long with the default 10-minute lead.
const WINDOW_MINS: i64 = 60;
const LEAD_MINS: i64 = 10;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn ago(mins: i64) -> Timestamp {
    now() - SignedDuration::from_mins(mins)
}

/// Everything `decide` reads, as generated.
#[derive(Clone, Debug)]
struct World {
    demand: Demand,
    hpas: Vec<Hpa>,
    unreadable: Vec<(HpaRef, String)>,
    prereqs: Result<Allowance, String>,
    history: Option<Vec<RunRecord>>,
    hold: Option<Hold>,
    /// A one-off window starting this many minutes from now, and its tier.
    window: Option<(i64, u32)>,
    headroom: u32,
}

impl World {
    fn policy(&self) -> Policy {
        let mut p = Policy::test();
        p.headroom_percent = self.headroom;
        if let Some((start, capacity)) = self.window {
            let at = (now() + SignedDuration::from_mins(start)).to_string();
            let spec = SchedulesSpec {
                timezone: None,
                schedules: vec![ScheduleSpec::at("w", &at).duration("1h").capacity(capacity)],
                skip_dates: vec![],
                preflight_hours: None,
            };
            p.schedules = Schedules::new(spec, &CAPACITIES).unwrap();
        }
        p
    }

    fn decide(&self) -> Decision {
        let policy = self.policy();
        decide(&Inputs {
            now: now(),
            demand: self.demand.clone(),
            hold: self.hold,
            samples: &[],
            policy: &policy,
            hpas: &self.hpas,
            unreadable: &self.unreadable,
            prereqs: &self.prereqs,
            history: self.history.as_deref(),
        })
    }

    fn with_users(&self, users: u32) -> World {
        World {
            demand: Demand::Users(Ok(users)),
            ..self.clone()
        }
    }

    /// The floors besides the metric in force now, by the SPEC's words: a
    /// hold until a later instant, a window on `[start - lead, start + duration)`.
    fn active_floors(&self) -> Vec<u32> {
        let hold = self.hold.filter(|h| h.until > now()).map(|h| h.capacity);
        let window = self
            .window
            .filter(|(start, _)| start - LEAD_MINS <= 0 && 0 < start + WINDOW_MINS)
            .map(|(_, c)| c);
        hold.into_iter().chain(window).collect()
    }

    fn allowed(&self, capacity: u32) -> bool {
        matches!(&self.prereqs, Ok(a) if a.get(&capacity).is_none_or(Vec::is_empty))
    }
}

// --- generators ------------------------------------------------------------

fn tier() -> impl Strategy<Value = u32> {
    (0..CAPACITIES.len()).prop_map(|i| CAPACITIES[i])
}

fn users() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..6500, 1 => any::<u32>()]
}

/// The six HPAs at one tier's values, each maybe drifted (another min),
/// with the annotation right, missing, garbage or of another tier, and now
/// and then one that could not be read.
fn hpas(capacity: u32) -> impl Strategy<Value = (Vec<Hpa>, Vec<(HpaRef, String)>)> {
    let one = (
        prop::option::weighted(0.2, 0u32..30),
        prop::option::weighted(0.1, any::<u32>()),
        prop::bool::weighted(0.05),
    );
    (0..4u8, prop::collection::vec(one, 6)).prop_map(move |(note, tweaks)| {
        let t = table();
        let tier = t.get(capacity).unwrap();
        let (mut found, mut unreadable) = (vec![], vec![]);
        for ((service, r), (drift, running, lost)) in tier.replicas.iter().zip(tweaks) {
            let mut h = Hpa::test(service)
                .min(drift.unwrap_or(r.min))
                .max(r.min.max(10));
            h.current_replicas = running.or(h.current_replicas);
            h.capacity_annotation = match note {
                0 => Some(capacity.to_string()),
                1 => None,
                2 => Some("not-a-tier".into()),
                _ => Some("2000".into()),
            };
            if lost {
                unreadable.push((h.id, "503 Service Unavailable".into()));
            } else {
                found.push(h);
            }
        }
        (found, unreadable)
    })
}

fn shortfall(tier: u32) -> Shortfall {
    Shortfall {
        resource: Resource::Rds,
        member: "prod-aurora-1".into(),
        role: "writer".into(),
        have: "db.r7g.large".into(),
        need: format!("class for {tier}"),
        why: "smaller".into(),
        fix: "aws rds modify-db-instance ...".into(),
    }
}

/// Per tier, allowed or not (not necessarily monotone), or AWS unreadable.
fn prereqs() -> impl Strategy<Value = Result<Allowance, String>> {
    prop_oneof![
        4 => prop::collection::vec(prop::bool::weighted(0.3), 6).prop_map(|blocked| {
            Ok(CAPACITIES
                .iter()
                .zip(blocked)
                .map(|(c, b)| (*c, if b { vec![shortfall(*c)] } else { vec![] }))
                .collect())
        }),
        1 => Just(Err("AWS: ThrottlingException".to_string())),
    ]
}

/// A past run `minutes_ago` (negative: a clock ahead of ours): a check or
/// an upgrade, read or not, with any outcome, needing mostly a tier up to
/// `level`, now and then any tier or a capacity the table no longer has.
fn record(minutes_ago: i64, level: usize) -> impl Strategy<Value = RunRecord> {
    (
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.93),
        prop_oneof![
            16 => (0..=level).prop_map(|i| CAPACITIES[i]),
            2 => tier(),
            1 => 1u32..7000,
        ],
        0..OUTCOMES.len(),
    )
        .prop_map(move |(upgrade, read, needed, outcome)| {
            let mut r = RunRecord::check_needing(needed, needed, now(), minutes_ago);
            r.outcome = OUTCOMES[outcome];
            if upgrade {
                r.command = CommandKind::Upgrade;
                r.users = None;
            } else if !read {
                r.users = None;
                r.needed_capacity = None;
                r.outcome = Outcome::Error;
            }
            r
        })
}

/// No history (store unreachable), scattered runs, or a regular series of
/// runs (every 1..12 minutes, the newest 0..every minutes ago) with holes,
/// failed readings and needs mostly up to `level` — the kind that only
/// sometimes covers the window.
fn history(level: usize) -> impl Strategy<Value = Option<Vec<RunRecord>>> {
    let scattered =
        prop::collection::vec((-5i64..120).prop_flat_map(move |m| record(m, level)), 0..20);
    let series = (1i64..=12, 0i64..12, 0i64..90).prop_flat_map(move |(every, offset, span)| {
        let runs: Vec<_> = (0..=span / every)
            .map(|i| {
                (
                    prop::bool::weighted(0.95),
                    record(i * every + offset % every, level),
                )
            })
            .collect();
        runs.prop_map(|runs| {
            runs.into_iter()
                .filter(|(kept, _)| *kept)
                .map(|(_, r)| r)
                .collect()
        })
    });
    prop_oneof![1 => Just(None), 2 => scattered.prop_map(Some), 5 => series.prop_map(Some)]
}

/// A hold, expired or not, often at the tier the HPAs are at (`at`).
fn hold(at: u32) -> impl Strategy<Value = Option<Hold>> {
    prop::option::weighted(
        0.3,
        (prop_oneof![Just(at), tier()], -60i64..120).prop_map(|(capacity, until)| Hold {
            capacity,
            until: now() + SignedDuration::from_mins(until),
            set_at: ago(90),
        }),
    )
}

/// A world around the tier the HPAs are at: its history mostly needed
/// less than that tier, as a scale-down wants, or at most it.
fn world_with(
    demand: impl Fn(u32) -> BoxedStrategy<Demand> + Clone,
) -> impl Strategy<Value = World> {
    (0..CAPACITIES.len(), any::<bool>())
        .prop_flat_map(move |(at, lower)| {
            let level = if lower { at.saturating_sub(1) } else { at };
            (
                demand(CAPACITIES[at]),
                hpas(CAPACITIES[at]),
                prereqs(),
                history(level),
                hold(CAPACITIES[at]),
                prop::option::weighted(
                    0.3,
                    (-90i64..30, prop_oneof![Just(CAPACITIES[at]), tier()]),
                ),
                prop_oneof![3 => Just(0u32), 1 => 0u32..=200],
            )
        })
        .prop_map(
            |(demand, (hpas, unreadable), prereqs, history, hold, window, headroom)| World {
                demand,
                hpas,
                unreadable,
                prereqs,
                history,
                hold,
                window,
                headroom,
            },
        )
}

/// Users mostly below the current tier's capacity (a scale-down wants
/// them), else anywhere.
fn checks() -> impl Strategy<Value = World> {
    world_with(|at: u32| {
        prop_oneof![1 => 0..at, 1 => users()]
            .prop_map(|u| Demand::Users(Ok(u)))
            .boxed()
    })
}

fn upgrades() -> impl Strategy<Value = World> {
    world_with(|_| {
        (tier(), any::<bool>())
            .prop_map(|(capacity, force)| Demand::Upgrade {
                capacity,
                force,
                hold: None,
            })
            .boxed()
    })
}

// --- the coverage rule, from the SPEC ---------------------------------------

/// SPEC §4 and §11: the records reach back a whole window, every run in it
/// needed less than `current`, every check in it read users, and no two
/// successive readings — from the last one at or before the window's start,
/// through the window, to now — are more than 2 × check_time apart.
fn coverage_holds(history: Option<&[RunRecord]>, current: u32) -> bool {
    let Some(history) = history else {
        return false;
    };
    let start = ago(SCALE_DOWN_MINS);
    let in_window = |r: &RunRecord| start <= r.started_at && r.started_at <= now();
    let reaches_back = history.iter().any(|r| r.started_at <= start);
    let all_lower = history
        .iter()
        .filter(|r| in_window(r))
        .all(|r| r.needed_capacity.is_none_or(|n| n < current));
    let read = |r: &RunRecord| r.users.is_some() && r.needed_capacity.is_some();
    let checks: Vec<&RunRecord> = history
        .iter()
        .filter(|r| r.command == CommandKind::Check)
        .collect();
    let all_read = checks.iter().filter(|r| in_window(r)).all(|r| read(r));
    let mut readings: Vec<Timestamp> = checks
        .iter()
        .filter(|r| read(r) && r.started_at <= now())
        .map(|r| r.started_at)
        .collect();
    readings.sort();
    let Some(first) = readings.iter().rposition(|t| *t <= start) else {
        return false;
    };
    let mut points = readings[first..].to_vec();
    points.push(now());
    let no_gap = points
        .windows(2)
        .all(|p| p[1].duration_since(p[0]) <= MAX_GAP);
    reaches_back && all_lower && all_read && no_gap
}

fn current(d: &Decision) -> Option<u32> {
    d.current.map(|c| c.capacity)
}

// --- the properties ---------------------------------------------------------

proptest! {
    // A failure prints its minimal case; there is no lib.rs beside this
    // file for proptest to keep regressions next to.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// §4 metric failure: never scale on missing data — no change at all.
    #[test]
    fn a_failed_reading_changes_nothing(w in checks(), why in "\\PC{0,20}") {
        let w = World { demand: Demand::Users(Err(why)), ..w };
        let d = w.decide();
        prop_assert!(matches!(d.verdict, Verdict::Failed(_)), "{:?}", d.verdict);
        prop_assert!(d.changes.is_empty(), "{:?}", d.changes);
        prop_assert_eq!(d.target(), current(&d));
        prop_assert_eq!(d.outcome(), Outcome::Error);
    }

    /// The tier after a run is always one of the table's, and every patch
    /// names it and keeps minReplicas at least 1 and maxReplicas at least min.
    #[test]
    fn the_target_is_always_a_tier_of_the_table(w in prop_oneof![checks(), upgrades()]) {
        let d = w.decide();
        if let Some(t) = d.target() {
            prop_assert!(CAPACITIES.contains(&t), "target {t}");
        }
        for c in &d.changes {
            prop_assert_eq!(Some(c.capacity), d.target());
            prop_assert!(c.to_min >= 1 && c.to_max >= c.to_min, "{:?}", c);
        }
        if matches!(d.verdict, Verdict::Failed(_) | Verdict::Refused(_)) {
            prop_assert!(d.changes.is_empty());
        }
    }

    /// §4, §9: nothing steps below an active hold or schedule window.
    #[test]
    fn nothing_steps_below_an_active_hold_or_window(w in checks()) {
        let d = w.decide();
        let (Some(current), Some(target)) = (current(&d), d.target()) else { return Ok(()) };
        for floor in w.active_floors() {
            prop_assert!(
                target >= floor.min(current),
                "target {target}, current {current}, floor {floor}: {:?}", d.verdict
            );
        }
    }

    /// §4: a higher need never yields a lower tier, all else equal.
    #[test]
    fn more_users_never_mean_a_lower_tier(w in checks(), a in users(), b in users()) {
        let (low, high) = (a.min(b), a.max(b));
        let (dl, dh) = (w.with_users(low).decide(), w.with_users(high).decide());
        prop_assert!(
            dl.target() <= dh.target(),
            "{low} users → {:?} ({:?}), {high} users → {:?} ({:?})",
            dl.target(), dl.verdict, dh.target(), dh.verdict
        );
    }

    /// §4, §11: a scale-down only when the records cover the window with
    /// successful readings that all needed less, to no tier below what any
    /// run in the window needed; and when they do (and nothing else holds
    /// the tier), the scale-down happens.
    #[test]
    fn a_scale_down_only_and_always_when_the_window_is_covered(w in checks()) {
        let d = w.decide();
        let (Some(current), Some(target), Some(need)) = (current(&d), d.target(), &d.need)
        else { return Ok(()) };
        let history = w.history.as_deref();
        let covered = coverage_holds(history, current);
        if target < current {
            prop_assert!(covered, "scaled {current} → {target} without coverage: {:?}", d.verdict);
            let in_window = history.unwrap().iter()
                .filter(|r| r.started_at >= ago(SCALE_DOWN_MINS) && r.started_at <= now());
            for r in in_window {
                prop_assert!(r.needed_capacity.is_none_or(|n| n <= target), "{r:?} → {target}");
            }
        }
        let floors_below = w.active_floors().iter().all(|f| *f < current);
        let table_needs = history.into_iter().flatten()
            .all(|r| r.needed_capacity.is_none_or(|n| CAPACITIES.contains(&n)));
        let metric = need.floors[0].capacity;
        if covered && floors_below && table_needs && metric < current {
            prop_assert!(target < current, "covered, needs {metric}, kept {current}: {:?}", d.verdict);
        }
    }

    /// §4: a scale-up goes only as far as the prerequisites allow, never
    /// past the need, and not at all when they cannot be read.
    #[test]
    fn a_check_scales_up_only_to_an_allowed_tier(w in checks()) {
        let d = w.decide();
        let (Some(current), Some(target)) = (current(&d), d.target()) else { return Ok(()) };
        if target > current {
            prop_assert!(w.allowed(target), "{current} → {target} not allowed: {:?}", w.prereqs);
            prop_assert!(target <= d.need.as_ref().unwrap().capacity);
        }
        if w.prereqs.is_err() {
            prop_assert!(target <= current);
        }
    }

    /// §2: `upgrade` to a higher tier needs its prerequisites unless
    /// --force; to a lower (or the same) tier it needs none.
    #[test]
    fn an_upgrade_needs_prerequisites_only_going_up_without_force(w in upgrades()) {
        let d = w.decide();
        let Some(current) = current(&d) else { return Ok(()) };
        let Demand::Upgrade { capacity, force, .. } = w.demand else { unreachable!() };
        if capacity <= current || force {
            prop_assert_eq!(d.target(), Some(capacity), "{:?}", d.verdict);
            prop_assert!(matches!(d.verdict, Verdict::Move { .. }), "{:?}", d.verdict);
        } else if w.allowed(capacity) {
            prop_assert_eq!(d.target(), Some(capacity));
        } else {
            prop_assert_eq!(d.target(), Some(current), "{:?}", d.verdict);
            prop_assert!(d.changes.is_empty());
        }
    }

    /// No input makes `decide` panic: counts at u32::MAX, instants at the
    /// ends of time, a headroom far past the config's bound.
    #[test]
    fn decide_never_panics_on_extreme_values(
        w in prop_oneof![checks(), upgrades()],
        extreme in prop::collection::vec(any::<bool>(), 6),
    ) {
        let mut w = w;
        if extreme[0] { w.demand = Demand::Users(Ok(u32::MAX)); }
        if extreme[1] { w.headroom = u32::MAX; }
        if extreme[2] {
            for h in &mut w.hpas { h.min = u32::MAX; h.max = u32::MAX; h.current_replicas = Some(u32::MAX); }
        }
        if extreme[3] {
            w.hold = Some(Hold { capacity: 5000, until: Timestamp::MAX, set_at: Timestamp::MIN });
        }
        if let (true, Some(h)) = (extreme[4], w.history.as_mut()) {
            for (i, r) in h.iter_mut().enumerate() {
                r.started_at = if i % 2 == 0 { Timestamp::MIN } else { Timestamp::MAX };
                r.needed_capacity = r.needed_capacity.map(|_| u32::MAX);
            }
        }
        if extreme[5] { w.window = Some((0, 5000)); }
        let d = w.decide();
        if let Some(t) = d.target() {
            prop_assert!(CAPACITIES.contains(&t));
        }
        let _ = (d.message(), d.notices(), d.outcome(), d.errors());
    }
}
