//! Telling the team. What a notice says is pure: the `Notice`
//! itself, its Feishu card ([`render`]), its dedupe key
//! ([`Notice::dedupe_key`]) and whether a repeat is due ([`suppressed`]).
//! Sending is the `feishu` adapter's job; nothing here does I/O (this file
//! must not import tokio, ureq or std::net — `tests/it/architecture.rs`).

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::prereq::Shortfall;
use crate::record::RunRecord;
use crate::schedule::Occurrence;

/// Per-service replicas after a tier change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceReplicas {
    pub service: String,
    pub min: u32,
    pub max: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    TierChanged {
        command: String,
        from: u32,
        to: u32,
        users: Option<u32>,
        replicas: Vec<ServiceReplicas>,
        /// HPAs that failed to patch (a partial apply).
        failed: Vec<String>,
    },
    Blocked {
        current: u32,
        wanted: u32,
        /// The tier actually reached (may be above `current` when a step fit).
        reached: u32,
        users: Option<u32>,
        shortfalls: Vec<(u32, Vec<Shortfall>)>,
    },
    Error {
        /// What failed: `metric source`, `AWS prerequisites`, `Kubernetes`, …
        what: String,
        message: String,
    },
    AboveTop {
        users: u32,
        top: u32,
    },
    /// A schedule window is coming whose tier the prerequisites do not allow.
    Preflight(Preflight),
}

/// A schedule window starting within `preflight_hours` whose tier the
/// prerequisites read now do not allow: said once per occurrence, while
/// there is still time to resize.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preflight {
    /// The occurrence, e.g. `evening-peak@2026-12-14T11:00:00Z`.
    pub occurrence: String,
    pub window: String,
    pub capacity: u32,
    pub start: Timestamp,
    /// The start in the window's own zone, e.g. `2026-12-14 19:00 CST (Asia/Shanghai)`.
    pub local_start: String,
    pub shortfalls: Vec<Shortfall>,
}

impl Preflight {
    pub fn of(o: &Occurrence, shortfalls: Vec<Shortfall>) -> Self {
        let local = o.local_start();
        let zone = o.zone.iana_name().unwrap_or("UTC");
        Preflight {
            occurrence: o.id(),
            window: o.name.clone(),
            capacity: o.capacity,
            start: o.start,
            local_start: format!("{} ({zone})", local.strftime("%Y-%m-%d %H:%M %Z")),
            shortfalls,
        }
    }
}

impl Notice {
    /// Its name in reports and records: `tier_changed`, `blocked`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::TierChanged { .. } => "tier_changed",
            Notice::Blocked { .. } => "blocked",
            Notice::Error { .. } => "error",
            Notice::AboveTop { .. } => "above_top",
            Notice::Preflight(_) => "preflight",
        }
    }

    /// What identifies a repeat of this notice across runs, for
    /// [`suppressed`]. `None`: never suppressed (every tier change is news).
    ///
    /// Keys are stored in run records and compared by later runs, possibly of
    /// a newer version, so they hash only the facts (FNV-1a, fixed forever),
    /// not the wording around them.
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Notice::TierChanged { .. } => None,
            Notice::Blocked {
                wanted, shortfalls, ..
            } => {
                let mut facts: Vec<String> = shortfalls
                    .iter()
                    .flat_map(|(tier, missing)| {
                        missing.iter().map(move |s| {
                            format!("{tier}|{}|{}|{}|{}", s.resource, s.member, s.have, s.need)
                        })
                    })
                    .collect();
                facts.sort();
                facts.dedup();
                Some(format!(
                    "blocked:{wanted}:{:016x}",
                    fnv1a(facts.join("\n").as_bytes())
                ))
            }
            Notice::Error { what, message } => Some(format!(
                "error:{}:{:016x}",
                slug(what),
                fnv1a(format!("{what}\n{message}").as_bytes())
            )),
            Notice::AboveTop { top, .. } => Some(format!("above-top:{top}")),
            Notice::Preflight(p) => Some(format!("preflight:{}", p.occurrence)),
        }
    }
}

/// 64-bit FNV-1a: tiny, and stable across Rust releases (std's hashers are not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// How long a delivered notice keeps its repeats quiet: blocked and error
/// notices `notify_repeat`; a pre-flight warning for the whole pre-flight
/// period, that is, once per window occurrence.
pub fn repeat_window(
    notice: &Notice,
    notify_repeat: SignedDuration,
    preflight: SignedDuration,
) -> SignedDuration {
    match notice {
        Notice::Preflight(_) => preflight.max(notify_repeat),
        _ => notify_repeat,
    }
}

/// Whether the notice with `key` was already delivered (its key is in a
/// record's `notified`) by a run that started less than `window` before
/// `now`. A zero window never suppresses. A record dated after `now` (clocks
/// of two hosts disagree) counts as recent.
pub fn suppressed(
    key: &str,
    history: &[RunRecord],
    now: Timestamp,
    window: SignedDuration,
) -> bool {
    if window.is_zero() {
        return false;
    }
    history
        .iter()
        .any(|r| now.duration_since(r.started_at) < window && r.notified.iter().any(|k| k == key))
}

/// Feishu's custom-bot payload limit is 20 KB; a long error (say, every HPA
/// failing with a verbose API message) must still fit.
const MAX_TEXT: usize = 1500;

/// Card header colours (Feishu's `template` names).
const GREEN: &str = "green";
const BLUE: &str = "blue";
const ORANGE: &str = "orange";
const RED: &str = "red";

/// The Feishu message for `notice` on `cluster`: an interactive card whose
/// coloured header says what happened where (it is also the line a phone
/// shows in the chat list), then the facts. Every piece of text from the
/// outside (HPA names, AWS ids, error messages) goes into `plain_text`
/// elements, so nothing in it is read as markdown. The sender adds
/// `timestamp` and `sign`.
pub fn render(notice: &Notice, cluster: &str) -> Value {
    let (title, template, mut elements) = match notice {
        Notice::TierChanged {
            command,
            from,
            to,
            users,
            replicas,
            failed,
        } => tier_changed(command, *from, *to, *users, replicas, failed),
        Notice::Blocked {
            current,
            wanted,
            reached,
            users,
            shortfalls,
        } => blocked(*current, *wanted, *reached, *users, shortfalls),
        Notice::Error { what, message } => (
            format!("hpa-tier error: {what}"),
            RED,
            vec![text(&clip(message))],
        ),
        Notice::Preflight(p) => preflight(p),
        Notice::AboveTop { users, top } => (
            format!("{users} users exceed the top tier ({top})"),
            ORANGE,
            vec![text(&format!(
                "{users} online users need more than the largest tier, sized for {top}. \
                 The cluster runs at tier {top} at most; if this lasts, add a larger tier \
                 to the tiers list of the hpa-tier config."
            ))],
        ),
    };
    elements.push(json!({
        "tag": "note",
        "elements": [{ "tag": "plain_text", "content": format!("hpa-tier · cluster {cluster}") }],
    }));
    json!({
        "msg_type": "interactive",
        "card": {
            "config": { "wide_screen_mode": true },
            "header": {
                "template": template,
                "title": { "tag": "plain_text", "content": format!("[{cluster}] {title}") },
            },
            "elements": elements,
        },
    })
}

fn tier_changed(
    command: &str,
    from: u32,
    to: u32,
    users: Option<u32>,
    replicas: &[ServiceReplicas],
    failed: &[String],
) -> (String, &'static str, Vec<Value>) {
    let dir = if to > from { "up" } else { "down" };
    let (title, template) = if failed.is_empty() {
        (
            format!("Scaled {dir} {from} → {to}"),
            if to > from { GREEN } else { BLUE },
        )
    } else {
        (
            format!(
                "Partially scaled {dir} {from} → {to} ({} HPA{} failed)",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" }
            ),
            ORANGE,
        )
    };
    let mut facts = vec![field("Tier", &format!("{from} → {to}"))];
    if let Some(u) = users {
        facts.push(field("Online users", &u.to_string()));
    }
    facts.push(field("By", command));
    let mut elements = vec![json!({ "tag": "div", "fields": facts })];
    if !replicas.is_empty() {
        elements.push(heading("Replicas (min / max)"));
        elements.push(text(
            &replicas
                .iter()
                .map(|r| format!("{}: {} / {}", r.service, r.min, r.max))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    if !failed.is_empty() {
        elements.push(json!({ "tag": "hr" }));
        elements.push(heading("Not patched (the next run retries)"));
        elements.push(text(&clip(
            &failed
                .iter()
                .map(|f| format!("• {f}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )));
    }
    (title, template, elements)
}

fn blocked(
    current: u32,
    wanted: u32,
    reached: u32,
    users: Option<u32>,
    shortfalls: &[(u32, Vec<Shortfall>)],
) -> (String, &'static str, Vec<Value>) {
    let title = if reached > current {
        format!("Scaled up {current} → {reached}; tier {wanted} blocked")
    } else {
        format!("Scale-up to {wanted} blocked at {current}")
    };
    let why = match users {
        Some(u) => format!("{u} online users need tier {wanted}"),
        None => format!("Tier {wanted} was asked for"),
    };
    let stays = if reached > current {
        format!("the prerequisites allow only tier {reached} for now")
    } else {
        format!("the cluster stays at tier {current} until its prerequisites are met")
    };
    let mut elements = vec![text(&format!("{why}; {stays}."))];
    for (tier, missing) in shortfalls {
        elements.push(json!({ "tag": "hr" }));
        elements.push(heading(&format!("Missing for tier {tier}")));
        if missing.is_empty() {
            elements.push(text(
                "The prerequisites are not met (no detail was reported).",
            ));
        }
        for s in missing {
            elements.push(text(&format!("Tier {tier} {s} ({})", s.why)));
            elements.push(text(&format!("Fix:\n{}", s.fix)));
        }
    }
    elements.push(text(if users.is_some() {
        "Once this is fixed, the next check scales up by itself if the users still need it."
    } else {
        "Once this is fixed, run the upgrade again (or use --force to go ahead without it)."
    }));
    (title, RED, elements)
}

fn preflight(p: &Preflight) -> (String, &'static str, Vec<Value>) {
    let title = format!(
        "Window {} at {}: tier {} not allowed yet",
        p.window, p.local_start, p.capacity
    );
    let mut elements = vec![text(&format!(
        "Schedule {} raises the cluster to tier {} from {} ({} UTC). \
         The database and cache read now do not allow that tier:",
        p.window,
        p.capacity,
        p.local_start,
        p.start.strftime("%Y-%m-%d %H:%M")
    ))];
    for s in &p.shortfalls {
        elements.push(json!({ "tag": "hr" }));
        elements.push(text(&format!("Tier {} {s} ({})", p.capacity, s.why)));
        elements.push(text(&format!("Fix:\n{}", s.fix)));
    }
    elements.push(text(
        "Resize before the window starts; otherwise its scale-up stops at the highest tier \
         the prerequisites allow. This warning is sent once for this window.",
    ));
    (title, ORANGE, elements)
}

fn text(content: &str) -> Value {
    json!({ "tag": "div", "text": { "tag": "plain_text", "content": content } })
}

/// A bold section heading. Only fixed wording and numbers go here: it is
/// `lark_md`, so outside text could be taken for markup.
fn heading(content: &str) -> Value {
    json!({ "tag": "div", "text": { "tag": "lark_md", "content": format!("**{content}**") } })
}

/// A short label/value pair; Feishu lays these out two per row on a wide
/// screen and one per row on a phone.
fn field(label: &str, value: &str) -> Value {
    json!({ "is_short": true, "text": { "tag": "plain_text", "content": format!("{label}\n{value}") } })
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_TEXT).collect();
    out.push_str(" …");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prereq::Resource;

    fn rds_short(member: &str, have: &str, need: &str) -> Shortfall {
        Shortfall {
            resource: Resource::Rds,
            member: member.into(),
            role: "reader".into(),
            have: have.into(),
            need: need.into(),
            why: "2 vCPU / 16 GiB < 32 vCPU / 256 GiB".into(),
            fix: format!(
                "aws rds modify-db-instance --db-instance-identifier {member} --db-instance-class {need} --apply-immediately"
            ),
        }
    }

    fn redis_short() -> Shortfall {
        Shortfall {
            resource: Resource::Redis,
            member: "prod-redis".into(),
            role: "replication group".into(),
            have: "cache.m6g.large".into(),
            need: "cache.c7gn.xlarge".into(),
            why: "2 vCPU / 6.38 GiB < 4 vCPU / 8 GiB".into(),
            fix: "aws elasticache modify-replication-group --replication-group-id prod-redis --cache-node-type cache.c7gn.xlarge --apply-immediately".into(),
        }
    }

    fn blocked(current: u32, wanted: u32, reached: u32, missing: Vec<Shortfall>) -> Notice {
        Notice::Blocked {
            current,
            wanted,
            reached,
            users: Some(1500),
            shortfalls: vec![(wanted, missing)],
        }
    }

    fn tier_changed(from: u32, to: u32, failed: &[&str]) -> Notice {
        Notice::TierChanged {
            command: "check".into(),
            from,
            to,
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
            failed: failed.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn error(what: &str, message: &str) -> Notice {
        Notice::Error {
            what: what.into(),
            message: message.into(),
        }
    }

    fn title(card: &Value) -> &str {
        card["card"]["header"]["title"]["content"].as_str().unwrap()
    }

    fn template(card: &Value) -> &str {
        card["card"]["header"]["template"].as_str().unwrap()
    }

    /// Every text node as `(tag, content)`, in order.
    fn texts(v: &Value) -> Vec<(String, String)> {
        let mut out = vec![];
        fn walk(v: &Value, out: &mut Vec<(String, String)>) {
            match v {
                Value::Object(m) => {
                    if let (Some(Value::String(tag)), Some(Value::String(c))) =
                        (m.get("tag"), m.get("content"))
                    {
                        out.push((tag.clone(), c.clone()));
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(v, &mut out);
        out
    }

    fn body_text(card: &Value) -> String {
        texts(&card["card"]["elements"])
            .into_iter()
            .map(|(_, c)| c)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn every_notice_is_an_interactive_card_titled_with_the_cluster() {
        let cases: Vec<(Notice, &str, &str)> = vec![
            (
                tier_changed(600, 2000, &[]),
                "[prod] Scaled up 600 → 2000",
                GREEN,
            ),
            (
                tier_changed(3000, 1000, &[]),
                "[prod] Scaled down 3000 → 1000",
                BLUE,
            ),
            (
                tier_changed(600, 2000, &["prod/web: HTTP 500"]),
                "[prod] Partially scaled up 600 → 2000 (1 HPA failed)",
                ORANGE,
            ),
            (
                blocked(
                    600,
                    2000,
                    600,
                    vec![rds_short("prod-aurora-2", "db.r7g.large", "db.r5.8xlarge")],
                ),
                "[prod] Scale-up to 2000 blocked at 600",
                RED,
            ),
            (
                blocked(
                    600,
                    4000,
                    3000,
                    vec![rds_short(
                        "prod-aurora-1",
                        "db.r5.8xlarge",
                        "db.r5.12xlarge",
                    )],
                ),
                "[prod] Scaled up 600 → 3000; tier 4000 blocked",
                RED,
            ),
            (
                error("metric source", "GA4 answered HTTP 403"),
                "[prod] hpa-tier error: metric source",
                RED,
            ),
            (
                Notice::AboveTop {
                    users: 6200,
                    top: 5000,
                },
                "[prod] 6200 users exceed the top tier (5000)",
                ORANGE,
            ),
        ];
        for (notice, want_title, want_template) in cases {
            let card = render(&notice, "prod");
            assert_eq!(card["msg_type"], "interactive", "{notice:?}");
            assert_eq!(card["card"]["config"]["wide_screen_mode"], true);
            assert_eq!(card["card"]["header"]["title"]["tag"], "plain_text");
            assert_eq!(title(&card), want_title);
            assert_eq!(template(&card), want_template, "{want_title}");
            assert!(
                card.get("timestamp").is_none() && card.get("sign").is_none(),
                "the sender signs, not the renderer"
            );
            let last = card["card"]["elements"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone();
            assert_eq!(last["tag"], "note");
            assert_eq!(
                texts(&last),
                [(
                    "plain_text".to_string(),
                    "hpa-tier · cluster prod".to_string()
                )]
            );
        }
    }

    #[test]
    fn outside_text_is_never_read_as_markdown() {
        // A member id or error message with markdown characters must show as
        // written: only fixed headings use lark_md.
        let notices = [
            tier_changed(600, 2000, &["prod/web_api: *boom* [x](y)"]),
            blocked(
                600,
                2000,
                600,
                vec![
                    rds_short("db_**x**", "db.r7g.large", "db.r5.8xlarge"),
                    redis_short(),
                ],
            ),
            error("Kubernetes", "**forbidden** <at user_id=\"all\">"),
            Notice::AboveTop { users: 1, top: 0 },
        ];
        for n in &notices {
            for (tag, content) in texts(&render(n, "prod")) {
                match tag.as_str() {
                    "plain_text" => {}
                    "lark_md" => {
                        let inner = content
                            .strip_prefix("**")
                            .and_then(|c| c.strip_suffix("**"))
                            .unwrap_or_else(|| panic!("not a heading: {content}"));
                        assert!(
                            inner
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || " ()/".contains(c)),
                            "outside text in lark_md: {content}"
                        );
                    }
                    other => panic!("unexpected text tag {other}"),
                }
            }
        }
    }

    #[test]
    fn a_tier_change_shows_from_to_users_replicas_and_failures() {
        let card = render(&tier_changed(600, 2000, &["prod/web: HTTP 500"]), "prod");
        let fields: Vec<String> = card["card"]["elements"][0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                assert_eq!(f["is_short"], true);
                f["text"]["content"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            fields,
            ["Tier\n600 → 2000", "Online users\n1500", "By\ncheck"]
        );
        let body = body_text(&card);
        assert!(
            body.contains("istio-ingress: 6 / 10\nweb: 6 / 20"),
            "{body}"
        );
        assert!(
            body.contains("Not patched (the next run retries)"),
            "{body}"
        );
        assert!(body.contains("• prod/web: HTTP 500"), "{body}");

        let upgrade = Notice::TierChanged {
            command: "upgrade".into(),
            from: 600,
            to: 3000,
            users: None,
            replicas: vec![],
            failed: vec![],
        };
        let card = render(&upgrade, "prod");
        let body = body_text(&card);
        assert!(
            !body.contains("Online users") && body.contains("By\nupgrade"),
            "{body}"
        );
        assert!(
            !body.contains("Not patched") && !body.contains("Replicas"),
            "{body}"
        );
    }

    #[test]
    fn a_blocked_scale_up_says_what_is_missing_and_the_command_that_fixes_it() {
        let rds = rds_short("prod-aurora-2", "db.r7g.large", "db.r5.8xlarge");
        let card = render(
            &blocked(600, 2000, 600, vec![rds.clone(), redis_short()]),
            "prod",
        );
        let body = body_text(&card);
        assert!(
            body.contains("1500 online users need tier 2000; the cluster stays at tier 600"),
            "{body}"
        );
        assert!(body.contains("Missing for tier 2000"), "{body}");
        assert!(
            body.contains(
                "Tier 2000 needs RDS db.r5.8xlarge; reader prod-aurora-2 is db.r7g.large (2 vCPU / 16 GiB < 32 vCPU / 256 GiB)"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "needs Redis cache.c7gn.xlarge; replication group prod-redis is cache.m6g.large"
            ),
            "{body}"
        );
        // Each fix command is its own plain-text block, whole, so it can be copied.
        let all = texts(&card);
        for fix in [&rds.fix, &redis_short().fix] {
            assert!(
                all.contains(&("plain_text".into(), format!("Fix:\n{fix}"))),
                "{fix} not in {all:?}"
            );
        }

        assert!(
            body.contains("the next check scales up by itself"),
            "{body}"
        );
        let refused = Notice::Blocked {
            current: 600,
            wanted: 2000,
            reached: 600,
            users: None,
            shortfalls: vec![(2000, vec![redis_short()])],
        };
        let body = body_text(&render(&refused, "prod"));
        assert!(
            body.starts_with("Tier 2000 was asked for; the cluster stays at tier 600")
                && body.contains("run the upgrade again"),
            "{body}"
        );

        let partway = render(&blocked(600, 4000, 3000, vec![rds]), "prod");
        assert!(
            body_text(&partway).contains("the prerequisites allow only tier 3000 for now"),
            "{}",
            body_text(&partway)
        );
    }

    #[test]
    fn an_error_and_above_top_say_what_and_what_to_do() {
        let card = render(&error("metric source", "GA4 timed out after 10s"), "prod");
        assert_eq!(
            body_text(&card),
            "GA4 timed out after 10s\nhpa-tier · cluster prod"
        );
        let card = render(
            &Notice::AboveTop {
                users: 6200,
                top: 5000,
            },
            "prod",
        );
        let body = body_text(&card);
        assert!(
            body.contains("runs at tier 5000 at most") && body.contains("add a larger tier"),
            "{body}"
        );
    }

    #[test]
    fn a_huge_message_is_clipped_to_fit_feishus_payload_limit() {
        let card = render(&error("Kubernetes", &"é".repeat(30_000)), "prod");
        assert!(
            card.to_string().len() < 20_000,
            "{}",
            card.to_string().len()
        );
        assert!(body_text(&card).contains("é …"));
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // Keys are persisted; the hash must never change.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn dedupe_keys() {
        let rds = || rds_short("prod-aurora-2", "db.r7g.large", "db.r5.8xlarge");
        let key = |n: &Notice| n.dedupe_key();
        assert_eq!(
            key(&tier_changed(600, 2000, &[])),
            None,
            "tier changes are never suppressed"
        );

        let b = key(&blocked(600, 2000, 600, vec![rds(), redis_short()])).unwrap();
        assert!(b.starts_with("blocked:2000:"), "{b}");
        // Same wanted tier and shortfalls, whatever the users, order or tier reached.
        let mut other = blocked(1000, 2000, 1000, vec![redis_short(), rds()]);
        if let Notice::Blocked { users, .. } = &mut other {
            *users = Some(1900);
        }
        assert_eq!(key(&other).unwrap(), b);
        // Anything that changes what is missing is a new notice.
        let differs = [
            blocked(600, 3000, 600, vec![rds(), redis_short()]),
            blocked(600, 2000, 600, vec![rds()]),
            blocked(
                600,
                2000,
                600,
                vec![
                    rds_short("prod-aurora-2", "db.r6g.large", "db.r5.8xlarge"),
                    redis_short(),
                ],
            ),
            blocked(
                600,
                2000,
                600,
                vec![
                    rds_short("prod-aurora-3", "db.r7g.large", "db.r5.8xlarge"),
                    redis_short(),
                ],
            ),
        ];
        for d in &differs {
            assert_ne!(key(d).unwrap(), b, "{d:?}");
        }

        let e = key(&error("metric source", "GA4 answered HTTP 403")).unwrap();
        assert!(e.starts_with("error:metric-source:"), "{e}");
        assert_eq!(
            key(&error("metric source", "GA4 answered HTTP 403")).unwrap(),
            e
        );
        assert_ne!(
            key(&error("metric source", "GA4 answered HTTP 500")).unwrap(),
            e
        );
        assert_ne!(
            key(&error("AWS prerequisites", "GA4 answered HTTP 403")).unwrap(),
            e
        );

        let a = key(&Notice::AboveTop {
            users: 6200,
            top: 5000,
        })
        .unwrap();
        assert_eq!(a, "above-top:5000");
        assert_eq!(
            key(&Notice::AboveTop {
                users: 9000,
                top: 5000
            })
            .unwrap(),
            a
        );
        assert_ne!(
            key(&Notice::AboveTop {
                users: 9000,
                top: 6000
            })
            .unwrap(),
            a
        );
    }

    fn delivered(key: &str, now: Timestamp, minutes_ago: i64) -> RunRecord {
        let mut r = RunRecord::check_needing(2000, 600, now, minutes_ago);
        r.notified = vec!["error:kubernetes:0123".into(), key.into()];
        r
    }

    #[test]
    fn suppressed_within_the_window_and_let_through_after() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let hour = SignedDuration::from_hours(1);
        let key = "blocked:2000:00ff";
        let quiet = |mins| RunRecord::check_needing(2000, 600, now, mins);
        let cases: Vec<(&str, Vec<RunRecord>, SignedDuration, bool)> = vec![
            ("no history", vec![], hour, false),
            (
                "sent 5 minutes ago",
                vec![delivered(key, now, 5)],
                hour,
                true,
            ),
            (
                "sent 59 minutes ago",
                vec![delivered(key, now, 59)],
                hour,
                true,
            ),
            (
                "sent exactly a window ago",
                vec![delivered(key, now, 60)],
                hour,
                false,
            ),
            (
                "sent 61 minutes ago",
                vec![quiet(5), delivered(key, now, 61)],
                hour,
                false,
            ),
            (
                "runs since did not send it",
                vec![quiet(5), quiet(10)],
                hour,
                false,
            ),
            (
                "another notice was sent",
                vec![delivered("blocked:3000:00ff", now, 5)],
                hour,
                false,
            ),
            (
                "sent by a run dated ahead of our clock",
                vec![delivered(key, now, -2)],
                hour,
                true,
            ),
            (
                "window of zero: never suppress",
                vec![delivered(key, now, 1)],
                SignedDuration::ZERO,
                false,
            ),
            (
                "short window",
                vec![delivered(key, now, 10)],
                SignedDuration::from_mins(5),
                false,
            ),
        ];
        for (name, history, window, want) in cases {
            assert_eq!(suppressed(key, &history, now, window), want, "{name}");
        }
    }

    #[test]
    fn a_repeat_is_suppressed_until_the_window_has_passed() {
        // The life of one blocked notice over cron runs every 5 minutes.
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let window = SignedDuration::from_mins(30);
        let notice = blocked(600, 2000, 600, vec![redis_short()]);
        let key = notice.dedupe_key().unwrap();
        let mut history: Vec<RunRecord> = vec![];
        let mut sent_at = vec![];
        for run in 0..14 {
            let now = t0 + SignedDuration::from_mins(5 * run);
            let mut record = RunRecord::check_needing(2000, 600, now, 0);
            if !suppressed(&key, &history, now, window) {
                record.notified.push(key.clone());
                sent_at.push(5 * run);
            }
            history.push(record);
        }
        assert_eq!(sent_at, [0, 30, 60]);
    }
}
