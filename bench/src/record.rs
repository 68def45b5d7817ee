//! The no-gateway baseline's work, recorded rather than written by hand: every request of every
//! operation goes once through Taproom's router, whose subgraph URLs point at a small proxy in front
//! of the real subgraphs. The subgraph requests the router made for a request, in the order they
//! arrived, become that request's baseline work, so the baseline follows whatever the plan is.

use std::{
    convert::Infallible,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    gateways::{Gateway, Gateways},
    load::{self, Step, Target},
    ops::Operation,
    subgraphs::Subgraphs,
};

/// Fills each operation's [`Operation::subgraph_work`]: starts Taproom's router on a supergraph
/// (`recording-<supergraph file>` in `out`) whose URLs point at a recording proxy in front of
/// `subgraphs`, sends it every request of every operation, and stops it.
pub(crate) async fn subgraph_work(
    subgraphs: &Subgraphs,
    gateways: &Gateways<'_>,
    operations: &mut [Operation],
    out: &Path,
) -> Result<()> {
    let recorder = Recorder::start(&subgraphs.targets).await?;
    let name = subgraphs
        .supergraph_path
        .file_name()
        .context("a supergraph file has a name")?
        .to_string_lossy();
    let recording = out.join(format!("recording-{name}"));
    std::fs::write(
        &recording,
        subgraphs.supergraph_pointed_at(|i| recorder.url(i))?,
    )?;
    let router = gateways.start(Gateway::Taproom, &recording).await?;
    for op in operations {
        op.subgraph_work = recorder
            .record(gateways.target(), &op.gateway_work)
            .await
            .with_context(|| format!("recording the subgraph requests of {}", op.name))?;
    }
    router.stop().await?;
    Ok(())
}

/// One proxy per subgraph, all writing into one list.
struct Recorder {
    urls: Vec<String>,
    recorded: Arc<Mutex<Vec<Step>>>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Recorder {
    /// Starts a proxy on a free loopback port for each of `subgraphs` (target `i` of a recorded
    /// step is `subgraphs[i]`).
    async fn start(subgraphs: &[Target]) -> Result<Recorder> {
        let subgraphs: Arc<[Target]> = subgraphs.into();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut urls = Vec::new();
        let mut tasks = Vec::new();
        for index in 0..subgraphs.len() {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a recording proxy")?;
            urls.push(format!(
                "http://{}{}",
                listener.local_addr()?,
                subgraphs[index].path
            ));
            let (subgraphs, recorded, failures) =
                (subgraphs.clone(), recorded.clone(), failures.clone());
            tasks.push(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (subgraphs, recorded, failures) =
                        (subgraphs.clone(), recorded.clone(), failures.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            forward(
                                index,
                                request,
                                subgraphs.clone(),
                                recorded.clone(),
                                failures.clone(),
                            )
                        });
                        // A connection ends when the router closes it; nothing to report.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }));
        }
        Ok(Recorder {
            urls,
            recorded,
            failures,
            tasks,
        })
    }

    /// The proxy's URL for subgraph `index`.
    fn url(&self, index: usize) -> String {
        self.urls[index].clone()
    }

    /// Sends each unit of `gateway_work` (one request each) to the router at `router` and returns,
    /// for each, the subgraph requests it caused.
    async fn record(&self, router: &Target, gateway_work: &[Vec<Step>]) -> Result<Vec<Vec<Step>>> {
        let mut connections = vec![None];
        let mut work = Vec::with_capacity(gateway_work.len());
        for unit in gateway_work {
            self.take();
            for step in unit {
                let sent = load::send(std::slice::from_ref(router), &mut connections, step).await;
                // A subgraph's own failure says more than the router's answer about it.
                let failures = std::mem::take(&mut *self.failures.lock().expect("not poisoned"));
                if let Some(failure) = failures.first() {
                    bail!("a subgraph failed while recording: {failure}");
                }
                sent.context("recording through Taproom's router")?;
            }
            let steps = self.take();
            if steps.is_empty() {
                bail!("the router answered without asking any subgraph: nothing to compare with");
            }
            work.push(steps);
        }
        Ok(work)
    }

    fn take(&self) -> Vec<Step> {
        std::mem::take(&mut *self.recorded.lock().expect("not poisoned"))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Records one subgraph request and passes it on; a failure is kept for [`Recorder::record`] and
/// answered with 502.
async fn forward(
    index: usize,
    request: Request<Incoming>,
    subgraphs: Arc<[Target]>,
    recorded: Arc<Mutex<Vec<Step>>>,
    failures: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answer = async {
        let body = request.into_body().collect().await?.to_bytes();
        let step = Step {
            target: index,
            authorization,
            body,
            query_plan: false,
            accept_encoding: None,
        };
        recorded.lock().expect("not poisoned").push(step.clone());
        let mut connections: Vec<_> = subgraphs.iter().map(|_| None).collect();
        load::send(&subgraphs, &mut connections, &step).await
    }
    .await;
    let response = match answer {
        Ok(body) => Response::builder()
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body)),
        Err(error) => {
            failures
                .lock()
                .expect("not poisoned")
                .push(format!("{error:#}"));
            Response::builder()
                .status(hyper::StatusCode::BAD_GATEWAY)
                .body(Full::new(Bytes::from(
                    "recording proxy: the subgraph failed",
                )))
        }
    };
    Ok(response.expect("a response from static parts builds"))
}
