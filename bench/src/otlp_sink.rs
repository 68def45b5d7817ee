//! A collector that takes OTLP/HTTP trace exports and drops them, counting what arrived: the
//! other end of the router's exporter when the bench measures what tracing costs.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use anyhow::Result;
use axum::{body::Bytes, extract::State, http::header, routing::post, Router};

#[derive(Default)]
struct Counts {
    exports: AtomicU64,
    bytes: AtomicU64,
}

/// A running sink; it stops with the bench.
pub(crate) struct Sink {
    /// `http://127.0.0.1:<port>` (the exporter appends `/v1/traces`).
    pub(crate) endpoint: String,
    counts: Arc<Counts>,
}

/// `POST /v1/traces`: counted, and answered with an empty `ExportTraceServiceResponse` (an empty
/// protobuf message is zero bytes).
async fn export(
    State(counts): State<Arc<Counts>>,
    body: Bytes,
) -> impl axum::response::IntoResponse {
    counts.exports.fetch_add(1, Ordering::Relaxed);
    counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Bytes::new(),
    )
}

impl Sink {
    /// Listens on a free loopback port.
    pub(crate) async fn start() -> Result<Sink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(counts.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Sink { endpoint, counts })
    }

    /// Export requests and their bytes received so far.
    pub(crate) fn received(&self) -> (u64, u64) {
        (
            self.counts.exports.load(Ordering::Relaxed),
            self.counts.bytes.load(Ordering::Relaxed),
        )
    }
}
