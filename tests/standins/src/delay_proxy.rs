//! `delay-proxy`: a small HTTP/1.1 proxy on 127.0.0.1 that forwards every
//! request to one upstream base URL (moto, in the benchmark and the AWS
//! tests) and delays each response, so AWS calls can be made slow on demand.
//!
//! It can also answer instead of the upstream with AWS's query-protocol
//! error document (`<ErrorResponse><Error><Code>AccessDenied</Code>…`), the
//! shape RDS and ElastiCache really send, to exercise access denials,
//! throttling and 5xx over the wire. Every request it saw is recorded (with
//! its query-protocol `Action`), so tests can count calls and read parameters,
//! and the most requests it held at once is counted, so a test can tell
//! calls made together from calls made one after another without timing them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::server::{self, Latency, Running};

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Base URL every request is forwarded to, e.g. `http://127.0.0.1:5000`.
    #[arg(long)]
    pub upstream: String,
    /// Added before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let proxy = Proxy::new(&args.upstream, Duration::from_millis(args.latency_ms))?;
    server::serve_forever(proxy.router(), args.port, "delay-proxy").await
}

/// A proxy to `upstream` adding `latency`, on a free loopback port.
pub fn spawn(upstream: &str, latency: Duration) -> std::io::Result<Running> {
    Proxy::new(upstream, latency)
        .map_err(std::io::Error::other)?
        .spawn()
}

/// An AWS error answered instead of forwarding.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Only requests with this `Action` (`None`: every request).
    pub action: Option<String>,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// How many requests to answer this way (`None`: until cleared).
    pub times: Option<u32>,
}

impl Fault {
    /// Every request gets HTTP `status` with error `code`.
    pub fn aws(status: u16, code: &str, message: &str) -> Self {
        Fault {
            action: None,
            status,
            code: code.into(),
            message: message.into(),
            times: None,
        }
    }

    /// Only requests of this query-protocol action (e.g. `DescribeDBInstances`).
    pub fn on(mut self, action: &str) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The query-protocol `Action` from the query or the form body.
    pub action: Option<String>,
    pub body: String,
    /// Answered by a [`Fault`] instead of the upstream.
    pub faulted: bool,
}

/// The proxy's state; clones share it, so a test keeps one to steer the
/// running server.
#[derive(Clone)]
pub struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Body>,
    latency: Latency,
    faults: Arc<Mutex<Vec<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    flight: Arc<Flight>,
}

/// Requests received and not yet answered (their latency included).
#[derive(Default)]
struct Flight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// Counts one request in flight until dropped (answered, or abandoned by
/// the client).
struct Aboard(Arc<Flight>);

impl Aboard {
    fn new(flight: &Arc<Flight>) -> Aboard {
        let now = flight.now.fetch_add(1, Ordering::SeqCst) + 1;
        flight.max.fetch_max(now, Ordering::SeqCst);
        Aboard(flight.clone())
    }
}

impl Drop for Aboard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn count_in_flight(State(flight): State<Arc<Flight>>, req: Request, next: Next) -> Response {
    let _aboard = Aboard::new(&flight);
    next.run(req).await
}

impl Proxy {
    /// `upstream` is an `http://` base URL (no TLS: loopback only).
    pub fn new(upstream: &str, latency: Duration) -> anyhow::Result<Self> {
        let base = upstream.trim_end_matches('/');
        let uri: Uri = base
            .parse()
            .map_err(|e| anyhow::anyhow!("--upstream {upstream}: not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            anyhow::bail!("--upstream {upstream}: give an http:// URL with a host");
        }
        Ok(Proxy {
            upstream: base.to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            latency: Latency::new(latency),
            faults: Arc::default(),
            seen: Arc::default(),
            flight: Arc::default(),
        })
    }

    pub fn router(&self) -> Router {
        self.latency
            .layer(Router::new().fallback(forward).with_state(self.clone()))
            // Outside the latency: a request waiting out its delay is in flight.
            .layer(middleware::from_fn_with_state(
                self.flight.clone(),
                count_in_flight,
            ))
    }

    /// Serves this proxy on a free loopback port.
    pub fn spawn(&self) -> std::io::Result<Running> {
        server::spawn(self.router(), 0)
    }

    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Answers matching requests with `fault` (faults added earlier win).
    pub fn fail(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// The requests received so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The most requests held at once so far: 1 for calls made one after
    /// another, N for N calls in flight together.
    pub fn max_in_flight(&self) -> usize {
        self.flight.max.load(Ordering::SeqCst)
    }

    /// The `Action` of each request received so far.
    pub fn actions(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .map(|s| s.action.unwrap_or_default())
            .collect()
    }

    fn take_fault(&self, action: Option<&str>) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let i = faults
            .iter()
            .position(|f| f.action.is_none() || f.action.as_deref() == action)?;
        let fault = faults[i].clone();
        match &mut faults[i].times {
            Some(1) => {
                faults.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(fault)
    }
}

/// Connection-level headers a proxy must not pass on (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// `Action=…` from a query string or a form-encoded body.
fn action_of(uri: &Uri, body: &[u8]) -> Option<String> {
    let find = |s: &str| {
        s.split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(str::to_string)
    };
    uri.query()
        .and_then(find)
        .or_else(|| find(&String::from_utf8_lossy(body)))
}

async fn forward(State(proxy): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("delay-proxy: cannot read the request body: {e}"),
            )
                .into_response();
        }
    };
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let action = action_of(&parts.uri, &bytes);
    let fault = proxy.take_fault(action.as_deref());
    proxy.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        method: parts.method.to_string(),
        target: target.clone(),
        action,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        faulted: fault.is_some(),
    });
    if let Some(f) = fault {
        return aws_error(&f);
    }

    // Headers go through unchanged, Host included: the SigV4 signature
    // covers it, and the upstream must see what the client signed.
    let mut out = axum::http::Request::builder()
        .method(parts.method)
        .uri(format!("{}{target}", proxy.upstream));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            out = out.header(name, value);
        }
    }
    let req = match out.body(Body::from(bytes)) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("delay-proxy: cannot forward this request: {e}"),
            )
                .into_response();
        }
    };
    match proxy.client.request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            let drop: Vec<HeaderName> = parts
                .headers
                .keys()
                .filter(|n| hop_by_hop(n))
                .cloned()
                .collect();
            for name in drop {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("delay-proxy: upstream {} unreachable: {e}", proxy.upstream),
        )
            .into_response(),
    }
}

/// The query-protocol error document RDS and ElastiCache send.
fn aws_error(f: &Fault) -> Response {
    let kind = if f.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let request_id = "00000000-0000-4000-8000-delayproxy00";
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
         <Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{request_id}</RequestId></ErrorResponse>",
        xml_escape(&f.code),
        xml_escape(&f.message)
    );
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml"),
            (HeaderName::from_static("x-amzn-requestid"), request_id),
        ],
        body,
    )
        .into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_comes_from_the_query_or_the_form_body() {
        let uri: Uri = "/?Action=DescribeDBClusters&Version=2014-10-31"
            .parse()
            .unwrap();
        assert_eq!(action_of(&uri, b"").as_deref(), Some("DescribeDBClusters"));
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(
            action_of(&uri, b"Version=2015-02-02&Action=DescribeCacheClusters").as_deref(),
            Some("DescribeCacheClusters")
        );
        assert_eq!(action_of(&uri, b"{}"), None);
    }

    #[test]
    fn a_counted_fault_runs_out_and_an_action_fault_matches_only_its_action() {
        let p = Proxy::new("http://127.0.0.1:1", Duration::ZERO).unwrap();
        p.fail(Fault::aws(400, "Throttling", "slow down").on("A").times(2));
        assert!(p.take_fault(Some("B")).is_none());
        assert!(p.take_fault(Some("A")).is_some());
        assert!(p.take_fault(Some("A")).is_some());
        assert!(p.take_fault(Some("A")).is_none());
        p.fail(Fault::aws(503, "ServiceUnavailable", "down"));
        assert!(p.take_fault(None).is_some() && p.take_fault(Some("X")).is_some());
        p.clear_faults();
        assert!(p.take_fault(Some("X")).is_none());
    }

    #[test]
    fn requests_in_flight_are_counted_until_answered_or_abandoned() {
        let flight = Arc::new(Flight::default());
        let a = Aboard::new(&flight);
        let b = Aboard::new(&flight);
        drop(a);
        let c = Aboard::new(&flight);
        assert_eq!(flight.max.load(Ordering::SeqCst), 2);
        drop((b, c));
        assert_eq!(flight.now.load(Ordering::SeqCst), 0);
        let _d = Aboard::new(&flight);
        assert_eq!(flight.max.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn only_http_upstreams_are_accepted() {
        assert!(Proxy::new("https://example.com", Duration::ZERO).is_err());
        assert!(Proxy::new("not a url", Duration::ZERO).is_err());
        assert!(Proxy::new("http://127.0.0.1:5000/", Duration::ZERO).is_ok());
    }

    #[test]
    fn the_error_document_has_the_query_protocol_shape() {
        let r = aws_error(&Fault::aws(
            403,
            "AccessDenied",
            "User: x is not authorized <here>",
        ));
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body = body_text(r);
        assert!(
            body.contains("<Error><Type>Sender</Type><Code>AccessDenied</Code>")
                && body.contains("not authorized &lt;here&gt;"),
            "{body}"
        );
    }

    fn body_text(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
