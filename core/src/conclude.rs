//! How a run ends, decided in one place: from the [`Decision`] and what
//! applying it produced come the outcome, the tier after the run, the
//! notices to send, the message, the hold, the run record and the report a
//! person or script reads, and the exit status. The shell only carries
//! these values between the adapters.

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::forecast::Forecast;
use crate::hpa::HpaRef;
use crate::notice::{Notice, Preflight, ServiceReplicas};
use crate::plan::{
    Above, Blocked, Current, Decision, Floor, FloorReason, HeldBy, RUN_LOCK, Verdict,
};

use crate::prereq::Observed;
use crate::record::{CommandKind, Outcome, RunRecord};
use crate::tiers::TierTable;

/// What applying the decision produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// `--dry-run`: nothing was tried.
    DryRun,
    /// Per HPA patched, how it went. A change of the decision that is not
    /// here got no answer before the run had to stop.
    Results(Vec<(HpaRef, Result<(), String>)>),
}

/// How one planned change went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeResult {
    /// Dry run: what would be patched.
    Planned,
    Applied,
    Failed(String),
    /// No answer before the run had to stop (its deadline, a signal): the
    /// patch may or may not have landed, so it counts as failed and the
    /// next run converges it.
    Unconfirmed,
}

impl std::fmt::Display for ChangeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeResult::Planned => f.write_str("planned"),
            ChangeResult::Applied => f.write_str("applied"),
            ChangeResult::Failed(e) => write!(f, "failed: {e}"),
            ChangeResult::Unconfirmed => {
                f.write_str("not confirmed: no answer before the run had to stop")
            }
        }
    }
}

/// How one notice went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeStatus {
    Sent,
    /// Already delivered within `notify_repeat_minutes`.
    Suppressed,
    Failed(String),
    /// No `feishu_webhook_url`.
    NotConfigured,
    DryRun,
}

impl std::fmt::Display for NoticeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoticeStatus::Sent => f.write_str("sent"),
            NoticeStatus::Suppressed => f.write_str("suppressed"),
            NoticeStatus::Failed(e) => write!(f, "failed: {e}"),
            NoticeStatus::NotConfigured => f.write_str("not configured"),
            NoticeStatus::DryRun => f.write_str("dry run"),
        }
    }
}

fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// One notice of the run and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NoticeReport {
    pub kind: &'static str,
    /// Dedupe key (none for tier changes, which are never suppressed).
    pub key: Option<String>,
    #[serde(serialize_with = "display")]
    pub status: NoticeStatus,
}

impl NoticeReport {
    pub fn new(notice: &Notice, status: NoticeStatus) -> Self {
        NoticeReport {
            kind: notice.kind(),
            key: notice.dedupe_key(),
            status,
        }
    }
}

/// One HPA change and how it went, as reported and recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeReport {
    pub service: String,
    pub namespace: String,
    pub name: String,
    pub from_min: u32,
    pub to_min: u32,
    pub from_max: u32,
    pub to_max: u32,
    #[serde(serialize_with = "display")]
    pub result: ChangeResult,
}

/// Where the run record went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// In the configured store (its description).
    Stored(String),
    /// MySQL could not take it; kept in the spool for the next run (where).
    Spooled(String),
    /// Not recorded at all (why).
    Lost(String),
    /// `--dry-run` records nothing.
    DryRun,
}

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recorded::Stored(store) => write!(f, "recorded in {store}"),
            Recorded::Spooled(spool) => write!(
                f,
                "MySQL unreachable: record spooled to {spool} for the next run"
            ),
            Recorded::Lost(why) => write!(f, "NOT recorded: {why}"),
            Recorded::DryRun => f.write_str("dry run: nothing was changed, recorded or sent"),
        }
    }
}

/// How a command that ran to completion went, for the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Applied, nothing to do, held, or blocked-and-announced in `check`.
    Success,
    /// The run did its best and reported, but something failed (metric
    /// source, AWS, a patch, the store): cron must see a non-zero status.
    Failed,
    /// `upgrade` refused: the target tier's prerequisites are not met.
    Refused,
}

impl Completion {
    /// The exit status (README, "Exit status"); usage errors (2) never get here.
    pub fn exit_code(self) -> u8 {
        match self {
            Completion::Success => 0,
            Completion::Failed => 1,
            Completion::Refused => 3,
        }
    }
}

/// What `check` / `upgrade` print (the JSON document of `-o json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub command: &'static str,
    pub cluster: String,
    pub dry_run: bool,
    pub users: Option<u32>,
    pub needed_capacity: Option<u32>,
    pub above_top: bool,
    pub current: Option<Current>,
    /// The tier after the run (the planned tier in a dry run).
    pub to_capacity: Option<u32>,
    pub outcome: Outcome,
    pub message: String,
    pub changes: Vec<ChangeReport>,
    pub above_tier: Vec<Above>,
    pub blocked: Option<Blocked>,
    pub held_by: Option<HeldBy>,
    pub hold_until: Option<Timestamp>,
    /// Every floor considered (the metric need, a hold, …) and which decided.
    pub floors: Vec<Floor>,
    pub decided_by: Option<FloorReason>,
    /// The forecast, when `forecast.mode` is `advise` or `scale`.
    pub forecast: Option<Forecast>,
    /// Schedule windows ahead whose tier the prerequisites do not allow.
    pub preflight: Vec<Preflight>,
    pub errors: Vec<String>,
    /// What a person should know that changed nothing by itself.
    pub warnings: Vec<String>,
    pub notices: Vec<NoticeReport>,
    /// Where the run record went.
    pub record: String,
    pub exit_code: u8,
}

/// The run's end, before the record is written: see the module docs.
#[derive(Clone, Debug)]
pub struct Conclusion {
    pub decision: Decision,
    pub dry_run: bool,
    /// Per change of the decision, in its order.
    pub results: Vec<ChangeResult>,
    pub outcome: Outcome,
    /// The tier after the run.
    pub to: Option<u32>,
    /// What to tell the team (the decision's notices, plus a tier change or
    /// the HPAs that failed).
    pub notices: Vec<Notice>,
    pub message: String,
    /// `upgrade --hold` that took effect: later checks stay at or above the
    /// tier until then.
    pub hold_until: Option<Timestamp>,
    /// What stopped the run before it was done (its deadline, a signal).
    pub stopped: Option<String>,
}

/// Folds what applying produced into the decision. Pure.
pub fn conclude(
    decision: Decision,
    applied: Applied,
    tiers: &TierTable,
    started: Timestamp,
) -> Conclusion {
    let dry_run = applied == Applied::DryRun;
    let results = results_of(&decision, &applied);
    let failed_patches: Vec<String> = decision
        .changes
        .iter()
        .zip(&results)
        .filter_map(|(c, r)| match r {
            ChangeResult::Failed(_) | ChangeResult::Unconfirmed => Some(format!("{}: {r}", c.hpa)),
            _ => None,
        })
        .collect();
    let succeeded = results
        .iter()
        .filter(|r| **r == ChangeResult::Applied)
        .count();
    let mut failed = failed_patches.clone();
    failed.extend(decision.unreadable.iter().cloned());

    let planned = decision.outcome();
    let outcome = match planned {
        // A run that could not decide (or verify) stays an error.
        Outcome::Error => Outcome::Error,
        _ if dry_run || failed.is_empty() => planned,
        _ if succeeded > 0 => Outcome::Partial,
        _ => Outcome::Error,
    };
    let current = decision.current.map(|c| c.capacity);
    let to = if dry_run || succeeded > 0 {
        decision.target()
    } else {
        current
    };
    let mut notices = decision.notices();
    if decision.tier_changes() && succeeded > 0 {
        notices.insert(0, tier_changed(&decision, tiers, &failed));
    } else if !failed.is_empty() && !dry_run {
        notices.push(Notice::Error {
            what: "Kubernetes".into(),
            message: format!(
                "{} HPA(s) not at their tier ({} patch(es) failed): {}",
                failed.len(),
                failed_patches.len(),
                failed.join("; ")
            ),
        });
    }
    let message = match failed_patches.len() {
        0 => decision.message(),
        n => format!(
            "{}; {n} of {} HPA patches failed",
            decision.message(),
            decision.changes.len()
        ),
    };
    let hold_until = match (decision.hold, outcome.took_effect()) {
        (Some(h), true) if decision.command == CommandKind::Upgrade => started.checked_add(h).ok(),
        _ => None,
    };
    Conclusion {
        decision,
        dry_run,
        results,
        outcome,
        to,
        notices,
        message,
        hold_until,
        stopped: None,
    }
}

/// Per change of the decision, in its order, how it went.
fn results_of(decision: &Decision, applied: &Applied) -> Vec<ChangeResult> {
    let result = |hpa: &HpaRef| match applied {
        Applied::DryRun => ChangeResult::Planned,
        Applied::Results(r) => match r.iter().find(|(id, _)| id == hpa) {
            Some((_, Ok(()))) => ChangeResult::Applied,
            Some((_, Err(e))) => ChangeResult::Failed(e.clone()),
            None => ChangeResult::Unconfirmed,
        },
    };
    decision.changes.iter().map(|c| result(&c.hpa)).collect()
}

fn tier_changed(decision: &Decision, tiers: &TierTable, failed: &[String]) -> Notice {
    let (from, to) = (
        decision.current.map(|c| c.capacity).unwrap_or_default(),
        decision.target().unwrap_or_default(),
    );
    let replicas = tiers
        .get(to)
        .map(|tier| {
            tier.replicas
                .iter()
                .map(|(service, r)| ServiceReplicas {
                    service: service.clone(),
                    min: r.min,
                    max: decision
                        .changes
                        .iter()
                        .find(|c| c.hpa.service == *service)
                        .map(|c| c.to_max)
                        .or(r.max)
                        .unwrap_or(r.min),
                })
                .collect()
        })
        .unwrap_or_default();
    Notice::TierChanged {
        command: decision.command.as_str().into(),
        from,
        to,
        users: decision.users,
        replicas,
        failed: failed.to_vec(),
    }
}

/// Identity and timing of a run, from the shell.
#[derive(Clone, Debug)]
pub struct RunFacts {
    pub run_id: String,
    pub started: Timestamp,
    pub finished: Timestamp,
}

impl Conclusion {
    /// The run was stopped (after applying, maybe while notifying): it
    /// says so, and cron sees a failure whatever was done.
    pub fn stopped(mut self, why: impl std::fmt::Display) -> Self {
        let why = why.to_string();
        if !self.message.contains(&why) {
            self.message = format!("{}; stopped: {why}", self.message);
        }
        self.stopped = Some(why);
        self
    }

    /// Whether cron must see a failure: an error, a partial apply, a record
    /// not where it belongs; exit 3 for a refused `upgrade`.
    pub fn completion(&self, recorded: &Recorded) -> Completion {
        if self.decision.refused() {
            Completion::Refused
        } else if matches!(self.outcome, Outcome::Error | Outcome::Partial)
            || matches!(recorded, Recorded::Spooled(_) | Recorded::Lost(_))
            || self.stopped.is_some()
        {
            Completion::Failed
        } else {
            Completion::Success
        }
    }

    pub fn changes(&self) -> Vec<ChangeReport> {
        self.decision
            .changes
            .iter()
            .zip(&self.results)
            .map(|(c, r)| ChangeReport {
                service: c.hpa.service.clone(),
                namespace: c.hpa.namespace.clone(),
                name: c.hpa.name.clone(),
                from_min: c.from_min,
                to_min: c.to_min,
                from_max: c.from_max,
                to_max: c.to_max,
                result: r.clone(),
            })
            .collect()
    }

    /// The run record: what was seen, decided and done. `notices` is what
    /// became of [`Conclusion::notices`]; only delivered ones are marked
    /// notified, so a notice that failed is tried again by the next run.
    pub fn record(
        &self,
        facts: &RunFacts,
        notices: &[NoticeReport],
        prerequisites: &Result<Observed, String>,
    ) -> RunRecord {
        let d = &self.decision;
        let detail = serde_json::json!({
            "current": d.current,
            "prerequisites": match prerequisites {
                Ok(o) => serde_json::json!(o),
                Err(e) => serde_json::json!({ "error": e }),
            },
            "changes": self.changes(),
            "above_tier": d.above,
            "blocked": d.blocked(),
            "held_by": d.held_by(),
            "hold_until": self.hold_until,
            "floors": d.need.as_ref().map(|n| &n.floors),
            "forecast": d.forecast,
            "preflight": d.preflight,
            "decided_by": d.need.as_ref().map(|n| &n.decided_by),
            "errors": d.errors(),
            "warnings": d.warnings,
            "stopped": self.stopped,
            "lock_stuck": matches!(&d.verdict, Verdict::Failed(f) if f.what == RUN_LOCK),
            "notices": notices,
        });
        RunRecord {
            run_id: facts.run_id.clone(),
            started_at: facts.started,
            finished_at: facts.finished,
            command: d.command,
            users: d.users,
            needed_capacity: d.need.as_ref().map(|n| n.capacity),
            from_capacity: d.current.map(|c| c.capacity),
            to_capacity: self.to,
            outcome: self.outcome,
            message: self.message.clone(),
            detail,
            hold_until: self.hold_until,
            notified: notices
                .iter()
                .filter(|n| n.status == NoticeStatus::Sent)
                .filter_map(|n| n.key.clone())
                .collect(),
            forecast_capacity: d.forecast.as_ref().and_then(|f| f.floor()),
        }
    }

    /// What `check` / `upgrade` print, with the exit status it ends in.
    pub fn report(
        &self,
        cluster: &str,
        notices: Vec<NoticeReport>,
        recorded: &Recorded,
    ) -> (RunReport, Completion) {
        let d = &self.decision;
        let completion = self.completion(recorded);
        let report = RunReport {
            command: d.command.as_str(),
            cluster: cluster.to_string(),
            dry_run: self.dry_run,
            users: d.users,
            needed_capacity: d.need.as_ref().map(|n| n.capacity),
            above_top: d.need.as_ref().is_some_and(|n| n.above_top),
            current: d.current,
            to_capacity: self.to,
            outcome: self.outcome,
            message: self.message.clone(),
            changes: self.changes(),
            above_tier: d.above.clone(),
            blocked: d.blocked().cloned(),
            held_by: d.held_by().cloned(),
            hold_until: self.hold_until,
            floors: d
                .need
                .as_ref()
                .map(|n| n.floors.clone())
                .unwrap_or_default(),
            decided_by: d.need.as_ref().map(|n| n.decided_by.clone()),
            forecast: d.forecast.clone(),
            preflight: d.preflight.clone(),
            errors: d.errors(),
            warnings: d.warnings.clone(),
            notices,
            record: recorded.to_string(),
            exit_code: completion.exit_code(),
        };
        (report, completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpa::Hpa;
    use crate::plan::{Demand, Inputs, decide};
    use crate::policy::Policy;
    use crate::prereq::Allowance;
    use crate::tiers::fixtures::table;
    use jiff::SignedDuration;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn policy() -> Policy {
        Policy::test()
    }

    /// Every service at tier 600, annotated.
    fn hpas_at_600() -> Vec<Hpa> {
        table()
            .services()
            .iter()
            .map(|s| Hpa::test(s).min(2).max(10).annotated(600))
            .collect()
    }

    fn decision(demand: Demand) -> Decision {
        let allowed: Result<Allowance, String> = Ok(table()
            .capacities()
            .into_iter()
            .map(|c| (c, vec![]))
            .collect());
        decide(&Inputs {
            now: now(),
            demand,
            hold: None,
            samples: &[],
            policy: &policy(),
            hpas: &hpas_at_600(),
            unreadable: &[],
            prereqs: &allowed,
            history: Some(&[]),
        })
    }

    /// 1500 users at tier 600: six patches up to 2000.
    fn up_to_2000() -> Decision {
        decision(Demand::Users(Ok(1500)))
    }

    fn results(d: &Decision, fail: impl Fn(usize) -> Option<&'static str>) -> Applied {
        Applied::Results(
            d.changes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        c.hpa.clone(),
                        fail(i).map_or(Ok(()), |e| Err(e.to_string())),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn a_partial_failure_is_partial_and_announced_with_the_failed_hpa() {
        let d = up_to_2000();
        let applied = results(&d, |i| (i == 1).then_some("500"));
        let c = conclude(d, applied, &table(), now());
        assert_eq!((c.outcome, c.to), (Outcome::Partial, Some(2000)));
        let Notice::TierChanged {
            from,
            to,
            failed,
            replicas,
            ..
        } = &c.notices[0]
        else {
            panic!("{:?}", c.notices)
        };
        assert_eq!(
            (*from, *to, failed.len(), replicas.len()),
            (600, 2000, 1, 6)
        );
        assert!(
            c.message.ends_with("; 1 of 6 HPA patches failed"),
            "{}",
            c.message
        );
        assert_eq!(
            c.completion(&Recorded::Stored("db".into())),
            Completion::Failed
        );
    }

    #[test]
    fn every_patch_failing_is_an_error_that_leaves_the_tier() {
        let d = up_to_2000();
        let applied = results(&d, |_| Some("403"));
        let c = conclude(d, applied, &table(), now());
        assert_eq!((c.outcome, c.to), (Outcome::Error, Some(600)));
        assert!(matches!(&c.notices[..], [Notice::Error { what, .. }] if what == "Kubernetes"));
    }

    #[test]
    fn success_keeps_the_planned_outcome_and_announces_the_change() {
        let d = up_to_2000();
        let applied = results(&d, |_| None);
        let c = conclude(d, applied, &table(), now());
        assert_eq!(c.outcome, Outcome::Applied);
        assert!(matches!(
            c.notices[..],
            [Notice::TierChanged {
                from: 600,
                to: 2000,
                ..
            }]
        ));
        assert_eq!(
            c.completion(&Recorded::Stored("db".into())),
            Completion::Success
        );
        assert_eq!(
            c.completion(&Recorded::Spooled("spool".into())),
            Completion::Failed
        );
    }

    #[test]
    fn a_dry_run_plans_the_tier_and_announces_nothing_new() {
        let d = up_to_2000();
        let c = conclude(d, Applied::DryRun, &table(), now());
        assert_eq!((c.outcome, c.to), (Outcome::Applied, Some(2000)));
        assert!(c.results.iter().all(|r| *r == ChangeResult::Planned));
        assert!(c.notices.is_empty(), "{:?}", c.notices);
        let (report, done) = c.report("prod", vec![], &Recorded::DryRun);
        assert_eq!((report.exit_code, done), (0, Completion::Success));
        assert_eq!(report.changes[0].result.to_string(), "planned");
    }

    #[test]
    fn a_hold_is_set_only_when_the_upgrade_took_effect() {
        let hold = Some(SignedDuration::from_hours(2));
        let up = decision(Demand::Upgrade {
            capacity: 2000,
            force: false,
            hold,
        });
        let ok = results(&up, |_| None);
        let c = conclude(up.clone(), ok, &table(), now());
        assert_eq!(c.hold_until, Some(now() + SignedDuration::from_hours(2)));
        let failed = results(&up, |_| Some("403"));
        let c = conclude(up, failed, &table(), now());
        assert_eq!((c.outcome, c.hold_until), (Outcome::Error, None));
    }

    #[test]
    fn the_record_keeps_only_delivered_notice_keys() {
        let mut d = up_to_2000();
        d.verdict = crate::plan::Verdict::Unverified {
            wanted: 2000,
            error: "throttled".into(),
        };
        d.changes.clear();
        let c = conclude(d, Applied::Results(vec![]), &table(), now());
        let sent = vec![
            NoticeReport::new(&c.notices[0], NoticeStatus::Sent),
            NoticeReport {
                kind: "error",
                key: Some("error:other".into()),
                status: NoticeStatus::Failed("timeout".into()),
            },
        ];
        let facts = RunFacts {
            run_id: "r1".into(),
            started: now(),
            finished: now(),
        };
        let r = c.record(&facts, &sent, &Err("throttled".into()));
        assert_eq!(r.notified, vec![sent[0].key.clone().unwrap()]);
        assert_eq!(r.outcome, Outcome::Error);
        assert_eq!(r.detail["notices"][1]["status"], "failed: timeout");
        assert_eq!(r.detail["prerequisites"]["error"], "throttled");
    }
}
