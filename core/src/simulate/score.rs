//! How well a replayed policy served the trace, minute by minute,
//! next to two baselines: the oracle (the tier the users needed, every
//! minute, with no delay) and static (the span's peak tier all the time).
//! The [`Summary`] is what `simulate -o json` prints under its scores and
//! what [`Summary::table`] shows a person.
//!
//! Each scored minute `start + k·1m` stands for the minute it begins:
//! u = users at that instant (linear between samples), c = the capacity of
//! the tier serving then.
//!
//! The oracle's headroom is a parameter. `simulate` should pass 0: the
//! oracle is then the cheapest schedule that never leaves a user without
//! capacity (below the top tier), a yardstick that stays the same when
//! `--set headroom_percent=…` changes the policy, so `cost_vs_oracle` shows
//! what the headroom costs. The static baseline uses the same headroom.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::timeline::{Span, Step, Timeline};
use super::trace::Trace;
use crate::tiers::TierTable;

/// A change reversing the previous change's direction at most this long
/// after it is a flap.
pub const FLAP_WINDOW: SignedDuration = SignedDuration::from_mins(30);

/// The scores of one way of choosing tiers over the span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scores {
    /// Minutes with users above the serving tier's capacity.
    pub under_minutes: u64,
    /// `under_minutes` / minutes × 100.
    pub tau_under: f64,
    /// Mean over minutes of max(u − c, 0) / max(u, 1) × 100.
    pub theta_under: f64,
    /// Σ over minutes of the serving tier's summed minReplicas / 60.
    pub replica_hours: f64,
    /// `replica_hours` / the oracle's.
    pub cost_vs_oracle: f64,
    /// Tier changes applied during the span.
    pub changes: u32,
    /// Changes that reverse the previous change's direction within [`FLAP_WINDOW`].
    pub flaps: u32,
}

/// The scores of a replay and its baselines (`simulate -o json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Minutes scored.
    pub minutes: u64,
    /// The most users in a scored minute.
    pub peak_users: u32,
    /// The headroom the oracle and static baselines size with.
    pub baseline_headroom_percent: u32,
    /// The tier the static baseline keeps.
    pub static_capacity: u32,
    pub policy: Scores,
    pub oracle: Scores,
    #[serde(rename = "static")]
    pub static_tier: Scores,
}

/// What a replay produced, to be scored.
#[derive(Clone, Copy, Debug)]
pub struct Replay<'a> {
    pub trace: &'a Trace,
    pub span: Span,
    pub tiers: &'a TierTable,
    /// The tiers the policy applied (for `changes` and `flaps`).
    pub applied: &'a Timeline,
    /// The tiers that served users (`applied` after the `--ready` delay,
    /// see [`Timeline::effective`]).
    pub served: &'a Timeline,
    /// Headroom of the oracle and static baselines; see the module docs.
    pub baseline_headroom_percent: u32,
}

/// Users of every scored minute.
pub(crate) fn minute_users(trace: &Trace, span: &Span) -> Vec<(Timestamp, u32)> {
    span.minutes().map(|t| (t, trace.users_at(t))).collect()
}

/// Summed minReplicas of the tier with this capacity; a capacity that is not
/// a tier counts as the smallest tier holding it.
pub(crate) fn replicas_of(tiers: &TierTable, capacity: u32) -> u64 {
    let tier = tiers
        .get(capacity)
        .or_else(|| tiers.get(tiers.needed(capacity, 0).capacity))
        .unwrap_or(tiers.top());
    tier.replicas.iter().map(|(_, r)| u64::from(r.min)).sum()
}

impl Summary {
    pub fn of(replay: &Replay) -> Summary {
        let Replay {
            trace,
            span,
            tiers,
            applied,
            served,
            baseline_headroom_percent: headroom,
        } = *replay;
        let users = minute_users(trace, &span);
        let peak_users = users.iter().map(|&(_, u)| u).max().unwrap_or(0);
        let need = |u: u32| tiers.needed(u, headroom).capacity;
        let oracle = Timeline::from_decisions(
            users
                .first()
                .map_or(tiers.floor().capacity, |&(_, u)| need(u)),
            users.iter().map(|&(t, u)| (t, need(u))),
        );
        let static_capacity = need(peak_users);
        let fixed = Timeline::from_decisions(static_capacity, []);
        let oracle_scores = score(&users, &span, tiers, &oracle, &oracle, None);
        let base = Some(oracle_scores.replica_hours);
        Summary {
            start: span.start,
            end: span.end,
            minutes: users.len() as u64,
            peak_users,
            baseline_headroom_percent: headroom,
            static_capacity,
            policy: score(&users, &span, tiers, applied, served, base),
            static_tier: score(&users, &span, tiers, &fixed, &fixed, base),
            oracle: oracle_scores,
        }
    }

    /// The scores side by side for a person, times in `tz`.
    pub fn table(&self, tz: &TimeZone) -> String {
        let at = |t: Timestamp| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        };
        let mut cells = vec![[
            "".to_string(),
            "policy".into(),
            "oracle".into(),
            "static".into(),
            "".into(),
        ]];
        for (name, value, what) in TABLE_ROWS {
            cells.push([
                name.to_string(),
                value(&self.policy),
                value(&self.oracle),
                value(&self.static_tier),
                what.to_string(),
            ]);
        }
        let width = |i: usize| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2), width(3)];
        let mut out = format!(
            "{} → {} ({}), {} minutes, peak {} users\n\
             oracle: the tier the users needed each minute; static: tier {} all the time \
             (both with headroom {}%)\n\n",
            at(self.start),
            at(self.end),
            zone_name(tz, self.start),
            self.minutes,
            self.peak_users,
            self.static_capacity,
            self.baseline_headroom_percent,
        );
        for row in &cells {
            let mut line = format!("{:<w$}", row[0], w = widths[0]);
            for i in 1..4 {
                line.push_str(&format!("  {:>w$}", row[i], w = widths[i]));
            }
            line.push_str("  ");
            line.push_str(&row[4]);
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A row of the scores table: its name, the value of one column, what it means.
type Row = (&'static str, fn(&Scores) -> String, &'static str);

const TABLE_ROWS: [Row; 7] = [
    (
        "under_minutes",
        |s| s.under_minutes.to_string(),
        "minutes with more users than the serving tier holds",
    ),
    (
        "tau_under %",
        |s| format!("{:.2}", s.tau_under),
        "share of minutes under-provisioned",
    ),
    (
        "theta_under %",
        |s| format!("{:.2}", s.theta_under),
        "mean share of users above capacity",
    ),
    (
        "replica_hours",
        |s| format!("{:.1}", s.replica_hours),
        "summed minReplicas of the serving tier × hours",
    ),
    (
        "cost_vs_oracle",
        |s| format!("{:.2}", s.cost_vs_oracle),
        "replica_hours / the oracle's",
    ),
    ("changes", |s| s.changes.to_string(), "tier changes applied"),
    (
        "flaps",
        |s| s.flaps.to_string(),
        "changes reversing the previous one within 30m",
    ),
];

/// The zone's IANA name, or its offset at `at` for a zone without one.
pub(crate) fn zone_name(tz: &TimeZone, at: Timestamp) -> String {
    match tz.iana_name() {
        Some(name) => name.to_string(),
        None => format!("UTC{}", tz.to_offset(at)),
    }
}

/// Scores `served` (and the changes of `applied`) over the minutes; the
/// cost is relative to `oracle_hours` (itself when `None`).
fn score(
    users: &[(Timestamp, u32)],
    span: &Span,
    tiers: &TierTable,
    applied: &Timeline,
    served: &Timeline,
    oracle_hours: Option<f64>,
) -> Scores {
    let mut under_minutes = 0u64;
    let mut shortfall = 0f64;
    let mut replica_minutes = 0u64;
    for &(t, u) in users {
        let c = served.capacity_at(t);
        if u > c {
            under_minutes += 1;
            shortfall += f64::from(u - c) / f64::from(u.max(1));
        }
        replica_minutes += replicas_of(tiers, c);
    }
    let minutes = users.len().max(1) as f64;
    let replica_hours = replica_minutes as f64 / 60.0;
    let base = oracle_hours.unwrap_or(replica_hours);
    let changes: Vec<Step> = applied
        .steps()
        .filter(|s| s.at >= span.start && s.at < span.end)
        .collect();
    Scores {
        under_minutes,
        tau_under: under_minutes as f64 / minutes * 100.0,
        theta_under: shortfall / minutes * 100.0,
        replica_hours,
        cost_vs_oracle: if base > 0.0 {
            replica_hours / base
        } else {
            1.0
        },
        changes: changes.len() as u32,
        flaps: flaps(&changes),
    }
}

fn flaps(changes: &[Step]) -> u32 {
    let rising = |s: &Step| s.to > s.from;
    changes
        .windows(2)
        .filter(|p| {
            rising(&p[0]) != rising(&p[1]) && p[1].at.duration_since(p[0].at) <= FLAP_WINDOW
        })
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiers::{Replicas, TierSpec};

    fn t(hhmm: &str) -> Timestamp {
        format!("2026-03-02T{hhmm}:00Z").parse().unwrap()
    }

    /// Tiers 100 / 200 / 300 with 1+1, 2+1, 3+2 minReplicas (2, 3, 5 summed).
    fn tiers() -> TierTable {
        let spec = |capacity, a, b| TierSpec {
            capacity,
            replicas: vec![
                ("a".into(), Replicas { min: a, max: None }),
                ("b".into(), Replicas { min: b, max: None }),
            ],
            rds_instance_class: None,
            redis_node_type: None,
        };
        TierTable::new(
            vec![spec(100, 1, 1), spec(200, 2, 1), spec(300, 3, 2)],
            &["a".into(), "b".into()],
            "a",
        )
        .unwrap()
    }

    fn trace(samples: &[(&str, u32)]) -> Trace {
        Trace::from_samples(samples.iter().map(|&(h, u)| (t(h), u)).collect()).unwrap()
    }

    fn summary(trace: &Trace, applied: &Timeline, served: &Timeline) -> Summary {
        Summary::of(&Replay {
            trace,
            span: Span::of(trace, None).unwrap(),
            tiers: &tiers(),
            applied,
            served,
            baseline_headroom_percent: 0,
        })
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_policy_one_tier_short_for_part_of_the_span() {
        // Users 150 for 10:00–10:04, then 250 for 10:05–10:09 (samples make
        // steps exact: linear between equal values). Policy: tier 200 all along.
        let tr = trace(&[
            ("10:00", 150),
            ("10:04", 150),
            ("10:05", 250),
            ("10:10", 250),
        ]);
        let line = Timeline::from_decisions(200, []);
        let s = summary(&tr, &line, &line);
        assert_eq!(s.minutes, 10);
        assert_eq!(s.peak_users, 250);
        let p = &s.policy;
        // 10:05..10:09 are under: 250 > 200, shortfall 50/250 = 20% each.
        assert_eq!(p.under_minutes, 5);
        assert!(close(p.tau_under, 50.0), "{}", p.tau_under);
        assert!(close(p.theta_under, 5.0 * 20.0 / 10.0), "{}", p.theta_under);
        // 10 minutes × 3 replicas / 60.
        assert!(close(p.replica_hours, 0.5), "{}", p.replica_hours);
        // Oracle: tier 200 (3) for 5 minutes, 300 (5) for 5: 40 / 60 hours.
        let o = &s.oracle;
        assert!(close(o.replica_hours, 40.0 / 60.0), "{}", o.replica_hours);
        assert_eq!((o.under_minutes, o.changes, o.flaps), (0, 1, 0));
        assert!(close(o.cost_vs_oracle, 1.0));
        assert!(close(p.cost_vs_oracle, 30.0 / 40.0), "{}", p.cost_vs_oracle);
        // Static: the peak 250 needs tier 300 all the time: 50 / 60 hours.
        assert_eq!(s.static_capacity, 300);
        let st = &s.static_tier;
        assert!(close(st.replica_hours, 50.0 / 60.0));
        assert!(close(st.cost_vs_oracle, 1.25), "{}", st.cost_vs_oracle);
        assert_eq!((st.under_minutes, st.changes, st.flaps), (0, 0, 0));
    }

    #[test]
    fn interpolated_users_decide_the_under_minutes() {
        // 0 → 300 over 10:00–10:10: u = 30·k at minute k; tier 100 serves.
        // Under: k = 4..9 (120..270), shortfall (u − 100) / u.
        let tr = trace(&[("10:00", 0), ("10:10", 300)]);
        let line = Timeline::from_decisions(100, []);
        let s = summary(&tr, &line, &line);
        assert_eq!(s.policy.under_minutes, 6);
        let want: f64 = (4..10)
            .map(|k| f64::from(30 * k - 100) / f64::from(30 * k))
            .sum::<f64>()
            * 10.0;
        assert!(
            close(s.policy.theta_under, want),
            "{} vs {want}",
            s.policy.theta_under
        );
        assert_eq!(s.peak_users, 270, "the last scored minute is 10:09");
    }

    #[test]
    fn above_the_top_tier_even_the_oracle_is_under() {
        let tr = trace(&[("10:00", 400), ("10:02", 400)]);
        let line = Timeline::from_decisions(300, []);
        let s = summary(&tr, &line, &line);
        assert_eq!(s.oracle.under_minutes, 2);
        assert!(close(s.oracle.theta_under, 25.0));
        assert_eq!(s.static_capacity, 300);
    }

    #[test]
    fn zero_users_never_divide_by_zero() {
        let tr = trace(&[("10:00", 0), ("10:03", 0)]);
        let line = Timeline::from_decisions(100, []);
        let s = summary(&tr, &line, &line);
        assert_eq!(s.policy.under_minutes, 0);
        assert!(close(s.policy.theta_under, 0.0));
        assert!(close(s.policy.cost_vs_oracle, 1.0));
    }

    #[test]
    fn the_served_timeline_is_scored_and_the_applied_one_counted() {
        // Applied 100 → 300 at 10:02; served only from 10:04 (ready 2m).
        let tr = trace(&[("10:00", 250), ("10:06", 250)]);
        let applied = Timeline::from_decisions(100, [(t("10:02"), 300)]);
        let served = applied.effective(SignedDuration::from_mins(2));
        let s = summary(&tr, &applied, &served);
        assert_eq!(s.policy.under_minutes, 4, "10:00–10:03 at tier 100");
        assert_eq!(s.policy.changes, 1);
        // 4 minutes × 2 + 2 minutes × 5 replicas.
        assert!(close(s.policy.replica_hours, 18.0 / 60.0));
    }

    #[test]
    fn changes_outside_the_span_are_not_counted() {
        let tr = trace(&[("10:00", 50), ("10:10", 50)]);
        let applied = Timeline::from_decisions(
            100,
            [(t("09:00"), 200), (t("10:05"), 100), (t("10:10"), 300)],
        );
        let s = summary(&tr, &applied, &applied);
        assert_eq!(s.policy.changes, 1);
    }

    #[test]
    fn flaps_are_reversals_within_thirty_minutes() {
        let tr = trace(&[("10:00", 50), ("13:00", 50)]);
        let applied = Timeline::from_decisions(
            100,
            [
                (t("10:00"), 200), // up
                (t("10:10"), 300), // up again: not a flap
                (t("10:40"), 200), // down exactly 30m after the up: flap
                (t("11:20"), 300), // up 40m after: not a flap
                (t("11:25"), 100), // down 5m after: flap
                (t("11:30"), 200), // up 5m after: flap
            ],
        );
        let s = summary(&tr, &applied, &applied);
        assert_eq!(s.policy.changes, 6);
        assert_eq!(s.policy.flaps, 3);
        let steps: Vec<Step> = applied.steps().collect();
        assert_eq!(flaps(&steps[..3]), 1);
        assert_eq!(flaps(&steps[..1]), 0);
    }

    #[test]
    fn the_oracle_changes_and_flaps_with_the_users() {
        // 150 → 250 → 150 over ten minutes: needed 200, 300, 200.
        let tr = trace(&[
            ("10:00", 150),
            ("10:02", 150),
            ("10:03", 250),
            ("10:05", 250),
            ("10:06", 150),
            ("10:10", 150),
        ]);
        let line = Timeline::from_decisions(300, []);
        let s = summary(&tr, &line, &line);
        assert_eq!((s.oracle.changes, s.oracle.flaps), (2, 1));
        assert_eq!(s.oracle.under_minutes, 0);
    }

    #[test]
    fn baseline_headroom_sizes_the_oracle_and_static() {
        let tr = trace(&[("10:00", 180), ("10:02", 180)]);
        let line = Timeline::from_decisions(200, []);
        let s = Summary::of(&Replay {
            trace: &tr,
            span: Span::of(&tr, None).unwrap(),
            tiers: &tiers(),
            applied: &line,
            served: &line,
            baseline_headroom_percent: 20,
        });
        // 180 × 1.2 = 216: tier 300 (5 replicas) for 2 minutes.
        assert_eq!(s.static_capacity, 300);
        assert!(close(s.oracle.replica_hours, 10.0 / 60.0));
        assert!(close(s.policy.cost_vs_oracle, 0.6));
    }

    #[test]
    fn the_summary_serializes_to_the_json_simulate_prints() {
        let tr = trace(&[("10:00", 150), ("10:02", 150)]);
        let line = Timeline::from_decisions(200, []);
        let json = serde_json::to_value(summary(&tr, &line, &line)).unwrap();
        assert_eq!(json["start"], "2026-03-02T10:00:00Z");
        assert_eq!(json["minutes"], 2);
        assert_eq!(json["static_capacity"], 200);
        for who in ["policy", "oracle", "static"] {
            let s = &json[who];
            for key in [
                "under_minutes",
                "tau_under",
                "theta_under",
                "replica_hours",
                "cost_vs_oracle",
                "changes",
                "flaps",
            ] {
                assert!(s[key].is_number(), "{who}.{key} in {json}");
            }
        }
        assert_eq!(json["policy"]["replica_hours"], 0.1);
    }

    #[test]
    fn the_table_shows_each_score_for_all_three() {
        let tr = trace(&[
            ("10:00", 150),
            ("10:04", 150),
            ("10:05", 250),
            ("10:10", 250),
        ]);
        let line = Timeline::from_decisions(200, []);
        let text = summary(&tr, &line, &line).table(&TimeZone::fixed(jiff::tz::offset(8)));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("2026-03-02 18:00 → 2026-03-02 18:10"),
            "{text}"
        );
        assert!(lines[0].contains("10 minutes, peak 250 users"), "{text}");
        let row = |name: &str| -> Vec<String> {
            let line = lines
                .iter()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in\n{text}"));
            line.split_whitespace().map(str::to_string).collect()
        };
        assert_eq!(row("under_minutes")[1..4], ["5", "0", "0"]);
        assert_eq!(row("tau_under")[2..5], ["50.00", "0.00", "0.00"]);
        assert_eq!(row("cost_vs_oracle")[1..4], ["0.75", "1.00", "1.25"]);
        assert_eq!(row("changes")[1..4], ["0", "1", "0"]);
        let header = lines.iter().find(|l| l.contains("policy")).unwrap();
        assert!(
            header.contains("oracle") && header.contains("static"),
            "{text}"
        );
    }
}
