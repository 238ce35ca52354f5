//! Schedule windows: named times, given as a cron pattern or a
//! one-off start in a time zone, during which a tier capacity is a floor of
//! the decision. This module owns what a validated schedule is and the
//! questions asked of it — which window is active now, which ones start in
//! a span of time, what names an occurrence — as pure functions of `now`.
//!
//! Local time is resolved by one rule, ours rather than the cron library's:
//! a start that does not exist (a spring-forward gap) moves to the first
//! instant after the gap; an ambiguous one (a fall-back fold) takes the
//! earlier instant, once. croner is therefore only asked about civil
//! (zone-less) times, which have no gaps and no folds.
//!
//! `skip_dates` hold back cron starts only; a one-off `at` on a skipped
//! date still happens (it was written for that date, and a missed raise
//! costs more than an extra one).
//!
//! Time zones come from the database compiled into the binary, never the
//! host's, so a schedule means the same on a laptop and in a distroless image.

mod listing;
mod spec;
#[cfg(test)]
mod tests;

use croner::Cron;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, Zoned};

pub use listing::{WindowRow, upcoming};
pub use spec::{ScheduleError, ScheduleErrorKind, ScheduleSpec, SchedulesSpec, bundled_zone};

/// The shortest window a schedule may have.
pub const MIN_DURATION: SignedDuration = SignedDuration::from_mins(1);
/// The longest window, and so how far back a start can still be active.
pub const MAX_DURATION: SignedDuration = SignedDuration::from_hours(7 * 24);
/// How long before its start a window raises the tier when `lead` is not given.
pub const DEFAULT_LEAD: SignedDuration = SignedDuration::from_mins(10);
/// How far ahead pre-flight looks when `preflight_hours` is not given.
pub const DEFAULT_PREFLIGHT_HOURS: u32 = 24;
/// The longest pre-flight look-ahead (as long as the longest hold).
pub const MAX_PREFLIGHT_HOURS: u32 = 30 * 24;

/// A parsed 5-field cron pattern, with the text it was written as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronPattern {
    text: String,
    // Boxed: a parsed pattern is ten times the size of the other `When`.
    cron: Box<Cron>,
}

impl CronPattern {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// When a schedule's windows start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// Every local time the pattern matches, in the schedule's zone.
    Cron(CronPattern),
    /// Once, at this instant.
    At(Timestamp),
}

/// One validated entry of `schedules`. Built only by [`Schedules::new`].
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    name: String,
    when: When,
    duration: SignedDuration,
    capacity: u32,
    lead: SignedDuration,
    zone: TimeZone,
}

impl Schedule {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn when(&self) -> &When {
        &self.when
    }
    pub fn duration(&self) -> SignedDuration {
        self.duration
    }
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
    pub fn lead(&self) -> SignedDuration {
        self.lead
    }
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    fn occurrence(&self, start: Timestamp) -> Occurrence {
        Occurrence {
            name: self.name.clone(),
            capacity: self.capacity,
            start,
            end: shift(start, self.duration),
            lead: self.lead,
            zone: self.zone.clone(),
        }
    }

    /// Starts in `[from, until)`, in order. `skip` (sorted) holds the local
    /// dates on which no cron window starts; a one-off `at` ignores it.
    fn starts<'a>(&'a self, from: Timestamp, until: Timestamp, skip: &'a [Date]) -> Starts<'a> {
        match &self.when {
            When::At(at) => Starts::At((from <= *at && *at < until).then_some(*at)),
            When::Cron(pattern) => Starts::Cron(CronStarts::new(
                &pattern.cron,
                &self.zone,
                skip,
                from,
                until,
            )),
        }
    }

    /// The earliest start whose window `[start - lead, start + duration)`
    /// holds `now`.
    fn first_active(&self, now: Timestamp, skip: &[Date]) -> Option<Timestamp> {
        let after = |t: Timestamp| shift(t, SignedDuration::from_nanos(1));
        self.starts(
            after(shift(now, -self.duration)),
            after(shift(now, self.lead)),
            skip,
        )
        .next()
    }
}

/// The validated `schedules`, `skip_dates` and `preflight_hours` of the
/// configuration. Built only by [`Schedules::new`]; `Default` is "no
/// schedules" (what a config without the keys means).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedules {
    entries: Vec<Schedule>,
    /// Sorted, without repeats; read in each entry's own zone.
    skip_dates: Vec<Date>,
    preflight: SignedDuration,
    zone: TimeZone,
}

impl Default for Schedules {
    fn default() -> Self {
        Schedules {
            entries: vec![],
            skip_dates: vec![],
            preflight: SignedDuration::from_hours(i64::from(DEFAULT_PREFLIGHT_HOURS)),
            zone: TimeZone::UTC,
        }
    }
}

impl Schedules {
    /// The entries in the order of the config.
    pub fn entries(&self) -> &[Schedule] {
        &self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Local dates on which no cron window starts, sorted.
    pub fn skip_dates(&self) -> &[Date] {
        &self.skip_dates
    }
    /// How far ahead pre-flight looks (`preflight_hours`).
    pub fn preflight(&self) -> SignedDuration {
        self.preflight
    }
    /// The config's `timezone` (UTC when absent): the zone of entries
    /// without their own, and of local times elsewhere in the config.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The window that sets the floor at `now`: of all windows active at
    /// `now` (`[start - lead, start + duration)`), the highest capacity;
    /// among equals the earliest start, then the first name.
    pub fn active(&self, now: Timestamp) -> Option<Occurrence> {
        self.entries
            .iter()
            .filter_map(|s| Some((s, s.first_active(now, &self.skip_dates)?)))
            .min_by(|(a, a_start), (b, b_start)| {
                b.capacity
                    .cmp(&a.capacity)
                    .then(a_start.cmp(b_start))
                    .then(a.name.cmp(&b.name))
            })
            .map(|(s, start)| s.occurrence(start))
    }

    /// Every occurrence that starts in `[from, until)`, by start, then name.
    /// A window already running at `from` is not among them: ask
    /// [`Schedules::active`] for it.
    pub fn occurrences(&self, from: Timestamp, until: Timestamp) -> Vec<Occurrence> {
        let mut all: Vec<Occurrence> = self
            .entries
            .iter()
            .flat_map(|s| {
                s.starts(from, until, &self.skip_dates)
                    .map(|start| s.occurrence(start))
            })
            .collect();
        all.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
        all
    }

    /// The occurrences pre-flight checks at `now`: those starting within
    /// `preflight_hours`, including any already raising in their lead.
    pub fn preflight_due(&self, now: Timestamp) -> Vec<Occurrence> {
        self.occurrences(now, shift(now, self.preflight))
    }
}

/// One occurrence of a schedule's window.
#[derive(Clone, Debug, PartialEq)]
pub struct Occurrence {
    pub name: String,
    pub capacity: u32,
    pub start: Timestamp,
    /// Exclusive: the window is over at this instant.
    pub end: Timestamp,
    pub lead: SignedDuration,
    pub zone: TimeZone,
}

impl Occurrence {
    /// When the floor takes effect: `lead` before the start.
    pub fn raise_from(&self) -> Timestamp {
        shift(self.start, -self.lead)
    }

    pub fn is_active(&self, now: Timestamp) -> bool {
        self.raise_from() <= now && now < self.end
    }

    /// Names this occurrence across runs (`evening-peak@2026-12-14T11:00:00Z`),
    /// e.g. to send its pre-flight notice once. UTC, so neither the zone's
    /// rules nor a config edit that keeps the start change it.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.start)
    }

    pub fn local_start(&self) -> Zoned {
        self.start.to_zoned(self.zone.clone())
    }

    pub fn local_end(&self) -> Zoned {
        self.end.to_zoned(self.zone.clone())
    }
}

/// `t + d`, held at the ends of the representable range instead of failing.
fn shift(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(t)
}

/// The instant a local time means, by the rule above: a time in a gap
/// moves to the end of the gap; a time in a fold takes its first instant.
/// Also `simulate`'s rule for local times in a trace. `None`: out of range.
pub fn local_instant(zone: &TimeZone, local: DateTime) -> Option<Timestamp> {
    match zone.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
        // Clocks went back: the offset before the transition is the larger
        // one, so it names the earlier of the two instants.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok(),
        // Clocks went forward: `local` read with the later offset is an
        // instant before the transition, which is the next one after it.
        AmbiguousOffset::Gap { after, .. } => {
            let before_gap = after.to_timestamp(local).ok()?;
            zone.following(before_gap).next().map(|t| t.timestamp())
        }
    }
}

/// The starts of one schedule in a span of time.
enum Starts<'a> {
    At(Option<Timestamp>),
    Cron(CronStarts<'a>),
}

impl Iterator for Starts<'_> {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        match self {
            Starts::At(at) => at.take(),
            Starts::Cron(c) => c.next(),
        }
    }
}

/// Walks the local (civil) times a cron pattern matches and resolves each to
/// an instant. [`resolve`] never goes backwards as civil time goes forwards,
/// so the starts come out in order and the walk can stop at `until`; two
/// times in one gap resolve to the same instant and count once.
struct CronStarts<'a> {
    cron: &'a Cron,
    zone: &'a TimeZone,
    skip: &'a [Date],
    /// The next civil time to search from.
    cursor: DateTime,
    inclusive: bool,
    from: Timestamp,
    until: Timestamp,
    last: Option<Timestamp>,
}

impl<'a> CronStarts<'a> {
    fn new(
        cron: &'a Cron,
        zone: &'a TimeZone,
        skip: &'a [Date],
        from: Timestamp,
        until: Timestamp,
    ) -> Self {
        // `from` just after a spring-forward transition is also the instant
        // every time in the gap resolves to, and those civil times lie before
        // `from`'s own local time; reading `from` with the offset in force
        // just before it starts the walk at the gap.
        let just_before = shift(from, SignedDuration::from_nanos(-1));
        let cursor = zone
            .to_datetime(from)
            .min(zone.to_offset(just_before).to_datetime(from));
        CronStarts {
            cron,
            zone,
            skip,
            cursor,
            inclusive: true,
            from,
            until,
            last: None,
        }
    }
}

impl Iterator for CronStarts<'_> {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        loop {
            // An error is croner's search limit (a pattern that no longer
            // matches within its years): no more starts.
            let local = self
                .cron
                .find_next_occurrence(&self.cursor, self.inclusive)
                .ok()?;
            self.cursor = local;
            self.inclusive = false;
            let start = local_instant(self.zone, local)?;
            if start >= self.until {
                return None;
            }
            if start < self.from || self.last == Some(start) {
                continue;
            }
            let date = self.zone.to_datetime(start).date();
            if self.skip.binary_search(&date).is_ok() {
                // Nothing starts on that date: resume at the next one.
                if let Ok(next) = date.tomorrow() {
                    self.cursor = self
                        .cursor
                        .max(next.to_datetime(jiff::civil::Time::midnight()));
                    self.inclusive = true;
                }
                continue;
            }
            self.last = Some(start);
            return Some(start);
        }
    }
}
