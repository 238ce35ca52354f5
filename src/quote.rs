//! How what an outside system said is quoted in our own messages: an error
//! with its causes on one line, the start of a body, a time limit. One
//! place, so every adapter's messages read alike (and none quotes a whole
//! body into a log or a Feishu card).

use std::time::Duration;

/// An error and its causes, `: `-joined on one line. Wrappers often repeat
/// their cause's text; it is said once. (Not the SDKs' Debug dumps.)
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![one_line(&err.to_string())];
    let mut source = err.source();
    while let Some(e) = source {
        let text = one_line(&e.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The start of a body, on one line, for an error message.
pub fn snippet(body: &str) -> String {
    let line = one_line(body);
    if line.is_empty() {
        "(empty body)".into()
    } else {
        shorten(&line, 200)
    }
}

/// At most `max` characters of `s`, `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A time limit as a person reads it: `3s`, `500ms`, `2.5s`.
pub fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_chain_says_each_cause_once_on_one_line() {
        let e = E(
            "dispatch failure: io error: refused",
            Some(Box::new(E(
                "io error",
                Some(Box::new(E("connection\n  refused", None))),
            ))),
        );
        assert_eq!(
            chain(&e),
            "dispatch failure: io error: refused: connection refused"
        );
        assert_eq!(chain(&E("alone", None)), "alone");
    }

    #[test]
    fn snippets_are_short_and_on_one_line() {
        assert_eq!(snippet("  \n "), "(empty body)");
        assert_eq!(snippet("a\n  b\tc"), "a b c");
        let long = "é".repeat(300);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), 201);
        assert!(s.ends_with('…'));
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
    }

    #[test]
    fn limits_read_as_seconds_or_milliseconds() {
        assert_eq!(seconds(Duration::from_secs(3)), "3s");
        assert_eq!(seconds(Duration::from_millis(500)), "500ms");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5s");
    }
}
