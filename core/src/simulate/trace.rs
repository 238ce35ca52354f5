//! The users trace `simulate` replays: parsing the text of a trace file
//! (CSV or JSON lines) into sorted samples, building one from the store's
//! records, and reading users at any instant (linear between samples).
//!
//! Accepted input, including the details a `time,users` header leaves open:
//! - The format is told by the first line that is neither blank nor a
//!   comment: `{` starts JSON lines, anything else must be a CSV header.
//! - Blank lines and lines whose first non-space character is `#` are
//!   skipped in both formats. A UTF-8 byte-order mark, CRLF line ends and
//!   spaces around fields are tolerated.
//! - CSV: the header names the columns `time` and `users` (any order, any
//!   case); other columns are ignored; every row has as many fields as the
//!   header. A field may be wrapped in double quotes; quoted commas are not
//!   supported (no accepted value contains one).
//! - JSON lines: one object per line with a string `time` and an integer
//!   `users`; other keys are ignored.
//! - `time`: RFC 3339 with an offset or `Z` (`2026-03-02T19:00:00+08:00`),
//!   or `YYYY-MM-DD HH:MM[:SS[.fff]]` (a `T` may replace the space) in the
//!   given zone, read with the schedules' daylight-saving rule: a time that
//!   does not exist locally is the first instant after the gap, an
//!   ambiguous one the earlier instant.
//! - `users`: a whole number 0 ..= 2^31−1 written as digits (no sign, no
//!   fraction, no exponent), because HPA replicas and the record's `users`
//!   column are bounded there.
//! - Times strictly increase; at least two samples.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::record::RunRecord;

/// The largest users value a trace may hold: the bound of every count.
pub const MAX_USERS: u32 = crate::tiers::MAX_COUNT;

/// Why a trace cannot be replayed. Lines are 1-based, as an editor shows them.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TraceError {
    #[error("the trace is empty: give a CSV with a `time,users` header or JSON lines")]
    Empty,
    #[error(
        "line {line}: not a trace: expected a CSV header naming `time` and `users` \
         or a JSON object like {{\"time\": \"2026-03-02T19:00:00+08:00\", \"users\": 1200}}, found `{found}`"
    )]
    UnknownFormat { line: usize, found: String },
    #[error("line {line}: unreadable row `{found}`: {reason}")]
    Row {
        line: usize,
        found: String,
        reason: String,
    },
    #[error("line {line}: bad time `{value}`: {reason}")]
    Time {
        line: usize,
        value: String,
        reason: String,
    },
    #[error("line {line}: bad users `{value}`: {reason}")]
    Users {
        line: usize,
        value: String,
        reason: String,
    },
    #[error(
        "line {line}: time {time} is before {previous} on line {previous_line}; \
         the trace must be sorted by time"
    )]
    Unsorted {
        line: usize,
        time: Timestamp,
        previous_line: usize,
        previous: Timestamp,
    },
    #[error("line {line}: time {time} repeats line {previous_line}; each time may appear once")]
    Duplicate {
        line: usize,
        time: Timestamp,
        previous_line: usize,
    },
    #[error("the trace has {count} sample(s); at least two are needed to replay")]
    TooFew { count: usize },
}

/// Samples of online users, sorted by strictly increasing time, at least
/// two. Between samples users are linear; outside the trace, the nearest end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    samples: Vec<(Timestamp, u32)>,
}

impl Trace {
    /// Parses a trace file's text; local times are read in `tz` (the
    /// config's `timezone`).
    pub fn parse(text: &str, tz: &TimeZone) -> Result<Trace, TraceError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let Some((first_no, first)) = lines.next() else {
            return Err(TraceError::Empty);
        };
        let mut rows: Vec<(usize, Timestamp, u32)> = vec![];
        if first.starts_with('{') {
            for (no, line) in std::iter::once((first_no, first)).chain(lines) {
                rows.push(json_row(no, line, tz)?);
            }
        } else {
            let header = CsvHeader::parse(first_no, first)?;
            for (no, line) in lines {
                rows.push(header.row(no, line, tz)?);
            }
        }
        for pair in rows.windows(2) {
            let ((pl, pt, _), (l, t, _)) = (pair[0], pair[1]);
            if t == pt {
                return Err(TraceError::Duplicate {
                    line: l,
                    time: t,
                    previous_line: pl,
                });
            }
            if t < pt {
                return Err(TraceError::Unsorted {
                    line: l,
                    time: t,
                    previous_line: pl,
                    previous: pt,
                });
            }
        }
        Trace::new(rows.into_iter().map(|(_, t, u)| (t, u)).collect())
    }

    /// A trace from samples in any order (`--from-store`): sorted, and
    /// samples at the same instant merged into the larger users value (two
    /// runs reading at once; the larger is the one capacity must hold).
    /// Users above [`MAX_USERS`] are capped there.
    pub fn from_samples(mut samples: Vec<(Timestamp, u32)>) -> Result<Trace, TraceError> {
        samples.sort_by_key(|&(t, _)| t);
        let mut merged: Vec<(Timestamp, u32)> = Vec::with_capacity(samples.len());
        for (t, u) in samples {
            let u = u.min(MAX_USERS);
            match merged.last_mut() {
                Some(last) if last.0 == t => last.1 = last.1.max(u),
                _ => merged.push((t, u)),
            }
        }
        Trace::new(merged)
    }

    /// The users the store's runs read, at their start times. Runs without
    /// a reading (metric errors, upgrades) are skipped: their gap is just a
    /// longer interval between the readings around it.
    pub fn from_records(records: &[RunRecord]) -> Result<Trace, TraceError> {
        Trace::from_samples(
            records
                .iter()
                .filter_map(|r| r.users.map(|u| (r.started_at, u)))
                .collect(),
        )
    }

    fn new(samples: Vec<(Timestamp, u32)>) -> Result<Trace, TraceError> {
        if samples.len() < 2 {
            return Err(TraceError::TooFew {
                count: samples.len(),
            });
        }
        Ok(Trace { samples })
    }

    pub fn samples(&self) -> &[(Timestamp, u32)] {
        &self.samples
    }

    /// The first sample's time.
    pub fn start(&self) -> Timestamp {
        self.samples[0].0
    }

    /// The last sample's time.
    pub fn end(&self) -> Timestamp {
        self.samples[self.samples.len() - 1].0
    }

    /// The largest sample (linear interpolation never exceeds it).
    pub fn peak(&self) -> u32 {
        self.samples.iter().map(|&(_, u)| u).max().unwrap_or(0)
    }

    /// Users at `t`: linear between the samples around it, rounded to the
    /// nearest whole user (a half rounds up, toward more capacity); before
    /// the first sample the first, after the last the last.
    pub fn users_at(&self, t: Timestamp) -> u32 {
        let after = self.samples.partition_point(|&(s, _)| s <= t);
        if after == 0 {
            return self.samples[0].1;
        }
        if after == self.samples.len() {
            return self.samples[after - 1].1;
        }
        let (t0, u0) = self.samples[after - 1];
        let (t1, u1) = self.samples[after];
        let span = nanos(t1.duration_since(t0));
        let elapsed = nanos(t.duration_since(t0));
        // Exact in integers: u0 + (u1 − u0)·elapsed/span, rounded half up.
        let scaled = i128::from(u0) * span + (i128::from(u1) - i128::from(u0)) * elapsed;
        let rounded = (2 * scaled + span).div_euclid(2 * span);
        u32::try_from(rounded).unwrap_or(MAX_USERS)
    }
}

fn nanos(d: SignedDuration) -> i128 {
    d.as_nanos()
}

/// Shortens echoed input so one garbage line cannot flood the terminal.
fn shown(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Where the two columns sit in a CSV row.
struct CsvHeader {
    fields: usize,
    time: usize,
    users: usize,
}

impl CsvHeader {
    fn parse(line_no: usize, line: &str) -> Result<CsvHeader, TraceError> {
        let names: Vec<String> = csv_fields(line)
            .into_iter()
            .map(str::to_ascii_lowercase)
            .collect();
        let find = |want: &str| names.iter().position(|n| n == want);
        match (find("time"), find("users")) {
            (Some(time), Some(users)) => Ok(CsvHeader {
                fields: names.len(),
                time,
                users,
            }),
            _ => Err(TraceError::UnknownFormat {
                line: line_no,
                found: shown(line),
            }),
        }
    }

    fn row(
        &self,
        no: usize,
        line: &str,
        tz: &TimeZone,
    ) -> Result<(usize, Timestamp, u32), TraceError> {
        let fields = csv_fields(line);
        if fields.len() != self.fields {
            return Err(TraceError::Row {
                line: no,
                found: shown(line),
                reason: format!("{} field(s), the header has {}", fields.len(), self.fields),
            });
        }
        let time = parse_time(no, fields[self.time], tz)?;
        let users = parse_users(no, fields[self.users])?;
        Ok((no, time, users))
    }
}

fn csv_fields(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('"')
                .and_then(|f| f.strip_suffix('"'))
                .map(str::trim)
                .unwrap_or(f)
        })
        .collect()
}

fn json_row(no: usize, line: &str, tz: &TimeZone) -> Result<(usize, Timestamp, u32), TraceError> {
    let row_error = |reason: String| TraceError::Row {
        line: no,
        found: shown(line),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| row_error(format!("not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(row_error("not a JSON object".into()));
    };
    let time = match object.get("time") {
        None => return Err(row_error("no `time` key".into())),
        Some(serde_json::Value::String(s)) => parse_time(no, s, tz)?,
        Some(other) => {
            return Err(TraceError::Time {
                line: no,
                value: shown(&other.to_string()),
                reason: "must be a string".into(),
            });
        }
    };
    let users = match object.get("users") {
        None => return Err(row_error("no `users` key".into())),
        Some(serde_json::Value::Number(n)) => parse_users(no, &n.to_string())?,
        Some(other) => {
            return Err(TraceError::Users {
                line: no,
                value: shown(&other.to_string()),
                reason: "must be a number".into(),
            });
        }
    };
    Ok((no, time, users))
}

fn parse_users(no: usize, s: &str) -> Result<u32, TraceError> {
    let bad = |reason: &str| TraceError::Users {
        line: no,
        value: shown(s),
        reason: reason.into(),
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.starts_with('-') {
        return Err(bad("must not be negative"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("must be a whole number of users, in digits"));
    }
    match s.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_USERS) => Ok(n as u32),
        _ => Err(bad("more than 2147483647 (2^31-1)")),
    }
}

fn parse_time(no: usize, s: &str, tz: &TimeZone) -> Result<Timestamp, TraceError> {
    parse_instant(s, tz).map_err(|reason| TraceError::Time {
        line: no,
        value: shown(s),
        reason,
    })
}

/// A time as a trace row writes it (RFC 3339, or local in `tz`), or why it
/// is not one; also `simulate --start`.
pub fn parse_instant(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if is_local_shape(s) {
        let dt: DateTime = s.parse().map_err(|e| format!("{e}"))?;
        return local_instant(dt, tz);
    }
    s.parse::<Timestamp>().map_err(|e| {
        format!(
            "{e}; expected RFC 3339 with an offset (2026-03-02T19:00:00+08:00) \
             or local YYYY-MM-DD HH:MM[:SS]"
        )
    })
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.f…]]` and nothing else: no offset, no zone.
fn is_local_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let head = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b' ') || at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16);
    if !head {
        return false;
    }
    match b.len() {
        16 => true,
        n if n >= 19 && at(16, b':') && digits(17..19) => {
            n == 19 || (at(19, b'.') && n > 20 && digits(20..n))
        }
        _ => false,
    }
}

/// A local time in `tz` as an instant, with the schedules' rule: in a gap
/// (spring forward) the first instant after it, in a fold the earlier one.
pub fn local_instant(dt: DateTime, tz: &TimeZone) -> Result<Timestamp, String> {
    crate::schedule::local_instant(tz, dt).ok_or_else(|| {
        format!(
            "{dt} is out of range in {}",
            tz.iana_name().unwrap_or("its zone")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    /// China Standard Time without the database: UTC+8, no DST.
    fn shanghai() -> TimeZone {
        TimeZone::posix("CST-8").unwrap()
    }

    /// US Eastern rules: DST from the 2nd Sunday of March 02:00 to the 1st
    /// Sunday of November 02:00.
    fn new_york() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    fn parse(text: &str) -> Result<Trace, TraceError> {
        Trace::parse(text, &shanghai())
    }

    #[test]
    fn csv_with_rfc3339_times_is_read_in_order() {
        let t =
            parse("time,users\n2026-03-02T19:00:00+08:00,100\n2026-03-02T19:05:00Z,250\n").unwrap();
        assert_eq!(
            t.samples(),
            &[
                (ts("2026-03-02T11:00:00Z"), 100),
                (ts("2026-03-02T19:05:00Z"), 250)
            ]
        );
    }

    #[test]
    fn csv_tolerates_spaces_crlf_bom_quotes_comments_and_column_order() {
        let text = "\u{feff}# exported from GA\r\n\r\n Users , TIME ,source\r\n\
                    120, \"2026-03-02 19:00\" ,ga\r\n  # a note\r\n130 ,2026-03-02 19:05:30, ga\r\n\r\n";
        let t = parse(text).unwrap();
        assert_eq!(
            t.samples(),
            &[
                (ts("2026-03-02T11:00:00Z"), 120),
                (ts("2026-03-02T11:05:30Z"), 130)
            ]
        );
    }

    #[test]
    fn json_lines_are_detected_by_the_first_line() {
        let text = "\n{\"time\": \"2026-03-02 19:00\", \"users\": 7, \"src\": \"ga\"}\n\
                    {\"users\": 9, \"time\": \"2026-03-02T11:01:00Z\"}\n";
        let t = parse(text).unwrap();
        assert_eq!(
            t.samples(),
            &[
                (ts("2026-03-02T11:00:00Z"), 7),
                (ts("2026-03-02T11:01:00Z"), 9)
            ]
        );
    }

    #[test]
    fn local_times_are_read_in_the_given_zone() {
        let text = "time,users\n2026-07-01 12:00,1\n2026-07-01T12:00:01.5,2\n";
        let t = Trace::parse(text, &new_york()).unwrap();
        assert_eq!(t.start(), ts("2026-07-01T16:00:00Z"), "EDT is UTC-4");
        assert_eq!(t.end(), ts("2026-07-01T16:00:01.5Z"));
        let t = Trace::parse(text, &utc()).unwrap();
        assert_eq!(t.start(), ts("2026-07-01T12:00:00Z"));
    }

    #[test]
    fn a_local_time_in_the_spring_gap_is_the_first_instant_after_it() {
        // 2026-03-08 02:30 does not exist in New York; 03:00 EDT = 07:00Z.
        let text = "time,users\n2026-03-08 01:59,1\n2026-03-08 02:30,2\n2026-03-08 03:00:01,3\n";
        let t = Trace::parse(text, &new_york()).unwrap();
        assert_eq!(
            t.samples().iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![
                ts("2026-03-08T06:59:00Z"),
                ts("2026-03-08T07:00:00Z"),
                ts("2026-03-08T07:00:01Z")
            ]
        );
    }

    #[test]
    fn an_ambiguous_local_time_is_the_earlier_instant() {
        // 2026-11-01 01:30 happens twice in New York: EDT (05:30Z) first.
        let t = Trace::parse(
            "time,users\n2026-11-01 01:30,1\n2026-11-01 01:45,2\n",
            &new_york(),
        )
        .unwrap();
        assert_eq!(t.start(), ts("2026-11-01T05:30:00Z"));
        assert_eq!(t.end(), ts("2026-11-01T05:45:00Z"));
    }

    #[test]
    fn users_are_linear_between_samples_rounded_half_up_and_clamped() {
        let t = Trace::from_samples(vec![
            (ts("2026-03-02T00:00:00Z"), 100),
            (ts("2026-03-02T00:10:00Z"), 200),
            (ts("2026-03-02T00:20:00Z"), 101),
        ])
        .unwrap();
        let at = |s: &str| t.users_at(ts(s));
        assert_eq!(
            at("2026-03-01T00:00:00Z"),
            100,
            "before the trace: the first"
        );
        assert_eq!(at("2026-03-02T00:00:00Z"), 100);
        assert_eq!(at("2026-03-02T00:01:00Z"), 110);
        assert_eq!(at("2026-03-02T00:05:00Z"), 150);
        assert_eq!(at("2026-03-02T00:00:03Z"), 101, "100.5 rounds up");
        assert_eq!(at("2026-03-02T00:00:02Z"), 100, "100.33 rounds down");
        assert_eq!(at("2026-03-02T00:10:00Z"), 200);
        assert_eq!(
            at("2026-03-02T00:15:00Z"),
            151,
            "150.5 rounds up going down too"
        );
        assert_eq!(at("2026-03-02T00:20:00Z"), 101);
        assert_eq!(at("2026-03-03T00:00:00Z"), 101, "after the trace: the last");
    }

    #[test]
    fn users_at_the_largest_values_do_not_overflow() {
        let t = Trace::from_samples(vec![
            (ts("2000-01-01T00:00:00Z"), 0),
            (ts("2090-01-01T00:00:00Z"), MAX_USERS),
        ])
        .unwrap();
        let middle = t.start() + t.end().duration_since(t.start()) / 2;
        assert_eq!(
            t.users_at(middle),
            1_073_741_824,
            "2147483647 / 2 rounds up"
        );
        assert_eq!(
            t.users_at(t.end() - SignedDuration::from_nanos(1)),
            MAX_USERS
        );
    }

    fn err(text: &str) -> (TraceError, String) {
        let e = parse(text).unwrap_err();
        let msg = e.to_string();
        (e, msg)
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(err("").0, TraceError::Empty);
        assert_eq!(err("\n  \r\n# only a comment\n").0, TraceError::Empty);
    }

    #[test]
    fn an_unknown_format_names_the_line() {
        let (e, msg) = err("\n2026-03-02T00:00:00Z,5\n2026-03-02T00:01:00Z,6\n");
        assert!(
            matches!(e, TraceError::UnknownFormat { line: 2, .. }),
            "{e:?}"
        );
        assert!(
            msg.contains("line 2") && msg.contains("`time` and `users`"),
            "{msg}"
        );
        assert!(matches!(
            err("time,count\n").0,
            TraceError::UnknownFormat { line: 1, .. }
        ));
    }

    #[test]
    fn an_unreadable_row_names_its_line() {
        let (e, msg) = err("time,users\n2026-03-02T00:00:00Z,5\n2026-03-02T00:01:00Z,1,234\n");
        assert!(matches!(e, TraceError::Row { line: 3, .. }), "{e:?}");
        assert!(msg.contains("3 field(s), the header has 2"), "{msg}");
        let (e, msg) = err(
            "{\"time\": \"2026-03-02T00:00:00Z\", \"users\": 5}\n{\"time\": \"2026-03-02T00:01:00Z\"\n",
        );
        assert!(matches!(e, TraceError::Row { line: 2, .. }), "{e:?}");
        assert!(msg.contains("not JSON"), "{msg}");
        let (e, msg) = err("{\"time\": \"2026-03-02T00:00:00Z\"}\n");
        assert!(
            matches!(e, TraceError::Row { line: 1, .. }) && msg.contains("no `users` key"),
            "{msg}"
        );
        let (e, _) = err("{\"time\": \"2026-03-02T00:00:00Z\", \"users\": 1}\n[1, 2]\n");
        assert!(matches!(e, TraceError::Row { line: 2, .. }), "{e:?}");
    }

    #[test]
    fn a_bad_time_names_its_line_and_value() {
        for bad in [
            "yesterday",
            "2026-03-02 25:00",
            "2026-03-02",
            "2026-3-2 10:00",
            "2026-03-02T10:00:00+99:00",
            "",
        ] {
            let text = format!("time,users\n2026-03-02T00:00:00Z,5\n{bad},6\n");
            let (e, msg) = err(&text);
            assert!(
                matches!(e, TraceError::Time { line: 3, .. }),
                "{bad}: {e:?}"
            );
            assert!(msg.contains("line 3: bad time"), "{msg}");
        }
        let (e, msg) = err("{\"time\": 1772409600, \"users\": 5}\n");
        assert!(
            matches!(e, TraceError::Time { line: 1, .. }) && msg.contains("must be a string"),
            "{msg}"
        );
    }

    #[test]
    fn bad_users_name_the_line_and_why() {
        let cases = [
            ("-5", "must not be negative"),
            ("12.5", "whole number"),
            ("1e3", "whole number"),
            ("lots", "whole number"),
            ("2147483648", "2^31-1"),
            ("99999999999999999999999", "2^31-1"),
            ("", "empty"),
        ];
        for (bad, why) in cases {
            let text = format!("time,users\n2026-03-02T00:00:00Z,5\n2026-03-02T00:01:00Z,{bad}\n");
            let (e, msg) = err(&text);
            assert!(
                matches!(e, TraceError::Users { line: 3, .. }),
                "{bad}: {e:?}"
            );
            assert!(msg.contains(why), "{bad}: {msg}");
        }
        let ok =
            parse("time,users\n2026-03-02T00:00:00Z,0\n2026-03-02T00:01:00Z,2147483647\n").unwrap();
        assert_eq!(ok.peak(), MAX_USERS);
        for (bad, why) in [
            ("-1", "negative"),
            ("1.5", "whole"),
            ("\"7\"", "must be a number"),
        ] {
            let text = format!("{{\"time\": \"2026-03-02T00:00:00Z\", \"users\": {bad}}}\n");
            let (e, msg) = err(&text);
            assert!(
                matches!(e, TraceError::Users { line: 1, .. }) && msg.contains(why),
                "{msg}"
            );
        }
    }

    #[test]
    fn unsorted_times_name_both_lines() {
        let (e, msg) = err("time,users\n2026-03-02T00:05:00Z,1\n# gap\n2026-03-02T00:01:00Z,2\n");
        assert!(
            matches!(
                e,
                TraceError::Unsorted {
                    line: 4,
                    previous_line: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            msg.contains("line 4") && msg.contains("line 2") && msg.contains("sorted"),
            "{msg}"
        );
    }

    #[test]
    fn a_repeated_time_names_both_lines_even_written_differently() {
        let (e, msg) = err("time,users\n2026-03-02 08:00,1\n2026-03-02T00:00:00Z,2\n");
        assert!(
            matches!(
                e,
                TraceError::Duplicate {
                    line: 3,
                    previous_line: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(msg.contains("repeats line 2"), "{msg}");
    }

    #[test]
    fn fewer_than_two_samples_is_an_error() {
        assert_eq!(err("time,users\n").0, TraceError::TooFew { count: 0 });
        let (e, msg) = err("time,users\n2026-03-02T00:00:00Z,1\n");
        assert_eq!(e, TraceError::TooFew { count: 1 });
        assert!(msg.contains("at least two"), "{msg}");
    }

    #[test]
    fn a_garbage_line_is_shortened_in_the_message() {
        let long = "x".repeat(10_000);
        let msg = err(&format!("time,users\n2026-03-02T00:00:00Z,{long}\n")).1;
        assert!(msg.len() < 300, "{} bytes", msg.len());
    }

    #[test]
    fn store_records_become_a_trace_skipping_runs_without_a_reading() {
        let now = ts("2026-03-02T12:00:00Z");
        let mut failed = RunRecord::check_needing(600, 600, now, 5);
        failed.users = None;
        let records = vec![
            RunRecord::check_needing(900, 1000, now, 0),
            failed,
            RunRecord::check_needing(300, 600, now, 10),
            RunRecord::check_needing(350, 600, now, 10),
        ];
        let t = Trace::from_records(&records).unwrap();
        assert_eq!(
            t.samples(),
            &[(ts("2026-03-02T11:50:00Z"), 350), (now, 900)],
            "sorted, the larger of two readings at once, the failed run a gap"
        );
        assert_eq!(t.users_at(ts("2026-03-02T11:55:00Z")), 625);
        let one = Trace::from_records(&records[..2]).unwrap_err();
        assert_eq!(one, TraceError::TooFew { count: 1 });
    }

    fn mean(t: &Trace, from: Timestamp, days: i64) -> f64 {
        let to = from + SignedDuration::from_hours(24 * days);
        let window: Vec<u32> = t
            .samples()
            .iter()
            .filter(|s| s.0 >= from && s.0 < to)
            .map(|s| s.1)
            .collect();
        window.iter().map(|&u| f64::from(u)).sum::<f64>() / window.len() as f64
    }

    #[test]
    fn the_shipped_week_trace_has_the_documented_shape() {
        let week = parse(include_str!("../../../examples/traces/week.csv")).unwrap();
        assert_eq!(week.samples().len(), 7 * 288 + 1);
        assert_eq!(week.start(), ts("2026-03-02T00:00:00+08:00"));
        assert_eq!(
            week.end().duration_since(week.start()),
            SignedDuration::from_hours(7 * 24)
        );
        assert!(
            week.samples()
                .windows(2)
                .all(|p| p[1].0.duration_since(p[0].0) == SignedDuration::from_mins(5)),
            "5-minute samples"
        );
        let at = |s: &str| week.users_at(ts(s));
        assert!(
            (100..=250).contains(&at("2026-03-03T04:30:00+08:00")),
            "night low"
        );
        assert!(
            (2200..=3000).contains(&at("2026-03-03T20:30:00+08:00")),
            "weekday evening peak"
        );
        assert!(
            at("2026-03-03T19:30:00+08:00") > at("2026-03-03T18:30:00+08:00") + 800,
            "steep ramp"
        );
        assert!(
            (1500..=2300).contains(&at("2026-03-07T12:00:00+08:00")),
            "weekend midday"
        );
        assert!(
            (4200..=4800).contains(&week.peak()),
            "campaign spike {}",
            week.peak()
        );
        assert!(
            at("2026-03-05T20:30:00+08:00") > 4000,
            "the spike is Thursday evening"
        );
    }

    #[test]
    fn the_shipped_month_trace_shifts_up_in_its_last_week() {
        let month = parse(include_str!("../../../examples/traces/month.csv")).unwrap();
        assert_eq!(month.samples().len(), 35 * 288 + 1);
        assert_eq!(month.start(), ts("2026-02-02T00:00:00+08:00"));
        let weeks: Vec<f64> = (0..5)
            .map(|w| {
                mean(
                    &month,
                    month.start() + SignedDuration::from_hours(24 * 7 * w),
                    7,
                )
            })
            .collect();
        let shift = weeks[4] / weeks[3];
        assert!(
            (1.2..1.4).contains(&shift),
            "last week / the one before: {shift} ({weeks:?})"
        );
        assert!(
            (weeks[1] / weeks[0] - 1.0).abs() < 0.05,
            "earlier weeks alike: {weeks:?}"
        );
    }
}
