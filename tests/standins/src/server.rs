//! Runs an axum router on 127.0.0.1 on its own thread and runtime, so a
//! synchronous test (or one with its own runtime) can start a stand-in, and
//! stops it when the handle drops. Also the latency every stand-in can add.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;

/// A stand-in listening on loopback. Dropping it stops the server.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `router` on `127.0.0.1:port` (0: any free port) in the background.
pub fn spawn(router: Router, port: u16) -> std::io::Result<Running> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("standin-{}", addr.port()))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                let _ = axum::serve(no_delay(listener), router)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
            // Handlers parked in a "hang" fault must not keep the test waiting.
            rt.shutdown_timeout(Duration::from_millis(100));
        })?;
    Ok(Running {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Accepted connections with Nagle's algorithm off, as real API servers (Go's
/// net package, AWS's front ends) have it. Otherwise a response written in
/// two parts (headers, then a streamed body: the delay-proxy's) waits for the
/// client's delayed ACK on a reused connection — some 40 ms that no real
/// server adds, which the benchmark would count against the tool.
fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// Serves `router` in the foreground until Ctrl-C / SIGTERM (the binary).
pub async fn serve_forever(router: Router, port: u16, name: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    // Scripts read this line to learn the port.
    println!("{name} listening on http://{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    axum::serve(no_delay(listener), router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}

/// A latency added before every response, changeable while running.
#[derive(Clone, Default)]
pub struct Latency(Arc<Mutex<Duration>>);

impl Latency {
    pub fn new(d: Duration) -> Self {
        Latency(Arc::new(Mutex::new(d)))
    }
    pub fn set(&self, d: Duration) {
        *self.0.lock().unwrap() = d;
    }
    pub fn get(&self) -> Duration {
        *self.0.lock().unwrap()
    }
    /// Wraps `router` so every response waits `self` first.
    pub fn layer(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), delay))
    }
}

async fn delay(State(latency): State<Latency>, req: Request, next: Next) -> Response {
    let d = latency.get();
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
    next.run(req).await
}
