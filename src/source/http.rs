//! `users.source: http`: GET a URL and read a number at a JSON pointer (the
//! Python tool's mock server answers `{"online_users": N}`).
//!
//! Also the blocking-HTTP plumbing the three sources share: one ureq agent
//! per source, a deadline for the whole read enforced both inside ureq and
//! around the blocking thread, and the mapping of transport failures onto
//! [`MetricError`] kinds.

pub(super) use crate::quote::{seconds, shorten, snippet};
use std::time::{Duration, Instant};

use hpa_tier_core::tiers::MAX_COUNT;
use serde_json::Value;

use super::{MetricError, MetricSource};

/// How much longer than the configured timeout the async side waits for the
/// blocking thread before giving up on it. ureq's own global timeout normally
/// ends the call first; this only bounds a thread that is stuck elsewhere.
const GRACE: Duration = Duration::from_millis(250);

/// Reads the number of online users from any HTTP endpoint that returns JSON.
/// Clones share the agent and its connection pool.
#[derive(Clone)]
pub struct HttpSource {
    url: String,
    pointer: String,
    timeout: Duration,
    agent: ureq::Agent,
}

impl HttpSource {
    /// `json_pointer` is an RFC 6901 pointer (`/online_users`, `/data/0/count`;
    /// empty: the whole document is the number).
    pub fn new(url: &str, json_pointer: &str, timeout: Duration) -> HttpSource {
        HttpSource {
            url: url.to_string(),
            pointer: json_pointer.to_string(),
            timeout,
            agent: agent(),
        }
    }

    fn read(&self, deadline: Instant) -> Result<u32, MetricError> {
        let what = format!("users URL {}", display_url(&self.url));
        let resp = self
            .agent
            .get(&self.url)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(remaining(deadline, &what, self.timeout)?))
            .build()
            .call()
            .map_err(|e| transport_error(&what, e, self.timeout))?;
        let (status, body) = read_body(resp, &what, self.timeout)?;
        if !(200..300).contains(&status) {
            return Err(status_error(&what, status, &snippet(&body)));
        }
        users_at_pointer(&body, &self.pointer)
            .map_err(|e| MetricError::Garbage(format!("{what}: {e}")))
    }
}

impl MetricSource for HttpSource {
    async fn online_users(&self) -> Result<u32, MetricError> {
        let this = self.clone();
        off_runtime(
            &format!("users URL {}", display_url(&self.url)),
            self.timeout,
            move |deadline| this.read(deadline),
        )
        .await
    }

    fn describe(&self) -> String {
        format!(
            "HTTP {} at {}",
            display_url(&self.url),
            pointer_label(&self.pointer)
        )
    }
}

fn pointer_label(p: &str) -> &str {
    if p.is_empty() { "(whole document)" } else { p }
}

/// Parses `body` as JSON and reads the number at `pointer`: the whole of
/// what the HTTP source makes of an answer (public for the fuzz tests).
pub fn users_at_pointer(body: &str, pointer: &str) -> Result<u32, String> {
    let doc: Value = serde_json::from_str(body)
        .map_err(|e| format!("the answer is not JSON ({e}): {}", snippet(body)))?;
    let Some(v) = doc.pointer(pointer) else {
        let keys = match &doc {
            Value::Object(m) if !m.is_empty() => {
                let mut ks: Vec<&str> = m.keys().map(String::as_str).take(10).collect();
                ks.sort_unstable();
                format!(" (its top-level keys: {})", ks.join(", "))
            }
            _ => String::new(),
        };
        return Err(format!(
            "the answer has nothing at users.http.json_pointer `{pointer}`{keys}"
        ));
    };
    users_from_json(v).map_err(|e| format!("the value at `{}` {e}", pointer_label(pointer)))
}

/// A count of users from a JSON number or numeric string. Fractions are
/// rounded (averaged or rate-based queries give them); negatives, NaN and
/// infinities are not a number of people.
pub(super) fn users_from_json(v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => u32::try_from(u)
                .ok()
                .filter(|u| *u <= MAX_COUNT)
                .ok_or_else(|| format!("is {u}, more than {MAX_COUNT} (2^31-1) users")),
            None => users_from_f64(n.as_f64().unwrap_or(f64::NAN), &n.to_string()),
        },
        Value::String(s) => users_from_str(s),
        Value::Null => Err("is null, not a number".into()),
        Value::Bool(b) => Err(format!("is {b}, not a number")),
        Value::Array(_) => Err("is an array, not a number".into()),
        Value::Object(_) => Err("is an object, not a number".into()),
    }
}

/// A count of users from a numeric string (`"42"`, `"41.7"`, Prometheus' `"NaN"`).
pub(super) fn users_from_str(s: &str) -> Result<u32, String> {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(f) => users_from_f64(f, t),
        Err(_) => Err(format!("is the string {:?}, not a number", shorten(s, 40))),
    }
}

fn users_from_f64(f: f64, shown: &str) -> Result<u32, String> {
    if !f.is_finite() {
        return Err(format!("is {shown}, not a finite number"));
    }
    if f < 0.0 {
        return Err(format!("is {shown}, a negative number of users"));
    }
    let r = f.round();
    if r > f64::from(MAX_COUNT) {
        return Err(format!("is {shown}, more than {MAX_COUNT} (2^31-1) users"));
    }
    // In range and whole, so the conversion is exact.
    Ok(r as u32)
}

// ---------------------------------------------------------------------------
// Shared plumbing.

/// One agent per source: the token call and the report call of GA reuse its
/// connection. Statuses are not errors here: the body of a 4xx/5xx says why.
pub(super) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(concat!("hpa-tier/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Runs `read` on tokio's blocking pool — never on an async worker — and
/// gives up `timeout` (plus a little grace) after the start.
pub(super) async fn off_runtime<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    read: impl FnOnce(Instant) -> Result<T, MetricError> + Send + 'static,
) -> Result<T, MetricError> {
    let deadline = Instant::now() + timeout;
    let task = tokio::task::spawn_blocking(move || read(deadline));
    match tokio::time::timeout(timeout + GRACE, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => match join.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(MetricError::Http(format!(
                "{what}: the read was cancelled: {e}"
            ))),
        },
        Err(_) => Err(timeout_error(what, timeout)),
    }
}

/// What is left of the read's time budget, or the timeout error if nothing is.
pub(super) fn remaining(
    deadline: Instant,
    what: &str,
    timeout: Duration,
) -> Result<Duration, MetricError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timeout_error(what, timeout))
    } else {
        Ok(left)
    }
}

pub(super) fn timeout_error(what: &str, timeout: Duration) -> MetricError {
    MetricError::Timeout(format!(
        "{what}: no answer within {} (timeout_seconds); nothing was changed",
        seconds(timeout)
    ))
}

/// Maps a ureq failure (no HTTP status to look at) onto a metric error kind.
pub(super) fn transport_error(what: &str, e: ureq::Error, timeout: Duration) -> MetricError {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(_) => timeout_error(what, timeout),
        ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            timeout_error(what, timeout)
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            ) =>
        {
            MetricError::Unreachable(format!(
                "{what}: cannot connect ({io}); is it up and reachable from here?"
            ))
        }
        ureq::Error::HostNotFound => MetricError::Unreachable(format!(
            "{what}: the host name does not resolve (check DNS and the URL)"
        )),
        ureq::Error::ConnectionFailed => {
            MetricError::Unreachable(format!("{what}: cannot connect"))
        }
        ureq::Error::Tls(msg) => MetricError::Unreachable(format!("{what}: TLS failed: {msg}")),
        ureq::Error::Rustls(err) => MetricError::Unreachable(format!("{what}: TLS failed: {err}")),
        other => MetricError::Http(format!("{what}: {other}")),
    }
}

/// Reads a response's status and body (bodies here are small JSON documents;
/// ureq's default 10 MB limit stands).
pub(super) fn read_body(
    mut resp: http::Response<ureq::Body>,
    what: &str,
    timeout: Duration,
) -> Result<(u16, String), MetricError> {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| transport_error(what, e, timeout))?;
    Ok((status, body))
}

/// The error kind for a non-2xx status of a plain HTTP endpoint.
pub(super) fn status_error(what: &str, status: u16, detail: &str) -> MetricError {
    let msg = format!("{what}: HTTP {status}: {detail}");
    match status {
        401 | 403 => MetricError::Denied(format!(
            "{msg} (the endpoint wants credentials this tool does not send)"
        )),
        429 => MetricError::RateLimited(msg),
        500..=599 => MetricError::Server(msg),
        _ => MetricError::Http(msg),
    }
}

/// A URL as it may appear in messages: without user info or query string,
/// which sometimes carry tokens.
pub(super) fn display_url(url: &str) -> String {
    let (bare, hidden) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], "?…"),
        None => (url, ""),
    };
    let (scheme, rest) = bare.split_once("://").unwrap_or(("http", bare));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}{hidden}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_numeric_strings_are_user_counts() {
        let cases: &[(Value, Result<u32, &str>)] = &[
            (json!(0), Ok(0)),
            (json!(1234), Ok(1234)),
            (json!(41.6), Ok(42)),
            (json!("77"), Ok(77)),
            (json!(" 12.4 "), Ok(12)),
            (json!("1e3"), Ok(1000)),
            (json!(-1), Err("negative")),
            (json!("-3"), Err("negative")),
            (json!("NaN"), Err("not a finite number")),
            (json!("+Inf"), Err("not a finite number")),
            (json!("lots"), Err("not a number")),
            (json!(null), Err("null")),
            (json!(true), Err("not a number")),
            (json!([1]), Err("array")),
            (json!({"n": 1}), Err("object")),
            (json!(5_000_000_000u64), Err("more than")),
            // Past Kubernetes' int32 and the records' bound, however written.
            (json!(2_147_483_647u32), Ok(2_147_483_647)),
            (
                json!(2_147_483_648u32),
                Err("is 2147483648, more than 2147483647 (2^31-1) users"),
            ),
            (json!(2_147_483_647.4), Ok(2_147_483_647)),
            (json!(2_147_483_647.5), Err("more than 2147483647")),
            (json!(1e308), Err("is 1e+308, more than")),
            (json!("1e308"), Err("more than")),
            (json!(-0.4), Err("negative")),
            (json!(-1e-300), Err("negative")),
            (json!(-0.0), Ok(0)),
            (json!(0.49), Ok(0)),
            (json!("-Inf"), Err("not a finite number")),
            (json!("infinity"), Err("not a finite number")),
            (json!("0x10"), Err("not a number")),
            (json!(""), Err("not a number")),
            (json!(-9_223_372_036_854_775_808i64), Err("negative")),
            (json!(u64::MAX), Err("more than")),
        ];
        for (v, want) in cases {
            match (users_from_json(v), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{v}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{v}: {e}"),
                (got, w) => panic!("{v}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn the_pointer_selects_the_value() {
        assert_eq!(
            users_at_pointer(r#"{"online_users": 321}"#, "/online_users"),
            Ok(321)
        );
        assert_eq!(
            users_at_pointer(r#"{"data": [{"n": "9"}]}"#, "/data/0/n"),
            Ok(9)
        );
        assert_eq!(users_at_pointer("17", ""), Ok(17));
        let e = users_at_pointer(r#"{"users": 1, "ts": 2}"#, "/online_users").unwrap_err();
        assert!(
            e.contains("`/online_users`") && e.contains("ts, users"),
            "{e}"
        );
        let e = users_at_pointer("<html>oops</html>", "/online_users").unwrap_err();
        assert!(e.contains("not JSON") && e.contains("<html>oops"), "{e}");
    }

    #[test]
    fn urls_in_messages_drop_credentials_and_queries() {
        assert_eq!(
            display_url("http://user:pw@host:5000/api/online-users?token=abc"),
            "http://host:5000/api/online-users?…"
        );
        assert_eq!(display_url("https://p.example/x"), "https://p.example/x");
        assert_eq!(display_url("http://p:9090"), "http://p:9090");
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert!(matches!(
            status_error("u", 503, "x"),
            MetricError::Server(_)
        ));
        assert!(matches!(
            status_error("u", 429, "x"),
            MetricError::RateLimited(_)
        ));
        assert!(matches!(
            status_error("u", 403, "x"),
            MetricError::Denied(_)
        ));
        assert!(
            matches!(status_error("u", 404, "x"), MetricError::Http(m) if m.contains("HTTP 404"))
        );
    }

    #[test]
    fn snippets_are_short_and_on_one_line() {
        let s = snippet(&format!("a\n  b{}", "c".repeat(500)));
        assert!(s.starts_with("a b") && s.chars().count() == 201 && s.ends_with('…'));
        assert_eq!(snippet("  \n"), "(empty body)");
    }
}
