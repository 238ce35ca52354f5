use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};

use super::*;

const TIERS: [u32; 6] = [600, 1000, 2000, 3000, 4000, 5000];

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn build(zone: Option<&str>, schedules: Vec<ScheduleSpec>, skip: &[&str]) -> Schedules {
    let spec = SchedulesSpec {
        timezone: zone.map(String::from),
        schedules,
        skip_dates: skip.iter().map(|s| s.to_string()).collect(),
        preflight_hours: None,
    };
    Schedules::new(spec, &TIERS).unwrap_or_else(|e| panic!("{e}"))
}

fn starts(s: &Schedules, from: &str, until: &str) -> Vec<String> {
    s.occurrences(ts(from), ts(until))
        .iter()
        .map(|o| o.start.to_string())
        .collect()
}

/// The name and start of the window active at `now`.
fn active_at(s: &Schedules, now: &str) -> Option<(String, String)> {
    s.active(ts(now)).map(|o| (o.name, o.start.to_string()))
}

fn evening_peak() -> Schedules {
    build(
        Some("Asia/Shanghai"),
        vec![
            ScheduleSpec::cron("evening-peak", "0 19 * * 1-5")
                .duration("3h")
                .lead("15m"),
        ],
        &[],
    )
}

#[test]
fn a_weekday_cron_starts_at_19_local_time_in_shanghai() {
    let s = evening_peak();
    // Monday 2026-12-07 to the next Monday, Shanghai midnight to midnight.
    let week = s.occurrences(ts("2026-12-06T16:00:00Z"), ts("2026-12-13T16:00:00Z"));
    let got: Vec<String> = week.iter().map(|o| o.start.to_string()).collect();
    assert_eq!(
        got,
        [
            "2026-12-07T11:00:00Z",
            "2026-12-08T11:00:00Z",
            "2026-12-09T11:00:00Z",
            "2026-12-10T11:00:00Z",
            "2026-12-11T11:00:00Z",
        ]
    );
    let monday = &week[0];
    assert_eq!(
        monday.local_start().to_string(),
        "2026-12-07T19:00:00+08:00[Asia/Shanghai]"
    );
    assert_eq!(
        monday.local_end().to_string(),
        "2026-12-07T22:00:00+08:00[Asia/Shanghai]"
    );
    assert_eq!(monday.raise_from(), ts("2026-12-07T10:45:00Z"));
    assert_eq!(
        (monday.capacity, monday.lead),
        (3000, SignedDuration::from_mins(15))
    );
    assert_eq!(monday.id(), "evening-peak@2026-12-07T11:00:00Z");
}

#[test]
fn a_window_is_active_from_lead_before_its_start_until_just_before_its_end() {
    let s = evening_peak();
    let monday = Some((
        "evening-peak".to_string(),
        "2026-12-07T11:00:00Z".to_string(),
    ));
    let table = [
        ("2026-12-07T10:44:59.999Z", None),
        ("2026-12-07T10:45:00Z", monday.clone()),
        ("2026-12-07T11:00:00Z", monday.clone()),
        ("2026-12-07T13:59:59.999Z", monday.clone()),
        ("2026-12-07T14:00:00Z", None),
        // Saturday: no window.
        ("2026-12-12T11:30:00Z", None),
    ];
    for (now, want) in table {
        assert_eq!(active_at(&s, now), want, "at {now}");
    }
    let o = s.active(ts("2026-12-07T10:45:00Z")).unwrap();
    assert_eq!(o.end, ts("2026-12-07T14:00:00Z"));
    assert!(o.is_active(ts("2026-12-07T10:45:00Z")) && !o.is_active(o.end));
}

#[test]
fn a_start_in_the_spring_forward_gap_moves_to_the_end_of_the_gap() {
    let s = build(
        Some("America/New_York"),
        vec![ScheduleSpec::cron("night", "30 2 * * *").duration("1h")],
        &[],
    );
    // 02:30 EST, then 02:30 does not exist on 8 March (02:00 -> 03:00 EDT),
    // then 02:30 EDT.
    assert_eq!(
        starts(&s, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"),
        [
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z"
        ]
    );
    let moved = s.active(ts("2026-03-08T07:30:00Z")).unwrap();
    assert_eq!(
        moved.local_start().to_string(),
        "2026-03-08T03:00:00-04:00[America/New_York]"
    );
    // The lead counts back in real time: 01:50 EST.
    assert_eq!(moved.raise_from(), ts("2026-03-08T06:50:00Z"));

    // Times in the gap all become 03:00, which starts once.
    let hourly = build(
        Some("America/New_York"),
        vec![ScheduleSpec::cron("halves", "*/30 1-3 * * *").duration("20m")],
        &[],
    );
    assert_eq!(
        starts(&hourly, "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z"),
        [
            "2026-03-08T06:00:00Z",
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z"
        ]
    );
}

#[test]
fn a_start_in_the_fall_back_fold_happens_once_at_the_earlier_instant() {
    let s = build(
        Some("America/New_York"),
        vec![
            ScheduleSpec::cron("late", "30 1 * * *")
                .duration("30m")
                .lead("5m"),
        ],
        &[],
    );
    // 01:30 EDT on 1 November; the second 01:30 (EST, an hour later) is not a start.
    assert_eq!(
        starts(&s, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z"),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    let first = s.active(ts("2026-11-01T05:40:00Z")).unwrap();
    assert_eq!(
        first.local_start().to_string(),
        "2026-11-01T01:30:00-04:00[America/New_York]"
    );
    assert_eq!(active_at(&s, "2026-11-01T06:40:00Z"), None, "01:40 EST");

    // croner would fire an hourly pattern in both passes; our rule says once.
    let hourly = build(
        Some("America/New_York"),
        vec![
            ScheduleSpec::cron("hourly", "30 * * * *")
                .duration("10m")
                .lead("0m"),
        ],
        &[],
    );
    assert_eq!(
        starts(&hourly, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z"),
        [
            "2026-11-01T04:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T07:30:00Z"
        ]
    );
}

#[test]
fn overlapping_windows_take_the_highest_capacity_then_the_earliest_start_then_the_name() {
    let s = build(
        None,
        vec![
            ScheduleSpec::cron("base", "0 18 * * *")
                .duration("5h")
                .capacity(2000),
            ScheduleSpec::cron("b-peak", "0 19 * * *")
                .duration("2h")
                .capacity(4000),
            ScheduleSpec::cron("late-peak", "0 20 * * *")
                .duration("2h")
                .capacity(4000),
            ScheduleSpec::cron("a-peak", "0 19 * * *")
                .duration("2h")
                .capacity(4000),
        ],
        &[],
    );
    let table = [
        ("2026-12-07T17:49:00Z", None),
        ("2026-12-07T17:50:00Z", Some("base")),
        ("2026-12-07T18:55:00Z", Some("a-peak")),
        // late-peak is active (lead) but started later than a-peak.
        ("2026-12-07T20:30:00Z", Some("a-peak")),
        ("2026-12-07T21:00:00Z", Some("late-peak")),
        ("2026-12-07T22:00:00Z", Some("base")),
        ("2026-12-07T23:00:00Z", None),
    ];
    for (now, want) in table {
        let got = s.active(ts(now)).map(|o| o.name);
        assert_eq!(got.as_deref(), want, "at {now}");
    }
    let o = s.active(ts("2026-12-07T20:30:00Z")).unwrap();
    assert_eq!((o.capacity, o.start), (4000, ts("2026-12-07T19:00:00Z")));
}

#[test]
fn back_to_back_windows_of_one_schedule_report_the_earlier_until_it_ends() {
    let s = build(
        None,
        vec![
            ScheduleSpec::cron("weekly", "0 0 * * 1")
                .duration("7d")
                .capacity(5000),
        ],
        &[],
    );
    // Sunday 23:55: last week's window and (in its lead) this week's.
    assert_eq!(
        active_at(&s, "2026-12-13T23:55:00Z").unwrap().1,
        "2026-12-07T00:00:00Z"
    );
    assert_eq!(
        active_at(&s, "2026-12-14T00:00:00Z").unwrap().1,
        "2026-12-14T00:00:00Z"
    );
}

#[test]
fn skip_dates_suppress_that_local_dates_cron_start_but_not_a_running_window() {
    let s = build(
        None,
        vec![ScheduleSpec::cron("nightly", "0 19 * * *").duration("6h")],
        &["2026-12-25"],
    );
    assert_eq!(
        starts(&s, "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z"),
        ["2026-12-24T19:00:00Z", "2026-12-26T19:00:00Z"]
    );
    let table = [
        // Started on the 24th, still running after midnight.
        ("2026-12-25T00:30:00Z", Some("2026-12-24T19:00:00Z")),
        ("2026-12-25T18:55:00Z", None),
        ("2026-12-25T19:30:00Z", None),
        ("2026-12-26T19:30:00Z", Some("2026-12-26T19:00:00Z")),
    ];
    for (now, want) in table {
        assert_eq!(
            active_at(&s, now).map(|(_, start)| start).as_deref(),
            want,
            "at {now}"
        );
    }
}

#[test]
fn skip_dates_are_read_in_each_entrys_own_zone_and_a_one_off_ignores_them() {
    let s = build(
        None,
        vec![
            // 01:00 in Shanghai is 17:00 UTC the day before.
            ScheduleSpec::cron("early", "0 1 * * *")
                .zone("Asia/Shanghai")
                .duration("1h"),
            ScheduleSpec::at("xmas-launch", "2026-12-25T20:00")
                .zone("Asia/Shanghai")
                .capacity(5000),
        ],
        &["2026-12-25"],
    );
    let got = s.occurrences(ts("2026-12-23T00:00:00Z"), ts("2026-12-27T00:00:00Z"));
    let got: Vec<(&str, String)> = got
        .iter()
        .map(|o| (o.name.as_str(), o.start.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("early", "2026-12-23T17:00:00Z".to_string()),
            // No "early" at 2026-12-24T17:00Z: that is the 25th in Shanghai.
            ("xmas-launch", "2026-12-25T12:00:00Z".to_string()),
            ("early", "2026-12-25T17:00:00Z".to_string()),
            ("early", "2026-12-26T17:00:00Z".to_string()),
        ]
    );
}

#[test]
fn a_one_off_start_is_read_in_its_zone_or_by_its_offset() {
    let table = [
        // (at, entry zone, top-level zone, start)
        (
            "2026-12-12T20:00",
            Some("America/New_York"),
            None,
            "2026-12-13T01:00:00Z",
        ),
        (
            "2026-12-12 20:00:30",
            Some("America/New_York"),
            None,
            "2026-12-13T01:00:30Z",
        ),
        (
            "2026-12-12T20:00",
            None,
            Some("Asia/Shanghai"),
            "2026-12-12T12:00:00Z",
        ),
        ("2026-12-12T20:00", None, None, "2026-12-12T20:00:00Z"),
        (
            "2026-12-12T20:00:00+08:00",
            Some("America/New_York"),
            None,
            "2026-12-12T12:00:00Z",
        ),
        (
            "2026-12-12T12:00:00Z",
            None,
            Some("Asia/Shanghai"),
            "2026-12-12T12:00:00Z",
        ),
        // The gap and fold rules hold for `at` as for cron.
        (
            "2026-03-08T02:30",
            Some("America/New_York"),
            None,
            "2026-03-08T07:00:00Z",
        ),
        (
            "2026-11-01T01:30",
            Some("America/New_York"),
            None,
            "2026-11-01T05:30:00Z",
        ),
    ];
    for (at, zone, top, want) in table {
        let mut entry = ScheduleSpec::at("launch", at).duration("4h").capacity(5000);
        entry.timezone = zone.map(String::from);
        let s = build(top, vec![entry], &[]);
        let Some(When::At(start)) = s.entries().first().map(|e| e.when().clone()) else {
            panic!("{at}: not a one-off");
        };
        assert_eq!(start.to_string(), want, "{at} in {zone:?} / {top:?}");
        let start = ts(want);
        let at_now = |d: i64| s.active(shift(start, SignedDuration::from_secs(d)));
        assert!(at_now(-601).is_none(), "{at}: before the lead");
        assert_eq!(at_now(-600).unwrap().start, start, "{at}: the lead");
        assert_eq!(
            at_now(4 * 3600 - 1).unwrap().capacity,
            5000,
            "{at}: last second"
        );
        assert!(at_now(4 * 3600).is_none(), "{at}: after the end");
    }
}

#[test]
fn a_seven_day_window_is_still_active_six_days_after_its_start() {
    let s = build(
        None,
        vec![
            ScheduleSpec::cron("month-start", "0 0 1 * *")
                .duration("7d")
                .capacity(5000),
        ],
        &[],
    );
    let o = s.active(ts("2026-12-07T00:00:00Z")).unwrap();
    assert_eq!(o.start, ts("2026-12-01T00:00:00Z"));
    assert_eq!(o.end, ts("2026-12-08T00:00:00Z"));
    assert!(s.active(ts("2026-12-07T23:59:59Z")).is_some());
    assert!(s.active(ts("2026-12-08T00:00:00Z")).is_none());
}

#[test]
fn preflight_looks_preflight_hours_ahead_including_a_window_in_its_lead() {
    let mut spec = SchedulesSpec {
        timezone: Some("Asia/Shanghai".into()),
        schedules: vec![ScheduleSpec::cron("evening-peak", "0 19 * * 1-5").lead("15m")],
        ..Default::default()
    };
    spec.preflight_hours = Some(48);
    let s = Schedules::new(spec, &TIERS).unwrap();
    assert_eq!(s.preflight(), SignedDuration::from_hours(48));
    // Monday 18:50 local: Monday's window is raising, Tuesday's within 48h,
    // Wednesday's 19:00 is exactly 48h 10m away.
    let due: Vec<String> = s
        .preflight_due(ts("2026-12-07T10:50:00Z"))
        .iter()
        .map(Occurrence::id)
        .collect();
    assert_eq!(
        due,
        [
            "evening-peak@2026-12-07T11:00:00Z",
            "evening-peak@2026-12-08T11:00:00Z"
        ]
    );
    assert_eq!(
        Schedules::default().preflight(),
        SignedDuration::from_hours(24)
    );
}

#[test]
fn the_example_of_the_spec_validates_to_these_values() {
    let spec = SchedulesSpec {
        timezone: Some("Asia/Shanghai".into()),
        schedules: vec![
            ScheduleSpec::cron("evening-peak", "0 19 * * 1-5")
                .duration("3h")
                .capacity(3000)
                .lead("15m"),
            ScheduleSpec::at("launch", "2026-12-12T20:00")
                .duration("4h")
                .capacity(5000)
                .zone("America/New_York"),
        ],
        skip_dates: vec!["2026-12-25".into()],
        preflight_hours: Some(24),
    };
    let s = Schedules::new(spec, &TIERS).unwrap();
    let [peak, launch] = s.entries() else {
        panic!("{:?}", s.entries())
    };
    assert_eq!(peak.name(), "evening-peak");
    assert!(matches!(peak.when(), When::Cron(p) if p.as_str() == "0 19 * * 1-5"));
    assert_eq!(peak.duration(), SignedDuration::from_hours(3));
    assert_eq!(peak.lead(), SignedDuration::from_mins(15));
    assert_eq!(peak.zone().iana_name(), Some("Asia/Shanghai"));
    assert_eq!(launch.when(), &When::At(ts("2026-12-13T01:00:00Z")));
    assert_eq!(launch.lead(), DEFAULT_LEAD);
    assert_eq!(launch.zone().iana_name(), Some("America/New_York"));
    assert_eq!(s.zone().iana_name(), Some("Asia/Shanghai"));
    assert_eq!(s.skip_dates(), [jiff::civil::date(2026, 12, 25)]);
    assert!(!s.is_empty() && Schedules::default().is_empty());
}

#[test]
fn durations_are_read_in_the_friendly_and_iso_forms() {
    for (raw, want) in [
        ("90m", 90),
        ("1h 30m", 90),
        ("2h30m", 150),
        ("1d", 1440),
        ("PT3H", 180),
    ] {
        let s = build(
            None,
            vec![ScheduleSpec::cron("x", "0 0 * * *").duration(raw)],
            &[],
        );
        assert_eq!(
            s.entries()[0].duration(),
            SignedDuration::from_mins(want),
            "{raw}"
        );
    }
    let s = build(
        None,
        vec![ScheduleSpec::cron("x", "0 0 * * *").lead("0m")],
        &[],
    );
    assert_eq!(s.entries()[0].lead(), SignedDuration::ZERO);
}

#[test]
fn zones_come_from_the_bundled_database_in_any_case() {
    let z = bundled_zone("america/new_york").unwrap();
    assert_eq!(z.iana_name(), Some("America/New_York"));
    assert!(bundled_zone("Mars/Olympus").is_none());
}

#[test]
fn an_entry_deserialises_with_its_keys_and_rejects_unknown_ones() {
    let ok: ScheduleSpec = serde_json::from_str(
        r#"{"name":"evening-peak","cron":"0 19 * * 1-5","duration":"3h","capacity":3000,"lead":"15m"}"#,
    )
    .unwrap();
    assert_eq!(
        ok,
        ScheduleSpec::cron("evening-peak", "0 19 * * 1-5").lead("15m")
    );
    let typo = serde_json::from_str::<ScheduleSpec>(
        r#"{"name":"x","cron":"0 19 * * *","duration":"3h","capacity":3000,"leed":"5m"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(typo.contains("leed"), "{typo}");
}

/// Each broken spec, and the message a user reads.
#[test]
fn every_validation_error_names_the_schedule_and_the_key() {
    type Edit = fn(&mut SchedulesSpec);
    fn first(s: &mut SchedulesSpec) -> &mut ScheduleSpec {
        &mut s.schedules[0]
    }
    let cases: Vec<(Edit, &str)> = vec![
        (
            |s| first(s).cron = Some("0 19 * *".into()),
            "schedules[evening-peak].cron: `0 19 * *` is not a 5-field cron pattern (minute hour day-of-month month day-of-week): it has 4 fields",
        ),
        (
            |s| first(s).cron = Some("0 0 19 * * 1-5".into()),
            "schedules[evening-peak].cron: `0 0 19 * * 1-5` is not a 5-field cron pattern (minute hour day-of-month month day-of-week): it has 6 fields",
        ),
        (
            |s| first(s).cron = Some("61 19 * * *".into()),
            "schedules[evening-peak].cron: `61 19 * * *` is not a 5-field cron pattern (minute hour day-of-month month day-of-week): Number out of bounds.",
        ),
        (
            |s| first(s).cron = Some("0 19 * * funday".into()),
            "schedules[evening-peak].cron: `0 19 * * funday` is not a 5-field cron pattern (minute hour day-of-month month day-of-week): CronPattern contains illegal character 'F' in part 'FUNDAY'",
        ),
        (
            |s| first(s).cron = Some("0 0 30 2 *".into()),
            "schedules[evening-peak].cron: `0 0 30 2 *` never matches a date",
        ),
        (
            |s| first(s).timezone = Some("Mars/Olympus".into()),
            "schedules[evening-peak].timezone: `Mars/Olympus` is not an IANA time zone (e.g. Asia/Shanghai, America/New_York, UTC)",
        ),
        (
            |s| s.timezone = Some("Asia/Shangai".into()),
            "timezone: `Asia/Shangai` is not an IANA time zone (e.g. Asia/Shanghai, America/New_York, UTC)",
        ),
        (
            |s| first(s).capacity = 2500,
            "schedules[evening-peak].capacity: 2500 is not a tier capacity; the tiers are 600, 1000, 2000, 3000, 4000, 5000",
        ),
        (
            |s| first(s).duration = "30s".into(),
            "schedules[evening-peak].duration: `30s` is outside 1m .. 7d",
        ),
        (
            |s| first(s).duration = "7d 1m".into(),
            "schedules[evening-peak].duration: `7d 1m` is outside 1m .. 7d",
        ),
        (
            |s| first(s).duration = "-3h".into(),
            "schedules[evening-peak].duration: `-3h` is outside 1m .. 7d",
        ),
        (
            |s| first(s).duration = "3".into(),
            "schedules[evening-peak].duration: `3` is not a duration; write e.g. 15m, 3h or 1d",
        ),
        (
            |s| first(s).duration = "1mo".into(),
            "schedules[evening-peak].duration: `1mo` is not a duration; write e.g. 15m, 3h or 1d",
        ),
        (
            |s| first(s).lead = Some("3h".into()),
            "schedules[evening-peak].lead: `3h` must be shorter than the duration `3h`",
        ),
        (
            |s| first(s).duration = "5m".into(),
            "schedules[evening-peak].lead: the default `10m` must be shorter than the duration `5m`",
        ),
        (
            |s| first(s).lead = Some("-5m".into()),
            "schedules[evening-peak].lead: `-5m` is negative; the lead is how long before the start to raise the tier",
        ),
        (
            |s| first(s).lead = Some("soon".into()),
            "schedules[evening-peak].lead: `soon` is not a duration; write e.g. 15m, 3h or 1d",
        ),
        (
            |s| first(s).at = Some("2026-12-12T20:00".into()),
            "schedules[evening-peak]: has both `cron` and `at`; give exactly one",
        ),
        (
            |s| first(s).cron = None,
            "schedules[evening-peak]: has neither `cron` nor `at`; give exactly one",
        ),
        (
            |s| {
                s.schedules.push(ScheduleSpec::at("launch", "2026-12-12"));
            },
            "schedules[launch].at: `2026-12-12` is not a start time; write local YYYY-MM-DDTHH:MM[:SS] or RFC 3339 with an offset (2026-12-12T20:00:00+08:00)",
        ),
        (
            |s| {
                s.schedules
                    .push(ScheduleSpec::at("launch", "2026-12-12T20:00[Asia/Tokyo]"));
            },
            "schedules[launch].at: `2026-12-12T20:00[Asia/Tokyo]` is not a start time; write local YYYY-MM-DDTHH:MM[:SS] or RFC 3339 with an offset (2026-12-12T20:00:00+08:00)",
        ),
        (
            |s| {
                s.schedules
                    .push(ScheduleSpec::at("launch", "2026-02-30T20:00"));
            },
            "schedules[launch].at: `2026-02-30T20:00` is not a start time; write local YYYY-MM-DDTHH:MM[:SS] or RFC 3339 with an offset (2026-12-12T20:00:00+08:00)",
        ),
        (
            |s| {
                let again = s.schedules[0].clone();
                s.schedules
                    .push(ScheduleSpec::at("launch", "2026-12-12T20:00"));
                s.schedules.push(again);
            },
            "schedules[evening-peak].name: `evening-peak` is the name of schedules 0 and 2; names must be unique",
        ),
        (
            |s| first(s).name = "Evening_Peak".into(),
            "schedules[0].name: `Evening_Peak` is not a schedule name; use lowercase letters, digits and `-`",
        ),
        (
            |s| first(s).name = String::new(),
            "schedules[0].name: `` is not a schedule name; use lowercase letters, digits and `-`",
        ),
        (
            |s| s.skip_dates = vec!["2026-12-25".into(), "2026-13-01".into()],
            "skip_dates[1]: `2026-13-01` is not a date; write YYYY-MM-DD",
        ),
        (
            |s| s.skip_dates = vec!["20261225".into()],
            "skip_dates[0]: `20261225` is not a date; write YYYY-MM-DD",
        ),
        (
            |s| s.skip_dates = vec!["2026-12-25T00:00".into()],
            "skip_dates[0]: `2026-12-25T00:00` is not a date; write YYYY-MM-DD",
        ),
        (
            |s| s.preflight_hours = Some(721),
            "preflight_hours: 721 is more than 720 (30 days)",
        ),
    ];
    for (edit, want) in cases {
        let mut spec = SchedulesSpec {
            timezone: Some("Asia/Shanghai".into()),
            schedules: vec![ScheduleSpec::cron("evening-peak", "0 19 * * 1-5")],
            ..Default::default()
        };
        edit(&mut spec);
        match Schedules::new(spec, &TIERS) {
            Ok(s) => panic!("accepted, wanted `{want}`: {s:?}"),
            Err(e) => assert_eq!(e.to_string(), want),
        }
    }
}

#[test]
fn an_error_carries_its_key_and_kind_for_the_caller() {
    let spec = SchedulesSpec {
        schedules: vec![ScheduleSpec::cron("evening-peak", "0 19 * * *").capacity(2500)],
        ..Default::default()
    };
    let e = Schedules::new(spec, &[600, 1000]).unwrap_err();
    assert_eq!(e.key, "schedules[evening-peak].capacity");
    assert_eq!(
        e.kind,
        ScheduleErrorKind::NotATier {
            capacity: 2500,
            tiers: vec![600, 1000]
        }
    );
}

/// The starts of `entry` in `[from, until)`, found the slow way: every
/// civil minute around the span, asked of croner one at a time, resolved
/// by the gap/fold rule written out again.
fn brute_starts(
    entry: &Schedule,
    skip: &[jiff::civil::Date],
    from: Timestamp,
    until: Timestamp,
) -> Vec<Timestamp> {
    let cron = match entry.when() {
        When::At(at) => {
            return (from <= *at && *at < until)
                .then_some(*at)
                .into_iter()
                .collect();
        }
        When::Cron(p) => &p.cron,
    };
    let zone = entry.zone();
    let day = SignedDuration::from_hours(24);
    let mut local: DateTime = zone
        .to_datetime(from - day)
        .round(jiff::Unit::Minute)
        .unwrap();
    let last = zone.to_datetime(until + day);
    let mut out: Vec<Timestamp> = vec![];
    while local <= last {
        if cron.is_time_matching(&local).unwrap() {
            let amb = zone.to_ambiguous_timestamp(local);
            let t = match amb.offset() {
                AmbiguousOffset::Gap { .. } => {
                    // The first instant whose local time is after `local`.
                    let mut t = amb.later().unwrap();
                    while zone.to_datetime(t - SignedDuration::from_mins(1)) > local {
                        t -= SignedDuration::from_mins(1);
                    }
                    t
                }
                _ => amb.earlier().unwrap(),
            };
            let skipped = skip.contains(&zone.to_datetime(t).date());
            if from <= t && t < until && !skipped && !out.contains(&t) {
                out.push(t);
            }
        }
        local = local.checked_add(SignedDuration::from_mins(1)).unwrap();
    }
    out.sort();
    out
}

#[test]
fn active_and_occurrences_agree_with_a_brute_force_scan() {
    let s = build(
        Some("America/New_York"),
        vec![
            ScheduleSpec::cron("gap-night", "30 2 * * *")
                .duration("2h")
                .capacity(2000),
            ScheduleSpec::cron("halves", "*/30 1-3 * * 0")
                .duration("45m")
                .lead("20m")
                .capacity(1000),
            ScheduleSpec::cron("weekday", "0 19 * * 1-5")
                .duration("3h")
                .lead("15m")
                .capacity(3000),
            ScheduleSpec::cron("long", "0 1 * * 0")
                .duration("7d")
                .lead("1h")
                .capacity(600),
            ScheduleSpec::cron("sydney", "15 2 * * *")
                .zone("Australia/Sydney")
                .duration("1h")
                .capacity(3000),
            ScheduleSpec::at("launch", "2026-11-01T01:30")
                .duration("4h")
                .capacity(5000),
        ],
        &["2026-03-10", "2026-11-04"],
    );
    let max_lead = SignedDuration::from_hours(1);
    let week = SignedDuration::from_hours(7 * 24);
    // Around both US transitions (and Sydney's in April and October).
    for (from, until) in [
        ("2026-02-28T00:00:00Z", "2026-03-21T00:00:00Z"),
        ("2026-03-29T00:00:00Z", "2026-04-12T00:00:00Z"),
        ("2026-09-27T00:00:00Z", "2026-10-11T00:00:00Z"),
        ("2026-10-25T00:00:00Z", "2026-11-15T00:00:00Z"),
    ] {
        let (from, until) = (ts(from), ts(until));
        let pad_from = from - week - max_lead;
        let pad_until = until + week + max_lead;
        let mut all: Vec<Occurrence> = vec![];
        for e in s.entries() {
            for start in brute_starts(e, s.skip_dates(), pad_from, pad_until) {
                all.push(e.occurrence(start));
            }
        }
        assert!(all.len() > 50, "{}", all.len());
        // Every 7 minutes, and either side of every boundary.
        let mut nows: Vec<Timestamp> = vec![];
        let mut t = from;
        while t < until {
            nows.push(t);
            t += SignedDuration::from_mins(7);
        }
        let ns = SignedDuration::from_nanos(1);
        for o in all.iter().filter(|o| from <= o.start && o.start < until) {
            for b in [o.raise_from(), o.start, o.end] {
                nows.extend([b - ns, b, b + ns]);
            }
        }
        for now in nows {
            let want = all
                .iter()
                .filter(|o| o.is_active(now))
                .min_by(|a, b| {
                    b.capacity
                        .cmp(&a.capacity)
                        .then(a.start.cmp(&b.start))
                        .then(a.name.cmp(&b.name))
                })
                .cloned();
            assert_eq!(s.active(now), want, "active at {now}");
        }
        for e in s.entries() {
            let brute = brute_starts(e, s.skip_dates(), from, until);
            let mut got: Vec<Timestamp> = s
                .occurrences(from, until)
                .into_iter()
                .filter(|o| o.name == e.name())
                .map(|o| o.start)
                .collect();
            got.sort();
            assert_eq!(got, brute, "{} from {from}", e.name());
        }
    }
}

#[test]
fn occurrences_from_just_after_a_gap_include_the_moved_start() {
    // 03:00 EDT is the instant 02:30 moved to; a span starting there holds it.
    let s = build(
        Some("America/New_York"),
        vec![ScheduleSpec::cron("night", "30 2 * * *").duration("1h")],
        &[],
    );
    assert_eq!(
        starts(&s, "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"),
        ["2026-03-08T07:00:00Z"]
    );
    // And the window is active through its last nanosecond.
    assert!(s.active(ts("2026-03-08T07:59:59.999999999Z")).is_some());
}

#[test]
fn ten_thousand_ticks_of_active_are_cheap() {
    let s = build(
        Some("Asia/Shanghai"),
        vec![
            ScheduleSpec::cron("evening-peak", "0 19 * * 1-5").lead("15m"),
            ScheduleSpec::cron("weekend", "0 10 * * 0,6")
                .duration("10h")
                .capacity(2000),
            ScheduleSpec::cron("month-start", "0 0 1 * *")
                .duration("7d")
                .capacity(1000),
            ScheduleSpec::at("launch", "2026-12-12T20:00").capacity(5000),
        ],
        &["2026-12-25"],
    );
    let start = ts("2026-11-20T00:00:00Z");
    let clock = std::time::Instant::now();
    let mut active = 0;
    for tick in 0..10_080 {
        let now = start + SignedDuration::from_mins(5 * tick);
        active += usize::from(s.active(now).is_some());
    }
    let took = clock.elapsed();
    assert!(active > 2000, "{active}");
    // Release builds take a few milliseconds; this bound, for unoptimised
    // test builds, only catches a walk minute by minute.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

#[test]
fn the_ends_of_time_answer_without_panicking() {
    let s = build(
        Some("America/New_York"),
        vec![
            ScheduleSpec::cron("any", "* * * * *").duration("7d"),
            ScheduleSpec::at("launch", "2026-12-12T20:00"),
        ],
        &["2026-12-25"],
    );
    for now in [Timestamp::MIN, Timestamp::MAX] {
        let _ = s.active(now);
        let _ = s.preflight_due(now);
    }
    let near_end = Timestamp::MAX - SignedDuration::from_hours(1);
    assert!(s.occurrences(near_end, Timestamp::MAX).len() <= 60);
}
