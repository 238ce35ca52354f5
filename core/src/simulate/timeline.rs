//! Time in a replay: the span it covers (its ticks and scored minutes) and
//! tiers over time as a step function — the tiers the policy applied, and
//! the tiers that actually served users once new pods were ready.
//!
//! The `--ready` rule (a rise takes effect `ready` later, a fall
//! at once) is read as: capacity serves users only once it has been asked
//! for without a break for `ready`. So the effective tier at `t` is the
//! lowest applied tier over `[t − ready, t]`. This covers the cases the
//! two-line rule leaves open, always on the safe side (never more capacity
//! than pods could have delivered):
//! - a fall while a rise is still starting: the new lower tier takes effect
//!   when the pods started for the rise (which include its pods) are ready,
//!   not before, and the pending rise above it never serves;
//! - a second rise while a first is starting: each serves `ready` after it
//!   was applied;
//! - a rise right after a fall: the pods were gone, so it waits `ready`.

use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use super::trace::Trace;

/// The instants a replay covers: `[start, end)`, `end` the trace's last sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SpanError {
    #[error(
        "--start {start} is outside the trace, which runs from {first} to {last}; \
         start at or after the first sample and before the last"
    )]
    StartOutside {
        start: Timestamp,
        first: Timestamp,
        last: Timestamp,
    },
    #[error("--tick must be at least one second, got {0:#}")]
    Tick(SignedDuration),
    #[error(
        "the trace runs from {first} to {last}; simulate replays times from the year 1 \
         to 9998 (each check looks weeks back and ahead)"
    )]
    OutOfRange { first: Timestamp, last: Timestamp },
    #[error(
        "the trace runs from {first} to {last}, longer than the {days} days simulate replays; \
         cut it to the part to replay"
    )]
    TooLong {
        first: Timestamp,
        last: Timestamp,
        days: i64,
    },
    #[error(
        "every {tick:#} from {first} to {last} would be {ticks} checks, more than the {max} \
         simulate replays; give a longer --tick or a shorter trace"
    )]
    TooManyTicks {
        first: Timestamp,
        last: Timestamp,
        tick: SignedDuration,
        ticks: i64,
        max: i64,
    },
}

/// The longest trace a replay covers (a year and a month: its minutes are
/// scored one by one).
pub const MAX_TRACE: SignedDuration = SignedDuration::from_hours(400 * 24);
/// The most checks a replay runs (two years of 5-minute ticks), warm-up
/// included: each keeps its record.
pub const MAX_TICKS: i64 = 210_000;

/// Times a replay may cover: every check reads weeks of history and looks
/// days ahead, which must stay within what a timestamp can hold.
fn replayable(t: Timestamp) -> bool {
    let earliest: Timestamp = "0001-01-01T00:00:00Z".parse().expect("a valid instant");
    let latest: Timestamp = "9998-12-31T00:00:00Z".parse().expect("a valid instant");
    (earliest..=latest).contains(&t)
}

impl Span {
    /// The replay of `trace` from `start` (default: its first sample) to its
    /// last sample. Starting outside the trace would score users it does not have.
    pub fn of(trace: &Trace, start: Option<Timestamp>) -> Result<Span, SpanError> {
        let (first, last) = (trace.start(), trace.end());
        if !replayable(first) || !replayable(last) {
            return Err(SpanError::OutOfRange { first, last });
        }
        if last.duration_since(first) > MAX_TRACE {
            return Err(SpanError::TooLong {
                first,
                last,
                days: MAX_TRACE.as_hours() / 24,
            });
        }
        let start = start.unwrap_or(first);
        if start < first || start >= last {
            return Err(SpanError::StartOutside { start, first, last });
        }
        Ok(Span { start, end: last })
    }

    /// The simulated `check` runs: `start`, `start + every`, … before `end`
    /// (a run at `end` would decide for minutes the trace does not have).
    pub fn ticks(&self, every: SignedDuration) -> Result<Vec<Timestamp>, SpanError> {
        if every < SignedDuration::from_secs(1) {
            return Err(SpanError::Tick(every));
        }
        Ok(steps(self.start, self.end, every).collect())
    }

    /// The scored minutes: `start + k·1m` before `end`, each standing for
    /// the minute it begins.
    pub fn minutes(&self) -> impl Iterator<Item = Timestamp> + use<> {
        steps(self.start, self.end, SignedDuration::from_mins(1))
    }

    pub fn minute_count(&self) -> usize {
        self.minutes().count()
    }
}

fn steps(
    start: Timestamp,
    end: Timestamp,
    every: SignedDuration,
) -> impl Iterator<Item = Timestamp> {
    std::iter::successors(Some(start), move |t| t.checked_add(every).ok())
        .take_while(move |t| *t < end)
}

/// A tier capacity over time: `initial` until the first step (and for all
/// time before it), then each step's capacity from its instant on. Steps
/// are strictly increasing in time and each changes the capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    initial: u32,
    steps: Vec<(Timestamp, u32)>,
}

/// One step of a [`Timeline`]: the capacity went `from` → `to` at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub at: Timestamp,
    pub from: u32,
    pub to: u32,
}

impl Timeline {
    /// The tiers applied by the replay's ticks: `initial` (the tier in place
    /// when it starts, taken as ready), then each tick's decided capacity.
    /// Ticks that keep the tier add nothing; of several at one instant the
    /// last counts. Ticks are taken in time order whatever order they come in.
    pub fn from_decisions(
        initial: u32,
        decisions: impl IntoIterator<Item = (Timestamp, u32)>,
    ) -> Timeline {
        let mut decisions: Vec<(Timestamp, u32)> = decisions.into_iter().collect();
        decisions.sort_by_key(|&(t, _)| t);
        let mut line = Timeline {
            initial,
            steps: vec![],
        };
        for (t, c) in decisions {
            line.push(t, c);
        }
        line
    }

    fn push(&mut self, at: Timestamp, capacity: u32) {
        if let Some(last) = self.steps.last_mut()
            && last.0 == at
        {
            last.1 = capacity;
            let before = self
                .steps
                .len()
                .checked_sub(2)
                .map_or(self.initial, |i| self.steps[i].1);
            if before == capacity {
                self.steps.pop();
            }
            return;
        }
        if self.capacity_at(at) != capacity {
            self.steps.push((at, capacity));
        }
    }

    /// The capacity in force at `t`.
    pub fn capacity_at(&self, t: Timestamp) -> u32 {
        let after = self.steps.partition_point(|&(s, _)| s <= t);
        after
            .checked_sub(1)
            .map_or(self.initial, |i| self.steps[i].1)
    }

    pub fn initial(&self) -> u32 {
        self.initial
    }

    /// Every change, in time order.
    pub fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        let froms = std::iter::once(self.initial).chain(self.steps.iter().map(|&(_, c)| c));
        self.steps
            .iter()
            .zip(froms)
            .map(|(&(at, to), from)| Step { at, from, to })
    }

    /// The tiers that served users when these were applied and new pods take
    /// `ready` to serve: the lowest applied tier over `[t − ready, t]` (see
    /// the module docs). A negative `ready` counts as zero.
    pub fn effective(&self, ready: SignedDuration) -> Timeline {
        let ready = ready.max(SignedDuration::ZERO);
        // The minimum over the window changes only when a step enters it
        // (at its instant) or the value before a step leaves it (`ready` later).
        let mut candidates: Vec<Timestamp> = self
            .steps
            .iter()
            .flat_map(|&(t, _)| [Some(t), t.checked_add(ready).ok()])
            .flatten()
            .collect();
        candidates.sort();
        candidates.dedup();
        let mut out = Timeline {
            initial: self.initial,
            steps: vec![],
        };
        for t in candidates {
            let from = t.checked_sub(ready).unwrap_or(Timestamp::MIN);
            out.push(t, self.lowest_over(from, t));
        }
        out
    }

    /// The lowest capacity in force at any instant of `[from, to]`.
    fn lowest_over(&self, from: Timestamp, to: Timestamp) -> u32 {
        let first = self.steps.partition_point(|&(s, _)| s <= from);
        let last = self.steps.partition_point(|&(s, _)| s <= to);
        self.steps[first..last]
            .iter()
            .map(|&(_, c)| c)
            .fold(self.capacity_at(from), u32::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hhmm: &str) -> Timestamp {
        format!("2026-03-02T{hhmm}:00Z").parse().unwrap()
    }

    fn mins(m: i64) -> SignedDuration {
        SignedDuration::from_mins(m)
    }

    fn steps(line: &Timeline) -> Vec<(Timestamp, u32, u32)> {
        line.steps().map(|s| (s.at, s.from, s.to)).collect()
    }

    #[test]
    fn decisions_that_keep_the_tier_are_not_steps() {
        let line = Timeline::from_decisions(
            600,
            [
                (t("10:00"), 600),
                (t("10:05"), 2000),
                (t("10:10"), 2000),
                (t("10:15"), 1000),
            ],
        );
        assert_eq!(
            steps(&line),
            vec![(t("10:05"), 600, 2000), (t("10:15"), 2000, 1000)]
        );
        assert_eq!(line.capacity_at(t("09:00")), 600);
        assert_eq!(line.capacity_at(t("10:04")), 600);
        assert_eq!(line.capacity_at(t("10:05")), 2000);
        assert_eq!(line.capacity_at(t("10:14")), 2000);
        assert_eq!(line.capacity_at(t("23:00")), 1000);
    }

    #[test]
    fn a_trace_at_the_ends_of_time_is_refused_not_replayed() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        for (first, last) in [
            ("-009999-01-03T00:00:00Z", "-009999-01-03T01:00:00Z"),
            ("9999-12-30T00:00:00Z", "9999-12-30T01:00:00Z"),
        ] {
            let trace = Trace::from_samples(vec![(at(first), 5), (at(last), 6)]).unwrap();
            let e = Span::of(&trace, None).unwrap_err();
            assert!(matches!(e, SpanError::OutOfRange { .. }), "{e}");
            assert!(e.to_string().contains("from the year 1 to 9998"), "{e}");
        }
        for (first, last) in [
            ("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
            ("9998-12-30T00:00:00Z", "9998-12-31T00:00:00Z"),
        ] {
            let trace = Trace::from_samples(vec![(at(first), 5), (at(last), 6)]).unwrap();
            assert!(Span::of(&trace, None).is_ok(), "{first}");
        }
        let long = Trace::from_samples(vec![
            (at("2026-01-01T00:00:00Z"), 5),
            (at("2027-02-05T00:00:01Z"), 6),
        ])
        .unwrap();
        let e = Span::of(&long, None).unwrap_err();
        assert!(e.to_string().contains("longer than the 400 days"), "{e}");
    }

    #[test]
    fn the_last_decision_at_one_instant_counts() {
        let line = Timeline::from_decisions(
            600,
            [(t("10:00"), 2000), (t("10:00"), 600), (t("10:05"), 1000)],
        );
        assert_eq!(steps(&line), vec![(t("10:05"), 600, 1000)]);
    }

    #[test]
    fn a_rise_serves_ready_later_and_a_fall_at_once() {
        let applied = Timeline::from_decisions(600, [(t("10:00"), 2000), (t("11:00"), 1000)]);
        let served = applied.effective(mins(2));
        assert_eq!(
            steps(&served),
            vec![(t("10:02"), 600, 2000), (t("11:00"), 2000, 1000)]
        );
        assert_eq!(served.capacity_at(t("10:01")), 600);
    }

    #[test]
    fn no_ready_delay_serves_what_is_applied() {
        let applied = Timeline::from_decisions(600, [(t("10:00"), 2000), (t("11:00"), 1000)]);
        assert_eq!(applied.effective(SignedDuration::ZERO), applied);
        assert_eq!(
            applied.effective(mins(-5)),
            applied,
            "negative counts as zero"
        );
    }

    #[test]
    fn a_fall_before_a_pending_rise_is_ready_waits_for_the_pods_it_keeps() {
        // 600 → 2000 at 10:00 (ready 10:03), → 1000 at 10:01: the 1000 pods
        // started at 10:00 serve at 10:03; 2000 never serves.
        let applied = Timeline::from_decisions(600, [(t("10:00"), 2000), (t("10:01"), 1000)]);
        let served = applied.effective(mins(3));
        assert_eq!(steps(&served), vec![(t("10:03"), 600, 1000)]);
    }

    #[test]
    fn a_fall_below_the_serving_tier_during_a_pending_rise_is_at_once() {
        let applied = Timeline::from_decisions(1000, [(t("10:00"), 2000), (t("10:01"), 600)]);
        let served = applied.effective(mins(3));
        assert_eq!(steps(&served), vec![(t("10:01"), 1000, 600)]);
    }

    #[test]
    fn two_rises_in_a_row_each_serve_ready_after_they_were_applied() {
        let applied = Timeline::from_decisions(600, [(t("10:00"), 1000), (t("10:01"), 2000)]);
        let served = applied.effective(mins(2));
        assert_eq!(
            steps(&served),
            vec![(t("10:02"), 600, 1000), (t("10:03"), 1000, 2000)]
        );
    }

    #[test]
    fn a_rise_right_after_a_fall_waits_for_new_pods() {
        let applied = Timeline::from_decisions(2000, [(t("10:00"), 600), (t("10:01"), 2000)]);
        let served = applied.effective(mins(2));
        assert_eq!(
            steps(&served),
            vec![(t("10:00"), 2000, 600), (t("10:03"), 600, 2000)]
        );
    }

    #[test]
    fn a_rise_at_the_first_tick_is_not_ready_at_once() {
        let applied = Timeline::from_decisions(600, [(t("10:00"), 3000)]);
        let served = applied.effective(mins(2));
        assert_eq!(served.capacity_at(t("10:00")), 600);
        assert_eq!(served.capacity_at(t("10:02")), 3000);
    }

    fn trace() -> Trace {
        Trace::from_samples(vec![(t("10:00"), 1), (t("10:10"), 2)]).unwrap()
    }

    #[test]
    fn the_span_runs_from_the_start_to_the_last_sample() {
        let span = Span::of(&trace(), None).unwrap();
        assert_eq!((span.start, span.end), (t("10:00"), t("10:10")));
        assert_eq!(span.minute_count(), 10);
        assert_eq!(span.minutes().last(), Some(t("10:09")));
        assert_eq!(span.ticks(mins(5)).unwrap(), vec![t("10:00"), t("10:05")]);
        assert_eq!(
            span.ticks(mins(3)).unwrap(),
            vec![t("10:00"), t("10:03"), t("10:06"), t("10:09")]
        );
        let late = Span::of(&trace(), Some(t("10:04"))).unwrap();
        assert_eq!(late.minute_count(), 6);
    }

    #[test]
    fn a_start_outside_the_trace_or_a_zero_tick_is_refused() {
        for start in [t("09:59"), t("10:10"), t("11:00")] {
            let e = Span::of(&trace(), Some(start)).unwrap_err();
            assert!(e.to_string().contains("outside the trace"), "{e}");
        }
        let span = Span::of(&trace(), None).unwrap();
        let e = span.ticks(SignedDuration::ZERO).unwrap_err();
        assert!(e.to_string().contains("--tick"), "{e}");
    }
}
