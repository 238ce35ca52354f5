//! Occurrences as people and scripts read them: `hpa-tier schedules` and
//! the windows part of `status`. Local and UTC times side by side, because
//! the config speaks local time and the records speak UTC.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{Occurrence, Schedules};
use crate::prereq::Allowance;

/// One window occurrence, ready to print.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowRow {
    pub name: String,
    pub capacity: u32,
    /// The zone the window is written in.
    pub zone: String,
    pub local_start: String,
    pub local_end: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Minutes before `start` the tier is raised.
    pub lead_minutes: i64,
    /// Active at the time asked about (raising in its lead or running).
    pub active: bool,
    /// Whether the prerequisites read now allow its tier (`status`);
    /// `None` when not known (`schedules` reads nothing; AWS unreadable).
    pub allowed: Option<bool>,
}

impl WindowRow {
    pub fn of(o: &Occurrence, now: Timestamp, allowance: Option<&Allowance>) -> Self {
        let fmt = "%Y-%m-%d %H:%M %Z";
        WindowRow {
            name: o.name.clone(),
            capacity: o.capacity,
            zone: o.zone.iana_name().unwrap_or("UTC").to_string(),
            local_start: o.local_start().strftime(fmt).to_string(),
            local_end: o.local_end().strftime(fmt).to_string(),
            start: o.start,
            end: o.end,
            lead_minutes: o.lead.as_mins(),
            active: o.is_active(now),
            allowed: allowance.map(|a| a.get(&o.capacity).is_none_or(Vec::is_empty)),
        }
    }
}

/// The window active at `now` (if any), then every occurrence starting
/// within `ahead`.
pub fn upcoming(
    schedules: &Schedules,
    now: Timestamp,
    ahead: SignedDuration,
    allowance: Option<&Allowance>,
) -> Vec<WindowRow> {
    let until = now.saturating_add(ahead).unwrap_or(now);
    let active = schedules.active(now);
    let mut rows: Vec<WindowRow> = active
        .iter()
        .filter(|o| o.start <= now)
        .map(|o| WindowRow::of(o, now, allowance))
        .collect();
    rows.extend(
        schedules
            .occurrences(now, until)
            .iter()
            .map(|o| WindowRow::of(o, now, allowance)),
    );
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{ScheduleSpec, SchedulesSpec};

    fn schedules() -> Schedules {
        let spec = SchedulesSpec {
            timezone: Some("Asia/Shanghai".into()),
            schedules: vec![ScheduleSpec::cron("evening", "0 19 * * *").capacity(3000)],
            skip_dates: vec![],
            preflight_hours: None,
        };
        Schedules::new(spec, &[600, 1000, 2000, 3000]).unwrap()
    }

    #[test]
    fn the_running_window_comes_first_then_the_next_ones_in_local_and_utc_time() {
        // 12:00 UTC is 20:00 in Shanghai: the 19:00 window runs until 22:00.
        let now: Timestamp = "2026-12-14T12:00:00Z".parse().unwrap();
        let allow: Allowance = [(3000, vec![])].into_iter().collect();
        let rows = upcoming(
            &schedules(),
            now,
            SignedDuration::from_hours(48),
            Some(&allow),
        );
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(
            rows[0].active && rows[0].local_start == "2026-12-14 19:00 CST",
            "{:?}",
            rows[0]
        );
        assert_eq!(rows[0].start.to_string(), "2026-12-14T11:00:00Z");
        assert_eq!(rows[1].local_start, "2026-12-15 19:00 CST");
        assert!(!rows[1].active);
        assert_eq!((rows[1].lead_minutes, rows[1].allowed), (10, Some(true)));
        assert_eq!(rows[2].local_end, "2026-12-16 22:00 CST");
    }
}
