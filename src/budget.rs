//! The run's time budget: one deadline per run, and what each phase may
//! draw from it. Every outside call has `timeout_seconds` of its own; the
//! phases are bounded here so that no hung dependency keeps a cron job alive
//! and the record is still written when a phase runs out of time.

use std::time::Duration;

use tokio::time::Instant;

/// Calls a phase may take one after another: the gather phase makes at most
/// two in a row (the GA token, then the report); applying makes a patch, a
/// re-read and a second patch when a conflict comes back.
const GATHER_CALLS: u32 = 2;
const APPLY_CALLS: u32 = 3;
/// Notices and the record: one call each.
const NOTIFY_CALLS: u32 = 1;
const RECORD_CALLS: u32 = 1;
/// Room for process start, the decision and printing.
const SLACK: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
pub struct Budget {
    per_call: Duration,
    deadline: Instant,
}

impl Budget {
    /// The budget of a run starting now: every phase at its longest, plus slack.
    pub fn start(per_call: Duration) -> Self {
        let calls = GATHER_CALLS + APPLY_CALLS + NOTIFY_CALLS + RECORD_CALLS;
        Budget {
            per_call,
            deadline: Instant::now() + per_call * calls + SLACK,
        }
    }

    /// The whole run's length, for messages.
    pub fn total(&self, from: Instant) -> Duration {
        self.deadline.saturating_duration_since(from)
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Reading everything the decision needs, concurrently.
    pub fn gather(&self) -> Duration {
        self.phase(GATHER_CALLS)
    }

    /// Patching the HPAs, concurrently.
    pub fn apply(&self) -> Duration {
        self.phase(APPLY_CALLS)
    }

    /// Sending the notices, concurrently.
    pub fn notify(&self) -> Duration {
        self.phase(NOTIFY_CALLS)
    }

    /// What a phase of `calls` sequential calls may take: its own length, but
    /// never past the deadline.
    fn phase(&self, calls: u32) -> Duration {
        (self.per_call * calls).min(self.deadline.saturating_duration_since(Instant::now()))
    }
}

/// Runs `fut` for at most `limit`; `Err` names what did not answer in time.
pub async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| format!("{what} did not answer within {}s", limit.as_secs()))
}

/// [`bounded`] for a fallible call: its own error or the timeout, as text.
pub async fn within<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    bounded(limit, what, fut)
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn phases_never_reach_past_the_deadline() {
        let b = Budget::start(Duration::from_secs(10));
        assert_eq!(b.gather(), Duration::from_secs(20));
        assert_eq!(b.apply(), Duration::from_secs(30));
        assert_eq!(b.total(Instant::now()), Duration::from_secs(75));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.apply(), Duration::from_secs(15));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.gather(), Duration::ZERO);
    }
}
