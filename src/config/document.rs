//! The config text as the section validators see it: where a key is (for
//! line numbers the YAML parser no longer knows once values are read) and
//! the environment (for `${VAR}` and a leading `~`). The environment is a
//! function so tests need not touch the process's.

use std::cell::RefCell;

use super::error::ConfigError;

pub(super) struct Document<'a> {
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Every `${VAR}` expanded so far, `(name, value)`: an error message
    /// must never carry the value (it may be a password or a token).
    expanded: RefCell<Vec<(String, String)>>,
    /// Top-level keys a `simulate --set` replaced: the file's line for them
    /// would point at a value that is not the one judged.
    overridden: Vec<String>,
}

impl<'a> Document<'a> {
    pub(super) fn new(text: &'a str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Document {
            text,
            env,
            expanded: RefCell::new(vec![]),
            overridden: vec![],
        }
    }

    /// `message` with every expanded value put back as the `${VAR}` it came
    /// from, and every URL's query hidden.
    pub(super) fn redact(&self, message: &str) -> String {
        let mut out = message.to_string();
        let mut expanded = self.expanded.borrow().clone();
        // Longest first, so a value inside another is not half-replaced.
        expanded.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        for (name, value) in expanded {
            if !value.is_empty() {
                out = out.replace(&value, &format!("${{{name}}}"));
            }
        }
        hide_queries(&out)
    }

    /// The same text, with these top-level keys replaced by overrides.
    pub(super) fn overridden(self, keys: Vec<String>) -> Self {
        Document {
            overridden: keys,
            ..self
        }
    }

    /// Line of a top-level key.
    pub(super) fn line_of(&self, key: &str) -> Option<usize> {
        if self.overridden.iter().any(|k| k == key) {
            return None;
        }
        self.text
            .lines()
            .position(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with(':'))
            .map(|i| i + 1)
    }

    /// A problem with the top-level `key`, at its line.
    pub(super) fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(key, message).with_line(self.line_of(key))
    }

    /// Line of the `nth` (from 0) tier whose capacity is `capacity`: the
    /// `capacity:` lines under `tiers:`, block or flow style. `nth` tells
    /// apart tiers that repeat a capacity.
    pub(super) fn tier_line(&self, capacity: u32, nth: usize) -> Option<usize> {
        let start = self.line_of("tiers")?;
        let wanted = capacity.to_string();
        self.text
            .lines()
            .enumerate()
            .skip(start - 1)
            .filter(|(_, l)| {
                let l = l.trim_start_matches(|c: char| c == '-' || c == '{' || c.is_whitespace());
                let l = l.strip_prefix("tiers:").map_or(l, |r| {
                    r.trim_start_matches(|c: char| {
                        c == '[' || c == '-' || c == '{' || c.is_whitespace()
                    })
                });
                l.strip_prefix("capacity:")
                    .and_then(|r| r.split([',', '}', '#']).next())
                    .map(str::trim)
                    == Some(wanted.as_str())
            })
            .nth(nth)
            .map(|(i, _)| i + 1)
    }

    /// `value` with `${VAR}` replaced; an error names `key` and the variable.
    pub(super) fn expand(&self, key: &str, value: &str) -> Result<String, ConfigError> {
        let record = |name: &str, v: &str| {
            self.expanded
                .borrow_mut()
                .push((name.to_string(), v.to_string()));
        };
        expand_vars(value, self.env, &record).map_err(|e| self.err(key, e))
    }

    /// `value` with a leading `~` replaced by HOME.
    pub(super) fn home(&self, key: &str, value: String) -> Result<String, ConfigError> {
        expand_home(&value, self.env).map_err(|e| self.err(key, e))
    }
}

/// `Some(trimmed)` unless blank: an empty string in the file means "not set".
pub(super) fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_string())
}

/// `${VAR}` from the environment. An unset variable is an error that names it.
fn expand_vars(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    record: &dyn Fn(&str, &str),
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated `${` (write `${NAME}`)".into());
        };
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`${{{name}}}` is not a valid variable reference"));
        }
        match env(name) {
            Some(v) => {
                record(name, &v);
                out.push_str(&v);
            }
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Each `?query` of a URL in `text` shown as `?…`: a query may carry a key.
fn hide_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_url = false;
    let mut hiding = false;
    for (i, c) in text.char_indices() {
        if !in_url && (text[i..].starts_with("http://") || text[i..].starts_with("https://")) {
            in_url = true;
        }
        let ends = c.is_whitespace() || c == '`' || c == '"' || c == '\'';
        if ends {
            in_url = false;
            hiding = false;
        }
        if in_url && c == '?' && !hiding {
            hiding = true;
            out.push_str("?…");
            continue;
        }
        if !hiding {
            out.push(c);
        }
    }
    out
}

fn expand_home(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    match value.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match env("HOME") {
            Some(home) => Ok(format!("{home}{rest}")),
            None => Err("starts with `~` but HOME is not set".into()),
        },
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_tier_line_is_found_by_capacity_and_occurrence() {
        let text = "services: {}\ntiers:\n  - capacity: 100\n    replicas: {}\n  - capacity: 100 # again\n  - { capacity: 300, replicas: {} }\n";
        let doc = Document::new(text, &no_env);
        assert_eq!(doc.tier_line(100, 0), Some(3));
        assert_eq!(doc.tier_line(100, 1), Some(5));
        assert_eq!(doc.tier_line(300, 0), Some(6));
        assert_eq!(doc.tier_line(200, 0), None);
        let flow = "tiers: [{ capacity: 5, replicas: {} }]\n";
        assert_eq!(Document::new(flow, &no_env).tier_line(5, 0), Some(1));
        // No `tiers:` key (the built-in table): no line.
        assert_eq!(
            Document::new("capacity: 5\n", &no_env).tier_line(5, 0),
            None
        );
    }

    #[test]
    fn queries_of_urls_are_hidden_and_expanded_values_put_back() {
        assert_eq!(
            hide_queries("GET `https://h/p?key=abc` failed; http://x/?a=1 b"),
            "GET `https://h/p?…` failed; http://x/?… b"
        );
        assert_eq!(hide_queries("no url? none"), "no url? none");
        let env = |n: &str| (n == "PW").then(|| "hunter2".to_string());
        let doc = Document::new("", &env);
        assert_eq!(doc.expand("k", "u:${PW}").unwrap(), "u:hunter2");
        assert_eq!(doc.redact("bad `u:hunter2`"), "bad `u:${PW}`");
    }

    #[test]
    fn a_bad_variable_reference_is_named() {
        let doc = Document::new("mysql_pwd: x\n", &no_env);
        let e = doc.expand("mysql_pwd", "${A-B}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mysql_pwd (line 1): `${A-B}` is not a valid variable reference"
        );
        let e = doc.expand("mysql_pwd", "${OPEN").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e}");
        assert!(doc.home("kube_file_path", "~/k".into()).is_err());
        assert_eq!(doc.home("kube_file_path", "~x/k".into()).unwrap(), "~x/k");
    }
}
