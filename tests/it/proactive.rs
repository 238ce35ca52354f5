//! Capacity before demand, end to end: schedule windows, pre-flight
//! warnings and the forecast, driven through the built binary against the
//! stand-ins, moto and MariaDB (the rigs of `e2e`).

use jiff::{SignedDuration, Timestamp};

use crate::e2e::{Rig, Setup, code, show, tier};
use crate::support::{run, stderr, stdout};

/// `now + minutes`, whole seconds, RFC 3339 — what an `at` may say.
fn in_minutes(minutes: i64) -> String {
    let t = Timestamp::now() + SignedDuration::from_mins(minutes);
    Timestamp::from_second(t.as_second()).unwrap().to_string()
}

fn with_config(rig: &Rig, extra: &str) {
    rig.set_config(&format!("{}{extra}", rig.config_text));
}

#[test]
fn a_check_inside_a_window_applies_its_tier_and_records_it_as_needed() {
    let rig = Rig::new();
    rig.google.set_users(100);
    with_config(
        &rig,
        &format!(
            "schedules:\n  - {{ name: launch, at: \"{}\", duration: 1h, capacity: 3000 }}\n",
            in_minutes(-5)
        ),
    );
    let o = rig.run(&["-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(3000));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["needed_capacity"], 3000, "{doc:#}");
    assert_eq!(doc["decided_by"]["reason"], "schedule");
    assert_eq!(doc["decided_by"]["name"], "launch");
    let floors = doc["floors"].as_array().unwrap();
    assert_eq!(floors[0]["reason"], "metric");
    assert_eq!(floors[0]["capacity"], 600);
    let r = rig.rows().pop().unwrap();
    assert_eq!(
        (r.users, r.needed, r.to),
        (Some(100), Some(3000), Some(3000))
    );
    assert_eq!(r.detail["decided_by"]["reason"], "schedule", "{}", r.detail);

    // Still inside the window: held there, by the schedule.
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        stdout(&o).contains("schedule launch keeps tier 3000"),
        "{}",
        show(&o)
    );
    assert_eq!(rig.rows().pop().unwrap().outcome, "held");
}

#[test]
fn a_window_the_database_cannot_take_is_warned_about_once_ahead_of_time() {
    // The reader is too small for tier 1000 and up.
    let rig = Rig::with(Setup {
        rds: vec!["db.r5.12xlarge", "db.r7g.large"],
        ..Setup::default()
    });
    rig.google.set_users(100);
    with_config(
        &rig,
        &format!(
            "timezone: Asia/Shanghai\npreflight_hours: 24\nschedules:\n  - {{ name: evening-peak, at: \"{}\", duration: 3h, capacity: 2000 }}\n",
            in_minutes(180)
        ),
    );
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        rig.mins(),
        tier(600),
        "three hours ahead nothing is raised yet"
    );
    let cards: Vec<String> = rig
        .feishu_lines()
        .into_iter()
        .filter(|l| l.contains("evening-peak"))
        .collect();
    let [card] = &cards[..] else {
        panic!("{cards:?}")
    };
    assert!(card.contains("tier 2000 not allowed yet"), "{card}");
    assert!(
        card.contains("(Asia/Shanghai)") && card.contains("UTC"),
        "{card}"
    );
    assert!(card.contains("aws rds modify-db-instance"), "{card}");
    // The next run: the same occurrence is not warned about again.
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let again = rig
        .feishu_lines()
        .into_iter()
        .filter(|l| l.contains("evening-peak"))
        .count();
    assert_eq!(again, 1, "once per occurrence");
    let o = rig.run(&["status"]);
    assert!(
        stdout(&o).contains("NOT ALLOWED by the prerequisites now"),
        "{}",
        show(&o)
    );
}

#[test]
fn schedules_lists_the_windows_from_the_config_alone() {
    let dir = crate::support::tempdir();
    let config = crate::support::write(
        dir.path(),
        "c.yaml",
        "property_id: '1'\nkey_file_location: /nonexistent/key.json\nhpa_service_name: istio-ingress\n\
         ga_api_url: http://127.0.0.1:9\nmysql_host: 127.0.0.1\nmysql_port: 9\nmysql_user: u\nmysql_db: d\n\
         services:\n  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }\n\
         timezone: America/New_York\n\
         schedules:\n  - { name: evening, cron: '0 19 * * *', duration: 3h, capacity: 3000, lead: 15m }\n",
    );
    let o = run(
        &["-c", &config, "-o", "json", "schedules", "--days", "2"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["timezone"], "America/New_York");
    let windows = doc["windows"].as_array().unwrap();
    assert!((2..=3).contains(&windows.len()), "{doc:#}");
    for w in windows {
        assert!(
            w["local_start"].as_str().unwrap().contains("19:00 E"),
            "{w}"
        );
        assert_eq!(
            (w["capacity"].as_u64(), w["lead_minutes"].as_i64()),
            (Some(3000), Some(15))
        );
    }
    let o = run(&["-c", &config, "schedules"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("evening"), "{}", stdout(&o));
    // A bad schedule is a usage error naming it.
    let bad = crate::support::write(
        dir.path(),
        "bad.yaml",
        &std::fs::read_to_string(&config)
            .unwrap()
            .replace("capacity: 3000", "capacity: 2500"),
    );
    let o = run(&["-c", &bad, "schedules"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("schedules[evening].capacity"),
        "{}",
        stderr(&o)
    );
}

/// Three weeks of check records every five minutes: 3000 users in the ten
/// minutes around a quarter of an hour from now (in the time of week), 300
/// otherwise.
fn seed_weekly_peak(rig: &Rig) {
    let week = 7 * 24 * 60;
    let mut values = vec![];
    for i in 1..=(3 * 7 * 288) {
        let minutes_ago = 5 * i;
        let until_peak = (minutes_ago + 15) % week;
        let users = if until_peak <= 5 || until_peak >= week - 5 {
            3000
        } else {
            300
        };
        values.push(format!(
            "('{}', 'seed-{i}', UTC_TIMESTAMP(3) - INTERVAL {minutes_ago} MINUTE, \
             UTC_TIMESTAMP(3) - INTERVAL {minutes_ago} MINUTE, 'check', {users}, 600, 600, 600, \
             'noop', 'seeded', NULL, NULL, '[]')",
            rig.cluster()
        ));
    }
    for chunk in values.chunks(1000) {
        rig.sql(&format!(
            "INSERT INTO hpa_tier_runs (cluster, run_id, started_at, finished_at, command, users, \
             needed_capacity, from_capacity, to_capacity, outcome, message, detail, hold_until, \
             notified) VALUES {}",
            chunk.join(", ")
        ));
    }
}

#[test]
fn the_forecast_advises_then_scales_ahead_of_a_weekly_peak() {
    let rig = Rig::new();
    // A first run creates the schema (and reads 300 users: nothing to do).
    rig.google.set_users(300);
    assert_eq!(code(&rig.run(&["check"])), 0);
    seed_weekly_peak(&rig);

    with_config(&rig, "forecast: { mode: advise }\n");
    let o = rig.run(&["-o", "json", "check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(600), "advise never acts");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["outcome"], "noop", "{doc:#}");
    let forecast =
        rig.sql_u32("SELECT forecast_capacity FROM hpa_tier_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(
        forecast,
        Some(4000),
        "3000 users expected, with the 10% margin"
    );
    let o = rig.run(&["status"]);
    assert!(stdout(&o).contains("forecast (advise"), "{}", show(&o));

    with_config(&rig, "forecast: { mode: scale }\n");
    let o = rig.run(&["check"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(rig.mins(), tier(4000));
    assert!(stdout(&o).contains("the forecast ("), "{}", show(&o));
}
