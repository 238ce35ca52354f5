//! What a person (table) or a script (JSON) reads on stdout. Rendering is
//! pure: values in, a string out.

use serde_json::json;

use crate::tiers::TierTable;

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
    use crate::tiers::tests::table;

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
