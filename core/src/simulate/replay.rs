//! The replay loop of `hpa-tier simulate`: a simulated `check` at every
//! tick of a span, each one the decision `check` makes — [`plan::decide`]
//! on the inputs the shell gathers, then [`conclude`] with every patch
//! applied and the run record `check` would store — each learning from the
//! records the replay produced before it, as `check` learns from its store.
//! No rule is re-implemented here: the scale-down window, coverage,
//! schedule windows, holds and the forecast are all the decision's.
//!
//! What a real run reads, the replay supplies:
//! - the HPAs: every managed service exactly at the applied tier's values,
//!   annotated with it (what the tool leaves behind after a tier change);
//! - the users: the trace at the tick;
//! - the prerequisites: met, up to `prereq_capacity` when it is given (the
//!   tiers above it miss a [`Resource::Simulated`] shortfall);
//! - the store's answers, from the records so far, in time order: the
//!   history (the newest record before `now − history_span` and every one
//!   since, as `RunStore::history` answers), the samples (users of the
//!   `check` runs that read them since `now − samples_span`) and the
//!   newest effective `upgrade` (its hold). Each is a binary search, so a
//!   tick costs the same on the first day as after five weeks.
//!
//! `--from-store` adds the store's own effective upgrades: those before the
//! span are history the first ticks find (a hold may still run), those in
//! it are replayed at their times as the `upgrade` decision.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::chart::Window;
use super::timeline::{MAX_TICKS, Span, SpanError, Timeline};
use super::trace::Trace;
use crate::conclude::{Applied, NoticeReport, NoticeStatus, RunFacts, conclude};
use crate::forecast::{self, Accuracy, Model, Tick};
use crate::hpa::Hpa;
use crate::plan::{self, Decision, Demand, FloorReason, Inputs};
use crate::policy::{ForecastMode, Policy};
use crate::prereq::{Allowance, Observed, Resource, Shortfall};
use crate::record::{CommandKind, RunRecord, active_hold};
use crate::schedule::{MAX_DURATION, Schedules};

/// The seasonal-naive forecast looks this far back: the same time last week.
const NAIVE_LAG: SignedDuration = SignedDuration::from_hours(7 * 24);

/// The state `check` would find at each run of a replay: the tier its HPAs
/// are at and its store's records. Drives one decision at a time.
#[derive(Clone, Debug)]
pub struct Replayer<'a> {
    policy: &'a Policy,
    prereqs: Result<Allowance, String>,
    tier: u32,
    /// Every record so far, in time order.
    records: Vec<RunRecord>,
    /// Users of the `check` runs that read them, in time order (what
    /// `RunStore::samples` answers).
    samples: Vec<(Timestamp, u32)>,
    /// Index in `records` of the newest effective upgrade.
    last_upgrade: Option<usize>,
    /// Whether records keep their `detail` (see [`Setup::details`]).
    details: bool,
}

/// One simulated run: where it started and ended, and its decision.
#[derive(Clone, Debug)]
pub struct Ran {
    pub from: u32,
    pub to: u32,
    pub decision: Decision,
}

impl<'a> Replayer<'a> {
    /// A replay whose HPAs start at `tier`, with nothing recorded yet.
    /// `prereq_capacity`: the highest tier whose prerequisites count as met.
    pub fn new(policy: &'a Policy, tier: u32, prereq_capacity: Option<u32>) -> Self {
        Replayer {
            policy,
            prereqs: Ok(allowance(policy, prereq_capacity)),
            tier,
            records: vec![],
            samples: vec![],
            last_upgrade: None,
            details: true,
        }
    }

    /// Records keep no `detail`: the decision never reads it (see
    /// [`Setup::details`]).
    pub fn without_details(self) -> Self {
        Replayer {
            details: false,
            ..self
        }
    }

    /// The tier the HPAs are at now.
    pub fn tier(&self) -> u32 {
        self.tier
    }

    /// Every record so far, oldest first.
    pub fn records(&self) -> &[RunRecord] {
        &self.records
    }

    pub fn into_records(self) -> Vec<RunRecord> {
        self.records
    }

    /// Adds a record the store already held (`--from-store`), as a past run
    /// later decisions read. Records must come in time order, and before
    /// any run at a later time.
    pub fn remember(&mut self, record: RunRecord) {
        if record.command == CommandKind::Check
            && let Some(users) = record.users
        {
            self.samples.push((record.started_at, users));
        }
        if record.is_effective_upgrade() {
            self.last_upgrade = Some(self.records.len());
        }
        self.records.push(record);
    }

    /// The users of past readings the forecast reads at `now`.
    pub fn samples_at(&self, now: Timestamp) -> &[(Timestamp, u32)] {
        match self.policy.samples_span() {
            Some(span) => {
                let since = now - span;
                &self.samples[self.samples.partition_point(|(t, _)| *t < since)..]
            }
            None => &[],
        }
    }

    /// The history a run reads at `now`: as `RunStore::history(now −
    /// history_span)` answers, the newest record before that and all since.
    pub fn history_at(&self, now: Timestamp) -> &[RunRecord] {
        let since = now - self.policy.history_span();
        let first_in = self.records.partition_point(|r| r.started_at < since);
        &self.records[first_in.saturating_sub(1)..]
    }

    /// The HPAs as the tool leaves them at `tier`: every managed service at
    /// its values, annotated.
    pub fn hpas_at(&self, capacity: u32) -> Vec<Hpa> {
        let tiers = &self.policy.tiers;
        let tier = tiers.get(capacity).unwrap_or(tiers.floor());
        self.policy
            .services
            .iter()
            .filter_map(|id| {
                // A validated policy's tiers name every managed service.
                let r = tier.replicas_of(&id.service)?;
                Some(Hpa {
                    id: id.clone(),
                    min: r.min,
                    max: r.max.unwrap_or(r.min),
                    current_replicas: Some(r.min),
                    desired_replicas: Some(r.min),
                    capacity_annotation: Some(capacity.to_string()),
                    conditions: vec![],
                    target: None,
                    managed_by: None,
                })
            })
            .collect()
    }

    /// What a run at `now` asked `demand` would decide, from the records so
    /// far: the inputs `check` gathers, built as the shell builds them.
    pub fn decide(&self, now: Timestamp, demand: Demand) -> Decision {
        let last_upgrade = self.last_upgrade.map(|i| &self.records[i]);
        let hpas = self.hpas_at(self.tier);
        plan::decide(&Inputs {
            now,
            demand,
            hold: active_hold(last_upgrade, now),
            samples: self.samples_at(now),
            policy: self.policy,
            hpas: &hpas,
            unreadable: &[],
            prereqs: &self.prereqs,
            history: Some(self.history_at(now)),
        })
    }

    /// A run at `now`: decides, applies every patch (they all succeed),
    /// concludes and records it as `check` would.
    pub fn run(&mut self, now: Timestamp, demand: Demand) -> Ran {
        let decision = self.decide(now, demand);
        let from = self.tier;
        let applied = decision
            .changes
            .iter()
            .map(|c| (c.hpa.clone(), Ok(())))
            .collect();
        let conclusion = conclude(decision, Applied::Results(applied), &self.policy.tiers, now);
        // Nothing is sent: the notices are reported as check reports them
        // without a webhook, so none is marked delivered.
        let notices: Vec<NoticeReport> = conclusion
            .notices
            .iter()
            .map(|n| NoticeReport::new(n, NoticeStatus::NotConfigured))
            .collect();
        let facts = RunFacts {
            run_id: format!("simulate-{}", self.records.len() + 1),
            started: now,
            finished: now,
        };
        let record = conclusion.record(&facts, &notices, &Ok(Observed::default()));
        let mut record = record;
        if !self.details {
            record.detail = serde_json::Value::Null;
        }
        self.tier = conclusion.to.unwrap_or(from);
        self.remember(record);
        Ran {
            from,
            to: self.tier,
            decision: conclusion.decision,
        }
    }
}

/// Every tier allowed, but those above `cap`, which miss one shortfall
/// naming the setting.
fn allowance(policy: &Policy, cap: Option<u32>) -> Allowance {
    policy
        .tiers
        .capacities()
        .into_iter()
        .map(|c| {
            let missing = match cap {
                Some(cap) if c > cap => vec![Shortfall {
                    resource: Resource::Simulated,
                    member: "--set prereq_capacity".into(),
                    role: "simulate".into(),
                    have: cap.to_string(),
                    need: format!("tier {c}"),
                    why: format!("simulate takes the prerequisites as met up to tier {cap}"),
                    fix: format!("--set prereq_capacity={c}"),
                }],
                _ => vec![],
            };
            (c, missing)
        })
        .collect()
}

/// What to replay.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    pub trace: &'a Trace,
    pub span: Span,
    /// Time between simulated `check` runs.
    pub tick: SignedDuration,
    /// How long new pods take to serve (see [`Timeline::effective`]).
    pub ready: SignedDuration,
    pub policy: &'a Policy,
    /// `--set prereq_capacity=N`: prerequisites are met up to tier N only.
    pub prereq_capacity: Option<u32>,
    /// `--from-store`: the store's records, oldest first. The newest one
    /// before the span tells the tier in place; effective upgrades are
    /// history before the span and replayed in it.
    pub store: &'a [RunRecord],
    /// Whether the records keep their `detail` (the floors, the forecast,
    /// each HPA change: what `check` tells people). No decision reads it,
    /// and five weeks of it take some 80 MB, so `simulate` drops it.
    pub details: bool,
}

/// A tier change of the replay, and the floor that decided it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierChange {
    pub time: Timestamp,
    pub from: u32,
    pub to: u32,
    /// `metric`, `forecast`, `schedule`, `hold` or `upgrade`.
    pub decided_by: &'static str,
    /// The schedule window, when one decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    pub command: CommandKind,
    /// The users read by the run (none for an `upgrade`).
    pub users: Option<u32>,
}

/// What a replay produced.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The tier in place when the replay started.
    pub initial: u32,
    /// The tiers applied, run by run.
    pub applied: Timeline,
    /// The tiers that served users (`applied` after `ready`).
    pub served: Timeline,
    pub changes: Vec<TierChange>,
    /// The record of every simulated run (warm-up included), as `check`
    /// would have stored it.
    pub records: Vec<RunRecord>,
    /// `check` runs simulated in the span.
    pub ticks: usize,
    /// `check` runs replayed before the span, as its history.
    pub warm_up_ticks: usize,
    /// Per `check` run in the span, the forecast against what happened;
    /// empty when `forecast.mode` is `off`.
    pub forecast_ticks: Vec<Tick>,
}

impl Replayed {
    /// How well the forecast did; `None` when it is off.
    pub fn accuracy(&self, mode: ForecastMode) -> Option<Accuracy> {
        (mode != ForecastMode::Off).then(|| forecast::accuracy(&self.forecast_ticks))
    }
}

/// Replays `setup` (see the module docs). The errors: a `tick` under one
/// second, or more than [`MAX_TICKS`] of them.
///
/// When the span starts after the trace does, the ticks before it (at the
/// same cadence, back to the first sample) are replayed first as warm-up:
/// their records are the history the span's first runs read — the
/// scale-down window, holds, the forecast's weeks — and their tier is the
/// one in place at the start, but they are neither scored nor listed.
pub fn replay(setup: &Setup) -> Result<Replayed, SpanError> {
    let (first, last) = (setup.trace.start(), setup.span.end);
    if setup.tick.is_positive() {
        let ticks = last.duration_since(first).as_secs() / setup.tick.as_secs().max(1);
        if ticks > MAX_TICKS {
            return Err(SpanError::TooManyTicks {
                first,
                last,
                tick: setup.tick,
                ticks,
                max: MAX_TICKS,
            });
        }
    }
    let ticks = setup.span.ticks(setup.tick)?;
    let warm_up = warm_up(setup.trace.start(), setup.span.start, setup.tick);
    let first = warm_up.first().or(ticks.first()).copied();
    let first = first.unwrap_or(setup.span.start);
    let policy = setup.policy;
    let initial = initial_tier(setup, first);
    let mut replayer = Replayer::new(policy, initial, setup.prereq_capacity);
    if !setup.details {
        replayer = replayer.without_details();
    }
    let (before, during): (Vec<&RunRecord>, Vec<&RunRecord>) = setup
        .store
        .iter()
        .filter(|r| r.is_effective_upgrade() && r.started_at < setup.span.end)
        .partition(|r| r.started_at < first);
    let remembered = before.len();
    for r in before {
        replayer.remember(r.clone());
    }
    let mut upgrades = during.into_iter().peekable();
    let mut decided: Vec<(Timestamp, u32)> = vec![];
    let mut changes = vec![];
    let mut evaluation = Evaluation::new(policy, setup.tick);
    for &t in warm_up.iter().chain(&ticks) {
        let scored = t >= setup.span.start;
        while let Some(u) = upgrades.next_if(|u| u.started_at <= t) {
            let ran = replayer.run(u.started_at, upgrade_demand(u, policy));
            decided.push((u.started_at, ran.to));
            if u.started_at >= setup.span.start {
                changes.extend(change(&ran, u.started_at));
            }
        }
        let users = setup.trace.users_at(t);
        evaluation.before(&replayer, t, users, scored);
        let ran = replayer.run(t, Demand::Users(Ok(users)));
        evaluation.after(&ran.decision);
        decided.push((t, ran.to));
        if scored {
            changes.extend(change(&ran, t));
        }
    }
    let applied = Timeline::from_decisions(initial, decided);
    let served = applied.effective(setup.ready);
    Ok(Replayed {
        initial,
        served,
        applied,
        changes,
        records: replayer.into_records().split_off(remembered),
        ticks: ticks.len(),
        warm_up_ticks: warm_up.len(),
        forecast_ticks: evaluation.ticks,
    })
}

/// The ticks before `start`, every `tick` back to `first` (oldest first).
fn warm_up(first: Timestamp, start: Timestamp, tick: SignedDuration) -> Vec<Timestamp> {
    let mut out: Vec<Timestamp> =
        std::iter::successors(start.checked_sub(tick).ok(), |t| t.checked_sub(tick).ok())
            .take_while(|t| *t >= first)
            .collect();
    out.reverse();
    out
}

/// The tier change a run made, if it made one.
fn change(ran: &Ran, t: Timestamp) -> Option<TierChange> {
    if ran.to == ran.from {
        return None;
    }
    let reason = ran.decision.need.as_ref().map(|n| &n.decided_by);
    Some(TierChange {
        time: t,
        from: ran.from,
        to: ran.to,
        decided_by: reason.map_or("metric", FloorReason::name),
        window: match reason {
            Some(FloorReason::Schedule { name, .. }) => Some(name.clone()),
            _ => None,
        },
        command: ran.decision.command,
        users: ran.decision.users,
    })
}

/// The tier in place at the first run: the store's last word before it,
/// else the tier the users then need (a replay that began under-provisioned
/// would score a gap no policy made).
fn initial_tier(setup: &Setup, first: Timestamp) -> u32 {
    let tiers = &setup.policy.tiers;
    let from_store = setup
        .store
        .iter()
        .filter(|r| r.started_at < first)
        .filter_map(|r| r.to_capacity)
        .next_back();
    match from_store {
        Some(c) => tiers.needed(c, 0).capacity,
        None => {
            let users = setup.trace.users_at(first);
            tiers.needed(users, setup.policy.headroom_percent).capacity
        }
    }
}

/// An effective `upgrade` of the store, as the demand that replays it: its
/// tier (one of the table's, or the smallest that holds it) and its hold.
fn upgrade_demand(r: &RunRecord, policy: &Policy) -> Demand {
    let asked = r.to_capacity.or(r.needed_capacity).unwrap_or(0);
    Demand::Upgrade {
        capacity: policy.tiers.needed(asked, 0).capacity,
        force: false,
        hold: r
            .hold_until
            .map(|until| until.duration_since(r.started_at))
            .filter(|h| h.is_positive()),
    }
}

/// The forecast's evaluation: at each tick, the forecast the previous tick
/// made for it, the seasonal-naive value, and the floor in force.
struct Evaluation<'p> {
    policy: &'p Policy,
    tick: SignedDuration,
    on: bool,
    /// Made at the previous tick for this one.
    pending: Option<u32>,
    /// This tick's, until its decision is known.
    current: Option<Tick>,
    ticks: Vec<Tick>,
}

impl<'p> Evaluation<'p> {
    fn new(policy: &'p Policy, tick: SignedDuration) -> Self {
        Evaluation {
            policy,
            tick,
            on: policy.forecast.mode != ForecastMode::Off,
            pending: None,
            current: None,
            ticks: vec![],
        }
    }

    /// From what the run at `t` reads (before it records anything): the
    /// naive value for `t` and the forecast for the next tick, made as the
    /// decision makes its own.
    fn before(&mut self, replayer: &Replayer, t: Timestamp, users: u32, scored: bool) {
        if !self.on {
            return;
        }
        let p = self.policy;
        let samples = replayer.samples_at(t);
        let tolerance = p.check_interval;
        let predicted = self.pending.take();
        self.current = scored.then(|| Tick {
            actual: users,
            predicted,
            naive: forecast::nearest(samples, t - NAIVE_LAG, tolerance),
            forecast_tier: None,
            needed_tier: p.tiers.needed(users, 0).capacity,
        });
        let lookback = p.forecast.settings.lookback_weeks;
        self.pending = Model::new(samples, t, Some(users), lookback, tolerance)
            .ok()
            .and_then(|m| m.users_at(t + self.tick))
            .map(|u| u.round() as u32);
    }

    fn after(&mut self, decision: &Decision) {
        if let Some(mut tick) = self.current.take() {
            tick.forecast_tier = decision.forecast.as_ref().and_then(|f| f.floor());
            self.ticks.push(tick);
        }
    }
}

/// The schedule windows to shade over `span`: every occurrence active at
/// some instant of it, from the start of its lead.
pub fn windows(schedules: &Schedules, span: Span) -> Vec<Window> {
    if schedules.is_empty() {
        return vec![];
    }
    let from = span.start.checked_sub(MAX_DURATION).unwrap_or(span.start);
    let until = span.end.checked_add(MAX_DURATION).unwrap_or(span.end);
    schedules
        .occurrences(from, until)
        .into_iter()
        .filter(|o| o.raise_from() < span.end && o.end > span.start)
        .map(|o| Window {
            start: o.raise_from(),
            end: o.end,
            name: o.name,
            capacity: o.capacity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Verdict;
    use crate::prereq;
    use crate::record::Outcome;
    use crate::schedule::{ScheduleSpec, SchedulesSpec};
    use crate::simulate::score::FLAP_WINDOW;

    const FIVE: SignedDuration = SignedDuration::from_mins(5);

    fn t0() -> Timestamp {
        "2026-03-02T00:00:00Z".parse().unwrap()
    }

    fn at(mins: i64) -> Timestamp {
        t0() + SignedDuration::from_mins(mins)
    }

    /// Steps: each (minute, users) holds until the next, then jumps.
    fn steps(points: &[(i64, u32)], end: i64) -> Trace {
        let mut samples = vec![];
        for (i, &(m, u)) in points.iter().enumerate() {
            let until = points.get(i + 1).map_or(end, |p| p.0);
            samples.push((at(m), u));
            samples.push((at(until) - SignedDuration::from_secs(1), u));
        }
        Trace::from_samples(samples).unwrap()
    }

    fn setup<'a>(trace: &'a Trace, policy: &'a Policy) -> Setup<'a> {
        Setup {
            trace,
            span: Span::of(trace, None).unwrap(),
            tick: FIVE,
            ready: SignedDuration::from_mins(2),
            policy,
            prereq_capacity: None,
            store: &[],
            details: true,
        }
    }

    fn changes(r: &Replayed) -> Vec<(i64, u32, u32, &'static str)> {
        r.changes
            .iter()
            .map(|c| {
                (
                    c.time.duration_since(t0()).as_mins(),
                    c.from,
                    c.to,
                    c.decided_by,
                )
            })
            .collect()
    }

    fn flaps(r: &Replayed) -> usize {
        r.changes
            .windows(2)
            .filter(|w| {
                (w[0].to > w[0].from) != (w[1].to > w[1].from)
                    && w[1].time.duration_since(w[0].time) <= FLAP_WINDOW
            })
            .count()
    }

    #[test]
    fn a_rise_is_applied_at_once_and_a_fall_after_the_scale_down_window() {
        let trace = steps(&[(0, 500), (62, 1500), (122, 500)], 300);
        let policy = Policy::test();
        let r = replay(&setup(&trace, &policy)).unwrap();
        assert_eq!(r.initial, 600);
        // The first run to read 1500 is at 65; the first to read 500 at
        // 125, and the window needs every run of the 30 minutes before.
        assert_eq!(
            changes(&r),
            vec![(65, 600, 2000, "metric"), (155, 2000, 600, "metric")]
        );
        assert_eq!(r.served.capacity_at(at(66)), 600, "pods are not ready yet");
        assert_eq!(r.served.capacity_at(at(67)), 2000);
        assert_eq!(r.served.capacity_at(at(155)), 600, "a fall is at once");
        assert_eq!(r.ticks, 60);
        assert_eq!(r.records.len(), 60);
        let held = &r.records[150 / 5 - 1];
        assert_eq!(
            (held.outcome, held.to_capacity),
            (Outcome::Held, Some(2000))
        );
        assert!(r.forecast_ticks.is_empty(), "the forecast is off");
    }

    #[test]
    fn the_prerequisite_cap_stops_a_scale_up_and_names_the_setting() {
        let trace = steps(&[(0, 500), (30, 2500)], 60);
        let policy = Policy::test();
        let r = replay(&Setup {
            prereq_capacity: Some(1000),
            ..setup(&trace, &policy)
        })
        .unwrap();
        assert_eq!(changes(&r), vec![(30, 600, 1000, "metric")]);
        let last = r.records.last().unwrap();
        assert_eq!(last.outcome, Outcome::Blocked);
        assert_eq!(last.needed_capacity, Some(3000));
        assert!(
            last.message.contains("--set prereq_capacity is 1000"),
            "{}",
            last.message
        );
    }

    fn upgrade_record(mins: i64, capacity: u32, hold_mins: Option<i64>) -> RunRecord {
        let started = at(mins);
        RunRecord {
            run_id: format!("store-upgrade-{mins}"),
            started_at: started,
            finished_at: started,
            command: CommandKind::Upgrade,
            users: None,
            needed_capacity: Some(capacity),
            from_capacity: Some(600),
            to_capacity: Some(capacity),
            outcome: Outcome::Applied,
            message: String::new(),
            detail: serde_json::Value::Null,
            hold_until: hold_mins.map(|h| started + SignedDuration::from_mins(h)),
            notified: vec![],
            forecast_capacity: None,
        }
    }

    #[test]
    fn a_store_upgrade_is_replayed_at_its_time_and_its_hold_kept() {
        let trace = steps(&[(0, 300)], 240);
        let policy = Policy::test();
        let store = [upgrade_record(12, 3000, Some(60))];
        let r = replay(&Setup {
            store: &store,
            ..setup(&trace, &policy)
        })
        .unwrap();
        // The hold ends at 72; the checks it held needed its tier, so the
        // window then takes 30 more minutes.
        assert_eq!(
            changes(&r),
            vec![(12, 600, 3000, "upgrade"), (105, 3000, 600, "metric")]
        );
        let upgrade = r.records.iter().find(|x| x.command == CommandKind::Upgrade);
        assert_eq!(upgrade.unwrap().hold_until, Some(at(72)));
    }

    #[test]
    fn a_hold_from_before_the_span_still_applies() {
        let trace = steps(&[(0, 300)], 120);
        let policy = Policy::test();
        let store = [upgrade_record(-20, 2000, Some(45))];
        let r = replay(&Setup {
            store: &store,
            ..setup(&trace, &policy)
        })
        .unwrap();
        assert_eq!(r.initial, 2000, "the store's last word before the span");
        assert_eq!(changes(&r), vec![(55, 2000, 600, "metric")]);
        assert_eq!(
            r.records[0].detail["held_by"]["by"].as_str(),
            Some("hold"),
            "{}",
            r.records[0].detail
        );
    }

    #[test]
    fn ticks_before_a_later_start_are_history_not_scores() {
        let trace = steps(&[(0, 1500), (60, 300)], 180);
        let policy = Policy::test();
        let r = replay(&Setup {
            span: Span::of(&trace, Some(at(70))).unwrap(),
            ..setup(&trace, &policy)
        })
        .unwrap();
        assert_eq!(r.warm_up_ticks, 14);
        assert_eq!(r.initial, 2000, "the tier at the first warm-up run");
        // The warm-up runs at 0..55 needed 2000: the window holds until 90.
        assert_eq!(changes(&r), vec![(90, 2000, 600, "metric")]);
        assert_eq!(r.ticks, 22);
    }

    /// What `check` would gather at `now` from a store holding `records`,
    /// by scanning them all: as `RunStore::history`, `samples` and
    /// `last_upgrade` answer.
    fn gathered(
        records: &[RunRecord],
        now: Timestamp,
        policy: &Policy,
    ) -> (Vec<RunRecord>, Vec<(Timestamp, u32)>, Option<RunRecord>) {
        let since = now - policy.history_span();
        let mut history: Vec<RunRecord> = records
            .iter()
            .filter(|r| r.started_at < since)
            .max_by_key(|r| r.started_at)
            .cloned()
            .into_iter()
            .collect();
        history.extend(records.iter().filter(|r| r.started_at >= since).cloned());
        let samples = match policy.samples_span() {
            Some(span) => records
                .iter()
                .filter(|r| r.command == CommandKind::Check && r.started_at >= now - span)
                .filter_map(|r| Some((r.started_at, r.users?)))
                .collect(),
            None => vec![],
        };
        let last_upgrade = records
            .iter()
            .filter(|r| r.is_effective_upgrade())
            .reduce(|a, b| if b.started_at >= a.started_at { b } else { a })
            .cloned();
        (history, samples, last_upgrade)
    }

    /// Nine days of a daily shape: a night at 300, a steep evening ramp to
    /// 2600, an afternoon plateau near 1800.
    fn daily(t: Timestamp) -> u32 {
        let m = t.as_second().rem_euclid(86_400) / 60;
        let ramp = |from: i64, to: i64, a: f64, b: f64| {
            a + (b - a) * (m - from) as f64 / (to - from) as f64
        };
        let u = match m {
            0..420 => 300.0,
            420..600 => ramp(420, 600, 300.0, 1800.0),
            600..1110 => 1800.0 + 40.0 * ((m % 50) as f64 / 50.0),
            1110..1170 => ramp(1110, 1170, 1840.0, 2600.0),
            1170..1320 => 2600.0,
            _ => ramp(1320, 1440, 2600.0, 300.0),
        };
        u.round() as u32
    }

    fn daily_trace(days: i64) -> Trace {
        let samples = (0..days * 288)
            .map(|i| at(5 * i))
            .map(|t| (t, daily(t)))
            .collect();
        Trace::from_samples(samples).unwrap()
    }

    fn policy_with_forecast_and_a_window() -> Policy {
        let mut policy = Policy::test();
        policy.forecast.mode = ForecastMode::Scale;
        policy.schedules = Schedules::new(
            SchedulesSpec {
                schedules: vec![ScheduleSpec::cron("lunch", "0 12 * * *").duration("1h")],
                // Pre-flight looks ahead by walking the cron pattern: an
                // hour keeps this test quick in a debug build.
                preflight_hours: Some(1),
                ..Default::default()
            },
            &policy.tiers.capacities(),
        )
        .unwrap();
        policy
    }

    #[test]
    fn every_run_decides_on_the_inputs_check_would_gather_from_its_store() {
        let policy = policy_with_forecast_and_a_window();
        let trace = daily_trace(9);
        let mut replayer = Replayer::new(&policy, 600, None);
        let prereqs = Ok(prereq::evaluate(&Observed::default(), &policy.tiers));
        let (mut moves, mut holds, mut forecasts) = (0, 0, 0);
        for (i, &t) in Span::of(&trace, None)
            .unwrap()
            .ticks(FIVE)
            .unwrap()
            .iter()
            .enumerate()
        {
            let demand = match i {
                // An operator's upgrade with a hold on day 3, and a failed
                // reading on day 4: the coverage rule must see it.
                700 => Demand::Upgrade {
                    capacity: 4000,
                    force: false,
                    hold: Some(SignedDuration::from_hours(2)),
                },
                1100 => Demand::Users(Err("GA answered 503".into())),
                _ => Demand::Users(Ok(trace.users_at(t))),
            };
            let (history, samples, last_upgrade) = gathered(replayer.records(), t, &policy);
            let hpas = replayer.hpas_at(replayer.tier());
            let want = plan::decide(&Inputs {
                now: t,
                demand: demand.clone(),
                hold: active_hold(last_upgrade.as_ref(), t),
                samples: &samples,
                policy: &policy,
                hpas: &hpas,
                unreadable: &[],
                prereqs: &prereqs,
                history: Some(&history),
            });
            let ran = replayer.run(t, demand);
            assert_eq!(ran.decision, want, "run {i} at {t}");
            moves += usize::from(ran.to != ran.from);
            holds += usize::from(matches!(ran.decision.verdict, Verdict::Held(_)));
            forecasts += usize::from(
                ran.decision
                    .forecast
                    .as_ref()
                    .and_then(|f| f.floor())
                    .is_some(),
            );
        }
        // The runs went through every kind of decision.
        assert!(
            moves > 20 && holds > 20 && forecasts > 2000,
            "{moves} {holds} {forecasts}"
        );
    }

    #[test]
    fn the_forecast_is_scored_against_what_the_next_tick_read() {
        let mut policy = Policy::test();
        policy.forecast.mode = ForecastMode::Advise;
        let trace = daily_trace(3);
        let r = replay(&setup(&trace, &policy)).unwrap();
        let a = r.accuracy(ForecastMode::Advise).unwrap();
        // A forecast from the second day on (a day of history), one per tick
        // after the first; the shape repeats exactly, so it is exact.
        assert!((560..=580).contains(&a.ticks), "{a:?}");
        assert_eq!(a.mae, Some(0.0));
        assert_eq!((a.naive_mae, a.mase), (None, None), "no week of history");
        assert_eq!(a.tier_covered_percent, Some(100.0));
        // Advise never acts: the same timeline as without the forecast.
        policy.forecast.mode = ForecastMode::Off;
        let off = replay(&setup(&trace, &policy)).unwrap();
        assert_eq!(off.applied, r.applied);
        assert_eq!(off.accuracy(ForecastMode::Off), None);
    }

    #[test]
    fn the_forecast_raises_ahead_of_the_evening_ramp() {
        let mut policy = Policy::test();
        let trace = daily_trace(3);
        let day3 = at(2 * 24 * 60);
        let span = Span::of(&trace, Some(day3)).unwrap();
        let off = replay(&Setup {
            span,
            ..setup(&trace, &policy)
        })
        .unwrap();
        policy.forecast.mode = ForecastMode::Scale;
        let on = replay(&Setup {
            span,
            ..setup(&trace, &policy)
        })
        .unwrap();
        // 1840 at 18:30 climbing to 2600 by 19:30: 2000 is passed at 18:42.
        let to_3000 = |r: &Replayed| {
            r.changes
                .iter()
                .find(|c| c.to == 3000 && c.from < 3000)
                .map(|c| (c.time.duration_since(day3).as_mins(), c.decided_by))
        };
        assert_eq!(to_3000(&off), Some((18 * 60 + 45, "metric")));
        let (when, by) = to_3000(&on).unwrap();
        assert_eq!(by, "forecast");
        assert!(when <= 18 * 60 + 30, "{when}");
    }

    /// A plateau just under a tier's edge with the margin: 2740 and 2700
    /// alternating (×1.1: 3014 and 2970, either side of 3000).
    fn edge(t: Timestamp) -> u32 {
        let m = t.as_second().rem_euclid(86_400) / 60;
        match m {
            600..1080 if m % 80 < 10 => 2740,
            600..1080 => 2700,
            _ => 300,
        }
    }

    #[test]
    fn a_forecast_at_a_tier_edge_holds_the_tier_instead_of_flapping() {
        let mut policy = Policy::test();
        policy.forecast.mode = ForecastMode::Scale;
        let samples = (0..3 * 288)
            .map(|i| at(5 * i))
            .map(|t| (t, edge(t)))
            .collect();
        let trace = Trace::from_samples(samples).unwrap();
        let span = Span::of(&trace, Some(at(2 * 24 * 60))).unwrap();
        let r = replay(&Setup {
            span,
            ..setup(&trace, &policy)
        })
        .unwrap();
        // Raised to 4000 by the first high phase's forecast, then kept while
        // the forecast with twice its margin still needs it: once a day up
        // and once down, not once per 80 minutes.
        let tiers: Vec<(u32, u32)> = r.changes.iter().map(|c| (c.from, c.to)).collect();
        assert!(tiers.contains(&(3000, 4000)), "{tiers:?}");
        assert_eq!(flaps(&r), 0, "{:?}", changes(&r));
        assert!(r.changes.len() <= 6, "{:?}", changes(&r));
        let by_forecast = r
            .records
            .iter()
            .filter(|x| x.started_at >= span.start && x.to_capacity == Some(4000))
            .filter(|x| x.detail["held_by"]["by"] == "forecast")
            .count();
        assert!(by_forecast > 20, "{by_forecast}");
    }

    #[test]
    fn a_replay_of_too_many_ticks_is_refused_before_it_starts() {
        let trace = steps(&[(0, 300)], 300 * 24 * 60);
        let policy = Policy::test();
        let e = replay(&Setup {
            tick: SignedDuration::from_secs(60),
            ..setup(&trace, &policy)
        })
        .unwrap_err();
        assert!(
            matches!(e, SpanError::TooManyTicks { ticks: 431_999, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("give a longer --tick"), "{e}");
    }

    #[test]
    fn schedule_windows_overlapping_the_span_are_shaded_from_their_lead() {
        let policy = policy_with_forecast_and_a_window();
        let trace = daily_trace(2);
        let span = Span::of(&trace, Some(at(12 * 60 + 30))).unwrap();
        let w = windows(&policy.schedules, span);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!((w[0].start, w[0].end), (at(11 * 60 + 50), at(13 * 60)));
        assert_eq!(w[1].start, at(24 * 60 + 11 * 60 + 50));
        assert!(windows(&Schedules::default(), span).is_empty());
    }
}
