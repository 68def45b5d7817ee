//! A server's lifecycle, the same for the router and every subgraph: ready while it serves; on
//! SIGTERM (or Ctrl-C) not ready at once, still serving for a grace period so that load balancers
//! and orchestrators see `/ready` fail and send new requests elsewhere, then closing its listener,
//! finishing in-flight requests up to a deadline, and returning so the process exits 0.
//!
//! [`serve`] runs it; the [`Lifecycle`] it puts in every request's extensions is what a `/ready`
//! handler asks ([`Lifecycle::is_draining`]). While draining, every HTTP/1 response carries
//! `Connection: close`, so a client or proxy holding a keep-alive connection opens its next one
//! to another replica instead of reusing one that is about to close.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
    Extension, Router,
};
use tokio::net::TcpListener;

/// `--shutdown-grace-secs` and `--shutdown-drain-secs`, shared by every `serve` command.
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs {
    /// After SIGTERM, how long to keep serving while `/ready` answers 503, so that load balancers
    /// and orchestrators stop sending new requests first: at least their health checks'
    /// detection time (HAProxy: `inter` × `fall`; Kubernetes: `periodSeconds` × `failureThreshold`).
    /// 0 (the default) stops accepting at once, which suits one process on a laptop.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,
    /// After the grace period, how long in-flight requests may take to finish before the process
    /// exits anyway (and logs that it did).
    #[arg(long, env = "SHUTDOWN_DRAIN_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_drain_secs: u64,
}

impl Default for ShutdownArgs {
    fn default() -> Self {
        ShutdownArgs {
            shutdown_grace_secs: 0,
            shutdown_drain_secs: 10,
        }
    }
}

impl ShutdownArgs {
    fn grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    fn drain(&self) -> Duration {
        Duration::from_secs(self.shutdown_drain_secs)
    }
}

/// Whether the server is draining: shared by the server and its `/ready` handler.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
}

impl Lifecycle {
    /// True from the shutdown signal on: `/ready` must fail.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// Whether a request's server is draining; false for a request served without [`serve`] (a test
/// that mounts the routes itself).
pub fn draining(lifecycle: Option<&Extension<Lifecycle>>) -> bool {
    lifecycle.is_some_and(|Extension(lifecycle)| lifecycle.is_draining())
}

/// Serves `app` on `listener` (with each connection's peer address as `ConnectInfo`) until
/// `signal` completes, then drains as [`ShutdownArgs`] says.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ShutdownArgs,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let lifecycle = Lifecycle::default();
    let app = app
        .layer(axum::middleware::from_fn(close_when_draining))
        .layer(Extension(lifecycle.clone()));
    let (grace, drain) = (settings.grace(), settings.drain());
    let (stopped_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        signal.await;
        lifecycle.start_draining();
        if !grace.is_zero() {
            tracing::info!(
                grace_secs = grace.as_secs(),
                "draining: /ready answers 503; still serving for the grace period"
            );
            tokio::time::sleep(grace).await;
        }
        tracing::info!(
            drain_secs = drain.as_secs(),
            "no longer accepting connections; finishing in-flight requests"
        );
        let _ = stopped_accepting.send(());
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let deadline = async move {
        // The sender is dropped unsent only when the server ended first.
        if stopped.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!(
                drain_secs = drain.as_secs(),
                "in-flight requests did not finish within the drain deadline; exiting anyway"
            );
            Ok(())
        }
    }
}

/// `Connection: close` on every response while draining (HTTP/1; hyper then closes the connection
/// after the response).
async fn close_when_draining(
    Extension(lifecycle): Extension<Lifecycle>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if lifecycle.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn ready(lifecycle: Option<Extension<Lifecycle>>) -> axum::http::StatusCode {
        if draining(lifecycle.as_ref()) {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            axum::http::StatusCode::OK
        }
    }

    async fn get_once(address: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await?;
        let mut buffer = vec![0; 4096];
        let read = stream.read(&mut buffer).await?;
        Ok(String::from_utf8_lossy(&buffer[..read]).into_owned())
    }

    /// After the signal: not ready, yet still serving, with `Connection: close`, for the grace
    /// period; an in-flight request finishes; then the server returns.
    #[tokio::test]
    async fn drains_through_the_grace_period_and_finishes_in_flight_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        // The slow request says when it is in flight, and finishes when the test lets it.
        let entered = std::sync::Arc::new(tokio::sync::Notify::new());
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let (entering, released) = (entered.clone(), release.clone());
        let app = Router::new().route("/ready", get(ready)).route(
            "/slow",
            get(move || async move {
                entering.notify_one();
                released.notified().await;
                "done"
            }),
        );
        let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
        let settings = ShutdownArgs {
            shutdown_grace_secs: 1,
            shutdown_drain_secs: 5,
        };
        let server = tokio::spawn(async move {
            serve(listener, app, &settings, async {
                let _ = signalled.await;
            })
            .await
        });
        assert!(get_once(address, "/ready")
            .await
            .expect("ready")
            .starts_with("HTTP/1.1 200"));
        let slow = tokio::spawn(get_once(address, "/slow"));
        entered.notified().await;
        let started = Instant::now();
        signal.send(()).expect("the server waits for it");
        // Not ready once the signal is handled; a probe before that is retried.
        let during = loop {
            let during = get_once(address, "/ready").await.expect("still serving");
            if !during.starts_with("HTTP/1.1 200") {
                break during;
            }
            tokio::task::yield_now().await;
        };
        assert!(during.starts_with("HTTP/1.1 503"), "{during}");
        assert!(
            during.to_ascii_lowercase().contains("connection: close"),
            "{during}"
        );
        // The request that was in flight at the signal still gets its answer.
        release.notify_one();
        let slow = slow.await.expect("joined").expect("the slow request");
        assert!(
            slow.starts_with("HTTP/1.1 200") && slow.ends_with("done"),
            "{slow}"
        );
        server.await.expect("joined").expect("served");
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert!(
            get_once(address, "/ready").await.is_err(),
            "the listener is closed"
        );
    }

    /// A request that outlives the drain deadline does not keep the process alive.
    #[tokio::test]
    async fn the_drain_deadline_bounds_the_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let entered = std::sync::Arc::new(tokio::sync::Notify::new());
        let entering = entered.clone();
        let app = Router::new().route(
            "/stuck",
            get(move || async move {
                entering.notify_one();
                tokio::time::sleep(Duration::from_secs(600)).await;
                "never"
            }),
        );
        let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
        let settings = ShutdownArgs {
            shutdown_grace_secs: 0,
            shutdown_drain_secs: 1,
        };
        let server = tokio::spawn(async move {
            serve(listener, app, &settings, async {
                let _ = signalled.await;
            })
            .await
        });
        let _stuck = tokio::spawn(get_once(address, "/stuck"));
        entered.notified().await;
        signal.send(()).expect("the server waits for it");
        // The bound is the drain deadline (1 s): a wait of ten minutes would be the stuck request.
        tokio::time::timeout(Duration::from_secs(300), server)
            .await
            .expect("returns after the deadline")
            .expect("joined")
            .expect("served");
    }
}
