//! A Feishu custom-bot webhook: `POST /open-apis/bot/v2/hook/<token>`,
//! answering as Feishu does — `{"code":0,"msg":"success","data":{}}`, or an
//! error code in the body (with HTTP 200 for rate limits and bad signatures).
//!
//! With a secret it checks the signature the way Feishu does: recompute
//! HMAC-SHA256 keyed with `"{timestamp}\n{secret}"` over an empty message and
//! compare, and refuse a timestamp more than an hour away from its clock.
//! Tests script the next answers (a Feishu code, an HTTP status, a hang,
//! garbage), add latency, and read back every message with whether its
//! signature verified. The `feishu` subcommand prints each message it gets
//! as one line, so the demo shows what the team would read.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use ring::hmac;
use serde_json::{Value, json};

use crate::server::{self, Latency, Running};

/// Feishu's own wording for the codes the stand-in produces.
pub const SIGN_FAILED: (i64, &str) = (
    19021,
    "sign match fail or timestamp is not within one hour from current time",
);
pub const RATE_LIMITED: (i64, &str) = (
    11232,
    "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]",
);
pub const BAD_REQUEST: (i64, &str) = (9499, "Bad Request");
pub const BAD_TOKEN: (i64, &str) = (
    19001,
    "param invalid: incoming webhook access token invalid",
);

/// How far a signed timestamp may be from the stand-in's clock.
const MAX_SKEW_SECS: i64 = 3600;

/// A scripted answer to the next message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A Feishu body `{"code":..,"msg":..,"data":{}}` with this HTTP status.
    Code { code: i64, msg: String, http: u16 },
    /// This HTTP status with a plain-text body, as a proxy in front would.
    Http(u16),
    /// Never answer.
    Hang,
    /// HTTP 200 with a body that is not Feishu's.
    Garbage,
}

impl Reply {
    fn feishu((code, msg): (i64, &str), http: u16) -> Reply {
        Reply::Code {
            code,
            msg: msg.into(),
            http,
        }
    }
    /// 11232, with HTTP 200 as Feishu sends it.
    pub fn rate_limited() -> Reply {
        Reply::feishu(RATE_LIMITED, 200)
    }
    /// 19021, with HTTP 200.
    pub fn bad_signature() -> Reply {
        Reply::feishu(SIGN_FAILED, 200)
    }
    /// 9499, with HTTP 400.
    pub fn bad_request() -> Reply {
        Reply::feishu(BAD_REQUEST, 400)
    }
}

/// How the stand-in judged a message's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signature {
    /// The stand-in has no secret, so (like Feishu) it does not check.
    NotChecked,
    Verified,
    /// Why it did not verify.
    Invalid(String),
}

/// One message as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The token in the URL path.
    pub token: String,
    /// The body as JSON (`Null` when it was not JSON; see `raw`).
    pub body: Value,
    pub raw: String,
    pub signature: Signature,
    /// The Feishu `code` answered; `None` for a scripted HTTP status, hang or garbage.
    pub code: Option<i64>,
}

impl Received {
    /// The message flattened to one line (see [`flatten`]).
    pub fn line(&self) -> String {
        flatten(&self.body)
    }
}

struct Shared {
    token: String,
    secret: Option<String>,
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    /// The binary prints each message; tests read `messages()` instead.
    print: bool,
}

/// A running Feishu stand-in. Dropping it stops the server.
pub struct Feishu {
    running: Running,
    shared: Arc<Shared>,
    latency: Latency,
}

impl Feishu {
    /// Starts on a free loopback port, accepting `token`; with a `secret`,
    /// messages must be signed with it.
    pub fn spawn(token: &str, secret: Option<&str>) -> Feishu {
        let (router, shared, latency) = build(token, secret, Duration::ZERO, false);
        let running = server::spawn(router, 0).expect("start the Feishu stand-in");
        Feishu {
            running,
            shared,
            latency,
        }
    }

    /// `http://127.0.0.1:PORT/open-apis/bot/v2/hook/<token>`: what goes in
    /// `feishu_webhook_url`.
    pub fn webhook_url(&self) -> String {
        format!(
            "{}/open-apis/bot/v2/hook/{}",
            self.running.url(),
            self.shared.token
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// Answers the next message with `reply` (queued after earlier ones).
    pub fn reply_next(&self, reply: Reply) {
        self.shared.script.lock().unwrap().push_back(reply);
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

fn build(
    token: &str,
    secret: Option<&str>,
    latency: Duration,
    print: bool,
) -> (Router, Arc<Shared>, Latency) {
    let shared = Arc::new(Shared {
        token: token.to_string(),
        secret: secret.filter(|s| !s.is_empty()).map(str::to_string),
        received: Mutex::default(),
        script: Mutex::default(),
        print,
    });
    let latency = Latency::new(latency);
    let router = Router::new()
        .route("/open-apis/bot/v2/hook/{token}", post(hook))
        .with_state(shared.clone());
    (latency.layer(router), shared, latency)
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    raw: String,
) -> Response {
    let body: Option<Value> = serde_json::from_str(&raw).ok();
    let signature = match (&shared.secret, &body) {
        (None, _) => Signature::NotChecked,
        (Some(_), None) => Signature::Invalid("the body is not JSON".into()),
        (Some(secret), Some(b)) => check_signature(b, secret, jiff::Timestamp::now().as_second()),
    };
    let scripted = shared.script.lock().unwrap().pop_front();
    let (status, answer, code) = match scripted {
        Some(Reply::Hang) => (None, String::new(), None),
        Some(Reply::Http(s)) => (Some(s), format!("HTTP {s} from the stand-in"), None),
        Some(Reply::Garbage) => (Some(200), "<html>not feishu</html>".into(), None),
        Some(Reply::Code { code, msg, http }) => (Some(http), answer(code, &msg), Some(code)),
        None => {
            let (http, (code, msg)) = judge(&shared, &token, body.as_ref(), &signature);
            (Some(http), answer(code, msg), Some(code))
        }
    };
    let received = Received {
        token,
        body: body.unwrap_or(Value::Null),
        raw,
        signature,
        code,
    };
    if shared.print {
        let sig = match &received.signature {
            Signature::NotChecked => "unsigned".to_string(),
            Signature::Verified => "signature verified".to_string(),
            Signature::Invalid(why) => format!("signature INVALID: {why}"),
        };
        let code = received.code.map_or("-".to_string(), |c| c.to_string());
        println!("feishu [{sig}; code {code}] {}", received.line());
    }
    shared.received.lock().unwrap().push(received);
    match status {
        None => std::future::pending::<Response>().await,
        Some(s) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("content-type", content_type(code))],
            answer,
        )
            .into_response(),
    }
}

fn content_type(code: Option<i64>) -> &'static str {
    if code.is_some() {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn answer(code: i64, msg: &str) -> String {
    json!({ "code": code, "msg": msg, "data": {} }).to_string()
}

/// Feishu's verdict on an unscripted message: HTTP status and `(code, msg)`.
fn judge(
    shared: &Shared,
    token: &str,
    body: Option<&Value>,
    signature: &Signature,
) -> (u16, (i64, &'static str)) {
    if token != shared.token {
        return (200, BAD_TOKEN);
    }
    let Some(body) = body else {
        return (400, BAD_REQUEST);
    };
    if let Signature::Invalid(_) = signature {
        return (200, SIGN_FAILED);
    }
    if !well_formed(body) {
        return (400, BAD_REQUEST);
    }
    (200, (0, "success"))
}

/// The shapes Feishu accepts for the message types hpa-tier could send.
fn well_formed(body: &Value) -> bool {
    match body.get("msg_type").and_then(Value::as_str) {
        Some("text") => body["content"]["text"].is_string(),
        Some("post") => body["content"]["post"].is_object(),
        Some("interactive") => {
            let card = &body["card"];
            card.is_object() && (card["elements"].is_array() || card["body"]["elements"].is_array())
        }
        _ => false,
    }
}

/// Feishu's signature: HMAC-SHA256 keyed with `"{timestamp}\n{secret}"` over
/// an empty message, base64. Tests use it to forge requests by hand.
pub fn sign(timestamp: i64, secret: &str) -> String {
    let key = hmac::Key::new(
        hmac::HMAC_SHA256,
        format!("{timestamp}\n{secret}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, b"").as_ref())
}

/// Checks `timestamp` and `sign` of `body` against `secret` at `now`.
pub fn check_signature(body: &Value, secret: &str, now: i64) -> Signature {
    let timestamp = match body.get("timestamp") {
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let Some(timestamp) = timestamp else {
        return Signature::Invalid("no usable `timestamp` (the message is not signed)".into());
    };
    let Some(sign) = body.get("sign").and_then(Value::as_str) else {
        return Signature::Invalid("no `sign` (the message is not signed)".into());
    };
    if (now - timestamp).abs() > MAX_SKEW_SECS {
        return Signature::Invalid(format!(
            "timestamp {timestamp} is {}s away from now",
            now - timestamp
        ));
    }
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(sign) else {
        return Signature::Invalid("`sign` is not base64".into());
    };
    let key = hmac::Key::new(
        hmac::HMAC_SHA256,
        format!("{timestamp}\n{secret}").as_bytes(),
    );
    match hmac::verify(&key, b"", &tag) {
        Ok(()) => Signature::Verified,
        Err(_) => Signature::Invalid("`sign` does not match the secret".into()),
    }
}

/// A message as one line of text: the title, then each block's text, for the
/// demo's output and for tests that read a message like a person would.
pub fn flatten(body: &Value) -> String {
    let mut parts: Vec<String> = vec![];
    match body.get("msg_type").and_then(Value::as_str) {
        Some("interactive") => {
            let card = &body["card"];
            if let Some(t) = card["header"]["title"]["content"].as_str() {
                parts.push(t.to_string());
            }
            let elements = card["elements"]
                .as_array()
                .or(card["body"]["elements"].as_array());
            for e in elements.into_iter().flatten() {
                if let Some(t) = e["text"]["content"].as_str() {
                    parts.push(one_line(t));
                }
                for f in e["fields"].as_array().into_iter().flatten() {
                    if let Some(t) = f["text"]["content"].as_str() {
                        parts.push(t.replacen('\n', ": ", 1).replace('\n', "; "));
                    }
                }
                for n in e["elements"].as_array().into_iter().flatten() {
                    if let Some(t) = n["content"].as_str() {
                        parts.push(one_line(t));
                    }
                }
            }
        }
        Some("post") => {
            let post = body["content"]["post"].as_object();
            if let Some(lang) = post.and_then(|p| p.values().next()) {
                if let Some(t) = lang["title"].as_str() {
                    parts.push(t.to_string());
                }
                for line in lang["content"].as_array().into_iter().flatten() {
                    let text: String = line
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|el| el["text"].as_str())
                        .collect();
                    parts.push(text);
                }
            }
        }
        Some("text") => parts.push(one_line(body["content"]["text"].as_str().unwrap_or(""))),
        _ => parts.push(body.to_string()),
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" | ")
}

/// Joins lines: after a line ending in `:` with a space (a label and its
/// value), otherwise with `; `. Markdown bold markers are dropped.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text
        .replace("**", "")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The bot's signing secret; messages must then be signed.
    #[arg(long)]
    pub secret: Option<String>,
    /// The token accepted in `/open-apis/bot/v2/hook/<token>`.
    #[arg(long, default_value = "demo-token")]
    pub token: String,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let Args {
        port,
        latency_ms,
        secret,
        token,
    } = args;
    let (router, _, _) = build(
        &token,
        secret.as_deref(),
        Duration::from_millis(latency_ms),
        true,
    );
    server::serve_forever(router, port, "feishu").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(ts: i64, sign: &str) -> Value {
        json!({ "timestamp": ts.to_string(), "sign": sign, "msg_type": "text", "content": { "text": "hi" } })
    }

    #[test]
    fn signatures_are_checked_like_feishu() {
        let now = 1_700_000_000;
        let good = sign(now, "s3");
        assert_eq!(
            check_signature(&signed(now, &good), "s3", now),
            Signature::Verified
        );
        assert_eq!(
            check_signature(&signed(now, &good), "s3", now + 3600),
            Signature::Verified
        );
        let cases = [
            (signed(now, &good), "other", "does not match"),
            (
                signed(now - 3601, &sign(now - 3601, "s3")),
                "s3",
                "away from now",
            ),
            (
                signed(now + 4000, &sign(now + 4000, "s3")),
                "s3",
                "away from now",
            ),
            (signed(now, "!!"), "s3", "not base64"),
            (json!({ "msg_type": "text" }), "s3", "not signed"),
        ];
        for (body, secret, want) in cases {
            match check_signature(&body, secret, now) {
                Signature::Invalid(why) => assert!(why.contains(want), "{why}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn flatten_reads_a_card_like_a_person() {
        let card = json!({
            "msg_type": "interactive",
            "card": {
                "header": { "title": { "tag": "plain_text", "content": "[prod] Scale-up to 2000 blocked at 600" } },
                "elements": [
                    { "tag": "div", "fields": [ { "is_short": true, "text": { "tag": "plain_text", "content": "Tier\n600 → 2000" } } ] },
                    { "tag": "div", "text": { "tag": "lark_md", "content": "**Missing for tier 2000**" } },
                    { "tag": "div", "text": { "tag": "plain_text", "content": "Fix:\naws rds modify-db-instance" } },
                    { "tag": "hr" },
                    { "tag": "note", "elements": [ { "tag": "plain_text", "content": "hpa-tier · cluster prod" } ] }
                ]
            }
        });
        assert_eq!(
            flatten(&card),
            "[prod] Scale-up to 2000 blocked at 600 | Tier: 600 → 2000 | Missing for tier 2000 | Fix: aws rds modify-db-instance | hpa-tier · cluster prod"
        );
        let text = json!({ "msg_type": "text", "content": { "text": "a\nb" } });
        assert_eq!(flatten(&text), "a; b");
    }

    #[test]
    fn only_feishu_shaped_messages_are_accepted() {
        assert!(well_formed(
            &json!({ "msg_type": "interactive", "card": { "elements": [] } })
        ));
        assert!(well_formed(
            &json!({ "msg_type": "text", "content": { "text": "x" } })
        ));
        assert!(!well_formed(&json!({ "msg_type": "interactive" })));
        assert!(!well_formed(
            &json!({ "msg_type": "card", "card": { "elements": [] } })
        ));
        assert!(!well_formed(&json!({ "text": "x" })));
    }
}
