//! The forecast: from the users recorded by
//! past runs, the users expected over the next minutes, and the tier that
//! would hold them — the forecast floor. Also the per-hour outlook `status`
//! shows, and the accuracy scores `simulate` reports.
//!
//! The method: the users at a future minute t′ are the median over k = 1..K
//! of the users recorded nearest to t′ − k·P (P one week, or one day while
//! the history is shorter than a week), times a level factor — the median over
//! the same k of users(now) / users(now − k·P), clamped to [0.5, 2] — so a
//! week that runs 1.5× its usual level is followed, and a freak reading
//! cannot more than double or halve the seasonal shape.
//!
//! Everything is in UTC instants: a week is exactly 7 × 24 h. Across a
//! daylight-saving change of the audience's zone, "the same time last week"
//! is therefore an hour off the local clock until the lookback weeks are
//! all on the new offset; the horizon and the margin absorb part of that.
//!
//! Pure: values in, values out, `now` is a parameter. History lookups are
//! binary searches on the time-sorted samples and nothing allocates per
//! lookup, so `simulate` can build a forecast at every tick of five weeks.

use jiff::{SignedDuration, Timestamp};
use serde::{Serialize, Serializer};

use crate::tiers::TierTable;

/// `forecast.lookback_weeks` is at most this; a larger value is treated as it.
pub const MAX_LOOKBACK_WEEKS: u32 = 8;
/// The longest horizon and outlook looked at; longer ones are cut here, since
/// past one period ahead the method would look up its own future.
pub const MAX_AHEAD: SignedDuration = SignedDuration::from_hours(7 * 24);
/// Hours of outlook `status` shows.
pub const STATUS_HOURS: u32 = 6;

/// A day-basis forecast looks back at most this many days.
const MAX_LOOKBACK_DAYS: u32 = 7;
const WEEK: SignedDuration = SignedDuration::from_hours(7 * 24);
const DAY: SignedDuration = SignedDuration::from_hours(24);
const LEVEL_MIN: f64 = 0.5;
const LEVEL_MAX: f64 = 2.0;
/// Room for one value per period looked back (weeks or days, whichever is more).
const MAX_PERIODS: usize = 8;
const _: () = assert!(MAX_LOOKBACK_WEEKS as usize <= MAX_PERIODS);
const _: () = assert!(MAX_LOOKBACK_DAYS as usize <= MAX_PERIODS);

/// The `forecast` section of the configuration, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Past weeks read at the same time of week (1..=8).
    pub lookback_weeks: u32,
    /// How far ahead the floor looks (pod start + check_time).
    pub horizon: SignedDuration,
    /// Added to the predicted users before the tier is taken.
    pub margin_percent: u32,
}

/// What a period of the seasonal lookup is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Same time of week, k weeks back (a week of history or more).
    Weeks,
    /// Same time of day, k days back (between 24 hours and a week of history).
    Days,
}

impl Basis {
    pub fn period(self) -> SignedDuration {
        match self {
            Basis::Weeks => WEEK,
            Basis::Days => DAY,
        }
    }
}

/// The level factor applied to the seasonal median.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Level {
    /// The factor applied: the median ratio clamped to [0.5, 2], or 1 when no
    /// ratio could be formed.
    pub factor: f64,
    /// The median of users(now) / users(now − k·P) before clamping; `None`
    /// when the users of this run are unknown or no period had a nonzero
    /// sample near now − k·P. The seasonal median is then used as it is:
    /// the neutral choice, since the floor only ever raises.
    pub unclamped: Option<f64>,
    /// How many periods gave a ratio.
    pub ratios: u32,
}

/// Why there is no forecast. Not an error: the record says so and the
/// decision goes on without a forecast floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoForecastReason {
    /// No successful reading at or before now.
    NoHistory,
    /// The oldest reading is less than 24 hours old.
    UnderOneDay { history: SignedDuration },
    /// Not one past sample lies within the tolerance of the times looked up.
    NoSamplesNear {
        basis: Basis,
        tolerance: SignedDuration,
    },
}

impl std::fmt::Display for NoForecastReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoForecastReason::NoHistory => write!(f, "no history of users yet"),
            NoForecastReason::UnderOneDay { history } => {
                write!(f, "under 24 hours of history ({history:#})")
            }
            NoForecastReason::NoSamplesNear { basis, tolerance } => {
                let same = match basis {
                    Basis::Weeks => "time of week in past weeks",
                    Basis::Days => "time of day in past days",
                };
                write!(
                    f,
                    "no recorded users within ±{tolerance:#} of the same {same}"
                )
            }
        }
    }
}

/// Serialized as its sentence: the record's `detail` and the JSON output are
/// read by people, and `"status": "no_forecast"` is what scripts test.
impl Serialize for NoForecastReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The forecast of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Forecast {
    Predicted(Prediction),
    NoForecast { reason: NoForecastReason },
}

impl Forecast {
    /// The forecast floor, a tier capacity, when there is a forecast.
    pub fn floor(&self) -> Option<u32> {
        self.prediction().map(|p| p.floor)
    }

    pub fn prediction(&self) -> Option<&Prediction> {
        match self {
            Forecast::Predicted(p) => Some(p),
            Forecast::NoForecast { .. } => None,
        }
    }
}

/// The lowest tier a scale-down may step to while the forecast predicts
/// `peak_users`: the tier of the peak with twice the margin. The floor
/// raises once the peak × (1 + margin) passes a tier; a step down waits
/// until the peak × (1 + 2 · margin) fits the tier below — a band one
/// margin wide. Without it, a plateau whose peak × (1 + margin) sits at a
/// tier's edge crosses it back and forth with each run's reading, and each
/// crossing after a completed scale-down window is a step down and a step
/// back up within minutes: a flap the forecast made.
pub fn release_tier(peak_users: u32, margin_percent: u32, tiers: &TierTable) -> u32 {
    tiers
        .needed(peak_users, margin_percent.saturating_mul(2))
        .capacity
}

/// A forecast floor and what it rests on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The tier of `peak_users` × (1 + margin/100). The config's
    /// `headroom_percent` does not apply on top: the margin is the forecast's
    /// headroom, and the floor is then compared like a need.
    pub floor: u32,
    /// The predicted demand is above the top tier; `floor` is the top tier.
    pub above_top: bool,
    /// The highest predicted users over [now, now + horizon], rounded.
    pub peak_users: u32,
    /// The minute of that peak (the earliest, if several are equal).
    pub peak_at: Timestamp,
    pub margin_percent: u32,
    pub level: Level,
    pub basis: Basis,
    /// K: the periods looked back (lookback_weeks, or whole days of history
    /// up to 7, and never more periods than the history holds).
    pub periods: u32,
}

/// The forecast for one hour of the `status` outlook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HourForecast {
    /// The hour covers [start, start + 1h), counted from now (not clock-aligned).
    pub start: Timestamp,
    /// The highest predicted users in the hour, rounded; `None` when no
    /// minute of it had a past sample near enough.
    pub peak_users: Option<u32>,
    /// The tier of `peak_users` with the margin, as for the floor.
    pub tier: Option<u32>,
    pub above_top: bool,
}

/// The forecast of one run: the floor over `settings.horizon`.
///
/// `history` is the users of past runs, successful readings only, sorted by
/// time (unsorted input gives a meaningless forecast but never a panic);
/// readings after `now` are ignored, so `simulate` may pass its whole
/// replay. `users_now` is this run's reading; `check_interval` is how far a
/// sample may lie from the time looked up.
pub fn forecast(
    history: &[(Timestamp, u32)],
    now: Timestamp,
    users_now: Option<u32>,
    settings: &Settings,
    check_interval: SignedDuration,
    tiers: &TierTable,
) -> Forecast {
    match Model::new(
        history,
        now,
        users_now,
        settings.lookback_weeks,
        check_interval,
    ) {
        Ok(model) => model.floor(settings.horizon, settings.margin_percent, tiers),
        Err(reason) => Forecast::NoForecast { reason },
    }
}

/// The outlook of `status`: for each of the next `hours` hours (at most a
/// week's worth), the forecast tier — the max over the hour, with the margin.
pub fn hourly(
    history: &[(Timestamp, u32)],
    now: Timestamp,
    users_now: Option<u32>,
    settings: &Settings,
    check_interval: SignedDuration,
    tiers: &TierTable,
    hours: u32,
) -> Result<Vec<HourForecast>, NoForecastReason> {
    let model = Model::new(
        history,
        now,
        users_now,
        settings.lookback_weeks,
        check_interval,
    )?;
    Ok(model.hourly(hours, settings.margin_percent, tiers))
}

/// The users recorded nearest to `t`, if a sample lies within ± `tolerance`
/// of it (equally near: the earlier). `samples` sorted by time. Also the
/// seasonal-naive prediction for `simulate`: `nearest(h, t − 7d, tol)`.
pub fn nearest(
    samples: &[(Timestamp, u32)],
    t: Timestamp,
    tolerance: SignedDuration,
) -> Option<u32> {
    Lookup::new(samples, tolerance).nearest(t)
}

/// The history as the method reads it, fixed for one `now`: which basis, how
/// many periods, which level factor. Build once per run, then ask it for
/// the floor, the outlook or the users at any minute.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    lookup: Lookup<'a>,
    now: Timestamp,
    basis: Basis,
    periods: u32,
    level: Level,
}

impl<'a> Model<'a> {
    /// See [`forecast`] for the inputs. `lookback_weeks` is clamped to 1..=8;
    /// a negative `check_interval` counts as zero (exact times only).
    pub fn new(
        history: &'a [(Timestamp, u32)],
        now: Timestamp,
        users_now: Option<u32>,
        lookback_weeks: u32,
        check_interval: SignedDuration,
    ) -> Result<Self, NoForecastReason> {
        let past = &history[..history.partition_point(|(t, _)| *t <= now)];
        let Some(&(oldest, _)) = past.first() else {
            return Err(NoForecastReason::NoHistory);
        };
        let span = now.duration_since(oldest);
        if span < DAY {
            return Err(NoForecastReason::UnderOneDay { history: span });
        }
        let (basis, cap) = if span >= WEEK {
            (Basis::Weeks, lookback_weeks.clamp(1, MAX_LOOKBACK_WEEKS))
        } else {
            (Basis::Days, MAX_LOOKBACK_DAYS)
        };
        let whole = span.as_secs() / basis.period().as_secs();
        let periods = cap.min(u32::try_from(whole).unwrap_or(u32::MAX));
        let lookup = Lookup::new(past, check_interval);
        let level = level(&lookup, now, users_now, basis.period(), periods);
        Ok(Model {
            lookup,
            now,
            basis,
            periods,
            level,
        })
    }

    pub fn basis(&self) -> Basis {
        self.basis
    }

    pub fn periods(&self) -> u32 {
        self.periods
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// The predicted users at `t` (not rounded); `None` when no period has a
    /// sample near t − k·P.
    pub fn users_at(&self, t: Timestamp) -> Option<f64> {
        let mut seen = [0.0; MAX_PERIODS];
        let mut n = 0;
        for k in 1..=self.periods {
            if let Some(u) = back(t, k, self.basis.period()).and_then(|b| self.lookup.nearest(b)) {
                seen[n] = f64::from(u);
                n += 1;
            }
        }
        median(&mut seen[..n]).map(|m| m * self.level.factor)
    }

    /// The highest predicted users over the minutes of [from, through]
    /// (from, from + 1m, …, and `through` itself), with its minute; at most
    /// [`MAX_AHEAD`] is looked at.
    pub fn peak(&self, from: Timestamp, through: Timestamp) -> Option<(Timestamp, f64)> {
        let span = through
            .duration_since(from)
            .clamp(SignedDuration::ZERO, MAX_AHEAD);
        let minutes = span.as_mins();
        let mut best: Option<(Timestamp, f64)> = None;
        let mut consider = |t: Timestamp| {
            if let Some(u) = self.users_at(t)
                && best.is_none_or(|(_, b)| u > b)
            {
                best = Some((t, u));
            }
        };
        for i in 0..=minutes {
            match from.checked_add(SignedDuration::from_mins(i)) {
                Ok(t) => consider(t),
                Err(_) => break,
            }
        }
        if span > SignedDuration::from_mins(minutes)
            && let Ok(t) = from.checked_add(span)
        {
            consider(t);
        }
        best
    }

    /// The forecast floor: the tier of the peak over [now, now + horizon]
    /// with the margin added. A negative horizon counts as zero.
    pub fn floor(
        &self,
        horizon: SignedDuration,
        margin_percent: u32,
        tiers: &TierTable,
    ) -> Forecast {
        let now = self.now;
        let through = now
            .saturating_add(horizon.clamp(SignedDuration::ZERO, MAX_AHEAD))
            .unwrap_or(now);
        let Some((peak_at, peak)) = self.peak(now, through) else {
            return Forecast::NoForecast {
                reason: NoForecastReason::NoSamplesNear {
                    basis: self.basis,
                    tolerance: self.lookup.tolerance,
                },
            };
        };
        let peak_users = round(peak);
        let needed = tiers.needed(peak_users, margin_percent);
        Forecast::Predicted(Prediction {
            floor: needed.capacity,
            above_top: needed.above_top,
            peak_users,
            peak_at,
            margin_percent,
            level: self.level,
            basis: self.basis,
            periods: self.periods,
        })
    }

    /// The next `hours` hours from now (at most a week's worth), each with
    /// its forecast tier.
    pub fn hourly(&self, hours: u32, margin_percent: u32, tiers: &TierTable) -> Vec<HourForecast> {
        let max_hours = u32::try_from(MAX_AHEAD.as_hours()).unwrap_or(0);
        let now = self.now;
        (0..hours.min(max_hours))
            .filter_map(|h| {
                let start = now
                    .checked_add(SignedDuration::from_hours(i64::from(h)))
                    .ok()?;
                let last = start.checked_add(SignedDuration::from_mins(59)).ok()?;
                let peak_users = self.peak(start, last).map(|(_, u)| round(u));
                let needed = peak_users.map(|u| tiers.needed(u, margin_percent));
                Some(HourForecast {
                    start,
                    peak_users,
                    tier: needed.map(|n| n.capacity),
                    above_top: needed.is_some_and(|n| n.above_top),
                })
            })
            .collect()
    }
}

/// The level factor at `now`: the median of users(now) / users(now − k·P).
fn level(
    lookup: &Lookup,
    now: Timestamp,
    users_now: Option<u32>,
    period: SignedDuration,
    periods: u32,
) -> Level {
    let neutral = Level {
        factor: 1.0,
        unclamped: None,
        ratios: 0,
    };
    let Some(users_now) = users_now else {
        return neutral;
    };
    let mut ratios = [0.0; MAX_PERIODS];
    let mut n = 0;
    for k in 1..=periods {
        // A zero reading then says nothing about the level now.
        if let Some(then) = back(now, k, period).and_then(|b| lookup.nearest(b))
            && then > 0
        {
            ratios[n] = f64::from(users_now) / f64::from(then);
            n += 1;
        }
    }
    match median(&mut ratios[..n]) {
        Some(m) => Level {
            factor: m.clamp(LEVEL_MIN, LEVEL_MAX),
            unclamped: Some(m),
            ratios: n as u32,
        },
        None => neutral,
    }
}

/// t − k·period, if representable.
fn back(t: Timestamp, k: u32, period: SignedDuration) -> Option<Timestamp> {
    let offset = period.checked_mul(i32::try_from(k).ok()?)?;
    t.checked_sub(offset).ok()
}

/// The median of at most [`MAX_PERIODS`] values (the mean of the middle two
/// for an even count); sorts them in place.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Predicted users as a whole number of users (saturating, never negative).
fn round(users: f64) -> u32 {
    users.round() as u32
}

/// Nearest-sample lookups in the sorted samples up to now.
#[derive(Clone, Debug)]
struct Lookup<'a> {
    samples: &'a [(Timestamp, u32)],
    tolerance: SignedDuration,
    /// Lookups and the comparisons their binary searches made, so a test
    /// can tell a search from a scan without timing anything.
    #[cfg(test)]
    lookups: std::cell::Cell<usize>,
    #[cfg(test)]
    comparisons: std::cell::Cell<usize>,
}

impl<'a> Lookup<'a> {
    fn new(samples: &'a [(Timestamp, u32)], tolerance: SignedDuration) -> Self {
        Lookup {
            samples,
            tolerance: tolerance.max(SignedDuration::ZERO),
            #[cfg(test)]
            lookups: std::cell::Cell::new(0),
            #[cfg(test)]
            comparisons: std::cell::Cell::new(0),
        }
    }

    fn nearest(&self, t: Timestamp) -> Option<u32> {
        #[cfg(test)]
        self.lookups.set(self.lookups.get() + 1);
        let i = self.samples.partition_point(|(at, _)| {
            #[cfg(test)]
            self.comparisons.set(self.comparisons.get() + 1);
            *at < t
        });
        let before = i.checked_sub(1).and_then(|j| self.samples.get(j));
        let after = self.samples.get(i);
        let distance = |(at, _): &(Timestamp, u32)| t.duration_since(*at).abs();
        let best = match (before, after) {
            (Some(b), Some(a)) if distance(a) < distance(b) => a,
            (Some(b), _) => b,
            (None, Some(a)) => a,
            (None, None) => return None,
        };
        (distance(best) <= self.tolerance).then_some(best.1)
    }
}

/// One tick of a replay, for the accuracy scores of `simulate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// The users at the tick.
    pub actual: u32,
    /// The forecast's users for the tick, made from what was known before it.
    pub predicted: Option<u32>,
    /// The seasonal-naive prediction: the users at the same time last week.
    pub naive: Option<u32>,
    /// The forecast tier (the floor) in force at the tick.
    pub forecast_tier: Option<u32>,
    /// The tier the actual users needed.
    pub needed_tier: u32,
}

/// How well the forecast did over a replay.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    /// Ticks with a prediction.
    pub ticks: usize,
    /// Mean absolute error of the prediction, in users.
    pub mae: Option<f64>,
    /// The same for the seasonal-naive prediction.
    pub naive_mae: Option<f64>,
    /// MAE over MAE of seasonal naive, both over the ticks that have both
    /// (so the first week, which has no naive value, does not skew it);
    /// below 1 the forecast beats "same time last week".
    pub mase: Option<f64>,
    /// Share of ticks with a forecast tier where it held the tier needed, in percent.
    pub tier_covered_percent: Option<f64>,
}

/// Mean absolute error over (predicted, actual) pairs; `None` for none.
pub fn mae(pairs: impl IntoIterator<Item = (u32, u32)>) -> Option<f64> {
    let (sum, n) = pairs.into_iter().fold((0.0, 0usize), |(sum, n), (p, a)| {
        (sum + f64::from(p.abs_diff(a)), n + 1)
    });
    (n > 0).then(|| sum / n as f64)
}

/// Mean absolute scaled error over (predicted, naive, actual) triples: the
/// forecast's MAE over the seasonal-naive MAE. `None` without triples or
/// when the naive MAE is 0 (naive was perfect; no scale to compare on).
pub fn mase(triples: impl IntoIterator<Item = (u32, u32, u32)>) -> Option<f64> {
    let (own, naive, n) =
        triples
            .into_iter()
            .fold((0.0, 0.0, 0usize), |(own, naive, n), (p, s, a)| {
                (
                    own + f64::from(p.abs_diff(a)),
                    naive + f64::from(s.abs_diff(a)),
                    n + 1,
                )
            });
    (n > 0 && naive > 0.0).then(|| own / naive)
}

/// Percent of (forecast tier, needed tier) pairs where the forecast tier
/// held the need; `None` for none.
pub fn tier_covered_percent(pairs: impl IntoIterator<Item = (u32, u32)>) -> Option<f64> {
    let (held, n) = pairs
        .into_iter()
        .fold((0usize, 0usize), |(held, n), (f, need)| {
            (held + usize::from(f >= need), n + 1)
        });
    (n > 0).then(|| held as f64 * 100.0 / n as f64)
}

/// The accuracy scores of a replay.
pub fn accuracy(ticks: &[Tick]) -> Accuracy {
    let predicted = || {
        ticks
            .iter()
            .filter_map(|t| t.predicted.map(|p| (p, t.actual)))
    };
    Accuracy {
        ticks: predicted().count(),
        mae: mae(predicted()),
        naive_mae: mae(ticks.iter().filter_map(|t| t.naive.map(|s| (s, t.actual)))),
        mase: mase(
            ticks
                .iter()
                .filter_map(|t| Some((t.predicted?, t.naive?, t.actual))),
        ),
        tier_covered_percent: tier_covered_percent(
            ticks
                .iter()
                .filter_map(|t| t.forecast_tier.map(|f| (f, t.needed_tier))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiers::fixtures::table;

    const FIVE: SignedDuration = SignedDuration::from_mins(5);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn mins(m: i64) -> SignedDuration {
        SignedDuration::from_mins(m)
    }

    fn settings(lookback_weeks: u32, horizon_mins: i64, margin_percent: u32) -> Settings {
        Settings {
            lookback_weeks,
            horizon: mins(horizon_mins),
            margin_percent,
        }
    }

    /// A week of a real audience, in UTC: weekday evenings peak at 2000 at
    /// 20:30, weekends peak at 1200 at 14:00, nights sit at 300 / 400.
    fn weekly(t: Timestamp) -> u32 {
        let secs = t.as_second();
        let day = secs.div_euclid(86_400);
        let minute = secs.rem_euclid(86_400) as f64 / 60.0;
        // 1970-01-01 was a Thursday; 0 = Monday.
        let weekday = (day + 3).rem_euclid(7);
        let bump = |centre: f64, half: f64| (1.0 - (minute - centre).abs() / half).max(0.0);
        let users = if weekday < 5 {
            300.0 + 1700.0 * bump(20.5 * 60.0, 120.0)
        } else {
            400.0 + 800.0 * bump(14.0 * 60.0, 180.0)
        };
        users.round() as u32
    }

    /// Samples every `step` on [from, to), of `users(t)`.
    fn series(
        from: Timestamp,
        to: Timestamp,
        step: SignedDuration,
        users: impl Fn(Timestamp) -> u32,
    ) -> Vec<(Timestamp, u32)> {
        let mut out = vec![];
        let mut t = from;
        while t < to {
            out.push((t, users(t)));
            t = t.checked_add(step).unwrap();
        }
        out
    }

    /// `weeks` weeks of the weekly pattern every 5 minutes, up to `now`.
    fn weeks_of(now: Timestamp, weeks: i32) -> Vec<(Timestamp, u32)> {
        series(now - WEEK * weeks, now, FIVE, weekly)
    }

    /// A Monday, midnight UTC.
    const MONDAY: &str = "2026-03-02T00:00:00Z";

    fn at(offset: SignedDuration) -> Timestamp {
        ts(MONDAY) + WEEK * 4 + offset
    }

    fn predicted(f: &Forecast) -> &Prediction {
        f.prediction()
            .unwrap_or_else(|| panic!("expected a forecast: {f:?}"))
    }

    fn close(got: f64, want: f64, tolerance: f64) -> bool {
        (got - want).abs() <= tolerance
    }

    #[test]
    fn a_clean_weekly_pattern_is_predicted_within_a_small_error() {
        // Wednesday evening, Saturday afternoon, a Tuesday night, and a time
        // off the 5-minute grid.
        let nows = [
            at(DAY * 2 + mins(19 * 60 + 45)),
            at(DAY * 5 + mins(13 * 60)),
            at(DAY + mins(3 * 60)),
            at(DAY * 3 + mins(20 * 60 + 7)),
        ];
        for now in nows {
            let history = weeks_of(now, 4);
            let model = Model::new(&history, now, Some(weekly(now)), 3, FIVE).unwrap();
            assert_eq!(model.basis(), Basis::Weeks);
            assert_eq!(model.periods(), 3);
            assert_eq!(model.level().factor, 1.0, "at {now}");
            for ahead in [0, 1, 7, 13, 20, 45, 120] {
                let t = now + mins(ahead);
                let got = model.users_at(t).unwrap();
                // The nearest sample is at most 2.5 minutes off; the evening
                // ramp is 14 users a minute.
                let want = f64::from(weekly(t));
                assert!(
                    close(got, want, want * 0.03),
                    "at {t}: predicted {got}, actual {want}"
                );
            }
        }
        // Weekends are their own shape: Saturday 20:30 is not a weekday peak.
        let now = at(DAY * 5 + mins(20 * 60 + 30));
        let history = weeks_of(now, 4);
        let model = Model::new(&history, now, Some(weekly(now)), 3, FIVE).unwrap();
        assert_eq!(model.users_at(now).unwrap(), 400.0);
        let weekday = at(DAY * 4 + mins(20 * 60 + 30));
        let model = Model::new(&history, weekday, Some(2000), 3, FIVE).unwrap();
        assert_eq!(model.users_at(weekday).unwrap(), 2000.0);
    }

    #[test]
    fn the_floor_is_the_tier_of_the_peak_over_the_horizon_with_the_margin() {
        // Wednesday 19:45: the ramp climbs ~14 users a minute to the 20:30 peak.
        let now = at(DAY * 2 + mins(19 * 60 + 45));
        let history = weeks_of(now, 4);
        let f = forecast(
            &history,
            now,
            Some(weekly(now)),
            &settings(3, 20, 10),
            FIVE,
            &table(),
        );
        let p = predicted(&f);
        let want_peak = f64::from(weekly(now + mins(20)));
        assert!(close(f64::from(p.peak_users), want_peak, 30.0), "{p:?}");
        assert!(
            p.peak_at >= now + mins(18) && p.peak_at <= now + mins(20),
            "{p:?}"
        );
        assert_eq!(p.floor, table().needed(p.peak_users, 10).capacity, "{p:?}");
        assert_eq!(p.floor, 2000, "{p:?}");
        assert_eq!(f.floor(), Some(2000));
    }

    #[test]
    fn a_level_shift_is_followed_through_the_factor() {
        let now = at(DAY * 2 + mins(12 * 60));
        let history = weeks_of(now, 4);
        let usual = weekly(now);
        let model = Model::new(&history, now, Some(usual * 3 / 2), 3, FIVE).unwrap();
        let level = model.level();
        assert!(close(level.factor, 1.5, 1e-9), "{level:?}");
        assert_eq!(level.ratios, 3);
        let t = now + mins(15);
        assert!(close(
            model.users_at(t).unwrap(),
            1.5 * f64::from(weekly(t)),
            1.0
        ));
    }

    #[test]
    fn the_level_factor_is_clamped_to_half_and_double() {
        let now = at(DAY * 2 + mins(12 * 60));
        let history = weeks_of(now, 4);
        let usual = weekly(now);
        let up = Model::new(&history, now, Some(usual * 3), 3, FIVE).unwrap();
        assert_eq!(up.level().factor, 2.0);
        assert!(close(up.level().unclamped.unwrap(), 3.0, 1e-9));
        assert_eq!(up.users_at(now).unwrap(), 2.0 * f64::from(usual));
        let down = Model::new(&history, now, Some(usual / 5), 3, FIVE).unwrap();
        assert_eq!(down.level().factor, 0.5);
        assert!(close(down.level().unclamped.unwrap(), 0.2, 1e-9));
        let zero = Model::new(&history, now, Some(0), 3, FIVE).unwrap();
        assert_eq!(zero.level().factor, 0.5);
    }

    #[test]
    fn unknown_users_now_leave_the_seasonal_median_as_it_is() {
        let now = at(DAY * 2 + mins(12 * 60));
        let history = weeks_of(now, 4);
        let model = Model::new(&history, now, None, 3, FIVE).unwrap();
        assert_eq!(
            model.level(),
            Level {
                factor: 1.0,
                unclamped: None,
                ratios: 0
            }
        );
        assert_eq!(model.users_at(now).unwrap(), f64::from(weekly(now)));
    }

    /// Flat history whose level differs by week: k weeks back holds `levels[k-1]`.
    fn stepped(now: Timestamp, levels: &[u32]) -> Vec<(Timestamp, u32)> {
        let weeks = levels.len() as i32;
        series(now - WEEK * weeks, now, FIVE, |t| {
            let secs = now.duration_since(t).as_secs();
            let back = (secs + WEEK.as_secs() - 1) / WEEK.as_secs();
            levels[back as usize - 1]
        })
    }

    #[test]
    fn a_zero_reading_in_the_past_is_skipped_not_divided_by() {
        let now = at(mins(10 * 60));
        let history = stepped(now, &[0, 200, 400]);
        let model = Model::new(&history, now, Some(400), 3, FIVE).unwrap();
        // Ratios 400/200 and 400/400; the zero week gives none.
        assert_eq!(model.level().ratios, 2);
        assert!(close(model.level().factor, 1.5, 1e-9));
        // Only zeros: no ratio at all, the neutral factor, a forecast of 0.
        let zeros = stepped(now, &[0, 0]);
        let model = Model::new(&zeros, now, Some(400), 3, FIVE).unwrap();
        assert_eq!(model.level().ratios, 0);
        assert_eq!(model.level().factor, 1.0);
        let f = model.floor(mins(20), 10, &table());
        assert_eq!(predicted(&f).peak_users, 0);
        assert_eq!(f.floor(), Some(600));
    }

    #[test]
    fn a_missing_day_is_left_out_of_the_median() {
        let now = at(mins(10 * 60));
        let history = stepped(now, &[300, 200, 100]);
        let model = Model::new(&history, now, None, 3, FIVE).unwrap();
        assert_eq!(model.users_at(now).unwrap(), 200.0);
        // The store lost the whole day a week ago.
        let week_ago = now - WEEK;
        let gappy: Vec<_> = history
            .iter()
            .copied()
            .filter(|(t, _)| t.duration_since(week_ago).abs() > SignedDuration::from_hours(12))
            .collect();
        let model = Model::new(&gappy, now, None, 3, FIVE).unwrap();
        assert_eq!(model.users_at(now).unwrap(), 150.0);
        // Every week's day missing: no forecast rather than a made-up one.
        let none: Vec<_> = history
            .iter()
            .copied()
            .filter(|(t, _)| {
                (1..=3)
                    .all(|k| t.duration_since(now - WEEK * k).abs() > SignedDuration::from_hours(1))
            })
            .collect();
        let f = forecast(&none, now, None, &settings(3, 20, 10), FIVE, &table());
        assert_eq!(
            f,
            Forecast::NoForecast {
                reason: NoForecastReason::NoSamplesNear {
                    basis: Basis::Weeks,
                    tolerance: FIVE
                }
            }
        );
        assert_eq!(
            serde_json::to_value(&f).unwrap()["reason"],
            "no recorded users within ±5m of the same time of week in past weeks"
        );
    }

    #[test]
    fn a_sample_outside_the_tolerance_is_not_used() {
        let now = at(mins(10 * 60));
        let target = now - WEEK;
        let mut history: Vec<_> = series(now - WEEK - DAY, now, FIVE, |_| 100)
            .into_iter()
            .filter(|(t, _)| t.duration_since(target).abs() > mins(30))
            .collect();
        history.push((target + mins(6), 900));
        history.sort();
        assert_eq!(nearest(&history, target, FIVE), None);
        assert_eq!(nearest(&history, target, mins(6)), Some(900));
        assert_eq!(nearest(&history, target + mins(1), FIVE), Some(900));
        let model = Model::new(&history, now, None, 1, FIVE).unwrap();
        assert_eq!(model.users_at(now), None);
        assert_eq!(model.users_at(now + mins(1)), Some(900.0));
        let wider = Model::new(&history, now, None, 1, mins(6)).unwrap();
        assert_eq!(wider.users_at(now), Some(900.0));
    }

    #[test]
    fn the_nearest_sample_wins_and_a_tie_goes_to_the_earlier() {
        let t0 = ts(MONDAY);
        let samples = [(t0, 1), (t0 + mins(4), 2), (t0 + mins(10), 3)];
        assert_eq!(nearest(&samples, t0 + mins(1), FIVE), Some(1));
        assert_eq!(nearest(&samples, t0 + mins(3), FIVE), Some(2));
        assert_eq!(nearest(&samples, t0 + mins(7), FIVE), Some(2));
        assert_eq!(nearest(&samples, t0 + mins(15), FIVE), Some(3));
        assert_eq!(nearest(&samples, t0 + mins(16), FIVE), None);
        assert_eq!(nearest(&samples, t0 - mins(5), FIVE), Some(1));
        assert_eq!(nearest(&[], t0, FIVE), None);
        // A negative tolerance is an exact match only, not a panic.
        assert_eq!(nearest(&samples, t0 + mins(4), mins(-5)), Some(2));
        assert_eq!(nearest(&samples, t0 + mins(5), mins(-5)), None);
    }

    #[test]
    fn irregular_spacing_like_a_dst_change_does_not_break_it() {
        // Runs at uneven intervals, a skipped hour (a local-time cron on the
        // spring-forward night), a doubled hour at 2.5 minutes (fall back),
        // and a duplicated instant. The method works on UTC instants, so
        // none of it shifts the time of week.
        let now = at(DAY * 2 + mins(20 * 60));
        let start = now - WEEK * 4;
        let steps = [3, 7, 5, 4, 6, 5];
        let mut history = vec![];
        let mut t = start;
        let mut i = 0;
        while t < now {
            history.push((t, weekly(t)));
            let skipped = (now - WEEK).duration_since(t);
            let step = if skipped > mins(30) && skipped <= mins(35) {
                mins(60)
            } else if (now - WEEK * 2).duration_since(t).abs() < SignedDuration::from_hours(1) {
                SignedDuration::from_secs(150)
            } else {
                mins(steps[i % steps.len()])
            };
            if i % 97 == 0 {
                history.push((t, weekly(t)));
            }
            t += step;
            i += 1;
        }
        assert!(history.windows(2).all(|w| w[0].0 <= w[1].0));
        let model = Model::new(&history, now, Some(weekly(now)), 3, FIVE).unwrap();
        assert_eq!(model.basis(), Basis::Weeks);
        for ahead in 0..=60 {
            let t = now + mins(ahead);
            let got = model
                .users_at(t)
                .unwrap_or_else(|| panic!("no forecast at {t}"));
            let want = f64::from(weekly(t));
            assert!(
                close(got, want, want * 0.05),
                "at {t}: predicted {got}, actual {want}"
            );
        }
        let f = model.floor(mins(20), 10, &table());
        assert_eq!(
            f.floor(),
            Some(table().needed(weekly(now + mins(20)), 10).capacity)
        );
    }

    #[test]
    fn under_24_hours_of_history_there_is_no_forecast() {
        let now = at(mins(600));
        let history = series(now - SignedDuration::from_hours(23), now, FIVE, |_| 700);
        let f = forecast(
            &history,
            now,
            Some(700),
            &settings(3, 20, 10),
            FIVE,
            &table(),
        );
        assert_eq!(
            f,
            Forecast::NoForecast {
                reason: NoForecastReason::UnderOneDay {
                    history: SignedDuration::from_hours(23)
                }
            }
        );
        assert_eq!(f.floor(), None);
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"status": "no_forecast", "reason": "under 24 hours of history (23h)"})
        );
        let empty = forecast(&[], now, Some(700), &settings(3, 20, 10), FIVE, &table());
        assert_eq!(
            empty,
            Forecast::NoForecast {
                reason: NoForecastReason::NoHistory
            }
        );
        // Only readings after now (a replay's future) are no history either.
        let future = series(now + mins(5), now + DAY * 8, FIVE, |_| 700);
        assert_eq!(
            forecast(
                &future,
                now,
                Some(700),
                &settings(3, 20, 10),
                FIVE,
                &table()
            ),
            empty
        );
        let outlook = hourly(
            &history,
            now,
            Some(700),
            &settings(3, 20, 10),
            FIVE,
            &table(),
            6,
        );
        assert_eq!(
            outlook,
            Err(NoForecastReason::UnderOneDay {
                history: SignedDuration::from_hours(23)
            })
        );
    }

    #[test]
    fn between_a_day_and_a_week_the_same_time_of_day_is_used() {
        // A daily shape: 1500 from 12:00 to 14:00, 500 otherwise.
        let daily = |t: Timestamp| {
            let hour = t.as_second().rem_euclid(86_400) / 3600;
            if (12..14).contains(&hour) { 1500 } else { 500 }
        };
        let now = at(DAY * 3 + mins(11 * 60 + 50));
        let history = series(
            now - DAY * 3 - SignedDuration::from_hours(12),
            now,
            FIVE,
            daily,
        );
        let model = Model::new(&history, now, Some(500), 3, FIVE).unwrap();
        assert_eq!(model.basis(), Basis::Days);
        assert_eq!(model.periods(), 3);
        assert_eq!(model.users_at(now).unwrap(), 500.0);
        assert_eq!(model.users_at(now + mins(15)).unwrap(), 1500.0);
        let f = model.floor(mins(20), 10, &table());
        assert_eq!(predicted(&f).basis, Basis::Days);
        assert_eq!(f.floor(), Some(2000));
        // Exactly a day: one day back. Just under a week: six days.
        let day = series(now - DAY, now, FIVE, daily);
        assert_eq!(Model::new(&day, now, None, 3, FIVE).unwrap().periods(), 1);
        let almost = series(now - WEEK + FIVE, now, FIVE, daily);
        let model = Model::new(&almost, now, None, 3, FIVE).unwrap();
        assert_eq!((model.basis(), model.periods()), (Basis::Days, 6));
        // A week: weeks, as many as the history holds.
        let week = series(now - WEEK, now, FIVE, daily);
        let model = Model::new(&week, now, None, 3, FIVE).unwrap();
        assert_eq!((model.basis(), model.periods()), (Basis::Weeks, 1));
    }

    #[test]
    fn lookback_weeks_bounds_the_periods() {
        let now = at(mins(600));
        let history = weeks_of(now, 10);
        let periods = |weeks| {
            Model::new(&history, now, None, weeks, FIVE)
                .unwrap()
                .periods()
        };
        assert_eq!(periods(3), 3);
        assert_eq!(periods(8), 8);
        assert_eq!(periods(50), 8);
        assert_eq!(periods(0), 1);
    }

    #[test]
    fn the_floor_includes_the_margin_and_picks_the_tier() {
        let now = at(mins(600));
        let flat = |users: u32| {
            weeks_of(now, 2)
                .into_iter()
                .map(|(t, _)| (t, users))
                .collect::<Vec<_>>()
        };
        let cases = [
            // (users, margin, floor, above top)
            (900, 0, 1000, false),
            (900, 10, 1000, false), // 990
            (900, 12, 2000, false), // 1008
            (500, 20, 600, false),  // 600 exactly
            (501, 20, 1000, false), // 601.2
            (4600, 10, 5000, true), // 5060: above the top tier
            (0, 10, 600, false),
        ];
        for (users, margin, floor, above_top) in cases {
            let history = flat(users);
            let f = forecast(
                &history,
                now,
                Some(users),
                &settings(3, 20, margin),
                FIVE,
                &table(),
            );
            let p = predicted(&f);
            assert_eq!(
                (p.peak_users, p.floor, p.above_top, p.margin_percent),
                (users, floor, above_top, margin),
                "{users} users, margin {margin}%"
            );
        }
    }

    #[test]
    fn a_peak_15_minutes_ahead_raises_the_floor_now() {
        let now = at(mins(600));
        let spike = now + mins(15);
        let history = series(now - WEEK * 3, now, FIVE, |t| {
            let in_spike = (1..=3).any(|k| t == spike - WEEK * k);
            if in_spike { 1500 } else { 500 }
        });
        let floor = |horizon| {
            forecast(
                &history,
                now,
                Some(500),
                &settings(3, horizon, 10),
                FIVE,
                &table(),
            )
        };
        let f = floor(20);
        let p = predicted(&f);
        assert_eq!((p.floor, p.peak_users), (2000, 1500), "{p:?}");
        assert!(p.peak_at >= now + mins(13) && p.peak_at <= spike, "{p:?}");
        assert_eq!(floor(15).floor(), Some(2000));
        assert_eq!(floor(10).floor(), Some(600));
        assert_eq!(floor(0).floor(), Some(600));
        assert_eq!(floor(-30).floor(), Some(600));
    }

    #[test]
    fn a_horizon_between_minutes_includes_its_end() {
        let now = at(mins(600));
        let history = series(now - WEEK * 2, now, SignedDuration::from_secs(30), |t| {
            if (1..=2).any(|k| t == now + SignedDuration::from_secs(90) - WEEK * k) {
                1500
            } else {
                500
            }
        });
        let tol = SignedDuration::from_secs(10);
        let s = |secs| Settings {
            lookback_weeks: 2,
            horizon: SignedDuration::from_secs(secs),
            margin_percent: 0,
        };
        assert_eq!(
            forecast(&history, now, None, &s(90), tol, &table()).floor(),
            Some(2000)
        );
        assert_eq!(
            forecast(&history, now, None, &s(70), tol, &table()).floor(),
            Some(600)
        );
    }

    #[test]
    fn readings_after_now_are_ignored() {
        let now = at(DAY * 2 + mins(12 * 60));
        let past = weeks_of(now, 3);
        let mut whole = past.clone();
        whole.extend(series(now, now + WEEK, FIVE, |_| 50_000));
        let s = settings(3, 20, 10);
        assert_eq!(
            forecast(&whole, now, Some(weekly(now)), &s, FIVE, &table()),
            forecast(&past, now, Some(weekly(now)), &s, FIVE, &table())
        );
    }

    #[test]
    fn the_outlook_gives_the_tier_of_each_of_the_next_hours() {
        // Wednesday 16:00: six hours run over the evening peak.
        let now = at(DAY * 2 + mins(16 * 60));
        let history = weeks_of(now, 4);
        let s = settings(3, 20, 10);
        let hours = hourly(
            &history,
            now,
            Some(weekly(now)),
            &s,
            FIVE,
            &table(),
            STATUS_HOURS,
        )
        .unwrap();
        assert_eq!(hours.len(), 6);
        for (h, hour) in hours.iter().enumerate() {
            let start = now + SignedDuration::from_hours(h as i64);
            assert_eq!(hour.start, start);
            // Minutes on the grid or 1–2 past it read the sample before;
            // 3–4 past it the one after (every week is on the same grid).
            let peak = (0..60)
                .map(|m| weekly(start + mins(m / 5 * 5 + if m % 5 >= 3 { 5 } else { 0 })))
                .max()
                .unwrap();
            assert_eq!(hour.peak_users, Some(peak), "hour {h}");
            assert_eq!(
                hour.tier,
                Some(table().needed(peak, 10).capacity),
                "hour {h}"
            );
        }
        let tiers: Vec<_> = hours.iter().map(|h| h.tier.unwrap()).collect();
        assert_eq!(tiers, vec![600, 600, 1000, 2000, 3000, 2000]);
        // An hour with no past samples near it says so; the others do not.
        let gappy: Vec<_> = history
            .iter()
            .copied()
            .filter(|(t, _)| {
                (1..=3).all(|k| {
                    let d = t.duration_since(now + SignedDuration::from_hours(2) - WEEK * k);
                    d < -FIVE * 2 || d > SignedDuration::from_hours(1) + FIVE * 2
                })
            })
            .collect();
        let hours = hourly(&gappy, now, Some(weekly(now)), &s, FIVE, &table(), 6).unwrap();
        assert_eq!(hours[2].peak_users, None);
        assert_eq!(hours[2].tier, None);
        assert!(hours[1].tier.is_some() && hours[3].tier.is_some());
        // The outlook is bounded, not a loop over whatever count is asked.
        let model = Model::new(&history, now, None, 3, FIVE).unwrap();
        assert_eq!(model.hourly(u32::MAX, 10, &table()).len(), 168);
    }

    #[test]
    fn a_forecast_serializes_for_the_record_and_json_output() {
        let now = ts("2026-03-30T10:00:00Z");
        let history = series(now - WEEK * 2, now, FIVE, |_| 900);
        let f = forecast(
            &history,
            now,
            Some(1800),
            &settings(3, 20, 10),
            FIVE,
            &table(),
        );
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "predicted",
                "floor": 2000, // 1800 × 1.1 = 1980
                "above_top": false,
                "peak_users": 1800,
                "peak_at": "2026-03-30T10:00:00Z",
                "margin_percent": 10,
                "level": {"factor": 2.0, "unclamped": 2.0, "ratios": 2},
                "basis": "weeks",
                "periods": 2,
            })
        );
    }

    #[test]
    fn lookups_are_binary_searches_over_five_weeks_of_history() {
        // What `check` reads, and what `simulate` does at every tick.
        let now = at(mins(600));
        let history = weeks_of(now, 5);
        assert_eq!(history.len(), 5 * 7 * 24 * 12);
        let log2 = usize::BITS - history.len().leading_zeros();
        let s = settings(3, 20, 10);
        for tick in 0..200 {
            let t = now - mins(5 * tick);
            let model = Model::new(&history, t, Some(weekly(t)), s.lookback_weeks, FIVE).unwrap();
            assert!(
                model
                    .floor(s.horizon, s.margin_percent, &table())
                    .floor()
                    .is_some()
            );
            let lookups = model.lookup.lookups.get();
            // K for the level, K for each of the 21 minutes of the horizon.
            assert_eq!(lookups, 3 + 21 * 3, "tick {tick}");
            let per_lookup = model.lookup.comparisons.get() as f64 / lookups as f64;
            // A scan would make thousands.
            assert!(
                per_lookup <= f64::from(log2 + 1),
                "{per_lookup} comparisons a lookup"
            );
        }
    }

    /// `cargo test -p hpa-tier-core --release -- --ignored --nocapture forecast_speed`
    #[test]
    #[ignore = "a benchmark, not a check: prints the time"]
    fn forecast_speed() {
        let now = at(mins(600));
        let history = weeks_of(now, 5);
        let s = settings(3, 20, 10);
        let tiers = table();
        let started = std::time::Instant::now();
        let mut floors = 0u64;
        for &(t, users) in &history {
            // As `simulate` calls it: the whole replay, cut at each tick.
            let f = forecast(&history, t, Some(users), &s, FIVE, &tiers);
            floors += u64::from(f.floor().unwrap_or(0));
        }
        println!(
            "{} forecasts over {} samples in {:?} (checksum {floors})",
            history.len(),
            history.len(),
            started.elapsed()
        );
    }

    fn tick(actual: u32, predicted: Option<u32>, naive: Option<u32>) -> Tick {
        Tick {
            actual,
            predicted,
            naive,
            forecast_tier: None,
            needed_tier: 600,
        }
    }

    #[test]
    fn mae_is_the_mean_absolute_error() {
        assert_eq!(mae([(100, 110), (120, 100), (50, 50)]), Some(10.0));
        assert_eq!(mae([]), None);
    }

    #[test]
    fn mase_scales_by_the_seasonal_naive_error() {
        // Forecast errors 10, 10; naive errors 40, 0: MASE 20 / 40.
        assert_eq!(mase([(110, 140, 100), (210, 200, 200)]), Some(0.5));
        // Naive was perfect: no scale to compare on.
        assert_eq!(mase([(110, 100, 100)]), None);
        assert_eq!(mase([]), None);
    }

    #[test]
    fn tier_coverage_counts_ticks_whose_forecast_tier_held_the_need() {
        assert_eq!(
            tier_covered_percent([(2000, 1000), (1000, 1000), (600, 1000), (3000, 2000)]),
            Some(75.0)
        );
        assert_eq!(tier_covered_percent([]), None);
    }

    #[test]
    fn a_step_down_waits_for_the_peak_to_clear_twice_the_margin() {
        let t = table();
        // 2700 × 1.1 = 2970 fits tier 3000, so the floor is 3000; × 1.2 =
        // 3240 does not, so a step down from 4000 to 3000 still waits.
        let floor = t.needed(2700, 10).capacity;
        assert_eq!((floor, release_tier(2700, 10, &t)), (3000, 4000));
        // 2500 × 1.2 = 3000: the band is cleared.
        assert_eq!(release_tier(2500, 10, &t), 3000);
        assert_eq!(release_tier(2500, 0, &t), 3000, "no margin, no band");
        assert_eq!(release_tier(4900, 10, &t), 5000, "the top tier at most");
        assert_eq!(release_tier(100, u32::MAX, &t), 5000, "never overflows");
    }

    #[test]
    fn accuracy_compares_forecast_and_naive_on_the_ticks_that_have_both() {
        let mut ticks = vec![
            // The first week: a forecast (by days) but no naive value.
            tick(100, Some(400), None),
            tick(100, Some(120), Some(160)),
            tick(200, Some(180), Some(140)),
            tick(300, None, Some(300)),
        ];
        ticks[0].forecast_tier = Some(600);
        ticks[1].forecast_tier = Some(600);
        ticks[2].forecast_tier = Some(600);
        ticks[2].needed_tier = 1000;
        let a = accuracy(&ticks);
        assert_eq!(a.ticks, 3);
        assert_eq!(a.mae, Some((300.0 + 20.0 + 20.0) / 3.0));
        assert_eq!(a.naive_mae, Some((60.0 + 60.0 + 0.0) / 3.0));
        assert_eq!(a.mase, Some(40.0 / 120.0));
        assert_eq!(a.tier_covered_percent, Some(200.0 / 3.0));
        assert_eq!(
            accuracy(&[]),
            Accuracy {
                ticks: 0,
                mae: None,
                naive_mae: None,
                mase: None,
                tier_covered_percent: None
            }
        );
    }
}
