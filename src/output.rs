//! What a person (table) or a script (JSON) reads on stdout. Rendering is
//! pure: values in, a string out.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::notify::Notice;
use crate::prereq::{Observed, RdsObserved, RedisObserved};
use hpa_tier_core::hpa::{Condition, Hpa, HpaRef};
use hpa_tier_core::plan::{Above, Applied, Blocked, Current, Determined, HeldBy, Plan};
use hpa_tier_core::record::{CommandKind, Hold, Outcome, RunRecord};
use hpa_tier_core::tiers::TierTable;

/// Left-aligned text columns, two spaces apart.
pub fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `hpa-tier tiers` as a table: one row per tier, the reference service
/// marked `*`, inherited prerequisites in parentheses.
pub fn tiers_table(t: &TierTable) -> String {
    let mut header = vec!["CAPACITY".to_string()];
    header.extend(t.services().iter().map(|s| {
        if s == t.reference() {
            format!("{s}*")
        } else {
            s.clone()
        }
    }));
    header.push("RDS".into());
    header.push("REDIS".into());
    let mut rows = vec![header];
    for tier in t.tiers() {
        let mut row = vec![tier.capacity.to_string()];
        for (_, r) in &tier.replicas {
            row.push(match r.max {
                Some(max) => format!("{}-{max}", r.min),
                None => r.min.to_string(),
            });
        }
        for req in [&tier.rds_instance_class, &tier.redis_node_type] {
            row.push(match req {
                Some(r) if r.inherited_from.is_some() => format!("({})", r.value),
                Some(r) => r.value.clone(),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let mut out = columns(&rows);
    out.push_str(&format!(
        "\n* reference service: its HPA ({}) tells the current tier\n\
         (…) inherited from the tier below; - no requirement; a-b min-max replicas\n",
        t.reference()
    ));
    out
}

pub fn tiers_json(t: &TierTable) -> serde_json::Value {
    json!({
        "reference_service": t.reference(),
        "services": t.services(),
        "tiers": t.tiers().iter().map(|tier| json!({
            "capacity": tier.capacity,
            "replicas": tier.replicas.iter().map(|(s, r)| (s.clone(), json!({"min": r.min, "max": r.max}))).collect::<serde_json::Map<_, _>>(),
            "rds_instance_class": tier.rds_instance_class.as_ref().map(|r| json!({"value": r.value, "inherited_from": r.inherited_from})),
            "redis_node_type": tier.redis_node_type.as_ref().map(|r| json!({"value": r.value, "inherited_from": r.inherited_from})),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpa_tier_core::tiers::fixtures::table;

    #[test]
    fn tiers_table_shows_the_original_table() {
        let out = tiers_table(&table());
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with(
                "CAPACITY  istio-ingress*  gateway  web  hermes  passport  project  RDS"
            ),
            "{out}"
        );
        assert!(
            lines[1].split_whitespace().eq([
                "600",
                "2",
                "2",
                "2",
                "2",
                "2",
                "2",
                "db.r7g.large",
                "cache.m6g.large"
            ]),
            "{out}"
        );
        assert!(
            lines[3].split_whitespace().eq([
                "2000",
                "6",
                "3",
                "6",
                "8",
                "12",
                "3",
                "(db.r5.8xlarge)",
                "(cache.c7gn.xlarge)"
            ]),
            "{out}"
        );
        assert!(
            lines[5].contains("db.r5.12xlarge") && !lines[5].contains("(db.r5.12xlarge)"),
            "{out}"
        );
    }

    #[test]
    fn tiers_json_has_every_tier_and_service() {
        let v = tiers_json(&table());
        assert_eq!(v["tiers"].as_array().unwrap().len(), 6);
        assert_eq!(v["tiers"][5]["replicas"]["passport"]["min"], 24);
        assert_eq!(v["tiers"][5]["rds_instance_class"]["inherited_from"], 4000);
        assert_eq!(v["reference_service"], "istio-ingress");
    }
}

// ---------------------------------------------------------------------------
// check / upgrade

/// One HPA change and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeReport {
    pub service: String,
    pub namespace: String,
    pub name: String,
    pub from_min: u32,
    pub to_min: u32,
    pub from_max: u32,
    pub to_max: u32,
    /// `planned` (dry run), `applied`, or `failed: <why>`.
    pub result: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NoticeReport {
    pub kind: String,
    /// Dedupe key (none for tier changes, which are never suppressed).
    pub key: Option<String>,
    /// `sent`, `suppressed`, `failed: <why>`, `not configured` or `dry run`.
    pub status: String,
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
    pub errors: Vec<String>,
    pub notices: Vec<NoticeReport>,
    /// Where the run record went.
    pub record: String,
    pub exit_code: u8,
}

impl RunReport {
    pub fn from_plan(kind: CommandKind, plan: &Plan, cluster: &str, dry_run: bool) -> Self {
        RunReport {
            command: kind.as_str(),
            cluster: cluster.to_string(),
            dry_run,
            users: plan.users,
            needed_capacity: plan.needed.map(|n| n.capacity),
            above_top: plan.needed.is_some_and(|n| n.above_top),
            current: plan.current,
            to_capacity: plan.target,
            outcome: plan.outcome,
            message: plan.message.clone(),
            changes: plan
                .changes
                .iter()
                .map(|c| ChangeReport {
                    service: c.hpa.service.clone(),
                    namespace: c.hpa.namespace.clone(),
                    name: c.hpa.name.clone(),
                    from_min: c.from_min,
                    to_min: c.to_min,
                    from_max: c.from_max,
                    to_max: c.to_max,
                    result: "planned".into(),
                })
                .collect(),
            above_tier: plan.above.clone(),
            blocked: plan.blocked.clone(),
            held_by: plan.held_by.clone(),
            hold_until: None,
            errors: plan.errors.clone(),
            notices: plan
                .notices
                .iter()
                .map(|n| NoticeReport {
                    kind: notice_kind(n).into(),
                    key: n.dedupe_key(),
                    status: "dry run".into(),
                })
                .collect(),
            record: if dry_run {
                "dry run: nothing was changed, recorded or sent".into()
            } else {
                String::new()
            },
            exit_code: 0,
        }
    }

    /// Folds in what applying produced.
    pub fn settle(
        &mut self,
        outcome: Outcome,
        applied: &Applied,
        to: Option<u32>,
        notices: Vec<NoticeReport>,
    ) {
        self.outcome = outcome;
        self.to_capacity = to;
        let mut failed = 0;
        for c in &mut self.changes {
            if let Some((_, res)) = applied
                .iter()
                .find(|(r, _)| r.namespace == c.namespace && r.name == c.name)
            {
                c.result = match res {
                    Ok(()) => "applied".into(),
                    Err(e) => {
                        failed += 1;
                        format!("failed: {e}")
                    }
                };
            } else if c.result == "planned" {
                c.result = "not applied".into();
            }
        }
        if failed > 0 {
            self.message = format!(
                "{}; {failed} of {} HPA patches failed",
                self.message,
                self.changes.len()
            );
        }
        self.notices = notices;
    }
}

pub fn notice_kind(n: &Notice) -> &'static str {
    match n {
        Notice::TierChanged { .. } => "tier_changed",
        Notice::Blocked { .. } => "blocked",
        Notice::Error { .. } => "error",
        Notice::AboveTop { .. } => "above_top",
    }
}

fn replicas_change(c: &ChangeReport) -> String {
    let mut s = format!("min {} → {}", c.from_min, c.to_min);
    if c.to_max != c.from_max {
        s.push_str(&format!(", max {} → {}", c.from_max, c.to_max));
    }
    s
}

/// `check` / `upgrade` for people: the summary, one line per HPA change, the
/// blocked details with their fixes, notices, and the outcome.
pub fn run_table(r: &RunReport) -> String {
    let mut out = format!(
        "{}{} (cluster {}): {}\n",
        if r.dry_run { "DRY RUN " } else { "" },
        r.command,
        r.cluster,
        r.message
    );
    let rows: Vec<Vec<String>> = r
        .changes
        .iter()
        .map(|c| {
            vec![
                format!("  {}/{}", c.namespace, c.name),
                replicas_change(c),
                c.result.clone(),
            ]
        })
        .collect();
    out.push_str(&columns(&rows));
    for a in &r.above_tier {
        out.push_str(&format!(
            "  {} is above the tier (min {} > {}); left alone\n",
            a.hpa, a.min, a.tier_min
        ));
    }
    if let Some(b) = &r.blocked {
        for s in &b.shortfalls {
            out.push_str(&format!(
                "  tier {} {s} ({})\n    fix: {}\n",
                b.wanted, s.why, s.fix
            ));
        }
    }
    if !r.notices.is_empty() {
        let n: Vec<String> = r
            .notices
            .iter()
            .map(|n| format!("{} {}", n.kind, n.status))
            .collect();
        out.push_str(&format!("notices: {}\n", n.join("; ")));
    }
    out.push_str(&format!("outcome: {}", r.outcome.as_str()));
    if !r.record.is_empty() {
        out.push_str(&format!(" — {}", r.record));
    }
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------
// status

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
    pub store: String,
    pub runs: Vec<RunRow>,
    pub runs_error: Option<String>,
    pub warnings: Vec<String>,
}

pub struct StatusInputs<'a> {
    pub now: Timestamp,
    pub config: &'a Config,
    pub source: String,
    pub users: Result<u32, String>,
    pub hpas: &'a [Hpa],
    pub unreadable: &'a [(HpaRef, String)],
    pub observed: &'a Result<Observed, String>,
    pub highest_allowed: Option<u32>,
    pub runs: Result<Vec<RunRecord>, String>,
    pub last_upgrade: Result<Option<RunRecord>, String>,
    pub store: String,
}

impl StatusReport {
    pub fn build(i: StatusInputs) -> Self {
        let tiers = &i.config.policy.tiers;
        let reference = i.config.policy.reference();
        let current = i
            .hpas
            .iter()
            .find(|h| h.id == *reference)
            .map(|h| hpa_tier_core::plan::current_tier(tiers, h));
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
        let tier = current.and_then(|c| tiers.get(c.capacity));
        let hpas = i
            .hpas
            .iter()
            .map(|h| {
                let tier_min = tier
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
                }
            })
            .collect();
        let users = match &i.users {
            Ok(u) => UsersNow {
                source: i.source.clone(),
                users: Some(*u),
                needed_capacity: Some(tiers.needed(*u, i.config.policy.headroom_percent).capacity),
                error: None,
            },
            Err(e) => UsersNow {
                source: i.source.clone(),
                users: None,
                needed_capacity: None,
                error: Some(e.clone()),
            },
        };
        let mut skipped = vec![];
        if i.config.aws.rds_cluster.is_none() {
            skipped.push("RDS (rds_cluster_name is empty)".to_string());
        }
        if i.config.aws.redis.is_none() {
            skipped.push("Redis (redis_oss_name is empty)".to_string());
        }
        let prerequisites = match i.observed {
            Ok(o) => PrereqsNow {
                rds: o.rds.clone(),
                redis: o.redis.clone(),
                skipped,
                highest_allowed: i.highest_allowed,
                error: None,
            },
            Err(e) => PrereqsNow {
                rds: None,
                redis: None,
                skipped,
                highest_allowed: None,
                error: Some(e.clone()),
            },
        };
        let hold = i
            .last_upgrade
            .as_ref()
            .ok()
            .and_then(|r| hpa_tier_core::record::active_hold(r.as_ref(), i.now));
        let mut warnings = vec![];
        let (runs, runs_error) = match i.runs {
            Ok(runs) => {
                let stale_after = i.config.policy.check_interval * 2;
                match runs.first() {
                    None => warnings.push("no runs recorded yet".to_string()),
                    Some(last) => {
                        let age = i.now.duration_since(last.started_at);
                        if age.as_secs() > stale_after.as_secs() {
                            warnings.push(format!(
                                "the last run was {} minutes ago, more than twice check_time ({} min): is the cron job running?",
                                age.as_mins(),
                                i.config.policy.check_interval.as_mins()
                            ));
                        }
                    }
                }
                (
                    runs.into_iter()
                        .map(|r| RunRow {
                            started_at: r.started_at,
                            command: r.command,
                            users: r.users,
                            from_capacity: r.from_capacity,
                            to_capacity: r.to_capacity,
                            outcome: r.outcome,
                            message: r.message,
                        })
                        .collect(),
                    None,
                )
            }
            Err(e) => (vec![], Some(e)),
        };
        if let Some(Determined::Drift { min }) = current.map(|c| c.determined) {
            warnings.push(format!(
                "the reference HPA's minReplicas ({min}) matches no tier: someone changed it by hand"
            ));
        }
        StatusReport {
            cluster: i.config.policy.cluster.clone(),
            now: i.now,
            current,
            current_error,
            users,
            hpas,
            unreadable: i.unreadable.to_vec(),
            prerequisites,
            hold,
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

fn opt(v: Option<u32>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn conditions(cs: &[Condition]) -> String {
    if cs.is_empty() {
        return "-".into();
    }
    cs.iter()
        .map(|c| {
            let mut s = format!("{}={}", c.kind, c.status);
            if let Some(r) = &c.reason {
                s.push_str(&format!("({r})"));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn status_table(s: &StatusReport) -> String {
    let mut out = String::new();
    match (&s.current, &s.current_error) {
        (Some(c), _) => {
            let how = match c.determined {
                Determined::Annotation => {
                    "from the hpa-tier/capacity annotation of the reference HPA".to_string()
                }
                Determined::MinReplicas => "from the reference HPA's minReplicas".to_string(),
                Determined::Drift { min } => format!(
                    "drift: reference minReplicas {min} matches no tier; highest tier below"
                ),
            };
            out.push_str(&format!(
                "cluster {}: tier {} ({how})\n",
                s.cluster, c.capacity
            ));
        }
        (None, Some(e)) => out.push_str(&format!(
            "cluster {}: current tier UNKNOWN: {e}\n",
            s.cluster
        )),
        (None, None) => {}
    }
    match (&s.users.users, &s.users.error) {
        (Some(u), _) => out.push_str(&format!(
            "users: {u} now ({}), needing tier {}\n",
            s.users.source,
            opt(s.users.needed_capacity)
        )),
        (None, Some(e)) => out.push_str(&format!("users: ERROR ({}): {e}\n", s.users.source)),
        _ => {}
    }
    match &s.hold {
        Some(h) => out.push_str(&format!(
            "hold: tier {} until {}\n",
            h.capacity,
            h.until.strftime("%Y-%m-%d %H:%M UTC")
        )),
        None => out.push_str("hold: none\n"),
    }

    out.push_str("\nHPAs\n");
    let mut rows = vec![vec![
        "  HPA".to_string(),
        "SERVICE".into(),
        "MIN".into(),
        "MAX".into(),
        "CURRENT".into(),
        "DESIRED".into(),
        "TIER".into(),
        "DRIFT".into(),
        "CONDITIONS".into(),
    ]];
    for h in &s.hpas {
        rows.push(vec![
            format!("  {}/{}", h.namespace, h.name),
            h.service.clone(),
            h.min.to_string(),
            h.max.to_string(),
            opt(h.current_replicas),
            opt(h.desired_replicas),
            opt(h.tier_min),
            h.drift.clone().unwrap_or_else(|| "-".into()),
            conditions(&h.conditions),
        ]);
    }
    for (r, e) in &s.unreadable {
        rows.push(vec![
            format!("  {r}"),
            r.service.clone(),
            format!("ERROR: {e}"),
        ]);
    }
    out.push_str(&columns(&rows));

    out.push_str("\nprerequisites\n");
    let p = &s.prerequisites;
    if let Some(e) = &p.error {
        out.push_str(&format!("  ERROR: {e}\n"));
    }
    if let Some(rds) = &p.rds {
        for m in &rds.members {
            out.push_str(&format!(
                "  RDS {} {} {}: {}\n",
                rds.cluster,
                if m.writer { "writer" } else { "reader" },
                m.id,
                m.class
            ));
        }
    }
    if let Some(r) = &p.redis {
        let kind = match r.kind {
            crate::prereq::RedisKind::ReplicationGroup => "replication group",
            crate::prereq::RedisKind::CacheCluster => "cache cluster",
        };
        out.push_str(&format!("  Redis {kind} {}: {}\n", r.name, r.node_type));
    }
    for sk in &p.skipped {
        out.push_str(&format!("  not checked: {sk}\n"));
    }
    if p.error.is_none() {
        out.push_str(&format!(
            "  they allow up to tier {}\n",
            opt(p.highest_allowed)
        ));
    }

    out.push_str(&format!("\nlast runs ({})\n", s.store));
    if let Some(e) = &s.runs_error {
        out.push_str(&format!("  ERROR: {e}\n"));
    }
    let mut rows = vec![];
    for r in &s.runs {
        rows.push(vec![
            format!("  {}", r.started_at.strftime("%Y-%m-%d %H:%M:%S")),
            r.command.as_str().to_string(),
            format!("users {}", opt(r.users)),
            format!("{} → {}", opt(r.from_capacity), opt(r.to_capacity)),
            r.outcome.as_str().to_string(),
            r.message.clone(),
        ]);
    }
    out.push_str(&columns(&rows));
    for w in &s.warnings {
        out.push_str(&format!("\nWARNING: {w}"));
    }
    if !s.warnings.is_empty() {
        out.push('\n');
    }
    out
}
