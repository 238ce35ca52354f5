//! Feishu notifications over the wire, against the Feishu stand-in: signed
//! messages it verifies, and each way Feishu (or the network) says no —
//! 19021, 11232 with HTTP 200, 9499, 5xx, garbage, a hang, a dead port —
//! coming back as a typed `NotifyError` whose message names the Feishu code
//! and never the webhook's token.

use std::time::{Duration, Instant};

use hpa_tier::config::{FeishuSettings, Secret};
use hpa_tier::notify::feishu::Feishu;
use hpa_tier::notify::{Notice, Notifier, NotifyError, ServiceReplicas};
use hpa_tier::prereq::{Resource, Shortfall};
use hpa_tier_standins::feishu::{self as standin, Reply, Signature};
use serde_json::Value;

const TOKEN: &str = "3f9c2a7e-token-b1d4";
const SECRET: &str = "bot-signing-secret";

fn sender(stand_in: &standin::Feishu, secret: Option<&str>, timeout: Duration) -> Feishu {
    let settings = FeishuSettings {
        webhook: Secret::new(stand_in.webhook_url()),
        secret: secret.map(Secret::new),
    };
    Feishu::new(&settings, "prod", timeout)
}

fn tier_changed() -> Notice {
    Notice::TierChanged {
        command: "check".into(),
        from: 600,
        to: 2000,
        users: Some(1500),
        replicas: vec![
            ServiceReplicas {
                service: "istio-ingress".into(),
                min: 6,
                max: 10,
            },
            ServiceReplicas {
                service: "web".into(),
                min: 6,
                max: 20,
            },
        ],
        failed: vec![],
    }
}

fn blocked() -> Notice {
    Notice::Blocked {
        current: 600,
        wanted: 2000,
        reached: 600,
        users: Some(1500),
        shortfalls: vec![(
            2000,
            vec![Shortfall {
                resource: Resource::Rds,
                member: "prod-aurora-2".into(),
                role: "reader".into(),
                have: "db.r7g.large".into(),
                need: "db.r5.8xlarge".into(),
                why: "2 vCPU / 16 GiB < 32 vCPU / 256 GiB".into(),
                fix: "aws rds modify-db-instance --db-instance-identifier prod-aurora-2 --db-instance-class db.r5.8xlarge --apply-immediately".into(),
            }],
        )],
    }
}

fn error() -> Notice {
    Notice::Error {
        what: "metric source".into(),
        message: "GA4 runRealtimeReport answered HTTP 403 PERMISSION_DENIED".into(),
    }
}

/// The error's message, checked for the things every failure must honour.
fn message(e: &NotifyError, stand_in: &standin::Feishu) -> String {
    let m = e.to_string();
    assert!(!m.contains(TOKEN), "the webhook token leaked: {m}");
    assert!(!m.contains("/hook/"), "the webhook path leaked: {m}");
    assert!(!m.contains(SECRET), "the signing secret leaked: {m}");
    let host = stand_in.url().trim_start_matches("http://").to_string();
    assert!(m.contains(&format!("the Feishu webhook at {host}")), "{m}");
    m
}

#[tokio::test]
async fn a_signed_tier_change_is_verified_and_reads_well() {
    let stand_in = standin::Feishu::spawn(TOKEN, Some(SECRET));
    let feishu = sender(&stand_in, Some(SECRET), Duration::from_secs(5));
    feishu.send(&tier_changed()).await.expect("delivered");

    let got = stand_in.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.signature, Signature::Verified);
    assert_eq!((m.token.as_str(), m.code), (TOKEN, Some(0)));
    let ts: i64 = m.body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now().as_second() - ts).abs() < 60, "{ts}");
    assert_eq!(m.body["msg_type"], "interactive");
    assert_eq!(
        m.line(),
        "[prod] Scaled up 600 → 2000 | Tier: 600 → 2000 | Online users: 1500 | By: check \
         | Replicas (min / max) | istio-ingress: 6 / 10; web: 6 / 20 | hpa-tier · cluster prod"
    );
}

#[tokio::test]
async fn blocked_error_and_above_top_are_delivered_unsigned_to_a_bot_without_secret() {
    let stand_in = standin::Feishu::spawn(TOKEN, None);
    let feishu = sender(&stand_in, None, Duration::from_secs(5));
    let notices = [
        blocked(),
        error(),
        Notice::AboveTop {
            users: 6200,
            top: 5000,
        },
    ];
    for n in &notices {
        feishu
            .send(n)
            .await
            .unwrap_or_else(|e| panic!("{n:?}: {e}"));
    }
    let got = stand_in.messages();
    assert_eq!(got.len(), 3);
    for m in &got {
        assert_eq!((&m.signature, m.code), (&Signature::NotChecked, Some(0)));
        assert!(m.body.get("sign").is_none(), "{}", m.raw);
    }
    let lines: Vec<String> = got.iter().map(|m| m.line()).collect();
    assert!(
        lines[0].starts_with("[prod] Scale-up to 2000 blocked at 600 | "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0]
            .contains("Tier 2000 needs RDS db.r5.8xlarge; reader prod-aurora-2 is db.r7g.large"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("Fix: aws rds modify-db-instance --db-instance-identifier prod-aurora-2 --db-instance-class db.r5.8xlarge --apply-immediately"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            "[prod] hpa-tier error: metric source | GA4 runRealtimeReport answered HTTP 403"
        ),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("[prod] 6200 users exceed the top tier (5000)"),
        "{}",
        lines[2]
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused_with_19021_and_says_what_to_check() {
    let stand_in = standin::Feishu::spawn(TOKEN, Some(SECRET));
    let feishu = sender(
        &stand_in,
        Some("not-the-bot-secret"),
        Duration::from_secs(5),
    );
    let e = feishu.send(&blocked()).await.unwrap_err();
    assert!(matches!(e, NotifyError::Rejected(_)), "{e:?}");
    let m = message(&e, &stand_in);
    assert!(m.contains("Feishu code 19021"), "{m}");
    assert!(m.contains("sign match fail"), "{m}");
    assert!(m.contains("feishu_secret") && m.contains("clock"), "{m}");
    assert!(!m.contains("not-the-bot-secret"), "{m}");
    assert!(matches!(
        &stand_in.messages()[0].signature,
        Signature::Invalid(why) if why.contains("does not match")
    ));
}

#[tokio::test]
async fn an_unsigned_message_to_a_bot_that_signs_is_refused() {
    let stand_in = standin::Feishu::spawn(TOKEN, Some(SECRET));
    let feishu = sender(&stand_in, None, Duration::from_secs(5));
    let e = feishu.send(&error()).await.unwrap_err();
    assert!(message(&e, &stand_in).contains("Feishu code 19021"), "{e}");
}

#[tokio::test]
async fn a_rate_limit_answered_with_http_200_is_not_a_success() {
    let stand_in = standin::Feishu::spawn(TOKEN, Some(SECRET));
    let feishu = sender(&stand_in, Some(SECRET), Duration::from_secs(5));
    stand_in.reply_next(Reply::rate_limited());
    let e = feishu.send(&tier_changed()).await.unwrap_err();
    assert!(matches!(e, NotifyError::Rejected(_)), "{e:?}");
    let m = message(&e, &stand_in);
    assert!(m.contains("Feishu code 11232 \"frequency limited"), "{m}");
    assert!(m.contains("rate-limiting") && !m.contains("HTTP"), "{m}");
    // The limit lifts: the next notice goes through.
    feishu
        .send(&tier_changed())
        .await
        .expect("delivered after the limit");
    let codes: Vec<Option<i64>> = stand_in.messages().iter().map(|m| m.code).collect();
    assert_eq!(codes, [Some(11232), Some(0)]);
}

#[tokio::test]
async fn a_bad_request_names_feishus_code_and_message() {
    let stand_in = standin::Feishu::spawn(TOKEN, None);
    let feishu = sender(&stand_in, None, Duration::from_secs(5));
    stand_in.reply_next(Reply::bad_request());
    let e = feishu.send(&error()).await.unwrap_err();
    let m = message(&e, &stand_in);
    assert!(
        m.contains("Feishu code 9499 \"Bad Request\", HTTP 400"),
        "{m}"
    );
}

#[tokio::test]
async fn http_errors_and_garbage_are_rejections_not_successes() {
    let stand_in = standin::Feishu::spawn(TOKEN, None);
    let feishu = sender(&stand_in, None, Duration::from_secs(5));
    for (reply, want) in [
        (
            Reply::Http(500),
            "answered HTTP 500 without Feishu's `code`",
        ),
        (Reply::Http(404), "answered HTTP 404"),
        (
            Reply::Garbage,
            "answered HTTP 200 without Feishu's `code`: <html>",
        ),
    ] {
        stand_in.reply_next(reply.clone());
        let e = feishu.send(&error()).await.unwrap_err();
        assert!(matches!(e, NotifyError::Rejected(_)), "{reply:?}: {e:?}");
        let m = message(&e, &stand_in);
        assert!(m.contains(want), "{reply:?}: {m}");
    }
}

#[tokio::test]
async fn a_hang_or_slow_feishu_times_out_within_the_timeout() {
    let stand_in = standin::Feishu::spawn(TOKEN, None);
    let timeout = Duration::from_millis(400);
    let feishu = sender(&stand_in, None, timeout);

    stand_in.reply_next(Reply::Hang);
    let started = Instant::now();
    let e = feishu.send(&error()).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, NotifyError::Timeout(_)), "{e:?}");
    assert!(took < timeout + Duration::from_millis(600), "took {took:?}");
    let m = message(&e, &stand_in);
    assert!(m.contains("did not answer within 400ms"), "{m}");

    stand_in.set_latency(Duration::from_millis(1500));
    let started = Instant::now();
    let e = feishu.send(&error()).await.unwrap_err();
    assert!(matches!(e, NotifyError::Timeout(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(1000));

    // Latency under the timeout is just latency.
    stand_in.set_latency(Duration::from_millis(100));
    feishu.send(&error()).await.expect("slow but in time");
}

#[tokio::test]
async fn a_dead_port_is_unreachable_and_still_hides_the_token() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let settings = FeishuSettings {
        webhook: Secret::new(format!(
            "http://127.0.0.1:{port}/open-apis/bot/v2/hook/{TOKEN}"
        )),
        secret: Some(Secret::new(SECRET)),
    };
    let feishu = Feishu::new(&settings, "prod", Duration::from_secs(2));
    let e = feishu.send(&error()).await.unwrap_err();
    assert!(matches!(e, NotifyError::Unreachable(_)), "{e:?}");
    let m = e.to_string();
    assert!(
        m.contains(&format!(
            "cannot reach the Feishu webhook at 127.0.0.1:{port}"
        )),
        "{m}"
    );
    assert!(!m.contains(TOKEN) && !m.contains("/hook/"), "{m}");
}

/// Posts `body` to the stand-in by hand and returns Feishu's `code`.
fn raw_post(url: &str, body: &Value) -> i64 {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut r = agent.post(url).send_json(body).expect("stand-in answers");
    let answer: Value = r.body_mut().read_json().expect("Feishu JSON");
    answer["code"].as_i64().expect("code")
}

#[test]
fn the_stand_in_refuses_stale_timestamps_unknown_tokens_and_malformed_messages() {
    let stand_in = standin::Feishu::spawn(TOKEN, Some(SECRET));
    let now = jiff::Timestamp::now().as_second();
    let card = |ts: i64| {
        serde_json::json!({
            "timestamp": ts.to_string(),
            "sign": standin::sign(ts, SECRET),
            "msg_type": "interactive",
            "card": { "elements": [] },
        })
    };
    assert_eq!(raw_post(&stand_in.webhook_url(), &card(now)), 0);
    // Correctly signed, but more than an hour old.
    assert_eq!(raw_post(&stand_in.webhook_url(), &card(now - 3700)), 19021);
    let other = format!("{}/open-apis/bot/v2/hook/someone-else", stand_in.url());
    assert_eq!(raw_post(&other, &card(now)), 19001);
    let mut no_card = card(now);
    no_card.as_object_mut().unwrap().remove("card");
    assert_eq!(raw_post(&stand_in.webhook_url(), &no_card), 9499);
    let verdicts: Vec<bool> = stand_in
        .messages()
        .iter()
        .map(|m| m.signature == Signature::Verified)
        .collect();
    assert_eq!(verdicts, [true, false, true, true]);
}
