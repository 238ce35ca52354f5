//! Telling the team: the [`Notifier`] port and its Feishu adapter. What a
//! notice says (its card, dedupe key, repeat rule) is pure and lives in the
//! core crate's `notice` module.

pub mod feishu;

use std::future::Future;

pub use hpa_tier_core::notice::*;

pub trait Notifier: Send + Sync {
    fn send(&self, notice: &Notice) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

/// Why a notice was not delivered. The caller logs it and records it; it
/// never fails the run. Messages name the webhook's host at most, never its
/// URL (the path carries the bot's token).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// Feishu answered but did not take the message: a non-zero `code`
    /// (bad signature, rate limit, bad request, …), an HTTP error status, or
    /// a body that is not Feishu's answer.
    #[error("{0}")]
    Rejected(String),
    /// No answer within the configured timeout.
    #[error("{0}")]
    Timeout(String),
    /// No connection: refused, DNS, TLS.
    #[error("{0}")]
    Unreachable(String),
}
