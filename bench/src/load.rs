//! The load generator: a fixed number of keep-alive HTTP/1.1 connections, each sending its next
//! request as soon as the previous answer is in (closed loop, like `wrk`), for a fixed time.
//!
//! One unit of work is a short sequence of requests ("steps"): one request to a gateway, or, for the
//! no-gateway baseline, the subgraph requests a router would make for the same operation, one after
//! the other on that worker's own connections. Work items are taken round-robin from one shared list,
//! so the signed-in users and the variables vary from request to request. A request counts as failed
//! when the status is not 200 or the body carries `"errors"`; failed requests are counted, not timed.
//!
//! Latency is measured from just before a unit is sent to the last byte of its last answer, into a
//! list that is sorted once at the end: at a few thousand requests per second that is cheaper and
//! more exact than a histogram. (Closed-loop load under-reports tail latency when the server stalls
//! — "coordinated omission"; every gateway is measured the same way, so the ratios hold.)

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One HTTP request, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Which of the [`Target`]s it goes to.
    pub(crate) target: usize,
    /// `Bearer <token>`, if signed in.
    pub(crate) authorization: Option<String>,
    /// The JSON body: `{"query": ..., "variables": ..., "operationName": ...}`.
    pub(crate) body: Bytes,
    /// Asks Taproom's router for its query plan in `extensions.queryPlan`.
    pub(crate) query_plan: bool,
    /// The `Accept-Encoding` to send (none: answers come uncompressed).
    pub(crate) accept_encoding: Option<&'static str>,
}

/// A GraphQL endpoint: address and path.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Host and port.
    pub(crate) addr: SocketAddr,
    /// The HTTP path, such as `/graphql`.
    pub(crate) path: String,
}

/// What one run measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Completed units with a good answer.
    pub(crate) ok: u64,
    /// Units with a transport failure, a status other than 200 or GraphQL errors.
    pub(crate) failed: u64,
    /// The first failure seen, to report.
    pub(crate) first_failure: Option<String>,
    /// Latency of every good unit, in microseconds, sorted.
    pub(crate) latencies_us: Vec<u32>,
    /// From the start of the run until its last worker finished.
    pub(crate) elapsed: Duration,
    /// Bytes of answer bodies of good units, as received (compressed when asked for).
    pub(crate) bytes: u64,
}

impl Outcome {
    /// Good units per second of [`Outcome::elapsed`].
    pub(crate) fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `q` (0..1) of the good units finished, in milliseconds.
    pub(crate) fn percentile_ms(&self, q: f64) -> f64 {
        percentile(&self.latencies_us, q) as f64 / 1000.0
    }
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `connections` workers against `targets` for `duration`, each unit of `work` in turn.
pub(crate) async fn run(
    targets: &[Target],
    work: Arc<Vec<Vec<Step>>>,
    connections: usize,
    duration: Duration,
) -> Result<Outcome> {
    if work.is_empty() {
        bail!("no work to send");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let targets = targets.to_vec();
        let work = work.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            worker(targets, work, next, deadline).await
        }));
    }
    let mut outcome = Outcome::default();
    for worker in workers {
        let part = worker.await.context("a load worker panicked")??;
        outcome.ok += part.ok;
        outcome.failed += part.failed;
        if outcome.first_failure.is_none() {
            outcome.first_failure = part.first_failure;
        }
        outcome.latencies_us.extend(part.latencies_us);
        outcome.bytes += part.bytes;
    }
    outcome.elapsed = start.elapsed();
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

async fn worker(
    targets: Vec<Target>,
    work: Arc<Vec<Vec<Step>>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> Result<Outcome> {
    let mut connections: Vec<Option<SendRequest<Full<Bytes>>>> =
        (0..targets.len()).map(|_| None).collect();
    let mut outcome = Outcome {
        latencies_us: Vec::with_capacity(16 * 1024),
        ..Outcome::default()
    };
    while Instant::now() < deadline {
        let unit = &work[next.fetch_add(1, Ordering::Relaxed) % work.len()];
        let started = Instant::now();
        let mut failure = None;
        let mut bytes = 0;
        for step in unit {
            match send(&targets, &mut connections, step).await {
                Ok(body) => bytes += body.len() as u64,
                Err(e) => {
                    // A broken connection is reopened on the next request.
                    connections[step.target] = None;
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => {
                outcome.ok += 1;
                outcome.bytes += bytes;
                let micros = started.elapsed().as_micros();
                outcome
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Some(e) => {
                outcome.failed += 1;
                if outcome.first_failure.is_none() {
                    outcome.first_failure = Some(format!("{e:#}"));
                }
                // Do not spin on a refused connection.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok(outcome)
}

/// Sends one request and reads the whole answer; an error for a transport failure, a status other
/// than 200 or a GraphQL error.
pub(crate) async fn send(
    targets: &[Target],
    connections: &mut [Option<SendRequest<Full<Bytes>>>],
    step: &Step,
) -> Result<Bytes> {
    let target = &targets[step.target];
    let sender = match &mut connections[step.target] {
        Some(sender) => sender,
        slot => slot.insert(connect(target.addr).await?),
    };
    sender.ready().await.context("connection closed")?;
    let mut request = hyper::Request::post(target.path.as_str())
        .header(hyper::header::HOST, target.addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(authorization) = &step.authorization {
        request = request.header(hyper::header::AUTHORIZATION, authorization);
    }
    if step.query_plan {
        request = request.header("x-taproom-query-plan", "true");
    }
    if let Some(encoding) = step.accept_encoding {
        request = request.header(hyper::header::ACCEPT_ENCODING, encoding);
    }
    let request = request
        .body(Full::new(step.body.clone()))
        .context("building a request")?;
    let response = sender
        .send_request(request)
        .await
        .context("sending a request")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading an answer")?
        .to_bytes();
    if status != hyper::StatusCode::OK {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    if body.windows(8).any(|w| w == b"\"errors\"") {
        bail!("GraphQL errors: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// Whether the GraphQL server at `target` answers `{ __typename }`: the readiness check for the
/// subgraphs and the gateways.
pub(crate) async fn answers_typename(target: Target) -> bool {
    let step = Step {
        target: 0,
        authorization: None,
        body: Bytes::from_static(br#"{"query":"{ __typename }"}"#),
        query_plan: false,
        accept_encoding: None,
    };
    let mut connections = vec![None];
    send(&[target], &mut connections, &step).await.is_ok()
}

/// The body of `GET path` at `addr` (a gateway's `/metrics`).
pub(crate) async fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    let mut sender = connect(addr).await?;
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .context("building a request")?;
    let body = sender
        .send_request(request)
        .await
        .context("sending a request")?
        .into_body()
        .collect()
        .await
        .context("reading an answer")?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; either is handled by the next send.
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values, 0.95), 95);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 1.0), 100);
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
