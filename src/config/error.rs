//! [`ConfigError`]: what a section validator says is wrong. It names the
//! key as the operator wrote it (`services.web.hpa`, `tiers[1]`,
//! `check_time`) and the line when it is known; `parse` puts the file's path
//! in front and turns it into the `UsageError` the shell maps to exit 2.

/// One configuration problem. Renders `<key> (line N): <message>`, or
/// `<key>: <message>` when the line is not known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}{}: {message}", line_note(*.line))]
pub struct ConfigError {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    /// A problem with `key` whose line is not known (nested keys, absent keys).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            line: None,
            message: message.into(),
        }
    }

    pub fn with_line(self, line: Option<usize>) -> Self {
        ConfigError { line, ..self }
    }
}

fn line_note(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_key_line_and_message() {
        let e = ConfigError::new("check_time", "must be at least 1").with_line(Some(7));
        assert_eq!(e.to_string(), "check_time (line 7): must be at least 1");
        let e = ConfigError::new("users.http.url", "`x` is not an http(s) URL");
        assert_eq!(e.to_string(), "users.http.url: `x` is not an http(s) URL");
    }
}
