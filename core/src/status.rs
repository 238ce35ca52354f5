//! `status`, judged: where things stand now, from what was read. The
//! current tier and how it was told, each HPA's drift from it, what the
//! users need, what the prerequisites allow, the hold, the last runs and
//! whether they are stale. The binary only renders the [`StatusReport`].

use jiff::Timestamp;
use serde::Serialize;

use jiff::SignedDuration;

use crate::forecast::{self, HourForecast, STATUS_HOURS};
use crate::hpa::{Condition, GitOps, Hpa, HpaRef};
use crate::plan::{Current, Determined, current_tier};
use crate::policy::{ForecastMode, Policy};
use crate::prereq::{self, Observed, RdsObserved, RedisObserved};
use crate::record::{CommandKind, Hold, Outcome, RunRecord, active_hold};
use crate::schedule::{self, WindowRow};

/// Per-HPA view in `status`.
#[derive(Clone, Debug, Serialize)]
pub struct HpaStatus {
    pub service: String,
    pub namespace: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub current_replicas: Option<u32>,
    pub desired_replicas: Option<u32>,
    pub conditions: Vec<Condition>,
    pub target: Option<String>,
    /// The current tier's minReplicas for this service.
    pub tier_min: Option<u32>,
    /// `below tier (2 < 6)` / `above tier (9 > 6)`, or none.
    pub drift: Option<String>,
    /// The GitOps tool that applies it from Git (it reverts what a run
    /// patches), and what to tell that tool.
    pub managed_by: Option<ManagedBy>,
}

/// A GitOps tool managing an HPA, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ManagedBy {
    #[serde(flatten)]
    pub gitops: GitOps,
    /// `Argo CD application prod-web`.
    pub manager: String,
    pub fix: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct UsersNow {
    pub source: String,
    pub users: Option<u32>,
    pub needed_capacity: Option<u32>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PrereqsNow {
    pub rds: Option<RdsObserved>,
    pub redis: Option<RedisObserved>,
    /// What is not checked because its name is empty in the config.
    pub skipped: Vec<String>,
    pub highest_allowed: Option<u32>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub started_at: Timestamp,
    pub command: CommandKind,
    pub users: Option<u32>,
    pub from_capacity: Option<u32>,
    pub to_capacity: Option<u32>,
    pub outcome: Outcome,
    pub message: String,
}

/// What `status` prints (the JSON document of `-o json`).
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub cluster: String,
    pub now: Timestamp,
    pub current: Option<Current>,
    pub current_error: Option<String>,
    pub users: UsersNow,
    pub hpas: Vec<HpaStatus>,
    pub unreadable: Vec<(HpaRef, String)>,
    pub prerequisites: PrereqsNow,
    pub hold: Option<Hold>,
    /// The schedule window active now, then the next ones (a week ahead),
    /// each with whether the prerequisites read now allow its tier.
    pub windows: Vec<WindowRow>,
    /// The forecast tier of each of the next hours (`forecast.mode` not off).
    pub forecast: Option<Outlook>,
    pub store: String,
    pub runs: Vec<RunRow>,
    pub runs_error: Option<String>,
    pub warnings: Vec<String>,
}

pub struct StatusInputs<'a> {
    pub now: Timestamp,
    pub policy: &'a Policy,
    /// Whether `rds_cluster_name` / `redis_oss_name` are set (what is checked).
    pub checks_rds: bool,
    pub checks_redis: bool,
    pub source: String,
    pub users: Result<u32, String>,
    pub hpas: &'a [Hpa],
    pub unreadable: &'a [(HpaRef, String)],
    pub observed: &'a Result<Observed, String>,
    pub runs: Result<Vec<RunRecord>, String>,
    pub last_upgrade: Result<Option<RunRecord>, String>,
    /// The forecast's history (`RunStore::samples`); empty when it is off.
    pub samples: &'a [(Timestamp, u32)],
    pub store: String,
}

/// The forecast as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Outlook {
    pub mode: ForecastMode,
    /// One per hour ahead; empty when there is no forecast (`unavailable`).
    pub hours: Vec<HourForecast>,
    /// Why there is no forecast (too little history, …).
    pub unavailable: Option<String>,
}

/// How far ahead `status` lists schedule windows.
const WINDOWS_AHEAD: SignedDuration = SignedDuration::from_hours(7 * 24);

impl StatusReport {
    /// Judges where things stand. See the module docs.
    pub fn assess(i: StatusInputs) -> Self {
        let reference = i.policy.reference();
        let current = i
            .hpas
            .iter()
            .find(|h| h.id == *reference)
            .map(|h| current_tier(&i.policy.tiers, h));
        let current_error = match current {
            Some(_) => None,
            None => Some(
                i.unreadable
                    .iter()
                    .find(|(r, _)| r == reference)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_else(|| format!("the reference HPA {reference} was not read")),
            ),
        };
        let hold = i
            .last_upgrade
            .as_ref()
            .ok()
            .and_then(|r| active_hold(r.as_ref(), i.now));
        let mut warnings = vec![];
        let windows = windows(&i);
        let forecast = outlook(&i);
        let (runs, runs_error) = match i.runs {
            Ok(runs) => {
                warnings.extend(staleness(&runs, i.now, i.policy));
                (runs.into_iter().map(RunRow::of).collect(), None)
            }
            Err(e) => (vec![], Some(e)),
        };
        if let Some(Determined::Drift { min }) = current.map(|c| c.determined) {
            warnings.push(format!(
                "the reference HPA's minReplicas ({min}) matches no tier: someone changed it by hand"
            ));
        }
        StatusReport {
            cluster: i.policy.cluster.clone(),
            now: i.now,
            current,
            current_error,
            users: users_now(i.source, &i.users, i.policy),
            hpas: i
                .hpas
                .iter()
                .map(|h| HpaStatus::of(h, current, i.policy))
                .collect(),
            unreadable: i.unreadable.to_vec(),
            prerequisites: PrereqsNow::of(i.observed, i.policy, i.checks_rds, i.checks_redis),
            hold,
            windows,
            forecast,
            store: i.store,
            runs,
            runs_error,
            warnings,
        }
    }

    /// Every source answered.
    pub fn healthy(&self) -> bool {
        self.current_error.is_none()
            && self.users.error.is_none()
            && self.unreadable.is_empty()
            && self.prerequisites.error.is_none()
            && self.runs_error.is_none()
    }
}

fn windows(i: &StatusInputs) -> Vec<WindowRow> {
    let allowance = i
        .observed
        .as_ref()
        .ok()
        .map(|o| prereq::evaluate(o, &i.policy.tiers));
    schedule::upcoming(
        &i.policy.schedules,
        i.now,
        WINDOWS_AHEAD,
        allowance.as_ref(),
    )
}

fn outlook(i: &StatusInputs) -> Option<Outlook> {
    let f = &i.policy.forecast;
    if f.mode == ForecastMode::Off {
        return None;
    }
    let users = i.users.as_ref().ok().copied();
    let p = i.policy;
    let hourly = forecast::hourly(
        i.samples,
        i.now,
        users,
        &f.settings,
        p.check_interval,
        &p.tiers,
        STATUS_HOURS,
    );
    Some(match hourly {
        Ok(hours) => Outlook {
            mode: f.mode,
            hours,
            unavailable: None,
        },
        Err(why) => Outlook {
            mode: f.mode,
            hours: vec![],
            unavailable: Some(why.to_string()),
        },
    })
}

impl HpaStatus {
    fn of(h: &Hpa, current: Option<Current>, policy: &Policy) -> Self {
        let tier_min = current
            .and_then(|c| policy.tiers.get(c.capacity))
            .and_then(|t| t.replicas_of(&h.id.service))
            .map(|r| r.min);
        let drift = tier_min.and_then(|t| match h.min.cmp(&t) {
            std::cmp::Ordering::Less => Some(format!("below tier ({} < {t})", h.min)),
            std::cmp::Ordering::Greater => Some(format!("above tier ({} > {t})", h.min)),
            std::cmp::Ordering::Equal => None,
        });
        HpaStatus {
            service: h.id.service.clone(),
            namespace: h.id.namespace.clone(),
            name: h.id.name.clone(),
            min: h.min,
            max: h.max,
            current_replicas: h.current_replicas,
            desired_replicas: h.desired_replicas,
            conditions: h.conditions.clone(),
            target: h.target.clone(),
            tier_min,
            drift,
            managed_by: h.managed_by.as_ref().map(|g| ManagedBy {
                gitops: g.clone(),
                manager: g.manager(),
                fix: g.fix(&h.id),
            }),
        }
    }
}

fn users_now(source: String, users: &Result<u32, String>, policy: &Policy) -> UsersNow {
    match users {
        Ok(u) => UsersNow {
            source,
            users: Some(*u),
            needed_capacity: Some(policy.tiers.needed(*u, policy.headroom_percent).capacity),
            error: None,
        },
        Err(e) => UsersNow {
            source,
            users: None,
            needed_capacity: None,
            error: Some(e.clone()),
        },
    }
}

impl PrereqsNow {
    fn of(observed: &Result<Observed, String>, policy: &Policy, rds: bool, redis: bool) -> Self {
        let mut skipped = vec![];
        if !rds {
            skipped.push("RDS (rds_cluster_name is empty)".to_string());
        }
        if !redis {
            skipped.push("Redis (redis_oss_name is empty)".to_string());
        }
        match observed {
            Ok(o) => PrereqsNow {
                rds: o.rds.clone(),
                redis: o.redis.clone(),
                skipped,
                highest_allowed: prereq::highest_allowed(&prereq::evaluate(o, &policy.tiers)),
                error: None,
            },
            Err(e) => PrereqsNow {
                rds: None,
                redis: None,
                skipped,
                highest_allowed: None,
                error: Some(e.clone()),
            },
        }
    }
}

/// Nobody is acting if the newest run is older than twice `check_time`.
fn staleness(runs: &[RunRecord], now: Timestamp, policy: &Policy) -> Option<String> {
    let Some(last) = runs.first() else {
        return Some("no runs recorded yet".to_string());
    };
    let age = now.duration_since(last.started_at);
    (age > policy.check_interval * 2).then(|| {
        format!(
            "the last run was {} minutes ago, more than twice check_time ({} min): is the cron job running?",
            age.as_mins(),
            policy.check_interval.as_mins()
        )
    })
}

impl RunRow {
    fn of(r: RunRecord) -> Self {
        RunRow {
            started_at: r.started_at,
            command: r.command,
            users: r.users,
            from_capacity: r.from_capacity,
            to_capacity: r.to_capacity,
            outcome: r.outcome,
            message: r.message,
        }
    }
}
