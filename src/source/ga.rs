//! `users.source: ga` (the default): GA4 realtime `activeUsers`.
//!
//! The tool signs its own OAuth assertion from the service-account key file
//! (RS256 JWT, as Google's client libraries do), trades it at the key's
//! `token_uri` for an access token, and asks the Data API's
//! `runRealtimeReport`. Every refusal is turned into a [`MetricError`] that
//! says what to fix. The key and the tokens never reach a message.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use super::http::{
    agent, display_url, off_runtime, read_body, remaining, shorten, snippet, transport_error,
};
use super::{MetricError, MetricSource};
use crate::config::{GaSettings, Secret};

/// Where a key without `token_uri` trades its assertion.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Read-only access to Analytics data: all this tool needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google refuses assertions valid for longer than an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Stop using a cached access token this long before Google says it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);
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
    timeout: Duration,
    agent: ureq::Agent,
    token: Mutex<Option<AccessToken>>,
}

/// The service account of the key file.
struct Account {
    key_path: String,
    client_email: String,
    key_id: String,
    token_uri: String,
    signing_key: EncodingKey,
}

struct AccessToken {
    value: Secret,
    valid_until: Instant,
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
            }),
        })
    }
}

impl MetricSource for Ga {
    async fn online_users(&self) -> Result<u32, MetricError> {
        let inner = self.inner.clone();
        let what = format!("GA4 realtime report for {}", self.inner.property);
        off_runtime(&what, self.inner.timeout, move |deadline| {
            inner.read(deadline)
        })
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
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key)
    }
}

impl Inner {
    fn read(&self, deadline: Instant) -> Result<u32, MetricError> {
        let token = self.access_token(deadline)?;
        let result = self.report(&token, deadline);
        if matches!(result, Err(MetricError::Denied(_))) {
            // A refused token is not worth keeping.
            *self.token.lock().unwrap() = None;
        }
        result
    }

    fn access_token(&self, deadline: Instant) -> Result<Secret, MetricError> {
        if let Some(t) = &*self.token.lock().unwrap()
            && Instant::now() < t.valid_until
        {
            return Ok(t.value.clone());
        }
        let a = &self.account;
        let what = format!("Google token endpoint {}", display_url(&a.token_uri));
        let iat = now_secs();
        let jwt = a.assertion(iat).map_err(|e| MetricError::KeyFile {
            path: a.key_path.clone(),
            reason: format!("signing the token request failed: {e}"),
        })?;
        let started = Instant::now();
        let resp = self
            .agent
            .post(&a.token_uri)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(remaining(deadline, &what, self.timeout)?))
            .build()
            .send_form([("grant_type", GRANT_TYPE), ("assertion", jwt.as_str())])
            .map_err(|e| transport_error(&what, e, self.timeout))?;
        let (status, body) = read_body(resp, &what, self.timeout)?;
        let (value, lifetime) = token_answer(status, &body, &self.who(), &what)?;
        *self.token.lock().unwrap() = Some(AccessToken {
            value: value.clone(),
            valid_until: started + lifetime.saturating_sub(TOKEN_REFRESH_MARGIN),
        });
        Ok(value)
    }

    fn report(&self, token: &Secret, deadline: Instant) -> Result<u32, MetricError> {
        let what = format!(
            "GA4 Data API {} for {}",
            display_url(&self.report_url),
            self.property
        );
        let resp = self
            .agent
            .post(&self.report_url)
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(remaining(deadline, &what, self.timeout)?))
            .build()
            .send_json(report_request(self.minutes))
            .map_err(|e| transport_error(&what, e, self.timeout))?;
        let (status, body) = read_body(resp, &what, self.timeout)?;
        report_answer(status, &body, &self.who(), &what)
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

/// The token endpoint's answer: the access token and how long it is valid,
/// or the error a person can act on.
fn token_answer(
    status: u16,
    body: &str,
    who: &Who,
    what: &str,
) -> Result<(Secret, Duration), MetricError> {
    let doc: Option<Value> = serde_json::from_str(body).ok();
    if (200..300).contains(&status) {
        let token = doc
            .as_ref()
            .and_then(|d| d.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(MetricError::Garbage(format!(
                "{what} answered {status} without an access token: {}",
                // A body without a token has no secret to leak.
                snippet(body)
            )));
        };
        let lifetime = doc
            .as_ref()
            .and_then(|d| d.get("expires_in"))
            .and_then(Value::as_u64)
            .unwrap_or(ASSERTION_LIFETIME_SECS);
        return Ok((Secret::new(token), Duration::from_secs(lifetime)));
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
    let row_count = obj.get("rowCount").and_then(Value::as_u64).unwrap_or(0);
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
                Value::String(s) => s
                    .parse::<u32>()
                    .map_err(|_| format!("activeUsers is {:?}, not a count", shorten(s, 40))),
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("activeUsers is {n}, not a count")),
                other => Err(format!("activeUsers is {other}, not a count")),
            }
        }
        // The request has no dimensions, so GA answers with one row.
        more => Err(format!("{} rows where one was expected", more.len())),
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
        assert_eq!((t.expose(), life), ("ya29.x", Duration::from_secs(3599)));
    }
}
