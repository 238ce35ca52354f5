//! The error kinds a caller acts on, and the one place exit codes are decided.
//!
//! Exit status (README, "Exit status"): 0 success (including "blocked and announced" in
//! `check`), 1 runtime failure, 2 usage or configuration error (nothing was
//! touched), 3 `upgrade` refused because prerequisites are not met.

/// A usage or configuration problem: nothing was touched. Exit 2.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(msg: impl Into<String>) -> Self {
        UsageError(msg.into())
    }
}

pub use hpa_tier_core::conclude::Completion;

/// Maps the result of a command to its exit status. The only place that does.
pub fn exit_code(result: &anyhow::Result<Completion>) -> u8 {
    match result {
        Ok(done) => done.exit_code(),
        Err(e) if e.chain().any(|c| c.is::<UsageError>()) => 2,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_completion_and_error_kind_has_its_exit_code() {
        assert_eq!(exit_code(&Ok(Completion::Success)), 0);
        assert_eq!(exit_code(&Ok(Completion::Failed)), 1);
        assert_eq!(exit_code(&Ok(Completion::Refused)), 3);
        let usage = anyhow::Error::new(UsageError::new("bad key")).context("loading config");
        assert_eq!(exit_code(&Err(usage)), 2);
        assert_eq!(exit_code(&Err(anyhow::anyhow!("MySQL went away"))), 1);
    }
}
