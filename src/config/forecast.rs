//! `forecast`: whether the weekly pattern of the run history may raise the
//! tier (`scale`), is only reported (`advise`), or is not computed (`off`,
//! the default when the section is absent).

use hpa_tier_core::duration;
use hpa_tier_core::forecast::{MAX_LOOKBACK_WEEKS, Settings};
use hpa_tier_core::policy::{ForecastMode, ForecastPolicy};
use jiff::SignedDuration;

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

/// A horizon beyond a day predicts nothing a check every few minutes needs.
const MAX_HORIZON: SignedDuration = SignedDuration::from_hours(24);
const MAX_MARGIN_PERCENT: u32 = 1000;

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<ForecastPolicy, ConfigError> {
    let mut policy = ForecastPolicy::default();
    let Some(f) = &raw.forecast else {
        return Ok(policy);
    };
    let err = |key: &str, msg: String| {
        ConfigError::new(format!("forecast.{key}"), msg).with_line(doc.line_of("forecast"))
    };
    policy.mode = match f.mode.as_deref().unwrap_or("off") {
        "off" => ForecastMode::Off,
        "advise" => ForecastMode::Advise,
        "scale" => ForecastMode::Scale,
        other => {
            return Err(err(
                "mode",
                format!("`{other}` is not one of off, advise, scale"),
            ));
        }
    };
    let mut s: Settings = policy.settings;
    if let Some(w) = f.lookback_weeks {
        if !(1..=MAX_LOOKBACK_WEEKS).contains(&w) {
            return Err(err(
                "lookback_weeks",
                format!("{w} is out of range 1..={MAX_LOOKBACK_WEEKS}"),
            ));
        }
        s.lookback_weeks = w;
    }
    if let Some(h) = &f.horizon {
        let d = duration::parse(h).map_err(|e| err("horizon", e.to_string()))?;
        if d <= SignedDuration::ZERO || d > MAX_HORIZON {
            return Err(err("horizon", format!("`{h}` is out of range 1m..24h")));
        }
        s.horizon = d;
    }
    if let Some(m) = f.margin_percent {
        if m > MAX_MARGIN_PERCENT {
            return Err(err("margin_percent", format!("{m}% is not a sane margin")));
        }
        s.margin_percent = m;
    }
    policy.settings = s;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hpa_tier_core::policy::ForecastMode;

    use crate::config::parse;

    const BASE: &str = "property_id: '1'\nkey_file_location: k\nhpa_service_name: istio-ingress\n\
        services:\n  istio-ingress: { hpa: ingressgateway-hpa, namespace: istio-system }\n";

    fn parsed(extra: &str) -> Result<crate::config::Config, String> {
        parse(&format!("{BASE}{extra}"), Path::new("c.yaml"), &|_| None).map_err(|e| e.0)
    }

    #[test]
    fn the_forecast_is_off_unless_configured_and_takes_the_spec_defaults() {
        assert_eq!(parsed("").unwrap().policy.forecast.mode, ForecastMode::Off);
        let f = parsed("forecast: { mode: advise }\n")
            .unwrap()
            .policy
            .forecast;
        assert_eq!(f.mode, ForecastMode::Advise);
        assert_eq!(
            (
                f.settings.lookback_weeks,
                f.settings.horizon.as_mins(),
                f.settings.margin_percent
            ),
            (3, 20, 10)
        );
        let f = parsed(
            "forecast: { mode: scale, lookback_weeks: 2, horizon: 30m, margin_percent: 5 }\n",
        )
        .unwrap()
        .policy
        .forecast;
        assert_eq!(
            (
                f.mode,
                f.settings.lookback_weeks,
                f.settings.horizon.as_mins()
            ),
            (ForecastMode::Scale, 2, 30)
        );
    }

    #[test]
    fn bad_forecast_settings_name_their_key() {
        for (extra, key) in [
            ("forecast: { mode: always }\n", "forecast.mode"),
            (
                "forecast: { lookback_weeks: 9 }\n",
                "forecast.lookback_weeks",
            ),
            (
                "forecast: { lookback_weeks: 0 }\n",
                "forecast.lookback_weeks",
            ),
            ("forecast: { horizon: 3d }\n", "forecast.horizon"),
            ("forecast: { horizon: soon }\n", "forecast.horizon"),
            (
                "forecast: { margin_percent: 5000 }\n",
                "forecast.margin_percent",
            ),
            ("forecast: { mode: scale, lookahead: 1h }\n", "lookahead"),
        ] {
            let e = parsed(extra).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
    }
}
