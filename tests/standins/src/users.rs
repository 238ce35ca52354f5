//! The Python tool's mock online-users server (`mock/mock.py`), rebuilt for
//! drills and the demo: users start at a few, grow by a step every interval,
//! and stop at each pause threshold (500, 600, 1000, 2000, 3000, 4000 by
//! default) until told to continue. Same endpoints as the original —
//! `/api/online-users`, `/api/status`, `/api/reset`, `/api/continue-growth` —
//! plus `POST /api/users {"users": N}` so a demo can play a curve that falls
//! back down. `/api/online-users` puts the count at `/online_users`, the
//! HTTP source's default JSON pointer.
//!
//! Growth is computed from elapsed time when the server is asked, so no
//! background task runs; tests step it with [`Users::grow_once`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::server::{self, Latency, Running};

/// How the number of users moves on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Growth {
    /// Users at start and after `/api/reset` (the original: 6).
    pub initial_users: u32,
    /// Time between steps; `None`: only [`Users::grow_once`] grows (tests).
    pub interval: Option<Duration>,
    /// Users added per step (0: no growth).
    pub step: u32,
    /// Growth stops on reaching each of these until `/api/continue-growth`.
    pub thresholds: Vec<u32>,
}

impl Default for Growth {
    /// The original's settings (growth every 3 seconds), with a step that
    /// reaches the first threshold in half a minute.
    fn default() -> Self {
        Growth {
            initial_users: 6,
            interval: Some(Duration::from_secs(3)),
            step: 50,
            thresholds: vec![500, 600, 1000, 2000, 3000, 4000],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    /// Reached this threshold.
    Threshold(u32),
    /// Users were set by hand; growth would spoil the curve.
    Manual,
}

#[derive(Debug)]
struct Now {
    users: u32,
    paused: Option<Pause>,
    /// When growth was last accounted for.
    last_step: Instant,
}

impl Now {
    fn start(g: &Growth, at: Instant) -> Now {
        Now {
            users: g.initial_users,
            paused: None,
            last_step: at,
        }
    }

    /// One step: up by `step`, stopping at the first threshold passed.
    fn grow(&mut self, g: &Growth) {
        if self.paused.is_some() || g.step == 0 {
            return;
        }
        let next = self.users.saturating_add(g.step);
        let stop = g
            .thresholds
            .iter()
            .copied()
            .filter(|&t| t > self.users && t <= next)
            .min();
        match stop {
            Some(t) => {
                self.users = t;
                self.paused = Some(Pause::Threshold(t));
            }
            None => self.users = next,
        }
    }

    /// Applies the steps due between the last one and `at`.
    fn catch_up(&mut self, g: &Growth, at: Instant) {
        let Some(interval) = g.interval.filter(|i| !i.is_zero()) else {
            return;
        };
        while self.last_step + interval <= at {
            if self.paused.is_some() {
                // Time spent paused does not pile up into a jump later.
                self.last_step = at;
                return;
            }
            self.last_step += interval;
            self.grow(g);
        }
    }

    fn resume(&mut self, at: Instant) {
        self.paused = None;
        self.last_step = at;
    }
}

/// What `/api/online-users` answers instead of the count, once.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status with this body.
    Status { status: u16, body: String },
    /// 200 with this body.
    Garbage(String),
    /// Never answer.
    Hang,
}

struct UsersState {
    growth: Growth,
    now: Mutex<Now>,
    faults: Mutex<VecDeque<Fault>>,
    /// `METHOD /path` of every request, in order.
    requests: Mutex<Vec<String>>,
}

impl UsersState {
    fn new(growth: Growth) -> Arc<UsersState> {
        Arc::new(UsersState {
            now: Mutex::new(Now::start(&growth, Instant::now())),
            growth,
            faults: Mutex::default(),
            requests: Mutex::default(),
        })
    }

    /// The state brought up to date, for reading or changing.
    fn with<T>(&self, f: impl FnOnce(&mut Now, &Growth) -> T) -> T {
        let mut now = self.now.lock().unwrap();
        now.catch_up(&self.growth, Instant::now());
        f(&mut now, &self.growth)
    }

    fn status(&self) -> Value {
        self.with(|n, g| {
            let next = g.thresholds.iter().copied().filter(|&t| t > n.users).min();
            json!({
                "online_users": n.users,
                "paused": n.paused.is_some(),
                "paused_reason": match n.paused {
                    Some(Pause::Threshold(t)) => Value::String(format!(
                        "reached threshold {t}: POST /api/continue-growth to go on"
                    )),
                    Some(Pause::Manual) => Value::String(
                        "users set by POST /api/users: POST /api/continue-growth to grow again".into(),
                    ),
                    None => Value::Null,
                },
                "next_threshold": next,
                "thresholds": g.thresholds,
                "initial_users": g.initial_users,
                "growth_step": g.step,
                "growth_interval_seconds": g.interval.map(|i| i.as_secs_f64()),
            })
        })
    }
}

/// A running users stand-in. Dropping it stops it.
pub struct Users {
    running: Running,
    state: Arc<UsersState>,
    latency: Latency,
}

impl Users {
    pub fn spawn(growth: Growth) -> std::io::Result<Users> {
        let state = UsersState::new(growth);
        let latency = Latency::default();
        let running = server::spawn(router(state.clone(), &latency), 0)?;
        Ok(Users {
            running,
            state,
            latency,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// What `users.http.url` is set to.
    pub fn online_users_url(&self) -> String {
        format!("{}/api/online-users", self.running.url())
    }

    pub fn users(&self) -> u32 {
        self.state.with(|n, _| n.users)
    }

    /// Sets the users as `POST /api/users` does (growth pauses).
    pub fn set_users(&self, users: u32) {
        self.state.with(|n, _| {
            n.users = users;
            n.paused = Some(Pause::Manual);
        });
    }

    /// One growth step, as if an interval had passed.
    pub fn grow_once(&self) {
        self.state.with(|n, g| n.grow(g));
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// The next `/api/online-users` call gets `fault` (queued, one per call).
    pub fn fail_next(&self, fault: Fault) {
        self.state.faults.lock().unwrap().push_back(fault);
    }

    /// `METHOD /path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

fn router(state: Arc<UsersState>, latency: &Latency) -> Router {
    let routes = Router::new()
        .route("/api/online-users", get(online_users))
        .route("/api/status", get(status))
        // The original was driven from a browser: GET works as well as POST.
        .route("/api/reset", get(reset).post(reset))
        .route(
            "/api/continue-growth",
            get(continue_growth).post(continue_growth),
        )
        .route("/api/users", post(set_users))
        .with_state(state.clone());
    latency
        .layer(routes)
        .layer(axum::middleware::from_fn_with_state(state, record))
}

async fn record(
    State(s): State<Arc<UsersState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, uri): (&Method, &Uri) = (req.method(), req.uri());
    s.requests
        .lock()
        .unwrap()
        .push(format!("{method} {}", uri.path()));
    next.run(req).await
}

async fn online_users(State(s): State<Arc<UsersState>>) -> Response {
    let fault = s.faults.lock().unwrap().pop_front();
    match fault {
        Some(Fault::Status { status, body }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, body).into_response()
        }
        Some(Fault::Garbage(body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Some(Fault::Hang) => std::future::pending().await,
        None => {
            let (users, paused) = s.with(|n, _| (n.users, n.paused.is_some()));
            json_ok(json!({
                "online_users": users,
                "paused": paused,
                "timestamp": jiff::Timestamp::now().to_string(),
            }))
        }
    }
}

async fn status(State(s): State<Arc<UsersState>>) -> Response {
    json_ok(s.status())
}

async fn reset(State(s): State<Arc<UsersState>>) -> Response {
    s.with(|n, g| *n = Now::start(g, Instant::now()));
    json_ok(s.status())
}

async fn continue_growth(State(s): State<Arc<UsersState>>) -> Response {
    s.with(|n, _| n.resume(Instant::now()));
    json_ok(s.status())
}

async fn set_users(State(s): State<Arc<UsersState>>, body: Bytes) -> Response {
    let users = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("users").and_then(Value::as_u64))
        .and_then(|u| u32::try_from(u).ok());
    match users {
        Some(u) => {
            s.with(|n, _| {
                n.users = u;
                n.paused = Some(Pause::Manual);
            });
            json_ok(s.status())
        }
        None => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "error": "expected a JSON body {\"users\": N} with N a non-negative integer" })
                .to_string(),
        )
            .into_response(),
    }
}

fn json_ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Command-line options of this stand-in.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port; the original used 5000).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Users at start and after /api/reset.
    #[arg(long, default_value_t = 6)]
    pub initial_users: u32,
    /// Seconds between growth steps (0: no growth on its own).
    #[arg(long, default_value_t = 3.0)]
    pub growth_interval_seconds: f64,
    /// Users added per step.
    #[arg(long, default_value_t = 50)]
    pub growth_step: u32,
    /// Growth pauses at each of these until /api/continue-growth.
    #[arg(long, value_delimiter = ',', default_values_t = [500, 600, 1000, 2000, 3000, 4000])]
    pub thresholds: Vec<u32>,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let Args {
        port,
        initial_users,
        growth_interval_seconds,
        growth_step,
        thresholds,
        latency_ms,
    } = args;
    anyhow::ensure!(
        growth_interval_seconds.is_finite() && growth_interval_seconds >= 0.0,
        "--growth-interval-seconds must be a non-negative number"
    );
    let growth = Growth {
        initial_users,
        interval: (growth_interval_seconds > 0.0)
            .then(|| Duration::from_secs_f64(growth_interval_seconds)),
        step: growth_step,
        thresholds,
    };
    let latency = Latency::new(Duration::from_millis(latency_ms));
    server::serve_forever(router(UsersState::new(growth), &latency), port, "users").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn growth(step: u32, thresholds: &[u32]) -> Growth {
        Growth {
            initial_users: 6,
            interval: Some(Duration::from_secs(3)),
            step,
            thresholds: thresholds.to_vec(),
        }
    }

    #[test]
    fn growth_stops_at_each_threshold_until_resumed() {
        let g = growth(300, &[500, 600, 1000]);
        let t0 = Instant::now();
        let mut n = Now::start(&g, t0);
        let mut seen = vec![];
        for _ in 0..4 {
            n.grow(&g);
            seen.push(n.users);
        }
        assert_eq!(seen, [306, 500, 500, 500]);
        assert_eq!(n.paused, Some(Pause::Threshold(500)));
        n.resume(t0);
        n.grow(&g);
        assert_eq!((n.users, n.paused), (600, Some(Pause::Threshold(600))));
        n.resume(t0);
        n.grow(&g);
        n.grow(&g);
        assert_eq!((n.users, n.paused), (1000, Some(Pause::Threshold(1000))));
        n.resume(t0);
        n.grow(&g);
        assert_eq!((n.users, n.paused), (1300, None));
    }

    #[test]
    fn elapsed_time_is_turned_into_steps_and_pauses_do_not_pile_up() {
        let g = growth(10, &[30]);
        let t0 = Instant::now();
        let mut n = Now::start(&g, t0);
        n.catch_up(&g, t0 + Duration::from_secs(7));
        assert_eq!(n.users, 26, "two steps in 7 s at 3 s");
        n.catch_up(&g, t0 + Duration::from_secs(60));
        assert_eq!((n.users, n.paused), (30, Some(Pause::Threshold(30))));
        n.resume(t0 + Duration::from_secs(60));
        n.catch_up(&g, t0 + Duration::from_secs(61));
        assert_eq!(n.users, 30, "no step before a full interval after resuming");
        n.catch_up(&g, t0 + Duration::from_secs(63));
        assert_eq!(n.users, 40);
    }

    #[test]
    fn no_step_means_no_growth() {
        let g = growth(0, &[]);
        let mut n = Now::start(&g, Instant::now());
        n.grow(&g);
        assert_eq!(n.users, 6);
    }
}
