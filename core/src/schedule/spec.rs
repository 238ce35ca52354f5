//! The raw form of the schedule keys (strings as the YAML gives them) and
//! their validation into [`Schedules`]. Every error names the key in the
//! words of the config file: `schedules[evening-peak].cron: ...`.

use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::{Date, DateTime};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use serde::Deserialize;

use super::{
    CronPattern, DEFAULT_LEAD, DEFAULT_PREFLIGHT_HOURS, MAX_DURATION, MAX_PREFLIGHT_HOURS,
    MIN_DURATION, Schedule, Schedules, When, local_instant,
};

/// One entry of `schedules` as written. Deserialisable as is, so the
/// config can embed it and serde rejects unknown keys in an entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique, `[a-z0-9-]+`: it names the window in notices and records.
    pub name: String,
    /// A 5-field cron pattern (minute hour day-of-month month day-of-week):
    /// when a window starts, in the zone. Exactly one of `cron` and `at`.
    #[serde(default)]
    pub cron: Option<String>,
    /// A one-off start: local `YYYY-MM-DDTHH:MM[:SS]` in the zone, or
    /// RFC 3339 with an offset.
    #[serde(default)]
    pub at: Option<String>,
    /// How long the window lasts (1m .. 7d): `3h`, `90m`, `1d`.
    pub duration: String,
    /// The floor while the window is active: a tier capacity of the table.
    pub capacity: u32,
    /// Raise this long before the start (default 10m; shorter than `duration`).
    #[serde(default)]
    pub lead: Option<String>,
    /// IANA zone of this entry; default the top-level `timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// The top-level schedule keys of the config, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulesSpec {
    /// `timezone`: the IANA zone of entries without their own; default UTC.
    pub timezone: Option<String>,
    pub schedules: Vec<ScheduleSpec>,
    /// `skip_dates`: `YYYY-MM-DD` dates on which no cron window starts, read
    /// in each entry's own zone. A window that started the day before runs
    /// on. A one-off `at` ignores them: it names its date on purpose, and
    /// skipping a raise is the costlier mistake.
    pub skip_dates: Vec<String>,
    /// `preflight_hours`: how far ahead to warn about windows whose tier the
    /// prerequisites do not allow (0 .. 720; default 24).
    pub preflight_hours: Option<u32>,
}

/// A schedule key that does not validate. `Display` is `{key}: {kind}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {kind}")]
pub struct ScheduleError {
    /// The config key: `schedules[evening-peak].lead`, `schedules[2].name`
    /// (by position when the name itself is unusable), `skip_dates[0]`,
    /// `timezone`, `preflight_hours`.
    pub key: String,
    pub kind: ScheduleErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleErrorKind {
    #[error("`{0}` is not a schedule name; use lowercase letters, digits and `-`")]
    BadName(String),
    #[error("`{name}` is the name of schedules {first} and {second}; names must be unique")]
    DuplicateName {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("has both `cron` and `at`; give exactly one")]
    CronAndAt,
    #[error("has neither `cron` nor `at`; give exactly one")]
    NeitherCronNorAt,
    #[error(
        "`{pattern}` is not a 5-field cron pattern (minute hour day-of-month month day-of-week): {reason}"
    )]
    BadCron { pattern: String, reason: String },
    #[error("`{0}` never matches a date")]
    CronNeverMatches(String),
    #[error(
        "`{0}` is not a start time; write local YYYY-MM-DDTHH:MM[:SS] or RFC 3339 with an offset (2026-12-12T20:00:00+08:00)"
    )]
    BadAt(String),
    #[error("`{0}` is not an IANA time zone (e.g. Asia/Shanghai, America/New_York, UTC)")]
    UnknownZone(String),
    #[error("{capacity} is not a tier capacity; the tiers are {}", list(.tiers))]
    NotATier { capacity: u32, tiers: Vec<u32> },
    #[error("`{0}` is not a duration; write e.g. 15m, 3h or 1d")]
    BadDuration(String),
    #[error("`{0}` is outside 1m .. 7d")]
    DurationOutOfRange(String),
    #[error("`{0}` is negative; the lead is how long before the start to raise the tier")]
    NegativeLead(String),
    #[error("{lead} must be shorter than the duration `{duration}`")]
    LeadNotShorter { lead: String, duration: String },
    #[error("`{0}` is not a date; write YYYY-MM-DD")]
    BadSkipDate(String),
    #[error("{0} is more than {MAX_PREFLIGHT_HOURS} (30 days)")]
    PreflightTooLong(u32),
}

fn list(tiers: &[u32]) -> String {
    let all: Vec<String> = tiers.iter().map(u32::to_string).collect();
    all.join(", ")
}

/// The zone called `name` in the time-zone database compiled into the
/// binary (case-insensitive), whatever the host has in /usr/share/zoneinfo.
pub fn bundled_zone(name: &str) -> Option<TimeZone> {
    TimeZoneDatabase::bundled().get(name.trim()).ok()
}

impl Schedules {
    /// Validates the schedule keys against the tier table's `capacities`.
    /// The first problem found is the error; nothing partial is returned.
    pub fn new(spec: SchedulesSpec, capacities: &[u32]) -> Result<Schedules, ScheduleError> {
        let err = |key: &str, kind| ScheduleError {
            key: key.to_string(),
            kind,
        };
        let zone = match &spec.timezone {
            None => TimeZone::UTC,
            Some(name) => bundled_zone(name)
                .ok_or_else(|| err("timezone", ScheduleErrorKind::UnknownZone(name.clone())))?,
        };
        let mut skip_dates = Vec::with_capacity(spec.skip_dates.len());
        for (i, raw) in spec.skip_dates.iter().enumerate() {
            let date = parse_date(raw).ok_or_else(|| {
                err(
                    &format!("skip_dates[{i}]"),
                    ScheduleErrorKind::BadSkipDate(raw.clone()),
                )
            })?;
            skip_dates.push(date);
        }
        skip_dates.sort();
        skip_dates.dedup();
        let hours = spec.preflight_hours.unwrap_or(DEFAULT_PREFLIGHT_HOURS);
        if hours > MAX_PREFLIGHT_HOURS {
            return Err(err(
                "preflight_hours",
                ScheduleErrorKind::PreflightTooLong(hours),
            ));
        }
        let mut entries: Vec<Schedule> = Vec::with_capacity(spec.schedules.len());
        for (i, raw) in spec.schedules.iter().enumerate() {
            let entry = entry(i, raw, &zone, capacities)?;
            if let Some(first) = entries.iter().position(|e| e.name == entry.name) {
                return Err(err(
                    &format!("schedules[{}].name", raw.name),
                    ScheduleErrorKind::DuplicateName {
                        name: raw.name.clone(),
                        first,
                        second: i,
                    },
                ));
            }
            entries.push(entry);
        }
        Ok(Schedules {
            entries,
            skip_dates,
            preflight: SignedDuration::from_hours(i64::from(hours)),
            zone,
        })
    }
}

/// Validates one entry; `default_zone` is the top-level `timezone`.
fn entry(
    index: usize,
    raw: &ScheduleSpec,
    default_zone: &TimeZone,
    capacities: &[u32],
) -> Result<Schedule, ScheduleError> {
    let name = &raw.name;
    if !is_name(name) {
        return Err(ScheduleError {
            key: format!("schedules[{index}].name"),
            kind: ScheduleErrorKind::BadName(name.clone()),
        });
    }
    let err = |key: &str, kind| ScheduleError {
        key: if key.is_empty() {
            format!("schedules[{name}]")
        } else {
            format!("schedules[{name}].{key}")
        },
        kind,
    };
    let zone = match &raw.timezone {
        None => default_zone.clone(),
        Some(z) => bundled_zone(z)
            .ok_or_else(|| err("timezone", ScheduleErrorKind::UnknownZone(z.clone())))?,
    };
    if !capacities.contains(&raw.capacity) {
        return Err(err(
            "capacity",
            ScheduleErrorKind::NotATier {
                capacity: raw.capacity,
                tiers: capacities.to_vec(),
            },
        ));
    }
    let duration = parse_duration(&raw.duration).ok_or_else(|| {
        err(
            "duration",
            ScheduleErrorKind::BadDuration(raw.duration.clone()),
        )
    })?;
    if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
        return Err(err(
            "duration",
            ScheduleErrorKind::DurationOutOfRange(raw.duration.clone()),
        ));
    }
    let lead = lead(raw, duration).map_err(|k| err("lead", k))?;
    let when = match (&raw.cron, &raw.at) {
        (Some(_), Some(_)) => return Err(err("", ScheduleErrorKind::CronAndAt)),
        (None, None) => return Err(err("", ScheduleErrorKind::NeitherCronNorAt)),
        (Some(pattern), None) => When::Cron(parse_cron(pattern).map_err(|k| err("cron", k))?),
        (None, Some(at)) => When::At(
            parse_at(at, &zone).ok_or_else(|| err("at", ScheduleErrorKind::BadAt(at.clone())))?,
        ),
    };
    Ok(Schedule {
        name: name.clone(),
        when,
        duration,
        capacity: raw.capacity,
        lead,
        zone,
    })
}

/// `lead`: at least zero and shorter than the window, 10m when not given.
fn lead(raw: &ScheduleSpec, duration: SignedDuration) -> Result<SignedDuration, ScheduleErrorKind> {
    let lead = match &raw.lead {
        None => DEFAULT_LEAD,
        Some(l) => {
            let lead =
                parse_duration(l).ok_or_else(|| ScheduleErrorKind::BadDuration(l.clone()))?;
            if lead.is_negative() {
                return Err(ScheduleErrorKind::NegativeLead(l.clone()));
            }
            lead
        }
    };
    if lead >= duration {
        return Err(ScheduleErrorKind::LeadNotShorter {
            lead: match &raw.lead {
                Some(l) => format!("`{l}`"),
                None => "the default `10m`".to_string(),
            },
            duration: raw.duration.clone(),
        });
    }
    Ok(lead)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Standard 5-field cron only: croner would otherwise take a seconds (and a
/// year) field and quietly read `0 19 * * 1 *` as something else.
fn parse_cron(pattern: &str) -> Result<CronPattern, ScheduleErrorKind> {
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let bad = |reason: String| ScheduleErrorKind::BadCron {
        pattern: pattern.to_string(),
        reason,
    };
    let fields = pattern.split_whitespace().count();
    if fields != 5 && !pattern.trim_start().starts_with('@') {
        return Err(bad(format!("it has {fields} fields")));
    }
    let cron = parser.parse(pattern).map_err(|e| {
        bad(match e {
            CronError::InvalidPattern(m)
            | CronError::ComponentError(m)
            | CronError::IllegalCharacters(m) => m,
            other => other.to_string(),
        })
    })?;
    // `0 0 30 2 *` parses but never fires: a window that can never start is
    // a mistake worth stopping on. Patterns recur yearly at most, so a search
    // from a fixed date answers for all time.
    let epoch = DateTime::constant(2000, 1, 1, 0, 0, 0, 0);
    if cron.find_next_occurrence(&epoch, true).is_err() {
        return Err(ScheduleErrorKind::CronNeverMatches(pattern.to_string()));
    }
    Ok(CronPattern {
        text: pattern.trim().to_string(),
        cron: Box::new(cron),
    })
}

/// `at`: RFC 3339 with an offset is an instant; a local date and time (to
/// the minute at least) is read in `zone` by the gap/fold rule.
fn parse_at(value: &str, zone: &TimeZone) -> Option<Timestamp> {
    let value = value.trim();
    if let Ok(at) = value.parse::<Timestamp>() {
        return Some(at);
    }
    // jiff would take a bare date as midnight and drop a `[zone]` annotation
    // that has no offset; neither is what the user meant to write.
    let b = value.as_bytes();
    let has_time = b.len() >= 16 && matches!(b[10], b'T' | b't' | b' ') && b[13] == b':';
    if !has_time || value.contains('[') {
        return None;
    }
    local_instant(zone, value.parse::<DateTime>().ok()?)
}

/// A duration in jiff's friendly format (`15m`, `3h`, `1d`, `2h 30m`) or
/// ISO 8601 (`PT3H`); a day is 24 hours.
fn parse_duration(value: &str) -> Option<SignedDuration> {
    let span: Span = value.trim().parse().ok()?;
    span.to_duration(SpanRelativeTo::days_are_24_hours()).ok()
}

/// Exactly `YYYY-MM-DD` (jiff alone would also take `20261225`).
fn parse_date(value: &str) -> Option<Date> {
    let value = value.trim();
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    value.parse().ok()
}

/// Builders for tests of the crates that use the core: a valid entry to
/// change one key of.
#[cfg(any(test, feature = "fixtures"))]
impl ScheduleSpec {
    /// A cron entry: 3h long, capacity 3000, default lead and zone.
    pub fn cron(name: &str, pattern: &str) -> Self {
        ScheduleSpec {
            name: name.into(),
            cron: Some(pattern.into()),
            duration: "3h".into(),
            capacity: 3000,
            ..Default::default()
        }
    }
    /// A one-off entry: 3h long, capacity 3000, default lead and zone.
    pub fn at(name: &str, at: &str) -> Self {
        ScheduleSpec {
            name: name.into(),
            at: Some(at.into()),
            duration: "3h".into(),
            capacity: 3000,
            ..Default::default()
        }
    }
    pub fn duration(mut self, d: &str) -> Self {
        self.duration = d.into();
        self
    }
    pub fn capacity(mut self, c: u32) -> Self {
        self.capacity = c;
        self
    }
    pub fn lead(mut self, l: &str) -> Self {
        self.lead = Some(l.into());
        self
    }
    pub fn zone(mut self, z: &str) -> Self {
        self.timezone = Some(z.into());
        self
    }
}
