//! The decision (README, "How it decides"), as a pure function: what was
//! asked (users read, or an `upgrade`), the floors in force, the HPAs as
//! found, what the prerequisites allow and the run history go in, with
//! `now`; a [`Decision`] comes out. Everything a run reports — its outcome,
//! notices, message, the tier after it — is derived from the decision's
//! [`Verdict`] by matching, here and in `conclude`, and nowhere else.
//!
//! The tier the run wants is the highest of a list of [`Floor`]s, each with
//! its reason: the metric need, an `upgrade --hold`, a schedule window, the
//! forecast. A floor above the current tier is a scale-up and is gated by
//! the prerequisites like any other; nothing steps below an active floor.
//!
//! `--dry-run` prints the same decision the real run would apply.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::forecast::{self, Forecast};
use crate::hpa::{self, Hpa, HpaPatch, HpaRef, Intent};
use crate::notice::{Notice, Preflight};
use crate::policy::{ForecastMode, Policy};
use crate::prereq::{Allowance, Shortfall};
use crate::record::{CommandKind, Hold, Outcome, RunRecord};
use crate::schedule::Occurrence;
use crate::tiers::{Replicas, Tier, TierTable};

/// What the run was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Demand {
    /// `check`: the metric read, or why it failed.
    Users(Result<u32, String>),
    /// `upgrade CAPACITY [--force] [--hold D]` (the capacity is a tier of the table).
    Upgrade {
        capacity: u32,
        force: bool,
        hold: Option<SignedDuration>,
    },
}

impl Demand {
    pub fn command(&self) -> CommandKind {
        match self {
            Demand::Users(_) => CommandKind::Check,
            Demand::Upgrade { .. } => CommandKind::Upgrade,
        }
    }
}

/// Why a tier is wanted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum FloorReason {
    /// The users read now, with the headroom.
    Metric,
    /// `upgrade CAPACITY`: the operator's tier, exactly.
    Upgrade,
    /// An `upgrade --hold` in force until `until`.
    Hold { until: Timestamp },
    /// A schedule window, raised from `lead` before its start until its end.
    Schedule {
        name: String,
        start: Timestamp,
        until: Timestamp,
    },
    /// The forecast (`forecast.mode: scale`): the users expected at `peak_at`.
    Forecast { peak_users: u32, peak_at: Timestamp },
}

impl FloorReason {
    /// One word for messages and metrics: `metric`, `upgrade`, `hold`, …
    pub fn name(&self) -> &'static str {
        match self {
            FloorReason::Metric => "metric",
            FloorReason::Upgrade => "upgrade",
            FloorReason::Hold { .. } => "hold",
            FloorReason::Schedule { .. } => "schedule",
            FloorReason::Forecast { .. } => "forecast",
        }
    }
}

/// A tier the run must not go below, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Floor {
    pub capacity: u32,
    #[serde(flatten)]
    pub reason: FloorReason,
}

impl Floor {
    /// The floor of an `upgrade --hold` that is still in force at `now`.
    pub fn of_hold(hold: Option<Hold>, now: Timestamp) -> Option<Floor> {
        hold.filter(|h| h.until > now).map(|h| Floor {
            capacity: h.capacity,
            reason: FloorReason::Hold { until: h.until },
        })
    }

    /// The floor of the schedule window active at `now`, if any.
    pub fn of_window(window: &Occurrence) -> Floor {
        Floor {
            capacity: window.capacity,
            reason: FloorReason::Schedule {
                name: window.name.clone(),
                start: window.start,
                until: window.end,
            },
        }
    }

    /// The floor of a forecast that predicted something.
    pub fn of_forecast(f: &Forecast) -> Option<Floor> {
        f.prediction().map(|p| Floor {
            capacity: p.floor,
            reason: FloorReason::Forecast {
                peak_users: p.peak_users,
                peak_at: p.peak_at,
            },
        })
    }
}

/// Every floor besides the metric need in force at `now`: an active hold,
/// the highest active schedule window, and the forecast when it may act.
pub fn floors(
    policy: &Policy,
    now: Timestamp,
    hold: Option<Hold>,
    fc: Option<&Forecast>,
) -> Vec<Floor> {
    let mut floors: Vec<Floor> = Floor::of_hold(hold, now).into_iter().collect();
    floors.extend(policy.schedules.active(now).as_ref().map(Floor::of_window));
    if policy.forecast.mode == ForecastMode::Scale {
        floors.extend(fc.and_then(Floor::of_forecast));
    }
    floors
}

/// The tier the run wants: the highest of its floors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Need {
    pub capacity: u32,
    /// The users exceed the top tier; `capacity` is at most the top tier.
    pub above_top: bool,
    /// Every floor considered, the metric first.
    pub floors: Vec<Floor>,
    /// The reason of the floor that decided (the first of the highest).
    pub decided_by: FloorReason,
}

/// Everything the decision depends on.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub now: Timestamp,
    pub demand: Demand,
    /// The hold of the newest `upgrade` that took effect (see `record::active_hold`).
    pub hold: Option<Hold>,
    /// Users of past successful readings, oldest first, for the forecast
    /// (`Policy::samples_span` of them; empty when the forecast is off).
    pub samples: &'a [(Timestamp, u32)],
    pub policy: &'a Policy,
    /// Managed HPAs that could be read.
    pub hpas: &'a [Hpa],
    /// Managed HPAs that could not be read, and why.
    pub unreadable: &'a [(HpaRef, String)],
    /// Per tier, what is missing; `Err` when AWS could not be read.
    pub prereqs: &'a Result<Allowance, String>,
    /// Past runs (see `RunStore::history`); `None` when the store is unreachable.
    pub history: Option<&'a [RunRecord]>,
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
    #[serde(skip)]
    pub intent: Intent,
    #[serde(skip)]
    pub tier: Replicas,
}

impl Change {
    /// The merge patch: max only when it changes.
    pub fn patch(&self) -> HpaPatch {
        HpaPatch {
            id: self.hpa.clone(),
            min: self.to_min,
            max: (self.to_max != self.from_max).then_some(self.to_max),
            capacity: self.capacity,
            intent: self.intent,
            tier: self.tier,
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

/// Why a lower need did not lower the tier.
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
    /// A schedule window is active.
    Schedule {
        name: String,
        capacity: u32,
        until: Timestamp,
    },
    /// The forecast expects this tier soon (`forecast.mode: scale`).
    Forecast { capacity: u32, peak_at: Timestamp },
    /// Coverage: the reading of a run inside the window failed, so the
    /// window is not known to have needed less.
    #[serde(rename = "coverage")]
    FailedReading { at: Timestamp },
    /// Coverage: no successful reading between these instants, longer than
    /// twice `check_time`.
    #[serde(rename = "coverage")]
    Gap { from: Timestamp, until: Timestamp },
}

/// Something that stopped the run from deciding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What failed: `metric source`, `Kubernetes`, `AWS prerequisites`.
    pub what: String,
    pub message: String,
}

/// What the decision is, before anything is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The run cannot decide: nothing is changed.
    Failed(Failure),
    /// A scale-up is wanted but the prerequisites could not be read: the
    /// tier stays (HPAs below it are still raised), the run is an error.
    Unverified { wanted: u32, error: String },
    /// To a new tier, entirely. For `upgrade` also to the current tier, to
    /// reset every HPA to its exact values.
    Move { to: u32 },
    /// A scale-up stopped by the prerequisites at `to` (the current tier
    /// when no step up was allowed).
    Reached { to: u32, blocked: Blocked },
    /// `upgrade` to a tier whose prerequisites are not met: nothing changes.
    Refused(Blocked),
    /// The need was lower, but the tier is kept.
    Held(HeldBy),
    /// The need fits the current tier (HPAs below it are raised).
    Stay,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub command: CommandKind,
    /// The metric read, when it succeeded.
    pub users: Option<u32>,
    /// `None` when the reference HPA could not be read.
    pub current: Option<Current>,
    /// `None` when the run could not tell what it needs (metric failure, unknown tier).
    pub need: Option<Need>,
    pub verdict: Verdict,
    /// The patches to make; empty when nothing must change.
    pub changes: Vec<Change>,
    pub above: Vec<Above>,
    /// Managed HPAs that could not be read (`ns/name: why`): not moved this run.
    pub unreadable: Vec<String>,
    /// `upgrade --hold`: how long the tier is held once the upgrade takes effect.
    pub hold: Option<SignedDuration>,
    /// `upgrade --force`: the prerequisites were not consulted.
    pub force: bool,
    /// The scale-down window the decision used (for its messages).
    pub scale_down: SignedDuration,
    /// The forecast, when `forecast.mode` is not `off` (advise: only reported).
    pub forecast: Option<Forecast>,
    /// Schedule windows starting within `preflight_hours` whose tier the
    /// prerequisites read now do not allow.
    pub preflight: Vec<Preflight>,
    /// What a person should know that changes nothing by itself (a tier's
    /// max kept at the running replicas, a patched HPA that a GitOps tool
    /// will revert).
    pub warnings: Vec<String>,
}

/// The current tier from the reference HPA (README, "How it decides": current tier).
pub fn current_tier(tiers: &TierTable, reference: &Hpa) -> Current {
    let agrees = |t: &&Tier| tiers.reference_min(t) == reference.min;
    let annotated = reference
        .capacity_annotation
        .as_deref()
        .and_then(|a| a.trim().parse::<u32>().ok())
        .and_then(|c| tiers.get(c))
        .filter(agrees);
    if let Some(tier) = annotated {
        return Current {
            capacity: tier.capacity,
            determined: Determined::Annotation,
        };
    }
    if let Some(tier) = tiers.tiers().iter().find(agrees) {
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

/// Decides. See the module docs.
pub fn decide(inp: &Inputs) -> Decision {
    let mut d = undecided(inp);
    let reference = inp.policy.reference();
    let Some(found) = inp.hpas.iter().find(|h| h.id == *reference) else {
        let why = inp
            .unreadable
            .iter()
            .find(|(r, _)| r == reference)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| "not among the HPAs read".into());
        d.verdict = Verdict::Failed(Failure {
            what: "Kubernetes".into(),
            message: format!(
                "cannot read the reference HPA {reference} to tell the current tier: {why}"
            ),
        });
        return d;
    };
    let current = current_tier(&inp.policy.tiers, found);
    d.current = Some(current);
    d.preflight = preflight(inp);
    let need = match &inp.demand {
        // Never scale on missing data.
        Demand::Users(Err(e)) => {
            d.verdict = Verdict::Failed(Failure {
                what: "metric source".into(),
                message: e.clone(),
            });
            return d;
        }
        Demand::Users(Ok(u)) => {
            d.forecast = forecast_of(inp, *u);
            let extra = floors(inp.policy, inp.now, inp.hold, d.forecast.as_ref());
            need_of(*u, &extra, inp.policy)
        }
        Demand::Upgrade { capacity, .. } => Need {
            capacity: *capacity,
            above_top: false,
            floors: vec![Floor {
                capacity: *capacity,
                reason: FloorReason::Upgrade,
            }],
            decided_by: FloorReason::Upgrade,
        },
    };
    d.verdict = match inp.demand {
        Demand::Upgrade { force, .. } => upgrade(inp, current.capacity, need.capacity, force),
        Demand::Users(_) => verdict(inp, current.capacity, &need),
    };
    d.need = Some(need);
    if !matches!(d.verdict, Verdict::Failed(_) | Verdict::Refused(_)) {
        let target = d.target().unwrap_or(current.capacity);
        let tiers = &inp.policy.tiers;
        let tier = tiers.get(target).unwrap_or(tiers.floor());
        let intent = if target != current.capacity || d.command == CommandKind::Upgrade {
            Intent::Exact
        } else {
            Intent::RaiseOnly
        };
        (d.changes, d.above, d.warnings) = changes(tier, inp.hpas, intent);
    }
    d
}

/// The decision before anything is known: what was asked, nothing decided.
fn undecided(inp: &Inputs) -> Decision {
    Decision {
        command: inp.demand.command(),
        users: match &inp.demand {
            Demand::Users(Ok(u)) => Some(*u),
            _ => None,
        },
        current: None,
        need: None,
        verdict: Verdict::Stay,
        changes: vec![],
        above: vec![],
        unreadable: inp
            .unreadable
            .iter()
            .map(|(r, e)| format!("{r}: {e}"))
            .collect(),
        hold: match inp.demand {
            Demand::Upgrade { hold, .. } => hold,
            Demand::Users(_) => None,
        },
        force: matches!(inp.demand, Demand::Upgrade { force: true, .. }),
        scale_down: inp.policy.scale_down,
        forecast: None,
        preflight: vec![],
        warnings: vec![],
    }
}

/// The forecast of this run, unless it is off.
fn forecast_of(inp: &Inputs, users: u32) -> Option<Forecast> {
    let p = inp.policy;
    (p.forecast.mode != ForecastMode::Off).then(|| {
        let (s, tiers) = (&p.forecast.settings, &p.tiers);
        forecast::forecast(
            inp.samples,
            inp.now,
            Some(users),
            s,
            p.check_interval,
            tiers,
        )
    })
}

/// The metric floor and the others; the need is the highest.
fn need_of(users: u32, extra: &[Floor], policy: &Policy) -> Need {
    let metric = policy.tiers.needed(users, policy.headroom_percent);
    let mut floors = vec![Floor {
        capacity: metric.capacity,
        reason: FloorReason::Metric,
    }];
    floors.extend(extra.iter().cloned());
    // The first of the highest decides: the metric wins a tie, so a floor is
    // only named when it really raised the tier.
    let decided = floors.iter().fold(&floors[0], |best, f| {
        if f.capacity > best.capacity { f } else { best }
    });
    Need {
        capacity: decided.capacity,
        above_top: metric.above_top,
        decided_by: decided.reason.clone(),
        floors: floors.clone(),
    }
}

fn upgrade(inp: &Inputs, current: u32, capacity: u32, force: bool) -> Verdict {
    if capacity <= current || force {
        return Verdict::Move { to: capacity };
    }
    match inp.prereqs {
        Err(e) => Verdict::Failed(Failure {
            what: "AWS prerequisites".into(),
            message: format!(
                "cannot verify the prerequisites of tier {capacity}: {e}; \
                 fix access or rerun with --force to upgrade without them"
            ),
        }),
        Ok(allow) => match allow.get(&capacity).filter(|m| !m.is_empty()) {
            Some(missing) => Verdict::Refused(Blocked {
                wanted: capacity,
                reached: current,
                shortfalls: missing.clone(),
            }),
            None => Verdict::Move { to: capacity },
        },
    }
}

/// `check`: up as far as the prerequisites allow, down only when nothing holds.
fn verdict(inp: &Inputs, current: u32, need: &Need) -> Verdict {
    let wants = need.capacity;
    if wants > current {
        return scale_up(inp, current, wants);
    }
    // The users alone decide whether demand is lower; a floor that keeps
    // the tier then makes the run `held` by it.
    let metric = need
        .floors
        .iter()
        .find(|f| f.reason == FloorReason::Metric)
        .map_or(wants, |f| f.capacity);
    if metric >= current {
        return Verdict::Stay;
    }
    if let Some(by) = need
        .floors
        .iter()
        .filter(|f| f.capacity >= current)
        .find_map(held_by_floor)
    {
        return Verdict::Held(by);
    }
    match scale_down(inp, current, wants).map(|to| released(inp, need, current, to)) {
        Ok((to, _)) if to < current => Verdict::Move { to },
        Ok((_, Some(by))) => Verdict::Held(by),
        Ok(_) => Verdict::Stay,
        Err(by) => Verdict::Held(by),
    }
}

/// A step down to `to`, but not below the forecast's release tier (see
/// `forecast::release_tier`); the hold when that keeps `current`.
fn released(inp: &Inputs, need: &Need, current: u32, to: u32) -> (u32, Option<HeldBy>) {
    let forecast = need.floors.iter().find_map(|f| match f.reason {
        FloorReason::Forecast {
            peak_users,
            peak_at,
        } => Some((peak_users, peak_at)),
        _ => None,
    });
    let Some((peak_users, peak_at)) = forecast else {
        return (to, None);
    };
    let margin = inp.policy.forecast.settings.margin_percent;
    let release = forecast::release_tier(peak_users, margin, &inp.policy.tiers);
    if release <= to {
        return (to, None);
    }
    let held = HeldBy::Forecast {
        capacity: release.min(current),
        peak_at,
    };
    (release, Some(held))
}

fn held_by_floor(f: &Floor) -> Option<HeldBy> {
    let capacity = f.capacity;
    match &f.reason {
        FloorReason::Hold { until } => Some(HeldBy::Hold {
            capacity,
            until: *until,
        }),
        FloorReason::Schedule { name, until, .. } => Some(HeldBy::Schedule {
            name: name.clone(),
            capacity,
            until: *until,
        }),
        FloorReason::Forecast { peak_at, .. } => Some(HeldBy::Forecast {
            capacity,
            peak_at: *peak_at,
        }),
        FloorReason::Metric | FloorReason::Upgrade => None,
    }
}

/// Windows due within `preflight_hours` whose tier is not allowed now.
/// Unreadable prerequisites say nothing here: the run's own error notice
/// already tells that AWS could not be read.
fn preflight(inp: &Inputs) -> Vec<Preflight> {
    let Ok(allow) = inp.prereqs else {
        return vec![];
    };
    inp.policy
        .schedules
        .preflight_due(inp.now)
        .into_iter()
        .filter_map(|o| {
            let missing = allow.get(&o.capacity).filter(|m| !m.is_empty())?;
            Some(Preflight::of(&o, missing.clone()))
        })
        .collect()
}

fn scale_up(inp: &Inputs, current: u32, wants: u32) -> Verdict {
    let allow = match inp.prereqs {
        Err(e) => {
            return Verdict::Unverified {
                wanted: wants,
                error: e.clone(),
            };
        }
        Ok(allow) => allow,
    };
    let ok = |c: &u32| allow.get(c).is_none_or(Vec::is_empty);
    let reached = inp
        .policy
        .tiers
        .capacities()
        .into_iter()
        .filter(|c| *c > current && *c <= wants)
        .filter(ok)
        .max()
        .unwrap_or(current);
    if reached == wants {
        return Verdict::Move { to: wants };
    }
    Verdict::Reached {
        to: reached,
        blocked: Blocked {
            wanted: wants,
            reached,
            shortfalls: allow.get(&wants).cloned().unwrap_or_default(),
        },
    }
}

/// The HPA controller's stabilization-window rule, applied to tiers: step
/// down only when the records cover the whole window with successful
/// readings and every run in it needed less than `current`; go to the
/// highest tier needed in the window.
fn scale_down(inp: &Inputs, current: u32, wants: u32) -> Result<u32, HeldBy> {
    let history = inp.history.ok_or(HeldBy::NoHistory)?;
    let window_start = inp.now - inp.policy.scale_down;
    if !history.iter().any(|r| r.started_at <= window_start) {
        return Err(HeldBy::ShortHistory {
            since: history.iter().map(|r| r.started_at).min(),
        });
    }
    let in_window: Vec<&RunRecord> = history
        .iter()
        .filter(|r| r.started_at >= window_start && r.started_at <= inp.now)
        .collect();
    let mut highest = wants;
    for r in &in_window {
        if let Some(needed) = r.needed_capacity {
            if needed >= current {
                return Err(HeldBy::Window {
                    needed,
                    at: r.started_at,
                });
            }
            highest = highest.max(needed);
        }
    }
    covered(history, window_start, inp.now, inp.policy.check_interval)?;
    // A record may name a capacity the table no longer has; step to the
    // smallest tier that holds it.
    Ok(inp
        .policy
        .tiers
        .capacities()
        .into_iter()
        .find(|c| *c >= highest)
        .unwrap_or(current)
        .min(current))
}

/// The coverage rule: a scale-down needs evidence for the whole window. A
/// run that read no users there (a metric outage, an unreadable reference
/// HPA) is not evidence of a lower need, and neither is silence: no two
/// consecutive successful readings — from the last one at or before the
/// window's start, through the window, to now — may lie more than twice
/// `check_time` apart. A run that read users but failed later (AWS
/// unreadable, a patch failed) still counts: its reading was good.
fn covered(
    history: &[RunRecord],
    window_start: Timestamp,
    now: Timestamp,
    check_interval: SignedDuration,
) -> Result<(), HeldBy> {
    // An `upgrade` reads no users; it is the operator's word, not a reading.
    let checks = history
        .iter()
        .filter(|r| r.command == CommandKind::Check && r.started_at <= now);
    if let Some(r) = checks
        .clone()
        .find(|r| r.started_at >= window_start && !read_users(r))
    {
        return Err(HeldBy::FailedReading { at: r.started_at });
    }
    let mut readings: Vec<Timestamp> = checks
        .filter(|r| read_users(r))
        .map(|r| r.started_at)
        .collect();
    readings.sort();
    let first = readings.partition_point(|t| *t <= window_start);
    let Some(start) = first.checked_sub(1).map(|i| readings[i]) else {
        return Err(HeldBy::Gap {
            from: window_start,
            until: readings.first().copied().unwrap_or(now),
        });
    };
    let max_gap = check_interval * 2;
    let mut previous = start;
    for at in readings[first..].iter().copied().chain([now]) {
        if at.duration_since(previous) > max_gap {
            return Err(HeldBy::Gap {
                from: previous,
                until: at,
            });
        }
        previous = at;
    }
    Ok(())
}

/// Whether a past `check` read the users and told what they needed.
fn read_users(r: &RunRecord) -> bool {
    r.users.is_some() && r.needed_capacity.is_some()
}

/// The patches that bring every HPA to `tier` under `intent`, the HPAs
/// left above it (raise-only), and why a max had to be kept higher.
fn changes(tier: &Tier, hpas: &[Hpa], intent: Intent) -> (Vec<Change>, Vec<Above>, Vec<String>) {
    let capacity = tier.capacity.to_string();
    let (mut changes, mut above, mut warnings) = (vec![], vec![], vec![]);
    for h in hpas {
        // A validated policy names every managed service in every tier; an
        // HPA outside the table is left exactly as it is.
        let Some(r) = tier.replicas_of(&h.id.service) else {
            continue;
        };
        let (min, max, why) = hpa::target(r, h, intent);
        let annotated = h.capacity_annotation.as_deref() == Some(capacity.as_str());
        let differs = h.min != min || h.max != max;
        if differs || (intent == Intent::Exact && !annotated) {
            changes.push(Change {
                hpa: h.id.clone(),
                from_min: h.min,
                from_max: h.max,
                to_min: min,
                to_max: max,
                capacity: tier.capacity,
                intent,
                tier: r,
            });
            warnings.extend(why);
            warnings.extend(h.managed_by.as_ref().map(|g| g.warning(&h.id)));
        } else if intent == Intent::RaiseOnly && h.min > r.min {
            above.push(Above {
                hpa: h.id.clone(),
                min: h.min,
                tier_min: r.min,
            });
        }
    }
    (changes, above, warnings)
}

/// What a [`Failure`] names when another run holds the lock and nobody
/// has recorded a run for too long.
pub const RUN_LOCK: &str = "run lock";

/// A `check` found the run lock taken. That is another run at work — unless
/// nothing has been recorded for 3 × `check_time`: then the holder is stuck
/// and nobody is acting, which is an alarm (the message). Records of earlier
/// alarms do not count as someone acting; unreadable history counts as
/// stale, since nobody can be shown to be acting. A cluster with no record
/// at all is a first run racing another first run, not an alarm.
pub fn lock_stuck(
    history: Option<&[RunRecord]>,
    now: Timestamp,
    check_interval: SignedDuration,
) -> Option<String> {
    let limit = check_interval * 3;
    if history.is_some_and(|h| h.is_empty()) {
        return None;
    }
    let alarm = |r: &&RunRecord| r.detail.get("lock_stuck") == Some(&serde_json::Value::Bool(true));
    let newest = history.and_then(|h| {
        // Only earlier alarms: the lock has been stuck at least since the first.
        let acting = h.iter().filter(|r| !alarm(r)).map(|r| r.started_at).max();
        acting.or_else(|| h.iter().filter(alarm).map(|r| r.started_at).min())
    });
    let age = newest.map(|t| now.duration_since(t));
    if age.is_some_and(|a| a < limit) {
        return None;
    }
    Some(match (newest, age) {
        (Some(t), Some(a)) => format!(
            "another run holds the lock, but the newest run record is {} minutes old ({}), \
             more than 3 × check_time ({} min): the lock holder is stuck and nobody is acting",
            a.as_mins(),
            t.strftime("%Y-%m-%d %H:%M UTC"),
            limit.as_mins()
        ),
        _ => "another run holds the lock, and no run record can be read to show anyone is \
              acting"
            .to_string(),
    })
}

impl Decision {
    /// A `check` that found the lock held by a stuck run (see [`lock_stuck`]).
    pub fn locked_out(message: String, policy: &Policy) -> Decision {
        let failure = Failure {
            what: RUN_LOCK.into(),
            message,
        };
        Decision::failed(CommandKind::Check, failure, policy)
    }

    /// A run stopped before it could decide (its deadline, a signal):
    /// nothing was changed, and the record says why.
    pub fn stopped(command: CommandKind, why: &str, policy: &Policy) -> Decision {
        let failure = Failure {
            what: "the run".into(),
            message: format!("stopped before it could decide: {why}"),
        };
        Decision::failed(command, failure, policy)
    }

    /// A decision that is only its failure: nothing was read or decided.
    fn failed(command: CommandKind, failure: Failure, policy: &Policy) -> Decision {
        Decision {
            command,
            users: None,
            current: None,
            need: None,
            verdict: Verdict::Failed(failure),
            changes: vec![],
            above: vec![],
            unreadable: vec![],
            hold: None,
            force: false,
            scale_down: policy.scale_down,
            forecast: None,
            preflight: vec![],
            warnings: vec![],
        }
    }

    /// The tier after this run if every patch succeeds.
    pub fn target(&self) -> Option<u32> {
        let current = self.current.map(|c| c.capacity);
        match &self.verdict {
            Verdict::Move { to } | Verdict::Reached { to, .. } => Some(*to),
            _ => current,
        }
    }

    /// Whether the tier itself changes (not only HPAs brought back to it).
    pub fn tier_changes(&self) -> bool {
        matches!((self.current, self.target()), (Some(c), Some(t)) if c.capacity != t)
    }

    /// The scale-up the prerequisites stopped, if any.
    pub fn blocked(&self) -> Option<&Blocked> {
        match &self.verdict {
            Verdict::Reached { blocked, .. } | Verdict::Refused(blocked) => Some(blocked),
            _ => None,
        }
    }

    pub fn held_by(&self) -> Option<&HeldBy> {
        match &self.verdict {
            Verdict::Held(by) => Some(by),
            _ => None,
        }
    }

    /// `upgrade` refused: prerequisites not met (exit 3).
    pub fn refused(&self) -> bool {
        matches!(self.verdict, Verdict::Refused(_))
    }

    /// The outcome if every patch succeeds.
    pub fn outcome(&self) -> Outcome {
        match &self.verdict {
            Verdict::Failed(_) | Verdict::Unverified { .. } => Outcome::Error,
            Verdict::Move { .. } if self.tier_changes() || !self.changes.is_empty() => {
                Outcome::Applied
            }
            Verdict::Reached { to, .. } if Some(*to) != self.current.map(|c| c.capacity) => {
                Outcome::Applied
            }
            Verdict::Reached { .. } | Verdict::Refused(_) => Outcome::Blocked,
            Verdict::Held(_) => Outcome::Held,
            Verdict::Move { .. } | Verdict::Stay if !self.changes.is_empty() => Outcome::Applied,
            Verdict::Move { .. } | Verdict::Stay => Outcome::Noop,
        }
    }

    /// What went wrong while deciding (the unreadable HPAs, a failed
    /// verification), for the report and the record.
    pub fn errors(&self) -> Vec<String> {
        let mut errors = self.unreadable.clone();
        match &self.verdict {
            Verdict::Failed(f) => errors = vec![f.message.clone()],
            Verdict::Unverified { wanted, error } => errors.push(format!(
                "cannot verify the prerequisites of tier {wanted}: {error}"
            )),
            _ => {}
        }
        errors
    }

    /// Notices decided before applying: above the top tier, blocked, errors.
    pub fn notices(&self) -> Vec<Notice> {
        let mut notices = vec![];
        if let (Some(need), Some(users)) = (&self.need, self.users)
            && need.above_top
        {
            notices.push(Notice::AboveTop {
                users,
                top: need.capacity,
            });
        }
        match &self.verdict {
            Verdict::Failed(f) => notices.push(Notice::Error {
                what: f.what.clone(),
                message: f.message.clone(),
            }),
            Verdict::Unverified { wanted, error } => notices.push(Notice::Error {
                what: "AWS prerequisites".into(),
                message: format!(
                    "{error}; not scaling up to tier {wanted} until they can be verified"
                ),
            }),
            Verdict::Reached { blocked: b, .. } | Verdict::Refused(b) => {
                notices.push(Notice::Blocked {
                    current: self.current.map(|c| c.capacity).unwrap_or(b.reached),
                    wanted: b.wanted,
                    reached: b.reached,
                    users: self.users,
                    shortfalls: vec![(b.wanted, b.shortfalls.clone())],
                })
            }
            _ => {}
        }
        notices.extend(self.preflight.iter().cloned().map(Notice::Preflight));
        notices
    }

    /// The one-line summary of the decision (`conclude` adds how applying went).
    pub fn message(&self) -> String {
        let Some(current) = self.current.map(|c| c.capacity) else {
            return self.failed_message();
        };
        let who = self.who();
        let mut msg = match &self.verdict {
            Verdict::Failed(_) => return self.failed_message(),
            Verdict::Refused(b) => format!("{who} refused: {}", shortfalls(b)),
            Verdict::Reached { blocked: b, .. } if b.reached > current => format!(
                "{who}: scaled {current} → {} (as far as prerequisites allow); blocked: {}",
                b.reached,
                shortfalls(b)
            ),
            Verdict::Reached { blocked: b, .. } => {
                format!("{who}: blocked at {current}: {}", shortfalls(b))
            }
            Verdict::Move { to } if *to != current => {
                let dir = if *to > current { "up" } else { "down" };
                format!("{who}: scaled {dir} {current} → {to}")
            }
            Verdict::Held(by) => format!(
                "{who}: held at {current}: {}",
                held_why(by, self.scale_down)
            ),
            _ if !self.changes.is_empty() => format!(
                "{who}: tier {current} kept; {} HPA(s) brought up to it",
                self.changes.len()
            ),
            _ => format!("{who}: tier {current} holds them, nothing to do"),
        };
        let errors = self.errors();
        if !errors.is_empty() {
            msg.push_str("; errors: ");
            msg.push_str(&errors.join("; "));
        }
        msg
    }

    fn failed_message(&self) -> String {
        match &self.verdict {
            Verdict::Failed(f) => format!("{}: {}; nothing changed", f.what, f.message),
            _ => "the reference HPA could not be read; nothing changed".into(),
        }
    }

    /// Who asked for what: `upgrade to 2000 (--force)`, `1500 users need tier 2000`.
    fn who(&self) -> String {
        match (&self.need, self.users) {
            (Some(n), _) if self.command == CommandKind::Upgrade => format!(
                "upgrade to {}{}",
                n.capacity,
                if self.force { " (--force)" } else { "" }
            ),
            (Some(n), Some(u)) => {
                let metric = n
                    .floors
                    .iter()
                    .find(|f| f.reason == FloorReason::Metric)
                    .map_or(n.capacity, |f| f.capacity);
                let users = format!("{u} users need tier {metric}");
                match (&n.decided_by, &self.verdict) {
                    // A held run says what holds it in its own words.
                    (FloorReason::Metric, _) | (_, Verdict::Held(_)) => users,
                    (reason, _) => format!("{users}; {} needs {}", floor_name(reason), n.capacity),
                }
            }
            _ => String::new(),
        }
    }
}

/// A floor as the subject of a sentence: `the hold`, `schedule evening-peak`, …
fn floor_name(reason: &FloorReason) -> String {
    match reason {
        FloorReason::Metric => "the users".into(),
        FloorReason::Upgrade => "the upgrade".into(),
        FloorReason::Hold { .. } => "the hold".into(),
        FloorReason::Schedule { name, .. } => format!("schedule {name}"),
        FloorReason::Forecast {
            peak_users,
            peak_at,
        } => format!(
            "the forecast ({peak_users} users by {})",
            peak_at.strftime("%H:%M UTC")
        ),
    }
}

fn shortfalls(b: &Blocked) -> String {
    b.shortfalls
        .iter()
        .map(|s| format!("tier {} {s}", b.wanted))
        .collect::<Vec<_>>()
        .join("; ")
}

fn held_why(by: &HeldBy, scale_down: SignedDuration) -> String {
    match by {
        HeldBy::Hold { capacity, until } => format!(
            "hold at {capacity} until {}",
            until.strftime("%Y-%m-%d %H:%M UTC")
        ),
        HeldBy::ShortHistory { .. } => format!(
            "the run history does not yet cover the {}-minute scale-down window",
            scale_down.as_mins()
        ),
        HeldBy::Window { needed, at } => format!(
            "a run at {} needed {needed} within the {}-minute window",
            at.strftime("%H:%M UTC"),
            scale_down.as_mins()
        ),
        HeldBy::NoHistory => "the run store is unreachable, and scale-down needs history".into(),
        HeldBy::Schedule {
            name,
            capacity,
            until,
        } => format!(
            "schedule {name} keeps tier {capacity} until {}",
            until.strftime("%Y-%m-%d %H:%M UTC")
        ),
        HeldBy::Forecast { capacity, peak_at } => format!(
            "the forecast expects tier {capacity} by {}",
            peak_at.strftime("%H:%M UTC")
        ),
        HeldBy::FailedReading { at } => format!(
            "coverage: the run at {} has no successful reading, so the {}-minute window is not known to need less",
            at.strftime("%H:%M UTC"),
            scale_down.as_mins()
        ),
        HeldBy::Gap { from, until } => format!(
            "coverage: no successful reading between {} and {}, so the {}-minute window is not known to need less",
            from.strftime("%H:%M"),
            until.strftime("%H:%M UTC"),
            scale_down.as_mins()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conclude::{Applied, conclude};
    use crate::prereq::Resource;
    use crate::schedule::{ScheduleSpec, Schedules, SchedulesSpec};
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

    fn policy() -> Policy {
        Policy::test()
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
        policy: Policy,
        samples: Vec<(Timestamp, u32)>,
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
                policy: policy(),
                samples: vec![],
            }
        }
        /// One-off schedule windows, each `(start in minutes from now,
        /// capacity)`, 60 minutes long with the default 10-minute lead.
        fn windows(mut self, windows: &[(i64, u32)]) -> Self {
            let schedules = windows
                .iter()
                .enumerate()
                .map(|(i, (start, capacity))| {
                    ScheduleSpec::at(&format!("w{i}"), &at(*start).to_string())
                        .duration("1h")
                        .capacity(*capacity)
                })
                .collect();
            let spec = SchedulesSpec {
                timezone: None,
                schedules,
                skip_dates: vec![],
                preflight_hours: None,
            };
            self.policy.schedules = Schedules::new(spec, &table().capacities()).unwrap();
            self
        }
        fn forecast(mut self, mode: ForecastMode, samples: Vec<(Timestamp, u32)>) -> Self {
            self.policy.forecast.mode = mode;
            self.samples = samples;
            self
        }
        fn upgrade(capacity: u32, force: bool, at_tier: u32) -> Self {
            Case {
                demand: Demand::Upgrade {
                    capacity,
                    force,
                    hold: None,
                },
                ..Case::users(0, at_tier)
            }
        }
        fn history(mut self, h: Vec<RunRecord>) -> Self {
            self.history = Some(h);
            self
        }
        fn run(&self) -> Decision {
            let mut policy = self.policy.clone();
            policy.headroom_percent = self.headroom;
            decide(&Inputs {
                now: now(),
                demand: self.demand.clone(),
                hold: self.hold,
                samples: &self.samples,
                policy: &policy,
                hpas: &self.hpas,
                unreadable: &self.unreadable,
                prereqs: &self.prereqs,
                history: self.history.as_deref(),
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

    fn mins(p: &Decision, service: &str) -> Option<(u32, u32)> {
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
        assert_eq!((p.outcome(), p.target()), (Outcome::Noop, Some(1000)));
        assert!(p.changes.is_empty() && p.notices().is_empty());
    }

    #[test]
    fn one_user_above_capacity_scales_up() {
        let p = Case::users(1001, 1000).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(2000)));
        assert_eq!(mins(&p, "passport"), Some((8, 12)));
    }

    #[test]
    fn zero_users_at_the_floor_is_a_noop() {
        let p = Case::users(0, 600).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Noop, Some(600)));
        assert_eq!(p.need.clone().unwrap().capacity, 600);
    }

    #[test]
    fn headroom_raises_the_needed_tier() {
        let mut c = Case::users(900, 1000);
        c.headroom = 20;
        let p = c.run();
        assert_eq!(p.need.clone().unwrap().capacity, 2000);
        assert_eq!(p.target(), Some(2000));
    }

    // --- scale up --------------------------------------------------------------

    #[test]
    fn scale_up_jumps_several_tiers_at_once() {
        let p = Case::users(3500, 600).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(4000)));
        assert_eq!(p.changes.len(), 6);
        assert_eq!(mins(&p, "istio-ingress"), Some((2, 10)));
        assert!(p.changes.iter().all(|c| c.capacity == 4000));
        assert!(
            p.message().contains("scaled up 600 → 4000"),
            "{}",
            p.message()
        );
    }

    #[test]
    fn scale_up_stops_at_the_highest_tier_the_prerequisites_allow() {
        let mut c = Case::users(3500, 600);
        c.prereqs = blocked_from(3000);
        let p = c.run();
        assert_eq!(p.target(), Some(2000));
        assert_eq!(
            p.outcome(),
            Outcome::Applied,
            "a step was taken, so the tier changed"
        );
        let b = p.blocked().unwrap();
        assert_eq!((b.wanted, b.reached), (4000, 2000));
        assert!(matches!(
            &p.notices()[..],
            [Notice::Blocked {
                wanted: 4000,
                reached: 2000,
                ..
            }]
        ));
        assert!(
            p.message().contains(
                "tier 4000 needs RDS db.r5.8xlarge; reader prod-aurora-2 is db.r7g.large"
            ),
            "{}",
            p.message()
        );
    }

    #[test]
    fn scale_up_fully_blocked_touches_nothing_and_says_what_is_missing() {
        let mut c = Case::users(1500, 600);
        c.prereqs = blocked_from(1000);
        let p = c.run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Blocked, Some(600)));
        assert!(p.changes.is_empty());
        let Notice::Blocked { shortfalls, .. } = &p.notices()[0] else {
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
        assert_eq!(p.outcome(), Outcome::Blocked);
        assert_eq!(mins(&p, "web"), Some((1, 2)));
    }

    #[test]
    fn prerequisite_read_failure_prevents_scale_up() {
        let mut c = Case::users(1500, 600);
        c.prereqs = Err("AccessDenied: rds:DescribeDBClusters".into());
        let p = c.run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Error, Some(600)));
        assert!(p.changes.is_empty());
        assert!(
            matches!(&p.notices()[..], [Notice::Error { what, .. }] if what == "AWS prerequisites")
        );
    }

    #[test]
    fn prerequisite_read_failure_still_allows_scale_down() {
        let mut c = Case::users(100, 2000).history(steady(600, 2000, 40));
        c.prereqs = Err("timeout".into());
        let p = c.run();
        assert_eq!(p.target(), Some(600));
        assert_eq!(p.changes.len(), 6);
    }

    #[test]
    fn above_the_top_tier_uses_the_top_tier_and_warns() {
        let p = Case::users(9000, 5000).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Noop, Some(5000)));
        assert!(matches!(
            p.notices()[..],
            [Notice::AboveTop {
                users: 9000,
                top: 5000
            }]
        ));
        assert!(p.need.clone().unwrap().above_top);
    }

    // --- metric failure ------------------------------------------------------

    #[test]
    fn metric_failure_changes_nothing() {
        let mut c = Case::users(0, 600);
        c.demand = Demand::Users(Err("GA answered 503".into()));
        c.hpas[2] = Hpa::test("web").min(1); // even a below-tier HPA is left alone
        let p = c.run();
        assert_eq!(
            (p.outcome(), p.target(), p.users),
            (Outcome::Error, Some(600), None)
        );
        assert!(p.changes.is_empty());
        assert!(
            matches!(&p.notices()[..], [Notice::Error { what, .. }] if what == "metric source")
        );
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
        assert_eq!((p.outcome(), p.current), (Outcome::Error, None));
        assert!(p.message().contains("not found"), "{}", p.message());
    }

    #[test]
    fn an_unreadable_other_hpa_is_reported_and_the_rest_applied() {
        let mut c = Case::users(1500, 600);
        let gone = c.hpas.remove(3).id;
        c.unreadable = vec![(gone, "forbidden".into())];
        let p = c.run();
        assert_eq!(p.changes.len(), 5);
        let applied = Applied::Results(p.changes.iter().map(|c| (c.hpa.clone(), Ok(()))).collect());
        let c = conclude(p, applied, &table(), now());
        assert_eq!(c.outcome, Outcome::Partial);
    }

    // --- scale down ------------------------------------------------------------

    #[test]
    fn scale_down_after_a_full_window_of_lower_demand() {
        let p = Case::users(100, 2000).history(steady(600, 2000, 35)).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(600)));
        assert_eq!(mins(&p, "passport"), Some((12, 2)));
    }

    #[test]
    fn scale_down_goes_to_the_highest_tier_needed_in_the_window() {
        let mut h = steady(600, 3000, 35);
        h[3].needed_capacity = Some(2000);
        let p = Case::users(100, 3000).history(h).run();
        assert_eq!(p.target(), Some(2000));
    }

    #[test]
    fn no_scale_down_when_the_window_is_not_covered() {
        let p = Case::users(100, 2000).history(steady(600, 2000, 20)).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Held, Some(2000)));
        assert!(matches!(p.held_by(), Some(HeldBy::ShortHistory { .. })));
    }

    #[test]
    fn no_scale_down_with_empty_history() {
        let p = Case::users(100, 2000).history(vec![]).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Held, Some(2000)));
        assert!(matches!(
            p.held_by(),
            Some(HeldBy::ShortHistory { since: None })
        ));
    }

    #[test]
    fn no_scale_down_without_history() {
        let mut c = Case::users(100, 2000);
        c.history = None;
        let p = c.run();
        assert_eq!(
            (p.outcome(), p.held_by()),
            (Outcome::Held, Some(&HeldBy::NoHistory))
        );
    }

    #[test]
    fn no_scale_down_when_a_run_in_the_window_needed_the_tier() {
        let mut h = steady(600, 2000, 35);
        h[4].needed_capacity = Some(2000);
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome(), Outcome::Held);
        assert!(matches!(
            p.held_by(),
            Some(HeldBy::Window { needed: 2000, .. })
        ));
        assert!(
            p.message().contains("within the 30-minute window"),
            "{}",
            p.message()
        );
    }

    #[test]
    fn an_upgrade_in_the_window_counts_as_needing_its_tier() {
        let mut h = steady(600, 2000, 35);
        let up = h.last_mut().unwrap();
        up.command = CommandKind::Upgrade;
        up.needed_capacity = Some(2000);
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome(), Outcome::Held);
    }

    // --- floors: schedule windows and the forecast (SPEC §9) -----------------

    #[test]
    fn a_window_raises_the_tier_from_its_lead_and_names_itself_the_deciding_floor() {
        // Starts in 5 minutes; the 10-minute lead has begun.
        let p = Case::users(100, 600).windows(&[(5, 3000)]).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(3000)));
        let need = p.need.clone().unwrap();
        assert_eq!(need.capacity, 3000);
        assert!(matches!(&need.decided_by, FloorReason::Schedule { name, .. } if name == "w0"));
        assert!(
            p.message().starts_with(
                "100 users need tier 600; schedule w0 needs 3000: scaled up 600 → 3000"
            ),
            "{}",
            p.message()
        );
        // Not yet in its lead: nothing.
        let p = Case::users(100, 600).windows(&[(15, 3000)]).run();
        assert_eq!(p.target(), Some(600));
    }

    #[test]
    fn inside_a_window_low_users_are_held_at_its_tier_and_overlaps_take_the_highest() {
        let p = Case::users(100, 3000)
            .windows(&[(-30, 2000), (-10, 3000)])
            .history(steady(600, 3000, 40))
            .run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Held, Some(3000)));
        assert!(
            matches!(p.held_by(), Some(HeldBy::Schedule { name, capacity: 3000, .. }) if name == "w1"),
            "{:?}",
            p.held_by()
        );
        assert!(
            p.message().contains("schedule w1 keeps tier 3000"),
            "{}",
            p.message()
        );
    }

    #[test]
    fn a_window_scale_up_is_gated_by_the_prerequisites() {
        let mut c = Case::users(100, 600).windows(&[(0, 3000)]);
        c.prereqs = blocked_from(2000);
        let p = c.run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(1000)));
        let b = p.blocked().unwrap();
        assert_eq!((b.wanted, b.reached), (3000, 1000));
        assert!(
            p.notices()
                .iter()
                .any(|n| matches!(n, Notice::Blocked { wanted: 3000, .. }))
        );
    }

    #[test]
    fn after_a_window_its_runs_needed_its_tier_so_the_ordinary_window_applies() {
        // The window ended 20 minutes ago; its runs recorded needing 3000.
        let mut h = steady(3000, 3000, 60);
        h.iter_mut()
            .filter(|r| now().duration_since(r.started_at).as_mins() < 20)
            .for_each(|r| r.needed_capacity = Some(600));
        let p = Case::users(100, 3000)
            .windows(&[(-80, 3000)])
            .history(h)
            .run();
        assert_eq!(p.outcome(), Outcome::Held);
        assert!(matches!(
            p.held_by(),
            Some(HeldBy::Window { needed: 3000, .. })
        ));
    }

    #[test]
    fn a_window_whose_tier_is_not_allowed_gets_a_preflight_notice_naming_it() {
        // In three hours, outside its lead: not a floor yet, but warned.
        let mut c = Case::users(100, 600).windows(&[(180, 3000)]);
        c.prereqs = blocked_from(2000);
        let p = c.run();
        assert_eq!(p.target(), Some(600));
        let [pf] = &p.preflight[..] else {
            panic!("{:?}", p.preflight)
        };
        assert_eq!(
            (pf.window.as_str(), pf.capacity, pf.start),
            ("w0", 3000, at(180))
        );
        assert!(pf.occurrence.starts_with("w0@"), "{}", pf.occurrence);
        let notice = p
            .notices()
            .into_iter()
            .find(|n| matches!(n, Notice::Preflight(_)))
            .unwrap();
        assert_eq!(
            notice.dedupe_key(),
            Some(format!("preflight:{}", pf.occurrence))
        );
        // Allowed: no warning.
        let p = Case::users(100, 600).windows(&[(180, 3000)]).run();
        assert!(p.preflight.is_empty());
    }

    /// Four weeks of readings every 5 minutes: 3000 users around a quarter
    /// of an hour from now (in the time of week), 300 otherwise.
    fn weekly_peak_now() -> Vec<(Timestamp, u32)> {
        let week = 7 * 24 * 60;
        (1..=4 * 7 * 288)
            .rev()
            .map(|i| {
                let t = now() - SignedDuration::from_mins(5 * i);
                let until_peak = (now().duration_since(t).as_mins() + 15) % week;
                let near = until_peak <= 5 || until_peak >= week - 5;
                (t, if near { 3000 } else { 300 })
            })
            .collect()
    }

    #[test]
    fn the_forecast_advises_without_acting_and_scales_when_told_to() {
        let p = Case::users(300, 600)
            .forecast(ForecastMode::Advise, weekly_peak_now())
            .run();
        assert_eq!(p.target(), Some(600), "advise never acts");
        let floor = p.forecast.as_ref().and_then(|f| f.floor()).unwrap();
        assert!(floor >= 3000, "{:?}", p.forecast);
        let p = Case::users(300, 600)
            .forecast(ForecastMode::Scale, weekly_peak_now())
            .run();
        assert_eq!(p.target(), Some(floor));
        assert!(matches!(
            p.need.unwrap().decided_by,
            FloorReason::Forecast { .. }
        ));
        // Off: not even computed.
        let p = Case::users(300, 600)
            .forecast(ForecastMode::Off, weekly_peak_now())
            .run();
        assert!(p.forecast.is_none());
    }

    // --- a lock held by a stuck run (SPEC §11) --------------------------------

    #[test]
    fn a_lock_held_while_runs_are_recorded_is_someone_at_work() {
        let fresh = steady(600, 600, 10);
        assert_eq!(
            lock_stuck(Some(&fresh), now(), SignedDuration::from_mins(5)),
            None
        );
        assert_eq!(
            lock_stuck(Some(&[]), now(), SignedDuration::from_mins(5)),
            None
        );
    }

    #[test]
    fn a_lock_held_with_nothing_recorded_for_three_intervals_is_an_alarm() {
        let five = SignedDuration::from_mins(5);
        let old = vec![RunRecord::check_needing(600, 600, now(), 16)];
        let msg = lock_stuck(Some(&old), now(), five).unwrap();
        assert!(
            msg.contains("16 minutes old") && msg.contains("nobody is acting"),
            "{msg}"
        );
        assert!(
            lock_stuck(None, now(), five).is_some(),
            "unreadable history"
        );
        // An earlier alarm's record is no sign of anyone acting.
        let mut alarm = RunRecord::check_needing(600, 600, now(), 1);
        alarm.detail = serde_json::json!({ "lock_stuck": true });
        let h = vec![old[0].clone(), alarm.clone()];
        assert!(lock_stuck(Some(&h), now(), five).is_some());
        // Nothing but alarms: stuck since the first of them.
        let mut first = alarm.clone();
        first.started_at = at(-20);
        assert!(lock_stuck(Some(&[first, alarm.clone()]), now(), five).is_some());
        assert!(lock_stuck(Some(&[alarm]), now(), five).is_none());
    }

    // --- coverage (SPEC §11) ----------------------------------------------------

    /// A `check` at `minutes_ago` whose metric read failed.
    fn failed_read(tier: u32, minutes_ago: i64) -> RunRecord {
        let mut r = RunRecord::check_needing(0, tier, now(), minutes_ago);
        (r.users, r.needed_capacity, r.outcome) = (None, None, Outcome::Error);
        r
    }

    #[test]
    fn a_failed_reading_in_the_window_holds_by_coverage() {
        let mut h = steady(600, 2000, 35);
        h[2] = failed_read(2000, 26);
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Held, Some(2000)));
        assert_eq!(
            p.held_by(),
            Some(&HeldBy::FailedReading { at: at(-26) }),
            "{}",
            p.message()
        );
        assert!(p.message().contains("coverage"), "{}", p.message());
    }

    #[test]
    fn one_low_reading_after_a_metric_outage_never_drops_tiers() {
        // Tier 3000 applied 45 minutes ago; GA failed at every run since,
        // then one reading of 10 users now.
        let mut h = steady(600, 3000, 80);
        h.retain(|r| now().duration_since(r.started_at).as_mins() > 45);
        h.push(RunRecord::check_needing(3000, 3000, now(), 45));
        h.extend((1..=8).rev().map(|k| failed_read(3000, 5 * k)));
        let p = Case::users(10, 3000).history(h.clone()).run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Held, Some(3000)));
        assert!(
            matches!(p.held_by(), Some(HeldBy::FailedReading { .. })),
            "{:?}",
            p.held_by()
        );

        // Good readings every five minutes from now on: the tier is kept
        // until the 30-minute window holds nothing but them.
        let mut history = h;
        for k in 0..=6 {
            let when = now() + SignedDuration::from_mins(5 * k);
            let shifted: Vec<RunRecord> = history
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.started_at -= SignedDuration::from_mins(5 * k);
                    r
                })
                .collect();
            let p = Case::users(10, 3000).history(shifted).run();
            let want = if k < 6 { Some(3000) } else { Some(600) };
            assert_eq!(p.target(), want, "after {} minutes: {}", 5 * k, p.message());
            let mut good = RunRecord::check_needing(600, 3000, when, 0);
            good.started_at = now() + SignedDuration::from_mins(5 * k);
            history.push(good);
        }
    }

    #[test]
    fn a_gap_between_readings_holds_by_coverage() {
        // Runs every five minutes, but none between 25 and 10 minutes ago.
        let mut h = steady(600, 2000, 40);
        h.retain(|r| {
            let ago = now().duration_since(r.started_at).as_mins();
            !(11..25).contains(&ago)
        });
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome(), Outcome::Held);
        assert!(
            matches!(p.held_by(), Some(HeldBy::Gap { .. })),
            "{:?}",
            p.held_by()
        );
    }

    #[test]
    fn coverage_rules_table() {
        // (what, history, scale down?)
        let ok = steady(600, 2000, 40);
        let stale = {
            // the newest reading 12 minutes ago: silence up to now.
            let mut h = steady(600, 2000, 60);
            h.retain(|r| now().duration_since(r.started_at).as_mins() >= 12);
            h
        };
        let late_error = {
            // AWS could not be read, but the users were: still evidence.
            let mut h = steady(600, 2000, 40);
            h[4].outcome = Outcome::Error;
            h
        };
        let jitter = {
            // cron ran late once: 9 minutes apart is within 2 × check_time.
            let mut h = steady(600, 2000, 40);
            h.retain(|r| now().duration_since(r.started_at).as_mins() != 16);
            h
        };
        let upgrade_gap = {
            // an upgrade fills no gap: it read no users.
            let mut h = steady(600, 2000, 60);
            h.retain(|r| !(6..26).contains(&now().duration_since(r.started_at).as_mins()));
            let mut up = RunRecord::check_needing(600, 2000, now(), 15);
            (up.command, up.users) = (CommandKind::Upgrade, None);
            h.push(up);
            h.sort_by_key(|r| r.started_at);
            h
        };
        let resumed = {
            // silent from 100 to 26 minutes ago: the window's start is not covered.
            let mut h = steady(600, 2000, 100);
            h.retain(|r| !(26..100).contains(&now().duration_since(r.started_at).as_mins()));
            h
        };
        let cases = [
            ("every reading good", ok, true),
            ("readings resumed inside the window", resumed, false),
            ("silence up to now", stale, false),
            ("a run that failed after reading", late_error, true),
            ("one late run", jitter, true),
            ("an upgrade inside a gap", upgrade_gap, false),
        ];
        for (what, h, down) in cases {
            let p = Case::users(100, 2000).history(h).run();
            assert_eq!(p.target() == Some(600), down, "{what}: {}", p.message());
        }
    }

    #[test]
    fn a_run_exactly_at_the_window_start_counts() {
        // One record exactly 30 minutes ago needing the current tier: it is
        // inside the window, so the tier is kept.
        let mut h = vec![RunRecord::check_needing(2000, 2000, now(), 30)];
        h.extend(steady(600, 2000, 20));
        let p = Case::users(100, 2000).history(h).run();
        assert_eq!(p.outcome(), Outcome::Held);
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
        assert_eq!((p.outcome(), p.target()), (Outcome::Held, Some(2000)));
        assert!(matches!(
            p.held_by(),
            Some(HeldBy::Hold { capacity: 2000, .. })
        ));
    }

    #[test]
    fn a_hold_expiring_now_no_longer_holds() {
        let mut c = Case::users(100, 2000).history(steady(600, 2000, 40));
        c.hold = hold(2000, 0);
        let p = c.run();
        assert_eq!(p.target(), Some(600));
    }

    #[test]
    fn scale_down_never_goes_below_a_lower_hold() {
        let mut c = Case::users(100, 3000).history(steady(600, 3000, 40));
        c.hold = hold(2000, 30);
        let p = c.run();
        assert_eq!(p.target(), Some(2000));
    }

    #[test]
    fn a_hold_above_the_current_tier_raises_it() {
        let mut c = Case::users(100, 600);
        c.hold = hold(2000, 30);
        let p = c.run();
        assert_eq!(p.target(), Some(2000));
    }

    // --- upgrade -----------------------------------------------------------------

    #[test]
    fn upgrade_up_with_prerequisites_met() {
        let p = Case::upgrade(2000, false, 600).run();
        assert_eq!(
            (p.outcome(), p.target(), p.refused()),
            (Outcome::Applied, Some(2000), false)
        );
        assert_eq!(p.need.clone().unwrap().capacity, 2000);
    }

    #[test]
    fn upgrade_up_refused_when_prerequisites_are_missing() {
        let mut c = Case::upgrade(2000, false, 600);
        c.prereqs = blocked_from(1000);
        let p = c.run();
        assert_eq!(
            (p.outcome(), p.target(), p.refused()),
            (Outcome::Blocked, Some(600), true)
        );
        assert!(p.changes.is_empty());
        assert!(p.message().contains("refused"), "{}", p.message());
    }

    #[test]
    fn upgrade_force_skips_prerequisites() {
        let mut c = Case::upgrade(2000, true, 600);
        c.prereqs = blocked_from(1000);
        let p = c.run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(2000)));
        let mut c = Case::upgrade(2000, true, 600);
        c.prereqs = Err("down".into());
        assert_eq!(c.run().target(), Some(2000));
    }

    #[test]
    fn upgrade_up_with_unreadable_prerequisites_is_an_error_not_a_refusal() {
        let mut c = Case::upgrade(2000, false, 600);
        c.prereqs = Err("throttled".into());
        let p = c.run();
        assert_eq!((p.outcome(), p.refused()), (Outcome::Error, false));
        assert!(p.message().contains("--force"), "{}", p.message());
    }

    #[test]
    fn upgrade_down_needs_no_prerequisites_and_no_window() {
        let mut c = Case::upgrade(600, false, 3000);
        c.prereqs = Err("down".into());
        c.history = None;
        let p = c.run();
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(600)));
    }

    #[test]
    fn upgrade_to_the_current_tier_resets_drifted_hpas_exactly() {
        let mut c = Case::upgrade(2000, false, 2000);
        c.hpas[2] = Hpa::test("web").min(9).max(10).annotated(2000);
        let p = c.run();
        assert_eq!(p.outcome(), Outcome::Applied);
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
        assert_eq!((p.outcome(), p.target()), (Outcome::Applied, Some(2000)));
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
    fn each_patched_hpa_that_a_gitops_tool_manages_is_warned_about() {
        let mut c = Case::users(700, 600);
        c.hpas[2] = c.hpas[2].clone().argo_cd("prod-web");
        c.hpas[3] = c.hpas[3].clone().argo_cd("prod-hermes");
        let p = c.run();
        let gitops: Vec<&String> = p
            .warnings
            .iter()
            .filter(|w| w.contains("Argo CD"))
            .collect();
        assert_eq!(gitops.len(), 2, "{:?}", p.warnings);
        assert!(
            gitops[0].starts_with("prod/web is managed by Argo CD application prod-web")
                && gitops[0].contains("ignoreDifferences")
                && gitops[0].contains("RespectIgnoreDifferences=true"),
            "{}",
            gitops[0]
        );
        // Between tier changes an HPA left alone is not warned about.
        let mut c = Case::users(700, 1000);
        c.hpas[2] = c.hpas[2].clone().argo_cd("prod-web");
        let p = c.run();
        assert!(
            p.changes.is_empty() && p.warnings.is_empty(),
            "{:?}",
            p.warnings
        );
    }
}
