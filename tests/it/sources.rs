//! The metric sources over the wire: GA4 against the Google stand-in (JWT,
//! token exchange, realtime report, every failure a person must act on), the
//! HTTP source against the mock users server, and Prometheus against a
//! scripted HTTP peer.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hpa_tier::config::{GaSettings, TokenCache};
use hpa_tier::source::ga::Ga;
use hpa_tier::source::http::HttpSource;
use hpa_tier::source::prometheus::Prometheus;
use hpa_tier::source::{MetricError, MetricSource};
use hpa_tier_standins::google::{self, Fault, Google, ServiceAccount};
use hpa_tier_standins::users::{self, Growth, Users};
use serde_json::{Value, json};

use crate::support::tempdir;

const TIMEOUT: Duration = Duration::from_secs(3);
/// What a failed read may take beyond the configured timeout.
const MARGIN: Duration = Duration::from_millis(750);

fn settings(google: &Google, key_file: PathBuf, minutes: Option<u32>) -> GaSettings {
    GaSettings {
        property: google::PROPERTY.to_string(),
        key_file,
        minutes,
        api_url: google.url(),
        token_cache: TokenCache::Off,
    }
}

/// A Google stand-in and a GA source whose key file it trusts.
struct GaFixture {
    google: Google,
    account: ServiceAccount,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl GaFixture {
    fn new() -> GaFixture {
        let account = ServiceAccount::for_tests();
        let google = Google::spawn(&account).unwrap();
        let dir = tempdir();
        let key_file = account.write_key_file(dir.path(), &google.token_uri());
        GaFixture {
            google,
            account,
            key_file,
            _dir: dir,
        }
    }

    fn source(&self, minutes: Option<u32>, timeout: Duration) -> Ga {
        Ga::new(
            &settings(&self.google, self.key_file.clone(), minutes),
            timeout,
        )
        .unwrap()
    }

    /// Where a run keeps its token: in a state directory that does not
    /// exist yet, as on a fresh machine.
    fn cache_path(&self) -> PathBuf {
        self._dir.path().join("state").join("ga-token.json")
    }

    /// A new source — what the next run of the binary builds — whose token
    /// cache is `cache`.
    fn cached_source(&self, cache: &Path, timeout: Duration) -> Ga {
        let mut s = settings(&self.google, self.key_file.clone(), Some(30));
        s.token_cache = TokenCache::ReadWrite(cache.to_path_buf());
        Ga::new(&s, timeout).unwrap()
    }

    /// `(token requests, report requests)` so far.
    fn calls(&self) -> (usize, usize) {
        (
            self.google.token_request_count(),
            self.google.report_request_count(),
        )
    }
}

/// Reads once and says how long it took.
async fn timed(source: &impl MetricSource) -> (Result<u32, MetricError>, Duration) {
    let start = Instant::now();
    let r = source.online_users().await;
    (r, start.elapsed())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------
// GA4

#[tokio::test]
async fn ga_reads_active_users_including_zero_when_google_sends_no_rows() {
    let f = GaFixture::new();
    let ga = f.source(Some(30), TIMEOUT);
    for users in [587, 0, 1, 4321, 0] {
        f.google.set_users(users);
        assert_eq!(ga.online_users().await, Ok(users));
    }
}

#[tokio::test]
async fn ga_signs_the_jwt_google_expects_and_reuses_the_token() {
    let f = GaFixture::new();
    f.google.set_users(250);
    let ga = f.source(Some(30), TIMEOUT);
    assert_eq!(ga.online_users().await, Ok(250));
    assert_eq!(ga.online_users().await, Ok(250));

    let tokens = f.google.token_requests();
    assert_eq!(tokens.len(), 1, "the access token is reused: {tokens:?}");
    let t = &tokens[0];
    assert_eq!(t.verdict, Ok(()));
    assert_eq!(
        t.grant_type.as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let header = t.header.as_ref().unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], f.account.private_key_id.as_str());
    let claims = t.claims.as_ref().unwrap();
    assert_eq!(claims["iss"], f.account.client_email.as_str());
    assert_eq!(claims["aud"], f.google.token_uri().as_str());
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/analytics.readonly"
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!((iat - now_secs()).abs() <= 60, "iat {iat}");
    assert_eq!(exp - iat, 3600);

    let reports = f.google.report_requests();
    assert_eq!(reports.len(), 2);
    let issued = f.google.issued_tokens();
    for r in &reports {
        assert_eq!(r.resource, "123456789:runRealtimeReport");
        assert_eq!(r.bearer.as_ref(), Some(&issued[0]));
        assert_eq!(
            r.body,
            json!({
                "metrics": [{ "name": "activeUsers" }],
                "minuteRanges": [{ "startMinutesAgo": 29, "endMinutesAgo": 0 }]
            })
        );
    }
}

#[tokio::test]
async fn ga_without_ga_minutes_leaves_the_window_to_google() {
    let f = GaFixture::new();
    f.google.set_users(12);
    let ga = f.source(None, TIMEOUT);
    assert_eq!(ga.online_users().await, Ok(12));
    assert_eq!(
        f.google.report_requests()[0].body,
        json!({ "metrics": [{ "name": "activeUsers" }] })
    );
    assert_eq!(
        ga.describe(),
        "GA4 properties/123456789 (last 30 min, GA's default)"
    );
    assert_eq!(
        f.source(Some(5), TIMEOUT).describe(),
        "GA4 properties/123456789 (last 5 min)"
    );
}

#[tokio::test]
async fn ga_key_pair_mismatch_is_invalid_grant_naming_the_key() {
    let f = GaFixture::new();
    // The deployed file holds another private key under the same key id.
    let dir = tempdir();
    let wrong = f
        .account
        .with_other_key()
        .write_key_file(dir.path(), &f.google.token_uri());
    let ga = Ga::new(&settings(&f.google, wrong.clone(), Some(30)), TIMEOUT).unwrap();

    let (r, took) = timed(&ga).await;
    let Err(MetricError::InvalidGrant(msg)) = r else {
        panic!("{r:?}")
    };
    assert!(took < TIMEOUT, "{took:?}");
    for want in [
        wrong.to_str().unwrap(),
        f.account.private_key_id.as_str(),
        f.account.client_email.as_str(),
        "Invalid JWT Signature.",
        "rotated",
        "clock",
    ] {
        assert!(msg.contains(want), "missing {want:?} in: {msg}");
    }
    assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    assert_eq!(
        f.google.token_requests()[0].verdict,
        Err("Invalid JWT Signature.".to_string())
    );
    assert!(f.google.report_requests().is_empty());
}

#[tokio::test]
async fn ga_failures_are_typed_errors_within_the_timeout() {
    enum Setup {
        Report(Fault),
        Token(Fault),
        OtherProperty,
    }
    type Check = fn(&MetricError) -> bool;
    let cases: Vec<(&str, Setup, Check)> = vec![
        (
            "401 on the report",
            Setup::Report(Fault::rpc(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )),
            |e| {
                matches!(e, MetricError::Denied(m)
                    if m.contains("hpa-tier@hpa-tier-test.iam.gserviceaccount.com")
                        && m.contains("properties/123456789")
                        && m.contains("added as a user"))
            },
        ),
        (
            "403: the account is not a user of the property",
            Setup::OtherProperty,
            |e| {
                matches!(e, MetricError::Denied(m)
                    if m.contains("hpa-tier@hpa-tier-test.iam.gserviceaccount.com")
                        && m.contains("properties/999")
                        && m.contains("added as a user")
                        && m.contains("sufficient permissions for this property"))
            },
        ),
        (
            "429 RESOURCE_EXHAUSTED",
            Setup::Report(Fault::rpc(
                429,
                "RESOURCE_EXHAUSTED",
                "Exhausted property tokens per hour. Wait until the next hour.",
            )),
            |e| {
                matches!(e, MetricError::RateLimited(m)
                    if m.contains("\"Exhausted property tokens per hour. Wait until the next hour.\""))
            },
        ),
        (
            "503 UNAVAILABLE",
            Setup::Report(Fault::rpc(
                503,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            )),
            |e| matches!(e, MetricError::Server(m) if m.contains("503 UNAVAILABLE")),
        ),
        (
            "a body that is not the report",
            Setup::Report(Fault::garbage("<html><body>Sign in</body></html>")),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("not a realtime report") && m.contains("Sign in")),
        ),
        (
            "a report of another kind",
            Setup::Report(Fault::garbage(
                r#"{"kind":"analyticsData#runReport","metricHeaders":[{"name":"activeUsers"}]}"#,
            )),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("analyticsData#runReport")),
        ),
        (
            "500 from the token endpoint",
            Setup::Token(Fault::oauth(500, "internal_failure", "Backend error")),
            |e| matches!(e, MetricError::Server(m) if m.contains("Backend error")),
        ),
    ];
    for (name, setup, check) in cases {
        let f = GaFixture::new();
        f.google.set_users(100);
        let mut property = google::PROPERTY.to_string();
        match setup {
            Setup::Report(fault) => f.google.fail_next_report(fault),
            Setup::Token(fault) => f.google.fail_next_token(fault),
            Setup::OtherProperty => property = "properties/999".into(),
        }
        let mut s = settings(&f.google, f.key_file.clone(), Some(30));
        s.property = property;
        let ga = Ga::new(&s, TIMEOUT).unwrap();
        let (r, took) = timed(&ga).await;
        let e = r.expect_err(name);
        assert!(check(&e), "{name}: {e:?}");
        assert!(took < TIMEOUT, "{name}: took {took:?}");
        let text = e.to_string();
        for token in f.google.issued_tokens() {
            assert!(
                !text.contains(&token),
                "{name}: the access token leaked: {text}"
            );
        }
    }
}

#[tokio::test]
async fn ga_hangs_end_as_timeouts_within_the_timeout() {
    let timeout = Duration::from_secs(1);
    for (name, hang_token) in [("report hangs", false), ("token endpoint hangs", true)] {
        let f = GaFixture::new();
        if hang_token {
            f.google.fail_next_token(Fault::Hang);
        } else {
            f.google.fail_next_report(Fault::Hang);
        }
        let ga = f.source(Some(30), timeout);
        let (r, took) = timed(&ga).await;
        let Err(MetricError::Timeout(msg)) = r else {
            panic!("{name}: {r:?}")
        };
        assert!(
            msg.contains("timeout_seconds") && msg.contains("1s"),
            "{msg}"
        );
        assert!(
            took >= timeout - Duration::from_millis(50) && took < timeout + MARGIN,
            "{name}: took {took:?}"
        );
    }
}

#[tokio::test]
async fn ga_latency_below_the_timeout_is_fine() {
    let f = GaFixture::new();
    f.google.set_users(42);
    f.google.set_latency(Duration::from_millis(300));
    let ga = f.source(Some(10), TIMEOUT);
    let (r, took) = timed(&ga).await;
    assert_eq!(r, Ok(42));
    // Two calls (token, report), each delayed.
    assert!(took >= Duration::from_millis(600), "{took:?}");
}

#[tokio::test]
async fn ga_a_kept_token_refused_by_the_report_is_replaced_once_and_the_report_asked_again() {
    let f = GaFixture::new();
    f.google.set_users(7);
    let ga = f.source(Some(30), TIMEOUT);
    assert_eq!(ga.online_users().await, Ok(7));
    f.google
        .fail_next_report(Fault::rpc(401, "UNAUTHENTICATED", "Token revoked."));
    assert_eq!(ga.online_users().await, Ok(7));
    let issued = f.google.issued_tokens();
    assert_eq!(issued.len(), 2);
    let bearers: Vec<_> = f
        .google
        .report_requests()
        .into_iter()
        .map(|r| r.bearer.unwrap())
        .collect();
    assert_eq!(
        bearers,
        [&issued[0], &issued[0], &issued[1]].map(String::clone)
    );
}

#[tokio::test]
async fn ga_each_call_has_its_own_timeout_so_two_slow_answers_fit() {
    // Token and report at 2 s each: 4 s in all, each within the 3 s timeout.
    let f = GaFixture::new();
    f.google.set_users(42);
    f.google.set_latency(Duration::from_secs(2));
    let ga = f.source(Some(30), Duration::from_secs(3));
    let (r, took) = timed(&ga).await;
    assert_eq!(r, Ok(42));
    assert!(took >= Duration::from_secs(4), "{took:?}");
    assert_eq!(
        (
            f.google.token_request_count(),
            f.google.report_request_count()
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn ga_a_call_slower_than_its_timeout_is_named_with_the_limit() {
    let timeout = Duration::from_secs(3);
    let f = GaFixture::new();
    f.google.set_users(42);
    let cache = f.cache_path();
    f.google.set_latency(Duration::from_secs(4));
    let ga = f.cached_source(&cache, timeout);
    let (r, took) = timed(&ga).await;
    let Err(MetricError::Timeout(msg)) = &r else {
        panic!("{r:?}")
    };
    assert!(
        msg.starts_with(&format!("Google token endpoint {}", f.google.token_uri()))
            && msg.contains("no answer within 3s (timeout_seconds)"),
        "{msg}"
    );
    assert!(took >= timeout && took < timeout + MARGIN, "{took:?}");
    assert_eq!(f.google.report_request_count(), 0);

    // With the token cached, the report is the slow call.
    f.google.set_latency(Duration::ZERO);
    assert_eq!(
        f.cached_source(&cache, timeout).online_users().await,
        Ok(42)
    );
    f.google.set_latency(Duration::from_secs(4));
    let (r, took) = timed(&f.cached_source(&cache, timeout)).await;
    let Err(MetricError::Timeout(msg)) = &r else {
        panic!("{r:?}")
    };
    assert!(
        msg.starts_with(&format!(
            "GA4 Data API {}/v1beta/properties/123456789:runRealtimeReport for properties/123456789",
            f.google.url()
        )) && msg.contains("no answer within 3s (timeout_seconds)"),
        "{msg}"
    );
    assert!(took >= timeout && took < timeout + MARGIN, "{took:?}");
}

#[tokio::test]
async fn ga_token_endpoint_down_is_unreachable() {
    let f = GaFixture::new();
    let dir = tempdir();
    let key_file = f.account.write_key_file(dir.path(), &dead_url("/token"));
    let ga = Ga::new(&settings(&f.google, key_file, Some(30)), TIMEOUT).unwrap();
    let (r, took) = timed(&ga).await;
    assert!(
        matches!(&r, Err(MetricError::Unreachable(m)) if m.contains("token endpoint")),
        "{r:?}"
    );
    assert!(took < TIMEOUT, "{took:?}");
}

#[test]
fn ga_bad_key_files_are_key_file_errors_without_the_key() {
    let account = ServiceAccount::for_tests();
    let pem = account.private_key_pem();
    let good = account.key_file_json("http://127.0.0.1:9/token");
    let dir = tempdir();
    let edit = |f: fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "cannot read it"),
        ("not json", Some(pem.clone()), "is not JSON"),
        (
            "user credentials",
            Some(edit(|v| v["type"] = json!("authorized_user"))),
            "not a service-account key",
        ),
        (
            "no email",
            Some(edit(|v| {
                drop(v.as_object_mut().unwrap().remove("client_email"))
            })),
            "has no `client_email`",
        ),
        (
            "truncated key",
            Some(edit(|v| {
                let k = v["private_key"].as_str().unwrap().to_string();
                let cut = format!("{}\n-----END PRIVATE KEY-----\n", &k[..k.len() / 2]);
                v["private_key"] = json!(cut);
            })),
            "not a usable RSA private key",
        ),
    ];
    let body_of_key: String = pem.lines().nth(3).unwrap().to_string();
    for (name, text, want) in cases {
        let path = dir.path().join(format!("{}.json", name.replace(' ', "-")));
        if let Some(t) = &text {
            std::fs::write(&path, t).unwrap();
        }
        let s = GaSettings {
            property: google::PROPERTY.into(),
            key_file: path.clone(),
            minutes: None,
            api_url: "http://127.0.0.1:9".into(),
            token_cache: TokenCache::Off,
        };
        let Err(e) = Ga::new(&s, TIMEOUT) else {
            panic!("{name}: accepted")
        };
        let MetricError::KeyFile { path: p, reason } = &e else {
            panic!("{name}: {e:?}")
        };
        assert_eq!(Path::new(p), path, "{name}");
        assert!(reason.contains(want), "{name}: {reason}");
        let text = e.to_string();
        assert!(text.contains(path.to_str().unwrap()), "{name}: {text}");
        assert!(
            !text.contains(&body_of_key) && !text.contains("BEGIN PRIVATE KEY"),
            "{name}: the key leaked: {text}"
        );
    }
}

// ---------------------------------------------------------------------------
// GA4's token cache: each test's runs are new sources over one cache file,
// as consecutive runs of the binary are.

/// The cache file's JSON.
fn cached(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn ga_a_second_run_reuses_the_cached_token_and_calls_google_once() {
    let f = GaFixture::new();
    f.google.set_users(300);
    let cache = f.cache_path();
    assert_eq!(
        f.cached_source(&cache, TIMEOUT).online_users().await,
        Ok(300)
    );
    assert_eq!(f.calls(), (1, 1), "a fresh machine: token, then report");
    let issued = f.google.issued_tokens();
    let file = cached(&cache);
    assert_eq!(file["access_token"], issued[0].as_str());
    assert_eq!(mode(&cache), 0o600);
    let expires_at = file["expires_at"].as_u64().unwrap() as i64;
    assert!(
        (3598..=3600).contains(&(expires_at - now_secs())),
        "as long as expires_in said, no longer: {file}"
    );

    f.google.set_users(310);
    for _ in 0..3 {
        assert_eq!(
            f.cached_source(&cache, TIMEOUT).online_users().await,
            Ok(310)
        );
    }
    assert_eq!(f.calls(), (1, 4), "no token request after the first run");
    assert!(
        f.google
            .report_requests()
            .iter()
            .all(|r| r.bearer.as_ref() == Some(&issued[0]))
    );
}

#[tokio::test]
async fn ga_a_cached_token_google_expired_is_refreshed_once() {
    let f = GaFixture::new();
    f.google.set_users(5);
    let cache = f.cache_path();
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(5));
    f.google.expire_tokens();
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(5));
    // The report refused the cached token (ACCESS_TOKEN_EXPIRED), one new
    // token, the report again.
    assert_eq!(f.calls(), (2, 3));
    let issued = f.google.issued_tokens();
    assert_eq!(cached(&cache)["access_token"], issued[1].as_str());
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(5));
    assert_eq!(f.calls(), (2, 4), "the new token is cached in turn");
}

#[tokio::test]
async fn ga_a_token_about_to_expire_is_not_reused_and_not_cached() {
    let f = GaFixture::new();
    f.google.set_users(5);
    // Less than the minute of margin: each run asks for its own token,
    // without first sending one that would lapse on the way.
    f.google.set_token_lifetime(Duration::from_secs(45));
    let cache = f.cache_path();
    for run in 1..=2 {
        assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(5));
        assert_eq!(f.calls(), (run, run));
    }
    assert!(!cache.exists());

    // Enough to reuse: it is reused.
    f.google.set_token_lifetime(Duration::from_secs(120));
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(5));
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(5));
    assert_eq!(f.calls(), (3, 4));
}

#[tokio::test]
async fn ga_a_revoked_cached_token_is_replaced_and_a_refused_replacement_is_a_clear_error() {
    let f = GaFixture::new();
    f.google.set_users(9);
    let cache = f.cache_path();
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(9));
    f.google.revoke_tokens();
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(9));
    assert_eq!(f.calls(), (2, 3));

    // Revoked again, and the token endpoint refuses the account now.
    f.google.revoke_tokens();
    f.google.fail_next_token(Fault::oauth(
        400,
        "invalid_grant",
        "Invalid grant: account not found",
    ));
    let r = f.cached_source(&cache, TIMEOUT).online_users().await;
    assert!(
        matches!(&r, Err(MetricError::InvalidGrant(m))
            if m.contains("account not found") && m.contains(&f.account.client_email)),
        "{r:?}"
    );
    assert_eq!(f.calls(), (3, 4), "one refresh, no second report");
    assert!(!cache.exists(), "the refused token is not kept");
    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(9));
    assert_eq!(f.calls(), (4, 5));

    // Revoked again, and the report refuses the new token too.
    f.google.revoke_tokens();
    let unauthenticated = || {
        Fault::rpc(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        )
    };
    f.google.fail_next_report(unauthenticated());
    f.google.fail_next_report(unauthenticated());
    let r = f.cached_source(&cache, TIMEOUT).online_users().await;
    assert!(
        matches!(&r, Err(MetricError::Denied(m)) if m.contains("just issued")),
        "{r:?}"
    );
    assert_eq!(f.calls(), (5, 7), "refreshed once, the report retried once");
    assert!(
        !cache.exists(),
        "a refused token is not kept for the next run"
    );
    let text = r.unwrap_err().to_string();
    for token in f.google.issued_tokens() {
        assert!(!text.contains(&token), "{text}");
    }
}

#[tokio::test]
async fn ga_a_garbage_or_loose_cache_file_is_ignored_and_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let f = GaFixture::new();
    f.google.set_users(11);
    let cache = f.cache_path();
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let garbage: &[&[u8]] = &[
        b"",
        b"{\"version\":1,\"acc",
        b"\xff\xfe not utf-8",
        br#"{"version":1,"account":"x","access_token":"ya29.old","expires_at":99999999999}"#,
        br#"{"version":1,"account":"x","access_token":"ya29.old","expires_at":-1}"#,
    ];
    for (i, bytes) in garbage.iter().enumerate() {
        std::fs::write(&cache, bytes).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            f.cached_source(&cache, TIMEOUT).online_users().await,
            Ok(11)
        );
        assert_eq!(
            f.calls(),
            (i + 1, i + 1),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            cached(&cache)["access_token"],
            f.google.issued_tokens()[i].as_str()
        );
        assert_eq!(mode(&cache), 0o600);
    }

    // A good token in a file others may read is not trusted: replaced, 0600.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o644)).unwrap();
    let n = f.calls().0;
    assert_eq!(
        f.cached_source(&cache, TIMEOUT).online_users().await,
        Ok(11)
    );
    assert_eq!(f.calls().0, n + 1);
    assert_eq!(mode(&cache), 0o600);
}

#[tokio::test]
async fn ga_the_cache_keeps_one_accounts_token_from_another() {
    // Two token endpoints (two Googles, as a key file of another project
    // would be) share one cache file: neither sends the other's token.
    let a = GaFixture::new();
    let b = GaFixture::new();
    a.google.set_users(1);
    b.google.set_users(2);
    let cache = a.cache_path();
    assert_eq!(a.cached_source(&cache, TIMEOUT).online_users().await, Ok(1));
    assert_eq!(b.cached_source(&cache, TIMEOUT).online_users().await, Ok(2));
    assert_eq!(b.calls(), (1, 1));
    assert_eq!(
        b.google.report_requests()[0].bearer.as_ref(),
        Some(&b.google.issued_tokens()[0])
    );
    assert_eq!(a.cached_source(&cache, TIMEOUT).online_users().await, Ok(1));
    assert_eq!(a.calls(), (2, 2));
}

#[tokio::test]
async fn ga_a_symlink_in_the_caches_place_is_not_followed_and_runs_still_work() {
    let f = GaFixture::new();
    f.google.set_users(21);
    // A valid cache file for this very account, elsewhere.
    let elsewhere = f._dir.path().join("elsewhere.json");
    assert_eq!(
        f.cached_source(&elsewhere, TIMEOUT).online_users().await,
        Ok(21)
    );
    let planted = std::fs::read(&elsewhere).unwrap();
    assert_eq!(f.calls(), (1, 1));

    let cache = f.cache_path();
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &cache).unwrap();
    for run in 2..=3 {
        assert_eq!(
            f.cached_source(&cache, TIMEOUT).online_users().await,
            Ok(21)
        );
        assert_eq!(f.calls(), (run, run), "the linked token was not read");
    }
    assert!(
        std::fs::symlink_metadata(&cache)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was not replaced"
    );
    assert_eq!(
        std::fs::read(&elsewhere).unwrap(),
        planted,
        "nor written through"
    );
}

#[tokio::test]
async fn ga_a_read_only_cache_is_used_but_never_written() {
    // What `--dry-run` gets.
    let f = GaFixture::new();
    f.google.set_users(3);
    let cache = f.cache_path();
    let read_only = |path: &Path| {
        let mut s = settings(&f.google, f.key_file.clone(), Some(30));
        s.token_cache = TokenCache::ReadOnly(path.to_path_buf());
        Ga::new(&s, TIMEOUT).unwrap()
    };
    assert_eq!(read_only(&cache).online_users().await, Ok(3));
    assert!(!cache.exists() && !cache.parent().unwrap().exists());

    assert_eq!(f.cached_source(&cache, TIMEOUT).online_users().await, Ok(3));
    let written = std::fs::read(&cache).unwrap();
    assert_eq!(read_only(&cache).online_users().await, Ok(3));
    assert_eq!(f.calls(), (2, 3), "the cached token was used");

    // A refused token is not even removed.
    f.google.revoke_tokens();
    assert_eq!(read_only(&cache).online_users().await, Ok(3));
    assert_eq!(std::fs::read(&cache).unwrap(), written);
}

// ---------------------------------------------------------------------------
// HTTP source against the mock users server

fn mock_users(step: u32, thresholds: &[u32]) -> Users {
    Users::spawn(Growth {
        initial_users: 6,
        interval: None,
        step,
        thresholds: thresholds.to_vec(),
    })
    .unwrap()
}

/// A control call to a stand-in (blocking: off the runtime).
async fn call(method: &'static str, url: String, body: Option<Value>) -> Value {
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::new_with_defaults();
        let mut resp = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            (_, Some(b)) => agent.post(&url).send_json(b),
            (_, None) => agent.post(&url).send_empty(),
        }
        .unwrap();
        resp.body_mut().read_json::<Value>().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn http_source_follows_the_mock_users_server_through_pauses_and_a_fall() {
    let server = mock_users(300, &[500, 600]);
    let source = HttpSource::new(&server.online_users_url(), "/online_users", TIMEOUT);
    assert_eq!(source.online_users().await, Ok(6));
    server.grow_once();
    assert_eq!(source.online_users().await, Ok(306));
    server.grow_once();
    server.grow_once();
    assert_eq!(source.online_users().await, Ok(500), "paused at 500");

    let status = call("GET", format!("{}/api/status", server.url()), None).await;
    assert_eq!(status["paused"], true);
    assert_eq!(status["next_threshold"], 600);
    call("GET", format!("{}/api/continue-growth", server.url()), None).await;
    server.grow_once();
    assert_eq!(source.online_users().await, Ok(600), "paused at 600");

    // A demo curve that falls back down.
    call(
        "POST",
        format!("{}/api/users", server.url()),
        Some(json!({ "users": 120 })),
    )
    .await;
    server.grow_once();
    assert_eq!(
        source.online_users().await,
        Ok(120),
        "setting users pauses growth"
    );
    call("POST", format!("{}/api/reset", server.url()), None).await;
    assert_eq!(source.online_users().await, Ok(6));

    assert!(
        server
            .requests()
            .iter()
            .filter(|r| *r == "GET /api/online-users")
            .count()
            >= 6
    );
    assert_eq!(
        source.describe(),
        format!("HTTP {} at /online_users", server.online_users_url())
    );
}

#[tokio::test]
async fn http_source_reads_numeric_strings_at_any_pointer() {
    let server = mock_users(0, &[]);
    let source = HttpSource::new(&server.online_users_url(), "/data/0/n", TIMEOUT);
    server.fail_next(users::Fault::Garbage(r#"{"data":[{"n":"842"}]}"#.into()));
    assert_eq!(source.online_users().await, Ok(842));
}

#[tokio::test]
async fn http_source_rejects_malformed_answers() {
    type Check = fn(&MetricError) -> bool;
    let cases: Vec<(users::Fault, Check)> = vec![
        (
            users::Fault::Garbage("<html>Bad Gateway</html>".into()),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("not JSON")),
        ),
        (
            users::Fault::Garbage(r#"{"users": 5}"#.into()),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("nothing at") && m.contains("/online_users")),
        ),
        (
            users::Fault::Garbage(r#"{"online_users": "many"}"#.into()),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("not a number")),
        ),
        (
            users::Fault::Garbage(r#"{"online_users": -5}"#.into()),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("negative")),
        ),
        (
            users::Fault::Garbage(r#"{"online_users": null}"#.into()),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("null")),
        ),
        (
            users::Fault::Status {
                status: 500,
                body: "Internal Server Error".into(),
            },
            |e| matches!(e, MetricError::Server(m) if m.contains("HTTP 500") && m.contains("Internal Server Error")),
        ),
        (
            users::Fault::Status {
                status: 404,
                body: "no such page".into(),
            },
            |e| matches!(e, MetricError::Http(m) if m.contains("HTTP 404")),
        ),
    ];
    let server = mock_users(0, &[]);
    let source = HttpSource::new(&server.online_users_url(), "/online_users", TIMEOUT);
    for (fault, check) in cases {
        server.fail_next(fault.clone());
        let (r, took) = timed(&source).await;
        assert!(matches!(&r, Err(e) if check(e)), "{fault:?}: {r:?}");
        assert!(took < TIMEOUT, "{took:?}");
    }
    // Still fine afterwards.
    assert_eq!(source.online_users().await, Ok(6));
}

#[tokio::test]
async fn http_source_hang_and_dead_port_end_within_the_timeout() {
    let timeout = Duration::from_secs(1);
    let server = mock_users(0, &[]);
    server.fail_next(users::Fault::Hang);
    let source = HttpSource::new(&server.online_users_url(), "/online_users", timeout);
    let (r, took) = timed(&source).await;
    assert!(
        matches!(&r, Err(MetricError::Timeout(m)) if m.contains("timeout_seconds")),
        "{r:?}"
    );
    assert!(took < timeout + MARGIN, "{took:?}");

    let dead = HttpSource::new(&dead_url("/api/online-users"), "/online_users", timeout);
    let (r, took) = timed(&dead).await;
    assert!(matches!(&r, Err(MetricError::Unreachable(_))), "{r:?}");
    assert!(took < timeout, "{took:?}");
}

// ---------------------------------------------------------------------------
// Prometheus against a scripted HTTP peer

#[derive(Clone)]
enum Reply {
    Answer(u16, String),
    Hang,
}

/// A loopback HTTP/1.1 server that answers every request with the current
/// reply and records the request targets (decoded query included).
struct Scripted {
    url: String,
    reply: Arc<Mutex<Reply>>,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn spawn() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let reply = Arc::new(Mutex::new(Reply::Answer(200, String::new())));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (r, t) = (reply.clone(), targets.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (r, t) = (r.clone(), t.clone());
                std::thread::spawn(move || serve_one(conn, &r, &t));
            }
        });
        Scripted {
            url,
            reply,
            targets,
        }
    }

    fn reply(&self, status: u16, body: &str) {
        *self.reply.lock().unwrap() = Reply::Answer(status, body.to_string());
    }
}

fn serve_one(conn: TcpStream, reply: &Mutex<Reply>, targets: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let target = line.split(' ').nth(1).unwrap_or("").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    targets.lock().unwrap().push(percent_decode(&target));
    let r = reply.lock().unwrap().clone();
    match r {
        Reply::Hang => std::thread::sleep(Duration::from_secs(20)),
        Reply::Answer(status, body) => {
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn vector(values: &[&str]) -> String {
    let series: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({ "metric": { "pod": format!("web-{i}") }, "value": [1_700_000_000.5, v] }))
        .collect();
    json!({ "status": "success", "data": { "resultType": "vector", "result": series } }).to_string()
}

#[tokio::test]
async fn prometheus_reads_one_sample_or_a_scalar() {
    let peer = Scripted::spawn();
    let query = r#"sum(rate(http_requests_total{job="web", code=~"2.."}[1m])) + 0"#;
    let prom = Prometheus::new(&format!("{}/", peer.url), query, TIMEOUT);

    peer.reply(200, &vector(&["812.4"]));
    assert_eq!(prom.online_users().await, Ok(812));
    peer.reply(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"33"]}}"#,
    );
    assert_eq!(prom.online_users().await, Ok(33));

    let targets = peer.targets.lock().unwrap().clone();
    assert_eq!(targets.len(), 2);
    let t = &targets[0];
    assert!(t.starts_with("/api/v1/query?"), "{t}");
    assert!(
        t.contains(&format!("query={query}")),
        "the query arrives intact: {t}"
    );
    assert!(t.contains("&timeout=") && t.ends_with("ms"), "{t}");
}

#[tokio::test]
async fn prometheus_rejects_answers_that_are_not_one_number() {
    type Check = fn(&MetricError) -> bool;
    let cases: Vec<(u16, String, Check)> = vec![
        (200, vector(&[]), |e| matches!(e, MetricError::Garbage(m) if m.contains("no samples"))),
        (200, vector(&["1", "2", "3"]), |e| matches!(e, MetricError::Garbage(m) if m.contains("3 series") && m.contains("sum("))),
        (200, vector(&["NaN"]), |e| matches!(e, MetricError::Garbage(m) if m.contains("NaN"))),
        (
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#.into(),
            |e| matches!(e, MetricError::Garbage(m) if m.contains("range vector")),
        ),
        (200, "<html>Grafana login</html>".into(), |e| matches!(e, MetricError::Garbage(m) if m.contains("not JSON"))),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unclosed left parenthesis"}"#.into(),
            |e| matches!(e, MetricError::Http(m) if m.contains("bad_data") && m.contains("unclosed left parenthesis") && m.contains("users.prometheus.query")),
        ),
        (
            503,
            r#"{"status":"error","errorType":"unavailable","error":"too many queries"}"#.into(),
            |e| matches!(e, MetricError::Server(m) if m.contains("too many queries")),
        ),
    ];
    let peer = Scripted::spawn();
    let prom = Prometheus::new(&peer.url, "sum(up)", TIMEOUT);
    for (status, body, check) in cases {
        peer.reply(status, &body);
        let (r, took) = timed(&prom).await;
        assert!(matches!(&r, Err(e) if check(e)), "{status} {body}: {r:?}");
        assert!(took < TIMEOUT, "{took:?}");
    }
}

#[tokio::test]
async fn prometheus_hang_ends_within_the_timeout() {
    let timeout = Duration::from_secs(1);
    let peer = Scripted::spawn();
    *peer.reply.lock().unwrap() = Reply::Hang;
    let prom = Prometheus::new(&peer.url, "sum(up)", timeout);
    let (r, took) = timed(&prom).await;
    assert!(matches!(&r, Err(MetricError::Timeout(_))), "{r:?}");
    assert!(took < timeout + MARGIN, "{took:?}");
    assert_eq!(
        prom.describe(),
        format!("Prometheus {} `sum(up)`", peer.url)
    );
}

/// A loopback URL where nothing listens.
fn dead_url(path: &str) -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}{path}")
}
