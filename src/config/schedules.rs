//! `timezone`, `schedules`, `skip_dates`, `preflight_hours`: the windows of
//! known demand. The core's schedule module validates each entry; errors
//! come back naming the schedule and its key (`schedules[launch].cron`).

use hpa_tier_core::schedule::{Schedules, SchedulesSpec};
use hpa_tier_core::tiers::TierTable;

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

pub(super) fn validate(
    raw: &mut RawConfig,
    tiers: &TierTable,
    doc: &Document,
) -> Result<Schedules, ConfigError> {
    let spec = SchedulesSpec {
        timezone: raw.timezone.take(),
        schedules: std::mem::take(&mut raw.schedules),
        skip_dates: std::mem::take(&mut raw.skip_dates),
        preflight_hours: raw.preflight_hours,
    };
    Schedules::new(spec, &tiers.capacities()).map_err(|e| {
        // The line of the section the key belongs to is the best the text
        // search can give for keys nested in a list.
        let top = e.key.split(['[', '.']).next().unwrap_or(&e.key).to_string();
        ConfigError::new(e.key.clone(), e.kind.to_string()).with_line(doc.line_of(&top))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;

    const BASE: &str = "property_id: '1'\nkey_file_location: k\nhpa_service_name: istio-ingress\n\
        services:\n  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }\n";

    fn err(extra: &str) -> String {
        parse(&format!("{BASE}{extra}"), Path::new("c.yaml"), &|_| None)
            .unwrap_err()
            .0
    }

    #[test]
    fn schedules_are_validated_with_the_schedule_and_key_named() {
        let e =
            err("schedules:\n  - { name: peak, cron: '0 19 * *', duration: 3h, capacity: 3000 }\n");
        assert!(
            e.contains("schedules[peak].cron") && e.contains("line 6"),
            "{e}"
        );
        let e = err(
            "schedules:\n  - { name: peak, cron: '0 19 * * *', duration: 3h, capacity: 2500 }\n",
        );
        assert!(
            e.contains("schedules[peak].capacity") && e.contains("3000"),
            "{e}"
        );
        let e = err("timezone: Mars/Olympus\n");
        assert!(e.contains("timezone") && e.contains("Mars/Olympus"), "{e}");
        let e = err("skip_dates: ['2026-13-01']\n");
        assert!(e.contains("skip_dates[0]"), "{e}");
    }

    #[test]
    fn a_valid_schedule_reaches_the_policy() {
        let c = parse(
            &format!(
                "{BASE}timezone: Asia/Shanghai\nschedules:\n  - {{ name: peak, cron: '0 19 * * 1-5', duration: 3h, capacity: 3000, lead: 15m }}\n"
            ),
            Path::new("c.yaml"),
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = &c.policy.schedules;
        assert_eq!(s.entries().len(), 1);
        assert_eq!(s.zone().iana_name(), Some("Asia/Shanghai"));
    }
}
