//! Bounded fuzzing of the core's own parsers of outside text: `simulate`'s
//! trace (`Trace::parse`), the schedule keys (`Schedules::new`: cron
//! patterns, one-off times, durations, zones, skip dates) and operator
//! durations (`duration::parse`). Inputs are arbitrary text and mutations
//! of valid input from fixed seeds; each must be a clean `Err` or an `Ok`
//! that keeps the type's promises, and what the decision then asks of it
//! (users at an instant, the active window, pre-flight) must not panic.

use hpa_tier_core::duration;
use hpa_tier_core::schedule::{ScheduleSpec, Schedules, SchedulesSpec};
use hpa_tier_core::simulate::trace::{MAX_USERS, Trace};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

fn fuzz<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(0xc07e_5eed),
        failure_persistence: None,
        ..Config::default()
    };
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
}

/// `text` with up to eight byte edits (flip, insert, delete, cut) or
/// splices of awkward pieces, read back as UTF-8 (lossy).
fn mutated(text: &'static str) -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "-",
        "+",
        "9999999999999999999999",
        "2147483648",
        "-1",
        "1e9",
        ".",
        ":",
        "T",
        " ",
        ",",
        "\"",
        "#",
        "{",
        "}",
        "\n",
        "\r\n",
        "\u{feff}",
        "é",
        "24:00",
        "60",
        "Z",
        "+25:00",
        "*/0",
        "L",
        "W",
        "#6",
        "?",
        "0-59/1000",
        "MON-SUN",
        "0 0 30 2 *",
        "\u{0}",
    ];
    let edit = (0..5u8, any::<usize>(), any::<u8>());
    prop::collection::vec(edit, 0..8).prop_map(move |edits| {
        let mut b = text.as_bytes().to_vec();
        for (kind, at, x) in edits {
            let at = at % (b.len() + 1);
            match kind {
                0 if !b.is_empty() => {
                    let i = at.min(b.len() - 1);
                    b[i] ^= 1 << (x % 8);
                }
                1 => b.insert(at, x),
                2 => {
                    let end = (at + usize::from(x % 16) + 1).min(b.len());
                    b.drain(at..end);
                }
                3 => b.truncate(at),
                _ => {
                    let p = PIECES[usize::from(x) % PIECES.len()].as_bytes();
                    b.splice(at..at, p.iter().copied());
                }
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

/// `valid` itself, mutated, or arbitrary.
fn text_or(valid: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(valid.to_string()), 6 => mutated(valid), 1 => "\\PC{0,40}"]
}

fn now() -> Timestamp {
    "2026-12-01T09:00:00Z".parse().unwrap()
}

const CSV: &str = "time,users\n2026-03-02T19:00:00+08:00,1200\n2026-03-02 11:05,1300\n\
    # a comment\n2026-03-02T11:10:00Z,\"1250\"\n";
const JSONL: &str = "{\"time\": \"2026-03-02T19:00:00+08:00\", \"users\": 1200}\n\
    {\"time\": \"2026-03-02 19:05:30.5\", \"users\": 0}\n";

#[test]
fn fuzz_traces_parse_to_sorted_samples_in_range_or_a_line_error() {
    let zones = [
        "UTC",
        "Asia/Shanghai",
        "America/New_York",
        "Australia/Lord_Howe",
    ];
    Trace::parse(CSV, &TimeZone::UTC).unwrap();
    Trace::parse(JSONL, &TimeZone::UTC).unwrap();
    let input = prop_oneof![text_or(CSV), text_or(JSONL)];
    fuzz(3000, (input, 0..zones.len()), |(text, zone)| {
        let tz = jiff::tz::db().get(zones[zone]).unwrap();
        let Ok(trace) = Trace::parse(&text, &tz) else {
            return Ok(());
        };
        let s = trace.samples();
        prop_assert!(s.len() >= 2);
        prop_assert!(s.windows(2).all(|w| w[0].0 < w[1].0), "{s:?}");
        prop_assert!(s.iter().all(|(_, u)| *u <= MAX_USERS));
        for t in [
            Timestamp::MIN,
            trace.start(),
            now(),
            trace.end(),
            Timestamp::MAX,
        ] {
            prop_assert!(trace.users_at(t) <= trace.peak());
        }
        Ok(())
    });
}

/// A schedule entry from valid, mutated or arbitrary strings for every key.
fn entry() -> impl Strategy<Value = ScheduleSpec> {
    let zone = prop_oneof![
        3 => Just(None),
        1 => prop_oneof![Just("Asia/Shanghai"), Just("America/New_York"), Just("Europe/Dublin")]
            .prop_map(|z| Some(z.to_string())),
        1 => text_or("Asia/Kolkata").prop_map(Some),
    ];
    (
        prop_oneof![4 => "[a-z]{1,6}", 1 => text_or("evening-peak")],
        prop_oneof![
            3 => prop_oneof![text_or("0 19 * * 1-5"), text_or("*/5 * * * *"), text_or("0 9 * * *")]
                .prop_map(|c| (Some(c), None)),
            3 => prop_oneof![text_or("2026-12-01T08:30"), text_or("2026-12-01T09:00:00+08:00")]
                .prop_map(|a| (None, Some(a))),
            1 => (text_or("*/5 * * * *"), text_or("2026-12-01T09:00:00+08:00"))
                .prop_map(|(c, a)| (Some(c), Some(a))),
        ],
        text_or("3h"),
        prop_oneof![4 => Just(3000u32), 1 => any::<u32>()],
        prop::option::of(text_or("15m")),
        zone,
    )
        .prop_map(
            |(name, (cron, at), duration, capacity, lead, timezone)| ScheduleSpec {
                name,
                cron,
                at,
                duration,
                capacity,
                lead,
                timezone,
            },
        )
}

#[test]
fn fuzz_schedules_validate_or_say_why_and_never_panic_when_asked() {
    let capacities = [600, 1000, 2000, 3000, 4000, 5000];
    let spec = (
        prop::collection::vec(entry(), 0..3),
        prop::option::of(text_or("UTC")),
        prop::collection::vec(text_or("2026-12-25"), 0..2),
        prop::option::of(prop_oneof![0u32..48, any::<u32>()]),
    );
    fuzz(
        1500,
        spec,
        |(schedules, timezone, skip_dates, preflight_hours)| {
            let spec = SchedulesSpec {
                timezone,
                schedules,
                skip_dates,
                preflight_hours,
            };
            match Schedules::new(spec, &capacities) {
                Err(e) => prop_assert!(!e.to_string().is_empty()),
                Ok(s) => {
                    for at in [now(), now() + SignedDuration::from_hours(13)] {
                        if let Some(w) = s.active(at) {
                            prop_assert!(capacities.contains(&w.capacity));
                            prop_assert!(w.raise_from() <= at && at < w.end, "{w:?} at {at}");
                        }
                        let _ = s.preflight_due(at);
                    }
                    let week = s.occurrences(now(), now() + SignedDuration::from_hours(24 * 7));
                    prop_assert!(week.windows(2).all(|w| w[0].start <= w[1].start));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_durations_parse_or_say_why() {
    fuzz(3000, text_or("90m"), |text| {
        match duration::parse(&text) {
            Ok(d) => prop_assert!(d >= SignedDuration::ZERO, "{text:?} → {d:?}"),
            Err(e) => prop_assert!(e.to_string().contains('`')),
        }
        Ok(())
    });
}
