//! The run's time budget: one deadline per run, what each phase may draw
//! from it, and the stop that ends a run early — the deadline, or SIGTERM /
//! SIGINT (a CronJob's `activeDeadlineSeconds`, a systemd stop, Ctrl-C).
//! Whatever stops a run, the shell still records what it did: the record
//! has a reserve of its own that no phase before it can spend.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Calls a phase may take one after another: the gather phase makes at most
/// three in a row (a cached GA token refused by the report, a new token, the
/// report again); applying makes a patch, a re-read and a second patch when
/// a conflict comes back.
const GATHER_CALLS: u32 = 3;
const APPLY_CALLS: u32 = 3;
/// Notices and the record: one call each.
const NOTIFY_CALLS: u32 = 1;
const RECORD_CALLS: u32 = 1;
/// Room for process start, the decision and printing.
const SLACK: Duration = Duration::from_secs(5);
/// After a signal the record must be written (or spooled) and the process
/// gone within 5 s: the record gets 3 of them, closing the store one.
const RECORD_AFTER_SIGNAL: Duration = Duration::from_secs(3);
pub const CLOSE: Duration = Duration::from_secs(1);
/// Writing a record MySQL did not take to the spool instead.
const SPOOL: Duration = Duration::from_secs(2);
/// Publishing the gauges: a Pushgateway on the cluster network answers in
/// milliseconds, so a slow one gets at most this, however long
/// `timeout_seconds` is; after a signal, what still leaves the 5 s exit.
const METRICS_CAP: Duration = Duration::from_secs(5);
const METRICS_AFTER_SIGNAL: Duration = Duration::from_millis(500);
/// The push, and for a run stopped before it read its history, that read.
const METRICS_CALLS: u32 = 2;

#[derive(Clone, Debug)]
pub struct Budget {
    per_call: Duration,
    /// When the phases before the record must be done.
    deadline: Instant,
    /// Why the run was stopped, once it was.
    stop: Arc<watch::Sender<Option<Stopped>>>,
}

/// What stopped a run early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    Deadline(Duration),
    Signal(&'static str),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Deadline(d) => write!(f, "the run's deadline of {}s passed", d.as_secs()),
            Stopped::Signal(s) => write!(f, "{s} arrived"),
        }
    }
}

impl Budget {
    /// The budget of a run starting now: every phase at its longest, plus
    /// slack; the record's own call comes after the deadline.
    pub fn start(per_call: Duration) -> Self {
        let calls = GATHER_CALLS + APPLY_CALLS + NOTIFY_CALLS;
        Budget {
            per_call,
            deadline: Instant::now() + per_call * calls + SLACK,
            stop: Arc::new(watch::channel(None).0),
        }
    }

    /// How long the whole run may take at most, from `from`: the phases,
    /// then the record and closing the store.
    pub fn total(&self, from: Instant) -> Duration {
        self.deadline.saturating_duration_since(from)
            + self.per_call * RECORD_CALLS
            + SPOOL
            + CLOSE
            + self.per_call.min(METRICS_CAP) * METRICS_CALLS
    }

    /// Stops the run: the phase in flight ends, the record is written.
    pub fn stop(&self, why: Stopped) {
        self.stop.send_if_modified(|s| {
            let first = s.is_none();
            if first {
                *s = Some(why);
            }
            first
        });
    }

    /// Why the run was stopped, if it was.
    pub fn stopped(&self) -> Option<Stopped> {
        self.stop.borrow().clone()
    }

    /// Resolves when the run must stop: at the deadline, or at once when
    /// [`Budget::stop`] was (or is) called.
    pub async fn until_stopped(&self) -> Stopped {
        let mut rx = self.stop.subscribe();
        tokio::select! {
            r = rx.wait_for(Option::is_some) => {
                if let Ok(why) = r && let Some(why) = why.clone() {
                    return why;
                }
            }
            _ = tokio::time::sleep_until(self.deadline) => {}
        }
        // The first stop names it: a signal that came first stays the reason.
        self.stop(Stopped::Deadline(self.phases()));
        self.stopped().unwrap_or(Stopped::Deadline(self.phases()))
    }

    /// The phases' share of the run, for messages.
    fn phases(&self) -> Duration {
        self.per_call * (GATHER_CALLS + APPLY_CALLS + NOTIFY_CALLS) + SLACK
    }

    /// Stops the run on SIGTERM or SIGINT, for as long as the runtime lives.
    pub fn stop_on_signals(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let budget = self.clone();
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot listen for SIGTERM/SIGINT: a stop will not be recorded");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::warn!("{name}: stopping; recording what was done");
            budget.stop(Stopped::Signal(name));
        });
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

    /// Writing the record: its own call, even past the deadline, and time
    /// for the store to spool it when that call fails (its own timeout is
    /// one call); after a signal only what still lets the process exit
    /// within 5 s.
    pub fn record(&self) -> Duration {
        match self.stopped() {
            Some(Stopped::Signal(_)) => RECORD_AFTER_SIGNAL,
            _ => self.per_call * RECORD_CALLS + SPOOL,
        }
    }

    /// Publishing the run's gauges (SPEC §13): a call of its own after the
    /// phases, like the record's, so a run stopped at its deadline still
    /// publishes; `timeout_seconds` but at most 5 s, and after a signal
    /// only half a second.
    pub fn metrics(&self) -> Duration {
        match self.stopped() {
            Some(Stopped::Signal(_)) => METRICS_AFTER_SIGNAL,
            _ => self.per_call.min(METRICS_CAP),
        }
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
    async fn phases_never_reach_past_the_deadline_and_the_record_keeps_its_call() {
        let b = Budget::start(Duration::from_secs(10));
        assert_eq!(b.gather(), Duration::from_secs(30));
        assert_eq!(b.apply(), Duration::from_secs(30));
        assert_eq!(b.total(Instant::now()), Duration::from_secs(98));
        assert_eq!(b.metrics(), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(b.apply(), Duration::from_secs(25));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.gather(), Duration::ZERO);
        assert_eq!(b.record(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_the_run_and_says_so() {
        let b = Budget::start(Duration::from_secs(1));
        let why = b.until_stopped().await;
        assert_eq!(why, Stopped::Deadline(Duration::from_secs(12)));
        assert_eq!(why.to_string(), "the run's deadline of 12s passed");
        assert_eq!(b.stopped(), Some(why));
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_stops_the_run_at_once_and_shortens_the_record() {
        let b = Budget::start(Duration::from_secs(10));
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.until_stopped().await }
        });
        tokio::time::advance(Duration::from_secs(1)).await;
        b.stop(Stopped::Signal("SIGTERM"));
        assert_eq!(waiting.await.unwrap(), Stopped::Signal("SIGTERM"));
        // A later deadline does not rename the stop.
        b.stop(Stopped::Deadline(Duration::ZERO));
        assert_eq!(b.until_stopped().await, Stopped::Signal("SIGTERM"));
        assert_eq!(b.record(), Duration::from_secs(3));
        assert_eq!(b.metrics(), Duration::from_millis(500));
    }
}
