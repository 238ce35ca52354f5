//! Publishing a run's gauges (SPEC §13): the [`Publisher`] of the
//! configured sinks — a Prometheus Pushgateway ([`pushgateway`]) and a
//! node_exporter textfile ([`textfile`]) — both given the same body, which
//! the core renders (`hpa_tier_core::metrics`). Publishing never fails a
//! run: what went wrong comes back as warnings for its record and report.

pub mod pushgateway;
pub mod textfile;

use std::time::Duration;

use hpa_tier_core::metrics::Gauges;
use tracing::{debug, warn};

use crate::config::MetricsSettings;
use pushgateway::Pushgateway;
use textfile::Textfile;

/// The configured sinks; [`Publisher::default`] has none.
#[derive(Debug, Default)]
pub struct Publisher {
    pushgateway: Option<Pushgateway>,
    textfile: Option<Textfile>,
}

impl Publisher {
    /// The sinks of `settings`, for the gauges of `cluster` (the
    /// Pushgateway's `cluster` grouping label).
    pub fn new(settings: &MetricsSettings, cluster: &str) -> Publisher {
        Publisher {
            pushgateway: settings
                .pushgateway
                .as_deref()
                .map(|url| Pushgateway::new(url, cluster)),
            textfile: settings.textfile.clone().map(Textfile::new),
        }
    }

    /// Neither sink is configured: there is nothing to publish.
    pub fn is_off(&self) -> bool {
        self.pushgateway.is_none() && self.textfile.is_none()
    }

    /// Pushes and writes `gauges`, concurrently, each within `limit`. The
    /// warnings say what did not work (each is logged too).
    pub async fn publish(&self, gauges: &Gauges, limit: Duration) -> Vec<String> {
        let body = gauges.render();
        let push = async {
            match &self.pushgateway {
                None => None,
                Some(p) => Some(
                    p.push(body.clone(), limit)
                        .await
                        .map_err(|e| format!("the run's metrics were not pushed: {e}")),
                ),
            }
        };
        let write = async {
            match &self.textfile {
                None => None,
                Some(t) => Some(
                    t.write(body.clone(), limit)
                        .await
                        .map_err(|e| format!("the run's metrics were not written: {e}")),
                ),
            }
        };
        let (pushed, written) = tokio::join!(push, write);
        let mut warnings = vec![];
        for result in [pushed, written].into_iter().flatten() {
            match result {
                Ok(done) => debug!("metrics {done}"),
                Err(e) => {
                    warn!("{e}");
                    warnings.push(e);
                }
            }
        }
        warnings
    }
}
