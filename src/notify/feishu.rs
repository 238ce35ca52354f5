//! The Feishu custom-bot webhook: posts the card [`render`] made, signed when
//! the bot has a signing secret, and takes Feishu's word for the outcome —
//! its body's `code`, since Feishu answers rate limits and bad signatures
//! with HTTP 200.
//!
//! The webhook URL embeds the bot's token, so it is handled as a secret:
//! errors name "the Feishu webhook" and its host, never the URL, and every
//! message built from something the transport said is scrubbed of it.

use crate::quote::{seconds, snippet};
use std::time::Duration;

use base64::Engine;
use ring::hmac;
use serde_json::Value;

use super::{Notice, Notifier, NotifyError, render};
use crate::config::{FeishuSettings, Secret};

/// Bounds what is read of Feishu's answer (it is a few dozen bytes).
const MAX_ANSWER: u64 = 64 * 1024;

/// Sends notices for one cluster to one Feishu bot.
pub struct Feishu {
    webhook: Secret,
    secret: Option<Secret>,
    cluster: String,
    timeout: Duration,
    /// `host[:port]` of the webhook: as much of it as an error may show.
    host: String,
    agent: ureq::Agent,
}

impl Feishu {
    /// `cluster` names the cluster in every message; `timeout` bounds each
    /// send from connect to the last byte of Feishu's answer.
    pub fn new(settings: &FeishuSettings, cluster: &str, timeout: Duration) -> Feishu {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Feishu's verdict is in the body, also on 4xx.
            .http_status_as_error(false)
            // A redirect would be a misconfiguration; report it rather than
            // replay a signed message somewhere else.
            .max_redirects(0)
            .user_agent(concat!("hpa-tier/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Feishu {
            host: host_of(settings.webhook.expose()),
            webhook: settings.webhook.clone(),
            secret: settings.secret.clone().filter(|s| !s.is_empty()),
            cluster: cluster.to_string(),
            timeout,
            agent,
        }
    }

    /// The request body for `notice` sent at `timestamp` (Unix seconds):
    /// the rendered card, plus `timestamp` and `sign` when the bot has a
    /// signing secret.
    pub fn body(&self, notice: &Notice, timestamp: i64) -> Value {
        let mut body = render(notice, &self.cluster);
        if let (Some(secret), Value::Object(map)) = (&self.secret, &mut body) {
            map.insert("timestamp".into(), Value::String(timestamp.to_string()));
            map.insert(
                "sign".into(),
                Value::String(sign(timestamp, secret.expose())),
            );
        }
        body
    }

    fn timed_out(&self) -> NotifyError {
        NotifyError::Timeout(format!(
            "the Feishu webhook at {} did not answer within {} (timeout_seconds); the notice was not delivered",
            self.host,
            seconds(self.timeout)
        ))
    }
}

impl Notifier for Feishu {
    async fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        let body = self.body(notice, jiff::Timestamp::now().as_second());
        let agent = self.agent.clone();
        let webhook = self.webhook.clone();
        let host = self.host.clone();
        let call = tokio::task::spawn_blocking(move || post(&agent, &webhook, &host, &body));
        let result = match tokio::time::timeout(self.timeout, call).await {
            Err(_elapsed) => Err(self.timed_out()),
            Ok(Err(join)) => Err(NotifyError::Unreachable(scrub(
                &format!(
                    "sending to the Feishu webhook at {} failed unexpectedly: {join}",
                    self.host
                ),
                &self.webhook,
            ))),
            Ok(Ok(result)) => result,
        };
        if result.is_ok() {
            tracing::debug!(host = %self.host, "notice delivered to Feishu");
        }
        result.map_err(|e| match e {
            // ureq's own deadline can fire a hair before ours: same meaning.
            NotifyError::Timeout(_) => self.timed_out(),
            other => other,
        })
    }
}

/// Feishu's signature: HMAC-SHA256 keyed with `"{timestamp}\n{secret}"` over
/// an empty message, base64 (standard alphabet, padded).
pub fn sign(timestamp: i64, secret: &str) -> String {
    let key = hmac::Key::new(
        hmac::HMAC_SHA256,
        format!("{timestamp}\n{secret}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, b"").as_ref())
}

/// One POST, on a blocking thread.
fn post(
    agent: &ureq::Agent,
    webhook: &Secret,
    host: &str,
    body: &Value,
) -> Result<(), NotifyError> {
    let response = agent
        .post(webhook.expose())
        .header("Content-Type", "application/json; charset=utf-8")
        .send_json(body);
    let mut response = response.map_err(|e| transport_error(e, host, webhook))?;
    let status = response.status().as_u16();
    let answer = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| transport_error(e, host, webhook))?;
    verdict(status, &answer, host).map_err(|e| match e {
        NotifyError::Rejected(m) => NotifyError::Rejected(scrub(&m, webhook)),
        other => other,
    })
}

fn transport_error(e: ureq::Error, host: &str, webhook: &Secret) -> NotifyError {
    use std::io::ErrorKind;
    let at = format!("the Feishu webhook at {host}");
    match e {
        ureq::Error::Timeout(_) => NotifyError::Timeout(format!("{at} did not answer in time")),
        ureq::Error::Io(io) if io.kind() == ErrorKind::TimedOut => {
            NotifyError::Timeout(format!("{at} did not answer in time"))
        }
        ureq::Error::Io(io) => NotifyError::Unreachable(scrub(
            &format!("cannot reach {at}: {io}; check the network path to Feishu (proxy, firewall)"),
            webhook,
        )),
        ureq::Error::HostNotFound => NotifyError::Unreachable(format!(
            "cannot resolve the host of the Feishu webhook ({host}); check feishu_webhook_url and DNS"
        )),
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => NotifyError::Unreachable(
            format!("feishu_webhook_url is not a usable URL (host {host})"),
        ),
        ureq::Error::ConnectionFailed
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::ConnectProxyFailed(_) => {
            NotifyError::Unreachable(scrub(&format!("cannot connect to {at}: {e}"), webhook))
        }
        other => NotifyError::Rejected(scrub(
            &format!("{at} gave an answer that could not be read: {other}"),
            webhook,
        )),
    }
}

/// What Feishu's answer means. Success only when the body says `code: 0`
/// (older deployments say `StatusCode: 0`) on a 2xx.
fn verdict(status: u16, answer: &str, host: &str) -> Result<(), NotifyError> {
    let at = format!("the Feishu webhook at {host}");
    let parsed: Option<Value> = serde_json::from_str(answer).ok();
    let field = |names: [&str; 2]| {
        parsed
            .as_ref()
            .and_then(|v| names.iter().find_map(|n| v.get(*n)).cloned())
    };
    let code = field(["code", "StatusCode"]).and_then(|c| c.as_i64());
    let msg = field(["msg", "StatusMessage"])
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    let http = if status == 200 {
        String::new()
    } else {
        format!(", HTTP {status}")
    };
    match code {
        Some(0) if (200..300).contains(&status) => Ok(()),
        Some(0) => Err(NotifyError::Rejected(format!(
            "{at} answered HTTP {status}; the notice was not delivered"
        ))),
        Some(code) => Err(NotifyError::Rejected(format!(
            "{at} refused the notice: Feishu code {code} \"{msg}\"{http}{}",
            hint(code)
        ))),
        None => Err(NotifyError::Rejected(format!(
            "{at} answered HTTP {status} without Feishu's `code`: {}",
            snippet(answer)
        ))),
    }
}

/// What the on-call can do about a Feishu error code.
fn hint(code: i64) -> &'static str {
    match code {
        19021 => {
            "; the signature was not accepted: make feishu_secret the bot's signing secret \
             (or clear it if the bot has none), and check this host's clock (Feishu allows an hour of skew)"
        }
        19022 => "; Feishu refused this host's IP address: add it to the bot's IP allowlist",
        19024 => {
            "; the bot only takes messages containing its keywords: remove the keyword \
             filter or add a word of every notice (e.g. the cluster name)"
        }
        11232 => {
            "; Feishu is rate-limiting this bot (at most 100 messages a minute, 5 a second); \
             this notice was dropped"
        }
        19001 => {
            "; the webhook token is not valid: the bot may have been removed; update feishu_webhook_url"
        }
        9499 => "; Feishu could not parse the message: a bug in hpa-tier, please report it",
        _ => "",
    }
}

/// `host[:port]` of the webhook, or a placeholder; never the path (token).
fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| {
            let auth = u.authority()?;
            Some(match auth.port_u16() {
                Some(p) => format!("{}:{p}", auth.host()),
                None => auth.host().to_string(),
            })
        })
        .unwrap_or_else(|| "(unparsable URL)".into())
}

/// Removes the webhook URL and its path (which carries the token) from a
/// message that quotes something the transport or server said.
fn scrub(message: &str, webhook: &Secret) -> String {
    let url = webhook.expose();
    let mut out = message.replace(url, "<the Feishu webhook>");
    if let Ok(uri) = url.parse::<http::Uri>() {
        let path = uri.path();
        if path.len() > 1 {
            out = out.replace(path, "/<redacted>");
        }
        // The token itself, wherever it appears.
        if let Some(token) = path.rsplit('/').next().filter(|t| t.len() >= 4) {
            out = out.replace(token, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feishu(secret: Option<&str>) -> Feishu {
        Feishu::new(
            &FeishuSettings {
                webhook: Secret::new("https://open.feishu.cn/open-apis/bot/v2/hook/tok-3c1f9a"),
                secret: secret.map(Secret::new),
            },
            "prod",
            Duration::from_secs(10),
        )
    }

    #[test]
    fn sign_matches_feishus_algorithm() {
        // Computed independently with Python's hmac/hashlib/base64.
        assert_eq!(
            sign(1_700_000_000, "demo-secret"),
            "mYHw2R2SOm8Rw/sne3lQdmz4sOfntKR+1P/8RKKTwmA="
        );
        assert_ne!(
            sign(1_700_000_001, "demo-secret"),
            sign(1_700_000_000, "demo-secret")
        );
    }

    #[test]
    fn the_body_is_signed_only_when_there_is_a_secret() {
        let notice = Notice::AboveTop {
            users: 6000,
            top: 5000,
        };
        let signed = feishu(Some("demo-secret")).body(&notice, 1_700_000_000);
        assert_eq!(signed["timestamp"], "1700000000");
        assert_eq!(
            signed["sign"],
            "mYHw2R2SOm8Rw/sne3lQdmz4sOfntKR+1P/8RKKTwmA="
        );
        assert_eq!(signed["msg_type"], "interactive");
        assert_eq!(signed["card"], render(&notice, "prod")["card"]);

        for unsigned in [feishu(None), feishu(Some(""))] {
            let body = unsigned.body(&notice, 1_700_000_000);
            assert_eq!(body, render(&notice, "prod"));
        }
    }

    #[test]
    fn verdicts() {
        let ok = |status, body: &str| verdict(status, body, "open.feishu.cn");
        assert_eq!(ok(200, r#"{"code":0,"msg":"success","data":{}}"#), Ok(()));
        assert_eq!(
            ok(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#),
            Ok(())
        );
        let cases: Vec<(u16, &str, &str)> = vec![
            (
                200,
                r#"{"code":11232,"msg":"frequency limited psm","data":{}}"#,
                "refused the notice: Feishu code 11232 \"frequency limited psm\"; Feishu is rate-limiting",
            ),
            (
                200,
                r#"{"code":19021,"msg":"sign match fail"}"#,
                "code 19021 \"sign match fail\"; the signature was not accepted: make feishu_secret",
            ),
            (
                400,
                r#"{"code":9499,"msg":"Bad Request","data":{}}"#,
                "code 9499 \"Bad Request\", HTTP 400; Feishu could not parse",
            ),
            (200, r#"{"code":42,"msg":"new"}"#, "code 42 \"new\""),
            (
                500,
                "upstream connect error",
                "answered HTTP 500 without Feishu's `code`: upstream connect error",
            ),
            (
                502,
                "",
                "answered HTTP 502 without Feishu's `code`: (empty body)",
            ),
            (
                200,
                "<html>captive portal</html>",
                "answered HTTP 200 without Feishu's `code`: <html>",
            ),
            (503, r#"{"code":0}"#, "answered HTTP 503"),
            (302, "", "answered HTTP 302"),
        ];
        for (status, body, want) in cases {
            match ok(status, body) {
                Err(NotifyError::Rejected(m)) => {
                    assert!(m.contains(want), "{status} {body}: {m}");
                    assert!(
                        m.starts_with("the Feishu webhook at open.feishu.cn "),
                        "{m}"
                    );
                }
                other => panic!("{status} {body}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_token_never_survives_scrubbing() {
        let hook = Secret::new("https://open.feishu.cn/open-apis/bot/v2/hook/tok-3c1f9a");
        for said in [
            "bad uri: https://open.feishu.cn/open-apis/bot/v2/hook/tok-3c1f9a",
            "POST /open-apis/bot/v2/hook/tok-3c1f9a failed",
            "token tok-3c1f9a unknown",
        ] {
            let s = scrub(said, &hook);
            assert!(!s.contains("tok-3c1f9a"), "{s}");
        }
        assert_eq!(host_of(hook.expose()), "open.feishu.cn");
        assert_eq!(
            host_of("http://127.0.0.1:8080/open-apis/bot/v2/hook/x"),
            "127.0.0.1:8080"
        );
        assert_eq!(host_of("https://user:pw@example.com/hook/x"), "example.com");
        assert!(!format!("{:?}", feishu(Some("s3cr3t")).secret).contains("s3cr3t"));
    }
}
