//! The cluster adapter (kube-rs) against the Kubernetes stand-in over HTTP:
//! reads, patches, conflicts, every failure kind, exec-plugin credentials,
//! context selection — and kubectl, a real client, against the stand-in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hpa_tier::cluster::kube::KubeCluster;
use hpa_tier::cluster::{Cluster, ClusterError};
use hpa_tier::config::KubeSettings;
use hpa_tier_core::hpa::{HpaPatch, HpaRef, Intent};
use hpa_tier_core::tiers::Replicas;
use hpa_tier_standins::kube::{
    EXAMPLE_SERVICES, Fault, HpaSeed, KubeAuth, KubeStandin, LoggedRequest, example_hpas,
    replicated_hpas, write_exec_plugin,
};
use serde_json::{Value, json};

use crate::support;

const CONTEXT: &str = "arn:aws:eks:us-east-2:123456789012:cluster/prod";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The six managed HPAs of config/example.yaml.
fn example_refs() -> Vec<HpaRef> {
    EXAMPLE_SERVICES
        .iter()
        .map(|(service, ns, name, _)| HpaRef {
            service: service.to_string(),
            namespace: ns.to_string(),
            name: name.to_string(),
        })
        .collect()
}

fn find<'a>(refs: &'a [HpaRef], service: &str) -> &'a HpaRef {
    refs.iter().find(|r| r.service == service).unwrap()
}

/// The 1000 tier of the example table; `max` only where it must change.
fn tier_1000(refs: &[HpaRef]) -> Vec<HpaPatch> {
    let min = |s: &str| match s {
        "istio-ingress" => 4,
        "web" => 3,
        "hermes" => 4,
        "passport" => 8,
        _ => 2,
    };
    refs.iter()
        .map(|r| HpaPatch {
            id: r.clone(),
            min: min(&r.service),
            max: None,
            capacity: 1000,
            intent: Intent::Exact,
            tier: Replicas {
                min: min(&r.service),
                max: None,
            },
        })
        .collect()
}

/// A stand-in with the six example HPAs and a kubeconfig (static token
/// `auth`) whose named context points at it.
struct Fixture {
    standin: KubeStandin,
    dir: tempfile::TempDir,
    settings: KubeSettings,
}

impl Fixture {
    fn new() -> Self {
        Self::with(example_hpas(), &KubeAuth::None)
    }

    fn with(seeds: Vec<HpaSeed>, auth: &KubeAuth) -> Self {
        let standin = KubeStandin::start();
        standin.seed_all(seeds);
        let dir = support::tempdir();
        let path = dir.path().join("kubeconfig");
        standin.write_kubeconfig(&path, CONTEXT, auth);
        Fixture {
            standin,
            dir,
            settings: KubeSettings {
                kubeconfig: Some(path),
                context: Some(CONTEXT.into()),
            },
        }
    }

    async fn connect(&self, timeout: Duration) -> KubeCluster {
        match KubeCluster::connect(&self.settings, timeout).await {
            Ok(c) => c,
            Err(e) => panic!("connect: {e}"),
        }
    }

    fn hpa(&self, ns: &str, name: &str) -> Value {
        self.standin.hpa(ns, name).expect("HPA in the stand-in")
    }

    /// HPA API requests (method, namespace/name) in arrival order.
    fn calls(&self) -> Vec<(String, String)> {
        self.standin
            .requests()
            .iter()
            .filter(|r| r.is_hpa_api())
            .map(|r| {
                let (ns, name) = r.hpa().unwrap_or_default();
                (r.method.clone(), format!("{ns}/{name}"))
            })
            .collect()
    }

    fn requests_for(&self, ns: &str, name: &str) -> Vec<LoggedRequest> {
        self.standin
            .requests()
            .into_iter()
            .filter(|r| r.hpa() == Some((ns.into(), name.into())))
            .collect()
    }
}

fn count(calls: &[(String, String)], method: &str) -> usize {
    calls.iter().filter(|(m, _)| m == method).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_six_hpas_concurrently_in_one_round_trip() {
    let mut seeds = example_hpas();
    seeds[2] = HpaSeed::new("prod", "web")
        .min(3)
        .max(12)
        .recommending(5)
        .annotation("hpa-tier/capacity", "1000");
    let fx = Fixture::with(seeds, &KubeAuth::None);
    let cluster = fx.connect(TIMEOUT).await;
    let latency = Duration::from_millis(300);
    fx.standin.set_latency(latency);
    let refs = example_refs();

    let started = Instant::now();
    let read = cluster.read(&refs).await;
    let took = started.elapsed();

    assert!(
        took >= latency && took < latency * 2,
        "six reads took {took:?} with {latency:?} per response: not concurrent"
    );
    // Exactly one GET per HPA; connecting sent nothing (no discovery, no list).
    let requests = fx.standin.requests();
    assert_eq!(requests.len(), 6, "{requests:?}");
    assert!(requests.iter().all(|r| r.verb() == "get"), "{requests:?}");

    let hpas: Vec<_> = read.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        hpas.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        refs,
        "one result per input, in input order"
    );
    let web = &hpas[2];
    assert_eq!((web.min, web.max), (3, 12));
    assert_eq!(
        (web.current_replicas, web.desired_replicas),
        (Some(5), Some(5))
    );
    assert_eq!(web.capacity_annotation.as_deref(), Some("1000"));
    assert_eq!(web.target.as_deref(), Some("Deployment/web"));
    let conditions: Vec<(&str, &str, Option<&str>)> = web
        .conditions
        .iter()
        .map(|c| (c.kind.as_str(), c.status.as_str(), c.reason.as_deref()))
        .collect();
    assert_eq!(
        conditions,
        vec![
            ("AbleToScale", "True", Some("ReadyForNewScale")),
            ("ScalingActive", "True", Some("ValidMetricFound")),
            ("ScalingLimited", "False", Some("DesiredWithinRange")),
        ]
    );
    let ingress = &hpas[0];
    assert_eq!((ingress.min, ingress.max), (2, 20));
    assert_eq!(
        ingress.target.as_deref(),
        Some("Deployment/istio-ingressgateway")
    );
    assert_eq!(ingress.capacity_annotation, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_change_patches_min_and_the_annotation_and_nothing_else() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    let before: Vec<Value> = refs.iter().map(|r| fx.hpa(&r.namespace, &r.name)).collect();
    assert!(cluster.read(&refs).await.iter().all(Result::is_ok));
    fx.standin.clear_requests();

    let mut patches = tier_1000(&refs);
    // hermes must go above its maxReplicas of 10: the tier sets max too.
    let hermes = patches
        .iter_mut()
        .find(|p| p.id.service == "hermes")
        .unwrap();
    hermes.min = 12;
    hermes.max = Some(14);
    let applied = cluster.apply(&patches).await;

    // One PATCH per HPA and nothing else: the read's resourceVersion is reused.
    let requests = fx.standin.requests();
    assert_eq!(requests.len(), 6, "{requests:?}");
    for (p, old) in patches.iter().zip(&before) {
        let sent = fx.requests_for(&p.id.namespace, &p.id.name);
        assert_eq!(sent.len(), 1, "{}", p.id);
        let r = &sent[0];
        assert_eq!((r.method.as_str(), r.verb()), ("PATCH", "patch"));
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        let mut spec = json!({ "minReplicas": p.min });
        if let Some(max) = p.max {
            spec["maxReplicas"] = json!(max);
        }
        assert_eq!(
            r.json(),
            json!({
                "metadata": {
                    "annotations": { "hpa-tier/capacity": "1000" },
                    "resourceVersion": old["metadata"]["resourceVersion"],
                },
                "spec": spec,
            }),
            "patch body of {}",
            p.id
        );
    }

    for ((p, old), result) in patches.iter().zip(&before).zip(&applied) {
        let now = fx.hpa(&p.id.namespace, &p.id.name);
        let hpa = result.as_ref().unwrap_or_else(|e| panic!("{}: {e}", p.id));
        let want_max = p
            .max
            .unwrap_or(old["spec"]["maxReplicas"].as_u64().unwrap() as u32);
        assert_eq!((hpa.min, hpa.max), (p.min, want_max), "{}", p.id);
        assert_eq!(hpa.capacity_annotation.as_deref(), Some("1000"));
        assert_eq!(now["spec"]["minReplicas"], p.min);
        assert_eq!(now["spec"]["maxReplicas"], want_max);
        assert_eq!(
            now["spec"]["metrics"], old["spec"]["metrics"],
            "metrics of {}",
            p.id
        );
        assert_eq!(
            now["spec"]["behavior"], old["spec"]["behavior"],
            "behavior of {}",
            p.id
        );
        assert_eq!(now["spec"]["scaleTargetRef"], old["spec"]["scaleTargetRef"]);
        assert_eq!(now["metadata"]["labels"], old["metadata"]["labels"]);
        // The controller followed: at least min replicas now.
        assert_eq!(hpa.desired_replicas, Some(p.min), "{}", p.id);
        assert_eq!(now["status"]["currentReplicas"], p.min);
    }

    // A second apply is again one PATCH each: the cache follows the answers.
    fx.standin.clear_requests();
    assert!(cluster.apply(&patches).await.iter().all(Result::is_ok));
    assert_eq!(count(&fx.calls(), "PATCH"), 6);
    assert_eq!(fx.calls().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_a_read_first_reads_each_hpa_once() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    let applied = cluster.apply(&tier_1000(&refs)).await;
    assert!(applied.iter().all(Result::is_ok), "{applied:?}");
    let calls = fx.calls();
    assert_eq!(
        (count(&calls, "GET"), count(&calls, "PATCH")),
        (6, 6),
        "{calls:?}"
    );
    assert_eq!(fx.hpa("prod", "passport")["spec"]["minReplicas"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_conflicts_are_retried_with_a_fresh_read() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    cluster.read(&refs).await;
    fx.standin.clear_requests();
    fx.standin.fail("prod", "web", Fault::Conflicts(2));

    let applied = cluster.apply(&tier_1000(&refs)).await;

    assert!(applied.iter().all(Result::is_ok), "{applied:?}");
    let web: Vec<String> = fx
        .requests_for("prod", "web")
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(web, ["PATCH", "GET", "PATCH", "GET", "PATCH"]);
    assert_eq!(fx.hpa("prod", "web")["spec"]["minReplicas"], 3);
    assert_eq!(
        count(&fx.calls(), "PATCH"),
        8,
        "the others were patched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_conflicts_and_the_retry_keeps_max_at_least_min() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    cluster.read(&refs).await;
    // Someone lowers web's max to 2 after our read: our resourceVersion is stale.
    fx.standin.edit("prod", "web", |h| {
        h["spec"]["maxReplicas"] = json!(2);
    });
    let edited_rv = fx.hpa("prod", "web")["metadata"]["resourceVersion"].clone();
    fx.standin.clear_requests();

    let web = find(&refs, "web").clone();
    let applied = cluster
        .apply(&[HpaPatch {
            id: web,
            min: 3,
            max: None,
            capacity: 1000,
            intent: Intent::Exact,
            tier: Replicas { min: 3, max: None },
        }])
        .await;

    let hpa = applied[0].as_ref().unwrap();
    assert_eq!((hpa.min, hpa.max), (3, 3));
    let sent = fx.requests_for("prod", "web");
    let methods: Vec<&str> = sent.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PATCH", "GET", "PATCH"]);
    assert_ne!(sent[0].json()["metadata"]["resourceVersion"], edited_rv);
    assert_eq!(sent[2].json()["metadata"]["resourceVersion"], edited_rv);
    assert_eq!(
        sent[2].json()["spec"],
        json!({ "minReplicas": 3, "maxReplicas": 3 })
    );
}

/// One 409 re-plan: web read at min 2 / max 10 (annotated 1000), someone
/// edits it before our PATCH lands; what the retry sends and leaves.
struct Replan {
    what: &'static str,
    intent: Intent,
    /// The tier's web replicas (min, max).
    tier: (u32, Option<u32>),
    /// What the other writer sets: (min, max).
    meanwhile: (u32, u32),
    /// The retry's `spec` body, or `None`: no second PATCH at all.
    retry: Option<Value>,
    /// web afterwards: (min, max).
    after: (u32, u32),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_is_planned_again_from_what_someone_else_wrote_meanwhile() {
    let cases = [
        Replan {
            what: "between tier changes a value raised meanwhile is kept: nothing left to do",
            intent: Intent::RaiseOnly,
            tier: (3, None),
            meanwhile: (5, 10),
            retry: None,
            after: (5, 10),
        },
        Replan {
            what: "between tier changes a raised max is kept; min still goes up to the tier",
            intent: Intent::RaiseOnly,
            tier: (3, None),
            meanwhile: (2, 20),
            retry: Some(json!({ "minReplicas": 3 })),
            after: (3, 20),
        },
        Replan {
            what: "between tier changes a max lowered below the tier is raised with min",
            intent: Intent::RaiseOnly,
            tier: (3, None),
            meanwhile: (1, 2),
            retry: Some(json!({ "minReplicas": 3, "maxReplicas": 3 })),
            after: (3, 3),
        },
        Replan {
            what: "a tier change sets the tier's exact values over a raise",
            intent: Intent::Exact,
            tier: (3, None),
            meanwhile: (5, 10),
            retry: Some(json!({ "minReplicas": 3 })),
            after: (3, 10),
        },
        Replan {
            what: "a tier change with an explicit max sets it over a raised one",
            intent: Intent::Exact,
            tier: (3, Some(12)),
            meanwhile: (5, 30),
            retry: Some(json!({ "minReplicas": 3, "maxReplicas": 12 })),
            after: (3, 12),
        },
        Replan {
            what: "a tier change raises a max lowered below its min meanwhile",
            intent: Intent::Exact,
            tier: (6, None),
            meanwhile: (2, 4),
            retry: Some(json!({ "minReplicas": 6, "maxReplicas": 6 })),
            after: (6, 6),
        },
    ];
    for c in cases {
        let mut seeds = example_hpas();
        seeds[2] = HpaSeed::new("prod", "web")
            .min(2)
            .max(10)
            .annotation("hpa-tier/capacity", "1000");
        let fx = Fixture::with(seeds, &KubeAuth::None);
        let cluster = fx.connect(TIMEOUT).await;
        let refs = example_refs();
        let read = cluster.read(&refs).await;
        let seen = read[2].as_ref().unwrap();
        let (tier_min, tier_max) = c.tier;
        let tier = Replicas {
            min: tier_min,
            max: tier_max,
        };
        let (min, max, _) = hpa_tier_core::hpa::target(tier, seen, c.intent);
        let planned = HpaPatch {
            id: find(&refs, "web").clone(),
            min,
            max: (max != seen.max).then_some(max),
            capacity: 1000,
            intent: c.intent,
            tier,
        };
        // The other writer lands between our read and our PATCH.
        fx.standin.edit("prod", "web", |h| {
            h["spec"]["minReplicas"] = json!(c.meanwhile.0);
            h["spec"]["maxReplicas"] = json!(c.meanwhile.1);
        });
        let edited_rv = fx.hpa("prod", "web")["metadata"]["resourceVersion"].clone();
        fx.standin.clear_requests();

        let applied = cluster.apply(std::slice::from_ref(&planned)).await;

        let hpa = applied[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", c.what));
        assert_eq!((hpa.min, hpa.max), c.after, "{}: returned", c.what);
        let now = fx.hpa("prod", "web");
        assert_eq!(
            (
                now["spec"]["minReplicas"].clone(),
                now["spec"]["maxReplicas"].clone()
            ),
            (json!(c.after.0), json!(c.after.1)),
            "{}: in the cluster",
            c.what
        );
        assert_eq!(now["metadata"]["annotations"]["hpa-tier/capacity"], "1000");
        let sent = fx.requests_for("prod", "web");
        let methods: Vec<&str> = sent.iter().map(|r| r.method.as_str()).collect();
        match &c.retry {
            None => assert_eq!(methods, ["PATCH", "GET"], "{}", c.what),
            Some(spec) => {
                assert_eq!(methods, ["PATCH", "GET", "PATCH"], "{}", c.what);
                assert_eq!(&sent[2].json()["spec"], spec, "{}: retry body", c.what);
                assert_eq!(
                    sent[2].json()["metadata"]["resourceVersion"],
                    edited_rv,
                    "{}: the retry is based on the re-read",
                    c.what
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_that_never_stop_are_given_up_after_bounded_attempts() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    cluster.read(&refs).await;
    fx.standin.fail("prod", "gateway", Fault::Conflicts(1000));

    let applied = cluster.apply(&tier_1000(&refs)).await;

    let err = applied[1].clone().unwrap_err();
    assert_eq!(
        err,
        ClusterError::Conflict {
            hpa: "prod/gateway".into(),
            attempts: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "HPA prod/gateway: still conflicting after 5 attempts"
    );
    let patches = fx
        .requests_for("prod", "gateway")
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 5);
    assert_eq!(applied.iter().filter(|r| r.is_ok()).count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_failure_is_reported_per_hpa_with_its_cause() {
    let fx = Fixture::new();
    let timeout = Duration::from_secs(1);
    let cluster = fx.connect(timeout).await;
    let refs = example_refs();
    assert!(cluster.read(&refs).await.iter().all(Result::is_ok));
    fx.standin.fail("prod", "gateway", Fault::Hang);
    fx.standin.fail("prod", "web", Fault::NotFound);
    fx.standin.fail("prod", "hermes", Fault::Forbidden("patch"));
    let webhook = "admission webhook \"hpa-guard.example.com\" denied the request: minReplicas changes need a change ticket";
    fx.standin
        .fail("prod", "passport", Fault::Invalid(webhook.into()));
    fx.standin.fail("prod", "project", Fault::ServerError);

    let started = Instant::now();
    let applied = cluster.apply(&tier_1000(&refs)).await;
    let took = started.elapsed();

    assert!(
        took < timeout * 2,
        "a hung HPA held the others up: {took:?}"
    );
    let hpa = applied[0].as_ref().expect("istio-ingress is fine");
    assert_eq!(hpa.min, 4);
    assert_eq!(
        fx.hpa("istio-system", "ingressgateway-hpa")["spec"]["minReplicas"],
        4
    );

    let msg = |i: usize| applied[i].as_ref().unwrap_err().to_string();
    assert!(
        matches!(applied[1], Err(ClusterError::Timeout(_))),
        "{:?}",
        applied[1]
    );
    assert!(
        msg(1).starts_with("HPA prod/gateway: the API server at http://127.0.0.1:")
            && msg(1).ends_with("did not answer the patch within 1s (timeout_seconds)"),
        "{}",
        msg(1)
    );
    assert_eq!(applied[2], Err(ClusterError::NotFound("prod/web".into())));
    assert_eq!(msg(2), "HPA prod/web not found");
    assert!(matches!(applied[3], Err(ClusterError::Forbidden(_))));
    assert!(
        msg(3).starts_with(
            "HPA prod/hermes: RBAC forbids `patch` on horizontalpodautoscalers (API group autoscaling) in namespace prod"
        ),
        "{}",
        msg(3)
    );
    assert!(
        msg(3).contains("cannot patch resource \"horizontalpodautoscalers\""),
        "{}",
        msg(3)
    );
    assert!(matches!(applied[4], Err(ClusterError::Rejected(_))));
    assert!(
        msg(4).starts_with("HPA prod/passport: the API server rejected the patch: "),
        "{}",
        msg(4)
    );
    assert!(msg(4).ends_with(webhook), "{}", msg(4));
    assert!(matches!(applied[5], Err(ClusterError::Api(_))));
    assert!(
        msg(5).starts_with("HPA prod/project: the API server at http://127.0.0.1:"),
        "{}",
        msg(5)
    );
    assert!(
        msg(5).contains(
            "answered the patch with 500 InternalError: Internal error occurred: etcdserver"
        ),
        "{}",
        msg(5)
    );
    // None of them changed; only the healthy one did.
    for (ns, name) in [
        ("prod", "web"),
        ("prod", "hermes"),
        ("prod", "passport"),
        ("prod", "project"),
    ] {
        assert_eq!(fx.hpa(ns, name)["spec"]["minReplicas"], 2, "{ns}/{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_failure_is_reported_per_hpa_with_its_cause() {
    let fx = Fixture::new();
    let timeout = Duration::from_secs(1);
    let cluster = fx.connect(timeout).await;
    fx.standin.fail("prod", "gateway", Fault::Hang);
    fx.standin.fail("prod", "web", Fault::NotFound);
    fx.standin.fail("prod", "hermes", Fault::Forbidden("get"));
    fx.standin.fail("prod", "project", Fault::ServerError);

    let started = Instant::now();
    let read = cluster.read(&example_refs()).await;
    assert!(started.elapsed() < timeout * 2);

    assert_eq!(read[0].as_ref().unwrap().id.name, "ingressgateway-hpa");
    assert!(
        matches!(read[1], Err(ClusterError::Timeout(_))),
        "{:?}",
        read[1]
    );
    assert_eq!(read[2], Err(ClusterError::NotFound("prod/web".into())));
    let forbidden = read[3].as_ref().unwrap_err().to_string();
    assert!(
        forbidden.contains("RBAC forbids `get` on horizontalpodautoscalers"),
        "{forbidden}"
    );
    assert!(read[4].is_ok());
    assert!(
        read[5]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("500 InternalError")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_above_max_gets_the_api_servers_own_422_message() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    cluster.read(&refs).await;
    let applied = cluster
        .apply(&[HpaPatch {
            id: find(&refs, "web").clone(),
            min: 12,
            max: None,
            capacity: 3000,
            intent: Intent::Exact,
            tier: Replicas { min: 12, max: None },
        }])
        .await;
    assert_eq!(
        applied[0],
        Err(ClusterError::Rejected(
            "HPA prod/web: the API server rejected the patch: HorizontalPodAutoscaler.autoscaling \"web\" is invalid: \
             spec.maxReplicas: Invalid value: 10: must be greater than or equal to `minReplicas`"
                .into()
        ))
    );
    let web = fx.hpa("prod", "web");
    assert_eq!(
        (
            web["spec"]["minReplicas"].as_u64(),
            web["metadata"].get("annotations")
        ),
        (Some(2), None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_owned_by_keda_is_refused_and_never_patched() {
    let mut seeds = example_hpas();
    seeds[2] = HpaSeed::new("prod", "web").owned_by_keda("web-scaledobject");
    let fx = Fixture::with(seeds, &KubeAuth::None);
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();

    let read = cluster.read(&refs).await;
    let err = read[2].clone().unwrap_err();
    assert!(matches!(err, ClusterError::ForeignOwner(_)));
    assert!(
        err.to_string()
            .starts_with("HPA prod/web belongs to the KEDA ScaledObject `web-scaledobject`"),
        "{err}"
    );
    assert_eq!(read.iter().filter(|r| r.is_ok()).count(), 5);

    let applied = cluster.apply(&tier_1000(&refs)).await;
    assert!(matches!(applied[2], Err(ClusterError::ForeignOwner(_))));
    let web_methods: Vec<String> = fx
        .requests_for("prod", "web")
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert!(
        !web_methods.contains(&"PATCH".to_string()),
        "{web_methods:?}"
    );
    assert_eq!(fx.hpa("prod", "web")["spec"]["minReplicas"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_hpas_read_and_patch_in_about_one_round_trip_each() {
    let seeds = replicated_hpas(10);
    let refs: Vec<HpaRef> = seeds
        .iter()
        .map(|s| {
            let m = s.manifest();
            let name = m["metadata"]["name"].as_str().unwrap().to_string();
            HpaRef {
                service: name.clone(),
                namespace: m["metadata"]["namespace"].as_str().unwrap().into(),
                name,
            }
        })
        .collect();
    assert_eq!(refs.len(), 60);
    let fx = Fixture::with(seeds, &KubeAuth::None);
    let cluster = fx.connect(TIMEOUT).await;
    let latency = Duration::from_millis(300);
    fx.standin.set_latency(latency);

    let started = Instant::now();
    let read = cluster.read(&refs).await;
    let read_took = started.elapsed();
    let patches: Vec<HpaPatch> = refs
        .iter()
        .map(|r| HpaPatch {
            id: r.clone(),
            min: 3,
            max: None,
            capacity: 1000,
            intent: Intent::Exact,
            tier: Replicas { min: 3, max: None },
        })
        .collect();
    let started = Instant::now();
    let applied = cluster.apply(&patches).await;
    let apply_took = started.elapsed();

    assert!(read.iter().chain(&applied).all(Result::is_ok));
    assert!(
        read_took < latency * 2,
        "reading 60 HPAs took {read_took:?}"
    );
    assert!(
        apply_took < latency * 2,
        "patching 60 HPAs took {apply_took:?}"
    );
    let calls = fx.calls();
    assert_eq!((count(&calls, "GET"), count(&calls, "PATCH")), (60, 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exec_credential_plugin_supplies_the_bearer_token() {
    let dir = support::tempdir();
    let plugin = write_exec_plugin(dir.path(), "aws", "k8s-aws-v1.plugin-token");
    let auth = KubeAuth::Exec {
        command: plugin,
        args: [
            "--region",
            "us-east-2",
            "eks",
            "get-token",
            "--cluster-name",
            "prod",
            "--output",
            "json",
        ]
        .map(String::from)
        .to_vec(),
    };
    let fx = Fixture::with(example_hpas(), &auth);
    fx.standin.require_token("k8s-aws-v1.plugin-token");

    let cluster = fx.connect(TIMEOUT).await;
    let read = cluster.read(&example_refs()).await;

    assert!(read.iter().all(Result::is_ok), "{read:?}");
    let calls = std::fs::read_to_string(dir.path().join("aws.calls")).unwrap();
    assert_eq!(
        calls.lines().next(),
        Some("--region us-east-2 eks get-token --cluster-name prod --output json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_a_per_hpa_credentials_error() {
    let fx = Fixture::with(example_hpas(), &KubeAuth::Token("expired-token".into()));
    fx.standin.require_token("the-right-token");
    let cluster = fx.connect(TIMEOUT).await;
    let read = cluster.read(&example_refs()).await;
    for r in &read {
        let msg = r.as_ref().unwrap_err().to_string();
        assert!(
            msg.contains("rejected the credentials (401 Unauthorized)"),
            "{msg}"
        );
        assert!(!msg.contains("expired-token"), "the token leaked: {msg}");
    }
    assert!(
        read[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("HPA prod/web: ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_exec_plugin_is_named_with_its_stderr() {
    let dir = support::tempdir();
    let plugin = dir.path().join("aws");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho 'An error occurred (ExpiredToken): The security token included in the request is expired' >&2\nexit 255\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fx = Fixture::with(
        example_hpas(),
        &KubeAuth::Exec {
            command: plugin.clone(),
            args: vec![],
        },
    );

    let err = KubeCluster::connect(&fx.settings, TIMEOUT)
        .await
        .err()
        .expect("connect must fail");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "the kubeconfig's exec credential plugin `{}` failed (exit status: 255)",
            plugin.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("ExpiredToken"), "{msg}");
}

/// A kubeconfig with two contexts: the current one points at a dead port,
/// the named EKS one at the stand-in.
fn two_context_kubeconfig(dir: &Path, standin: &KubeStandin) -> PathBuf {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: staging
  cluster: {{ server: "http://{dead}" }}
- name: prod
  cluster: {{ server: "{url}" }}
users:
- name: me
  user: {{}}
contexts:
- name: staging
  context: {{ cluster: staging, user: me }}
- name: "{CONTEXT}"
  context: {{ cluster: prod, user: me }}
current-context: staging
"#,
        url = standin.url()
    );
    let path = dir.join("two-contexts");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_context_is_used_not_the_current_one() {
    let fx = Fixture::new();
    let path = two_context_kubeconfig(fx.dir.path(), &fx.standin);
    let settings = |context: Option<&str>| KubeSettings {
        kubeconfig: Some(path.clone()),
        context: context.map(str::to_string),
    };
    let timeout = Duration::from_secs(2);

    let named = KubeCluster::connect(&settings(Some(CONTEXT)), timeout)
        .await
        .unwrap();
    assert!(named.read(&example_refs()).await.iter().all(Result::is_ok));

    let current = KubeCluster::connect(&settings(None), timeout)
        .await
        .unwrap();
    let msg = current.read(&example_refs()).await[0]
        .clone()
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(
            "HPA istio-system/ingressgateway-hpa: cannot get it at the API server http://127.0.0.1:"
        ),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");

    let err = KubeCluster::connect(
        &settings(Some("arn:aws:eks:us-east-2:123456789012:cluster/typo")),
        timeout,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "kubeconfig {} has no context `arn:aws:eks:us-east-2:123456789012:cluster/typo` (it has: staging, {CONTEXT}); \
             check cluster_context and eks_cluster_name",
            path.display()
        )
    );
}

/// kubectl with the stand-in's kubeconfig and a private discovery cache.
fn kubectl(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let kubeconfig = fx.settings.kubeconfig.as_ref().unwrap();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(fx.dir.path().join("kubectl-cache"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output();
    match out {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run kubectl ({e}): scripts/test.sh installs it (Debian: kubernetes-client)"
        ),
    }
}

#[test]
fn kubectl_lists_and_patches_hpas_on_the_standin() {
    let fx = Fixture::new();

    let out = kubectl(&fx, &["get", "hpa", "-A"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let stdout = support::stdout(&out);
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAMESPACE",
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ]
    );
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_eq!(
        lines[1][..3],
        [
            "istio-system",
            "ingressgateway-hpa",
            "Deployment/istio-ingressgateway"
        ]
    );
    assert!(stdout.contains("cpu: 70%/70%"), "{stdout}");

    let out = kubectl(
        &fx,
        &[
            "patch",
            "hpa",
            "web",
            "-n",
            "prod",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"minReplicas":3}}"#,
        ],
    );
    assert_eq!(
        support::stdout(&out).trim(),
        "horizontalpodautoscaler.autoscaling/web patched",
        "{}",
        support::stderr(&out)
    );
    let web = fx.hpa("prod", "web");
    assert_eq!(
        (
            web["spec"]["minReplicas"].as_u64(),
            web["status"]["currentReplicas"].as_u64()
        ),
        (Some(3), Some(3))
    );

    // kubectl's default patch type is the strategic merge patch.
    let out = kubectl(
        &fx,
        &[
            "patch",
            "hpa",
            "web",
            "-n",
            "prod",
            "-p",
            r#"{"spec":{"maxReplicas":12}}"#,
        ],
    );
    assert!(out.status.success(), "{}", support::stderr(&out));
    let out = kubectl(
        &fx,
        &[
            "patch",
            "hpa",
            "web",
            "-n",
            "prod",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/minReplicas","value":4}]"#,
        ],
    );
    assert!(out.status.success(), "{}", support::stderr(&out));
    let out = kubectl(
        &fx,
        &[
            "get",
            "hpa",
            "web",
            "-n",
            "prod",
            "-o",
            "jsonpath={.spec.minReplicas}/{.spec.maxReplicas}/{.status.desiredReplicas}",
        ],
    );
    assert_eq!(support::stdout(&out), "4/12/4");

    // Server-side apply (kubectl's client-side schema validation needs
    // OpenAPI, which the stand-in does not serve).
    let manifest = support::write(
        fx.dir.path(),
        "web.yaml",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: prod}\n\
         spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 5\n  maxReplicas: 12\n",
    );
    let out = kubectl(
        &fx,
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "-f",
            &manifest,
        ],
    );
    assert_eq!(
        support::stdout(&out).trim(),
        "horizontalpodautoscaler.autoscaling/web serverside-applied",
        "{}",
        support::stderr(&out)
    );
    assert_eq!(fx.hpa("prod", "web")["spec"]["minReplicas"], 5);
    assert!(
        fx.hpa("prod", "web")["spec"]["behavior"].is_object(),
        "apply keeps fields it does not name"
    );

    let out = kubectl(
        &fx,
        &[
            "patch",
            "hpa",
            "web",
            "-n",
            "prod",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"minReplicas":40}}"#,
        ],
    );
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains(
            "spec.maxReplicas: Invalid value: 12: must be greater than or equal to `minReplicas`"
        ),
        "{}",
        support::stderr(&out)
    );
    let out = kubectl(&fx, &["get", "hpa", "nope", "-n", "prod"]);
    assert!(
        support::stderr(&out).contains(r#"horizontalpodautoscalers.autoscaling "nope" not found"#),
        "{}",
        support::stderr(&out)
    );

    // kubectl found the API through discovery, as against a real server.
    let paths: Vec<String> = fx
        .standin
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        paths.iter().any(|p| p == "/apis/autoscaling/v2"),
        "{paths:?}"
    );
}

/// kubectl's stdout for `line` (split at spaces) and then `more`,
/// asserting it succeeded.
fn kubectl_ok(fx: &Fixture, line: &str, more: &[&str]) -> String {
    let args = [line.split(' ').collect(), more.to_vec()].concat();
    let out = kubectl(fx, &args);
    assert!(
        out.status.success(),
        "kubectl {line}: {}",
        support::stderr(&out)
    );
    support::stdout(&out)
}

/// kubectl's stderr for `line` and then `more`, asserting it failed.
fn kubectl_err(fx: &Fixture, line: &str, more: &[&str]) -> String {
    let args = [line.split(' ').collect(), more.to_vec()].concat();
    let out = kubectl(fx, &args);
    assert!(
        !out.status.success(),
        "kubectl {line} should fail: {}",
        support::stdout(&out)
    );
    support::stderr(&out)
}

#[test]
fn kubectl_reads_and_writes_configmaps_on_the_standin() {
    let fx = Fixture::new();
    let record = r#"{"run_id":"0123abcd","outcome":"ok"}"#;
    fx.standin
        .seed_configmap("hpa-tier", "hpa-tier-spool", [("0123abcd", record)]);

    let got = kubectl_ok(&fx, "get configmap -n hpa-tier hpa-tier-spool -o json", &[]);
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(
        (got["kind"].as_str(), got["data"]["0123abcd"].as_str()),
        (Some("ConfigMap"), Some(record))
    );
    let held = fx.standin.configmap("hpa-tier", "hpa-tier-spool").unwrap();
    assert_eq!(
        got["metadata"]["resourceVersion"],
        held["metadata"]["resourceVersion"]
    );

    // kubectl create sends protobuf; the stand-in decodes it.
    let created = kubectl_ok(
        &fx,
        "create configmap extra -n hpa-tier --from-literal=a=b",
        &[],
    );
    assert_eq!(created.trim(), "configmap/extra created");
    let table = kubectl_ok(&fx, "get cm -n hpa-tier", &[]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "DATA", "AGE"], "{table}");
    assert_eq!(
        rows[1..].iter().map(|r| &r[..2]).collect::<Vec<_>>(),
        [["extra", "1"], ["hpa-tier-spool", "1"]],
        "{table}"
    );
    let err = kubectl_err(
        &fx,
        "create configmap extra -n hpa-tier --from-literal=a=c",
        &[],
    );
    assert!(
        err.contains(r#"error: failed to create configmap: configmaps "extra" already exists"#),
        "{err}"
    );

    // A replace based on a read that a patch has since overtaken conflicts.
    let before = kubectl_ok(&fx, "get configmap extra -n hpa-tier -o json", &[]);
    let stale = support::write(fx.dir.path(), "extra.json", &before);
    let patched = kubectl_ok(
        &fx,
        "patch configmap extra -n hpa-tier --type merge -p",
        &[r#"{"data":{"c":"d"}}"#],
    );
    assert_eq!(patched.trim(), "configmap/extra patched");
    let err = kubectl_err(&fx, "replace --validate=false -f", &[&stale]);
    assert!(
        err.contains(
            r#"Operation cannot be fulfilled on configmaps "extra": the object has been modified"#
        ),
        "{err}"
    );
    let data = fx.standin.configmap_data("hpa-tier", "extra").unwrap();
    assert_eq!(
        data.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["a=b", "c=d"]
    );

    // The API server's 1 MiB limit on the data, in its own words.
    let big = support::write(fx.dir.path(), "big", &"x".repeat(1024 * 1024 + 1));
    let err = kubectl_err(
        &fx,
        "create configmap big -n hpa-tier",
        &[&format!("--from-file=big={big}")],
    );
    assert!(
        err.contains(
            r#"ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes"#
        ),
        "{err}"
    );
    assert_eq!(fx.standin.configmap("hpa-tier", "big"), None);

    fx.standin
        .fail_configmap("hpa-tier", "extra", Fault::Forbidden("get"));
    let err = kubectl_err(&fx, "get configmap extra -n hpa-tier", &[]);
    assert!(
        err.contains(
            r#"Error from server (Forbidden): configmaps "extra" is forbidden: User "system:serviceaccount:hpa-tier:hpa-tier" cannot get resource "configmaps" in API group "" in the namespace "hpa-tier""#
        ),
        "{err}"
    );
    fx.standin.clear_faults();

    let deleted = kubectl_ok(&fx, "delete configmap extra -n hpa-tier", &[]);
    assert_eq!(deleted.trim(), r#"configmap "extra" deleted"#);
    assert_eq!(fx.standin.configmap("hpa-tier", "extra"), None);
    let err = kubectl_err(&fx, "get configmap extra -n hpa-tier", &[]);
    assert!(err.contains(r#"configmaps "extra" not found"#), "{err}");
    assert!(
        fx.standin
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1" && r.method == "GET"),
        "kubectl found ConfigMaps through discovery"
    );
}

/// The stand-in's answer as kube-rs reports it: `(code, reason, message)`.
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_writes_configmaps_under_the_resource_version_lock() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

    let fx = Fixture::new();
    fx.standin.add_namespace("hpa-tier");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(fx.settings.kubeconfig.as_ref().unwrap()).unwrap();
    let options = kube::config::KubeConfigOptions {
        context: Some(CONTEXT.into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config).unwrap(), "hpa-tier");
    let pp = PostParams::default();
    let spool = |data: &[(&str, &str)]| ConfigMap {
        metadata: ObjectMeta {
            name: Some("spool".into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };

    assert!(api.get_opt("spool").await.unwrap().is_none());
    let created = api.create(&pp, &spool(&[("r1", "{}")])).await.unwrap();
    assert_eq!(
        api_error(api.create(&pp, &spool(&[])).await),
        (
            409,
            "AlreadyExists".into(),
            r#"configmaps "spool" already exists"#.into()
        )
    );

    // Another writer moves the resourceVersion: a replace from the old read conflicts.
    fx.standin
        .edit_configmap("hpa-tier", "spool", |o| o["data"]["r0"] = json!("{}"));
    let mut stale = created.clone();
    stale
        .data
        .get_or_insert_default()
        .insert("r2".into(), "{}".into());
    let (code, reason, _) = api_error(api.replace("spool", &pp, &stale).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let mut fresh = api.get("spool").await.unwrap();
    fresh
        .data
        .get_or_insert_default()
        .insert("r2".into(), "{}".into());
    let replaced = api.replace("spool", &pp, &fresh).await.unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );

    let patched = api
        .patch(
            "spool",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "r0": null } })),
        )
        .await
        .unwrap();
    let keys: Vec<String> = patched.data.unwrap_or_default().into_keys().collect();
    assert_eq!(keys, ["r1", "r2"]);
    assert_eq!(
        fx.standin.configmap("hpa-tier", "spool").unwrap()["metadata"]["resourceVersion"].as_str(),
        patched.metadata.resource_version.as_deref()
    );

    let big = "x".repeat(hpa_tier_standins::kube::MAX_DATA_BYTES + 1);
    let mut too_big = spool(&[("r1", &big)]);
    too_big.metadata.name = Some("big".into());
    assert_eq!(
        api_error(api.create(&pp, &too_big).await),
        (
            422,
            "Invalid".into(),
            r#"ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes"#
                .into()
        )
    );

    api.delete("spool", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("spool").await.unwrap().is_none());
    assert_eq!(api_error(api.get("spool").await).0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_needs_only_the_get_and_patch_rbac_verbs() {
    let fx = Fixture::new();
    let cluster = fx.connect(TIMEOUT).await;
    let refs = example_refs();
    fx.standin.fail("prod", "web", Fault::Conflicts(1));
    cluster.read(&refs).await;
    cluster.apply(&tier_1000(&refs)).await;
    KubeCluster::connect(&fx.settings, TIMEOUT)
        .await
        .unwrap()
        .apply(&tier_1000(&refs))
        .await;

    let mut verbs: Vec<&str> = fx.standin.requests().iter().map(|r| r.verb()).collect();
    verbs.sort();
    verbs.dedup();
    // What deploy's Role grants, per HPA by resourceNames: no list, no watch.
    assert_eq!(verbs, ["get", "patch"]);
    assert!(
        fx.standin.requests().iter().all(|r| r.hpa().is_some()),
        "only named HPAs"
    );
}
