//! The gauges every `check` and `upgrade` publishes (README, "Metrics and
//! alerts"): what the run saw, decided and left behind, taken from its
//! [`Conclusion`] and what it gathered, and their Prometheus text
//! exposition (format 0.0.4) — the body of a Pushgateway push and of a
//! node_exporter textfile alike. Values in, text out: sending it is the
//! binary crate's business.
//!
//! A value the run does not know (the users when the metric source failed,
//! the forecast when it is off) is left out rather than written as 0, so a
//! graph shows a gap instead of a false drop. The body carries no `job` or
//! `cluster` label: those are the Pushgateway's grouping labels, which it
//! puts on every series itself.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::conclude::Conclusion;
use crate::hpa::Hpa;
use crate::plan::{self, RUN_LOCK, Verdict};
use crate::policy::Policy;
use crate::prereq::{self, Observed};
use crate::record::{Outcome, RunRecord};

/// Every metric name a run may publish, in the order of the body. The
/// monitoring files (`deploy/monitoring`) may name only these.
pub const NAMES: [&str; 11] = [
    USERS,
    NEEDED,
    CAPACITY,
    FORECAST,
    ALLOWED,
    SCHEDULE,
    OUTCOME,
    DURATION,
    LAST_RUN,
    LAST_SUCCESS,
    HPA_MIN,
];

const USERS: &str = "hpa_tier_users";
const NEEDED: &str = "hpa_tier_needed_capacity";
const CAPACITY: &str = "hpa_tier_capacity";
const FORECAST: &str = "hpa_tier_forecast_capacity";
const ALLOWED: &str = "hpa_tier_allowed_capacity";
const SCHEDULE: &str = "hpa_tier_schedule_capacity";
const OUTCOME: &str = "hpa_tier_run_outcome";
const DURATION: &str = "hpa_tier_run_duration_seconds";
const LAST_RUN: &str = "hpa_tier_last_run_timestamp_seconds";
const LAST_SUCCESS: &str = "hpa_tier_last_success_timestamp_seconds";
const HPA_MIN: &str = "hpa_tier_hpa_min_replicas";

/// The `outcome` of a run that found the run lock taken and did nothing.
pub const SKIPPED: &str = "skipped";

/// Every value of `hpa_tier_run_outcome`'s `outcome` label; each run
/// publishes all of them, 1 for its own and 0 for the rest, so a dashboard
/// can graph each and an alert never waits for a series to go stale.
pub const OUTCOMES: [&str; 7] = [
    "noop", "applied", "held", "blocked", "partial", "error", SKIPPED,
];

/// The outcomes of a run that did its pass: the source of
/// `hpa_tier_last_success_timestamp_seconds`.
pub const SUCCESSES: [Outcome; 4] = [
    Outcome::Noop,
    Outcome::Applied,
    Outcome::Held,
    Outcome::Blocked,
];

/// `Content-Type` of the body.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a run ended, as `hpa_tier_run_outcome` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The outcome of its record.
    Ran(Outcome),
    /// Another run held the lock: nothing was decided or done. A `check`
    /// that raises the stuck-lock alarm (its record says `error`) is one
    /// too: it did nothing either, and the lock is the problem.
    Skipped,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ran(o) => o.as_str(),
            RunOutcome::Skipped => SKIPPED,
        }
    }
}

/// One managed HPA's minReplicas after the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpaMin {
    pub namespace: String,
    pub hpa: String,
    pub min: u32,
}

/// What the run saw besides its decision, from the shell.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub policy: &'a Policy,
    /// The metric read, when the run read one.
    pub users: Option<u32>,
    /// The managed HPAs as read before applying.
    pub hpas: &'a [Hpa],
    /// `None` when AWS could not be read (or was not, the run being stopped).
    pub prerequisites: Option<&'a Observed>,
    /// Past runs (`RunStore::history`); `None` when they could not be read.
    pub history: Option<&'a [RunRecord]>,
    pub started: Timestamp,
    /// When the gauges are taken: the end of the run but for its record.
    pub finished: Timestamp,
}

/// The gauges of one run (SPEC §13); `None` is a value left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gauges {
    pub users: Option<u32>,
    /// The highest floor: the tier the users and every other floor call for.
    pub needed_capacity: Option<u32>,
    /// The tier the HPAs are at after the run.
    pub capacity: Option<u32>,
    pub forecast_capacity: Option<u32>,
    /// The highest tier the prerequisites allow; 0 when not even the lowest.
    pub allowed_capacity: Option<u32>,
    /// The floor of the schedule window active at the run's start.
    pub schedule_capacity: Option<u32>,
    pub outcome: RunOutcome,
    pub duration_ms: i64,
    pub started: Timestamp,
    /// The start of the newest run that did its pass, this one included.
    pub last_success: Option<Timestamp>,
    pub hpa_min_replicas: Vec<HpaMin>,
}

impl Gauges {
    /// The gauges of a run that decided (or was stopped before it could, or
    /// raised the stuck-lock alarm): its conclusion and what it saw.
    pub fn of_run(c: &Conclusion, seen: &Seen) -> Gauges {
        let d = &c.decision;
        if matches!(&d.verdict, Verdict::Failed(f) if f.what == RUN_LOCK) {
            return Gauges::of_skipped(seen);
        }
        let outcome = RunOutcome::Ran(c.outcome);
        let confirmed = |h: &Hpa| {
            d.changes
                .iter()
                .zip(&c.results)
                .find(|(change, _)| change.hpa == h.id)
                .filter(|(_, r)| **r == crate::conclude::ChangeResult::Applied)
                .map(|(change, _)| change.to_min)
        };
        Gauges {
            users: d.users,
            needed_capacity: d.need.as_ref().map(|n| n.capacity),
            capacity: c.to,
            forecast_capacity: d.forecast.as_ref().and_then(|f| f.floor()),
            hpa_min_replicas: seen
                .hpas
                .iter()
                .map(|h| HpaMin::of(h, confirmed(h).unwrap_or(h.min)))
                .collect(),
            ..Gauges::observed(seen, outcome)
        }
    }

    /// The gauges of a run that found the run lock taken: what it read (the
    /// users, the HPAs and the tier they tell, the prerequisites), nothing
    /// it would have decided.
    pub fn of_skipped(seen: &Seen) -> Gauges {
        let policy = seen.policy;
        let reference = seen.hpas.iter().find(|h| h.id == *policy.reference());
        Gauges {
            users: seen.users,
            capacity: reference.map(|h| plan::current_tier(&policy.tiers, h).capacity),
            hpa_min_replicas: seen.hpas.iter().map(|h| HpaMin::of(h, h.min)).collect(),
            ..Gauges::observed(seen, RunOutcome::Skipped)
        }
    }

    /// What any run knows: the schedule, the prerequisites, its timing and
    /// the history.
    fn observed(seen: &Seen, outcome: RunOutcome) -> Gauges {
        let policy = seen.policy;
        let allowed = seen
            .prerequisites
            .map(|o| prereq::highest_allowed(&prereq::evaluate(o, &policy.tiers)).unwrap_or(0));
        Gauges {
            users: None,
            needed_capacity: None,
            capacity: None,
            forecast_capacity: None,
            allowed_capacity: allowed,
            schedule_capacity: policy.schedules.active(seen.started).map(|w| w.capacity),
            outcome,
            duration_ms: seen
                .finished
                .duration_since(seen.started)
                .as_millis()
                .max(0) as i64,
            started: seen.started,
            last_success: last_success(outcome, seen.started, seen.history),
            hpa_min_replicas: vec![],
        }
    }

    /// The text exposition format 0.0.4: HELP and TYPE per family, no
    /// timestamps, families of unknown values left out, a final newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let simple = [
            (USERS, self.users),
            (NEEDED, self.needed_capacity),
            (CAPACITY, self.capacity),
            (FORECAST, self.forecast_capacity),
            (ALLOWED, self.allowed_capacity),
            (SCHEDULE, self.schedule_capacity),
        ];
        for (name, value) in simple {
            if let Some(v) = value {
                family(&mut out, name);
                sample(&mut out, name, &[], &v.to_string());
            }
        }
        family(&mut out, OUTCOME);
        for o in OUTCOMES {
            let v = if o == self.outcome.as_str() { "1" } else { "0" };
            sample(&mut out, OUTCOME, &[("outcome", o)], v);
        }
        family(&mut out, DURATION);
        sample(&mut out, DURATION, &[], &seconds(self.duration_ms));
        family(&mut out, LAST_RUN);
        let started = seconds(self.started.as_millisecond());
        sample(&mut out, LAST_RUN, &[], &started);
        if let Some(t) = self.last_success {
            family(&mut out, LAST_SUCCESS);
            sample(&mut out, LAST_SUCCESS, &[], &seconds(t.as_millisecond()));
        }
        if !self.hpa_min_replicas.is_empty() {
            family(&mut out, HPA_MIN);
            for h in &self.hpa_min_replicas {
                let labels = [("namespace", h.namespace.as_str()), ("hpa", h.hpa.as_str())];
                sample(&mut out, HPA_MIN, &labels, &h.min.to_string());
            }
        }
        out
    }
}

impl HpaMin {
    fn of(h: &Hpa, min: u32) -> HpaMin {
        HpaMin {
            namespace: h.id.namespace.clone(),
            hpa: h.id.name.clone(),
            min,
        }
    }
}

/// This run's start when it did its pass, else the newest such run's start
/// in the history; `None` when neither says.
fn last_success(
    outcome: RunOutcome,
    started: Timestamp,
    history: Option<&[RunRecord]>,
) -> Option<Timestamp> {
    if matches!(outcome, RunOutcome::Ran(o) if SUCCESSES.contains(&o)) {
        return Some(started);
    }
    history?
        .iter()
        .filter(|r| SUCCESSES.contains(&r.outcome) && r.started_at <= started)
        .map(|r| r.started_at)
        .max()
}

fn help(name: &str) -> &'static str {
    match name {
        USERS => "Online users read by the run.",
        NEEDED => "The tier capacity the users (with headroom) and every floor call for.",
        CAPACITY => "The tier capacity the HPAs are at after the run.",
        FORECAST => "The forecast floor, a tier capacity (forecast.mode advise or scale).",
        ALLOWED => {
            "The highest tier capacity the RDS and ElastiCache prerequisites allow (0: none)."
        }
        SCHEDULE => "The tier capacity of the schedule window active at the run's start.",
        OUTCOME => "1 for the outcome of the run, 0 for the others.",
        DURATION => "Wall time of the run until its metrics were taken, in seconds.",
        LAST_RUN => "When the run started, in Unix seconds.",
        LAST_SUCCESS => {
            "When the newest run that did its pass (noop, applied, held, blocked) started, in Unix seconds."
        }
        HPA_MIN => "minReplicas of each managed HPA after the run.",
        _ => "",
    }
}

/// The HELP and TYPE lines of a gauge. HELP text escapes `\` and newlines.
fn family(out: &mut String, name: &str) {
    let text = help(name).replace('\\', r"\\").replace('\n', r"\n");
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        let pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
            .collect();
        let _ = write!(out, "{{{}}}", pairs.join(","));
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds as decimal seconds, exactly: `1800000000.5`, `0.042`, `3`.
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return format!("{sign}{s}");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{s}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conclude::{Applied, conclude};
    use crate::plan::{Decision, Demand, Inputs, decide};
    use crate::prereq::{RdsMember, RdsObserved};
    use crate::record::CommandKind;
    use crate::schedule::{ScheduleSpec, Schedules, SchedulesSpec};
    use crate::tiers::fixtures::table;
    use jiff::SignedDuration;

    /// 2027-01-15T08:00:00.250Z.
    fn now() -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_250).unwrap()
    }

    fn hpas_at(capacity: u32) -> Vec<Hpa> {
        let t = table();
        t.services()
            .iter()
            .map(|s| {
                let min = t.get(capacity).unwrap().replicas_of(s).unwrap().min;
                Hpa::test(s).min(min).max(min.max(10)).annotated(capacity)
            })
            .collect()
    }

    /// Aurora's writer at `class`; no Redis check.
    fn aurora(class: &str) -> Observed {
        Observed {
            region: "us-east-2".into(),
            rds: Some(RdsObserved {
                cluster: "prod-aurora".into(),
                members: vec![RdsMember {
                    id: "prod-aurora-1".into(),
                    writer: true,
                    class: class.into(),
                }],
            }),
            redis: None,
        }
    }

    fn decision(policy: &Policy, demand: Demand, hpas: &[Hpa], observed: &Observed) -> Decision {
        let allowance = Ok(prereq::evaluate(observed, &policy.tiers));
        decide(&Inputs {
            now: now(),
            demand,
            hold: None,
            samples: &[],
            policy,
            hpas,
            unreadable: &[],
            prereqs: &allowance,
            history: Some(&[]),
        })
    }

    fn seen<'a>(policy: &'a Policy, users: Option<u32>, hpas: &'a [Hpa]) -> Seen<'a> {
        Seen {
            policy,
            users,
            hpas,
            prerequisites: None,
            history: None,
            started: now(),
            finished: now() + SignedDuration::from_millis(1_042),
        }
    }

    /// Every patch of `d` succeeded.
    fn all_applied(d: &Decision) -> Applied {
        Applied::Results(d.changes.iter().map(|c| (c.hpa.clone(), Ok(()))).collect())
    }

    fn outcome_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with("hpa_tier_run_outcome{"))
            .collect()
    }

    #[test]
    fn an_applied_run_publishes_what_it_read_needed_and_left_behind() {
        let policy = Policy::test();
        let hpas = hpas_at(600);
        let observed = aurora("db.r5.8xlarge");
        let d = decision(&policy, Demand::Users(Ok(1500)), &hpas, &observed);
        let c = conclude(d.clone(), all_applied(&d), &policy.tiers, now());
        let seen = Seen {
            prerequisites: Some(&observed),
            ..seen(&policy, Some(1500), &hpas)
        };
        let text = Gauges::of_run(&c, &seen).render();
        let want = "\
# HELP hpa_tier_users Online users read by the run.
# TYPE hpa_tier_users gauge
hpa_tier_users 1500
# HELP hpa_tier_needed_capacity The tier capacity the users (with headroom) and every floor call for.
# TYPE hpa_tier_needed_capacity gauge
hpa_tier_needed_capacity 2000
# HELP hpa_tier_capacity The tier capacity the HPAs are at after the run.
# TYPE hpa_tier_capacity gauge
hpa_tier_capacity 2000
# HELP hpa_tier_allowed_capacity The highest tier capacity the RDS and ElastiCache prerequisites allow (0: none).
# TYPE hpa_tier_allowed_capacity gauge
hpa_tier_allowed_capacity 3000
# HELP hpa_tier_run_outcome 1 for the outcome of the run, 0 for the others.
# TYPE hpa_tier_run_outcome gauge
hpa_tier_run_outcome{outcome=\"noop\"} 0
hpa_tier_run_outcome{outcome=\"applied\"} 1
hpa_tier_run_outcome{outcome=\"held\"} 0
hpa_tier_run_outcome{outcome=\"blocked\"} 0
hpa_tier_run_outcome{outcome=\"partial\"} 0
hpa_tier_run_outcome{outcome=\"error\"} 0
hpa_tier_run_outcome{outcome=\"skipped\"} 0
# HELP hpa_tier_run_duration_seconds Wall time of the run until its metrics were taken, in seconds.
# TYPE hpa_tier_run_duration_seconds gauge
hpa_tier_run_duration_seconds 1.042
# HELP hpa_tier_last_run_timestamp_seconds When the run started, in Unix seconds.
# TYPE hpa_tier_last_run_timestamp_seconds gauge
hpa_tier_last_run_timestamp_seconds 1800000000.25
# HELP hpa_tier_last_success_timestamp_seconds When the newest run that did its pass (noop, applied, held, blocked) started, in Unix seconds.
# TYPE hpa_tier_last_success_timestamp_seconds gauge
hpa_tier_last_success_timestamp_seconds 1800000000.25
# HELP hpa_tier_hpa_min_replicas minReplicas of each managed HPA after the run.
# TYPE hpa_tier_hpa_min_replicas gauge
hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"istio-ingress\"} 6
hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"gateway\"} 3
hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"web\"} 6
hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"hermes\"} 8
hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"passport\"} 12
hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"project\"} 3
";
        assert_eq!(text, want);
    }

    #[test]
    fn a_patch_that_failed_leaves_that_hpa_at_what_was_read() {
        let policy = Policy::test();
        let hpas = hpas_at(600);
        let observed = aurora("db.r5.12xlarge");
        let d = decision(&policy, Demand::Users(Ok(1500)), &hpas, &observed);
        let Applied::Results(mut results) = all_applied(&d) else {
            unreachable!()
        };
        results[2].1 = Err("HTTP 500".into()); // web
        results.pop(); // project: no answer before the deadline
        let c = conclude(d, Applied::Results(results), &policy.tiers, now());
        let g = Gauges::of_run(&c, &seen(&policy, Some(1500), &hpas));
        assert_eq!(g.outcome, RunOutcome::Ran(Outcome::Partial));
        let mins: Vec<u32> = g.hpa_min_replicas.iter().map(|h| h.min).collect();
        assert_eq!(mins, [6, 3, 2, 8, 12, 2]);
        assert_eq!(g.last_success, None, "partial is no success; no history");
    }

    #[test]
    fn a_noop_run_inside_a_window_publishes_its_floors() {
        let spec = SchedulesSpec {
            timezone: None,
            schedules: vec![
                ScheduleSpec::at("launch", "2027-01-15T07:30:00Z")
                    .duration("2h")
                    .capacity(2000),
            ],
            skip_dates: vec![],
            preflight_hours: None,
        };
        let policy = Policy {
            schedules: Schedules::new(spec, &table().capacities()).unwrap(),
            ..Policy::test()
        };
        let hpas = hpas_at(2000);
        let observed = aurora("db.r5.12xlarge");
        let d = decision(&policy, Demand::Users(Ok(1500)), &hpas, &observed);
        let c = conclude(d, Applied::Results(vec![]), &policy.tiers, now());
        assert_eq!(c.outcome, Outcome::Noop, "{}", c.message);
        let seen = Seen {
            prerequisites: Some(&observed),
            ..seen(&policy, Some(1500), &hpas)
        };
        let text = Gauges::of_run(&c, &seen).render();
        for line in [
            "hpa_tier_users 1500\n",
            "hpa_tier_needed_capacity 2000\n",
            "hpa_tier_capacity 2000\n",
            "hpa_tier_schedule_capacity 2000\n",
            "hpa_tier_allowed_capacity 5000\n",
            "hpa_tier_run_outcome{outcome=\"noop\"} 1\n",
            "hpa_tier_last_success_timestamp_seconds 1800000000.25\n",
            "hpa_tier_hpa_min_replicas{namespace=\"prod\",hpa=\"passport\"} 12\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("hpa_tier_forecast_capacity"), "{text}");
    }

    /// History: a noop 10 minutes ago, an error 5 minutes ago.
    fn history() -> Vec<RunRecord> {
        let mut err = RunRecord::check_needing(600, 600, now(), 5);
        err.outcome = Outcome::Error;
        vec![RunRecord::check_needing(600, 600, now(), 10), err]
    }

    #[test]
    fn an_error_run_leaves_out_what_it_does_not_know_and_keeps_the_last_success() {
        let policy = Policy::test();
        let hpas = hpas_at(1000);
        let observed = aurora("db.r5.12xlarge");
        let failed = Demand::Users(Err("GA answered 503".into()));
        let d = decision(&policy, failed, &hpas, &observed);
        let c = conclude(d, Applied::Results(vec![]), &policy.tiers, now());
        let history = history();
        let with_history = Seen {
            history: Some(&history),
            ..seen(&policy, None, &hpas)
        };
        let text = Gauges::of_run(&c, &with_history).render();
        for absent in [
            "hpa_tier_users",
            "hpa_tier_needed_capacity",
            "hpa_tier_allowed_capacity",
            "hpa_tier_forecast_capacity",
            "hpa_tier_schedule_capacity",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        assert!(text.contains("hpa_tier_capacity 1000\n"), "{text}");
        assert!(
            text.contains("hpa_tier_run_outcome{outcome=\"error\"} 1\n"),
            "{text}"
        );
        // The noop ten minutes before; the error after it is no success.
        let ten_ago = now() - SignedDuration::from_mins(10);
        assert_eq!(ten_ago.as_millisecond(), 1_799_999_400_250);
        assert!(
            text.contains("hpa_tier_last_success_timestamp_seconds 1799999400.25\n"),
            "{text}"
        );
        // Without history the time of the last success is unknown.
        let g = Gauges::of_run(&c, &seen(&policy, None, &hpas));
        assert_eq!(g.last_success, None);
        assert!(!g.render().contains("hpa_tier_last_success"));
    }

    #[test]
    fn a_run_that_lost_the_lock_is_skipped_with_what_it_read() {
        let policy = Policy::test();
        let hpas = hpas_at(1000);
        let history = history();
        let seen = Seen {
            history: Some(&history),
            ..seen(&policy, Some(700), &hpas)
        };
        let g = Gauges::of_skipped(&seen);
        let text = g.render();
        assert_eq!(
            outcome_lines(&text)
                .iter()
                .filter(|l| l.ends_with(" 1"))
                .copied()
                .collect::<Vec<_>>(),
            ["hpa_tier_run_outcome{outcome=\"skipped\"} 1"]
        );
        assert_eq!(outcome_lines(&text).len(), 7, "{text}");
        assert!(text.contains("hpa_tier_users 700\n"), "{text}");
        assert!(text.contains("hpa_tier_capacity 1000\n"), "{text}");
        assert!(!text.contains("hpa_tier_needed_capacity"), "{text}");
        assert_eq!(
            g.last_success,
            Some(now() - SignedDuration::from_mins(10)),
            "a skipped run did not do its pass"
        );

        // The stuck-lock alarm is recorded as an error, and published as
        // the skip it is.
        let alarm = Decision::locked_out("stuck".into(), &policy);
        let c = conclude(alarm, Applied::Results(vec![]), &policy.tiers, now());
        assert_eq!(c.outcome, Outcome::Error);
        assert_eq!(Gauges::of_run(&c, &seen), g);
    }

    #[test]
    fn a_run_stopped_before_deciding_is_an_error_with_little_to_say() {
        let policy = Policy::test();
        let d = Decision::stopped(CommandKind::Check, "SIGTERM arrived", &policy);
        let c = conclude(d, Applied::Results(vec![]), &policy.tiers, now());
        let text = Gauges::of_run(&c, &seen(&policy, None, &[])).render();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [OUTCOME, DURATION, LAST_RUN],
            "no history was read, so no last success: {text}"
        );
    }

    #[test]
    fn no_tier_allowed_is_zero_not_unknown() {
        let policy = Policy::test();
        let hpas = hpas_at(600);
        let tiny = aurora("db.t3.medium");
        let seen = Seen {
            prerequisites: Some(&tiny),
            ..seen(&policy, Some(10), &hpas)
        };
        assert_eq!(Gauges::of_skipped(&seen).allowed_capacity, Some(0));
    }

    #[test]
    fn label_values_and_help_text_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("line\nnext"), r"line\nnext");
        assert_eq!(escape_label_value("plain-name.1"), "plain-name.1");
        let g = Gauges {
            hpa_min_replicas: vec![HpaMin {
                namespace: "odd\"ns".into(),
                hpa: "back\\slash\nnew".into(),
                min: 3,
            }],
            ..Gauges::of_skipped(&seen(&Policy::test(), None, &[]))
        };
        assert!(
            g.render().contains(
                "hpa_tier_hpa_min_replicas{namespace=\"odd\\\"ns\",hpa=\"back\\\\slash\\nnew\"} 3\n"
            ),
            "{}",
            g.render()
        );
    }

    #[test]
    fn the_body_is_lines_with_a_final_newline_and_no_timestamps() {
        let policy = Policy::test();
        let hpas = hpas_at(600);
        let text = Gauges::of_skipped(&seen(&policy, Some(1), &hpas)).render();
        assert!(text.ends_with('\n'));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            // `name{labels} value` or `name value`: a value, no timestamp.
            let value = match line.rsplit_once('}') {
                Some((_, rest)) => rest.strip_prefix(' '),
                None => line.split_once(' ').map(|(_, rest)| rest),
            };
            let value = value.unwrap_or_else(|| panic!("{line}"));
            assert!(
                !value.contains(' ') && value.parse::<f64>().is_ok(),
                "{line}"
            );
        }
        for name in NAMES {
            assert!(name.starts_with("hpa_tier_"), "{name}");
            assert!(!help(name).is_empty(), "{name} has no HELP");
        }
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(1_800_000_000_250), "1800000000.25");
        assert_eq!(seconds(1_800_000_000_000), "1800000000");
        assert_eq!(seconds(42), "0.042");
        assert_eq!(seconds(1_005), "1.005");
        assert_eq!(seconds(-1_500), "-1.5");
        assert_eq!(seconds(0), "0");
    }
}
