//! The policy: the part of the configuration the decision reads. The binary's
//! `config` module validates the YAML into a [`Policy`] plus the adapters'
//! settings; `check`, `status` and `simulate` all decide from the same value,
//! so a `--set` override in `simulate` is the same policy `check` would run.

use jiff::SignedDuration;
use serde::Serialize;

use crate::forecast;
use crate::hpa::HpaRef;
use crate::schedule::Schedules;
use crate::tiers::TierTable;

#[derive(Clone, Debug)]
pub struct Policy {
    pub tiers: TierTable,
    /// Managed HPAs in the table's column order.
    pub services: Vec<HpaRef>,
    /// A tier must hold users × (1 + headroom_percent / 100).
    pub headroom_percent: u32,
    /// How long a lower tier must suffice before stepping down.
    pub scale_down: SignedDuration,
    /// The same blocked/error notice is repeated at most this often.
    pub notify_repeat: SignedDuration,
    /// Time between scheduled runs (`check_time`): staleness, coverage gaps.
    pub check_interval: SignedDuration,
    /// The EKS cluster name (or context): names the run lock and the records' scope.
    pub cluster: String,
    /// Scheduled windows (SPEC §9): floors at known times, and pre-flight.
    pub schedules: Schedules,
    pub forecast: ForecastPolicy,
}

/// What the forecast may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForecastMode {
    /// Not computed.
    #[default]
    Off,
    /// Computed, recorded and shown; never acts.
    Advise,
    /// A floor of the decision, like a schedule window.
    Scale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForecastPolicy {
    pub mode: ForecastMode,
    pub settings: forecast::Settings,
}

impl Default for ForecastPolicy {
    fn default() -> Self {
        ForecastPolicy {
            mode: ForecastMode::Off,
            settings: forecast::Settings {
                lookback_weeks: 3,
                horizon: SignedDuration::from_mins(20),
                margin_percent: 10,
            },
        }
    }
}

impl Policy {
    /// How far back a run reads its records: the scale-down window, notice
    /// dedupe, and a pre-flight notice sent once per window occurrence.
    pub fn history_span(&self) -> SignedDuration {
        // A window's notice goes out at most `preflight` before it starts,
        // and only windows yet to start are warned about.
        let preflight = if self.schedules.is_empty() {
            SignedDuration::ZERO
        } else {
            self.schedules.preflight()
        };
        self.scale_down.max(self.notify_repeat).max(preflight)
    }

    /// How far back the forecast reads users: its lookback and one more week.
    pub fn samples_span(&self) -> Option<SignedDuration> {
        (self.forecast.mode != ForecastMode::Off).then(|| {
            SignedDuration::from_hours(
                24 * 7 * i64::from(self.forecast.settings.lookback_weeks + 1),
            )
        })
    }

    /// The reference HPA: the one whose minReplicas tells the current tier.
    pub fn reference(&self) -> &HpaRef {
        let r = self.tiers.reference();
        self.services
            .iter()
            .find(|s| s.service == r)
            .expect("a validated policy's reference service is among its services")
    }
}

#[cfg(any(test, feature = "fixtures"))]
impl Policy {
    /// Fixture: the built-in table over the six services of `Hpa::test`
    /// (namespace `prod`), reference `istio-ingress`, the config's defaults
    /// (30-minute scale-down, hourly repeats, 5-minute checks), no schedules,
    /// no forecast.
    pub fn test() -> Policy {
        let tiers = crate::tiers::fixtures::table();
        Policy {
            services: tiers
                .services()
                .iter()
                .map(|s| crate::hpa::Hpa::test(s).id)
                .collect(),
            tiers,
            headroom_percent: 0,
            scale_down: SignedDuration::from_mins(30),
            notify_repeat: SignedDuration::from_mins(60),
            check_interval: SignedDuration::from_mins(5),
            cluster: "test".into(),
            schedules: Schedules::default(),
            forecast: ForecastPolicy::default(),
        }
    }
}
