//! What a person (table) or a script (JSON) reads on stdout. Rendering
//! only: every judgement (outcome, drift, staleness) was made in the core;
//! values in, a string out.

use hpa_tier_core::conclude::{ChangeReport, RunReport};
use hpa_tier_core::hpa::Condition;
use hpa_tier_core::plan::Determined;
use hpa_tier_core::policy::ForecastMode;
use hpa_tier_core::prereq::RedisKind;
use hpa_tier_core::schedule::WindowRow;
use hpa_tier_core::status::{Outlook, StatusReport};
use hpa_tier_core::tiers::TierTable;
use serde_json::json;

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

// ---------------------------------------------------------------------------
// check / upgrade

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
                c.result.to_string(),
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
    for w in &r.warnings {
        out.push_str(&format!("  WARNING: {w}\n"));
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

/// `status` for people: the tier, users, hold; then HPAs, prerequisites,
/// schedule windows, the forecast and the last runs; warnings last.
pub fn status_table(s: &StatusReport) -> String {
    let mut out = status_head(s);
    out.push_str("\nHPAs\n");
    out.push_str(&columns(&hpa_rows(s)));
    out.push_str(&gitops(s));
    out.push_str("\nprerequisites\n");
    out.push_str(&prerequisites(s));
    if !s.windows.is_empty() {
        out.push_str("\nschedule windows\n");
        out.push_str(&columns(&window_rows(&s.windows)));
    }
    if let Some(f) = &s.forecast {
        out.push_str(&format!("\nforecast ({})\n", mode_name(f.mode)));
        out.push_str(&outlook(f));
    }
    out.push_str(&format!("\nlast runs ({})\n", s.store));
    if let Some(e) = &s.runs_error {
        out.push_str(&format!("  ERROR: {e}\n"));
    }
    out.push_str(&columns(&run_rows(s)));
    for w in &s.warnings {
        out.push_str(&format!("\nWARNING: {w}"));
    }
    if !s.warnings.is_empty() {
        out.push('\n');
    }
    out
}

fn status_head(s: &StatusReport) -> String {
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
    out
}

fn hpa_rows(s: &StatusReport) -> Vec<Vec<String>> {
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
    rows
}

/// Each HPA a GitOps tool manages, and how to keep it from reverting us.
fn gitops(s: &StatusReport) -> String {
    let mut out = String::new();
    for (h, m) in s
        .hpas
        .iter()
        .filter_map(|h| Some((h, h.managed_by.as_ref()?)))
    {
        out.push_str(&format!(
            "  {}/{} is managed by {} ({}): it reverts minReplicas/maxReplicas\n    fix: {}\n",
            h.namespace, h.name, m.manager, m.gitops.evidence, m.fix
        ));
    }
    out
}

fn prerequisites(s: &StatusReport) -> String {
    let mut out = String::new();
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
            RedisKind::ReplicationGroup => "replication group",
            RedisKind::CacheCluster => "cache cluster",
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
    out
}

fn mode_name(mode: ForecastMode) -> &'static str {
    match mode {
        ForecastMode::Off => "off",
        ForecastMode::Advise => "advise: reported, never acted on",
        ForecastMode::Scale => "scale: a floor of the decision",
    }
}

/// The next hours' forecast tiers, one line each.
fn outlook(f: &Outlook) -> String {
    if let Some(why) = &f.unavailable {
        return format!("  no forecast: {why}\n");
    }
    let rows: Vec<Vec<String>> = f
        .hours
        .iter()
        .map(|h| {
            vec![
                format!("  from {}", h.start.strftime("%Y-%m-%d %H:%M UTC")),
                format!("up to {} users", opt(h.peak_users)),
                format!("tier {}", opt(h.tier)),
                if h.above_top {
                    "above the top tier".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    columns(&rows)
}

fn run_rows(s: &StatusReport) -> Vec<Vec<String>> {
    s.runs
        .iter()
        .map(|r| {
            vec![
                format!("  {}", r.started_at.strftime("%Y-%m-%d %H:%M:%S")),
                r.command.as_str().to_string(),
                format!("users {}", opt(r.users)),
                format!("{} → {}", opt(r.from_capacity), opt(r.to_capacity)),
                r.outcome.as_str().to_string(),
                r.message.clone(),
            ]
        })
        .collect()
}

/// `hpa-tier schedules`: each occurrence in local and UTC time.
pub fn schedules_table(rows: &[WindowRow], zone: &str, days: u32) -> String {
    let mut out = format!("schedule windows of the next {days} days (timezone {zone})\n");
    if rows.is_empty() {
        out.push_str("  none\n");
        return out;
    }
    out.push_str(&columns(&window_rows(rows)));
    out
}

/// The rows of a window table, `status` and `schedules` alike.
fn window_rows(rows: &[WindowRow]) -> Vec<Vec<String>> {
    let mut table = vec![vec![
        "  NAME".to_string(),
        "TIER".into(),
        "LOCAL START".into(),
        "LOCAL END".into(),
        "UTC START".into(),
        "LEAD".into(),
        "".into(),
    ]];
    for r in rows {
        let mut notes = vec![];
        if r.active {
            notes.push("active".to_string());
        }
        match r.allowed {
            Some(true) => notes.push("prerequisites allow it".into()),
            Some(false) => notes.push("NOT ALLOWED by the prerequisites now".into()),
            None => {}
        }
        table.push(vec![
            format!("  {}", r.name),
            r.capacity.to_string(),
            r.local_start.clone(),
            r.local_end.clone(),
            r.start.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            format!("{}m", r.lead_minutes),
            notes.join("; "),
        ]);
    }
    table
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
