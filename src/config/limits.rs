//! The numbers that bound a run and the decision: `check_time`,
//! `timeout_seconds`, `headroom_percent`, `scale_down_minutes`,
//! `notify_repeat_minutes`. Each is range-checked here, so the durations
//! built from them can be added to any timestamp of this era without
//! overflowing, and no later conversion can fail.

use std::time::Duration;

use jiff::SignedDuration;

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

pub(super) struct Limits {
    pub headroom_percent: u32,
    pub scale_down: SignedDuration,
    pub notify_repeat: SignedDuration,
    pub check_interval: SignedDuration,
    pub timeout: Duration,
}

/// A key's accepted range and how its top is said in the error.
struct Bound {
    key: &'static str,
    min: u32,
    max: u32,
    unit: &'static str,
    max_in_words: &'static str,
}

const CHECK_TIME: Bound = Bound {
    key: "check_time",
    min: 1,
    max: 1440,
    unit: "minutes",
    max_in_words: "a day",
};
/// The run's deadline is seven timeouts: at ten minutes each, over an hour.
const TIMEOUT: Bound = Bound {
    key: "timeout_seconds",
    min: 1,
    max: 600,
    unit: "seconds",
    max_in_words: "ten minutes",
};
const SCALE_DOWN: Bound = Bound {
    key: "scale_down_minutes",
    min: 0,
    max: 10_080,
    unit: "minutes",
    max_in_words: "a week",
};
const NOTIFY_REPEAT: Bound = Bound {
    key: "notify_repeat_minutes",
    min: 0,
    max: 10_080,
    unit: "minutes",
    max_in_words: "a week",
};
const MAX_HEADROOM_PERCENT: u32 = 1000;

impl Bound {
    fn check(&self, value: u32, doc: &Document) -> Result<u32, ConfigError> {
        if value < self.min {
            return Err(doc.err(
                self.key,
                format!(
                    "must be at least {} (minutes/seconds), got {value}",
                    self.min
                ),
            ));
        }
        if value > self.max {
            return Err(doc.err(
                self.key,
                format!(
                    "must be at most {} {} ({}), got {value}",
                    self.max, self.unit, self.max_in_words
                ),
            ));
        }
        Ok(value)
    }
}

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<Limits, ConfigError> {
    let minutes = |m: u32| SignedDuration::from_mins(i64::from(m));
    let check_time = CHECK_TIME.check(raw.check_time, doc)?;
    let timeout = TIMEOUT.check(raw.timeout_seconds, doc)?;
    if raw.headroom_percent > MAX_HEADROOM_PERCENT {
        return Err(doc.err(
            "headroom_percent",
            format!("{}% is not a sane headroom", raw.headroom_percent),
        ));
    }
    Ok(Limits {
        headroom_percent: raw.headroom_percent,
        scale_down: minutes(SCALE_DOWN.check(raw.scale_down_minutes, doc)?),
        notify_repeat: minutes(NOTIFY_REPEAT.check(raw.notify_repeat_minutes, doc)?),
        check_interval: minutes(check_time),
        timeout: Duration::from_secs(u64::from(timeout)),
    })
}
