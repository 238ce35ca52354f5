//! Google stand-in: the OAuth 2.0 token endpoint for service-account JWT
//! assertions and the GA4 Data API's `runRealtimeReport`, on loopback.
//!
//! The token endpoint verifies the RS256 signature against the public half of
//! a key pair generated here ([`ServiceAccount`]) and checks the header and
//! claims as Google does, refusing with Google's `invalid_grant` answers. The
//! report endpoint wants a bearer token this stand-in issued, not revoked and
//! not expired (else a 401 `UNAUTHENTICATED`, with the `ErrorInfo` reason
//! Google gives for a missing or an expired token), and answers in the real
//! response format (the count as a string, no `rows` at zero users,
//! `google.rpc.Status` errors). Tests steer it through [`Google`]: users,
//! latency, injected failures, the lifetime of the tokens it issues,
//! revoking or expiring them, and what it received.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::server::{self, Latency, Running};

/// The property the service account may read unless told otherwise.
pub const PROPERTY: &str = "properties/123456789";
/// The scope hpa-tier asks for; the report endpoint requires it (or the
/// broader `analytics`).
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
const BROAD_SCOPE: &str = "https://www.googleapis.com/auth/analytics";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How far in the future `iat` may be before Google calls it unreasonable.
const CLOCK_SKEW_SECS: i64 = 300;

// ---------------------------------------------------------------------------
// Service accounts and their key files.

/// A service account with a freshly generated 2048-bit RSA key pair: the
/// private half goes into the JSON key file, the public half stays with the
/// stand-in to verify signatures.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    pub project_id: String,
    key: Arc<RsaPrivateKey>,
}

fn generate_key() -> RsaPrivateKey {
    RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation")
}

/// Key generation takes a while: each test process makes two pairs at most.
fn cached_key(which: usize) -> Arc<RsaPrivateKey> {
    static KEYS: [OnceLock<Arc<RsaPrivateKey>>; 2] = [OnceLock::new(), OnceLock::new()];
    KEYS[which].get_or_init(|| Arc::new(generate_key())).clone()
}

impl ServiceAccount {
    /// A new account with a new key pair (slow: for the binary).
    pub fn generate() -> ServiceAccount {
        Self::with_key(Arc::new(generate_key()))
    }

    /// The test account; its key pair is generated once per process.
    pub fn for_tests() -> ServiceAccount {
        Self::with_key(cached_key(0))
    }

    /// The same account and key id with a different private key: what a key
    /// file looks like after the key was rotated, or when the wrong file is
    /// deployed. Google refuses its assertions.
    pub fn with_other_key(&self) -> ServiceAccount {
        let other = if Arc::ptr_eq(&self.key, &cached_key(1)) {
            cached_key(0)
        } else {
            cached_key(1)
        };
        ServiceAccount {
            key: other,
            ..self.clone()
        }
    }

    fn with_key(key: Arc<RsaPrivateKey>) -> ServiceAccount {
        // Google's key ids are 40 hex digits; derive one from the modulus.
        let n = key.n().to_bytes_be();
        let private_key_id: String = n[n.len() - 20..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        ServiceAccount {
            client_email: "hpa-tier@hpa-tier-test.iam.gserviceaccount.com".into(),
            project_id: "hpa-tier-test".into(),
            private_key_id,
            key,
        }
    }

    /// The private key as Google ships it (PKCS#8 PEM).
    pub fn private_key_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 encoding")
            .to_string()
    }

    fn decoding_key(&self) -> DecodingKey {
        let n = URL_SAFE_NO_PAD.encode(self.key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(self.key.e().to_bytes_be());
        DecodingKey::from_rsa_components(&n, &e).expect("RSA public key")
    }

    /// The JSON key file, field for field as the Cloud console writes it,
    /// with `token_uri` pointing where the assertion should go.
    pub fn key_file_json(&self, token_uri: &str) -> Value {
        json!({
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem(),
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                self.client_email.replace('@', "%40")
            ),
            "universe_domain": "googleapis.com"
        })
    }

    /// Writes the key file as `dir/ga-key.json` and returns its path.
    pub fn write_key_file(&self, dir: &Path, token_uri: &str) -> PathBuf {
        let path = dir.join("ga-key.json");
        self.write_key_file_at(&path, token_uri)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes the key file at `path`.
    pub fn write_key_file_at(&self, path: &Path, token_uri: &str) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.key_file_json(token_uri))?;
        std::fs::write(path, text)
    }
}

// ---------------------------------------------------------------------------
// Failures to inject, and what was received.

/// The next answer of an endpoint, instead of the real one.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This HTTP status with this JSON body.
    Status { status: u16, body: Value },
    /// 200 with a body that is not what the endpoint should answer.
    Garbage(String),
    /// Never answer (the connection stays open).
    Hang,
}

impl Fault {
    /// A Data API error as Google writes it (`google.rpc.Status`).
    pub fn rpc(code: u16, status: &str, message: &str) -> Fault {
        Fault::Status {
            status: code,
            body: rpc_error(code, status, message),
        }
    }

    /// A token endpoint error as Google writes it (RFC 6749 §5.2).
    pub fn oauth(code: u16, error: &str, description: &str) -> Fault {
        Fault::Status {
            status: code,
            body: json!({ "error": error, "error_description": description }),
        }
    }

    pub fn garbage(body: &str) -> Fault {
        Fault::Garbage(body.to_string())
    }
}

fn rpc_error(code: u16, status: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message, "status": status } })
}

/// One call of the token endpoint as the stand-in saw it.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    /// The JWT's decoded header and claims (before any check).
    pub header: Option<Value>,
    pub claims: Option<Value>,
    /// `Err(error_description)` when the stand-in refused it.
    pub verdict: Result<(), String>,
}

/// One call of `runRealtimeReport` as the stand-in saw it.
#[derive(Clone, Debug)]
pub struct ReportRequest {
    /// The last path segment, e.g. `123456789:runRealtimeReport`.
    pub resource: String,
    /// The bearer token presented, if any.
    pub bearer: Option<String>,
    /// The request body (JSON; `Value::String` with the raw text if not JSON).
    pub body: Value,
}

/// An access token handed out.
struct Issued {
    token: String,
    scope: String,
    expires_at: SystemTime,
    revoked: bool,
}

/// What Google's token endpoint says its tokens live (`expires_in`).
const DEFAULT_LIFETIME_SECS: u64 = 3599;

struct GoogleState {
    client_email: String,
    key_id: String,
    public_key: DecodingKey,
    properties: Mutex<HashSet<String>>,
    users: Mutex<u32>,
    token_faults: Mutex<VecDeque<Fault>>,
    report_faults: Mutex<VecDeque<Fault>>,
    issued: Mutex<Vec<Issued>>,
    /// The `expires_in` of tokens issued from now on.
    lifetime: Mutex<Duration>,
    token_requests: Mutex<Vec<TokenRequest>>,
    report_requests: Mutex<Vec<ReportRequest>>,
}

impl GoogleState {
    fn new(account: &ServiceAccount, users: u32) -> Arc<GoogleState> {
        Arc::new(GoogleState {
            client_email: account.client_email.clone(),
            key_id: account.private_key_id.clone(),
            public_key: account.decoding_key(),
            properties: Mutex::new(HashSet::from([PROPERTY.to_string()])),
            users: Mutex::new(users),
            token_faults: Mutex::default(),
            report_faults: Mutex::default(),
            issued: Mutex::default(),
            lifetime: Mutex::new(Duration::from_secs(DEFAULT_LIFETIME_SECS)),
            token_requests: Mutex::default(),
            report_requests: Mutex::default(),
        })
    }
}

// ---------------------------------------------------------------------------
// The in-process handle.

/// A running Google stand-in that trusts `account`. Dropping it stops it.
pub struct Google {
    running: Running,
    state: Arc<GoogleState>,
    latency: Latency,
}

impl Google {
    /// Starts on a free loopback port with 0 users; `account` may read [`PROPERTY`].
    pub fn spawn(account: &ServiceAccount) -> std::io::Result<Google> {
        let state = GoogleState::new(account, 0);
        let latency = Latency::default();
        let running = server::spawn(router(state.clone(), &latency), 0)?;
        Ok(Google {
            running,
            state,
            latency,
        })
    }

    /// The Data API base URL (what `ga_api_url` is set to).
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// The token endpoint (what the key file's `token_uri` is set to).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.running.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    pub fn set_users(&self, users: u32) {
        *self.state.users.lock().unwrap() = users;
    }

    /// Lets the account read one more property (`properties/N`).
    pub fn grant(&self, property: &str) {
        self.state
            .properties
            .lock()
            .unwrap()
            .insert(property.to_string());
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// The next `runRealtimeReport` call gets `fault` (queued, one per call).
    pub fn fail_next_report(&self, fault: Fault) {
        self.state.report_faults.lock().unwrap().push_back(fault);
    }

    /// The next token request gets `fault` (queued, one per call).
    pub fn fail_next_token(&self, fault: Fault) {
        self.state.token_faults.lock().unwrap().push_back(fault);
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.token_requests.lock().unwrap().clone()
    }

    pub fn report_requests(&self) -> Vec<ReportRequest> {
        self.state.report_requests.lock().unwrap().clone()
    }

    /// How many times the token endpoint was called (refused calls too).
    pub fn token_request_count(&self) -> usize {
        self.state.token_requests.lock().unwrap().len()
    }

    /// How many times `runRealtimeReport` was called (refused calls too).
    pub fn report_request_count(&self) -> usize {
        self.state.report_requests.lock().unwrap().len()
    }

    /// The access tokens handed out so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state
            .issued
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.token.clone())
            .collect()
    }

    /// Tokens issued from now on live this long (`expires_in`, whole
    /// seconds; Google's own is 3599 s), and the report refuses them after.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self.state.lifetime.lock().unwrap() = Duration::from_secs(lifetime.as_secs());
    }

    /// Revokes every token issued so far: the report answers 401 to them,
    /// as to a token Google does not know.
    pub fn revoke_tokens(&self) {
        for i in self.state.issued.lock().unwrap().iter_mut() {
            i.revoked = true;
        }
    }

    /// Every token issued so far expires now (no need to wait out a lifetime).
    pub fn expire_tokens(&self) {
        let now = SystemTime::now();
        for i in self.state.issued.lock().unwrap().iter_mut() {
            i.expires_at = i.expires_at.min(now);
        }
    }
}

fn router(state: Arc<GoogleState>, latency: &Latency) -> Router {
    let routes = Router::new()
        .route("/token", post(token))
        .route("/v1beta/properties/{resource}", post(report))
        // Demo control: move the number of users while the stand-in runs.
        .route("/standin/users", get(get_users).post(set_users))
        .with_state(state);
    latency.layer(routes)
}

// ---------------------------------------------------------------------------
// The token endpoint.

async fn token(
    State(s): State<Arc<GoogleState>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => {
            return oauth_refusal(400, "invalid_request", &format!("Bad request body: {e}"));
        }
    };
    let mut seen = TokenRequest {
        grant_type: form.get("grant_type").cloned(),
        header: None,
        claims: None,
        verdict: Ok(()),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let expected_aud = format!("http://{host}/token");
    let outcome = match form.get("assertion") {
        Some(jwt) => {
            seen.header = segment(jwt, 0);
            seen.claims = segment(jwt, 1);
            check_assertion(&s, &form, jwt, &expected_aud)
        }
        None => Err((
            "invalid_request",
            "Missing required parameter: assertion".to_string(),
        )),
    };
    seen.verdict = outcome
        .as_ref()
        .map(|_| ())
        .map_err(|(_, description)| description.clone());
    s.token_requests.lock().unwrap().push(seen);

    let fault = s.token_faults.lock().unwrap().pop_front();
    if let Some(f) = fault {
        return fault_response(f).await;
    }
    match outcome {
        Ok(scope) => {
            let token = format!("ya29.standin-{:032x}", rand::random::<u128>());
            let lifetime = *s.lifetime.lock().unwrap();
            s.issued.lock().unwrap().push(Issued {
                token: token.clone(),
                scope,
                expires_at: SystemTime::now() + lifetime,
                revoked: false,
            });
            json_response(
                200,
                json!({ "access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer" }),
            )
        }
        Err((error, description)) => oauth_refusal(400, error, &description),
    }
}

/// Checks an assertion as Google does; `Ok(scope)` or `Err((error, description))`.
fn check_assertion(
    s: &GoogleState,
    form: &HashMap<String, String>,
    jwt: &str,
    expected_aud: &str,
) -> Result<String, (&'static str, String)> {
    let grant = |d: &str| ("invalid_grant", d.to_string());
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant_type != GRANT_TYPE {
        return Err((
            "unsupported_grant_type",
            format!("Invalid grant_type: {grant_type}"),
        ));
    }
    let (Some(header), Some(claims)) = (segment(jwt, 0), segment(jwt, 1)) else {
        return Err(grant(
            "Invalid JWT: the assertion is not a JWS compact serialization.",
        ));
    };
    if header["alg"] != "RS256" {
        return Err(grant("Invalid JWT: only RS256 is accepted."));
    }
    if header.get("typ").is_some_and(|t| t != "JWT") {
        return Err(grant("Invalid JWT: typ must be JWT."));
    }
    if claims["iss"] != s.client_email.as_str() {
        return Err(grant("Invalid grant: account not found"));
    }
    // Google picks the public key by `kid`; without it, or with a key the
    // account does not have, the signature cannot be verified.
    if header["kid"] != s.key_id.as_str() {
        return Err(grant("Invalid JWT Signature."));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    if jsonwebtoken::decode::<Value>(jwt, &s.public_key, &validation).is_err() {
        return Err(grant("Invalid JWT Signature."));
    }
    if claims["aud"] != expected_aud {
        return Err(grant(&format!(
            "Invalid JWT: Failed audience check. The right audience is {expected_aud}"
        )));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ));
    };
    if exp <= iat || exp - iat > 3600 || exp <= now || iat > now + CLOCK_SKEW_SECS {
        return Err(grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ));
    }
    match claims["scope"].as_str() {
        Some(scope) if !scope.trim().is_empty() => Ok(scope.to_string()),
        _ => Err((
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.".to_string(),
        )),
    }
}

/// The decoded JSON of segment `i` of a compact JWS.
fn segment(jwt: &str, i: usize) -> Option<Value> {
    let part = jwt.split('.').nth(i)?;
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn oauth_refusal(status: u16, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

// ---------------------------------------------------------------------------
// runRealtimeReport.

async fn report(
    State(s): State<Arc<GoogleState>>,
    UrlPath(resource): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    let text = String::from_utf8_lossy(&body).into_owned();
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    s.report_requests.lock().unwrap().push(ReportRequest {
        resource: resource.clone(),
        bearer: bearer.clone(),
        body: parsed.clone().unwrap_or(Value::String(text)),
    });

    let fault = s.report_faults.lock().unwrap().pop_front();
    if let Some(f) = fault {
        return fault_response(f).await;
    }
    let Some(number) = resource.strip_suffix(":runRealtimeReport") else {
        return rpc_response(
            404,
            "NOT_FOUND",
            &format!("Method not found: properties/{resource}"),
        );
    };
    let property = format!("properties/{number}");

    let scope = match bearer.as_deref().map(|b| token_scope(&s, b)) {
        None => return unauthenticated(Unauthenticated::Missing),
        Some(Err(why)) => return unauthenticated(why),
        Some(Ok(scope)) => scope,
    };
    if !scope
        .split_whitespace()
        .any(|sc| sc == SCOPE || sc == BROAD_SCOPE)
    {
        return rpc_response(
            403,
            "PERMISSION_DENIED",
            "Request had insufficient authentication scopes.",
        );
    }
    if !s.properties.lock().unwrap().contains(&property) {
        return rpc_response(
            403,
            "PERMISSION_DENIED",
            "User does not have sufficient permissions for this property. To learn more about Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.",
        );
    }
    let Some(request) = parsed else {
        return rpc_response(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if let Err(msg) = check_report_request(&request) {
        return rpc_response(400, "INVALID_ARGUMENT", &msg);
    }

    let users = *s.users.lock().unwrap();
    let mut answer = json!({
        "metricHeaders": [{ "name": "activeUsers", "type": "TYPE_INTEGER" }],
        "kind": "analyticsData#runRealtimeReport"
    });
    // Like the real API: at zero there are no rows and no rowCount at all.
    if users > 0 {
        answer["rows"] = json!([{ "metricValues": [{ "value": users.to_string() }] }]);
        answer["rowCount"] = json!(1);
    }
    json_response(200, answer)
}

/// Why a report call is not authenticated.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Unauthenticated {
    /// No bearer token at all.
    Missing,
    /// Not one this stand-in issued, or revoked since.
    Invalid,
    Expired,
}

/// The scope of a live token this stand-in issued.
fn token_scope(s: &GoogleState, bearer: &str) -> Result<String, Unauthenticated> {
    let issued = s.issued.lock().unwrap();
    let i = issued
        .iter()
        .find(|i| i.token == bearer)
        .ok_or(Unauthenticated::Invalid)?;
    if i.revoked {
        return Err(Unauthenticated::Invalid);
    }
    if SystemTime::now() >= i.expires_at {
        return Err(Unauthenticated::Expired);
    }
    Ok(i.scope.clone())
}

/// Google's 401: a `google.rpc.Status`, with an `ErrorInfo` naming the
/// reason where Google gives one (a missing or an expired token).
fn unauthenticated(why: Unauthenticated) -> Response {
    const SEE: &str = "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
    let (message, reason) = match why {
        Unauthenticated::Missing => (
            format!("Request is missing required authentication credential. {SEE}"),
            Some("CREDENTIALS_MISSING"),
        ),
        Unauthenticated::Invalid => (
            format!("Request had invalid authentication credentials. {SEE}"),
            None,
        ),
        Unauthenticated::Expired => (
            format!("Request had invalid authentication credentials. {SEE}"),
            Some("ACCESS_TOKEN_EXPIRED"),
        ),
    };
    let mut body = rpc_error(401, "UNAUTHENTICATED", &message);
    if let Some(reason) = reason {
        body["error"]["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {
                "service": "analyticsdata.googleapis.com",
                "method": "google.analytics.data.v1beta.BetaAnalyticsData.RunRealtimeReport",
            },
        }]);
    }
    json_response(401, body)
}

/// The request must ask for `activeUsers` only, over a valid minute range.
fn check_report_request(req: &Value) -> Result<(), String> {
    let metrics = req["metrics"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("At least one metric must be requested.")?;
    for m in metrics {
        let name = m["name"].as_str().unwrap_or("");
        if name != "activeUsers" {
            return Err(format!(
                "Field {name} is not a valid metric (this stand-in knows activeUsers)."
            ));
        }
    }
    if let Some(ranges) = req.get("minuteRanges") {
        let ranges = ranges.as_array().ok_or("minuteRanges must be a list.")?;
        if ranges.len() > 2 {
            return Err("Requests are limited to 2 minute ranges.".into());
        }
        for r in ranges {
            let start = r.get("startMinutesAgo").map_or(Some(29), Value::as_i64);
            let end = r.get("endMinutesAgo").map_or(Some(0), Value::as_i64);
            match (start, end) {
                (Some(start), Some(end))
                    if (0..=29).contains(&start) && (0..=start).contains(&end) => {}
                _ => {
                    return Err(format!(
                        "Minute range {r} is invalid: startMinutesAgo must be 0..29 and endMinutesAgo 0..startMinutesAgo for a standard property."
                    ));
                }
            }
        }
    }
    Ok(())
}

fn rpc_response(code: u16, status: &str, message: &str) -> Response {
    json_response(code, rpc_error(code, status, message))
}

// ---------------------------------------------------------------------------
// Shared.

async fn fault_response(f: Fault) -> Response {
    match f {
        Fault::Status { status, body } => json_response(status, body),
        Fault::Garbage(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            body,
        )
            .into_response(),
        Fault::Hang => std::future::pending().await,
    }
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

async fn get_users(State(s): State<Arc<GoogleState>>) -> Response {
    json_response(200, json!({ "users": *s.users.lock().unwrap() }))
}

async fn set_users(State(s): State<Arc<GoogleState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["users"].as_u64())
        .and_then(|u| u32::try_from(u).ok())
    {
        Some(u) => {
            *s.users.lock().unwrap() = u;
            json_response(200, json!({ "users": u }))
        }
        None => json_response(400, json!({ "error": "expected {\"users\": N}" })),
    }
}

// ---------------------------------------------------------------------------
// The binary's subcommand.

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Active users the realtime report answers with (POST /standin/users
    /// {"users": N} changes it while running).
    #[arg(long, default_value_t = 0)]
    pub users: u32,
    /// The lifetime (`expires_in`, seconds) of the access tokens it issues.
    #[arg(long, default_value_t = DEFAULT_LIFETIME_SECS)]
    pub token_lifetime_secs: u64,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Write a service-account key file trusted by this stand-in here (its
    /// token_uri points at this stand-in).
    #[arg(long)]
    pub key_file_out: Option<PathBuf>,
    /// Extra GA4 properties the account may read (besides properties/123456789).
    #[arg(long = "property")]
    pub properties: Vec<String>,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let Args {
        port,
        users,
        latency_ms,
        key_file_out,
        properties,
        token_lifetime_secs,
    } = args;
    let account = tokio::task::spawn_blocking(ServiceAccount::generate).await?;
    // The key file must name the port before the server announces itself.
    let port = match port {
        0 => std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port(),
        p => p,
    };
    if let Some(path) = &key_file_out {
        account
            .write_key_file_at(path, &format!("http://127.0.0.1:{port}/token"))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    let state = GoogleState::new(&account, users);
    *state.lifetime.lock().unwrap() = Duration::from_secs(token_lifetime_secs);
    for p in properties {
        let p = if p.starts_with("properties/") {
            p
        } else {
            format!("properties/{p}")
        };
        state.properties.lock().unwrap().insert(p);
    }
    let latency = Latency::new(Duration::from_millis(latency_ms));
    server::serve_forever(router(state, &latency), port, "google").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_client::{Response, send};
    use jsonwebtoken::{EncodingKey, Header};

    /// A signed assertion for `account`, as a service-account client makes it.
    fn assertion(account: &ServiceAccount, aud: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({
            "iss": account.client_email, "scope": SCOPE, "aud": aud,
            "iat": now, "exp": now + 3600,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(account.private_key_id.clone());
        let key = EncodingKey::from_rsa_pem(account.private_key_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn post(
        g: &Google,
        path: &str,
        content_type: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> Response {
        let auth = bearer.map(|b| format!("Bearer {b}"));
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        send(
            &g.url(),
            "POST",
            path,
            &headers,
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap()
    }

    /// A new access token and its `expires_in`.
    fn token(g: &Google, account: &ServiceAccount) -> (String, u64) {
        let form = format!(
            "grant_type={GRANT_TYPE}&assertion={}",
            assertion(account, &g.token_uri())
        );
        let r = post(
            g,
            "/token",
            "application/x-www-form-urlencoded",
            None,
            &form,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        (
            v["access_token"].as_str().unwrap().to_string(),
            v["expires_in"].as_u64().unwrap(),
        )
    }

    fn report(g: &Google, bearer: Option<&str>) -> Response {
        let path = "/v1beta/properties/123456789:runRealtimeReport";
        post(
            g,
            path,
            "application/json",
            bearer,
            r#"{"metrics":[{"name":"activeUsers"}]}"#,
        )
    }

    /// `(status, google.rpc.Status status, ErrorInfo reason)` of a failed report.
    fn refusal(r: &Response) -> (u16, String, Option<String>) {
        let e = &r.json()["error"];
        (
            r.status,
            e["status"].as_str().unwrap_or("").to_string(),
            e["details"][0]["reason"].as_str().map(str::to_string),
        )
    }

    #[test]
    fn tokens_live_their_lifetime_unless_revoked_and_calls_are_counted() {
        let account = ServiceAccount::for_tests();
        let g = Google::spawn(&account).unwrap();
        g.set_users(5);

        let (first, expires_in) = token(&g, &account);
        assert_eq!(expires_in, 3599);
        let r = report(&g, Some(&first));
        assert_eq!(
            r.json()["rows"][0]["metricValues"][0]["value"],
            "5",
            "{}",
            r.body
        );
        assert_eq!((g.token_request_count(), g.report_request_count()), (1, 1));

        // The same token serves every report until it expires.
        for _ in 0..3 {
            assert_eq!(report(&g, Some(&first)).status, 200);
        }
        assert_eq!((g.token_request_count(), g.report_request_count()), (1, 4));
        g.expire_tokens();
        assert_eq!(
            refusal(&report(&g, Some(&first))),
            (
                401,
                "UNAUTHENTICATED".into(),
                Some("ACCESS_TOKEN_EXPIRED".into())
            )
        );

        g.set_token_lifetime(Duration::from_millis(1500));
        let (short, expires_in) = token(&g, &account);
        assert_eq!(expires_in, 1);
        assert_eq!(report(&g, Some(&short)).status, 200);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            refusal(&report(&g, Some(&short))).2.as_deref(),
            Some("ACCESS_TOKEN_EXPIRED")
        );

        g.set_token_lifetime(Duration::from_secs(600));
        let (revoked, expires_in) = token(&g, &account);
        assert_eq!(expires_in, 600);
        g.revoke_tokens();
        let r = report(&g, Some(&revoked));
        assert_eq!(refusal(&r), (401, "UNAUTHENTICATED".into(), None));
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Request had invalid authentication credentials."),
            "{}",
            r.body
        );
        assert_eq!(refusal(&report(&g, Some("ya29.forged"))).0, 401);
        let (fresh, _) = token(&g, &account);
        assert_eq!(
            report(&g, Some(&fresh)).status,
            200,
            "tokens issued after a revocation work"
        );
        assert_eq!(
            refusal(&report(&g, None)),
            (
                401,
                "UNAUTHENTICATED".into(),
                Some("CREDENTIALS_MISSING".into())
            )
        );
        assert_eq!(g.token_request_count(), 4);
        assert_eq!(g.report_request_count(), 11);
        assert_eq!(g.issued_tokens(), [first, short, revoked, fresh]);
    }
}
