//! Bounded fuzzing of everything that reads outside input: the config
//! parser, the HTTP and Prometheus answers, the file store's lines and the
//! Kubernetes HPA conversion. Inputs are arbitrary bytes and structured
//! mutations of real documents (`config/example.yaml`, a Prometheus vector,
//! a run record line, an HPA object): bytes flipped, inserted, deleted or
//! cut, numbers swapped for huge, negative or fractional ones, YAML aliases,
//! deep nesting and long strings spliced in. Each must give a clean `Err`
//! or a valid `Ok` — never a panic, and nothing out of range.
//!
//! The generators are proptest's with fixed seeds, so every run tries the
//! same inputs (a failure is reproducible and shrunk to its smallest form);
//! a few thousand inputs in all keep this to seconds in a debug build.

use std::path::Path;
use std::time::{Duration, Instant};

use hpa_tier::cluster::kube::hpa_from_k8s;
use hpa_tier::config;
use hpa_tier::source::http::users_at_pointer;
use hpa_tier::source::prometheus::answer;
use hpa_tier::store::file::records_in;
use hpa_tier_core::hpa::HpaRef;
use hpa_tier_core::record::RunRecord;
use hpa_tier_core::tiers::MAX_COUNT;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::{Value, json};

use crate::support::root;

/// Runs `test` on `cases` inputs of `strategy` from a fixed seed.
fn fuzz<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_ba5e),
        failure_persistence: None,
        ..Config::default()
    };
    let started = Instant::now();
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
    // A parser that blows up on some input shows here before it shows in
    // production as a hung cron run.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{cases} inputs took {:?}",
        started.elapsed()
    );
}

/// Values that have broken number parsers somewhere.
const NUMBERS: &[&str] = &[
    "-1",
    "0",
    "-0",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e308",
    "-1e308",
    "1.5",
    "0.0000001",
    "NaN",
    ".nan",
    ".inf",
    "-.inf",
    "+Inf",
    "0x7fffffff",
    "0o777",
    "\"12\"",
    "null",
    "~",
    "true",
];

/// Structure that has broken document parsers somewhere.
fn snippets() -> Vec<String> {
    vec![
        "&a x".into(),
        "*a".into(),
        "[*a, *a, *a, *a]".into(),
        "<<: *a".into(),
        "? ".into(),
        "!!binary aGk=".into(),
        "!custom {}".into(),
        "---\n".into(),
        "%YAML 1.2\n---\n".into(),
        "\t".into(),
        "\u{0}".into(),
        "\u{feff}".into(),
        "\"\\u0000\"".into(),
        "é".into(),
        "${HOME}".into(),
        "${".into(),
        "~/x".into(),
        "[".repeat(300),
        "{a: ".repeat(200),
        "- ".repeat(200),
        "x".repeat(5000),
        format!("\"{}\"", "y".repeat(70)),
        "{}".into(),
        "[]".into(),
        ":".into(),
        "#".into(),
    ]
}

/// One edit of a document.
#[derive(Clone, Debug)]
enum Edit {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Cut { at: usize },
    Number { nth: usize, to: usize },
    Splice { at: usize, what: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0..8u8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (at, any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        (at, 1..40usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        at.prop_map(|at| Edit::Cut { at }),
        (at, any::<usize>()).prop_map(|(nth, to)| Edit::Number { nth, to }),
        (at, any::<usize>()).prop_map(|(at, what)| Edit::Splice { at, what }),
    ]
}

/// `text` with `edits` applied, in order.
fn mutate(text: &str, edits: &[Edit]) -> Vec<u8> {
    let snippets = snippets();
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let at = |i: usize| if b.is_empty() { 0 } else { i % (b.len() + 1) };
        match *e {
            Edit::Flip { at: i, bit } if !b.is_empty() => {
                let i = i % b.len();
                b[i] ^= 1 << bit;
            }
            Edit::Flip { .. } => {}
            Edit::Insert { at: i, byte } => {
                let i = at(i);
                b.insert(i, byte);
            }
            Edit::Delete { at: i, len } => {
                let i = at(i);
                let end = (i + len).min(b.len());
                b.drain(i..end);
            }
            Edit::Cut { at: i } => {
                let i = at(i);
                b.truncate(i);
            }
            Edit::Number { nth, to } => {
                // The nth run of digits becomes one of NUMBERS.
                let runs: Vec<(usize, usize)> = digit_runs(&b);
                if !runs.is_empty() {
                    let (s, e) = runs[nth % runs.len()];
                    let n = NUMBERS[to % NUMBERS.len()].as_bytes();
                    b.splice(s..e, n.iter().copied());
                }
            }
            Edit::Splice { at: i, what } => {
                let i = at(i);
                let s = snippets[what % snippets.len()].as_bytes();
                b.splice(i..i, s.iter().copied());
            }
        }
    }
    b
}

fn digit_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// Mutations of `text`, and now and then arbitrary bytes.
fn inputs(text: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(edit(), 1..8).prop_map(move |e| mutate(text, &e)),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

// --- config ------------------------------------------------------------------

fn example_config() -> &'static str {
    let text = std::fs::read_to_string(root().join("config/example.yaml")).unwrap();
    Box::leak(text.into_boxed_str())
}

#[test]
fn fuzz_config_parse_gives_an_error_or_a_valid_config() {
    let env = |name: &str| Some(if name == "HOME" { "/root" } else { "x" }.to_string());
    let example = example_config();
    config::parse(example, Path::new("example.yaml"), &env).expect("the example is valid");
    fuzz(1500, inputs(example), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        match config::parse(&text, Path::new("c.yaml"), &env) {
            Err(e) => prop_assert!(e.0.starts_with("c.yaml: "), "{}", e.0),
            Ok(c) => {
                let caps = c.policy.tiers.capacities();
                prop_assert!(caps.windows(2).all(|w| w[0] < w[1]), "{caps:?}");
                prop_assert!(caps.iter().all(|c| (1..=MAX_COUNT).contains(c)));
                for t in c.policy.tiers.tiers() {
                    for (_, r) in &t.replicas {
                        prop_assert!(r.min >= 1 && r.min <= MAX_COUNT);
                        prop_assert!(r.max.is_none_or(|m| m >= r.min && m <= MAX_COUNT));
                    }
                }
                prop_assert!(c.policy.cluster.chars().count() <= 64);
                prop_assert!((1..=600).contains(&c.timeout.as_secs()));
            }
        }
        Ok(())
    });
}

// --- the users sources' answers ------------------------------------------------

const HTTP_ANSWER: &str = r#"{"online_users": 1234, "data": [{"n": "77"}, {"n": 4.5}]}"#;
const POINTERS: [&str; 5] = ["/online_users", "/data/0/n", "/data/1/n", "", "/data/9"];

#[test]
fn fuzz_http_answers_give_an_error_or_a_count_in_range() {
    assert_eq!(users_at_pointer(HTTP_ANSWER, "/online_users"), Ok(1234));
    fuzz(
        2000,
        (inputs(HTTP_ANSWER), 0..POINTERS.len()),
        |(bytes, p)| {
            let body = String::from_utf8_lossy(&bytes);
            if let Ok(u) = users_at_pointer(&body, POINTERS[p]) {
                prop_assert!(u <= MAX_COUNT, "{body} → {u}");
            }
            Ok(())
        },
    );
}

const PROMETHEUS_ANSWER: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"web"},"value":[1700000000.123,"812"]}]}}"#;

#[test]
fn fuzz_prometheus_answers_give_an_error_or_a_count_in_range() {
    assert_eq!(answer(200, PROMETHEUS_ANSWER, "q"), Ok(812));
    let status = prop_oneof![4 => Just(200u16), 1 => any::<u16>()];
    fuzz(
        2000,
        (inputs(PROMETHEUS_ANSWER), status),
        |(bytes, status)| {
            let body = String::from_utf8_lossy(&bytes);
            if let Ok(u) = answer(status, &body, "sum(up)") {
                prop_assert!((200..300).contains(&status), "{status} gave {u}");
                prop_assert!(u <= MAX_COUNT, "{body} → {u}");
            }
            Ok(())
        },
    );
}

// --- the file store's lines ------------------------------------------------------

fn record_lines() -> &'static str {
    let now = "2026-03-02T12:00:00Z".parse().unwrap();
    let mut up = RunRecord::check_needing(2000, 2000, now, 3);
    up.run_id = "up-1".into();
    up.hold_until = Some(now);
    let lines = [
        RunRecord::check_needing(600, 600, now, 5),
        RunRecord::check_needing(1000, 600, now, 10),
        up,
    ]
    .iter()
    .map(|r| {
        let mut v = serde_json::to_value(r).unwrap();
        v["cluster"] = json!("prod");
        v.to_string()
    })
    .collect::<Vec<_>>()
    .join("\n");
    Box::leak(format!("{lines}\n").into_boxed_str())
}

#[test]
fn fuzz_state_file_lines_are_records_in_range_or_skipped() {
    let text = record_lines();
    assert_eq!(records_in(text.as_bytes(), "prod").0.len(), 3);
    fuzz(2000, inputs(text), |bytes| {
        let (records, bad) = records_in(&bytes, "prod");
        let lines = bytes.split(|b| *b == b'\n').count();
        prop_assert!(records.len() + bad.len() <= lines);
        for r in &records {
            prop_assert!(r.validate().is_ok(), "{r:?}");
        }
        for (line, why) in &bad {
            prop_assert!(*line >= 1 && *line <= lines && !why.is_empty());
        }
        Ok(())
    });
}

// --- the Kubernetes HPA conversion ------------------------------------------------

fn hpa_json() -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "web", "namespace": "prod", "resourceVersion": "7",
                      "annotations": { "hpa-tier/capacity": "1000" },
                      "ownerReferences": [] },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
            "minReplicas": 3, "maxReplicas": 12,
        },
        "status": { "currentReplicas": 4, "desiredReplicas": 5, "conditions": [] },
    })
}

/// A value for one of the HPA's fields: any int32 (negative ones included),
/// or something else entirely.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<i32>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(json!("3")),
        1 => Just(json!(2.5)),
        1 => Just(json!([])),
        1 => (any::<bool>(), "[a-zA-Z./]{0,12}").prop_map(|(keda, name)| json!([{
            "apiVersion": if keda { "keda.sh/v1alpha1" } else { "apps/v1" },
            "kind": if keda { "ScaledObject" } else { "Deployment" },
            "name": name, "uid": "u",
        }])),
        1 => "\\PC{0,20}".prop_map(Value::from),
    ]
}

const HPA_FIELDS: [&str; 8] = [
    "/spec/minReplicas",
    "/spec/maxReplicas",
    "/status/currentReplicas",
    "/status/desiredReplicas",
    "/metadata/annotations/hpa-tier~1capacity",
    "/metadata/ownerReferences",
    "/spec/scaleTargetRef/kind",
    "/status",
];

#[test]
fn fuzz_hpas_from_the_api_convert_or_are_refused_never_wrapped() {
    let id = HpaRef {
        service: "web".into(),
        namespace: "prod".into(),
        name: "web".into(),
    };
    let edits = prop::collection::vec((0..HPA_FIELDS.len(), field_value()), 1..5);
    fuzz(2000, edits, |edits| {
        let mut v = hpa_json();
        for (field, value) in edits {
            if let Some(slot) = v.pointer_mut(HPA_FIELDS[field]) {
                *slot = value;
            }
        }
        // Only what the API types accept reaches the conversion.
        let Ok(k) = serde_json::from_value::<HorizontalPodAutoscaler>(v) else {
            return Ok(());
        };
        let spec = k.spec.as_ref().unwrap();
        let status = k.status.as_ref();
        let negative = spec.min_replicas.is_some_and(|n| n < 0)
            || spec.max_replicas < 0
            || status.is_some_and(|s| {
                s.current_replicas.is_some_and(|n| n < 0) || s.desired_replicas < 0
            });
        match hpa_from_k8s(&id, &k) {
            Ok(h) => {
                prop_assert!(!negative, "{k:?} → {h:?}");
                prop_assert_eq!(i64::from(h.min), i64::from(spec.min_replicas.unwrap_or(1)));
                prop_assert_eq!(i64::from(h.max), i64::from(spec.max_replicas));
                prop_assert!(h.min <= MAX_COUNT && h.max <= MAX_COUNT);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}
