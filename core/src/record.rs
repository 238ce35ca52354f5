//! The run record: what one `check` or `upgrade` saw, decided and did. It is
//! the tool's memory — scale-down windows, holds and notice dedupe are all
//! read back from past records — so it is a plain value both stores persist.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::tiers::MAX_COUNT;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    Check,
    Upgrade,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Check => "check",
            CommandKind::Upgrade => "upgrade",
        }
    }
}

/// How a run ended; the values of the `outcome` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Demand fits the current tier; nothing was patched.
    Noop,
    /// At least one HPA was patched and every patch succeeded.
    Applied,
    /// A scale-up was wanted but the prerequisites of the next tier are not met.
    Blocked,
    /// Demand was lower, but the scale-down window or a hold kept the tier.
    Held,
    /// Some patches succeeded, some failed; the next run converges.
    Partial,
    /// The run could not decide or act (metric source, AWS, cluster, store).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Noop => "noop",
            Outcome::Applied => "applied",
            Outcome::Blocked => "blocked",
            Outcome::Held => "held",
            Outcome::Partial => "partial",
            Outcome::Error => "error",
        }
    }

    /// The outcomes of a run whose tier took effect: an `upgrade` that ended
    /// so sets the operator's intent (its hold; the tier it needs in the
    /// scale-down window). Refused (`blocked`) and failed upgrades do not.
    pub const TOOK_EFFECT: [Outcome; 3] = [Outcome::Applied, Outcome::Noop, Outcome::Partial];

    pub fn took_effect(self) -> bool {
        Outcome::TOOK_EFFECT.contains(&self)
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "noop" => Outcome::Noop,
            "applied" => Outcome::Applied,
            "blocked" => Outcome::Blocked,
            "held" => Outcome::Held,
            "partial" => Outcome::Partial,
            "error" => Outcome::Error,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique per run (also across hosts), so a spooled record is never written twice.
    pub run_id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub command: CommandKind,
    /// The metric read; `None` when it failed or the command does not read it.
    pub users: Option<u32>,
    /// The tier demand called for; an `upgrade` needs the tier it names.
    pub needed_capacity: Option<u32>,
    pub from_capacity: Option<u32>,
    pub to_capacity: Option<u32>,
    pub outcome: Outcome,
    pub message: String,
    /// Prerequisites seen, each HPA change, errors, hold.
    pub detail: serde_json::Value,
    /// Set on an `upgrade --hold`: later checks do not step below
    /// `to_capacity` before this instant.
    pub hold_until: Option<Timestamp>,
    /// Dedupe keys of the notices this run actually delivered.
    pub notified: Vec<String>,
    /// The forecast floor, when `forecast.mode` is `advise` or `scale`.
    #[serde(default)]
    pub forecast_capacity: Option<u32>,
}

/// A floor set by `upgrade --hold`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub capacity: u32,
    pub until: Timestamp,
    pub set_at: Timestamp,
}

impl RunRecord {
    /// Whether a record read back (a hand-edited line, a row written by
    /// something else) holds only counts this tool could have written: at
    /// most [`MAX_COUNT`]. A store refuses another rather than let it into a
    /// decision. (What MySQL itself refuses — a year it cannot hold, a
    /// run_id too long — stays on the spool and is announced, not dropped.)
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            ("users", self.users),
            ("needed_capacity", self.needed_capacity),
            ("from_capacity", self.from_capacity),
            ("to_capacity", self.to_capacity),
            ("forecast_capacity", self.forecast_capacity),
        ];
        match counts
            .into_iter()
            .find_map(|(f, v)| v.filter(|v| *v > MAX_COUNT).map(|v| (f, v)))
        {
            Some((field, v)) => Err(format!("{field} is {v}, more than {MAX_COUNT} (2^31-1)")),
            None => Ok(()),
        }
    }

    /// An `upgrade` that took effect: the source of holds.
    pub fn is_effective_upgrade(&self) -> bool {
        self.command == CommandKind::Upgrade && self.outcome.took_effect()
    }

    /// The hold this record sets, if it is an `upgrade` that took effect.
    /// A later upgrade without `--hold` returns `None` here and so ends an
    /// earlier hold: the newest upgrade is the operator's current intent.
    pub fn hold(&self) -> Option<Hold> {
        if !self.is_effective_upgrade() {
            return None;
        }
        Some(Hold {
            capacity: self.to_capacity?,
            until: self.hold_until?,
            set_at: self.started_at,
        })
    }
}

/// The hold in force at `now`, given the newest upgrade record that took effect.
pub fn active_hold(last_upgrade: Option<&RunRecord>, now: Timestamp) -> Option<Hold> {
    last_upgrade
        .and_then(RunRecord::hold)
        .filter(|h| h.until > now)
}

#[cfg(any(test, feature = "fixtures"))]
impl RunRecord {
    /// Fixture: a `check` that needed `needed` and left the tier at `to`,
    /// started `minutes_ago` before `now`.
    pub fn check_needing(needed: u32, to: u32, now: Timestamp, minutes_ago: i64) -> Self {
        let at = now - jiff::SignedDuration::from_mins(minutes_ago);
        RunRecord {
            run_id: format!("test-{minutes_ago}-{needed}"),
            started_at: at,
            finished_at: at,
            command: CommandKind::Check,
            users: Some(needed),
            needed_capacity: Some(needed),
            from_capacity: Some(to),
            to_capacity: Some(to),
            outcome: Outcome::Noop,
            message: String::new(),
            detail: serde_json::Value::Null,
            hold_until: None,
            notified: vec![],
            forecast_capacity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord::check_needing(2000, 2000, "2026-03-02T12:00:00Z".parse().unwrap(), 5)
    }

    #[test]
    fn a_record_with_counts_this_tool_could_have_written_validates() {
        record().validate().unwrap();
        let mut r = record();
        r.users = Some(MAX_COUNT);
        r.forecast_capacity = Some(MAX_COUNT);
        r.validate().unwrap();
    }

    #[test]
    fn a_count_past_2_pow_31_names_the_field() {
        type Spoil = fn(&mut RunRecord);
        let cases: [(Spoil, &str); 3] = [
            (
                |r| r.users = Some(u32::MAX),
                "users is 4294967295, more than 2147483647 (2^31-1)",
            ),
            (
                |r| r.to_capacity = Some(MAX_COUNT + 1),
                "to_capacity is 2147483648, more than 2147483647 (2^31-1)",
            ),
            (
                |r| r.forecast_capacity = Some(u32::MAX),
                "forecast_capacity is 4294967295, more than 2147483647 (2^31-1)",
            ),
        ];
        for (spoil, says) in cases {
            let mut r = record();
            spoil(&mut r);
            assert_eq!(r.validate().unwrap_err(), says);
        }
    }
}
