//! The policy: the part of the configuration the decision reads. The binary's
//! `config` module validates the YAML into a [`Policy`] plus the adapters'
//! settings; `check`, `status` and `simulate` all decide from the same value,
//! so a `--set` override in `simulate` is the same policy `check` would run.

use jiff::SignedDuration;

use crate::hpa::HpaRef;
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
}

impl Policy {
    /// The reference HPA: the one whose minReplicas tells the current tier.
    pub fn reference(&self) -> &HpaRef {
        let r = self.tiers.reference();
        self.services
            .iter()
            .find(|s| s.service == r)
            .expect("a validated policy's reference service is among its services")
    }
}
