//! `users.source: ga` (the default): GA4 realtime `activeUsers`.
//!
//! The tool signs its own OAuth assertion from the service-account key file
//! (RS256 JWT, as Google's client libraries do), trades it at the key's
//! `token_uri` for an access token, and asks the Data API's
//! `runRealtimeReport`; each of those calls has `timeout_seconds` of its own.
//! The access token is kept — in memory, and in a file beside `state_file`
//! ([`cache`]) — until a minute before it expires, so a run within its hour
//! makes one call to Google. A kept token that the report refuses (revoked,
//! or expired early) is replaced once and the report asked again. Every
//! refusal is turned into a [`MetricError`] that says what to fix. The key
//! and the tokens never reach a message or a log.

mod cache;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use super::http::{agent, display_url, off_runtime, read_body, shorten, snippet, transport_error};
use super::{MetricError, MetricSource};
use crate::config::{GaSettings, Secret};

pub use cache::{MAX_LIFETIME_SECS, REFRESH_MARGIN_SECS};

/// Where a key without `token_uri` trades its assertion.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Read-only access to Analytics data: all this tool needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
/// The most users a report may say: the run record's `users` is a signed
/// 32-bit column, and no property has more people online at once.
pub const MAX_USERS: u32 = i32::MAX as u32;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google refuses assertions valid for longer than an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Calls one read may make in a row: a report refusing the kept token, a new
/// token, the report again.
const MAX_CALLS: u32 = 3;
/// Google's tokens are a few hundred bytes; a header carries a few KiB.
const MAX_TOKEN_BYTES: usize = 8192;
const REPORT_KIND: &str = "analyticsData#runRealtimeReport";

/// The GA4 realtime source. Clones share the agent and the access token.
#[derive(Clone)]
pub struct Ga {
    inner: Arc<Inner>,
}

struct Inner {
    /// `properties/<digits>`.
    property: String,
    minutes: Option<u32>,
    report_url: String,
    account: Account,
    /// Per call.
    timeout: Duration,
    agent: ureq::Agent,
    /// The token this process holds (a source may be read more than once).
    token: Mutex<Option<AccessToken>>,
    /// The token between runs; `None`: not configured.
    cache: Option<cache::TokenCache>,
}

/// The service account of the key file.
struct Account {
    key_path: String,
    client_email: String,
    key_id: String,
    token_uri: String,
    signing_key: EncodingKey,
}

#[derive(Clone)]
struct AccessToken {
    value: Secret,
    /// Unix seconds: when the token endpoint said it stops working.
    expires_at: u64,
}

/// What the key file says, before the private key is turned into a signer.
#[derive(Debug, PartialEq, Eq)]
struct KeyFields {
    client_email: String,
    private_key_id: String,
    private_key: Secret,
    token_uri: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl Ga {
    /// Reads and checks the key file; no network yet.
    pub fn new(settings: &GaSettings, timeout: Duration) -> Result<Ga, MetricError> {
        let key_path = settings.key_file.display().to_string();
        let bad = |reason: String| MetricError::KeyFile {
            path: key_path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&settings.key_file)
            .map_err(|e| bad(format!("cannot read it: {e}")))?;
        let fields = parse_key_file(&text).map_err(bad)?;
        let not_rsa = || {
            bad(
                "`private_key` is not a usable RSA private key in PEM form; the file may be \
                 truncated or edited: download a new JSON key for the service account"
                    .into(),
            )
        };
        let signing_key = EncodingKey::from_rsa_pem(fields.private_key.expose().as_bytes())
            .map_err(|_| not_rsa())?;
        let account = Account {
            key_path: key_path.clone(),
            client_email: fields.client_email,
            key_id: fields.private_key_id,
            token_uri: fields.token_uri,
            signing_key,
        };
        // jsonwebtoken hands the key to ring only when signing: sign once now
        // so a damaged key is reported as such, not as a token failure later.
        account.assertion(now_secs()).map_err(|_| not_rsa())?;
        let owner = cache::account_key(
            &account.client_email,
            &account.key_id,
            &account.token_uri,
            SCOPE,
        );
        Ok(Ga {
            inner: Arc::new(Inner {
                report_url: format!(
                    "{}/v1beta/{}:runRealtimeReport",
                    settings.api_url.trim_end_matches('/'),
                    settings.property
                ),
                property: settings.property.clone(),
                minutes: settings.minutes,
                account,
                timeout,
                agent: agent(),
                token: Mutex::new(None),
                cache: cache::TokenCache::new(&settings.token_cache, owner),
            }),
        })
    }
}

impl MetricSource for Ga {
    async fn online_users(&self) -> Result<u32, MetricError> {
        let inner = self.inner.clone();
        let what = format!("GA4 realtime report for {}", self.inner.property);
        // Each call is bounded by its own timeout inside ureq; this only
        // bounds the blocking thread, at the longest sequence of calls.
        off_runtime(
            &what,
            self.inner.timeout.saturating_mul(MAX_CALLS),
            move |_| inner.read(),
        )
        .await
    }

    fn describe(&self) -> String {
        match self.inner.minutes {
            Some(m) => format!("GA4 {} (last {m} min)", self.inner.property),
            None => format!("GA4 {} (last 30 min, GA's default)", self.inner.property),
        }
    }
}

impl Account {
    /// The signed assertion Google's token endpoint trades for an access token.
    fn assertion(&self, iat: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat.saturating_add(ASSERTION_LIFETIME_SECS),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key)
    }
}

impl Inner {
    /// A kept token and the report (one call), or a new token and the report
    /// (two); a kept token the report refuses costs one more call.
    fn read(&self) -> Result<u32, MetricError> {
        let what = format!(
            "GA4 Data API {} for {}",
            display_url(&self.report_url),
            self.property
        );
        if let Some(kept) = self.kept_token() {
            let (status, body) = self.report(&kept.value, &what)?;
            if status != 401 {
                return report_answer(status, &body, &self.who(), &what);
            }
            tracing::info!(
                reason = %refusal_reason(&body),
                "GA refused the kept access token (revoked, or expired early); asking for a new one"
            );
            self.forget();
        }
        let fresh = self.fresh_token()?;
        let (status, body) = self.report(&fresh.value, &what)?;
        if status == 401 {
            self.forget();
        }
        report_answer(status, &body, &self.who(), &what)
    }

    fn held(&self) -> MutexGuard<'_, Option<AccessToken>> {
        // Nothing panics while holding it; should something, the token is
        // still whole.
        self.token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token held in memory, else the cache file's, while reusable.
    fn kept_token(&self) -> Option<AccessToken> {
        let now = now_secs();
        let mut held = self.held();
        if let Some(t) = &*held
            && cache::reusable(t.expires_at, now)
        {
            return Some(t.clone());
        }
        let (value, expires_at) = self.cache.as_ref()?.load(now)?;
        let token = AccessToken { value, expires_at };
        *held = Some(token.clone());
        Some(token)
    }

    /// A refused token is kept neither here nor for the next run.
    fn forget(&self) {
        *self.held() = None;
        if let Some(c) = &self.cache {
            c.discard();
        }
    }

    /// A new token from the token endpoint, kept for reuse.
    fn fresh_token(&self) -> Result<AccessToken, MetricError> {
        let a = &self.account;
        let what = format!("Google token endpoint {}", display_url(&a.token_uri));
        // Its lifetime counts from before the request: never longer than
        // `expires_in` said.
        let requested_at = now_secs();
        let jwt = a
            .assertion(requested_at)
            .map_err(|e| MetricError::KeyFile {
                path: a.key_path.clone(),
                reason: format!("signing the token request failed: {e}"),
            })?;
        let resp = self
            .agent
            .post(&a.token_uri)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(self.timeout))
            .build()
            .send_form([("grant_type", GRANT_TYPE), ("assertion", jwt.as_str())])
            .map_err(|e| transport_error(&what, e, self.timeout))?;
        let (status, body) = read_body(resp, &what, self.timeout)?;
        let (value, lifetime) = token_answer(status, &body, &self.who(), &what)?;
        let token = AccessToken {
            value,
            expires_at: requested_at.saturating_add(lifetime),
        };
        tracing::debug!(lifetime_secs = lifetime, "got a new GA access token");
        *self.held() = Some(token.clone());
        if let Some(c) = &self.cache
            && cache::reusable(token.expires_at, now_secs())
        {
            c.store(&token.value, token.expires_at);
        }
        Ok(token)
    }

    /// One `runRealtimeReport` call: its status and body.
    fn report(&self, token: &Secret, what: &str) -> Result<(u16, String), MetricError> {
        let resp = self
            .agent
            .post(&self.report_url)
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(self.timeout))
            .build()
            .send_json(report_request(self.minutes))
            .map_err(|e| transport_error(what, e, self.timeout))?;
        read_body(resp, what, self.timeout)
    }

    fn who(&self) -> Who<'_> {
        Who {
            key_path: &self.account.key_path,
            client_email: &self.account.client_email,
            key_id: &self.account.key_id,
            property: &self.property,
        }
    }
}

/// Who is asking for what, for messages.
struct Who<'a> {
    key_path: &'a str,
    client_email: &'a str,
    key_id: &'a str,
    property: &'a str,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks the key file's JSON. Reasons name fields, never their values,
/// except harmless ones (the credential type).
fn parse_key_file(text: &str) -> Result<KeyFields, String> {
    // Syntax errors from serde_json carry positions only, not the text.
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        format!("is not JSON ({e}); expected the JSON key downloaded for the service account")
    })?;
    let Value::Object(obj) = doc else {
        return Err("is not a JSON object; expected the JSON key of a service account".into());
    };
    let field = |name: &str| -> Result<String, String> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(format!("`{name}` is empty")),
            Some(_) => Err(format!("`{name}` is not a string")),
            None => Err(format!("has no `{name}`")),
        }
    };
    match obj.get("type") {
        Some(Value::String(t)) if t == "service_account" => {}
        Some(Value::String(t)) => {
            return Err(format!(
                "is a `{}` credential, not a service-account key (`\"type\": \"service_account\"`): \
                 create a JSON key for the service account (Google Cloud console → IAM → \
                 Service accounts → Keys)",
                shorten(t, 40)
            ));
        }
        _ => {
            return Err(
                "has no `\"type\": \"service_account\"`; expected the JSON key of a service account"
                    .into(),
            );
        }
    }
    let client_email = field("client_email")?;
    let private_key_id = field("private_key_id")?;
    let private_key = Secret::new(field("private_key")?);
    let token_uri = match obj.get("token_uri") {
        None | Some(Value::Null) => DEFAULT_TOKEN_URI.to_string(),
        Some(_) => {
            let t = field("token_uri")?;
            crate::config::check_url("`token_uri`", &t)?;
            t
        }
    };
    Ok(KeyFields {
        client_email,
        private_key_id,
        private_key,
        token_uri,
    })
}

/// The request body: `activeUsers`, over `minutes` when configured.
fn report_request(minutes: Option<u32>) -> Value {
    let mut body = json!({ "metrics": [{ "name": "activeUsers" }] });
    if let Some(m) = minutes {
        // Minute 0 is the current one: a window of m minutes starts m-1 ago.
        body["minuteRanges"] = json!([{
            "startMinutesAgo": m.saturating_sub(1),
            "endMinutesAgo": 0
        }]);
    }
    body
}

/// The token endpoint's answer: the access token and how many seconds it
/// is valid (0: use it for this run only), or the error a person can act on.
fn token_answer(
    status: u16,
    body: &str,
    who: &Who,
    what: &str,
) -> Result<(Secret, u64), MetricError> {
    let doc: Option<Value> = serde_json::from_str(body).ok();
    if (200..300).contains(&status) {
        return granted(doc.as_ref(), body)
            .map_err(|e| MetricError::Garbage(format!("{what} answered {status} {e}")));
    }
    let error = doc
        .as_ref()
        .and_then(|d| d.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let description = doc
        .as_ref()
        .and_then(|d| d.get("error_description"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let said = if error.is_empty() {
        snippet(body)
    } else if description.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {}", shorten(description, 300))
    };
    let account = format!(
        "service account {} (key id {}, key file {})",
        who.client_email, who.key_id, who.key_path
    );
    Err(match (status, error) {
        (_, "invalid_grant") => MetricError::InvalidGrant(format!(
            "Google refused the key of {account}: {said}. Either the key is wrong, deleted or \
             rotated (create a new JSON key for {} and point key_file_location at it), or this \
             machine's clock is off (the assertion is valid for one hour from now; check NTP)",
            who.client_email
        )),
        (429, _) => MetricError::RateLimited(format!(
            "{what} is rate limiting {account} (HTTP 429: {said}); the next run retries"
        )),
        (500..=599, _) => MetricError::Server(format!(
            "{what} failed (HTTP {status}: {said}); a problem on Google's side, the next run retries"
        )),
        (401 | 403, _) | (_, "invalid_client" | "unauthorized_client") => {
            MetricError::Denied(format!(
                "{what} refused {account} (HTTP {status}: {said}); the service account may be \
                 disabled or deleted: check it in Google Cloud IAM"
            ))
        }
        _ => MetricError::Http(format!(
            "{what} refused the token request of {account} (HTTP {status}: {said})"
        )),
    })
}

/// A 2xx token answer: the token and its lifetime. Errors never carry the
/// token; the body is shown only when it has none.
fn granted(doc: Option<&Value>, body: &str) -> Result<(Secret, u64), String> {
    let Some(Value::Object(doc)) = doc else {
        return Err(format!(
            "with something that is not a token answer: {}",
            snippet(body)
        ));
    };
    let token = match doc.get("access_token") {
        Some(Value::String(t)) => t,
        // A body without a token has no secret to leak.
        None => return Err(format!("without an access token: {}", snippet(body))),
        Some(_) => return Err("with an access token that is not a string".into()),
    };
    check_token(token).map_err(|why| format!("with an access token that cannot be sent: {why}"))?;
    let lifetime =
        token_lifetime(doc.get("expires_in")).map_err(|why| format!("with `expires_in` {why}"))?;
    Ok((Secret::new(token.clone()), lifetime))
}

/// An access token must fit an `Authorization` header: visible ASCII, a few
/// KiB at most. Reasons never quote it.
fn check_token(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("it is empty".into());
    }
    if t.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "it has {} bytes, more than {MAX_TOKEN_BYTES}",
            t.len()
        ));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("it has characters a header cannot carry".into());
    }
    Ok(())
}

/// `expires_in` in whole seconds, at most [`MAX_LIFETIME_SECS`] (believing
/// less than Google said only costs a token request). Missing: use the token
/// for this run only. Negative or not a number: an error.
fn token_lifetime(v: Option<&Value>) -> Result<u64, String> {
    let cap = |secs: u64| secs.min(MAX_LIFETIME_SECS);
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => Ok(cap(u)),
            // `as` floors and saturates: a huge value becomes the cap.
            (None, Some(f)) if f >= 0.0 => Ok(cap(f as u64)),
            _ => Err(format!("{n}: negative, so the token has already expired")),
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(cap)
            .map_err(|_| format!("{:?}, not a number of seconds", shorten(s, 20))),
        Some(other) => Err(format!("{}, not a number of seconds", json_kind(other))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Why a report was refused, for the log: the `ErrorInfo` reason Google
/// gives (`ACCESS_TOKEN_EXPIRED`), else the status.
fn refusal_reason(body: &str) -> String {
    let doc: Option<Value> = serde_json::from_str(body).ok();
    let error = doc.as_ref().and_then(|d| d.get("error"));
    let reason = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .and_then(|ds| {
            ds.iter()
                .find_map(|d| d.get("reason").and_then(Value::as_str))
        });
    let status = error.and_then(|e| e.get("status")).and_then(Value::as_str);
    shorten(reason.or(status).unwrap_or("HTTP 401"), 60)
}

/// The Data API's answer: the number of active users, or the error a person
/// can act on.
fn report_answer(status: u16, body: &str, who: &Who, what: &str) -> Result<u32, MetricError> {
    if (200..300).contains(&status) {
        return users_in_report(body).map_err(|e| {
            MetricError::Garbage(format!(
                "{what} answered {status} with something that is not a realtime report ({e}): {}",
                snippet(body)
            ))
        });
    }
    // Google's errors are a google.rpc.Status: {"error": {code, message, status}}.
    let rpc = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|d| d.get("error").cloned())
        .filter(Value::is_object);
    let said = match &rpc {
        Some(e) => {
            let code = e.get("status").and_then(Value::as_str).unwrap_or("");
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            format!("{status} {code}: \"{}\"", shorten(msg, 400))
        }
        None => format!("HTTP {status}: {}", snippet(body)),
    };
    let (email, property) = (who.client_email, who.property);
    let add_user = format!(
        "{email} must be added as a user (Viewer is enough) of the GA4 property {property}: \
         GA Admin → Property access management"
    );
    Err(match status {
        401 => MetricError::Denied(format!(
            "{what}: Google did not accept the access token of {email} ({said}). The token was \
             just issued, so the service account may have been disabled or its key deleted; \
             check it in Google Cloud IAM. Also, {add_user}"
        )),
        403 => MetricError::Denied(format!(
            "{what}: service account {email} may not read {property} ({said}). {add_user}; \
             also check property_id and that the Google Analytics Data API is enabled in the \
             service account's Cloud project"
        )),
        429 => MetricError::RateLimited(format!(
            "{what}: GA4 quota exhausted ({said}). The realtime quota of {property} refills \
             over the hour/day; until then runs change nothing"
        )),
        500..=599 => MetricError::Server(format!(
            "{what}: Google failed ({said}); a problem on Google's side, the next run retries"
        )),
        400 => MetricError::Http(format!(
            "{what}: Google rejected the request ({said}); check property_id and users.ga_minutes \
             (1..30, up to 60 on GA4 360 properties)"
        )),
        404 => MetricError::Http(format!(
            "{what}: Google does not know {property} ({said}); check property_id"
        )),
        _ => MetricError::Http(format!("{what}: {said}")),
    })
}

/// `activeUsers` from a `runRealtimeReport` response. GA leaves `rows` out
/// when nobody is online.
fn users_in_report(body: &str) -> Result<u32, String> {
    let doc: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(obj) = doc else {
        return Err("not a JSON object".into());
    };
    if let Some(kind) = obj.get("kind")
        && kind != REPORT_KIND
    {
        return Err(format!("kind is {kind}, not \"{REPORT_KIND}\""));
    }
    let headers = obj
        .get("metricHeaders")
        .and_then(Value::as_array)
        .ok_or("no metricHeaders")?;
    let column = headers
        .iter()
        .position(|h| h.get("name").and_then(Value::as_str) == Some("activeUsers"))
        .ok_or("no activeUsers among the metricHeaders")?;
    let row_count = match obj.get("rowCount") {
        None => 0,
        Some(n) => n
            .as_u64()
            .ok_or_else(|| format!("rowCount is {}, not a count", shorten(&n.to_string(), 40)))?,
    };
    let rows = match obj.get("rows") {
        None if row_count == 0 => return Ok(0),
        None => return Err(format!("rowCount is {row_count} but there are no rows")),
        Some(Value::Array(rows)) => rows,
        Some(_) => return Err("rows is not a list".into()),
    };
    match rows.as_slice() {
        [] => Ok(0),
        [row] => {
            let v = row
                .get("metricValues")
                .and_then(|m| m.get(column))
                .and_then(|m| m.get("value"))
                .ok_or("the row has no activeUsers value")?;
            match v {
                Value::String(s) => users_count(s),
                Value::Number(n) if n.is_u64() => users_count(&n.to_string()),
                Value::Number(n) => Err(format!("activeUsers is {n}, not a count")),
                other => Err(format!("activeUsers is {}, not a count", json_kind(other))),
            }
        }
        // The request has no dimensions, so GA answers with one row.
        more => Err(format!("{} rows where one was expected", more.len())),
    }
}

/// A count of people as GA writes it: decimal digits, at most [`MAX_USERS`].
fn users_count(s: &str) -> Result<u32, String> {
    let shown = shorten(s, 40);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("activeUsers is {shown:?}, not a count"));
    }
    match s.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_USERS) => u32::try_from(n).map_err(|e| e.to_string()),
        _ => Err(format!(
            "activeUsers is {shown}, more than {MAX_USERS}: not a believable count"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_json(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut v = json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "0123abcd",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n",
            "client_email": "hpa@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token"
        });
        edit(v.as_object_mut().unwrap());
        v.to_string()
    }

    #[test]
    fn a_service_account_key_is_read() {
        let k = parse_key_file(&key_json(|_| {})).unwrap();
        assert_eq!(k.client_email, "hpa@p.iam.gserviceaccount.com");
        assert_eq!(k.private_key_id, "0123abcd");
        assert_eq!(k.token_uri, DEFAULT_TOKEN_URI);
        let k = parse_key_file(&key_json(|m| {
            m.remove("token_uri");
        }))
        .unwrap();
        assert_eq!(k.token_uri, DEFAULT_TOKEN_URI);
        let k = parse_key_file(&key_json(|m| {
            m.insert("token_uri".into(), json!("http://127.0.0.1:9/token"));
        }))
        .unwrap();
        assert_eq!(k.token_uri, "http://127.0.0.1:9/token");
    }

    #[test]
    fn bad_key_files_name_the_problem_without_the_key() {
        type Edit = fn(&mut serde_json::Map<String, Value>);
        let cases: &[(Edit, &str)] = &[
            (|m| drop(m.remove("type")), "service_account"),
            (
                |m| drop(m.insert("type".into(), json!("authorized_user"))),
                "is a `authorized_user` credential",
            ),
            (|m| drop(m.remove("client_email")), "has no `client_email`"),
            (|m| drop(m.remove("private_key")), "has no `private_key`"),
            (
                |m| drop(m.remove("private_key_id")),
                "has no `private_key_id`",
            ),
            (
                |m| drop(m.insert("private_key".into(), json!(42))),
                "`private_key` is not a string",
            ),
            (
                |m| drop(m.insert("client_email".into(), json!(" "))),
                "`client_email` is empty",
            ),
            (
                |m| drop(m.insert("token_uri".into(), json!("oauth2/token"))),
                "`token_uri`",
            ),
        ];
        for (edit, want) in cases {
            let e = parse_key_file(&key_json(*edit)).unwrap_err();
            assert!(e.contains(want), "want {want:?}: {e}");
            assert!(!e.contains("MIIE"), "{e}");
        }
        let e = parse_key_file("{\"private_key\": \"MIIE").unwrap_err();
        assert!(e.contains("is not JSON") && !e.contains("MIIE"), "{e}");
        assert!(
            parse_key_file("[1]")
                .unwrap_err()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn the_window_is_sent_only_when_configured() {
        assert_eq!(
            report_request(None),
            json!({"metrics": [{"name": "activeUsers"}]})
        );
        assert_eq!(
            report_request(Some(30))["minuteRanges"],
            json!([{"startMinutesAgo": 29, "endMinutesAgo": 0}])
        );
        assert_eq!(
            report_request(Some(1))["minuteRanges"][0]["startMinutesAgo"],
            0
        );
    }

    #[test]
    fn reports_are_read_like_google_writes_them() {
        let h = r#""metricHeaders":[{"name":"activeUsers","type":"TYPE_INTEGER"}]"#;
        let k = r#""kind":"analyticsData#runRealtimeReport""#;
        let cases: Vec<(String, Result<u32, &str>)> = vec![
            (
                format!(r#"{{{h},"rows":[{{"metricValues":[{{"value":"1234"}}]}}],"rowCount":1,{k}}}"#),
                Ok(1234),
            ),
            (format!(r#"{{{h},{k}}}"#), Ok(0)),
            (format!(r#"{{{h},"rows":[],{k}}}"#), Ok(0)),
            (
                r#"{"metricHeaders":[{"name":"x"},{"name":"activeUsers"}],"rows":[{"metricValues":[{"value":"1"},{"value":"7"}]}]}"#.into(),
                Ok(7),
            ),
            (format!(r#"{{{h},"rowCount":2,{k}}}"#), Err("no rows")),
            (format!(r#"{{{h},"rows":[{{"metricValues":[{{"value":"-4"}}]}}]}}"#), Err("not a count")),
            (format!(r#"{{{h},"rows":[{{"metricValues":[{{"value":"2.5"}}]}}]}}"#), Err("not a count")),
            (format!(r#"{{{h},"rows":[{{}}]}}"#), Err("no activeUsers value")),
            (
                format!(r#"{{{h},"rows":[{{"metricValues":[{{"value":"1"}}]}},{{"metricValues":[{{"value":"2"}}]}}]}}"#),
                Err("2 rows"),
            ),
            (r#"{"kind":"analyticsData#runReport","metricHeaders":[]}"#.into(), Err("kind")),
            (r#"{"rows":[]}"#.into(), Err("no metricHeaders")),
            (r#"{"metricHeaders":[{"name":"sessions"}]}"#.into(), Err("no activeUsers")),
            ("<html>503</html>".into(), Err("not JSON")),
            ("[]".into(), Err("not a JSON object")),
        ];
        for (body, want) in cases {
            match (users_in_report(&body), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{body}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{body}: {e}"),
                (got, w) => panic!("{body}: got {got:?}, want {w:?}"),
            }
        }
    }

    const WHO: Who = Who {
        key_path: "/secrets/ga.json",
        client_email: "hpa@p.iam.gserviceaccount.com",
        key_id: "0123abcd",
        property: "properties/42",
    };

    fn rpc(code: u16, status: &str, message: &str) -> String {
        json!({"error": {"code": code, "message": message, "status": status}}).to_string()
    }

    #[test]
    fn report_errors_say_what_to_do() {
        let e = report_answer(
            403,
            &rpc(
                403,
                "PERMISSION_DENIED",
                "User does not have sufficient permissions for this property.",
            ),
            &WHO,
            "GA",
        )
        .unwrap_err();
        let MetricError::Denied(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("hpa@p.iam.gserviceaccount.com") && m.contains("properties/42"),
            "{m}"
        );
        assert!(
            m.contains("added as a user") && m.contains("sufficient permissions"),
            "{m}"
        );

        let e = report_answer(
            401,
            &rpc(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            ),
            &WHO,
            "GA",
        )
        .unwrap_err();
        assert!(
            matches!(&e, MetricError::Denied(m) if m.contains("added as a user") && m.contains("properties/42")),
            "{e:?}"
        );

        let e = report_answer(
            429,
            &rpc(
                429,
                "RESOURCE_EXHAUSTED",
                "Exhausted property tokens per hour.",
            ),
            &WHO,
            "GA",
        )
        .unwrap_err();
        assert!(
            matches!(&e, MetricError::RateLimited(m) if m.contains("\"Exhausted property tokens per hour.\"")),
            "{e:?}"
        );

        let e = report_answer(
            503,
            &rpc(503, "UNAVAILABLE", "The service is currently unavailable."),
            &WHO,
            "GA",
        )
        .unwrap_err();
        assert!(
            matches!(&e, MetricError::Server(m) if m.contains("503 UNAVAILABLE")),
            "{e:?}"
        );

        let e = report_answer(502, "<html>Bad Gateway</html>", &WHO, "GA").unwrap_err();
        assert!(
            matches!(&e, MetricError::Server(m) if m.contains("Bad Gateway")),
            "{e:?}"
        );

        let e = report_answer(
            400,
            &rpc(400, "INVALID_ARGUMENT", "minute range"),
            &WHO,
            "GA",
        )
        .unwrap_err();
        assert!(
            matches!(&e, MetricError::Http(m) if m.contains("ga_minutes")),
            "{e:?}"
        );

        let e = report_answer(200, "not json", &WHO, "GA").unwrap_err();
        assert!(
            matches!(&e, MetricError::Garbage(m) if m.contains("not a realtime report")),
            "{e:?}"
        );
    }

    #[test]
    fn token_errors_say_what_to_do() {
        let body = r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#;
        let e = token_answer(400, body, &WHO, "token").unwrap_err();
        let MetricError::InvalidGrant(m) = e else {
            panic!("{e:?}")
        };
        for want in [
            "/secrets/ga.json",
            "0123abcd",
            "hpa@p.iam",
            "Invalid JWT Signature.",
            "rotated",
            "clock",
        ] {
            assert!(m.contains(want), "{want}: {m}");
        }
        let body =
            r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#;
        assert!(matches!(
            token_answer(401, body, &WHO, "t"),
            Err(MetricError::Denied(_))
        ));
        assert!(matches!(
            token_answer(503, "down", &WHO, "t"),
            Err(MetricError::Server(_))
        ));
        assert!(matches!(
            token_answer(429, "{}", &WHO, "t"),
            Err(MetricError::RateLimited(_))
        ));
        assert!(matches!(
            token_answer(200, "{}", &WHO, "t"),
            Err(MetricError::Garbage(_))
        ));

        let (t, life) = token_answer(
            200,
            r#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
            &WHO,
            "t",
        )
        .unwrap();
        assert_eq!((t.expose(), life), ("ya29.x", 3599));
    }

    #[test]
    fn token_lifetimes_of_any_size_are_bounded_or_refused() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("", Ok(0)),
            (r#","expires_in":null"#, Ok(0)),
            (r#","expires_in":0"#, Ok(0)),
            (r#","expires_in":3599"#, Ok(3599)),
            (r#","expires_in":"3599""#, Ok(3599)),
            (r#","expires_in":3599.9"#, Ok(3599)),
            (r#","expires_in":43200"#, Ok(MAX_LIFETIME_SECS)),
            (r#","expires_in":86400"#, Ok(MAX_LIFETIME_SECS)),
            (
                r#","expires_in":18446744073709551615"#,
                Ok(MAX_LIFETIME_SECS),
            ),
            (r#","expires_in":1e300"#, Ok(MAX_LIFETIME_SECS)),
            (
                r#","expires_in":99999999999999999999999999"#,
                Ok(MAX_LIFETIME_SECS),
            ),
            (r#","expires_in":-1"#, Err("negative")),
            (r#","expires_in":-9223372036854775808"#, Err("negative")),
            (r#","expires_in":-0.5"#, Err("negative")),
            (r#","expires_in":-1e300"#, Err("negative")),
            (
                r#","expires_in":"soon""#,
                Err("\"soon\", not a number of seconds"),
            ),
            (r#","expires_in":"-5""#, Err("not a number of seconds")),
            (r#","expires_in":true"#, Err("a boolean, not a number")),
            (r#","expires_in":[3599]"#, Err("a list, not a number")),
            (r#","expires_in":{"s":1}"#, Err("an object, not a number")),
        ];
        for (extra, want) in cases {
            let body = format!(r#"{{"access_token":"ya29.secret"{extra}}}"#);
            match (token_answer(200, &body, &WHO, "t"), want) {
                (Ok((_, got)), Ok(w)) => assert_eq!(got, *w, "{body}"),
                (Err(MetricError::Garbage(m)), Err(w)) => {
                    assert!(m.contains("`expires_in`") && m.contains(w), "{body}: {m}");
                    assert!(!m.contains("ya29.secret"), "{m}");
                }
                (got, w) => panic!("{body}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn an_access_token_that_cannot_be_sent_is_refused_without_quoting_it() {
        let long = format!(r#"{{"access_token":"ya29.{}"}}"#, "x".repeat(9000));
        let cases = [
            (r#"{"access_token":""}"#.to_string(), "empty"),
            (
                r#"{"access_token":"ya29.a b"}"#.into(),
                "characters a header",
            ),
            (
                r#"{"access_token":"ya29.a\r\nX-Evil: 1"}"#.into(),
                "characters a header",
            ),
            (r#"{"access_token":"ya29.é"}"#.into(), "characters a header"),
            (long, "more than 8192"),
            (r#"{"access_token":42}"#.into(), "not a string"),
            (r#"{"token":"ya29.a"}"#.into(), "without an access token"),
            ("[]".into(), "not a token answer"),
            ("<html>".into(), "not a token answer"),
        ];
        for (body, want) in cases {
            let e = token_answer(200, &body, &WHO, "t").unwrap_err();
            let MetricError::Garbage(m) = &e else {
                panic!("{body}: {e:?}")
            };
            assert!(m.contains(want), "{body}: {m}");
            if body.contains("access_token") {
                assert!(!m.contains("ya29"), "{m}");
            }
        }
    }

    #[test]
    fn user_counts_out_of_range_are_errors() {
        let report = |v: &str| {
            format!(
                r#"{{"metricHeaders":[{{"name":"activeUsers"}}],"rows":[{{"metricValues":[{{"value":{v}}}]}}],"rowCount":1}}"#
            )
        };
        let cases: &[(&str, Result<u32, &str>)] = &[
            (r#""0""#, Ok(0)),
            (r#""2147483647""#, Ok(MAX_USERS)),
            ("17", Ok(17)),
            (r#""2147483648""#, Err("more than 2147483647")),
            (r#""4294967296""#, Err("more than 2147483647")),
            (
                r#""99999999999999999999999999999""#,
                Err("more than 2147483647"),
            ),
            ("2147483648", Err("more than 2147483647")),
            (r#""-1""#, Err("not a count")),
            (r#""-0""#, Err("not a count")),
            (r#""2.5""#, Err("not a count")),
            (r#""1e3""#, Err("not a count")),
            (r#""+5""#, Err("not a count")),
            (r#"" 5""#, Err("not a count")),
            (r#""""#, Err("not a count")),
            (r#""NaN""#, Err("not a count")),
            ("-1", Err("not a count")),
            ("2.0", Err("not a count")),
            ("1e300", Err("not a count")),
            ("null", Err("null, not a count")),
            ("[1]", Err("a list, not a count")),
        ];
        for (v, want) in cases {
            let body = report(v);
            match (users_in_report(&body), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{v}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{v}: {e}"),
                (got, w) => panic!("{v}: got {got:?}, want {w:?}"),
            }
        }
        let e = users_in_report(r#"{"metricHeaders":[{"name":"activeUsers"}],"rowCount":"1"}"#)
            .unwrap_err();
        assert!(e.contains("rowCount is \"1\", not a count"), "{e}");
        let e = users_in_report(r#"{"metricHeaders":[{"name":"activeUsers"}],"rowCount":-3}"#)
            .unwrap_err();
        assert!(e.contains("rowCount is -3"), "{e}");
    }

    /// A fixed-seed xorshift: the same few thousand inputs on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// Words that steer a random document towards what the parsers look at.
    const KEYS: &[&str] = &[
        "kind",
        "metricHeaders",
        "name",
        "activeUsers",
        "rows",
        "rowCount",
        "metricValues",
        "value",
        "access_token",
        "expires_in",
        "token_type",
        "error",
        "version",
        "account",
        "expires_at",
    ];
    const ATOMS: &[&str] = &[
        "0",
        "-1",
        "1",
        "2147483647",
        "2147483648",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "1e308",
        "-1e308",
        "2.5",
        "-0.0",
        "1e-320",
        "true",
        "false",
        "null",
        r#""""#,
        r#""12""#,
        r#""-3""#,
        r#""1.5""#,
        r#""ya29.a0""#,
        r#""analyticsData#runRealtimeReport""#,
        r#""activeUsers""#,
        r#""\u0000""#,
        r#""\r\n""#,
        r#""\ud800""#,
    ];

    fn value(rng: &mut Rng, depth: u32) -> String {
        match (depth, rng.below(4)) {
            (4.., _) | (_, 0) => rng.pick(ATOMS).to_string(),
            (_, 1) => {
                let n = rng.below(4);
                let items: Vec<String> = (0..n).map(|_| value(rng, depth + 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let n = rng.below(5);
                let fields: Vec<String> = (0..n)
                    .map(|_| format!("\"{}\":{}", rng.pick(KEYS), value(rng, depth + 1)))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }

    /// Random bytes, random JSON over the parsers' own words, and valid
    /// answers with a few bytes flipped.
    fn inputs(seed: u64, valid: &[&str]) -> Vec<String> {
        let mut rng = Rng(seed);
        let mut out = vec![];
        for i in 0..3000 {
            let text = match i % 3 {
                0 => {
                    let n = rng.below(64);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 => value(&mut rng, 0),
                _ => {
                    let mut bytes = rng.pick(valid).as_bytes().to_vec();
                    for _ in 0..=rng.below(3) {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            };
            out.push(text);
        }
        out
    }

    fn never_panics<T: std::fmt::Debug>(name: &str, input: &str, f: impl FnOnce() -> T) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        assert!(result.is_ok(), "{name} panicked on {input:?}");
    }

    #[test]
    fn the_parsers_of_wire_answers_never_panic_on_arbitrary_input() {
        let report = r#"{"metricHeaders":[{"name":"activeUsers","type":"TYPE_INTEGER"}],"rows":[{"metricValues":[{"value":"587"}]}],"rowCount":1,"kind":"analyticsData#runRealtimeReport"}"#;
        let token = r#"{"access_token":"ya29.a0AfB_byC","expires_in":3599,"token_type":"Bearer"}"#;
        let cached =
            r#"{"version":1,"account":"ab","access_token":"ya29.a0","expires_at":1700000600}"#;
        let mut answered = 0;
        for input in inputs(0x9e37_79b9_7f4a_7c15, &[report, token, cached]) {
            never_panics("users_in_report", &input, || users_in_report(&input));
            for status in [200, 401, 503] {
                never_panics("report_answer", &input, || {
                    report_answer(status, &input, &WHO, "GA")
                });
                never_panics("token_answer", &input, || {
                    if let Ok((_, lifetime)) = token_answer(status, &input, &WHO, "t") {
                        assert!(lifetime <= MAX_LIFETIME_SECS);
                        answered += 1;
                    }
                });
            }
            never_panics("cache::parse", &input, || {
                cache::parse(&input, "ab", 1_700_000_000)
            });
            never_panics("refusal_reason", &input, || refusal_reason(&input));
        }
        // The generator reaches the parsers' success paths, not only errors.
        assert!(answered > 0);
        assert!(
            inputs(0x9e37_79b9_7f4a_7c15, &[report])
                .iter()
                .any(|i| users_in_report(i).is_ok())
        );
    }
}
